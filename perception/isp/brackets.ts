/**
 * Bracketed exposures synthesized from one real, clean frame, for exercising exposure fusion on real
 * content. The clean frame's linear light stands in for the scene's radiance; each bracket scales it
 * by 2^ev (and `sceneGain`), clips at 1 as a saturating sensor does, and re-encodes to 8-bit sRGB,
 * so dark brackets quantize the shadows and bright ones clip the highlights, as real brackets do.
 */

import { ImageView } from '../../pipeline/image.js';
import { SRGB8_TO_LINEAR, linearToSrgb, linearToSrgb8, srgbToLinear } from './tone-curve.js';

/** Stops of the brackets the tests and the benchmark use: two stops under and over. */
export const DEFAULT_BRACKET_EV: readonly number[] = [-2, 0, 2];

export interface SynthesizeBracketsOptions {
  /** Scene radiance = clean frame's linear light x this (> 1 pushes highlights past clipping). Default 1. */
  sceneGain?: number;
  /**
   * Applied to each finished bracket, e.g. a sensor noise model
   * (`(image, i) => addSensorNoise(image, level, seed + i)`); must return a rgb8 image of the same size.
   */
  noise?: (image: ImageView, bracketIndex: number) => ImageView;
}

/** One packed rgb8 bracket of `clean` (rgb8) per stop in `evStops`. */
export function synthesizeBrackets(
  clean: ImageView,
  evStops: readonly number[] = DEFAULT_BRACKET_EV,
  options: SynthesizeBracketsOptions = {},
): ImageView[] {
  const fn = 'synthesizeBrackets';
  if (clean.format !== 'rgb8') throw new TypeError(`${fn}: 'clean' is ${clean.format}, expected rgb8`);
  if (evStops.length === 0) throw new RangeError(`${fn}: 'evStops' is empty`);
  evStops.forEach((ev, i) => {
    if (!Number.isFinite(ev)) throw new RangeError(`${fn}: 'evStops[${i}]' must be finite, got ${ev}`);
  });
  const sceneGain = options.sceneGain ?? 1;
  if (!(Number.isFinite(sceneGain) && sceneGain > 0)) throw new RangeError(`${fn}: 'sceneGain' must be positive and finite, got ${sceneGain}`);
  const { width: w, height: h } = clean;
  return evStops.map((ev, i) => {
    const bracket = exposeInLinearLight(fn, clean, sceneGain * 2 ** ev);
    if (!options.noise) return bracket;
    const noisy = options.noise(bracket, i);
    if (noisy.format !== 'rgb8' || noisy.width !== w || noisy.height !== h) {
      throw new TypeError(`${fn}: 'noise' returned ${noisy.width}x${noisy.height} ${noisy.format} for bracket ${i}, expected ${w}x${h} rgb8`);
    }
    return noisy;
  });
}

/**
 * `image` (rgb8, or rgbf32 encoded in [0, 1]) exposed by `gain` in linear light, clipped at 1 as a
 * saturating sensor does and re-encoded: a new packed image of its format. `fn` names the caller in errors.
 */
export function exposeInLinearLight(fn: string, image: ImageView, gain: number): ImageView {
  const { width: w, height: h, data, offset, rowStride, pixelStride } = image;
  if (image.format === 'rgb8') {
    // A per-code table: the exposure is a function of the code alone.
    const lut = new Uint8Array(256);
    for (let i = 0; i < 256; i++) lut[i] = linearToSrgb8(SRGB8_TO_LINEAR[i]! * gain);
    const out = new Uint8Array(w * h * 3);
    for (let y = 0, d = 0; y < h; y++) {
      for (let x = 0, s = offset + y * rowStride; x < w; x++, s += pixelStride, d += 3) {
        out[d] = lut[data[s]!]!;
        out[d + 1] = lut[data[s + 1]!]!;
        out[d + 2] = lut[data[s + 2]!]!;
      }
    }
    return ImageView.packed(w, h, 'rgb8', out);
  }
  const out = new Float32Array(w * h * 3);
  for (let y = 0, d = 0; y < h; y++) {
    for (let x = 0, s = offset + y * rowStride; x < w; x++, s += pixelStride, d += 3) {
      for (let c = 0; c < 3; c++) {
        const v = data[s + c]!;
        if (!Number.isFinite(v)) throw new RangeError(`${fn}: 'image' has ${v} at pixel (${x}, ${y}) channel ${c}`);
        out[d + c] = linearToSrgb(srgbToLinear(v < 0 ? 0 : v > 1 ? 1 : v) * gain);
      }
    }
  }
  return ImageView.packed(w, h, 'rgbf32', out);
}
