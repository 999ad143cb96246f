import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../pipeline/clock.js';
import { PipelineMetrics } from '../../pipeline/metrics.js';
import {
  AcceleratorScheduler,
  BUSY_TIME_CONSTANT_MS,
  DEFAULT_MAX_QUEUED,
  DEGRADATION_STEPS,
  DEGRADE_AFTER_EVALUATIONS,
  DEGRADE_BUSY_FRACTION,
  DEGRADE_SAFETY_MISS_RATE,
  DEGRADE_SETTLE_MS,
  DegradationPolicy,
  PRIORITY_CLASSES,
  RECOVER_AFTER_EVALUATIONS,
  RECOVER_BUSY_FRACTION,
  type Degradation,
  type JobOutcome,
  type JobSpec,
  type PriorityClass,
  type SchedulerLoad,
  type SchedulerOptions,
  SAFETY_IDLE_PERIODS,
} from '../../pipeline/scheduler.js';
import { NS_PER_MS } from '../../pipeline/time.js';
import { thrownBy } from '../support/errors.js';

const START_NS = 1_000n * NS_PER_MS;

/** Lets every pending promise callback run (one macrotask turn; no timers involved). */
function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function ms(n: number): bigint {
  return BigInt(n) * NS_PER_MS;
}

function harness(options: Partial<SchedulerOptions> = {}) {
  const clock = new SimulatedClock(START_NS);
  const metrics = new PipelineMetrics();
  const scheduler = new AcceleratorScheduler({ clock, metrics, ...options });
  /** Order in which job work started. */
  const started: string[] = [];
  /** Work that takes `runMs` of simulated time and returns `label`. */
  const timed =
    (label: string, runMs: number) =>
    (): Promise<string> => {
      started.push(label);
      return clock.sleepUntilNs(clock.nowNs() + ms(runMs)).then(() => label);
    };
  /** Work the test finishes by hand with `finish(label)` or `fail(label, error)`. */
  const pending = new Map<string, { resolve: (v: string) => void; reject: (e: unknown) => void }>();
  const manual =
    (label: string) =>
    (): Promise<string> => {
      started.push(label);
      return new Promise<string>((resolve, reject) => pending.set(label, { resolve, reject }));
    };
  const take = (label: string) => {
    const p = pending.get(label);
    if (!p) throw new Error(`test bug: job '${label}' never started`);
    pending.delete(label);
    return p;
  };
  const finish = async (label: string) => {
    take(label).resolve(label);
    await flushPromises();
  };
  const fail = async (label: string, error: unknown) => {
    take(label).reject(error);
    await flushPromises();
  };
  /** Advances the clock by `n` ms and lets the woken jobs' callbacks run. */
  const advance = async (n: number) => {
    clock.advanceBy(ms(n));
    await flushPromises();
  };
  /** Runs `count` jobs named `name` of `runMs` each, one after another, so the scheduler learns their run time. */
  const teach = async (name: string, priority: PriorityClass, runMs: number, count = 3) => {
    for (let i = 0; i < count; i++) {
      const outcome = scheduler.submit({ name, priority, deadlineMs: 10 * runMs }, timed(`${name}-teach`, runMs));
      await advance(runMs);
      expect((await outcome).status).toBe('done');
    }
  };
  return { clock, metrics, scheduler, started, timed, manual, finish, fail, advance, teach };
}

/** Records each outcome as it settles, so a test can see which are still pending. */
function track<T>(promise: Promise<JobOutcome<T>>) {
  const state: { outcome?: JobOutcome<T>; error?: unknown } = {};
  promise.then(
    (o) => (state.outcome = o),
    (e: unknown) => (state.error = e),
  );
  return state;
}

const spec = (name: string, priority: PriorityClass, deadlineMs = 1_000, extra: Partial<JobSpec> = {}): JobSpec => ({
  name,
  priority,
  deadlineMs,
  ...extra,
});

describe('AcceleratorScheduler ordering', () => {
  it('serves the highest class first: a background job queued before a safety job runs after it', async () => {
    const h = harness();
    const first = track(h.scheduler.submit(spec('busy', 'normal'), h.manual('busy')));
    const background = track(h.scheduler.submit(spec('record', 'background'), h.manual('record')));
    const safety = track(h.scheduler.submit(spec('detect', 'safety'), h.manual('detect')));
    expect(h.started).toEqual(['busy']);
    await h.finish('busy');
    expect(h.started).toEqual(['busy', 'detect']);
    expect(h.scheduler.load.queued.background).toBe(1);
    await h.finish('detect');
    expect(h.started).toEqual(['busy', 'detect', 'record']);
    await h.finish('record');
    expect(first.outcome?.status).toBe('done');
    expect(safety.outcome).toMatchObject({ status: 'done', value: 'detect' });
    expect(background.outcome).toMatchObject({ status: 'done', value: 'record' });
  });

  it('is FIFO within a class and runs one job at a time by default', async () => {
    const h = harness({ maxQueued: { high: 3 } });
    void h.scheduler.submit(spec('busy', 'background'), h.manual('busy'));
    for (const label of ['l1', 'l2', 'l3']) void h.scheduler.submit(spec('lanes', 'high'), h.manual(label));
    expect(h.scheduler.load.running).toBe(1);
    await h.finish('busy');
    await h.finish('l1');
    await h.finish('l2');
    expect(h.started).toEqual(['busy', 'l1', 'l2', 'l3']);
    expect(h.scheduler.load.running).toBe(1);
  });

  it('runs `slots` jobs at once', async () => {
    const h = harness({ slots: 2 });
    for (const label of ['a', 'b', 'c']) void h.scheduler.submit(spec('job', 'normal'), h.manual(label));
    expect(h.started).toEqual(['a', 'b']);
    expect(h.scheduler.load).toMatchObject({ running: 2, queued: { normal: 1 } });
    await h.finish('b');
    expect(h.started).toEqual(['a', 'b', 'c']);
  });
});

describe('AcceleratorScheduler admission', () => {
  it('rejects a normal job that cannot meet its deadline behind running and queued work, at the limit exactly', async () => {
    const h = harness({ maxQueued: { normal: 4 } });
    await h.teach('isp', 'normal', 30);
    await h.advance(20 * BUSY_TIME_CONSTANT_MS); // no higher-class share left to stretch waits
    void h.scheduler.submit(spec('isp', 'normal'), h.timed('running', 30)); // 30 ms left
    await h.advance(10); // 20 ms left
    void h.scheduler.submit(spec('isp', 'normal'), h.timed('queued', 30)); // +30 ms ahead
    // Finish estimate: 20 (running) + 30 (queued) + 30 (own) = 80 ms from now.
    const tooTight = await h.scheduler.submit(spec('isp', 'normal', 79.9), h.timed('late', 30));
    expect(tooTight).toEqual({ status: 'rejected', reason: 'admission', waitMs: 0 });
    const justFits = track(h.scheduler.submit(spec('isp', 'normal', 80), h.timed('fits', 30)));
    await h.advance(20);
    await h.advance(30);
    await h.advance(30);
    expect(justFits.outcome).toMatchObject({ status: 'done', late: false, waitMs: 50, runMs: 30 });
    expect(h.metrics.counter('scheduler.normal.rejected.admission')).toBe(1);
  });

  it('counts the release time: input captured earlier has less time left', async () => {
    const h = harness();
    await h.teach('lanes', 'high', 30);
    const tReleaseNs = h.clock.nowNs() - ms(15);
    const outcome = await h.scheduler.submit(spec('lanes', 'high', 40, { tReleaseNs }), h.timed('lanes', 30));
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'admission' });
  });

  it('does not count lower-class queued work as ahead of a job', async () => {
    const h = harness();
    await h.teach('isp', 'normal', 30);
    await h.teach('record', 'background', 100);
    await h.advance(20 * BUSY_TIME_CONSTANT_MS);
    void h.scheduler.submit(spec('isp', 'normal'), h.timed('running', 30));
    void h.scheduler.submit(spec('record', 'background'), h.timed('record', 100));
    const outcome = track(h.scheduler.submit(spec('isp', 'normal', 60), h.timed('fits', 30)));
    await h.advance(30);
    await h.advance(30);
    expect(outcome.outcome).toMatchObject({ status: 'done', late: false });
  });

  it('stretches the wait by the recent share of higher classes (1 / (1 - u))', async () => {
    const h = harness();
    await h.teach('isp', 'normal', 30);
    await h.advance(20 * BUSY_TIME_CONSTANT_MS);
    // One safety job held for one time constant: the safety share becomes 1 - 1/e.
    void h.scheduler.submit(spec('detect', 'safety', 2 * BUSY_TIME_CONSTANT_MS), h.timed('detect', 2 * BUSY_TIME_CONSTANT_MS));
    await h.advance(BUSY_TIME_CONSTANT_MS);
    void h.scheduler.submit(spec('isp', 'normal', 5_000), h.manual('ahead'));
    // detect's run time is unknown (0 ms): only the queued isp (30 ms) is ahead; stretched by e.
    const withoutStretchMs = 30 + 30;
    const withStretchMs = 30 * Math.E + 30;
    const rejected = await h.scheduler.submit(spec('isp', 'normal', (withoutStretchMs + withStretchMs) / 2), h.timed('x', 30));
    expect(rejected).toMatchObject({ status: 'rejected', reason: 'admission' });
    const admitted = track(h.scheduler.submit(spec('isp', 'normal', withStretchMs + 1), h.timed('y', 30)));
    await flushPromises();
    expect(admitted.outcome).toBeUndefined(); // queued, not rejected
    expect(h.scheduler.load.queued.normal).toBe(2);
  });

  it('never rejects a safety job by admission', async () => {
    const h = harness();
    await h.teach('detect', 'safety', 50);
    void h.scheduler.submit(spec('detect', 'safety'), h.timed('running', 50));
    const outcome = track(h.scheduler.submit(spec('detect', 'safety', 1), h.timed('tight', 50)));
    await h.advance(50);
    await h.advance(50);
    expect(outcome.outcome).toMatchObject({ status: 'done', late: true, waitMs: 50, runMs: 50 });
    expect(h.metrics.counter('scheduler.safety.rejected.admission')).toBe(0);
    expect(h.metrics.counter('scheduler.safety.late')).toBe(1);
  });
});

describe('AcceleratorScheduler safety slack for background work', () => {
  /** Safety jobs of `runMs` arriving every `periodMs`, `count` of them; returns their waits. */
  async function safetyStream(h: ReturnType<typeof harness>, periodMs: number, runMs: number, count: number, onEach?: (k: number) => void) {
    const waits: number[] = [];
    for (let k = 0; k < count; k++) {
      const outcome = h.scheduler.submit(spec('detect', 'safety', periodMs), h.timed(`detect-${k}`, runMs));
      onEach?.(k);
      // In two steps, so the job finishes (and the scheduler looks at the gap) at its own end time.
      await h.advance(runMs);
      await h.advance(periodMs - runMs);
      const done = await outcome;
      if (done.status === 'done') waits.push(done.waitMs);
    }
    return waits;
  }

  it("holds a background job that would still run when the next frame's safety job arrives, and runs it once safety work goes quiet", async () => {
    const h = harness();
    await h.teach('compress', 'background', 20);
    let background: ReturnType<typeof track<string>> | undefined;
    // 40 ms frames, 30 ms detections: a 10 ms gap, too short for 20 ms of background work.
    const waits = await safetyStream(h, 40, 30, 6, (k) => {
      if (k === 2) background = track(h.scheduler.submit(spec('compress', 'background', 10_000), h.timed('compress', 20)));
    });
    expect(waits.every((w) => w === 0)).toBe(true);
    expect(h.started.filter((l) => l === 'compress')).toEqual([]);
    expect(h.metrics.counter('scheduler.background.heldForSafety')).toBeGreaterThan(0);
    // No safety arrival for SAFETY_IDLE_PERIODS periods: the held job runs without any new event.
    await h.advance(40 * SAFETY_IDLE_PERIODS);
    await h.advance(20);
    expect(background?.outcome).toMatchObject({ status: 'done', value: 'compress' });
  });

  it('runs background work in a gap long enough for it, between safety jobs', async () => {
    const h = harness();
    await h.teach('compress', 'background', 20);
    let background: ReturnType<typeof track<string>> | undefined;
    // 100 ms frames, 30 ms detections: a 70 ms gap fits 20 ms of background work.
    const waits = await safetyStream(h, 100, 30, 4, (k) => {
      if (k === 1) background = track(h.scheduler.submit(spec('compress', 'background', 10_000), h.timed('compress', 20)));
    });
    expect(background?.outcome).toMatchObject({ status: 'done', value: 'compress' });
    expect(waits.every((w) => w === 0)).toBe(true);
  });
});

describe('AcceleratorScheduler expiry and bounded queues', () => {
  it('drops expired queued jobs when a slot frees, except safety, which runs and counts late', async () => {
    const h = harness();
    void h.scheduler.submit(spec('busy', 'background'), h.manual('busy'));
    const normal = track(h.scheduler.submit(spec('isp', 'normal', 10), h.manual('isp')));
    const safety = track(h.scheduler.submit(spec('detect', 'safety', 10), h.manual('detect')));
    await h.advance(20);
    await h.finish('busy');
    expect(normal.outcome).toEqual({ status: 'rejected', reason: 'expired', waitMs: 20 });
    expect(h.started).toEqual(['busy', 'detect']);
    await h.finish('detect');
    expect(safety.outcome).toMatchObject({ status: 'done', late: true, waitMs: 20 });
    expect(h.metrics.counter('scheduler.normal.rejected.expired')).toBe(1);
    expect(h.metrics.counter('scheduler.safety.late')).toBe(1);
    expect(h.metrics.counter('scheduler.safety.rejected.expired')).toBe(0);
  });

  it('expires a job that would start exactly at its deadline, not one that starts 1 ns before', async () => {
    const h = harness({ maxQueued: { normal: 4 } });
    void h.scheduler.submit(spec('busy', 'high'), h.manual('busy'));
    const atDeadline = track(h.scheduler.submit(spec('isp', 'normal', 10), h.manual('at')));
    h.clock.advanceBy(ms(1));
    const beforeDeadline = track(h.scheduler.submit(spec('isp', 'normal', 10), h.manual('before')));
    h.clock.advanceBy(ms(9)); // 'at' is due now; 'before' 1 ms later
    await h.finish('busy');
    expect(atDeadline.outcome).toMatchObject({ status: 'rejected', reason: 'expired' });
    expect(h.started).toEqual(['busy', 'before']);
    expect(beforeDeadline.outcome).toBeUndefined();
  });

  it('a full queue rejects the oldest job of that class (freshest data wins), for safety too', async () => {
    const h = harness({ maxQueued: { normal: 2, safety: 1 } });
    void h.scheduler.submit(spec('busy', 'high'), h.manual('busy'));
    const n1 = track(h.scheduler.submit(spec('isp', 'normal'), h.manual('n1')));
    const n2 = track(h.scheduler.submit(spec('isp', 'normal'), h.manual('n2')));
    const s1 = track(h.scheduler.submit(spec('detect', 'safety'), h.manual('s1')));
    await h.advance(5);
    const n3 = track(h.scheduler.submit(spec('isp', 'normal'), h.manual('n3')));
    const s2 = track(h.scheduler.submit(spec('detect', 'safety'), h.manual('s2')));
    await flushPromises();
    expect(n1.outcome).toEqual({ status: 'rejected', reason: 'queue-full', waitMs: 5 });
    expect(s1.outcome).toEqual({ status: 'rejected', reason: 'queue-full', waitMs: 5 });
    expect(n2.outcome).toBeUndefined();
    await h.finish('busy');
    await h.finish('s2');
    await h.finish('n2');
    await h.finish('n3');
    expect(h.started).toEqual(['busy', 's2', 'n2', 'n3']);
    expect([n2.outcome?.status, n3.outcome?.status, s2.outcome?.status]).toEqual(['done', 'done', 'done']);
    expect(h.metrics.counter('scheduler.normal.rejected.queue-full')).toBe(1);
    expect(h.metrics.counter('scheduler.safety.rejected.queue-full')).toBe(1);
  });

  it('uses DEFAULT_MAX_QUEUED when not configured', () => {
    const h = harness();
    expect(h.scheduler.maxQueued).toEqual(DEFAULT_MAX_QUEUED);
    expect(DEFAULT_MAX_QUEUED).toEqual({ safety: 4, high: 4, normal: 2, background: 2 });
  });
});

describe('AcceleratorScheduler errors and close', () => {
  it('a throwing job rejects its promise with that error, frees the slot and the next job runs', async () => {
    const h = harness();
    const boom = new Error('detector failed');
    const failed = track(h.scheduler.submit(spec('detect', 'safety'), h.manual('bad')));
    const next = track(h.scheduler.submit(spec('lanes', 'high'), h.manual('next')));
    await h.fail('bad', boom);
    expect(failed.error).toBe(boom); // settled already: nothing waits on a hung promise
    expect(failed.outcome).toBeUndefined();
    expect(h.started).toEqual(['bad', 'next']);
    await h.finish('next');
    expect(next.outcome).toMatchObject({ status: 'done', value: 'next' });
    expect(h.metrics.counter('scheduler.safety.errors')).toBe(1);
    expect(h.scheduler.stats.safety).toEqual({ submitted: 1, done: 0, late: 0, rejected: 0, errors: 1 });
  });

  it('a job whose work throws synchronously rejects too, and nothing hangs', async () => {
    const h = harness();
    const boom = new TypeError('bad tensor');
    const failing = track(
      h.scheduler.submit(spec('detect', 'safety'), () => {
        throw boom;
      }),
    );
    const next = track(h.scheduler.submit(spec('lanes', 'high'), () => Promise.resolve(7)));
    await flushPromises();
    expect(failing.error).toBe(boom);
    expect(next.outcome).toMatchObject({ status: 'done', value: 7 });
    expect(h.scheduler.load.running).toBe(0);
  });

  it('close() rejects queued jobs as closed, lets the running one finish and refuses new work', async () => {
    const h = harness();
    const running = track(h.scheduler.submit(spec('detect', 'safety'), h.manual('running')));
    const queued = track(h.scheduler.submit(spec('isp', 'normal'), h.manual('queued')));
    h.scheduler.close();
    await flushPromises();
    expect(queued.outcome).toEqual({ status: 'rejected', reason: 'closed', waitMs: 0 });
    await h.finish('running');
    expect(running.outcome).toMatchObject({ status: 'done' });
    expect(h.started).toEqual(['running']);
    const error = thrownBy(() => h.scheduler.submit(spec('isp', 'normal'), h.manual('after')));
    expect(error.name).toBe('Error');
    expect(error.message).toBe("AcceleratorScheduler.submit: scheduler is closed (job 'isp')");
    expect(h.metrics.counter('scheduler.normal.rejected.closed')).toBe(1);
  });
});

describe('AcceleratorScheduler metrics and load', () => {
  it('counts every decision and records wait and run latencies per class', async () => {
    const h = harness({ maxQueued: { background: 1 } });
    const tight = h.scheduler.submit(spec('detect', 'safety', 5), h.timed('detect', 10));
    const lanes = h.scheduler.submit(spec('lanes', 'high', 100), h.timed('lanes', 20));
    void h.scheduler.submit(spec('record', 'background'), h.timed('r1', 1));
    void h.scheduler.submit(spec('record', 'background'), h.timed('r2', 1));
    await h.advance(10);
    await h.advance(20);
    await h.advance(1);
    expect(await tight).toMatchObject({ status: 'done', late: true, waitMs: 0, runMs: 10 });
    expect(await lanes).toMatchObject({ status: 'done', late: false, waitMs: 10, runMs: 20 });
    const counters = h.metrics.summary().counters;
    expect(counters).toEqual({
      'scheduler.safety.submitted': 1,
      'scheduler.safety.done': 1,
      'scheduler.safety.late': 1,
      'scheduler.high.submitted': 1,
      'scheduler.high.done': 1,
      'scheduler.background.submitted': 2,
      'scheduler.background.rejected.queue-full': 1,
      'scheduler.background.done': 1,
    });
    const stages = h.metrics.summary().stages;
    expect(stages['scheduler.safety.run']).toMatchObject({ count: 1, maxMs: 10 });
    expect(stages['scheduler.high.wait']).toMatchObject({ count: 1, maxMs: 10 });
    expect(stages['scheduler.background.wait']).toMatchObject({ count: 1, maxMs: 30 });
    expect(h.scheduler.stats.background).toEqual({ submitted: 2, done: 1, late: 0, rejected: 1, errors: 0 });
    const load = h.scheduler.load;
    expect(load.recentWaitMs).toEqual({ safety: 0, high: 10, normal: 0, background: 30 });
    expect(load.missRate).toEqual({ safety: 1, high: 0, normal: 0, background: 0.5 });
  });

  it('busyFraction rises under continuous work and decays when idle', async () => {
    const h = harness();
    expect(h.scheduler.load.busyFraction).toBe(0);
    void h.scheduler.submit(spec('detect', 'safety', 10_000), h.timed('a', BUSY_TIME_CONSTANT_MS));
    void h.scheduler.submit(spec('detect', 'safety', 10_000), h.timed('b', 2 * BUSY_TIME_CONSTANT_MS));
    await h.advance(BUSY_TIME_CONSTANT_MS);
    expect(h.scheduler.load.busyFraction).toBeCloseTo(1 - Math.exp(-1), 9);
    await h.advance(2 * BUSY_TIME_CONSTANT_MS);
    const busy = 1 - Math.exp(-3);
    expect(h.scheduler.load.busyFraction).toBeCloseTo(busy, 9);
    expect(h.scheduler.load.running).toBe(0);
    await h.advance(BUSY_TIME_CONSTANT_MS);
    expect(h.scheduler.load.busyFraction).toBeCloseTo(busy * Math.exp(-1), 9);
  });
});

describe('AcceleratorScheduler bad input', () => {
  const h = harness();
  const work = () => Promise.resolve(0);

  it('refuses an unknown priority', () => {
    const error = thrownBy(() => h.scheduler.submit({ name: 'x', priority: 'urgent' as PriorityClass, deadlineMs: 10 }, work));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("AcceleratorScheduler.submit: 'priority' of job 'x' must be one of safety, high, normal, background, got 'urgent'");
  });

  it.each([0, -1, Number.NaN, Infinity])('refuses deadlineMs %s', (deadlineMs) => {
    const error = thrownBy(() => h.scheduler.submit({ name: 'x', priority: 'normal', deadlineMs }, work));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe(`AcceleratorScheduler.submit: 'deadlineMs' of job 'x' must be a finite number > 0, got ${deadlineMs}`);
  });

  it('refuses an empty name, a non-bigint release time and a missing work function', () => {
    expect(thrownBy(() => h.scheduler.submit({ name: '', priority: 'normal', deadlineMs: 10 }, work)).message).toBe(
      "AcceleratorScheduler.submit: 'name' must be a non-empty string, got ''",
    );
    const release = thrownBy(() => h.scheduler.submit({ name: 'x', priority: 'normal', deadlineMs: 10, tReleaseNs: 5 as unknown as bigint }, work));
    expect(release.name).toBe('TypeError');
    expect(release.message).toBe("AcceleratorScheduler.submit: 'tReleaseNs' of job 'x' must be a bigint (ns), got number");
    const missing = thrownBy(() => h.scheduler.submit({ name: 'x', priority: 'normal', deadlineMs: 10 }, undefined as unknown as () => Promise<number>));
    expect(missing.name).toBe('TypeError');
    expect(h.scheduler.stats.normal.submitted).toBe(0);
  });

  it('refuses bad constructor options', () => {
    const clock = new SimulatedClock();
    const metrics = new PipelineMetrics();
    expect(thrownBy(() => new AcceleratorScheduler({ clock, metrics, slots: 0 })).message).toBe(
      "AcceleratorScheduler: 'slots' must be an integer >= 1, got 0",
    );
    expect(thrownBy(() => new AcceleratorScheduler({ clock, metrics, maxQueued: { normal: 0 } })).message).toBe(
      "AcceleratorScheduler: 'maxQueued.normal' must be an integer >= 1, got 0",
    );
    const unknown = thrownBy(() => new AcceleratorScheduler({ clock, metrics, maxQueued: { gpu: 2 } as unknown as Partial<Record<PriorityClass, number>> }));
    expect(unknown.name).toBe('RangeError');
    expect(unknown.message).toBe("AcceleratorScheduler: 'maxQueued' keys must be one of safety, high, normal, background, got 'gpu'");
  });

  it('PRIORITY_CLASSES lists the classes highest first', () => {
    expect(PRIORITY_CLASSES).toEqual(['safety', 'high', 'normal', 'background']);
  });
});

// ---------------------------------------------------------------------------------------------

function loadOf(busyFraction: number, safetyMissRate = 0): SchedulerLoad {
  const zero = { safety: 0, high: 0, normal: 0, background: 0 };
  return { busyFraction, queued: zero, running: 0, recentWaitMs: zero, missRate: { ...zero, safety: safetyMissRate } };
}

function policyHarness() {
  const metrics = new PipelineMetrics();
  const changes: { next: Degradation; previous: Degradation; tNs: bigint }[] = [];
  const policy = new DegradationPolicy({ metrics, onChange: (next, previous, tNs) => changes.push({ next, previous, tNs }) });
  let tNs = START_NS;
  /** One evaluation per 33 ms frame. */
  const evaluate = (load: SchedulerLoad) => policy.update(load, (tNs += ms(33)));
  /** Lets the settle time after a change pass without evaluating. */
  const settle = () => (tNs += ms(DEGRADE_SETTLE_MS));
  const overloaded = loadOf(DEGRADE_BUSY_FRACTION);
  const calm = loadOf(RECOVER_BUSY_FRACTION);
  return { metrics, changes, policy, evaluate, settle, overloaded, calm };
}

describe('DegradationPolicy', () => {
  it('steps down one level only after DEGRADE_AFTER_EVALUATIONS consecutive overloaded evaluations', () => {
    const p = policyHarness();
    for (let i = 0; i < DEGRADE_AFTER_EVALUATIONS - 1; i++) expect(p.evaluate(p.overloaded).level).toBe(0);
    expect(p.evaluate(loadOf(DEGRADE_BUSY_FRACTION - 0.01)).level).toBe(0); // in the band: the streak restarts
    for (let i = 0; i < DEGRADE_AFTER_EVALUATIONS - 1; i++) expect(p.evaluate(p.overloaded).level).toBe(0);
    expect(p.evaluate(p.overloaded)).toEqual({ level: 1, detectEveryN: 1, ispMode: 'half', backgroundPaused: true });
    expect(p.changes).toHaveLength(1);
    expect(p.changes[0]!.previous).toEqual(DEGRADATION_STEPS[0]);
  });

  it('does not step again within DEGRADE_SETTLE_MS of a change', () => {
    const p = policyHarness();
    for (let i = 0; i < DEGRADE_AFTER_EVALUATIONS; i++) p.evaluate(p.overloaded);
    expect(p.policy.current.level).toBe(1);
    // Frames every 33 ms: the last one inside the settle time is at 990 ms.
    const evaluationsInSettle = Math.ceil(DEGRADE_SETTLE_MS / 33) - 1;
    expect(evaluationsInSettle).toBeGreaterThan(DEGRADE_AFTER_EVALUATIONS);
    for (let i = 0; i < evaluationsInSettle; i++) expect(p.evaluate(p.overloaded).level).toBe(1);
    for (let i = 0; i < DEGRADE_AFTER_EVALUATIONS - 1; i++) expect(p.evaluate(p.overloaded).level).toBe(1);
    expect(p.evaluate(p.overloaded).level).toBe(2);
  });

  it('degrades lower classes first: the detector is thinned only once the ISP is skipped', () => {
    const p = policyHarness();
    const seen: Degradation[] = [p.policy.current];
    for (let step = 0; step < DEGRADATION_STEPS.length + 1; step++) {
      for (let i = 0; i < DEGRADE_AFTER_EVALUATIONS; i++) p.evaluate(p.overloaded);
      seen.push(p.policy.current);
      p.settle();
    }
    expect(seen.map((d) => [d.level, d.ispMode, d.detectEveryN, d.backgroundPaused])).toEqual([
      [0, 'full', 1, false],
      [1, 'half', 1, true],
      [2, 'skip', 1, true],
      [3, 'skip', 2, true],
      [3, 'skip', 3, true],
      [3, 'skip', 3, true], // the last step holds
      [3, 'skip', 3, true],
    ]);
    for (const d of DEGRADATION_STEPS) if (d.detectEveryN > 1) expect(d.ispMode).toBe('skip');
    expect(p.metrics.counter('scheduler.degrade.level1')).toBe(1);
    expect(p.metrics.counter('scheduler.degrade.level2')).toBe(1);
    expect(p.metrics.counter('scheduler.degrade.level3')).toBe(2);
  });

  it('degrades on the safety miss rate alone, above DEGRADE_SAFETY_MISS_RATE', () => {
    const p = policyHarness();
    for (let i = 0; i < 3 * DEGRADE_AFTER_EVALUATIONS; i++) p.evaluate(loadOf(0.1, DEGRADE_SAFETY_MISS_RATE));
    expect(p.policy.current.level).toBe(0);
    for (let i = 0; i < DEGRADE_AFTER_EVALUATIONS; i++) p.evaluate(loadOf(0.1, DEGRADE_SAFETY_MISS_RATE + 0.01));
    expect(p.policy.current.level).toBe(1);
  });

  it('recovers one step at a time after RECOVER_AFTER_EVALUATIONS calm evaluations, not in the band', () => {
    const p = policyHarness();
    for (let step = 0; step < 3; step++) {
      for (let i = 0; i < DEGRADE_AFTER_EVALUATIONS; i++) p.evaluate(p.overloaded);
      p.settle();
    }
    expect(p.policy.current).toMatchObject({ level: 3, detectEveryN: 2 });
    for (let i = 0; i < 5 * RECOVER_AFTER_EVALUATIONS; i++) p.evaluate(loadOf(RECOVER_BUSY_FRACTION + 0.01));
    expect(p.policy.current.level).toBe(3);
    for (let i = 0; i < RECOVER_AFTER_EVALUATIONS - 1; i++) p.evaluate(p.calm);
    expect(p.policy.current.level).toBe(3);
    expect(p.evaluate(p.calm)).toMatchObject({ level: 2, ispMode: 'skip', detectEveryN: 1 });
    p.settle();
    for (let i = 0; i < RECOVER_AFTER_EVALUATIONS; i++) p.evaluate(p.calm);
    expect(p.policy.current).toMatchObject({ level: 1, ispMode: 'half' });
    p.settle();
    for (let i = 0; i < RECOVER_AFTER_EVALUATIONS; i++) p.evaluate(p.calm);
    expect(p.policy.current).toEqual(DEGRADATION_STEPS[0]);
    expect(p.changes.map((c) => c.next.level)).toEqual([1, 2, 3, 2, 1, 0]);
    expect(p.metrics.counter('scheduler.degrade.level0')).toBe(1);
  });

  it('follows a real scheduler: sustained safety work degrades, idling recovers', async () => {
    const h = harness();
    const p = policyHarness();
    void h.scheduler.submit(spec('detect', 'safety', 60_000), h.timed('long', 30_000));
    for (let i = 0; i < 200; i++) {
      await h.advance(100);
      p.policy.update(h.scheduler.load, h.clock.nowNs());
    }
    expect(p.policy.current).toEqual(DEGRADATION_STEPS[DEGRADATION_STEPS.length - 1]);
    await h.advance(30_000);
    expect(h.scheduler.load.running).toBe(0);
    for (let i = 0; i < 400; i++) {
      await h.advance(100);
      p.policy.update(h.scheduler.load, h.clock.nowNs());
    }
    expect(p.policy.current.level).toBe(0);
  });

  it('refuses time going back and a malformed load', () => {
    const p = policyHarness();
    p.policy.update(loadOf(0.5), 2_000n);
    const back = thrownBy(() => p.policy.update(loadOf(0.5), 1_999n));
    expect(back.name).toBe('RangeError');
    expect(back.message).toBe("DegradationPolicy.update: 'tNs' may not go back (last 2000 ns, got 1999 ns)");
    const nan = thrownBy(() => p.policy.update(loadOf(Number.NaN), 3_000n));
    expect(nan.name).toBe('RangeError');
    expect(nan.message).toBe("DegradationPolicy.update: 'load.busyFraction' must be in [0, 1], got NaN");
    expect(thrownBy(() => p.policy.update(loadOf(0.5, 2), 3_000n)).message).toBe(
      "DegradationPolicy.update: 'load.missRate.safety' must be in [0, 1], got 2",
    );
  });
});
