/**
 * One vehicle, one track: the detector's NMS is per class, so a pickup or a van can come out as
 * both 'car' and 'truck' with nearly the same box. Two tracks for one object double-count it, and
 * the wider class's assumed width reaches into the ego corridor (the FCW false alarms of issue #7).
 * Before tracking, a vehicle box that overlaps a higher-scoring box of another vehicle class by more
 * than VEHICLE_DUPLICATE_IOU is dropped. Persons and two-wheelers are left alone (a rider on a
 * bicycle is two objects).
 */
import { iou } from '../detect/nms.js';
import type { Detection, HudClass } from '../detect/types.js';

const VEHICLE_CLASSES: ReadonlySet<HudClass> = new Set<HudClass>(['car', 'bus', 'truck']);
/** Same object when boxes of two vehicle classes overlap this much (per-class NMS uses 0.5 within a class; across classes only near-identical boxes count). */
export const VEHICLE_DUPLICATE_IOU = 0.6;

/** `detections` without cross-class vehicle duplicates, in their input order (the input itself when there are none). */
export function withoutVehicleDuplicates(detections: readonly Detection[]): readonly Detection[] {
  const vehicles = detections.filter((d) => d.hudClass !== undefined && VEHICLE_CLASSES.has(d.hudClass));
  if (vehicles.length < 2) return detections;
  vehicles.sort((a, b) => b.score - a.score);
  const dropped = new Set<Detection>();
  const kept: Detection[] = [];
  for (const candidate of vehicles) {
    if (kept.some((k) => k.hudClass !== candidate.hudClass && iou(k.box, candidate.box) > VEHICLE_DUPLICATE_IOU)) dropped.add(candidate);
    else kept.push(candidate);
  }
  return dropped.size === 0 ? detections : detections.filter((d) => !dropped.has(d));
}
