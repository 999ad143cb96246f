/**
 * The typed topics of arhud recordings: names, JSON schemas (Foxglove's where one fits, so
 * Foxglove Studio draws them) and codecs that validate every payload with ajv before use.
 */
import foxgloveSchemas from '@foxglove/schemas/jsonschema.js';
import { protobufToDescriptor } from '@mcap/support';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import protobuf from 'protobufjs';
import { HUD_SCENE_SCHEMA, HudSceneError, hudSceneToJson, parseHudScene, type HudScene } from '../../render/hud-scene.js';
import type { CameraIntrinsics, VehicleState } from '../frame.js';
import { nsFromTimestamp, timestampFromNs, type Timestamp } from '../time.js';

export const TOPIC_CAMERA = '/camera/front';
export const TOPIC_CAMERA_CALIBRATION = '/camera/front/calibration';
export const TOPIC_CAMERA_POSE = '/camera/front/pose';
export const TOPIC_VEHICLE_STATE = '/vehicle/state';
export const TOPIC_GROUND_TRUTH = '/ground_truth/objects';
export const TOPIC_FRAME_REPORT = '/pipeline/frame';
export const TOPIC_FRAME_METRICS = '/pipeline/metrics';
export const TOPIC_DETECTIONS = '/camera/front/detections';
export const TOPIC_HUD_FRAME = '/hud/frame';
/** The world model in the vehicle frame (tracked objects, lane boundaries) for Foxglove's 3D panel. */
export const TOPIC_WORLD_SCENE = '/world/scene';
/** The HudScene the HUD was given, exactly (render/hud-scene.ts). */
export const TOPIC_HUD_SCENE = '/hud/scene';

/** Thrown when a payload does not match its topic's schema; names the failing field. */
export class PayloadError extends TypeError {
  override readonly name = 'PayloadError';
}

export interface TopicCodec<T> {
  readonly schemaName: string;
  /** MCAP schema encoding: 'jsonschema' (JSON payloads) or 'protobuf' (binary payloads, for images). */
  readonly schemaEncoding: 'jsonschema' | 'protobuf';
  readonly messageEncoding: 'json' | 'protobuf';
  /** Schema record data: the JSON Schema text, or a binary protobuf FileDescriptorSet. */
  readonly schemaData: Uint8Array;
  encode(message: T): Uint8Array;
  /** Parses and validates; throws PayloadError naming the failing field. */
  decode(bytes: Uint8Array): T;
}

// The package is CommonJS; its named exports are reachable through the default export only.
const { CameraCalibration, ImageAnnotations, PoseInFrame, SceneUpdate } = foxgloveSchemas;

const ajv = new Ajv({ strict: false, allErrors: false });
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function describeError(schemaName: string, errors: ErrorObject[] | null | undefined): string {
  const first = errors?.[0];
  if (!first) return `${schemaName}: invalid payload`;
  const field = first.instancePath === '' ? '(root)' : first.instancePath.slice(1).replaceAll('/', '.');
  return `${schemaName}: field '${field}' ${first.message ?? 'is invalid'}`;
}

/** A JSON codec: `toJson`/`fromJson` convert between the stored shape and the typed message. */
export function jsonCodec<T, J>(
  schemaName: string,
  schema: Record<string, unknown>,
  toJson: (message: T) => J,
  fromJson: (json: J) => T,
): TopicCodec<T> {
  const validate: ValidateFunction = ajv.compile(schema);
  return {
    schemaName,
    schemaEncoding: 'jsonschema',
    messageEncoding: 'json',
    schemaData: utf8Encoder.encode(JSON.stringify(schema)),
    encode: (message) => utf8Encoder.encode(JSON.stringify(toJson(message))),
    decode: (bytes) => {
      let json: unknown;
      try {
        json = JSON.parse(utf8Decoder.decode(bytes));
      } catch (error) {
        throw new PayloadError(`${schemaName}: payload is not JSON (${(error as Error).message})`);
      }
      if (!validate(json)) throw new PayloadError(describeError(schemaName, validate.errors));
      return fromJson(json as J);
    },
  };
}

export const timestampSchema = {
  type: 'object',
  properties: { sec: { type: 'integer', minimum: 0 }, nsec: { type: 'integer', minimum: 0, maximum: 999_999_999 } },
  required: ['sec', 'nsec'],
};

// ---------------------------------------------------------------------------------------------
export interface CompressedImageMessage {
  tNs: bigint;
  frameId: string;
  format: 'jpeg' | 'png';
  /** Encoded image bytes (a view into the payload when decoded: no copy). */
  data: Uint8Array;
}

/** Image formats the pipeline decodes. */
export const IMAGE_FORMATS: readonly string[] = ['jpeg', 'png'];

/**
 * foxglove.CompressedImage in protobuf, Foxglove's own encoding for images: the bytes stay binary
 * (JSON would need base64: a third larger and a decode pass per frame). Field numbers follow
 * foxglove/CompressedImage.proto.
 */
export const compressedImageCodec: TopicCodec<CompressedImageMessage> = (() => {
  const root = new protobuf.Root();
  protobuf.parse('syntax = "proto3"; package google.protobuf; message Timestamp { int64 seconds = 1; int32 nanos = 2; }', root, { keepCase: true });
  protobuf.parse(
    `syntax = "proto3"; import "google/protobuf/timestamp.proto"; package foxglove;
     message CompressedImage { google.protobuf.Timestamp timestamp = 1; string frame_id = 4; bytes data = 2; string format = 3; }`,
    root,
    { keepCase: true },
  );
  root.resolveAll();
  const type = root.lookupType('foxglove.CompressedImage');
  const descriptor = protobufToDescriptor(root);
  const schemaName = 'foxglove.CompressedImage';
  interface Wire {
    timestamp?: { seconds: number | { toString(): string }; nanos: number };
    frame_id: string;
    data: Uint8Array;
    format: string;
  }
  return {
    schemaName,
    schemaEncoding: 'protobuf',
    messageEncoding: 'protobuf',
    schemaData: (descriptor.constructor as unknown as { encode(d: unknown): { finish(): Uint8Array } }).encode(descriptor).finish(),
    encode: (m) => {
      const { sec, nsec } = timestampFromNs(m.tNs);
      return type.encode({ timestamp: { seconds: sec, nanos: nsec }, frame_id: m.frameId, data: m.data, format: m.format }).finish();
    },
    decode: (bytes) => {
      let wire: Wire;
      try {
        wire = type.decode(bytes) as unknown as Wire;
      } catch (error) {
        throw new PayloadError(`${schemaName}: payload is not a protobuf ${schemaName} (${(error as Error).message})`);
      }
      if (!wire.timestamp) throw new PayloadError(`${schemaName}: field 'timestamp' is missing`);
      const seconds = Number(typeof wire.timestamp.seconds === 'number' ? wire.timestamp.seconds : wire.timestamp.seconds.toString());
      const { nanos } = wire.timestamp;
      if (!(seconds >= 0)) throw new PayloadError(`${schemaName}: field 'timestamp.seconds' must be >= 0, got ${seconds}`);
      if (!(nanos >= 0 && nanos <= 999_999_999)) throw new PayloadError(`${schemaName}: field 'timestamp.nanos' must be in [0, 999999999], got ${nanos}`);
      if (!IMAGE_FORMATS.includes(wire.format)) throw new PayloadError(`${schemaName}: field 'format' must be one of ${IMAGE_FORMATS.join(', ')}, got '${wire.format}'`);
      if (wire.data.length === 0) throw new PayloadError(`${schemaName}: field 'data' is empty`);
      return { tNs: nsFromTimestamp({ sec: seconds, nsec: nanos }), frameId: wire.frame_id, format: wire.format as 'jpeg' | 'png', data: wire.data };
    },
  };
})();

// ---------------------------------------------------------------------------------------------
export interface CameraCalibrationMessage {
  tNs: bigint;
  frameId: string;
  intrinsics: CameraIntrinsics;
}

interface CameraCalibrationJson {
  timestamp: Timestamp;
  frame_id: string;
  width: number;
  height: number;
  distortion_model: string;
  D: number[];
  K: number[];
  R: number[];
  P: number[];
}

export const cameraCalibrationCodec = jsonCodec<CameraCalibrationMessage, CameraCalibrationJson>(
  'foxglove.CameraCalibration',
  {
    ...CameraCalibration,
    properties: {
      ...CameraCalibration.properties,
      width: { type: 'integer', minimum: 1 },
      height: { type: 'integer', minimum: 1 },
      distortion_model: { type: 'string', enum: ['plumb_bob'] },
      D: { type: 'array', items: { type: 'number' }, minItems: 5, maxItems: 5 },
    },
  },
  ({ tNs, frameId, intrinsics: k }) => ({
    timestamp: timestampFromNs(tNs),
    frame_id: frameId,
    width: k.width,
    height: k.height,
    distortion_model: k.distortionModel,
    D: [...k.distortion],
    K: [k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1],
    R: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    P: [k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1, 0],
  }),
  (j) => {
    const [fx, , cx, , fy, cy] = j.K as [number, number, number, number, number, number];
    if (!(fx > 0 && fy > 0)) throw new PayloadError(`foxglove.CameraCalibration: field 'K' must have fx > 0 and fy > 0, got fx=${fx} fy=${fy}`);
    return {
      tNs: nsFromTimestamp(j.timestamp),
      frameId: j.frame_id,
      intrinsics: { width: j.width, height: j.height, fx, fy, cx, cy, distortionModel: 'plumb_bob', distortion: j.D },
    };
  },
);

// ---------------------------------------------------------------------------------------------
interface VehicleStateJson {
  timestamp: Timestamp;
  speedMps: number;
  yawRateRps: number;
  accelMps2?: number;
  steeringRad?: number;
  gear?: string;
}

export const vehicleStateCodec = jsonCodec<VehicleState, VehicleStateJson>(
  'arhud.VehicleState',
  {
    title: 'arhud.VehicleState',
    description: 'Vehicle signals at one instant; ISO 8855 vehicle frame (x forward, y left, z up), SI units.',
    type: 'object',
    properties: {
      timestamp: timestampSchema,
      speedMps: { type: 'number', description: 'Forward speed, m/s' },
      yawRateRps: { type: 'number', description: 'Yaw rate, rad/s, positive turning left' },
      accelMps2: { type: 'number', description: 'Longitudinal acceleration, m/s^2' },
      steeringRad: { type: 'number', description: 'Road-wheel steering angle, rad, positive left' },
      gear: { type: 'string' },
    },
    required: ['timestamp', 'speedMps', 'yawRateRps'],
  },
  ({ tNs, ...signals }) => ({ timestamp: timestampFromNs(tNs), ...signals }),
  ({ timestamp, ...signals }) => ({ tNs: nsFromTimestamp(timestamp), ...signals }),
);

// ---------------------------------------------------------------------------------------------
export interface Vector3M {
  x: number;
  y: number;
  z: number;
}

export interface PoseMessage {
  tNs: bigint;
  /** Frame the pose is expressed in (e.g. 'world'). */
  frameId: string;
  positionM: Vector3M;
  orientation: { x: number; y: number; z: number; w: number };
}

interface PoseInFrameJson {
  timestamp: Timestamp;
  frame_id: string;
  pose: { position: Vector3M; orientation: { x: number; y: number; z: number; w: number } };
}

export const poseCodec = jsonCodec<PoseMessage, PoseInFrameJson>(
  'foxglove.PoseInFrame',
  PoseInFrame,
  (m) => ({ timestamp: timestampFromNs(m.tNs), frame_id: m.frameId, pose: { position: m.positionM, orientation: m.orientation } }),
  (j) => ({ tNs: nsFromTimestamp(j.timestamp), frameId: j.frame_id, positionM: j.pose.position, orientation: j.pose.orientation }),
);

// ---------------------------------------------------------------------------------------------
export interface GroundTruthObject {
  /** Stable id across frames (dataset uuid). */
  id: string;
  /** Dataset class label, e.g. 'Car', 'Pedestrian'. */
  label: string;
  /** Box centre in the message's frame. */
  positionM: Vector3M;
  lengthM: number;
  widthM: number;
  heightM: number;
  /** Heading of the box's length axis about z, counter-clockwise from x. */
  yawRad: number;
  stationary: boolean;
  /** Dataset camera that saw the object best; -1 when none did (PandaSet `camera_used`). */
  cameraUsed?: number;
  /** Id of the same object's box from another sensor, when the dataset labels it twice. */
  siblingId?: string;
  /** Dataset sensor the box was labelled from (PandaSet: 0 mechanical LiDAR, 1 forward LiDAR, -1 both/none). */
  sensorId?: number;
}

export interface GroundTruthObjectsMessage {
  tNs: bigint;
  frameId: string;
  objects: GroundTruthObject[];
}

const vector3Schema = {
  type: 'object',
  properties: { x: { type: 'number' }, y: { type: 'number' }, z: { type: 'number' } },
  required: ['x', 'y', 'z'],
};

export const groundTruthObjectsCodec = jsonCodec<GroundTruthObjectsMessage, { timestamp: Timestamp } & Omit<GroundTruthObjectsMessage, 'tNs'>>(
  'arhud.GroundTruthObjects',
  {
    title: 'arhud.GroundTruthObjects',
    description: 'Labelled 3D boxes at one instant (metres, radians).',
    type: 'object',
    properties: {
      timestamp: timestampSchema,
      frameId: { type: 'string' },
      objects: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            label: { type: 'string' },
            positionM: vector3Schema,
            lengthM: { type: 'number', minimum: 0 },
            widthM: { type: 'number', minimum: 0 },
            heightM: { type: 'number', minimum: 0 },
            yawRad: { type: 'number' },
            stationary: { type: 'boolean' },
            cameraUsed: { type: 'integer', minimum: -1 },
            siblingId: { type: 'string' },
            sensorId: { type: 'integer', minimum: -1 },
          },
          required: ['id', 'label', 'positionM', 'lengthM', 'widthM', 'heightM', 'yawRad', 'stationary'],
        },
      },
    },
    required: ['timestamp', 'frameId', 'objects'],
  },
  ({ tNs, ...rest }) => ({ timestamp: timestampFromNs(tNs), ...rest }),
  ({ timestamp, ...rest }) => ({ tNs: nsFromTimestamp(timestamp), ...rest }),
);

// ---------------------------------------------------------------------------------------------
/** What the pipeline measured on one frame (replay output). */
export interface FrameReportMessage {
  tNs: bigint;
  seq: number;
  width: number;
  height: number;
  /** Mean luma, 0..255 (BT.601 weights). */
  meanLuma: number;
  /** Fraction of sampled pixels with luma < 16. */
  darkFraction: number;
  /** Fraction of sampled pixels with any channel at 255. */
  clippedFraction: number;
}

export const frameReportCodec = jsonCodec<FrameReportMessage, { timestamp: Timestamp } & Omit<FrameReportMessage, 'tNs'>>(
  'arhud.FrameReport',
  {
    title: 'arhud.FrameReport',
    description: 'Per-frame measurements made by the replay pipeline.',
    type: 'object',
    properties: {
      timestamp: timestampSchema,
      seq: { type: 'integer', minimum: 0 },
      width: { type: 'integer', minimum: 1 },
      height: { type: 'integer', minimum: 1 },
      meanLuma: { type: 'number', minimum: 0, maximum: 255 },
      darkFraction: { type: 'number', minimum: 0, maximum: 1 },
      clippedFraction: { type: 'number', minimum: 0, maximum: 1 },
    },
    required: ['timestamp', 'seq', 'width', 'height', 'meanLuma', 'darkFraction', 'clippedFraction'],
  },
  ({ tNs, ...rest }) => ({ timestamp: timestampFromNs(tNs), ...rest }),
  ({ timestamp, ...rest }) => ({ tNs: nsFromTimestamp(timestamp), ...rest }),
);

// ---------------------------------------------------------------------------------------------
/** How the runtime handled one frame: per-stage latency and the safety decisions (plots in Foxglove). */
export interface FrameMetricsMessage {
  tNs: bigint;
  seq: number;
  /** Milliseconds each stage took on this frame, by stage name. */
  stageMs: Record<string, number>;
  /** Capture (pipeline entry) to the frame handed to the display link, ms; absent without a link stage. */
  captureToPublishMs?: number;
  /** Degradation level (0 = everything at full quality). */
  degradationLevel: number;
  /** AR overlays withheld by the watchdog. */
  safeBlank: boolean;
  /** The HUD showed the degraded indicator. */
  degraded: boolean;
  /** Stage faults and overruns on this frame ("stage kind: message"). */
  faults: string[];
}

export const frameMetricsCodec = jsonCodec<FrameMetricsMessage, { timestamp: Timestamp } & Omit<FrameMetricsMessage, 'tNs'>>(
  'arhud.FrameMetrics',
  {
    title: 'arhud.FrameMetrics',
    description: 'Per-frame runtime measurements: stage latency, capture-to-publish, degradation and watchdog decisions.',
    type: 'object',
    properties: {
      timestamp: timestampSchema,
      seq: { type: 'integer', minimum: 0 },
      stageMs: { type: 'object', additionalProperties: { type: 'number', minimum: 0 } },
      captureToPublishMs: { type: 'number', minimum: 0 },
      degradationLevel: { type: 'integer', minimum: 0, maximum: 3 },
      safeBlank: { type: 'boolean' },
      degraded: { type: 'boolean' },
      faults: { type: 'array', items: { type: 'string', maxLength: 1024 } },
    },
    required: ['timestamp', 'seq', 'stageMs', 'degradationLevel', 'safeBlank', 'degraded', 'faults'],
  },
  ({ tNs, ...rest }) => ({ timestamp: timestampFromNs(tNs), ...rest }),
  ({ timestamp, ...rest }) => ({ tNs: nsFromTimestamp(timestamp), ...rest }),
);

// ---------------------------------------------------------------------------------------------
export interface RgbaColor {
  r: number;
  g: number;
  b: number;
  a: number;
}

/** A labelled box in image pixels (e.g. a detection). */
export interface LabelledBox {
  label: string;
  score: number;
  /** [x1, y1, x2, y2] in image pixels. */
  box: [number, number, number, number];
  color?: RgbaColor;
}

export interface ImageBoxesMessage {
  tNs: bigint;
  boxes: LabelledBox[];
}

interface ImageAnnotationsJson {
  timestamp: Timestamp;
  circles: unknown[];
  points: {
    timestamp: Timestamp;
    type: number;
    points: { x: number; y: number }[];
    outline_color: RgbaColor;
    outline_colors: RgbaColor[];
    fill_color: RgbaColor;
    thickness: number;
    metadata?: { key: string; value: string }[];
  }[];
  texts: unknown[];
}

const POINTS_LINE_LOOP = 2;
const DEFAULT_BOX_COLOR: RgbaColor = { r: 1, g: 0.6, b: 0, a: 1 };
const TRANSPARENT: RgbaColor = { r: 0, g: 0, b: 0, a: 0 };

/**
 * Boxes as foxglove.ImageAnnotations (what Foxglove's image panel draws over the camera): each box
 * a closed polygon whose metadata carries its label and score, plus a text label above it.
 */
export const imageBoxesCodec = jsonCodec<ImageBoxesMessage, ImageAnnotationsJson>(
  'foxglove.ImageAnnotations',
  ImageAnnotations,
  ({ tNs, boxes }) => {
    const timestamp = timestampFromNs(tNs);
    return {
      timestamp,
      circles: [],
      points: boxes.map(({ label, score, box: [x1, y1, x2, y2], color }) => ({
        timestamp,
        type: POINTS_LINE_LOOP,
        points: [
          { x: x1, y: y1 },
          { x: x2, y: y1 },
          { x: x2, y: y2 },
          { x: x1, y: y2 },
        ],
        outline_color: color ?? DEFAULT_BOX_COLOR,
        outline_colors: [],
        fill_color: TRANSPARENT,
        thickness: 2,
        metadata: [
          { key: 'label', value: label },
          { key: 'score', value: score.toFixed(4) },
        ],
      })),
      texts: boxes.map(({ label, score, box: [x1, y1], color }) => ({
        timestamp,
        position: { x: x1, y: Math.max(0, y1 - 4) },
        text: `${label} ${score.toFixed(2)}`,
        font_size: 14,
        text_color: color ?? DEFAULT_BOX_COLOR,
        background_color: { r: 0, g: 0, b: 0, a: 0.6 },
      })),
    };
  },
  (j) => ({
    tNs: nsFromTimestamp(j.timestamp),
    boxes: j.points
      .filter((p) => p.type === POINTS_LINE_LOOP && p.points.length === 4)
      .map((p) => {
        const meta = new Map((p.metadata ?? []).map((kv) => [kv.key, kv.value]));
        const xs = p.points.map((q) => q.x);
        const ys = p.points.map((q) => q.y);
        return {
          label: meta.get('label') ?? '',
          score: Number(meta.get('score') ?? 0),
          box: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)] as [number, number, number, number],
          color: p.outline_color,
        };
      }),
  }),
);

// ---------------------------------------------------------------------------------------------
/** foxglove.Duration as carried in JSON payloads. */
export interface Duration {
  sec: number;
  nsec: number;
}

export interface KeyValuePair {
  key: string;
  value: string;
}

export interface PoseJson {
  position: Vector3M;
  orientation: { x: number; y: number; z: number; w: number };
}

export interface CubePrimitiveJson {
  pose: PoseJson;
  /** Edge lengths along the pose's x, y, z, m. */
  size: Vector3M;
  color: RgbaColor;
}

/** foxglove.LineType: 0 LINE_STRIP, 1 LINE_LOOP, 2 LINE_LIST. */
export const LINE_STRIP = 0;

export interface LinePrimitiveJson {
  type: 0 | 1 | 2;
  pose: PoseJson;
  /** Width, m (or px when scale_invariant). */
  thickness: number;
  scale_invariant: boolean;
  points: Vector3M[];
  color: RgbaColor;
  colors: RgbaColor[];
  indices: number[];
}

/** foxglove.SceneEntity with the primitive kinds arhud writes typed; the others stay empty. */
export interface SceneEntityJson {
  timestamp: Timestamp;
  frame_id: string;
  id: string;
  /** Relative to `timestamp`; zero would mean "forever", so arhud never writes it. */
  lifetime: Duration;
  frame_locked: boolean;
  metadata: KeyValuePair[];
  arrows: unknown[];
  cubes: CubePrimitiveJson[];
  spheres: unknown[];
  cylinders: unknown[];
  lines: LinePrimitiveJson[];
  triangles: unknown[];
  texts: unknown[];
  models: unknown[];
}

export interface SceneEntityDeletionJson {
  timestamp: Timestamp;
  /** 0 MATCHING_ID, 1 ALL. */
  type: 0 | 1;
  id: string;
}

/** foxglove.SceneUpdate, stored as is (its JSON form is the message). */
export interface SceneUpdateMessage {
  deletions: SceneEntityDeletionJson[];
  entities: SceneEntityJson[];
}

/** 3D entities as foxglove.SceneUpdate in JSON, which Foxglove's 3D panel draws. */
export const sceneUpdateCodec = jsonCodec<SceneUpdateMessage, SceneUpdateMessage>(
  'foxglove.SceneUpdate',
  SceneUpdate,
  (m) => m,
  (j) => j,
);

// ---------------------------------------------------------------------------------------------
/**
 * The HudScene in its own JSON form (times as decimal strings of ns), validated by
 * HUD_SCENE_SCHEMA on read; errors name the deepest failing field.
 */
export const hudSceneCodec: TopicCodec<HudScene> = (() => {
  const schemaName = 'arhud.HudScene';
  return {
    schemaName,
    schemaEncoding: 'jsonschema',
    messageEncoding: 'json',
    schemaData: utf8Encoder.encode(JSON.stringify({ title: schemaName, ...HUD_SCENE_SCHEMA })),
    encode: (scene) => utf8Encoder.encode(hudSceneToJson(scene)),
    decode: (bytes) => {
      let text: string;
      try {
        text = utf8Decoder.decode(bytes);
      } catch (error) {
        throw new PayloadError(`${schemaName}: payload is not UTF-8 (${(error as Error).message})`);
      }
      try {
        return parseHudScene(text, schemaName);
      } catch (error) {
        if (error instanceof HudSceneError) throw new PayloadError(error.message);
        throw error;
      }
    },
  };
})();

/** Codec for each known topic, for validation when reading. */
export const CODECS_BY_TOPIC: ReadonlyMap<string, TopicCodec<unknown>> = new Map<string, TopicCodec<unknown>>([
  [TOPIC_CAMERA, compressedImageCodec as TopicCodec<unknown>],
  [TOPIC_CAMERA_CALIBRATION, cameraCalibrationCodec as TopicCodec<unknown>],
  [TOPIC_CAMERA_POSE, poseCodec as TopicCodec<unknown>],
  [TOPIC_VEHICLE_STATE, vehicleStateCodec as TopicCodec<unknown>],
  [TOPIC_GROUND_TRUTH, groundTruthObjectsCodec as TopicCodec<unknown>],
  [TOPIC_FRAME_REPORT, frameReportCodec as TopicCodec<unknown>],
  [TOPIC_FRAME_METRICS, frameMetricsCodec as TopicCodec<unknown>],
  [TOPIC_DETECTIONS, imageBoxesCodec as TopicCodec<unknown>],
  [TOPIC_HUD_FRAME, compressedImageCodec as TopicCodec<unknown>],
  [TOPIC_WORLD_SCENE, sceneUpdateCodec as TopicCodec<unknown>],
  [TOPIC_HUD_SCENE, hudSceneCodec as TopicCodec<unknown>],
]);
