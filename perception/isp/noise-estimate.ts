/**
 * How noisy is a frame? Recordings and stream sources carry no sensor gain, so the ISP measures the
 * noise itself and picks the matching gain for the denoiser: Immerkær's fast noise variance
 * estimation (CVIU 1996) — the image convolved with a mask that cancels smooth content up to second
 * order leaves mostly noise; sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N| — computed on luma,
 * skipping strong edges (which the mask does not cancel) as Tai & Yang (2008) suggest.
 */
import type { ImageView } from '../../pipeline/image.js';
import { gainAtPosition } from './gain.js';
import { SENSOR_GAIN_LEVELS, srgbNoiseStdAt, type SensorGainLevel } from './noise-model.js';

/** Pixels whose Sobel magnitude is above this quantile of the frame are edges and left out. */
export const EDGE_QUANTILE = 0.9;
/** The 8-bit code value at which a gain's noise is compared with the measured one (mid-grey). */
export const REFERENCE_CODE = 118;

/** Estimated noise std of `image` (rgb8, any strides) in 8-bit code values, on luma; `step` samples every step-th row and column. */
export function estimateNoiseStd(image: ImageView, step = 2): number {
  if (image.format !== 'rgb8') throw new TypeError(`estimateNoiseStd: field 'image' must be rgb8, got ${image.format}`);
  if (image.width < 3 || image.height < 3) throw new RangeError(`estimateNoiseStd: field 'image' must be at least 3x3, got ${image.width}x${image.height}`);
  if (!(Number.isInteger(step) && step >= 1)) throw new RangeError(`estimateNoiseStd: 'step' must be an integer >= 1, got ${step}`);
  const { width, height } = image;
  const luma = new Float32Array(width * height);
  const src = image.data;
  for (let y = 0; y < height; y++) {
    let p = image.offset + y * image.rowStride;
    for (let x = 0; x < width; x++, p += image.pixelStride) luma[y * width + x] = 0.299 * src[p]! + 0.587 * src[p + 1]! + 0.114 * src[p + 2]!;
  }
  const responses: number[] = [];
  const edges: number[] = [];
  for (let y = 1; y < height - 1; y += step) {
    for (let x = 1; x < width - 1; x += step) {
      const i = y * width + x;
      const a = luma[i - width - 1]!, b = luma[i - width]!, c = luma[i - width + 1]!;
      const d = luma[i - 1]!, e = luma[i]!, f = luma[i + 1]!;
      const g = luma[i + width - 1]!, h = luma[i + width]!, k = luma[i + width + 1]!;
      // Immerkær's mask [[1, -2, 1], [-2, 4, -2], [1, -2, 1]].
      responses.push(Math.abs(a - 2 * b + c - 2 * d + 4 * e - 2 * f + g - 2 * h + k));
      const gx = c + 2 * f + k - a - 2 * d - g;
      const gy = g + 2 * h + k - a - 2 * b - c;
      edges.push(Math.abs(gx) + Math.abs(gy));
    }
  }
  const sorted = Float32Array.from(edges).sort();
  const edgeLimit = sorted[Math.floor(EDGE_QUANTILE * (sorted.length - 1))]!;
  let sum = 0;
  let count = 0;
  for (let j = 0; j < responses.length; j++) {
    if (edges[j]! > edgeLimit) continue;
    sum += responses[j]!;
    count++;
  }
  // The mask's output has std 6 sigma for white noise (sum of squared weights 36).
  return count === 0 ? 0 : (Math.sqrt(Math.PI / 2) * sum) / (6 * count);
}

/**
 * The gain whose mid-grey sRGB noise std equals `noiseStd` (code values), searched along the gain
 * positions the denoiser was trained on; below the first level's noise, a proportionally lower gain.
 */
export function gainForNoiseStd(noiseStd: number): SensorGainLevel {
  if (!(noiseStd >= 0)) throw new RangeError(`gainForNoiseStd: 'noiseStd' must be >= 0, got ${noiseStd}`);
  const stdAt = (position: number) => srgbNoiseStdAt(REFERENCE_CODE, gainAtPosition(position));
  let lo = -3;
  let hi = SENSOR_GAIN_LEVELS.length - 1 + 1;
  if (noiseStd <= stdAt(lo)) return gainAtPosition(lo);
  if (noiseStd >= stdAt(hi)) return gainAtPosition(hi);
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (stdAt(mid) < noiseStd) lo = mid;
    else hi = mid;
  }
  return gainAtPosition((lo + hi) / 2);
}
