/**
 * Pinhole camera with Brown-Conrady distortion, exactly as OpenCV's: for a point (X, Y, Z) in the
 * camera frame (x right, y down, z forward, metres), x = X / Z, y = Y / Z, r^2 = x^2 + y^2,
 *   x_d = x (1 + k1 r^2 + k2 r^4 + k3 r^6) + 2 p1 x y + p2 (r^2 + 2 x^2)
 *   y_d = y (1 + k1 r^2 + k2 r^4 + k3 r^6) + p1 (r^2 + 2 y^2) + 2 p2 x y
 *   u = fx x_d + cx, v = fy y_d + cy   (pixels; pixel centres at integer coordinates, as OpenCV).
 * Poses are cameraFromBoard: p_camera = R(rvec) p_board + tvec, rvec a Rodrigues vector (radians).
 */

/** Focal lengths and principal point in pixels. */
export interface CameraIntrinsics {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

/** Brown-Conrady distortion coefficients (OpenCV's k1, k2, p1, p2, k3; dimensionless). */
export interface Distortion {
  k1: number;
  k2: number;
  p1: number;
  p2: number;
  k3: number;
}

/** No distortion. */
export const NO_DISTORTION: Readonly<Distortion> = Object.freeze({ k1: 0, k2: 0, p1: 0, p2: 0, k3: 0 });

/** A rigid transform cameraFromBoard: Rodrigues rotation vector (radians) and translation (metres). */
export interface Pose {
  rvec: [number, number, number];
  tvecM: [number, number, number];
}

/** Rotation matrix (3x3 row-major) of a Rodrigues vector. */
export function rodriguesToMatrix(rvec: readonly [number, number, number], out = new Float64Array(9)): Float64Array {
  const [rx, ry, rz] = rvec;
  const theta = Math.hypot(rx, ry, rz);
  if (theta < 1e-12) {
    // First order: R = I + [r]x, accurate here and smooth for numeric derivatives.
    out.set([1, -rz, ry, rz, 1, -rx, -ry, rx, 1]);
    return out;
  }
  const kx = rx / theta;
  const ky = ry / theta;
  const kz = rz / theta;
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  const t = 1 - c;
  out.set([
    c + kx * kx * t, kx * ky * t - kz * s, kx * kz * t + ky * s,
    ky * kx * t + kz * s, c + ky * ky * t, ky * kz * t - kx * s,
    kz * kx * t - ky * s, kz * ky * t + kx * s, c + kz * kz * t,
  ]);
  return out;
}

/** Rodrigues vector of a rotation matrix (3x3 row-major, assumed orthonormal). */
export function matrixToRodrigues(r: Float64Array): [number, number, number] {
  const trace = r[0]! + r[4]! + r[8]!;
  const cosTheta = Math.min(1, Math.max(-1, (trace - 1) / 2));
  const theta = Math.acos(cosTheta);
  const ax = r[7]! - r[5]!;
  const ay = r[2]! - r[6]!;
  const az = r[3]! - r[1]!;
  if (theta < 1e-7) return [ax / 2, ay / 2, az / 2];
  if (Math.PI - theta < 1e-4) {
    // Near a half turn sin(theta) vanishes: the axis is the dominant column of (R + I) / 2.
    const d = [r[0]!, r[4]!, r[8]!];
    const k = d.indexOf(Math.max(...d));
    const col = [0, 1, 2].map((i) => (r[i * 3 + k]! + (i === k ? 1 : 0)) / 2);
    const norm = Math.hypot(col[0]!, col[1]!, col[2]!);
    let axis = col.map((v) => v / norm);
    if (axis[0]! * ax + axis[1]! * ay + axis[2]! * az < 0) axis = axis.map((v) => -v);
    return [axis[0]! * theta, axis[1]! * theta, axis[2]! * theta];
  }
  const f = theta / (2 * Math.sin(theta));
  return [ax * f, ay * f, az * f];
}

/** Distorts normalised image coordinates (x, y) into `out` [x_d, y_d]. */
export function distortNormalized(x: number, y: number, d: Distortion, out: [number, number]): [number, number] {
  const r2 = x * x + y * y;
  const radial = 1 + r2 * (d.k1 + r2 * (d.k2 + r2 * d.k3));
  out[0] = x * radial + 2 * d.p1 * x * y + d.p2 * (r2 + 2 * x * x);
  out[1] = y * radial + d.p1 * (r2 + 2 * y * y) + 2 * d.p2 * x * y;
  return out;
}

const _rotation = new Float64Array(9);
const _distorted: [number, number] = [0, 0];

/**
 * Projects board points (x, y, z triples in metres, board frame) through a pose and camera into
 * pixel positions (x, y pairs), as OpenCV's projectPoints.
 */
export function projectPoints(objectPointsM: Float64Array, pose: Pose, intrinsics: CameraIntrinsics, distortion: Distortion = NO_DISTORTION, out = new Float64Array((objectPointsM.length / 3) * 2)): Float64Array {
  if (objectPointsM.length % 3 !== 0) throw new RangeError(`projectPoints: 'objectPointsM' must hold x, y, z triples, got ${objectPointsM.length} values`);
  const r = rodriguesToMatrix(pose.rvec, _rotation);
  const [tx, ty, tz] = pose.tvecM;
  const n = objectPointsM.length / 3;
  for (let k = 0; k < n; k++) {
    const X = objectPointsM[3 * k]!;
    const Y = objectPointsM[3 * k + 1]!;
    const Z = objectPointsM[3 * k + 2]!;
    const xc = r[0]! * X + r[1]! * Y + r[2]! * Z + tx;
    const yc = r[3]! * X + r[4]! * Y + r[5]! * Z + ty;
    const zc = r[6]! * X + r[7]! * Y + r[8]! * Z + tz;
    distortNormalized(xc / zc, yc / zc, distortion, _distorted);
    out[2 * k] = intrinsics.fx * _distorted[0] + intrinsics.cx;
    out[2 * k + 1] = intrinsics.fy * _distorted[1] + intrinsics.cy;
  }
  return out;
}

/** Object points (i * squareM, j * squareM, 0) of a cols x rows inner-corner board, row-major like detectChessboard. */
export function boardObjectPoints(cols: number, rows: number, squareM: number): Float64Array {
  const out = new Float64Array(cols * rows * 3);
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      out[3 * (j * cols + i)] = i * squareM;
      out[3 * (j * cols + i) + 1] = j * squareM;
    }
  }
  return out;
}
