/**
 * HUD optics model: the driver's eye, the two virtual image planes and the mapping between points
 * in the vehicle frame and ideal (undistorted) panel pixels; plus latency compensation (vehicle pose
 * predicted from speed and yaw rate between capture and display).
 *
 * Frames:
 * - vehicle (ISO 8855): origin rear-axle centre on the ground, x forward, y left, z up; metres.
 * - hud (per plane): origin at the eyebox centre, x right, y down, z along the HUD axis (forward,
 *   tilted down by the look-down angle). `hudFromVehicle` rows are the plane's right, down and axis
 *   unit vectors written in the vehicle frame.
 * - plane coordinates: metres on the virtual image from its centre, x right, y down.
 * - panel pixels: u right, v down, origin at the panel's top-left corner; pixel (i, j) has its centre
 *   at (i + 0.5, j + 0.5). A plane's region [xPx, xPx + widthPx] x [yPx, yPx + heightPx] spans its FOV.
 *
 * The virtual image is fixed in the vehicle frame (defined from the eyebox centre). A tracked eye
 * that moves inside the eyebox looks through the same plane from elsewhere, so a world point lands on
 * a different pixel (parallax); the windshield warp for that eye position is a separate, later pass.
 */
import type { HudOpticsConfig, PanelRegionPx, Vec3M, VirtualImagePlaneConfig } from './optics-config.js';

const DEG_TO_RAD = Math.PI / 180;
/** Below this |yaw rate x dt| (rad) the pose prediction uses the series of the arc formulas. */
const STRAIGHT_LINE_TURN_RAD = 1e-4;

/** Where a vehicle-frame point lands on the panel (caller-owned, reused by `vehicleToPanel`). */
export interface PanelPoint {
  /** Panel column, pixels (u right); NaN when `behindEye`. */
  uPx: number;
  /** Panel row, pixels (v down); NaN when `behindEye`. */
  vPx: number;
  /** The eye ray does not reach the plane in front of the eye (point behind or level with the plane's facing). */
  behindEye: boolean;
  /** The pixel lies outside the plane's panel region (the point is outside the plane's FOV). */
  outsideFov: boolean;
}

/** An eye ray in the vehicle frame (caller-owned, reused by `panelToRay`). */
export interface EyeRay {
  /** Ray origin: the eye, vehicle frame, metres. */
  originM: Vec3M;
  /** Unit direction, vehicle frame (x forward, y left, z up). */
  direction: Vec3M;
}

/** A predicted change of vehicle pose over a time step, expressed in the vehicle frame at the start. */
export interface VehiclePoseDelta {
  /** Forward displacement of the rear-axle origin, metres. */
  dxM: number;
  /** Leftward displacement of the rear-axle origin, metres. */
  dyM: number;
  /** Heading change, radians (positive = turning left, counter-clockwise seen from above). */
  dYawRad: number;
}

/** A fresh `PanelPoint` to reuse as an `out` argument. */
export function createPanelPoint(): PanelPoint {
  return { uPx: NaN, vPx: NaN, behindEye: true, outsideFov: true };
}

/** A fresh `EyeRay` to reuse as an `out` argument. */
export function createEyeRay(): EyeRay {
  return { originM: { x: 0, y: 0, z: 0 }, direction: { x: 1, y: 0, z: 0 } };
}

/** A fresh `VehiclePoseDelta` to reuse as an `out` argument. */
export function createVehiclePoseDelta(): VehiclePoseDelta {
  return { dxM: 0, dyM: 0, dYawRad: 0 };
}

/**
 * One virtual image plane: perpendicular to the HUD axis at `vidM` from the eyebox centre, the axis
 * pitched down by `lookDownDeg`, sized by the FOV seen from the eyebox centre, mapped linearly onto
 * its panel region (ideal pixels, before the windshield warp).
 */
export class VirtualImagePlane {
  /** 'far' (AR, world-registered) or 'near' (status). */
  readonly name: 'far' | 'near';
  /** Virtual image distance along the HUD axis, metres. */
  readonly vidM: number;
  /** Full horizontal / vertical FOV from the eyebox centre, degrees. */
  readonly fovHorizontalDeg: number;
  readonly fovVerticalDeg: number;
  /** HUD axis below the horizontal, degrees. */
  readonly lookDownDeg: number;
  /** Panel pixels this plane maps to. */
  readonly region: Readonly<PanelRegionPx>;
  /** Half extents of the virtual image, metres (x right, y down from its centre). */
  readonly halfWidthM: number;
  readonly halfHeightM: number;
  /**
   * hudFromVehicle rotation, row-major 3x3: rows = plane right, plane down, HUD axis (unit vectors in
   * the vehicle frame: x forward, y left, z up). Maps vehicle-frame vectors to hud (x right, y down, z axis).
   */
  readonly hudFromVehicle: Float64Array;
  /** Plane centre in the vehicle frame, metres (eyebox centre + vidM x axis). */
  readonly centreM: Float64Array;

  constructor(name: 'far' | 'near', config: Readonly<VirtualImagePlaneConfig>, eyeboxCentreM: Readonly<Vec3M>) {
    this.name = name;
    this.vidM = config.vidM;
    this.fovHorizontalDeg = config.fovHorizontalDeg;
    this.fovVerticalDeg = config.fovVerticalDeg;
    this.lookDownDeg = config.lookDownDeg;
    this.region = Object.freeze({ ...config.panelRegion });
    this.halfWidthM = config.vidM * Math.tan((config.fovHorizontalDeg / 2) * DEG_TO_RAD);
    this.halfHeightM = config.vidM * Math.tan((config.fovVerticalDeg / 2) * DEG_TO_RAD);
    const c = Math.cos(config.lookDownDeg * DEG_TO_RAD);
    const s = Math.sin(config.lookDownDeg * DEG_TO_RAD);
    // prettier-ignore
    this.hudFromVehicle = Float64Array.of(
      0, -1, 0,  // right  (hud x) = -vehicle y
      -s, 0, -c, // down   (hud y) = pitched-down -vehicle z
      c, 0, -s,  // axis   (hud z) = vehicle x pitched down by lookDown
    );
    this.centreM = Float64Array.of(eyeboxCentreM.x + config.vidM * c, eyeboxCentreM.y, eyeboxCentreM.z - config.vidM * s);
  }

  /**
   * Projects a vehicle-frame point seen from `eyeM` onto this plane: the eye ray's intersection with
   * the plane, as a panel pixel. Allocates nothing. Returns `out`.
   */
  vehicleToPanel(pointM: Readonly<Vec3M>, out: PanelPoint, eyeM: Readonly<Vec3M>): PanelPoint {
    const m = this.hudFromVehicle;
    const wx = pointM.x - eyeM.x;
    const wy = pointM.y - eyeM.y;
    const wz = pointM.z - eyeM.z;
    // Eye ray and eye-to-centre vector, both in hud axes (x right, y down, z axis).
    const rayX = m[0]! * wx + m[1]! * wy + m[2]! * wz;
    const rayY = m[3]! * wx + m[4]! * wy + m[5]! * wz;
    const rayZ = m[6]! * wx + m[7]! * wy + m[8]! * wz;
    const cx = this.centreM[0]! - eyeM.x;
    const cy = this.centreM[1]! - eyeM.y;
    const cz = this.centreM[2]! - eyeM.z;
    const toCentreX = m[0]! * cx + m[1]! * cy + m[2]! * cz;
    const toCentreY = m[3]! * cx + m[4]! * cy + m[5]! * cz;
    const toCentreZ = m[6]! * cx + m[7]! * cy + m[8]! * cz; // eye-to-plane distance along the axis
    if (!(rayZ > 0) || !(toCentreZ > 0)) {
      out.uPx = NaN;
      out.vPx = NaN;
      out.behindEye = true;
      out.outsideFov = true;
      return out;
    }
    const t = toCentreZ / rayZ; // ray parameter at the plane
    const planeXM = t * rayX - toCentreX; // on the plane, from its centre: x right, y down
    const planeYM = t * rayY - toCentreY;
    this.panelFromPlane(planeXM, planeYM, out);
    out.behindEye = false;
    return out;
  }

  /**
   * The eye ray through panel pixel (uPx, vPx) of this plane, from `eyeM`, in the vehicle frame.
   * Allocates nothing. Returns `out`.
   */
  panelToRay(uPx: number, vPx: number, out: EyeRay, eyeM: Readonly<Vec3M>): EyeRay {
    const r = this.region;
    const planeXM = ((uPx - r.xPx) / r.widthPx - 0.5) * 2 * this.halfWidthM;
    const planeYM = ((vPx - r.yPx) / r.heightPx - 0.5) * 2 * this.halfHeightM;
    const m = this.hudFromVehicle;
    // vehicleFromHud = transpose(hudFromVehicle): point = centre + planeX * right + planeY * down.
    const px = this.centreM[0]! + m[0]! * planeXM + m[3]! * planeYM;
    const py = this.centreM[1]! + m[1]! * planeXM + m[4]! * planeYM;
    const pz = this.centreM[2]! + m[2]! * planeXM + m[5]! * planeYM;
    const dx = px - eyeM.x;
    const dy = py - eyeM.y;
    const dz = pz - eyeM.z;
    const inv = 1 / Math.hypot(dx, dy, dz);
    out.originM.x = eyeM.x;
    out.originM.y = eyeM.y;
    out.originM.z = eyeM.z;
    out.direction.x = dx * inv;
    out.direction.y = dy * inv;
    out.direction.z = dz * inv;
    return out;
  }

  /** True when (uPx, vPx) lies inside this plane's panel region (edges included). */
  containsPanelPoint(uPx: number, vPx: number): boolean {
    const r = this.region;
    return uPx >= r.xPx && uPx <= r.xPx + r.widthPx && vPx >= r.yPx && vPx <= r.yPx + r.heightPx;
  }

  /** panelFromPlane: plane metres (x right, y down from the centre) -> panel pixels (u right, v down). */
  private panelFromPlane(planeXM: number, planeYM: number, out: PanelPoint): void {
    const r = this.region;
    out.uPx = r.xPx + (planeXM / this.halfWidthM + 1) * 0.5 * r.widthPx;
    out.vPx = r.yPx + (planeYM / this.halfHeightM + 1) * 0.5 * r.heightPx;
    out.outsideFov = !this.containsPanelPoint(out.uPx, out.vPx);
  }
}

const _roadPoint: Vec3M = { x: 0, y: 0, z: 0 };

/**
 * The HUD's optics: eye point and the far (AR) and near (status) virtual image planes. The current
 * eye defaults to the eyebox centre; `setEyeM` sets a tracked eye, and each call may pass its own eye.
 */
export class HudOptics {
  /** Eyebox centre (design eye point), vehicle frame, metres. */
  readonly eyeboxCentreM: Readonly<Vec3M>;
  /** Panel resolution, pixels. */
  readonly panel: Readonly<{ widthPx: number; heightPx: number }>;
  /** AR plane (VID 7-15 m), world-registered content. */
  readonly far: VirtualImagePlane;
  /** Status plane (VID about 2.5 m). */
  readonly near: VirtualImagePlane;
  readonly #eyeM: Vec3M;

  constructor(config: Readonly<HudOpticsConfig>) {
    this.eyeboxCentreM = Object.freeze({ ...config.eyeM });
    this.panel = Object.freeze({ ...config.panel });
    this.far = new VirtualImagePlane('far', config.far, config.eyeM);
    this.near = new VirtualImagePlane('near', config.near, config.eyeM);
    this.#eyeM = { ...config.eyeM };
  }

  /** Current eye position (tracked, or the eyebox centre), vehicle frame, metres. A copy. */
  get eyeM(): Vec3M {
    return { ...this.#eyeM };
  }

  /** Sets the tracked eye position (vehicle frame, metres); later calls without `eyeM` use it. */
  setEyeM(eyeM: Readonly<Vec3M>): this {
    if (!Number.isFinite(eyeM.x) || !Number.isFinite(eyeM.y) || !Number.isFinite(eyeM.z)) {
      throw new RangeError(`HudOptics.setEyeM: eyeM must be finite, got (${eyeM.x}, ${eyeM.y}, ${eyeM.z})`);
    }
    this.#eyeM.x = eyeM.x;
    this.#eyeM.y = eyeM.y;
    this.#eyeM.z = eyeM.z;
    return this;
  }

  /** Returns the eye to the eyebox centre. */
  resetEye(): this {
    return this.setEyeM(this.eyeboxCentreM);
  }

  /**
   * Vehicle-frame point -> eye ray -> intersection with `plane` (default far) -> ideal panel pixel,
   * seen from `eyeM` (default: the current eye). Allocates nothing. Returns `out`.
   */
  vehicleToPanel(pointM: Readonly<Vec3M>, out: PanelPoint, eyeM: Readonly<Vec3M> = this.#eyeM, plane: VirtualImagePlane = this.far): PanelPoint {
    return plane.vehicleToPanel(pointM, out, eyeM);
  }

  /** Panel pixel of `plane` -> unit eye ray from `eyeM` (default: the current eye), vehicle frame. Returns `out`. */
  panelToRay(uPx: number, vPx: number, plane: VirtualImagePlane, out: EyeRay, eyeM: Readonly<Vec3M> = this.#eyeM): EyeRay {
    return plane.panelToRay(uPx, vPx, out, eyeM);
  }

  /**
   * A point on the road (z = 0) at vehicle x = `distanceM` (ahead of the rear axle) and vehicle
   * y = `lateralM` (left of the centreline) -> far-plane panel pixel. Returns `out` (a fresh one if omitted).
   */
  roadPointToPanel(distanceM: number, lateralM: number, out: PanelPoint = createPanelPoint(), eyeM: Readonly<Vec3M> = this.#eyeM): PanelPoint {
    _roadPoint.x = distanceM;
    _roadPoint.y = lateralM;
    _roadPoint.z = 0;
    return this.far.vehicleToPanel(_roadPoint, out, eyeM);
  }

  /** The plane whose panel region holds (uPx, vPx), or undefined for a black (unused) pixel. */
  planeAtPanel(uPx: number, vPx: number): VirtualImagePlane | undefined {
    if (this.far.containsPanelPoint(uPx, vPx)) return this.far;
    if (this.near.containsPanelPoint(uPx, vPx)) return this.near;
    return undefined;
  }
}

/**
 * Vehicle pose change over `dtS` under constant speed and yaw rate (CTRV; the rear-axle origin moves
 * on an exact circular arc, a straight line when the yaw rate is ~0), in the frame at the start:
 * dYaw = r dt, dx = v sin(dYaw) / r, dy = v (1 - cos(dYaw)) / r. Allocates nothing. Returns `out`.
 */
export function predictVehiclePose(speedMps: number, yawRateRps: number, dtS: number, out: VehiclePoseDelta = createVehiclePoseDelta()): VehiclePoseDelta {
  const dYawRad = yawRateRps * dtS;
  const distanceM = speedMps * dtS;
  // sin(a)/a and (1 - cos(a))/a, by series near 0 (error < a^4/120 there) so the limit is continuous.
  let sinOverA: number;
  let versinOverA: number;
  if (Math.abs(dYawRad) < STRAIGHT_LINE_TURN_RAD) {
    const a2 = dYawRad * dYawRad;
    sinOverA = 1 - a2 / 6;
    versinOverA = dYawRad * (0.5 - a2 / 24);
  } else {
    sinOverA = Math.sin(dYawRad) / dYawRad;
    versinOverA = (1 - Math.cos(dYawRad)) / dYawRad;
  }
  out.dxM = distanceM * sinOverA;
  out.dyM = distanceM * versinOverA;
  out.dYawRad = dYawRad;
  return out;
}

/**
 * vehicleAtDisplayFromVehicleAtCapture: re-expresses a point given in the vehicle frame at capture
 * time in the vehicle frame at display time, the vehicle having moved by `pose` (from
 * `predictVehiclePose`) in between. Axes stay x forward, y left, z up; z is unchanged (flat road).
 * `out` may be `pointM` itself. Allocates nothing. Returns `out`.
 */
export function vehicleAtDisplayFromVehicleAtCapture(pointM: Readonly<Vec3M>, pose: Readonly<VehiclePoseDelta>, out: Vec3M): Vec3M {
  const c = Math.cos(pose.dYawRad);
  const s = Math.sin(pose.dYawRad);
  const tx = pointM.x - pose.dxM;
  const ty = pointM.y - pose.dyM;
  const z = pointM.z;
  // Rotation by -dYaw about z.
  out.x = c * tx + s * ty;
  out.y = -s * tx + c * ty;
  out.z = z;
  return out;
}

const _pose: VehiclePoseDelta = createVehiclePoseDelta();

/**
 * Latency compensation for one point: a vehicle-frame point captured at t, re-expressed in the
 * vehicle frame at display time t + `dtS`, predicting the motion from speed and yaw rate (CTRV).
 * `out` may be `pointM` itself. Allocates nothing. Returns `out`.
 */
export function compensateForLatency(pointM: Readonly<Vec3M>, speedMps: number, yawRateRps: number, dtS: number, out: Vec3M): Vec3M {
  return vehicleAtDisplayFromVehicleAtCapture(pointM, predictVehiclePose(speedMps, yawRateRps, dtS, _pose), out);
}
