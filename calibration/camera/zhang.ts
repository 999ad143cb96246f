/**
 * Closed-form initialisation of a camera from views of a planar target (Zhang 2000): a homography per
 * view by the normalised DLT, intrinsics from the homographies' orthogonality constraints, and each
 * view's pose from its homography. Distortion is ignored here; the Levenberg-Marquardt refinement in
 * calibrate.ts takes it from there. Pixel convention: OpenCV's (pixel centres at integer coordinates).
 */
import { levenbergMarquardt } from '../math/levenberg-marquardt.js';
import { solveLeastSquares, symmetricEigen } from '../math/linalg.js';
import { matrixToRodrigues, type CameraIntrinsics, type Pose } from './camera-model.js';

/** Weight of the zero-skew row added to Zhang's system (relative to rows of unit scale). */
const ZERO_SKEW_WEIGHT = 1e3;

/** 3x3 row-major product a b. */
function multiply3(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) out[i * 3 + j] = a[i * 3]! * b[j]! + a[i * 3 + 1]! * b[3 + j]! + a[i * 3 + 2]! * b[6 + j]!;
  return out;
}

/** Similarity moving points (x, y pairs) to centroid 0 and mean distance sqrt(2) (Hartley), row-major 3x3, with its inverse. */
function normalisation(points: Float64Array): { t: Float64Array; inverse: Float64Array } {
  const n = points.length / 2;
  let mx = 0;
  let my = 0;
  for (let k = 0; k < n; k++) {
    mx += points[2 * k]!;
    my += points[2 * k + 1]!;
  }
  mx /= n;
  my /= n;
  let spread = 0;
  for (let k = 0; k < n; k++) spread += Math.hypot(points[2 * k]! - mx, points[2 * k + 1]! - my);
  const s = Math.SQRT2 / Math.max(spread / n, 1e-300);
  return { t: Float64Array.from([s, 0, -s * mx, 0, s, -s * my, 0, 0, 1]), inverse: Float64Array.from([1 / s, 0, mx, 0, 1 / s, my, 0, 0, 1]) };
}

function applyHomography(h: ArrayLike<number>, x: number, y: number, out: Float64Array, k: number): void {
  const w = h[6]! * x + h[7]! * y + h[8]!;
  out[2 * k] = (h[0]! * x + h[1]! * y + h[2]!) / w;
  out[2 * k + 1] = (h[3]! * x + h[4]! * y + h[5]!) / w;
}

/**
 * Homography (3x3 row-major, h[8] = 1) mapping plane points (x, y pairs) to image points (x, y pairs)
 * by the normalised DLT, then refined by Levenberg-Marquardt on the image-space error.
 */
export function fitHomography(planeXY: Float64Array, imageXY: Float64Array): Float64Array {
  const n = planeXY.length / 2;
  if (planeXY.length !== imageXY.length || n < 4) throw new RangeError(`fitHomography: need >= 4 matching point pairs, got ${n} plane and ${imageXY.length / 2} image points`);
  const a = normalisation(planeXY);
  const b = normalisation(imageXY);
  const ata = new Float64Array(81);
  const row = new Float64Array(9);
  const addRow = (): void => {
    for (let i = 0; i < 9; i++) for (let j = 0; j < 9; j++) ata[i * 9 + j] = ata[i * 9 + j]! + row[i]! * row[j]!;
  };
  for (let k = 0; k < n; k++) {
    const x = a.t[0]! * planeXY[2 * k]! + a.t[2]!;
    const y = a.t[4]! * planeXY[2 * k + 1]! + a.t[5]!;
    const u = b.t[0]! * imageXY[2 * k]! + b.t[2]!;
    const v = b.t[4]! * imageXY[2 * k + 1]! + b.t[5]!;
    row.set([x, y, 1, 0, 0, 0, -u * x, -u * y, -u]);
    addRow();
    row.set([0, 0, 0, x, y, 1, -v * x, -v * y, -v]);
    addRow();
  }
  const { vectors } = symmetricEigen(ata, 9);
  const hn = new Float64Array(9);
  for (let i = 0; i < 9; i++) hn[i] = vectors[i * 9]!; // smallest eigenvalue's eigenvector
  const h = multiply3(multiply3(b.inverse, hn), a.t);
  const scale = h[8]!;
  for (let i = 0; i < 9; i++) h[i] = h[i]! / scale;
  const projected = new Float64Array(2 * n);
  const refined = levenbergMarquardt(
    {
      residualCount: 2 * n,
      residuals(p, out) {
        const full = [p[0]!, p[1]!, p[2]!, p[3]!, p[4]!, p[5]!, p[6]!, p[7]!, 1];
        for (let k = 0; k < n; k++) applyHomography(full, planeXY[2 * k]!, planeXY[2 * k + 1]!, projected, k);
        for (let k = 0; k < 2 * n; k++) out[k] = projected[k]! - imageXY[k]!;
      },
    },
    h.subarray(0, 8),
    { maxIterations: 20 },
  );
  const out = new Float64Array(9);
  out.set(refined.params);
  out[8] = 1;
  return out;
}

/**
 * Zhang's closed-form intrinsics with zero skew from >= 2 homographies (plane to pixels): fx, fy, cx,
 * cy. The homographies are first expressed in image coordinates scaled to about unit size, which keeps
 * the 6x6 system well conditioned. Throws RangeError when the views do not determine a camera.
 */
export function zhangIntrinsics(homographies: readonly Float64Array[], imageSize: { widthPx: number; heightPx: number }): CameraIntrinsics {
  if (homographies.length < 2) throw new RangeError(`zhangIntrinsics: need >= 2 homographies, got ${homographies.length}`);
  const s = 2 / (imageSize.widthPx + imageSize.heightPx);
  const norm = Float64Array.from([s, 0, -s * (imageSize.widthPx - 1) / 2, 0, s, -s * (imageSize.heightPx - 1) / 2, 0, 0, 1]);
  const vtv = new Float64Array(36);
  const add = (row: number[], weight = 1): void => {
    for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) vtv[i * 6 + j] = vtv[i * 6 + j]! + weight * row[i]! * row[j]!;
  };
  for (const homography of homographies) {
    const h = multiply3(norm, homography);
    const col = (c: number): [number, number, number] => [h[c]!, h[3 + c]!, h[6 + c]!];
    const norm1 = Math.hypot(...col(0));
    const v = (i: number, j: number): number[] => {
      const a = col(i).map((x) => x / norm1);
      const b = col(j).map((x) => x / norm1);
      return [a[0]! * b[0]!, a[0]! * b[1]! + a[1]! * b[0]!, a[1]! * b[1]!, a[2]! * b[0]! + a[0]! * b[2]!, a[2]! * b[1]! + a[1]! * b[2]!, a[2]! * b[2]!];
    };
    add(v(0, 1));
    const v11 = v(0, 0);
    const v22 = v(1, 1);
    add(v11.map((x, k) => x - v22[k]!));
  }
  add([0, 1, 0, 0, 0, 0], ZERO_SKEW_WEIGHT);
  const { vectors } = symmetricEigen(vtv, 6);
  let b = [0, 1, 2, 3, 4, 5].map((i) => vectors[i * 6]!);
  if (b[0]! < 0) b = b.map((x) => -x);
  const [b11, b12, b22, b13, b23, b33] = b as [number, number, number, number, number, number];
  const d = b11 * b22 - b12 * b12;
  const v0 = (b12 * b13 - b11 * b23) / d;
  const lambda = b33 - (b13 * b13 + v0 * (b12 * b13 - b11 * b23)) / b11;
  const alpha = Math.sqrt(lambda / b11);
  const beta = Math.sqrt((lambda * b11) / d);
  const u0 = (-b13 * alpha * alpha) / lambda;
  const result = { fx: alpha / s, fy: beta / s, cx: (u0 + s * (imageSize.widthPx - 1) / 2) / s, cy: (v0 + s * (imageSize.heightPx - 1) / 2) / s };
  if (![result.fx, result.fy, result.cx, result.cy].every(Number.isFinite) || !(d > 0) || !(lambda / b11 > 0)) {
    throw new RangeError(`zhangIntrinsics: the ${homographies.length} views do not determine the intrinsics (degenerate poses?)`);
  }
  return result;
}

/**
 * Focal lengths from homographies with the principal point known (e.g. the image centre), as OpenCV
 * initialises: two linear constraints per view on 1/fx^2 and 1/fy^2; with `aspectRatio` (fy / fx)
 * given, fy is tied to fx. Needs >= 1 view (>= 2 without an aspect ratio, for a stable answer).
 */
export function focalFromHomographies(homographies: readonly Float64Array[], cx: number, cy: number, aspectRatio?: number): CameraIntrinsics {
  const scale = 1 / Math.max(cx, cy, 1); // keeps the unknowns near 1
  const rows: number[][] = [];
  const rhs: number[] = [];
  for (const homography of homographies) {
    const t = Float64Array.from([scale, 0, -scale * cx, 0, scale, -scale * cy, 0, 0, 1]);
    const h = multiply3(t, homography);
    const [a1, a2, b1, b2, c1, c2] = [h[0]!, h[1]!, h[3]!, h[4]!, h[6]!, h[7]!];
    // With B = diag(b1 = 1/fx'^2, b2 = 1/fy'^2, 1): h1' B h2 = 0 and h1' B h1 = h2' B h2.
    const n = Math.max(Math.hypot(a1, b1, c1), 1e-300) ** 2;
    rows.push([(a1 * a2) / n, (b1 * b2) / n]);
    rhs.push((-c1 * c2) / n);
    rows.push([(a1 * a1 - a2 * a2) / n, (b1 * b1 - b2 * b2) / n]);
    rhs.push((-(c1 * c1) + c2 * c2) / n);
  }
  let fx: number;
  let fy: number;
  if (aspectRatio !== undefined) {
    const a = Float64Array.from(rows.map(([p, q]) => p! + q! / (aspectRatio * aspectRatio)));
    const x = solveLeastSquares(a, rows.length, 1, Float64Array.from(rhs));
    fx = 1 / Math.sqrt(x[0]!) / scale;
    fy = fx * aspectRatio;
  } else {
    const x = solveLeastSquares(Float64Array.from(rows.flat()), rows.length, 2, Float64Array.from(rhs));
    fx = 1 / Math.sqrt(x[0]!) / scale;
    fy = 1 / Math.sqrt(x[1]!) / scale;
  }
  if (!(fx > 0 && fy > 0 && Number.isFinite(fx) && Number.isFinite(fy))) {
    throw new RangeError(`focalFromHomographies: the ${homographies.length} views do not determine the focal length (got fx ${fx}, fy ${fy})`);
  }
  return { fx, fy, cx, cy };
}

/** cameraFromBoard pose of a view from its homography (board plane z = 0 to pixels) and the intrinsics. */
export function poseFromHomography(h: Float64Array, k: CameraIntrinsics): Pose {
  // K^-1 h for each column.
  const col = (c: number): [number, number, number] => {
    const y = (h[3 + c]! - k.cy * h[6 + c]!) / k.fy;
    const x = (h[c]! - k.cx * h[6 + c]!) / k.fx;
    return [x, y, h[6 + c]!];
  };
  const m1 = col(0);
  const m2 = col(1);
  const m3 = col(2);
  let lambda = 2 / (Math.hypot(...m1) + Math.hypot(...m2));
  if (m3[2] * lambda < 0) lambda = -lambda; // the board is in front of the camera
  const r1 = m1.map((v) => v * lambda);
  const r2 = m2.map((v) => v * lambda);
  const r3 = [r1[1]! * r2[2]! - r1[2]! * r2[1]!, r1[2]! * r2[0]! - r1[0]! * r2[2]!, r1[0]! * r2[1]! - r1[1]! * r2[0]!];
  const q = Float64Array.from([r1[0]!, r2[0]!, r3[0]!, r1[1]!, r2[1]!, r3[1]!, r1[2]!, r2[2]!, r3[2]!]);
  return { rvec: matrixToRodrigues(orthonormalise(q)), tvecM: [m3[0] * lambda, m3[1] * lambda, m3[2] * lambda] };
}

/** Nearest rotation to a 3x3 matrix Q (polar decomposition): Q (Q^T Q)^(-1/2). */
export function orthonormalise(q: Float64Array): Float64Array {
  const qtq = new Float64Array(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) qtq[i * 3 + j] = q[i]! * q[j]! + q[3 + i]! * q[3 + j]! + q[6 + i]! * q[6 + j]!;
  const { values, vectors } = symmetricEigen(qtq, 3);
  const inverseRoot = new Float64Array(9);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      let sum = 0;
      for (let e = 0; e < 3; e++) sum += (vectors[i * 3 + e]! * vectors[j * 3 + e]!) / Math.sqrt(Math.max(values[e]!, 1e-300));
      inverseRoot[i * 3 + j] = sum;
    }
  }
  return multiply3(q, inverseRoot);
}
