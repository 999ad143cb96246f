import { describe, expect, it } from 'vitest';
import type { CameraIntrinsics } from '../../pipeline/index.js';
import { predictVehiclePose, vehicleAtDisplayFromVehicleAtCapture } from '../../render/optics.js';
import {
  BLOCK_WEIGHT,
  CONVERGED_SIGMA_RAD,
  CameraModel,
  EgoMotion,
  HISTORY_CAPACITY,
  MAX_EXTRAPOLATION_S,
  MAX_OFFSET_RAD,
  MAX_SIGNAL_GAP_S,
  MAX_YAW_RATE_RPS,
  MIN_BLOCKS,
  MIN_SPEED_MPS,
  PRIOR_SIGMA_RAD,
  RoadCalibration,
  anglesOfDirection,
  createPixelPoint,
  type CameraMounting,
} from '../../perception/world/index.js';
import { gaussianRandom, seededRandom } from '../support/random.js';
import { thrownBy } from '../support/errors.js';

const DEG = Math.PI / 180;
const MS = 1_000_000n;
const INTRINSICS: CameraIntrinsics = { width: 1920, height: 1080, fx: 1970, fy: 1970, cx: 970, cy: 483, distortionModel: 'plumb_bob', distortion: [-0.1, 0.02, 0, 0, 0] };
const NOMINAL: CameraMounting = { positionM: { x: 1.8, y: 0, z: 1.4 }, pitchRad: 0, yawRad: 0, rollRad: 1 * DEG };

describe('EgoMotion', () => {
  it('dead-reckons a constant turn exactly like predictVehiclePose', () => {
    const ego = new EgoMotion();
    for (let i = 0; i <= 20; i++) expect(ego.update(BigInt(i) * 100n * MS, { speedMps: 10, yawRateRps: 0.2 })).toBe(true);
    const delta = ego.deltaSince(0n)!;
    const expected = predictVehiclePose(10, 0.2, 2);
    expect(delta.dxM).toBeCloseTo(expected.dxM, 9);
    expect(delta.dyM).toBeCloseTo(expected.dyM, 9);
    expect(delta.dYawRad).toBeCloseTo(0.4, 12);
    // Between samples the pose is interpolated; up to MAX_EXTRAPOLATION_S ahead it is predicted.
    expect(ego.deltaBetween(0n, 50n * MS)!.dxM).toBeCloseTo(0.5, 2);
    const ahead = ego.deltaBetween(2000n * MS, 2000n * MS + BigInt(MAX_EXTRAPOLATION_S * 1000) * MS)!;
    expect(ahead.dxM).toBeCloseTo(predictVehiclePose(10, 0.2, MAX_EXTRAPOLATION_S).dxM, 9);
    expect(ego.deltaBetween(2000n * MS, 2000n * MS + BigInt(MAX_EXTRAPOLATION_S * 1000 + 1) * MS)).toBeUndefined();
    expect(ego.deltaSince(-1n)).toBeUndefined();
  });

  it('predicts a static point into the next vehicle frame', () => {
    const ego = new EgoMotion();
    ego.update(0n, { speedMps: 15, yawRateRps: 0 });
    const step = ego.vehicleFromPreviousVehicle(0.1);
    const point = vehicleAtDisplayFromVehicleAtCapture({ x: 30, y: 2, z: 0 }, step, { x: 0, y: 0, z: 0 });
    expect(point.x).toBeCloseTo(28.5, 12);
    expect(point.y).toBeCloseTo(2, 12);
    expect(thrownBy(() => ego.vehicleFromPreviousVehicle(NaN)).message).toBe("EgoMotion.vehicleFromPreviousVehicle: field 'dtS' must be finite, got NaN");
  });

  it('rejects and counts time going back, duplicates and non-finite signals', () => {
    const ego = new EgoMotion();
    expect(ego.update(1000n * MS, { speedMps: 10, yawRateRps: 0 })).toBe(true);
    expect(ego.update(900n * MS, { speedMps: 10, yawRateRps: 0 })).toBe(false);
    expect(ego.update(1000n * MS, { speedMps: 10, yawRateRps: 0 })).toBe(false);
    expect(ego.update(1100n * MS, { speedMps: NaN, yawRateRps: 0 })).toBe(false);
    expect(ego.updateFromPose(1100n * MS, { positionM: { x: Infinity, y: 0, z: 0 }, headingRad: 0 })).toBe(false);
    expect(ego.update(1100n * MS, { speedMps: 10, yawRateRps: 0 })).toBe(true);
    expect(ego.rejections).toEqual({ timeNotIncreasing: 2, invalidInput: 2, gaps: 0 });
    expect(ego.samples).toBe(2);
    expect(ego.latestTimeNs).toBe(1100n * MS);
    const error = thrownBy(() => ego.update(5 as unknown as bigint, { speedMps: 1, yawRateRps: 0 }));
    expect(error.name).toBe('TypeError');
    expect(error.message).toBe("EgoMotion.update: field 'tNs' must be a bigint (nanoseconds), got number");
  });

  it('restarts dead reckoning after a signal gap longer than MAX_SIGNAL_GAP_S', () => {
    const ego = new EgoMotion();
    const gapNs = BigInt(Math.round(MAX_SIGNAL_GAP_S * 1000)) * MS;
    ego.update(0n, { speedMps: 10, yawRateRps: 0 });
    expect(ego.update(gapNs, { speedMps: 10, yawRateRps: 0 })).toBe(true);
    expect(ego.rejections.gaps).toBe(0);
    expect(ego.update(2n * gapNs + 1n, { speedMps: 10, yawRateRps: 0 })).toBe(true);
    expect(ego.rejections.gaps).toBe(1);
    expect(ego.deltaSince(gapNs)).toBeUndefined();
    expect(ego.deltaSince(2n * gapNs + 1n)).toEqual({ dxM: 0, dyM: 0, dYawRad: 0 });
  });

  it('keeps HISTORY_CAPACITY samples and follows poses across the +-pi wrap', () => {
    const ego = new EgoMotion();
    for (let i = 0; i < HISTORY_CAPACITY + 10; i++) {
      const heading = Math.PI - 0.05 + 0.01 * i; // crosses +pi
      ego.updateFromPose(BigInt(i) * 100n * MS, { positionM: { x: i, y: 0, z: 0 }, headingRad: Math.atan2(Math.sin(heading), Math.cos(heading)) });
    }
    expect(ego.deltaSince(9n * 100n * MS)).toBeUndefined();
    const delta = ego.deltaBetween(100n * 100n * MS, 101n * 100n * MS)!;
    expect(delta.dYawRad).toBeCloseTo(0.01, 12);
    expect(ego.yawRateRps).toBeCloseTo(0.1, 9);
    // Last heading ~5.7 rad (cos > 0) while moving along +x: forward.
    expect(ego.speedMps).toBeCloseTo(10, 9);
  });
});

describe('RoadCalibration', () => {
  const camera = new CameraModel(INTRINSICS, NOMINAL);
  const TRUE_PITCH = 0.8 * DEG;
  const TRUE_YAW = -0.6 * DEG;
  const cruising = { speedMps: 15, yawRateRps: 0 };

  /** Vanishing point of the direction of travel for a camera mounted at (TRUE_PITCH, TRUE_YAW), plus pixel noise. */
  function vanishingPoint(noisePx: number, gauss: () => number): { uPx: number; vPx: number } {
    const truth = camera.withMounting({ pitchRad: TRUE_PITCH, yawRad: TRUE_YAW });
    const pixel = createPixelPoint();
    const c = NOMINAL.positionM;
    truth.projectVehiclePoint({ x: c.x + 1e6, y: c.y, z: c.z }, pixel);
    return { uPx: pixel.uPx + noisePx * gauss(), vPx: pixel.vPx + noisePx * gauss() };
  }

  it('reads pitch and yaw back from a noiseless direction (anglesOfDirection inverts the mounting)', () => {
    const truth = camera.withMounting({ pitchRad: 3 * DEG, yawRad: -2 * DEG });
    const m = truth.cameraFromVehicle;
    const angles = anglesOfDirection(m[0]!, m[3]!, m[6]!, NOMINAL.rollRad, { pitchRad: 0, yawRad: 0 });
    expect(angles.pitchRad).toBeCloseTo(3 * DEG, 12);
    expect(angles.yawRad).toBeCloseTo(-2 * DEG, 12);
  });

  it('converges within 0.1 deg from noisy vanishing points and is not confident before MIN_BLOCKS', () => {
    const calibration = new RoadCalibration(camera);
    const gauss = gaussianRandom(seededRandom(7));
    const initial = calibration.estimate;
    expect(initial).toMatchObject({ pitchRad: 0, yawRad: 0, pitchSigmaRad: PRIOR_SIGMA_RAD, confidence: 0, converged: false, samples: 0 });
    // 20 px of noise is ~0.6 deg per sample.
    for (let i = 0; i < (MIN_BLOCKS - 1) * BLOCK_WEIGHT; i++) {
      const vp = vanishingPoint(20, gauss);
      expect(calibration.observeVanishingPoint(vp.uPx, vp.vPx, 1, cruising)).toBe(true);
    }
    const early = calibration.estimate;
    expect(early.converged).toBe(false);
    expect(early.confidence).toBeLessThan(0.5);
    expect(early.pitchSigmaRad).toBe(PRIOR_SIGMA_RAD);
    expect(early.samples).toBe((MIN_BLOCKS - 1) * BLOCK_WEIGHT);
    for (let i = 0; i < 40 * BLOCK_WEIGHT; i++) {
      const vp = vanishingPoint(20, gauss);
      calibration.observeVanishingPoint(vp.uPx, vp.vPx, 1, cruising);
    }
    const late = calibration.estimate;
    console.log(
      `road calibration (synthetic, 0.6 deg noise, ${late.samples} samples): pitch error ${((late.pitchRad - TRUE_PITCH) / DEG).toFixed(3)} deg ` +
        `(sigma ${(late.pitchSigmaRad / DEG).toFixed(3)}), yaw error ${((late.yawRad - TRUE_YAW) / DEG).toFixed(3)} deg (sigma ${(late.yawSigmaRad / DEG).toFixed(3)}), confidence ${late.confidence.toFixed(2)}`,
    );
    expect(late.converged).toBe(true);
    expect(late.confidence).toBe(1);
    expect(Math.abs(late.pitchRad - TRUE_PITCH)).toBeLessThan(0.1 * DEG);
    expect(Math.abs(late.yawRad - TRUE_YAW)).toBeLessThan(0.1 * DEG);
    expect(late.pitchSigmaRad).toBeLessThanOrEqual(CONVERGED_SIGMA_RAD);
    // The estimate applies directly as a mounting.
    expect(camera.withMounting({ pitchRad: late.pitchRad, yawRad: late.yawRad }).mounting.pitchRad).toBe(late.pitchRad);
  });

  it('accepts samples exactly at MIN_SPEED_MPS and MAX_YAW_RATE_RPS and ignores them just beyond', () => {
    const calibration = new RoadCalibration(camera);
    const direction = { x: 0, y: 0, z: 1 };
    expect(calibration.observeMotionDirection(direction, { speedMps: MIN_SPEED_MPS, yawRateRps: 0 })).toBe(true);
    expect(calibration.observeMotionDirection(direction, { speedMps: MIN_SPEED_MPS - 1e-9, yawRateRps: 0 })).toBe(false);
    expect(calibration.observeMotionDirection(direction, { speedMps: 20, yawRateRps: MAX_YAW_RATE_RPS })).toBe(true);
    expect(calibration.observeMotionDirection(direction, { speedMps: 20, yawRateRps: -MAX_YAW_RATE_RPS })).toBe(true);
    expect(calibration.observeMotionDirection(direction, { speedMps: 20, yawRateRps: MAX_YAW_RATE_RPS + 1e-9 })).toBe(false);
    expect(calibration.observeMotionDirection(direction, { speedMps: 20, yawRateRps: -MAX_YAW_RATE_RPS - 1e-9 })).toBe(false);
    expect(calibration.estimate.samples).toBe(3);
    expect(calibration.rejections).toEqual({ slow: 1, turning: 2, implausible: 0, invalid: 0 });
  });

  it('ignores implausible and invalid samples and counts them', () => {
    const calibration = new RoadCalibration(camera);
    const offset = MAX_OFFSET_RAD + 0.001;
    expect(calibration.observeMotionDirection({ x: 0, y: -Math.tan(offset), z: 1 }, cruising)).toBe(false);
    expect(calibration.observeMotionDirection({ x: 0, y: 0, z: 0 }, cruising)).toBe(false);
    expect(calibration.observeMotionDirection({ x: 0, y: 0, z: -1 }, cruising)).toBe(false);
    expect(calibration.observeMotionDirection({ x: 0, y: 0, z: 1 }, cruising, 0)).toBe(false);
    expect(calibration.observeVanishingPoint(NaN, 500, 1, cruising)).toBe(false);
    expect(calibration.observeMotionDirection({ x: 0, y: 0, z: 1 }, { speedMps: NaN, yawRateRps: 0 })).toBe(false);
    expect(calibration.rejections).toEqual({ slow: 0, turning: 0, implausible: 1, invalid: 5 });
    expect(calibration.estimate.samples).toBe(0);
  });
});
