import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageView } from '../../pipeline/image.js';
import { DEFAULT_GUIDED_EPSILON, DEFAULT_GUIDED_RADIUS_PX, guidedFilterDenoise, guidedFilterParamsFor } from '../../perception/isp/guided-filter.js';
import { addSensorNoise, gainLevelByName, srgbNoiseStdAt } from '../../perception/isp/noise-model.js';

const FRAME = '/work/shared/data/pandaset-002/camera/00.jpg';
const MEDIUM = gainLevelByName('medium');

function flat8(width: number, height: number, code: number): ImageView {
  return ImageView.packed(width, height, 'rgb8', new Uint8Array(width * height * 3).fill(code));
}

/** Std of the values of `image` in the rectangle [x0, x1) x [y0, y1), all channels pooled. */
function stdIn(image: ImageView, x0: number, x1: number, y0: number, y1: number): number {
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      for (let c = 0; c < 3; c++) {
        const v = image.get(x, y, c);
        n++;
        sum += v;
        sumSq += v * v;
      }
    }
  }
  const mean = sum / n;
  return Math.sqrt(sumSq / n - mean * mean);
}

function psnr8(a: ImageView, b: ImageView): number {
  let ss = 0;
  for (let i = 0; i < a.data.length; i++) ss += (a.data[i]! - b.data[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (ss / a.data.length));
}

/** Column profile (mean over rows and channels) of an image. */
function columnProfile(image: ImageView): number[] {
  const profile: number[] = [];
  for (let x = 0; x < image.width; x++) {
    let sum = 0;
    for (let y = 0; y < image.height; y++) for (let c = 0; c < 3; c++) sum += image.get(x, y, c);
    profile.push(sum / (image.height * 3));
  }
  return profile;
}

/** Width in px of the 10 %-90 % rise of a rising profile from `low` to `high` (linear interpolation between columns). */
function riseWidthPx(profile: number[], low: number, high: number): number {
  const crossing = (level: number): number => {
    const i = profile.findIndex((v) => v >= level);
    if (i <= 0) return i;
    return i - 1 + (level - profile[i - 1]!) / (profile[i]! - profile[i - 1]!);
  };
  return crossing(low + 0.9 * (high - low)) - crossing(low + 0.1 * (high - low));
}

describe('guidedFilterDenoise', () => {
  it('cuts the noise of a flat patch by more than 3x', () => {
    const noisy = addSensorNoise(flat8(128, 96, 118), MEDIUM, 11);
    const filtered = guidedFilterDenoise(noisy, { level: MEDIUM });
    const before = stdIn(noisy, 0, 128, 0, 96);
    const after = stdIn(filtered, 0, 128, 0, 96);
    expect(before).toBeGreaterThan(9);
    expect(after * 3).toBeLessThan(before);
  });

  it('keeps a sharp step edge sharp while removing the noise beside it', () => {
    const width = 128;
    const height = 64;
    const clean = flat8(width, height, 50);
    for (let y = 0; y < height; y++) for (let x = width / 2; x < width; x++) for (let c = 0; c < 3; c++) clean.set(x, y, c, 200);
    const noisy = addSensorNoise(clean, MEDIUM, 12);
    const { radiusPx } = guidedFilterParamsFor(MEDIUM);
    const filtered = guidedFilterDenoise(noisy, { level: MEDIUM });
    // Row-averaged profile: the edge's 10-90 % rise stays within 2 radii (the unfiltered one is ~1 px).
    const profile = columnProfile(filtered);
    const low = profile.slice(0, 48).reduce((a, b) => a + b) / 48;
    const high = profile.slice(80).reduce((a, b) => a + b) / 48;
    expect(high - low).toBeGreaterThan(140);
    expect(riseWidthPx(profile, low, high)).toBeLessThanOrEqual(2 * radiusPx);
    // A 7x7 box blur, for contrast, spreads the same edge over ~5 px: the test can tell blurring from filtering.
    const boxProfile = columnProfile(noisy).map((_, x, p) => p.slice(Math.max(x - 3, 0), x + 4).reduce((a, b) => a + b) / (Math.min(x + 4, width) - Math.max(x - 3, 0)));
    expect(riseWidthPx(boxProfile, low, high)).toBeGreaterThan(2 * radiusPx);
    // Noise on both sides, away from the edge, drops by more than half.
    for (const [x0, x1] of [
      [4, 48],
      [80, 124],
    ] as const) {
      expect(stdIn(filtered, x0, x1, 4, 60) * 2, `columns ${x0}-${x1}`).toBeLessThan(stdIn(noisy, x0, x1, 4, 60));
    }
  });

  it('improves PSNR on a real frame with medium noise by at least 2 dB', async () => {
    const { data, info } = await sharp(FRAME).resize(480, 270).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const clean = ImageView.packed(info.width, info.height, 'rgb8', new Uint8Array(data.buffer, data.byteOffset, data.length));
    const noisy = addSensorNoise(clean, MEDIUM, 13);
    const gainDb = psnr8(guidedFilterDenoise(noisy, { level: MEDIUM }), clean) - psnr8(noisy, clean);
    expect(gainDb).toBeGreaterThan(2);
  });

  it('leaves a constant image and the interior of a linear ramp unchanged', () => {
    const constant = flat8(33, 17, 77);
    expect(Array.from(guidedFilterDenoise(constant, {}).data).every((v) => v === 77)).toBe(true);
    // p = I is a linear function of the guide: every window fits it exactly up to the epsilon shrinkage, which the ramp's local mean undoes.
    const ramp = ImageView.packed(64, 8, 'rgbf32', new Float32Array(64 * 8 * 3));
    for (let y = 0; y < 8; y++) for (let x = 0; x < 64; x++) for (let c = 0; c < 3; c++) ramp.set(x, y, c, 0.2 + 0.01 * x);
    const out = guidedFilterDenoise(ramp, { radiusPx: 2, epsilon: 1e-3 });
    for (let x = 6; x < 58; x++) expect(out.get(x, 4, 1)).toBeCloseTo(0.2 + 0.01 * x, 4);
  });

  it('returns a new packed image of the input format and reads any strides', () => {
    const noisy = addSensorNoise(flat8(40, 30, 100), MEDIUM, 14);
    const out8 = guidedFilterDenoise(noisy, { radiusPx: 3, epsilon: 0.002 });
    expect(out8.format).toBe('rgb8');
    expect(out8.isPacked).toBe(true);
    expect(out8.sharesStorageWith(noisy)).toBe(false);
    const f32 = ImageView.packed(40, 30, 'rgbf32', Float32Array.from(noisy.data, (v) => v / 255));
    const outF32 = guidedFilterDenoise(f32, { radiusPx: 3, epsilon: 0.002 });
    expect(outF32.format).toBe('rgbf32');
    // Same filter on the same values: the float result rounds to the byte result.
    for (let i = 0; i < out8.data.length; i++) expect(Math.abs(outF32.data[i]! * 255 - out8.data[i]!)).toBeLessThanOrEqual(0.5 + 1e-3);
    // A strided crop filters like its packed copy.
    const wide = new Uint8Array(50 * 30 * 4).map((_, i) => (i * 31) % 251);
    const strided = new ImageView({ width: 50, height: 30, format: 'rgb8', data: wide, pixelStride: 4 }).crop(5, 3, 33, 21);
    expect(Array.from(guidedFilterDenoise(strided, {}).data)).toEqual(Array.from(guidedFilterDenoise(strided.copy(), {}).data));
  });

  it('derives its parameters from a gain level, epsilon following the noise variance at mid-grey', () => {
    const params = ['low', 'medium', 'high'].map((name) => guidedFilterParamsFor(gainLevelByName(name)));
    expect(params.map((p) => p.radiusPx)).toEqual([2, 2, 2]);
    expect(params[0]!.epsilon).toBeLessThan(params[1]!.epsilon);
    expect(params[1]!.epsilon).toBeLessThan(params[2]!.epsilon);
    expect(params[1]!.epsilon).toBeCloseTo(0.5 * (srgbNoiseStdAt(118, MEDIUM) / 255) ** 2, 12);
    expect(DEFAULT_GUIDED_RADIUS_PX).toBe(params[1]!.radiusPx);
    expect(DEFAULT_GUIDED_EPSILON).toBeCloseTo(params[1]!.epsilon, 5);
  });

  it('rejects bad options and formats with errors naming the argument', () => {
    const image = flat8(8, 8, 10);
    expect(() => guidedFilterDenoise(image, { radiusPx: 0 })).toThrow(new RangeError("guidedFilterDenoise: option 'radiusPx' must be a positive integer, got 0"));
    expect(() => guidedFilterDenoise(image, { radiusPx: 1.5 })).toThrow(new RangeError("guidedFilterDenoise: option 'radiusPx' must be a positive integer, got 1.5"));
    expect(() => guidedFilterDenoise(image, { epsilon: -0.01 })).toThrow(new RangeError("guidedFilterDenoise: option 'epsilon' must be a positive finite number, got -0.01"));
    expect(() => guidedFilterDenoise(image, { epsilon: Number.NaN })).toThrow(new RangeError("guidedFilterDenoise: option 'epsilon' must be a positive finite number, got NaN"));
    const gray = ImageView.packed(8, 8, 'gray8', new Uint8Array(64));
    expect(() => guidedFilterDenoise(gray, {})).toThrow(new TypeError("guidedFilterDenoise: field 'image' must be rgb8 or rgbf32, got gray8"));
    const nan = ImageView.packed(4, 4, 'rgbf32', new Float32Array(48).fill(0.5));
    nan.set(3, 2, 0, Number.NaN);
    expect(() => guidedFilterDenoise(nan, {})).toThrow(new RangeError("guidedFilterDenoise: field 'image' has NaN at pixel (3, 2) channel 0"));
  });
});
