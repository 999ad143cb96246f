/**
 * Robust weighted least-squares fit of y(x) = c0 + c1 x + c2 x^2 + c3 x^3 to marking points in the
 * vehicle frame (metres). Solved in a centred, scaled variable s = (x - mid) / half for
 * conditioning, with ridge penalties on the s^2 and s^3 terms (a short or sparse point set cannot
 * produce a wild far-field curve), then iteratively reweighted (Huber) against outliers.
 * Allocates nothing: scratch lives at module level.
 */

/** Huber threshold on residuals (m): beyond it a point's weight falls as 1/|r|; about a marking's width. */
export const FIT_HUBER_M = 0.12;
/** Residual (m) beyond which a point is dropped after the first pass: half a marking-to-marking miss. */
export const FIT_OUTLIER_M = 0.45;
/** Reweighting passes after the initial fit. */
export const FIT_IRLS_PASSES = 3;
/** Ridge penalty on the s^2 / s^3 coefficients, relative to the total point weight (unitless, in s-space). */
export const FIT_RIDGE_QUADRATIC = 0.002;
export const FIT_RIDGE_CUBIC = 0.05;

const _ata = new Float64Array(16);
const _atb = new Float64Array(4);
const _a = new Float64Array(4);

export interface FitResult {
  /** Weighted RMS residual of the kept points (m). */
  rmsM: number;
  /** Sum of weights of the points kept in the final pass. */
  keptWeight: number;
  /** Points kept in the final pass. */
  keptCount: number;
}

/**
 * Fits `n` points (xs, ys in metres, ws >= 0) into `out` (c0..c3). `degree` 1..3 caps the polynomial.
 * Returns false (out untouched) when fewer than 3 points carry weight or the system is singular.
 */
export function fitPolynomialRobust(
  xs: Float32Array,
  ys: Float32Array,
  ws: Float32Array,
  n: number,
  degree: number,
  out: Float64Array,
  result: FitResult,
): boolean {
  if (n < 3) return false;
  let xMin = Infinity, xMax = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = xs[i]!;
    if (x < xMin) xMin = x;
    if (x > xMax) xMax = x;
  }
  const mid = 0.5 * (xMin + xMax);
  const half = Math.max(0.5 * (xMax - xMin), 1);
  const terms = Math.min(Math.max(degree, 1), 3) + 1;
  let haveFit = false;
  for (let pass = 0; pass <= FIT_IRLS_PASSES; pass++) {
    _ata.fill(0);
    _atb.fill(0);
    let total = 0, count = 0;
    for (let i = 0; i < n; i++) {
      let w = ws[i]!;
      if (!(w > 0)) continue;
      const s = (xs[i]! - mid) / half;
      if (haveFit) {
        const r = Math.abs(ys[i]! - (_a[0]! + s * (_a[1]! + s * (_a[2]! + s * _a[3]!))));
        if (r > FIT_OUTLIER_M) continue;
        if (r > FIT_HUBER_M) w *= FIT_HUBER_M / r;
      }
      total += w;
      count++;
      const y = ys[i]!;
      let pj = 1;
      for (let j = 0; j < terms; j++) {
        let pk = pj * pj;
        for (let k = j; k < terms; k++) {
          _ata[j * 4 + k] = _ata[j * 4 + k]! + w * pk;
          pk *= s;
        }
        _atb[j] = _atb[j]! + w * pj * y;
        pj *= s;
      }
    }
    if (count < 3 || !(total > 0)) return false;
    for (let j = 0; j < terms; j++) for (let k = 0; k < j; k++) _ata[j * 4 + k] = _ata[k * 4 + j]!;
    if (terms > 2) _ata[2 * 4 + 2] = _ata[2 * 4 + 2]! + FIT_RIDGE_QUADRATIC * total;
    if (terms > 3) _ata[3 * 4 + 3] = _ata[3 * 4 + 3]! + FIT_RIDGE_CUBIC * total;
    if (!solveInPlace(_ata, _atb, terms)) return false;
    _a.fill(0);
    for (let j = 0; j < terms; j++) _a[j] = _atb[j]!;
    haveFit = true;
  }
  // Residuals of the final fit.
  let sw = 0, swr = 0, kept = 0;
  for (let i = 0; i < n; i++) {
    const w = ws[i]!;
    if (!(w > 0)) continue;
    const s = (xs[i]! - mid) / half;
    const r = ys[i]! - (_a[0]! + s * (_a[1]! + s * (_a[2]! + s * _a[3]!)));
    if (Math.abs(r) > FIT_OUTLIER_M) continue;
    sw += w;
    swr += w * r * r;
    kept++;
  }
  result.rmsM = sw > 0 ? Math.sqrt(swr / sw) : Infinity;
  result.keptWeight = sw;
  result.keptCount = kept;
  // Back from s = (x - mid) / half to x.
  const b0 = _a[0]!, b1 = _a[1]! / half, b2 = _a[2]! / (half * half), b3 = _a[3]! / (half * half * half);
  out[3] = b3;
  out[2] = b2 - 3 * b3 * mid;
  out[1] = b1 - 2 * b2 * mid + 3 * b3 * mid * mid;
  out[0] = b0 - b1 * mid + b2 * mid * mid - b3 * mid * mid * mid;
  return true;
}

/** Gaussian elimination with partial pivoting on the leading n x n block of a 4x4 row-major matrix; solution into b. */
function solveInPlace(m: Float64Array, b: Float64Array, n: number): boolean {
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let row = col + 1; row < n; row++) if (Math.abs(m[row * 4 + col]!) > Math.abs(m[pivot * 4 + col]!)) pivot = row;
    const p = m[pivot * 4 + col]!;
    if (Math.abs(p) < 1e-12) return false;
    if (pivot !== col) {
      for (let k = 0; k < n; k++) {
        const t = m[col * 4 + k]!;
        m[col * 4 + k] = m[pivot * 4 + k]!;
        m[pivot * 4 + k] = t;
      }
      const t = b[col]!;
      b[col] = b[pivot]!;
      b[pivot] = t;
    }
    for (let row = col + 1; row < n; row++) {
      const f = m[row * 4 + col]! / m[col * 4 + col]!;
      if (f === 0) continue;
      for (let k = col; k < n; k++) m[row * 4 + k] = m[row * 4 + k]! - f * m[col * 4 + k]!;
      b[row] = b[row]! - f * b[col]!;
    }
  }
  for (let row = n - 1; row >= 0; row--) {
    let s = b[row]!;
    for (let k = row + 1; k < n; k++) s -= m[row * 4 + k]! * b[k]!;
    b[row] = s / m[row * 4 + row]!;
  }
  return true;
}
