import { describe, it, expect } from 'vitest';
import { BoundedQueue } from '../../pipeline/bounded-queue.js';
import { thrownBy } from '../support/errors.js';

describe('BoundedQueue', () => {
  it('is a FIFO below capacity and drops nothing', () => {
    const queue = new BoundedQueue<number>(3);
    expect(queue.push(1)).toBeUndefined();
    expect(queue.push(2)).toBeUndefined();
    expect(queue.push(3)).toBeUndefined(); // exactly at capacity: still no drop
    expect(queue.length).toBe(3);
    expect(queue.drops).toBe(0);
    expect(queue.peek()).toBe(1);
    expect(queue.shift()).toBe(1);
    expect(queue.shift()).toBe(2);
    expect(queue.shift()).toBe(3);
    expect(queue.shift()).toBeUndefined();
    expect(queue.peek()).toBeUndefined();
  });

  it('at capacity drops the oldest item, counts it and hands it to onDrop', () => {
    const dropped: string[] = [];
    const capacity = 2;
    const queue = new BoundedQueue<string>(capacity, (item) => dropped.push(item));
    queue.push('a');
    queue.push('b');
    expect(queue.push('c')).toBe('a');
    expect(queue.push('d')).toBe('b');
    expect(queue.length).toBe(capacity);
    expect(queue.drops).toBe(2);
    expect(dropped).toEqual(['a', 'b']);
    expect(queue.drain()).toEqual(['c', 'd']);
  });

  it('onDrop runs before the new item is queued', () => {
    const seenLengths: number[] = [];
    const queue: BoundedQueue<number> = new BoundedQueue<number>(1, () => seenLengths.push(queue.length));
    queue.push(1);
    queue.push(2);
    expect(seenLengths).toEqual([0]);
    expect(queue.peek()).toBe(2);
  });

  it('capacity 1 keeps only the newest item', () => {
    const queue = new BoundedQueue<number>(1);
    for (let i = 0; i < 10; i++) queue.push(i);
    expect(queue.drain()).toEqual([9]);
    expect(queue.drops).toBe(9);
  });

  it('capacity Infinity never drops', () => {
    const queue = new BoundedQueue<number>(Infinity, () => {
      throw new Error('must not drop');
    });
    for (let i = 0; i < 10_000; i++) queue.push(i);
    expect(queue.length).toBe(10_000);
    expect(queue.drops).toBe(0);
  });

  it('drain() returns everything in order and empties the queue; drops are kept', () => {
    const queue = new BoundedQueue<number>(3);
    for (const i of [1, 2, 3, 4]) queue.push(i);
    expect(queue.drain()).toEqual([2, 3, 4]);
    expect(queue.length).toBe(0);
    expect(queue.drain()).toEqual([]);
    expect(queue.drops).toBe(1);
    queue.push(5);
    expect(queue.peek()).toBe(5);
  });

  it('shifting makes room again', () => {
    const queue = new BoundedQueue<number>(2);
    queue.push(1);
    queue.push(2);
    queue.shift();
    expect(queue.push(3)).toBeUndefined();
    expect(queue.drops).toBe(0);
  });

  it('capacity 0 throws RangeError', () => {
    const error = thrownBy(() => new BoundedQueue(0));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("BoundedQueue: 'capacity' must be an integer >= 1 or Infinity, got 0");
  });

  it('a fractional capacity throws RangeError', () => {
    const error = thrownBy(() => new BoundedQueue(1.5));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("BoundedQueue: 'capacity' must be an integer >= 1 or Infinity, got 1.5");
  });

  it('a NaN capacity throws RangeError', () => {
    const error = thrownBy(() => new BoundedQueue(NaN));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("BoundedQueue: 'capacity' must be an integer >= 1 or Infinity, got NaN");
  });

  it('a negative capacity throws RangeError', () => {
    const error = thrownBy(() => new BoundedQueue(-3));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("BoundedQueue: 'capacity' must be an integer >= 1 or Infinity, got -3");
  });
});
