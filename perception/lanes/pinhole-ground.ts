/**
 * A tiny undistorted pinhole camera over a flat road: the lane detector's stand-in until
 * `perception/world/camera-model.ts` (CameraModel) lands, and the renderer of the synthetic tests.
 * It satisfies `LaneCamera`; swap in CameraModel (same mounting convention) without other changes.
 *
 * Frames: vehicle (ISO 8855) x forward, y left, z up; camera (OpenCV) x right, y down, z forward.
 * Mounting: camera at `positionM` in the vehicle frame; `yawRad` turns it left, `pitchRad` (positive)
 * tilts it down, `rollRad` turns it clockwise as seen from behind the camera.
 */
import type { LaneCamera, PixelOut, PointOutM } from './types.js';

export interface PinholeIntrinsics {
  width: number;
  height: number;
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

export interface PinholeMounting {
  positionM: { x: number; y: number; z: number };
  pitchRad: number;
  yawRad: number;
  rollRad: number;
}

export class PinholeGroundCamera implements LaneCamera {
  readonly intrinsics: PinholeIntrinsics;
  readonly mounting: PinholeMounting;
  /** Rows of cameraFromVehicle rotation (camera x, y, z axes expressed in the vehicle frame). */
  readonly #r = new Float64Array(9);

  constructor(intrinsics: PinholeIntrinsics, mounting: PinholeMounting) {
    for (const key of ['width', 'height', 'fx', 'fy'] as const) {
      const value = intrinsics[key];
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`PinholeGroundCamera: field 'intrinsics.${key}' must be > 0, got ${value}`);
    }
    if (!(mounting.positionM.z > 0)) throw new RangeError(`PinholeGroundCamera: field 'mounting.positionM.z' must be > 0 (above the road), got ${mounting.positionM.z}`);
    this.intrinsics = { ...intrinsics };
    this.mounting = { ...mounting, positionM: { ...mounting.positionM } };
    const { pitchRad: p, yawRad: w, rollRad: r } = mounting;
    const cp = Math.cos(p), sp = Math.sin(p), cw = Math.cos(w), sw = Math.sin(w);
    // Unrolled camera axes in the vehicle frame: forward, right, down.
    const f = [cp * cw, cp * sw, -sp];
    const right = [sw, -cw, 0];
    const down = [-sp * cw, -sp * sw, -cp];
    const cr = Math.cos(r), sr = Math.sin(r);
    for (let i = 0; i < 3; i++) {
      this.#r[i] = cr * right[i]! + sr * down[i]!;
      this.#r[3 + i] = -sr * right[i]! + cr * down[i]!;
      this.#r[6 + i] = f[i]!;
    }
  }

  /** Same intrinsics, other mounting. */
  withMounting(mounting: PinholeMounting): PinholeGroundCamera {
    return new PinholeGroundCamera(this.intrinsics, mounting);
  }

  projectVehiclePoint(pointM: { x: number; y: number; z: number }, out: PixelOut): boolean {
    const r = this.#r, t = this.mounting.positionM;
    const dx = pointM.x - t.x, dy = pointM.y - t.y, dz = pointM.z - t.z;
    const zc = r[6]! * dx + r[7]! * dy + r[8]! * dz;
    if (!(zc > 1e-6)) return false;
    const xc = r[0]! * dx + r[1]! * dy + r[2]! * dz;
    const yc = r[3]! * dx + r[4]! * dy + r[5]! * dz;
    out.uPx = this.intrinsics.fx * (xc / zc) + this.intrinsics.cx;
    out.vPx = this.intrinsics.fy * (yc / zc) + this.intrinsics.cy;
    return true;
  }

  pixelToGround(uPx: number, vPx: number, out: PointOutM): boolean {
    const r = this.#r, t = this.mounting.positionM;
    const a = (uPx - this.intrinsics.cx) / this.intrinsics.fx;
    const b = (vPx - this.intrinsics.cy) / this.intrinsics.fy;
    // vehicleFromCamera ray = R^T (a, b, 1).
    const dx = r[0]! * a + r[3]! * b + r[6]!;
    const dy = r[1]! * a + r[4]! * b + r[7]!;
    const dz = r[2]! * a + r[5]! * b + r[8]!;
    if (!(dz < -1e-9)) return false;
    const s = -t.z / dz;
    out.x = t.x + s * dx;
    out.y = t.y + s * dy;
    out.z = 0;
    return true;
  }
}
