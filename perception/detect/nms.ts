/**
 * Greedy non-maximum suppression: visit detections from the highest score down, keep one unless it
 * overlaps an already kept box (of the same class, or of any class when class-agnostic) with IoU
 * greater than the threshold. Same rule as torchvision.ops.nms / batched_nms.
 */
import type { Box, Detection } from './types.js';

export interface NmsOptions {
  /** A box is suppressed when its IoU with a kept box is > this (so 1 keeps everything). */
  iouThreshold: number;
  /** Detections kept at most. Default unlimited. */
  maxDetections?: number;
  /** Suppress across classes. Default false (only boxes of the same classId suppress each other). */
  classAgnostic?: boolean;
}

/** Area of a box in square pixels; 0 for an empty or inverted box. */
export function boxArea(box: Readonly<Box>): number {
  return Math.max(0, box[2] - box[0]) * Math.max(0, box[3] - box[1]);
}

/** Intersection over union of two boxes (continuous pixel coordinates, no +1); 0 when the union is empty. */
export function iou(a: Readonly<Box>, b: Readonly<Box>): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = boxArea(a) + boxArea(b) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Returns the kept detections, highest score first (equal scores keep their input order). The
 * input array is not modified; the kept objects are the input's, not copies.
 */
export function nms(detections: readonly Detection[], options: NmsOptions): Detection[] {
  const { iouThreshold, maxDetections = Infinity, classAgnostic = false } = options;
  if (typeof iouThreshold !== 'number' || Number.isNaN(iouThreshold)) throw new TypeError(`nms: 'iouThreshold' must be a number, got ${String(iouThreshold)}`);
  if (iouThreshold < 0 || iouThreshold > 1) throw new RangeError(`nms: 'iouThreshold' must be in [0, 1], got ${iouThreshold}`);
  if (!(maxDetections >= 0) || (maxDetections !== Infinity && !Number.isInteger(maxDetections))) {
    throw new RangeError(`nms: 'maxDetections' must be an integer >= 0, got ${maxDetections}`);
  }
  const order = detections.map((_, i) => i);
  order.sort((a, b) => detections[b]!.score - detections[a]!.score || a - b);
  const kept: Detection[] = [];
  // Kept boxes per class (one shared list when class-agnostic), so a candidate is only compared
  // with the boxes that can suppress it.
  const keptByClass = new Map<number, Detection[]>();
  for (const i of order) {
    if (kept.length >= maxDetections) break;
    const candidate = detections[i]!;
    const key = classAgnostic ? 0 : candidate.classId;
    let group = keptByClass.get(key);
    if (group === undefined) {
      group = [];
      keptByClass.set(key, group);
    }
    let suppressed = false;
    for (const other of group) {
      if (iou(candidate.box, other.box) > iouThreshold) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    group.push(candidate);
    kept.push(candidate);
  }
  return kept;
}
