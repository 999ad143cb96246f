/**
 * The smooth windshield model across the eyebox: for each eye position, a 2-D polynomial maps the
 * region-normalised panel position (x, y in [0, 1], top-down) to the ideal overlay uv it must show;
 * each polynomial coefficient is in turn a polynomial in the eye's lateral (vehicle y) and vertical
 * (z) offset - biquadratic when 9 or more eye positions support it (exact on a 3 x 3 grid), else
 * quadratic, linear or constant. The fore-aft eye coordinate (x) is not modelled: captures are taken
 * in one fore-aft plane of the eyebox.
 */
import type { Vec3M } from '../../render/optics-config.js';
import { SingularMatrixError, solveLeastSquares } from '../math/linalg.js';

/** Degree of the per-eye panel polynomial (28 terms): fits the optics' distortion to < 0.1 arcmin. */
export const PANEL_POLY_DEGREE = 6;
/** Eye-basis sizes tried, most first: biquadratic, quadratic, linear, constant. */
const EYE_BASIS_SIZES = [9, 6, 3, 1] as const;

/** Number of terms of a full 2-D polynomial of `degree`. */
export function panelTermCount(degree: number): number {
  return ((degree + 1) * (degree + 2)) / 2;
}

/** Writes the panel basis x'^a y'^b (x' = 2x - 1, y' = 2y - 1, a + b <= degree) into `out`. */
export function panelBasis(degree: number, x: number, y: number, out: Float64Array): Float64Array {
  const xs = 2 * x - 1, ys = 2 * y - 1;
  let k = 0;
  for (let d = 0; d <= degree; d++) {
    for (let a = d; a >= 0; a--) out[k++] = xs ** a * ys ** (d - a);
  }
  return out;
}

/** Writes the first `count` eye-basis terms [1, s, t, s^2, s t, t^2, s^2 t, s t^2, s^2 t^2] into `out`. */
function eyeBasis(count: number, s: number, t: number, out: Float64Array): Float64Array {
  const all = [1, s, t, s * s, s * t, t * t, s * s * t, s * t * t, s * s * t * t];
  for (let k = 0; k < count; k++) out[k] = all[k]!;
  return out;
}

/** Least-squares panel polynomial from samples (x, y) -> (u, v); returns terms x 2 coefficients. */
export function fitPanelPolynomial(degree: number, x: ArrayLike<number>, y: ArrayLike<number>, u: ArrayLike<number>, v: ArrayLike<number>): Float64Array {
  const t = panelTermCount(degree);
  const m = x.length;
  if (m < t) throw new RangeError(`fitPanelPolynomial: need at least ${t} samples for degree ${degree}, got ${m}`);
  const a = new Float64Array(m * t), b = new Float64Array(m * 2), row = new Float64Array(t);
  for (let r = 0; r < m; r++) {
    a.set(panelBasis(degree, x[r]!, y[r]!, row), r * t);
    b[r * 2] = u[r]!;
    b[r * 2 + 1] = v[r]!;
  }
  return solveLeastSquares(a, m, t, b, 2);
}

/** The fitted model (see the file comment). */
export class EyeboxWarpModel {
  /** Panel polynomial degree. */
  readonly degree: number;
  /** Eye-basis terms used (9, 6, 3 or 1). */
  readonly eyeTerms: number;
  /** Centre and half ranges of the eye offsets the basis is scaled by, metres. */
  readonly eyeCentreM: Readonly<Vec3M>;
  readonly eyeHalfRangeYM: number;
  readonly eyeHalfRangeZM: number;
  /** Coefficients [eyeTerm][panelTerm][u, v]. */
  readonly coefficients: Float64Array;
  readonly #eye = new Float64Array(9);
  readonly #panel: Float64Array;
  readonly #at: Float64Array;

  private constructor(degree: number, eyeTerms: number, centre: Vec3M, hy: number, hz: number, coefficients: Float64Array) {
    this.degree = degree;
    this.eyeTerms = eyeTerms;
    this.eyeCentreM = Object.freeze(centre);
    this.eyeHalfRangeYM = hy;
    this.eyeHalfRangeZM = hz;
    this.coefficients = coefficients;
    this.#panel = new Float64Array(panelTermCount(degree));
    this.#at = new Float64Array(panelTermCount(degree) * 2);
  }

  /** Fits the eye dependence of per-eye panel polynomials (all of `degree`). */
  static fit(degree: number, eyes: readonly { eyeM: Vec3M; coefficients: Float64Array }[]): EyeboxWarpModel {
    const n = eyes.length;
    if (n === 0) throw new RangeError(`EyeboxWarpModel.fit: 'eyes' must not be empty`);
    const t = panelTermCount(degree);
    let lo = [Infinity, Infinity], hi = [-Infinity, -Infinity], sx = 0;
    for (const e of eyes) {
      if (e.coefficients.length !== t * 2) throw new RangeError(`EyeboxWarpModel.fit: coefficients must have ${t * 2} values, got ${e.coefficients.length}`);
      lo = [Math.min(lo[0]!, e.eyeM.y), Math.min(lo[1]!, e.eyeM.z)];
      hi = [Math.max(hi[0]!, e.eyeM.y), Math.max(hi[1]!, e.eyeM.z)];
      sx += e.eyeM.x;
    }
    const centre = { x: sx / n, y: (lo[0]! + hi[0]!) / 2, z: (lo[1]! + hi[1]!) / 2 };
    const hy = Math.max(1e-6, (hi[0]! - lo[0]!) / 2), hz = Math.max(1e-6, (hi[1]! - lo[1]!) / 2);
    const row = new Float64Array(9);
    for (const count of EYE_BASIS_SIZES) {
      if (count > n) continue;
      const a = new Float64Array(n * count), b = new Float64Array(n * t * 2);
      eyes.forEach((e, r) => {
        a.set(eyeBasis(count, (e.eyeM.y - centre.y) / hy, (e.eyeM.z - centre.z) / hz, row).subarray(0, count), r * count);
        b.set(e.coefficients, r * t * 2);
      });
      try {
        const c = solveLeastSquares(a, n, count, b, t * 2);
        return new EyeboxWarpModel(degree, count, centre, hy, hz, c);
      } catch (error) {
        if (!(error instanceof SingularMatrixError)) throw error;
      }
    }
    throw new RangeError('EyeboxWarpModel.fit: eye positions support no eye basis');
  }

  /** Panel-polynomial coefficients (terms x 2) for an eye at `eyeM`. Returns an internal buffer. */
  coefficientsAt(eyeM: Readonly<Vec3M>): Float64Array {
    const q = eyeBasis(this.eyeTerms, (eyeM.y - this.eyeCentreM.y) / this.eyeHalfRangeYM, (eyeM.z - this.eyeCentreM.z) / this.eyeHalfRangeZM, this.#eye);
    const len = this.#at.length;
    this.#at.fill(0);
    for (let k = 0; k < this.eyeTerms; k++) {
      const w = q[k]!;
      for (let c = 0; c < len; c++) this.#at[c] = this.#at[c]! + w * this.coefficients[k * len + c]!;
    }
    return this.#at;
  }

  /** uv for panel position (x, y) with coefficients from `coefficientsAt`; writes [u, v] into `out`. */
  evaluate(coefficients: Float64Array, x: number, y: number, out: Float64Array): Float64Array {
    const basis = panelBasis(this.degree, x, y, this.#panel);
    let u = 0, v = 0;
    for (let k = 0; k < basis.length; k++) {
      u += basis[k]! * coefficients[k * 2]!;
      v += basis[k]! * coefficients[k * 2 + 1]!;
    }
    out[0] = u;
    out[1] = v;
    return out;
  }
}
