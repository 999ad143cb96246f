import { describe, it, expect } from 'vitest';
import { Subject, type Observable } from 'rxjs';
import { BufferPool } from '../../pipeline/buffer-pool.js';
import { SimulatedClock } from '../../pipeline/clock.js';
import { Frame } from '../../pipeline/frame.js';
import { ImageView, packedLength } from '../../pipeline/image.js';
import { HISTOGRAM_RELATIVE_PRECISION, PipelineMetrics } from '../../pipeline/metrics.js';
import { stage } from '../../pipeline/stage.js';
import { NS_PER_MS } from '../../pipeline/time.js';

const WIDTH = 4;
const HEIGHT = 2;
const START_NS = 1_000n * NS_PER_MS;

/** Lets every pending promise callback run (one macrotask turn; no timers involved). */
function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function harness() {
  const clock = new SimulatedClock(START_NS);
  const metrics = new PipelineMetrics();
  const pool = new BufferPool({ name: 'stage-test' });
  const frames: Frame[] = [];
  const makeFrame = (seq: number): Frame => {
    const buffer = pool.acquire(packedLength('rgb8', WIDTH, HEIGHT));
    const frame = new Frame({
      seq,
      tCaptureNs: clock.nowNs(),
      image: ImageView.packed(WIDTH, HEIGHT, 'rgb8', buffer.bytes),
      buffer,
    });
    frames.push(frame);
    return frame;
  };
  return { clock, metrics, pool, frames, makeFrame };
}

/** Subscribes and records everything the stream does. */
function record(stream: Observable<Frame>) {
  const log = { frames: [] as Frame[], error: undefined as unknown, errored: false, completed: false };
  const subscription = stream.subscribe({
    next: (f) => log.frames.push(f),
    error: (e: unknown) => {
      log.errored = true;
      log.error = e;
    },
    complete: () => (log.completed = true),
  });
  return { log, subscription };
}

describe('stage timing', () => {
  it('stamps entry and exit on the frame and records the latency the work took', () => {
    const { clock, metrics, makeFrame } = harness();
    const workMs = 5n;
    const source = new Subject<Frame>();
    const { log } = record(source.pipe(stage('decode', () => clock.advanceBy(workMs * NS_PER_MS), { clock, metrics })));
    source.next(makeFrame(1));
    expect(log.frames).toHaveLength(1);
    expect(log.frames[0]!.stamps).toEqual([{ stage: 'decode', tEnterNs: START_NS, tExitNs: START_NS + workMs * NS_PER_MS }]);
    const latency = metrics.latency('decode');
    expect(latency.count).toBe(1);
    const p50 = latency.quantileMs(0.5);
    expect(Math.abs(p50 - 5) / 5).toBeLessThanOrEqual(HISTOGRAM_RELATIVE_PRECISION);
    expect(latency.summary().maxMs).toBe(5);
  });

  it('records per-frame latencies over many frames', () => {
    const { clock, metrics, makeFrame } = harness();
    const source = new Subject<Frame>();
    // Frame n takes n ms.
    record(source.pipe(stage('detect', (f) => clock.advanceBy(BigInt(f.seq) * NS_PER_MS), { clock, metrics })));
    for (let seq = 1; seq <= 100; seq++) source.next(makeFrame(seq));
    const summary = metrics.latency('detect').summary();
    expect(summary.count).toBe(100);
    expect(summary.meanMs).toBeCloseTo(50.5, 9);
    expect(summary.maxMs).toBe(100);
    expect(Math.abs(summary.p90Ms - 90) / 90).toBeLessThanOrEqual(HISTOGRAM_RELATIVE_PRECISION);
  });

  it('multiple stages append their stamps in order on the shared clock', () => {
    const { clock, metrics, makeFrame } = harness();
    const source = new Subject<Frame>();
    const { log } = record(
      source.pipe(
        stage('decode', () => clock.advanceBy(5n * NS_PER_MS), { clock, metrics }),
        stage('detect', () => clock.advanceBy(12n * NS_PER_MS), { clock, metrics }),
        stage('render', () => clock.advanceBy(3n * NS_PER_MS), { clock, metrics }),
      ),
    );
    source.next(makeFrame(1));
    source.next(makeFrame(2));
    expect(log.frames.map((f) => f.seq)).toEqual([1, 2]);
    const t0 = START_NS;
    expect(log.frames[0]!.stamps).toEqual([
      { stage: 'decode', tEnterNs: t0, tExitNs: t0 + 5n * NS_PER_MS },
      { stage: 'detect', tEnterNs: t0 + 5n * NS_PER_MS, tExitNs: t0 + 17n * NS_PER_MS },
      { stage: 'render', tEnterNs: t0 + 17n * NS_PER_MS, tExitNs: t0 + 20n * NS_PER_MS },
    ]);
    const t1 = t0 + 20n * NS_PER_MS;
    expect(log.frames[1]!.stamps.map((s) => [s.stage, s.tExitNs - s.tEnterNs])).toEqual([
      ['decode', 5n * NS_PER_MS],
      ['detect', 12n * NS_PER_MS],
      ['render', 3n * NS_PER_MS],
    ]);
    expect(log.frames[1]!.stamps[0]!.tEnterNs).toBe(t1);
    expect(metrics.summary().stages).toMatchObject({
      decode: { count: 2, maxMs: 5 },
      detect: { count: 2, maxMs: 12 },
      render: { count: 2, maxMs: 3 },
    });
  });

  it('async work that waits on the clock records the simulated wait', async () => {
    const { clock, metrics, makeFrame } = harness();
    const source = new Subject<Frame>();
    const { log } = record(
      source.pipe(stage('link', () => clock.sleepUntilNs(clock.nowNs() + 7n * NS_PER_MS), { clock, metrics })),
    );
    source.next(makeFrame(1));
    await flushPromises();
    expect(clock.pendingSleepers).toBe(1);
    expect(log.frames).toEqual([]);
    clock.advanceBy(7n * NS_PER_MS - 1n);
    await flushPromises();
    expect(log.frames).toEqual([]);
    clock.advanceBy(1n);
    await flushPromises();
    expect(log.frames).toHaveLength(1);
    const [stamp] = log.frames[0]!.stamps;
    expect(stamp!.tExitNs - stamp!.tEnterNs).toBe(7n * NS_PER_MS);
    expect(metrics.latency('link').summary().maxMs).toBe(7);
  });
});

describe('stage errors and buffer release', () => {
  it("onError 'skip' counts <name>.errors, releases the failed frame and goes on", () => {
    const { clock, metrics, pool, frames, makeFrame } = harness();
    const source = new Subject<Frame>();
    const { log } = record(
      source.pipe(
        stage(
          'detect',
          (f) => {
            if (f.seq === 2) throw new Error('bad frame');
          },
          { clock, metrics, onError: 'skip' },
        ),
      ),
    );
    // All frames exist before any is released, so no pooled handle is re-leased during the test.
    for (const frame of [1, 2, 3].map(makeFrame)) source.next(frame);
    source.complete();
    expect(log.frames.map((f) => f.seq)).toEqual([1, 3]);
    expect(log.errored).toBe(false);
    expect(log.completed).toBe(true);
    expect(metrics.counter('detect.errors')).toBe(1);
    expect(frames[1]!.buffer!.refCount).toBe(0);
    expect(pool.stats.inUse).toBe(2); // frames 1 and 3 now belong to the subscriber
    expect(metrics.latency('detect').count).toBe(2);
    for (const f of log.frames) f.release();
    expect(pool.stats.inUse).toBe(0);
  });

  it("onError 'skip' also handles async work that rejects", async () => {
    const { clock, metrics, pool, makeFrame } = harness();
    const source = new Subject<Frame>();
    const { log } = record(
      source.pipe(
        stage('detect', (f) => (f.seq === 1 ? Promise.reject(new Error('no')) : Promise.resolve()), {
          clock,
          metrics,
          onError: 'skip',
        }),
      ),
    );
    source.next(makeFrame(1));
    source.next(makeFrame(2));
    await flushPromises();
    expect(log.frames.map((f) => f.seq)).toEqual([2]);
    expect(metrics.counter('detect.errors')).toBe(1);
    expect(pool.stats.inUse).toBe(1);
  });

  it("onError 'fail' (the default) errors the stream with the original error and releases the frame", () => {
    const { clock, metrics, pool, frames, makeFrame } = harness();
    const boom = new Error('model crashed');
    const source = new Subject<Frame>();
    const { log } = record(
      source.pipe(
        stage(
          'detect',
          (f) => {
            if (f.seq === 2) throw boom;
          },
          { clock, metrics },
        ),
      ),
    );
    for (const frame of [1, 2].map(makeFrame)) source.next(frame);
    expect(log.frames.map((f) => f.seq)).toEqual([1]);
    expect(log.errored).toBe(true);
    expect(log.error).toBe(boom);
    expect(frames[1]!.buffer!.refCount).toBe(0);
    expect(pool.stats.inUse).toBe(1); // only frame 1, held by the subscriber
    expect(metrics.counter('detect.errors')).toBe(0);
    expect(source.observed).toBe(false);
  });

  it("onError 'fail' wraps a thrown non-Error in an Error naming the stage", () => {
    const { clock, metrics, pool, makeFrame } = harness();
    const source = new Subject<Frame>();
    const { log } = record(
      source.pipe(
        stage(
          'detect',
          () => {
            throw 'tensor shape mismatch';
          },
          { clock, metrics, onError: 'fail' },
        ),
      ),
    );
    source.next(makeFrame(1));
    const error = log.error as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe("stage 'detect': tensor shape mismatch");
    expect(pool.stats.inUse).toBe(0);
  });

  it("onError 'fail' with async work releases the failed frame and every frame behind it", async () => {
    const { clock, metrics, pool, makeFrame } = harness();
    const pending = new Map<number, Deferred>();
    const source = new Subject<Frame>();
    const { log } = record(
      source.pipe(
        stage(
          'detect',
          (f) => {
            const d = deferred();
            pending.set(f.seq, d);
            return d.promise;
          },
          { clock, metrics, concurrency: 2 },
        ),
      ),
    );
    for (const seq of [1, 2, 3, 4]) source.next(makeFrame(seq)); // 1, 2 run; 3, 4 wait
    const boom = new Error('gpu lost');
    pending.get(2)!.resolve();
    await flushPromises();
    pending.get(1)!.reject(boom);
    await flushPromises();
    expect(log.frames).toEqual([]);
    expect(log.error).toBe(boom);
    expect(pool.stats.inUse).toBe(0);
  });

  it('frames dropped by a full queue are released and counted as <name>.drops', async () => {
    const { clock, metrics, pool, frames, makeFrame } = harness();
    const pending = new Map<number, Deferred>();
    const source = new Subject<Frame>();
    const { log } = record(
      source.pipe(
        stage(
          'detect',
          (f) => {
            const d = deferred();
            pending.set(f.seq, d);
            return d.promise;
          },
          { clock, metrics, queueCapacity: 1 },
        ),
      ),
    );
    for (const frame of [1, 2, 3, 4].map(makeFrame)) source.next(frame); // 1 runs; 2 and 3 are dropped in turn
    expect(metrics.counter('detect.drops')).toBe(2);
    expect(frames[1]!.buffer!.refCount).toBe(0);
    expect(frames[2]!.buffer!.refCount).toBe(0);
    expect(pool.stats.inUse).toBe(2);
    pending.get(1)!.resolve();
    await flushPromises();
    pending.get(4)!.resolve();
    await flushPromises();
    expect([...pending.keys()]).toEqual([1, 4]);
    expect(log.frames.map((f) => f.seq)).toEqual([1, 4]);
    expect(pool.stats.inUse).toBe(2);
  });

  it('unsubscribing releases queued frames and in-flight frames once their work ends', async () => {
    const { clock, metrics, pool, makeFrame } = harness();
    const pending = new Map<number, Deferred>();
    const source = new Subject<Frame>();
    const { log, subscription } = record(
      source.pipe(
        stage(
          'detect',
          (f) => {
            const d = deferred();
            pending.set(f.seq, d);
            return d.promise;
          },
          { clock, metrics, concurrency: 2 },
        ),
      ),
    );
    for (const seq of [1, 2, 3]) source.next(makeFrame(seq));
    pending.get(2)!.resolve(); // done, but waits behind 1
    await flushPromises();
    subscription.unsubscribe();
    expect(pool.stats.inUse).toBe(1); // 2 (settled) and 3 (queued) released; 1 still in its work
    pending.get(1)!.resolve();
    await flushPromises();
    expect(pool.stats.inUse).toBe(0);
    expect(log.frames).toEqual([]);
  });

  it('in steady state the pool allocates no new frame buffers', () => {
    const { clock, metrics, pool, makeFrame } = harness();
    const source = new Subject<Frame>();
    source
      .pipe(
        stage('decode', () => clock.advanceBy(NS_PER_MS), { clock, metrics }),
        stage('detect', () => clock.advanceBy(NS_PER_MS), { clock, metrics }),
      )
      .subscribe((f) => f.release());
    for (let seq = 0; seq < 500; seq++) source.next(makeFrame(seq));
    expect(pool.stats).toMatchObject({ allocations: 1, reuses: 499, inUse: 0 });
  });
});
