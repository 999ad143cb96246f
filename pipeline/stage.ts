import { filter, type OperatorFunction } from 'rxjs';
import type { Clock } from './clock.js';
import type { Frame } from './frame.js';
import type { PipelineMetrics } from './metrics.js';
import { queuedMap } from './queued-map.js';
import type { StageWatchdog } from './watchdog.js';

/** What every stage of a run shares: its clock, its metrics and (in a guarded graph) its watchdog. */
export interface StageContext {
  clock: Clock;
  metrics: PipelineMetrics;
  /**
   * When given, the stage's work runs under the watchdog: a throw or an overrun of
   * `watchdog.overrunFactor` x `deadlineMs` is recorded on the frame (`frame.stageFaults`) and the
   * frame goes on without the stage's result, instead of erroring the stream or waiting on a hung stage.
   */
  watchdog?: StageWatchdog;
}

export interface StageOptions extends StageContext {
  /** Deadline of one frame's work in this stage, ms (what the watchdog checks). Default: the watchdog's. */
  deadlineMs?: number;
  /** Frames worked on at once; output order is kept. Default 1. */
  concurrency?: number;
  /** Frames waiting for this stage; when full the oldest is dropped, released and counted. Default Infinity. */
  queueCapacity?: number;
  /** 'fail' errors the stream; 'skip' releases the frame, counts `<name>.errors` and goes on. Default 'fail'. */
  onError?: 'fail' | 'skip';
}

/**
 * Wraps one unit of per-frame work as an operator that stamps entry and exit times on the frame and
 * records the stage latency. Frames dropped by a full queue are released and counted as
 * `<name>.drops`. Under a watchdog (`options.watchdog`), `work` gets an AbortSignal that fires when
 * the watchdog abandons it: late work must not write into the frame after that.
 */
export function stage<F extends Frame>(
  name: string,
  work: (frame: F, abandoned?: AbortSignal) => void | Promise<void>,
  options: StageOptions,
): OperatorFunction<F, F> {
  const { clock, metrics, watchdog } = options;
  const latency = metrics.latency(name);
  const skipErrors = options.onError === 'skip';
  const deadlineMs = options.deadlineMs ?? watchdog?.defaultDeadlineMs;
  const guarded = (frame: F): Promise<void> =>
    watchdog!.guard(name, deadlineMs!, (abandoned) => work(frame, abandoned)).then((result) => {
      if (!result.ok) (frame.stageFaults ??= []).push(result.fault);
    });
  const perform = watchdog ? guarded : work;

  const run = (frame: F): F | undefined | Promise<F | undefined> => {
    const tEnterNs = clock.nowNs();
    const finish = () => {
      const tExitNs = clock.nowNs();
      frame.stamps.push({ stage: name, tEnterNs, tExitNs });
      latency.record(Number(tExitNs - tEnterNs) / 1e6);
      return frame;
    };
    const fail = (error: unknown): undefined => {
      if (!skipErrors) {
        frame.release();
        throw error instanceof Error ? error : new Error(`stage '${name}': ${String(error)}`);
      }
      metrics.count(`${name}.errors`);
      frame.release();
      return undefined;
    };
    try {
      const result = perform(frame);
      return result instanceof Promise ? result.then(finish, fail) : finish();
    } catch (error) {
      return fail(error);
    }
  };

  return (source) =>
    source.pipe(
      queuedMap(run, {
        concurrency: options.concurrency ?? 1,
        queueCapacity: options.queueCapacity ?? Infinity,
        onDrop: (frame) => {
          metrics.count(`${name}.drops`);
          frame.release();
        },
        onDiscard: (frame) => frame?.release(),
      }),
      filter((frame): frame is F => frame !== undefined),
    );
}
