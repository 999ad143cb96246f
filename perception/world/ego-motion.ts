/**
 * Ego-motion: the vehicle's planar motion between two instants, from vehicle signals (speed, yaw
 * rate) or from poses when a recording has them, so tracks can be predicted in the vehicle frame.
 *
 * Frames and axes:
 * - vehicle (ISO 8855): x forward, y left, z up, metres; yaw positive turning left.
 * - odom: a fixed planar frame (x, y, heading) in which the vehicle's pose is kept. With signals it
 *   starts at the first sample as (0, 0, 0) and is dead-reckoned; with poses it is the poses' own
 *   frame (e.g. the recording's world, z up). Only differences of odom poses leave this module.
 * - A motion `VehiclePoseDelta` (render/optics.ts) from t0 to t1 is the vehicle's pose at t1 written
 *   in the vehicle frame at t0 (dx forward, dy left, dYaw). `vehicleAtDisplayFromVehicleAtCapture`
 *   (render/optics.ts) with that delta maps a point seen at t0 into the vehicle frame at t1.
 *
 * Signals are integrated with the constant-turn-rate-and-velocity arc of `predictVehiclePose`, with
 * the mean of the two samples' speed and yaw rate over each step (trapezoid). Samples are kept in a
 * fixed ring (no allocation per update); poses in between are interpolated linearly.
 *
 * Feed one source per instance: a pose after signals re-anchors odom in the poses' frame, which
 * would show as a jump in deltas spanning it.
 *
 * Bad input never throws from `update`/`updateFromPose` (they run per frame inside a stream): time
 * not moving forward and non-finite values are rejected, counted in `rejections`, and return false.
 */
import type { Vec3M } from '../../render/optics-config.js';
import { createVehiclePoseDelta, predictVehiclePose, type VehiclePoseDelta } from '../../render/optics.js';

/** Samples kept for `deltaSince`/`deltaBetween`: 256 = 25.6 s at 10 Hz, 8.5 s at 30 Hz. */
export const HISTORY_CAPACITY = 256;
/** A query up to this far past the newest sample is extrapolated with its speed and yaw rate, s (one detector interval plus latency). */
export const MAX_EXTRAPOLATION_S = 0.5;
/**
 * A gap between two signal samples longer than this restarts dead reckoning, s: integrating stale
 * speed and yaw rate over a dropout would invent motion. Poses are absolute and never restart.
 */
export const MAX_SIGNAL_GAP_S = 1;

export interface VehicleSignals {
  speedMps: number;
  /** Positive turning left. */
  yawRateRps: number;
}

export interface PlanarPose {
  /** Position in the pose source's frame (z ignored), metres. */
  positionM: Vec3M;
  /** Heading of the vehicle's x axis, counter-clockwise from the frame's x axis, rad. */
  headingRad: number;
}

export interface EgoMotionRejections {
  /** Samples whose time was not after the newest accepted sample (jump back or duplicate). */
  timeNotIncreasing: number;
  /** Samples with a non-finite speed, yaw rate, position or heading. */
  invalidInput: number;
  /** Signal gaps longer than MAX_SIGNAL_GAP_S, after which history restarted (the sample itself is kept). */
  gaps: number;
}

const NS_PER_S = 1e9;
const _from = { x: 0, y: 0, heading: 0 };
const _to = { x: 0, y: 0, heading: 0 };
const _step = createVehiclePoseDelta();

export class EgoMotion {
  readonly #timesNs = new BigInt64Array(HISTORY_CAPACITY);
  readonly #xM = new Float64Array(HISTORY_CAPACITY);
  readonly #yM = new Float64Array(HISTORY_CAPACITY);
  readonly #headingRad = new Float64Array(HISTORY_CAPACITY);
  /** Index of the oldest sample in the ring, and how many are held. */
  #start = 0;
  #count = 0;
  #speedMps = 0;
  #yawRateRps = 0;
  #accepted = 0;
  readonly #rejections: EgoMotionRejections = { timeNotIncreasing: 0, invalidInput: 0, gaps: 0 };

  /** Rejected samples by reason (live counters; read-only to callers). */
  get rejections(): Readonly<EgoMotionRejections> {
    return this.#rejections;
  }

  /** Accepted samples since construction. */
  get samples(): number {
    return this.#accepted;
  }

  /** Time of the newest accepted sample, or undefined before the first. */
  get latestTimeNs(): bigint | undefined {
    return this.#count === 0 ? undefined : this.#timesNs[this.#index(this.#count - 1)]!;
  }

  /** Speed and yaw rate of the newest sample (from signals, or differenced from poses). */
  get speedMps(): number {
    return this.#speedMps;
  }

  get yawRateRps(): number {
    return this.#yawRateRps;
  }

  /** Adds vehicle signals at `tNs`; dead-reckons from the previous sample. False (counted) when rejected. */
  update(tNs: bigint, signals: Readonly<VehicleSignals>): boolean {
    checkTime('update', tNs);
    if (!(Number.isFinite(signals.speedMps) && Number.isFinite(signals.yawRateRps))) {
      this.#rejections.invalidInput++;
      return false;
    }
    const last = this.#count - 1;
    if (last < 0) {
      this.#push(tNs, 0, 0, 0);
    } else {
      const lastIndex = this.#index(last);
      const lastNs = this.#timesNs[lastIndex]!;
      if (tNs <= lastNs) {
        this.#rejections.timeNotIncreasing++;
        return false;
      }
      const dtS = Number(tNs - lastNs) / NS_PER_S;
      if (dtS > MAX_SIGNAL_GAP_S) {
        this.#rejections.gaps++;
        const x = this.#xM[lastIndex]!;
        const y = this.#yM[lastIndex]!;
        const heading = this.#headingRad[lastIndex]!;
        this.#count = 0;
        // Keep the odom pose (nothing is known about the gap) but no queries across it.
        this.#push(tNs, x, y, heading);
      } else {
        const speed = (this.#speedMps + signals.speedMps) / 2;
        const yawRate = (this.#yawRateRps + signals.yawRateRps) / 2;
        predictVehiclePose(speed, yawRate, dtS, _step);
        const heading = this.#headingRad[lastIndex]!;
        const c = Math.cos(heading);
        const s = Math.sin(heading);
        this.#push(tNs, this.#xM[lastIndex]! + c * _step.dxM - s * _step.dyM, this.#yM[lastIndex]! + s * _step.dxM + c * _step.dyM, heading + _step.dYawRad);
      }
    }
    this.#speedMps = signals.speedMps;
    this.#yawRateRps = signals.yawRateRps;
    this.#accepted++;
    return true;
  }

  /**
   * Adds a vehicle pose at `tNs` (a recording's ground truth or localisation). Speed and yaw rate
   * for extrapolation are differenced from the previous pose. False (counted) when rejected.
   */
  updateFromPose(tNs: bigint, pose: Readonly<PlanarPose>): boolean {
    checkTime('updateFromPose', tNs);
    const { x, y } = pose.positionM;
    if (!(Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(pose.headingRad))) {
      this.#rejections.invalidInput++;
      return false;
    }
    let heading = pose.headingRad;
    if (this.#count > 0) {
      const lastIndex = this.#index(this.#count - 1);
      const lastNs = this.#timesNs[lastIndex]!;
      if (tNs <= lastNs) {
        this.#rejections.timeNotIncreasing++;
        return false;
      }
      const lastHeading = this.#headingRad[lastIndex]!;
      // Unwrap so that heading differences are the short way round.
      heading = lastHeading + wrapAngle(heading - lastHeading);
      const dtS = Number(tNs - lastNs) / NS_PER_S;
      const dx = x - this.#xM[lastIndex]!;
      const dy = y - this.#yM[lastIndex]!;
      const forward = dx * Math.cos(lastHeading) + dy * Math.sin(lastHeading);
      this.#speedMps = (Math.sign(forward) || 1) * (Math.hypot(dx, dy) / dtS);
      this.#yawRateRps = (heading - lastHeading) / dtS;
    }
    this.#push(tNs, x, y, heading);
    this.#accepted++;
    return true;
  }

  /**
   * The vehicle's motion from `tFromNs` to the newest sample, in the vehicle frame at `tFromNs`.
   * Undefined when `tFromNs` is older than the history (or before a restart) or there are no samples.
   */
  deltaSince(tFromNs: bigint, out: VehiclePoseDelta = createVehiclePoseDelta()): VehiclePoseDelta | undefined {
    const latest = this.latestTimeNs;
    return latest === undefined ? undefined : this.deltaBetween(tFromNs, latest, out);
  }

  /**
   * The vehicle's motion from `tFromNs` to `tToNs` (either order), in the vehicle frame at `tFromNs`.
   * Times between samples are interpolated; up to MAX_EXTRAPOLATION_S past the newest sample is
   * extrapolated with its speed and yaw rate. Undefined outside that span.
   */
  deltaBetween(tFromNs: bigint, tToNs: bigint, out: VehiclePoseDelta = createVehiclePoseDelta()): VehiclePoseDelta | undefined {
    if (!this.#poseAt(tFromNs, _from) || !this.#poseAt(tToNs, _to)) return undefined;
    const c = Math.cos(_from.heading);
    const s = Math.sin(_from.heading);
    const dx = _to.x - _from.x;
    const dy = _to.y - _from.y;
    out.dxM = c * dx + s * dy;
    out.dyM = -s * dx + c * dy;
    out.dYawRad = _to.heading - _from.heading;
    return out;
  }

  /**
   * The motion over the next `dtS` seconds predicted from the newest speed and yaw rate (CTRV,
   * `predictVehiclePose`), in the vehicle frame now: how the vehicle moves between two frames `dtS`
   * apart. Zero motion before the first sample.
   */
  vehicleFromPreviousVehicle(dtS: number, out: VehiclePoseDelta = createVehiclePoseDelta()): VehiclePoseDelta {
    if (!Number.isFinite(dtS)) throw new RangeError(`EgoMotion.vehicleFromPreviousVehicle: field 'dtS' must be finite, got ${dtS}`);
    return predictVehiclePose(this.#speedMps, this.#yawRateRps, dtS, out);
  }

  /** Forgets all samples (counters are kept). */
  reset(): void {
    this.#count = 0;
    this.#start = 0;
    this.#speedMps = 0;
    this.#yawRateRps = 0;
  }

  #index(i: number): number {
    return (this.#start + i) % HISTORY_CAPACITY;
  }

  #push(tNs: bigint, x: number, y: number, heading: number): void {
    if (this.#count === HISTORY_CAPACITY) {
      this.#start = (this.#start + 1) % HISTORY_CAPACITY;
      this.#count--;
    }
    const i = this.#index(this.#count);
    this.#timesNs[i] = tNs;
    this.#xM[i] = x;
    this.#yM[i] = y;
    this.#headingRad[i] = heading;
    this.#count++;
  }

  /** Odom pose at `tNs` into `out`; false outside [oldest, newest + MAX_EXTRAPOLATION_S]. */
  #poseAt(tNs: bigint, out: { x: number; y: number; heading: number }): boolean {
    if (this.#count === 0) return false;
    const oldest = this.#timesNs[this.#index(0)]!;
    const newestIndex = this.#index(this.#count - 1);
    const newest = this.#timesNs[newestIndex]!;
    if (tNs < oldest) return false;
    if (tNs >= newest) {
      const aheadS = Number(tNs - newest) / NS_PER_S;
      if (aheadS > MAX_EXTRAPOLATION_S) return false;
      predictVehiclePose(this.#speedMps, this.#yawRateRps, aheadS, _step);
      const heading = this.#headingRad[newestIndex]!;
      const c = Math.cos(heading);
      const s = Math.sin(heading);
      out.x = this.#xM[newestIndex]! + c * _step.dxM - s * _step.dyM;
      out.y = this.#yM[newestIndex]! + s * _step.dxM + c * _step.dyM;
      out.heading = heading + _step.dYawRad;
      return true;
    }
    // Binary search for the last sample at or before tNs (times strictly increase).
    let lo = 0;
    let hi = this.#count - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (this.#timesNs[this.#index(mid)]! <= tNs) lo = mid;
      else hi = mid;
    }
    const a = this.#index(lo);
    const b = this.#index(hi);
    const ta = this.#timesNs[a]!;
    const f = Number(tNs - ta) / Number(this.#timesNs[b]! - ta);
    out.x = this.#xM[a]! + f * (this.#xM[b]! - this.#xM[a]!);
    out.y = this.#yM[a]! + f * (this.#yM[b]! - this.#yM[a]!);
    out.heading = this.#headingRad[a]! + f * (this.#headingRad[b]! - this.#headingRad[a]!);
    return true;
  }
}

function checkTime(method: string, tNs: unknown): void {
  if (typeof tNs !== 'bigint') throw new TypeError(`EgoMotion.${method}: field 'tNs' must be a bigint (nanoseconds), got ${typeof tNs}`);
}

/** Angle wrapped to (-pi, pi]. */
function wrapAngle(a: number): number {
  return a - 2 * Math.PI * Math.ceil((a - Math.PI) / (2 * Math.PI));
}
