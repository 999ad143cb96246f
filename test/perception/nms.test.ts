import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { iou, nms } from '../../perception/detect/nms.js';
import type { Box, Detection } from '../../perception/detect/types.js';
import { thrownBy } from '../support/errors.js';

function det(classId: number, score: number, box: Box): Detection {
  return { classId, className: String(classId), score, box };
}

/** Brute force straight from the definition: repeatedly take the best remaining, drop what it overlaps. */
function referenceNms(detections: Detection[], iouThreshold: number, classAgnostic: boolean, maxDetections = Infinity): Detection[] {
  let remaining = detections.map((d, i) => ({ d, i })).sort((a, b) => b.d.score - a.d.score || a.i - b.i);
  const kept: Detection[] = [];
  while (remaining.length > 0 && kept.length < maxDetections) {
    const best = remaining.shift()!.d;
    kept.push(best);
    remaining = remaining.filter(({ d }) => !((classAgnostic || d.classId === best.classId) && iou(d.box, best.box) > iouThreshold));
  }
  return kept;
}

describe('iou', () => {
  it('is intersection over union in continuous pixels', () => {
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150, 12);
    expect(iou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(iou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });
});

describe('nms', () => {
  // B covers the top h of A's 10 x 10: IoU = 10h / 100 = h / 10, exactly 0.5 at h = 5.
  const a = det(0, 0.9, [0, 0, 10, 10]);

  it('suppresses at IoU just above the threshold and keeps at the threshold and just below', () => {
    expect(iou(a.box, [0, 0, 10, 5])).toBe(0.5);
    const at = det(0, 0.8, [0, 0, 10, 5]);
    const above = det(0, 0.8, [0, 0, 10, 5 + 1e-9]);
    const below = det(0, 0.8, [0, 0, 10, 5 - 1e-9]);
    expect(nms([a, at], { iouThreshold: 0.5 })).toEqual([a, at]);
    expect(nms([a, above], { iouThreshold: 0.5 })).toEqual([a]);
    expect(nms([a, below], { iouThreshold: 0.5 })).toEqual([a, below]);
    // Threshold 1 disables suppression (IoU is never > 1), threshold 0 suppresses any overlap.
    expect(nms([a, det(0, 0.5, [0, 0, 10, 10])], { iouThreshold: 1 })).toHaveLength(2);
    expect(nms([a, det(0, 0.5, [9.99, 9.99, 20, 20])], { iouThreshold: 0 })).toEqual([a]);
    expect(nms([a, det(0, 0.5, [10, 10, 20, 20])], { iouThreshold: 0 })).toHaveLength(2);
  });

  it('orders by score and keeps the earlier of equal scores', () => {
    const first = det(0, 0.7, [0, 0, 10, 10]);
    const second = det(0, 0.7, [1, 0, 11, 10]);
    const low = det(0, 0.2, [50, 50, 60, 60]);
    expect(nms([low, first, second], { iouThreshold: 0.5 })).toEqual([first, low]);
    expect(nms([low, second, first], { iouThreshold: 0.5 })).toEqual([second, low]);
  });

  it('is class-aware by default and class-agnostic on request', () => {
    const car = det(3, 0.9, [0, 0, 10, 10]);
    const truck = det(7, 0.8, [0, 0, 10, 9]);
    expect(nms([car, truck], { iouThreshold: 0.5 })).toEqual([car, truck]);
    expect(nms([car, truck], { iouThreshold: 0.5, classAgnostic: true })).toEqual([car]);
  });

  it('stops at maxDetections and leaves its input alone', () => {
    const input = [det(0, 0.1, [0, 0, 1, 1]), det(0, 0.3, [5, 5, 6, 6]), det(0, 0.2, [9, 9, 10, 10])];
    const copy = [...input];
    expect(nms(input, { iouThreshold: 0.5, maxDetections: 2 }).map((d) => d.score)).toEqual([0.3, 0.2]);
    expect(input).toEqual(copy);
    expect(nms(input, { iouThreshold: 0.5, maxDetections: 0 })).toEqual([]);
  });

  it('matches the brute-force definition on many random boxes (property)', () => {
    const box = fc
      .tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }))
      .map(([x, y, w, h]): Box => [x, y, x + w, y + h]);
    const detection = fc.record({ classId: fc.integer({ min: 0, max: 2 }), score: fc.integer({ min: 0, max: 20 }).map((s) => s / 20), box });
    fc.assert(
      fc.property(fc.array(detection, { maxLength: 60 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), (raw, threshold, agnostic) => {
        const detections = raw.map((r) => det(r.classId, r.score, r.box));
        expect(nms(detections, { iouThreshold: threshold, classAgnostic: agnostic })).toEqual(referenceNms(detections, threshold, agnostic));
      }),
      { numRuns: 300 },
    );
  });

  it('handles thousands of boxes quickly', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
    const detections = Array.from({ length: 5000 }, () => {
      const x = random() * 1900;
      const y = random() * 1060;
      return det(Math.floor(random() * 6), random(), [x, y, x + 5 + random() * 80, y + 5 + random() * 80]);
    });
    const t0 = performance.now();
    const kept = nms(detections, { iouThreshold: 0.45, maxDetections: 300 });
    const elapsedMs = performance.now() - t0;
    expect(kept).toEqual(referenceNms(detections, 0.45, false, 300));
    expect(elapsedMs).toBeLessThan(200);
  });

  it('refuses bad options with TypeError / RangeError naming the option', () => {
    let error = thrownBy(() => nms([], { iouThreshold: 1.5 }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("nms: 'iouThreshold' must be in [0, 1], got 1.5");
    error = thrownBy(() => nms([], { iouThreshold: '0.5' as never }));
    expect(error.name).toBe('TypeError');
    expect(error.message).toBe("nms: 'iouThreshold' must be a number, got 0.5");
    error = thrownBy(() => nms([], { iouThreshold: 0.5, maxDetections: 2.5 }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("nms: 'maxDetections' must be an integer >= 0, got 2.5");
  });
});
