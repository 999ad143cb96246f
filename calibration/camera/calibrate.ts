/**
 * Camera calibration from views of a planar chessboard: Zhang's initialisation, then
 * Levenberg-Marquardt over the intrinsics (fx, fy, cx, cy), the Brown-Conrady distortion (k1, k2, p1,
 * p2, k3, see camera-model.ts) and one pose per view, minimising the pixel reprojection error as
 * OpenCV's calibrateCamera. Views far worse than the rest are dropped and the fit is redone.
 * Pixel convention: OpenCV's (pixel centres at integer coordinates).
 */
import path from 'node:path';
import { levenbergMarquardt } from '../math/levenberg-marquardt.js';
import { boardObjectPoints, distortNormalized, projectPoints, rodriguesToMatrix, type CameraIntrinsics, type Distortion, type Pose } from './camera-model.js';
import { detectChessboard, type BoardSize } from './chessboard.js';
import { loadGrayImage } from './image.js';
import { fitHomography, focalFromHomographies, poseFromHomography, zhangIntrinsics } from './zhang.js';

/** Fewest usable views: Zhang's closed form needs 3 for a general camera (2 with zero skew), and one more view guards against a degenerate pair. */
export const MIN_VIEWS = 3;
/**
 * A view is rejected as an outlier when its RMS error exceeds OUTLIER_MEDIAN_FACTOR x the median view
 * RMS *and* OUTLIER_MIN_RMS_PX. Both are generous on purpose: they catch a misdetected or misordered
 * board (errors of several pixels), not a view that is merely noisier than the rest. (OpenCV's own
 * sample set keeps a view at 1.18 px with a 0.39 px overall RMS; these limits keep it too.)
 */
export const OUTLIER_MEDIAN_FACTOR = 5;
/** Pixels; see OUTLIER_MEDIAN_FACTOR. */
export const OUTLIER_MIN_RMS_PX = 2;
/** Default limit on the overall RMS reprojection error (pixels) above which a calibration is rejected. */
export const DEFAULT_MAX_RMS_PX = 1;
/** Iteration cap of the joint refinement (each iteration is one Jacobian). */
export const LM_MAX_ITERATIONS = 100;

/** One view: the board's corners in the image and the matching board points. */
export interface CalibrationView {
  /** Name used in messages and results (e.g. the image file). */
  name: string;
  /** Board points, x, y, z triples in metres, board frame (z = 0: a planar target). */
  objectPointsM: Float64Array;
  /** Detected corners, x, y pairs in pixels, same order. */
  imagePointsPx: Float64Array;
}

/** Options of calibrateCamera. */
export interface CalibrateCameraOptions {
  /** Image size in pixels. */
  imageSize: { widthPx: number; heightPx: number };
  /** Hold fy / fx at `aspectRatio` (OpenCV's CALIB_FIX_ASPECT_RATIO). Default false. */
  fixAspectRatio?: boolean;
  /** fy / fx when fixAspectRatio is set. Default 1. */
  aspectRatio?: number;
  /** Hold k3 at 0 (OpenCV's CALIB_FIX_K3). Default false. */
  fixK3?: boolean;
  /** Hold p1 = p2 = 0 (OpenCV's CALIB_ZERO_TANGENT_DIST). Default false. */
  zeroTangentialDistortion?: boolean;
  /** Drop outlier views (see OUTLIER_MEDIAN_FACTOR) and refit. Default true. */
  rejectOutliers?: boolean;
}

/** Per-view outcome of calibrateCamera. */
export interface CalibratedView {
  name: string;
  /** 'used' in the final fit, or 'rejected' as an outlier. */
  status: 'used' | 'rejected';
  /** Why rejected. */
  reason?: string;
  /** RMS reprojection error of this view under the final model, pixels. */
  rmsPx: number;
  /** cameraFromBoard pose (from the last fit that used the view). */
  pose: Pose;
}

/** Result of calibrateCamera. */
export interface CameraModelFit {
  imageSize: { widthPx: number; heightPx: number };
  intrinsics: CameraIntrinsics;
  distortion: Distortion;
  /** sqrt(sum of squared reprojection errors / number of points) over the used views, pixels (as OpenCV). */
  rmsPx: number;
  views: CalibratedView[];
  /** LM iterations of the final fit. */
  iterations: number;
}

const INTRINSIC_COUNT = 9; // fx, fy, cx, cy, k1, k2, p1, p2, k3
const POSE_COUNT = 6;

function unpack(p: Float64Array, aspectRatio: number | undefined): { k: CameraIntrinsics; d: Distortion } {
  const fx = p[0]!;
  return {
    k: { fx, fy: aspectRatio === undefined ? p[1]! : fx * aspectRatio, cx: p[2]!, cy: p[3]! },
    d: { k1: p[4]!, k2: p[5]!, p1: p[6]!, p2: p[7]!, k3: p[8]! },
  };
}

function poseAt(p: Float64Array, offset: number): Pose {
  return { rvec: [p[offset]!, p[offset + 1]!, p[offset + 2]!], tvecM: [p[offset + 3]!, p[offset + 4]!, p[offset + 5]!] };
}

function viewRms(view: CalibrationView, pose: Pose, k: CameraIntrinsics, d: Distortion): number {
  const projected = projectPoints(view.objectPointsM, pose, k, d);
  let sum = 0;
  for (let i = 0; i < projected.length; i++) sum += (projected[i]! - view.imagePointsPx[i]!) ** 2;
  return Math.sqrt(sum / (projected.length / 2));
}

function checkViews(views: readonly CalibrationView[]): void {
  for (const view of views) {
    const n = view.objectPointsM.length / 3;
    if (!Number.isInteger(n) || view.imagePointsPx.length !== 2 * n) {
      throw new RangeError(`calibrateCamera: ${view.name}: 'imagePointsPx' must hold 2 values per board point (${n} points), got ${view.imagePointsPx.length}`);
    }
    if (n < 4) throw new RangeError(`calibrateCamera: ${view.name}: need >= 4 points per view, got ${n}`);
    for (let i = 0; i < n; i++) {
      if (view.objectPointsM[3 * i + 2] !== 0) throw new RangeError(`calibrateCamera: ${view.name}: board points must lie in z = 0 (a planar target), got z ${view.objectPointsM[3 * i + 2]} at point ${i}`);
    }
  }
}

/** Joint LM fit over the given views from a starting camera; returns parameters and iteration count. */
function refine(views: readonly CalibrationView[], start: Float64Array, fixed: Set<number>, aspectRatio: number | undefined): { params: Float64Array; iterations: number } {
  const counts = views.map((v) => v.objectPointsM.length / 3);
  const residualCount = 2 * counts.reduce((a, b) => a + b, 0);
  const rotation = new Float64Array(9);
  const distorted: [number, number] = [0, 0];
  const problem = {
    residualCount,
    fixed,
    residuals(p: Float64Array, out: Float64Array): void {
      const { k, d } = unpack(p, aspectRatio);
      let r = 0;
      views.forEach((view, v) => {
        const o = INTRINSIC_COUNT + v * POSE_COUNT;
        rodriguesToMatrix([p[o]!, p[o + 1]!, p[o + 2]!], rotation);
        const [tx, ty, tz] = [p[o + 3]!, p[o + 4]!, p[o + 5]!];
        const obj = view.objectPointsM;
        const img = view.imagePointsPx;
        for (let i = 0; i < counts[v]!; i++) {
          const X = obj[3 * i]!;
          const Y = obj[3 * i + 1]!;
          const zc = rotation[6]! * X + rotation[7]! * Y + tz;
          distortNormalized((rotation[0]! * X + rotation[1]! * Y + tx) / zc, (rotation[3]! * X + rotation[4]! * Y + ty) / zc, d, distorted);
          out[r++] = k.fx * distorted[0] + k.cx - img[2 * i]!;
          out[r++] = k.fy * distorted[1] + k.cy - img[2 * i + 1]!;
        }
      });
    },
  };
  const result = levenbergMarquardt(problem, start, { maxIterations: LM_MAX_ITERATIONS, costTolerance: 1e-10 });
  return { params: result.params, iterations: result.iterations };
}

/** Initial camera and poses: homographies, focal length with the principal point at the image centre (as OpenCV), poses refined per view. */
function initialise(views: readonly CalibrationView[], options: CalibrateCameraOptions, aspectRatio: number | undefined): Float64Array {
  const { widthPx, heightPx } = options.imageSize;
  const homographies = views.map((v) => {
    const n = v.objectPointsM.length / 3;
    const plane = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) {
      plane[2 * i] = v.objectPointsM[3 * i]!;
      plane[2 * i + 1] = v.objectPointsM[3 * i + 1]!;
    }
    return fitHomography(plane, v.imagePointsPx);
  });
  let k: CameraIntrinsics;
  try {
    k = focalFromHomographies(homographies, (widthPx - 1) / 2, (heightPx - 1) / 2, aspectRatio);
  } catch (error) {
    // Fall back to the full closed form when the centred guess fails (e.g. a strongly offset centre).
    if (!(error instanceof RangeError)) throw error;
    k = zhangIntrinsics(homographies, options.imageSize);
    if (aspectRatio !== undefined) k = { ...k, fy: k.fx * aspectRatio };
  }
  const params = new Float64Array(INTRINSIC_COUNT + POSE_COUNT * views.length);
  params.set([k.fx, k.fy, k.cx, k.cy]);
  views.forEach((view, v) => {
    const pose = poseFromHomography(homographies[v]!, k);
    const single = refine([view], Float64Array.from([k.fx, k.fy, k.cx, k.cy, 0, 0, 0, 0, 0, ...pose.rvec, ...pose.tvecM]), new Set([0, 1, 2, 3, 4, 5, 6, 7, 8]), aspectRatio);
    params.set(single.params.subarray(INTRINSIC_COUNT), INTRINSIC_COUNT + v * POSE_COUNT);
  });
  return params;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Calibrates a camera from >= MIN_VIEWS views of a planar board. Throws RangeError for too few views
 * or malformed views (messages name the views), TypeError for a wrong kind of option.
 */
export function calibrateCamera(views: readonly CalibrationView[], options: CalibrateCameraOptions): CameraModelFit {
  const { widthPx, heightPx } = options.imageSize ?? {};
  if (!(Number.isInteger(widthPx) && Number.isInteger(heightPx) && widthPx! > 1 && heightPx! > 1)) {
    throw new RangeError(`calibrateCamera: 'imageSize' must be integer widthPx, heightPx > 1, got ${JSON.stringify(options.imageSize)}`);
  }
  if (views.length < MIN_VIEWS) {
    throw new RangeError(`calibrateCamera: need >= ${MIN_VIEWS} views, got ${views.length}${views.length ? ` (${views.map((v) => v.name).join(', ')})` : ''}`);
  }
  checkViews(views);
  const ratio = options.aspectRatio ?? 1;
  if (!(ratio > 0 && Number.isFinite(ratio))) throw new RangeError(`calibrateCamera: 'aspectRatio' must be > 0, got ${ratio}`);
  const aspectRatio = options.fixAspectRatio ? ratio : undefined;
  const fixed = new Set<number>();
  if (aspectRatio !== undefined) fixed.add(1);
  if (options.zeroTangentialDistortion) [6, 7].forEach((i) => fixed.add(i));
  if (options.fixK3) fixed.add(8);
  const all = initialise(views, options, aspectRatio);
  const rejected = new Map<number, string>();
  let active = views.map((_, v) => v);
  let params = all;
  let iterations = 0;
  for (;;) {
    const start = new Float64Array(INTRINSIC_COUNT + POSE_COUNT * active.length);
    start.set(params.subarray(0, INTRINSIC_COUNT));
    active.forEach((v, a) => start.set(all.subarray(INTRINSIC_COUNT + v * POSE_COUNT, INTRINSIC_COUNT + (v + 1) * POSE_COUNT), INTRINSIC_COUNT + a * POSE_COUNT));
    const fit = refine(
      active.map((v) => views[v]!),
      start,
      fixed,
      aspectRatio,
    );
    iterations = fit.iterations;
    params = fit.params;
    active.forEach((v, a) => all.set(params.subarray(INTRINSIC_COUNT + a * POSE_COUNT, INTRINSIC_COUNT + (a + 1) * POSE_COUNT), INTRINSIC_COUNT + v * POSE_COUNT));
    if (options.rejectOutliers === false || active.length <= MIN_VIEWS) break;
    const { k, d } = unpack(params, aspectRatio);
    const rms = active.map((v) => viewRms(views[v]!, poseAt(all, INTRINSIC_COUNT + v * POSE_COUNT), k, d));
    const limit = Math.max(OUTLIER_MEDIAN_FACTOR * median(rms), OUTLIER_MIN_RMS_PX);
    const worst = rms.indexOf(Math.max(...rms));
    if (!(rms[worst]! > limit)) break;
    rejected.set(active[worst]!, `outlier: view RMS ${rms[worst]!.toFixed(3)} px > ${limit.toFixed(3)} px (max of ${OUTLIER_MEDIAN_FACTOR} x the median ${median(rms).toFixed(3)} px and ${OUTLIER_MIN_RMS_PX} px)`);
    active = active.filter((_, a) => a !== worst);
  }
  const { k, d } = unpack(params, aspectRatio);
  let sum = 0;
  let count = 0;
  const results: CalibratedView[] = views.map((view, v) => {
    const pose = poseAt(all, INTRINSIC_COUNT + v * POSE_COUNT);
    const rmsPx = viewRms(view, pose, k, d);
    const reason = rejected.get(v);
    if (reason === undefined) {
      const n = view.objectPointsM.length / 3;
      sum += rmsPx * rmsPx * n;
      count += n;
      return { name: view.name, status: 'used', rmsPx, pose };
    }
    return { name: view.name, status: 'rejected', reason, rmsPx, pose };
  });
  return { imageSize: { widthPx: widthPx!, heightPx: heightPx! }, intrinsics: k, distortion: d, rmsPx: Math.sqrt(sum / count), views: results, iterations };
}

/** Options of calibrateCameraFromImages. */
export interface CalibrateFromImagesOptions extends Omit<CalibrateCameraOptions, 'imageSize'> {
  /** Inner corners of the board. */
  board: BoardSize;
  /** Side of a board square, metres. */
  squareM: number;
  /** Calibrations whose RMS exceeds this (pixels) are marked rejected. Default DEFAULT_MAX_RMS_PX. */
  maxRmsPx?: number;
  /** Called after each image is searched for the board. */
  onProgress?(done: number, total: number, imagePath: string): void;
}

/** Per-image outcome of calibrateCameraFromImages. */
export interface CalibrationImageView {
  /** The image path as given. */
  image: string;
  status: 'used' | 'rejected' | 'not-found';
  /** Why rejected or not found. */
  reason?: string;
  /** RMS reprojection error of the view, pixels (views with a board). */
  rmsPx?: number;
  /** cameraFromBoard pose (views with a board). */
  pose?: Pose;
  /** Detected corners, x, y pairs in pixels (views with a board). */
  cornersPx?: Float64Array;
}

/** Result of calibrateCameraFromImages. */
export interface CameraCalibration {
  imageSize: { widthPx: number; heightPx: number };
  fx: number;
  fy: number;
  cx: number;
  cy: number;
  distortion: Distortion;
  /** Overall RMS reprojection error over the used views, pixels. */
  rmsPx: number;
  /** The limit it was judged against, pixels. */
  maxRmsPx: number;
  /** 'rejected' when rmsPx > maxRmsPx: such a calibration must not be used. */
  status: 'accepted' | 'rejected';
  rejectionReason?: string;
  board: BoardSize & { squareM: number };
  fixAspectRatio: boolean;
  views: CalibrationImageView[];
  timing: { detectMs: number; calibrateMs: number };
}

/**
 * Finds the board in each image and calibrates. Images without a usable board are listed as
 * 'not-found' with the reason; fewer than MIN_VIEWS boards, or images of different sizes, throw a
 * RangeError naming the images used and why the others failed.
 */
export async function calibrateCameraFromImages(paths: readonly string[], options: CalibrateFromImagesOptions): Promise<CameraCalibration> {
  const where = 'calibrateCamera';
  if (!Array.isArray(paths)) throw new TypeError(`${where}: 'paths' must be an array of image paths, got ${typeof paths}`);
  if (!(typeof options.squareM === 'number' && options.squareM > 0 && Number.isFinite(options.squareM))) {
    throw new RangeError(`${where}: 'squareM' must be a length > 0 in metres, got ${options.squareM}`);
  }
  const maxRmsPx = options.maxRmsPx ?? DEFAULT_MAX_RMS_PX;
  if (!(maxRmsPx > 0)) throw new RangeError(`${where}: 'maxRmsPx' must be > 0, got ${maxRmsPx}`);
  const { cols, rows } = options.board;
  const size = `${cols}x${rows}`;
  const objectPointsM = boardObjectPoints(cols, rows, options.squareM);
  const t0 = performance.now();
  const views: CalibrationImageView[] = [];
  const found: CalibrationView[] = [];
  let imageSize: { widthPx: number; heightPx: number; from: string } | undefined;
  for (const [n, imagePath] of paths.entries()) {
    const image = await loadGrayImage(imagePath, where);
    const name = path.basename(imagePath);
    if (imageSize && (image.widthPx !== imageSize.widthPx || image.heightPx !== imageSize.heightPx)) {
      throw new RangeError(`${where}: ${name}: image size ${image.widthPx}x${image.heightPx} differs from ${imageSize.from} (${imageSize.widthPx}x${imageSize.heightPx}); one calibration is for one camera mode`);
    }
    imageSize ??= { widthPx: image.widthPx, heightPx: image.heightPx, from: name };
    const detection = detectChessboard(image, options.board);
    if (detection.found) {
      views.push({ image: imagePath, status: 'used', cornersPx: detection.corners });
      found.push({ name, objectPointsM, imagePointsPx: detection.corners });
    } else {
      views.push({ image: imagePath, status: 'not-found', reason: detection.reason });
    }
    options.onProgress?.(n + 1, paths.length, imagePath);
  }
  const t1 = performance.now();
  if (found.length < MIN_VIEWS) {
    const failed = views.filter((v) => v.status === 'not-found').map((v) => `${path.basename(v.image)} (${v.reason})`);
    throw new RangeError(
      `${where}: too few views with a ${size} board: ${found.length} of ${paths.length}, need >= ${MIN_VIEWS} (used: ${found.map((v) => v.name).join(', ') || 'none'}; not found: ${failed.join('; ') || 'none'})`,
    );
  }
  const fit = calibrateCamera(found, { ...options, imageSize: { widthPx: imageSize!.widthPx, heightPx: imageSize!.heightPx } });
  let f = 0;
  for (const view of views) {
    if (view.status === 'not-found') continue;
    const result = fit.views[f++]!;
    view.status = result.status;
    if (result.reason !== undefined) view.reason = result.reason;
    view.rmsPx = result.rmsPx;
    view.pose = result.pose;
  }
  const calibration: CameraCalibration = {
    imageSize: fit.imageSize,
    ...fit.intrinsics,
    distortion: fit.distortion,
    rmsPx: fit.rmsPx,
    maxRmsPx,
    status: fit.rmsPx > maxRmsPx ? 'rejected' : 'accepted',
    board: { cols, rows, squareM: options.squareM },
    fixAspectRatio: options.fixAspectRatio ?? false,
    views,
    timing: { detectMs: t1 - t0, calibrateMs: performance.now() - t1 },
  };
  if (calibration.status === 'rejected') {
    calibration.rejectionReason = `RMS reprojection error ${fit.rmsPx.toFixed(4)} px exceeds the limit of ${maxRmsPx} px`;
  }
  return calibration;
}
