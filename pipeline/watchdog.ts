/**
 * The stage watchdog: a stage that throws, or takes more than `overrunFactor` x its deadline, must
 * not freeze the HUD nor leave world-registered overlays standing on stale data. The watchdog runs
 * a stage's work against a timer; on a fault or an overrun the frame goes on without that stage's
 * result (a hung stage's late result is dropped when it comes), the fault is counted and logged, and
 * the pipeline enters safe blanking: AR overlays are withheld (status content stays, with the
 * degraded indicator) until `recoverAfterFrames` consecutive frames pass every watched stage. The
 * process keeps running; nothing restarts.
 *
 * One watchdog serves a whole graph: stages report through `guard`, and `frameDone` (called once per
 * frame, before rendering) turns the frame's faults into the blanking decision for that frame.
 */
import type { Clock } from './clock.js';
import type { Frame } from './frame.js';
import type { PipelineMetrics } from './metrics.js';
import { stage, type StageOptions } from './stage.js';
import type { OperatorFunction } from 'rxjs';

/** A stage is overrunning past this many times its deadline (the issue's N). */
export const DEFAULT_OVERRUN_FACTOR = 3;
/** Healthy frames in a row before AR overlays come back (0.2 s at 25 fps: one bad frame is not a trend, a few good ones are). */
export const DEFAULT_RECOVER_AFTER_FRAMES = 5;

export type StageFaultKind = 'fault' | 'overrun';

export interface StageFault {
  stage: string;
  kind: StageFaultKind;
  message: string;
  tNs: bigint;
}

declare module './frame.js' {
  interface Frame {
    /** Faults and overruns of watched stages on this frame (set by StageWatchdog). */
    stageFaults?: StageFault[];
    /** Set by the watchdog's frame check: AR overlays must not be drawn for this frame. */
    safeBlank?: boolean;
  }
}

/** Deadline of a watched stage that names none, ms: one frame period at 10 Hz. */
export const DEFAULT_STAGE_DEADLINE_MS = 100;

export interface WatchdogOptions {
  clock: Clock;
  metrics: PipelineMetrics;
  /** Deadline of stages that name none, ms. Default DEFAULT_STAGE_DEADLINE_MS. */
  defaultDeadlineMs?: number;
  overrunFactor?: number;
  recoverAfterFrames?: number;
  /** One line per event (fault, overrun, blanking, recovery). */
  log?: (line: string) => void;
}

export type GuardResult<T> = { ok: true; value: T } | { ok: false; fault: StageFault };

export class StageWatchdog {
  readonly overrunFactor: number;
  readonly recoverAfterFrames: number;
  readonly defaultDeadlineMs: number;
  readonly #clock: Clock;
  readonly #metrics: PipelineMetrics;
  readonly #log: (line: string) => void;
  #healthyRun = 0;
  #blanked = false;
  readonly stats = { faults: 0, overruns: 0, blanks: 0, recoveries: 0, lateResultsDropped: 0 };

  constructor(options: WatchdogOptions) {
    const factor = options.overrunFactor ?? DEFAULT_OVERRUN_FACTOR;
    if (!(factor >= 1)) throw new RangeError(`StageWatchdog: 'overrunFactor' must be >= 1, got ${factor}`);
    const recover = options.recoverAfterFrames ?? DEFAULT_RECOVER_AFTER_FRAMES;
    if (!(Number.isInteger(recover) && recover >= 1)) throw new RangeError(`StageWatchdog: 'recoverAfterFrames' must be an integer >= 1, got ${recover}`);
    this.overrunFactor = factor;
    this.defaultDeadlineMs = options.defaultDeadlineMs ?? DEFAULT_STAGE_DEADLINE_MS;
    if (!(this.defaultDeadlineMs > 0)) throw new RangeError(`StageWatchdog: 'defaultDeadlineMs' must be > 0, got ${options.defaultDeadlineMs}`);
    this.recoverAfterFrames = recover;
    this.#clock = options.clock;
    this.#metrics = options.metrics;
    this.#log = options.log ?? (() => {});
  }

  /** True while AR overlays are withheld. */
  get blanked(): boolean {
    return this.#blanked;
  }

  /**
   * Runs `work` for `stageName` with its deadline. Resolves (never rejects) with the value, or with
   * the fault when the work throws or is still running at overrunFactor x deadlineMs — then the work
   * is abandoned: `abandoned` fires, and its eventual result or error is dropped and counted.
   */
  async guard<T>(stageName: string, deadlineMs: number, work: (abandoned: AbortSignal) => T | Promise<T>): Promise<GuardResult<T>> {
    if (!(deadlineMs > 0)) throw new RangeError(`StageWatchdog.guard: stage '${stageName}': 'deadlineMs' must be > 0, got ${deadlineMs}`);
    const limitMs = deadlineMs * this.overrunFactor;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const overrun = new Promise<'overrun'>((resolve) => {
      timer = setTimeout(() => resolve('overrun'), limitMs);
    });
    const abandon = new AbortController();
    const startedNs = this.#clock.nowNs();
    const running = (async () => work(abandon.signal))();
    try {
      const outcome = await Promise.race([running.then((value) => ({ value })), overrun]);
      if (outcome !== 'overrun') {
        // Work that blocks the event loop settles before any timer can fire: judge it by the clock.
        const tookMs = Number(this.#clock.nowNs() - startedNs) / 1e6;
        if (tookMs <= limitMs) return { ok: true, value: outcome.value };
        this.#dropLate(stageName);
        return { ok: false, fault: this.#fault(stageName, 'overrun', `took ${tookMs.toFixed(0)} ms (over ${this.overrunFactor} x its ${deadlineMs} ms deadline); result dropped`) };
      }
      abandon.abort();
      running.then(
        () => this.#dropLate(stageName),
        () => this.#dropLate(stageName),
      );
      return { ok: false, fault: this.#fault(stageName, 'overrun', `still running after ${limitMs.toFixed(0)} ms (${this.overrunFactor} x its ${deadlineMs} ms deadline)`) };
    } catch (error) {
      return { ok: false, fault: this.#fault(stageName, 'fault', error instanceof Error ? error.message : String(error)) };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The frame has passed every watched stage: decides whether its AR overlays are withheld, sets
   * `frame.safeBlank`, and returns it. Call once per frame, in frame order, before rendering.
   */
  frameDone(frame: Frame): boolean {
    const faulty = (frame.stageFaults?.length ?? 0) > 0;
    if (faulty) {
      this.#healthyRun = 0;
      if (!this.#blanked) {
        this.#blanked = true;
        this.stats.blanks++;
        this.#metrics.count('watchdog.blanks');
        this.#log(`watchdog: AR overlays blanked (frame ${frame.seq}: ${frame.stageFaults!.map((f) => `${f.stage} ${f.kind}`).join(', ')})`);
      }
    } else if (this.#blanked && ++this.#healthyRun >= this.recoverAfterFrames) {
      this.#blanked = false;
      this.stats.recoveries++;
      this.#metrics.count('watchdog.recoveries');
      this.#log(`watchdog: AR overlays back after ${this.recoverAfterFrames} healthy frames (frame ${frame.seq})`);
    }
    if (this.#blanked) this.#metrics.count('watchdog.blankedFrames');
    frame.safeBlank = this.#blanked;
    return this.#blanked;
  }

  #fault(stageName: string, kind: StageFaultKind, message: string): StageFault {
    if (kind === 'fault') this.stats.faults++;
    else this.stats.overruns++;
    this.#metrics.count(`watchdog.${stageName}.${kind}s`);
    this.#log(`watchdog: stage '${stageName}' ${kind}: ${message}`);
    return { stage: stageName, kind, message, tNs: this.#clock.nowNs() };
  }

  #dropLate(stageName: string): void {
    this.stats.lateResultsDropped++;
    this.#metrics.count(`watchdog.${stageName}.lateResultsDropped`);
  }
}

/** `stage(name, work)` under `watchdog` with its deadline (the same as passing both in the stage options). */
export function watchedStage<F extends Frame>(
  name: string,
  work: (frame: F, abandoned?: AbortSignal) => void | Promise<void>,
  options: StageOptions & { watchdog: StageWatchdog; deadlineMs: number },
): OperatorFunction<F, F> {
  return stage<F>(name, work, options);
}

/** The per-frame blanking decision as a stage (put it after the perception stages, before render). */
export function watchdogCheckStage<F extends Frame>(watchdog: StageWatchdog, options: StageOptions): OperatorFunction<F, F> {
  // The check itself is not guarded: it is what turns the guarded stages' faults into blanking.
  return stage<F>('watchdog', (frame) => void watchdog.frameDone(frame), { ...options, watchdog: undefined });
}
