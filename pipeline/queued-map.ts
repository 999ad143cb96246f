import { Observable, type OperatorFunction } from 'rxjs';
import { BoundedQueue } from './bounded-queue.js';

export interface QueuedMapOptions<T, R> {
  /** Projects running at once (results still leave in input order). Default 1. */
  concurrency?: number;
  /** Inputs waiting for a free slot; when full the oldest waiting input is dropped. Default Infinity. */
  queueCapacity?: number;
  /** Called with each input dropped from the full queue (release its buffers here). */
  onDrop?: (dropped: T) => void;
  /** Called with inputs and results thrown away at unsubscribe (release their buffers here). */
  onDiscard?: (value: T | R) => void;
}

/**
 * A pump: runs `pass` again and again while it returns true. A call made from inside `pass` (emitting
 * can make upstream push synchronously) does not nest: it only asks the running pump for one more
 * pass. Returns whether this call was the outermost one (the one that ran the passes).
 */
export function reentrantPump(pass: () => boolean): () => boolean {
  let pumping = false;
  let again = false;
  return () => {
    if (pumping) {
      again = true;
      return false;
    }
    pumping = true;
    try {
      do {
        again = false;
        if (pass()) again = true;
      } while (again);
    } finally {
      pumping = false;
    }
    return true;
  };
}

interface Slot<R> {
  settled: boolean;
  failed: boolean;
  value?: R;
  error?: unknown;
}

/**
 * Like `concatMap` with bounded look-ahead: runs up to `concurrency` projects at once, emits
 * results in input order, and keeps waiting inputs in a drop-oldest `BoundedQueue`. A finished
 * result waiting for an earlier one still holds its slot, which bounds the reorder buffer too. A failed
 * project errors the stream at its turn in the order, after the results before it.
 */
export function queuedMap<T, R>(project: (value: T) => R | Promise<R>, options: QueuedMapOptions<T, R> = {}): OperatorFunction<T, R> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`queuedMap: 'concurrency' must be an integer >= 1, got ${concurrency}`);
  }
  const queueCapacity = options.queueCapacity ?? Infinity;
  if (!(queueCapacity >= 1) || (!Number.isInteger(queueCapacity) && queueCapacity !== Infinity)) {
    throw new RangeError(`queuedMap: 'queueCapacity' must be an integer >= 1 or Infinity, got ${queueCapacity}`);
  }
  return (source) =>
    new Observable<R>((subscriber) => {
      const waiting = new BoundedQueue<T>(queueCapacity, options.onDrop);
      const running: Slot<R>[] = [];
      let sourceDone = false;
      let closed = false;

      const start = (value: T) => {
        const slot: Slot<R> = { settled: false, failed: false };
        running.push(slot);
        let result: R | Promise<R>;
        try {
          result = project(value);
        } catch (error) {
          Object.assign(slot, { settled: true, failed: true, error });
          return;
        }
        if (!isPromiseLike(result)) {
          Object.assign(slot, { settled: true, value: result });
          return;
        }
        result.then(
          (resolved) => {
            Object.assign(slot, { settled: true, value: resolved });
            if (closed) options.onDiscard?.(resolved);
            else pump();
          },
          (error: unknown) => {
            Object.assign(slot, { settled: true, failed: true, error });
            if (!closed) pump();
          },
        );
      };

      const runPasses = reentrantPump(() => {
        if (closed) return false;
        while (!closed && running.length > 0 && running[0]!.settled) {
          const head = running.shift()!;
          if (head.failed) {
            closed = true;
            subscriber.error(head.error);
          } else subscriber.next(head.value as R);
        }
        let started = false;
        while (!closed && running.length < concurrency && waiting.length > 0) {
          start(waiting.shift() as T);
          started = true;
        }
        // A synchronous project settles at once: look at the head again.
        return started;
      });
      const pump = () => {
        if (runPasses() && !closed && sourceDone && running.length === 0 && waiting.length === 0) {
          closed = true;
          subscriber.complete();
        }
      };

      const upstream = source.subscribe({
        next: (value) => {
          waiting.push(value);
          pump();
        },
        error: (error: unknown) => {
          closed = true;
          subscriber.error(error);
        },
        complete: () => {
          sourceDone = true;
          pump();
        },
      });

      return () => {
        closed = true;
        upstream.unsubscribe();
        for (const value of waiting.drain()) options.onDiscard?.(value);
        for (const slot of running) if (slot.settled && !slot.failed) options.onDiscard?.(slot.value as R);
      };
    });
}

function isPromiseLike<R>(value: R | Promise<R>): value is Promise<R> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
