import { filter, type OperatorFunction } from 'rxjs';
import type { Clock } from './clock.js';
import type { Frame } from './frame.js';
import type { PipelineMetrics } from './metrics.js';
import { queuedMap } from './queued-map.js';

export interface StageOptions {
  clock: Clock;
  metrics: PipelineMetrics;
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
 * `<name>.drops`.
 */
export function stage<F extends Frame>(
  name: string,
  work: (frame: F) => void | Promise<void>,
  options: StageOptions,
): OperatorFunction<F, F> {
  const { clock, metrics } = options;
  const latency = metrics.latency(name);
  const skipErrors = options.onError === 'skip';

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
      const result = work(frame);
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
