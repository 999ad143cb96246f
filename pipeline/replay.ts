/**
 * The replay job: a recording played through the pipeline that exists (decode -> exposure) into a
 * new recording, with per-stage latency, pool and memory figures. `--afap` output is a pure function
 * of the input: two runs write byte-identical recordings (nothing measured in wall time goes in).
 */
import { Observable, defaultIfEmpty, lastValueFrom, type OperatorFunction } from 'rxjs';
import { BufferPool, type BufferPoolStats } from './buffer-pool.js';
import { RealClock, type Clock } from './clock.js';
import { measureExposure } from './exposure.js';
import { Frame } from './frame.js';
import { decodeImageInto } from './jpeg.js';
import { PipelineMetrics, type LatencySummary } from './metrics.js';
import { queuedMap } from './queued-map.js';
import { RecordingError, firstLine } from './recording/errors.js';
import { RecordingReader, type RecordedMessage } from './recording/reader.js';
import { CODECS_BY_TOPIC, TOPIC_CAMERA, TOPIC_FRAME_REPORT, frameReportCodec } from './recording/topics.js';
import { RecordingWriter } from './recording/writer.js';
import { RecordingPlayer, type CameraSample } from './sources/replay.js';
import { stage, type StageContext } from './stage.js';
import type { StageWatchdog } from './watchdog.js';

/** Frames between the source and the end of the sink in afap mode (bounds memory, never drops). */
export const AFAP_MAX_IN_FLIGHT = 5;
/** JPEG decodes running at once: libvips decodes one image per thread; two cores here. */
export const DECODE_CONCURRENCY = 3;
/** Frames waiting for the decoder in paced mode before the oldest is dropped. */
export const PACED_DECODE_QUEUE = 2;
/**
 * Frames between decode and the end of the graph in paced mode: a new frame finding this many still
 * in the graph is dropped at entry (counted `decode.drops`), so a slow stage makes the pipeline skip
 * frames instead of queueing them (a queued frame would be drawn late, as if it were current).
 */
export const PACED_MAX_IN_FLIGHT = 3;
/** Frames treated as warm-up (pool filling, JIT) before steady-state figures start. */
export const WARMUP_FRAMES = 10;

/** What a module adds to the replay graph: stages after exposure, and outputs written per frame. */
export interface ReplayExtension {
  stages?: OperatorFunction<Frame, Frame>[];
  /** Writes this extension's outputs of `frame` (called in the record stage, in frame order). */
  writeOutputs?: (frame: Frame, writer: RecordingWriter, logTimeNs: bigint) => Promise<void>;
}

/** Builds an extension for one run; gets the run's clock and metrics so its stages are measured alike. */
export type ReplayExtensionFactory = (context: StageContext) => ReplayExtension;

/** The extensions' stages, in order, as one operator. */
export function extensionStages(extensions: readonly ReplayExtension[]): OperatorFunction<Frame, Frame> {
  return (frames: Observable<Frame>) => extensions.flatMap((e) => e.stages ?? []).reduce((stream, op) => stream.pipe(op), frames);
}

export interface ReplayJobOptions {
  input: string;
  output: string;
  /** 'afap' or a speed factor for paced replay. */
  pacing: 'afap' | { speed: number };
  topics?: readonly string[];
  startS?: number;
  endS?: number;
  loops?: number;
  strict?: boolean;
  /** Clock for stage stamps and pacing. Default RealClock. */
  clock?: Clock;
  signal?: AbortSignal;
  onProblem?: (problem: RecordingError) => void;
  onProgress?: (framesDone: number, framesTotal: number | undefined) => void;
  /** Stages and outputs beyond decode -> exposure -> record (e.g. detection). */
  extensions?: readonly ReplayExtensionFactory[];
  /** Guards every extension stage (faults and overruns blank the AR overlays instead of stopping the run). */
  watchdog?: StageWatchdog;
  /** Metrics of the run (default: a new PipelineMetrics); pass one to share it with a scheduler or a report. */
  metrics?: PipelineMetrics;
  /** Called for each finished frame (in order, before it is released), e.g. to collect a report's timeline. */
  onFrame?: (frame: Frame) => void;
}

export interface ReplaySummary {
  input: string;
  output: string;
  pacing: 'afap' | `${number}x`;
  interrupted: boolean;
  frames: number;
  loopsCompleted: number;
  messagesRead: number;
  messagesWritten: number;
  messagesSkipped: number;
  framesDropped: number;
  problems: number;
  /** Recorded time covered by the frames replayed (all loops). */
  recordedS: number;
  wallS: number;
  fps: number;
  xRealtime: number;
  stages: Record<string, LatencySummary>;
  counters: Record<string, number>;
  pool: BufferPoolStats;
  /** Frame buffers the pool had to create after warm-up (target 0). */
  poolAllocsSteadyState: number;
  rssWarmMB: number;
  rssEndMB: number;
  /**
   * Memory growth over the run. With 3+ loops: the least-squares trend of RSS at each loop's end x
   * number of loops (the allocator moves RSS by +-15 MB between loops with no trend, which a
   * two-point difference would report as growth or shrinkage). Otherwise RSS at the end minus RSS
   * after WARMUP_FRAMES frames. Sampled after a full GC when the process runs with --expose-gc.
   */
  rssGrowthMB: number;
  /** RSS at the end minus RSS after warm-up (first loop when looping), the plain two-point figure. */
  rssEndMinusWarmMB: number;
  /** V8 heap in use and memory outside it held by JS objects (Buffers, wasm), end minus warm-up: our own leaks show here. */
  heapGrowthMB: number;
  externalGrowthMB: number;
  /** RSS at the end of each loop. */
  rssByLoopMB: number[];
}

const mb = (bytes: number) => bytes / (1024 * 1024);

/**
 * Resident memory after a full GC when the process runs with --expose-gc (the benchmark does):
 * decoded frames from libvips are freed only at GC, so without it RSS shows GC timing, not leaks.
 */
function settledRssBytes(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage.rss();
}

export async function runReplay(options: ReplayJobOptions): Promise<ReplaySummary> {
  const clock = options.clock ?? new RealClock();
  const metrics = options.metrics ?? new PipelineMetrics();
  const pool = new BufferPool({ name: 'frames' });
  let problems = 0;
  const onProblem = (problem: RecordingError) => {
    problems++;
    options.onProblem?.(problem);
  };
  const reader = await RecordingReader.open(options.input, { strict: options.strict, onProblem });
  const speed = options.pacing === 'afap' ? undefined : options.pacing.speed;
  let writer: RecordingWriter | undefined;
  try {
    const afap = speed === undefined;
    const player = new RecordingPlayer(reader, {
      pacing: afap ? { mode: 'afap', maxInFlight: AFAP_MAX_IN_FLIGHT } : { mode: 'paced', speed, clock },
      topics: options.topics,
      startS: options.startS,
      endS: options.endS,
      loops: options.loops,
      strict: options.strict,
      onProblem,
      signal: options.signal,
    });
    writer = await RecordingWriter.create(options.output);
    const out = writer;
    const extensions = (options.extensions ?? []).map((create) => create({ clock, metrics, watchdog: options.watchdog }));
    const framesPerLoop = countFramesInRange(reader, player);
    const framesTotal = Number.isFinite(options.loops ?? 1) ? framesPerLoop * (options.loops ?? 1) : undefined;

    let framesDone = 0;
    let framesInGraph = 0;
    let currentLoop = 0;
    let warm: { allocations: number; rssBytes: number; heapBytes: number; externalBytes: number } | undefined;
    const rssByLoopMB: number[] = [];
    const loops = options.loops ?? 1;
    const takeWarmSnapshot = () => {
      const rssBytes = settledRssBytes();
      const { heapUsed, external } = process.memoryUsage();
      warm = { allocations: pool.stats.allocations, rssBytes, heapBytes: heapUsed, externalBytes: external };
    };

    const writeOutputs = async (frame: Frame) => {
      const origin = frame.origin!;
      await writePassThrough(out, origin.sideMessages);
      await writePassThrough(out, [{ ...origin.message, logTimeNs: origin.outputLogTimeNs }]);
      const exposure = frame.exposure!;
      await out.write(TOPIC_FRAME_REPORT, frameReportCodec, origin.outputLogTimeNs, {
        tNs: frame.tCaptureNs,
        seq: frame.seq,
        width: frame.image.width,
        height: frame.image.height,
        meanLuma: round6(exposure.meanLuma),
        darkFraction: round6(exposure.darkFraction),
        clippedFraction: round6(exposure.clippedFraction),
      });
      for (const extension of extensions) await extension.writeOutputs?.(frame, out, origin.outputLogTimeNs);
    };

    const tStartNs = process.hrtime.bigint();
    const frames$ = player.samples().pipe(
      decodeSamples(player, pool, {
        clock,
        metrics,
        queueCapacity: afap ? Infinity : PACED_DECODE_QUEUE,
        reserveBuffers: AFAP_MAX_IN_FLIGHT,
        // afap: the player's own in-flight bound paces the source; paced: drop at entry when full.
        admit: afap ? undefined : () => framesInGraph < PACED_MAX_IN_FLIGHT,
        onDecoded: () => framesInGraph++,
        strict: options.strict,
        onProblem,
      }),
      stage('exposure', (frame) => void (frame.exposure = measureExposure(frame.image)), { clock, metrics }),
      extensionStages(extensions),
      stage('record', writeOutputs, { clock, metrics }),
      queuedMap((frame: Frame) => {
        // Memory is sampled between frames, outside every stage, so a forced GC never counts as stage latency.
        if (frame.origin!.loop !== currentLoop) {
          rssByLoopMB.push(mb(settledRssBytes()));
          currentLoop = frame.origin!.loop;
          if (loops > 1 && currentLoop === 1) takeWarmSnapshot();
        }
        const first = frame.stamps[0];
        const last = frame.stamps.at(-1);
        if (first && last) metrics.latency('end_to_end').record(Number(last.tExitNs - first.tEnterNs) / 1e6);
        options.onFrame?.(frame);
        frame.release();
        framesInGraph--;
        player.done();
        framesDone++;
        if (loops === 1 && framesDone === WARMUP_FRAMES) takeWarmSnapshot();
        options.onProgress?.(framesDone, framesTotal);
        return frame.seq;
      }),
    );
    let failure: unknown;
    try {
      await lastValueFrom(frames$.pipe(defaultIfEmpty(-1)));
    } catch (error) {
      failure = error;
    }
    // Whatever happened, what was read is written and the file is finalized.
    await writePassThrough(out, player.trailing).catch((error: unknown) => (failure ??= error));
    await out.close();
    if (failure !== undefined) throw failure;
    rssByLoopMB.push(mb(settledRssBytes()));
    const wallS = Number(process.hrtime.bigint() - tStartNs) / 1e9;
    const recordedS = framesDone > 0 ? estimateRecordedS(player, framesDone, framesPerLoop) : 0;
    const rssEnd = settledRssBytes();
    const memoryEnd = process.memoryUsage();
    const summary = metrics.summary();
    return {
      input: options.input,
      output: options.output,
      pacing: afap ? 'afap' : `${speed}x`,
      interrupted: options.signal?.aborted ?? false,
      frames: framesDone,
      loopsCompleted: player.stats.loopsCompleted,
      messagesRead: player.stats.messagesRead,
      messagesWritten: out.messageCount,
      messagesSkipped: player.stats.messagesSkipped,
      framesDropped: metrics.counter('decode.drops'),
      problems,
      recordedS,
      wallS,
      fps: framesDone / wallS,
      xRealtime: recordedS / wallS,
      stages: summary.stages,
      counters: summary.counters,
      pool: pool.stats,
      poolAllocsSteadyState: warm ? pool.stats.allocations - warm.allocations : pool.stats.allocations,
      rssWarmMB: mb(warm?.rssBytes ?? rssEnd),
      rssEndMB: mb(rssEnd),
      rssGrowthMB: rssByLoopMB.length >= 3 ? trendPerStep(rssByLoopMB) * rssByLoopMB.length : mb(rssEnd - (warm?.rssBytes ?? rssEnd)),
      rssEndMinusWarmMB: mb(rssEnd - (warm?.rssBytes ?? rssEnd)),
      heapGrowthMB: mb(memoryEnd.heapUsed - (warm?.heapBytes ?? memoryEnd.heapUsed)),
      externalGrowthMB: mb(memoryEnd.external - (warm?.externalBytes ?? memoryEnd.external)),
      rssByLoopMB,
    };
  } finally {
    await writer?.close().catch(() => undefined);
    await reader.close();
  }
}

interface DecodeOptions {
  clock: Clock;
  metrics: PipelineMetrics;
  queueCapacity: number;
  /** Frame buffers to set aside once the first frame's size is known (the most ever in flight). */
  reserveBuffers?: number;
  /** Asked as each sample starts decoding: false drops it (counted `decode.drops`). Default: always admit. */
  admit?: () => boolean;
  /** Called for each frame decoded (to count frames in the graph). */
  onDecoded?: () => void;
  strict?: boolean;
  onProblem: (problem: RecordingError) => void;
}

/** A sample whose image could not be decoded: its side messages still go to the output. */
interface SkippedSample {
  skippedSideMessages: RecordedMessage[];
}

/**
 * Decodes samples into pooled frames ('decode' stage), DECODE_CONCURRENCY at a time, in order. An
 * undecodable image is reported and skipped (or thrown when strict); the side messages of a
 * skipped or dropped sample ride on with the next frame (or, after the last one, with the
 * player's trailing messages), so pass-through loses nothing and keeps its order.
 */
export function decodeSamples(player: RecordingPlayer, pool: BufferPool, options: DecodeOptions): OperatorFunction<CameraSample, Frame> {
  const { clock, metrics } = options;
  const latency = metrics.latency('decode');
  // Side messages of dropped samples: taken by the next sample to start, which is the next in order.
  let fromDropped: RecordedMessage[] = [];
  let reserved = false;

  const decode = async (sample: CameraSample): Promise<Frame | SkippedSample> => {
    const sideMessages = fromDropped.length > 0 ? fromDropped.concat(sample.sideMessages) : sample.sideMessages;
    fromDropped = [];
    if (options.admit && !options.admit()) {
      metrics.count('decode.drops');
      player.done();
      return { skippedSideMessages: sideMessages };
    }
    const tEnterNs = clock.nowNs();
    let decoded;
    try {
      decoded = await decodeImageInto(pool, sample.image.data);
    } catch (error) {
      const problem = new RecordingError(
        { file: player.reader.path, topic: sample.message.topic, logTimeNs: sample.message.logTimeNs },
        `undecodable ${sample.image.format.toUpperCase()} (${firstLine(error)})`,
        { cause: error },
      );
      if (options.strict) throw problem;
      metrics.count('decode.errors');
      options.onProblem(problem);
      player.done();
      return { skippedSideMessages: sideMessages };
    }
    if (!reserved && options.reserveBuffers) {
      reserved = true;
      pool.reserve(decoded.buffer.bytes.byteLength, options.reserveBuffers);
    }
    const frame = new Frame({
      seq: sample.seq,
      tCaptureNs: sample.tCaptureNs,
      image: decoded.image,
      buffer: decoded.buffer,
      vehicle: sample.vehicle,
      camera: sample.camera,
      origin: { message: sample.message, loop: sample.loop, outputLogTimeNs: sample.outputLogTimeNs, sideMessages },
    });
    const tExitNs = clock.nowNs();
    frame.stamps.push({ stage: 'decode', tEnterNs, tExitNs });
    latency.record(Number(tExitNs - tEnterNs) / 1e6);
    options.onDecoded?.();
    return frame;
  };

  return (source) =>
    source.pipe(
      queuedMap(decode, {
        concurrency: DECODE_CONCURRENCY,
        queueCapacity: options.queueCapacity,
        onDrop: (sample) => {
          metrics.count('decode.drops');
          fromDropped = fromDropped.concat(sample.sideMessages);
          player.done();
        },
        onDiscard: (value) => (value instanceof Frame ? value.release() : undefined),
      }),
      carrySkippedSideMessages(player, () => {
        const left = fromDropped;
        fromDropped = [];
        return left;
      }),
    );
}

/** Folds the side messages of skipped samples into the next frame, in order; leftovers become trailing. */
function carrySkippedSideMessages(player: RecordingPlayer, takeLeftovers: () => RecordedMessage[]): OperatorFunction<Frame | SkippedSample, Frame> {
  return (source) =>
    new Observable<Frame>((subscriber) => {
      let carried: RecordedMessage[] = [];
      return source.subscribe({
        next: (value) => {
          if (!(value instanceof Frame)) {
            carried = carried.concat(value.skippedSideMessages);
            return;
          }
          if (carried.length > 0) {
            value.origin!.sideMessages.unshift(...carried);
            carried = [];
          }
          subscriber.next(value);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          player.trailing.unshift(...carried, ...takeLeftovers());
          subscriber.complete();
        },
      });
    });
}

async function writePassThrough(writer: RecordingWriter, messages: readonly RecordedMessage[]): Promise<void> {
  for (const message of messages) {
    const codec = CODECS_BY_TOPIC.get(message.topic);
    if (codec) await writer.writeEncoded(message.topic, codec, message.logTimeNs, message.data);
  }
}

function countFramesInRange(reader: RecordingReader, player: RecordingPlayer): number {
  const frames = reader.topic(TOPIC_CAMERA)?.messageCount ?? 0;
  const recordedSpan = reader.endNs - reader.startNs;
  if (recordedSpan <= 0n) return frames;
  const fraction = Number(player.endNs - player.startNs) / Number(recordedSpan);
  return Math.max(1, Math.round(frames * Math.min(1, fraction)));
}

/** Recorded seconds the replayed frames span: frame count x the recording's mean frame period. */
function estimateRecordedS(player: RecordingPlayer, framesDone: number, framesPerLoop: number): number {
  const spanS = Number(player.endNs - player.startNs) / 1e9;
  const periodS = framesPerLoop > 1 ? spanS / (framesPerLoop - 1) : 0.1;
  return framesDone * periodS;
}

/** Least-squares slope of `values` against their index. */
function trendPerStep(values: readonly number[]): number {
  const n = values.length;
  const meanX = (n - 1) / 2;
  const meanY = values.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  values.forEach((y, x) => {
    sxy += (x - meanX) * (y - meanY);
    sxx += (x - meanX) ** 2;
  });
  return sxx === 0 ? 0 : sxy / sxx;
}

/** Fixed precision keeps JSON output identical across runs and machines for equal inputs. */
function round6(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
