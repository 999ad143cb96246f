import { Observable } from 'rxjs';
import type { Clock } from '../clock.js';
import type { CameraIntrinsics, VehicleState } from '../frame.js';
import { RecordingError, firstLine } from '../recording/errors.js';
import type { RecordedMessage, RecordingReader } from '../recording/reader.js';
import {
  CODECS_BY_TOPIC,
  TOPIC_CAMERA,
  TOPIC_CAMERA_CALIBRATION,
  TOPIC_VEHICLE_STATE,
  type CompressedImageMessage,
} from '../recording/topics.js';

/** Slowest and fastest paced replay (x recorded time). */
export const MIN_REPLAY_SPEED = 0.1;
export const MAX_REPLAY_SPEED = 20;
/** Frame period assumed for the gap between loops when a recording has a single frame. */
const DEFAULT_FRAME_PERIOD_NS = 100_000_000n;

export type ReplayPacing =
  /** As fast as possible; at most `maxInFlight` samples between emission and `done()`, so nothing is ever dropped. */
  | { mode: 'afap'; maxInFlight: number }
  /** Messages leave at recorded log time / speed on `clock`. */
  | { mode: 'paced'; speed: number; clock: Clock };

export interface ReplayOptions {
  pacing: ReplayPacing;
  /** Topics to play (default: all known topics in the recording). */
  topics?: readonly string[];
  /** Seconds from the recording's first message; inclusive bounds. */
  startS?: number;
  endS?: number;
  /** Times to play the range; Infinity loops until aborted. Default 1. */
  loops?: number;
  /** Topic carrying the frames. Default '/camera/front'. */
  cameraTopic?: string;
  /** Throw on the first bad message instead of skipping and counting it. */
  strict?: boolean;
  onProblem?: (problem: RecordingError) => void;
  signal?: AbortSignal;
}

/** One camera message ready to decode, with the context the pipeline needs around it. */
export interface CameraSample {
  /** 0, 1, 2... over the whole replay, loops included. */
  seq: number;
  loop: number;
  message: RecordedMessage;
  image: CompressedImageMessage;
  /** Log time to write this sample's outputs at: recorded time shifted by whole loops. */
  outputLogTimeNs: bigint;
  /** Capture time shifted like `outputLogTimeNs`, so capture times stay increasing across loops. */
  tCaptureNs: bigint;
  /** Other topics' messages since the previous sample (log times already shifted for the loop). */
  sideMessages: RecordedMessage[];
  vehicle: VehicleState | undefined;
  camera: CameraIntrinsics | undefined;
}

export interface ReplayStats {
  messagesRead: number;
  samplesEmitted: number;
  /** Messages skipped as corrupt, out of order or of an unknown topic. */
  messagesSkipped: number;
  loopsCompleted: number;
}

/**
 * Plays a recording as a stream of `CameraSample`s: seeks, filters topics, loops, paces by log
 * time x speed on a `Clock` (or runs as fast as possible with a bounded number in flight), checks
 * every payload and skips (or, strict, throws on) corrupt and out-of-order messages.
 */
export class RecordingPlayer {
  readonly reader: RecordingReader;
  readonly options: ReplayOptions;
  readonly stats: ReplayStats = { messagesRead: 0, samplesEmitted: 0, messagesSkipped: 0, loopsCompleted: 0 };
  /** Side messages after the last sample; complete once `samples()` completes. */
  readonly trailing: RecordedMessage[] = [];
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly topics: readonly string[];
  readonly #cameraTopic: string;
  #inFlight = 0;
  #wakeGate: (() => void) | undefined;

  constructor(reader: RecordingReader, options: ReplayOptions) {
    this.reader = reader;
    this.options = options;
    this.#cameraTopic = options.cameraTopic ?? TOPIC_CAMERA;
    const { pacing } = options;
    if (pacing.mode === 'paced' && !(pacing.speed >= MIN_REPLAY_SPEED && pacing.speed <= MAX_REPLAY_SPEED)) {
      throw new RangeError(`replay: speed must be in [${MIN_REPLAY_SPEED}, ${MAX_REPLAY_SPEED}], got ${pacing.speed}`);
    }
    if (pacing.mode === 'afap' && !(Number.isInteger(pacing.maxInFlight) && pacing.maxInFlight >= 1)) {
      throw new RangeError(`replay: maxInFlight must be an integer >= 1, got ${pacing.maxInFlight}`);
    }
    const loops = options.loops ?? 1;
    if (!(loops >= 1) || (!Number.isInteger(loops) && loops !== Infinity)) throw new RangeError(`replay: loops must be an integer >= 1 or Infinity, got ${loops}`);
    this.topics = this.#checkTopics();
    [this.startNs, this.endNs] = this.#range();
  }

  /** The sink calls this once per sample when it has finished with it (frees a slot in afap mode). */
  done(): void {
    this.#inFlight--;
    const wake = this.#wakeGate;
    this.#wakeGate = undefined;
    wake?.();
  }

  /** Cold stream of samples; subscribe once. Completes at the end (or on abort), errors when strict. */
  samples(): Observable<CameraSample> {
    return new Observable<CameraSample>((subscriber) => {
      const stop = new AbortController();
      const outer = this.options.signal;
      const onOuterAbort = () => stop.abort(outer?.reason);
      if (outer?.aborted) stop.abort(outer.reason);
      else outer?.addEventListener('abort', onOuterAbort, { once: true });
      this.#play(stop.signal, (sample) => subscriber.next(sample)).then(
        () => subscriber.complete(),
        (error: unknown) => (stop.signal.aborted && !(error instanceof RecordingError) ? subscriber.complete() : subscriber.error(error)),
      );
      return () => {
        outer?.removeEventListener('abort', onOuterAbort);
        stop.abort(new Error('replay: unsubscribed'));
        this.#wakeGate?.();
      };
    });
  }

  async #play(signal: AbortSignal, emit: (sample: CameraSample) => void): Promise<void> {
    const { pacing } = this.options;
    const loops = this.options.loops ?? 1;
    const periodNs = this.#loopPeriodNs();
    const clockStartNs = pacing.mode === 'paced' ? pacing.clock.nowNs() : 0n;
    let seq = 0;
    let side: RecordedMessage[] = [];
    let vehicle: VehicleState | undefined;
    let camera: CameraIntrinsics | undefined;
    for (let loop = 0; loop < loops && !signal.aborted; loop++) {
      const shiftNs = BigInt(loop) * periodNs;
      const lastTimeByTopic = new Map<string, bigint>();
      for await (const message of this.reader.messages({ topics: this.topics, startNs: this.startNs, endNs: this.endNs })) {
        if (signal.aborted) break;
        this.stats.messagesRead++;
        if (pacing.mode === 'paced') {
          const dueNs = clockStartNs + BigInt(Math.round(Number(message.logTimeNs - this.startNs + shiftNs) / pacing.speed));
          await pacing.clock.sleepUntilNs(dueNs, signal);
        }
        const decoded = this.#decode(message, lastTimeByTopic);
        if (decoded === undefined) continue;
        const shifted = shiftNs === 0n ? message : { ...message, logTimeNs: message.logTimeNs + shiftNs };
        if (message.topic === this.#cameraTopic) {
          if (pacing.mode === 'afap') await this.#waitForSlot(pacing.maxInFlight, signal);
          if (signal.aborted) break;
          const image = decoded as CompressedImageMessage;
          this.#inFlight++;
          this.stats.samplesEmitted++;
          emit({
            seq: seq++,
            loop,
            message: shifted,
            image,
            outputLogTimeNs: shifted.logTimeNs,
            tCaptureNs: image.tNs + shiftNs,
            sideMessages: side,
            vehicle,
            camera,
          });
          side = [];
          continue;
        }
        if (message.topic === TOPIC_VEHICLE_STATE) {
          const state = decoded as VehicleState;
          vehicle = { ...state, tNs: state.tNs + shiftNs };
        } else if (message.topic === TOPIC_CAMERA_CALIBRATION) {
          camera = (decoded as { intrinsics: CameraIntrinsics }).intrinsics;
        }
        side.push(shifted);
      }
      if (!signal.aborted) this.stats.loopsCompleted++;
    }
    this.trailing.push(...side);
    if (signal.aborted) signal.throwIfAborted();
  }

  /** Validates a message; returns its decoded payload, or undefined when it was skipped. */
  #decode(message: RecordedMessage, lastTimeByTopic: Map<string, bigint>): unknown {
    const codec = CODECS_BY_TOPIC.get(message.topic);
    const where = { file: this.reader.path, topic: message.topic, logTimeNs: message.logTimeNs };
    const skip = (reason: string, cause?: unknown): undefined => {
      const problem = new RecordingError(where, reason, { cause });
      if (this.options.strict) throw problem;
      this.stats.messagesSkipped++;
      this.options.onProblem?.(problem);
      return undefined;
    };
    if (!codec) return skip(`unknown topic (schema '${message.schemaName}'); not replayed`);
    let payload: unknown;
    try {
      payload = codec.decode(message.data);
    } catch (error) {
      return skip(`corrupt message: ${firstLine(error)}`, error);
    }
    // Time must move forward per topic: payload time where the message has one, else log time.
    const tNs = (payload as { tNs?: bigint }).tNs ?? message.logTimeNs;
    const lastNs = lastTimeByTopic.get(message.topic);
    if (lastNs !== undefined && tNs <= lastNs) {
      return skip(`non-monotonic timestamp: ${tNs} ns is not after the previous message's ${lastNs} ns`);
    }
    lastTimeByTopic.set(message.topic, tNs);
    return payload;
  }

  async #waitForSlot(maxInFlight: number, signal: AbortSignal): Promise<void> {
    while (this.#inFlight >= maxInFlight && !signal.aborted) {
      await new Promise<void>((resolve) => (this.#wakeGate = resolve));
    }
  }

  #checkTopics(): string[] {
    const available = this.reader.topics.map((t) => t.topic);
    const requested = this.options.topics ? [...this.options.topics] : available.filter((topic) => CODECS_BY_TOPIC.has(topic));
    const missing = requested.filter((topic) => !available.includes(topic));
    if (missing.length > 0) {
      throw new RecordingError({ file: this.reader.path }, `missing topic(s) ${missing.map((t) => `'${t}'`).join(', ')}; the recording has ${available.map((t) => `'${t}'`).join(', ') || 'no topics'}`);
    }
    if (this.options.topics === undefined && !available.includes(this.#cameraTopic)) {
      throw new RecordingError({ file: this.reader.path }, `no '${this.#cameraTopic}' topic to replay; the recording has ${available.map((t) => `'${t}'`).join(', ') || 'no topics'}`);
    }
    for (const topic of requested) {
      const codec = CODECS_BY_TOPIC.get(topic);
      const found = this.reader.topic(topic)!.schemaName;
      if (codec && found !== codec.schemaName) {
        throw new RecordingError({ file: this.reader.path, topic }, `wrong schema '${found}' (expected '${codec.schemaName}')`);
      }
    }
    return requested;
  }

  #range(): [bigint, bigint] {
    const { startS, endS } = this.options;
    const durationS = Number(this.reader.endNs - this.reader.startNs) / 1e9;
    const toNs = (seconds: number) => this.reader.startNs + BigInt(Math.round(seconds * 1e9));
    if (startS !== undefined && !(startS >= 0 && startS <= durationS)) {
      throw new RangeError(`replay: start must be in [0, ${durationS.toFixed(3)}] s for ${this.reader.path}, got ${startS}`);
    }
    if (endS !== undefined && !(endS >= (startS ?? 0))) {
      throw new RangeError(`replay: end must be >= start (${startS ?? 0} s), got ${endS}`);
    }
    return [startS === undefined ? this.reader.startNs : toNs(startS), endS === undefined ? this.reader.endNs : toNs(endS)];
  }

  /** Shift between loops: the played span plus one frame period, so loops follow on like recorded frames. */
  #loopPeriodNs(): bigint {
    const spanNs = this.endNs - this.startNs;
    const frames = this.reader.topic(this.#cameraTopic)?.messageCount ?? 0;
    const recordedSpanNs = this.reader.endNs - this.reader.startNs;
    const framePeriodNs = frames > 1 ? recordedSpanNs / BigInt(frames - 1) : DEFAULT_FRAME_PERIOD_NS;
    return spanNs + (framePeriodNs > 0n ? framePeriodNs : DEFAULT_FRAME_PERIOD_NS);
  }
}
