/**
 * Reference-counted, size-keyed pool of byte buffers for frame storage. Frames take a buffer with
 * `acquire`, every extra consumer `retain`s it, and the last `release` returns it to the pool, so a
 * replay in steady state reuses the same few buffers instead of allocating a new one per frame.
 */

export interface BufferPoolOptions {
  /** Name used in error messages and metrics. Default 'frames'. */
  name?: string;
  /** Free buffers kept per size; extra ones are left to the GC. Default 8. */
  maxFreePerSize?: number;
}

export interface BufferPoolStats {
  /** Buffers created because no free one of the right size existed. */
  allocations: number;
  /** Acquisitions served by a returned buffer. */
  reuses: number;
  /** Buffers currently held by at least one consumer. */
  inUse: number;
  /** Buffers waiting in the pool. */
  free: number;
  /** Bytes in all buffers this pool created that it still tracks (in use + free). */
  bytesHeld: number;
}

/**
 * One lease of pooled storage. Every `acquire` hands out a new lease object over reused bytes, so a
 * stale lease released twice throws instead of freeing storage that now belongs to someone else.
 */
export class PooledBuffer {
  /** The storage; views (ImageView, tensors) are made over it, never copies. */
  readonly bytes: Uint8Array;
  #refCount = 1;
  #pool: BufferPool;

  /** @internal created by BufferPool.acquire */
  constructor(pool: BufferPool, bytes: Uint8Array) {
    this.#pool = pool;
    this.bytes = bytes;
  }

  get refCount(): number {
    return this.#refCount;
  }


  /** Adds a consumer; pair every retain with one release. */
  retain(): this {
    if (this.#refCount <= 0) throw new Error(`PooledBuffer.retain: buffer of pool '${this.#pool.name}' was already released`);
    this.#refCount++;
    return this;
  }

  /** Drops a consumer; the last release returns the storage to the pool. */
  release(): void {
    if (this.#refCount <= 0) throw new Error(`PooledBuffer.release: buffer of pool '${this.#pool.name}' released more often than retained`);
    this.#refCount--;
    if (this.#refCount === 0) this.#pool._reclaim(this);
  }
}

export class BufferPool {
  readonly name: string;
  readonly #maxFreePerSize: number;
  readonly #freeBySize = new Map<number, Uint8Array[]>();
  /** Buffers per size that this pool tracks (in use + free). */
  readonly #heldBySize = new Map<number, number>();
  #allocations = 0;
  #reuses = 0;
  #inUse = 0;
  #bytesHeld = 0;

  constructor(options: BufferPoolOptions = {}) {
    this.name = options.name ?? 'frames';
    this.#maxFreePerSize = options.maxFreePerSize ?? 8;
    if (!Number.isInteger(this.#maxFreePerSize) || this.#maxFreePerSize < 0) {
      throw new RangeError(`BufferPool: 'maxFreePerSize' must be an integer >= 0, got ${options.maxFreePerSize}`);
    }
  }

  /** A buffer of exactly `byteLength` bytes with refCount 1. Contents are whatever the last user left. */
  acquire(byteLength: number): PooledBuffer {
    if (!Number.isInteger(byteLength) || byteLength <= 0) {
      throw new RangeError(`BufferPool.acquire: 'byteLength' must be a positive integer, got ${byteLength}`);
    }
    this.#inUse++;
    const bytes = this.#freeBySize.get(byteLength)?.pop();
    if (bytes) {
      this.#reuses++;
      return new PooledBuffer(this, bytes);
    }
    this.#allocations++;
    this.#bytesHeld += byteLength;
    this.#heldBySize.set(byteLength, (this.#heldBySize.get(byteLength) ?? 0) + 1);
    return new PooledBuffer(this, new Uint8Array(byteLength));
  }

  /**
   * Makes sure `count` buffers of `byteLength` exist (free or in use), allocating the missing ones
   * now: a stream whose frame size is known up front pays all its allocations at start-up.
   */
  reserve(byteLength: number, count: number): void {
    if (!Number.isInteger(count) || count < 0 || count > this.#maxFreePerSize) {
      throw new RangeError(`BufferPool.reserve: 'count' must be an integer in [0, ${this.#maxFreePerSize}] (maxFreePerSize), got ${count}`);
    }
    const held = this.#heldBySize.get(byteLength) ?? 0;
    const missing = Math.max(0, count - held);
    const fresh = Array.from({ length: missing }, () => this.acquire(byteLength));
    for (const buffer of fresh) buffer.release();
  }

  get stats(): BufferPoolStats {
    let free = 0;
    for (const list of this.#freeBySize.values()) free += list.length;
    return { allocations: this.#allocations, reuses: this.#reuses, inUse: this.#inUse, free, bytesHeld: this.#bytesHeld };
  }

  /** @internal called by PooledBuffer when its last consumer releases it */
  _reclaim(buffer: PooledBuffer): void {
    this.#inUse--;
    const size = buffer.bytes.byteLength;
    let list = this.#freeBySize.get(size);
    if (!list) this.#freeBySize.set(size, (list = []));
    if (list.length < this.#maxFreePerSize) list.push(buffer.bytes);
    else {
      this.#bytesHeld -= size;
      this.#heldBySize.set(size, (this.#heldBySize.get(size) ?? 1) - 1);
    }
  }
}
