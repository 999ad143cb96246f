/**
 * HUD optics simulator: a forward ray model of a real HUD light path, used to generate calibration
 * captures and to measure closed-loop warp error.
 *
 * Light path (forward): panel (picture generation unit) -> flat fold mirror -> concave main mirror
 * (anamorphic/toroidal magnifier) -> windshield inner surface (toroidal, curved about the vehicle
 * centreline, plus cubic freeform terms) -> eye. The simulator traces backwards, eye -> windshield ->
 * main mirror -> fold mirror -> panel, and finds the eye ray that lands on a given panel pixel with a
 * 2-D Newton solve.
 *
 * Design: the nominal system is laid out from the far plane of `HudOpticsConfig` (eyebox centre, HUD
 * axis, VID, FOV). The chief ray leaves the eyebox centre along the HUD axis; the windshield, main
 * and fold mirror sit along it at the distances below; the main mirror's two radii are solved so
 * that horizontal and vertical ray fans from the eyebox centre aimed at the virtual image centre
 * (VID ahead) both focus on the panel (no astigmatism on axis); the panel is placed at that focus,
 * perpendicular to the beam, and its pixel pitch and orientation are set so that the eyebox centre
 * sees the region's edge midpoints at the ideal plane's edge midpoints. Everything off those points
 * (keystone, smile, field curvature, eye-dependent "dynamic" distortion) is left as the optics make it.
 * Then manufacturing tolerances (seeded, uniform within the +/- bounds below) perturb the as-built system.
 *
 * Frames: vehicle frame ISO 8855 (x forward, y left, z up; metres). Panel pixels u right, v down,
 * origin at the panel's top-left corner (as in render/optics.ts).
 */
import type { HudOpticsConfig, Vec3M } from '../../render/optics-config.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { createEyeRay, VirtualImagePlane } from '../../render/optics.js';
import { levenbergMarquardt } from '../math/levenberg-marquardt.js';
import { seededRandom } from '../math/random.js';
import { add, cross, dot, frameFromNormal, frameRow, MirrorSurface, normalize, rotate, rotateFrame, scale, sub, type V3 } from './surfaces.js';

const DEG_TO_RAD = Math.PI / 180;
const RAD_TO_ARCMIN = (180 * 60) / Math.PI;

// ---- nominal design (why: a mid-size car AR-HUD package) ----
/** Eyebox centre to the windshield along the HUD axis, metres (typical dashboard depth). */
export const EYE_TO_WINDSHIELD_M = 0.85;
/** Windshield rake: glass angle from vertical, degrees (passenger cars 55-65). */
export const WINDSHIELD_RAKE_DEG = 60;
/** Windshield horizontal radius of curvature (about the vehicle centreline), metres. */
export const WINDSHIELD_RADIUS_HORIZONTAL_M = 2.5;
/** Windshield vertical radius of curvature (along the rake), metres. */
export const WINDSHIELD_RADIUS_VERTICAL_M = 8;
/**
 * Windshield cubic freeform terms c30, c21, c12, c03 (x lateral, y along the glass), 1/m^2: the
 * curvature of a real pressed windshield varies across it, which gives the HUD its eye-dependent
 * ("dynamic") distortion.
 */
export const WINDSHIELD_FREEFORM_PER_M2: readonly number[] = [0.004, 0.02, 0.005, 0.01];
/** Windshield to main mirror along the beam, metres. */
export const WINDSHIELD_TO_MAIN_MIRROR_M = 0.4;
/** Angle of incidence on the main mirror, degrees (off-axis mirror, folds the beam backwards). */
export const MAIN_MIRROR_INCIDENCE_DEG = 25;
/** Main mirror to fold mirror along the beam, metres. */
export const MAIN_MIRROR_TO_FOLD_M = 0.15;
/** Angle of incidence on the flat fold mirror, degrees. */
export const FOLD_MIRROR_INCIDENCE_DEG = 30;
/** Unfolded distance main mirror -> panel, metres (sets the magnification, about 25x). */
export const MAIN_MIRROR_TO_PANEL_M = 0.35;
/** Eye offset of the ray fans used to start the design, metres (a small pupil). */
const FOCUS_FAN_OFFSET_M = 1e-3;
/** Eyebox the design is optimised over (lateral x vertical), metres. */
export const DESIGN_EYEBOX_WIDTH_M = 0.13;
export const DESIGN_EYEBOX_HEIGHT_M = 0.05;
/** Field points of the design optimisation across the far region (columns x rows, edges included). */
const DESIGN_FIELD_COLS = 5;
const DESIGN_FIELD_ROWS = 3;
/** Iterations of the design optimisation (Levenberg-Marquardt). */
const DESIGN_MAX_ITERATIONS = 40;

// ---- manufacturing tolerances (uniform within +/-) ----
/** Windshield radii, fraction (pressing and bending tolerance of laminated glass). */
export const TOL_WINDSHIELD_RADIUS_FRACTION = 0.02;
/** Windshield installation tilt about the lateral and vertical axes, degrees. */
export const TOL_WINDSHIELD_TILT_DEG = 0.1;
/** Windshield freeform coefficients, 1/m^2 (shape deviation, about 0.1 mm over the HUD patch). */
export const TOL_WINDSHIELD_FREEFORM_PER_M2 = 0.004;
/** Main and fold mirror tilt about both tangent axes, degrees (HUD box assembly). */
export const TOL_MIRROR_TILT_DEG = 0.1;
/** Main mirror radii, fraction (moulded mirror). */
export const TOL_MAIN_MIRROR_RADIUS_FRACTION = 0.005;
/** Panel shift in its plane along u and v, metres. */
export const TOL_PANEL_SHIFT_M = 0.2e-3;
/** Panel shift along the beam (focus), metres. */
export const TOL_PANEL_FOCUS_M = 0.2e-3;
/** Panel rotation in its plane, degrees. */
export const TOL_PANEL_ROTATION_DEG = 0.1;

// ---- solver ----
/** Newton iterations of the panel-pixel -> eye-ray solve. */
const MAX_NEWTON_ITERATIONS = 12;
/** Panel residual at which the solve stops, pixels. */
const NEWTON_TOLERANCE_PX = 1e-7;
/** Finite-difference step of the Newton Jacobian, panel pixels (ideal-plane parametrisation). */
const JACOBIAN_STEP_PX = 0.25;

/** Options of HudOpticsSimulator. */
export interface HudOpticsSimulatorOptions {
  /** Optics whose far plane the design targets; default HUD_OPTICS_DEFAULTS. */
  opticsConfig?: HudOpticsConfig;
  /** Seed of the tolerance draw; default 1. */
  seed?: number;
  /** Multiplies every tolerance bound; 0 = the nominal design. Default 1. */
  toleranceScale?: number;
}

/** The as-built deviations drawn from the tolerances (documentation and tests). */
export interface ToleranceDraw {
  windshieldRadiusHorizontalFraction: number;
  windshieldRadiusVerticalFraction: number;
  windshieldTiltLateralDeg: number;
  windshieldTiltVerticalDeg: number;
  windshieldFreeformPerM2: number[];
  mainMirrorTiltXDeg: number;
  mainMirrorTiltYDeg: number;
  mainMirrorRadiusXFraction: number;
  mainMirrorRadiusYFraction: number;
  foldMirrorTiltXDeg: number;
  foldMirrorTiltYDeg: number;
  panelShiftUM: number;
  panelShiftVM: number;
  panelFocusM: number;
  panelRotationDeg: number;
}

/** Key numbers of the nominal design. */
export interface HudOpticsDesign {
  /** Main mirror radii of curvature (local x ~ lateral, local y ~ in the plane of incidence), metres. */
  mainMirrorRadiusXM: number;
  mainMirrorRadiusYM: number;
  /** Main mirror freeform c11 (1/m), c30, c21, c12, c03 (1/m^2) from the design optimisation. */
  mainMirrorFreeform: number[];
  /** Panel tilt about its u and v axes from the design optimisation (field-curvature correction), degrees. */
  panelTiltDeg: [number, number];
  /** Panel pixel pitch along u and v, metres. */
  pixelPitchUM: number;
  pixelPitchVM: number;
  /** Chief-ray hit points, vehicle frame, metres. */
  windshieldHitM: Vec3M;
  mainMirrorHitM: Vec3M;
  foldMirrorHitM: Vec3M;
  panelCentreM: Vec3M;
}

/** A panel position (caller-owned `out` of `panelPointOf`). */
export interface SimPanelPoint {
  uPx: number;
  vPx: number;
}

interface Panel {
  /** Panel pixel (0, 0) corner, vehicle frame, metres. */
  originM: V3;
  /** Unit vectors along u and v, and the panel normal (towards the fold mirror). */
  uAxis: V3;
  vAxis: V3;
  normal: V3;
  pitchUM: number;
  pitchVM: number;
}

const toVec = (v: V3): Vec3M => ({ x: v[0], y: v[1], z: v[2] });

/**
 * Mirrors plus panel: traces eye rays to panel pixels and solves the reverse. Allocates nothing per
 * call.
 */
class OpticalTrain {
  readonly #surfaces: MirrorSurface[]; // back-trace order: windshield, main mirror, fold mirror
  readonly #plane: VirtualImagePlane;
  readonly #panelOrigin = new Float64Array(3);
  readonly #panelU = new Float64Array(3); // u axis / pitch: dot with (hit - origin) gives pixels
  readonly #panelV = new Float64Array(3);
  readonly #panelN = new Float64Array(3);
  readonly #ray = new Float64Array(6);
  readonly #eyeRay = createEyeRay();
  #hitU = 0;
  #hitV = 0;

  constructor(surfaces: MirrorSurface[], panel: Panel, plane: VirtualImagePlane) {
    this.#surfaces = surfaces;
    this.#plane = plane;
    this.#panelOrigin.set(panel.originM);
    this.#panelU.set(scale(panel.uAxis, 1 / panel.pitchUM));
    this.#panelV.set(scale(panel.vAxis, 1 / panel.pitchVM));
    this.#panelN.set(panel.normal);
  }

  panelPointOf(direction: Readonly<Vec3M>, eyeM: Readonly<Vec3M>, out: SimPanelPoint): SimPanelPoint {
    if (this.#trace(eyeM, direction.x, direction.y, direction.z)) {
      out.uPx = this.#hitU;
      out.vPx = this.#hitV;
    } else {
      out.uPx = NaN;
      out.vPx = NaN;
    }
    return out;
  }

  apparentDirection(uPx: number, vPx: number, eyeM: Readonly<Vec3M>, out: Vec3M): Vec3M {
    // Eye rays are parametrised by where they cross the ideal far plane, in ideal panel pixels: the
    // design maps those nearly 1:1, so (u, v) is a good start and the Jacobian is near identity.
    let a = uPx, b = vPx;
    for (let k = 0; k < MAX_NEWTON_ITERATIONS; k++) {
      if (!this.#traceIdeal(a, b, eyeM)) break;
      const ru = this.#hitU - uPx, rv = this.#hitV - vPx;
      if (Math.abs(ru) < NEWTON_TOLERANCE_PX && Math.abs(rv) < NEWTON_TOLERANCE_PX) {
        const d = this.#plane.panelToRay(a, b, this.#eyeRay, eyeM).direction;
        out.x = d.x;
        out.y = d.y;
        out.z = d.z;
        return out;
      }
      const u0 = this.#hitU, v0 = this.#hitV;
      if (!this.#traceIdeal(a + JACOBIAN_STEP_PX, b, eyeM)) break;
      const j00 = (this.#hitU - u0) / JACOBIAN_STEP_PX, j10 = (this.#hitV - v0) / JACOBIAN_STEP_PX;
      if (!this.#traceIdeal(a, b + JACOBIAN_STEP_PX, eyeM)) break;
      const j01 = (this.#hitU - u0) / JACOBIAN_STEP_PX, j11 = (this.#hitV - v0) / JACOBIAN_STEP_PX;
      const det = j00 * j11 - j01 * j10;
      if (!(Math.abs(det) > 1e-12)) break;
      a -= (j11 * ru - j01 * rv) / det;
      b -= (-j10 * ru + j00 * rv) / det;
    }
    out.x = NaN;
    out.y = NaN;
    out.z = NaN;
    return out;
  }

  /** Eye ray towards ideal-plane panel pixel (a, b), traced to the panel (result in #hitU/#hitV). */
  #traceIdeal(a: number, b: number, eyeM: Readonly<Vec3M>): boolean {
    const d = this.#plane.panelToRay(a, b, this.#eyeRay, eyeM).direction;
    return this.#trace(eyeM, d.x, d.y, d.z);
  }

  #trace(eyeM: Readonly<Vec3M>, dx: number, dy: number, dz: number): boolean {
    const ray = this.#ray;
    ray[0] = eyeM.x; ray[1] = eyeM.y; ray[2] = eyeM.z;
    ray[3] = dx; ray[4] = dy; ray[5] = dz;
    for (const s of this.#surfaces) if (!s.reflect(ray)) return false;
    const o = this.#panelOrigin, n = this.#panelN;
    const dn = ray[3]! * n[0]! + ray[4]! * n[1]! + ray[5]! * n[2]!;
    if (!(dn < 0)) return false;
    const t = ((o[0]! - ray[0]!) * n[0]! + (o[1]! - ray[1]!) * n[1]! + (o[2]! - ray[2]!) * n[2]!) / dn;
    if (!(t > 0)) return false;
    const hx = ray[0]! + t * ray[3]! - o[0]!, hy = ray[1]! + t * ray[4]! - o[1]!, hz = ray[2]! + t * ray[5]! - o[2]!;
    const pu = this.#panelU, pv = this.#panelV;
    this.#hitU = hx * pu[0]! + hy * pu[1]! + hz * pu[2]!;
    this.#hitV = hx * pv[0]! + hy * pv[1]! + hz * pv[2]!;
    return true;
  }
}

/**
 * The simulated HUD. `apparentDirection` answers "in which direction does the eye at `eyeM` see
 * panel pixel (u, v)"; `panelPointOf` the reverse.
 */
export class HudOpticsSimulator {
  /** The ideal far plane the design targets (the renderer's VirtualImagePlane). */
  readonly plane: VirtualImagePlane;
  /** Design eye point (eyebox centre), vehicle frame, metres. */
  readonly eyeboxCentreM: Readonly<Vec3M>;
  /** Panel resolution, pixels. */
  readonly panel: Readonly<{ widthPx: number; heightPx: number }>;
  /** Nominal design numbers. */
  readonly design: Readonly<HudOpticsDesign>;
  /** The drawn manufacturing deviations (all 0 when toleranceScale is 0). */
  readonly tolerances: Readonly<ToleranceDraw>;
  readonly #train: OpticalTrain;

  constructor(options: HudOpticsSimulatorOptions = {}) {
    const config = options.opticsConfig ?? HUD_OPTICS_DEFAULTS;
    const seed = options.seed ?? 1;
    const tolScale = options.toleranceScale ?? 1;
    if (!Number.isInteger(seed)) throw new TypeError(`HudOpticsSimulator: 'seed' must be an integer, got ${seed}`);
    if (!(tolScale >= 0)) throw new RangeError(`HudOpticsSimulator: 'toleranceScale' must be >= 0, got ${tolScale}`);
    this.plane = new VirtualImagePlane('far', config.far, config.eyeM);
    this.eyeboxCentreM = Object.freeze({ ...config.eyeM });
    this.panel = Object.freeze({ ...config.panel });
    const key = JSON.stringify([config.eyeM, config.far]);
    let nominal = designCache.get(key);
    if (nominal === undefined) {
      nominal = designNominal(this.plane, config.eyeM);
      designCache.set(key, nominal);
    }
    this.design = Object.freeze({ ...nominal.design });
    const draw = drawTolerances(seed, tolScale);
    this.tolerances = Object.freeze(draw);
    const built = applyTolerances(nominal.surfaces, nominal.panel, draw);
    this.#train = new OpticalTrain(built.surfaces, built.panel, this.plane);
  }

  /**
   * Traces the eye ray (`eyeM`, unit `direction`, vehicle frame) through the optics to the panel.
   * Writes the panel pixel into `out` (NaN when the ray misses a surface) and returns `out`.
   * Allocates nothing.
   */
  panelPointOf(direction: Readonly<Vec3M>, eyeM: Readonly<Vec3M>, out: SimPanelPoint): SimPanelPoint {
    return this.#train.panelPointOf(direction, eyeM, out);
  }

  /**
   * The apparent direction (unit vector, vehicle frame) in which an eye at `eyeM` sees panel point
   * (uPx, vPx): a Newton solve over eye rays for the one that lands on that panel point. Writes NaN
   * when the solve does not converge (a point outside what the optics can show). Allocates nothing.
   */
  apparentDirection(uPx: number, vPx: number, eyeM: Readonly<Vec3M>, out: Vec3M): Vec3M {
    return this.#train.apparentDirection(uPx, vPx, eyeM, out);
  }
}

interface NominalDesign {
  surfaces: MirrorSurface[];
  panel: Panel;
  design: HudOpticsDesign;
}

/** Nominal designs by optics config (the design optimisation takes a fraction of a second). */
const designCache = new Map<string, NominalDesign>();

/** Traces a ray through `surfaces`; returns [origin, direction] after the last one, or undefined. */
function traceThrough(surfaces: readonly MirrorSurface[], originM: V3, direction: V3): [V3, V3] | undefined {
  const ray = Float64Array.of(...originM, ...normalize(direction));
  for (const s of surfaces) if (!s.reflect(ray)) return undefined;
  return [[ray[0]!, ray[1]!, ray[2]!], [ray[3]!, ray[4]!, ray[5]!]];
}

/** Parameter along line 1 (p1 + s d1) of its closest approach to line 2. */
function closestApproach(p1: V3, d1: V3, p2: V3, d2: V3): number {
  const w = sub(p1, p2);
  const a = dot(d1, d1), b = dot(d1, d2), c = dot(d2, d2), d = dot(d1, w), e = dot(d2, w);
  return (b * e - c * d) / (a * c - b * b);
}

/** Design parameters optimised: main mirror cx, cy (1/m), freeform c11, c30, c21, c12, c03; panel tilts (deg). */
const DESIGN_PARAMS = 9;

function designNominal(plane: VirtualImagePlane, eyeM: Readonly<Vec3M>): NominalDesign {
  const eye: V3 = [eyeM.x, eyeM.y, eyeM.z];
  const axis: V3 = [plane.hudFromVehicle[6]!, plane.hudFromVehicle[7]!, plane.hudFromVehicle[8]!];
  const up: V3 = [0, 0, 1];
  // Windshield: vertex on the vehicle centreline at the height/depth of the chief-ray hit; local z
  // (towards the cabin) = backwards-down normal of a glass raked WINDSHIELD_RAKE_DEG from vertical.
  const nominalHit = add(eye, scale(axis, EYE_TO_WINDSHIELD_M));
  const rake = WINDSHIELD_RAKE_DEG * DEG_TO_RAD;
  const cabinNormal: V3 = [-Math.cos(rake), 0, -Math.sin(rake)];
  const windshield = new MirrorSurface(
    Float64Array.of(nominalHit[0], 0, nominalHit[2]),
    frameFromNormal(cabinNormal, [0, 1, 0]),
    1 / WINDSHIELD_RADIUS_HORIZONTAL_M,
    1 / WINDSHIELD_RADIUS_VERTICAL_M,
    Float64Array.from([0, ...WINDSHIELD_FREEFORM_PER_M2]),
  );
  const afterWindshield = traceThrough([windshield], eye, axis);
  if (afterWindshield === undefined) throw new Error('HudOpticsSimulator: design chief ray misses the windshield');
  const [windshieldHit, r1] = afterWindshield;
  const mainHit = add(windshieldHit, scale(r1, WINDSHIELD_TO_MAIN_MIRROR_M));
  // Each mirror turns the beam in the plane containing it and the vertical.
  const r2 = rotate(scale(r1, -1), normalize(cross(r1, up)), 2 * MAIN_MIRROR_INCIDENCE_DEG * DEG_TO_RAD);
  const mainFrame = frameFromNormal(sub(r2, r1), [0, 1, 0]);
  const foldHit = add(mainHit, scale(r2, MAIN_MIRROR_TO_FOLD_M));
  const r3 = rotate(scale(r2, -1), normalize(cross(r2, up)), 2 * FOLD_MIRROR_INCIDENCE_DEG * DEG_TO_RAD);
  const fold = new MirrorSurface(Float64Array.from(foldHit), frameFromNormal(sub(r3, r2), [0, 1, 0]), 0, 0);
  const panelCentre = add(foldHit, scale(r3, MAIN_MIRROR_TO_PANEL_M - MAIN_MIRROR_TO_FOLD_M));
  const panelFrame = frameFromNormal(scale(r3, -1), [0, 1, 0]);

  // Start: main mirror curvatures that focus horizontal and vertical fans from the eyebox centre
  // (aimed at the virtual image centre) on the panel.
  const target = add(eye, scale(axis, plane.vidM));
  const lateral: V3 = [0, 1, 0];
  const vertical = normalize(cross(axis, lateral));
  const focusError = (cx: number, cy: number): [number, number] => {
    const main = new MirrorSurface(Float64Array.from(mainHit), mainFrame, cx, cy);
    const chief = traceThrough([windshield, main], eye, axis)!;
    const out: number[] = [];
    for (const offset of [lateral, vertical]) {
      const start = add(eye, scale(offset, FOCUS_FAN_OFFSET_M));
      const ray = traceThrough([windshield, main], start, sub(target, start));
      if (ray === undefined) throw new Error('HudOpticsSimulator: design focus ray misses a mirror');
      out.push(closestApproach(chief[0], chief[1], ray[0], ray[1]) - MAIN_MIRROR_TO_PANEL_M);
    }
    return [out[0]!, out[1]!];
  };
  let cx = 1 / 0.7, cy = 1 / 0.7;
  for (let k = 0; k < 30; k++) {
    const [f0, f1] = focusError(cx, cy);
    if (Math.abs(f0) < 1e-10 && Math.abs(f1) < 1e-10) break;
    const h = 1e-5;
    const [a0, a1] = focusError(cx + h, cy);
    const [b0, b1] = focusError(cx, cy + h);
    const j00 = (a0 - f0) / h, j10 = (a1 - f1) / h, j01 = (b0 - f0) / h, j11 = (b1 - f1) / h;
    const det = j00 * j11 - j01 * j10;
    cx -= (j11 * f0 - j01 * f1) / det;
    cy -= (-j10 * f0 + j00 * f1) / det;
  }

  const r = plane.region;
  const cu = r.xPx + r.widthPx / 2, cv = r.yPx + r.heightPx / 2;
  const eyeRay = createEyeRay();
  const build = (p: Float64Array): { surfaces: MirrorSurface[]; panel: Panel; centre: V3 } => {
    const main = new MirrorSurface(Float64Array.from(mainHit), mainFrame, p[0]!, p[1]!, p.slice(2, 7));
    const surfaces = [windshield, main, fold];
    const normalFrame = tilted(panelFrame, p[7]!, p[8]!);
    const normal: V3 = frameRow(normalFrame, 2);
    // Panel axes and pitch from the chief rays to the ideal plane's edge midpoints.
    const hitOf = (u: number, v: number): V3 => {
      const d = plane.panelToRay(u, v, eyeRay, eyeM).direction;
      const ray = traceThrough(surfaces, eye, [d.x, d.y, d.z]);
      if (ray === undefined) throw new Error('HudOpticsSimulator: design field ray misses a mirror');
      const t = dot(sub(panelCentre, ray[0]), normal) / dot(ray[1], normal);
      return add(ray[0], scale(ray[1], t));
    };
    const centre = hitOf(cu, cv);
    const alongU = sub(hitOf(r.xPx + r.widthPx, cv), hitOf(r.xPx, cv));
    const alongV = sub(hitOf(cu, r.yPx + r.heightPx), hitOf(cu, r.yPx));
    const uAxis = normalize(sub(alongU, scale(normal, dot(alongU, normal))));
    const vRaw = sub(alongV, scale(normal, dot(alongV, normal)));
    const vAxis = normalize(sub(vRaw, scale(uAxis, dot(vRaw, uAxis))));
    const pitchUM = dot(alongU, uAxis) / r.widthPx;
    const pitchVM = dot(alongV, vAxis) / r.heightPx;
    const originM = sub(sub(centre, scale(uAxis, pitchUM * cu)), scale(vAxis, pitchVM * cv));
    return { surfaces, panel: { originM, uAxis, vAxis, normal, pitchUM, pitchVM }, centre };
  };

  // Optimise the main mirror shape and the panel tilt for the least eye-dependent distortion: the
  // apparent-minus-ideal direction of each field point should not change across the eyebox.
  const fields: [number, number][] = [];
  for (let j = 0; j < DESIGN_FIELD_ROWS; j++) {
    for (let i = 0; i < DESIGN_FIELD_COLS; i++) fields.push([r.xPx + (r.widthPx * i) / (DESIGN_FIELD_COLS - 1), r.yPx + (r.heightPx * j) / (DESIGN_FIELD_ROWS - 1)]);
  }
  const eyes: Vec3M[] = [];
  for (const dy of [-1, 0, 1]) for (const dz of [-1, 0, 1]) eyes.push({ x: eyeM.x, y: eyeM.y + (dy * DESIGN_EYEBOX_WIDTH_M) / 2, z: eyeM.z + (dz * DESIGN_EYEBOX_HEIGHT_M) / 2 });
  const centreEye = 4;
  const m = plane.hudFromVehicle;
  const apparent: Vec3M = { x: 0, y: 0, z: 0 };
  const offsets = new Float64Array(eyes.length * 2);
  const problem = {
    residualCount: fields.length * (eyes.length - 1) * 2,
    residuals(p: Float64Array, out: Float64Array): void {
      const built = build(p);
      const train = new OpticalTrain(built.surfaces, built.panel, plane);
      let k = 0;
      for (const [u, v] of fields) {
        eyes.forEach((e, n) => {
          train.apparentDirection(u, v, e, apparent);
          const ideal = plane.panelToRay(u, v, eyeRay, e).direction;
          const dx = apparent.x - ideal.x, dy = apparent.y - ideal.y, dz = apparent.z - ideal.z;
          offsets[n * 2] = (m[0]! * dx + m[1]! * dy + m[2]! * dz) * RAD_TO_ARCMIN;
          offsets[n * 2 + 1] = (m[3]! * dx + m[4]! * dy + m[5]! * dz) * RAD_TO_ARCMIN;
        });
        for (let n = 0; n < eyes.length; n++) {
          if (n === centreEye) continue;
          out[k++] = offsets[n * 2]! - offsets[centreEye * 2]!;
          out[k++] = offsets[n * 2 + 1]! - offsets[centreEye * 2 + 1]!;
        }
      }
      for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i]!)) out[i] = 1e6;
    },
  };
  const start = new Float64Array(DESIGN_PARAMS);
  start[0] = cx;
  start[1] = cy;
  const best = levenbergMarquardt(problem, start, { maxIterations: DESIGN_MAX_ITERATIONS }).params;
  const built = build(best);
  return {
    surfaces: built.surfaces,
    panel: built.panel,
    design: {
      mainMirrorRadiusXM: 1 / best[0]!,
      mainMirrorRadiusYM: 1 / best[1]!,
      mainMirrorFreeform: Array.from(best.subarray(2, 7)),
      panelTiltDeg: [best[7]!, best[8]!],
      pixelPitchUM: built.panel.pitchUM,
      pixelPitchVM: built.panel.pitchVM,
      windshieldHitM: toVec(windshieldHit),
      mainMirrorHitM: toVec(mainHit),
      foldMirrorHitM: toVec(foldHit),
      panelCentreM: toVec(built.centre),
    },
  };
}

function drawTolerances(seed: number, tolScale: number): ToleranceDraw {
  const random = seededRandom(seed);
  const within = (bound: number): number => (2 * random() - 1) * bound * tolScale;
  return {
    windshieldRadiusHorizontalFraction: within(TOL_WINDSHIELD_RADIUS_FRACTION),
    windshieldRadiusVerticalFraction: within(TOL_WINDSHIELD_RADIUS_FRACTION),
    windshieldTiltLateralDeg: within(TOL_WINDSHIELD_TILT_DEG),
    windshieldTiltVerticalDeg: within(TOL_WINDSHIELD_TILT_DEG),
    windshieldFreeformPerM2: [0, 1, 2, 3].map(() => within(TOL_WINDSHIELD_FREEFORM_PER_M2)),
    mainMirrorTiltXDeg: within(TOL_MIRROR_TILT_DEG),
    mainMirrorTiltYDeg: within(TOL_MIRROR_TILT_DEG),
    mainMirrorRadiusXFraction: within(TOL_MAIN_MIRROR_RADIUS_FRACTION),
    mainMirrorRadiusYFraction: within(TOL_MAIN_MIRROR_RADIUS_FRACTION),
    foldMirrorTiltXDeg: within(TOL_MIRROR_TILT_DEG),
    foldMirrorTiltYDeg: within(TOL_MIRROR_TILT_DEG),
    panelShiftUM: within(TOL_PANEL_SHIFT_M),
    panelShiftVM: within(TOL_PANEL_SHIFT_M),
    panelFocusM: within(TOL_PANEL_FOCUS_M),
    panelRotationDeg: within(TOL_PANEL_ROTATION_DEG),
  };
}

/** Tilts a surface about its own local x and y axes (through its vertex). */
function tilted(frame: Float64Array, aboutXDeg: number, aboutYDeg: number): Float64Array {
  const x = frameRow(frame, 0);
  const y = frameRow(frame, 1);
  return rotateFrame(rotateFrame(frame, x, aboutXDeg * DEG_TO_RAD), y, aboutYDeg * DEG_TO_RAD);
}

function applyTolerances(nominal: MirrorSurface[], panel: Panel, t: ToleranceDraw): { surfaces: MirrorSurface[]; panel: Panel } {
  const [windshield, main, fold] = nominal as [MirrorSurface, MirrorSurface, MirrorSurface];
  const wsFrame = rotateFrame(rotateFrame(windshield.localFromVehicle, [0, 1, 0], t.windshieldTiltLateralDeg * DEG_TO_RAD), [0, 0, 1], t.windshieldTiltVerticalDeg * DEG_TO_RAD);
  const builtWindshield = new MirrorSurface(
    windshield.originM,
    wsFrame,
    windshield.curvatureXPerM / (1 + t.windshieldRadiusHorizontalFraction),
    windshield.curvatureYPerM / (1 + t.windshieldRadiusVerticalFraction),
    windshield.freeform.map((c, k) => (k === 0 ? c : c + t.windshieldFreeformPerM2[k - 1]!)),
  );
  const builtMain = new MirrorSurface(
    main.originM,
    tilted(main.localFromVehicle, t.mainMirrorTiltXDeg, t.mainMirrorTiltYDeg),
    main.curvatureXPerM / (1 + t.mainMirrorRadiusXFraction),
    main.curvatureYPerM / (1 + t.mainMirrorRadiusYFraction),
    main.freeform,
  );
  const builtFold = new MirrorSurface(fold.originM, tilted(fold.localFromVehicle, t.foldMirrorTiltXDeg, t.foldMirrorTiltYDeg), 0, 0);
  const angle = t.panelRotationDeg * DEG_TO_RAD;
  const centreShift = add(add(scale(panel.uAxis, t.panelShiftUM), scale(panel.vAxis, t.panelShiftVM)), scale(panel.normal, t.panelFocusM));
  // Rotate the panel about its normal through pixel (0, 0)'s corner plus the shift (a rigid motion).
  return {
    surfaces: [builtWindshield, builtMain, builtFold],
    panel: {
      ...panel,
      originM: add(panel.originM, centreShift),
      uAxis: rotate(panel.uAxis, panel.normal, angle),
      vAxis: rotate(panel.vAxis, panel.normal, angle),
    },
  };
}
