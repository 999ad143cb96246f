/**
 * The HUD link's MQTT topics and their payloads. Topics are versioned and per vehicle:
 * `arhud/v1/{vehicleId}/...`. JSON payloads carry times as decimal strings of nanoseconds (JSON
 * numbers cannot hold epoch nanoseconds) and are validated with JSON Schema (ajv) at every boundary;
 * a payload that fails is refused with a `HudPayloadError` naming the topic and the field.
 *
 * | topic               | payload                                 | QoS | retained |
 * |---------------------|-----------------------------------------|-----|----------|
 * | hud/frame           | binary, see frame-codec.ts ('AHF1')     | 0   | no       |
 * | hud/scene           | HudScene JSON (render/hud-scene.ts)     | 0   | no       |
 * | adas/warnings       | AdasWarning JSON                        | 1   | no       |
 * | status              | PipelineStatus JSON (also the last-will)| 1   | yes      |
 * | camera/preview      | binary, see frame-codec.ts ('ACP1')     | 0   | no       |
 * | config/optics       | HUD optics config JSON                  | 1   | yes      |
 * | config/calibration  | warp map JSON (render/warp-map.ts)      | 1   | yes      |
 * | config/pipeline     | PipelineConfig JSON                     | 1   | yes      |
 * | config/result       | ConfigResult JSON                       | 1   | no       |
 * | display/ack         | DisplayAck JSON                         | 0   | no       |
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { schemaError } from '../pipeline/index.js';
import { parseHudScene, type HudScene } from '../render/hud-scene.js';
import { parseHudOpticsConfig, type HudOpticsConfig } from '../render/optics-config.js';
import { parseWarpMap, type WarpMap } from '../render/warp-map.js';
import { CAMERA_PREVIEW_HEADER_BYTES, CAMERA_PREVIEW_MAX_JPEG_BYTES, HudPayloadError } from './frame-codec.js';

export { HudPayloadError };

export const HUD_TOPIC_VERSION = 'v1';
/** What a vehicle id may be: no MQTT wildcards, no level separators, not empty. */
export const VEHICLE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface HudTopics {
  /** `arhud/v1/{vehicleId}` (no trailing slash). */
  root: string;
  frame: string;
  scene: string;
  warnings: string;
  status: string;
  cameraPreview: string;
  configOptics: string;
  configCalibration: string;
  configPipeline: string;
  configResult: string;
  displayAck: string;
}

export type HudTopicName = keyof Omit<HudTopics, 'root'>;

/** The topics of one vehicle. Throws RangeError naming 'vehicleId' for an id that is not a plain topic level. */
export function hudTopics(vehicleId: string): HudTopics {
  if (typeof vehicleId !== 'string') throw new TypeError(`hudTopics: 'vehicleId' must be a string, got ${typeof vehicleId}`);
  if (!VEHICLE_ID_PATTERN.test(vehicleId)) {
    throw new RangeError(`hudTopics: 'vehicleId' must match ${VEHICLE_ID_PATTERN.source} (no MQTT wildcards or slashes), got ${JSON.stringify(vehicleId)}`);
  }
  const root = `arhud/${HUD_TOPIC_VERSION}/${vehicleId}`;
  return {
    root,
    frame: `${root}/hud/frame`,
    scene: `${root}/hud/scene`,
    warnings: `${root}/adas/warnings`,
    status: `${root}/status`,
    cameraPreview: `${root}/camera/preview`,
    configOptics: `${root}/config/optics`,
    configCalibration: `${root}/config/calibration`,
    configPipeline: `${root}/config/pipeline`,
    configResult: `${root}/config/result`,
    displayAck: `${root}/display/ack`,
  };
}

/** MQTT v5 content types of the binary payloads. */
export const HUD_FRAME_CONTENT_TYPE = 'application/vnd.arhud.hud-frame.v1';
export const CAMERA_PREVIEW_CONTENT_TYPE = 'application/vnd.arhud.camera-preview.v1';
export const JSON_CONTENT_TYPE = 'application/json';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Largest payload accepted per topic; anything bigger is refused before it is parsed. */
export const MAX_PAYLOAD_BYTES: Record<HudTopicName, number> = {
  // 4096x2048 raw RGBA plus header; a typical 1280x480 HUD frame is 20-100 KiB.
  frame: 32 * MiB + 64,
  scene: 1 * MiB,
  warnings: 4 * KiB,
  status: 1 * KiB,
  cameraPreview: CAMERA_PREVIEW_HEADER_BYTES + CAMERA_PREVIEW_MAX_JPEG_BYTES,
  configOptics: 64 * KiB,
  configCalibration: 16 * MiB,
  configPipeline: 4 * KiB,
  configResult: 4 * KiB,
  displayAck: 1 * KiB,
};

// ---------------------------------------------------------------------------------------------
// JSON payloads

export type AdasWarningLevel = 'caution' | 'warning' | 'critical';

/** One ADAS warning; QoS 1, must not be lost. `id` is unique per warning (receivers drop repeats). */
export interface AdasWarning {
  id: string;
  tNs: bigint;
  level: AdasWarningLevel;
  kind: string;
  message: string;
  validUntilNs: bigint;
}

export interface PipelineStatus {
  state: 'online' | 'offline' | 'degraded';
  tNs: bigint;
  reason?: string;
}

/** The display controller's acknowledgement of a shown frame. */
export interface DisplayAck {
  sequence: number;
  tCaptureNs: bigint;
  tShownNs: bigint;
  /** Frames the controller dropped since its previous ack. */
  dropped?: number;
}

/** Outcome of a config push. */
export interface ConfigResult {
  /** The config topic the push came on. */
  topic: string;
  accepted: boolean;
  error?: string;
  field?: string;
  tNs: bigint;
}

/** Pipeline settings pushed over `config/pipeline`. */
export interface PipelineConfig {
  detect?: 'int8' | 'fp32' | 'none';
  maxFrameAgeMs?: number;
  brightness?: 'auto' | 'day' | 'night';
}

const NS = { type: 'string', pattern: '^[0-9]{1,20}$' } as const;
const U32 = { type: 'integer', minimum: 0, maximum: 0xffff_ffff } as const;

export const ADAS_WARNING_SCHEMA = {
  $id: 'arhud.AdasWarning',
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 128 },
    tNs: NS,
    level: { enum: ['caution', 'warning', 'critical'] },
    kind: { type: 'string', minLength: 1, maxLength: 64 },
    message: { type: 'string', maxLength: 512 },
    validUntilNs: NS,
  },
  required: ['id', 'tNs', 'level', 'kind', 'message', 'validUntilNs'],
} as const;

export const PIPELINE_STATUS_SCHEMA = {
  $id: 'arhud.PipelineStatus',
  type: 'object',
  additionalProperties: false,
  properties: { state: { enum: ['online', 'offline', 'degraded'] }, tNs: NS, reason: { type: 'string', maxLength: 256 } },
  required: ['state', 'tNs'],
} as const;

export const DISPLAY_ACK_SCHEMA = {
  $id: 'arhud.DisplayAck',
  type: 'object',
  additionalProperties: false,
  properties: { sequence: U32, tCaptureNs: NS, tShownNs: NS, dropped: U32 },
  required: ['sequence', 'tCaptureNs', 'tShownNs'],
} as const;

export const CONFIG_RESULT_SCHEMA = {
  $id: 'arhud.ConfigResult',
  type: 'object',
  additionalProperties: false,
  properties: {
    topic: { type: 'string', minLength: 1, maxLength: 256 },
    accepted: { type: 'boolean' },
    error: { type: 'string', maxLength: 1024 },
    field: { type: 'string', maxLength: 256 },
    tNs: NS,
  },
  required: ['topic', 'accepted', 'tNs'],
} as const;

/** Longest frame age the pipeline may be told to accept before showing the degraded state. */
export const MAX_FRAME_AGE_MS_LIMIT = 10_000;

export const PIPELINE_CONFIG_SCHEMA = {
  $id: 'arhud.PipelineConfig',
  type: 'object',
  additionalProperties: false,
  properties: {
    detect: { enum: ['int8', 'fp32', 'none'] },
    maxFrameAgeMs: { type: 'number', exclusiveMinimum: 0, maximum: MAX_FRAME_AGE_MS_LIMIT },
    brightness: { enum: ['auto', 'day', 'night'] },
  },
} as const;

const ajv = new Ajv({ strict: true, allErrors: false });
const validateWarning = ajv.compile(ADAS_WARNING_SCHEMA);
const validateStatus = ajv.compile(PIPELINE_STATUS_SCHEMA);
const validateAck = ajv.compile(DISPLAY_ACK_SCHEMA);
const validateConfigResult = ajv.compile(CONFIG_RESULT_SCHEMA);
const validatePipelineConfig = ajv.compile(PIPELINE_CONFIG_SCHEMA);

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Size check, UTF-8 and JSON parse of a payload; errors name the topic. */
export function parseJsonPayload(bytes: Uint8Array, topic: string, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${topic}: payload must be a Uint8Array, got ${typeof bytes}`);
  if (bytes.length > maxBytes) throw new HudPayloadError(topic, undefined, `payload of ${bytes.length} bytes exceeds the limit of ${maxBytes} bytes`);
  if (bytes.length === 0) throw new HudPayloadError(topic, undefined, 'payload is empty');
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    throw new HudPayloadError(topic, undefined, 'payload is not valid UTF-8', { cause: error });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HudPayloadError(topic, undefined, `payload is not JSON (${(error as Error).message})`, { cause: error });
  }
}

function checked<T>(validate: ValidateFunction, json: unknown, topic: string): T {
  if (!validate(json)) throw HudPayloadError.wrap(topic, schemaError(topic, (validate.errors as ErrorObject[])[0]!, json));
  return json as T;
}

/** JSON with bigints as decimal strings. */
function toJsonBytes(value: unknown): Uint8Array {
  return utf8Encoder.encode(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}

type Wire<T, K extends keyof T> = Omit<T, K> & Record<K, string>;

export function parseWarning(bytes: Uint8Array, topic: string): AdasWarning {
  const raw = checked<Wire<AdasWarning, 'tNs' | 'validUntilNs'>>(validateWarning, parseJsonPayload(bytes, topic, MAX_PAYLOAD_BYTES.warnings), topic);
  return { id: raw.id, tNs: BigInt(raw.tNs), level: raw.level, kind: raw.kind, message: raw.message, validUntilNs: BigInt(raw.validUntilNs) };
}

export function encodeWarning(warning: AdasWarning): Uint8Array {
  const w = warning;
  return toJsonBytes({ id: w.id, tNs: w.tNs, level: w.level, kind: w.kind, message: w.message, validUntilNs: w.validUntilNs });
}

export function parseStatus(bytes: Uint8Array, topic: string): PipelineStatus {
  const raw = checked<Wire<PipelineStatus, 'tNs'>>(validateStatus, parseJsonPayload(bytes, topic, MAX_PAYLOAD_BYTES.status), topic);
  const status: PipelineStatus = { state: raw.state, tNs: BigInt(raw.tNs) };
  if (raw.reason !== undefined) status.reason = raw.reason;
  return status;
}

export function encodeStatus(status: PipelineStatus): Uint8Array {
  return toJsonBytes({ state: status.state, tNs: status.tNs, reason: status.reason });
}

export function parseDisplayAck(bytes: Uint8Array, topic: string): DisplayAck {
  const raw = checked<Wire<DisplayAck, 'tCaptureNs' | 'tShownNs'>>(validateAck, parseJsonPayload(bytes, topic, MAX_PAYLOAD_BYTES.displayAck), topic);
  const ack: DisplayAck = { sequence: raw.sequence, tCaptureNs: BigInt(raw.tCaptureNs), tShownNs: BigInt(raw.tShownNs) };
  if (raw.dropped !== undefined) ack.dropped = raw.dropped;
  return ack;
}

export function encodeDisplayAck(ack: DisplayAck): Uint8Array {
  return toJsonBytes({ sequence: ack.sequence, tCaptureNs: ack.tCaptureNs, tShownNs: ack.tShownNs, dropped: ack.dropped });
}

export function parseConfigResult(bytes: Uint8Array, topic: string): ConfigResult {
  const raw = checked<Wire<ConfigResult, 'tNs'>>(validateConfigResult, parseJsonPayload(bytes, topic, MAX_PAYLOAD_BYTES.configResult), topic);
  const result: ConfigResult = { topic: raw.topic, accepted: raw.accepted, tNs: BigInt(raw.tNs) };
  if (raw.error !== undefined) result.error = raw.error;
  if (raw.field !== undefined) result.field = raw.field;
  return result;
}

export function encodeConfigResult(result: ConfigResult): Uint8Array {
  // Long messages are cut so the result always fits its own schema.
  const error = result.error === undefined ? undefined : result.error.slice(0, 1024);
  const field = result.field === undefined ? undefined : result.field.slice(0, 256);
  return toJsonBytes({ topic: result.topic, accepted: result.accepted, error, field, tNs: result.tNs });
}

export function parsePipelineConfig(bytes: Uint8Array, topic: string): PipelineConfig {
  const raw = checked<PipelineConfig>(validatePipelineConfig, parseJsonPayload(bytes, topic, MAX_PAYLOAD_BYTES.configPipeline), topic);
  return { ...raw };
}

export function encodePipelineConfig(config: PipelineConfig): Uint8Array {
  return toJsonBytes(config);
}

/** Runs another module's parser on a payload, turning its errors into HudPayloadError naming the topic and field. */
function parsedBy<T>(topic: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw HudPayloadError.wrap(topic, error);
  }
}

/** A HudScene payload (render/hud-scene.ts schema); errors become HudPayloadError naming the field. */
export function parseScenePayload(bytes: Uint8Array, topic: string): HudScene {
  if (bytes.length > MAX_PAYLOAD_BYTES.scene) throw new HudPayloadError(topic, undefined, `payload of ${bytes.length} bytes exceeds the limit of ${MAX_PAYLOAD_BYTES.scene} bytes`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    throw new HudPayloadError(topic, undefined, 'payload is not valid UTF-8', { cause: error });
  }
  return parsedBy(topic, () => parseHudScene(text, topic));
}

/** A HUD optics config payload (render/optics-config.ts); errors name the field. */
export function parseOpticsConfigPayload(bytes: Uint8Array, topic: string): HudOpticsConfig {
  const json = parseJsonPayload(bytes, topic, MAX_PAYLOAD_BYTES.configOptics);
  return parsedBy(topic, () => parseHudOpticsConfig(json, topic));
}

/** A windshield calibration (warp map) payload (render/warp-map.ts); errors name the field. */
export function parseCalibrationPayload(bytes: Uint8Array, topic: string): WarpMap {
  const json = parseJsonPayload(bytes, topic, MAX_PAYLOAD_BYTES.configCalibration);
  return parsedBy(topic, () => parseWarpMap(json, topic));
}

export type HudConfigKind = 'optics' | 'calibration' | 'pipeline';

/** Parses a config push of the given kind. */
export function parseConfigPayload(kind: HudConfigKind, bytes: Uint8Array, topic: string): HudOpticsConfig | WarpMap | PipelineConfig {
  switch (kind) {
    case 'optics':
      return parseOpticsConfigPayload(bytes, topic);
    case 'calibration':
      return parseCalibrationPayload(bytes, topic);
    case 'pipeline':
      return parsePipelineConfig(bytes, topic);
  }
}
