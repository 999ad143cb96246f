/**
 * Multi-object tracking metrics over a sequence of frames of ground truth (string ids) and tracker
 * output (number ids), boxes in pixels, a pair matching at IoU >= `iouThreshold`:
 *
 * CLEAR-MOT (Bernardin & Stiefelhagen 2008), matching per frame as py-motmetrics does:
 * - a ground-truth object keeps its last matched hypothesis (from any earlier frame) if that
 *   hypothesis is present and still overlaps enough; the rest are matched by an optimal assignment
 *   on 1 - IoU;
 * - an id switch (IDSW) is a match whose hypothesis differs from the object's previous match;
 * - a fragmentation is an interruption of an object's tracking that later resumes (tracked, then
 *   missed while present, then tracked again);
 * - MOTA = 1 - (FN + FP + IDSW) / GT; MOTP here is the mean IoU of the matches (higher is better,
 *   as MOTChallenge reports it; py-motmetrics reports 1 - this).
 *
 * Identity metrics (Ristani et al. 2016): every ground-truth id is matched to at most one
 * hypothesis id over the whole sequence so that the number of frames in which the two overlap
 * (IoU >= threshold) is largest (a min-cost assignment); IDTP is that number, IDF1 = 2 IDTP /
 * (GT + hypotheses).
 *
 * Ground truth marked `ignore` (e.g. not visible under the detection evaluation's rule) does not
 * count: a hypothesis left unmatched after the main matching that overlaps an ignored box is
 * dropped from the frame (neither FP nor counted for IDF1), as COCO treats ignored regions.
 * Undefined ratios (no ground truth, no matches) are NaN.
 */
import type { Box } from '../detect/types.js';
import { evalClassOfDetectorClass, type EvalClass, type ProjectedObject } from '../detect/ground-truth.js';
import { boxIou, solveAssignment } from './assignment.js';
import type { Track } from './tracker.js';

/** Least IoU for a hypothesis to match ground truth (MOTChallenge, and the detection evaluation's AP50). */
export const MOT_IOU_THRESHOLD = 0.5;

export interface MotGroundTruth {
  id: string;
  box: Box;
  /** Not counted; hypotheses on it are neither FP nor TP. Default false. */
  ignore?: boolean;
}

export interface MotHypothesis {
  id: number;
  box: Box;
}

export interface MotFrame {
  gt: readonly MotGroundTruth[];
  hyp: readonly MotHypothesis[];
}

export interface MotResult {
  /** 1 - (fn + fp + idSwitches) / gtCount; NaN without ground truth. */
  mota: number;
  /** Mean IoU of matched pairs; NaN without matches. */
  motp: number;
  /** 2 idtp / (gtCount + hypCount); NaN when both are 0. */
  idf1: number;
  /** idtp / hypCount. */
  idp: number;
  /** idtp / gtCount. */
  idr: number;
  idSwitches: number;
  fp: number;
  fn: number;
  /** Matched (ground truth, hypothesis) pairs over all frames. */
  matches: number;
  /** Counted (non-ignored) ground-truth boxes over all frames. */
  gtCount: number;
  /** Counted hypothesis boxes (those dropped on ignored ground truth excluded). */
  hypCount: number;
  idtp: number;
  fragments: number;
}

/** CLEAR-MOT and identity metrics of `frames` (see the module comment). */
export function evaluateMot(frames: readonly MotFrame[], iouThreshold = MOT_IOU_THRESHOLD): MotResult {
  if (!(iouThreshold > 0 && iouThreshold <= 1)) throw new RangeError(`evaluateMot: iouThreshold must be in (0, 1], got ${iouThreshold}`);
  frames.forEach(checkFrame);
  const maxCost = 1 - iouThreshold;

  const lastMatch = new Map<string, number>();
  /** Per ground-truth id: 'tracked' or 'missed' at its latest counted frame; absent before its first match. */
  const status = new Map<string, 'tracked' | 'missed'>();
  let fp = 0;
  let fn = 0;
  let idSwitches = 0;
  let matches = 0;
  let iouSum = 0;
  let gtCount = 0;
  let hypCount = 0;
  let fragments = 0;

  // Identity bookkeeping: counted boxes per frame, kept for the co-occurrence counts.
  const gtIndex = new Map<string, number>();
  const hypIndex = new Map<number, number>();
  const overlapCounts = new Map<number, Map<number, number>>();

  for (const frame of frames) {
    const gts = frame.gt.filter((g) => !g.ignore);
    const ignored = frame.gt.filter((g) => g.ignore);
    const hyps = frame.hyp;
    const gtToHyp = new Int32Array(gts.length).fill(-1);
    const hypToGt = new Int32Array(hyps.length).fill(-1);

    // 1. Keep last correspondences that still hold.
    const hypByIdIndex = new Map<number, number>(hyps.map((h, j) => [h.id, j]));
    gts.forEach((g, i) => {
      const previous = lastMatch.get(g.id);
      if (previous === undefined) return;
      const j = hypByIdIndex.get(previous);
      if (j === undefined || hypToGt[j]! >= 0) return;
      if (boxIou(g.box, hyps[j]!.box) >= iouThreshold) {
        gtToHyp[i] = j;
        hypToGt[j] = i;
      }
    });
    // 2. Optimal assignment of the rest.
    const freeGts = gts.map((_, i) => i).filter((i) => gtToHyp[i]! < 0);
    const freeHyps = hyps.map((_, j) => j).filter((j) => hypToGt[j]! < 0);
    matchByIou(
      freeGts.map((i) => gts[i]!.box),
      freeHyps.map((j) => hyps[j]!.box),
      maxCost,
      (a, b) => {
        gtToHyp[freeGts[a]!] = freeHyps[b]!;
        hypToGt[freeHyps[b]!] = freeGts[a]!;
      },
    );
    // 3. Unmatched hypotheses on ignored ground truth leave the frame.
    const unmatchedHyps = hyps.map((_, j) => j).filter((j) => hypToGt[j]! < 0);
    const dropped = new Uint8Array(hyps.length);
    matchByIou(
      ignored.map((g) => g.box),
      unmatchedHyps.map((j) => hyps[j]!.box),
      maxCost,
      (_a, b) => {
        dropped[unmatchedHyps[b]!] = 1;
      },
    );

    // Counts.
    gtCount += gts.length;
    gts.forEach((g, i) => {
      const j = gtToHyp[i]!;
      const previousStatus = status.get(g.id);
      if (j < 0) {
        fn++;
        if (previousStatus !== undefined) status.set(g.id, 'missed');
        return;
      }
      const hyp = hyps[j]!;
      matches++;
      iouSum += boxIou(g.box, hyp.box);
      const previous = lastMatch.get(g.id);
      if (previous !== undefined && previous !== hyp.id) idSwitches++;
      if (previousStatus === 'missed') fragments++;
      lastMatch.set(g.id, hyp.id);
      status.set(g.id, 'tracked');
    });
    hyps.forEach((_, j) => {
      if (dropped[j]) return;
      hypCount++;
      if (hypToGt[j]! < 0) fp++;
    });

    // Identity: every counted pair overlapping enough in this frame.
    for (const g of gts) {
      let gi = gtIndex.get(g.id);
      if (gi === undefined) gtIndex.set(g.id, (gi = gtIndex.size));
      let row = overlapCounts.get(gi);
      hyps.forEach((h, j) => {
        if (dropped[j] || boxIou(g.box, h.box) < iouThreshold) return;
        let hi = hypIndex.get(h.id);
        if (hi === undefined) hypIndex.set(h.id, (hi = hypIndex.size));
        if (row === undefined) overlapCounts.set(gi, (row = new Map()));
        row.set(hi, (row.get(hi) ?? 0) + 1);
      });
    }
  }

  const idtp = identityTruePositives(gtIndex.size, hypIndex.size, overlapCounts);
  return {
    mota: gtCount > 0 ? 1 - (fn + fp + idSwitches) / gtCount : NaN,
    motp: matches > 0 ? iouSum / matches : NaN,
    idf1: gtCount + hypCount > 0 ? (2 * idtp) / (gtCount + hypCount) : NaN,
    idp: hypCount > 0 ? idtp / hypCount : NaN,
    idr: gtCount > 0 ? idtp / gtCount : NaN,
    idSwitches,
    fp,
    fn,
    matches,
    gtCount,
    hypCount,
    idtp,
    fragments,
  };
}

/**
 * One frame of `evalClass` for `evaluateMot`, with the detection evaluation's visibility rule
 * (`evalGroundTruthOf`): visible projected objects of the class count, the class's other objects
 * that still have a box in the image are ignored, dropped twins and unevaluated labels are left out.
 * Hypotheses are the tracks whose className maps to `evalClass` (`evalClassOfDetectorClass`).
 * Boxes are copied (tracker boxes are reused between frames).
 */
export function motFrameOf(projected: readonly ProjectedObject[], tracks: readonly Track[], evalClass: EvalClass): MotFrame {
  const gt: MotGroundTruth[] = [];
  for (const p of projected) {
    if (p.evalClass !== evalClass || p.box === undefined || p.reason === 'duplicate') continue;
    gt.push(p.visible ? { id: p.id, box: [...p.box] } : { id: p.id, box: [...p.box], ignore: true });
  }
  const hyp: MotHypothesis[] = [];
  for (const track of tracks) if (evalClassOfDetectorClass(track.className) === evalClass) hyp.push({ id: track.id, box: [...track.box] });
  return { gt, hyp };
}

/** Optimal one-to-one matching of boxes a x b at cost 1 - IoU <= maxCost; calls `onMatch(ai, bi)` per pair. */
function matchByIou(a: readonly Box[], b: readonly Box[], maxCost: number, onMatch: (ai: number, bi: number) => void): void {
  if (a.length === 0 || b.length === 0) return;
  const cost = new Float64Array(a.length * b.length);
  a.forEach((boxA, i) => b.forEach((boxB, j) => (cost[i * b.length + j] = 1 - boxIou(boxA, boxB))));
  const rowToCol = new Int32Array(a.length);
  solveAssignment(cost, a.length, b.length, maxCost, rowToCol, new Int32Array(b.length));
  rowToCol.forEach((j, i) => {
    if (j >= 0) onMatch(i, j);
  });
}

/** Largest total overlap count of a one-to-one matching of ground-truth ids to hypothesis ids. */
function identityTruePositives(gtIds: number, hypIds: number, counts: ReadonlyMap<number, ReadonlyMap<number, number>>): number {
  if (gtIds === 0 || hypIds === 0) return 0;
  const cost = new Float64Array(gtIds * hypIds);
  for (const [gi, row] of counts) for (const [hi, count] of row) cost[gi * hypIds + hi] = -count;
  const rowToCol = new Int32Array(gtIds);
  solveAssignment(cost, gtIds, hypIds, 0, rowToCol, new Int32Array(hypIds));
  let idtp = 0;
  rowToCol.forEach((hi, gi) => {
    if (hi >= 0) idtp -= cost[gi * hypIds + hi]!;
  });
  return idtp;
}

function checkFrame(frame: MotFrame, index: number): void {
  const where = `evaluateMot: frames[${index}]`;
  const gtIds = new Set<string>();
  frame.gt.forEach((g, i) => {
    checkBox(g.box, `${where}.gt[${i}].box`);
    if (gtIds.has(g.id)) throw new RangeError(`${where}.gt[${i}].id must be unique in the frame, got '${g.id}' twice`);
    gtIds.add(g.id);
  });
  const hypIds = new Set<number>();
  frame.hyp.forEach((h, i) => {
    checkBox(h.box, `${where}.hyp[${i}].box`);
    if (hypIds.has(h.id)) throw new RangeError(`${where}.hyp[${i}].id must be unique in the frame, got ${h.id} twice`);
    hypIds.add(h.id);
  });
}

function checkBox(box: Box, where: string): void {
  if (!(Array.isArray(box) && box.length === 4 && box.every(Number.isFinite) && box[2] >= box[0] && box[3] >= box[1])) {
    throw new RangeError(`${where} must be 4 finite numbers [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got [${String(box)}]`);
  }
}
