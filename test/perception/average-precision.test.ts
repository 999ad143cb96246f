import { describe, it, expect } from 'vitest';
import {
  IOU_THRESHOLD,
  RECALL_POINTS,
  averagePrecision,
  evalGroundTruthOf,
  iou,
  meanAveragePrecision,
  type EvalDetection,
  type EvalFrame,
  type EvalGroundTruth,
} from '../../perception/detect/average-precision.js';
import type { EvalClass, ProjectedObject } from '../../perception/detect/ground-truth.js';
import type { Box } from '../../perception/detect/types.js';
import { thrownBy } from '../support/errors.js';

/** A 10x10 box with its left edge at x. */
const at = (x: number): Box => [x, 0, x + 10, 10];
const truth = (box: Box, evalClass: EvalClass = 'vehicle', ignore = false): EvalGroundTruth => ({ evalClass, box, ignore });
const detection = (box: Box, score: number, evalClass: EvalClass = 'vehicle'): EvalDetection => ({ evalClass, box, score });
const FAR_AWAY = at(1000);

describe('iou', () => {
  it('is intersection over union', () => {
    expect(iou(at(0), at(0))).toBe(1);
    expect(iou([0, 0, 2, 2], [1, 0, 3, 2])).toBeCloseTo(2 / 6, 12);
    expect(iou([0, 0, 4, 4], [1, 1, 3, 3])).toBeCloseTo(4 / 16, 12);
    expect(iou(at(0), at(10))).toBe(0); // touching edges
    expect(iou(at(0), FAR_AWAY)).toBe(0);
    expect(iou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });
});

describe('averagePrecision', () => {
  it('is 1 for perfect detections', () => {
    const frames: EvalFrame[] = [
      { groundTruth: [truth(at(0)), truth(at(20))], detections: [detection(at(0), 0.9), detection(at(20), 0.8)] },
      { groundTruth: [truth(at(0), 'person')], detections: [detection(at(0), 0.3, 'person')] },
    ];
    const result = averagePrecision(frames);
    expect(result.vehicle).toMatchObject({ ap: 1, numGroundTruth: 2, numDetections: 2, truePositives: 2, falsePositives: 0, ignoredDetections: 0 });
    expect(result.person).toMatchObject({ ap: 1, numGroundTruth: 1, truePositives: 1 });
    expect(result.vehicle.precision).toHaveLength(RECALL_POINTS);
    expect(result.vehicle.recall[0]).toBe(0);
    expect(result.vehicle.recall[RECALL_POINTS - 1]).toBe(1);
    expect(meanAveragePrecision(result)).toBe(1);
  });

  it('charges a false positive ranked above all true positives at every recall', () => {
    // Ranked FP, TP, TP: precision 0, 1/2, 2/3 at recall 0, 1/2, 1; interpolated 2/3 everywhere.
    const frames: EvalFrame[] = [
      { groundTruth: [truth(at(0)), truth(at(20))], detections: [detection(at(0), 0.8), detection(FAR_AWAY, 0.9), detection(at(20), 0.7)] },
    ];
    const { vehicle } = averagePrecision(frames);
    expect(vehicle.ap).toBeCloseTo(2 / 3, 12);
    expect(vehicle).toMatchObject({ truePositives: 2, falsePositives: 1, numDetections: 3 });
    // The same FP ranked last costs nothing: precision is 1 up to full recall.
    const last = averagePrecision([{ ...frames[0]!, detections: [detection(at(0), 0.8), detection(FAR_AWAY, 0.1), detection(at(20), 0.7)] }]);
    expect(last.vehicle.ap).toBe(1);
  });

  it('gives precision 0 past the highest recall reached (missed ground truth)', () => {
    // One of two found: recall 0.5, so thresholds 0..0.50 (51 of 101) get precision 1, the rest 0.
    const { vehicle } = averagePrecision([{ groundTruth: [truth(at(0)), truth(at(20))], detections: [detection(at(0), 0.9)] }]);
    expect(vehicle.ap).toBeCloseTo(51 / 101, 12);
    expect(vehicle.precision[50]).toBe(1);
    expect(vehicle.precision[51]).toBe(0);
  });

  it('interpolates precision at 101 recall points (hand calculation)', () => {
    // 4 ground-truth boxes over two frames; ranked TP .9, FP .8, TP .7, TP .6, FP .5 (one box missed).
    // Precision 1, 1/2, 2/3, 3/4, 3/5 at recall 1/4, 1/4, 1/2, 3/4, 3/4. Interpolated (best to the
    // right): 1, 3/4, 3/4, 3/4, 3/5. Recall 0..0.25 (26 points) -> 1; 0.26..0.75 (50 points) -> 3/4;
    // 0.76..1 (25 points) -> 0. AP = (26 + 50 * 0.75) / 101 = 63.5 / 101.
    const frames: EvalFrame[] = [
      { groundTruth: [truth(at(0)), truth(at(20))], detections: [detection(at(0), 0.9), detection(FAR_AWAY, 0.8), detection(at(20), 0.6)] },
      { groundTruth: [truth(at(0)), truth(at(40))], detections: [detection(at(0), 0.7), detection(FAR_AWAY, 0.5)] },
    ];
    const { vehicle } = averagePrecision(frames);
    expect(vehicle.ap).toBeCloseTo(63.5 / 101, 12);
    expect(vehicle.precision.slice(0, 26).every((p) => p === 1)).toBe(true);
    expect(vehicle.precision.slice(26, 76).every((p) => p === 0.75)).toBe(true);
    expect(vehicle.precision.slice(76).every((p) => p === 0)).toBe(true);
    expect(vehicle).toMatchObject({ numGroundTruth: 4, truePositives: 3, falsePositives: 2 });
  });

  it('counts a detection on ignored ground truth as neither TP nor FP', () => {
    const frames: EvalFrame[] = [
      { groundTruth: [truth(at(0)), truth(at(20), 'vehicle', true)], detections: [detection(at(20), 0.95), detection(at(0), 0.9)] },
    ];
    const { vehicle } = averagePrecision(frames);
    expect(vehicle).toMatchObject({ ap: 1, numGroundTruth: 1, numDetections: 2, truePositives: 1, falsePositives: 0, ignoredDetections: 1 });
    // An ignored box is matched once: a second detection on it is a false positive.
    const twice = averagePrecision([{ groundTruth: [truth(at(20), 'vehicle', true), truth(at(0))], detections: [detection(at(20), 0.95), detection(at(20), 0.94), detection(at(0), 0.9)] }]);
    expect(twice.vehicle).toMatchObject({ truePositives: 1, falsePositives: 1, ignoredDetections: 1 });
    expect(twice.vehicle.ap).toBeCloseTo(0.5, 12);
  });

  it('matches a detection to non-ignored ground truth before ignored ground truth of higher IoU', () => {
    // IoU 1 with the ignored box, 80 / 120 = 2/3 with the counted one: the counted one wins.
    const detected = at(0);
    const counted = at(2);
    expect(iou(detected, counted)).toBeGreaterThanOrEqual(IOU_THRESHOLD);
    const { vehicle } = averagePrecision([{ groundTruth: [truth(at(0), 'vehicle', true), truth(counted)], detections: [detection(detected, 0.9)] }]);
    expect(vehicle).toMatchObject({ ap: 1, truePositives: 1, ignoredDetections: 0 });
  });

  it('matches each ground-truth box once, greedily by score, and at IoU >= the threshold', () => {
    // Two detections on one box: the higher score is the TP, the other an FP.
    const dup = averagePrecision([{ groundTruth: [truth(at(0))], detections: [detection(at(1), 0.6), detection(at(0), 0.9)] }]);
    expect(dup.vehicle).toMatchObject({ truePositives: 1, falsePositives: 1 });
    expect(dup.vehicle.ap).toBe(1);
    // IoU exactly 0.5 matches; just below does not.
    const exact = averagePrecision([{ groundTruth: [truth([0, 0, 4, 1])], detections: [detection([0, 0, 2, 1], 0.9)] }]);
    expect(exact.vehicle.truePositives).toBe(1);
    const below = averagePrecision([{ groundTruth: [truth([0, 0, 4, 1])], detections: [detection([0, 0, 1.99, 1], 0.9)] }]);
    expect(below.vehicle).toMatchObject({ truePositives: 0, falsePositives: 1, ap: 0 });
    expect(averagePrecision([{ groundTruth: [truth([0, 0, 4, 1])], detections: [detection([0, 0, 1.99, 1], 0.9)] }], { iouThreshold: 0.4 }).vehicle.ap).toBe(1);
  });

  it('keeps classes apart', () => {
    // A person detection on a vehicle is a person FP and leaves the vehicle unfound.
    const frames: EvalFrame[] = [
      {
        groundTruth: [truth(at(0), 'vehicle'), truth(at(40), 'person')],
        detections: [detection(at(0), 0.8, 'person'), detection(at(40), 0.7, 'person')],
      },
    ];
    const result = averagePrecision(frames);
    expect(result.vehicle).toMatchObject({ ap: 0, numGroundTruth: 1, numDetections: 0, truePositives: 0 });
    // Person: ranked FP then TP: precision 0, 1/2 at recall 0, 1 -> 1/2 everywhere.
    expect(result.person).toMatchObject({ ap: 0.5, numGroundTruth: 1, numDetections: 2, truePositives: 1, falsePositives: 1 });
    expect(meanAveragePrecision(result)).toBe(0.25);
  });

  it('has no AP for a class without counted ground truth', () => {
    const result = averagePrecision([{ groundTruth: [truth(at(0)), truth(at(20), 'person', true)], detections: [detection(at(0), 0.9), detection(at(60), 0.5, 'person')] }]);
    expect(result.person).toMatchObject({ ap: undefined, numGroundTruth: 0, falsePositives: 1 });
    expect(meanAveragePrecision(result)).toBe(1);
    expect(meanAveragePrecision(averagePrecision([]))).toBeUndefined();
  });

  it('names what is wrong with its input', () => {
    const box = thrownBy(() => averagePrecision([{ groundTruth: [truth([5, 0, 1, 1])], detections: [] }]));
    expect(box.name).toBe('RangeError');
    expect(box.message).toBe('averagePrecision: frames[0].groundTruth[0].box must be 4 finite numbers [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got [5, 0, 1, 1]');
    const score = thrownBy(() => averagePrecision([{ groundTruth: [], detections: [detection(at(0), NaN)] }]));
    expect(score.message).toBe('averagePrecision: frames[0].detections[0].score must be finite, got NaN');
    const cls = thrownBy(() => averagePrecision([{ groundTruth: [], detections: [{ ...detection(at(0), 1), evalClass: 'bicycle' as EvalClass }] }]));
    expect(cls.message).toBe("averagePrecision: frames[0].detections[0].evalClass must be one of vehicle, person, got 'bicycle'");
    const threshold = thrownBy(() => averagePrecision([], { iouThreshold: 0 }));
    expect(threshold.message).toBe("averagePrecision: option 'iouThreshold' must be in (0, 1], got 0");
  });
});

describe('evalGroundTruthOf', () => {
  it('counts visible objects, ignores the other boxed objects of a class, leaves out twins and unclassed labels', () => {
    const base = { label: 'Car', unclippedBox: at(0), depthM: 10, insideFraction: 1, heightPx: 10, occludedFraction: 0 };
    const projected: ProjectedObject[] = [
      { ...base, id: 'seen', evalClass: 'vehicle', box: at(0), visible: true },
      { ...base, id: 'hidden', evalClass: 'vehicle', box: at(20), visible: false, reason: 'occluded' },
      { ...base, id: 'twin', evalClass: 'vehicle', box: at(0), visible: false, reason: 'duplicate', duplicateOf: 'seen' },
      { ...base, id: 'cone', label: 'Cones', evalClass: undefined, box: at(40), visible: true },
      { ...base, id: 'behind', evalClass: 'person', box: undefined, visible: false, reason: 'behind-camera' },
    ];
    expect(evalGroundTruthOf(projected)).toEqual([truth(at(0)), truth(at(20), 'vehicle', true)]);
  });
});
