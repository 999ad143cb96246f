/**
 * World geometry on the real PandaSet drive (sequence 002, "PandaSet, Hesai & Scale AI", CC BY 4.0):
 * the offline mounting fit, ground contact against labelled cuboids, ego-motion from poses versus
 * signals, and road calibration from the camera's recorded motion.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { VEHICLE_LABELS, projectGroundTruth } from '../../perception/detect/index.js';
import {
  CameraModel,
  EgoMotion,
  PANDASET_002_FRONT_MOUNTING,
  PandasetVehicleFrames,
  RoadCalibration,
  VEHICLE_CENTRE_OFFSET_M,
  createPixelPoint,
  fitPandasetMounting,
  groundContact,
  motionDirectionInCamera,
  type GroundPosition,
} from '../../perception/world/index.js';
import {
  RecordingReader,
  TOPIC_CAMERA_CALIBRATION,
  TOPIC_CAMERA_POSE,
  TOPIC_GROUND_TRUTH,
  TOPIC_VEHICLE_STATE,
  cameraCalibrationCodec,
  groundTruthObjectsCodec,
  poseCodec,
  vehicleStateCodec,
  type CameraIntrinsics,
  type GroundTruthObject,
  type PoseMessage,
  type VehicleState,
} from '../../pipeline/index.js';
import { PANDASET_DIR, importedPandasetDrive } from '../support/data.js';

const DEG = Math.PI / 180;
const MIN_RANGE_M = 5;
const MAX_RANGE_M = 40;

interface DriveFrame {
  tNs: bigint;
  objects: GroundTruthObject[];
  pose: PoseMessage;
  intrinsics: CameraIntrinsics;
  vehicle: VehicleState;
}

const frames: DriveFrame[] = [];
let camera: CameraModel;
let vehicleFrames: PandasetVehicleFrames;

beforeAll(async () => {
  const reader = await RecordingReader.open(await importedPandasetDrive(), { strict: true });
  try {
    const byTime = new Map<bigint, Partial<DriveFrame>>();
    const topics = [TOPIC_GROUND_TRUTH, TOPIC_CAMERA_POSE, TOPIC_CAMERA_CALIBRATION, TOPIC_VEHICLE_STATE];
    for await (const message of reader.messages({ topics })) {
      const frame = byTime.get(message.logTimeNs) ?? { tNs: message.logTimeNs };
      byTime.set(message.logTimeNs, frame);
      if (message.topic === TOPIC_GROUND_TRUTH) frame.objects = groundTruthObjectsCodec.decode(message.data).objects;
      else if (message.topic === TOPIC_CAMERA_POSE) frame.pose = poseCodec.decode(message.data);
      else if (message.topic === TOPIC_CAMERA_CALIBRATION) frame.intrinsics = cameraCalibrationCodec.decode(message.data).intrinsics;
      else frame.vehicle = vehicleStateCodec.decode(message.data);
    }
    for (const frame of byTime.values()) {
      if (!frame.objects || !frame.pose || !frame.intrinsics || !frame.vehicle) throw new Error('a frame of the drive lacks ground truth, pose, calibration or vehicle state');
      frames.push(frame as DriveFrame);
    }
  } finally {
    await reader.close();
  }
  camera = new CameraModel(frames[0]!.intrinsics, PANDASET_002_FRONT_MOUNTING);
  vehicleFrames = new PandasetVehicleFrames(
    frames.map((f) => f.pose),
    camera,
  );
});

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

describe('PandaSet front camera mounting (offline, one-off)', () => {
  it('PANDASET_002_FRONT_MOUNTING is what fitPandasetMounting gives for the drive', () => {
    const fit = fitPandasetMounting(
      frames.map((f) => f.pose),
      frames.map((f) => f.objects),
    );
    const m = fit.mounting;
    console.log(
      `pandaset-002 mounting: height ${m.positionM.z.toFixed(4)} m, pitch ${m.pitchRad.toFixed(6)} rad (${(m.pitchRad / DEG).toFixed(3)} deg), ` +
        `yaw ${m.yawRad.toFixed(6)} rad (${(m.yawRad / DEG).toFixed(3)} deg), roll ${m.rollRad.toFixed(6)} rad (${(m.rollRad / DEG).toFixed(3)} deg); ` +
        `${fit.points} road points (${fit.outliers} outliers), residual RMS ${fit.residualRmsM.toFixed(3)} m, ${fit.yawPairs} yaw pairs`,
    );
    expect(m.positionM.z).toBeCloseTo(PANDASET_002_FRONT_MOUNTING.positionM.z, 3);
    expect(m.pitchRad).toBeCloseTo(PANDASET_002_FRONT_MOUNTING.pitchRad, 4);
    expect(m.yawRad).toBeCloseTo(PANDASET_002_FRONT_MOUNTING.yawRad, 4);
    expect(m.rollRad).toBeCloseTo(PANDASET_002_FRONT_MOUNTING.rollRad, 4);
    // A roof camera on a minivan: about 2 m up, within a degree or two of level.
    expect(m.positionM.z).toBeGreaterThan(1.5);
    expect(m.positionM.z).toBeLessThan(2.5);
    expect(Math.abs(m.pitchRad)).toBeLessThan(2 * DEG);
    expect(Math.abs(m.rollRad)).toBeLessThan(2 * DEG);
    expect(fit.residualRmsM).toBeLessThan(0.2);
  });

  it('vehicleFromWorld puts the camera at the mounting and the labelled vehicles on the road', () => {
    const origin = { x: 0, y: 0, z: 0 };
    for (let i = 0; i < frames.length; i += 10) {
      vehicleFrames.vehiclePointFromWorld(i, frames[i]!.pose.positionM, origin);
      expect(origin.x).toBeCloseTo(0, 9);
      expect(origin.z).toBeCloseTo(PANDASET_002_FRONT_MOUNTING.positionM.z, 9);
    }
    const bottomsZ: number[] = [];
    const p = { x: 0, y: 0, z: 0 };
    frames.forEach((frame, i) => {
      for (const object of frame.objects) {
        if (!VEHICLE_LABELS.includes(object.label)) continue;
        vehicleFrames.vehiclePointFromWorld(i, { ...object.positionM, z: object.positionM.z - object.heightM / 2 }, p);
        if (p.x > MIN_RANGE_M && p.x < MAX_RANGE_M && Math.abs(p.y) < 15) bottomsZ.push(p.z);
      }
    });
    console.log(`vehicle bottoms 5-40 m ahead in the vehicle frame: z median ${quantile(bottomsZ, 0.5).toFixed(3)} m, p10 ${quantile(bottomsZ, 0.1).toFixed(3)}, p90 ${quantile(bottomsZ, 0.9).toFixed(3)} (n ${bottomsZ.length})`);
    expect(Math.abs(quantile(bottomsZ, 0.5))).toBeLessThan(0.05);
    expect(() => vehicleFrames.vehicleFromWorld(frames.length)).toThrow(/field 'frameIndex' must be an integer in \[0, 59\], got 60/);
  });
});

describe('groundContact on PandaSet', () => {
  interface Sample {
    rangeM: number;
    error: number;
    position: GroundPosition;
  }

  it('back-projects projected cuboid bottom-centres to their vehicle-frame range (5-40 m)', () => {
    const samples: Sample[] = [];
    const pixel = createPixelPoint();
    const bottom = { x: 0, y: 0, z: 0 };
    frames.forEach((frame, i) => {
      const projected = projectGroundTruth(frame.objects, frame.pose, frame.intrinsics);
      projected.forEach((p, j) => {
        if (!p.visible || p.evalClass !== 'vehicle') return;
        const object = frame.objects[j]!;
        vehicleFrames.vehiclePointFromWorld(i, { ...object.positionM, z: object.positionM.z - object.heightM / 2 }, bottom);
        const rangeM = Math.hypot(bottom.x, bottom.y);
        if (rangeM < MIN_RANGE_M || rangeM > MAX_RANGE_M || !camera.projectVehiclePoint(bottom, pixel)) return;
        const position = groundContact([pixel.uPx, pixel.vPx, pixel.uPx, pixel.vPx], camera);
        if (position === undefined) throw new Error(`frame ${i} ${object.id}: bottom-centre above the horizon`);
        samples.push({ rangeM, error: Math.abs(position.rangeM - rangeM) / rangeM, position });
      });
    });
    const errors = samples.map((s) => s.error);
    const within2Sigma = samples.filter((s) => Math.abs(s.position.rangeM - s.rangeM) <= 2 * s.position.rangeSigmaM).length / samples.length;
    console.log(
      `ground contact of projected cuboid bottom-centres, ${samples.length} visible vehicles 5-40 m: |range error|/range median ${pct(quantile(errors, 0.5))}, ` +
        `p90 ${pct(quantile(errors, 0.9))}; within 2 sigma ${pct(within2Sigma)}`,
    );
    expect(samples.length).toBeGreaterThan(100);
    expect(quantile(errors, 0.5)).toBeLessThan(0.03);
    expect(quantile(errors, 0.9)).toBeLessThan(0.1);
    expect(within2Sigma).toBeGreaterThan(0.8);
  });

  it('back-projects the true 2D boxes (projected cuboids) near their nearest footprint point', () => {
    const toNearest: number[] = [];
    const toCentre: number[] = [];
    const offsetToCentre: number[] = [];
    const centre = { x: 0, y: 0, z: 0 };
    const corner = { x: 0, y: 0, z: 0 };
    frames.forEach((frame, i) => {
      const projected = projectGroundTruth(frame.objects, frame.pose, frame.intrinsics);
      projected.forEach((p, j) => {
        // Boxes cut by the image's bottom edge have no ground contact in the image.
        if (!p.visible || p.evalClass !== 'vehicle' || !p.box || p.box[3] >= frame.intrinsics.height - 1) return;
        const object = frame.objects[j]!;
        vehicleFrames.vehiclePointFromWorld(i, object.positionM, centre);
        const centreRangeM = Math.hypot(centre.x, centre.y);
        if (centreRangeM < MIN_RANGE_M || centreRangeM > MAX_RANGE_M) return;
        let nearestM = Infinity;
        const c = Math.cos(object.yawRad);
        const s = Math.sin(object.yawRad);
        for (const [l, w] of [[1, 1], [1, -1], [-1, 1], [-1, -1]] as const) {
          const along = (l * object.lengthM) / 2;
          const across = (w * object.widthM) / 2;
          const world = { x: object.positionM.x + along * c - across * s, y: object.positionM.y + along * s + across * c, z: object.positionM.z - object.heightM / 2 };
          vehicleFrames.vehiclePointFromWorld(i, world, corner);
          nearestM = Math.min(nearestM, Math.hypot(corner.x, corner.y));
        }
        const position = groundContact(p.box, camera);
        if (position === undefined) return;
        toNearest.push(Math.abs(position.rangeM - nearestM) / nearestM);
        toCentre.push(Math.abs(position.rangeM - centreRangeM) / centreRangeM);
        const shifted = groundContact(p.box, camera, { centreOffsetM: VEHICLE_CENTRE_OFFSET_M })!;
        offsetToCentre.push(Math.abs(shifted.rangeM - centreRangeM) / centreRangeM);
      });
    });
    console.log(
      `ground contact of true 2D boxes, ${toNearest.length} visible vehicles 5-40 m: |range error|/range vs nearest footprint corner median ${pct(quantile(toNearest, 0.5))}, ` +
        `p90 ${pct(quantile(toNearest, 0.9))}; vs cuboid centre median ${pct(quantile(toCentre, 0.5))}, p90 ${pct(quantile(toCentre, 0.9))}; ` +
        `with centreOffsetM ${VEHICLE_CENTRE_OFFSET_M} m vs centre median ${pct(quantile(offsetToCentre, 0.5))}, p90 ${pct(quantile(offsetToCentre, 0.9))}`,
    );
    expect(quantile(offsetToCentre, 0.5)).toBeLessThan(quantile(toCentre, 0.5));
    expect(toNearest.length).toBeGreaterThan(100);
    expect(quantile(toNearest, 0.5)).toBeLessThan(0.05);
  });
});

describe('ego-motion on PandaSet', () => {
  it('poses and speed/yaw-rate signals agree over the 6 s drive', async () => {
    const fromPoses = new EgoMotion();
    const fromSignals = new EgoMotion();
    const fromGps = new EgoMotion();
    const gps = JSON.parse(await readFile(path.join(PANDASET_DIR, 'gps.json'), 'utf8')) as { xvel: number; yvel: number }[];
    expect(gps).toHaveLength(frames.length);
    frames.forEach((frame, i) => {
      expect(fromPoses.updateFromPose(frame.tNs, vehicleFrames.vehiclePoseInWorld(i))).toBe(true);
      expect(fromSignals.update(frame.tNs, frame.vehicle)).toBe(true);
      // GPS/INS speed is independent of the camera poses; the yaw rate still comes from the poses.
      expect(fromGps.update(frame.tNs, { speedMps: Math.hypot(gps[i]!.xvel, gps[i]!.yvel), yawRateRps: frame.vehicle.yawRateRps })).toBe(true);
    });
    const t0 = frames[0]!.tNs;
    const a = fromPoses.deltaSince(t0)!;
    const b = fromSignals.deltaSince(t0)!;
    const g = fromGps.deltaSince(t0)!;
    let worstStepM = 0;
    for (let i = 1; i < frames.length; i++) {
      const p = fromPoses.deltaBetween(frames[i - 1]!.tNs, frames[i]!.tNs)!;
      const s = fromSignals.deltaBetween(frames[i - 1]!.tNs, frames[i]!.tNs)!;
      worstStepM = Math.max(worstStepM, Math.hypot(p.dxM - s.dxM, p.dyM - s.dyM));
    }
    console.log(
      `ego-motion over ${(Number(frames.at(-1)!.tNs - t0) / 1e9).toFixed(1)} s: poses dx ${a.dxM.toFixed(3)} dy ${a.dyM.toFixed(3)} m dyaw ${(a.dYawRad / DEG).toFixed(3)} deg; ` +
        `signals dx ${b.dxM.toFixed(3)} dy ${b.dyM.toFixed(3)} dyaw ${(b.dYawRad / DEG).toFixed(3)}; GPS speed dx ${g.dxM.toFixed(3)} dy ${g.dyM.toFixed(3)}; ` +
        `worst frame-to-frame difference poses vs signals ${(1000 * worstStepM).toFixed(1)} mm`,
    );
    // Tolerances: signals (differenced from the same poses, then integrated) within 2% of the
    // distance and 0.2 deg; GPS speed within 5% of the distance (a different sensor, unknown lag).
    const distanceM = Math.hypot(a.dxM, a.dyM);
    expect(distanceM).toBeGreaterThan(8);
    expect(Math.hypot(a.dxM - b.dxM, a.dyM - b.dyM)).toBeLessThan(0.02 * distanceM);
    expect(Math.abs(a.dYawRad - b.dYawRad)).toBeLessThan(0.2 * DEG);
    expect(Math.hypot(a.dxM - g.dxM, a.dyM - g.dyM)).toBeLessThan(0.05 * distanceM);
    expect(worstStepM).toBeLessThan(0.05);
  });

  it('rejects and counts frames whose timestamps jump back', () => {
    const ego = new EgoMotion();
    const order = [0, 1, 2, 1, 3, 0, 4];
    const accepted = order.map((i) => ego.updateFromPose(frames[i]!.tNs, vehicleFrames.vehiclePoseInWorld(i)));
    expect(accepted).toEqual([true, true, true, false, true, false, true]);
    expect(ego.rejections.timeNotIncreasing).toBe(2);
  });
});

describe('road calibration on PandaSet', () => {
  it('estimates pitch and yaw from the recorded camera motion, gated by speed and yaw rate', () => {
    const nominal = camera.withMounting({ pitchRad: 0, yawRad: 0 });
    const calibration = new RoadCalibration(nominal);
    const direction = { x: 0, y: 0, z: 0 };
    let offered = 0;
    for (let i = 0; i + 1 < frames.length; i++) {
      if (!motionDirectionInCamera(frames[i]!.pose, frames[i + 1]!.pose, direction)) continue;
      offered++;
      calibration.observeMotionDirection(direction, frames[i]!.vehicle);
    }
    const estimate = calibration.estimate;
    const fitted = PANDASET_002_FRONT_MOUNTING;
    console.log(
      `road calibration on pandaset-002: ${estimate.samples} of ${offered} samples accepted (rejected ${JSON.stringify(calibration.rejections)}); ` +
        `pitch ${(estimate.pitchRad / DEG).toFixed(3)} deg (road-plane fit ${(fitted.pitchRad / DEG).toFixed(3)}), yaw ${(estimate.yawRad / DEG).toFixed(3)} deg ` +
        `(fit ${(fitted.yawRad / DEG).toFixed(3)}); sigma ${(estimate.pitchSigmaRad / DEG).toFixed(3)} / ${(estimate.yawSigmaRad / DEG).toFixed(3)} deg, confidence ${estimate.confidence.toFixed(2)}, converged ${estimate.converged}`,
    );
    expect(calibration.rejections.slow).toBeGreaterThan(0);
    expect(estimate.samples).toBeGreaterThan(10);
    // The motion direction and the road plane are independent observations of the pitch.
    expect(Math.abs(estimate.pitchRad - fitted.pitchRad)).toBeLessThan(0.5 * DEG);
    expect(Math.abs(estimate.yawRad - fitted.yawRad)).toBeLessThan(0.5 * DEG);
    // 6 s of slow driving is not enough to converge: the estimate must say so.
    expect(estimate.converged).toBe(false);
    expect(estimate.confidence).toBeLessThan(0.5);
  });
});
