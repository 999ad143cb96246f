/**
 * A FIFO with a fixed capacity that, when full, drops its oldest item to make room: a late frame
 * is dropped, never queued without limit. Drops are counted and handed to `onDrop` so the owner can
 * release buffers or carry data over.
 */
export class BoundedQueue<T> {
  readonly capacity: number;
  readonly #items: T[] = [];
  readonly #onDrop: ((dropped: T) => void) | undefined;
  #drops = 0;

  constructor(capacity: number, onDrop?: (dropped: T) => void) {
    if (!(capacity >= 1) || (!Number.isInteger(capacity) && capacity !== Infinity)) {
      throw new RangeError(`BoundedQueue: 'capacity' must be an integer >= 1 or Infinity, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#onDrop = onDrop;
  }

  get length(): number {
    return this.#items.length;
  }

  /** Items dropped since creation because the queue was full. */
  get drops(): number {
    return this.#drops;
  }

  /** Appends `item`; returns the item dropped to make room, if any. */
  push(item: T): T | undefined {
    let dropped: T | undefined;
    if (this.#items.length >= this.capacity) {
      dropped = this.#items.shift();
      this.#drops++;
      this.#onDrop?.(dropped as T);
    }
    this.#items.push(item);
    return dropped;
  }

  shift(): T | undefined {
    return this.#items.shift();
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  /** Removes and returns everything still queued (e.g. to release it at teardown). */
  drain(): T[] {
    return this.#items.splice(0, this.#items.length);
  }
}
