/**
 * Small constant-velocity Kalman filters for multi-object tracking, state and covariance in typed
 * arrays, updated in place: `predict` and `update` allocate nothing.
 *
 * Process noise is the continuous white-noise-acceleration model: over a step of dt seconds each
 * position/velocity pair gains q [[dt^3/3, dt^2/2], [dt^2/2, dt]] with q the acceleration spectral
 * density. Unlike per-frame noise (SORT, ByteTrack), two predictions of dt/2 give the same
 * covariance as one of dt, so coasting between irregular detector runs stays consistent.
 *
 * - `BoxKalman`: image box, state [cx, cy, w, h, vcx, vcy, vw, vh] in source-image pixels and px/s
 *   (x right, y down). Noise scales with the box height, as in DeepSORT / ByteTrack. F, H, Q and R
 *   never couple different coordinates, so the 8x8 covariance is exactly four independent 2x2 blocks
 *   (coordinate i with its velocity i + 4); only those blocks are stored.
 * - `GroundKalman`: ground position of the object in the vehicle frame (ISO 8855: x forward, y left,
 *   metres; the frame moves with the vehicle), state [x, y, vx, vy], velocity over ground in m/s
 *   expressed in the current vehicle frame (a parked car has v = 0). `predict` moves the object,
 *   then re-expresses state and covariance in the vehicle frame after the ego motion `egoDelta`
 *   (`VehiclePoseDelta`: the vehicle's own displacement and heading change, in its frame at the
 *   start of the step), the same transform as `vehicleAtDisplayFromVehicleAtCapture`.
 */
import type { Box } from '../detect/types.js';
import type { VehiclePoseDelta } from '../../render/optics.js';

/** Measurement std of box centre and size, fraction of box height: ByteTrack / DeepSORT `std_weight_position` (1/20). */
export const BOX_MEASUREMENT_STD_REL = 0.05;
/** Initial position std, fraction of box height: twice the measurement std, as DeepSORT initiates. */
export const BOX_INIT_POSITION_STD_REL = 2 * BOX_MEASUREMENT_STD_REL;
/**
 * Initial velocity std, box heights per second: a new box may move about one height per second
 * (a car crossing the view); DeepSORT's 10/160 height per frame at 30 fps is 1.9 h/s.
 */
export const BOX_INIT_VELOCITY_STD_REL_PER_S = 1.5;
/**
 * Acceleration noise, box heights per s^2 per sqrt(Hz) (square root of the spectral density):
 * DeepSORT's velocity noise h/160 per frame at 30 fps is 1.0 h/s per sqrt(s).
 */
export const BOX_ACCEL_STD_REL = 1.0;
/** Least box side used for noise scaling and reported boxes, pixels: keeps noise positive for degenerate boxes. */
export const MIN_BOX_SIDE_PX = 1;
/**
 * Noise-scale-adaptive update (NSA, StrongSORT): with a detection score s the measurement noise is
 * scaled by max(1 - s, this), so confident boxes pull harder; the floor keeps a 0.99 box from
 * collapsing the covariance.
 */
export const NSA_MIN_NOISE_SCALE = 0.1;

/** Initial velocity std of a new ground track, m/s: an unknown road user may drive at city speed (~36 km/h) either way. */
export const GROUND_INIT_SPEED_STD_MPS = 10;
/** Acceleration noise, m/s^2 per sqrt(Hz): road users brake and swerve at a few m/s^2. */
export const GROUND_ACCEL_STD_MPS2 = 3;

/**
 * Image-box Kalman filter. State [cx, cy, w, h, vcx, vcy, vw, vh] (pixels, px/s). Covariance
 * stored as four 2x2 blocks [var(pos_i), cov(pos_i, vel_i), var(vel_i)] at 3i.
 */
export class BoxKalman {
  /** State [cx, cy, w, h, vcx, vcy, vw, vh]; read it, do not write it. */
  readonly state = new Float64Array(8);
  /** Covariance blocks: for coordinate i in 0..3, [P(i,i), P(i,i+4), P(i+4,i+4)] at index 3i. */
  readonly blocks = new Float64Array(12);

  /** Starts at `box` with zero velocity and the initial uncertainty. Returns this. */
  initiate(box: Readonly<Box>): this {
    const s = this.state;
    s[0] = (box[0] + box[2]) / 2;
    s[1] = (box[1] + box[3]) / 2;
    s[2] = box[2] - box[0];
    s[3] = box[3] - box[1];
    s[4] = s[5] = s[6] = s[7] = 0;
    const h = Math.max(s[3], MIN_BOX_SIDE_PX);
    const positionVar = (BOX_INIT_POSITION_STD_REL * h) ** 2;
    const velocityVar = (BOX_INIT_VELOCITY_STD_REL_PER_S * h) ** 2;
    for (let i = 0; i < 4; i++) {
      this.blocks[3 * i] = positionVar;
      this.blocks[3 * i + 1] = 0;
      this.blocks[3 * i + 2] = velocityVar;
    }
    return this;
  }

  /** Advances by `dtS` seconds (>= 0). Returns this. */
  predict(dtS: number): this {
    if (!(dtS > 0)) return this;
    const s = this.state;
    const b = this.blocks;
    const q = (BOX_ACCEL_STD_REL * Math.max(s[3]!, MIN_BOX_SIDE_PX)) ** 2;
    const dt2 = dtS * dtS;
    for (let i = 0; i < 4; i++) {
      s[i]! += s[i + 4]! * dtS;
      const k = 3 * i;
      const pp = b[k]!;
      const pv = b[k + 1]!;
      const vv = b[k + 2]!;
      b[k] = pp + 2 * dtS * pv + dt2 * vv + (q * dt2 * dtS) / 3;
      b[k + 1] = pv + dtS * vv + (q * dt2) / 2;
      b[k + 2] = vv + q * dtS;
    }
    return this;
  }

  /**
   * Corrects with a measured `box`. `score` in [0, 1], when given, scales the measurement noise by
   * max(1 - score, NSA_MIN_NOISE_SCALE). Returns the squared Mahalanobis distance of the innovation
   * (4 degrees of freedom).
   */
  update(box: Readonly<Box>, score?: number): number {
    const s = this.state;
    const b = this.blocks;
    const scale = score === undefined ? 1 : Math.max(1 - score, NSA_MIN_NOISE_SCALE);
    const r = scale * (BOX_MEASUREMENT_STD_REL * Math.max(s[3]!, MIN_BOX_SIDE_PX)) ** 2;
    let distance2 = 0;
    for (let i = 0; i < 4; i++) {
      const z = i === 0 ? (box[0] + box[2]) / 2 : i === 1 ? (box[1] + box[3]) / 2 : i === 2 ? box[2] - box[0] : box[3] - box[1];
      const k = 3 * i;
      const pp = b[k]!;
      const pv = b[k + 1]!;
      const vv = b[k + 2]!;
      const innovation = z - s[i]!;
      const sInv = 1 / (pp + r);
      distance2 += innovation * innovation * sInv;
      // Gain [pp, pv] / S; P' = P - K S K^T, written per element so the block stays symmetric.
      s[i]! += pp * sInv * innovation;
      s[i + 4]! += pv * sInv * innovation;
      b[k] = pp - pp * pp * sInv;
      b[k + 1] = pv - pp * pv * sInv;
      b[k + 2] = vv - pv * pv * sInv;
    }
    return distance2;
  }

  /**
   * Squared Mahalanobis distance (4 degrees of freedom) of a measured `box` from the prediction,
   * measurement noise as `update` would use it; the state is not changed.
   */
  distance2(box: Readonly<Box>, score?: number): number {
    const s = this.state;
    const b = this.blocks;
    const scale = score === undefined ? 1 : Math.max(1 - score, NSA_MIN_NOISE_SCALE);
    const r = scale * (BOX_MEASUREMENT_STD_REL * Math.max(s[3]!, MIN_BOX_SIDE_PX)) ** 2;
    const dcx = (box[0] + box[2]) / 2 - s[0]!;
    const dcy = (box[1] + box[3]) / 2 - s[1]!;
    const dw = box[2] - box[0] - s[2]!;
    const dh = box[3] - box[1] - s[3]!;
    return (dcx * dcx) / (b[0]! + r) + (dcy * dcy) / (b[3]! + r) + (dw * dw) / (b[6]! + r) + (dh * dh) / (b[9]! + r);
  }

  /** Stops the size from drifting while nothing measures it (a coasting track): zeroes vw and vh. Returns this. */
  freezeSize(): this {
    this.state[6] = 0;
    this.state[7] = 0;
    return this;
  }

  /** The state as a box [x1, y1, x2, y2], sides at least MIN_BOX_SIDE_PX; written into `out`. */
  box(out: Box): Box {
    const s = this.state;
    const w = Math.max(s[2]!, MIN_BOX_SIDE_PX);
    const h = Math.max(s[3]!, MIN_BOX_SIDE_PX);
    out[0] = s[0]! - w / 2;
    out[1] = s[1]! - h / 2;
    out[2] = s[0]! + w / 2;
    out[3] = s[1]! + h / 2;
    return out;
  }

  /** The full 8x8 covariance, row-major, into `out` (64 entries; allocated when omitted). For inspection and tests. */
  covariance(out = new Float64Array(64)): Float64Array {
    out.fill(0);
    for (let i = 0; i < 4; i++) {
      const k = 3 * i;
      out[i * 8 + i] = this.blocks[k]!;
      out[i * 8 + i + 4] = out[(i + 4) * 8 + i] = this.blocks[k + 1]!;
      out[(i + 4) * 8 + i + 4] = this.blocks[k + 2]!;
    }
    return out;
  }
}

/** Measurement noise of a ground position: std along the ray from the vehicle origin (range) and across it. */
export interface GroundSigmas {
  rangeSigmaM: number;
  lateralSigmaM: number;
}

/**
 * Ground-position Kalman filter in the moving vehicle frame. State [x, y, vx, vy] (m, m/s);
 * covariance full 4x4 row-major (ego rotation couples x and y).
 */
export class GroundKalman {
  /** State [x, y, vx, vy]; read it, do not write it. */
  readonly state = new Float64Array(4);
  /** Covariance, 4x4 row-major; read it, do not write it. */
  readonly covariance = new Float64Array(16);

  /** Starts at `positionM` (vehicle frame) with zero velocity. Returns this. */
  initiate(positionM: { readonly x: number; readonly y: number }, rangeSigmaM: number, lateralSigmaM: number): this {
    this.state[0] = positionM.x;
    this.state[1] = positionM.y;
    this.state[2] = this.state[3] = 0;
    const p = this.covariance;
    p.fill(0);
    measurementNoise(positionM.x, positionM.y, rangeSigmaM, lateralSigmaM, _r);
    p[0] = _r[0]!;
    p[1] = p[4] = _r[1]!;
    p[5] = _r[2]!;
    p[10] = p[15] = GROUND_INIT_SPEED_STD_MPS ** 2;
    return this;
  }

  /**
   * Advances by `dtS` seconds (>= 0): constant velocity over ground, then, with `egoDelta`, into the
   * vehicle frame at the end of the step (p' = R(-dYaw) (p - d), v' = R(-dYaw) v). Returns this.
   */
  predict(dtS: number, egoDelta?: Readonly<VehiclePoseDelta>): this {
    const s = this.state;
    const p = this.covariance;
    if (dtS > 0) {
      s[0]! += s[2]! * dtS;
      s[1]! += s[3]! * dtS;
      // P = F P F^T with F = [[I, dt I], [0, I]]: rows 0,1 += dt rows 2,3; then the same for columns.
      for (let j = 0; j < 4; j++) {
        p[j]! += dtS * p[8 + j]!;
        p[4 + j]! += dtS * p[12 + j]!;
      }
      for (let i = 0; i < 4; i++) {
        p[i * 4]! += dtS * p[i * 4 + 2]!;
        p[i * 4 + 1]! += dtS * p[i * 4 + 3]!;
      }
      const q = GROUND_ACCEL_STD_MPS2 ** 2;
      const dt2 = dtS * dtS;
      for (let axis = 0; axis < 2; axis++) {
        const pos = axis;
        const vel = axis + 2;
        p[pos * 4 + pos]! += (q * dt2 * dtS) / 3;
        p[pos * 4 + vel]! += (q * dt2) / 2;
        p[vel * 4 + pos]! += (q * dt2) / 2;
        p[vel * 4 + vel]! += q * dtS;
      }
    }
    if (egoDelta !== undefined) {
      const c = Math.cos(egoDelta.dYawRad);
      const sn = Math.sin(egoDelta.dYawRad);
      const tx = s[0]! - egoDelta.dxM;
      const ty = s[1]! - egoDelta.dyM;
      s[0] = c * tx + sn * ty;
      s[1] = -sn * tx + c * ty;
      const vx = s[2]!;
      const vy = s[3]!;
      s[2] = c * vx + sn * vy;
      s[3] = -sn * vx + c * vy;
      // P = T P T^T, T = blockdiag(Rot, Rot), Rot = [[c, s], [-s, c]]: rows, then columns.
      for (let j = 0; j < 4; j++) {
        for (let base = 0; base < 4; base += 2) {
          const a = p[base * 4 + j]!;
          const b = p[(base + 1) * 4 + j]!;
          p[base * 4 + j] = c * a + sn * b;
          p[(base + 1) * 4 + j] = -sn * a + c * b;
        }
      }
      for (let i = 0; i < 4; i++) {
        for (let base = 0; base < 4; base += 2) {
          const a = p[i * 4 + base]!;
          const b = p[i * 4 + base + 1]!;
          p[i * 4 + base] = c * a + sn * b;
          p[i * 4 + base + 1] = -sn * a + c * b;
        }
      }
    }
    // In-place row-then-column products round differently on the two triangles.
    symmetrize(p);
    return this;
  }

  /** Squared Mahalanobis distance of a measured position from the predicted one (2 degrees of freedom). */
  distance2(positionM: { readonly x: number; readonly y: number }, rangeSigmaM: number, lateralSigmaM: number): number {
    this.#innovation(positionM, rangeSigmaM, lateralSigmaM);
    const ix = _innovation[0]!;
    const iy = _innovation[1]!;
    return ix * (_sInv[0]! * ix + _sInv[1]! * iy) + iy * (_sInv[1]! * ix + _sInv[2]! * iy);
  }

  /** Corrects with a measured position and its range / lateral std. Returns the squared Mahalanobis distance of the innovation. */
  update(positionM: { readonly x: number; readonly y: number }, rangeSigmaM: number, lateralSigmaM: number): number {
    const distance2 = this.distance2(positionM, rangeSigmaM, lateralSigmaM);
    const s = this.state;
    const p = this.covariance;
    const ix = _innovation[0]!;
    const iy = _innovation[1]!;
    // K = P H^T S^-1 (4x2); PHt = first two columns of P.
    for (let i = 0; i < 4; i++) {
      const a = (_pht[2 * i] = p[i * 4]!);
      const b = (_pht[2 * i + 1] = p[i * 4 + 1]!);
      _gain[2 * i] = a * _sInv[0]! + b * _sInv[1]!;
      _gain[2 * i + 1] = a * _sInv[1]! + b * _sInv[2]!;
    }
    for (let i = 0; i < 4; i++) s[i]! += _gain[2 * i]! * ix + _gain[2 * i + 1]! * iy;
    // P' = P - K (P H^T)^T from the copy of P H^T, on the upper triangle and mirrored: exactly symmetric.
    for (let i = 0; i < 4; i++) {
      for (let j = i; j < 4; j++) {
        const value = p[i * 4 + j]! - (_gain[2 * i]! * _pht[2 * j]! + _gain[2 * i + 1]! * _pht[2 * j + 1]!);
        p[i * 4 + j] = value;
        p[j * 4 + i] = value;
      }
    }
    return distance2;
  }

  /** Square root of the larger eigenvalue of the position covariance, metres: a conservative 1-sigma radius. */
  positionSigmaM(): number {
    return largerAxisSigma(this.covariance[0]!, this.covariance[1]!, this.covariance[5]!);
  }

  /** Square root of the larger eigenvalue of the velocity covariance, m/s: a conservative 1-sigma speed error. */
  velocitySigmaMps(): number {
    return largerAxisSigma(this.covariance[10]!, this.covariance[11]!, this.covariance[15]!);
  }

  /** Fills _innovation (z - Hx) and _sInv (S^-1 as [s00, s01, s11]). */
  #innovation(positionM: { readonly x: number; readonly y: number }, rangeSigmaM: number, lateralSigmaM: number): void {
    measurementNoise(positionM.x, positionM.y, rangeSigmaM, lateralSigmaM, _r);
    const p = this.covariance;
    const s00 = p[0]! + _r[0]!;
    const s01 = p[1]! + _r[1]!;
    const s11 = p[5]! + _r[2]!;
    const det = s00 * s11 - s01 * s01;
    _sInv[0] = s11 / det;
    _sInv[1] = -s01 / det;
    _sInv[2] = s00 / det;
    _innovation[0] = positionM.x - this.state[0]!;
    _innovation[1] = positionM.y - this.state[1]!;
  }
}

// Scratch, module level (three.js style): filters are used one at a time.
const _r = new Float64Array(3);
const _sInv = new Float64Array(3);
const _innovation = new Float64Array(2);
const _gain = new Float64Array(8);
const _pht = new Float64Array(8);

/**
 * Covariance [r00, r01, r11] of a ground position measured with `rangeSigmaM` along the bearing from
 * the vehicle origin to (x, y) and `lateralSigmaM` across it: U diag(sr^2, sl^2) U^T.
 */
function measurementNoise(x: number, y: number, rangeSigmaM: number, lateralSigmaM: number, out: Float64Array): void {
  const rangeM = Math.hypot(x, y);
  const c = rangeM > 0 ? x / rangeM : 1;
  const s = rangeM > 0 ? y / rangeM : 0;
  const rr = rangeSigmaM * rangeSigmaM;
  const ll = lateralSigmaM * lateralSigmaM;
  out[0] = c * c * rr + s * s * ll;
  out[1] = c * s * (rr - ll);
  out[2] = s * s * rr + c * c * ll;
}

/** Square root of the larger eigenvalue of the 2x2 covariance [[a, b], [b, d]]. */
function largerAxisSigma(a: number, b: number, d: number): number {
  return Math.sqrt(Math.max(0, (a + d) / 2 + Math.hypot((a - d) / 2, b)));
}

function symmetrize(p: Float64Array): void {
  for (let i = 0; i < 4; i++) {
    for (let j = i + 1; j < 4; j++) {
      const mean = (p[i * 4 + j]! + p[j * 4 + i]!) / 2;
      p[i * 4 + j] = mean;
      p[j * 4 + i] = mean;
    }
  }
}
