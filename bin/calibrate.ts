/**
 * `arhud calibrate ...`: camera intrinsics from chessboard images, synthetic windshield captures
 * from the HUD optics simulator, and windshield warp maps from dot-grid captures. Outputs are JSON
 * calibration files validated by JSON Schema plus a report directory with residual heat-maps. A
 * calibration over its residual limit is written beside the output as `<name>.rejected.json` (so the
 * failure is on record and a good calibration already at the output path is never overwritten by a
 * bad one), and the command exits 1.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_MAX_RMS_PX, calibrateCameraFromImages, cameraCalibrationToJson, writeCameraReport, type BoardSize } from '../calibration/camera/index.js';
import { rejectedCalibrationPath } from '../calibration/report/rejected.js';
import { DEFAULT_CAPTURE_SEED, HudOpticsSimulator, eyeboxGrid, simulateWindshieldCaptures } from '../calibration/sim/index.js';
import {
  EVALUATION_SAMPLES_U,
  EVALUATION_SAMPLES_V,
  WINDSHIELD_MAX_RESIDUAL_ARCMIN,
  calibrateWindshield,
  evaluateWarpMap,
  heldOutEyePositions,
  writeWindshieldCalibration,
  writeWindshieldReport,
  type WarpMapEvaluation,
} from '../calibration/windshield/index.js';
import { HUD_OPTICS_DEFAULTS, loadHudOpticsConfig, type HudOpticsConfig } from '../render/optics-config.js';
import { createProgress } from './progress.js';

const LENGTH_UNITS_M: Record<string, number> = { mm: 1e-3, cm: 1e-2, m: 1 };

/** `9x6` -> { cols: 9, rows: 6 } (inner corners). */
export function parseBoardSize(text: string): BoardSize {
  const match = /^(\d+)x(\d+)$/i.exec(text.trim());
  const cols = Number(match?.[1]);
  const rows = Number(match?.[2]);
  if (!match || cols < 2 || rows < 2) throw new InvalidArgumentError(`--board takes inner corners as COLSxROWS with both >= 2 (e.g. 9x6), got '${text}'`);
  return { cols, rows };
}

/** `25mm`, `2.5cm`, `0.025m` (or a bare number of millimetres) -> metres. */
export function parseLengthM(text: string): number {
  const match = /^([0-9]*\.?[0-9]+)\s*(mm|cm|m)?$/i.exec(text.trim());
  const value = Number(match?.[1]);
  if (!match || !(value > 0)) throw new InvalidArgumentError(`--square takes a length > 0 such as 25mm, 2.5cm or 0.025m, got '${text}'`);
  return value * LENGTH_UNITS_M[(match[2] ?? 'mm').toLowerCase()]!;
}

function parsePositive(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!(value > 0) || !Number.isFinite(value)) throw new InvalidArgumentError(`${name} must be a number > 0, got '${text}'`);
    return value;
  };
}

/** The report directory next to an output file: `camera.json` -> `camera.report`. */
function defaultReportDir(output: string): string {
  return output.replace(/(\.json)?$/i, '.report');
}

interface CameraCliOptions {
  board: BoardSize;
  square: number;
  output: string;
  report?: string;
  fixAspectRatio?: boolean;
  maxRms: number;
  json?: boolean;
  quiet?: boolean;
}

async function calibrateCameraCommand(images: string[], opts: CameraCliOptions): Promise<number> {
  const progress = createProgress('calibrate camera', { quiet: opts.quiet || opts.json, unit: 'images' });
  let calibration;
  try {
    calibration = await calibrateCameraFromImages(images, {
      board: opts.board,
      squareM: opts.square,
      fixAspectRatio: opts.fixAspectRatio === true,
      maxRmsPx: opts.maxRms,
      onProgress: (done, total) => progress.update(done, total),
    });
  } finally {
    progress.stop();
  }
  const file = cameraCalibrationToJson(calibration);
  const output = calibration.status === 'accepted' ? opts.output : rejectedCalibrationPath(opts.output);
  await writeFile(output, `${JSON.stringify(file, null, 2)}\n`);
  const report = await writeCameraReport(opts.report ?? defaultReportDir(opts.output), calibration);
  const used = calibration.views.filter((v) => v.status === 'used');
  const lines = [
    `${calibration.status === 'accepted' ? 'calibrated' : 'REJECTED'}: fx ${calibration.fx.toFixed(3)} fy ${calibration.fy.toFixed(3)} cx ${calibration.cx.toFixed(3)} cy ${calibration.cy.toFixed(3)} px, RMS ${calibration.rmsPx.toFixed(4)} px (limit ${calibration.maxRmsPx} px)`,
    `distortion k1 ${calibration.distortion.k1.toFixed(5)} k2 ${calibration.distortion.k2.toFixed(5)} p1 ${calibration.distortion.p1.toFixed(6)} p2 ${calibration.distortion.p2.toFixed(6)} k3 ${calibration.distortion.k3.toFixed(5)}`,
    `views used ${used.length} of ${calibration.views.length}: ${used.map((v) => `${path.basename(v.image)} ${v.rmsPx!.toFixed(3)} px`).join(', ')}`,
    ...calibration.views.filter((v) => v.status !== 'used').map((v) => `  ${v.status}: ${path.basename(v.image)}: ${v.reason ?? ''}`),
    ...(calibration.rejectionReason ? [`rejected: ${calibration.rejectionReason}`] : []),
    `wrote ${output}; report ${report.reportPath}, heat-map ${report.heatmapPath}`,
  ];
  (opts.json ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify(file)}\n`);
  return calibration.status === 'accepted' ? 0 : 1;
}

function parseSeed(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`${name} must be a whole number >= 0, got '${text}'`);
    return value;
  };
}

/** `3x3` -> eye positions across the design eyebox (lateral x vertical). */
function parseEyeGrid(text: string): { cols: number; rows: number } {
  const match = /^(\d+)x(\d+)$/i.exec(text.trim());
  const cols = Number(match?.[1]);
  const rows = Number(match?.[2]);
  if (!match || cols < 1 || rows < 1 || cols * rows > 64) throw new InvalidArgumentError(`--eyes takes COLSxROWS eye positions (1 to 64 in all, e.g. 3x3), got '${text}'`);
  return { cols, rows };
}

async function opticsConfigOf(file: string | undefined): Promise<HudOpticsConfig> {
  return file ? loadHudOpticsConfig(file) : HUD_OPTICS_DEFAULTS;
}

interface SimulateCliOptions {
  output: string;
  eyes: { cols: number; rows: number };
  hudSeed: number;
  seed: number;
  optics?: string;
}

async function simulateCommand(opts: SimulateCliOptions): Promise<number> {
  const opticsConfig = await opticsConfigOf(opts.optics);
  const simulator = new HudOpticsSimulator({ opticsConfig, seed: opts.hudSeed });
  await mkdir(opts.output, { recursive: true });
  const eyePositionsM = eyeboxGrid(simulator.eyeboxCentreM, opts.eyes.cols, opts.eyes.rows);
  const { manifest, truth } = await simulateWindshieldCaptures(opts.output, { simulator, eyePositionsM, seed: opts.seed });
  const { camera, dotGrid } = manifest;
  process.stdout.write(
    [
      `simulated ${manifest.captures.length} dot-grid captures (HUD tolerance draw ${opts.hudSeed}, capture noise seed ${opts.seed}) -> ${opts.output}`,
      `camera ${camera.widthPx}x${camera.heightPx}, fx ${camera.fxPx} px; panel dots ${dotGrid.cols}x${dotGrid.rows}; ${truth.reduce((n, t) => n + t.missing.length, 0)} dots left out, ${truth.reduce((n, t) => n + t.spuriousPx.length, 0)} spurious spots added`,
      `next: arhud calibrate windshield ${opts.output} --simulator-seed ${opts.hudSeed}`,
    ].join('\n') + '\n',
  );
  return 0;
}

interface WindshieldCliOptions {
  output: string;
  report?: string;
  maxResidual: number;
  optics?: string;
  simulatorSeed?: number;
  json?: boolean;
  quiet?: boolean;
}

async function windshieldCommand(capturesDir: string, opts: WindshieldCliOptions): Promise<number> {
  const opticsConfig = await opticsConfigOf(opts.optics);
  const progress = createProgress('calibrate windshield', { quiet: opts.quiet || opts.json, unit: 'steps' });
  let result;
  try {
    result = await calibrateWindshield(capturesDir, { opticsConfig, maxResidualArcmin: opts.maxResidual, onProgress: (done, total) => progress.update(done, total) });
  } finally {
    progress.stop();
  }
  let evaluation: WarpMapEvaluation | undefined;
  if (opts.simulatorSeed !== undefined) {
    const simulator = new HudOpticsSimulator({ opticsConfig, seed: opts.simulatorSeed });
    evaluation = evaluateWarpMap(simulator, result.warpMap, simulator.plane, heldOutEyePositions(simulator.eyeboxCentreM), EVALUATION_SAMPLES_U, EVALUATION_SAMPLES_V);
  }
  const written = await writeWindshieldCalibration(opts.output, result);
  const reportDir = opts.report ?? defaultReportDir(opts.output);
  await writeWindshieldReport(reportDir, result, evaluation);
  const lines = [
    `${result.status === 'accepted' ? 'calibrated' : 'REJECTED'}: ${result.captures.length} eye positions, fit residual median ${result.fitMedianArcmin.toFixed(3)} max ${result.fitMaxArcmin.toFixed(3)} arcmin (limit ${result.maxResidualArcmin} arcmin)`,
    ...result.captures.map((c) => `  ${c.file}: ${c.indexed} of ${result.dotCols * result.dotRows} dots indexed, ${c.missing} missing, ${c.spurious} spurious, ${c.outliers} outliers; fit max ${c.fitMaxArcmin.toFixed(3)} arcmin`),
    ...(evaluation ? [`closed loop against the simulator at ${evaluation.perEye.length} eye positions not captured: median ${evaluation.medianArcmin.toFixed(3)} max ${evaluation.maxArcmin.toFixed(3)} arcmin`] : []),
    ...(result.reason ? [`rejected: ${result.reason}`] : []),
    `warp map ${result.warpMap.cols}x${result.warpMap.rows} cells at ${result.warpMap.eyePositionsM.length} eye positions -> ${written}; report ${reportDir}`,
  ];
  (opts.json ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
  if (opts.json) {
    const summary = {
      status: result.status,
      reason: result.reason,
      output: written,
      fitMedianArcmin: result.fitMedianArcmin,
      fitMaxArcmin: result.fitMaxArcmin,
      closedLoopMedianArcmin: evaluation?.medianArcmin,
      closedLoopMaxArcmin: evaluation?.maxArcmin,
      detectMs: result.detectMs,
      fitMs: result.fitMs,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  }
  return result.status === 'accepted' ? 0 : 1;
}

/** Adds `calibrate camera|simulate|windshield` to the program. */
export function addCalibrateCommands(program: Command): void {
  const calibrate = program.command('calibrate').description('calibrate cameras (chessboards) and the windshield (dot grids across the eyebox)');
  calibrate
    .command('camera')
    .description('camera intrinsics and distortion (OpenCV model) from chessboard images')
    .argument('<images...>', 'chessboard images, e.g. ../shared/data/opencv-chessboard/left*.jpg')
    .addOption(new Option('--board <COLSxROWS>', 'inner corners of the board').argParser(parseBoardSize).makeOptionMandatory())
    .addOption(new Option('--square <length>', 'side of a board square (25mm, 2.5cm, 0.025m)').argParser(parseLengthM).makeOptionMandatory())
    .option('-o, --output <file>', 'calibration file (JSON); a rejected one goes to <name>.rejected.json', 'camera-calibration.json')
    .option('--report <dir>', 'report directory (report.json, residuals.png); default <output>.report')
    .option('--fix-aspect-ratio', 'hold fy = fx (OpenCV CALIB_FIX_ASPECT_RATIO)')
    .addOption(new Option('--max-rms <px>', 'reject the calibration above this RMS reprojection error').default(DEFAULT_MAX_RMS_PX).argParser(parsePositive('--max-rms')))
    .option('--json', 'print the calibration file as one JSON line last (the summary goes to stderr)')
    .option('-q, --quiet', 'no progress bar')
    .action(async (images: string[], opts: CameraCliOptions) => {
      process.exitCode = await calibrateCameraCommand(images, opts);
    });
  calibrate
    .command('simulate')
    .description('synthetic windshield captures: a camera at eye positions across the eyebox photographs the dot grid through the HUD optics simulator')
    .requiredOption('-o, --output <dir>', 'captures directory (eye-<k>.png and captures.json)')
    .addOption(new Option('--eyes <COLSxROWS>', 'eye positions across the 130 x 50 mm eyebox').default({ cols: 3, rows: 3 }, '3x3').argParser(parseEyeGrid))
    .addOption(new Option('--hud-seed <n>', 'manufacturing-tolerance draw of the simulated HUD').default(1).argParser(parseSeed('--hud-seed')))
    .addOption(new Option('--seed <n>', 'capture noise, missing dots and reflections').default(DEFAULT_CAPTURE_SEED).argParser(parseSeed('--seed')))
    .option('--optics <file>', 'HUD optics config (JSON) the simulated HUD is designed for')
    .action(async (opts: SimulateCliOptions) => {
      process.exitCode = await simulateCommand(opts);
    });
  calibrate
    .command('windshield')
    .description('windshield warp map (far plane) from dot-grid captures across the eyebox')
    .argument('<captures>', 'captures directory with captures.json (e.g. from calibrate simulate)')
    .option('-o, --output <file>', 'warp-map file the renderer loads (--warp); a rejected one goes to <name>.rejected.json', 'warp-map.json')
    .option('--report <dir>', 'report directory (report.json, residual heat-maps); default <output>.report')
    .addOption(new Option('--max-residual <arcmin>', 'reject the calibration above this fit residual').default(WINDSHIELD_MAX_RESIDUAL_ARCMIN).argParser(parsePositive('--max-residual')))
    .option('--optics <file>', 'HUD optics config (JSON): the ideal far plane the warp maps to')
    .addOption(new Option('--simulator-seed <n>', 'the captures came from calibrate simulate --hud-seed n: also measure the closed-loop error at eye positions not captured').argParser(parseSeed('--simulator-seed')))
    .option('--json', 'print a summary as one JSON line last')
    .option('-q, --quiet', 'no progress bar')
    .action(async (captures: string, opts: WindshieldCliOptions) => {
      process.exitCode = await windshieldCommand(captures, opts);
    });
}
