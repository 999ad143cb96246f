import { describe, expect, it } from 'vitest';
import { atGroundContact, truthAdasObjects } from '../../perception/evaluate/fcw-eval.js';
import type { ProjectedObject } from '../../perception/detect/ground-truth.js';
import type { GroundTruthObject } from '../../pipeline/index.js';

const visible = (evalClass: ProjectedObject['evalClass']): ProjectedObject =>
  ({ id: 'x', label: 'Car', evalClass, box: [0, 0, 10, 10], unclippedBox: [0, 0, 10, 10], depthM: 10, insideFraction: 1, heightPx: 10, occludedFraction: 0, visible: true }) as ProjectedObject;
const carAt = (x: number, y: number, yawRad = 0): GroundTruthObject => ({ id: 'car-1', label: 'Car', positionM: { x, y, z: 0.8 }, lengthM: 4.4, widthM: 1.8, heightM: 1.5, yawRad, stationary: false });
// World = vehicle frame shifted 100 m along x (the vehicle stands at world x = 100).
const toVehicle = (p: { x: number; y: number; z: number }) => ({ x: p.x - 100, y: p.y, z: p.z });

describe('truthAdasObjects', () => {
  it('puts a labelled car at its nearest footprint edge with its lateral extent, and differences its velocity', () => {
    const first = truthAdasObjects([carAt(120, 0.5)], [visible('vehicle')], toVehicle, 0n, undefined);
    expect(first.objects).toHaveLength(1);
    const o = first.objects[0]!;
    expect(o.positionM.x).toBeCloseTo(20 - 2.2, 9);
    expect(o.positionM.y).toBeCloseTo(0.5, 9);
    expect(o.lateralExtentM!.leftM).toBeCloseTo(1.4, 9);
    expect(o.lateralExtentM!.rightM).toBeCloseTo(-0.4, 9);
    // First sighting: no velocity yet. 100 ms later 1 m nearer: closing at 10 m/s.
    expect(o.relativeVelocityMps).toEqual({ x: 0, y: 0 });
    const second = truthAdasObjects([carAt(119, 0.5)], [visible('vehicle')], toVehicle, 100_000_000n, first.state);
    expect(second.objects[0]!.relativeVelocityMps.x).toBeCloseTo(-10, 9);
    // Turned 90 degrees (crossing), the footprint is 4.4 m wide and 1.8 m deep.
    const crossing = truthAdasObjects([carAt(120, 0, Math.PI / 2)], [visible('vehicle')], toVehicle, 0n, undefined).objects[0]!;
    expect(crossing.positionM.x).toBeCloseTo(20 - 0.9, 9);
    expect(crossing.lateralExtentM!.leftM - crossing.lateralExtentM!.rightM).toBeCloseTo(4.4, 9);
  });

  it('leaves out what the camera cannot see and classes it cannot evaluate', () => {
    const hidden = { ...visible('vehicle'), visible: false };
    expect(truthAdasObjects([carAt(120, 0)], [hidden], toVehicle, 0n, undefined).objects).toEqual([]);
    expect(truthAdasObjects([carAt(120, 0)], [visible(undefined)], toVehicle, 0n, undefined).objects).toEqual([]);
  });
});

describe('atGroundContact', () => {
  it('moves a centre estimate back along its bearing by the centre offset', () => {
    const base = { trackId: 't1', objectClass: 'car' as const, relativeVelocityMps: { x: 0, y: 0 }, widthM: 1.8 };
    const moved = atGroundContact({ ...base, positionM: { x: 6, y: 8 } }, 1.4);
    expect(Math.hypot(moved.positionM.x, moved.positionM.y)).toBeCloseTo(10 - 1.4, 9);
    expect(moved.positionM.y / moved.positionM.x).toBeCloseTo(8 / 6, 9);
    expect(atGroundContact({ ...base, positionM: { x: 1, y: 0 } }, 1.4).positionM).toEqual({ x: 0, y: 0 });
  });
});
