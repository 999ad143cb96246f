/**
 * What the viewer shows comes from a `ViewerSource`: live (a DisplayController on the broker) or
 * replay (an MCAP recording written by `arhud replay --hud`, paced by log time, looping). Both feed
 * the same `ViewerSink`, so the page looks the same.
 */
import { RealClock, type Clock } from '../../pipeline/clock.js';
import type { CameraIntrinsics } from '../../pipeline/frame.js';
import { RecordingReader } from '../../pipeline/recording/reader.js';
import {
  TOPIC_CAMERA,
  TOPIC_CAMERA_CALIBRATION,
  TOPIC_HUD_FRAME,
  cameraCalibrationCodec,
  compressedImageCodec,
} from '../../pipeline/recording/topics.js';
import type { DisplayController } from '../display-controller.js';

/** A HUD panel image for the viewer: raw RGBA (live) or PNG (replay). */
export type ViewerHudImage = { rgba: Uint8Array; widthPx: number; heightPx: number } | { png: Uint8Array };

/** One HUD frame for the viewer. */
export type ViewerHudFrame = ViewerHudImage & {
  sequence: number;
  /** Capture time of the camera frame it was made for, source clock, ns. */
  tCaptureNs: bigint;
  /** Capture-to-display latency (live) or capture-to-output (replay), ms; NaN when unknown. */
  latencyMs: number;
  degraded: boolean;
};

/** Where a source delivers. Pixel and JPEG buffers are only valid during the call: the sink copies what it keeps. */
export interface ViewerSink {
  hudFrame(frame: ViewerHudFrame): void;
  cameraImage(image: { jpeg: Uint8Array; tCaptureNs: bigint }): void;
  cameraIntrinsics(intrinsics: CameraIntrinsics): void;
  /** The HUD output went black (stale, offline, stopped). */
  blank(reason: string): void;
}

/** A source of HUD frames and camera images. */
export interface ViewerSource {
  readonly kind: 'live' | 'replay';
  /** One line for the page header. */
  readonly description: string;
  /** Starts delivering to `sink` (once). */
  start(sink: ViewerSink): void;
  /** Stops delivering and releases what the source owns. */
  stop(): Promise<void>;
}

/** Live: frames the DisplayController shows, its camera previews and its blanks. */
export class LiveViewerSource implements ViewerSource {
  readonly kind = 'live' as const;
  readonly description: string;
  readonly #controller: DisplayController;
  readonly #owned: boolean;
  #unsubscribe: (() => void)[] = [];

  /** `owned`: `stop()` disposes the controller too. */
  constructor(controller: DisplayController, options: { owned?: boolean } = {}) {
    this.#controller = controller;
    this.#owned = options.owned ?? false;
    this.description = `${controller.topics.root} (max frame age ${controller.maxFrameAgeMs} ms)`;
  }

  start(sink: ViewerSink): void {
    if (this.#unsubscribe.length > 0) throw new Error('LiveViewerSource.start: already started');
    const c = this.#controller;
    this.#unsubscribe = [
      c.onFrame(({ header, rgba, shownNs }) =>
        sink.hudFrame({
          rgba,
          widthPx: header.widthPx,
          heightPx: header.heightPx,
          sequence: header.sequence,
          tCaptureNs: header.tCaptureNs,
          latencyMs: Number(shownNs - header.tCaptureNs) / 1e6,
          degraded: header.degraded,
        }),
      ),
      c.onCameraPreview(({ jpeg, tCaptureNs }) => sink.cameraImage({ jpeg, tCaptureNs })),
      c.onBlank((reason) => sink.blank(reason)),
    ];
  }

  async stop(): Promise<void> {
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe = [];
    if (this.#owned) await this.#controller.dispose();
  }
}

/** Options of `ReplayViewerSource.open`; defaults in `REPLAY_DEFAULTS`. */
export interface ReplayViewerSourceOptions {
  /** Recording (.mcap) with `/hud/frame` and/or `/camera/front`. */
  file: string;
  /** Start again at the end; default true. */
  loop?: boolean;
  /** Pace factor vs recorded time; default 1. */
  speed?: number;
  /** Clock that paces playback; default a RealClock. */
  clock?: Clock;
  log?: (line: string) => void;
}

const REPLAY_DEFAULTS = { loop: true, speed: 1 };
const VIEWER_TOPICS = [TOPIC_CAMERA, TOPIC_HUD_FRAME, TOPIC_CAMERA_CALIBRATION];

/** Replay of a recording, paced by log time. Create with `open`. */
export class ReplayViewerSource implements ViewerSource {
  readonly kind = 'replay' as const;
  readonly description: string;
  /** Passes completed over the recording. */
  get loopsCompleted(): number {
    return this.#loops;
  }
  readonly #reader: RecordingReader;
  readonly #loop: boolean;
  readonly #speed: number;
  readonly #clock: Clock;
  readonly #log: (line: string) => void;
  readonly #abort = new AbortController();
  readonly #badTopics = new Set<string>();
  #task: Promise<void> | undefined;
  #loops = 0;

  private constructor(reader: RecordingReader, options: ReplayViewerSourceOptions) {
    this.#reader = reader;
    this.#loop = options.loop ?? REPLAY_DEFAULTS.loop;
    this.#speed = options.speed ?? REPLAY_DEFAULTS.speed;
    this.#clock = options.clock ?? new RealClock();
    this.#log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    const hud = reader.topic(TOPIC_HUD_FRAME)?.messageCount ?? 0;
    const camera = reader.topic(TOPIC_CAMERA)?.messageCount ?? 0;
    this.description = `${options.file} (${hud} HUD frames, ${camera} camera images${this.#loop ? ', looping' : ''})`;
  }

  /** Opens the recording; refuses one with neither HUD frames nor camera images. */
  static async open(options: ReplayViewerSourceOptions): Promise<ReplayViewerSource> {
    const speed = options.speed ?? REPLAY_DEFAULTS.speed;
    if (typeof speed !== 'number' || !(speed > 0 && speed <= 100)) throw new RangeError(`ReplayViewerSource.open: 'speed' must be in (0, 100], got ${String(speed)}`);
    const reader = await RecordingReader.open(options.file, { onProblem: (p) => (options.log ?? (() => undefined))(`viewer: ${p.message}`) });
    if (!reader.topic(TOPIC_HUD_FRAME) && !reader.topic(TOPIC_CAMERA)) {
      await reader.close();
      throw new Error(`ReplayViewerSource.open: ${options.file} has neither '${TOPIC_HUD_FRAME}' nor '${TOPIC_CAMERA}' (record one with \`arhud replay --hud\`)`);
    }
    return new ReplayViewerSource(reader, options);
  }

  start(sink: ViewerSink): void {
    if (this.#task) throw new Error('ReplayViewerSource.start: already started');
    this.#task = this.#play(sink).catch((error: unknown) => {
      if (!this.#abort.signal.aborted) this.#log(`viewer: replay of ${this.#reader.path} stopped: ${(error as Error).message}`);
    });
  }

  async stop(): Promise<void> {
    this.#abort.abort(new Error('viewer stopped'));
    await this.#task;
    await this.#reader.close();
  }

  async #play(sink: ViewerSink): Promise<void> {
    const signal = this.#abort.signal;
    let sequence = 0;
    do {
      const startNs = this.#clock.nowNs();
      let firstLogNs: bigint | undefined;
      for await (const message of this.#reader.messages({ topics: VIEWER_TOPICS })) {
        if (signal.aborted) return;
        firstLogNs ??= message.logTimeNs;
        const dueNs = startNs + BigInt(Math.round(Number(message.logTimeNs - firstLogNs) / this.#speed));
        await this.#clock.sleepUntilNs(dueNs, signal);
        try {
          if (message.topic === TOPIC_CAMERA_CALIBRATION) {
            sink.cameraIntrinsics(cameraCalibrationCodec.decode(message.data).intrinsics);
          } else if (message.topic === TOPIC_CAMERA) {
            const image = compressedImageCodec.decode(message.data);
            sink.cameraImage({ jpeg: image.data, tCaptureNs: image.tNs });
          } else {
            const image = compressedImageCodec.decode(message.data);
            if (image.format !== 'png') throw new Error(`field 'format' must be 'png', got '${image.format}'`);
            sink.hudFrame({ png: image.data, sequence: sequence++, tCaptureNs: image.tNs, latencyMs: Number(message.logTimeNs - image.tNs) / 1e6, degraded: false });
          }
        } catch (error) {
          // One line per topic: a recording with a bad topic would otherwise log every message.
          if (!this.#badTopics.has(message.topic)) this.#log(`viewer: skipping messages on '${message.topic}' of ${this.#reader.path}: ${(error as Error).message}`);
          this.#badTopics.add(message.topic);
        }
      }
      this.#loops++;
      if (firstLogNs === undefined) return; // nothing to play
    } while (this.#loop && !signal.aborted);
  }
}
