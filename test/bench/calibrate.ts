/**
 * Calibration benchmark (issue #5):
 * - camera: our calibration of OpenCV's 13 sample chessboards (9x6, 25 mm, fixed aspect ratio),
 *   detection + sub-pixel + Zhang + LM, and, in the same run, OpenCV's findChessboardCorners +
 *   cornerSubPix + calibrateCamera on the same images (Debian python3-opencv; skipped with a
 *   message where absent). Targets: fx, fy within 0.5% of OpenCV's published calibration, cx, cy
 *   within 2 px, RMS within 0.05 px of 0.3926.
 * - windshield: 9 simulated dot-grid captures (3 x 3 over the eyebox), our calibration, and the
 *   closed-loop error at 16 eye positions not captured. Targets: median <= 1, max <= 2 arcmin.
 * Times are medians of RUNS runs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { boardObjectPoints, calibrateCamera, calibrateCameraFromImages, type CameraCalibration } from '../../calibration/camera/index.js';
import { median } from '../../calibration/math/statistics.js';
import { HudOpticsSimulator, simulateWindshieldCaptures } from '../../calibration/sim/index.js';
import { EVALUATION_SAMPLES_U, EVALUATION_SAMPLES_V, calibrateWindshield, evaluateWarpMap, heldOutEyePositions, type WindshieldCalibrationResult } from '../../calibration/windshield/index.js';
import { DATA_DIR, PROJECT_ROOT } from '../support/data.js';

const RUNS = 3;
const BOARD = { cols: 9, rows: 6 };
const SQUARE_M = 0.025;
const IMAGES = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '11', '12', '13', '14'].map((n) => path.join(DATA_DIR, 'opencv-chessboard', `left${n}.jpg`));
/** OpenCV's published calibration of these images (left_intrinsics.yml). */
const OPENCV_PUBLISHED = { fx: 535.9157, fy: 535.9157, cx: 342.2832, cy: 235.5708, rms: 0.39259 };
/** The simulated HUD's tolerance draw. */
const HUD_SEED = 1;
/** Where cv2 lives: Debian's python3-opencv installs into the system python. */
const PYTHONS = ['python3', '/usr/bin/python3'];

interface OpenCvResult {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
  rms: number;
  ms: number;
  opencvVersion: string;
  cornersPx: Record<string, number[]>;
}

/** OpenCV's calibration of the same images, or why it could not run. */
function runOpenCv(): OpenCvResult | { skipped: string } {
  const script = path.join(PROJECT_ROOT, 'test/bench/opencv_calibrate.py');
  for (const python of PYTHONS) {
    const run = spawnSync(python, [script, String(BOARD.cols), String(BOARD.rows), String(SQUARE_M), '1', ...IMAGES], { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (run.status === 0) return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as OpenCvResult;
    if (run.status !== 3 && run.error === undefined) return { skipped: `${python} ${path.basename(script)} failed (exit ${run.status}): ${run.stderr.trim().split('\n').at(-1)}` };
  }
  return { skipped: `OpenCV (cv2) not found in ${PYTHONS.join(' or ')}: apt-get install python3-opencv` };
}

export async function calibrateBenchmark(json: boolean): Promise<Record<string, unknown>> {
  const log = (line: string): void => {
    (json ? process.stderr : process.stdout).write(`${line}\n`);
  };

  const cameraMs: number[] = [];
  let camera: CameraCalibration | undefined;
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now();
    camera = await calibrateCameraFromImages(IMAGES, { board: BOARD, squareM: SQUARE_M, fixAspectRatio: true });
    cameraMs.push(performance.now() - t0);
  }
  const cam = camera!;
  log(`camera (ours, ${cam.views.filter((v) => v.status === 'used').length} views): fx ${cam.fx.toFixed(3)} fy ${cam.fy.toFixed(3)} cx ${cam.cx.toFixed(3)} cy ${cam.cy.toFixed(3)} RMS ${cam.rmsPx.toFixed(4)} px in ${median(cameraMs).toFixed(0)} ms`);

  const opencvRuns: OpenCvResult[] = [];
  let opencvSkipped: string | undefined;
  for (let run = 0; run < RUNS && opencvSkipped === undefined; run++) {
    const result = runOpenCv();
    if ('skipped' in result) opencvSkipped = result.skipped;
    else opencvRuns.push(result);
  }
  const opencv = opencvRuns.at(-1);
  if (opencv) log(`camera (OpenCV ${opencv.opencvVersion}): fx ${opencv.fx.toFixed(3)} fy ${opencv.fy.toFixed(3)} cx ${opencv.cx.toFixed(3)} cy ${opencv.cy.toFixed(3)} RMS ${opencv.rms.toFixed(4)} px in ${median(opencvRuns.map((r) => r.ms)).toFixed(0)} ms`);
  else log(`camera (OpenCV): skipped: ${opencvSkipped}`);
  // Our solver on OpenCV's corners separates the solver from corner detection.
  let solverOnOpencvCorners: { fx: number; cx: number; cy: number; rms: number } | null = null;
  if (opencv) {
    const objectPointsM = boardObjectPoints(BOARD.cols, BOARD.rows, SQUARE_M);
    const views = Object.entries(opencv.cornersPx).map(([name, corners]) => ({ name, objectPointsM, imagePointsPx: Float64Array.from(corners) }));
    const fit = calibrateCamera(views, { imageSize: cam.imageSize, fixAspectRatio: true });
    solverOnOpencvCorners = { fx: fit.intrinsics.fx, cx: fit.intrinsics.cx, cy: fit.intrinsics.cy, rms: fit.rmsPx };
    log(`camera (our solver on OpenCV's corners): fx ${fit.intrinsics.fx.toFixed(3)} cx ${fit.intrinsics.cx.toFixed(3)} cy ${fit.intrinsics.cy.toFixed(3)} RMS ${fit.rmsPx.toFixed(4)} px`);
  }
  const p = OPENCV_PUBLISHED;
  log(`vs OpenCV's published calibration: fx ${((cam.fx / p.fx - 1) * 100).toFixed(2)}% (target +-0.5%), cx ${(cam.cx - p.cx).toFixed(2)} px, cy ${(cam.cy - p.cy).toFixed(2)} px (target +-2), RMS ${(cam.rmsPx - p.rms).toFixed(4)} px (target +-0.05)`);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'arhud-bench-windshield-'));
  try {
    const simulator = new HudOpticsSimulator({ seed: HUD_SEED });
    await simulateWindshieldCaptures(dir, { simulator });
    const fitMs: number[] = [];
    let windshield: WindshieldCalibrationResult | undefined;
    for (let run = 0; run < RUNS; run++) {
      const t0 = performance.now();
      windshield = await calibrateWindshield(dir);
      fitMs.push(performance.now() - t0);
    }
    const ws = windshield!;
    const evaluation = evaluateWarpMap(simulator, ws.warpMap, simulator.plane, heldOutEyePositions(simulator.eyeboxCentreM), EVALUATION_SAMPLES_U, EVALUATION_SAMPLES_V);
    log(
      `windshield (${ws.captures.length} captures, ${ws.status}): fit residual median ${ws.fitMedianArcmin.toFixed(3)} max ${ws.fitMaxArcmin.toFixed(3)} arcmin; ` +
        `closed loop at ${evaluation.perEye.length} eye positions not captured: median ${evaluation.medianArcmin.toFixed(3)} max ${evaluation.maxArcmin.toFixed(3)} arcmin (targets <= 1 / <= 2); ` +
        `${median(fitMs).toFixed(0)} ms (read + detect + index ${ws.detectMs.toFixed(0)} ms, fit + maps ${ws.fitMs.toFixed(0)} ms)`,
    );
    return {
      fx: cam.fx,
      fy: cam.fy,
      cx: cam.cx,
      cy: cam.cy,
      rms: cam.rmsPx,
      cameraMs: median(cameraMs),
      viewsUsed: cam.views.filter((v) => v.status === 'used').length,
      opencvFx: opencv?.fx ?? null,
      opencvFy: opencv?.fy ?? null,
      opencvCx: opencv?.cx ?? null,
      opencvCy: opencv?.cy ?? null,
      opencvRms: opencv?.rms ?? null,
      opencvMs: opencvRuns.length > 0 ? median(opencvRuns.map((r) => r.ms)) : null,
      opencvSkipped: opencvSkipped ?? null,
      solverOnOpencvCorners,
      opencvPublished: OPENCV_PUBLISHED,
      fxVsPublishedPercent: (cam.fx / p.fx - 1) * 100,
      windshieldMedianArcmin: evaluation.medianArcmin,
      windshieldMaxArcmin: evaluation.maxArcmin,
      windshieldFitMs: median(fitMs),
      windshieldFitResidualMaxArcmin: ws.fitMaxArcmin,
      windshieldStatus: ws.status,
      targets: { fx: '+-0.5% of 535.9157', cxCy: '+-2 px', rms: '0.3926 +- 0.05', windshieldMedianArcmin: '<= 1', windshieldMaxArcmin: '<= 2' },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
