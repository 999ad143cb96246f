import type { PooledBuffer } from './buffer-pool.js';
import type { ExposureStats } from './exposure.js';
import type { ImageView } from './image.js';
import type { RecordedMessage } from './recording/reader.js';

/** Vehicle signals at one instant (ISO 8855 vehicle frame: x forward, y left, z up). */
export interface VehicleState {
  tNs: bigint;
  speedMps: number;
  /** Positive turning left (counter-clockwise seen from above). */
  yawRateRps: number;
  accelMps2?: number;
  steeringRad?: number;
  gear?: string;
}

/** Pinhole intrinsics in pixels with OpenCV `plumb_bob` distortion (k1, k2, p1, p2, k3). */
export interface CameraIntrinsics {
  width: number;
  height: number;
  fx: number;
  fy: number;
  cx: number;
  cy: number;
  distortionModel: 'plumb_bob';
  /** [k1, k2, p1, p2, k3]; zeros for an already undistorted image. */
  distortion: readonly number[];
}

/** When a frame entered and left one stage, on the pipeline's clock. */
export interface StageStamp {
  stage: string;
  tEnterNs: bigint;
  tExitNs: bigint;
}

/** Where a frame came from, kept so outputs can pass the original through or point back to it. */
export interface FrameOrigin {
  /** Recorded camera message the frame was decoded from (payload still encoded). */
  message: RecordedMessage;
  /** Which pass over the recording (0 first) when replay loops. */
  loop: number;
  /** Log time the frame's outputs are written at (differs from message.logTimeNs in loops). */
  outputLogTimeNs: bigint;
  /** Other topics' messages read since the previous frame, in log order, for pass-through. */
  sideMessages: RecordedMessage[];
}

export interface FrameInit {
  seq: number;
  tCaptureNs: bigint;
  image: ImageView;
  /** Pool storage behind `image`; released when the frame is. */
  buffer?: PooledBuffer;
  vehicle?: VehicleState;
  camera?: CameraIntrinsics;
  origin?: FrameOrigin;
}

/**
 * One camera frame on its way through the pipeline. The image is a view over pooled storage; every
 * consumer that keeps the frame beyond its own stage calls `retain()`, and the final owner calls
 * `release()` so the storage goes back to the pool.
 */
export class Frame {
  readonly seq: number;
  readonly tCaptureNs: bigint;
  readonly image: ImageView;
  readonly buffer: PooledBuffer | undefined;
  vehicle: VehicleState | undefined;
  camera: CameraIntrinsics | undefined;
  readonly origin: FrameOrigin | undefined;
  /** Set by the exposure stage. */
  exposure: ExposureStats | undefined;
  /** Entry/exit time per stage, in the order the stages ran. */
  readonly stamps: StageStamp[] = [];

  constructor(init: FrameInit) {
    this.seq = init.seq;
    this.tCaptureNs = init.tCaptureNs;
    this.image = init.image;
    this.buffer = init.buffer;
    this.vehicle = init.vehicle;
    this.camera = init.camera;
    this.origin = init.origin;
  }

  retain(): this {
    this.buffer?.retain();
    return this;
  }

  release(): void {
    this.buffer?.release();
  }
}
