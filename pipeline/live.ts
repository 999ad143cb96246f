/**
 * The live job (`arhud run`): frames from a camera (LiveCamera: V4L2, a stream or a file through
 * ffmpeg), the vehicle's signals attached to each frame, the same graph extensions as a replay,
 * optionally an output recording. Nothing queues without bound: the camera drops the oldest frame
 * when the graph is busy (LiveCamera's maxInFlight), so what is drawn is always the newest.
 */
import { Observable, defaultIfEmpty, lastValueFrom, takeUntil, timer } from 'rxjs';
import type { Clock } from './clock.js';
import { measureExposure } from './exposure.js';
import type { CameraIntrinsics, Frame } from './frame.js';
import { PipelineMetrics, type LatencySummary } from './metrics.js';
import { queuedMap } from './queued-map.js';
import { RecordingWriter } from './recording/writer.js';
import { extensionStages, type ReplayExtensionFactory } from './replay.js';
import type { LiveCamera, LiveCameraStats } from './sources/live-camera.js';
import type { VehicleSignals } from './sources/vehicle-signals.js';
import { stage } from './stage.js';
import type { StageWatchdog } from './watchdog.js';

/** The stamp a live frame starts with: its capture (arrival) time, so latencies count from the camera. */
export const CAPTURE_STAMP = 'capture';
/** The stage whose end is "published": the frame handed to the display link. */
export const PUBLISH_STAGE = 'link';

/**
 * Capture-to-publish latency of a finished frame, ms: from its first stamp (the capture, or the
 * decode of a recorded frame) to the end of the link stage; undefined when it was not published.
 */
export function captureToPublishMs(frame: Frame): number | undefined {
  const entered = frame.stamps[0];
  const published = frame.stamps.findLast((s) => s.stage === PUBLISH_STAGE);
  return entered && published ? Number(published.tExitNs - entered.tEnterNs) / 1e6 : undefined;
}

export interface LiveRunOptions {
  camera: LiveCamera;
  clock: Clock;
  metrics?: PipelineMetrics;
  /** Vehicle signals; a frame gets the state only while it is fresh (else none: the HUD shows degraded). */
  signals?: VehicleSignals;
  /** Intrinsics of the camera (a live source carries no calibration). */
  intrinsics?: CameraIntrinsics;
  extensions?: readonly ReplayExtensionFactory[];
  watchdog?: StageWatchdog;
  /** Output recording of what the extensions write (detections, HUD frames, scenes). */
  output?: string;
  /** Stop after this long (default: until the source ends or `signal` aborts). */
  durationS?: number;
  signal?: AbortSignal;
  onFrame?: (frame: Frame) => void;
}

export interface LiveRunSummary {
  frames: number;
  wallS: number;
  fps: number;
  interrupted: boolean;
  camera: LiveCameraStats;
  stages: Record<string, LatencySummary>;
  counters: Record<string, number>;
  rssEndMB: number;
  output?: string;
  messagesWritten: number;
}

export async function runLive(options: LiveRunOptions): Promise<LiveRunSummary> {
  const { camera, clock, signals } = options;
  const metrics = options.metrics ?? new PipelineMetrics();
  const context = { clock, metrics, watchdog: options.watchdog };
  const extensions = (options.extensions ?? []).map((create) => create(context));
  const writer = options.output ? await RecordingWriter.create(options.output) : undefined;
  const tStartNs = clock.nowNs();
  let frames = 0;
  const stop$ = new Observable<void>((subscriber) => {
    const onAbort = () => subscriber.next();
    if (options.signal?.aborted) subscriber.next();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const durationSub = options.durationS !== undefined ? timer(options.durationS * 1000).subscribe(() => subscriber.next()) : undefined;
    return () => {
      options.signal?.removeEventListener('abort', onAbort);
      durationSub?.unsubscribe();
    };
  });

  const frames$ = camera.frames().pipe(
    takeUntil(stop$),
    stage(
      'signals',
      (frame) => {
        frame.stamps.unshift({ stage: CAPTURE_STAMP, tEnterNs: frame.tCaptureNs, tExitNs: frame.tCaptureNs });
        const state = signals?.fresh(frame.tCaptureNs);
        if (state) frame.vehicle = state;
        else metrics.count('signals.missingOrStale');
        if (options.intrinsics) frame.camera = options.intrinsics;
      },
      { clock, metrics },
    ),
    stage('exposure', (frame) => void (frame.exposure = measureExposure(frame.image)), { clock, metrics }),
    extensionStages(extensions),
    queuedMap(async (frame: Frame) => {
      const latencyMs = captureToPublishMs(frame);
      if (latencyMs !== undefined) metrics.latency('capture_to_publish').record(latencyMs);
      // Recording is background work: after the link has published, off the capture-to-display path.
      if (writer) {
        const logTimeNs = frame.tCaptureNs;
        for (const extension of extensions) await extension.writeOutputs?.(frame, writer, logTimeNs);
      }
      options.onFrame?.(frame);
      frame.release();
      frames++;
      return frame.seq;
    }),
  );
  let failure: unknown;
  try {
    await lastValueFrom(frames$.pipe(defaultIfEmpty(-1)));
  } catch (error) {
    failure = error;
  }
  // What was recorded is kept whatever happened.
  await writer?.close();
  if (failure !== undefined) throw failure;
  const wallS = Number(clock.nowNs() - tStartNs) / 1e9;
  const summary = metrics.summary();
  return {
    frames,
    wallS,
    fps: frames / Math.max(wallS, 1e-9),
    interrupted: options.signal?.aborted ?? false,
    camera: { ...camera.stats },
    stages: summary.stages,
    counters: summary.counters,
    rssEndMB: process.memoryUsage.rss() / (1024 * 1024),
    ...(options.output ? { output: options.output } : {}),
    messagesWritten: writer?.messageCount ?? 0,
  };
}
