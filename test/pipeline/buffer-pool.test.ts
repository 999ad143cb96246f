import { describe, it, expect } from 'vitest';
import { BufferPool } from '../../pipeline/buffer-pool.js';
import { thrownBy } from '../support/errors.js';

describe('BufferPool reference counting', () => {
  it('acquire gives a zero-filled buffer of the exact size with refCount 1', () => {
    const pool = new BufferPool();
    const buffer = pool.acquire(64);
    expect(buffer.bytes).toBeInstanceOf(Uint8Array);
    expect(buffer.bytes.byteLength).toBe(64);
    expect(buffer.bytes.every((b) => b === 0)).toBe(true);
    expect(buffer.refCount).toBe(1);
    expect(pool.stats).toEqual({ allocations: 1, reuses: 0, inUse: 1, free: 0, bytesHeld: 64 });
  });

  it('retain increments and returns the same buffer; release decrements', () => {
    const pool = new BufferPool();
    const buffer = pool.acquire(16);
    expect(buffer.retain()).toBe(buffer);
    expect(buffer.retain().refCount).toBe(3);
    buffer.release();
    expect(buffer.refCount).toBe(2);
  });

  it('returns storage to the pool only after the last release', () => {
    const pool = new BufferPool();
    const buffer = pool.acquire(32).retain().retain(); // three consumers
    buffer.release();
    buffer.release();
    expect(pool.stats.inUse).toBe(1);
    expect(pool.stats.free).toBe(0);
    // Storage still owned: a new acquire of the same size must not get it.
    const other = pool.acquire(32);
    expect(other).not.toBe(buffer);
    expect(other.bytes.buffer).not.toBe(buffer.bytes.buffer);
    expect(pool.stats.allocations).toBe(2);

    buffer.release();
    expect(buffer.refCount).toBe(0);
    expect(pool.stats).toMatchObject({ inUse: 1, free: 1 });
    const again = pool.acquire(32);
    expect(again.bytes).toBe(buffer.bytes);
    expect(again.refCount).toBe(1);
    expect(pool.stats).toMatchObject({ allocations: 2, reuses: 1, inUse: 2, free: 0 });
  });

  it('keeps allocations constant across many acquire/release cycles of one size (zero new buffers in steady state)', () => {
    const pool = new BufferPool();
    const frameBytes = 640 * 480 * 3;
    // Warm-up: a pipeline holding up to 3 frames at once.
    const warm = [pool.acquire(frameBytes), pool.acquire(frameBytes), pool.acquire(frameBytes)];
    for (const b of warm) b.release();
    const allocationsAfterWarmUp = pool.stats.allocations;
    expect(allocationsAfterWarmUp).toBe(3);

    const seen = new Set<Uint8Array>(warm.map((b) => b.bytes));
    for (let i = 0; i < 1000; i++) {
      const held = [pool.acquire(frameBytes), pool.acquire(frameBytes), pool.acquire(frameBytes)];
      held[1]!.retain(); // a second consumer on one frame
      for (const b of held) {
        expect(seen.has(b.bytes)).toBe(true);
        b.release();
      }
      held[1]!.release();
    }
    expect(pool.stats).toEqual({
      allocations: allocationsAfterWarmUp,
      reuses: 3000,
      inUse: 0,
      free: 3,
      bytesHeld: 3 * frameBytes,
    });
  });

  it('never lends a buffer of one size to a request for another', () => {
    const pool = new BufferPool();
    pool.acquire(100).release();
    const other = pool.acquire(101);
    expect(other.bytes.byteLength).toBe(101);
    expect(pool.stats).toMatchObject({ allocations: 2, reuses: 0, inUse: 1, free: 1, bytesHeld: 201 });
    const same = pool.acquire(100);
    expect(same.bytes.byteLength).toBe(100);
    expect(pool.stats).toMatchObject({ allocations: 2, reuses: 1, free: 0 });
  });

  it('keeps at most maxFreePerSize free buffers per size; extra ones leave bytesHeld', () => {
    const maxFreePerSize = 2;
    const pool = new BufferPool({ maxFreePerSize });
    const held = Array.from({ length: maxFreePerSize + 2 }, () => pool.acquire(10));
    const small = pool.acquire(4);
    expect(pool.stats.bytesHeld).toBe((maxFreePerSize + 2) * 10 + 4);

    for (const b of held.slice(0, maxFreePerSize)) b.release();
    expect(pool.stats).toMatchObject({ free: maxFreePerSize, bytesHeld: (maxFreePerSize + 2) * 10 + 4 });
    held[maxFreePerSize]!.release(); // one over the cap: dropped
    expect(pool.stats).toMatchObject({ free: maxFreePerSize, inUse: 2, bytesHeld: (maxFreePerSize + 1) * 10 + 4 });
    held[maxFreePerSize + 1]!.release();
    expect(pool.stats).toMatchObject({ free: maxFreePerSize, inUse: 1, bytesHeld: maxFreePerSize * 10 + 4 });
    // The cap is per size: the 4-byte buffer still goes back.
    small.release();
    expect(pool.stats).toMatchObject({ free: maxFreePerSize + 1, inUse: 0, bytesHeld: maxFreePerSize * 10 + 4 });
  });

  it('with maxFreePerSize 0 keeps nothing free and allocates every time', () => {
    const pool = new BufferPool({ maxFreePerSize: 0 });
    pool.acquire(8).release();
    pool.acquire(8).release();
    expect(pool.stats).toEqual({ allocations: 2, reuses: 0, inUse: 0, free: 0, bytesHeld: 0 });
  });
});

describe('BufferPool misuse', () => {
  it('double release throws an Error naming the pool', () => {
    const pool = new BufferPool({ name: 'camera-front' });
    const buffer = pool.acquire(8);
    buffer.release();
    const error = thrownBy(() => buffer.release());
    expect(error.name).toBe('Error');
    expect(error.message).toBe("PooledBuffer.release: buffer of pool 'camera-front' released more often than retained");
    // The failed release must not have corrupted the pool's bookkeeping.
    expect(pool.stats).toMatchObject({ inUse: 0, free: 1 });
  });

  it('a stale handle released again after its storage was re-leased throws and leaves the new owner alone', () => {
    // In steady state storage is re-leased at once, so this is how a double release really happens.
    const pool = new BufferPool({ name: 'camera-front' });
    const first = pool.acquire(8);
    first.release();
    const second = pool.acquire(8); // reuses the storage of `first`
    expect(second.bytes).toBe(first.bytes);
    const error = thrownBy(() => first.release()); // the old owner's bug
    expect(error.name).toBe('Error');
    expect(error.message).toBe("PooledBuffer.release: buffer of pool 'camera-front' released more often than retained");
    // The new owner still holds its storage: nobody else may be handed the same bytes.
    expect(second.refCount).toBe(1);
    expect(pool.stats).toMatchObject({ inUse: 1, free: 0 });
    expect(pool.acquire(8).bytes).not.toBe(second.bytes);
  });

  it('retain after the last release throws an Error naming the pool', () => {
    const pool = new BufferPool();
    const buffer = pool.acquire(8);
    buffer.release();
    const error = thrownBy(() => buffer.retain());
    expect(error.name).toBe('Error');
    expect(error.message).toBe("PooledBuffer.retain: buffer of pool 'frames' was already released");
    expect(buffer.refCount).toBe(0);
  });

  it('acquire(0) throws RangeError', () => {
    const error = thrownBy(() => new BufferPool().acquire(0));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("BufferPool.acquire: 'byteLength' must be a positive integer, got 0");
  });

  it('acquire(1.5) throws RangeError', () => {
    const error = thrownBy(() => new BufferPool().acquire(1.5));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("BufferPool.acquire: 'byteLength' must be a positive integer, got 1.5");
  });

  it('acquire(-1) throws RangeError and changes no counter', () => {
    const pool = new BufferPool();
    const error = thrownBy(() => pool.acquire(-1));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("BufferPool.acquire: 'byteLength' must be a positive integer, got -1");
    expect(pool.stats).toEqual({ allocations: 0, reuses: 0, inUse: 0, free: 0, bytesHeld: 0 });
  });

  it('a negative maxFreePerSize throws RangeError', () => {
    const error = thrownBy(() => new BufferPool({ maxFreePerSize: -1 }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("BufferPool: 'maxFreePerSize' must be an integer >= 0, got -1");
  });
});
