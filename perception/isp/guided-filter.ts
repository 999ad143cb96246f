/**
 * Classical edge-preserving denoiser, the fallback when no learned denoiser runs: the guided image
 * filter (He, Sun, Tang, "Guided Image Filtering", TPAMI 2013). In each (2r+1)^2 window the output
 * is a linear function of a guide image I, q = a*I + b, fitted to the noisy input p by ridge
 * regression with penalty epsilon; a and b are then averaged over the windows covering a pixel.
 * Where the guide varies much more than epsilon (an edge) a ~ 1 and the edge passes; where it
 * varies less (flat but noisy) a ~ 0 and q is the local mean.
 *
 * Guide: the mean of R, G and B, shared by the three channels, not each channel guiding itself.
 * With independent noise per channel the mean carries a third of a channel's noise variance, so
 * edges are told from noise better and less noise is copied back through a*I near edges; one
 * guide also makes the three channels share edge positions (no colour fringes), and colour noise
 * in flat areas goes entirely. The cost is that edges with no change in R+G+B (rare in road
 * scenes) are smoothed.
 *
 * Works on encoded (sRGB) values scaled to [0, 1], which is also the unit of epsilon (squared).
 * The statistics are taken at half resolution (the "fast guided filter", see guidedFilterDenoise)
 * and box means use running sums, O(1) per pixel in the radius.
 */

import { ImageView, packedLength } from '../../pipeline/image.js';
import { srgbNoiseStdAt, type SensorGainLevel } from './noise-model.js';

export type GuidedFilterOptions = { radiusPx?: number; epsilon?: number } | { level: SensorGainLevel };

/** Window radius when none is given (the gain-level rule's). */
export const DEFAULT_GUIDED_RADIUS_PX = 2;
/** Epsilon when none is given: the 'medium' gain rule, 0.5 * (10.8 / 255)^2. */
export const DEFAULT_GUIDED_EPSILON = 0.0009;
/** Epsilon per unit of noise variance at mid-grey: see guidedFilterParamsFor. */
const EPSILON_PER_NOISE_VARIANCE = 0.5;

/**
 * Radius and epsilon for a gain level: epsilon = 0.5 * sigma^2, with sigma the level's
 * per-channel noise std at mid-grey (code 118) in encoded [0, 1] units, so local variation below
 * the noise's own variance is smoothed and variation well above it is kept (the statistics are
 * taken on 2x2-block means and a 3-channel-mean guide, whose noise variance is sigma^2 / 12, hence
 * a factor below 1). Mid-grey stands for the frame: darker codes are noisier in sRGB, brighter
 * ones cleaner. Radius 2 px at every level: on PandaSet frames at 1280x720, factors 0.25/0.5/1 and
 * radii 2/4/6 gave the best PSNR at 0.5 and 2 for low, medium and high alike (larger radii lose
 * more texture than they gain in flat areas).
 */
export function guidedFilterParamsFor(level: SensorGainLevel): { radiusPx: number; epsilon: number } {
  const sigma = srgbNoiseStdAt(118, level) / 255;
  return { radiusPx: DEFAULT_GUIDED_RADIUS_PX, epsilon: EPSILON_PER_NOISE_VARIANCE * sigma * sigma };
}

function resolveOptions(options: GuidedFilterOptions): { radiusPx: number; epsilon: number } {
  if ('level' in options) return guidedFilterParamsFor(options.level);
  const radiusPx = options.radiusPx ?? DEFAULT_GUIDED_RADIUS_PX;
  const epsilon = options.epsilon ?? DEFAULT_GUIDED_EPSILON;
  if (!Number.isInteger(radiusPx) || radiusPx < 1) throw new RangeError(`guidedFilterDenoise: option 'radiusPx' must be a positive integer, got ${radiusPx}`);
  if (!Number.isFinite(epsilon) || epsilon <= 0) throw new RangeError(`guidedFilterDenoise: option 'epsilon' must be a positive finite number, got ${epsilon}`);
  return { radiusPx, epsilon };
}

/** 1 / (number of in-image samples) of each window of radius r centred along an axis of length n. */
function inverseWindowCounts(n: number, r: number): Float64Array {
  const inv = new Float64Array(n);
  for (let i = 0; i < n; i++) inv[i] = 1 / (Math.min(i + r, n - 1) - Math.max(i - r, 0) + 1);
  return inv;
}

/**
 * Box mean of radius r of a packed w x h image with k interleaved channels, into `out` (same
 * layout). Windows are clipped at the border and divided by their in-image size. Vertical first:
 * column running sums (Float64, no drift over tall images) are updated from `src` itself as the
 * window slides down, then each row of column sums is box-summed along x through its prefix sums;
 * the loops run over contiguous memory.
 */
function boxMean(src: Float32Array, w: number, h: number, k: number, r: number, out: Float32Array): void {
  const rowLen = w * k;
  const colSum = new Float64Array(rowLen);
  // prefix[(x + 1) * k + c] = sum of colSum over columns 0..x; prefix[c] = 0.
  const prefix = new Float64Array(rowLen + k);
  const invX = inverseWindowCounts(w, r);
  const invY = inverseWindowCounts(h, r);
  for (let y = 0; y < r && y < h; y++) {
    for (let j = 0, s0 = y * rowLen; j < rowLen; j++) colSum[j] = colSum[j]! + src[s0 + j]!;
  }
  for (let y = 0; y < h; y++) {
    // Slide the column window to rows y-r..y+r and take the prefix sums along the row, in one pass.
    const add = y + r < h ? (y + r) * rowLen : -1;
    const sub = y - r - 1 >= 0 ? (y - r - 1) * rowLen : -1;
    if (add >= 0 && sub >= 0) {
      for (let j = 0; j < rowLen; j++) prefix[j + k] = prefix[j]! + (colSum[j] = colSum[j]! + src[add + j]! - src[sub + j]!);
    } else if (add >= 0) {
      for (let j = 0; j < rowLen; j++) prefix[j + k] = prefix[j]! + (colSum[j] = colSum[j]! + src[add + j]!);
    } else if (sub >= 0) {
      for (let j = 0; j < rowLen; j++) prefix[j + k] = prefix[j]! + (colSum[j] = colSum[j]! - src[sub + j]!);
    } else {
      for (let j = 0; j < rowLen; j++) prefix[j + k] = prefix[j]! + colSum[j]!;
    }
    const o0 = y * rowLen;
    const iy = invY[y]!;
    // Window of column x: columns max(x - r, 0)..min(x + r, w - 1) = prefix[min(x + r + 1, w)] - prefix[max(x - r, 0)].
    // Columns r..w-r-1 have full windows: one flat loop; the clipped ones at both ends go per pixel.
    const hasMid = w > 2 * r;
    if (hasMid) {
      const hiOffset = (r + 1) * k;
      const loOffset = r * k;
      const invMid = iy / (2 * r + 1);
      for (let j = r * k, end = (w - r) * k; j < end; j++) out[o0 + j] = (prefix[j + hiOffset]! - prefix[j - loOffset]!) * invMid;
    }
    for (let x = 0; x < w; x++) {
      if (hasMid && x === r) x = w - r;
      const hi = Math.min(x + r + 1, w) * k;
      const lo = Math.max(x - r, 0) * k;
      const inv = invX[x]! * iy;
      const o = o0 + x * k;
      for (let c = 0; c < k; c++) out[o + c] = (prefix[hi + c]! - prefix[lo + c]!) * inv;
    }
  }
}

/** Low-resolution sample positions of full-resolution coordinates 0..n-1 for bilinear upsampling by 2: lower index, upper index, upper weight. */
function upsampleTaps(n: number, lowN: number): { lo: Int32Array; hi: Int32Array; weight: Float32Array } {
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const weight = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Low-res sample j sits at full-res coordinate 2j + 0.5 (the centre of its 2x2 block).
    const f = Math.min(Math.max((i - 0.5) / 2, 0), lowN - 1);
    const j = Math.min(Math.floor(f), lowN - 1);
    lo[i] = j;
    hi[i] = Math.min(j + 1, lowN - 1);
    weight[i] = f - j;
  }
  return { lo, hi, weight };
}

/**
 * Guided-filter denoise of an rgb8 or rgbf32 (encoded [0, 1]) image, any strides, into a NEW packed
 * image of the same format. Options: a window radius and epsilon (encoded units squared), or a
 * gain level to derive both from (guidedFilterParamsFor).
 *
 * Fast guided filter (He and Sun 2015, arXiv:1505.00996): the window statistics and the
 * coefficients a, b are computed on the image averaged over 2x2 blocks, with radius
 * ceil(radiusPx / 2) there, and only a, b are upsampled (bilinear) and applied to the
 * full-resolution guide, so edges stay at full resolution. This quarters the box-filter work,
 * which is what kept the full-resolution filter at ~3x the 40 ms frame budget.
 */
export function guidedFilterDenoise(image: ImageView, options: GuidedFilterOptions): ImageView {
  if (image.format !== 'rgb8' && image.format !== 'rgbf32') {
    throw new TypeError(`guidedFilterDenoise: field 'image' must be rgb8 or rgbf32, got ${image.format}`);
  }
  const { radiusPx, epsilon } = resolveOptions(options);
  const { width: w, height: h, data, offset, rowStride, pixelStride } = image;
  const scale = image.format === 'rgb8' ? 1 / 255 : 1;
  const lowW = (w + 1) >> 1;
  const lowH = (h + 1) >> 1;
  const lowN = lowW * lowH;
  const lowR = Math.ceil(radiusPx / 2);

  // Full-resolution guide (mean of the channels) and low-resolution statistics per 2x2 block:
  // guide I, I^2, the three channels p and I*p.
  const guide = new Float32Array(w * h);
  const stats = new Float32Array(lowN * 8);
  const blockSum = new Float64Array(lowW * 3);
  for (let y = 0, i = 0; y < h; y++) {
    let s = offset + y * rowStride;
    for (let x = 0; x < w; x++, i++, s += pixelStride) {
      const pr = data[s]!;
      const pg = data[s + 1]!;
      const pb = data[s + 2]!;
      if (Number.isNaN(pr + pg + pb)) {
        const c = Number.isNaN(pr) ? 0 : Number.isNaN(pg) ? 1 : 2;
        throw new RangeError(`guidedFilterDenoise: field 'image' has NaN at pixel (${x}, ${y}) channel ${c}`);
      }
      guide[i] = ((pr + pg + pb) * scale) / 3;
      const b = (x >> 1) * 3;
      blockSum[b] = blockSum[b]! + pr;
      blockSum[b + 1] = blockSum[b + 1]! + pg;
      blockSum[b + 2] = blockSum[b + 2]! + pb;
    }
    if ((y & 1) === 0 && y + 1 < h) continue;
    const rows = (y & 1) + 1;
    const o0 = (y >> 1) * lowW * 8;
    for (let X = 0; X < lowW; X++) {
      const norm = scale / (rows * (2 * X + 1 < w ? 2 : 1));
      const pr = blockSum[X * 3]! * norm;
      const pg = blockSum[X * 3 + 1]! * norm;
      const pb = blockSum[X * 3 + 2]! * norm;
      const g = (pr + pg + pb) / 3;
      const o = o0 + X * 8;
      stats[o] = g;
      stats[o + 1] = g * g;
      stats[o + 2] = pr;
      stats[o + 3] = pg;
      stats[o + 4] = pb;
      stats[o + 5] = g * pr;
      stats[o + 6] = g * pg;
      stats[o + 7] = g * pb;
    }
    blockSum.fill(0);
  }
  const means = new Float32Array(lowN * 8);
  boxMean(stats, lowW, lowH, 8, lowR, means);

  // Per-window a and b for each channel (ridge regression of p on I), then their box means.
  const coeffs = stats.subarray(0, lowN * 6);
  for (let i = 0; i < lowN; i++) {
    const m = i * 8;
    const o = i * 6;
    const mI = means[m]!;
    const denom = means[m + 1]! - mI * mI + epsilon;
    for (let c = 0; c < 3; c++) {
      const mp = means[m + 2 + c]!;
      const a = (means[m + 5 + c]! - mI * mp) / denom;
      coeffs[o + c] = a;
      coeffs[o + 3 + c] = mp - a * mI;
    }
  }
  const coeffMeans = means.subarray(0, lowN * 6);
  boxMean(coeffs, lowW, lowH, 6, lowR, coeffMeans);

  const out = image.format === 'rgb8' ? new Uint8Array(packedLength('rgb8', w, h)) : new Float32Array(packedLength('rgbf32', w, h));
  applyCoefficients(coeffMeans, lowW, lowH, guide, w, h, out);
  return ImageView.packed(w, h, image.format, out);
}

/**
 * q = a * I + b at full resolution into `out` (packed rgb; bytes are rounded and clamped), with a
 * and b upsampled bilinearly from the low-res grid: each low-res row is upsampled along x once
 * (kept in one of two slots by row parity), then pairs of rows are blended per output row.
 */
function applyCoefficients(coeffMeans: Float32Array, lowW: number, lowH: number, guide: Float32Array, w: number, h: number, out: Uint8Array | Float32Array): void {
  const { lo: xLo, hi: xHi, weight: xWeight } = upsampleTaps(w, lowW);
  const { lo: yLo, hi: yHi, weight: yWeight } = upsampleTaps(h, lowH);
  const even = new Float32Array(w * 6);
  const odd = new Float32Array(w * 6);
  let evenRow = -1;
  let oddRow = -1;
  const upsampledRow = (lowY: number): Float32Array => {
    const slot = lowY & 1 ? odd : even;
    if ((lowY & 1 ? oddRow : evenRow) === lowY) return slot;
    if (lowY & 1) oddRow = lowY;
    else evenRow = lowY;
    const r0 = lowY * lowW * 6;
    for (let x = 0, j = 0; x < w; x++, j += 6) {
      const c0 = r0 + xLo[x]! * 6;
      const c1 = r0 + xHi[x]! * 6;
      const u = xWeight[x]!;
      const v = 1 - u;
      for (let c = 0; c < 6; c++) slot[j + c] = coeffMeans[c0 + c]! * v + coeffMeans[c1 + c]! * u;
    }
    return slot;
  };
  for (let y = 0; y < h; y++) {
    const top = upsampledRow(yLo[y]!);
    const bottom = upsampledRow(yHi[y]!);
    const u = yWeight[y]!;
    const v = 1 - u;
    const g0 = y * w;
    // Channels unrolled; one loop per storage type keeps each store site monomorphic.
    if (out instanceof Uint8Array) {
      for (let x = 0, k = 0, o = g0 * 3; x < w; x++, k += 6, o += 3) {
        const g = guide[g0 + x]!;
        const q0 = (top[k]! * v + bottom[k]! * u) * g + top[k + 3]! * v + bottom[k + 3]! * u;
        const q1 = (top[k + 1]! * v + bottom[k + 1]! * u) * g + top[k + 4]! * v + bottom[k + 4]! * u;
        const q2 = (top[k + 2]! * v + bottom[k + 2]! * u) * g + top[k + 5]! * v + bottom[k + 5]! * u;
        out[o] = (Math.min(Math.max(q0, 0), 1) * 255 + 0.5) | 0;
        out[o + 1] = (Math.min(Math.max(q1, 0), 1) * 255 + 0.5) | 0;
        out[o + 2] = (Math.min(Math.max(q2, 0), 1) * 255 + 0.5) | 0;
      }
    } else {
      for (let x = 0, k = 0, o = g0 * 3; x < w; x++, k += 6, o += 3) {
        const g = guide[g0 + x]!;
        out[o] = (top[k]! * v + bottom[k]! * u) * g + top[k + 3]! * v + bottom[k + 3]! * u;
        out[o + 1] = (top[k + 1]! * v + bottom[k + 1]! * u) * g + top[k + 4]! * v + bottom[k + 4]! * u;
        out[o + 2] = (top[k + 2]! * v + bottom[k + 2]! * u) * g + top[k + 5]! * v + bottom[k + 5]! * u;
      }
    }
  }
}
