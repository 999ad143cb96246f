/**
 * The pipeline's side of the display-controller link: an MQTT client (v5, falling back to 3.1.1 for
 * brokers without v5 such as the embedded aedes one) that publishes HUD frames, scenes, warnings,
 * camera previews and status, and takes config pushes and display acknowledgements.
 *
 * Delivery rules (issue #6):
 * - frames, scenes, previews: QoS 0, latest wins. While disconnected, or while the socket holds more
 *   than MAX_SOCKET_BACKLOG_BYTES, frames wait in a queue of `maxQueuedFrames` that drops the oldest.
 * - warnings: QoS 1, kept until the broker's PUBACK, re-sent after a reconnect (so a receiver may see
 *   one twice: it drops repeats by `id`). At most `maxQueuedWarnings` are kept; beyond that the oldest
 *   expired warning goes first, then the oldest one, counted in `warningsDropped`.
 * - status: retained; the last-will (also retained) marks the pipeline offline when the link dies.
 * - config pushes: validated (JSON Schema) before use; the result goes to `config/result`; a
 *   rejected push never replaces the config in use.
 * Nothing queues without bound while no broker is reachable: the MQTT client is only handed messages
 * while connected, and each connection attempt uses a fresh client.
 */
import mqtt, { ErrorWithReasonCode, type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import { hudSceneToJson, type HudScene } from '../render/hud-scene.js';
import type { HudOpticsConfig } from '../render/optics-config.js';
import type { WarpMap } from '../render/warp-map.js';
import { encodeCameraPreview, HudFrameEncoder, type HudFrameHeader } from './frame-codec.js';
import { mqttTlsClientOptions, type MqttTlsClientOptions, type MqttTlsOptions } from './mqtt-tls.js';
import {
  CAMERA_PREVIEW_CONTENT_TYPE,
  HUD_FRAME_CONTENT_TYPE,
  HudPayloadError,
  JSON_CONTENT_TYPE,
  MAX_PAYLOAD_BYTES,
  encodeConfigResult,
  encodeStatus,
  encodeWarning,
  hudTopics,
  parseConfigPayload,
  parseDisplayAck,
  parseWarning,
  type AdasWarning,
  type DisplayAck,
  type HudConfigKind,
  type HudTopics,
  type PipelineConfig,
  type PipelineStatus,
} from './topics.js';

/** QoS 1 warnings sent but not yet acknowledged, at most (below mosquitto's default receive maximum of 20). */
export const MAX_WARNINGS_IN_FLIGHT = 10;
/** Bytes waiting in the socket beyond which QoS 0 messages wait (frames) or are dropped (scenes, previews). */
export const MAX_SOCKET_BACKLOG_BYTES = 1024 * 1024;
/** Time for one connection attempt (TCP + TLS + CONNACK). */
export const CONNECT_TIMEOUT_MS = 3000;
/** MQTT keep-alive. */
export const KEEPALIVE_S = 10;
/** How long dispose waits for the offline status and queued warnings to be acknowledged. */
export const DISPOSE_FLUSH_MS = 1000;
/** Rejected payloads logged per topic before the log goes quiet (then every LOG_EVERY_AFTER_QUIET-th). */
export const REJECTIONS_LOGGED_PER_TOPIC = 20;
export const LOG_EVERY_AFTER_QUIET = 1000;
/** Failed connection attempts between two log lines while no broker is reachable. */
export const LOG_EVERY_ATTEMPTS = 50;

export interface HudLinkOptions {
  /** Broker URL: mqtt://host:port, mqtts:// (TLS), ws://, wss://. */
  url: string;
  vehicleId: string;
  /** Default `arhud-pipeline-{vehicleId}-{random}`. */
  clientId?: string;
  username?: string;
  password?: string;
  tls?: MqttTlsOptions;
  /** Frames kept while they cannot be sent (the oldest goes first). Default 2. */
  maxQueuedFrames?: number;
  /** Warnings kept until acknowledged. Default 1000. */
  maxQueuedWarnings?: number;
  /** Back-off between connection attempts: doubles from min to max. Defaults 100 ms and 5000 ms. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** MQTT version to try first; 5 falls back to 4 (3.1.1) when the broker refuses it. Default 5. */
  protocolVersion?: 4 | 5;
  /** Where the link reports connection changes and rejected payloads. Default stderr. */
  log?: (line: string) => void;
  /** Clock for status, result and ack times (ns). Default epochNowNs. */
  now?: () => bigint;
}

export interface HudLinkStats {
  framesPublished: number;
  framesDropped: number;
  /** Frames waiting to be sent now. */
  framesQueued: number;
  scenesPublished: number;
  scenesDropped: number;
  previewsPublished: number;
  previewsDropped: number;
  /** publishWarning calls. */
  warningsPublished: number;
  /** PUBACKs received. */
  warningsAcked: number;
  /** Warnings kept, sent or not, until acknowledged. */
  warningsQueued: number;
  /** Sends after a reconnect of warnings sent before it. */
  warningsResent: number;
  /** Dropped because the queue was full. */
  warningsDropped: number;
  /** Refused by the broker (e.g. not authorised); not retried. */
  warningsRejected: number;
  /** Successful connections after the first. */
  reconnects: number;
  connected: boolean;
  /** MQTT version of the current (or last) connection. */
  protocolVersion: 4 | 5;
  /** Encode time of the last frame. */
  encodeMs: number;
  configsAccepted: number;
  configsRejected: number;
  /** Display acks received and valid. */
  acksReceived: number;
  /** Payloads refused on subscribed topics (config/*, display/ack), all reasons. */
  payloadsRejected: number;
}

type ResolvedOptions = Required<Omit<HudLinkOptions, 'clientId' | 'username' | 'password' | 'tls'>> & Pick<HudLinkOptions, 'username' | 'password' | 'tls'> & { clientId: string };

const EPOCH_OFFSET_NS = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
/** Wall-clock time in ns since the Unix epoch with hrtime resolution (monotonic within a process). */
export function epochNowNs(): bigint {
  return EPOCH_OFFSET_NS + process.hrtime.bigint();
}

/** Defaults of HudLinkOptions, in one place. */
export const HUD_LINK_DEFAULTS = {
  maxQueuedFrames: 2,
  maxQueuedWarnings: 1000,
  reconnectMinMs: 100,
  reconnectMaxMs: 5000,
  protocolVersion: 5,
} as const;

const URL_PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:']);
/** CONNACK codes meaning "this broker does not speak the MQTT version asked for" (3.1.1, v5). */
const UNSUPPORTED_PROTOCOL_CODES = new Set([1, 0x84]);

function resolveOptions(options: HudLinkOptions): ResolvedOptions {
  const where = 'HudLink.create';
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: 'options' must be an object`);
  if (typeof options.url !== 'string') throw new TypeError(`${where}: 'url' must be a string, got ${typeof options.url}`);
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (error) {
    throw new TypeError(`${where}: 'url' must be a broker URL like mqtt://host:1883, got ${JSON.stringify(options.url)}`, { cause: error });
  }
  if (!URL_PROTOCOLS.has(url.protocol)) throw new TypeError(`${where}: 'url' must use one of ${[...URL_PROTOCOLS].join(' ')}, got ${url.protocol}`);
  hudTopics(options.vehicleId);
  const positiveInt = (name: string, value: number) => {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${where}: '${name}' must be an integer >= 1, got ${value}`);
    return value;
  };
  const resolved: ResolvedOptions = {
    url: options.url,
    vehicleId: options.vehicleId,
    clientId: options.clientId ?? `arhud-pipeline-${options.vehicleId}-${Math.random().toString(16).slice(2, 10)}`,
    username: options.username,
    password: options.password,
    tls: options.tls,
    maxQueuedFrames: positiveInt('maxQueuedFrames', options.maxQueuedFrames ?? HUD_LINK_DEFAULTS.maxQueuedFrames),
    maxQueuedWarnings: positiveInt('maxQueuedWarnings', options.maxQueuedWarnings ?? HUD_LINK_DEFAULTS.maxQueuedWarnings),
    reconnectMinMs: positiveInt('reconnectMinMs', options.reconnectMinMs ?? HUD_LINK_DEFAULTS.reconnectMinMs),
    reconnectMaxMs: positiveInt('reconnectMaxMs', options.reconnectMaxMs ?? HUD_LINK_DEFAULTS.reconnectMaxMs),
    protocolVersion: options.protocolVersion ?? HUD_LINK_DEFAULTS.protocolVersion,
    log: options.log ?? ((line) => process.stderr.write(`${line}\n`)),
    now: options.now ?? epochNowNs,
  };
  if (resolved.reconnectMaxMs < resolved.reconnectMinMs) {
    throw new RangeError(`${where}: 'reconnectMaxMs' must be >= reconnectMinMs (${resolved.reconnectMinMs}), got ${resolved.reconnectMaxMs}`);
  }
  if (resolved.protocolVersion !== 4 && resolved.protocolVersion !== 5) throw new RangeError(`${where}: 'protocolVersion' must be 4 or 5, got ${String(resolved.protocolVersion)}`);
  if (resolved.clientId.length === 0 || resolved.clientId.length > 128) throw new RangeError(`${where}: 'clientId' must be 1..128 characters, got ${resolved.clientId.length}`);
  return resolved;
}

interface PendingWarning {
  bytes: Buffer;
  validUntilNs: bigint;
  /** Connection generation it was last sent on; -1 never sent. */
  sentGeneration: number;
}

const CONFIG_KINDS: readonly HudConfigKind[] = ['optics', 'calibration', 'pipeline'];
type ConfigOf<K extends HudConfigKind> = K extends 'optics' ? HudOpticsConfig : K extends 'calibration' ? WarpMap : PipelineConfig;

/**
 * The pipeline's MQTT link to the display controller (see the module comment for the delivery
 * rules). Built by `HudLink.create`, released by `dispose`; never throws out of a broker event.
 */
export class HudLink {
  /** This vehicle's topics. */
  readonly topics: HudTopics;
  readonly #options: ResolvedOptions;
  readonly #tls: MqttTlsClientOptions;
  readonly #encoder = new HudFrameEncoder();
  #client: MqttClient | undefined;
  #connected = false;
  #everConnected = false;
  #protocolVersion: 4 | 5;
  /** Increments on every connection loss; callbacks of older connections are ignored. */
  #generation = 0;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #retryAtOnce = false;
  #disposed = false;
  #firstAttemptDone: () => void = () => {};

  #sequence = 0;
  #previewSequence = 0;
  #frames: Buffer[] = [];
  #pendingScene: Buffer | undefined;
  #warningKey = 0;
  readonly #warnings = new Map<number, PendingWarning>();
  readonly #inFlight = new Set<number>();
  #status: PipelineStatus;

  readonly #configs = new Map<HudConfigKind, unknown>();
  readonly #lastConfigPayload = new Map<HudConfigKind, Buffer>();
  readonly #configListeners: ((kind: HudConfigKind, config: unknown) => void)[] = [];
  readonly #ackListeners: ((ack: DisplayAck, receivedNs: bigint) => void)[] = [];
  readonly #rejectionsByTopic = new Map<string, number>();
  readonly #configKindByTopic: Map<string, HudConfigKind>;

  readonly #stats = {
    framesPublished: 0,
    framesDropped: 0,
    scenesPublished: 0,
    scenesDropped: 0,
    previewsPublished: 0,
    previewsDropped: 0,
    warningsPublished: 0,
    warningsAcked: 0,
    warningsResent: 0,
    warningsDropped: 0,
    warningsRejected: 0,
    reconnects: 0,
    encodeMs: 0,
    configsAccepted: 0,
    configsRejected: 0,
    acksReceived: 0,
    payloadsRejected: 0,
  };

  private constructor(options: ResolvedOptions, tls: MqttTlsClientOptions) {
    this.#options = options;
    this.#tls = tls;
    this.topics = hudTopics(options.vehicleId);
    this.#protocolVersion = options.protocolVersion;
    this.#status = { state: 'online', tNs: options.now() };
    this.#configKindByTopic = new Map([
      [this.topics.configOptics, 'optics'],
      [this.topics.configCalibration, 'calibration'],
      [this.topics.configPipeline, 'pipeline'],
    ]);
  }

  /**
   * Validates the options, reads TLS files and starts connecting. Resolves once the first attempt has
   * connected or failed: an unreachable broker does not fail creation, the link keeps retrying with
   * back-off in the background. On connect it publishes the retained status 'online'; its last-will is
   * the retained status 'offline'.
   */
  static async create(options: HudLinkOptions): Promise<HudLink> {
    const resolved = resolveOptions(options);
    const tls = await mqttTlsClientOptions('HudLink.create', resolved.tls);
    const link = new HudLink(resolved, tls);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2 * CONNECT_TIMEOUT_MS);
      link.#firstAttemptDone = () => {
        clearTimeout(timer);
        resolve();
      };
      link.#connect();
    });
    link.#firstAttemptDone = () => {};
    return link;
  }

  get stats(): HudLinkStats {
    return {
      ...this.#stats,
      framesQueued: this.#frames.length,
      warningsQueued: this.#warnings.size,
      connected: this.#connected,
      protocolVersion: this.#protocolVersion,
    };
  }

  /**
   * Encodes and sends one HUD panel frame (QoS 0); assigns the sequence number (u32, wraps). `rgba`
   * is read before this returns (the caller may reuse it). Throws RangeError for a size mismatch.
   */
  publishFrame(rgba: Uint8Array, header: Omit<HudFrameHeader, 'encoding' | 'sequence'>): void {
    this.#assertLive('publishFrame');
    const sequence = this.#sequence;
    const t0Ns = this.#options.now();
    const encoded = this.#encoder.encode(rgba, { ...header, sequence });
    this.#stats.encodeMs = Number(this.#options.now() - t0Ns) / 1e6;
    this.#sequence = (sequence + 1) >>> 0;
    // The encoder reuses its buffer; the socket may still hold this message after publish returns.
    this.#frames.push(Buffer.from(encoded));
    while (this.#frames.length > this.#options.maxQueuedFrames) {
      this.#frames.shift();
      this.#stats.framesDropped++;
    }
    this.#flushFrames();
  }

  /** Sends the scene JSON (QoS 0); while disconnected only the latest one is kept. */
  publishScene(scene: HudScene): void {
    this.#assertLive('publishScene');
    const bytes = Buffer.from(hudSceneToJson(scene));
    if (bytes.length > MAX_PAYLOAD_BYTES.scene) throw new RangeError(`HudLink.publishScene: scene JSON of ${bytes.length} bytes exceeds the limit of ${MAX_PAYLOAD_BYTES.scene}`);
    if (this.#pendingScene) this.#stats.scenesDropped++;
    this.#pendingScene = bytes;
    this.#flushScene();
  }

  /**
   * Sends a warning with QoS 1; kept until the broker acknowledges it, re-sent after a reconnect.
   * Throws HudPayloadError (naming the field) for a warning its receivers would refuse.
   */
  publishWarning(warning: AdasWarning): void {
    this.#assertLive('publishWarning');
    const bytes = Buffer.from(encodeWarning(warning));
    parseWarning(bytes, this.topics.warnings); // never publish what a receiver would refuse
    this.#stats.warningsPublished++;
    this.#warnings.set(this.#warningKey++, { bytes, validUntilNs: warning.validUntilNs, sentGeneration: -1 });
    if (this.#warnings.size > this.#options.maxQueuedWarnings) this.#dropOneWarning();
    this.#pumpWarnings();
  }

  /** Sends a camera JPEG for the viewer (QoS 0); dropped while it cannot be sent. */
  publishCameraPreview(jpeg: Uint8Array, tCaptureNs: bigint): void {
    this.#assertLive('publishCameraPreview');
    const bytes = encodeCameraPreview({ sequence: this.#previewSequence, tCaptureNs, jpeg });
    this.#previewSequence = (this.#previewSequence + 1) >>> 0;
    if (!this.#canSendQos0()) {
      this.#stats.previewsDropped++;
      return;
    }
    this.#client!.publish(this.topics.cameraPreview, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), this.#publishOptions(0, CAMERA_PREVIEW_CONTENT_TYPE));
    this.#stats.previewsPublished++;
  }

  /** Sets the retained status (sent now, or on the next connect). */
  setStatus(state: PipelineStatus['state'], reason?: string): void {
    this.#assertLive('setStatus');
    if (state !== 'online' && state !== 'offline' && state !== 'degraded') throw new RangeError(`HudLink.setStatus: 'state' must be online, offline or degraded, got ${String(state)}`);
    this.#status = reason === undefined ? { state, tNs: this.#options.now() } : { state, tNs: this.#options.now(), reason };
    if (this.#connected) this.#publishStatus();
  }

  /**
   * Calls `listener` with every accepted config push (validated against its schema first), and at
   * once with the configs already in use. A rejected push is answered on config/result with the
   * failing field and leaves the config in use unchanged.
   */
  onConfig(listener: (kind: HudConfigKind, config: unknown) => void): void {
    this.#configListeners.push(listener);
    for (const kind of CONFIG_KINDS) {
      const config = this.#configs.get(kind);
      if (config !== undefined) this.#callListener(() => listener(kind, config));
    }
  }

  /** The config of a kind in use (last accepted push), or undefined when none came. */
  currentConfig<K extends HudConfigKind>(kind: K): ConfigOf<K> | undefined {
    return this.#configs.get(kind) as ConfigOf<K> | undefined;
  }

  /** Calls `listener` with each valid display acknowledgement and the time it arrived (link clock). */
  onDisplayAck(listener: (ack: DisplayAck, receivedNs: bigint) => void): void {
    this.#ackListeners.push(listener);
  }

  /** Publishes the retained status 'offline', waits briefly for QoS 1 acknowledgements, disconnects. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    if (!client) return;
    if (this.#connected) {
      this.#status = { state: 'offline', tNs: this.#options.now(), reason: 'disposed' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, DISPOSE_FLUSH_MS);
        const check = () => {
          if (statusAcked && this.#warnings.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
        let statusAcked = false;
        client.publish(this.topics.status, Buffer.from(encodeStatus(this.#status)), this.#publishOptions(1, JSON_CONTENT_TYPE, true), () => {
          statusAcked = true;
          check();
        });
        this.#onWarningSettled = check;
        check();
      });
      this.#onWarningSettled = () => {};
    }
    if (this.#warnings.size > 0) this.#options.log(`HudLink: disposed with ${this.#warnings.size} warning(s) not acknowledged by the broker`);
    if (!this.#connected) {
      client.end(true);
      return;
    }
    this.#connected = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.end(true);
        resolve();
      }, DISPOSE_FLUSH_MS);
      client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // -------------------------------------------------------------------------------------------
  // connection

  #connect(): void {
    if (this.#disposed) return;
    const o = this.#options;
    const v5 = this.#protocolVersion === 5;
    const offline = Buffer.from(encodeStatus({ state: 'offline', tNs: o.now(), reason: 'connection lost' }));
    const clientOptions: IClientOptions = {
      ...this.#tls,
      clientId: o.clientId,
      protocolVersion: this.#protocolVersion,
      clean: true,
      keepalive: KEEPALIVE_S,
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectPeriod: 0, // back-off is ours: one fresh client per attempt
      queueQoSZero: false,
      resubscribe: false,
      will: { topic: this.topics.status, payload: offline, qos: 1, retain: true, ...(v5 ? { properties: { contentType: JSON_CONTENT_TYPE } } : {}) },
    };
    if (o.username !== undefined) clientOptions.username = o.username;
    if (o.password !== undefined) clientOptions.password = o.password;
    // v5: the broker must not send us anything larger than the largest payload we accept.
    if (v5) clientOptions.properties = { maximumPacketSize: MAX_PAYLOAD_BYTES.configCalibration + 64 * 1024 };
    const client = mqtt.connect(o.url, clientOptions);
    this.#client = client;
    client.on('connect', () => this.#onConnect(client));
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    client.on('error', (error) => this.#onError(client, error));
    client.on('close', () => this.#onClose(client));
  }

  #onConnect(client: MqttClient): void {
    if (client !== this.#client || this.#disposed) return;
    this.#connected = true;
    if (this.#everConnected) this.#stats.reconnects++;
    this.#everConnected = true;
    this.#attempt = 0;
    this.#options.log(`HudLink: connected to ${this.#options.url} (MQTT ${this.#protocolVersion === 5 ? '5' : '3.1.1'})`);
    const t = this.topics;
    client.subscribe({ [t.configOptics]: { qos: 1 }, [t.configCalibration]: { qos: 1 }, [t.configPipeline]: { qos: 1 }, [t.displayAck]: { qos: 0 } }, (error, granted) => {
      if (error) this.#options.log(`HudLink: subscribe failed: ${error.message}`);
      for (const g of granted ?? []) if (g.qos >= 0x80) this.#options.log(`HudLink: broker refused the subscription to ${g.topic} (code 0x${g.qos.toString(16)})`);
    });
    // Frames are latency-bound: no Nagle delay on the header/payload writes.
    (client.stream as { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true);
    client.stream.on('drain', () => {
      if (client === this.#client) this.#flushAll();
    });
    this.#publishStatus();
    this.#flushAll();
    this.#firstAttemptDone();
  }

  #onError(client: MqttClient, error: Error): void {
    if (client !== this.#client) return;
    const code = error instanceof ErrorWithReasonCode ? error.code : undefined;
    if (this.#protocolVersion === 5 && code !== undefined && UNSUPPORTED_PROTOCOL_CODES.has(code)) {
      this.#options.log(`HudLink: ${this.#options.url} does not speak MQTT 5; using MQTT 3.1.1 (no content types)`);
      this.#protocolVersion = 4;
      this.#retryAtOnce = true;
      return;
    }
    // While the broker stays away: the first failures, then one line every LOG_EVERY_ATTEMPTS attempts.
    if (this.#attempt <= 1 || this.#connected || this.#attempt % LOG_EVERY_ATTEMPTS === 0) {
      this.#options.log(`HudLink: ${error.message}${this.#attempt > 1 ? ` (attempt ${this.#attempt})` : ''}`);
    }
  }

  #onClose(client: MqttClient): void {
    client.removeAllListeners('connect');
    client.removeAllListeners('message');
    client.on('error', () => {}); // late errors of a dead client
    if (client !== this.#client) return;
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#generation++;
    this.#inFlight.clear();
    client.end(true);
    if (this.#disposed) return;
    if (wasConnected) this.#options.log(`HudLink: connection to ${this.#options.url} lost; ${this.#warnings.size} warning(s) kept for re-sending`);
    let delayMs: number;
    if (this.#retryAtOnce) {
      this.#retryAtOnce = false;
      delayMs = 0;
    } else {
      const { reconnectMinMs, reconnectMaxMs } = this.#options;
      delayMs = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(this.#attempt, 20));
      delayMs = Math.round(delayMs * (0.8 + 0.4 * Math.random()));
      this.#attempt++;
      this.#firstAttemptDone();
    }
    this.#reconnectTimer = setTimeout(() => this.#connect(), delayMs);
  }

  #publishOptions(qos: 0 | 1, contentType: string, retain = false): IClientPublishOptions {
    const options: IClientPublishOptions = { qos, retain };
    if (this.#protocolVersion === 5) options.properties = { contentType, ...(contentType === JSON_CONTENT_TYPE ? { payloadFormatIndicator: true } : {}) };
    return options;
  }

  #canSendQos0(): boolean {
    return this.#connected && this.#client !== undefined && this.#client.stream.writableLength <= MAX_SOCKET_BACKLOG_BYTES;
  }

  #flushAll(): void {
    this.#flushFrames();
    this.#flushScene();
    this.#pumpWarnings();
  }

  #flushFrames(): void {
    while (this.#frames.length > 0 && this.#canSendQos0()) {
      this.#client!.publish(this.topics.frame, this.#frames.shift()!, this.#publishOptions(0, HUD_FRAME_CONTENT_TYPE));
      this.#stats.framesPublished++;
    }
  }

  #flushScene(): void {
    if (!this.#pendingScene || !this.#canSendQos0()) return;
    this.#client!.publish(this.topics.scene, this.#pendingScene, this.#publishOptions(0, JSON_CONTENT_TYPE));
    this.#pendingScene = undefined;
    this.#stats.scenesPublished++;
  }

  #publishStatus(): void {
    const generation = this.#generation;
    this.#client?.publish(this.topics.status, Buffer.from(encodeStatus(this.#status)), this.#publishOptions(1, JSON_CONTENT_TYPE, true), (error) => {
      // A lost connection is reported once by #onClose; the status goes again on the next connect.
      if (error && generation === this.#generation && !this.#disposed) this.#options.log(`HudLink: status not acknowledged: ${error.message}`);
    });
  }

  // -------------------------------------------------------------------------------------------
  // warnings

  #onWarningSettled: () => void = () => {};

  #pumpWarnings(): void {
    if (!this.#connected || !this.#client) return;
    const client = this.#client;
    const generation = this.#generation;
    for (const [key, pending] of this.#warnings) {
      if (this.#inFlight.size >= MAX_WARNINGS_IN_FLIGHT) break;
      if (this.#inFlight.has(key)) continue;
      if (pending.sentGeneration >= 0) this.#stats.warningsResent++;
      pending.sentGeneration = generation;
      this.#inFlight.add(key);
      client.publish(this.topics.warnings, pending.bytes, this.#publishOptions(1, JSON_CONTENT_TYPE), (error) => {
        if (generation !== this.#generation) return; // that connection is gone; the warning is re-sent on the next
        this.#inFlight.delete(key);
        if (!error) {
          if (this.#warnings.delete(key)) this.#stats.warningsAcked++;
        } else if (error instanceof ErrorWithReasonCode) {
          this.#options.log(`HudLink: broker refused warning on ${this.topics.warnings}: ${error.message}`);
          if (this.#warnings.delete(key)) this.#stats.warningsRejected++;
        }
        this.#onWarningSettled();
        this.#pumpWarnings();
      });
    }
  }

  /** The queue is full: drop the oldest expired warning, else the oldest. */
  #dropOneWarning(): void {
    const nowNs = this.#options.now();
    let victim: number | undefined;
    for (const [key, pending] of this.#warnings) {
      victim ??= key;
      if (pending.validUntilNs <= nowNs) {
        victim = key;
        break;
      }
    }
    if (victim === undefined) return;
    this.#warnings.delete(victim);
    this.#inFlight.delete(victim);
    this.#stats.warningsDropped++;
  }

  // -------------------------------------------------------------------------------------------
  // incoming

  #onMessage(topic: string, payload: Buffer): void {
    try {
      const kind = this.#configKindByTopic.get(topic);
      if (kind !== undefined) this.#onConfigMessage(kind, topic, payload);
      else if (topic === this.topics.displayAck) this.#onAckMessage(topic, payload);
      else this.#reject(topic, `not a topic this link subscribes to (${payload.length} bytes)`);
    } catch (error) {
      // Nothing a peer sends may take the pipeline down.
      this.#options.log(`HudLink: error handling ${topic}: ${(error as Error).message}`);
    }
  }

  #onConfigMessage(kind: HudConfigKind, topic: string, payload: Buffer): void {
    if (payload.length === 0) {
      this.#options.log(`HudLink: retained ${topic} cleared; keeping the ${kind} config in use`);
      this.#lastConfigPayload.delete(kind);
      return;
    }
    // A retained config comes again after every reconnect: handle each distinct push once.
    if (this.#lastConfigPayload.get(kind)?.equals(payload)) return;
    this.#lastConfigPayload.set(kind, Buffer.from(payload));
    let config: unknown;
    try {
      config = parseConfigPayload(kind, payload, topic);
    } catch (error) {
      const refused = HudPayloadError.wrap(topic, error);
      this.#stats.configsRejected++;
      this.#reject(topic, `${refused.message}; keeping the ${kind} config in use`);
      this.#publishConfigResult({ topic, accepted: false, error: refused.message, ...(refused.field === undefined ? {} : { field: refused.field }) });
      return;
    }
    this.#configs.set(kind, config);
    this.#stats.configsAccepted++;
    this.#options.log(`HudLink: accepted ${kind} config from ${topic}`);
    this.#publishConfigResult({ topic, accepted: true });
    for (const listener of this.#configListeners) this.#callListener(() => listener(kind, config));
  }

  #onAckMessage(topic: string, payload: Buffer): void {
    const receivedNs = this.#options.now();
    let ack: DisplayAck;
    try {
      ack = parseDisplayAck(payload, topic);
    } catch (error) {
      this.#reject(topic, HudPayloadError.wrap(topic, error).message);
      return;
    }
    this.#stats.acksReceived++;
    for (const listener of this.#ackListeners) this.#callListener(() => listener(ack, receivedNs));
  }

  #publishConfigResult(result: { topic: string; accepted: boolean; error?: string; field?: string }): void {
    if (!this.#connected) return;
    const bytes = Buffer.from(encodeConfigResult({ ...result, tNs: this.#options.now() }));
    const generation = this.#generation;
    this.#client?.publish(this.topics.configResult, bytes, this.#publishOptions(1, JSON_CONTENT_TYPE), (error) => {
      if (error && generation === this.#generation) this.#options.log(`HudLink: config result not acknowledged: ${error.message}`);
    });
  }

  /** Counts a refused payload and logs why (quietly once a topic is flooding). */
  #reject(topic: string, reason: string): void {
    this.#stats.payloadsRejected++;
    const n = (this.#rejectionsByTopic.get(topic) ?? 0) + 1;
    this.#rejectionsByTopic.set(topic, n);
    if (n <= REJECTIONS_LOGGED_PER_TOPIC || n % LOG_EVERY_AFTER_QUIET === 0) {
      this.#options.log(`HudLink: rejected payload (#${n} on ${topic}): ${reason.startsWith(`${topic}: `) ? reason.slice(topic.length + 2) : reason}`);
    }
  }

  #callListener(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#options.log(`HudLink: listener failed: ${(error as Error).message}`);
    }
  }

  #assertLive(method: string): void {
    if (this.#disposed) throw new Error(`HudLink.${method}: the link is disposed`);
  }
}
