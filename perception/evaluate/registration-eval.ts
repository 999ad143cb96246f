/**
 * End-to-end registration accuracy (issue #9 item 5): for every visible labelled vehicle and person
 * the tracker reports, the angle, seen from the driver's eye, between where its HUD marker appears
 * (through the simulated windshield) and where the real object is at display time.
 *
 * Per camera frame of the drive (the tracking evaluation's own loop, `evaluateTracking` with
 * `onTrackedFrame`):
 * - estimate: each track the HUD gets a marker for (confirmed or coasting, with a ground position and a
 *   HUD class), matched one-to-one to visible labelled objects of its class by image IoU >=
 *   MOT_IOU_THRESHOLD (as the tracking evaluation matches), cuboid centre RANGE_MIN_M..RANGE_MAX_M away.
 *   The marker's anchor is the object's ground contact (render/overlay-scene.ts draws the bracket's
 *   bar ending at `positionM`, the object's near face on the road): the track's centre estimate moved
 *   back along its bearing by the class's contact-to-centre offset (`atGroundContact`, what the world
 *   stage hands ADAS and the HUD), on the road (z = 0).
 * - truth: the same point of the labelled cuboid: where the line from the vehicle origin to the
 *   cuboid's centre enters its footprint, at the cuboid's bottom (real height, no flat-road
 *   assumption). That point is fixed to the object; at display time = capture + latency the cuboid's
 *   pose is interpolated between the labelled frames (objects move too) and the point is expressed
 *   in the vehicle frame at display time (the vehicle frames of the bracketing frames, interpolated).
 * - marker: without compensation the capture-time anchor is drawn as is; with compensation it is
 *   moved by `compensateForLatency(speed, yaw rate, latency)` as HudOverlayScene does. The anchor goes
 *   through the far virtual image plane from the design eye point (`HudOptics.vehicleToPanel`: the
 *   ideal panel pixel the overlay lights), then through the pre-warp: the physical panel pixel the
 *   warp mesh (EyeboxWarp for that eye, interpolated over its triangles like the GPU, `meshUvAt`)
 *   fills with that ideal pixel, then through the simulated light path (HudOpticsSimulator,
 *   `apparentDirection`) to the direction the eye sees it. This is the closed loop of
 *   calibration/windshield/evaluate.ts, run backwards from a world point.
 * - angle between the eye->marker and eye->truth directions, degrees.
 *
 * Error budget per sample (same eye, all in degrees):
 * - total: marker (estimate, compensated or not) through the windshield vs truth at display time;
 * - windshield: marker placed from the TRUE display-time point vs that point (warp residual alone);
 * - perception: estimate vs truth at capture time through ideal optics (detector, ground contact, tracker);
 * - latency: truth at capture (compensated or not) vs truth at display, ideal optics (ego and object motion).
 *
 * Markers exist only inside the far plane's FOV (10 x 4 deg by default: road points about 17-140 m
 * ahead, a lane or two wide), so the headline statistics are over samples whose truth and both
 * markers (with and without compensation) are in view; the perception and latency parts are also
 * reported for every matched object (ideal optics, no FOV limit).
 *
 * Frames: world (dataset, z up); vehicle (ISO 8855: x forward, y left, z up; PandasetVehicleFrames:
 * origin on the road under the camera, which stands in for the HUD's rear-axle origin, so the design
 * eye sits 1.6 m ahead of the camera's ground point: an approximation of the eye's position that
 * changes viewing angles by far less than the errors measured); panel pixels (u right, v down).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_CAPTURE_SEED, HudOpticsSimulator, simulateWindshieldCaptures } from '../../calibration/sim/index.js';
import { EVALUATION_SAMPLES_U, EVALUATION_SAMPLES_V, calibrateWindshield, evaluateWarpMap, meshUvAt } from '../../calibration/windshield/index.js';
import type { GroundTruthObject } from '../../pipeline/index.js';
import type { HudOpticsConfig, Vec3M } from '../../render/optics-config.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { HudOptics, compensateForLatency, createEyeRay, createPanelPoint } from '../../render/optics.js';
import { EyeboxWarp, type WarpMap } from '../../render/warp-map.js';
import { WarpMesh } from '../../render/warp-mesh.js';
import { EVAL_CLASSES, evalClassOfDetectorClass, type EvalClass } from '../detect/ground-truth.js';
import type { Box } from '../detect/types.js';
import { boxIou, solveAssignment } from '../track/assignment.js';
import { MOT_IOU_THRESHOLD } from '../track/mot-metrics.js';
import type { PandasetVehicleFrames } from '../world/pandaset-mounting.js';
import { finiteOrNull, quantile } from './stats.js';
import { DEFAULT_SEQUENCE, RANGE_MAX_M, RANGE_MIN_M, evaluateTracking, type DriveFrame, type TrackedFrame } from './track-eval.js';

const RAD_TO_DEG = 180 / Math.PI;

/**
 * Capture-to-display latency assumed by default, ms: the render stage's ASSUMED_DISPLAY_LATENCY_NS
 * (render/render-stage.ts), the interval the renderer compensates over. (The demo's replay runs as
 * fast as possible on a busy machine, so its measured latency says nothing about a paced pipeline.)
 */
export const DEFAULT_REGISTRATION_LATENCY_MS = 100;
/** Tolerance draw of the simulated HUD by default: `arhud calibrate simulate --hud-seed` default. */
export const DEFAULT_HUD_SEED = 1;
/** Issue #9 targets (benchmark, reported only): registration error over drawn markers, degrees. */
export const REGISTRATION_TARGETS = Object.freeze({ medianDeg: 0.5, p90Deg: 1.0 });
/** Inverting the warp mesh: Newton iterations and the residual at which it stops (region-normalised units). */
const WARP_INVERSE_ITERATIONS = 30;
const WARP_INVERSE_TOLERANCE = 1e-9;
/** Finite-difference step of that Newton solve, region-normalised panel units (a fraction of a mesh cell). */
const WARP_INVERSE_STEP = 1e-4;

/** What the eye sees for a lit panel pixel (HudOpticsSimulator implements it). */
export interface ApparentView {
  /** Unit direction (vehicle frame) in which the eye at `eyeM` sees panel pixel (uPx, vPx); NaN when it cannot. */
  apparentDirection(uPx: number, vPx: number, eyeM: Readonly<Vec3M>, out: Vec3M): Vec3M;
}

/** Options of HudRegistration. */
export interface HudRegistrationOptions {
  /** HUD optics (far plane, design eye). Default `new HudOptics(HUD_OPTICS_DEFAULTS)`. */
  optics?: HudOptics;
  /** The light path from panel to eye. Default: ideal (the eye sees each pixel on the ideal far plane). */
  view?: ApparentView;
  /** The far plane's pre-warp. Default: none (identity). */
  warpMap?: WarpMap;
  /** Eye position, vehicle frame, m. Default the optics' eyebox centre (design eye point). */
  eyeM?: Vec3M;
}

/**
 * Where a HUD marker for a vehicle-frame point appears from the eye: ideal panel pixel -> physical
 * panel pixel (inverse of the warp mesh) -> apparent direction. See the module comment.
 */
export class HudRegistration {
  readonly optics: HudOptics;
  /** Eye, vehicle frame, metres. */
  readonly eyeM: Readonly<Vec3M>;
  readonly #view: ApparentView;
  readonly #mesh: WarpMesh | undefined;
  readonly #pp = createPanelPoint();
  readonly #ray = createEyeRay();
  readonly #uv = new Float64Array(2);
  readonly #d: Vec3M = { x: 0, y: 0, z: 0 };

  constructor(options: HudRegistrationOptions = {}) {
    this.optics = options.optics ?? new HudOptics(HUD_OPTICS_DEFAULTS);
    this.eyeM = Object.freeze({ ...(options.eyeM ?? this.optics.eyeboxCentreM) });
    const plane = this.optics.far;
    this.#view = options.view ?? {
      apparentDirection: (uPx, vPx, eyeM, out) => {
        const d = plane.panelToRay(uPx, vPx, this.#ray, eyeM).direction;
        out.x = d.x;
        out.y = d.y;
        out.z = d.z;
        return out;
      },
    };
    if (options.warpMap !== undefined) {
      const map = options.warpMap;
      const mesh = new WarpMesh(map.cols, map.rows, map.meshes[0]!.positions.slice(), map.meshes[0]!.uvs.slice());
      new EyeboxWarp(map).meshFor({ ...this.eyeM }, mesh);
      this.#mesh = mesh;
    }
  }

  /** Unit direction from the eye to `pointM` (vehicle frame), into `out`. */
  trueDirection(pointM: Readonly<Vec3M>, out: Vec3M): Vec3M {
    const dx = pointM.x - this.eyeM.x, dy = pointM.y - this.eyeM.y, dz = pointM.z - this.eyeM.z;
    const inv = 1 / Math.hypot(dx, dy, dz);
    out.x = dx * inv;
    out.y = dy * inv;
    out.z = dz * inv;
    return out;
  }

  /**
   * Direction in which the eye sees the marker drawn for `pointM` (vehicle frame at display time),
   * into `out`. False (out untouched) when no marker is drawn: the point is outside the far plane's
   * FOV, the warp cannot bring it onto the panel, or the light path cannot show that pixel.
   */
  markerDirection(pointM: Readonly<Vec3M>, out: Vec3M): boolean {
    const plane = this.optics.far;
    const pp = plane.vehicleToPanel(pointM, this.#pp, this.eyeM);
    if (pp.behindEye || pp.outsideFov) return false;
    const r = plane.region;
    const qx = (pp.uPx - r.xPx) / r.widthPx, qy = (pp.vPx - r.yPx) / r.heightPx;
    let x = qx, y = qy;
    if (this.#mesh !== undefined) {
      const solved = this.#invertWarp(qx, qy);
      if (solved === undefined) return false;
      [x, y] = solved;
    }
    const u = r.xPx + x * r.widthPx, v = r.yPx + y * r.heightPx;
    const d = this.#view.apparentDirection(u, v, this.eyeM, this.#d);
    if (!(Number.isFinite(d.x) && Number.isFinite(d.y) && Number.isFinite(d.z))) return false;
    out.x = d.x;
    out.y = d.y;
    out.z = d.z;
    return true;
  }

  /** The physical panel position (region-normalised) whose warp uv is (qx, qy): Newton on the piecewise-linear mesh. */
  #invertWarp(qx: number, qy: number): [number, number] | undefined {
    const mesh = this.#mesh!;
    const uv = this.#uv;
    let x = qx, y = qy;
    for (let i = 0; i < WARP_INVERSE_ITERATIONS; i++) {
      meshUvAt(mesh, x, y, uv);
      const fx = uv[0]! - qx, fy = uv[1]! - qy;
      if (Math.hypot(fx, fy) < WARP_INVERSE_TOLERANCE) return [x, y];
      // Forward differences, stepping inwards at the panel's edges.
      const hx = x + WARP_INVERSE_STEP <= 1 ? WARP_INVERSE_STEP : -WARP_INVERSE_STEP;
      const hy = y + WARP_INVERSE_STEP <= 1 ? WARP_INVERSE_STEP : -WARP_INVERSE_STEP;
      meshUvAt(mesh, x + hx, y, uv);
      const a = (uv[0]! - qx - fx) / hx, c = (uv[1]! - qy - fy) / hx;
      meshUvAt(mesh, x, y + hy, uv);
      const b = (uv[0]! - qx - fx) / hy, d = (uv[1]! - qy - fy) / hy;
      const det = a * d - b * c;
      if (!(Math.abs(det) > 1e-12)) return undefined;
      x -= (d * fx - b * fy) / det;
      y -= (a * fy - c * fx) / det;
      // The panel ends at the region's edges: a point the warp needs beyond them is not shown.
      if (x < -1e-6 || x > 1 + 1e-6 || y < -1e-6 || y > 1 + 1e-6) {
        if (i > 3) return undefined;
        x = Math.min(1, Math.max(0, x));
        y = Math.min(1, Math.max(0, y));
      }
    }
    return undefined;
  }
}

/** Angle between two unit vectors, degrees (acos clamped; accurate to ~1e-6 deg near 0). */
export function angleBetweenDeg(a: Readonly<Vec3M>, b: Readonly<Vec3M>): number {
  // atan2(|a x b|, a . b): exact near 0, where acos loses digits.
  const cx = a.y * b.z - a.z * b.y, cy = a.z * b.x - a.x * b.z, cz = a.x * b.y - a.y * b.x;
  return Math.atan2(Math.hypot(cx, cy, cz), a.x * b.x + a.y * b.y + a.z * b.z) * RAD_TO_DEG;
}

/** One estimate/truth pair, all in the vehicle frame (x forward, y left, z up), metres. */
export interface RegistrationSampleInput {
  /** The marker's anchor from perception, vehicle frame at capture (on the road, z = 0). */
  estimateM: Readonly<Vec3M>;
  /** The true anchor at capture time, vehicle frame at capture. */
  truthAtCaptureM: Readonly<Vec3M>;
  /** The true anchor at display time, vehicle frame at display time. */
  truthAtDisplayM: Readonly<Vec3M>;
  /** Ego speed (m/s) and yaw rate (rad/s) the renderer compensates with. */
  egoSpeedMps: number;
  egoYawRateRps: number;
  /** Capture-to-display latency, s. */
  latencyS: number;
}

/** Angles of one sample, degrees; NaN for a part whose marker is not drawn. See the module comment. */
export interface RegistrationSample {
  totalDeg: number;
  totalNoCompDeg: number;
  windshieldDeg: number;
  perceptionDeg: number;
  latencyDeg: number;
  latencyNoCompDeg: number;
  /** Estimate (compensated / not) vs truth at display, ideal optics, no FOV limit. */
  idealDeg: number;
  idealNoCompDeg: number;
  /** The truth and both markers are in view (the sample counts in the headline statistics). */
  inView: boolean;
}

const _a: Vec3M = { x: 0, y: 0, z: 0 };
const _b: Vec3M = { x: 0, y: 0, z: 0 };
const _p: Vec3M = { x: 0, y: 0, z: 0 };
const _truthDir: Vec3M = { x: 0, y: 0, z: 0 };

/** The angles of one sample (see the module comment). */
export function registrationSample(registration: HudRegistration, input: Readonly<RegistrationSampleInput>): RegistrationSample {
  const { estimateM, truthAtCaptureM, truthAtDisplayM, egoSpeedMps, egoYawRateRps, latencyS } = input;
  const truthDir = registration.trueDirection(truthAtDisplayM, _truthDir);
  const compensated = compensateForLatency(estimateM, egoSpeedMps, egoYawRateRps, latencyS, { x: 0, y: 0, z: 0 });
  const marker = (pointM: Readonly<Vec3M>): number => (registration.markerDirection(pointM, _a) ? angleBetweenDeg(_a, truthDir) : NaN);
  const ideal = (pointM: Readonly<Vec3M>, truth: Readonly<Vec3M>): number => angleBetweenDeg(registration.trueDirection(pointM, _a), truth);
  const totalDeg = marker(compensated);
  const totalNoCompDeg = marker(estimateM);
  const windshieldDeg = marker(truthAtDisplayM);
  const truthCapturedDir = registration.trueDirection(truthAtCaptureM, _b);
  const perceptionDeg = ideal(estimateM, truthCapturedDir);
  const latencyDeg = ideal(compensateForLatency(truthAtCaptureM, egoSpeedMps, egoYawRateRps, latencyS, _p), truthDir);
  const latencyNoCompDeg = ideal(truthAtCaptureM, truthDir);
  return {
    totalDeg,
    totalNoCompDeg,
    windshieldDeg,
    perceptionDeg,
    latencyDeg,
    latencyNoCompDeg,
    idealDeg: ideal(compensated, truthDir),
    idealNoCompDeg: ideal(estimateM, truthDir),
    inView: Number.isFinite(totalDeg) && Number.isFinite(totalNoCompDeg) && Number.isFinite(windshieldDeg),
  };
}

/** Median and p90 of a set of angles. */
export interface AngleStats {
  samples: number;
  medianDeg: number;
  p90Deg: number;
}

/** The error budget over a set of samples. */
export interface RegistrationBreakdown {
  /** Marker (compensated) through the windshield vs truth at display. */
  total: AngleStats;
  /** Marker without latency compensation. */
  totalNoComp: AngleStats;
  /** Windshield and warp alone (marker placed from the true position). */
  windshield: AngleStats;
  /** Perception alone (estimate vs truth at capture, ideal optics). */
  perception: AngleStats;
  /** Latency alone: truth at capture, compensated / not, vs truth at display (ideal optics). */
  latency: AngleStats;
  latencyNoComp: AngleStats;
}

/** Per class and over both. */
export type ByClass<T> = Record<EvalClass | 'all', T>;

export interface RegistrationEvaluation {
  source: string;
  frames: number;
  precision: 'int8' | 'fp32';
  model: string;
  latencyMs: number;
  eyeM: Vec3M;
  /** How the windshield was modelled. */
  windshield: {
    /** Simulated HUD tolerance draw. */
    hudSeed: number;
    /** 'calibrated': warp map from simulated captures by calibrateWindshield; 'given': options.warpMap. */
    warp: 'calibrated' | 'given';
    /** Fit residual of the calibration (when calibrated), arcmin. */
    fitMedianArcmin: number | undefined;
    /** Closed-loop error of the warp map over the far region at the eye, arcmin. */
    closedLoopMedianArcmin: number;
    closedLoopMaxArcmin: number;
  };
  /** Matched (track, labelled object) pairs RANGE_MIN_M..RANGE_MAX_M away with a truth at display time. */
  matched: ByClass<number>;
  /** Markers the HUD draws (truth and both markers in the far plane's FOV). */
  inView: ByClass<RegistrationBreakdown>;
  /** Every matched pair, ideal optics, no FOV limit: estimate (compensated / not) vs truth at display, and the parts. */
  anyDirection: ByClass<{ total: AngleStats; totalNoComp: AngleStats; perception: AngleStats; latency: AngleStats; latencyNoComp: AngleStats }>;
  /** Matched pairs whose truth is in view but whose marker (with or without compensation) is not drawn. */
  markerNotDrawn: number;
  /** Latency residual (compensated / not) over every matched pair, for objects the labels call stationary and for moving ones. */
  latencyByMotion: Record<'stationary' | 'moving', { latency: AngleStats; latencyNoComp: AngleStats }>;
  /** Matched pairs dropped because the display time is past the drive's last frame or the object is not labelled then. */
  noTruthAtDisplay: number;
  /** |z| of the true anchors in the vehicle frame (road height vs the flat road the HUD assumes), m. */
  truthHeightMedianM: number;
  truthHeightP90M: number;
}

export interface RegistrationEvaluationOptions {
  /** PandaSet sequence directory or an imported .mcap recording. Default `<dataDir>/pandaset-002`. */
  source?: string;
  /** Model cache for the default detector. */
  cacheDir?: string;
  /** Detector precision; default 'int8'. */
  precision?: 'int8' | 'fp32';
  /** Capture-to-display latency, ms, >= 0. Default DEFAULT_REGISTRATION_LATENCY_MS. */
  latencyMs?: number;
  /** Tolerance draw of the simulated HUD (integer). Default DEFAULT_HUD_SEED. */
  hudSeed?: number;
  /** Far-plane warp map to use instead of calibrating one from simulated captures. */
  warpMap?: WarpMap;
  /** HUD optics. Default HUD_OPTICS_DEFAULTS. */
  opticsConfig?: HudOpticsConfig;
  onProgress?(done: number, total: number): void;
  signal?: AbortSignal;
}

/** The simulated HUD (default tolerances, `hudSeed`) and a warp map calibrated for it as `arhud calibrate simulate` + `calibrate windshield` make it. */
export async function calibratedSimulatedHud(options: { hudSeed?: number; opticsConfig?: HudOpticsConfig } = {}): Promise<{ simulator: HudOpticsSimulator; warpMap: WarpMap; fitMedianArcmin: number }> {
  const opticsConfig = options.opticsConfig ?? HUD_OPTICS_DEFAULTS;
  const simulator = new HudOpticsSimulator({ opticsConfig, seed: options.hudSeed ?? DEFAULT_HUD_SEED });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arhud-eval-registration-'));
  try {
    await simulateWindshieldCaptures(dir, { simulator, seed: DEFAULT_CAPTURE_SEED });
    const result = await calibrateWindshield(dir, { opticsConfig });
    if (result.status !== 'accepted') throw new Error(`calibratedSimulatedHud: the windshield calibration was rejected: ${result.reason ?? 'no reason given'}`);
    return { simulator, warpMap: result.warpMap, fitMedianArcmin: result.fitMedianArcmin };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One matched pair kept from the tracking loop (tracks are reused by the tracker, so copied). */
interface MatchedPair {
  frameIndex: number;
  evalClass: EvalClass;
  estimateM: Vec3M;
  objectId: string;
  /** The label says the object does not move. */
  stationary: boolean;
  /** The anchor in the object's own frame: along its length, across it, and below its centre, m. */
  anchorLocalM: Vec3M;
  egoSpeedMps: number;
  egoYawRateRps: number;
}

/** Runs the detector and tracker over a labelled drive and measures registration; see the module comment. */
export async function evaluateRegistration(dataDir: string, options: RegistrationEvaluationOptions = {}): Promise<RegistrationEvaluation> {
  const latencyMs = options.latencyMs ?? DEFAULT_REGISTRATION_LATENCY_MS;
  if (typeof latencyMs !== 'number' || !Number.isFinite(latencyMs) || latencyMs < 0) {
    throw new RangeError(`evaluateRegistration: option 'latencyMs' must be a finite number >= 0, got ${String(latencyMs)}`);
  }
  const hudSeed = options.hudSeed ?? DEFAULT_HUD_SEED;
  if (!Number.isInteger(hudSeed)) throw new RangeError(`evaluateRegistration: option 'hudSeed' must be an integer, got ${String(hudSeed)}`);
  const source = options.source ?? path.join(dataDir, DEFAULT_SEQUENCE);
  if (!existsSync(source)) throw new Error(`evaluateRegistration: source '${source}' does not exist (expected a PandaSet sequence directory or an .mcap recording)`);
  const opticsConfig = options.opticsConfig ?? HUD_OPTICS_DEFAULTS;

  let simulator: HudOpticsSimulator;
  let warpMap: WarpMap;
  let fitMedianArcmin: number | undefined;
  if (options.warpMap !== undefined) {
    simulator = new HudOpticsSimulator({ opticsConfig, seed: hudSeed });
    warpMap = options.warpMap;
  } else {
    ({ simulator, warpMap, fitMedianArcmin } = await calibratedSimulatedHud({ hudSeed, opticsConfig }));
  }
  const optics = new HudOptics(opticsConfig);
  const registration = new HudRegistration({ optics, view: simulator, warpMap });
  const closedLoop = evaluateWarpMap(simulator, warpMap, simulator.plane, [registration.eyeM], EVALUATION_SAMPLES_U, EVALUATION_SAMPLES_V);

  const pairs: MatchedPair[] = [];
  let frames: readonly DriveFrame[] = [];
  let vehicleFrames: PandasetVehicleFrames | undefined;
  const tracking = await evaluateTracking(dataDir, {
    source,
    ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
    ...(options.precision !== undefined ? { precision: options.precision } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    onTrackedFrame: (f) => {
      frames = f.frames;
      vehicleFrames = f.vehicleFrames;
      collectPairs(f, pairs);
    },
  });

  const latencyNs = BigInt(Math.round(latencyMs * 1e6));
  const samples: { evalClass: EvalClass; stationary: boolean; sample: RegistrationSample }[] = [];
  const heights: number[] = [];
  let noTruthAtDisplay = 0;
  for (const pair of pairs) {
    const at = truthAtDisplay(frames, vehicleFrames!, pair, frames[pair.frameIndex]!.tNs + latencyNs);
    if (at === undefined) {
      noTruthAtDisplay++;
      continue;
    }
    heights.push(Math.abs(at.atCaptureM.z));
    const sample = registrationSample(registration, {
      estimateM: pair.estimateM,
      truthAtCaptureM: at.atCaptureM,
      truthAtDisplayM: at.atDisplayM,
      egoSpeedMps: pair.egoSpeedMps,
      egoYawRateRps: pair.egoYawRateRps,
      latencyS: latencyMs / 1000,
    });
    samples.push({ evalClass: pair.evalClass, stationary: pair.stationary, sample });
  }

  const byClass = <T>(fn: (selected: RegistrationSample[]) => T): ByClass<T> => ({
    all: fn(samples.map((s) => s.sample)),
    vehicle: fn(samples.filter((s) => s.evalClass === 'vehicle').map((s) => s.sample)),
    person: fn(samples.filter((s) => s.evalClass === 'person').map((s) => s.sample)),
  });
  const stats = (values: readonly number[]): AngleStats => ({ samples: values.length, medianDeg: quantile(values, 0.5), p90Deg: quantile(values, 0.9) });
  const of = (selected: RegistrationSample[], key: keyof Omit<RegistrationSample, 'inView'>): AngleStats => stats(selected.map((s) => s[key]).filter(Number.isFinite));
  const latencyOf = (selected: RegistrationSample[]) => ({ latency: of(selected, 'latencyDeg'), latencyNoComp: of(selected, 'latencyNoCompDeg') });
  return {
    source,
    frames: tracking.frames,
    precision: tracking.precision,
    model: tracking.model,
    latencyMs,
    eyeM: { ...registration.eyeM },
    windshield: { hudSeed, warp: options.warpMap !== undefined ? 'given' : 'calibrated', fitMedianArcmin, closedLoopMedianArcmin: closedLoop.medianArcmin, closedLoopMaxArcmin: closedLoop.maxArcmin },
    matched: byClass((s) => s.length),
    inView: byClass((all) => {
      const s = all.filter((x) => x.inView);
      return { total: of(s, 'totalDeg'), totalNoComp: of(s, 'totalNoCompDeg'), windshield: of(s, 'windshieldDeg'), perception: of(s, 'perceptionDeg'), latency: of(s, 'latencyDeg'), latencyNoComp: of(s, 'latencyNoCompDeg') };
    }),
    anyDirection: byClass((s) => ({ total: of(s, 'idealDeg'), totalNoComp: of(s, 'idealNoCompDeg'), perception: of(s, 'perceptionDeg'), latency: of(s, 'latencyDeg'), latencyNoComp: of(s, 'latencyNoCompDeg') })),
    markerNotDrawn: samples.filter((s) => Number.isFinite(s.sample.windshieldDeg) && !s.sample.inView).length,
    latencyByMotion: {
      stationary: latencyOf(samples.filter((s) => s.stationary).map((s) => s.sample)),
      moving: latencyOf(samples.filter((s) => !s.stationary).map((s) => s.sample)),
    },
    noTruthAtDisplay,
    truthHeightMedianM: quantile(heights, 0.5),
    truthHeightP90M: quantile(heights, 0.9),
  };
}

/** Matches the frame's marker-bearing tracks to visible labelled objects in range and keeps the pairs. */
function collectPairs(f: TrackedFrame, out: MatchedPair[]): void {
  const frame = f.frames[f.frameIndex]!;
  for (const evalClass of EVAL_CLASSES) {
    // What gets a HUD marker: confirmed or coasting, with a ground position and a HUD class (adasObjectOf).
    const estimates = f.tracks.filter((t) => t.state !== 'tentative' && t.positionM !== undefined && t.hudClass !== undefined && evalClassOfDetectorClass(t.className) === evalClass);
    const truths = f.projected.map((p, j) => ({ p, j })).filter(({ p }) => p.visible && p.evalClass === evalClass && p.box !== undefined);
    if (truths.length === 0 || estimates.length === 0) continue;
    const cost = new Float64Array(truths.length * estimates.length);
    truths.forEach(({ p }, r) => estimates.forEach((e, c) => (cost[r * estimates.length + c] = 1 - boxIou(p.box as Box, e.box))));
    const rowToCol = new Int32Array(truths.length);
    solveAssignment(cost, truths.length, estimates.length, 1 - MOT_IOU_THRESHOLD, rowToCol, new Int32Array(estimates.length));
    rowToCol.forEach((c, r) => {
      if (c < 0) return;
      const object = frame.objects[truths[r]!.j]!;
      const centre = f.vehicleFrames.vehiclePointFromWorld(f.frameIndex, object.positionM, { x: 0, y: 0, z: 0 });
      const rangeM = Math.hypot(centre.x, centre.y);
      if (rangeM < RANGE_MIN_M || rangeM > RANGE_MAX_M) return;
      // The marker's anchor: the centre estimate moved back along its bearing to the ground contact (atGroundContact).
      const { x, y } = estimates[c]!.positionM!;
      const estimateRangeM = Math.hypot(x, y);
      const offsetM = f.centreOffsetM[evalClass];
      const scale = estimateRangeM > offsetM ? (estimateRangeM - offsetM) / estimateRangeM : 0;
      const origin = f.vehicleFrames.vehiclePoseInWorld(f.frameIndex).positionM;
      out.push({
        frameIndex: f.frameIndex,
        evalClass,
        estimateM: { x: x * scale, y: y * scale, z: 0 },
        objectId: object.id,
        stationary: object.stationary,
        anchorLocalM: nearFaceAnchorLocal(object, origin),
        egoSpeedMps: f.egoSpeedMps,
        egoYawRateRps: f.egoYawRateRps,
      });
    });
  }
}

/**
 * The cuboid's ground contact as seen from `viewerM` (world): where the line from the viewer to the
 * centre enters the footprint, at the bottom; in the object's frame (x along its length, y across,
 * z up from the centre). The centre's footprint point when the viewer stands inside the footprint.
 */
export function nearFaceAnchorLocal(object: Readonly<GroundTruthObject>, viewerM: Readonly<Vec3M>): Vec3M {
  const c = Math.cos(object.yawRad), s = Math.sin(object.yawRad);
  const wx = viewerM.x - object.positionM.x, wy = viewerM.y - object.positionM.y;
  // Viewer in the object's frame; the ray goes from there to the origin (the centre).
  const ox = c * wx + s * wy, oy = -s * wx + c * wy;
  const hx = object.lengthM / 2, hy = object.widthM / 2;
  const below = -object.heightM / 2;
  if (Math.abs(ox) <= hx && Math.abs(oy) <= hy) return { x: 0, y: 0, z: below };
  // Slab entry parameter along p(t) = o (1 - t), t in [0, 1]: the largest of the per-axis entries.
  let t = 0;
  if (Math.abs(ox) > hx) t = Math.max(t, 1 - hx / Math.abs(ox));
  if (Math.abs(oy) > hy) t = Math.max(t, 1 - hy / Math.abs(oy));
  return { x: ox * (1 - t), y: oy * (1 - t), z: below };
}

/** World point of an object-frame offset for a cuboid pose. */
function worldOfLocal(centre: Readonly<Vec3M>, yawRad: number, local: Readonly<Vec3M>): Vec3M {
  const c = Math.cos(yawRad), s = Math.sin(yawRad);
  return { x: centre.x + c * local.x - s * local.y, y: centre.y + s * local.x + c * local.y, z: centre.z + local.z };
}

/**
 * The pair's true anchor at capture (vehicle frame at capture) and at `displayNs` (cuboid pose and
 * vehicle frame interpolated between the bracketing labelled frames); undefined past the drive's end
 * or when the object is not labelled in a bracketing frame.
 */
function truthAtDisplay(frames: readonly DriveFrame[], vehicleFrames: PandasetVehicleFrames, pair: MatchedPair, displayNs: bigint): { atCaptureM: Vec3M; atDisplayM: Vec3M } | undefined {
  const k = pair.frameIndex;
  const objectAt = (j: number) => frames[j]?.objects.find((o) => o.id === pair.objectId);
  const captured = objectAt(k)!;
  const atCaptureM = vehicleFrames.vehiclePointFromWorld(k, worldOfLocal(captured.positionM, captured.yawRad, pair.anchorLocalM), { x: 0, y: 0, z: 0 });
  let j = k;
  while (j + 1 < frames.length && frames[j + 1]!.tNs <= displayNs) j++;
  const t0 = frames[j]!.tNs;
  if (displayNs === t0) {
    const o = objectAt(j);
    if (o === undefined) return undefined;
    return { atCaptureM, atDisplayM: vehicleFrames.vehiclePointFromWorld(j, worldOfLocal(o.positionM, o.yawRad, pair.anchorLocalM), { x: 0, y: 0, z: 0 }) };
  }
  if (j + 1 >= frames.length) return undefined;
  const a = Number(displayNs - t0) / Number(frames[j + 1]!.tNs - t0);
  const o0 = objectAt(j), o1 = objectAt(j + 1);
  if (o0 === undefined || o1 === undefined) return undefined;
  const lerp = (p: number, q: number) => p + a * (q - p);
  let dYaw = o1.yawRad - o0.yawRad;
  dYaw = Math.atan2(Math.sin(dYaw), Math.cos(dYaw));
  const centre = { x: lerp(o0.positionM.x, o1.positionM.x), y: lerp(o0.positionM.y, o1.positionM.y), z: lerp(o0.positionM.z, o1.positionM.z) };
  const world = worldOfLocal(centre, o0.yawRad + a * dYaw, pair.anchorLocalM);
  // The vehicle frame between two frames: the point in both, blended (second order in the yaw change: mm here).
  const p0 = vehicleFrames.vehiclePointFromWorld(j, world, { x: 0, y: 0, z: 0 });
  const p1 = vehicleFrames.vehiclePointFromWorld(j + 1, world, { x: 0, y: 0, z: 0 });
  return { atCaptureM, atDisplayM: { x: lerp(p0.x, p1.x), y: lerp(p0.y, p1.y), z: lerp(p0.z, p1.z) } };
}

/** The one-line JSON object of `arhud eval registration --json` (NaN becomes null). */
export function registrationEvaluationJson(e: RegistrationEvaluation): Record<string, unknown> {
  const a = e.inView.all;
  const statsJson = (s: AngleStats) => ({ samples: s.samples, medianDeg: finiteOrNull(s.medianDeg), p90Deg: finiteOrNull(s.p90Deg) });
  const breakdownJson = <T extends { [K in keyof T]: AngleStats }>(b: T) => Object.fromEntries(Object.entries(b).map(([k, s]) => [k, statsJson(s as AngleStats)]));
  return {
    frames: e.frames,
    precision: e.precision,
    latencyMs: e.latencyMs,
    regMedianDeg: finiteOrNull(a.total.medianDeg),
    regP90Deg: finiteOrNull(a.total.p90Deg),
    regMedianDegNoComp: finiteOrNull(a.totalNoComp.medianDeg),
    regP90DegNoComp: finiteOrNull(a.totalNoComp.p90Deg),
    samples: a.total.samples,
    regAllMedianDeg: finiteOrNull(e.anyDirection.all.total.medianDeg),
    regAllP90Deg: finiteOrNull(e.anyDirection.all.total.p90Deg),
    regAllMedianDegNoComp: finiteOrNull(e.anyDirection.all.totalNoComp.medianDeg),
    regAllP90DegNoComp: finiteOrNull(e.anyDirection.all.totalNoComp.p90Deg),
    samplesAll: e.anyDirection.all.total.samples,
    windshieldMedianDeg: finiteOrNull(a.windshield.medianDeg),
    windshieldP90Deg: finiteOrNull(a.windshield.p90Deg),
    perceptionMedianDeg: finiteOrNull(a.perception.medianDeg),
    perceptionP90Deg: finiteOrNull(a.perception.p90Deg),
    latencyMedianDeg: finiteOrNull(a.latency.medianDeg),
    latencyMedianDegNoComp: finiteOrNull(a.latencyNoComp.medianDeg),
    matched: e.matched,
    noTruthAtDisplay: e.noTruthAtDisplay,
    markerNotDrawn: e.markerNotDrawn,
    latencyByMotion: { stationary: breakdownJson(e.latencyByMotion.stationary), moving: breakdownJson(e.latencyByMotion.moving) },
    rangeWindowM: [RANGE_MIN_M, RANGE_MAX_M],
    inView: { all: breakdownJson(e.inView.all), vehicle: breakdownJson(e.inView.vehicle), person: breakdownJson(e.inView.person) },
    anyDirection: { all: breakdownJson(e.anyDirection.all), vehicle: breakdownJson(e.anyDirection.vehicle), person: breakdownJson(e.anyDirection.person) },
    windshield: { ...e.windshield, fitMedianArcmin: finiteOrNull(e.windshield.fitMedianArcmin) },
    truthHeightMedianM: finiteOrNull(e.truthHeightMedianM),
    eyeM: e.eyeM,
    targets: REGISTRATION_TARGETS,
    met: registrationTargetsMet(e),
  };
}

/** Which issue #9 registration targets the evaluation meets (over drawn markers, with compensation). */
export function registrationTargetsMet(e: RegistrationEvaluation): { medianDeg: boolean; p90Deg: boolean } {
  const t = e.inView.all.total;
  return { medianDeg: t.medianDeg <= REGISTRATION_TARGETS.medianDeg, p90Deg: t.p90Deg <= REGISTRATION_TARGETS.p90Deg };
}

const num = (value: number | undefined, digits: number, unit = ''): string => (value !== undefined && Number.isFinite(value) ? `${value.toFixed(digits)}${unit}` : '-');

/** Text report for the CLI: the error budget per class, drawn markers and every matched object. */
export function formatRegistrationEvaluation(e: RegistrationEvaluation): string {
  const met = registrationTargetsMet(e);
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const s = (x: AngleStats) => `${num(x.medianDeg, 3)}/${num(x.p90Deg, 3)}`;
  const classes = ['all', 'vehicle', 'person'] as const;
  const w = e.windshield;
  return [
    `registration: ${e.frames} frames of ${e.source}, detector ${e.model}, latency ${e.latencyMs} ms, eye (${e.eyeM.x.toFixed(2)}, ${e.eyeM.y.toFixed(2)}, ${e.eyeM.z.toFixed(2)}) m`,
    `windshield: simulated HUD (tolerance draw ${w.hudSeed}), warp map ${w.warp === 'calibrated' ? `calibrated from simulated captures (fit median ${num(w.fitMedianArcmin, 3)} arcmin)` : 'given'}; closed loop at the eye: median ${num(w.closedLoopMedianArcmin, 3)} max ${num(w.closedLoopMaxArcmin, 3)} arcmin`,
    `markers the HUD draws (truth and markers in the far plane's FOV), objects ${RANGE_MIN_M}-${RANGE_MAX_M} m, degrees median/p90:`,
    ...classes.map((c) => {
      const b = e.inView[c];
      return `  ${c.padEnd(7)} n ${String(b.total.samples).padStart(4)}  total ${s(b.total)}  no compensation ${s(b.totalNoComp)} | windshield ${num(60 * b.windshield.medianDeg, 3)}/${num(60 * b.windshield.p90Deg, 3)} arcmin  perception ${s(b.perception)}  latency ${s(b.latency)} (uncompensated ${s(b.latencyNoComp)})`;
    }),
    `every matched object ${RANGE_MIN_M}-${RANGE_MAX_M} m, ideal optics, no FOV limit, degrees median/p90:`,
    ...classes.map((c) => {
      const b = e.anyDirection[c];
      return `  ${c.padEnd(7)} n ${String(b.total.samples).padStart(4)}  total ${s(b.total)}  no compensation ${s(b.totalNoComp)} | perception ${s(b.perception)}  latency ${s(b.latency)} (uncompensated ${s(b.latencyNoComp)})`;
    }),
    `latency residual over every matched object, compensated/uncompensated median: stationary ${num(e.latencyByMotion.stationary.latency.medianDeg, 3)}/${num(e.latencyByMotion.stationary.latencyNoComp.medianDeg, 3)} deg (n ${e.latencyByMotion.stationary.latency.samples}), ` +
      `moving ${num(e.latencyByMotion.moving.latency.medianDeg, 3)}/${num(e.latencyByMotion.moving.latencyNoComp.medianDeg, 3)} deg (n ${e.latencyByMotion.moving.latency.samples}) (the renderer compensates ego motion only)`,
    `matched pairs ${e.matched.all} (vehicles ${e.matched.vehicle}, persons ${e.matched.person}); without a labelled truth at display time ${e.noTruthAtDisplay}; truth in view but marker not drawn (estimate outside the FOV) ${e.markerNotDrawn}; true anchors' height off the flat road |z| median ${num(e.truthHeightMedianM, 3, ' m')} p90 ${num(e.truthHeightP90M, 3, ' m')}`,
    'issue #9 targets (drawn markers, with latency compensation):',
    `  registration median <= ${REGISTRATION_TARGETS.medianDeg} deg: ${mark(met.medianDeg)}; p90 <= ${REGISTRATION_TARGETS.p90Deg} deg: ${mark(met.p90Deg)}`,
  ].join('\n');
}
