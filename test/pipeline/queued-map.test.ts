import { describe, it, expect } from 'vitest';
import { Subject, type Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { queuedMap, reentrantPump, type QueuedMapOptions } from '../../pipeline/queued-map.js';
import { thrownBy } from '../support/errors.js';

function testScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** Lets every pending promise callback run (one macrotask turn; no timers involved). */
function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * An async project whose calls the test settles by hand: `settle(n)` resolves input n with
 * `r<n>`, `fail(n, e)` rejects it. Tracks how many calls are in flight and the most ever seen.
 */
function manualProject() {
  const pending = new Map<number, Deferred<string>>();
  const started: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const project = (n: number): Promise<string> => {
    started.push(n);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const d = deferred<string>();
    pending.set(n, d);
    return d.promise.finally(() => inFlight--);
  };
  const take = (n: number): Deferred<string> => {
    const d = pending.get(n);
    if (!d) throw new Error(`test bug: input ${n} was never started`);
    pending.delete(n);
    return d;
  };
  return {
    project,
    started,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    settle: async (n: number) => {
      take(n).resolve(`r${n}`);
      await flushPromises();
    },
    fail: async (n: number, error: unknown) => {
      take(n).reject(error);
      await flushPromises();
    },
  };
}

/** Subscribes and records everything the stream does. */
function record<R>(stream: Observable<R>) {
  const log = { values: [] as R[], error: undefined as unknown, errored: false, completed: false };
  const subscription = stream.subscribe({
    next: (v) => log.values.push(v),
    error: (e: unknown) => {
      log.errored = true;
      log.error = e;
    },
    complete: () => (log.completed = true),
  });
  return { log, subscription };
}

function setup(options: QueuedMapOptions<number, string>) {
  const source = new Subject<number>();
  const work = manualProject();
  const dropped: number[] = [];
  const discarded: (number | string)[] = [];
  const stream = source.pipe(
    queuedMap(work.project, {
      ...options,
      onDrop: (n) => dropped.push(n),
      onDiscard: (v) => discarded.push(v),
    }),
  );
  const { log, subscription } = record(stream);
  return { source, work, dropped, discarded, log, subscription };
}

describe('queuedMap with a synchronous project (marbles)', () => {
  it('maps in order and completes when the source does', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a--b-c---|', { a: 1, b: 2, c: 3 });
      expectObservable(source.pipe(queuedMap((n: number) => n * 10))).toBe('-x--y-z---|', { x: 10, y: 20, z: 30 });
      expectSubscriptions(source.subscriptions).toBe('^---------!');
    });
  });

  it('with concurrency 3 keeps the same order and timing', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-(abc)-d|', { a: 1, b: 2, c: 3, d: 4 });
      expectObservable(source.pipe(queuedMap((n: number) => `v${n}`, { concurrency: 3 }))).toBe('-(abc)-d|', {
        a: 'v1',
        b: 'v2',
        c: 'v3',
        d: 'v4',
      });
      expectSubscriptions(source.subscriptions).toBe('^-------!');
    });
  });

  it('completes at once for an empty source and never for a silent one', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold<number>('|').pipe(queuedMap((n: number) => n))).toBe('|');
      expectObservable(cold<number>('---').pipe(queuedMap((n: number) => n))).toBe('---');
    });
  });

  it('a throwing project errors the stream at its item, after earlier results, and unsubscribes the source', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const boom = new Error('project failed on 2');
      const source = cold('-a-b-c-|', { a: 1, b: 2, c: 3 });
      const project = (n: number) => {
        if (n === 2) throw boom;
        return n * 10;
      };
      expectObservable(source.pipe(queuedMap(project))).toBe('-x-#', { x: 10 }, boom);
      expectSubscriptions(source.subscriptions).toBe('^--!');
    });
  });

  it('passes a source error through', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-#', { a: 1 }, new Error('camera lost'));
      expectObservable(source.pipe(queuedMap((n: number) => n + 1))).toBe('-x-#', { x: 2 }, new Error('camera lost'));
      expectSubscriptions(source.subscriptions).toBe('^--!');
    });
  });

  it('unsubscribing downstream unsubscribes the source at the same frame', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b-c-d-|', { a: 1, b: 2, c: 3, d: 4 });
      expectObservable(source.pipe(queuedMap((n: number) => n)), '^----!').toBe('-a-b-', { a: 1, b: 2 });
      expectSubscriptions(source.subscriptions).toBe('^----!');
    });
  });

  it('handles a subscriber that pushes into the source from next (re-entrant) in order', () => {
    const source = new Subject<number>();
    const seen: number[] = [];
    source.pipe(queuedMap((n: number) => n)).subscribe((n) => {
      seen.push(n);
      if (n < 3) source.next(n + 1);
    });
    source.next(0);
    expect(seen).toEqual([0, 1, 2, 3]);
  });

  it('concurrency 0 throws RangeError', () => {
    const error = thrownBy(() => queuedMap((n: number) => n, { concurrency: 0 }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("queuedMap: 'concurrency' must be an integer >= 1, got 0");
  });

  it('a fractional concurrency throws RangeError', () => {
    const error = thrownBy(() => queuedMap((n: number) => n, { concurrency: 1.5 }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("queuedMap: 'concurrency' must be an integer >= 1, got 1.5");
  });

  it('refuses a queueCapacity of 0 when the operator is built, naming the option', () => {
    expect(() => queuedMap((n: number) => n, { queueCapacity: 0 })).toThrow(new RangeError("queuedMap: 'queueCapacity' must be an integer >= 1 or Infinity, got 0"));
    expect(() => queuedMap((n: number) => n, { queueCapacity: 2.5 })).toThrow(RangeError);
  });
});

describe('queuedMap with an async project (hand-settled promises)', () => {
  it('emits in input order even when item 2 settles before item 1', async () => {
    const { source, work, log } = setup({ concurrency: 2 });
    source.next(1);
    source.next(2);
    expect(work.started).toEqual([1, 2]);
    await work.settle(2);
    expect(log.values).toEqual([]);
    await work.settle(1);
    expect(log.values).toEqual(['r1', 'r2']);
  });

  it('never runs more than `concurrency` projects at once', async () => {
    const concurrency = 3;
    const { source, work, log } = setup({ concurrency });
    for (let n = 1; n <= 10; n++) source.next(n);
    expect(work.started).toEqual([1, 2, 3]);
    expect(work.inFlight).toBe(concurrency);
    // Always settle the newest running project first, so every result arrives out of order.
    const settled = new Set<number>();
    while (settled.size < 10) {
      const running = work.started.filter((n) => !settled.has(n));
      const newest = running[running.length - 1]!;
      settled.add(newest);
      await work.settle(newest);
      expect(work.inFlight).toBeLessThanOrEqual(concurrency);
    }
    expect(work.maxInFlight).toBe(concurrency);
    expect(log.values).toEqual(Array.from({ length: 10 }, (_, i) => `r${i + 1}`));
  });

  it('with concurrency 1 starts the next project only after the previous result left', async () => {
    const { source, work, log } = setup({});
    source.next(1);
    source.next(2);
    expect(work.started).toEqual([1]);
    await work.settle(1);
    expect(log.values).toEqual(['r1']);
    expect(work.started).toEqual([1, 2]);
    expect(work.maxInFlight).toBe(1);
  });

  it('completes only after the last in-flight result, not when the source completes', async () => {
    const { source, work, log } = setup({ concurrency: 2 });
    source.next(1);
    source.next(2);
    source.next(3);
    source.complete();
    await flushPromises();
    expect(log.completed).toBe(false);
    await work.settle(1);
    await work.settle(2);
    expect(log.completed).toBe(false);
    await work.settle(3);
    expect(log.values).toEqual(['r1', 'r2', 'r3']);
    expect(log.completed).toBe(true);
  });

  it('with a full queue drops the oldest waiting input and hands it to onDrop', async () => {
    const { source, work, log, dropped } = setup({ concurrency: 1, queueCapacity: 2 });
    source.next(1); // starts at once
    source.next(2);
    source.next(3); // queue now full: [2, 3]
    expect(dropped).toEqual([]);
    source.next(4); // drops 2
    source.next(5); // drops 3
    expect(dropped).toEqual([2, 3]);
    await work.settle(1);
    await work.settle(4);
    await work.settle(5);
    source.complete();
    expect(work.started).toEqual([1, 4, 5]);
    expect(log.values).toEqual(['r1', 'r4', 'r5']);
    expect(log.completed).toBe(true);
  });

  it('emits the results before a failing item, then its error; later results and inputs are discarded', async () => {
    const { source, work, log, discarded, dropped } = setup({ concurrency: 3 });
    for (const n of [1, 2, 3, 4]) source.next(n);
    const boom = new Error('detector crashed on 2');
    await work.fail(2, boom);
    await work.settle(3);
    expect(log.values).toEqual([]);
    expect(log.errored).toBe(false);
    await work.settle(1);
    expect(log.values).toEqual(['r1']);
    expect(log.errored).toBe(true);
    expect(log.error).toBe(boom);
    expect(log.completed).toBe(false);
    // 4 was still waiting and r3 had settled behind the failure: both handed back for release.
    expect(discarded).toEqual([4, 'r3']);
    expect(dropped).toEqual([]);
    expect(source.observed).toBe(false);
  });

  it('a project that throws synchronously errors the stream in order too', async () => {
    const source = new Subject<number>();
    const first = deferred<string>();
    const boom = new Error('sync throw');
    const { log } = record(
      source.pipe(
        queuedMap(
          (n: number) => {
            if (n === 2) throw boom;
            return first.promise;
          },
          { concurrency: 2 },
        ),
      ),
    );
    source.next(1);
    source.next(2);
    expect(log.errored).toBe(false);
    first.resolve('r1');
    await flushPromises();
    expect(log.values).toEqual(['r1']);
    expect(log.error).toBe(boom);
  });

  it('at unsubscribe hands queued inputs and settled results to onDiscard, and in-flight results when they settle', async () => {
    const { source, work, log, discarded, subscription } = setup({ concurrency: 2 });
    for (const n of [1, 2, 3, 4]) source.next(n);
    await work.settle(2); // settled, but waits behind 1
    expect(log.values).toEqual([]);
    subscription.unsubscribe();
    expect(source.observed).toBe(false);
    expect(discarded).toEqual([3, 4, 'r2']);
    await work.settle(1); // was in flight at unsubscribe
    expect(discarded).toEqual([3, 4, 'r2', 'r1']);
    expect(log.values).toEqual([]);
    expect(work.started).toEqual([1, 2]);
  });

  it('a source error discards waiting inputs and settled results', async () => {
    const { source, work, log, discarded } = setup({ concurrency: 1 });
    source.next(1);
    source.next(2);
    const lost = new Error('camera lost');
    source.error(lost);
    expect(log.error).toBe(lost);
    expect(discarded).toEqual([2]);
    await work.settle(1);
    expect(discarded).toEqual([2, 'r1']);
    expect(log.values).toEqual([]);
  });
});

describe('reentrantPump', () => {
  it('turns a call from inside a pass into one more pass, not a nested one', () => {
    const log: string[] = [];
    let depth = 0;
    let reenter = 2;
    const pump = reentrantPump(() => {
      depth++;
      log.push(`pass at depth ${depth}`);
      // Re-entering twice in one pass still asks for a single extra pass.
      if (reenter > 0) {
        reenter--;
        expect(pump()).toBe(false);
        expect(pump()).toBe(false);
      }
      depth--;
      return false;
    });
    expect(pump()).toBe(true);
    expect(log).toEqual(['pass at depth 1', 'pass at depth 1', 'pass at depth 1']);
  });

  it('runs again while the pass returns true, and is usable after a pass throws', () => {
    let left = 3;
    const pump = reentrantPump(() => --left > 0);
    pump();
    expect(left).toBe(0);
    const failing = reentrantPump(() => {
      throw new Error('downstream failed');
    });
    expect(() => failing()).toThrow('downstream failed');
    expect(() => failing()).toThrow('downstream failed');
  });
});
