/**
 * Camera model: pinhole intrinsics with OpenCV `plumb_bob` distortion and the camera's mounting on
 * the vehicle; projects vehicle-frame points to pixels and back-projects pixels to rays and to the
 * road plane.
 *
 * Frames and axes:
 * - vehicle (ISO 8855): origin on the ground (rear-axle centre, or wherever the recording puts it),
 *   x forward, y left, z up; metres. The road is the plane z = 0.
 * - camera (OpenCV): origin at the optical centre, x right, y down, z forward (optical axis).
 * - image: u right, v down, pixels; u = fx x'' + cx, v = fy y'' + cy with (x'', y'') the distorted
 *   normalised coordinates of (x / z, y / z).
 *
 * Mounting angles, applied to a camera that looks straight ahead (optical axis along vehicle x,
 * image right along vehicle -y): roll about the optical axis first, then pitch, then yaw, i.e.
 * `vehicleFromCamera = Rz(yaw) Ry(pitch) Rx(-roll) vehicleFromCameraLevel` with Rk(a) the
 * right-handed rotation by a about vehicle axis k. So positive pitch tilts the optical axis down,
 * positive yaw turns it left, positive roll turns the camera counter-clockwise as seen from behind
 * (the image's right edge goes up).
 *
 * Per-call methods allocate nothing: they use module-level scratch and write into `out`.
 */
import type { CameraIntrinsics } from '../../pipeline/frame.js';
import type { Vec3M } from '../../render/optics-config.js';

export interface CameraMounting {
  /** Camera optical centre in the vehicle frame, metres; z > 0 (above the road). */
  positionM: Vec3M;
  /** Down-tilt of the optical axis below the horizon, rad (positive = looking down). */
  pitchRad: number;
  /** Positive = optical axis turned left. */
  yawRad: number;
  /** Positive = rotated counter-clockwise as seen from behind. */
  rollRad: number;
}

/** A pixel position (caller-owned `out` of `projectVehiclePoint`). */
export interface PixelPoint {
  uPx: number;
  vPx: number;
}

/** A camera-frame point must be at least this far in front of the optical centre (camera z, m) to project. */
export const MIN_PROJECTION_DEPTH_M = 1e-6;
/** A ray whose vehicle-frame z component is above -this (unit direction) is at or above the horizon. */
export const HORIZON_EPSILON = 1e-9;
/** Undistortion: Newton iterations at most (it converges in 3-6 inside the image). */
export const UNDISTORT_MAX_ITERATIONS = 20;
/** Undistortion stops when the distorted residual is below this, normalised units (~1e-9 px at f = 2000 px). */
export const UNDISTORT_TOLERANCE = 1e-12;
/** Mounting angles must be below this in magnitude, rad (80 deg; beyond it the "ahead" conventions break down). */
export const MAX_MOUNTING_ANGLE_RAD = (80 * Math.PI) / 180;

// Module-level scratch (three.js style): per-call methods never allocate.
const _undistorted = { x: 0, y: 0 };

/** A fresh pixel point to reuse as an `out` argument. */
export function createPixelPoint(): PixelPoint {
  return { uPx: NaN, vPx: NaN };
}

export class CameraModel {
  /** Validated copy of the intrinsics (frozen). */
  readonly intrinsics: CameraIntrinsics;
  /** Validated copy of the mounting (frozen). */
  readonly mounting: CameraMounting;
  /**
   * cameraFromVehicle: row-major rotation R (9 values) then translation t (3), p_cam = R p_veh + t;
   * camera axes x right, y down, z forward; vehicle axes x forward, y left, z up.
   */
  readonly cameraFromVehicle: Float64Array;
  readonly #k1: number;
  readonly #k2: number;
  readonly #p1: number;
  readonly #p2: number;
  readonly #k3: number;
  readonly #distorted: boolean;

  /** Throws TypeError (wrong kind) or RangeError (bad value) naming the field. */
  constructor(intrinsics: CameraIntrinsics, mounting: CameraMounting) {
    this.intrinsics = checkIntrinsics(intrinsics);
    this.mounting = checkMounting(mounting);
    const [k1, k2, p1, p2, k3] = this.intrinsics.distortion as [number, number, number, number, number];
    this.#k1 = k1;
    this.#k2 = k2;
    this.#p1 = p1;
    this.#p2 = p2;
    this.#k3 = k3;
    this.#distorted = k1 !== 0 || k2 !== 0 || p1 !== 0 || p2 !== 0 || k3 !== 0;
    this.cameraFromVehicle = cameraFromVehicleOf(this.mounting);
  }

  /**
   * Distorted pixel of a vehicle-frame point (metres). Returns false (and NaN pixels) when the point
   * is not in front of the camera (camera z < MIN_PROJECTION_DEPTH_M). Allocates nothing.
   */
  projectVehiclePoint(pointM: Readonly<Vec3M>, out: PixelPoint): boolean {
    const m = this.cameraFromVehicle;
    const x = m[0]! * pointM.x + m[1]! * pointM.y + m[2]! * pointM.z + m[9]!;
    const y = m[3]! * pointM.x + m[4]! * pointM.y + m[5]! * pointM.z + m[10]!;
    const z = m[6]! * pointM.x + m[7]! * pointM.y + m[8]! * pointM.z + m[11]!;
    if (!(z >= MIN_PROJECTION_DEPTH_M)) {
      out.uPx = NaN;
      out.vPx = NaN;
      return false;
    }
    this.#distort(x / z, y / z, out);
    return true;
  }

  /**
   * Unit direction (vehicle frame) of the ray through the distorted pixel (uPx, vPx); undistorts by
   * Newton iteration. Returns `out`. Allocates nothing.
   */
  pixelToVehicleRay(uPx: number, vPx: number, out: Vec3M): Vec3M {
    this.#undistort(uPx, vPx, _undistorted);
    const x = _undistorted.x;
    const y = _undistorted.y;
    const inverseNorm = 1 / Math.sqrt(x * x + y * y + 1);
    // vehicle direction = R^T (x, y, 1) / |.|
    const m = this.cameraFromVehicle;
    out.x = (m[0]! * x + m[3]! * y + m[6]!) * inverseNorm;
    out.y = (m[1]! * x + m[4]! * y + m[7]!) * inverseNorm;
    out.z = (m[2]! * x + m[5]! * y + m[8]!) * inverseNorm;
    return out;
  }

  /**
   * Where the ray through (uPx, vPx) meets the road (vehicle z = 0), metres, written to `out` (z = 0).
   * Returns false (out untouched) when the ray is at or above the horizon. Every camera ray goes
   * forward from the optical centre, so the intersection is always ahead of the camera.
   */
  pixelToGround(uPx: number, vPx: number, out: Vec3M): boolean {
    this.pixelToVehicleRay(uPx, vPx, _ray);
    if (!(_ray.z < -HORIZON_EPSILON)) return false;
    const c = this.mounting.positionM;
    const s = -c.z / _ray.z;
    out.x = c.x + s * _ray.x;
    out.y = c.y + s * _ray.y;
    out.z = 0;
    return true;
  }

  /** A copy with some mounting fields replaced (e.g. an updated pitch from road calibration). */
  withMounting(mounting: Partial<CameraMounting>): CameraModel {
    return new CameraModel(this.intrinsics, { ...this.mounting, ...mounting });
  }

  /** Distorted pixel of normalised undistorted coordinates (x, y) = (X / Z, Y / Z). */
  distortNormalized(x: number, y: number, out: PixelPoint): PixelPoint {
    this.#distort(x, y, out);
    return out;
  }

  /** Undistorted normalised coordinates (X / Z, Y / Z) of a distorted pixel. */
  undistortPixel(uPx: number, vPx: number, out: { x: number; y: number }): { x: number; y: number } {
    this.#undistort(uPx, vPx, out);
    return out;
  }

  #distort(x: number, y: number, out: PixelPoint): void {
    const k = this.intrinsics;
    if (!this.#distorted) {
      out.uPx = k.fx * x + k.cx;
      out.vPx = k.fy * y + k.cy;
      return;
    }
    const r2 = x * x + y * y;
    const radial = 1 + r2 * (this.#k1 + r2 * (this.#k2 + r2 * this.#k3));
    const xd = x * radial + 2 * this.#p1 * x * y + this.#p2 * (r2 + 2 * x * x);
    const yd = y * radial + this.#p1 * (r2 + 2 * y * y) + 2 * this.#p2 * x * y;
    out.uPx = k.fx * xd + k.cx;
    out.vPx = k.fy * yd + k.cy;
  }

  /** Newton's method on distort(x, y) = (xd, yd), starting at the distorted point. */
  #undistort(uPx: number, vPx: number, out: { x: number; y: number }): void {
    const k = this.intrinsics;
    const xd = (uPx - k.cx) / k.fx;
    const yd = (vPx - k.cy) / k.fy;
    if (!this.#distorted) {
      out.x = xd;
      out.y = yd;
      return;
    }
    const k1 = this.#k1;
    const k2 = this.#k2;
    const k3 = this.#k3;
    const p1 = this.#p1;
    const p2 = this.#p2;
    let x = xd;
    let y = yd;
    for (let i = 0; i < UNDISTORT_MAX_ITERATIONS; i++) {
      const r2 = x * x + y * y;
      const radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3));
      const fx = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd;
      const fy = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd;
      if (Math.abs(fx) + Math.abs(fy) < UNDISTORT_TOLERANCE) break;
      // d radial / d r2, then the 2x2 Jacobian of the distortion.
      const dRadial = k1 + r2 * (2 * k2 + 3 * k3 * r2);
      const jxx = radial + 2 * x * x * dRadial + 2 * p1 * y + 6 * p2 * x;
      const jxy = 2 * x * y * dRadial + 2 * p1 * x + 2 * p2 * y;
      const jyx = 2 * x * y * dRadial + 2 * p1 * x + 2 * p2 * y;
      const jyy = radial + 2 * y * y * dRadial + 6 * p1 * y + 2 * p2 * x;
      const det = jxx * jyy - jxy * jyx;
      if (!(Math.abs(det) > 1e-15)) break;
      x -= (jyy * fx - jxy * fy) / det;
      y -= (jxx * fy - jyx * fx) / det;
    }
    out.x = x;
    out.y = y;
  }
}

const _ray: Vec3M = { x: 0, y: 0, z: 0 };

/**
 * cameraFromVehicle (R then t) of a mounting: R = (Rz(yaw) Ry(pitch) Rx(-roll) L)^T where L is
 * vehicleFromCameraLevel (camera x -> vehicle -y, camera y -> vehicle -z, camera z -> vehicle x).
 */
function cameraFromVehicleOf(mounting: CameraMounting): Float64Array {
  const cy = Math.cos(mounting.yawRad);
  const sy = Math.sin(mounting.yawRad);
  const cp = Math.cos(mounting.pitchRad);
  const sp = Math.sin(mounting.pitchRad);
  const cr = Math.cos(-mounting.rollRad);
  const sr = Math.sin(-mounting.rollRad);
  // A = Rz(yaw) Ry(pitch) Rx(-roll), row-major.
  const a00 = cy * cp;
  const a01 = cy * sp * sr - sy * cr;
  const a02 = cy * sp * cr + sy * sr;
  const a10 = sy * cp;
  const a11 = sy * sp * sr + cy * cr;
  const a12 = sy * sp * cr - cy * sr;
  const a20 = -sp;
  const a21 = cp * sr;
  const a22 = cp * cr;
  // vehicleFromCamera = A L; its columns are the camera axes in the vehicle frame:
  // camera x = A (0,-1,0), camera y = A (0,0,-1), camera z = A (1,0,0). R = its transpose: rows = those axes.
  const m = new Float64Array(12);
  m[0] = -a01;
  m[1] = -a11;
  m[2] = -a21;
  m[3] = -a02;
  m[4] = -a12;
  m[5] = -a22;
  m[6] = a00;
  m[7] = a10;
  m[8] = a20;
  const c = mounting.positionM;
  for (let row = 0; row < 3; row++) {
    m[9 + row] = -(m[3 * row]! * c.x + m[3 * row + 1]! * c.y + m[3 * row + 2]! * c.z);
  }
  return m;
}

function fail(field: string, expected: string, got: unknown, kind: 'type' | 'range' = 'range'): never {
  const message = `CameraModel: field '${field}' must be ${expected}, got ${shown(got)}`;
  throw kind === 'type' ? new TypeError(message) : new RangeError(message);
}

function shown(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => String(v)).join(', ')}]`;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

function checkNumber(field: string, value: unknown, ok: (v: number) => boolean, expected: string): number {
  if (typeof value !== 'number') fail(field, 'a number', value, 'type');
  if (!ok(value)) fail(field, expected, value);
  return value;
}

const positive = (v: number): boolean => Number.isFinite(v) && v > 0;
const finite = (v: number): boolean => Number.isFinite(v);

function checkIntrinsics(k: CameraIntrinsics): CameraIntrinsics {
  if (typeof k !== 'object' || k === null) fail('intrinsics', 'an object', k, 'type');
  const width = checkNumber('intrinsics.width', k.width, positive, 'a finite number > 0');
  const height = checkNumber('intrinsics.height', k.height, positive, 'a finite number > 0');
  const fx = checkNumber('intrinsics.fx', k.fx, positive, 'a finite number > 0');
  const fy = checkNumber('intrinsics.fy', k.fy, positive, 'a finite number > 0');
  const cx = checkNumber('intrinsics.cx', k.cx, finite, 'finite');
  const cy = checkNumber('intrinsics.cy', k.cy, finite, 'finite');
  if (k.distortionModel !== 'plumb_bob') fail('intrinsics.distortionModel', "'plumb_bob'", k.distortionModel);
  if (!Array.isArray(k.distortion)) fail('intrinsics.distortion', 'an array [k1, k2, p1, p2, k3]', k.distortion, 'type');
  if (k.distortion.length !== 5) fail('intrinsics.distortion', '5 values [k1, k2, p1, p2, k3]', k.distortion);
  k.distortion.forEach((d, i) => checkNumber(`intrinsics.distortion[${i}]`, d, finite, 'finite'));
  return Object.freeze({ width, height, fx, fy, cx, cy, distortionModel: 'plumb_bob', distortion: Object.freeze([...k.distortion]) });
}

function checkMounting(m: CameraMounting): CameraMounting {
  if (typeof m !== 'object' || m === null) fail('mounting', 'an object', m, 'type');
  const p = m.positionM;
  if (typeof p !== 'object' || p === null) fail('mounting.positionM', 'an object {x, y, z}', p, 'type');
  const x = checkNumber('mounting.positionM.x', p.x, finite, 'finite');
  const y = checkNumber('mounting.positionM.y', p.y, finite, 'finite');
  const z = checkNumber('mounting.positionM.z', p.z, positive, 'a finite number > 0 (camera above the road)');
  const angle = (v: number): boolean => Number.isFinite(v) && Math.abs(v) < MAX_MOUNTING_ANGLE_RAD;
  const expected = `finite with |value| < ${MAX_MOUNTING_ANGLE_RAD.toFixed(4)} rad`;
  const pitchRad = checkNumber('mounting.pitchRad', m.pitchRad, angle, expected);
  const yawRad = checkNumber('mounting.yawRad', m.yawRad, angle, expected);
  const rollRad = checkNumber('mounting.rollRad', m.rollRad, angle, expected);
  return Object.freeze({ positionM: Object.freeze({ x, y, z }), pitchRad, yawRad, rollRad });
}
