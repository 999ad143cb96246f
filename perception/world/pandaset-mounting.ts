/**
 * The PandaSet front camera's mounting in a vehicle frame, and the vehicle frame at each recorded
 * frame, for evaluation against the dataset's world-frame cuboids.
 *
 * PandaSet gives camera-to-world poses (OpenCV camera axes, world z up) and labelled cuboids in the
 * world frame, but no vehicle frame. This module defines one, once per recording, offline:
 * - road plane: a plane fitted, in the camera frame, to the bottom-centres of the labelled vehicles
 *   3-40 m ahead in all frames (least squares of camera y on camera x and z, then again without
 *   residuals beyond 3 robust sigmas). Its distance from the optical centre is the camera height,
 *   its normal gives pitch and roll.
 * - yaw: the camera's translation direction over the drive (frames above a walking pace, weighted by
 *   the distance moved), seen with that pitch and roll: the car drives along its own x axis.
 * - origin: on the road under the optical centre. The recording does not say where the rear axle
 *   is, so x = y = 0; this shifts every range by the same few metres against a rear-axle origin
 *   and cancels in evaluations that put ground truth and estimates in this same frame.
 *
 * `PANDASET_002_FRONT_MOUNTING` holds the result for sequence 002, from `fitPandasetMounting`
 * (test/perception/world-pandaset.test.ts recomputes it and checks the constant). The labels are
 * used for this one-off calibration only, never per frame at runtime.
 *
 * Frames: world (dataset, metres, z up); camera (OpenCV: x right, y down, z forward); vehicle
 * (ISO 8855: x forward, y left, z up, origin on the road under the camera).
 */
import type { GroundTruthObject } from '../../pipeline/index.js';
import type { Vec3M } from '../../render/optics-config.js';
// ground-truth.js directly, not detect/index.js: the index would load onnxruntime-node with the detector.
import { VEHICLE_LABELS, type CameraPoseInWorld } from '../detect/ground-truth.js';
import { CameraModel, type CameraMounting } from './camera-model.js';
import { anglesOfDirection, motionDirectionInCamera } from './road-calibration.js';

/** Road-plane points: labelled vehicles this far ahead of the camera at least, camera z, m (nearer ones are cut by the image). */
export const FIT_MIN_DEPTH_M = 3;
/** ... and at most, m (further, label height errors and road curvature dominate). */
export const FIT_MAX_DEPTH_M = 40;
/** ... and at most this far to either side, camera x, m (the road, not the pavement beyond parked cars). */
export const FIT_MAX_LATERAL_M = 15;
/** Points with a residual beyond this many robust sigmas (1.4826 MAD) are dropped before the final fit. */
export const FIT_OUTLIER_SIGMAS = 3;
/** Frame pairs count for the yaw only when the camera moved at least this far between them, m (0.1 m = 1 m/s at 10 Hz). */
export const YAW_MIN_STEP_M = 0.1;

/** Fitted mounting of the PandaSet sequence 002 front camera (see module comment). */
export const PANDASET_002_FRONT_MOUNTING: Readonly<CameraMounting> = Object.freeze({
  positionM: Object.freeze({ x: 0, y: 0, z: 2.2064 }),
  pitchRad: 0.00377,
  yawRad: 0.00341,
  rollRad: -0.01545,
});

export interface MountingFit {
  mounting: CameraMounting;
  /** Road-plane points used in the final fit, and how many were dropped as outliers. */
  points: number;
  outliers: number;
  /** RMS distance of the used points from the plane, m. */
  residualRmsM: number;
  /** Frame pairs used for the yaw. */
  yawPairs: number;
}

/**
 * Fits the camera's mounting relative to the road from a recording's camera poses and labelled
 * cuboids (one array of objects per frame, world frame). Offline, once per recording.
 */
export function fitPandasetMounting(poses: readonly CameraPoseInWorld[], objectsByFrame: readonly (readonly GroundTruthObject[])[]): MountingFit {
  if (poses.length !== objectsByFrame.length) {
    throw new RangeError(`fitPandasetMounting: field 'objectsByFrame' must have one entry per pose (${poses.length}), got ${objectsByFrame.length}`);
  }
  const points: Vec3M[] = [];
  poses.forEach((pose, frame) => {
    const cameraFromWorld = rigidInverse(worldFromCameraOf(pose));
    for (const object of objectsByFrame[frame]!) {
      if (!VEHICLE_LABELS.includes(object.label)) continue;
      const bottom = { x: object.positionM.x, y: object.positionM.y, z: object.positionM.z - object.heightM / 2 };
      const p = applyRigid(cameraFromWorld, bottom, { x: 0, y: 0, z: 0 });
      if (p.z >= FIT_MIN_DEPTH_M && p.z <= FIT_MAX_DEPTH_M && Math.abs(p.x) <= FIT_MAX_LATERAL_M) points.push(p);
    }
  });
  if (points.length < 3) throw new RangeError(`fitPandasetMounting: need >= 3 vehicle bottoms ${FIT_MIN_DEPTH_M}-${FIT_MAX_DEPTH_M} m ahead, got ${points.length}`);

  // y = a x + b z + c: camera y is close to the road normal for any sane mounting.
  let plane = fitPlane(points);
  const residuals = points.map((p) => p.y - (plane.a * p.x + plane.b * p.z + plane.c));
  const sorted = residuals.map(Math.abs).sort((l, r) => l - r);
  const robustSigma = 1.4826 * (sorted[Math.floor(sorted.length / 2)] ?? 0);
  const kept = points.filter((_, i) => Math.abs(residuals[i]!) <= FIT_OUTLIER_SIGMAS * Math.max(robustSigma, 1e-3));
  plane = fitPlane(kept);

  // Plane: n . p = h with n the unit "down" normal in the camera frame, h the camera height.
  const norm = Math.hypot(plane.a, 1, plane.b);
  const n = { x: -plane.a / norm, y: 1 / norm, z: -plane.b / norm };
  const heightM = plane.c / norm;
  // From camera-model.ts, vehicle down in the camera frame is (-cos p sin r, cos p cos r, sin p).
  const pitchRad = Math.asin(n.z);
  const rollRad = Math.atan2(-n.x, n.y);
  let residualSquares = 0;
  for (const p of kept) residualSquares += (n.x * p.x + n.y * p.y + n.z * p.z - heightM) ** 2;

  let yawSum = 0;
  let weightSum = 0;
  let yawPairs = 0;
  const direction = { x: 0, y: 0, z: 0 };
  const angles = { pitchRad: 0, yawRad: 0 };
  for (let i = 0; i + 1 < poses.length; i++) {
    const a = poses[i]!;
    const b = poses[i + 1]!;
    const stepM = Math.hypot(b.positionM.x - a.positionM.x, b.positionM.y - a.positionM.y, b.positionM.z - a.positionM.z);
    if (!(stepM >= YAW_MIN_STEP_M) || !motionDirectionInCamera(a, b, direction)) continue;
    anglesOfDirection(direction.x, direction.y, direction.z, rollRad, angles);
    yawSum += stepM * angles.yawRad;
    weightSum += stepM;
    yawPairs++;
  }
  if (yawPairs === 0) throw new RangeError(`fitPandasetMounting: the camera never moved ${YAW_MIN_STEP_M} m between frames; yaw is unobservable`);
  return {
    mounting: { positionM: { x: 0, y: 0, z: heightM }, pitchRad, yawRad: yawSum / weightSum, rollRad },
    points: kept.length,
    outliers: points.length - kept.length,
    residualRmsM: Math.sqrt(residualSquares / kept.length),
    yawPairs,
  };
}

/**
 * The vehicle frame at each frame of a recording with camera poses: vehicleFromWorld =
 * vehicleFromCamera (the mounting) x cameraFromWorld (the frame's pose).
 */
export class PandasetVehicleFrames {
  readonly camera: CameraModel;
  readonly #poses: readonly CameraPoseInWorld[];

  constructor(poses: readonly CameraPoseInWorld[], camera: CameraModel) {
    this.#poses = poses;
    this.camera = camera;
  }

  /** Frames held. */
  get length(): number {
    return this.#poses.length;
  }

  /**
   * vehicleFromWorld at `frameIndex`: row-major rotation (9) then translation (3), p_veh = R p_world
   * + t; vehicle axes x forward, y left, z up; world axes the dataset's (z up).
   */
  vehicleFromWorld(frameIndex: number): Float64Array {
    const pose = this.#poses[frameIndex];
    if (pose === undefined) throw new RangeError(`PandasetVehicleFrames.vehicleFromWorld: field 'frameIndex' must be an integer in [0, ${this.#poses.length - 1}], got ${frameIndex}`);
    const cameraFromWorld = rigidInverse(worldFromCameraOf(pose));
    const vehicleFromCamera = rigidInverse(this.camera.cameraFromVehicle);
    return composeRigid(vehicleFromCamera, cameraFromWorld);
  }

  /** A world point (e.g. a cuboid centre) in the vehicle frame at `frameIndex`, into `out`. */
  vehiclePointFromWorld(frameIndex: number, pointM: Readonly<Vec3M>, out: Vec3M): Vec3M {
    return applyRigid(this.vehicleFromWorld(frameIndex), pointM, out);
  }

  /**
   * The vehicle's planar pose in the world at `frameIndex`: origin (on the road under the camera) and
   * heading of its x axis, counter-clockwise from world x. For `EgoMotion.updateFromPose`.
   */
  vehiclePoseInWorld(frameIndex: number): { positionM: Vec3M; headingRad: number } {
    const worldFromVehicle = rigidInverse(this.vehicleFromWorld(frameIndex));
    return {
      positionM: { x: worldFromVehicle[9]!, y: worldFromVehicle[10]!, z: worldFromVehicle[11]! },
      // World x-y of the vehicle's x axis: the first column of the rotation.
      headingRad: Math.atan2(worldFromVehicle[3]!, worldFromVehicle[0]!),
    };
  }
}

/** worldFromCamera (R then t) of a pose: R from the unit quaternion, t the camera centre. */
function worldFromCameraOf(pose: CameraPoseInWorld): Float64Array {
  const { x: qx, y: qy, z: qz, w: qw } = pose.orientation;
  const n = Math.hypot(qx, qy, qz, qw);
  if (!(Number.isFinite(n) && n > 0)) throw new RangeError(`PandasetVehicleFrames: field 'orientation' must be a non-zero finite quaternion, got (${qx}, ${qy}, ${qz}, ${qw})`);
  const x = qx / n;
  const y = qy / n;
  const z = qz / n;
  const w = qw / n;
  const m = new Float64Array(12);
  m.set([
    1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
    2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
    2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    pose.positionM.x, pose.positionM.y, pose.positionM.z,
  ]);
  return m;
}

/** Inverse of a rigid transform (R, t): (R^T, -R^T t). */
function rigidInverse(m: Float64Array): Float64Array {
  const out = new Float64Array(12);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) out[3 * r + c] = m[3 * c + r]!;
  for (let r = 0; r < 3; r++) out[9 + r] = -(out[3 * r]! * m[9]! + out[3 * r + 1]! * m[10]! + out[3 * r + 2]! * m[11]!);
  return out;
}

/** aFromC = aFromB x bFromC. */
function composeRigid(aFromB: Float64Array, bFromC: Float64Array): Float64Array {
  const out = new Float64Array(12);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) {
      out[3 * r + c] = aFromB[3 * r]! * bFromC[c]! + aFromB[3 * r + 1]! * bFromC[3 + c]! + aFromB[3 * r + 2]! * bFromC[6 + c]!;
    }
    out[9 + r] = aFromB[3 * r]! * bFromC[9]! + aFromB[3 * r + 1]! * bFromC[10]! + aFromB[3 * r + 2]! * bFromC[11]! + aFromB[9 + r]!;
  }
  return out;
}

function applyRigid(m: Float64Array, p: Readonly<Vec3M>, out: Vec3M): Vec3M {
  const x = m[0]! * p.x + m[1]! * p.y + m[2]! * p.z + m[9]!;
  const y = m[3]! * p.x + m[4]! * p.y + m[5]! * p.z + m[10]!;
  const z = m[6]! * p.x + m[7]! * p.y + m[8]! * p.z + m[11]!;
  out.x = x;
  out.y = y;
  out.z = z;
  return out;
}

/** Least squares y = a x + b z + c (normal equations, 3x3 by Cramer's rule). */
function fitPlane(points: readonly Vec3M[]): { a: number; b: number; c: number } {
  let sxx = 0, sxz = 0, sx = 0, szz = 0, sz = 0, sxy = 0, szy = 0, sy = 0;
  for (const p of points) {
    sxx += p.x * p.x;
    sxz += p.x * p.z;
    sx += p.x;
    szz += p.z * p.z;
    sz += p.z;
    sxy += p.x * p.y;
    szy += p.z * p.y;
    sy += p.y;
  }
  const count = points.length;
  const det3 = (m: readonly number[]): number =>
    m[0]! * (m[4]! * m[8]! - m[5]! * m[7]!) - m[1]! * (m[3]! * m[8]! - m[5]! * m[6]!) + m[2]! * (m[3]! * m[7]! - m[4]! * m[6]!);
  const system = [sxx, sxz, sx, sxz, szz, sz, sx, sz, count];
  const rhs = [sxy, szy, sy];
  const det = det3(system);
  if (!(Math.abs(det) > 1e-12)) throw new RangeError(`fitPandasetMounting: road-plane points are degenerate (collinear), got ${count} points`);
  const solve = (column: number): number => {
    const m = [...system];
    for (let r = 0; r < 3; r++) m[3 * r + column] = rhs[r]!;
    return det3(m) / det;
  };
  return { a: solve(0), b: solve(1), c: solve(2) };
}
