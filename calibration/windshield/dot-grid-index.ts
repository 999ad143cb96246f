/**
 * Assigns grid indices (i, j) to detected dots, robust to missing and spurious dots:
 * 1. lattice steps: from the predicted dot positions when given (the ideal optics model), else the
 *    median nearest-neighbour vectors along the image axes (grid within about +/-25 deg of them);
 * 2. seed: the dot nearest the middle of all dots that has lattice neighbours on all four sides;
 * 3. growth: breadth-first, predicting each neighbour from its indexed neighbours (linear
 *    extrapolation of the local lattice) and accepting the nearest unassigned dot within a gate;
 * 4. consistency: a cubic polynomial (i, j) -> image over all indexed dots, refitted after
 *    dropping dots off it by more than a gate;
 * 5. absolute offset: the relative indices are shifted to the grid by the offset that best matches
 *    the predicted positions (or, without predictions, the observed extent must be the full grid).
 */
import { solveLeastSquares } from '../math/linalg.js';
import type { DetectedDot } from './dot-detection.js';

/** Gate of the growth step, fraction of the local lattice step. */
export const GROWTH_GATE_FRACTION = 0.3;
/** Gate of the polynomial consistency check, fraction of the smaller lattice step. */
export const CONSISTENCY_GATE_FRACTION = 0.12;
/** Degree of the consistency polynomial (i, j) -> image position. */
const CONSISTENCY_DEGREE = 3;
/** Lattice neighbours: a step counts as horizontal when |dy| < this x |dx| (and vice versa). */
const AXIS_SLOPE_LIMIT = 0.5;

/** The grid to index against. */
export interface DotGridSpec {
  cols: number;
  rows: number;
  /** Optional predicted image position of each grid dot, x, y per dot row-major (NaN = unknown). */
  predictedPx?: Float64Array;
}

/** Result of indexDotGrid. */
export interface DotGridIndexing {
  /** Grid index (j * cols + i) of each input dot, -1 when not part of the grid. */
  nodeOfDot: Int32Array;
  /** Input dot of each grid node, -1 when missing. */
  dotOfNode: Int32Array;
  /** Dots indexed. */
  indexed: number;
  /** Grid nodes without a dot. */
  missing: number;
  /** Detected dots not assigned to the grid. */
  spurious: number;
}

const key = (p: number, q: number): number => (p + 2048) * 4096 + (q + 2048);

/** Indexes `dots` against `grid` (see the file comment). Never throws on bad geometry; indexes what it can. */
export function indexDotGrid(dots: readonly DetectedDot[], grid: DotGridSpec): DotGridIndexing {
  const { cols, rows, predictedPx } = grid;
  if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 2 || rows < 2) {
    throw new RangeError(`indexDotGrid: 'grid' must be at least 2 x 2, got ${cols} x ${rows}`);
  }
  if (predictedPx !== undefined && predictedPx.length !== cols * rows * 2) {
    throw new RangeError(`indexDotGrid: 'grid.predictedPx' must have ${cols * rows * 2} values, got ${predictedPx.length}`);
  }
  const n = dots.length;
  const result: DotGridIndexing = { nodeOfDot: new Int32Array(n).fill(-1), dotOfNode: new Int32Array(cols * rows).fill(-1), indexed: 0, missing: cols * rows, spurious: n };
  if (n < 4) return result;
  const xs = Float64Array.from(dots, (d) => d.xPx);
  const ys = Float64Array.from(dots, (d) => d.yPx);

  const steps = latticeSteps(xs, ys, cols, rows, predictedPx);
  if (steps === undefined) return result;
  const [ax, ay, bx, by] = steps;
  const stepA = Math.hypot(ax, ay), stepB = Math.hypot(bx, by);

  const nearest = (x: number, y: number, gate: number, taken: Int32Array): number => {
    let best = -1, bestD = gate * gate;
    for (let k = 0; k < n; k++) {
      if (taken[k] !== -1) continue;
      const d = (xs[k]! - x) ** 2 + (ys[k]! - y) ** 2;
      if (d < bestD) { bestD = d; best = k; }
    }
    return best;
  };
  const free = new Int32Array(n).fill(-1);

  // Seed: nearest to the median position with neighbours on all four sides.
  const mx = median(xs), my = median(ys);
  const order = Array.from({ length: n }, (_, k) => k).sort((p, q) => (xs[p]! - mx) ** 2 + (ys[p]! - my) ** 2 - ((xs[q]! - mx) ** 2 + (ys[q]! - my) ** 2));
  let seed = -1;
  for (const k of order.slice(0, 50)) {
    let sides = 0;
    for (const [sx, sy, s] of [[ax, ay, stepA], [-ax, -ay, stepA], [bx, by, stepB], [-bx, -by, stepB]] as const) {
      const other = nearest(xs[k]! + sx, ys[k]! + sy, GROWTH_GATE_FRACTION * s, free);
      if (other >= 0 && other !== k) sides++;
    }
    if (sides === 4) { seed = k; break; }
  }
  if (seed < 0) return result;

  // Growth over relative indices (p, q).
  const dotAt = new Map<number, number>();
  const pOf = new Int32Array(n), qOf = new Int32Array(n);
  const owner = new Int32Array(n).fill(-1);
  const assign = (k: number, p: number, q: number): void => {
    dotAt.set(key(p, q), k);
    owner[k] = 1;
    pOf[k] = p;
    qOf[k] = q;
  };
  assign(seed, 0, 0);
  const queue = [seed];
  for (let head = 0; head < queue.length; head++) {
    const k = queue[head]!;
    const p = pOf[k]!, q = qOf[k]!;
    for (const [dp, dq] of [[1, 0], [-1, 0], [0, 1], [0, -1]] as const) {
      if (dotAt.has(key(p + dp, q + dq))) continue;
      // Local step: from the opposite neighbour (linear extrapolation), else the global step.
      const back = dotAt.get(key(p - dp, q - dq));
      let sx: number, sy: number;
      if (back !== undefined) {
        sx = xs[k]! - xs[back]!;
        sy = ys[k]! - ys[back]!;
      } else if (dp !== 0) {
        sx = dp * ax; sy = dp * ay;
      } else {
        sx = dq * bx; sy = dq * by;
      }
      const found = nearest(xs[k]! + sx, ys[k]! + sy, GROWTH_GATE_FRACTION * Math.hypot(sx, sy), owner);
      if (found >= 0) {
        assign(found, p + dp, q + dq);
        queue.push(found);
      }
    }
  }

  // Consistency: polynomial (p, q) -> (x, y); drop dots off it, twice.
  let members = [...dotAt.values()];
  const gate = CONSISTENCY_GATE_FRACTION * Math.min(stepA, stepB);
  for (let pass = 0; pass < 2; pass++) {
    const residual = polynomialResiduals(members, pOf, qOf, xs, ys);
    if (residual === undefined) break;
    members = members.filter((_, m) => residual[m]! <= gate);
  }

  // Absolute offset.
  let minP = Infinity, maxP = -Infinity, minQ = Infinity, maxQ = -Infinity;
  for (const k of members) {
    minP = Math.min(minP, pOf[k]!); maxP = Math.max(maxP, pOf[k]!);
    minQ = Math.min(minQ, qOf[k]!); maxQ = Math.max(maxQ, qOf[k]!);
  }
  let offI = -minP, offJ = -minQ;
  if (predictedPx !== undefined) {
    // Most members inside the grid first (the observed extent pins the offset when complete), then
    // the smallest mean squared distance to the predictions.
    let bestCount = -1, bestScore = Infinity;
    for (let oi = -maxP; oi <= cols - 1 - minP; oi++) {
      for (let oj = -maxQ; oj <= rows - 1 - minQ; oj++) {
        let sum = 0, count = 0, inside = 0;
        for (const k of members) {
          const i = pOf[k]! + oi, j = qOf[k]! + oj;
          if (i < 0 || j < 0 || i >= cols || j >= rows) continue;
          inside++;
          const px = predictedPx[(j * cols + i) * 2]!, py = predictedPx[(j * cols + i) * 2 + 1]!;
          if (!Number.isFinite(px)) continue;
          sum += (xs[k]! - px) ** 2 + (ys[k]! - py) ** 2;
          count++;
        }
        const score = count === 0 ? Infinity : sum / count;
        if (inside > bestCount || (inside === bestCount && score < bestScore)) {
          bestCount = inside;
          bestScore = score;
          offI = oi;
          offJ = oj;
        }
      }
    }
  } else if (maxP - minP + 1 !== cols || maxQ - minQ + 1 !== rows) {
    // Without predictions only a full-extent grid has a known offset; keep the dots anchored at the top-left.
    offI = -minP;
    offJ = -minQ;
  }
  for (const k of members) {
    const i = pOf[k]! + offI, j = qOf[k]! + offJ;
    if (i < 0 || j < 0 || i >= cols || j >= rows) continue;
    result.nodeOfDot[k] = j * cols + i;
    result.dotOfNode[j * cols + i] = k;
    result.indexed++;
  }
  result.missing = cols * rows - result.indexed;
  result.spurious = n - result.indexed;
  return result;
}

/** Lattice steps [ax, ay, bx, by] along i and j. */
function latticeSteps(xs: Float64Array, ys: Float64Array, cols: number, rows: number, predictedPx: Float64Array | undefined): [number, number, number, number] | undefined {
  if (predictedPx !== undefined) {
    const ci = Math.floor(cols / 2), cj = Math.floor(rows / 2);
    const at = (i: number, j: number, c: number): number => predictedPx[(j * cols + i) * 2 + c]!;
    const a: [number, number] = [at(ci + 1, cj, 0) - at(ci, cj, 0), at(ci + 1, cj, 1) - at(ci, cj, 1)];
    const b: [number, number] = [at(ci, cj + 1, 0) - at(ci, cj, 0), at(ci, cj + 1, 1) - at(ci, cj, 1)];
    if ([...a, ...b].every(Number.isFinite)) return [a[0], a[1], b[0], b[1]];
  }
  const n = xs.length;
  const hx: number[] = [], hy: number[] = [], vx: number[] = [], vy: number[] = [];
  for (let k = 0; k < n; k++) {
    // Nearest neighbour along each axis direction.
    let bestH = Infinity, bestV = Infinity, h: [number, number] = [NaN, NaN], v: [number, number] = [NaN, NaN];
    for (let m = 0; m < n; m++) {
      const dx = xs[m]! - xs[k]!, dy = ys[m]! - ys[k]!;
      const d = dx * dx + dy * dy;
      if (dx > 0 && Math.abs(dy) < AXIS_SLOPE_LIMIT * dx && d < bestH) { bestH = d; h = [dx, dy]; }
      if (dy > 0 && Math.abs(dx) < AXIS_SLOPE_LIMIT * dy && d < bestV) { bestV = d; v = [dx, dy]; }
    }
    if (Number.isFinite(bestH)) { hx.push(h[0]); hy.push(h[1]); }
    if (Number.isFinite(bestV)) { vx.push(v[0]); vy.push(v[1]); }
  }
  if (hx.length < 3 || vx.length < 3) return undefined;
  return [median(Float64Array.from(hx)), median(Float64Array.from(hy)), median(Float64Array.from(vx)), median(Float64Array.from(vy))];
}

/** Distance of each member from a least-squares polynomial (p, q) -> (x, y); undefined if too few. */
function polynomialResiduals(members: number[], pOf: Int32Array, qOf: Int32Array, xs: Float64Array, ys: Float64Array): Float64Array | undefined {
  const terms: [number, number][] = [];
  for (let d = 0; d <= CONSISTENCY_DEGREE; d++) for (let a = d; a >= 0; a--) terms.push([a, d - a]);
  const m = members.length, t = terms.length;
  if (m < 2 * t) return undefined;
  let pMax = 1, qMax = 1;
  for (const k of members) { pMax = Math.max(pMax, Math.abs(pOf[k]!)); qMax = Math.max(qMax, Math.abs(qOf[k]!)); }
  const a = new Float64Array(m * t), b = new Float64Array(m * 2);
  members.forEach((k, r) => {
    const p = pOf[k]! / pMax, q = qOf[k]! / qMax;
    terms.forEach(([e, f], c) => { a[r * t + c] = p ** e * q ** f; });
    b[r * 2] = xs[k]!;
    b[r * 2 + 1] = ys[k]!;
  });
  let coeff: Float64Array;
  try {
    coeff = solveLeastSquares(a, m, t, b, 2);
  } catch {
    return undefined;
  }
  const out = new Float64Array(m);
  for (let r = 0; r < m; r++) {
    let x = 0, y = 0;
    for (let c = 0; c < t; c++) { x += a[r * t + c]! * coeff[c * 2]!; y += a[r * t + c]! * coeff[c * 2 + 1]!; }
    out[r] = Math.hypot(x - b[r * 2]!, y - b[r * 2 + 1]!);
  }
  return out;
}

function median(values: Float64Array): number {
  const s = Float64Array.from(values).sort();
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
