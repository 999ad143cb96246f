/**
 * Reference display controller (`arhud display`): the HUD side of the MQTT link.
 *
 * Subscribes to the vehicle's frame (QoS 0), camera preview (QoS 0), scene, warnings and status
 * (QoS 1) topics; validates every payload (size limit first, then header / schema), decodes frames
 * into one reused buffer, counts sequence gaps, drops frames older than `maxFrameAgeMs`, shows the
 * rest (framebuffer write, and/or the `onFrame` listeners such as the web viewer) and acknowledges
 * each shown frame on `display/ack` with its display time and the number of frames dropped since the
 * previous ack (dropped frames get no ack of their own).
 *
 * Safety rule, no stale overlays: what the output shows is never older than `maxFrameAgeMs` from
 * capture. When no fresher frame replaced the shown one by its capture time + `maxFrameAgeMs`, when
 * the pipeline reports itself offline, and when the controller stops, the output is blanked (black =
 * no light on a HUD). So `maxFrameAgeMs` must exceed the frame interval plus the link latency (the
 * 100 ms default suits 30-60 Hz pipelines; a 10 Hz one needs ~150 ms or more), else the output
 * blanks between frames: counted in `stats.flickerBlanks` and explained once in the log. A frame
 * never goes back in time: one captured before the last frame shown is dropped.
 *
 * Clocks: frame age is `now() - tCaptureNs`, the controller's clock against the pipeline's capture
 * clock. Both must be synchronised (in a vehicle: PTP / gPTP across the ECUs, sub-millisecond);
 * in tests both share one process clock. The default clock is HudLink's `epochNowNs`: UNIX-epoch
 * nanoseconds anchored to `Date.now()` once and advanced by the monotonic `process.hrtime`.
 *
 * MQTT 5 is tried first; a broker that refuses it (the embedded aedes broker speaks 3.1.1 only) gets
 * MQTT 3.1.1. Nothing the controller does needs v5 properties.
 *
 * Nothing a payload contains can throw out of a message handler: each rejection logs one line naming
 * the topic and the reason and is counted per topic in `stats.payloadsRejected`.
 */
import mqtt, { ErrorWithReasonCode, type IClientOptions, type MqttClient } from 'mqtt';
import type { HudScene } from '../render/hud-scene.js';
import { mqttTlsClientOptions, type MqttTlsOptions } from './mqtt-tls.js';
import { decodeCameraPreview, decodeHudFrame, readHudFrameHeader, type HudFrameHeader } from './frame-codec.js';
import { FramebufferOutput, type FramebufferGeometry } from './framebuffer.js';
import { epochNowNs } from './link.js';
import {
  MAX_PAYLOAD_BYTES,
  encodeDisplayAck,
  hudTopics,
  parseScenePayload,
  parseStatus,
  parseWarning,
  type AdasWarning,
  type DisplayAck,
  type PipelineStatus,
} from './topics.js';

/** Default oldest frame shown, milliseconds from capture to display. */
export const DEFAULT_MAX_FRAME_AGE_MS = 100;
/** Largest `maxFrameAgeMs` accepted (a HUD overlay older than this is never worth showing). */
export const MAX_FRAME_AGE_LIMIT_MS = 10_000;
/** Rejections of one topic (and blanks) logged line by line; after that one line per `REJECTION_LOG_EVERY`. */
export const REJECTIONS_LOGGED_IN_FULL = 20;
export const REJECTION_LOG_EVERY = 1000;
/** Warning ids remembered to drop repeats (warnings are QoS 1: at least once). */
export const RECENT_WARNING_IDS = 1024;
/** Flickering blanks (see `stats.flickerBlanks`) before the log explains them, once. */
export const FLICKER_BLANKS_BEFORE_HINT = 3;
const LONGEST_TIMER_MS = 2 ** 31 - 1;
/** Broker reconnect period after a lost connection, ms (the first connection is not retried). */
const RECONNECT_PERIOD_MS = 1000;
const CONNECT_TIMEOUT_MS = 5000;

/** The subscribed topics, by key of `hudTopics()`. */
export const DISPLAY_TOPIC_KEYS = ['frame', 'cameraPreview', 'scene', 'warnings', 'status'] as const;
export type DisplayTopicKey = (typeof DISPLAY_TOPIC_KEYS)[number];
const QOS_OF: Readonly<Record<DisplayTopicKey, 0 | 1>> = { frame: 0, cameraPreview: 0, scene: 1, warnings: 1, status: 1 };

/** TLS settings of the controller's MQTT client (hud/mqtt-tls.ts). */
export type DisplayTlsOptions = MqttTlsOptions;

/** Options of `DisplayController.create`; defaults in `DEFAULTS`. */
export interface DisplayControllerOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883` or `mqtts://...`. */
  url: string;
  /** Vehicle whose topics to follow (`arhud/v1/<vehicleId>/...`). */
  vehicleId: string;
  /** Frames older than this (controller clock minus capture time) are dropped; default 100 ms. */
  maxFrameAgeMs?: number;
  /** Framebuffer to write shown frames to (not owned: the caller disposes it); default none. */
  framebuffer?: FramebufferOutput;
  username?: string;
  password?: string;
  tls?: DisplayTlsOptions;
  /**
   * Publish `display/ack` for shown frames; default true. A monitor that is not the display (the
   * `arhud view --live` viewer) passes false so the pipeline only hears the real display.
   */
  acknowledge?: boolean;
  /** MQTT client id; default `arhud-display-<vehicleId>-<random>`. */
  clientId?: string;
  /** Receives one line per event worth logging; default stderr. */
  log?: (line: string) => void;
  /** Current time, UNIX-epoch ns on the clock the pipeline stamps captures with; default `epochNowNs` (link.ts, as HudLink). */
  now?: () => bigint;
}

/** A frame handed to `onFrame` listeners. */
export interface ShownFrame {
  header: HudFrameHeader;
  /** RGBA8, row 0 = top, header.widthPx x header.heightPx: the controller's reused buffer, valid during the call only. */
  rgba: Uint8Array;
  /** When it was shown, controller clock, ns. */
  shownNs: bigint;
}

/** A camera preview handed to `onCameraPreview` listeners. */
export interface CameraPreview {
  sequence: number;
  tCaptureNs: bigint;
  /** JPEG bytes (a view into the MQTT payload). */
  jpeg: Uint8Array;
}

/** Why the output went black. */
export type BlankReason = 'stale' | 'offline' | 'start' | 'stop';

/** Counters of a display controller (a snapshot). */
export interface DisplayControllerStats {
  /** Frame payloads that passed validation. */
  framesReceived: number;
  /** Frames shown (framebuffer and/or listeners). */
  framesShown: number;
  /** Frames dropped for being older than maxFrameAgeMs. */
  framesDroppedStale: number;
  /** Frames dropped for being captured before the last frame shown (reordered or duplicated). */
  framesDroppedOutOfOrder: number;
  /** Jumps forward in the frame sequence (each may miss several frames). */
  sequenceGaps: number;
  /** Frames missing in those jumps. */
  framesMissing: number;
  /** Payloads rejected, per topic key. */
  payloadsRejected: Record<DisplayTopicKey, number>;
  /** Capture-to-display latency of the last frame shown, ms (NaN before the first). */
  lastLatencyMs: number;
  /** Warnings that passed validation. */
  warningsReceived: number;
  /** Valid warnings not passed on: an id seen before (QoS 1 redelivery). */
  warningsDuplicate: number;
  /** Valid warnings not passed on: past their validUntilNs on arrival. */
  warningsExpired: number;
  /** Scenes that passed validation. */
  scenesReceived: number;
  /** Camera previews that passed validation. */
  cameraPreviewsReceived: number;
  /** Times the output was blanked. */
  blanks: number;
  /** Stale blanks followed by a frame within maxFrameAgeMs: frames flow, but further apart than the age allows (flicker). */
  flickerBlanks: number;
  /** Whether the output is black right now. */
  blank: boolean;
  /** Last pipeline status received (undefined before any). */
  pipelineState: PipelineStatus['state'] | undefined;
}

const DEFAULTS = { maxFrameAgeMs: DEFAULT_MAX_FRAME_AGE_MS, acknowledge: true };

/** Connect refusals that mean "no MQTT 5 here": unacceptable protocol version (3.1.1 code 1, v5 0x84). */
const UNSUPPORTED_PROTOCOL_CODES = new Set([1, 0x84]);

type Listener<T> = (value: T) => void;

/** Subscribes to a vehicle's HUD topics and shows its frames. Create with `create`, release with `dispose`. */
export class DisplayController {
  /** Oldest frame shown, ms. */
  readonly maxFrameAgeMs: number;
  /** The vehicle's topics. */
  readonly topics: ReturnType<typeof hudTopics>;

  readonly #client: MqttClient;
  readonly #framebuffer: FramebufferOutput | undefined;
  readonly #log: (line: string) => void;
  readonly #now: () => bigint;
  readonly #maxFrameAgeNs: bigint;
  readonly #acknowledge: boolean;
  readonly #keyOfTopic: Map<string, DisplayTopicKey>;
  readonly #frameListeners: Listener<ShownFrame>[] = [];
  readonly #previewListeners: Listener<CameraPreview>[] = [];
  readonly #warningListeners: Listener<AdasWarning>[] = [];
  readonly #sceneListeners: Listener<HudScene>[] = [];
  readonly #statusListeners: Listener<PipelineStatus>[] = [];
  readonly #blankListeners: Listener<BlankReason>[] = [];
  readonly #stats: DisplayControllerStats = {
    framesReceived: 0,
    framesShown: 0,
    framesDroppedStale: 0,
    framesDroppedOutOfOrder: 0,
    sequenceGaps: 0,
    framesMissing: 0,
    payloadsRejected: { frame: 0, cameraPreview: 0, scene: 0, warnings: 0, status: 0 },
    lastLatencyMs: NaN,
    warningsReceived: 0,
    warningsDuplicate: 0,
    warningsExpired: 0,
    scenesReceived: 0,
    cameraPreviewsReceived: 0,
    blanks: 0,
    flickerBlanks: 0,
    blank: true,
    pipelineState: undefined,
  };
  /** The one decode buffer (grows when a larger frame arrives). */
  #rgba = new Uint8Array(0);
  #lastSequence: number | undefined;
  #lastSequenceCaptureNs = 0n;
  #lastShownCaptureNs: bigint | undefined;
  /** Frames dropped (stale or out of order) since the last ack; reported in the next ack. */
  #droppedSinceAck = 0;
  #staleTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #recentWarningIds = new Set<string>();
  /** When the output last went black for staleness (cleared by the next frame). */
  #staleBlankNs: bigint | undefined;
  #disposed = false;

  private constructor(options: DisplayControllerOptions, client: MqttClient, maxFrameAgeMs: number) {
    this.maxFrameAgeMs = maxFrameAgeMs;
    this.#maxFrameAgeNs = BigInt(Math.round(maxFrameAgeMs * 1e6));
    this.topics = hudTopics(options.vehicleId);
    this.#client = client;
    this.#framebuffer = options.framebuffer;
    this.#log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.#now = options.now ?? epochNowNs;
    this.#acknowledge = options.acknowledge ?? DEFAULTS.acknowledge;
    this.#keyOfTopic = new Map(DISPLAY_TOPIC_KEYS.map((key) => [this.topics[key], key]));
    if (this.#framebuffer) this.#framebuffer.onError ??= (error) => this.#log(`display: ${error.message}`);
  }

  /** Connects (MQTT v5), subscribes and blanks the output. Rejects when the broker cannot be reached. */
  static async create(options: DisplayControllerOptions): Promise<DisplayController> {
    if (typeof options?.url !== 'string' || options.url === '') throw new TypeError(`DisplayController.create: 'url' must be a non-empty string, got ${String(options?.url)}`);
    hudTopics(options.vehicleId); // refuses an id that is not a plain topic level, before connecting
    const maxFrameAgeMs = options.maxFrameAgeMs ?? DEFAULTS.maxFrameAgeMs;
    if (typeof maxFrameAgeMs !== 'number' || !(maxFrameAgeMs > 0 && maxFrameAgeMs <= MAX_FRAME_AGE_LIMIT_MS)) {
      throw new RangeError(`DisplayController.create: 'maxFrameAgeMs' must be in (0, ${MAX_FRAME_AGE_LIMIT_MS}], got ${String(maxFrameAgeMs)}`);
    }
    const clientOptions: IClientOptions = {
      protocolVersion: 5,
      clientId: options.clientId ?? `arhud-display-${options.vehicleId}-${Math.random().toString(16).slice(2, 10)}`,
      clean: true,
      reconnectPeriod: RECONNECT_PERIOD_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      username: options.username,
      password: options.password,
      ...(await mqttTlsClientOptions('DisplayController.create', options.tls)),
    };
    let client: MqttClient;
    try {
      client = await mqtt.connectAsync(options.url, clientOptions, false);
    } catch (error) {
      if (!(error instanceof ErrorWithReasonCode && UNSUPPORTED_PROTOCOL_CODES.has(error.code))) {
        throw new Error(`DisplayController.create: cannot connect to ${options.url} (${(error as Error).message})`, { cause: error });
      }
      try {
        client = await mqtt.connectAsync(options.url, { ...clientOptions, protocolVersion: 4 }, false);
      } catch (error4) {
        throw new Error(`DisplayController.create: cannot connect to ${options.url} with MQTT 5 or 3.1.1 (${(error4 as Error).message})`, { cause: error4 });
      }
    }
    const controller = new DisplayController(options, client, maxFrameAgeMs);
    controller.#log(`display: connected to ${options.url} (MQTT ${client.options.protocolVersion === 5 ? '5' : '3.1.1'})`);
    try {
      await controller.#start();
    } catch (error) {
      await client.endAsync(true);
      throw error;
    }
    return controller;
  }

  /** Counters (a snapshot). */
  get stats(): DisplayControllerStats {
    return { ...this.#stats, payloadsRejected: { ...this.#stats.payloadsRejected } };
  }

  /** Called with each frame shown; `rgba` is valid during the call only. Returns an unsubscribe function. */
  onFrame(listener: Listener<ShownFrame>): () => void {
    return addListener(this.#frameListeners, listener);
  }

  /** Called with each valid camera preview. Returns an unsubscribe function. */
  onCameraPreview(listener: Listener<CameraPreview>): () => void {
    return addListener(this.#previewListeners, listener);
  }

  /** Called with each valid ADAS warning, once per id, unless already expired. Returns an unsubscribe function. */
  onWarning(listener: Listener<AdasWarning>): () => void {
    return addListener(this.#warningListeners, listener);
  }

  /** Called with each valid HUD scene. Returns an unsubscribe function. */
  onScene(listener: Listener<HudScene>): () => void {
    return addListener(this.#sceneListeners, listener);
  }

  /** Called with each valid pipeline status. Returns an unsubscribe function. */
  onStatus(listener: Listener<PipelineStatus>): () => void {
    return addListener(this.#statusListeners, listener);
  }

  /** Called each time the output goes black, with the reason. Returns an unsubscribe function. */
  onBlank(listener: Listener<BlankReason>): () => void {
    return addListener(this.#blankListeners, listener);
  }

  /** Blanks the output, unsubscribes and disconnects. Safe to call more than once. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#blank('stop');
    this.#disposed = true;
    clearTimeout(this.#staleTimer);
    this.#client.removeAllListeners('message');
    await this.#framebuffer?.flush();
    await this.#client.endAsync();
  }

  async #start(): Promise<void> {
    this.#client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    this.#client.on('error', (error) => this.#log(`display: MQTT error: ${error.message}`));
    this.#client.on('offline', () => this.#log('display: broker connection lost; reconnecting'));
    const subscriptions = Object.fromEntries(DISPLAY_TOPIC_KEYS.map((key) => [this.topics[key], { qos: QOS_OF[key] }]));
    const granted = await this.#client.subscribeAsync(subscriptions);
    for (const grant of granted) {
      if (grant.qos <= 2) continue;
      // Without frames there is nothing to show; the other topics are extras (an ACL may withhold the preview).
      if (grant.topic === this.topics.frame) {
        throw new Error(`DisplayController.create: subscription to '${grant.topic}' refused by the broker (reason code 0x${grant.qos.toString(16)})`);
      }
      this.#log(`display: subscription to '${grant.topic}' refused by the broker (reason code 0x${grant.qos.toString(16)}); going on without it`);
    }
    this.#blank('start');
  }

  /** Dispatches one message; never throws. */
  #onMessage(topic: string, payload: Buffer): void {
    if (this.#disposed) return;
    const key = this.#keyOfTopic.get(topic);
    if (key === undefined) return; // not ours (e.g. a wider subscription of a shared client)
    const limit = MAX_PAYLOAD_BYTES[key];
    if (payload.length > limit) {
      this.#reject(key, topic, `payload of ${payload.length} bytes exceeds the ${limit}-byte limit`);
      return;
    }
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.length);
    try {
      switch (key) {
        case 'frame':
          this.#onFrame(bytes, topic);
          break;
        case 'cameraPreview': {
          const preview = decodeCameraPreview(bytes, topic);
          this.#stats.cameraPreviewsReceived++;
          this.#emit(this.#previewListeners, preview, 'cameraPreview');
          break;
        }
        case 'scene': {
          const scene = parseScenePayload(bytes, topic);
          this.#stats.scenesReceived++;
          this.#emit(this.#sceneListeners, scene, 'scene');
          break;
        }
        case 'warnings': {
          const warning = parseWarning(bytes, topic);
          this.#stats.warningsReceived++;
          if (this.#recentWarningIds.has(warning.id)) {
            this.#stats.warningsDuplicate++; // QoS 1 delivers at least once
            break;
          }
          this.#rememberWarning(warning.id);
          if (warning.validUntilNs < this.#now()) {
            this.#stats.warningsExpired++; // no stale warnings either
            break;
          }
          this.#emit(this.#warningListeners, warning, 'warnings');
          break;
        }
        case 'status': {
          const status = parseStatus(bytes, topic);
          this.#stats.pipelineState = status.state;
          if (status.state === 'offline') this.#blank('offline');
          this.#emit(this.#statusListeners, status, 'status');
          break;
        }
      }
    } catch (error) {
      this.#reject(key, topic, error instanceof Error ? error.message : String(error));
    }
  }

  /** Validates, decodes, orders, ages and shows (or drops) one frame; throws only for invalid payloads. */
  #onFrame(bytes: Uint8Array, topic: string): void {
    const header = readHudFrameHeader(bytes, topic);
    const needed = header.widthPx * header.heightPx * 4;
    if (this.#rgba.length < needed) this.#rgba = new Uint8Array(needed);
    const { rgba } = decodeHudFrame(bytes, this.#rgba.subarray(0, needed), topic);
    this.#stats.framesReceived++;
    this.#countSequence(header.sequence, header.tCaptureNs);
    const nowNs = this.#now();
    if (this.#lastShownCaptureNs !== undefined && header.tCaptureNs <= this.#lastShownCaptureNs) {
      this.#stats.framesDroppedOutOfOrder++;
      this.#droppedSinceAck++;
      return;
    }
    if (nowNs - header.tCaptureNs > this.#maxFrameAgeNs) {
      this.#stats.framesDroppedStale++;
      this.#droppedSinceAck++;
      return;
    }
    this.#toFramebuffer((fb) => fb.write(rgba, header.widthPx, header.heightPx));
    this.#stats.framesShown++;
    this.#stats.blank = false;
    this.#stats.lastLatencyMs = Number(nowNs - header.tCaptureNs) / 1e6;
    this.#noteFlicker(nowNs, header.tCaptureNs);
    this.#lastShownCaptureNs = header.tCaptureNs;
    this.#armStaleTimer(header.tCaptureNs + this.#maxFrameAgeNs);
    this.#emit(this.#frameListeners, { header, rgba, shownNs: nowNs }, 'frame');
    this.#ack({ sequence: header.sequence, tCaptureNs: header.tCaptureNs, tShownNs: nowNs, dropped: this.#droppedSinceAck });
    this.#droppedSinceAck = 0;
  }

  /** Keeps the last RECENT_WARNING_IDS warning ids (insertion order) to drop QoS 1 redeliveries. */
  #rememberWarning(id: string): void {
    this.#recentWarningIds.add(id);
    if (this.#recentWarningIds.size > RECENT_WARNING_IDS) {
      const oldest = this.#recentWarningIds.values().next().value;
      if (oldest !== undefined) this.#recentWarningIds.delete(oldest);
    }
  }

  /**
   * Counts forward jumps of the u32 sequence (modulo 2^32, so a wrap is not a gap). A duplicate or a
   * step back is a reordered frame when its capture is older (the count stays), else a publisher
   * restart (counting starts again from it).
   */
  #countSequence(sequence: number, tCaptureNs: bigint): void {
    const last = this.#lastSequence;
    if (last !== undefined) {
      const delta = (sequence - last) >>> 0;
      if (delta === 0 || delta >= 0x8000_0000) {
        if (tCaptureNs <= this.#lastSequenceCaptureNs) return;
      } else if (delta > 1) {
        this.#stats.sequenceGaps++;
        this.#stats.framesMissing += delta - 1;
      }
    }
    this.#lastSequence = sequence;
    this.#lastSequenceCaptureNs = tCaptureNs;
  }

  /** Blanks the output once the shown frame passes `deadlineNs` (controller clock) without a fresher one. */
  #armStaleTimer(deadlineNs: bigint): void {
    clearTimeout(this.#staleTimer);
    const check = () => {
      this.#staleTimer = undefined;
      if (this.#disposed || this.#stats.blank) return;
      const remainingNs = deadlineNs - this.#now();
      if (remainingNs < 0n) {
        this.#blank('stale');
        return;
      }
      // Timers may fire early, and a test clock may not have moved: look again when it should be due.
      this.#staleTimer = setTimeout(check, Math.min(LONGEST_TIMER_MS, Math.max(1, Math.ceil(Number(remainingNs) / 1e6))));
    };
    const delayMs = Math.max(0, Number(deadlineNs - this.#now()) / 1e6);
    this.#staleTimer = setTimeout(check, Math.min(LONGEST_TIMER_MS, Math.ceil(delayMs)));
  }

  #blank(reason: BlankReason): void {
    if (this.#disposed) return;
    clearTimeout(this.#staleTimer);
    this.#staleTimer = undefined;
    const wasShowing = !this.#stats.blank;
    this.#stats.blank = true;
    this.#toFramebuffer((fb) => fb.blank());
    if (reason === 'start' || reason === 'stop' || wasShowing) {
      this.#stats.blanks++;
      if (reason === 'stale') this.#staleBlankNs = this.#now();
      const logged = this.#stats.blanks <= REJECTIONS_LOGGED_IN_FULL || this.#stats.blanks % REJECTION_LOG_EVERY === 0;
      if ((reason === 'stale' || reason === 'offline') && logged) {
        this.#log(`display: output blanked (${reason === 'stale' ? `no fresh frame within ${this.maxFrameAgeMs} ms` : 'pipeline offline'}; ${this.#stats.blanks} blanks so far)`);
      }
      this.#emit(this.#blankListeners, reason, 'blank');
    }
  }

  /**
   * A frame right after a stale blank means frames still flow, only further apart than
   * maxFrameAgeMs (plus latency): the output flickers. Counted; explained once in the log.
   */
  #noteFlicker(nowNs: bigint, tCaptureNs: bigint): void {
    const blankNs = this.#staleBlankNs;
    this.#staleBlankNs = undefined;
    if (blankNs === undefined || nowNs - blankNs > this.#maxFrameAgeNs) return;
    this.#stats.flickerBlanks++;
    if (this.#stats.flickerBlanks === FLICKER_BLANKS_BEFORE_HINT && this.#lastShownCaptureNs !== undefined) {
      const intervalMs = Number(tCaptureNs - this.#lastShownCaptureNs) / 1e6;
      this.#log(
        `display: the output blanks between frames: they come ${intervalMs.toFixed(0)} ms apart and are shown ${this.#stats.lastLatencyMs.toFixed(0)} ms after capture, ` +
          `more than maxFrameAgeMs ${this.maxFrameAgeMs} allows; raise it above the frame interval plus latency if that age is acceptable`,
      );
    }
  }

  /** A framebuffer failure (e.g. disposed by its owner) is logged, never taken for a bad payload. */
  #toFramebuffer(write: (framebuffer: FramebufferOutput) => void): void {
    if (!this.#framebuffer) return;
    try {
      write(this.#framebuffer);
    } catch (error) {
      this.#log(`display: framebuffer ${this.#framebuffer.path}: ${(error as Error).message}`);
    }
  }

  #ack(ack: DisplayAck): void {
    if (!this.#acknowledge) return;
    let payload: Uint8Array;
    try {
      payload = encodeDisplayAck(ack);
    } catch (error) {
      this.#log(`display: cannot encode the ack of frame ${ack.sequence}: ${(error as Error).message}`);
      return;
    }
    this.#client.publish(this.topics.displayAck, Buffer.from(payload.buffer, payload.byteOffset, payload.length), { qos: 0 }, (error) => {
      if (error && !this.#disposed) this.#log(`display: ack of frame ${ack.sequence} on '${this.topics.displayAck}' failed: ${error.message}`);
    });
  }

  #reject(key: DisplayTopicKey, topic: string, reason: string): void {
    const count = ++this.#stats.payloadsRejected[key];
    if (count <= REJECTIONS_LOGGED_IN_FULL) {
      this.#log(`display: rejected payload on '${topic}': ${reason}`);
    } else if (count % REJECTION_LOG_EVERY === 0) {
      this.#log(`display: rejected payload on '${topic}': ${reason} (${count} rejected on this topic so far; lines after the first ${REJECTIONS_LOGGED_IN_FULL} are sampled)`);
    }
  }

  /** Calls each listener; one that throws is logged and the others still run. */
  #emit<T>(listeners: readonly Listener<T>[], value: T, what: string): void {
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (error) {
        this.#log(`display: a ${what} listener threw: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}

function addListener<T>(list: Listener<T>[], listener: Listener<T>): () => void {
  if (typeof listener !== 'function') throw new TypeError(`DisplayController: listener must be a function, got ${typeof listener}`);
  list.push(listener);
  return () => {
    const at = list.indexOf(listener);
    if (at >= 0) list.splice(at, 1);
  };
}

/** Options of `runDisplay` (the `arhud display` command). */
export interface RunDisplayOptions {
  url: string;
  vehicleId: string;
  maxFrameAgeMs: number;
  /** Framebuffer device; without it the web viewer is served instead. */
  framebuffer?: string;
  /** Framebuffer geometry fields overriding sysfs (needed when the device has no sysfs entry). */
  framebufferGeometry?: Partial<FramebufferGeometry>;
  /** Viewer port when no framebuffer is given (0 = any free port); default 8080. */
  viewerPort?: number;
  username?: string;
  password?: string;
  tls?: DisplayTlsOptions;
  log: (line: string) => void;
}

/** What `runDisplay` returns. */
export interface DisplayHandle {
  controller: DisplayController;
  /** Viewer URL when the viewer is served. */
  viewerUrl: string | undefined;
  stop(): Promise<void>;
}

/** Default port of the viewer that `arhud display` serves without a framebuffer. */
export const DEFAULT_DISPLAY_VIEWER_PORT = 8080;

/** Runs the display controller: to the framebuffer when one is given, else to the web viewer. */
export async function runDisplay(options: RunDisplayOptions): Promise<DisplayHandle> {
  const { log } = options;
  const framebuffer = options.framebuffer === undefined ? undefined : await FramebufferOutput.create({ path: options.framebuffer, geometry: options.framebufferGeometry });
  let controller: DisplayController;
  try {
    controller = await DisplayController.create({
      url: options.url,
      vehicleId: options.vehicleId,
      maxFrameAgeMs: options.maxFrameAgeMs,
      framebuffer,
      username: options.username,
      password: options.password,
      tls: options.tls,
      log,
    });
  } catch (error) {
    await framebuffer?.dispose();
    throw error;
  }
  if (framebuffer) {
    const g = framebuffer.geometry;
    log(`display: ${options.url} vehicle '${options.vehicleId}' -> ${framebuffer.path} (${g.widthPx}x${g.heightPx}, ${g.bitsPerPixel} bpp), max frame age ${controller.maxFrameAgeMs} ms`);
    return {
      controller,
      viewerUrl: undefined,
      stop: async () => {
        await controller.dispose();
        await framebuffer.dispose();
      },
    };
  }
  // Imported here so a framebuffer-only controller never loads the viewer (sharp, ws, optics).
  const { ViewerServer, LiveViewerSource } = await import('./viewer/server.js');
  const source = new LiveViewerSource(controller, { owned: true });
  const server = await ViewerServer.start({ port: options.viewerPort ?? DEFAULT_DISPLAY_VIEWER_PORT, source, log });
  log(`display: ${options.url} vehicle '${options.vehicleId}' -> viewer ${server.url} , max frame age ${controller.maxFrameAgeMs} ms`);
  return { controller, viewerUrl: server.url, stop: () => server.stop() };
}
