import { describe, expect, it } from 'vitest';
import { addNoiseAndQuantize, gaussianBlur, rasterizeDot } from '../../calibration/sim/index.js';
import { gaussianRandom, seededRandom } from '../../calibration/math/random.js';
import { detectDots, indexDotGrid, type DetectedDot } from '../../calibration/windshield/index.js';

describe('detectDots', () => {
  it('finds sub-pixel centroids to < 0.05 px RMS in a noisy, blurred image, rejecting streaks', () => {
    const w = 400, h = 300;
    const uniform = seededRandom(3);
    const image = new Float32Array(w * h).fill(10);
    const truth: [number, number][] = [];
    for (let j = 0; j < 8; j++) {
      for (let i = 0; i < 12; i++) {
        const x = 25 + i * 30 + uniform(), y = 25 + j * 32 + uniform();
        truth.push([x, y]);
        rasterizeDot(image, w, h, { xPx: x, yPx: y }, [0.66, 0.05, -0.03, 0.95], 4, 170);
      }
    }
    // A streak (reflection) that must be rejected by shape.
    for (let x = 100; x < 130; x++) {
      image[280 * w + x] = 200;
      image[281 * w + x] = 200;
    }
    gaussianBlur(image, w, h, 0.8);
    const pixels = addNoiseAndQuantize(image, 0.1, 1.5, gaussianRandom(uniform));
    const { dots, rejectedBlobs } = detectDots({ widthPx: w, heightPx: h, data: pixels });
    expect(dots).toHaveLength(truth.length);
    expect(rejectedBlobs).toBeGreaterThanOrEqual(1);
    let sum = 0;
    for (const [x, y] of truth) {
      const d = dots.reduce((best, p) => (Math.hypot(p.xPx - x, p.yPx - y) < Math.hypot(best.xPx - x, best.yPx - y) ? p : best));
      sum += (d.xPx - x) ** 2 + (d.yPx - y) ** 2;
    }
    expect(Math.sqrt(sum / truth.length / 2)).toBeLessThan(0.05);
  });

  it('refuses an image whose size does not match its data', () => {
    expect(() => detectDots({ widthPx: 10, heightPx: 10, data: new Uint8Array(5) })).toThrow(RangeError);
  });
});

describe('indexDotGrid', () => {
  const cols = 15, rows = 9;
  // A distorted, slightly rotated lattice.
  const position = (i: number, j: number): [number, number] => {
    const x = (i - 7) * 27, y = (j - 4) * 21;
    const k = 1 + 3e-7 * (x * x + y * y);
    return [400 + x * k + 0.03 * y + 2e-4 * x * y, 300 + y * k - 0.03 * x];
  };
  const missing = new Set([0, 20, 21, 67, cols * rows - 1]);
  const spurious: [number, number][] = [[413, 312], [50, 40], [600, 150], [150, 420]];
  const dots: DetectedDot[] = [];
  const nodeOf: number[] = [];
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      if (missing.has(j * cols + i)) continue;
      const [x, y] = position(i, j);
      dots.push({ xPx: x, yPx: y, areaPx: 20, fluxDn: 1000 });
      nodeOf.push(j * cols + i);
    }
  }
  for (const [x, y] of spurious) {
    dots.push({ xPx: x, yPx: y, areaPx: 20, fluxDn: 1000 });
    nodeOf.push(-1);
  }
  // Shuffle deterministically so the order carries no information.
  const uniform = seededRandom(11);
  const order = dots.map((_, k) => k).sort(() => uniform() - 0.5);
  const shuffled = order.map((k) => dots[k]!);
  const expected = order.map((k) => nodeOf[k]!);

  for (const withPrediction of [false, true]) {
    it(`indexes every true dot and no spurious one ${withPrediction ? 'with' : 'without'} predicted positions`, () => {
      const predictedPx = new Float64Array(cols * rows * 2);
      for (let j = 0; j < rows; j++) for (let i = 0; i < cols; i++) {
        const [x, y] = position(i, j);
        predictedPx[(j * cols + i) * 2] = x * 1.02 - 8; // a few % off, like the ideal-optics prediction
        predictedPx[(j * cols + i) * 2 + 1] = y * 0.98 + 9;
      }
      const result = indexDotGrid(shuffled, withPrediction ? { cols, rows, predictedPx } : { cols, rows });
      expect(Array.from(result.nodeOfDot)).toEqual(expected);
      expect(result.indexed).toBe(cols * rows - missing.size);
      expect(result.missing).toBe(missing.size);
      expect(result.spurious).toBe(spurious.length);
    });
  }
});
