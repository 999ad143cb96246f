/**
 * ADAS decisions from the world model: time to collision and forward-collision warning levels,
 * pedestrian and cyclist warnings inside the predicted path corridor, lane-departure warning from
 * lateral offset and rate, lead-vehicle selection for ACC — each with hysteresis so a warning does
 * not flicker when its measure hovers at a threshold.
 *
 * Frames and units: vehicle frame ISO 8855 (x forward, y left, z up, metres, origin at the rear
 * axle on the ground); velocities are of the object relative to the ego vehicle, in that frame.
 */
import type { HudObjectClass, WarningLevel } from '../../render/hud-scene.js';

/** Forward-collision thresholds on time to collision, seconds (Euro NCAP-like staging). */
export const FCW_CAUTION_TTC_S = 4.0;
export const FCW_WARNING_TTC_S = 2.6;
export const FCW_CRITICAL_TTC_S = 1.6;
/** A level is released only once TTC is this factor above its threshold (hysteresis)... */
export const RELEASE_TTC_FACTOR = 1.2;
/** ...and has stayed there this long, seconds; a single noisy frame never ends a warning. */
export const RELEASE_HOLD_S = 0.6;
/** A non-critical level needs its condition on this many consecutive updates before it shows. */
export const RAISE_CONFIRM_UPDATES = 2;
/** Objects closing slower than this are not on a collision course, m/s. */
export const MIN_CLOSING_SPEED_MPS = 0.5;
/**
 * An object counts as closing only when its closing speed is above MIN_CLOSING_SPEED_MPS by this many
 * standard deviations of its velocity estimate, and as moving across the path only by what its
 * lateral speed exceeds that many deviations: a young track, or one whose range is noisy, has not
 * yet shown that it closes in, and a warning on it would be a false alarm (the tracker starts every
 * track with a ~10 m/s velocity uncertainty).
 */
export const CLOSING_CONFIDENCE_SIGMAS = 1;
/** Half width of the ego vehicle, m, plus the corridor margin on each side, m. */
export const EGO_HALF_WIDTH_M = 0.95;
export const CORRIDOR_MARGIN_M = 0.4;
/** Vulnerable road users get a wider margin (they move unpredictably), m. */
export const VRU_CORRIDOR_MARGIN_M = 0.9;
/** Path prediction horizon for crossing objects, s. */
export const PATH_HORIZON_S = 4.0;
/** Below this speed the ego path is straight ahead (yaw rate / speed is meaningless), m/s. */
export const MIN_PATH_SPEED_MPS = 2;
/** Lane-departure warning: active above this speed (as production LDW), m/s (55 km/h). */
export const LDW_MIN_SPEED_MPS = 55 / 3.6;
/** Warn when the wheel would cross the boundary within this time, s. */
export const LDW_TIME_TO_CROSS_S = 0.8;
/** Lane boundaries below this confidence are not trusted for LDW. */
export const LDW_MIN_CONFIDENCE = 0.5;
/** ACC lead: farthest gap considered, m. */
export const ACC_MAX_GAP_M = 120;

/** A tracked object as ADAS sees it. */
export interface AdasObject {
  trackId: string;
  objectClass: HudObjectClass;
  /** Nearest point of the object's footprint (bottom centre of its box), vehicle frame. */
  positionM: { x: number; y: number };
  /** Velocity relative to the ego vehicle, vehicle frame. */
  relativeVelocityMps: { x: number; y: number };
  widthM: number;
  /** Lateral extent (y of its left and right edges), vehicle frame, m, where known (labelled boxes); absent: positionM.y +- widthM / 2. */
  lateralExtentM?: { leftM: number; rightM: number };
  /** 1-sigma error of relativeVelocityMps, m/s; absent: taken as exact. */
  velocitySigmaMps?: number;
}

/** The ego lane as ADAS needs it. */
export interface AdasLane {
  /** Ego lane centre relative to the vehicle at x = 0 (positive: centre is left of the vehicle), m. */
  lateralOffsetM: number;
  laneWidthM: number;
  leftConfidence: number;
  rightConfidence: number;
}

export interface AdasInput {
  tNs: bigint;
  egoSpeedMps: number;
  egoYawRateRps: number;
  objects: readonly AdasObject[];
  lane?: AdasLane;
}

/** Per-object assessment. */
export interface ObjectAssessment {
  trackId: string;
  warning: WarningLevel;
  /** Time to collision when closing inside the corridor, s. */
  ttcS?: number;
  inPath: boolean;
}

export interface AdasOutput {
  tNs: bigint;
  objects: ObjectAssessment[];
  /** The forward-collision warning (worst object in the path), if any. */
  forwardCollision?: { level: Exclude<WarningLevel, 'none'>; ttcS: number; trackId: string };
  laneDeparture?: { side: 'left' | 'right' };
  accLead?: { trackId: string; gapM: number };
}

const LEVELS: readonly WarningLevel[] = ['none', 'caution', 'warning', 'critical'];
/** Severity order of warning levels: 'none' 0 ... 'critical' 3. */
export const warningRank = (level: WarningLevel): number => LEVELS.indexOf(level);
const VULNERABLE: ReadonlySet<HudObjectClass> = new Set(['person', 'bicycle', 'motorcycle']);

/** The warning level a TTC calls for (no hysteresis). */
export function levelForTtc(ttcS: number | undefined): WarningLevel {
  if (ttcS === undefined || !(ttcS >= 0)) return 'none';
  if (ttcS < FCW_CRITICAL_TTC_S) return 'critical';
  if (ttcS < FCW_WARNING_TTC_S) return 'warning';
  if (ttcS < FCW_CAUTION_TTC_S) return 'caution';
  return 'none';
}

const THRESHOLD_OF: Record<WarningLevel, number> = { none: Infinity, caution: FCW_CAUTION_TTC_S, warning: FCW_WARNING_TTC_S, critical: FCW_CRITICAL_TTC_S };

/** Lateral position of the predicted ego path at distance x (constant-curvature arc), m. */
export function pathLateralM(xM: number, egoSpeedMps: number, egoYawRateRps: number): number {
  if (egoSpeedMps < MIN_PATH_SPEED_MPS) return 0;
  const curvaturePerM = egoYawRateRps / egoSpeedMps;
  return 0.5 * curvaturePerM * xM * xM;
}

/**
 * Time until the object reaches the ego vehicle's front, and whether it is inside the path corridor
 * then: the object moves with its relative velocity, the corridor follows the predicted path.
 */
export function assessCollision(object: AdasObject, egoSpeedMps: number, egoYawRateRps: number): { ttcS?: number; inPath: boolean } {
  const { x } = object.positionM;
  const closingMps = -object.relativeVelocityMps.x;
  const margin = VULNERABLE.has(object.objectClass) ? VRU_CORRIDOR_MARGIN_M : CORRIDOR_MARGIN_M;
  const halfCorridorM = EGO_HALF_WIDTH_M + margin;
  const nowInPath = x > 0 && lateralClearanceM(object, 0, pathLateralM(x, egoSpeedMps, egoYawRateRps), halfCorridorM) <= 0;
  const closingSigmaMps = Number.isFinite(object.velocitySigmaMps) ? object.velocitySigmaMps! : 0;
  if (!(x > 0) || closingMps - CLOSING_CONFIDENCE_SIGMAS * closingSigmaMps < MIN_CLOSING_SPEED_MPS) return { inPath: nowInPath };
  const ttcS = x / closingMps;
  if (ttcS > PATH_HORIZON_S * 2) return { inPath: nowInPath };
  // Where it will be laterally when it reaches us (a crossing pedestrian walks into the corridor),
  // moving only as fast across as its estimate shows beyond doubt: lateral velocity noise on a
  // parked car beside the path would otherwise sweep it into the corridor.
  const vy = object.relativeVelocityMps.y;
  const confidentVyMps = Math.sign(vy) * Math.max(0, Math.abs(vy) - CLOSING_CONFIDENCE_SIGMAS * closingSigmaMps);
  const inPathAtContact = lateralClearanceM(object, confidentVyMps * Math.min(ttcS, PATH_HORIZON_S), pathLateralM(0, egoSpeedMps, egoYawRateRps), halfCorridorM) <= 0;
  const inPath = nowInPath || inPathAtContact;
  return inPath ? { ttcS, inPath } : { inPath };
}

/**
 * Gap between the object (its lateral extent moved by `shiftM`) and a corridor of half width
 * `halfCorridorM` centred on `pathYM`, m; zero or negative when they overlap.
 */
function lateralClearanceM(object: AdasObject, shiftM: number, pathYM: number, halfCorridorM: number): number {
  const extent = object.lateralExtentM;
  const leftM = (extent ? extent.leftM : object.positionM.y + object.widthM / 2) + shiftM;
  const rightM = (extent ? extent.rightM : object.positionM.y - object.widthM / 2) + shiftM;
  return Math.max(rightM - (pathYM + halfCorridorM), pathYM - halfCorridorM - leftM);
}

/** Hysteresis on a warning level: raise after confirmation (critical at once), release slowly. */
class LevelFilter {
  level: WarningLevel = 'none';
  #raiseCount = 0;
  #raiseTarget: WarningLevel = 'none';
  #releaseSinceNs: bigint | undefined;

  update(tNs: bigint, wanted: WarningLevel, ttcS: number | undefined): WarningLevel {
    if (warningRank(wanted) > warningRank(this.level)) {
      this.#releaseSinceNs = undefined;
      this.#raiseCount = wanted === this.#raiseTarget ? this.#raiseCount + 1 : 1;
      this.#raiseTarget = wanted;
      if (wanted === 'critical' || this.#raiseCount >= RAISE_CONFIRM_UPDATES) this.level = wanted;
      return this.level;
    }
    this.#raiseCount = 0;
    this.#raiseTarget = 'none';
    if (warningRank(wanted) === warningRank(this.level)) {
      this.#releaseSinceNs = undefined;
      return this.level;
    }
    // wanted < current: release only once clearly past the threshold, for long enough.
    const clear = ttcS === undefined || ttcS > THRESHOLD_OF[this.level] * RELEASE_TTC_FACTOR;
    if (!clear) {
      this.#releaseSinceNs = undefined;
      return this.level;
    }
    this.#releaseSinceNs ??= tNs;
    if (Number(tNs - this.#releaseSinceNs) / 1e9 >= RELEASE_HOLD_S) {
      this.level = wanted;
      this.#releaseSinceNs = undefined;
    }
    return this.level;
  }
}

/** Lane departure with the same release hold. */
class DepartureFilter {
  side: 'left' | 'right' | undefined;
  #clearSinceNs: bigint | undefined;

  update(tNs: bigint, wanted: 'left' | 'right' | undefined): 'left' | 'right' | undefined {
    if (wanted !== undefined) {
      this.side = wanted;
      this.#clearSinceNs = undefined;
    } else if (this.side !== undefined) {
      this.#clearSinceNs ??= tNs;
      if (Number(tNs - this.#clearSinceNs) / 1e9 >= RELEASE_HOLD_S) {
        this.side = undefined;
        this.#clearSinceNs = undefined;
      }
    }
    return this.side;
  }
}

/** The ADAS decision state over a drive: call `update` once per perception cycle, in time order. */
export class AdasEngine {
  readonly #objectFilters = new Map<string, LevelFilter>();
  readonly #departure = new DepartureFilter();
  #lastOffset: { tNs: bigint; offsetM: number } | undefined;
  #lastTNs: bigint | undefined;
  /** Updates refused because time went backwards. */
  rejectedUpdates = 0;

  update(input: AdasInput): AdasOutput | undefined {
    if (this.#lastTNs !== undefined && input.tNs < this.#lastTNs) {
      this.rejectedUpdates++;
      return undefined;
    }
    this.#lastTNs = input.tNs;
    const speed = Number.isFinite(input.egoSpeedMps) ? Math.max(0, input.egoSpeedMps) : 0;
    const yawRate = Number.isFinite(input.egoYawRateRps) ? input.egoYawRateRps : 0;
    const seen = new Set<string>();
    const objects: ObjectAssessment[] = [];
    let worst: AdasOutput['forwardCollision'];
    let lead: AdasOutput['accLead'];
    for (const object of input.objects) {
      if (!Number.isFinite(object.positionM.x) || !Number.isFinite(object.positionM.y)) continue;
      seen.add(object.trackId);
      const { ttcS, inPath } = assessCollision(object, speed, yawRate);
      let filter = this.#objectFilters.get(object.trackId);
      if (!filter) this.#objectFilters.set(object.trackId, (filter = new LevelFilter()));
      const warning = filter.update(input.tNs, levelForTtc(ttcS), ttcS);
      objects.push(ttcS === undefined ? { trackId: object.trackId, warning, inPath } : { trackId: object.trackId, warning, ttcS, inPath });
      if (warning !== 'none' && (!worst || warningRank(warning) > warningRank(worst.level) || (warning === worst.level && (ttcS ?? Infinity) < worst.ttcS))) {
        worst = { level: warning, ttcS: ttcS ?? THRESHOLD_OF[warning], trackId: object.trackId };
      }
      const vehicle = !VULNERABLE.has(object.objectClass);
      // A lead overlaps the width the ego vehicle sweeps along its path.
      const inLane = object.positionM.x > 0 && lateralClearanceM(object, 0, pathLateralM(object.positionM.x, speed, yawRate), EGO_HALF_WIDTH_M) <= 0;
      if (vehicle && inLane && object.positionM.x <= ACC_MAX_GAP_M && (!lead || object.positionM.x < lead.gapM)) lead = { trackId: object.trackId, gapM: object.positionM.x };
    }
    for (const id of this.#objectFilters.keys()) if (!seen.has(id)) this.#objectFilters.delete(id);
    const laneDeparture = this.#departure.update(input.tNs, this.#departureSide(input, speed));
    const out: AdasOutput = { tNs: input.tNs, objects };
    if (worst) out.forwardCollision = worst;
    if (laneDeparture) out.laneDeparture = { side: laneDeparture };
    if (lead) out.accLead = lead;
    return out;
  }

  /** Which boundary the vehicle is about to cross (time to line crossing), if any. */
  #departureSide(input: AdasInput, speedMps: number): 'left' | 'right' | undefined {
    const lane = input.lane;
    if (!lane || !Number.isFinite(lane.lateralOffsetM) || !(lane.laneWidthM > 0)) {
      this.#lastOffset = undefined;
      return undefined;
    }
    const previous = this.#lastOffset;
    this.#lastOffset = { tNs: input.tNs, offsetM: lane.lateralOffsetM };
    if (speedMps < LDW_MIN_SPEED_MPS || !previous) return undefined;
    const dtS = Number(input.tNs - previous.tNs) / 1e9;
    if (!(dtS > 0)) return undefined;
    // The lane centre moves left (offset grows) when the vehicle drifts right.
    const driftRightMps = (lane.lateralOffsetM - previous.offsetM) / dtS;
    const vehicleYInLaneM = -lane.lateralOffsetM; // vehicle relative to the lane centre, left positive
    const toLeftM = lane.laneWidthM / 2 - EGO_HALF_WIDTH_M - vehicleYInLaneM;
    const toRightM = lane.laneWidthM / 2 - EGO_HALF_WIDTH_M + vehicleYInLaneM;
    if (lane.leftConfidence >= LDW_MIN_CONFIDENCE && driftRightMps < 0 && toLeftM / -driftRightMps < LDW_TIME_TO_CROSS_S) return 'left';
    if (lane.rightConfidence >= LDW_MIN_CONFIDENCE && driftRightMps > 0 && toRightM / driftRightMps < LDW_TIME_TO_CROSS_S) return 'right';
    return undefined;
  }
}
