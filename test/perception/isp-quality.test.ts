import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ImageView } from '../../pipeline/image.js';
import { MEF_SCALE_WEIGHTS, mefSsim, mefSsimScales, mefSsimSingleScale, psnr, ssim } from '../../perception/isp/quality.js';

/** Written by test/bench/quality_reference.py (numpy, window by window as the authors' MATLAB). */
interface Fixture {
  width: number;
  height: number;
  images: Record<string, string>;
  ssim: { reference: string; test: string; psnr: number | null; ssim: number; ssimGreen: number }[];
  mefSsim: { brackets: string[]; fused: string; single: number; multi: number; scales: number[] }[];
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/isp-quality-reference.json', import.meta.url), 'utf8')) as Fixture;
const W = fixture.width;
/**
 * Agreement with the numpy reference on 8-bit input. The two compute in doubles by different
 * routes (separable filters of products here, explicit windows there) and agree to ~1e-15; 1e-6
 * leaves room for other platforms' libm while still far inside the brief's 1e-4.
 */
const TOLERANCE = 1e-6;
const H = fixture.height;

function image(name: string): ImageView {
  const b64 = fixture.images[name];
  if (b64 === undefined) throw new Error(`fixture has no image '${name}'`);
  return ImageView.packed(W, H, 'rgb8', new Uint8Array(Buffer.from(b64, 'base64')));
}

function toFloat(view: ImageView): ImageView {
  const out = new Float32Array(view.width * view.height * view.channels);
  const src = view.copy().data;
  for (let i = 0; i < out.length; i++) out[i] = src[i]! / 255;
  return ImageView.packed(view.width, view.height, view.channels === 1 ? 'grayf32' : 'rgbf32', out);
}

function map(view: ImageView, f: (v: number, i: number) => number): ImageView {
  const data = new Uint8Array(view.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.max(0, Math.round(f(view.data[i]!, i))));
  return ImageView.packed(view.width, view.height, view.format, data);
}

/** Deterministic N(0, 1) samples (mulberry32 + Box-Muller). */
function gaussians(seed: number): () => number {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Box blur of radius r per channel, edges clamped. */
function boxBlur(view: ImageView, r: number): ImageView {
  const { width: w, height: h, channels: ch } = view;
  const out = new Uint8Array(w * h * ch);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < ch; c++) {
        let sum = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) sum += view.get(Math.min(w - 1, Math.max(0, x + dx)), Math.min(h - 1, Math.max(0, y + dy)), c);
        }
        out[(y * w + x) * ch + c] = Math.round(sum / (2 * r + 1) ** 2);
      }
    }
  }
  return ImageView.packed(w, h, view.format, out);
}

/**
 * Exposure fusion by well-exposedness (Mertens et al.: exp(-(v - 0.5)^2 / 0.08) multiplied over
 * R, G, B), the weight maps smoothed by a 9x9 box twice so that they do not leave seams.
 */
function fuseWellExposed(brackets: ImageView[]): ImageView {
  const n = W * H;
  const weights = brackets.map((b) => {
    const wt = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let v = 1;
      for (let c = 0; c < 3; c++) v *= Math.exp(-((b.data[i * 3 + c]! / 255 - 0.5) ** 2) / 0.08);
      wt[i] = v + 1e-12;
    }
    for (let pass = 0; pass < 2; pass++) {
      const src = wt.slice();
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          let s = 0;
          for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) s += src[Math.min(H - 1, Math.max(0, y + dy)) * W + Math.min(W - 1, Math.max(0, x + dx))]!;
          wt[y * W + x] = s / 81;
        }
      }
    }
    return wt;
  });
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    let total = 0;
    for (const wt of weights) total += wt[i]!;
    for (let c = 0; c < 3; c++) {
      let v = 0;
      brackets.forEach((b, k) => (v += weights[k]![i]! * b.data[i * 3 + c]!));
      out[i * 3 + c] = Math.round(v / total);
    }
  }
  return ImageView.packed(W, H, 'rgb8', out);
}

describe('psnr', () => {
  it('is 20 log10(255 / 5) for an 8-bit image off by exactly 5 everywhere, and Infinity for identical images', () => {
    const clean = image('clean');
    const off = map(clean, (v) => (v < 128 ? v + 5 : v - 5));
    expect(psnr(clean, off)).toBeCloseTo(20 * Math.log10(255 / 5), 12);
    expect(psnr(clean, clean)).toBe(Infinity);
    expect(psnr(clean, clean.copy())).toBe(Infinity);
    // An explicit peak replaces 255.
    expect(psnr(clean, off, 100)).toBeCloseTo(20 * Math.log10(100 / 5), 12);
  });

  it('takes peak 1 for float images, the grey channel for grey images, and ignores alpha', () => {
    const a = ImageView.packed(2, 1, 'grayf32', new Float32Array([0.25, 0.5]));
    const b = ImageView.packed(2, 1, 'grayf32', new Float32Array([0.35, 0.5]));
    // MSE = 0.1^2 / 2 (in float32): PSNR = 10 log10(2 / 0.01) ~ 23.01 dB.
    expect(psnr(a, b)).toBeCloseTo(10 * Math.log10(2 / (Math.fround(0.35) - 0.25) ** 2), 9);
    const g1 = ImageView.packed(2, 2, 'gray8', new Uint8Array([10, 20, 30, 40]));
    const g2 = ImageView.packed(2, 2, 'gray8', new Uint8Array([12, 20, 30, 40]));
    expect(psnr(g1, g2)).toBeCloseTo(10 * Math.log10((255 * 255) / 1), 12);
    const rgba1 = ImageView.packed(1, 1, 'rgba8', new Uint8Array([10, 10, 10, 0]));
    const rgba2 = ImageView.packed(1, 1, 'rgba8', new Uint8Array([13, 10, 10, 255]));
    expect(psnr(rgba1, rgba2)).toBeCloseTo(10 * Math.log10((255 * 255) / 3), 12);
  });

  it('matches the numpy reference', () => {
    for (const c of fixture.ssim) expect(psnr(image(c.reference), image(c.test))).toBeCloseTo(c.psnr ?? Infinity, 9);
  });
});

describe('ssim', () => {
  it('is exactly 1 for identical images, 8-bit and float', () => {
    expect(ssim(image('noise20'), image('noise20'))).toBe(1);
    expect(ssim(toFloat(image('blur2')), toFloat(image('blur2')))).toBe(1);
  });

  it('matches the numpy reference: RGB mean, a strided grey channel, and float images with L = 1', () => {
    for (const c of fixture.ssim) {
      const ref = image(c.reference);
      const test = image(c.test);
      expect(Math.abs(ssim(ref, test) - c.ssim), c.test).toBeLessThan(TOLERANCE);
      expect(Math.abs(ssim(ref.channel(1), test.channel(1)) - c.ssimGreen), c.test).toBeLessThan(TOLERANCE);
      // Float32 storage of v / 255 rounds a little: the brief's 1e-4.
      expect(Math.abs(ssim(toFloat(ref), toFloat(test)) - c.ssim), c.test).toBeLessThan(1e-4);
    }
    // The cases are not all near 1: a formula that ignores structure would not pass.
    expect(fixture.ssim.map((c) => c.ssim).sort((a, b) => a - b)[0]).toBeLessThan(0.6);
  });

  it('falls monotonically with noise strength and with blur, and is symmetric', () => {
    const clean = image('clean');
    const scores = [2, 5, 10, 20, 40].map((sigma) => {
      const noise = gaussians(7);
      return ssim(clean, map(clean, (v) => v + sigma * noise()));
    });
    for (let i = 1; i < scores.length; i++) expect(scores[i]!).toBeLessThan(scores[i - 1]!);
    expect(scores[0]!).toBeGreaterThan(0.97);
    expect(scores.at(-1)!).toBeLessThan(0.5);
    const blurred = [1, 2, 3].map((r) => ssim(clean, boxBlur(clean, r)));
    for (let i = 1; i < blurred.length; i++) expect(blurred[i]!).toBeLessThan(blurred[i - 1]!);
    expect(ssim(image('noise10'), clean)).toBeCloseTo(ssim(clean, image('noise10')), 12);
  });

  it('costs a mean shift less than noise of the same PSNR (structure, not error energy)', () => {
    const clean = image('clean');
    const shifted = map(clean, (v) => (v < 128 ? v + 10 : v - 10));
    const noise = gaussians(3);
    const noisy = map(clean, (v) => v + 10 * noise());
    expect(Math.abs(psnr(clean, shifted) - psnr(clean, noisy))).toBeLessThan(0.5);
    expect(ssim(clean, shifted)).toBeGreaterThan(ssim(clean, noisy) + 0.1);
  });
});

describe('mefSsim', () => {
  const brackets = fixture.mefSsim[0]!.brackets.map(image);

  it('matches the numpy reference, single-scale, per scale and multi-scale', () => {
    for (const c of fixture.mefSsim) {
      const b = c.brackets.map(image);
      const fused = image(c.fused);
      expect(Math.abs(mefSsimSingleScale(b, fused) - c.single), c.fused).toBeLessThan(TOLERANCE);
      const { score, scales } = mefSsimScales(b, fused);
      scales.forEach((q, l) => expect(Math.abs(q - c.scales[l]!), `${c.fused} scale ${l}`).toBeLessThan(TOLERANCE));
      expect(Math.abs(score - c.multi), c.fused).toBeLessThan(TOLERANCE);
      expect(mefSsim(b, fused)).toBe(score);
    }
    expect(MEF_SCALE_WEIGHTS.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('scores a smooth well-exposedness fusion above every single bracket, and a flat grey image low', () => {
    const fused = fuseWellExposed(brackets);
    const fusedScore = mefSsimSingleScale(brackets, fused);
    const bracketScores = brackets.map((b) => mefSsimSingleScale(brackets, b));
    // The middle exposure is the best single bracket of this scene, and the fusion beats it.
    expect(bracketScores[1]!).toBeGreaterThan(Math.max(bracketScores[0]!, bracketScores[2]!));
    expect(fusedScore).toBeGreaterThan(bracketScores[1]! + 0.03);
    const grey = ImageView.packed(W, H, 'rgb8', new Uint8Array(W * H * 3).fill(128));
    expect(mefSsimSingleScale(brackets, grey)).toBeLessThan(0.5);
    expect(mefSsim(brackets, grey)).toBeLessThan(0.5);
  });

  it('is close to 1 when every bracket is the fused image, and below 1 when the fused image is noisy', () => {
    const mid = brackets[1]!;
    expect(mefSsimSingleScale([mid, mid, mid], mid)).toBeGreaterThan(0.999);
    const noise = gaussians(11);
    expect(mefSsimSingleScale([mid, mid], map(mid, (v) => v + 20 * noise()))).toBeLessThan(0.9);
  });

  it('takes a float fused image against 8-bit brackets (fusion works in float)', () => {
    const fused = image('fusedSmooth');
    // Float grey is not rounded like 8-bit grey, so the scores differ by a little, not by much.
    expect(Math.abs(mefSsimSingleScale(brackets, toFloat(fused)) - mefSsimSingleScale(brackets, fused))).toBeLessThan(5e-3);
  });
});

describe('bad input', () => {
  const a = image('clean');
  const small = a.crop(0, 0, 32, 24);

  it('names the function and the arguments', () => {
    expect(() => ssim(a, small)).toThrow("ssim: images differ in size: 'reference' is 64x48, 'test' is 32x24");
    expect(() => psnr(a, small)).toThrow("psnr: images differ in size: 'reference' is 64x48, 'test' is 32x24");
    expect(() => ssim(a, a.channel(0))).toThrow("ssim: images differ in format: 'reference' is rgb8, 'test' is gray8");
    expect(() => psnr(a, toFloat(a))).toThrow("psnr: images differ in format: 'reference' is rgb8, 'test' is rgbf32");
    expect(() => psnr(a, a, 0)).toThrow("psnr: 'peak' must be a positive finite number, got 0");
    expect(() => ssim(a.crop(0, 0, 10, 48), a.crop(1, 0, 10, 48))).toThrow('ssim: images must be at least 11x11 pixels (the window), got 10x48');
  });

  it('rejects NaN and Infinity in float images', () => {
    const f = toFloat(a);
    const bad = f.copy();
    bad.set(3, 2, 1, Number.NaN);
    expect(() => psnr(f, bad)).toThrow("psnr: 'test' has a non-finite value (NaN) at pixel (3, 2) channel 1");
    expect(() => ssim(bad, f)).toThrow("ssim: 'reference' has a non-finite value (NaN) at pixel (3, 2) channel 1");
    bad.set(3, 2, 1, Infinity);
    expect(() => mefSsim([f, f], bad)).toThrow("mefSsim: 'fused' has a non-finite value (Infinity) at pixel (3, 2) channel 1");
  });

  it('checks the brackets of mefSsim', () => {
    const [b0, b1] = [image('under'), image('over')];
    expect(() => mefSsim([b0], b0)).toThrow('mefSsim: needs at least 2 brackets, got 1');
    expect(() => mefSsimSingleScale([], b0)).toThrow('mefSsimSingleScale: needs at least 2 brackets, got 0');
    expect(() => mefSsim([b0, small], b0)).toThrow("mefSsim: images differ in size: 'brackets[0]' is 64x48, 'brackets[1]' is 32x24");
    expect(() => mefSsim([b0, b1], small)).toThrow("mefSsim: images differ in size: 'brackets[0]' is 64x48, 'fused' is 32x24");
    expect(() => mefSsim([b0, b1.channel(0)], b0)).toThrow("mefSsim: images differ in format: 'brackets[0]' is rgb8, 'brackets[1]' is gray8");
    expect(() => mefSsim([b0, b1], b0.channel(0))).toThrow("mefSsim: images differ in format: 'brackets[0]' is rgb8, 'fused' is gray8");
    // Three scales need an 11-pixel window at a quarter of the size; one scale needs 11 pixels.
    const c = (v: ImageView): ImageView => v.crop(0, 0, 64, 43);
    expect(() => mefSsim([c(b0), c(b1)], c(b0))).toThrow('mefSsim: images must be at least 44x44 pixels, got 64x43');
    expect(mefSsimSingleScale([c(b0), c(b1)], c(b0))).toBeGreaterThan(0);
  });
});
