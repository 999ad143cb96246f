/**
 * The camera calibration file (JSON, version 1): intrinsics in pixels, OpenCV's distortion
 * coefficients, the RMS reprojection error and whether it was within its limit. A rejected calibration
 * is written (so the failure is on record) but refused by loadCameraCalibration unless asked for.
 * Pixel convention: OpenCV's (pixel centres at integer coordinates).
 */
import { Ajv } from 'ajv';
import { readJsonFile, schemaError } from '../../pipeline/index.js';
import type { Distortion, Pose } from './camera-model.js';
import type { CameraCalibration } from './calibrate.js';

/** The only version this reader and writer know. */
export const CAMERA_CALIBRATION_VERSION = 1;
/** Largest image side accepted, pixels (sanity bound for the file). */
const MAX_IMAGE_PX = 100_000;

const VEC3 = { type: 'array', minItems: 3, maxItems: 3, items: { type: 'number' } } as const;

/** JSON Schema of the camera calibration file, version 1. */
export const CAMERA_CALIBRATION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'kind', 'image', 'fx', 'fy', 'cx', 'cy', 'distortion', 'rmsPx', 'maxRmsPx', 'status', 'board', 'views', 'source'],
  properties: {
    version: { const: CAMERA_CALIBRATION_VERSION },
    kind: { const: 'camera' },
    image: {
      type: 'object',
      additionalProperties: false,
      required: ['widthPx', 'heightPx'],
      properties: {
        widthPx: { type: 'integer', minimum: 1, maximum: MAX_IMAGE_PX },
        heightPx: { type: 'integer', minimum: 1, maximum: MAX_IMAGE_PX },
      },
    },
    fx: { type: 'number', exclusiveMinimum: 0 },
    fy: { type: 'number', exclusiveMinimum: 0 },
    cx: { type: 'number' },
    cy: { type: 'number' },
    distortion: {
      type: 'object',
      additionalProperties: false,
      required: ['k1', 'k2', 'p1', 'p2', 'k3'],
      properties: { k1: { type: 'number' }, k2: { type: 'number' }, p1: { type: 'number' }, p2: { type: 'number' }, k3: { type: 'number' } },
    },
    rmsPx: { type: 'number', minimum: 0 },
    maxRmsPx: { type: 'number', exclusiveMinimum: 0 },
    status: { enum: ['accepted', 'rejected'] },
    rejectionReason: { type: 'string', minLength: 1 },
    fixAspectRatio: { type: 'boolean' },
    board: {
      type: 'object',
      additionalProperties: false,
      required: ['cols', 'rows', 'squareM'],
      properties: {
        cols: { type: 'integer', minimum: 2 },
        rows: { type: 'integer', minimum: 2 },
        squareM: { type: 'number', exclusiveMinimum: 0 },
      },
    },
    views: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['image', 'status'],
        properties: {
          image: { type: 'string', minLength: 1 },
          status: { enum: ['used', 'rejected', 'not-found'] },
          reason: { type: 'string' },
          rmsPx: { type: 'number', minimum: 0 },
          rvec: VEC3,
          tvecM: VEC3,
        },
      },
    },
    source: {
      type: 'object',
      additionalProperties: false,
      required: ['tool', 'date'],
      properties: { tool: { type: 'string', minLength: 1 }, date: { type: 'string', minLength: 1 } },
    },
  },
} as const;

/** One view as stored in the file. */
export interface CameraCalibrationFileView {
  image: string;
  status: 'used' | 'rejected' | 'not-found';
  reason?: string;
  rmsPx?: number;
  rvec?: [number, number, number];
  tvecM?: [number, number, number];
}

/** The JSON shape of a version-1 camera calibration file. */
export interface CameraCalibrationFile {
  version: 1;
  kind: 'camera';
  image: { widthPx: number; heightPx: number };
  fx: number;
  fy: number;
  cx: number;
  cy: number;
  distortion: Distortion;
  rmsPx: number;
  maxRmsPx: number;
  status: 'accepted' | 'rejected';
  rejectionReason?: string;
  fixAspectRatio?: boolean;
  board: { cols: number; rows: number; squareM: number };
  views: CameraCalibrationFileView[];
  source: { tool: string; date: string };
}

// strictNumbers: NaN and Infinity are not numbers (a calibration built in memory may carry them).
const ajv = new Ajv({ strict: true, allErrors: false, strictNumbers: true });
const validate = ajv.compile(CAMERA_CALIBRATION_SCHEMA);

/** The file contents for a calibration (write with JSON.stringify). `date` defaults to now. */
export function cameraCalibrationToJson(result: CameraCalibration, source: { tool?: string; date?: string } = {}): CameraCalibrationFile {
  const file: CameraCalibrationFile = {
    version: CAMERA_CALIBRATION_VERSION,
    kind: 'camera',
    image: { ...result.imageSize },
    fx: result.fx,
    fy: result.fy,
    cx: result.cx,
    cy: result.cy,
    distortion: { ...result.distortion },
    rmsPx: result.rmsPx,
    maxRmsPx: result.maxRmsPx,
    status: result.status,
    fixAspectRatio: result.fixAspectRatio,
    board: { ...result.board },
    views: result.views.map((v) => {
      const view: CameraCalibrationFileView = { image: v.image, status: v.status };
      if (v.reason !== undefined) view.reason = v.reason;
      if (v.rmsPx !== undefined) view.rmsPx = v.rmsPx;
      if (v.pose) {
        view.rvec = [...v.pose.rvec];
        view.tvecM = [...v.pose.tvecM];
      }
      return view;
    }),
    source: { tool: source.tool ?? 'arhud calibration/camera', date: source.date ?? new Date().toISOString() },
  };
  if (result.rejectionReason !== undefined) file.rejectionReason = result.rejectionReason;
  return file;
}

/**
 * Validates a parsed camera calibration file; `source` names it in errors, which read
 * `<source>: field 'fx' must be > 0, got -1` (RangeError for out of range, TypeError for wrong kind).
 */
export function parseCameraCalibration(json: unknown, source = '(in-memory camera calibration)'): CameraCalibrationFile {
  if (!validate(json)) throw schemaError(source, validate.errors![0]!, json);
  const file = json as CameraCalibrationFile;
  if (file.status === 'rejected' && file.rejectionReason === undefined) {
    throw new TypeError(`${source}: field 'rejectionReason' is required when 'status' is 'rejected'`);
  }
  return file;
}

/** Options of loadCameraCalibration. */
export interface LoadCameraCalibrationOptions {
  /** Return a rejected calibration instead of throwing (for reports). Default false. */
  allowRejected?: boolean;
}

/** Reads and validates a camera calibration file; refuses a rejected one unless `allowRejected`. */
export async function loadCameraCalibration(path: string, options: LoadCameraCalibrationOptions = {}): Promise<CameraCalibrationFile> {
  const file = parseCameraCalibration(await readJsonFile(path, 'loadCameraCalibration'), path);
  if (file.status === 'rejected' && !options.allowRejected) {
    throw new RangeError(`loadCameraCalibration: ${path} is a rejected calibration and must not be used: ${file.rejectionReason}`);
  }
  return file;
}

/** The pose of a stored view, if it has one. */
export function viewPose(view: CameraCalibrationFileView): Pose | undefined {
  return view.rvec && view.tvecM ? { rvec: view.rvec, tvecM: view.tvecM } : undefined;
}
