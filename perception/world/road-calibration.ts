/**
 * Online estimate of the camera's pitch and yaw relative to the road (like openpilot's calibrationd).
 *
 * Observation: the direction the vehicle travels, seen in the camera frame. While driving straight
 * on a locally flat road the vehicle moves along its own x axis, parallel to the road, so the camera
 * sees its translation direction (the focus of expansion, the vanishing point of the lane lines) at
 * exactly the mounting's pitch and yaw. Two sources give it:
 * - `observeMotionDirection`: a unit direction in the camera frame, e.g. the camera's translation
 *   between two recorded poses (`motionDirectionInCamera`) or from visual odometry;
 * - `observeVanishingPoint`: a pixel, e.g. where the lane helper's left and right lines meet.
 * Why this and not the road plane: the direction needs no depth, no feature scale and no flat-road
 * fit, and it is what calibrationd itself uses (its model's translation direction). It leaves roll
 * unobserved (a rotation about the viewing direction), so roll is taken from the nominal mounting.
 *
 * Frames: camera (OpenCV, x right, y down, z forward); the estimated angles are `CameraMounting`
 * pitch (positive looking down) and yaw (positive turned left) relative to the vehicle's direction of
 * travel, so `camera.withMounting({ pitchRad, yawRad })` applies them.
 *
 * Gating: samples count only above MIN_SPEED_MPS and below MAX_YAW_RATE_RPS (limits inclusive), and
 * within MAX_OFFSET_RAD of the nominal mounting. Accepted samples are averaged in blocks of
 * BLOCK_WEIGHT; the estimate is the mean of the newest MAX_BLOCKS blocks (plus the partial block),
 * its sigma the standard error of the block means (blocks, not samples, because consecutive frames
 * share errors). Until MIN_BLOCKS blocks are full the sigma is PRIOR_SIGMA_RAD.
 */
import type { Vec3M } from '../../render/optics-config.js';
import type { CameraModel } from './camera-model.js';

const DEG_TO_RAD = Math.PI / 180;

/**
 * Samples below this speed are ignored, m/s (7.2 km/h): at 10 Hz the displacement between frames is
 * under 0.2 m, so the direction is dominated by pose or flow noise, and a creeping car may be turning
 * into a parking space. (openpilot uses 15 mph for its noisier learned translation.)
 */
export const MIN_SPEED_MPS = 2;
/**
 * Samples above this |yaw rate| are ignored, rad/s (2 deg/s, openpilot's MAX_YAW_RATE_FILTER): when
 * turning the direction of travel is not the vehicle's x axis (side slip, and the arc's chord turns
 * by half the heading change between frames).
 */
export const MAX_YAW_RATE_RPS = 2 * DEG_TO_RAD;
/** A sample further than this from the nominal pitch or yaw is implausible (a bump, a bad flow field), rad (5 deg). */
export const MAX_OFFSET_RAD = 5 * DEG_TO_RAD;
/** Accepted weight averaged into one block (10 samples of weight 1: 1 s at 10 Hz). */
export const BLOCK_WEIGHT = 10;
/** Blocks kept: the estimate follows the newest 50 blocks (~50 s of straight driving at 10 Hz), so a changed load is followed. */
export const MAX_BLOCKS = 50;
/** Full blocks needed before the spread of the blocks is trusted as the sigma. */
export const MIN_BLOCKS = 5;
/** Sigma of the estimate before MIN_BLOCKS, rad (2 deg: what a mounting tolerance plus load can do). */
export const PRIOR_SIGMA_RAD = 2 * DEG_TO_RAD;
/** Converged when both sigmas are at or below this, rad (0.1 deg: 1.7 % range error at 20 m from a 2 m high camera). */
export const CONVERGED_SIGMA_RAD = 0.1 * DEG_TO_RAD;

export interface RoadCalibrationEstimate {
  /** Down-tilt of the optical axis below the direction of travel, rad. */
  pitchRad: number;
  /** Optical axis turned left of the direction of travel, rad. */
  yawRad: number;
  pitchSigmaRad: number;
  yawSigmaRad: number;
  /** 0..1: min(1, blocks / MIN_BLOCKS) x min(1, CONVERGED_SIGMA_RAD / larger sigma). */
  confidence: number;
  /** MIN_BLOCKS full blocks and both sigmas <= CONVERGED_SIGMA_RAD. */
  converged: boolean;
  /** Accepted samples in the current window (full blocks plus the partial one). */
  samples: number;
}

export interface RoadCalibrationRejections {
  /** Speed below MIN_SPEED_MPS. */
  slow: number;
  /** |yaw rate| above MAX_YAW_RATE_RPS. */
  turning: number;
  /** Further than MAX_OFFSET_RAD from the nominal mounting. */
  implausible: number;
  /** Non-finite or zero direction, non-finite pixel, speed, yaw rate or weight <= 0. */
  invalid: number;
}

/** What the gate needs from the vehicle at the time of a sample. */
export interface CalibrationVehicleState {
  speedMps: number;
  yawRateRps: number;
}

/** Camera pose in a world frame: centre in metres and the quaternion rotating camera (OpenCV) axes into world axes. */
export interface CameraPoseQuaternion {
  positionM: Readonly<Vec3M>;
  orientation: Readonly<{ x: number; y: number; z: number; w: number }>;
}

const _direction: Vec3M = { x: 0, y: 0, z: 0 };
const _normalized = { x: 0, y: 0 };
const _angles = { pitchRad: 0, yawRad: 0 };

export class RoadCalibration {
  /** Nominal camera: roll and intrinsics are taken from it, pitch and yaw are the prior. */
  readonly camera: CameraModel;
  readonly #blockPitch = new Float64Array(MAX_BLOCKS);
  readonly #blockYaw = new Float64Array(MAX_BLOCKS);
  readonly #blockSamples = new Float64Array(MAX_BLOCKS);
  #blockStart = 0;
  #blocks = 0;
  #partialWeight = 0;
  #partialPitch = 0;
  #partialYaw = 0;
  #partialSamples = 0;
  readonly #rejections: RoadCalibrationRejections = { slow: 0, turning: 0, implausible: 0, invalid: 0 };

  constructor(camera: CameraModel) {
    this.camera = camera;
  }

  /** Rejected samples by reason (live counters). */
  get rejections(): Readonly<RoadCalibrationRejections> {
    return this.#rejections;
  }

  /**
   * One observation of the direction of travel as a direction in the camera frame (any length > 0).
   * Returns whether it was accepted; rejections are counted by reason.
   */
  observeMotionDirection(directionCamera: Readonly<Vec3M>, vehicle: Readonly<CalibrationVehicleState>, weight = 1): boolean {
    // Gate first: a creeping car's direction is noise, counted as slow rather than invalid.
    if (!this.#gate(vehicle, weight)) return false;
    const { x, y, z } = directionCamera;
    const norm = Math.hypot(x, y, z);
    if (!(Number.isFinite(norm) && norm > 0 && z > 0)) {
      this.#rejections.invalid++;
      return false;
    }
    anglesOfDirection(x / norm, y / norm, z / norm, this.camera.mounting.rollRad, _angles);
    return this.#add(_angles.pitchRad, _angles.yawRad, weight);
  }

  /**
   * One observation of the vanishing point of the road (e.g. of the lane lines) at the distorted
   * pixel (uPx, vPx), with a weight > 0 (e.g. the lane fit's confidence).
   */
  observeVanishingPoint(uPx: number, vPx: number, weight: number, vehicle: Readonly<CalibrationVehicleState>): boolean {
    if (!(Number.isFinite(uPx) && Number.isFinite(vPx))) {
      this.#rejections.invalid++;
      return false;
    }
    this.camera.undistortPixel(uPx, vPx, _normalized);
    _direction.x = _normalized.x;
    _direction.y = _normalized.y;
    _direction.z = 1;
    return this.observeMotionDirection(_direction, vehicle, weight);
  }

  /** The current estimate (a new object). Before any sample: the nominal mounting with PRIOR_SIGMA_RAD. */
  get estimate(): RoadCalibrationEstimate {
    const nominal = this.camera.mounting;
    let sumPitch = 0;
    let sumYaw = 0;
    let samples = this.#partialSamples;
    for (let i = 0; i < this.#blocks; i++) {
      const b = (this.#blockStart + i) % MAX_BLOCKS;
      sumPitch += this.#blockPitch[b]!;
      sumYaw += this.#blockYaw[b]!;
      samples += this.#blockSamples[b]!;
    }
    const partialShare = this.#partialWeight / BLOCK_WEIGHT;
    const shares = this.#blocks + partialShare;
    if (shares === 0) {
      return { pitchRad: nominal.pitchRad, yawRad: nominal.yawRad, pitchSigmaRad: PRIOR_SIGMA_RAD, yawSigmaRad: PRIOR_SIGMA_RAD, confidence: 0, converged: false, samples: 0 };
    }
    const partialPitch = this.#partialWeight > 0 ? this.#partialPitch / this.#partialWeight : 0;
    const partialYaw = this.#partialWeight > 0 ? this.#partialYaw / this.#partialWeight : 0;
    const pitchRad = (sumPitch + partialShare * partialPitch) / shares;
    const yawRad = (sumYaw + partialShare * partialYaw) / shares;
    let pitchSigmaRad = PRIOR_SIGMA_RAD;
    let yawSigmaRad = PRIOR_SIGMA_RAD;
    if (this.#blocks >= MIN_BLOCKS) {
      const blockPitchMean = sumPitch / this.#blocks;
      const blockYawMean = sumYaw / this.#blocks;
      let varPitch = 0;
      let varYaw = 0;
      for (let i = 0; i < this.#blocks; i++) {
        const b = (this.#blockStart + i) % MAX_BLOCKS;
        varPitch += (this.#blockPitch[b]! - blockPitchMean) ** 2;
        varYaw += (this.#blockYaw[b]! - blockYawMean) ** 2;
      }
      pitchSigmaRad = Math.sqrt(varPitch / (this.#blocks - 1) / this.#blocks);
      yawSigmaRad = Math.sqrt(varYaw / (this.#blocks - 1) / this.#blocks);
    }
    const worst = Math.max(pitchSigmaRad, yawSigmaRad);
    const confidence = Math.min(1, this.#blocks / MIN_BLOCKS) * Math.min(1, CONVERGED_SIGMA_RAD / worst);
    const converged = this.#blocks >= MIN_BLOCKS && worst <= CONVERGED_SIGMA_RAD;
    return { pitchRad, yawRad, pitchSigmaRad, yawSigmaRad, confidence, converged, samples };
  }

  /** Forgets all samples (rejection counters are kept). */
  reset(): void {
    this.#blocks = 0;
    this.#blockStart = 0;
    this.#partialWeight = 0;
    this.#partialPitch = 0;
    this.#partialYaw = 0;
    this.#partialSamples = 0;
  }

  #gate(vehicle: Readonly<CalibrationVehicleState>, weight: number): boolean {
    if (!(Number.isFinite(vehicle.speedMps) && Number.isFinite(vehicle.yawRateRps) && Number.isFinite(weight) && weight > 0)) {
      this.#rejections.invalid++;
      return false;
    }
    if (vehicle.speedMps < MIN_SPEED_MPS) {
      this.#rejections.slow++;
      return false;
    }
    if (Math.abs(vehicle.yawRateRps) > MAX_YAW_RATE_RPS) {
      this.#rejections.turning++;
      return false;
    }
    return true;
  }

  #add(pitchRad: number, yawRad: number, weight: number): boolean {
    const nominal = this.camera.mounting;
    if (Math.abs(pitchRad - nominal.pitchRad) > MAX_OFFSET_RAD || Math.abs(yawRad - nominal.yawRad) > MAX_OFFSET_RAD) {
      this.#rejections.implausible++;
      return false;
    }
    this.#partialWeight += weight;
    this.#partialPitch += weight * pitchRad;
    this.#partialYaw += weight * yawRad;
    this.#partialSamples++;
    if (this.#partialWeight >= BLOCK_WEIGHT) {
      const b = (this.#blockStart + this.#blocks) % MAX_BLOCKS;
      this.#blockPitch[b] = this.#partialPitch / this.#partialWeight;
      this.#blockYaw[b] = this.#partialYaw / this.#partialWeight;
      this.#blockSamples[b] = this.#partialSamples;
      if (this.#blocks === MAX_BLOCKS) this.#blockStart = (this.#blockStart + 1) % MAX_BLOCKS;
      else this.#blocks++;
      this.#partialWeight = 0;
      this.#partialPitch = 0;
      this.#partialYaw = 0;
      this.#partialSamples = 0;
    }
    return true;
  }
}

/**
 * Mounting pitch and yaw (CameraMounting conventions) at which a camera with roll `rollRad` sees the
 * vehicle's x axis along the unit camera-frame direction (x, y, z). Undoes the roll, then reads the
 * angles: with v = Rx(-roll) L d = (cos yaw cos pitch, -sin yaw, cos yaw sin pitch), where L maps
 * camera axes to level vehicle axes ((x, y, z)cam -> (z, -x, -y)).
 */
export function anglesOfDirection(x: number, y: number, z: number, rollRad: number, out: { pitchRad: number; yawRad: number }): { pitchRad: number; yawRad: number } {
  const a = z;
  const b = -x;
  const c = -y;
  const cr = Math.cos(rollRad);
  const sr = Math.sin(rollRad);
  const vx = a;
  const vy = b * cr + c * sr;
  const vz = -b * sr + c * cr;
  out.pitchRad = Math.atan2(vz, vx);
  out.yawRad = Math.atan2(-vy, Math.hypot(vx, vz));
  return out;
}

/**
 * Direction of the camera's translation from pose `from` to pose `to`, in the camera frame at `from`
 * (OpenCV axes), written to `out` as a unit vector: R_from^T (t_to - t_from) / |.|. Returns false
 * when the camera did not move (displacement below 1 mm) or the input is not finite.
 */
export function motionDirectionInCamera(from: CameraPoseQuaternion, to: CameraPoseQuaternion, out: Vec3M): boolean {
  const dx = to.positionM.x - from.positionM.x;
  const dy = to.positionM.y - from.positionM.y;
  const dz = to.positionM.z - from.positionM.z;
  const { x: qx, y: qy, z: qz, w: qw } = from.orientation;
  const qn = Math.hypot(qx, qy, qz, qw);
  const length = Math.hypot(dx, dy, dz);
  if (!(Number.isFinite(length) && length > 1e-3 && Number.isFinite(qn) && qn > 0)) return false;
  const x = qx / qn;
  const y = qy / qn;
  const z = qz / qn;
  const w = qw / qn;
  // Columns of worldFromCamera; the camera-frame vector is R^T d (dot with each column).
  const cx = (1 - 2 * (y * y + z * z)) * dx + 2 * (x * y + z * w) * dy + 2 * (x * z - y * w) * dz;
  const cy = 2 * (x * y - z * w) * dx + (1 - 2 * (x * x + z * z)) * dy + 2 * (y * z + x * w) * dz;
  const cz = 2 * (x * z + y * w) * dx + 2 * (y * z - x * w) * dy + (1 - 2 * (x * x + y * y)) * dz;
  out.x = cx / length;
  out.y = cy / length;
  out.z = cz / length;
  return true;
}
