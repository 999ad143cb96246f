import { describe, expect, it } from 'vitest';
import {
  boardObjectPoints,
  calibrateCamera,
  detectChessboard,
  fitHomography,
  matrixToRodrigues,
  poseFromHomography,
  projectPoints,
  rodriguesToMatrix,
  zhangIntrinsics,
  type CalibrationView,
  type CameraIntrinsics,
  type Distortion,
  type GrayImage,
  type Pose,
} from '../../calibration/camera/index.js';
import { gaussianRandom, seededRandom } from '../../calibration/math/random.js';

const SIZE = { widthPx: 640, heightPx: 480 };
const K: CameraIntrinsics = { fx: 540, fy: 540, cx: 330, cy: 245 };
const DIST: Distortion = { k1: -0.25, k2: 0.08, p1: 0.001, p2: -0.0005, k3: -0.01 };
const BOARD = { cols: 9, rows: 6 };
const SQUARE_M = 0.025;
/** Corner noise of the synthetic views per axis, pixels (about what sub-pixel detection achieves on JPEGs). */
const NOISE_PX = 0.2;
/** Mean error of detected + refined corners on a clean rendered board, pixels. */
const MAX_MEAN_CORNER_ERROR_PX = 0.1;

/** Poses looking at the board from ~0.4 m, tilted up to ~30 degrees. */
function poses(count: number, seed: number): Pose[] {
  const uniform = seededRandom(seed);
  const out: Pose[] = [];
  for (let v = 0; v < count; v++) {
    const rvec: [number, number, number] = [(uniform() - 0.5) * 0.9, (uniform() - 0.5) * 0.9, (uniform() - 0.5) * 0.6];
    out.push({ rvec, tvecM: [-0.1 + (uniform() - 0.5) * 0.08, -0.06 + (uniform() - 0.5) * 0.06, 0.38 + uniform() * 0.12] });
  }
  return out;
}

describe('camera model', () => {
  it('round-trips Rodrigues vectors, including near a half turn', () => {
    for (const r of [[0.1, -0.2, 0.3], [0, 0, 0], [Math.PI - 1e-6, 0, 0], [1, 2, -0.5]] as [number, number, number][]) {
      const back = matrixToRodrigues(rodriguesToMatrix(r));
      for (let i = 0; i < 3; i++) expect(back[i]).toBeCloseTo(r[i]!, 6);
    }
  });

  it('recovers intrinsics and poses in closed form from distortion-free views (Zhang)', () => {
    const object = boardObjectPoints(BOARD.cols, BOARD.rows, SQUARE_M);
    const plane = Float64Array.from(Array.from({ length: BOARD.cols * BOARD.rows }, (_, k) => [object[3 * k]!, object[3 * k + 1]!]).flat());
    const truth = poses(5, 7);
    const homographies = truth.map((pose) => fitHomography(plane, projectPoints(object, pose, K)));
    const k = zhangIntrinsics(homographies, SIZE);
    expect(k.fx).toBeCloseTo(K.fx, 4);
    expect(k.fy).toBeCloseTo(K.fy, 4);
    expect(k.cx).toBeCloseTo(K.cx, 4);
    expect(k.cy).toBeCloseTo(K.cy, 4);
    const pose = poseFromHomography(homographies[0]!, K);
    for (let i = 0; i < 3; i++) {
      expect(pose.rvec[i]).toBeCloseTo(truth[0]!.rvec[i]!, 6);
      expect(pose.tvecM[i]).toBeCloseTo(truth[0]!.tvecM[i]!, 6);
    }
  });

  it('recovers a known camera with distortion from noisy projected corners', () => {
    const object = boardObjectPoints(BOARD.cols, BOARD.rows, SQUARE_M);
    const noise = gaussianRandom(seededRandom(11));
    const views: CalibrationView[] = poses(12, 3).map((pose, v) => {
      const image = projectPoints(object, pose, K, DIST);
      for (let i = 0; i < image.length; i++) image[i] = image[i]! + NOISE_PX * noise();
      return { name: `view${v}`, objectPointsM: object, imagePointsPx: image };
    });
    const fit = calibrateCamera(views, { imageSize: SIZE });
    expect(fit.views.every((v) => v.status === 'used')).toBe(true);
    expect(Math.abs(fit.intrinsics.fx - K.fx)).toBeLessThan(2);
    expect(Math.abs(fit.intrinsics.fy - K.fy)).toBeLessThan(2);
    expect(Math.abs(fit.intrinsics.cx - K.cx)).toBeLessThan(1.5);
    expect(Math.abs(fit.intrinsics.cy - K.cy)).toBeLessThan(1.5);
    expect(Math.abs(fit.distortion.k1 - DIST.k1)).toBeLessThan(0.02);
    // The fit reaches the noise floor: RMS (Euclidean, per point) ~ sqrt(2) NOISE_PX sqrt(1 - params / residuals).
    expect(fit.rmsPx).toBeGreaterThan(0.9 * Math.SQRT2 * NOISE_PX);
    expect(fit.rmsPx).toBeLessThan(1.05 * Math.SQRT2 * NOISE_PX);
  });

  it('ties fy to fx with fixAspectRatio and holds k3 and the tangential terms when asked', () => {
    const object = boardObjectPoints(BOARD.cols, BOARD.rows, SQUARE_M);
    const views = poses(6, 5).map((pose, v) => ({ name: `view${v}`, objectPointsM: object, imagePointsPx: projectPoints(object, pose, K, { ...DIST, k3: 0, p1: 0, p2: 0 }) }));
    const fit = calibrateCamera(views, { imageSize: SIZE, fixAspectRatio: true, fixK3: true, zeroTangentialDistortion: true });
    expect(fit.intrinsics.fy).toBe(fit.intrinsics.fx);
    expect(fit.distortion.k3).toBe(0);
    expect(fit.distortion.p1).toBe(0);
    expect(fit.distortion.p2).toBe(0);
    expect(fit.intrinsics.fx).toBeCloseTo(K.fx, 3);
    expect(fit.rmsPx).toBeLessThan(1e-4);
  });

  it('rejects a view whose corners are misordered and refits without it', () => {
    const object = boardObjectPoints(BOARD.cols, BOARD.rows, SQUARE_M);
    const noise = gaussianRandom(seededRandom(2));
    const views: CalibrationView[] = poses(8, 9).map((pose, v) => {
      const image = projectPoints(object, pose, K, DIST);
      for (let i = 0; i < image.length; i++) image[i] = image[i]! + NOISE_PX * noise();
      return { name: `view${v}`, objectPointsM: object, imagePointsPx: image };
    });
    const bad = views[4]!.imagePointsPx;
    // Swap two corner rows: a plausible detection failure worth several pixels.
    for (let i = 0; i < 2 * BOARD.cols; i++) [bad[i], bad[2 * BOARD.cols + i]] = [bad[2 * BOARD.cols + i]!, bad[i]!];
    const fit = calibrateCamera(views, { imageSize: SIZE });
    expect(fit.views.map((v) => v.status)).toEqual(['used', 'used', 'used', 'used', 'rejected', 'used', 'used', 'used']);
    expect(fit.views[4]!.reason).toMatch(/^outlier: view RMS .* px > .* px/);
    expect(fit.rmsPx).toBeLessThan(1.05 * Math.SQRT2 * NOISE_PX);
  });
});

/**
 * Renders a chessboard (cols+1 x rows+1 squares, white margin of one square, grey background) through
 * a distortion-free camera, 4x4 supersampled. The square beyond corner (0, 0) is dark, so detection
 * should return corners in the same order as boardObjectPoints.
 */
function renderBoard(pose: Pose, k: CameraIntrinsics): GrayImage {
  const r = rodriguesToMatrix(pose.rvec);
  const [tx, ty, tz] = pose.tvecM;
  // Plane (X, Y) to pixels: H = K [r1 r2 t]; invert by the adjugate.
  const h = [
    k.fx * r[0]! + k.cx * r[6]!, k.fx * r[1]! + k.cx * r[7]!, k.fx * tx + k.cx * tz,
    k.fy * r[3]! + k.cy * r[6]!, k.fy * r[4]! + k.cy * r[7]!, k.fy * ty + k.cy * tz,
    r[6]!, r[7]!, tz,
  ] as const;
  const inv = [
    h[4] * h[8] - h[5] * h[7], h[2] * h[7] - h[1] * h[8], h[1] * h[5] - h[2] * h[4],
    h[5] * h[6] - h[3] * h[8], h[0] * h[8] - h[2] * h[6], h[2] * h[3] - h[0] * h[5],
    h[3] * h[7] - h[4] * h[6], h[1] * h[6] - h[0] * h[7], h[0] * h[4] - h[1] * h[3],
  ] as const;
  const data = new Float32Array(SIZE.widthPx * SIZE.heightPx);
  const S = 4;
  for (let y = 0; y < SIZE.heightPx; y++) {
    for (let x = 0; x < SIZE.widthPx; x++) {
      let sum = 0;
      for (let sy = 0; sy < S; sy++) {
        for (let sx = 0; sx < S; sx++) {
          // Sub-sample positions around the pixel centre at (x, y).
          const u = x - 0.5 + (sx + 0.5) / S;
          const v = y - 0.5 + (sy + 0.5) / S;
          const w = inv[6] * u + inv[7] * v + inv[8];
          const bx = (inv[0] * u + inv[1] * v + inv[2]) / w / SQUARE_M;
          const by = (inv[3] * u + inv[4] * v + inv[5]) / w / SQUARE_M;
          let value = 120; // background
          if (bx >= -2 && bx <= BOARD.cols + 1 && by >= -2 && by <= BOARD.rows + 1) value = 230; // margin
          if (bx >= -1 && bx < BOARD.cols && by >= -1 && by < BOARD.rows) value = (Math.floor(bx) + Math.floor(by)) % 2 === 0 ? 30 : 230;
          sum += value;
        }
      }
      data[y * SIZE.widthPx + x] = sum / (S * S);
    }
  }
  return { ...SIZE, data };
}

describe('detectChessboard on rendered boards', () => {
  it.each([0, 1, 2])('finds the corners of rendered board %i to sub-pixel accuracy, in board order', (index) => {
    const pose = poses(3, 21)[index]!;
    const image = renderBoard(pose, K);
    const truth = projectPoints(boardObjectPoints(BOARD.cols, BOARD.rows, SQUARE_M), pose, K);
    const detection = detectChessboard(image, BOARD);
    if (!detection.found) throw new Error(detection.reason);
    let sum = 0;
    let worst = 0;
    for (let i = 0; i < truth.length / 2; i++) {
      const e = Math.hypot(detection.corners[2 * i]! - truth[2 * i]!, detection.corners[2 * i + 1]! - truth[2 * i + 1]!);
      sum += e;
      worst = Math.max(worst, e);
    }
    expect(sum / (truth.length / 2)).toBeLessThan(MAX_MEAN_CORNER_ERROR_PX);
    expect(worst).toBeLessThan(3 * MAX_MEAN_CORNER_ERROR_PX);
    // Without refinement the corners are only pixel-accurate: the sub-pixel step must help.
    const coarse = detectChessboard(image, BOARD, { subpixel: false });
    if (!coarse.found) throw new Error(coarse.reason);
    let coarseSum = 0;
    for (let i = 0; i < truth.length / 2; i++) coarseSum += Math.hypot(coarse.corners[2 * i]! - truth[2 * i]!, coarse.corners[2 * i + 1]! - truth[2 * i + 1]!);
    expect(coarseSum).toBeGreaterThan(sum);
  });
});
