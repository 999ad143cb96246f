/**
 * The shared-accelerator scheduler (issue #9). On the vehicle computer the detector, lanes, ISP,
 * renderer, recorder and telemetry share one accelerator — today the CPU cores that every
 * onnxruntime session's thread pool spreads over. Two sessions at once only split the cores and
 * multiply tail latency (the Baymax / PipeSwitch observation), so accelerator work is serialized
 * through one queue that serves the highest priority class first, FIFO within a class.
 *
 * Non-preemptive: a running job always finishes; a freed slot takes the oldest job of the highest
 * non-empty class. Queues are bounded per class; when one is full its OLDEST job is rejected
 * ('queue-full'): the freshest data wins, as everywhere else in the pipeline — for safety work too,
 * because a newer frame supersedes an older one waiting for the same detector.
 *
 * Admission (every class but safety): a job is rejected at submit ('admission') when its estimated
 * finish is after tRelease + deadline:
 *
 *   finish = now + wait + run(job)
 *   wait   = 0 when a slot is free, else
 *            (remaining run of running jobs + runs of jobs queued ahead) / slots / (1 - uHigher)
 *
 * "Ahead" is every queued job of the same or a higher class (lower classes wait behind it). Run
 * times are the median of the last RUN_ESTIMATE_WINDOW runs of the job's name; a name never run is
 * estimated at 0 ms, so admission rejects only on evidence. `uHigher` is the recent accelerator
 * share (exponentially weighted, like `busyFraction`) of the strictly higher classes: the safety and
 * high work that typically keeps arriving overtakes a waiting job, stretching its wait by 1/(1 - u).
 *
 * Expiry: a non-safety job still queued at its deadline is rejected ('expired') when the scheduler
 * next dispatches, rather than started to produce a result nobody can use. Safety work is never
 * rejected by admission or expiry: it always runs (and counts as late), because a late detection
 * still corrects the tracker, whereas a dropped one leaves it coasting blind.
 *
 * Safety slack (background only): safety work arrives with the frames, so its next arrival is
 * predictable (the last arrival + the recent median period). A background job starts only if its
 * estimated run ends before that arrival (by SAFETY_SLACK_MARGIN_MS); otherwise it stays queued for
 * the next gap. A non-preemptive background job in the way would add its whole run to the safety
 * job's latency; this keeps the safety tail where it is and gives background work only the gaps.
 * When safety work stops arriving (no arrival for SAFETY_IDLE_PERIODS periods) the rule is off.
 *
 * Every decision is counted as `scheduler.<class>.submitted|done|late|errors|rejected.<reason>`,
 * with latencies `scheduler.<class>.wait` (queue time of started jobs) and `scheduler.<class>.run`
 * (run time of jobs that finished).
 *
 * `DegradationPolicy` turns the scheduler's load into a degradation decision (ISP mode, background
 * work, detector rate) with hysteresis; the composition root applies it to the stages.
 */
import type { OperatorFunction } from 'rxjs';
import type { Clock } from './clock.js';
import type { Frame } from './frame.js';
import type { PipelineMetrics } from './metrics.js';
import { stage, type StageContext } from './stage.js';
import { NS_PER_MS } from './time.js';

export type PriorityClass = 'safety' | 'high' | 'normal' | 'background';
/** Highest priority first: the order in which queued work is served. */
export const PRIORITY_CLASSES: readonly PriorityClass[] = Object.freeze(['safety', 'high', 'normal', 'background']);

/**
 * Jobs queued per class by default: a few frames of detector/lane work absorb a burst without
 * building latency; ISP and background work are cheap to drop (the next frame brings fresh data).
 */
export const DEFAULT_MAX_QUEUED: Readonly<Record<PriorityClass, number>> = Object.freeze({ safety: 4, high: 4, normal: 2, background: 2 });
/** Runs of one job name whose median estimates its next run: ~0.7 s of detector runs at 30 fps, so it follows load changes but ignores a single GC pause. */
export const RUN_ESTIMATE_WINDOW = 20;
/** Time constant of `busyFraction` (and of the per-class shares used by admission): long enough to smooth frame-to-frame jitter, short enough to see overload within a second. */
export const BUSY_TIME_CONSTANT_MS = 1000;
/** Recent jobs per class over which `recentWaitMs` (p90) and `missRate` are taken: ~1.7 s at 30 fps. */
export const RECENT_WINDOW = 50;
/** Cap on the higher classes' share in admission: the stretch 1/(1 - u) explodes on noise near 1; a 10x stretch already rejects any realistic deadline. */
export const ADMISSION_MAX_HIGHER_SHARE = 0.9;
/** Quantile of recent waits reported in `SchedulerLoad.recentWaitMs`. */
export const RECENT_WAIT_QUANTILE = 0.9;

/** Background work must end this long before the next expected safety arrival, ms. */
export const SAFETY_SLACK_MARGIN_MS = 2;
/** Safety inter-arrival times kept for the period estimate. */
export const SAFETY_PERIOD_WINDOW = 16;
/**
 * The slack rule is judged on the pessimistic side: a background job's long runs (this quantile of
 * its recent run times) against the safety stream's short periods (SAFETY_PERIOD_QUANTILE), since a
 * background job overrunning into a detection is what the rule exists to prevent.
 */
export const SLACK_RUN_QUANTILE = 0.9;
export const SAFETY_PERIOD_QUANTILE = 0.1;
/** Safety work silent for this many periods: the slack rule no longer holds background work back. */
export const SAFETY_IDLE_PERIODS = 3;

export interface JobSpec {
  /** Names the kind of work (e.g. 'detect'); run-time estimates are kept per name. */
  name: string;
  priority: PriorityClass;
  /** Time allowed from tRelease to the end of the run, ms (> 0, finite). */
  deadlineMs: number;
  /** When the job's input was released (e.g. frame capture), ns on the scheduler's clock; default: submit time. */
  tReleaseNs?: bigint;
}

export type RejectReason = 'admission' | 'queue-full' | 'expired' | 'closed';

export type JobOutcome<T> =
  /** `late`: finished after tRelease + deadline. */
  | { status: 'done'; value: T; waitMs: number; runMs: number; late: boolean }
  /** `waitMs`: from submit to the rejection. 'closed': still queued when the scheduler was closed. */
  | { status: 'rejected'; reason: RejectReason; waitMs: number };

export interface SchedulerLoad {
  /** Share of slots busy, exponentially weighted over BUSY_TIME_CONSTANT_MS of clock time, 0..1. */
  busyFraction: number;
  queued: Record<PriorityClass, number>;
  running: number;
  /** p90 of the waits of the last RECENT_WINDOW started jobs per class, ms (0 when none). */
  recentWaitMs: Record<PriorityClass, number>;
  /** Share of the last RECENT_WINDOW jobs per class that finished late or were rejected (errors and 'closed' excluded: they are not load). */
  missRate: Record<PriorityClass, number>;
}

/** Live counters of one class; `late` is a subset of `done`, `rejected` covers every reason. */
export interface ClassStats {
  submitted: number;
  done: number;
  late: number;
  rejected: number;
  errors: number;
}

export interface SchedulerOptions {
  clock: Clock;
  metrics: PipelineMetrics;
  /** Jobs queued per class before the oldest is dropped; default DEFAULT_MAX_QUEUED. */
  maxQueued?: Partial<Record<PriorityClass, number>>;
  /** How many jobs run at once; default 1 (one ORT session owns all cores at a time). */
  slots?: number;
}

interface Job {
  name: string;
  priority: PriorityClass;
  tSubmitNs: bigint;
  tDeadlineNs: bigint;
  work: () => Promise<unknown>;
  resolve: (outcome: JobOutcome<unknown>) => void;
  reject: (error: unknown) => void;
}

interface RunningJob {
  name: string;
  priority: PriorityClass;
  tStartNs: bigint;
}

/** The last `capacity` values of a series, oldest overwritten first. */
class RecentWindow {
  readonly #values: number[] = [];
  #next = 0;

  constructor(readonly capacity: number) {}

  push(value: number): void {
    if (this.#values.length < this.capacity) this.#values.push(value);
    else this.#values[this.#next] = value;
    this.#next = (this.#next + 1) % this.capacity;
  }

  get length(): number {
    return this.#values.length;
  }

  /** Nearest-rank quantile q in [0, 1]; 0 when empty. */
  quantile(q: number): number {
    if (this.#values.length === 0) return 0;
    const sorted = [...this.#values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  }

  mean(): number {
    if (this.#values.length === 0) return 0;
    let sum = 0;
    for (const v of this.#values) sum += v;
    return sum / this.#values.length;
  }
}

/** Per job name, the median of its recent run times: what admission expects the next run to take. */
class RunTimeEstimates {
  readonly #runs = new Map<string, RecentWindow>();

  record(name: string, runMs: number): void {
    let window = this.#runs.get(name);
    if (!window) this.#runs.set(name, (window = new RecentWindow(RUN_ESTIMATE_WINDOW)));
    window.push(runMs);
  }

  /** The `q` quantile (default the median) of the recent runs; 0 ms for a name never run: admission rejects only on evidence. */
  estimateMs(name: string, q = 0.5): number {
    return this.#runs.get(name)?.quantile(q) ?? 0;
  }
}

function perClass<V>(make: (priority: PriorityClass) => V): Record<PriorityClass, V> {
  return { safety: make('safety'), high: make('high'), normal: make('normal'), background: make('background') };
}

function msBetween(tFromNs: bigint, tToNs: bigint): number {
  return Number(tToNs - tFromNs) / 1e6;
}

function isPriorityClass(value: unknown): value is PriorityClass {
  return typeof value === 'string' && (PRIORITY_CLASSES as readonly string[]).includes(value);
}

export class AcceleratorScheduler {
  /** Live counters per class (read-only to callers). */
  readonly stats: Readonly<Record<PriorityClass, Readonly<ClassStats>>>;
  readonly slots: number;
  readonly maxQueued: Readonly<Record<PriorityClass, number>>;

  readonly #clock: Clock;
  readonly #metrics: PipelineMetrics;
  readonly #stats: Record<PriorityClass, ClassStats>;
  readonly #queues: Record<PriorityClass, Job[]> = perClass(() => []);
  readonly #running = new Set<RunningJob>();
  readonly #estimates = new RunTimeEstimates();
  readonly #recentWaits = perClass(() => new RecentWindow(RECENT_WINDOW));
  /** 1 per missed job, 0 per job on time; the mean is the miss rate. */
  readonly #recentMisses = perClass(() => new RecentWindow(RECENT_WINDOW));
  /** Exponentially weighted busy share, total and per class, as of #tBusyNs. */
  #busyFraction = 0;
  readonly #classShare: Record<PriorityClass, number> = perClass(() => 0);
  #tBusyNs: bigint;
  #closed = false;
  /** Arrival of the last safety job and recent safety inter-arrival times (ms), for the slack rule. */
  #lastSafetyArrivalNs: bigint | undefined;
  readonly #safetyPeriods = new RecentWindow(SAFETY_PERIOD_WINDOW);
  #wakePending = false;

  constructor(options: SchedulerOptions) {
    const slots = options.slots ?? 1;
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RangeError(`AcceleratorScheduler: 'slots' must be an integer >= 1, got ${slots}`);
    }
    const maxQueued = { ...DEFAULT_MAX_QUEUED };
    for (const [priority, capacity] of Object.entries(options.maxQueued ?? {})) {
      if (!isPriorityClass(priority)) {
        throw new RangeError(`AcceleratorScheduler: 'maxQueued' keys must be one of ${PRIORITY_CLASSES.join(', ')}, got '${priority}'`);
      }
      if (capacity === undefined) continue;
      if (!Number.isInteger(capacity) || capacity < 1) {
        throw new RangeError(`AcceleratorScheduler: 'maxQueued.${priority}' must be an integer >= 1, got ${capacity}`);
      }
      maxQueued[priority] = capacity;
    }
    this.slots = slots;
    this.maxQueued = Object.freeze(maxQueued);
    this.#clock = options.clock;
    this.#metrics = options.metrics;
    this.#stats = perClass(() => ({ submitted: 0, done: 0, late: 0, rejected: 0, errors: 0 }));
    this.stats = this.#stats;
    this.#tBusyNs = this.#clock.nowNs();
  }

  /**
   * Queues `work` under `spec` and resolves with what became of it: done (with its value) or
   * rejected (admission, queue-full, expired, closed). Rejects only when `work` itself fails.
   * Misuse (bad spec, closed scheduler) throws at the call, so it cannot hide in an unobserved promise.
   */
  submit<T>(spec: JobSpec, work: () => Promise<T>): Promise<JobOutcome<T>> {
    const { name, priority, deadlineMs, tReleaseNs } = spec ?? ({} as Partial<JobSpec>);
    if (this.#closed) throw new Error(`AcceleratorScheduler.submit: scheduler is closed (job '${String(name)}')`);
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError(`AcceleratorScheduler.submit: 'name' must be a non-empty string, got '${String(name)}'`);
    }
    if (!isPriorityClass(priority)) {
      throw new RangeError(`AcceleratorScheduler.submit: 'priority' of job '${name}' must be one of ${PRIORITY_CLASSES.join(', ')}, got '${String(priority)}'`);
    }
    if (typeof deadlineMs !== 'number' || !Number.isFinite(deadlineMs) || deadlineMs <= 0) {
      throw new RangeError(`AcceleratorScheduler.submit: 'deadlineMs' of job '${name}' must be a finite number > 0, got ${String(deadlineMs)}`);
    }
    if (tReleaseNs !== undefined && typeof tReleaseNs !== 'bigint') {
      throw new TypeError(`AcceleratorScheduler.submit: 'tReleaseNs' of job '${name}' must be a bigint (ns), got ${typeof tReleaseNs}`);
    }
    if (typeof work !== 'function') {
      throw new TypeError(`AcceleratorScheduler.submit: 'work' of job '${name}' must be a function, got ${typeof work}`);
    }

    const nowNs = this.#clock.nowNs();
    const tDeadlineNs = (tReleaseNs ?? nowNs) + BigInt(Math.round(deadlineMs * 1e6));
    if (priority === 'safety') {
      if (this.#lastSafetyArrivalNs !== undefined) this.#safetyPeriods.push(msBetween(this.#lastSafetyArrivalNs, nowNs));
      this.#lastSafetyArrivalNs = nowNs;
    }
    this.#count(priority, 'submitted');
    this.#stats[priority].submitted++;

    return new Promise<JobOutcome<T>>((resolve, reject) => {
      const job: Job = {
        name,
        priority,
        tSubmitNs: nowNs,
        tDeadlineNs,
        work,
        resolve: (outcome) => resolve(outcome as JobOutcome<T>),
        reject,
      };
      const queue = this.#queues[priority];
      const full = queue.length >= this.maxQueued[priority];
      if (priority !== 'safety') {
        if (nowNs >= tDeadlineNs) return this.#reject(job, 'expired', nowNs);
        if (this.#estimatedFinishNs(job, nowNs, full) > tDeadlineNs) return this.#reject(job, 'admission', nowNs);
      }
      if (full) this.#reject(queue.shift()!, 'queue-full', nowNs);
      queue.push(job);
      this.#dispatch();
    });
  }

  get load(): SchedulerLoad {
    this.#advanceBusy(this.#clock.nowNs());
    return {
      busyFraction: this.#busyFraction,
      queued: perClass((p) => this.#queues[p].length),
      running: this.#running.size,
      recentWaitMs: perClass((p) => this.#recentWaits[p].quantile(RECENT_WAIT_QUANTILE)),
      missRate: perClass((p) => this.#recentMisses[p].mean()),
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Rejects every queued job with reason 'closed' and refuses new submissions; running jobs finish
   * and resolve normally. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const nowNs = this.#clock.nowNs();
    for (const priority of PRIORITY_CLASSES) {
      for (const job of this.#queues[priority].splice(0)) this.#reject(job, 'closed', nowNs);
    }
  }

  /** Finish time of `job` if admitted now; see the module comment for the rule. */
  #estimatedFinishNs(job: Job, nowNs: bigint, sameClassFull: boolean): bigint {
    let waitMs = 0;
    if (this.#running.size >= this.slots) {
      let aheadMs = 0;
      for (const running of this.#running) {
        aheadMs += Math.max(0, this.#estimates.estimateMs(running.name) - msBetween(running.tStartNs, nowNs));
      }
      this.#advanceBusy(nowNs);
      let higherShare = 0;
      for (const priority of PRIORITY_CLASSES) {
        if (priority === job.priority) break;
        higherShare += this.#classShare[priority];
      }
      for (const priority of PRIORITY_CLASSES) {
        // The oldest of a full class leaves the queue when this job enters it.
        const queue = priority === job.priority && sameClassFull ? this.#queues[priority].slice(1) : this.#queues[priority];
        for (const queued of queue) aheadMs += this.#estimates.estimateMs(queued.name);
        if (priority === job.priority) break;
      }
      waitMs = aheadMs / this.slots / (1 - Math.min(ADMISSION_MAX_HIGHER_SHARE, higherShare));
    }
    const finishMs = waitMs + this.#estimates.estimateMs(job.name);
    return nowNs + BigInt(Math.ceil(finishMs * 1e6));
  }

  /** Drops expired non-safety jobs, then fills free slots from the highest class down. */
  #dispatch(): void {
    const nowNs = this.#clock.nowNs();
    for (const priority of PRIORITY_CLASSES) {
      if (priority === 'safety') continue;
      const queue = this.#queues[priority];
      // A job that starts at its deadline cannot finish by it.
      const expired = queue.filter((job) => nowNs >= job.tDeadlineNs);
      if (expired.length === 0) continue;
      this.#queues[priority] = queue.filter((job) => nowNs < job.tDeadlineNs);
      for (const job of expired) this.#reject(job, 'expired', nowNs);
    }
    while (this.#running.size < this.slots) {
      const priority = PRIORITY_CLASSES.find((p) => this.#queues[p].length > 0);
      if (priority === undefined) return;
      if (priority === 'background' && !this.#fitsBeforeNextSafety(this.#queues[priority][0]!, nowNs)) {
        this.#count(priority, 'heldForSafety');
        this.#wakeWhenSafetyIdle();
        return;
      }
      this.#start(this.#queues[priority].shift()!, nowNs);
    }
  }

  /** Held background work must not wait for an event that never comes: look again once safety work has gone quiet. */
  #wakeWhenSafetyIdle(): void {
    if (this.#wakePending || this.#lastSafetyArrivalNs === undefined) return;
    this.#wakePending = true;
    const idleNs = BigInt(Math.ceil(SAFETY_IDLE_PERIODS * this.#safetyPeriods.quantile(0.5) * 1e6)) + 1n;
    void this.#clock.sleepUntilNs(this.#lastSafetyArrivalNs + idleNs).then(() => {
      this.#wakePending = false;
      if (!this.#closed) this.#dispatch();
    });
  }

  /** The slack rule (module comment): does `job` end before the next expected safety arrival? */
  #fitsBeforeNextSafety(job: Job, nowNs: bigint): boolean {
    if (this.#lastSafetyArrivalNs === undefined || this.#safetyPeriods.length === 0) return true;
    const sinceMs = msBetween(this.#lastSafetyArrivalNs, nowNs);
    if (sinceMs > SAFETY_IDLE_PERIODS * this.#safetyPeriods.quantile(0.5)) return true;
    // Arrivals due since the last one have not come yet: the next is imminent.
    const untilNextMs = this.#safetyPeriods.quantile(SAFETY_PERIOD_QUANTILE) - sinceMs;
    return this.#estimates.estimateMs(job.name, SLACK_RUN_QUANTILE) + SAFETY_SLACK_MARGIN_MS <= untilNextMs;
  }

  #start(job: Job, tStartNs: bigint): void {
    this.#advanceBusy(tStartNs);
    const running: RunningJob = { name: job.name, priority: job.priority, tStartNs };
    this.#running.add(running);
    const waitMs = msBetween(job.tSubmitNs, tStartNs);
    this.#metrics.latency(`scheduler.${job.priority}.wait`).record(waitMs);
    this.#recentWaits[job.priority].push(waitMs);

    let result: Promise<unknown>;
    try {
      result = Promise.resolve(job.work());
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (value) => {
        const tEndNs = this.#finish(running);
        const runMs = msBetween(tStartNs, tEndNs);
        const late = tEndNs > job.tDeadlineNs;
        this.#estimates.record(job.name, runMs);
        this.#metrics.latency(`scheduler.${job.priority}.run`).record(runMs);
        this.#count(job.priority, 'done');
        this.#stats[job.priority].done++;
        if (late) {
          this.#count(job.priority, 'late');
          this.#stats[job.priority].late++;
        }
        this.#recentMisses[job.priority].push(late ? 1 : 0);
        job.resolve({ status: 'done', value, waitMs, runMs, late });
        this.#dispatch();
      },
      (error: unknown) => {
        this.#finish(running);
        this.#count(job.priority, 'errors');
        this.#stats[job.priority].errors++;
        job.reject(error);
        this.#dispatch();
      },
    );
  }

  /** Frees the slot of `running`; returns the end time. */
  #finish(running: RunningJob): bigint {
    const tEndNs = this.#clock.nowNs();
    this.#advanceBusy(tEndNs);
    this.#running.delete(running);
    return tEndNs;
  }

  #reject(job: Job, reason: RejectReason, nowNs: bigint): void {
    this.#count(job.priority, `rejected.${reason}`);
    this.#stats[job.priority].rejected++;
    if (reason !== 'closed') this.#recentMisses[job.priority].push(1);
    job.resolve({ status: 'rejected', reason, waitMs: msBetween(job.tSubmitNs, nowNs) });
  }

  #count(priority: PriorityClass, event: string): void {
    this.#metrics.count(`scheduler.${priority}.${event}`);
  }

  /**
   * Brings the exponentially weighted busy shares up to `nowNs`. Occupancy is constant between
   * starts and finishes, so the continuous-time update x <- b + (x - b) e^(-dt/tau) is exact
   * however irregularly it is called.
   */
  #advanceBusy(nowNs: bigint): void {
    const dtMs = msBetween(this.#tBusyNs, nowNs);
    if (dtMs <= 0) return;
    const keep = Math.exp(-dtMs / BUSY_TIME_CONSTANT_MS);
    const runningByClass = perClass(() => 0);
    for (const running of this.#running) runningByClass[running.priority]++;
    this.#busyFraction = this.#running.size / this.slots + (this.#busyFraction - this.#running.size / this.slots) * keep;
    for (const priority of PRIORITY_CLASSES) {
      const share = runningByClass[priority] / this.slots;
      this.#classShare[priority] = share + (this.#classShare[priority] - share) * keep;
    }
    this.#tBusyNs = nowNs;
  }
}

// ---------------------------------------------------------------------------------------------
// Degradation policy

export type DegradationLevel = 0 | 1 | 2 | 3;
/** The ISP modes a policy may ask for (the same values as IspProcessor.setMode takes). */
export type IspModeRequest = 'full' | 'half' | 'skip';

export interface Degradation {
  level: DegradationLevel;
  /** Run the detector on every n-th frame; the tracker coasts in between. */
  detectEveryN: 1 | 2 | 3;
  ispMode: IspModeRequest;
  /** Background work (recorder, telemetry) should not be submitted while true. */
  backgroundPaused: boolean;
}

/**
 * The degradation ladder, one step at a time: lower priorities give up accelerator time first
 * (ISP is normal, recorder and telemetry background); the safety detector is thinned only once the
 * ISP is skipped, and level 3 has two steps (every 2nd, then every 3rd frame).
 */
export const DEGRADATION_STEPS: readonly Readonly<Degradation>[] = Object.freeze([
  Object.freeze({ level: 0, detectEveryN: 1, ispMode: 'full', backgroundPaused: false }),
  Object.freeze({ level: 1, detectEveryN: 1, ispMode: 'half', backgroundPaused: true }),
  Object.freeze({ level: 2, detectEveryN: 1, ispMode: 'skip', backgroundPaused: true }),
  Object.freeze({ level: 3, detectEveryN: 2, ispMode: 'skip', backgroundPaused: true }),
  Object.freeze({ level: 3, detectEveryN: 3, ispMode: 'skip', backgroundPaused: true }),
] as const);

/** Overloaded at or above this busy fraction: a non-preemptive queue's wait grows like rho/(1 - rho), ~9 run times at 0.9 — more than a frame period for detector-sized jobs. */
export const DEGRADE_BUSY_FRACTION = 0.9;
/** Calm (may recover) at or below this busy fraction: well under DEGRADE_BUSY_FRACTION because each recovery step adds load back (full-resolution ISP costs ~4x half), so the band prevents oscillation. */
export const RECOVER_BUSY_FRACTION = 0.6;
/** Overloaded above this safety miss rate: more than 2 of the last 50 detector runs — isolated misses (a GC pause) do not degrade, a pattern does. */
export const DEGRADE_SAFETY_MISS_RATE = 0.05;
/** Calm only at or below this safety miss rate: at most 1 miss in the last 50. */
export const RECOVER_SAFETY_MISS_RATE = 0.02;
/** Consecutive overloaded evaluations before stepping down: one sample never flips the decision. */
export const DEGRADE_AFTER_EVALUATIONS = 3;
/** Consecutive calm evaluations before stepping back up: more than for degrading, because recovering adds load back and safety comes first. */
export const RECOVER_AFTER_EVALUATIONS = 10;
/** After a change, evaluations are ignored this long: the load signal is averaged over ~BUSY_TIME_CONSTANT_MS, so sooner it still shows the old setting and would step again (overshoot). */
export const DEGRADE_SETTLE_MS = BUSY_TIME_CONSTANT_MS;

export interface DegradationPolicyOptions {
  metrics: PipelineMetrics;
  /** Called on every change with the new and the previous decision and the evaluation time. */
  onChange?: (next: Degradation, previous: Degradation, tNs: bigint) => void;
}

/**
 * Decides how far to degrade from the scheduler's load, with hysteresis: a step down needs
 * DEGRADE_AFTER_EVALUATIONS consecutive overloaded evaluations, a step up RECOVER_AFTER_EVALUATIONS
 * consecutive calm ones, one step at a time, none within DEGRADE_SETTLE_MS of the last change.
 * Between the thresholds nothing changes and both streaks restart.
 */
export class DegradationPolicy {
  readonly #metrics: PipelineMetrics;
  readonly #onChange: DegradationPolicyOptions['onChange'];
  #step = 0;
  #overloadedStreak = 0;
  #calmStreak = 0;
  #tLastNs: bigint | undefined;
  #tChangedNs: bigint | undefined;

  constructor(options: DegradationPolicyOptions) {
    this.#metrics = options.metrics;
    this.#onChange = options.onChange;
  }

  get current(): Degradation {
    return { ...DEGRADATION_STEPS[this.#step]! };
  }

  update(load: SchedulerLoad, tNs: bigint): Degradation {
    if (typeof tNs !== 'bigint') throw new TypeError(`DegradationPolicy.update: 'tNs' must be a bigint (ns), got ${typeof tNs}`);
    if (this.#tLastNs !== undefined && tNs < this.#tLastNs) {
      throw new RangeError(`DegradationPolicy.update: 'tNs' may not go back (last ${this.#tLastNs} ns, got ${tNs} ns)`);
    }
    const busy = load?.busyFraction;
    if (typeof busy !== 'number' || !(busy >= 0 && busy <= 1)) {
      throw new RangeError(`DegradationPolicy.update: 'load.busyFraction' must be in [0, 1], got ${String(busy)}`);
    }
    const safetyMissRate = load.missRate?.safety;
    if (typeof safetyMissRate !== 'number' || !(safetyMissRate >= 0 && safetyMissRate <= 1)) {
      throw new RangeError(`DegradationPolicy.update: 'load.missRate.safety' must be in [0, 1], got ${String(safetyMissRate)}`);
    }
    this.#tLastNs = tNs;

    if (this.#tChangedNs !== undefined && tNs - this.#tChangedNs < BigInt(DEGRADE_SETTLE_MS) * NS_PER_MS) {
      this.#overloadedStreak = this.#calmStreak = 0;
      return this.current;
    }
    const overloaded = busy >= DEGRADE_BUSY_FRACTION || safetyMissRate > DEGRADE_SAFETY_MISS_RATE;
    const calm = busy <= RECOVER_BUSY_FRACTION && safetyMissRate <= RECOVER_SAFETY_MISS_RATE;
    this.#overloadedStreak = overloaded ? this.#overloadedStreak + 1 : 0;
    this.#calmStreak = calm ? this.#calmStreak + 1 : 0;

    if (this.#overloadedStreak >= DEGRADE_AFTER_EVALUATIONS && this.#step < DEGRADATION_STEPS.length - 1) this.#change(this.#step + 1, tNs);
    else if (this.#calmStreak >= RECOVER_AFTER_EVALUATIONS && this.#step > 0) this.#change(this.#step - 1, tNs);
    return this.current;
  }

  #change(step: number, tNs: bigint): void {
    const previous = this.current;
    this.#step = step;
    this.#tChangedNs = tNs;
    this.#overloadedStreak = this.#calmStreak = 0;
    const next = this.current;
    this.#metrics.count(`scheduler.degrade.level${next.level}`);
    this.#onChange?.(next, previous, tNs);
  }
}

/**
 * The knobs the degradation policy turns, shared by the stages it governs (the detect stage reads
 * detectEveryN, the isp stage ispMode): one small mutable object instead of stages knowing each other.
 */
export interface RuntimeControls {
  detectEveryN: 1 | 2 | 3;
  ispMode: IspModeRequest;
  backgroundPaused: boolean;
  /** The policy's level, for reports. */
  level: DegradationLevel;
}

export function createRuntimeControls(): RuntimeControls {
  const { detectEveryN, ispMode, backgroundPaused, level } = DEGRADATION_STEPS[0]!;
  return { detectEveryN, ispMode, backgroundPaused, level };
}

/**
 * A replay/run extension placed first in the graph: once per frame it updates the policy from the
 * scheduler's load and writes the decision into `controls`; every change is counted by the policy
 * (`scheduler.degrade.level<N>`) and the frame carries the level it was processed at.
 */
export function degradationExtension(
  scheduler: AcceleratorScheduler,
  policy: DegradationPolicy,
  controls: RuntimeControls,
): (context: StageContext) => { stages: OperatorFunction<Frame, Frame>[] } {
  return (context) => ({
    stages: [
      stage<Frame>(
        'degrade',
        (frame) => {
          const decision = policy.update(scheduler.load, context.clock.nowNs());
          Object.assign(controls, { detectEveryN: decision.detectEveryN, ispMode: decision.ispMode, backgroundPaused: decision.backgroundPaused, level: decision.level });
          frame.degradationLevel = decision.level;
        },
        context,
      ),
    ],
  });
}

declare module './frame.js' {
  interface Frame {
    /** The degradation level the frame was processed at (0 = everything at full quality). */
    degradationLevel?: DegradationLevel;
  }
}
