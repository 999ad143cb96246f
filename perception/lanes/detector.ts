/**
 * Classical lane detector: bird's-eye view of the road plane -> lateral ridge filter -> marking
 * points -> seeded window search -> robust cubic fit per line -> role assignment -> per-role
 * temporal filter.
 *
 * Why classical and not a small ONNX model: no lane model ships with the project and none was
 * trained on these cameras; the ridge + robust fit works on any calibrated camera, is explainable
 * (every boundary has supporting points), runs in about a millisecond on a 289x121 grid, and its
 * failure mode is "no boundary" rather than a plausible-looking invented one.
 *
 * Nothing is invented: a role is reported only after a marking was fitted for it, is never
 * extrapolated from another role (no "ego-right = ego-left - 3.66 m"), and while its marking is
 * not seen it keeps its last curve with a confidence decaying with time constant
 * `confidenceTauS`, until it falls below `reportMinConfidence` and is dropped.
 *
 * Per frame, `detect` allocates only the returned estimate (a few small objects).
 */
import type { ImageView } from '../../pipeline/image.js';
import { CameraModel } from '../world/camera-model.js';
import { BirdsEyeView, type BirdsEyeGrid } from './birdseye.js';
import { fitPolynomialRobust, type FitResult } from './fit.js';
import { LANE_ROLES, type LaneBoundary, type LaneEstimate, type LaneRole, type LineType } from './types.js';

export interface LaneDetectorOptions {
  /** Bird's-eye grid; default DEFAULT_GRID. */
  grid?: Partial<BirdsEyeGrid>;
  /** Ridge contrast (grey levels, 0..255) a marking point needs; default MIN_RIDGE_CONTRAST. */
  minContrast?: number;
  /** Time constant (s) of the coefficient filter; default COEFFICIENT_TAU_S. */
  coefficientTauS?: number;
  /** Time constant (s) of the confidence filter (rise and decay); default CONFIDENCE_TAU_S. */
  confidenceTauS?: number;
  /** Boundaries below this confidence are not reported (and forgotten); default REPORT_MIN_CONFIDENCE. */
  reportMinConfidence?: number;
}

/** 6..36 m ahead: nearer is below a typical dash cam's view, farther the markings are < 2 px wide at 960 px. +-7.2 m covers both adjacent lanes. */
export const DEFAULT_GRID: Readonly<BirdsEyeGrid> = { xNearM: 6, xFarM: 36, dxM: 0.25, yHalfM: 7.2, dyM: 0.05 };
/** Paint on asphalt is 60-150 grey levels brighter; tar seams and texture stay below ~15. */
export const MIN_RIDGE_CONTRAST = 18;
/** Coefficient smoothing: 0.1 s is ~2.5 frames at 25 fps — removes pixel jitter, lags a lane change by ~0.3 s. */
export const COEFFICIENT_TAU_S = 0.1;
/** Confidence: from 1 a vanished marking drops below 0.25 after 1.4 tau = 0.25 s. */
export const CONFIDENCE_TAU_S = 0.18;
export const REPORT_MIN_CONFIDENCE = 0.25;
/** Frame interval assumed for the first frame or a non-increasing time stamp (s). */
export const NOMINAL_FRAME_S = 0.04;

/** Non-maximum suppression of ridge peaks within a row (m): two lines are never closer than this. */
const PEAK_NMS_M = 0.3;
/** Peaks kept per bird's-eye row. */
const MAX_PEAKS_PER_ROW = 24;
/** Seeds come from a histogram of points within this distance beyond xNear (m). */
const SEED_RANGE_M = 14;
/** Lateral window (m) around a seed for the first line fit. */
const SEED_WINDOW_M = 0.45;
/** Seeds closer than this (m) are the same line. */
const SEED_SEPARATION_M = 0.9;
/** Minimum histogram weight of a seed: point weights are <= 1 per row, so 3 = at least 3 rows (0.75 m at dxM 0.25) of strong paint. */
const SEED_MIN_WEIGHT = 3;
const MAX_SEEDS = 8;
/** Window (m) when growing a line farther out, block by block. */
const GROW_WINDOW_M = 0.35;
const GROW_BLOCK_M = 4;
/** Final window (m) around the fitted curve. */
const REFINE_WINDOW_M = 0.25;
/** Window (m) around a tracked boundary's curve. */
const TRACK_WINDOW_M = 0.4;
/** A line needs this many supporting rows (x dxM = 1.5 m of paint at the default grid). */
const MIN_SUPPORT_ROWS = 6;
/** Paint length (m) that earns full measurement confidence. */
const FULL_CONFIDENCE_LENGTH_M = 8;
/** Lines whose fit residual is larger are not lane markings (m). */
const MAX_FIT_RMS_M = 0.15;
/** |dy/dx| at the near edge: lane lines run roughly along the car (17 deg). */
const MAX_HEADING = 0.3;
/** Two candidates closer than this (m, at their common middle) are one line. */
const DUPLICATE_M = 0.45;
/** An ego boundary is within this distance of the vehicle origin at x = 0 (m): half a wide lane + margin. */
const MAX_EGO_OFFSET_M = 3.2;
/**
 * A line nearer than this to the vehicle origin at x = 0 (m) runs under the car: during a lane
 * change its side is ambiguous, and a radial streak of an upright object ahead (car edge, pole)
 * extrapolates to about 0 too; neither is reported as an ego boundary.
 */
const MIN_EGO_OFFSET_M = 0.6;
/** Lane widths outside this range are not a lane (m): 2.4 = narrow urban, 5.0 = wide shoulder-less lane. */
const MIN_LANE_WIDTH_M = 2.4;
const MAX_LANE_WIDTH_M = 5.0;
/** Measurement vs. track disagreement (m, at near and 20 m) that counts as a different line. */
const GATE_M = 0.5;
/** Consecutive disagreeing frames after which the track jumps to the new line (lane change). */
const REINIT_FRAMES = 3;
/** Line type: solid if >= this fraction of the painted span is paint and no gap is longer than DASH_GAP_MIN_M. */
const SOLID_MIN_COVERAGE = 0.8;
/** Dashed: at least one interior gap this long (m; US dashes are 3 m paint, 9 m gap). */
const DASH_GAP_MIN_M = 2.5;
const DASHED_MAX_COVERAGE = 0.65;
/** Painted span (m) needed to judge the type at all. */
const TYPE_MIN_SPAN_M = 8;
/** Type vote filter gain per frame and decision threshold. */
const TYPE_GAIN = 0.25;
const TYPE_DECIDE = 0.35;

const MAX_CANDIDATES = 12;

interface Settings {
  grid: BirdsEyeGrid;
  minContrast: number;
  coefficientTauS: number;
  confidenceTauS: number;
  reportMinConfidence: number;
}

function settingsFrom(options: LaneDetectorOptions): Settings {
  const s: Settings = {
    grid: { ...DEFAULT_GRID, ...options.grid },
    minContrast: options.minContrast ?? MIN_RIDGE_CONTRAST,
    coefficientTauS: options.coefficientTauS ?? COEFFICIENT_TAU_S,
    confidenceTauS: options.confidenceTauS ?? CONFIDENCE_TAU_S,
    reportMinConfidence: options.reportMinConfidence ?? REPORT_MIN_CONFIDENCE,
  };
  for (const key of ['minContrast', 'confidenceTauS'] as const) {
    if (!(s[key] > 0)) throw new RangeError(`LaneDetector: option '${key}' must be > 0, got ${s[key]}`);
  }
  if (!(s.coefficientTauS >= 0)) throw new RangeError(`LaneDetector: option 'coefficientTauS' must be >= 0, got ${s.coefficientTauS}`);
  if (!(s.reportMinConfidence > 0 && s.reportMinConfidence < 1)) {
    throw new RangeError(`LaneDetector: option 'reportMinConfidence' must be in (0, 1), got ${s.reportMinConfidence}`);
  }
  return s;
}

/** One fitted line of the current frame. */
interface Candidate {
  coefficients: Float64Array;
  supportRows: number;
  xMinM: number;
  xMaxM: number;
  rmsM: number;
  confidence: number;
  /** +1 solid, -1 dashed, 0 unknown. */
  typeVote: number;
  /** y at x = 0. */
  y0M: number;
  used: boolean;
}

/** Filtered boundary of one role. */
interface Track {
  active: boolean;
  coefficients: Float64Array;
  xMinM: number;
  xMaxM: number;
  confidence: number;
  typeScore: number;
  disagreeFrames: number;
}

function newCandidate(): Candidate {
  return { coefficients: new Float64Array(4), supportRows: 0, xMinM: 0, xMaxM: 0, rmsM: 0, confidence: 0, typeVote: 0, y0M: 0, used: false };
}

function newTrack(): Track {
  return { active: false, coefficients: new Float64Array(4), xMinM: 0, xMaxM: 0, confidence: 0, typeScore: 0, disagreeFrames: 0 };
}

function polyAt(c: Float64Array, x: number): number {
  return c[0]! + x * (c[1]! + x * (c[2]! + x * c[3]!));
}

function slopeAt(c: Float64Array, x: number): number {
  return c[1]! + x * (2 * c[2]! + 3 * x * c[3]!);
}

export class LaneDetector {
  readonly bev: BirdsEyeView;
  readonly #s: Settings;
  // Marking points of the current frame, row by row.
  readonly #px: Float32Array;
  readonly #py: Float32Array;
  readonly #pw: Float32Array;
  readonly #rowStart: Int32Array;
  #pointCount = 0;
  // Points selected for one fit.
  readonly #fx: Float32Array;
  readonly #fy: Float32Array;
  readonly #fw: Float32Array;
  readonly #hist: Float32Array;
  readonly #histSmooth: Float32Array;
  readonly #seeds = new Float64Array(MAX_SEEDS);
  readonly #candidates: Candidate[] = [];
  #candidateCount = 0;
  readonly #tracks = new Map<LaneRole, Track>();
  readonly #assigned = new Map<LaneRole, Candidate | undefined>();
  readonly #fit: FitResult = { rmsM: 0, keptWeight: 0, keptCount: 0 };
  readonly #scratchCoefficients = new Float64Array(4);
  #lastTNs: bigint | undefined;

  constructor(camera: CameraModel, options: LaneDetectorOptions = {}) {
    if (!(camera instanceof CameraModel)) {
      throw new TypeError(`LaneDetector: 'camera' must be a CameraModel, got ${camera === null ? 'null' : typeof camera}`);
    }
    this.#s = settingsFrom(options);
    this.bev = new BirdsEyeView(camera, this.#s.grid);
    const capacity = this.bev.rows * MAX_PEAKS_PER_ROW;
    this.#px = new Float32Array(capacity);
    this.#py = new Float32Array(capacity);
    this.#pw = new Float32Array(capacity);
    this.#rowStart = new Int32Array(this.bev.rows + 1);
    this.#fx = new Float32Array(capacity);
    this.#fy = new Float32Array(capacity);
    this.#fw = new Float32Array(capacity);
    this.#hist = new Float32Array(this.bev.cols);
    this.#histSmooth = new Float32Array(this.bev.cols);
    for (let i = 0; i < MAX_CANDIDATES; i++) this.#candidates.push(newCandidate());
    for (const role of LANE_ROLES) this.#tracks.set(role, newTrack());
  }

  /** Marking points found in the last frame (for diagnostics). */
  get pointCount(): number {
    return this.#pointCount;
  }

  /** Lines fitted in the last frame, before role assignment (for diagnostics): y at x = 0, painted span, confidence. */
  candidates(): { y0M: number; xMinM: number; xMaxM: number; confidence: number; rmsM: number; typeVote: number }[] {
    return this.#candidates.slice(0, this.#candidateCount).map((c) => ({ y0M: c.y0M, xMinM: c.xMinM, xMaxM: c.xMaxM, confidence: c.confidence, rmsM: c.rmsM, typeVote: c.typeVote }));
  }

  /** Forgets all tracks (e.g. after a cut in the video). */
  reset(): void {
    for (const track of this.#tracks.values()) track.active = false;
    this.#lastTNs = undefined;
  }

  detect(image: ImageView, tNs: bigint): LaneEstimate {
    if (image.format !== 'rgb8' && image.format !== 'gray8' && image.format !== 'rgba8') {
      throw new TypeError(`LaneDetector.detect: field 'image.format' must be 'rgb8', 'rgba8' or 'gray8', got '${image.format}'`);
    }
    if (typeof tNs !== 'bigint') throw new TypeError(`LaneDetector.detect: 'tNs' must be a bigint, got ${typeof tNs}`);
    const dtS = this.#lastTNs !== undefined && tNs > this.#lastTNs ? Math.min(1, Number(tNs - this.#lastTNs) * 1e-9) : NOMINAL_FRAME_S;
    this.#lastTNs = tNs;

    this.bev.update(image);
    this.#extractPoints();
    this.#candidateCount = 0;
    // Tracked boundaries first: search around their curves.
    for (const role of LANE_ROLES) {
      const track = this.#tracks.get(role)!;
      if (track.active) this.#growFromCurve(track.coefficients, TRACK_WINDOW_M);
    }
    this.#seedCandidates();
    this.#assignRoles();
    this.#updateTracks(dtS);
    return this.#estimate(tNs);
  }

  // ---------------------------------------------------------------------------------------------
  #extractPoints(): void {
    const { rows, cols, ridge } = this.bev;
    const minContrast = this.#s.minContrast;
    const nms = Math.max(1, Math.round(PEAK_NMS_M / this.bev.grid.dyM));
    let n = 0;
    for (let i = 0; i < rows; i++) {
      this.#rowStart[i] = n;
      const base = i * cols;
      const x = this.bev.xOfRow(i);
      let inRow = 0;
      for (let j = 1; j < cols - 1 && inRow < MAX_PEAKS_PER_ROW; j++) {
        const r = ridge[base + j]!;
        if (r < minContrast) continue;
        let isMax = true;
        const j0 = Math.max(0, j - nms), j1 = Math.min(cols - 1, j + nms);
        for (let q = j0; q <= j1; q++) {
          const o = ridge[base + q]!;
          if (o > r || (o === r && q < j)) {
            isMax = false;
            break;
          }
        }
        if (!isMax) continue;
        // Sub-cell centre from a parabola through the peak and its neighbours.
        const a = ridge[base + j - 1]!, c = ridge[base + j + 1]!;
        const den = a - 2 * r + c;
        const dj = den < 0 ? Math.max(-0.5, Math.min(0.5, (0.5 * (a - c)) / den)) : 0;
        this.#px[n] = x;
        this.#py[n] = this.bev.yOfCol(j + dj);
        this.#pw[n] = Math.min(1, r / (3 * minContrast));
        n++;
        inRow++;
      }
    }
    this.#rowStart[rows] = n;
    this.#pointCount = n;
  }

  /** Histogram seeds in the near range; each not already explained by a candidate grows into one. */
  #seedCandidates(): void {
    const { cols, grid } = this.bev;
    const hist = this.#hist, smooth = this.#histSmooth;
    hist.fill(0);
    const xSeedMax = grid.xNearM + SEED_RANGE_M;
    for (let k = 0; k < this.#pointCount; k++) {
      if (this.#px[k]! > xSeedMax) break;
      const j = Math.round(this.bev.colOfY(this.#py[k]!));
      if (j >= 0 && j < cols) hist[j] = hist[j]! + this.#pw[k]!;
    }
    const half = Math.max(1, Math.round(0.1 / grid.dyM));
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let q = Math.max(0, j - half); q <= Math.min(cols - 1, j + half); q++) s += hist[q]!;
      smooth[j] = s;
    }
    const sep = Math.round(SEED_SEPARATION_M / grid.dyM);
    let seeds = 0;
    while (seeds < MAX_SEEDS) {
      let best = -1, bestValue = SEED_MIN_WEIGHT;
      for (let j = 0; j < cols; j++) {
        if (smooth[j]! > bestValue) {
          bestValue = smooth[j]!;
          best = j;
        }
      }
      if (best < 0) break;
      this.#seeds[seeds++] = this.bev.yOfCol(best);
      for (let q = Math.max(0, best - sep); q <= Math.min(cols - 1, best + sep); q++) smooth[q] = 0;
    }
    const xMid = grid.xNearM + 0.5 * SEED_RANGE_M;
    for (let s = 0; s < seeds; s++) {
      const ySeed = this.#seeds[s]!;
      let explained = false;
      for (let c = 0; c < this.#candidateCount; c++) {
        if (Math.abs(polyAt(this.#candidates[c]!.coefficients, xMid) - ySeed) < SEED_SEPARATION_M * 0.5) explained = true;
      }
      if (!explained) this.#growFromSeed(ySeed);
    }
  }

  /** Selects points within `windowM` of curve c over x in [x0, x1) into the fit scratch; returns the count. */
  #select(c: Float64Array, windowM: number, x0: number, x1: number, n0: number): number {
    let n = n0;
    const rows = this.bev.rows;
    const i0 = Math.max(0, Math.ceil((x0 - this.bev.grid.xNearM) / this.bev.grid.dxM - 1e-6));
    const i1 = Math.min(rows, Math.ceil((x1 - this.bev.grid.xNearM) / this.bev.grid.dxM - 1e-6));
    for (let i = i0; i < i1; i++) {
      const x = this.bev.xOfRow(i);
      const yc = polyAt(c, x);
      // Nearest point in this row only: one line has one crossing per row.
      let best = -1, bestD = windowM;
      for (let k = this.#rowStart[i]!; k < this.#rowStart[i + 1]!; k++) {
        const d = Math.abs(this.#py[k]! - yc);
        if (d <= bestD) {
          bestD = d;
          best = k;
        }
      }
      if (best < 0) continue;
      this.#fx[n] = x;
      this.#fy[n] = this.#py[best]!;
      this.#fw[n] = this.#pw[best]!;
      n++;
    }
    return n;
  }

  #growFromSeed(ySeed: number): void {
    const c = this.#scratchCoefficients;
    const grid = this.bev.grid;
    c.fill(0);
    c[0] = ySeed;
    let xEnd = grid.xNearM + SEED_RANGE_M;
    let n = this.#select(c, SEED_WINDOW_M, grid.xNearM, xEnd, 0);
    if (n < MIN_SUPPORT_ROWS || !fitPolynomialRobust(this.#fx, this.#fy, this.#fw, n, 1, c, this.#fit)) return;
    while (xEnd < grid.xFarM + grid.dxM) {
      const next = xEnd + GROW_BLOCK_M;
      const added = this.#select(c, GROW_WINDOW_M, xEnd, next, n);
      if (added > n) {
        n = added;
        fitPolynomialRobust(this.#fx, this.#fy, this.#fw, n, this.#degreeFor(n), c, this.#fit);
      }
      xEnd = next;
    }
    this.#refine(c);
  }

  #growFromCurve(curve: Float64Array, windowM: number): void {
    const c = this.#scratchCoefficients;
    c.set(curve);
    const n = this.#select(c, windowM, this.bev.grid.xNearM, this.bev.grid.xFarM + this.bev.grid.dxM, 0);
    if (n < MIN_SUPPORT_ROWS || !fitPolynomialRobust(this.#fx, this.#fy, this.#fw, n, this.#degreeFor(n), c, this.#fit)) return;
    this.#refine(c);
  }

  /** Polynomial degree the selected points can carry: longer painted spans allow more bend. */
  #degreeFor(n: number): number {
    let xMin = Infinity, xMax = -Infinity;
    for (let k = 0; k < n; k++) {
      xMin = Math.min(xMin, this.#fx[k]!);
      xMax = Math.max(xMax, this.#fx[k]!);
    }
    const span = xMax - xMin;
    return span < 8 ? 1 : span < 18 ? 2 : 3;
  }

  /** Final pass around curve c over the whole grid; stores a candidate when the line qualifies. */
  #refine(c: Float64Array): void {
    const grid = this.bev.grid;
    const n = this.#select(c, REFINE_WINDOW_M, grid.xNearM, grid.xFarM + grid.dxM, 0);
    if (n < MIN_SUPPORT_ROWS) return;
    if (!fitPolynomialRobust(this.#fx, this.#fy, this.#fw, n, this.#degreeFor(n), c, this.#fit)) return;
    if (this.#fit.rmsM > MAX_FIT_RMS_M || Math.abs(slopeAt(c, grid.xNearM)) > MAX_HEADING) return;
    let support = 0, xMin = Infinity, xMax = -Infinity;
    for (let k = 0; k < n; k++) {
      if (Math.abs(this.#fy[k]! - polyAt(c, this.#fx[k]!)) > 2 * REFINE_WINDOW_M) continue;
      support++;
      xMin = Math.min(xMin, this.#fx[k]!);
      xMax = Math.max(xMax, this.#fx[k]!);
    }
    if (support < MIN_SUPPORT_ROWS) return;
    // Same line as an existing candidate?
    const xMid = 0.5 * (xMin + xMax);
    for (let q = 0; q < this.#candidateCount; q++) {
      const other = this.#candidates[q]!;
      const xm = Math.min(Math.max(xMid, other.xMinM), other.xMaxM);
      if (Math.abs(polyAt(other.coefficients, xm) - polyAt(c, xm)) < DUPLICATE_M) {
        if (other.supportRows >= support) return;
        this.#store(other, c, support, xMin, xMax);
        return;
      }
    }
    if (this.#candidateCount >= MAX_CANDIDATES) return;
    this.#store(this.#candidates[this.#candidateCount++]!, c, support, xMin, xMax);
  }

  #store(cand: Candidate, c: Float64Array, support: number, xMin: number, xMax: number): void {
    cand.coefficients.set(c);
    cand.supportRows = support;
    cand.xMinM = xMin;
    cand.xMaxM = xMax;
    cand.rmsM = this.#fit.rmsM;
    cand.y0M = c[0]!;
    cand.used = false;
    const lengthM = support * this.bev.grid.dxM;
    cand.confidence = Math.min(1, lengthM / FULL_CONFIDENCE_LENGTH_M) * Math.max(0, 1 - cand.rmsM / (2 * MAX_FIT_RMS_M));
    cand.typeVote = this.#typeVote(c, xMin, xMax);
  }

  /** +1 solid, -1 dashed, 0 undecided, from paint coverage along the curve within its painted span. */
  #typeVote(c: Float64Array, xMin: number, xMax: number): number {
    if (xMax - xMin < TYPE_MIN_SPAN_M) return 0;
    const { cols, ridge, valid, grid } = this.bev;
    const i0 = Math.round((xMin - grid.xNearM) / grid.dxM), i1 = Math.round((xMax - grid.xNearM) / grid.dxM);
    const halfCells = Math.max(1, Math.round(0.1 / grid.dyM));
    let on = 0, total = 0, gap = 0, longestGap = 0;
    for (let i = i0; i <= i1; i++) {
      const j = Math.round(this.bev.colOfY(polyAt(c, this.bev.xOfRow(i))));
      let best = 0, inside = false;
      for (let q = Math.max(0, j - halfCells); q <= Math.min(cols - 1, j + halfCells); q++) {
        const k = i * cols + q;
        if (valid[k]) inside = true;
        best = Math.max(best, ridge[k]!);
      }
      if (!inside) continue;
      total++;
      const paint = best >= this.#s.minContrast ? 1 : 0;
      on += paint;
      if (paint) {
        longestGap = Math.max(longestGap, gap);
        gap = 0;
      } else gap++;
    }
    if (total === 0) return 0;
    const coverage = on / total;
    const longestGapM = longestGap * grid.dxM;
    if (coverage >= SOLID_MIN_COVERAGE && longestGapM < DASH_GAP_MIN_M) return 1;
    if (coverage <= DASHED_MAX_COVERAGE && longestGapM >= DASH_GAP_MIN_M) return -1;
    return 0;
  }

  #assignRoles(): void {
    const cands = this.#candidates, count = this.#candidateCount;
    let left: Candidate | undefined, right: Candidate | undefined;
    for (let q = 0; q < count; q++) {
      const cand = cands[q]!;
      if (cand.y0M >= MIN_EGO_OFFSET_M && cand.y0M <= MAX_EGO_OFFSET_M && (left === undefined || cand.y0M < left.y0M)) left = cand;
      if (cand.y0M <= -MIN_EGO_OFFSET_M && cand.y0M >= -MAX_EGO_OFFSET_M && (right === undefined || cand.y0M > right.y0M)) right = cand;
    }
    if (left !== undefined && right !== undefined) {
      const width = left.y0M - right.y0M;
      if (width < MIN_LANE_WIDTH_M || width > MAX_LANE_WIDTH_M) {
        if (left.confidence >= right.confidence) right = undefined;
        else left = undefined;
      }
    }
    this.#assigned.set('ego-left', left);
    this.#assigned.set('ego-right', right);
    const leftTrack = this.#tracks.get('ego-left')!, rightTrack = this.#tracks.get('ego-right')!;
    const yLeft = left?.y0M ?? (leftTrack.active ? leftTrack.coefficients[0]! : undefined);
    const yRight = right?.y0M ?? (rightTrack.active ? rightTrack.coefficients[0]! : undefined);
    let leftAdj: Candidate | undefined, rightAdj: Candidate | undefined;
    for (let q = 0; q < count; q++) {
      const cand = cands[q]!;
      if (cand === left || cand === right) continue;
      if (yLeft !== undefined) {
        const d = cand.y0M - yLeft;
        if (d >= MIN_LANE_WIDTH_M && d <= MAX_LANE_WIDTH_M && (leftAdj === undefined || cand.y0M < leftAdj.y0M)) leftAdj = cand;
      }
      if (yRight !== undefined) {
        const d = yRight - cand.y0M;
        if (d >= MIN_LANE_WIDTH_M && d <= MAX_LANE_WIDTH_M && (rightAdj === undefined || cand.y0M > rightAdj.y0M)) rightAdj = cand;
      }
    }
    this.#assigned.set('left-adjacent', leftAdj);
    this.#assigned.set('right-adjacent', rightAdj);
  }

  #updateTracks(dtS: number): void {
    const gainC = this.#s.coefficientTauS > 0 ? 1 - Math.exp(-dtS / this.#s.coefficientTauS) : 1;
    const gainConf = 1 - Math.exp(-dtS / this.#s.confidenceTauS);
    const xNear = this.bev.grid.xNearM;
    for (const role of LANE_ROLES) {
      const track = this.#tracks.get(role)!;
      const meas = this.#assigned.get(role);
      if (meas !== undefined && track.active) {
        const d = Math.max(
          Math.abs(polyAt(track.coefficients, xNear) - polyAt(meas.coefficients, xNear)),
          Math.abs(polyAt(track.coefficients, 20) - polyAt(meas.coefficients, 20)),
        );
        if (d > GATE_M) {
          track.disagreeFrames++;
          if (track.disagreeFrames < REINIT_FRAMES) {
            this.#decay(track, gainConf);
            continue;
          }
          track.active = false;
        } else {
          track.disagreeFrames = 0;
          const c = track.coefficients, m = meas.coefficients;
          for (let k = 0; k < 4; k++) c[k] = c[k]! + gainC * (m[k]! - c[k]!);
          track.xMinM += gainC * (meas.xMinM - track.xMinM);
          track.xMaxM += gainC * (meas.xMaxM - track.xMaxM);
          track.confidence += gainConf * (meas.confidence - track.confidence);
          track.typeScore += TYPE_GAIN * (meas.typeVote - track.typeScore);
          continue;
        }
      }
      if (meas !== undefined) {
        // New track: starts at the measurement, with confidence earned over time.
        track.active = true;
        track.coefficients.set(meas.coefficients);
        track.xMinM = meas.xMinM;
        track.xMaxM = meas.xMaxM;
        track.confidence = Math.max(gainConf, 0.5) * meas.confidence;
        track.typeScore = TYPE_GAIN * meas.typeVote;
        track.disagreeFrames = 0;
        continue;
      }
      if (track.active) this.#decay(track, gainConf);
    }
  }

  #decay(track: Track, gainConf: number): void {
    track.confidence -= gainConf * track.confidence;
    if (track.confidence < this.#s.reportMinConfidence) track.active = false;
  }

  #estimate(tNs: bigint): LaneEstimate {
    const boundaries: LaneBoundary[] = [];
    for (const role of LANE_ROLES) {
      const t = this.#tracks.get(role)!;
      if (!t.active || t.confidence < this.#s.reportMinConfidence) continue;
      const c = t.coefficients;
      const lineType: LineType = t.typeScore > TYPE_DECIDE ? 'solid' : t.typeScore < -TYPE_DECIDE ? 'dashed' : 'unknown';
      boundaries.push({ role, coefficients: [c[0]!, c[1]!, c[2]!, c[3]!], xMinM: t.xMinM, xMaxM: t.xMaxM, confidence: Math.min(1, t.confidence), lineType });
    }
    const estimate: LaneEstimate = { tNs, boundaries };
    const left = boundaries.find((b) => b.role === 'ego-left');
    const right = boundaries.find((b) => b.role === 'ego-right');
    if (left !== undefined && right !== undefined) {
      estimate.laneWidthM = left.coefficients[0] - right.coefficients[0];
      estimate.lateralOffsetM = 0.5 * (left.coefficients[0] + right.coefficients[0]);
    }
    return estimate;
  }
}
