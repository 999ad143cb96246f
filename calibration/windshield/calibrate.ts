/**
 * Windshield calibration: dot-grid captures at N eye positions -> per-eye panel -> ideal-uv maps ->
 * a smooth model across the eyebox (EyeboxWarpModel) -> a warp map (render/warp-map.ts format)
 * sampled from the model on a dense eye grid, so EyeboxWarp's bilinear interpolation reproduces it.
 *
 * Calibration file: an accepted calibration is written as `warp-map.json` (a plain warp map, with
 * `source: { tool: 'arhud-calibrate', date, rmsArcmin }`). A rejected one (fit residual over its
 * limit) is written as `warp-map.rejected.json`, a wrapper `{ status: 'rejected', reason,
 * maxResidualArcmin, warpMap }` that `loadWarpMap` refuses (no top-level 'version'), and any
 * `warp-map.json` left in the directory from an earlier run is removed, so the renderer can never
 * pick up a rejected or stale calibration by accident.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { HudOpticsConfig, Vec3M } from '../../render/optics-config.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { createEyeRay, createPanelPoint, VirtualImagePlane } from '../../render/optics.js';
import { parseWarpMap, warpMapToJson, type WarpMap } from '../../render/warp-map.js';
import { WarpMesh } from '../../render/warp-mesh.js';
import { median } from '../math/statistics.js';
import { rejectedCalibrationPath } from '../report/rejected.js';
import { CAPTURE_MANIFEST_FILE, loadCaptureManifest, pixelToDirection, projectDirection, type CaptureManifest, type ImagePointPx } from './capture-manifest.js';
import { detectDots, type GrayImage } from './dot-detection.js';
import { indexDotGrid } from './dot-grid-index.js';
import { EyeboxWarpModel, fitPanelPolynomial, PANEL_POLY_DEGREE, panelBasis, panelTermCount } from './eyebox-model.js';

const RAD_TO_ARCMIN = (180 * 60) / Math.PI;

/** Largest fit residual (any dot, any eye) of an accepted calibration, arcmin (the closed-loop max target). */
export const WINDSHIELD_MAX_RESIDUAL_ARCMIN = 2;
/** Closed-loop targets at held-out eye positions, arcmin. */
export const WINDSHIELD_TARGET_MEDIAN_ARCMIN = 1;
export const WINDSHIELD_TARGET_MAX_ARCMIN = 2;
/** Warp mesh grid, cells (panel-interpolation error < 0.01 arcmin for a few % distortion). */
export const WINDSHIELD_WARP_COLS = 64;
export const WINDSHIELD_WARP_ROWS = 32;
/** Eye grid the warp map's meshes are sampled on (lateral x vertical), spanning the captured eyebox. */
export const WINDSHIELD_WARP_EYE_COLS = 7;
export const WINDSHIELD_WARP_EYE_ROWS = 5;
/** A capture must have at least this fraction of the grid's dots indexed. */
export const MIN_INDEXED_FRACTION = 0.8;
/** A dot off its eye's first fit by more than this is an outlier (mis-detection), arcmin (noise ~0.03). */
export const OUTLIER_ARCMIN = 0.5;
/** More outliers than this fraction of a capture's indexed dots rejects the calibration. */
export const MAX_OUTLIER_FRACTION = 0.05;
/** Output file names. */
export const WARP_MAP_FILE = 'warp-map.json';

/** Options of calibrateWindshield. */
export interface WindshieldCalibrationOptions {
  /** Progress: `done` of `total` steps finished, `what` is the step (e.g. a capture file). */
  onProgress?(done: number, total: number, what: string): void;
  /** Residual limit, arcmin; default WINDSHIELD_MAX_RESIDUAL_ARCMIN. */
  maxResidualArcmin?: number;
  /** Optics whose far plane is the ideal image; default HUD_OPTICS_DEFAULTS. */
  opticsConfig?: HudOpticsConfig;
  /** Provenance date written into the map; default now. */
  date?: string;
  warpCols?: number;
  warpRows?: number;
  eyeCols?: number;
  eyeRows?: number;
}

/** Dot statistics and fit residuals of one capture. */
export interface CaptureCalibrationStats {
  file: string;
  eyeM: Vec3M;
  /** Blobs accepted as dots by detection. */
  found: number;
  /** Dots given grid indices. */
  indexed: number;
  /** Grid dots without a detection. */
  missing: number;
  /** Detected dots not on the grid. */
  spurious: number;
  /** Blobs rejected by size or shape. */
  rejectedBlobs: number;
  /** Indexed dots left out of the fit as outliers (off the first fit by > OUTLIER_ARCMIN). */
  outliers: number;
  /** Fit residual over the indexed dots (model vs measured direction), arcmin. */
  fitMedianArcmin: number;
  fitMaxArcmin: number;
  /** Fit residual per grid dot (cols x rows, row-major; NaN where missing), arcmin. */
  residualArcmin: Float64Array;
}

/** Result of calibrateWindshield. */
export interface WindshieldCalibrationResult {
  status: 'accepted' | 'rejected';
  /** Why it was rejected (absent when accepted). */
  reason?: string;
  warpMap: WarpMap;
  model: EyeboxWarpModel;
  captures: CaptureCalibrationStats[];
  dotCols: number;
  dotRows: number;
  maxResidualArcmin: number;
  fitMedianArcmin: number;
  fitMaxArcmin: number;
  fitRmsArcmin: number;
  /** Wall-clock time: image reading + dot detection + indexing, and fitting + map sampling, ms. */
  detectMs: number;
  fitMs: number;
}

/** Per-capture measurement: indexed dots' panel positions and ideal uvs. */
interface Measured {
  nodes: Int32Array;
  x: Float64Array;
  y: Float64Array;
  u: Float64Array;
  v: Float64Array;
  /** Measured apparent directions, x, y, z per indexed dot. */
  dir: Float64Array;
}

/** Reads an 8-bit grayscale capture; errors name the function and file. */
export async function readCaptureImage(path: string): Promise<GrayImage> {
  try {
    const { data, info } = await sharp(path).greyscale().raw().toBuffer({ resolveWithObject: true });
    return { widthPx: info.width, heightPx: info.height, data: new Uint8Array(data.buffer, data.byteOffset, info.width * info.height) };
  } catch (error) {
    throw new Error(`calibrateWindshield: cannot read capture image ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** Calibrates the windshield from the capture set in `capturesDir` (see the file comment). */
export async function calibrateWindshield(capturesDir: string, options: WindshieldCalibrationOptions = {}): Promise<WindshieldCalibrationResult> {
  const t0 = performance.now();
  const manifestPath = join(capturesDir, CAPTURE_MANIFEST_FILE);
  const manifest = await loadCaptureManifest(manifestPath);
  const config = options.opticsConfig ?? HUD_OPTICS_DEFAULTS;
  const plane = new VirtualImagePlane('far', { ...config.far, panelRegion: { ...manifest.region } }, config.eyeM);
  const limit = options.maxResidualArcmin ?? WINDSHIELD_MAX_RESIDUAL_ARCMIN;
  if (!(limit > 0)) throw new RangeError(`calibrateWindshield: 'maxResidualArcmin' must be > 0, got ${limit}`);
  const { cols, rows } = manifest.dotGrid;
  const total = manifest.captures.length + 2;
  const measured: Measured[] = [];
  const stats: CaptureCalibrationStats[] = [];
  for (let c = 0; c < manifest.captures.length; c++) {
    const capture = manifest.captures[c]!;
    const path = join(capturesDir, capture.file);
    const image = await readCaptureImage(path);
    if (image.widthPx !== manifest.camera.widthPx || image.heightPx !== manifest.camera.heightPx) {
      throw new RangeError(`calibrateWindshield: capture ${path} must be ${manifest.camera.widthPx}x${manifest.camera.heightPx} (manifest 'camera'), got ${image.widthPx}x${image.heightPx}`);
    }
    const detection = detectDots(image);
    const predictedPx = predictDots(manifest, plane, capture.eyeM);
    const indexing = indexDotGrid(detection.dots, { cols, rows, predictedPx });
    const needed = Math.max(Math.ceil(MIN_INDEXED_FRACTION * cols * rows), 2 * panelTermCount(PANEL_POLY_DEGREE));
    if (indexing.indexed < needed) {
      throw new RangeError(`calibrateWindshield: capture ${path} has ${indexing.indexed} of ${cols * rows} grid dots indexed (${detection.dots.length} dots found), need >= ${needed}`);
    }
    measured.push(measure(manifest, plane, capture.eyeM, detection.dots, indexing.dotOfNode));
    stats.push({
      file: capture.file,
      eyeM: { ...capture.eyeM },
      found: detection.dots.length,
      indexed: indexing.indexed,
      missing: indexing.missing,
      spurious: indexing.spurious,
      rejectedBlobs: detection.rejectedBlobs,
      outliers: 0,
      fitMedianArcmin: NaN,
      fitMaxArcmin: NaN,
      residualArcmin: new Float64Array(cols * rows).fill(NaN),
    });
    options.onProgress?.(c + 1, total, capture.file);
  }
  const t1 = performance.now();

  const perEye = measured.map((m, c) => {
    // Fit, drop outliers (mis-detections), refit.
    const first = fitPanelPolynomial(PANEL_POLY_DEGREE, m.x, m.y, m.u, m.v);
    const keep = outlierMask(first, m, plane.fovHorizontalDeg * 60, plane.fovVerticalDeg * 60);
    const kept = keep.reduce((a, k) => a + k, 0);
    stats[c]!.outliers = m.nodes.length - kept;
    const pick = (a: Float64Array): Float64Array => a.filter((_, k) => keep[k] === 1);
    const inliers: Measured = { nodes: m.nodes.filter((_, k) => keep[k] === 1), x: pick(m.x), y: pick(m.y), u: pick(m.u), v: pick(m.v), dir: m.dir.filter((_, k) => keep[Math.floor(k / 3)] === 1) };
    measured[c] = inliers;
    return { eyeM: manifest.captures[c]!.eyeM, coefficients: fitPanelPolynomial(PANEL_POLY_DEGREE, inliers.x, inliers.y, inliers.u, inliers.v) };
  });
  const model = EyeboxWarpModel.fit(PANEL_POLY_DEGREE, perEye);
  options.onProgress?.(manifest.captures.length + 1, total, 'fit');

  // Fit residuals: the model (as used for that eye) against each measured direction.
  const all: number[] = [];
  const uv = new Float64Array(2);
  const ray = createEyeRay();
  const r = manifest.region;
  measured.forEach((m, c) => {
    const eyeM = manifest.captures[c]!.eyeM;
    const coeff = model.coefficientsAt(eyeM);
    const s = stats[c]!;
    const values: number[] = [];
    for (let k = 0; k < m.nodes.length; k++) {
      model.evaluate(coeff, m.x[k]!, m.y[k]!, uv);
      const d = plane.panelToRay(r.xPx + uv[0]! * r.widthPx, r.yPx + uv[1]! * r.heightPx, ray, eyeM).direction;
      const cos = d.x * m.dir[k * 3]! + d.y * m.dir[k * 3 + 1]! + d.z * m.dir[k * 3 + 2]!;
      const err = Math.acos(Math.min(1, cos)) * RAD_TO_ARCMIN;
      s.residualArcmin[m.nodes[k]!] = err;
      values.push(err);
      all.push(err);
    }
    s.fitMedianArcmin = median(values);
    s.fitMaxArcmin = Math.max(...values);
  });
  const fitMaxArcmin = Math.max(...all);
  const fitRmsArcmin = Math.sqrt(all.reduce((a, e) => a + e * e, 0) / all.length);

  const warpMap = sampleWarpMap(model, manifest, options, fitRmsArcmin);
  options.onProgress?.(total, total, 'warp map');
  const worstOutliers = Math.max(...stats.map((k) => k.outliers / k.indexed));
  const result: WindshieldCalibrationResult = {
    status: fitMaxArcmin <= limit && worstOutliers <= MAX_OUTLIER_FRACTION ? 'accepted' : 'rejected',
    warpMap,
    model,
    captures: stats,
    dotCols: cols,
    dotRows: rows,
    maxResidualArcmin: limit,
    fitMedianArcmin: median(all),
    fitMaxArcmin,
    fitRmsArcmin,
    detectMs: t1 - t0,
    fitMs: performance.now() - t1,
  };
  if (fitMaxArcmin > limit) result.reason = `fit residual max ${fitMaxArcmin.toFixed(3)} arcmin exceeds the limit ${limit} arcmin`;
  else if (result.status === 'rejected') result.reason = `${(100 * worstOutliers).toFixed(1)} % outlier dots in a capture exceeds ${100 * MAX_OUTLIER_FRACTION} %`;
  return result;
}

/** 1 for dots within OUTLIER_ARCMIN of the fit (uv residual scaled by the FOV in arcmin), else 0. */
function outlierMask(coefficients: Float64Array, m: Measured, fovUArcmin: number, fovVArcmin: number): Uint8Array {
  const degree = PANEL_POLY_DEGREE;
  const basis = new Float64Array(panelTermCount(degree));
  const keep = new Uint8Array(m.x.length);
  for (let k = 0; k < m.x.length; k++) {
    panelBasis(degree, m.x[k]!, m.y[k]!, basis);
    let u = 0, v = 0;
    for (let t = 0; t < basis.length; t++) { u += basis[t]! * coefficients[t * 2]!; v += basis[t]! * coefficients[t * 2 + 1]!; }
    keep[k] = Math.hypot((u - m.u[k]!) * fovUArcmin, (v - m.v[k]!) * fovVArcmin) <= OUTLIER_ARCMIN ? 1 : 0;
  }
  return keep;
}

/** Where each grid dot would appear in the capture if the optics were ideal (for indexing). */
function predictDots(manifest: CaptureManifest, plane: VirtualImagePlane, eyeM: Vec3M): Float64Array {
  const ray = createEyeRay();
  const p: ImagePointPx = { xPx: 0, yPx: 0 };
  const out = new Float64Array(manifest.dotGrid.dots.length * 2);
  manifest.dotGrid.dots.forEach((d, k) => {
    projectDirection(manifest.camera, manifest.cameraFromVehicle, plane.panelToRay(d.uPx, d.vPx, ray, eyeM).direction, p);
    out[k * 2] = p.xPx;
    out[k * 2 + 1] = p.yPx;
  });
  return out;
}

/** Indexed dots -> apparent directions -> ideal-plane uv, with their region-normalised panel positions. */
function measure(manifest: CaptureManifest, plane: VirtualImagePlane, eyeM: Vec3M, dots: readonly { xPx: number; yPx: number }[], dotOfNode: Int32Array): Measured {
  const nodes: number[] = [];
  dotOfNode.forEach((k, node) => { if (k >= 0) nodes.push(node); });
  const n = nodes.length;
  const m: Measured = { nodes: Int32Array.from(nodes), x: new Float64Array(n), y: new Float64Array(n), u: new Float64Array(n), v: new Float64Array(n), dir: new Float64Array(n * 3) };
  const r = manifest.region;
  const d: Vec3M = { x: 0, y: 0, z: 0 };
  const far: Vec3M = { x: 0, y: 0, z: 0 };
  const pp = createPanelPoint();
  nodes.forEach((node, k) => {
    const dot = dots[dotOfNode[node]!]!;
    pixelToDirection(manifest.camera, manifest.cameraFromVehicle, dot.xPx, dot.yPx, d);
    far.x = eyeM.x + d.x; far.y = eyeM.y + d.y; far.z = eyeM.z + d.z;
    plane.vehicleToPanel(far, pp, eyeM);
    const panelDot = manifest.dotGrid.dots[node]!;
    m.x[k] = (panelDot.uPx - r.xPx) / r.widthPx;
    m.y[k] = (panelDot.vPx - r.yPx) / r.heightPx;
    m.u[k] = (pp.uPx - r.xPx) / r.widthPx;
    m.v[k] = (pp.vPx - r.yPx) / r.heightPx;
    m.dir.set([d.x, d.y, d.z], k * 3);
  });
  return m;
}

/** Samples the model into a warp map on an eye grid spanning the captured eye positions. */
function sampleWarpMap(model: EyeboxWarpModel, manifest: CaptureManifest, options: WindshieldCalibrationOptions, rmsArcmin: number): WarpMap {
  const cols = options.warpCols ?? WINDSHIELD_WARP_COLS;
  const rows = options.warpRows ?? WINDSHIELD_WARP_ROWS;
  const eyeCols = options.eyeCols ?? WINDSHIELD_WARP_EYE_COLS;
  const eyeRows = options.eyeRows ?? WINDSHIELD_WARP_EYE_ROWS;
  const c = model.eyeCentreM;
  const ys = [...new Set(manifest.captures.map((k) => k.eyeM.y))];
  const zs = [...new Set(manifest.captures.map((k) => k.eyeM.z))];
  const yCount = ys.length > 1 ? eyeCols : 1, zCount = zs.length > 1 ? eyeRows : 1;
  const eyes: Vec3M[] = [];
  for (let j = 0; j < zCount; j++) {
    for (let i = 0; i < yCount; i++) {
      eyes.push({
        x: c.x,
        y: c.y + (yCount === 1 ? 0 : (2 * i / (yCount - 1) - 1) * model.eyeHalfRangeYM),
        z: c.z + (zCount === 1 ? 0 : (1 - 2 * j / (zCount - 1)) * model.eyeHalfRangeZM),
      });
    }
  }
  const uv = new Float64Array(2);
  const meshes = eyes.map((eyeM) => {
    const coeff = model.coefficientsAt(eyeM);
    return WarpMesh.fromFunction(cols, rows, (x, y) => {
      model.evaluate(coeff, x, y, uv);
      return [uv[0]!, uv[1]!];
    });
  });
  const map: WarpMap = {
    panel: { widthPx: manifest.region.widthPx, heightPx: manifest.region.heightPx },
    cols,
    rows,
    eyePositionsM: eyes,
    meshes,
    source: { tool: 'arhud-calibrate', date: options.date ?? new Date().toISOString(), rmsArcmin },
  };
  // Round-trip through the file format so the result is exactly what the renderer will load.
  return parseWarpMap(JSON.parse(warpMapToJson(map)), 'calibrateWindshield');
}

/**
 * Writes the calibration: an accepted one to `outputPath` (a warp-map file the renderer loads), a
 * rejected one to `rejectedCalibrationPath(outputPath)` as `{ status, reason, maxResidualArcmin,
 * warpMap }`, which `loadWarpMap` refuses. Nothing else is touched: a good map already at
 * `outputPath` survives a rejected recalibration. Returns the path written.
 */
export async function writeWindshieldCalibration(outputPath: string, result: WindshieldCalibrationResult): Promise<string> {
  const text = warpMapToJson(result.warpMap);
  if (result.status === 'accepted') {
    await writeFile(outputPath, text);
    return outputPath;
  }
  const path = rejectedCalibrationPath(outputPath);
  const wrapper = { status: 'rejected', reason: result.reason ?? 'rejected', maxResidualArcmin: result.maxResidualArcmin, warpMap: JSON.parse(text) as unknown };
  await writeFile(path, JSON.stringify(wrapper) + '\n');
  return path;
}
