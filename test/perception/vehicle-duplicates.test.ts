import { describe, expect, it } from 'vitest';
import type { Detection } from '../../perception/detect/types.js';
import { VEHICLE_DUPLICATE_IOU, withoutVehicleDuplicates } from '../../perception/track/vehicle-duplicates.js';

const det = (className: 'car' | 'truck' | 'bus' | 'person' | 'bicycle', score: number, box: [number, number, number, number]): Detection =>
  ({ classId: 0, className, hudClass: className, score, box }) as Detection;

describe('withoutVehicleDuplicates', () => {
  it('drops the lower-scoring box of one vehicle seen as two classes, keeps input order otherwise', () => {
    const car = det('car', 0.8, [100, 100, 200, 180]);
    const truck = det('truck', 0.6, [102, 98, 204, 182]);
    const person = det('person', 0.9, [300, 100, 320, 160]);
    expect(withoutVehicleDuplicates([truck, person, car])).toEqual([person, car]);
  });

  it('keeps two same-class boxes (per-class NMS already chose), vehicles side by side, and a rider on a bicycle', () => {
    const a = det('car', 0.8, [100, 100, 200, 180]);
    const b = det('car', 0.7, [105, 100, 205, 180]);
    const beside = det('truck', 0.6, [190, 100, 290, 180]);
    const rider = det('person', 0.9, [400, 80, 440, 200]);
    const bike = det('bicycle', 0.8, [398, 120, 442, 210]);
    const input = [a, b, beside, rider, bike];
    expect(withoutVehicleDuplicates(input)).toEqual(input);
  });

  it('uses the IoU threshold strictly', () => {
    // Two 100x100 boxes shifted by s overlap with IoU (100 - s) / (100 + s); s = 25 gives exactly 0.6.
    const car = det('car', 0.9, [0, 0, 100, 100]);
    expect(withoutVehicleDuplicates([car, det('bus', 0.5, [25, 0, 125, 100])])).toHaveLength(2);
    expect(VEHICLE_DUPLICATE_IOU).toBe(0.6);
    expect(withoutVehicleDuplicates([car, det('bus', 0.5, [24, 0, 124, 100])])).toEqual([car]);
  });
});
