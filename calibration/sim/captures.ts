/**
 * Simulated windshield calibration captures: a camera (known intrinsics and orientation, a
 * calibrated fixture) at each eye position photographs the panel's dot grid through the simulated
 * HUD optics. Blur (Gaussian PSF), photon and read noise, a few missing dots (dead or occluded) and
 * spurious bright spots (reflections) make the images realistic; dots are supersampled so their
 * centroids are unbiased.
 *
 * Output: one 8-bit grayscale PNG per eye position plus `captures.json`
 * (see calibration/windshield/capture-manifest.ts). The true directions are NOT written.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Vec3M } from '../../render/optics-config.js';
import { gaussianRandom, seededRandom } from '../math/random.js';
import {
  CAPTURE_MANIFEST_FILE,
  CAPTURE_MANIFEST_VERSION,
  parseCaptureManifest,
  projectDirection,
  type CaptureCameraIntrinsics,
  type CaptureManifest,
  type ImagePointPx,
  type PanelDot,
} from '../windshield/capture-manifest.js';
import { DESIGN_EYEBOX_HEIGHT_M, DESIGN_EYEBOX_WIDTH_M, HudOpticsSimulator } from './hud-optics-simulator.js';

/**
 * Default camera: 1280x720, about 15 x 8.5 deg (fx = fy = 4860 px, 0.71 arcmin per pixel), so the
 * 10 x 4 deg virtual image with its distortion and the eye's parallax fits with a margin; mild
 * barrel k1 like a real machine-vision lens.
 */
export const DEFAULT_CAPTURE_CAMERA: Readonly<CaptureCameraIntrinsics> = Object.freeze({ widthPx: 1280, heightPx: 720, fxPx: 4860, fyPx: 4860, cxPx: 640, cyPx: 360, k1: -0.3 });
/** Dot grid columns x rows (33 x 17: one dot per ~40 x ~22 panel px). */
export const DEFAULT_DOT_COLS = 33;
export const DEFAULT_DOT_ROWS = 17;
/** Dot radius on the panel, pixels (about 2.7 x 3.8 camera pixels: enough flux for a 0.03 px centroid). */
export const DEFAULT_DOT_RADIUS_PX = 4;
/** Outer dots' distance from the region edge, panel pixels (the fit then barely extrapolates). */
export const DEFAULT_DOT_MARGIN_PX = 6;
/** Eye grid of the default capture set over the eyebox (lateral x vertical). */
export const DEFAULT_EYE_COLS = 3;
export const DEFAULT_EYE_ROWS = 3;
/** Subsamples per pixel side when rasterising a dot (64 per pixel: centroid bias < 0.005 px). */
const SUPERSAMPLE = 8;
/** Gaussian PSF sigma, camera pixels (lens blur + slight defocus). */
export const DEFAULT_BLUR_SIGMA_PX = 0.8;
/** Background (stray light + black level), DN. */
export const DEFAULT_BACKGROUND_DN = 10;
/** Dot brightness, DN (below saturation so no centroid is clipped). */
export const DEFAULT_DOT_PEAK_DN = 170;
/** Photon noise: variance = gain x signal (DN per electron; 0.1 = about 1700 e- at the dot peak). */
export const DEFAULT_GAIN_DN_PER_ELECTRON = 0.1;
/** Read noise, DN RMS. */
export const DEFAULT_READ_NOISE_DN = 1.5;
/** Dots left out per capture (dead pixels, dust, occlusion). */
export const DEFAULT_MISSING_DOTS = 3;
/** Spurious bright spots per capture (reflections). */
export const DEFAULT_SPURIOUS_SPOTS = 4;
/** Spurious spots keep at least this fraction of the dot spacing from every grid dot (reflections over a dot are not simulated). */
const SPURIOUS_MIN_SPACING_FRACTION = 0.45;
/** Default seed of the capture noise and defects. */
export const DEFAULT_CAPTURE_SEED = 7;

/** Options of simulateWindshieldCaptures; every field optional (defaults above). */
export interface WindshieldCaptureOptions {
  /** The HUD to photograph; default `new HudOpticsSimulator()` (seeded tolerances). */
  simulator?: HudOpticsSimulator;
  camera?: CaptureCameraIntrinsics;
  dotCols?: number;
  dotRows?: number;
  dotRadiusPx?: number;
  dotMarginPx?: number;
  /** Eye positions; default a DEFAULT_EYE_COLS x DEFAULT_EYE_ROWS grid spanning the design eyebox. */
  eyePositionsM?: Vec3M[];
  blurSigmaPx?: number;
  backgroundDn?: number;
  dotPeakDn?: number;
  gainDnPerElectron?: number;
  readNoiseDn?: number;
  missingDots?: number;
  spuriousSpots?: number;
  seed?: number;
}

/** What a capture contained (for tests; the calibration never sees it). */
export interface CaptureTruth {
  /** Grid indices (j * cols + i) of the dots left out. */
  missing: number[];
  /** Centres of the spurious spots, camera pixels. */
  spuriousPx: ImagePointPx[];
  /** True image position of every dot centre (NaN where missing), x, y per dot. */
  dotCentresPx: Float64Array;
}

/** Result of simulateWindshieldCaptures. */
export interface SimulatedCaptureSet {
  manifest: CaptureManifest;
  truth: CaptureTruth[];
}

/** Eye positions on a cols x rows grid spanning widthM (vehicle y) x heightM (z) around `centreM`. */
export function eyeboxGrid(centreM: Readonly<Vec3M>, cols: number, rows: number, widthM = DESIGN_EYEBOX_WIDTH_M, heightM = DESIGN_EYEBOX_HEIGHT_M): Vec3M[] {
  const out: Vec3M[] = [];
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      out.push({ x: centreM.x, y: centreM.y + (cols === 1 ? 0 : (i / (cols - 1) - 0.5) * widthM), z: centreM.z + (rows === 1 ? 0 : (0.5 - j / (rows - 1)) * heightM) });
    }
  }
  return out;
}

/** The dot grid on the far region: cols x rows dots from `marginPx` inside each edge, row-major. */
export function dotGridDots(region: { xPx: number; yPx: number; widthPx: number; heightPx: number }, cols: number, rows: number, marginPx: number): PanelDot[] {
  const dots: PanelDot[] = [];
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      dots.push({
        i,
        j,
        uPx: region.xPx + marginPx + ((region.widthPx - 2 * marginPx) * i) / (cols - 1),
        vPx: region.yPx + marginPx + ((region.heightPx - 2 * marginPx) * j) / (rows - 1),
      });
    }
  }
  return dots;
}

/**
 * Adds a dot to `image` (float DN, row-major): the image of a panel disk of `radiusPx` whose centre
 * lands at `centre` and whose local panel -> image Jacobian is `jacobian` (row-major 2x2, image px
 * per panel px), with area coverage by SUPERSAMPLE^2 subsamples per pixel.
 */
export function rasterizeDot(image: Float32Array, widthPx: number, heightPx: number, centre: Readonly<ImagePointPx>, jacobian: ArrayLike<number>, radiusPx: number, peakDn: number): void {
  const a = jacobian[0]!, b = jacobian[1]!, c = jacobian[2]!, d = jacobian[3]!;
  const det = a * d - b * c;
  if (!(Math.abs(det) > 0)) throw new RangeError(`rasterizeDot: 'jacobian' must be invertible, got determinant ${det}`);
  // image offset -> panel offset: inverse Jacobian.
  const ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
  const extent = radiusPx * Math.max(Math.hypot(a, c), Math.hypot(b, d)) * 1.5 + 1;
  const x0 = Math.max(0, Math.floor(centre.xPx - extent)), x1 = Math.min(widthPx - 1, Math.ceil(centre.xPx + extent));
  const y0 = Math.max(0, Math.floor(centre.yPx - extent)), y1 = Math.min(heightPx - 1, Math.ceil(centre.yPx + extent));
  const r2 = radiusPx * radiusPx;
  const step = 1 / SUPERSAMPLE;
  const weight = peakDn / (SUPERSAMPLE * SUPERSAMPLE);
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      let inside = 0;
      for (let sy = 0; sy < SUPERSAMPLE; sy++) {
        const oy = y + (sy + 0.5) * step - centre.yPx;
        for (let sx = 0; sx < SUPERSAMPLE; sx++) {
          const ox = x + (sx + 0.5) * step - centre.xPx;
          const pu = ia * ox + ib * oy, pv = ic * ox + id * oy;
          if (pu * pu + pv * pv <= r2) inside++;
        }
      }
      if (inside > 0) image[y * widthPx + x] = image[y * widthPx + x]! + inside * weight;
    }
  }
}

/** Adds a Gaussian spot (peak `peakDn`, sigmas along x and y in pixels) to `image`. */
function addGaussianSpot(image: Float32Array, widthPx: number, heightPx: number, xPx: number, yPx: number, sigmaXPx: number, sigmaYPx: number, peakDn: number): void {
  const rx = Math.ceil(4 * sigmaXPx), ry = Math.ceil(4 * sigmaYPx);
  for (let y = Math.max(0, Math.floor(yPx) - ry); y <= Math.min(heightPx - 1, Math.floor(yPx) + ry); y++) {
    for (let x = Math.max(0, Math.floor(xPx) - rx); x <= Math.min(widthPx - 1, Math.floor(xPx) + rx); x++) {
      const dx = (x + 0.5 - xPx) / sigmaXPx, dy = (y + 0.5 - yPx) / sigmaYPx;
      image[y * widthPx + x] = image[y * widthPx + x]! + peakDn * Math.exp(-0.5 * (dx * dx + dy * dy));
    }
  }
}

/** Separable Gaussian blur in place (edges clamped). */
export function gaussianBlur(image: Float32Array, widthPx: number, heightPx: number, sigmaPx: number): void {
  if (!(sigmaPx > 0)) return;
  const radius = Math.ceil(3 * sigmaPx);
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) sum += kernel[k + radius] = Math.exp(-0.5 * (k / sigmaPx) ** 2);
  for (let k = 0; k < kernel.length; k++) kernel[k] = kernel[k]! / sum;
  const tmp = new Float32Array(image.length);
  for (let y = 0; y < heightPx; y++) {
    const row = y * widthPx;
    for (let x = 0; x < widthPx; x++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) acc += kernel[k + radius]! * image[row + Math.min(widthPx - 1, Math.max(0, x + k))]!;
      tmp[row + x] = acc;
    }
  }
  for (let y = 0; y < heightPx; y++) {
    for (let x = 0; x < widthPx; x++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) acc += kernel[k + radius]! * tmp[Math.min(heightPx - 1, Math.max(0, y + k)) * widthPx + x]!;
      image[y * widthPx + x] = acc;
    }
  }
}

/** Photon (gain x signal variance) and read noise, then 8-bit quantisation. */
export function addNoiseAndQuantize(image: Float32Array, gainDnPerElectron: number, readNoiseDn: number, normal: () => number): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let k = 0; k < image.length; k++) {
    const s = Math.max(0, image[k]!);
    const sigma = Math.sqrt(gainDnPerElectron * s + readNoiseDn * readNoiseDn);
    out[k] = Math.min(255, Math.max(0, Math.round(s + sigma * normal())));
  }
  return out;
}

/**
 * Renders one capture: the dot grid of `manifest` seen from `eyeM` through `simulator`. Returns the
 * 8-bit image and what it contains.
 */
export function renderDotGridCapture(simulator: HudOpticsSimulator, manifest: Omit<CaptureManifest, 'captures'>, eyeM: Readonly<Vec3M>, options: WindshieldCaptureOptions, uniform: () => number): { pixels: Uint8Array; truth: CaptureTruth } {
  const cam = manifest.camera;
  const R = manifest.cameraFromVehicle;
  const { widthPx, heightPx } = cam;
  const normal = gaussianRandom(uniform);
  const image = new Float32Array(widthPx * heightPx).fill(options.backgroundDn ?? DEFAULT_BACKGROUND_DN);
  const dots = manifest.dotGrid.dots;
  const n = dots.length;
  const missingCount = Math.min(n, options.missingDots ?? DEFAULT_MISSING_DOTS);
  const missing = new Set<number>();
  while (missing.size < missingCount) missing.add(Math.floor(uniform() * n));
  const peak = options.dotPeakDn ?? DEFAULT_DOT_PEAK_DN;
  const dir: Vec3M = { x: 0, y: 0, z: 0 };
  const p0: ImagePointPx = { xPx: 0, yPx: 0 }, p1: ImagePointPx = { xPx: 0, yPx: 0 };
  const centres = new Float64Array(n * 2);
  const jac = new Float64Array(4);
  const project = (u: number, v: number, out: ImagePointPx): ImagePointPx => projectDirection(cam, R, simulator.apparentDirection(u, v, eyeM, dir), out);
  for (let k = 0; k < n; k++) {
    const dot = dots[k]!;
    project(dot.uPx, dot.vPx, p0);
    centres[k * 2] = p0.xPx;
    centres[k * 2 + 1] = p0.yPx;
    if (missing.has(k)) continue;
    if (!Number.isFinite(p0.xPx)) throw new RangeError(`renderDotGridCapture: dot (${dot.i}, ${dot.j}) is not visible from eye (${eyeM.x}, ${eyeM.y}, ${eyeM.z})`);
    project(dot.uPx + 1, dot.vPx, p1);
    jac[0] = p1.xPx - p0.xPx;
    jac[2] = p1.yPx - p0.yPx;
    project(dot.uPx, dot.vPx + 1, p1);
    jac[1] = p1.xPx - p0.xPx;
    jac[3] = p1.yPx - p0.yPx;
    rasterizeDot(image, widthPx, heightPx, p0, jac, manifest.dotGrid.radiusPx, peak);
  }
  // Spurious spots: blobs of assorted size and shape, away from every grid position.
  const cols = manifest.dotGrid.cols;
  const spacing = Math.min(Math.hypot(centres[2]! - centres[0]!, centres[3]! - centres[1]!), Math.hypot(centres[cols * 2]! - centres[0]!, centres[cols * 2 + 1]! - centres[1]!));
  const minDistance = SPURIOUS_MIN_SPACING_FRACTION * spacing;
  const spuriousPx: ImagePointPx[] = [];
  const spuriousCount = options.spuriousSpots ?? DEFAULT_SPURIOUS_SPOTS;
  for (let attempt = 0; spuriousPx.length < spuriousCount && attempt < 1000; attempt++) {
    const x = 20 + uniform() * (widthPx - 40), y = 20 + uniform() * (heightPx - 40);
    let ok = true;
    for (let k = 0; k < n && ok; k++) ok = Math.hypot(centres[k * 2]! - x, centres[k * 2 + 1]! - y) >= minDistance;
    if (!ok) continue;
    const sigma = 0.8 + 1.5 * uniform();
    const elongation = spuriousPx.length % 2 === 0 ? 1 : 1 + 3 * uniform();
    addGaussianSpot(image, widthPx, heightPx, x, y, sigma * elongation, sigma, 80 + 150 * uniform());
    spuriousPx.push({ xPx: x, yPx: y });
  }
  gaussianBlur(image, widthPx, heightPx, options.blurSigmaPx ?? DEFAULT_BLUR_SIGMA_PX);
  const pixels = addNoiseAndQuantize(image, options.gainDnPerElectron ?? DEFAULT_GAIN_DN_PER_ELECTRON, options.readNoiseDn ?? DEFAULT_READ_NOISE_DN, normal);
  for (const k of missing) centres[k * 2] = centres[k * 2 + 1] = NaN;
  return { pixels, truth: { missing: [...missing].sort((a, b) => a - b), spuriousPx, dotCentresPx: centres } };
}

/**
 * Simulates a capture set into `outDir`: `eye-<k>.png` per eye position and `captures.json`.
 * Deterministic for a given simulator and seed.
 */
export async function simulateWindshieldCaptures(outDir: string, options: WindshieldCaptureOptions = {}): Promise<SimulatedCaptureSet> {
  const simulator = options.simulator ?? new HudOpticsSimulator();
  const camera = { ...(options.camera ?? DEFAULT_CAPTURE_CAMERA) };
  const region = { ...simulator.plane.region };
  const cols = options.dotCols ?? DEFAULT_DOT_COLS;
  const rows = options.dotRows ?? DEFAULT_DOT_ROWS;
  const eyes = options.eyePositionsM ?? eyeboxGrid(simulator.eyeboxCentreM, DEFAULT_EYE_COLS, DEFAULT_EYE_ROWS);
  const base = {
    version: CAPTURE_MANIFEST_VERSION,
    camera,
    // The camera looks along the HUD axis: its rows are the plane's right, down and axis vectors.
    cameraFromVehicle: Array.from(simulator.plane.hudFromVehicle),
    panel: { ...simulator.panel },
    region,
    dotGrid: { cols, rows, radiusPx: options.dotRadiusPx ?? DEFAULT_DOT_RADIUS_PX, dots: dotGridDots(region, cols, rows, options.dotMarginPx ?? DEFAULT_DOT_MARGIN_PX) },
  } as const;
  const uniform = seededRandom(options.seed ?? DEFAULT_CAPTURE_SEED);
  await mkdir(outDir, { recursive: true });
  const truth: CaptureTruth[] = [];
  const captures = [];
  for (let e = 0; e < eyes.length; e++) {
    const eyeM = eyes[e]!;
    const { pixels, truth: t } = renderDotGridCapture(simulator, base, eyeM, options, uniform);
    const file = `eye-${e}.png`;
    await sharp(pixels, { raw: { width: camera.widthPx, height: camera.heightPx, channels: 1 } }).png().toFile(join(outDir, file));
    captures.push({ file, eyeM: { x: eyeM.x, y: eyeM.y, z: eyeM.z } });
    truth.push(t);
  }
  const manifest = parseCaptureManifest({ ...base, captures }, 'simulateWindshieldCaptures');
  await writeFile(join(outDir, CAPTURE_MANIFEST_FILE), JSON.stringify(manifest, null, 1) + '\n');
  return { manifest, truth };
}
