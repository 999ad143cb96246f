import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../calibration/math/random.js';
import { DEFAULT_BRACKET_EV, synthesizeBrackets } from '../../perception/isp/brackets.js';
import { ExposureFusion, fuseExposures, mertensWeights, toneMapLocal } from '../../perception/isp/fusion.js';
import { ImageView } from '../../pipeline/image.js';

const FRAME = '/work/shared/data/pandaset-002/camera/00.jpg';

function randomRgb8(width: number, height: number, seed: number): ImageView {
  const random = seededRandom(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
  return ImageView.packed(width, height, 'rgb8', data);
}

/** A smooth colour pattern with edges, encoded in [0, 1]: something with contrast for the weights. */
function patternF32(width: number, height: number): ImageView {
  const data = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = 0.5 + 0.4 * Math.sin(x * 0.3) * Math.cos(y * 0.2);
      data[i + 1] = x < width / 2 ? 0.2 : 0.7;
      data[i + 2] = (x + y) / (width + height);
    }
  }
  return ImageView.packed(width, height, 'rgbf32', data);
}

function uniform(width: number, height: number, value: number): ImageView {
  return ImageView.packed(width, height, 'rgbf32', new Float32Array(width * height * 3).fill(value));
}

async function loadFrame(width: number, height: number): Promise<ImageView> {
  const { data, info } = await sharp(FRAME).resize(width, height).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return ImageView.packed(info.width, info.height, 'rgb8', new Uint8Array(data.buffer, data.byteOffset, data.length));
}

/** Grey level 0.299 R + 0.587 G + 0.114 B of each pixel, in 8-bit units. */
function greyLevels(image: ImageView): Float64Array {
  const scale = image.format === 'rgb8' ? 1 : 255;
  const grey = new Float64Array(image.width * image.height);
  for (let y = 0, p = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++, p++) {
      grey[p] = (0.299 * image.get(x, y, 0) + 0.587 * image.get(x, y, 1) + 0.114 * image.get(x, y, 2)) * scale;
    }
  }
  return grey;
}

const countWhere = (values: Float64Array, test: (v: number) => boolean) => values.reduce((n, v) => (test(v) ? n + 1 : n), 0);
function meanOf(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

describe('mertensWeights', () => {
  it('sum to one at every pixel, and do pick between brackets', () => {
    for (const brackets of [[randomRgb8(37, 23, 1), randomRgb8(37, 23, 2), randomRgb8(37, 23, 3)], [randomRgb8(16, 9, 4), randomRgb8(16, 9, 5)]]) {
      const weights = mertensWeights(brackets);
      expect(weights).toHaveLength(brackets.length);
      let maxWeight = 0;
      for (let p = 0; p < brackets[0]!.width * brackets[0]!.height; p++) {
        const sum = weights.reduce((s, w) => s + w[p]!, 0);
        expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
        for (const w of weights) maxWeight = Math.max(maxWeight, w[p]!);
      }
      // Random pixels differ in contrast and colour: some pixel is nearly all one bracket's.
      expect(maxWeight).toBeGreaterThan(0.9);
    }
  });
});

describe('fuseExposures', () => {
  it('fuses brackets of a uniform scene to that scene', () => {
    const out = fuseExposures([uniform(40, 30, 0.4), uniform(40, 30, 0.4), uniform(40, 30, 0.4)]);
    expect(out.format).toBe('rgbf32');
    expect([out.width, out.height]).toEqual([40, 30]);
    for (const v of out.data) expect(Math.abs(v - 0.4)).toBeLessThan(1e-4);
  });

  it('returns identical non-uniform brackets unchanged: equal weights make every band the input band', () => {
    const image = patternF32(53, 41);
    const out = fuseExposures([image, image, image]);
    let maxError = 0;
    for (let i = 0; i < image.data.length; i++) maxError = Math.max(maxError, Math.abs(out.data[i]! - image.data[i]!));
    expect(maxError).toBeLessThan(1e-3);
    // rgb8 brackets too: the output is the codes / 255.
    const codes = randomRgb8(31, 17, 9);
    const fromCodes = fuseExposures([codes, codes]);
    for (let i = 0; i < codes.data.length; i++) expect(Math.abs(fromCodes.data[i]! - codes.data[i]! / 255)).toBeLessThan(1e-3);
  });

  it("matches OpenCV's createMergeMertens(1, 1, 1) on real 64x48 brackets", () => {
    // Written by test/bench/opencv_mertens_fixture.py (OpenCV 4.6): brackets -2, 0, +2 EV of a
    // pandaset frame and OpenCV's float output. Measured: mean |difference| 2.1e-7, max 1.5e-5.
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/mertens-opencv.json', import.meta.url), 'utf8')) as {
      width: number;
      height: number;
      brackets: string[];
      fused: string;
    };
    const { width, height } = fixture;
    const brackets = fixture.brackets.map((b) => ImageView.packed(width, height, 'rgb8', new Uint8Array(Buffer.from(b, 'base64'))));
    const bytes = Buffer.from(fixture.fused, 'base64');
    const reference = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    const out = fuseExposures(brackets);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < reference.length; i++) {
      const d = Math.abs(out.data[i]! - Math.min(1, Math.max(0, reference[i]!)));
      sum += d;
      max = Math.max(max, d);
    }
    expect(sum / reference.length).toBeLessThan(1e-6);
    expect(max).toBeLessThan(1e-4);
  });

  it('gives the same result for rgbf32 brackets, strided views and a reused ExposureFusion', () => {
    const brackets = [randomRgb8(29, 19, 11), randomRgb8(29, 19, 12), randomRgb8(29, 19, 13)];
    const expected = fuseExposures(brackets);
    const asFloat = brackets.map((b) => ImageView.packed(b.width, b.height, 'rgbf32', Float32Array.from(b.data, (v) => v / 255)));
    // The same pixels as a crop out of a larger rgba8 frame: offset, row stride and pixel stride all differ.
    const strided = brackets.map((b) => {
      const big = new Uint8Array(35 * 24 * 4);
      const view = new ImageView({ width: 35, height: 24, format: 'rgb8', data: big, pixelStride: 4 }).crop(3, 2, 29, 19);
      for (let y = 0; y < 19; y++) for (let x = 0; x < 29; x++) for (let c = 0; c < 3; c++) view.set(x, y, c, b.get(x, y, c));
      return view;
    });
    const fusion = new ExposureFusion(29, 19);
    fusion.fuse([randomRgb8(29, 19, 14), randomRgb8(29, 19, 15)]); // leaves other data in the buffers
    for (const out of [fuseExposures(asFloat), fuseExposures(strided), fusion.fuse(brackets)]) {
      for (let i = 0; i < expected.data.length; i++) expect(Math.abs(out.data[i]! - expected.data[i]!)).toBeLessThan(1e-5);
    }
  });

  it('fuses brackets of a real frame into one with neither the clipping of +2 EV nor the crushed shadows of -2 EV', async () => {
    const clean = await loadFrame(480, 270);
    const brackets = synthesizeBrackets(clean, DEFAULT_BRACKET_EV);
    const fused = fuseExposures(brackets);
    const grey = greyLevels(fused);
    const [under, middle, over] = brackets.map(greyLevels) as [Float64Array, Float64Array, Float64Array];
    // Pixels (grey level) clipped to 255 and crushed below 5. Measured on this frame: clipped 0 fused
    // vs 34,910 at +2 EV; crushed 7 fused vs 12 at -2 EV (the frame is daylight: its -2 EV bracket
    // has few crushed pixels). Counted per channel sample instead, the fused image has *more*
    // crushed samples (251 vs 170): the Laplacian blend undershoots in a saturated colour channel
    // next to strong edges (Mertens' halos; OpenCV does the same).
    const clipped = (v: number) => v >= 254.5;
    const crushed = (v: number) => v < 5;
    expect(countWhere(grey, clipped)).toBeLessThan(countWhere(over, clipped) / 100);
    expect(countWhere(grey, crushed)).toBeLessThan(countWhere(under, crushed));
    // Mean grey: measured 118.6 fused vs 102.2 in the middle bracket (-2 EV: 51.2, +2 EV: 168.8).
    // Well-exposedness pulls every pixel toward mid-grey (127.5), so the fused mean lies between the
    // middle bracket's and mid-grey; and within 20 levels of the middle bracket's.
    const fusedMean = meanOf(grey);
    const middleMean = meanOf(middle);
    expect(fusedMean).toBeGreaterThan(middleMean);
    expect(fusedMean).toBeLessThan(127.5);
    expect(Math.abs(fusedMean - middleMean)).toBeLessThan(20);
  });

  it('rejects bad input with messages naming the argument', () => {
    const a = randomRgb8(8, 6, 1);
    expect(() => fuseExposures([a, randomRgb8(6, 8, 2)])).toThrow(new RangeError("fuseExposures: 'brackets[1]' is 6x8, brackets[0] is 8x6"));
    expect(() => fuseExposures([a])).toThrow(new RangeError("fuseExposures: 'brackets' needs at least 2 images, got 1"));
    const nan = uniform(8, 6, 0.5);
    nan.set(3, 4, 1, Number.NaN);
    expect(() => fuseExposures([uniform(8, 6, 0.5), nan])).toThrow(new RangeError("fuseExposures: 'brackets[1]' has NaN at pixel (3, 4) channel 1"));
    const grey = ImageView.packed(8, 6, 'gray8', new Uint8Array(48));
    expect(() => fuseExposures([a, grey])).toThrow(new TypeError("fuseExposures: 'brackets[1]' is gray8, expected rgb8 or rgbf32"));
    expect(() => fuseExposures([a, uniform(8, 6, 0.5)])).toThrow(new TypeError("fuseExposures: 'brackets[1]' is rgbf32, brackets[0] is rgb8"));
    expect(() => fuseExposures([a, a], { levels: 3 })).toThrow(new RangeError("fuseExposures: 'levels' must be an integer in [0, 2] for 8x6, got 3"));
    expect(() => new ExposureFusion(16, 16).fuse([a, a])).toThrow(new RangeError("ExposureFusion.fuse: 'brackets[0]' is 8x6, this ExposureFusion is for 16x16"));
  });
});

describe('toneMapLocal', () => {
  it('lifts the darkest tenth of a real frame and keeps its white at white', async () => {
    const clean = await loadFrame(480, 270);
    const mapped = toneMapLocal(clean);
    expect(mapped.format).toBe('rgbf32');
    const before = greyLevels(clean);
    const after = greyLevels(mapped);
    const darkest = Array.from(before.keys())
      .sort((p, q) => before[p]! - before[q]!)
      .slice(0, before.length / 10);
    const darkBefore = meanOf(darkest.map((p) => before[p]!));
    const darkAfter = meanOf(darkest.map((p) => after[p]!));
    // Measured: 38.3 -> 47.9 (the +1.5 EV exposure is 2.8x brighter in linear light there).
    expect(darkAfter).toBeGreaterThan(darkBefore + 5);
    // Samples at 255 (48 on this frame) stay within a level of 255: both exposures clip there.
    let atWhite = 0;
    for (let y = 0; y < clean.height; y++) {
      for (let x = 0; x < clean.width; x++) {
        for (let c = 0; c < 3; c++) {
          if (clean.get(x, y, c) !== 255) continue;
          atWhite++;
          expect(mapped.get(x, y, c) * 255).toBeGreaterThan(254);
        }
      }
    }
    expect(atWhite).toBeGreaterThan(10);
    // The rgb8 option is the same image rounded.
    const bytes = toneMapLocal(clean, { output: 'rgb8' });
    expect(bytes.format).toBe('rgb8');
    for (let i = 0; i < bytes.data.length; i += 997) expect(bytes.data[i]).toBe(Math.round(mapped.data[i]! * 255));
    // rgbf32 input takes the exact tone curve instead of 8-bit tables: the same picture to within
    // the 8-bit quantization of the virtual exposure.
    const asFloat = ImageView.packed(clean.width, clean.height, 'rgbf32', Float32Array.from(clean.data, (v) => v / 255));
    const fromFloat = toneMapLocal(asFloat);
    let difference = 0;
    for (let i = 0; i < fromFloat.data.length; i++) difference += Math.abs(fromFloat.data[i]! - mapped.data[i]!);
    expect(difference / fromFloat.data.length).toBeLessThan(1 / 255);
  });

  it('rejects bad input', () => {
    expect(() => toneMapLocal(ImageView.packed(4, 4, 'gray8', new Uint8Array(16)))).toThrow(new TypeError("toneMapLocal: 'image' is gray8, expected rgb8 or rgbf32"));
    expect(() => toneMapLocal(randomRgb8(4, 4, 1), { evStops: [0] })).toThrow(new RangeError("toneMapLocal: 'evStops' needs at least 2 stops, got 1"));
  });
});

describe('synthesizeBrackets', () => {
  it('exposes in linear light: 0 EV is the frame, +2 EV is 4x the linear light, clipped; a noise hook sees every bracket', () => {
    const clean = randomRgb8(16, 8, 21);
    const seen: number[] = [];
    const brackets = synthesizeBrackets(clean, [-2, 0, 2], {
      noise: (image, i) => {
        seen.push(i);
        return image;
      },
    });
    expect(seen).toEqual([0, 1, 2]);
    expect(Array.from(brackets[1]!.data)).toEqual(Array.from(clean.data));
    // Code 128 is linear 0.2159: x4 = 0.863, code 239.0; x0.25 = 0.0540, code 65.7. 200 (0.578) clips at +2 EV.
    const mid = ImageView.packed(2, 1, 'rgb8', new Uint8Array([128, 128, 128, 200, 200, 200]));
    const [under, , over] = synthesizeBrackets(mid);
    expect(Array.from(over!.data)).toEqual([239, 239, 239, 255, 255, 255]);
    expect(under!.data[0]).toBe(66);
    expect(() => synthesizeBrackets(ImageView.packed(2, 2, 'gray8', new Uint8Array(4)))).toThrow(new TypeError("synthesizeBrackets: 'clean' is gray8, expected rgb8"));
  });
});
