/**
 * Sub-pixel corner refinement in the manner of OpenCV's cornerSubPix: at the true corner q, every
 * image gradient g_p in a window around it is orthogonal to (p - q) (on an edge the gradient is
 * perpendicular to it, in a flat area it is zero). Solving sum w g g^T (q) = sum w g g^T p for q and
 * iterating gives the saddle point to a small fraction of a pixel. Pixel centres at integer
 * coordinates (OpenCV's convention).
 */
import { sampleBilinear, type GrayImage } from './image.js';

/** Half size of the search window in pixels (11 x 11 window, as commonly used with OpenCV). */
export const SUBPIXEL_HALF_WINDOW_PX = 5;
/** Most iterations per corner; convergence normally takes 3-6. */
export const SUBPIXEL_MAX_ITERATIONS = 30;
/** Stop when an iteration moves the corner less than this (pixels). */
export const SUBPIXEL_EPSILON_PX = 1e-4;

/** Options of refineCorners, defaults above. */
export interface SubpixelOptions {
  /** Half size of the window in pixels. */
  halfWindowPx?: number;
  /** Most iterations per corner. */
  maxIterations?: number;
  /** Convergence threshold in pixels. */
  epsilonPx?: number;
}

/**
 * Refines corner positions (x0, y0, x1, y1, ...) in place. A corner whose estimate runs further than
 * the half window from its start keeps its starting position (as OpenCV does).
 */
export function refineCorners(image: GrayImage, corners: Float64Array, options: SubpixelOptions = {}): Float64Array {
  const half = options.halfWindowPx ?? SUBPIXEL_HALF_WINDOW_PX;
  const maxIterations = options.maxIterations ?? SUBPIXEL_MAX_ITERATIONS;
  const eps = options.epsilonPx ?? SUBPIXEL_EPSILON_PX;
  if (!Number.isInteger(half) || half < 1) throw new RangeError(`refineCorners: 'halfWindowPx' must be an integer >= 1, got ${half}`);
  const size = 2 * half + 3; // window plus one pixel each side for the gradient
  const patch = new Float64Array(size * size);
  const mask = new Float64Array((2 * half + 1) ** 2);
  for (let i = -half; i <= half; i++) {
    for (let j = -half; j <= half; j++) mask[(i + half) * (2 * half + 1) + j + half] = Math.exp(-((i / half) ** 2) - (j / half) ** 2);
  }
  for (let k = 0; k < corners.length; k += 2) {
    const x0 = corners[k]!;
    const y0 = corners[k + 1]!;
    let x = x0;
    let y = y0;
    for (let iter = 0; iter < maxIterations; iter++) {
      for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) patch[r * size + c] = sampleBilinear(image, x + c - half - 1, y + r - half - 1);
      let a = 0;
      let b = 0;
      let cc = 0;
      let bb1 = 0;
      let bb2 = 0;
      for (let i = -half; i <= half; i++) {
        const r = i + half + 1;
        for (let j = -half; j <= half; j++) {
          const c = j + half + 1;
          const m = mask[(i + half) * (2 * half + 1) + j + half]!;
          const gx = patch[r * size + c + 1]! - patch[r * size + c - 1]!;
          const gy = patch[(r + 1) * size + c]! - patch[(r - 1) * size + c]!;
          const gxx = gx * gx * m;
          const gxy = gx * gy * m;
          const gyy = gy * gy * m;
          a += gxx;
          b += gxy;
          cc += gyy;
          bb1 += gxx * j + gxy * i;
          bb2 += gxy * j + gyy * i;
        }
      }
      const det = a * cc - b * b;
      if (!(Math.abs(det) > 1e-12)) break;
      const dx = (cc * bb1 - b * bb2) / det;
      const dy = (a * bb2 - b * bb1) / det;
      x += dx;
      y += dy;
      if (x < 0 || y < 0 || x > image.widthPx - 1 || y > image.heightPx - 1) break;
      if (dx * dx + dy * dy <= eps * eps) break;
    }
    if (Math.abs(x - x0) > half || Math.abs(y - y0) > half || !Number.isFinite(x) || !Number.isFinite(y)) {
      x = x0;
      y = y0;
    }
    corners[k] = x;
    corners[k + 1] = y;
  }
  return corners;
}
