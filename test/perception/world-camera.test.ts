import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CameraIntrinsics } from '../../pipeline/index.js';
import {
  CameraModel,
  DEFAULT_PITCH_SIGMA_RAD,
  MAX_MOUNTING_ANGLE_RAD,
  createPixelPoint,
  groundContact,
  type CameraMounting,
} from '../../perception/world/index.js';
import { thrownBy } from '../support/errors.js';

const DEG = Math.PI / 180;
const PINHOLE: CameraIntrinsics = { width: 1920, height: 1080, fx: 1970, fy: 1970, cx: 970, cy: 483, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] };
// OpenCV's published calibration of its chessboard sample (shared/data/opencv-chessboard): strong barrel distortion.
const DISTORTED: CameraIntrinsics = {
  width: 640,
  height: 480,
  fx: 535.9157,
  fy: 535.9157,
  cx: 342.2832,
  cy: 235.5708,
  distortionModel: 'plumb_bob',
  distortion: [-0.266373, -0.038589, 0.0017832, -0.00028122, 0.238392],
};
const MOUNTING: CameraMounting = { positionM: { x: 1.5, y: 0.2, z: 1.4 }, pitchRad: 2 * DEG, yawRad: -1 * DEG, rollRad: 0.5 * DEG };

const mountingArb = fc.record({
  positionM: fc.record({ x: fc.double({ min: -1, max: 3, noNaN: true }), y: fc.double({ min: -1, max: 1, noNaN: true }), z: fc.double({ min: 0.8, max: 2.5, noNaN: true }) }),
  pitchRad: fc.double({ min: -3 * DEG, max: 10 * DEG, noNaN: true }),
  yawRad: fc.double({ min: -5 * DEG, max: 5 * DEG, noNaN: true }),
  rollRad: fc.double({ min: -5 * DEG, max: 5 * DEG, noNaN: true }),
});

describe('CameraModel', () => {
  it('a level camera maps vehicle axes to OpenCV axes (x forward -> z, y left -> -x, z up -> -y)', () => {
    const camera = new CameraModel(PINHOLE, { positionM: { x: 0, y: 0, z: 1 }, pitchRad: 0, yawRad: 0, rollRad: 0 });
    // + 0 turns -0 into 0: the sign of a zero is not part of the contract.
    expect([...camera.cameraFromVehicle].map((v) => v + 0)).toEqual([0, -1, 0, 0, 0, -1, 1, 0, 0, 0, 1, 0]);
    const pixel = createPixelPoint();
    expect(camera.projectVehiclePoint({ x: 10, y: 0, z: 1 }, pixel)).toBe(true);
    expect(pixel).toEqual({ uPx: PINHOLE.cx, vPx: PINHOLE.cy });
  });

  it('positive pitch looks down, positive yaw looks left, positive roll raises the image right edge', () => {
    const pixel = createPixelPoint();
    const straight = { positionM: { x: 0, y: 0, z: 1 }, pitchRad: 0, yawRad: 0, rollRad: 0 };
    // A point on the horizon straight ahead appears above the centre when the camera looks down.
    new CameraModel(PINHOLE, { ...straight, pitchRad: 5 * DEG }).projectVehiclePoint({ x: 100, y: 0, z: 1 }, pixel);
    expect(pixel.vPx).toBeLessThan(PINHOLE.cy);
    // ...and right of the centre when the camera turns left.
    new CameraModel(PINHOLE, { ...straight, yawRad: 5 * DEG }).projectVehiclePoint({ x: 100, y: 0, z: 1 }, pixel);
    expect(pixel.uPx).toBeGreaterThan(PINHOLE.cx);
    // Camera rotated counter-clockwise seen from behind: its right axis has a positive vehicle z.
    const rolled = new CameraModel(PINHOLE, { ...straight, rollRad: 5 * DEG }).cameraFromVehicle;
    expect(rolled[2]).toBeCloseTo(Math.sin(5 * DEG), 12);
  });

  it('projects a point behind the camera to false and NaN pixels', () => {
    const camera = new CameraModel(PINHOLE, MOUNTING);
    const pixel = createPixelPoint();
    expect(camera.projectVehiclePoint({ x: -5, y: 0, z: 1 }, pixel)).toBe(false);
    expect(pixel.uPx).toBeNaN();
  });

  it('round trips ground points: pixelToGround(projectVehiclePoint(p)) = p within 1 mm, and pixels within 0.01 px (property)', () => {
    const pixel = createPixelPoint();
    const ground = { x: 0, y: 0, z: 0 };
    const back = createPixelPoint();
    fc.assert(
      fc.property(
        mountingArb,
        fc.constantFrom(PINHOLE, DISTORTED),
        fc.double({ min: 4, max: 80, noNaN: true }),
        fc.double({ min: -0.25, max: 0.25, noNaN: true }),
        (mounting, intrinsics, aheadM, lateralPerAhead) => {
          const camera = new CameraModel(intrinsics, mounting);
          const point = { x: mounting.positionM.x + aheadM, y: aheadM * lateralPerAhead, z: 0 };
          expect(camera.projectVehiclePoint(point, pixel)).toBe(true);
          expect(camera.pixelToGround(pixel.uPx, pixel.vPx, ground)).toBe(true);
          expect(Math.hypot(ground.x - point.x, ground.y - point.y)).toBeLessThan(1e-3);
          expect(ground.z).toBe(0);
          camera.projectVehiclePoint(ground, back);
          expect(Math.hypot(back.uPx - pixel.uPx, back.vPx - pixel.vPx)).toBeLessThan(0.01);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round trips distortion inside the image: distort(undistort(pixel)) = pixel within 0.01 px (property)', () => {
    const camera = new CameraModel(DISTORTED, MOUNTING);
    const normalized = { x: 0, y: 0 };
    const pixel = createPixelPoint();
    fc.assert(
      fc.property(fc.double({ min: 0, max: DISTORTED.width, noNaN: true }), fc.double({ min: 0, max: DISTORTED.height, noNaN: true }), (u, v) => {
        camera.undistortPixel(u, v, normalized);
        camera.distortNormalized(normalized.x, normalized.y, pixel);
        expect(Math.hypot(pixel.uPx - u, pixel.vPx - v)).toBeLessThan(0.01);
      }),
      { numRuns: 500 },
    );
  });

  it('rays are unit vectors from the optical centre through the point (property)', () => {
    const pixel = createPixelPoint();
    const ray = { x: 0, y: 0, z: 0 };
    fc.assert(
      fc.property(
        mountingArb,
        fc.constantFrom(PINHOLE, DISTORTED),
        fc.record({ x: fc.double({ min: 3, max: 60, noNaN: true }), y: fc.double({ min: -8, max: 8, noNaN: true }), z: fc.double({ min: -2, max: 6, noNaN: true }) }),
        (mounting, intrinsics, offset) => {
          const camera = new CameraModel(intrinsics, mounting);
          const c = mounting.positionM;
          const point = { x: c.x + offset.x, y: c.y + offset.y, z: c.z + offset.z };
          fc.pre(camera.projectVehiclePoint(point, pixel));
          // Stay where the distortion polynomial is monotonic (inside the image, with a margin).
          fc.pre(pixel.uPx > -50 && pixel.uPx < intrinsics.width + 50 && pixel.vPx > -50 && pixel.vPx < intrinsics.height + 50);
          camera.pixelToVehicleRay(pixel.uPx, pixel.vPx, ray);
          expect(Math.hypot(ray.x, ray.y, ray.z)).toBeCloseTo(1, 12);
          const length = Math.hypot(offset.x, offset.y, offset.z);
          const cosine = (ray.x * offset.x + ray.y * offset.y + ray.z * offset.z) / length;
          expect(1 - cosine).toBeLessThan(1e-10);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('pixelToGround is false at and above the horizon', () => {
    const camera = new CameraModel(PINHOLE, { positionM: { x: 0, y: 0, z: 1.5 }, pitchRad: 0, yawRad: 0, rollRad: 0 });
    const out = { x: 7, y: 7, z: 7 };
    expect(camera.pixelToGround(PINHOLE.cx, PINHOLE.cy, out)).toBe(false);
    expect(camera.pixelToGround(PINHOLE.cx, PINHOLE.cy - 100, out)).toBe(false);
    expect(out).toEqual({ x: 7, y: 7, z: 7 });
    expect(camera.pixelToGround(PINHOLE.cx, PINHOLE.cy + 1, out)).toBe(true);
    expect(out.x).toBeCloseTo(1.5 * PINHOLE.fy, 6);
  });

  it('withMounting replaces only the given fields', () => {
    const camera = new CameraModel(PINHOLE, MOUNTING);
    const tilted = camera.withMounting({ pitchRad: 3 * DEG });
    expect(tilted.mounting).toEqual({ ...MOUNTING, pitchRad: 3 * DEG });
    expect(camera.mounting.pitchRad).toBe(MOUNTING.pitchRad);
  });

  it('refuses bad intrinsics and mountings naming the field', () => {
    const cases: [() => unknown, string, string][] = [
      [() => new CameraModel({ ...PINHOLE, fx: 0 }, MOUNTING), 'RangeError', "CameraModel: field 'intrinsics.fx' must be a finite number > 0, got 0"],
      [() => new CameraModel({ ...PINHOLE, cy: NaN }, MOUNTING), 'RangeError', "field 'intrinsics.cy' must be finite, got NaN"],
      [() => new CameraModel({ ...PINHOLE, fy: '1000' as unknown as number }, MOUNTING), 'TypeError', "field 'intrinsics.fy' must be a number, got 1000"],
      [() => new CameraModel({ ...PINHOLE, distortion: [0, 0, 0, 0] }, MOUNTING), 'RangeError', "field 'intrinsics.distortion' must be 5 values"],
      [() => new CameraModel({ ...PINHOLE, distortion: [0, 0, NaN, 0, 0] }, MOUNTING), 'RangeError', "field 'intrinsics.distortion[2]' must be finite"],
      [() => new CameraModel({ ...PINHOLE, distortionModel: 'fisheye' as 'plumb_bob' }, MOUNTING), 'RangeError', "field 'intrinsics.distortionModel' must be 'plumb_bob', got fisheye"],
      [() => new CameraModel(PINHOLE, { ...MOUNTING, positionM: { x: 0, y: 0, z: 0 } }), 'RangeError', "field 'mounting.positionM.z' must be a finite number > 0 (camera above the road), got 0"],
      [() => new CameraModel(PINHOLE, { ...MOUNTING, pitchRad: MAX_MOUNTING_ANGLE_RAD }), 'RangeError', "field 'mounting.pitchRad' must be finite with |value| < 1.3963 rad"],
      [() => new CameraModel(PINHOLE, { ...MOUNTING, rollRad: NaN }), 'RangeError', "field 'mounting.rollRad'"],
      // A frame without calibration: the caller passes frame.camera, which is undefined.
      [() => new CameraModel(undefined as unknown as CameraIntrinsics, MOUNTING), 'TypeError', "CameraModel: field 'intrinsics' must be an object, got undefined"],
      [() => new CameraModel(PINHOLE, { ...MOUNTING, positionM: undefined as unknown as CameraMounting['positionM'] }), 'TypeError', "field 'mounting.positionM' must be an object {x, y, z}, got undefined"],
    ];
    for (const [fn, name, message] of cases) {
      const error = thrownBy(fn);
      expect(error.name).toBe(name);
      expect(error.message).toContain(message);
    }
  });
});

describe('groundContact', () => {
  const camera = new CameraModel(PINHOLE, { positionM: { x: 1.5, y: 0, z: 1.5 }, pitchRad: 1 * DEG, yawRad: 0, rollRad: 0 });

  /** A box whose bottom-centre is the image of the road point (x, y). */
  function boxOnRoad(x: number, y: number): [number, number, number, number] {
    const pixel = createPixelPoint();
    camera.projectVehiclePoint({ x, y, z: 0 }, pixel);
    return [pixel.uPx - 40, pixel.vPx - 60, pixel.uPx + 40, pixel.vPx];
  }

  it('puts the box bottom-centre back on the road', () => {
    const position = groundContact(boxOnRoad(21.5, -2), camera);
    expect(position).toBeDefined();
    expect(position!.positionM.x).toBeCloseTo(21.5, 6);
    expect(position!.positionM.y).toBeCloseTo(-2, 6);
    expect(position!.rangeM).toBeCloseTo(Math.hypot(21.5, 2), 6);
  });

  it('uncertainty grows with range, about quadratically from pitch error', () => {
    const sigmas = [5, 10, 20, 40, 80].map((x) => groundContact(boxOnRoad(x, 0), camera)!);
    for (let i = 1; i < sigmas.length; i++) {
      expect(sigmas[i]!.rangeSigmaM).toBeGreaterThan(sigmas[i - 1]!.rangeSigmaM);
      expect(sigmas[i]!.lateralSigmaM).toBeGreaterThan(sigmas[i - 1]!.lateralSigmaM);
    }
    // At 40 m (38.5 m from the camera) the pitch term dominates: ~ s^2 / h x sigma_pitch.
    const s = 38.5;
    expect(sigmas[3]!.rangeSigmaM / ((s * s * DEFAULT_PITCH_SIGMA_RAD) / 1.5)).toBeGreaterThan(1);
    expect(sigmas[3]!.rangeSigmaM / ((s * s * DEFAULT_PITCH_SIGMA_RAD) / 1.5)).toBeLessThan(1.15);
  });

  it('uncertainty grows with the pitch error and is ~zero with perfect inputs', () => {
    const box = boxOnRoad(30, 1);
    const small = groundContact(box, camera, { pitchSigmaRad: 0.1 * DEG })!;
    const large = groundContact(box, camera, { pitchSigmaRad: 1 * DEG })!;
    expect(large.rangeSigmaM).toBeGreaterThan(5 * small.rangeSigmaM);
    const perfect = groundContact(box, camera, { pitchSigmaRad: 0, pixelSigmaPx: 0, cameraHeightSigmaM: 0 })!;
    expect(perfect.rangeSigmaM).toBe(0);
    expect(perfect.lateralSigmaM).toBe(0);
  });

  it('is undefined for a box whose bottom is at or above the horizon', () => {
    // Horizon row at this pitch: straight-ahead direction projects to cy - fy tan(pitch).
    const horizonV = PINHOLE.cy - PINHOLE.fy * Math.tan(1 * DEG);
    expect(groundContact([900, horizonV - 100, 1000, horizonV - 10], camera)).toBeUndefined();
    expect(groundContact([900, horizonV - 100, 1000, horizonV + 2], camera)).toBeDefined();
  });

  it('refuses NaN, inverted and malformed boxes and bad options, naming the field', () => {
    const cases: [unknown, string, string][] = [
      [[NaN, 0, 10, 10], 'RangeError', "groundContact: field 'box[0]' must be finite, got NaN"],
      [[0, 0, 10, Infinity], 'RangeError', "groundContact: field 'box[3]' must be finite, got Infinity"],
      [[10, 0, 0, 10], 'RangeError', "groundContact: field 'box' must have x1 <= x2 and y1 <= y2, got [10, 0, 0, 10] (inverted)"],
      [[0, 20, 10, 10], 'RangeError', "groundContact: field 'box' must have x1 <= x2 and y1 <= y2, got [0, 20, 10, 10] (inverted)"],
      [[0, 0, 10], 'TypeError', "groundContact: field 'box' must be [x1, y1, x2, y2] (4 numbers), got [0, 0, 10]"],
      [[0, '0', 10, 10], 'TypeError', "groundContact: field 'box[1]' must be a number, got '0'"],
      [undefined, 'TypeError', "groundContact: field 'box' must be [x1, y1, x2, y2] (4 numbers), got undefined"],
    ];
    for (const [box, name, message] of cases) {
      const error = thrownBy(() => groundContact(box as [number, number, number, number], camera));
      expect(error.name).toBe(name);
      expect(error.message).toBe(message);
    }
    const error = thrownBy(() => groundContact([0, 600, 10, 700], camera, { pitchSigmaRad: -1 }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("groundContact: option 'pitchSigmaRad' must be a finite number >= 0, got -1");
  });
});
