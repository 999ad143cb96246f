/**
 * Image quality metrics for the ISP evaluation: PSNR, SSIM (Wang et al. 2004) against a clean
 * reference for denoising, and MEF-SSIM (Ma, Zeng, Wang 2015) against the input brackets for
 * exposure fusion, where no reference exists.
 *
 * 8-bit formats carry code values in [0, 255]; float formats (rgbf32, grayf32) encoded values in
 * [0, 1]. Colour metrics use R, G, B and ignore alpha.
 */

import type { ImageView, PixelFormat } from '../../pipeline/image.js';

const FLOAT_FORMATS: ReadonlySet<PixelFormat> = new Set(['rgbf32', 'grayf32']);

const isFloat = (format: PixelFormat): boolean => FLOAT_FORMATS.has(format);

/** Channels a metric looks at: R, G, B for colour (alpha carries no picture), or the grey one. */
const metricChannels = (view: ImageView): number => (view.channels === 1 ? 1 : 3);

const size = (view: ImageView): string => `${view.width}x${view.height}`;

function checkPair(fn: string, a: ImageView, b: ImageView, aName: string, bName: string): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new RangeError(`${fn}: images differ in size: '${aName}' is ${size(a)}, '${bName}' is ${size(b)}`);
  }
  if (a.format !== b.format) {
    throw new TypeError(`${fn}: images differ in format: '${aName}' is ${a.format}, '${bName}' is ${b.format}`);
  }
}

/**
 * Row `y` of channel `c` into `out` (length width). Float images are checked for NaN/Infinity
 * here, as they are read, because one NaN would silently turn every metric into NaN.
 */
function readRow(fn: string, name: string, view: ImageView, y: number, c: number, out: Float64Array, at = 0): void {
  const { width, data, pixelStride } = view;
  let src = view.offset + y * view.rowStride + c;
  if (!isFloat(view.format)) {
    for (let x = 0; x < width; x++, src += pixelStride) out[at + x] = data[src]!;
    return;
  }
  for (let x = 0; x < width; x++, src += pixelStride) {
    const v = data[src]!;
    if (!Number.isFinite(v)) throw new RangeError(`${fn}: '${name}' has a non-finite value (${v}) at pixel (${x}, ${y}) channel ${c}`);
    out[at + x] = v;
  }
}

/** Channel `c` of `view` as a packed Float64 plane. */
function planeOf(fn: string, name: string, view: ImageView, c: number): Float64Array {
  const out = new Float64Array(view.width * view.height);
  for (let y = 0; y < view.height; y++) readRow(fn, name, view, y, c, out, y * view.width);
  return out;
}

// ---------------------------------------------------------------------------------------------
// PSNR

/**
 * Peak signal-to-noise ratio in dB, 10 log10(peak^2 / MSE), the MSE taken over every pixel of
 * R, G, B together (or the grey channel). `peak` defaults to 255 for 8-bit and 1 for float
 * images. Identical images give Infinity.
 */
export function psnr(reference: ImageView, test: ImageView, peak?: number): number {
  checkPair('psnr', reference, test, 'reference', 'test');
  const p = peak ?? (isFloat(reference.format) ? 1 : 255);
  if (!(Number.isFinite(p) && p > 0)) throw new RangeError(`psnr: 'peak' must be a positive finite number, got ${peak}`);
  const channels = metricChannels(reference);
  let sum = 0;
  for (let c = 0; c < channels; c++) {
    const a = planeOf('psnr', 'reference', reference, c);
    const b = planeOf('psnr', 'test', test, c);
    for (let i = 0; i < a.length; i++) {
      const d = a[i]! - b[i]!;
      sum += d * d;
    }
  }
  const mse = sum / (channels * reference.width * reference.height);
  return mse === 0 ? Infinity : 10 * Math.log10((p * p) / mse);
}

// ---------------------------------------------------------------------------------------------
// Filtering ('valid' positions only: the window lies wholly inside the image, no padding)

/** Side of the SSIM / MEF-SSIM window. */
export const SSIM_WINDOW = 11;
/** Standard deviation of the SSIM Gaussian window, pixels. */
export const SSIM_SIGMA = 1.5;

/** MATLAB's fspecial('gaussian', size, sigma) is the outer product of this 1-D kernel with itself. */
function gaussianKernel(n: number, sigma: number): Float64Array {
  const k = new Float64Array(n);
  const half = (n - 1) / 2;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += k[i] = Math.exp(-((i - half) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < n; i++) k[i]! /= sum;
  return k;
}

const GAUSSIAN_11 = gaussianKernel(SSIM_WINDOW, SSIM_SIGMA);

/** Centre-out taps of GAUSSIAN_11, for the unrolled passes. */
const G_TAPS = [5, 4, 3, 2, 1, 0].map((i) => GAUSSIAN_11[i]!) as [number, number, number, number, number, number];

/**
 * The 11-tap Gaussian along src[from .. from + count + 10), written to dst[at + j * stride] for
 * j < count. The last 11 samples ride in locals, so each output costs one load (and one bounds
 * check) instead of eleven; that, more than the arithmetic, is what the JIT's time goes to.
 */
function gauss11(src: Float64Array, from: number, count: number, dst: Float64Array, at: number, stride: number): void {
  const [k0, k1, k2, k3, k4, k5] = G_TAPS;
  let a0 = 0;
  let a1 = src[from]!;
  let a2 = src[from + 1]!;
  let a3 = src[from + 2]!;
  let a4 = src[from + 3]!;
  let a5 = src[from + 4]!;
  let a6 = src[from + 5]!;
  let a7 = src[from + 6]!;
  let a8 = src[from + 7]!;
  let a9 = src[from + 8]!;
  let a10 = src[from + 9]!;
  for (let j = 0, s = from + 10, d = at; j < count; j++, s++, d += stride) {
    a0 = a1;
    a1 = a2;
    a2 = a3;
    a3 = a4;
    a4 = a5;
    a5 = a6;
    a6 = a7;
    a7 = a8;
    a8 = a9;
    a9 = a10;
    a10 = src[s]!;
    dst[d] = k0 * a5 + k1 * (a4 + a6) + k2 * (a3 + a7) + k3 * (a2 + a8) + k4 * (a1 + a9) + k5 * (a0 + a10);
  }
}

/**
 * The 11x11 Gaussian (sigma 1.5) mean of a w x h plane at 'valid' positions, (w - 10) x (h - 10)
 * row-major: horizontally into a transposed plane, then down each (now contiguous) column.
 */
function gaussValid(src: Float64Array, w: number, h: number): Float64Array {
  const ow = w - SSIM_WINDOW + 1;
  const oh = h - SSIM_WINDOW + 1;
  const t = new Float64Array(ow * h);
  for (let r = 0; r < h; r++) gauss11(src, r * w, ow, t, r, h);
  const out = new Float64Array(ow * oh);
  for (let i = 0; i < ow; i++) gauss11(t, i * h, oh, out, i, ow);
  return out;
}

/**
 * Mean over every n x n window ('valid'), by running sums. Sums of 8-bit values and their
 * products are integers, exact in a double, so the running sums do not drift.
 */
function boxMeanValid(src: Float64Array, w: number, h: number, n: number): Float64Array {
  const ow = w - n + 1;
  const oh = h - n + 1;
  const tmp = new Float64Array(ow * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let s = 0;
    for (let i = 0; i < n; i++) s += src[row + i]!;
    tmp[y * ow] = s;
    for (let x = 1; x < ow; x++) {
      s += src[row + x + n - 1]! - src[row + x - 1]!;
      tmp[y * ow + x] = s;
    }
  }
  const out = new Float64Array(ow * oh);
  const area = n * n;
  const col = new Float64Array(ow);
  for (let i = 0; i < n; i++) for (let x = 0; x < ow; x++) col[x]! += tmp[i * ow + x]!;
  for (let x = 0; x < ow; x++) out[x] = col[x]! / area;
  for (let y = 1; y < oh; y++) {
    const add = (y + n - 1) * ow;
    const sub = (y - 1) * ow;
    for (let x = 0; x < ow; x++) {
      col[x]! += tmp[add + x]! - tmp[sub + x]!;
      out[y * ow + x] = col[x]! / area;
    }
  }
  return out;
}

function product(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! * b[i]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// SSIM

const SSIM_K1 = 0.01;
const SSIM_K2 = 0.03;

/** Planes reused across the channels of one `ssim` call. */
interface SsimWork {
  x: Float64Array;
  y: Float64Array;
  sq: Float64Array;
  xy: Float64Array;
  /** Horizontal sums, transposed (column i at i * height) so the vertical pass reads contiguously. */
  tx: Float64Array;
  ty: Float64Array;
  tsq: Float64Array;
  txy: Float64Array;
  /** One column's vertical sums. */
  mx: Float64Array;
  my: Float64Array;
  msq: Float64Array;
  mxy: Float64Array;
}

function ssimWork(w: number, h: number): SsimWork {
  const ow = w - SSIM_WINDOW + 1;
  const oh = h - SSIM_WINDOW + 1;
  const f = (length: number): Float64Array => new Float64Array(length);
  return { x: f(w), y: f(w), sq: f(w), xy: f(w), tx: f(ow * h), ty: f(ow * h), tsq: f(ow * h), txy: f(ow * h), mx: f(oh), my: f(oh), msq: f(oh), mxy: f(oh) };
}

/**
 * Mean SSIM of channel `c` of two images from four local Gaussian means: x, y, x^2 + y^2 and xy
 * (SSIM needs only the sum of the two variances). Each row is filtered horizontally into
 * transposed planes (the writes walk ~1270 cache lines, which stay resident), then each column
 * vertically, contiguous again, and scored at once.
 */
function ssimChannel(reference: ImageView, test: ImageView, c: number, range: number, work: SsimWork): number {
  const { width: w, height: h } = reference;
  const ow = w - SSIM_WINDOW + 1;
  const oh = h - SSIM_WINDOW + 1;
  const c1 = (SSIM_K1 * range) ** 2;
  const c2 = (SSIM_K2 * range) ** 2;
  const { x, y, sq, xy, tx, ty, tsq, txy, mx, my, msq, mxy } = work;
  for (let r = 0; r < h; r++) {
    readRow('ssim', 'reference', reference, r, c, x);
    readRow('ssim', 'test', test, r, c, y);
    for (let i = 0; i < w; i++) {
      const a = x[i]!;
      const b = y[i]!;
      sq[i] = a * a + b * b;
      xy[i] = a * b;
    }
    gauss11(x, 0, ow, tx, r, h);
    gauss11(y, 0, ow, ty, r, h);
    gauss11(sq, 0, ow, tsq, r, h);
    gauss11(xy, 0, ow, txy, r, h);
  }
  let total = 0;
  for (let i = 0; i < ow; i++) {
    const col = i * h;
    gauss11(tx, col, oh, mx, 0, 1);
    gauss11(ty, col, oh, my, 0, 1);
    gauss11(tsq, col, oh, msq, 0, 1);
    gauss11(txy, col, oh, mxy, 0, 1);
    for (let j = 0; j < oh; j++) {
      const ux = mx[j]!;
      const uy = my[j]!;
      const uxy = ux * uy;
      const usq = ux * ux + uy * uy;
      total += ((2 * uxy + c1) * (2 * (mxy[j]! - uxy) + c2)) / ((usq + c1) * (msq[j]! - usq + c2));
    }
  }
  return total / (ow * oh);
}

/**
 * Structural similarity (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004), as their ssim_index.m:
 *
 *   SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))
 *
 * with local statistics under an 11x11 Gaussian window (sigma 1.5, normalised to sum 1),
 * C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 255 for 8-bit and 1 for float images. The map is taken at
 * 'valid' window positions only (no padding, as ssim_index.m's filter2(..., 'valid')) and
 * averaged; there is no automatic downsampling (the later ssim.m's). Colour images: the mean of
 * the R, G and B scores, each channel computed on its own (the usual convention for RGB, e.g.
 * scikit-image's channel_axis), not on luma.
 *
 * Both images need at least 11x11 pixels. Identical images give exactly 1.
 */
export function ssim(reference: ImageView, test: ImageView): number {
  checkPair('ssim', reference, test, 'reference', 'test');
  const { width: w, height: h } = reference;
  if (w < SSIM_WINDOW || h < SSIM_WINDOW) {
    throw new RangeError(`ssim: images must be at least ${SSIM_WINDOW}x${SSIM_WINDOW} pixels (the window), got ${size(reference)}`);
  }
  const range = isFloat(reference.format) ? 1 : 255;
  const channels = metricChannels(reference);
  const work = ssimWork(w, h);
  let sum = 0;
  for (let c = 0; c < channels; c++) sum += ssimChannel(reference, test, c, range, work);
  return sum / channels;
}

// ---------------------------------------------------------------------------------------------
// MEF-SSIM

/**
 * MATLAB rgb2gray's weights (ITU-R BT.601 luma, as the inverse of the NTSC YIQ matrix), the
 * conversion the MEF-SSIM authors' demo applies to brackets and fused image alike.
 */
const GREY_WEIGHTS = [0.298936021293775, 0.587043074451121, 0.114020904255103] as const;

/**
 * Grey plane in [0, 255]. 8-bit colour is rounded to integers like rgb2gray on uint8 images (the
 * authors' demo feeds uint8 through rgb2gray); float images are scaled by 255 and not rounded.
 */
function greyPlane(fn: string, name: string, view: ImageView): Float64Array {
  const scale = isFloat(view.format) ? 255 : 1;
  if (view.channels === 1) {
    const p = planeOf(fn, name, view, 0);
    if (scale !== 1) for (let i = 0; i < p.length; i++) p[i]! *= scale;
    return p;
  }
  const r = planeOf(fn, name, view, 0);
  const g = planeOf(fn, name, view, 1);
  const b = planeOf(fn, name, view, 2);
  const out = new Float64Array(r.length);
  const [wr, wg, wb] = GREY_WEIGHTS;
  for (let i = 0; i < out.length; i++) {
    const v = wr * r[i]! + wg * g[i]! + wb * b[i]!;
    out[i] = scale === 1 ? Math.round(v) : v * scale;
  }
  return out;
}

const MEF_C = (0.03 * 255) ** 2;
/** MATLAB's eps, which the authors' code adds to keep ratios and weights finite. */
const EPS = Number.EPSILON;
/**
 * Squared patch norms below this are flat patches. Integer grey patches that are not flat have
 * >= ~1, and their 2x2 means at the coarsest scale (multiples of 1/16) >= ~0.004.
 */
const FLAT = 1e-6;

/**
 * Single-scale MEF-SSIM of grey planes (w x h, values in [0, 255]); the mean of the quality map
 * over 'valid' window positions. See `mefSsim` for the formula.
 *
 * The authors' code builds the desired patch explicitly per window; here it is never built: the
 * desired patch is r = sum_k a_k (x_k - mu_k) for per-window scalars a_k, so its statistics follow
 * from local (co)variances of the brackets, all of which are separable filters of products.
 */
function mefSsimPlanes(brackets: readonly Float64Array[], fused: Float64Array, w: number, h: number): number {
  const n = SSIM_WINDOW;
  const area = n * n;
  const K = brackets.length;
  const len = (w - n + 1) * (h - n + 1);

  // Box-window statistics: the patch means mu_k, and cov[k * K + l] (the same plane as
  // cov[l * K + k]) the sum over the patch of (x_k - mu_k)(x_l - mu_l).
  const boxMean = brackets.map((x) => boxMeanValid(x, w, h, n));
  const cov: Float64Array[] = new Array<Float64Array>(K * K);
  for (let k = 0; k < K; k++) {
    for (let l = k; l < K; l++) {
      const c = boxMeanValid(product(brackets[k]!, brackets[l]!), w, h, n);
      const mk = boxMean[k]!;
      const ml = boxMean[l]!;
      for (let i = 0; i < len; i++) c[i] = area * (c[i]! - mk[i]! * ml[i]!);
      cov[k * K + l] = cov[l * K + k] = c;
    }
  }
  // Flat patches are exactly zero in the authors' code; here E[x^2] - mu^2 leaves rounding noise,
  // which the weights below would amplify, so zero them.
  const flat = brackets.map(() => new Uint8Array(len));
  for (let k = 0; k < K; k++) {
    const ckk = cov[k * K + k]!;
    for (let i = 0; i < len; i++) {
      if (ckk[i]! >= FLAT) continue;
      flat[k]![i] = 1;
      for (let l = 0; l < K; l++) cov[k * K + l]![i] = 0;
    }
  }

  // Per window: the scalars a_k of the desired patch r = sum_k a_k (x_k - mu_k).
  const coef = Array.from({ length: K }, () => new Float64Array(len));
  const ed = new Float64Array(K);
  const wt = new Float64Array(K);
  const bk = new Float64Array(K);
  for (let i = 0; i < len; i++) {
    let maxEd = 0;
    let denominator = 0;
    let numeratorSq = 0;
    for (let k = 0; k < K; k++) {
      const norm = Math.sqrt(Math.max(cov[k * K + k]![i]!, 0));
      ed[k] = norm + 0.001;
      if (ed[k]! > maxEd) maxEd = ed[k]!;
      denominator += norm;
      for (let l = 0; l < K; l++) numeratorSq += cov[k * K + l]![i]!;
    }
    // Structure consistency R = ||sum_k (x_k - mu_k)|| / sum_k ||x_k - mu_k|| sets the exponent.
    let R = (Math.sqrt(Math.max(numeratorSq, 0)) + EPS) / (denominator + EPS);
    if (R > 1) R = 1 - EPS;
    const p = Math.min(Math.tan((Math.PI / 2) * R), 10);
    let wsum = 0;
    for (let k = 0; k < K; k++) wsum += wt[k] = (ed[k]! / n) ** p + EPS;
    // b_k = w_k / ed_k; ||sum_k b_k (x_k - mu_k)||^2 from the box covariances.
    for (let k = 0; k < K; k++) bk[k] = wt[k]! / wsum / ed[k]!;
    let rSq = 0;
    for (let k = 0; k < K; k++) for (let l = 0; l < K; l++) rSq += bk[k]! * bk[l]! * cov[k * K + l]![i]!;
    // Rescale to length max_k ||x_k - mu_k|| (the desired contrast); a zero patch stays zero.
    const s = rSq > 0 ? maxEd / Math.sqrt(rSq) : 0;
    for (let k = 0; k < K; k++) coef[k]![i] = s * bk[k]!;
  }
  cov.length = 0; // released before the Gaussian planes are allocated

  // Gaussian-window statistics: variance of r, of the fused patch y, and their covariance.
  const gMean = brackets.map((x) => gaussValid(x, w, h));
  const fMean = gaussValid(fused, w, h);
  const varR = new Float64Array(len);
  const covRY = new Float64Array(len);
  for (let k = 0; k < K; k++) {
    const gk = gMean[k]!;
    const ak = coef[k]!;
    const fk = flat[k]!;
    const cky = gaussValid(product(brackets[k]!, fused), w, h);
    for (let i = 0; i < len; i++) if (!fk[i]) covRY[i]! += ak[i]! * (cky[i]! - gk[i]! * fMean[i]!);
    for (let l = k; l < K; l++) {
      const gl = gMean[l]!;
      const al = coef[l]!;
      const fl = flat[l]!;
      const ckl = gaussValid(product(brackets[k]!, brackets[l]!), w, h);
      const twice = k === l ? 1 : 2;
      for (let i = 0; i < len; i++) if (!fk[i] && !fl[i]) varR[i]! += twice * ak[i]! * al[i]! * (ckl[i]! - gk[i]! * gl[i]!);
    }
  }
  const fSq = gaussValid(product(fused, fused), w, h);
  let sum = 0;
  for (let i = 0; i < len; i++) {
    const varY = fSq[i]! - fMean[i]! * fMean[i]!;
    sum += (2 * covRY[i]! + MEF_C) / (Math.max(varR[i]!, 0) + varY + MEF_C);
  }
  return sum / len;
}

/** Halves a plane as the authors' mef_ms_ssim does: 2x2 mean ('symmetric' edge), every other pixel. */
function downsample(src: Float64Array, w: number, h: number): { plane: Float64Array; w: number; h: number } {
  const ow = Math.ceil(w / 2);
  const oh = Math.ceil(h / 2);
  const out = new Float64Array(ow * oh);
  for (let y = 0; y < oh; y++) {
    const y0 = 2 * y;
    const y1 = Math.min(y0 + 1, h - 1);
    for (let x = 0; x < ow; x++) {
      const x0 = 2 * x;
      const x1 = Math.min(x0 + 1, w - 1);
      out[y * ow + x] = (src[y0 * w + x0]! + src[y0 * w + x1]! + src[y1 * w + x0]! + src[y1 * w + x1]!) / 4;
    }
  }
  return { plane: out, w: ow, h: oh };
}

/** Weights of the 3 scales, finest first: MS-SSIM's first three, normalised (the authors' default). */
export const MEF_SCALE_WEIGHTS: readonly number[] = (() => {
  const raw = [0.0448, 0.2856, 0.3001];
  const total = raw.reduce((a, b) => a + b, 0);
  return raw.map((v) => v / total);
})();

function mefInputs(fn: string, brackets: readonly ImageView[], fused: ImageView, minSide: number): { seq: Float64Array[]; f: Float64Array } {
  if (brackets.length < 2) throw new RangeError(`${fn}: needs at least 2 brackets, got ${brackets.length}`);
  const first = brackets[0]!;
  brackets.forEach((b, k) => {
    if (b.width !== first.width || b.height !== first.height) {
      throw new RangeError(`${fn}: images differ in size: 'brackets[0]' is ${size(first)}, 'brackets[${k}]' is ${size(b)}`);
    }
    if (b.format !== first.format) {
      throw new TypeError(`${fn}: images differ in format: 'brackets[0]' is ${first.format}, 'brackets[${k}]' is ${b.format}`);
    }
  });
  if (fused.width !== first.width || fused.height !== first.height) {
    throw new RangeError(`${fn}: images differ in size: 'brackets[0]' is ${size(first)}, 'fused' is ${size(fused)}`);
  }
  // The fused image may be float while the brackets are 8-bit (fusion works in float), but colour
  // against grey is a mistake, not a conversion.
  if (metricChannels(fused) !== metricChannels(first)) {
    throw new TypeError(`${fn}: images differ in format: 'brackets[0]' is ${first.format}, 'fused' is ${fused.format}`);
  }
  if (first.width < minSide || first.height < minSide) {
    throw new RangeError(`${fn}: images must be at least ${minSide}x${minSide} pixels, got ${size(first)}`);
  }
  return { seq: brackets.map((b, k) => greyPlane(fn, `brackets[${k}]`, b)), f: greyPlane(fn, 'fused', fused) };
}

/**
 * Single-scale MEF-SSIM (the authors' mef_ssim.m). See `mefSsim` for the definition. Images need
 * at least 11x11 pixels.
 */
export function mefSsimSingleScale(brackets: readonly ImageView[], fused: ImageView): number {
  const { seq, f } = mefInputs('mefSsimSingleScale', brackets, fused, SSIM_WINDOW);
  return mefSsimPlanes(seq, f, fused.width, fused.height);
}

/** MEF-SSIM and its per-scale scores (finest first). See `mefSsim`. */
export function mefSsimScales(brackets: readonly ImageView[], fused: ImageView): { score: number; scales: number[] } {
  const levels = MEF_SCALE_WEIGHTS.length;
  const { seq, f } = mefInputs('mefSsim', brackets, fused, SSIM_WINDOW * 2 ** (levels - 1));
  let planes = seq;
  let fp = f;
  let w = fused.width;
  let h = fused.height;
  const scales: number[] = [];
  for (let l = 0; l < levels; l++) {
    if (l > 0) {
      planes = planes.map((p) => downsample(p, w, h).plane);
      const d = downsample(fp, w, h);
      fp = d.plane;
      w = d.w;
      h = d.h;
    }
    scales.push(mefSsimPlanes(planes, fp, w, h));
  }
  // A negative scale score (anti-correlated structure) makes the weighted geometric mean NaN in
  // the authors' code too; it is the honest answer there, so it is not hidden.
  const score = scales.reduce((acc, q, l) => acc * q ** MEF_SCALE_WEIGHTS[l]!, 1);
  return { score, scales };
}

/**
 * MEF-SSIM (Ma, Zeng, Wang, "Perceptual Quality Assessment for Multi-Exposure Image Fusion",
 * IEEE TIP 24(11), 2015), following the authors' mef_ms_ssim.m / mef_ssim.m. Exported as the
 * paper's multi-scale score; `mefSsimSingleScale` is one scale.
 *
 * Everything is grey in [0, 255] (rgb2gray weights 0.2989 R + 0.5870 G + 0.1140 B, rounded for
 * 8-bit input). For each 11x11 window position ('valid' only), with x_k the patch of bracket k,
 * mu_k its mean over the square window and N = 121:
 *
 *   c_k = ||x_k - mu_k|| + 0.001                           contrast of bracket k
 *   c^  = max_k c_k                                        desired contrast
 *   R   = (||sum_k (x_k - mu_k)|| + eps) / (sum_k ||x_k - mu_k|| + eps)   structure consistency
 *   p   = min(tan(pi R / 2), 10)                           (R > 1 clamped to 1 - eps)
 *   w_k = (c_k / 11)^p + eps, normalised to sum 1
 *   s^  = sum_k w_k (x_k - mu_k) / c_k                     desired structure
 *   r   = c^ s^ / ||s^||  (r = 0 when s^ = 0)              desired patch (its mean is dropped)
 *   q   = (2 sigma_ry + C) / (sigma_r^2 + sigma_y^2 + C),  C = (0.03 * 255)^2
 *
 * where sigma are variances and covariance of r and the fused patch y under the 11x11 Gaussian
 * window (sigma 1.5) and eps = 2^-52. The single-scale score is the mean of q. The multi-scale
 * score repeats this at 3 scales (each halving by a 2x2 mean and taking every other pixel) and
 * combines them as prod_l Q_l^beta_l, beta = [0.0448, 0.2856, 0.3001] / 0.8305.
 *
 * Note the exponent p adapts to how consistent the brackets' structures are (the paper's choice,
 * in the code too), rather than being a fixed constant. Images need at least 44x44 pixels (an
 * 11-pixel window at the coarsest scale).
 */
export function mefSsim(brackets: readonly ImageView[], fused: ImageView): number {
  return mefSsimScales(brackets, fused).score;
}
