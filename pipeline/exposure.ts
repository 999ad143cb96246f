import type { ImageView } from './image.js';

/** Pixels below this luma count as dark (0..255 scale). */
export const DARK_LUMA = 16;
/** Sample every n-th pixel in x and y: statistics of a 1080p frame from ~32k samples. */
export const EXPOSURE_SAMPLE_STEP = 8;

export interface ExposureStats {
  /** Mean BT.601 luma, 0..255. */
  meanLuma: number;
  /** Fraction of samples with luma < DARK_LUMA. */
  darkFraction: number;
  /** Fraction of samples with any channel at 255 (clipped highlights). */
  clippedFraction: number;
}

/** Exposure statistics of an rgb8 or rgba8 view, read in place (crops and strides respected). */
export function measureExposure(image: ImageView, step = EXPOSURE_SAMPLE_STEP): ExposureStats {
  if (image.format !== 'rgb8' && image.format !== 'rgba8') {
    throw new TypeError(`measureExposure: needs an rgb8 or rgba8 image, got ${image.format}`);
  }
  const { data, pixelStride, rowStride, offset } = image;
  let samples = 0;
  let lumaSum = 0;
  let dark = 0;
  let clipped = 0;
  for (let y = 0; y < image.height; y += step) {
    let i = offset + y * rowStride;
    for (let x = 0; x < image.width; x += step, i += step * pixelStride) {
      const r = data[i]!;
      const g = data[i + 1]!;
      const b = data[i + 2]!;
      // BT.601 luma x 1000 in integers: exact, and cheaper than float per sample.
      const luma1000 = 299 * r + 587 * g + 114 * b;
      lumaSum += luma1000;
      if (luma1000 < DARK_LUMA * 1000) dark++;
      if (r === 255 || g === 255 || b === 255) clipped++;
      samples++;
    }
  }
  return { meanLuma: lumaSum / 1000 / samples, darkFraction: dark / samples, clippedFraction: clipped / samples };
}
