/**
 * COCO-style average precision per class at one IoU threshold (default 0.5, i.e. AP50 / PASCAL-like
 * matching with COCO's 101-point interpolation), following pycocotools' COCOeval:
 * - per frame and class, detections are matched greedily in descending score order; each detection
 *   takes the unmatched non-ignored ground truth of highest IoU >= threshold (a true positive), else
 *   the unmatched ignored ground truth of highest IoU >= threshold (then it counts as neither TP nor
 *   FP, as COCO does for crowd / out-of-range boxes), else it is a false positive;
 * - all frames' detections are ranked by score (ties keep frame order, then input order), precision
 *   and recall accumulate down the ranking, precision is made non-increasing from the right, and AP
 *   is the mean precision at recall thresholds 0, 0.01, ..., 1 (precision 0 past the highest recall).
 * Ground truth marked `ignore` does not count towards recall.
 */
import { EVAL_CLASSES, type EvalClass, type ProjectedObject } from './ground-truth.js';
import type { Box } from './types.js';

/** Minimum IoU for a detection to match a ground-truth box (COCO AP50). */
export const IOU_THRESHOLD = 0.5;
/** Recall thresholds of the interpolated precision: 0, 0.01, ..., 1. */
export const RECALL_POINTS = 101;

export interface EvalDetection {
  evalClass: EvalClass;
  score: number;
  box: Box;
}

export interface EvalGroundTruth {
  evalClass: EvalClass;
  box: Box;
  /** Of the class but not to be counted (e.g. not visible): matching it is neither TP nor FP. */
  ignore: boolean;
}

/** One image's detections and ground truth. */
export interface EvalFrame {
  detections: readonly EvalDetection[];
  groundTruth: readonly EvalGroundTruth[];
}

export interface AveragePrecisionOptions {
  /** Default IOU_THRESHOLD. */
  iouThreshold?: number;
}

export interface ClassAveragePrecision {
  evalClass: EvalClass;
  /** Mean interpolated precision over RECALL_POINTS recall thresholds; undefined without non-ignored ground truth (COCO reports -1). */
  ap: number | undefined;
  /** Interpolated precision at each recall threshold (RECALL_POINTS values). */
  precision: number[];
  /** The recall thresholds, 0 to 1 in steps of 0.01. */
  recall: number[];
  /** Non-ignored ground-truth boxes. */
  numGroundTruth: number;
  /** All detections of the class, including those that matched ignored ground truth. */
  numDetections: number;
  truePositives: number;
  falsePositives: number;
  /** Detections that matched ignored ground truth (neither TP nor FP). */
  ignoredDetections: number;
}

export type AveragePrecisionResult = Record<EvalClass, ClassAveragePrecision>;

/** IoU lives with NMS; re-exported here because evaluation callers think of it as theirs. */
import { iou } from './nms.js';
export { iou };

/** Per-class AP over `frames`; every class of EVAL_CLASSES is reported. */
export function averagePrecision(frames: readonly EvalFrame[], options: AveragePrecisionOptions = {}): AveragePrecisionResult {
  const iouThreshold = options.iouThreshold ?? IOU_THRESHOLD;
  if (!(iouThreshold > 0 && iouThreshold <= 1)) throw new RangeError(`averagePrecision: option 'iouThreshold' must be in (0, 1], got ${iouThreshold}`);
  frames.forEach(checkFrame);
  const result = {} as AveragePrecisionResult;
  for (const evalClass of EVAL_CLASSES) result[evalClass] = classAveragePrecision(frames, evalClass, iouThreshold);
  return result;
}

/** Mean of the classes' AP over classes that have one; undefined when none has. */
export function meanAveragePrecision(result: AveragePrecisionResult): number | undefined {
  const aps = EVAL_CLASSES.map((c) => result[c].ap).filter((ap): ap is number => ap !== undefined);
  return aps.length > 0 ? aps.reduce((sum, ap) => sum + ap, 0) / aps.length : undefined;
}

type Outcome = 'tp' | 'fp' | 'ignored';

function classAveragePrecision(frames: readonly EvalFrame[], evalClass: EvalClass, iouThreshold: number): ClassAveragePrecision {
  const ranked: { score: number; outcome: Outcome }[] = [];
  let numGroundTruth = 0;
  let numDetections = 0;
  for (const frame of frames) {
    const truths = frame.groundTruth.filter((g) => g.evalClass === evalClass);
    const detections = frame.detections.filter((d) => d.evalClass === evalClass);
    numGroundTruth += truths.filter((g) => !g.ignore).length;
    numDetections += detections.length;
    const matched = truths.map(() => false);
    // Stable: equal scores keep input order (pycocotools sorts with a stable mergesort too).
    const order = detections.map((_, i) => i).sort((a, b) => detections[b]!.score - detections[a]!.score);
    for (const d of order) {
      const detection = detections[d]!;
      const best = (ignore: boolean): number => {
        let bestIndex = -1;
        let bestIou = iouThreshold;
        truths.forEach((truth, g) => {
          if (matched[g] || truth.ignore !== ignore) return;
          const overlap = iou(detection.box, truth.box);
          if (overlap >= bestIou) {
            bestIou = overlap;
            bestIndex = g;
          }
        });
        return bestIndex;
      };
      let g = best(false);
      let outcome: Outcome = 'tp';
      if (g < 0) {
        g = best(true);
        outcome = g < 0 ? 'fp' : 'ignored';
      }
      if (g >= 0) matched[g] = true;
      ranked.push({ score: detection.score, outcome });
    }
  }
  // Stable sort across frames; ignored detections leave the ranking (they neither help nor hurt).
  const counted = ranked.filter((r) => r.outcome !== 'ignored').sort((a, b) => b.score - a.score);
  const recallPoints = Array.from({ length: RECALL_POINTS }, (_, i) => i / (RECALL_POINTS - 1));
  const truePositives = counted.filter((r) => r.outcome === 'tp').length;
  const base = {
    evalClass,
    recall: recallPoints,
    numGroundTruth,
    numDetections,
    truePositives,
    falsePositives: counted.length - truePositives,
    ignoredDetections: ranked.length - counted.length,
  };
  if (numGroundTruth === 0) return { ...base, ap: undefined, precision: recallPoints.map(() => 0) };

  const precisionAt: number[] = [];
  const recallAt: number[] = [];
  let tp = 0;
  counted.forEach((r, i) => {
    if (r.outcome === 'tp') tp++;
    precisionAt.push(tp / (i + 1));
    recallAt.push(tp / numGroundTruth);
  });
  // Interpolate: precision at rank i becomes the best precision at any rank >= i.
  for (let i = precisionAt.length - 2; i >= 0; i--) precisionAt[i] = Math.max(precisionAt[i]!, precisionAt[i + 1]!);
  // For each recall threshold, the precision at the first rank whose recall reaches it (0 if none does).
  const precision: number[] = [];
  let rank = 0;
  for (const threshold of recallPoints) {
    while (rank < recallAt.length && recallAt[rank]! < threshold) rank++;
    precision.push(rank < precisionAt.length ? precisionAt[rank]! : 0);
  }
  const ap = precision.reduce((sum, p) => sum + p, 0) / precision.length;
  return { ...base, ap, precision };
}

function checkFrame(frame: EvalFrame, index: number): void {
  const where = `averagePrecision: frames[${index}]`;
  frame.detections.forEach((d, i) => {
    if (!EVAL_CLASSES.includes(d.evalClass)) throw new RangeError(`${where}.detections[${i}].evalClass must be one of ${EVAL_CLASSES.join(', ')}, got '${String(d.evalClass)}'`);
    if (!Number.isFinite(d.score)) throw new RangeError(`${where}.detections[${i}].score must be finite, got ${d.score}`);
    checkBox(d.box, `${where}.detections[${i}].box`);
  });
  frame.groundTruth.forEach((g, i) => {
    if (!EVAL_CLASSES.includes(g.evalClass)) throw new RangeError(`${where}.groundTruth[${i}].evalClass must be one of ${EVAL_CLASSES.join(', ')}, got '${String(g.evalClass)}'`);
    checkBox(g.box, `${where}.groundTruth[${i}].box`);
  });
}

function checkBox(box: Box, where: string): void {
  if (!(box.length === 4 && box.every(Number.isFinite) && box[2] >= box[0] && box[3] >= box[1])) {
    throw new RangeError(`${where} must be 4 finite numbers [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got [${box.join(', ')}]`);
  }
}

/**
 * Ground truth for `averagePrecision` from projected objects: visible objects of an evaluated class
 * count; the other objects of an evaluated class that still have a box in the image are ignored
 * (a detection on them is neither TP nor FP); dropped twins and objects without a class are left out.
 */
export function evalGroundTruthOf(projected: readonly ProjectedObject[]): EvalGroundTruth[] {
  const truths: EvalGroundTruth[] = [];
  for (const p of projected) {
    if (p.evalClass === undefined || p.box === undefined || p.reason === 'duplicate') continue;
    truths.push({ evalClass: p.evalClass, box: p.box, ignore: !p.visible });
  }
  return truths;
}
