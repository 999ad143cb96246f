import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageView } from '../../pipeline/image.js';
import {
  SENSOR_GAIN_LEVELS,
  addSensorNoise,
  gainLevelByName,
  linearNoiseVariance,
  srgbNoiseStdAt,
} from '../../perception/isp/noise-model.js';
import { linearToSrgb, srgbToLinear } from '../../perception/isp/tone-curve.js';

const FRAME = '/work/shared/data/pandaset-002/camera/00.jpg';

function flatF32(width: number, height: number, encoded: number): ImageView {
  return ImageView.packed(width, height, 'rgbf32', new Float32Array(width * height * 3).fill(encoded));
}

function flat8(width: number, height: number, code: number): ImageView {
  return ImageView.packed(width, height, 'rgb8', new Uint8Array(width * height * 3).fill(code));
}

function meanVar(values: ArrayLike<number>): { mean: number; variance: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  const mean = sum / values.length;
  let ss = 0;
  for (let i = 0; i < values.length; i++) ss += (values[i]! - mean) ** 2;
  return { mean, variance: ss / (values.length - 1) };
}

function psnr8(a: ImageView, b: ImageView): number {
  let ss = 0;
  for (let i = 0; i < a.data.length; i++) ss += (a.data[i]! - b.data[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (ss / a.data.length));
}

async function loadFrame(width: number, height: number): Promise<ImageView> {
  const { data, info } = await sharp(FRAME).resize(width, height).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return ImageView.packed(info.width, info.height, 'rgb8', new Uint8Array(data.buffer, data.byteOffset, data.length));
}

describe('gain levels', () => {
  it('are low, medium and high, with shot and read noise growing with the gain', () => {
    expect(SENSOR_GAIN_LEVELS.map((l) => l.name)).toEqual(['low', 'medium', 'high']);
    for (let i = 1; i < 3; i++) {
      expect(SENSOR_GAIN_LEVELS[i]!.iso).toBeGreaterThan(SENSOR_GAIN_LEVELS[i - 1]!.iso);
      expect(SENSOR_GAIN_LEVELS[i]!.shotGain).toBeGreaterThan(SENSOR_GAIN_LEVELS[i - 1]!.shotGain);
      expect(SENSOR_GAIN_LEVELS[i]!.readNoiseStd).toBeGreaterThan(SENSOR_GAIN_LEVELS[i - 1]!.readNoiseStd);
    }
    expect(gainLevelByName('medium')).toBe(SENSOR_GAIN_LEVELS[1]);
    expect(linearNoiseVariance(0.25, SENSOR_GAIN_LEVELS[0]!)).toBeCloseTo(0.0016 * 0.25 + SENSOR_GAIN_LEVELS[0]!.readNoiseStd ** 2, 12);
  });

  it('give the documented sRGB noise at mid-grey (code 118): ~5, ~11 and ~20 codes', () => {
    const std = SENSOR_GAIN_LEVELS.map((l) => srgbNoiseStdAt(118, l));
    expect(std[0]).toBeGreaterThanOrEqual(4);
    expect(std[0]).toBeLessThanOrEqual(6);
    expect(std[1]).toBeGreaterThanOrEqual(9);
    expect(std[1]).toBeLessThanOrEqual(13);
    expect(std[2]).toBeGreaterThanOrEqual(18);
    expect(std[2]).toBeLessThanOrEqual(26);
    // The numbers quoted in noise-model.ts.
    expect(std.map((s) => Number(s.toFixed(2)))).toEqual([5.36, 10.81, 20.46]);
  });

  it('rejects an unknown level name, listing the valid ones', () => {
    expect(() => gainLevelByName('extreme')).toThrow(new RangeError("gainLevelByName: unknown gain level 'extreme', valid names are 'low', 'medium', 'high'"));
  });
});

describe('addSensorNoise statistics', () => {
  it('adds zero-mean noise of variance shotGain * L + read^2 in linear light, away from clipping', () => {
    const size = 160; // 76,800 samples per field: the variance is known to ~0.5 %
    let checked = 0;
    for (const level of SENSOR_GAIN_LEVELS) {
      for (const linear of [0.02, 0.1, 0.3, 0.5, 0.6]) {
        const expected = linearNoiseVariance(linear, level);
        const std = Math.sqrt(expected);
        if (linear - 4 * std < 0 || linear + 4 * std > 1) continue; // clipping would bias both moments
        checked++;
        const noisy = addSensorNoise(flatF32(size, size, linearToSrgb(linear)), level, 1000 + checked);
        const back = Float64Array.from(noisy.data, (e) => srgbToLinear(e));
        const { mean, variance } = meanVar(back);
        expect(Math.abs(variance / expected - 1), `${level.name} at L=${linear}`).toBeLessThan(0.05);
        // Unbiased: within 4 standard errors of the mean.
        expect(Math.abs(mean - linear), `${level.name} at L=${linear}`).toBeLessThan((4 * std) / Math.sqrt(back.length));
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });

  it('clips to [0, 1]: the mean in deep shadow at high gain is that of a Gaussian clipped at black', () => {
    const level = gainLevelByName('high');
    const linear = 0.02;
    const noisy = addSensorNoise(flatF32(160, 160, linearToSrgb(linear)), level, 5);
    const back = Float64Array.from(noisy.data, (e) => srgbToLinear(e));
    expect(Math.min(...back)).toBe(0);
    expect(Math.max(...back)).toBeLessThanOrEqual(1);
    // E[max(X, 0)] for X ~ N(L, var), by midpoint integration over +-8 std.
    const std = Math.sqrt(linearNoiseVariance(linear, level));
    let expected = 0;
    const steps = 4000;
    for (let i = 0; i < steps; i++) {
      const z = -8 + (16 * (i + 0.5)) / steps;
      expected += Math.max(linear + std * z, 0) * Math.exp(-0.5 * z * z) * (16 / steps);
    }
    expected /= Math.sqrt(2 * Math.PI);
    expect(expected).toBeGreaterThan(linear * 1.25); // a bias the test must see, not a rounding error
    expect(Math.abs(meanVar(back).mean - expected)).toBeLessThan((4 * std) / Math.sqrt(back.length));
  });

  it('matches the first-order sRGB std on an rgb8 mid-grey field to within the curvature of the tone curve', () => {
    // Measured / first order, as documented in noise-model.ts: 1.01, 1.03, 1.13.
    const ratios = SENSOR_GAIN_LEVELS.map((level) => Math.sqrt(meanVar(addSensorNoise(flat8(200, 200, 118), level, 9).data).variance) / srgbNoiseStdAt(118, level));
    expect(ratios[0]).toBeCloseTo(1.01, 1);
    expect(ratios[1]).toBeCloseTo(1.03, 1);
    expect(ratios[2]).toBeCloseTo(1.13, 1);
    // The noise actually produced at mid-grey stays in each level's band too.
    const measured = ratios.map((r, i) => r * srgbNoiseStdAt(118, SENSOR_GAIN_LEVELS[i]!));
    expect(measured[0]).toBeGreaterThan(4);
    expect(measured[0]).toBeLessThan(6);
    expect(measured[1]).toBeGreaterThan(9);
    expect(measured[1]).toBeLessThan(13);
    expect(measured[2]).toBeGreaterThan(18);
    expect(measured[2]).toBeLessThan(26);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const image = flat8(64, 48, 90);
    const level = gainLevelByName('medium');
    const a = addSensorNoise(image, level, 42);
    const b = addSensorNoise(image, level, 42);
    const c = addSensorNoise(image, level, 43);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(c.data.buffer))).toBe(false);
    expect(a.sharesStorageWith(image)).toBe(false);
    expect(image.data.every((v) => v === 90)).toBe(true); // input untouched
  });

  it('reads any strides and returns a packed image of the input format', () => {
    const source = new Uint8Array(40 * 30 * 4).map((_, i) => (i * 37) % 256);
    // An rgb8 view over rgba storage (pixelStride 4), cropped: not packed.
    const strided = new ImageView({ width: 40, height: 30, format: 'rgb8', data: source, pixelStride: 4 }).crop(3, 2, 20, 10);
    expect(strided.isPacked).toBe(false);
    const level = gainLevelByName('low');
    const fromView = addSensorNoise(strided, level, 7);
    const fromCopy = addSensorNoise(strided.copy(), level, 7);
    expect(fromView.isPacked).toBe(true);
    expect(fromView.format).toBe('rgb8');
    expect(Array.from(fromView.data)).toEqual(Array.from(fromCopy.data));
    const f32 = addSensorNoise(flatF32(8, 4, 0.5), level, 1);
    expect(f32.format).toBe('rgbf32');
    expect(f32.data.some((v) => Math.abs(v * 255 - Math.round(v * 255)) > 1e-3)).toBe(true); // not quantized
  });

  it('lowers PSNR on a real frame monotonically from low to high gain', async () => {
    const clean = await loadFrame(480, 270);
    const psnr = SENSOR_GAIN_LEVELS.map((level) => psnr8(addSensorNoise(clean, level, 3), clean));
    expect(psnr[0]).toBeGreaterThan(psnr[1]!);
    expect(psnr[1]).toBeGreaterThan(psnr[2]!);
    expect(psnr[2]).toBeGreaterThan(10); // still an image, not white noise
  });
});

describe('addSensorNoise bad input', () => {
  it('rejects formats other than rgb8 and rgbf32', () => {
    const gray = ImageView.packed(4, 4, 'gray8', new Uint8Array(16));
    expect(() => addSensorNoise(gray, gainLevelByName('low'), 1)).toThrow(new TypeError("addSensorNoise: field 'image' must be rgb8 or rgbf32, got gray8"));
  });

  it('names the pixel and channel of a NaN in rgbf32 input', () => {
    const image = flatF32(4, 3, 0.5);
    image.set(2, 1, 1, Number.NaN);
    expect(() => addSensorNoise(image, gainLevelByName('low'), 1)).toThrow(new RangeError("addSensorNoise: field 'image' has NaN at pixel (2, 1) channel 1"));
  });
});
