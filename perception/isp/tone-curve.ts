/**
 * The camera's tone curve: sRGB's transfer function (IEC 61966-2-1) between linear light and the
 * 8-bit code values the frames carry. Noise is physical in linear light (photon counts) and fusion
 * weights are defined on display values, so the ISP goes back and forth through these.
 *
 * Linear and encoded values are in [0, 1].
 */

/** Encoded sRGB value -> linear light. */
export function srgbToLinear(encoded: number): number {
  return encoded <= 0.04045 ? encoded / 12.92 : ((encoded + 0.055) / 1.055) ** 2.4;
}

/** Linear light -> encoded sRGB value (clamped to [0, 1]). */
export function linearToSrgb(linear: number): number {
  const v = linear <= 0 ? 0 : linear >= 1 ? 1 : linear;
  return v <= 0.0031308 ? 12.92 * v : 1.055 * v ** (1 / 2.4) - 0.055;
}

/** Linear light of each 8-bit code value. */
export const SRGB8_TO_LINEAR: Float32Array = (() => {
  const lut = new Float32Array(256);
  for (let i = 0; i < 256; i++) lut[i] = srgbToLinear(i / 255);
  return lut;
})();

/** Entries of LINEAR_TO_SRGB8: linear light is looked up at this resolution (fine enough near black, where sRGB is steep). */
export const LINEAR_LUT_SIZE = 65536;

/** 8-bit code value of linear light `i / (LINEAR_LUT_SIZE - 1)`, rounded. */
export const LINEAR_TO_SRGB8: Uint8Array = (() => {
  const lut = new Uint8Array(LINEAR_LUT_SIZE);
  for (let i = 0; i < LINEAR_LUT_SIZE; i++) lut[i] = Math.round(255 * linearToSrgb(i / (LINEAR_LUT_SIZE - 1)));
  return lut;
})();

/** 8-bit code value of linear light (clamped to [0, 1]) through LINEAR_TO_SRGB8. */
export function linearToSrgb8(linear: number): number {
  const i = linear <= 0 ? 0 : linear >= 1 ? LINEAR_LUT_SIZE - 1 : Math.round(linear * (LINEAR_LUT_SIZE - 1));
  return LINEAR_TO_SRGB8[i]!;
}
