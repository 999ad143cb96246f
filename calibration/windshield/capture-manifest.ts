/**
 * Windshield capture set: `captures.json` (the manifest) plus one 8-bit grayscale PNG per eye
 * position, each showing the panel's dot grid as seen by a calibrated camera placed at that eye.
 *
 * Manifest (JSON, version 1):
 *   {
 *     "version": 1,
 *     "camera": { "widthPx", "heightPx", "fxPx", "fyPx", "cxPx", "cyPx", "k1" },   // pinhole + radial k1
 *     "cameraFromVehicle": [9 numbers],   // rotation rows: camera x right, y down, z optical axis, in the vehicle frame
 *     "panel": { "widthPx", "heightPx" },
 *     "region": { "xPx", "yPx", "widthPx", "heightPx" },     // the far plane's panel region
 *     "dotGrid": { "cols", "rows", "radiusPx", "dots": [{ "i", "j", "uPx", "vPx" }, ...] },  // row-major, i fastest
 *     "captures": [{ "file": "eye-0.png", "eyeM": { "x", "y", "z" } }, ...]   // camera centre = eye, vehicle frame, metres
 *   }
 * Pixel coordinates: pixel (i, j) covers [i, i + 1) x [j, j + 1); its centre is (i + 0.5, j + 0.5).
 * Camera model: normalised x = X / Z, y = Y / Z (camera frame), r^2 = x^2 + y^2, distorted by the
 * factor (1 + k1 r^2), then pixel = (fx x + cx, fy y + cy).
 */
import { readJsonFile, schemaError } from '../../pipeline/index.js';
import { PANEL_MAX_PX, type PanelRegionPx, type Vec3M } from '../../render/optics-config.js';
import { EYE_POSITION_SCHEMA } from '../../render/warp-map.js';
import { Ajv } from 'ajv';

/** The only manifest version this module reads and writes. */
export const CAPTURE_MANIFEST_VERSION = 1;
/** Manifest file name inside a capture directory. */
export const CAPTURE_MANIFEST_FILE = 'captures.json';
/** Largest deviation of cameraFromVehicle from a rotation (R R^T - I, any element) accepted. */
const ROTATION_TOLERANCE = 1e-6;
/** Fixed-point iterations of the k1 undistortion (converges to 1e-12 for |k1 r^2| < 0.1). */
const UNDISTORT_ITERATIONS = 20;

/** Pinhole intrinsics with one radial term. */
export interface CaptureCameraIntrinsics {
  widthPx: number;
  heightPx: number;
  fxPx: number;
  fyPx: number;
  cxPx: number;
  cyPx: number;
  /** Radial distortion coefficient (dimensionless, on normalised coordinates). */
  k1: number;
}

/** One dot of the panel grid. */
export interface PanelDot {
  /** Column and row index in the grid. */
  i: number;
  j: number;
  /** Dot centre on the panel, pixels (u right, v down). */
  uPx: number;
  vPx: number;
}

/** The dot grid shown on the panel. */
export interface DotGridDefinition {
  cols: number;
  rows: number;
  /** Dot radius on the panel, pixels. */
  radiusPx: number;
  /** cols x rows dots, row-major (i fastest). */
  dots: PanelDot[];
}

/** One capture: image file (relative to the manifest) and the eye (camera centre) position. */
export interface CaptureEntry {
  file: string;
  eyeM: Vec3M;
}

/** A validated capture manifest. */
export interface CaptureManifest {
  version: 1;
  camera: CaptureCameraIntrinsics;
  /** cameraFromVehicle rotation, row-major (rows: camera x right, y down, z forward in the vehicle frame). */
  cameraFromVehicle: number[];
  panel: { widthPx: number; heightPx: number };
  region: PanelRegionPx;
  dotGrid: DotGridDefinition;
  captures: CaptureEntry[];
}

const INT_PX = { type: 'integer', minimum: 0, maximum: PANEL_MAX_PX } as const;

/** JSON Schema of captures.json (cross-field checks are in `parseCaptureManifest`). */
export const CAPTURE_MANIFEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'camera', 'cameraFromVehicle', 'panel', 'region', 'dotGrid', 'captures'],
  properties: {
    version: { const: CAPTURE_MANIFEST_VERSION },
    camera: {
      type: 'object',
      additionalProperties: false,
      required: ['widthPx', 'heightPx', 'fxPx', 'fyPx', 'cxPx', 'cyPx', 'k1'],
      properties: {
        widthPx: { type: 'integer', minimum: 16, maximum: 16384 },
        heightPx: { type: 'integer', minimum: 16, maximum: 16384 },
        fxPx: { type: 'number', exclusiveMinimum: 0 },
        fyPx: { type: 'number', exclusiveMinimum: 0 },
        cxPx: { type: 'number' },
        cyPx: { type: 'number' },
        k1: { type: 'number', minimum: -10, maximum: 10 },
      },
    },
    cameraFromVehicle: { type: 'array', minItems: 9, maxItems: 9, items: { type: 'number', minimum: -1.000001, maximum: 1.000001 } },
    panel: {
      type: 'object',
      additionalProperties: false,
      required: ['widthPx', 'heightPx'],
      properties: { widthPx: { ...INT_PX, minimum: 1 }, heightPx: { ...INT_PX, minimum: 1 } },
    },
    region: {
      type: 'object',
      additionalProperties: false,
      required: ['xPx', 'yPx', 'widthPx', 'heightPx'],
      properties: { xPx: INT_PX, yPx: INT_PX, widthPx: { ...INT_PX, minimum: 1 }, heightPx: { ...INT_PX, minimum: 1 } },
    },
    dotGrid: {
      type: 'object',
      additionalProperties: false,
      required: ['cols', 'rows', 'radiusPx', 'dots'],
      properties: {
        cols: { type: 'integer', minimum: 3, maximum: 1024 },
        rows: { type: 'integer', minimum: 3, maximum: 1024 },
        radiusPx: { type: 'number', exclusiveMinimum: 0, maximum: 64 },
        dots: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['i', 'j', 'uPx', 'vPx'],
            properties: {
              i: { type: 'integer', minimum: 0 },
              j: { type: 'integer', minimum: 0 },
              uPx: { type: 'number', minimum: 0, maximum: PANEL_MAX_PX },
              vPx: { type: 'number', minimum: 0, maximum: PANEL_MAX_PX },
            },
          },
        },
      },
    },
    captures: {
      type: 'array',
      minItems: 1,
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['file', 'eyeM'],
        properties: {
          file: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9._-]+$' },
          eyeM: EYE_POSITION_SCHEMA,
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ strict: true, allErrors: false, strictNumbers: true });
const validateManifest = ajv.compile(CAPTURE_MANIFEST_SCHEMA);

/**
 * Validates a parsed manifest. `source` names the file in errors. Throws TypeError (wrong kind,
 * unknown or missing field) or RangeError (out of range, dots not matching the grid, region outside
 * the panel, a camera orientation that is not a rotation), the message `<source>: field '<path>' ...`.
 */
export function parseCaptureManifest(json: unknown, source = '(in-memory capture manifest)'): CaptureManifest {
  if (!validateManifest(json)) throw schemaError(source, validateManifest.errors![0]!, json);
  const m = json as CaptureManifest;
  const { cols, rows, dots } = m.dotGrid;
  if (dots.length !== cols * rows) {
    throw new RangeError(`${source}: field 'dotGrid.dots' must hold cols x rows = ${cols * rows} dots, got ${dots.length}`);
  }
  dots.forEach((d, k) => {
    if (d.i !== k % cols || d.j !== Math.floor(k / cols)) {
      throw new RangeError(`${source}: field 'dotGrid.dots.${k}' must be dot (${k % cols}, ${Math.floor(k / cols)}) (row-major order), got (${d.i}, ${d.j})`);
    }
  });
  const r = m.region;
  if (r.xPx + r.widthPx > m.panel.widthPx || r.yPx + r.heightPx > m.panel.heightPx) {
    throw new RangeError(`${source}: field 'region' must lie inside the ${m.panel.widthPx}x${m.panel.heightPx} panel, got ${r.widthPx}x${r.heightPx} at (${r.xPx}, ${r.yPx})`);
  }
  const R = m.cameraFromVehicle;
  for (let a = 0; a < 3; a++) {
    for (let b = 0; b < 3; b++) {
      const d = R[a * 3]! * R[b * 3]! + R[a * 3 + 1]! * R[b * 3 + 1]! + R[a * 3 + 2]! * R[b * 3 + 2]! - (a === b ? 1 : 0);
      if (Math.abs(d) > ROTATION_TOLERANCE) {
        throw new RangeError(`${source}: field 'cameraFromVehicle' must be a rotation (orthonormal rows), got rows ${a} and ${b} with dot product ${d + (a === b ? 1 : 0)}`);
      }
    }
  }
  const files = new Set<string>();
  m.captures.forEach((c, k) => {
    if (files.has(c.file)) throw new RangeError(`${source}: field 'captures.${k}.file' must be unique, got '${c.file}' again`);
    files.add(c.file);
  });
  return m;
}

/** Reads and validates a capture manifest; errors name the file and field. */
export async function loadCaptureManifest(path: string): Promise<CaptureManifest> {
  return parseCaptureManifest(await readJsonFile(path, 'loadCaptureManifest'), path);
}

/** An image point (caller-owned `out`). */
export interface ImagePointPx {
  xPx: number;
  yPx: number;
}

/**
 * Projects a unit direction (vehicle frame) seen by the camera into pixels (NaN behind the camera).
 * Allocates nothing. Returns `out`.
 */
export function projectDirection(camera: Readonly<CaptureCameraIntrinsics>, cameraFromVehicle: readonly number[], d: Readonly<Vec3M>, out: ImagePointPx): ImagePointPx {
  const R = cameraFromVehicle;
  const X = R[0]! * d.x + R[1]! * d.y + R[2]! * d.z;
  const Y = R[3]! * d.x + R[4]! * d.y + R[5]! * d.z;
  const Z = R[6]! * d.x + R[7]! * d.y + R[8]! * d.z;
  if (!(Z > 0)) {
    out.xPx = NaN;
    out.yPx = NaN;
    return out;
  }
  const x = X / Z, y = Y / Z;
  const f = 1 + camera.k1 * (x * x + y * y);
  out.xPx = camera.fxPx * x * f + camera.cxPx;
  out.yPx = camera.fyPx * y * f + camera.cyPx;
  return out;
}

/** Back-projects a pixel to a unit direction in the vehicle frame (undistorting k1). Returns `out`. */
export function pixelToDirection(camera: Readonly<CaptureCameraIntrinsics>, cameraFromVehicle: readonly number[], xPx: number, yPx: number, out: Vec3M): Vec3M {
  const xd = (xPx - camera.cxPx) / camera.fxPx;
  const yd = (yPx - camera.cyPx) / camera.fyPx;
  let x = xd, y = yd;
  for (let k = 0; k < UNDISTORT_ITERATIONS; k++) {
    const f = 1 + camera.k1 * (x * x + y * y);
    x = xd / f;
    y = yd / f;
  }
  const inv = 1 / Math.sqrt(x * x + y * y + 1);
  const R = cameraFromVehicle;
  // vehicleFromCamera = transpose(cameraFromVehicle).
  out.x = (R[0]! * x + R[3]! * y + R[6]!) * inv;
  out.y = (R[1]! * x + R[4]! * y + R[7]!) * inv;
  out.z = (R[2]! * x + R[5]! * y + R[8]!) * inv;
  return out;
}
