/**
 * Camera sensor noise, Poisson-Gaussian in LINEAR light (Foi et al. 2008, "Practical Poissonian-
 * Gaussian noise modeling and fitting for single-image raw-data"): a pixel of linear value L in
 * [0, 1] (1 = full scale) is captured as clip(L + n, 0, 1) with
 *
 *   var(n) = shotGain * L + readNoiseStd^2.
 *
 * The shot (photon) term is Poisson in electrons; it is drawn here as a heteroscedastic Gaussian of
 * the same variance, the standard approximation, which is accurate once a pixel holds more than a
 * few tens of electrons (everything above deep black at these gains) and keeps one Gaussian stream.
 *
 * Frames arrive sRGB-encoded, so noise is added after the inverse tone curve and the result is
 * encoded again: that is why dark codes get more code-value noise than bright ones, as in real
 * night frames.
 */

import { seededRandom } from '../../calibration/math/random.js';
import { ImageView, packedLength } from '../../pipeline/image.js';
import { LINEAR_LUT_SIZE, LINEAR_TO_SRGB8, SRGB8_TO_LINEAR, linearToSrgb, srgbToLinear } from './tone-curve.js';

export interface SensorGainLevel {
  name: string;
  iso: number;
  /** Noise variance per unit of linear signal: 1 / (electrons at full scale) = analog gain / full well. */
  shotGain: number;
  /** Read noise std in full-scale linear units (electrons of read noise / electrons at full scale). */
  readNoiseStd: number;
}

/** Full-well capacity of a small (~3 um) automotive CMOS pixel at base ISO 100. */
const FULL_WELL_E = 10_000;
const BASE_ISO = 100;
/** Read noise before the analog gain (source follower, reset), in electrons. */
const PRE_GAIN_READ_NOISE_E = 1.5;
/** Read noise after the gain (column amplifier, ADC), in electrons referred to the pixel at unity gain; divided by the gain. */
const POST_GAIN_READ_NOISE_E = 40;

/**
 * A gain level from sensor quantities: analog gain = iso / 100 scales full scale down to
 * FULL_WELL_E / gain electrons, so both the shot variance per unit signal and the read noise
 * referred to full scale grow with gain, while read noise in electrons shrinks towards the
 * pre-gain floor (the post-gain stages' share is divided by the gain).
 */
function sensorLevel(name: string, iso: number): SensorGainLevel {
  const gain = iso / BASE_ISO;
  const fullScaleE = FULL_WELL_E / gain;
  const readNoiseE = Math.hypot(PRE_GAIN_READ_NOISE_E, POST_GAIN_READ_NOISE_E / gain);
  return Object.freeze({ name, iso, shotGain: 1 / fullScaleE, readNoiseStd: readNoiseE / fullScaleE });
}

/**
 * Night-driving gains. ISO 1600/6400/20000 rather than 800/3200/12800: with a 10k e- full well,
 * ISO 800 gives only ~3.7 codes of noise at mid-grey, below the "low" band (4-6 codes) the
 * fallback denoiser is tuned for, and "high" stops at ISO 20000 so that the noise actually
 * produced at mid-grey (first order understates it there, see srgbNoiseStdAt) stays in its band.
 *
 *   level   ISO    shotGain  read noise         srgbNoiseStdAt(118)  measured on rgb8 code 118
 *   low     1600   1.6e-3    2.92 e- = 4.66e-3  5.36 codes           5.4
 *   medium  6400   6.4e-3    1.62 e- = 1.04e-2  10.81 codes          11.1
 *   high    20000  2.0e-2    1.51 e- = 3.03e-2  20.46 codes          23.2
 */
export const SENSOR_GAIN_LEVELS: readonly SensorGainLevel[] = Object.freeze([
  sensorLevel('low', 1600),
  sensorLevel('medium', 6400),
  sensorLevel('high', 20000),
]);

export function gainLevelByName(name: string): SensorGainLevel {
  const level = SENSOR_GAIN_LEVELS.find((l) => l.name === name);
  if (!level) {
    throw new RangeError(`gainLevelByName: unknown gain level '${name}', valid names are ${SENSOR_GAIN_LEVELS.map((l) => `'${l.name}'`).join(', ')}`);
  }
  return level;
}

/** Variance of the captured value at linear signal `linear` (before clipping), in full-scale units squared. */
export function linearNoiseVariance(linear: number, level: SensorGainLevel): number {
  return level.shotGain * Math.max(linear, 0) + level.readNoiseStd * level.readNoiseStd;
}

/**
 * Noise std in sRGB 8-bit code values at 8-bit code `code8`, to first order: the slope of the
 * tone curve at that code times the linear std. First order only: it ignores clipping,
 * quantization and the curvature of the tone curve, which (concave) stretches the dark side of
 * the noise more than it squeezes the bright side, so the real std is higher once the linear std
 * is a sizeable fraction of the signal (at mid-grey: +1 % low, +3 % medium, +13 % high).
 */
export function srgbNoiseStdAt(code8: number, level: SensorGainLevel): number {
  if (!Number.isFinite(code8) || code8 < 0 || code8 > 255) throw new RangeError(`srgbNoiseStdAt: 'code8' must be in [0, 255], got ${code8}`);
  const linear = srgbToLinear(code8 / 255);
  return 255 * toneCurveSlope(linear) * Math.sqrt(linearNoiseVariance(linear, level));
}

/** d(encoded)/d(linear) of the sRGB curve (its linear toe below 0.0031308). */
function toneCurveSlope(linear: number): number {
  return linear <= 0.0031308 ? 12.92 : (1.055 / 2.4) * linear ** (1 / 2.4 - 1);
}

/** Inverse of the standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
function inverseNormalCdf(p: number): number {
  if (p < 0.02425 || p > 0.97575) {
    const q = Math.sqrt(-2 * Math.log(p < 0.5 ? p : 1 - p));
    const z = (((((-7.784894002430293e-3 * q - 3.223964580411365e-1) * q - 2.400758277161838) * q - 2.549671010229528) * q + 4.374664141464968) * q + 2.938163982698783) /
      ((((7.784695709041462e-3 * q + 3.224671290700398e-1) * q + 2.445134137142996) * q + 3.754408661907416) * q + 1);
    return p < 0.5 ? z : -z;
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((-3.969683028665376e1 * r + 2.209460984245205e2) * r - 2.759285104469687e2) * r + 1.38357751867269e2) * r - 3.066479806614716e1) * r + 2.506628277459239) * q) /
    (((((-5.447609879822406e1 * r + 1.615858368580409e2) * r - 1.556989798598866e2) * r + 6.680131188771972e1) * r - 1.328068155288572e1) * r + 1);
}

const NORMAL_TABLE_BITS = 12;
const NORMAL_TABLE_SIZE = 1 << NORMAL_TABLE_BITS;
const FRACTION_BITS = 32 - NORMAL_TABLE_BITS;
/** Inverse normal CDF at p = i / NORMAL_TABLE_SIZE, interpolated between entries (entry 0 and the last bin are never read). */
const NORMAL_TABLE: Float64Array = (() => {
  const table = new Float64Array(NORMAL_TABLE_SIZE + 1);
  for (let i = 1; i < NORMAL_TABLE_SIZE; i++) table[i] = inverseNormalCdf(i / NORMAL_TABLE_SIZE);
  return table;
})();

/**
 * A standard normal sample from a seededRandom draw `uniform` in [0, 1), by inverse transform: one
 * uniform per sample and, outside the two extreme bins (1 in 2048 samples, computed exactly), a
 * table lookup. Not gaussianRandom: its Box-Muller spends two uniforms, a log and a cos per sample
 * and discards the sine half, ~4x the cost, which alone took > 100 ms for the 2.8 M samples of a
 * 720p frame. Interpolating the inverse CDF linearly in 1/4096-wide bins is accurate to ~1e-3 sigma.
 */
function standardNormalOf(uniform: number): number {
  const bits = uniform * 4294967296; // seededRandom's 32-bit integer, exactly
  const bin = bits >>> FRACTION_BITS;
  if (bin === 0 || bin === NORMAL_TABLE_SIZE - 1) return inverseNormalCdf((bits + 0.5) / 4294967296);
  const lo = NORMAL_TABLE[bin]!;
  return lo + ((bits - bin * (1 << FRACTION_BITS)) / (1 << FRACTION_BITS)) * (NORMAL_TABLE[bin + 1]! - lo);
}

/**
 * A noisy capture of `image` (rgb8, or rgbf32 holding encoded values in [0, 1]; any strides) at
 * gain `level`, as a NEW packed image of the same format: rgb8 is re-quantized, rgbf32 is not.
 * Deterministic for `seed`; one Gaussian stream in row-major pixel, channel order.
 */
export function addSensorNoise(image: ImageView, level: SensorGainLevel, seed: number): ImageView {
  if (image.format !== 'rgb8' && image.format !== 'rgbf32') {
    throw new TypeError(`addSensorNoise: field 'image' must be rgb8 or rgbf32, got ${image.format}`);
  }
  if (!Number.isFinite(level.shotGain) || level.shotGain < 0 || !Number.isFinite(level.readNoiseStd) || level.readNoiseStd < 0) {
    throw new RangeError(`addSensorNoise: field 'level' needs finite non-negative shotGain and readNoiseStd, got ${level.shotGain} and ${level.readNoiseStd}`);
  }
  // One stream, consumed in row-major pixel, channel order.
  const uniform = seededRandom(seed);
  const { width, height, data, offset, rowStride, pixelStride } = image;
  if (image.format === 'rgb8') {
    // Per-code std: no sqrt per sample. linearToSrgb8 is inlined (same table, clamp and rounding)
    // to make its clamp branch-free, which halves the frame time.
    const toLinear = SRGB8_TO_LINEAR;
    const toCode = LINEAR_TO_SRGB8;
    const top = LINEAR_LUT_SIZE - 1;
    const stdOfCode = new Float32Array(256);
    for (let i = 0; i < 256; i++) stdOfCode[i] = Math.sqrt(linearNoiseVariance(toLinear[i]!, level));
    const src = data as Uint8Array;
    const out = new Uint8Array(packedLength('rgb8', width, height));
    let o = 0;
    for (let y = 0; y < height; y++) {
      let i = offset + y * rowStride;
      for (let x = 0; x < width; x++, i += pixelStride) {
        for (let c = 0; c < 3; c++) {
          const code = src[i + c]!;
          const noisy = toLinear[code]! + stdOfCode[code]! * standardNormalOf(uniform());
          // min/max, not branches: whether noise clips near black is a coin flip the branch predictor loses.
          out[o++] = toCode[(Math.min(Math.max(noisy, 0), 1) * top + 0.5) | 0]!;
        }
      }
    }
    return ImageView.packed(width, height, 'rgb8', out);
  }
  const out = new Float32Array(packedLength('rgbf32', width, height));
  let o = 0;
  for (let y = 0; y < height; y++) {
    let i = offset + y * rowStride;
    for (let x = 0; x < width; x++, i += pixelStride) {
      for (let c = 0; c < 3; c++) {
        const encoded = data[i + c]!;
        if (Number.isNaN(encoded)) throw new RangeError(`addSensorNoise: field 'image' has NaN at pixel (${x}, ${y}) channel ${c}`);
        const linear = srgbToLinear(encoded <= 0 ? 0 : encoded >= 1 ? 1 : encoded);
        // linearToSrgb clips the noisy value to [0, 1], i.e. to the sensor's black level and full scale.
        out[o++] = linearToSrgb(linear + Math.sqrt(linearNoiseVariance(linear, level)) * standardNormalOf(uniform()));
      }
    }
  }
  return ImageView.packed(width, height, 'rgbf32', out);
}
