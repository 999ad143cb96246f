/**
 * Forward-collision warnings checked against ground truth: the same ADAS engine runs twice over a
 * labelled drive — once on the tracker's objects (what the HUD shows), once on the labelled cuboids
 * the camera can see (nearest footprint edge, velocity differenced between frames) — and the two
 * warning levels are compared frame by frame. A warning the labels do not call for is a false alarm;
 * a labelled warning or critical situation without any warning is a miss.
 *
 * Both runs use the same vehicle frame, ego speed and yaw rate, so only perception (detection, ground
 * contact, tracking) separates them.
 */
import type { GroundTruthObject } from '../../pipeline/index.js';
import type { HudObjectClass, WarningLevel } from '../../render/hud-scene.js';
import { AdasEngine, warningRank, type AdasObject, type AdasOutput } from '../adas/index.js';
import type { EvalClass, ProjectedObject } from '../detect/ground-truth.js';
import { quantile } from './stats.js';

/** The HUD class a labelled object of an evaluation class is assessed as. */
const TRUTH_CLASS: Readonly<Record<EvalClass, HudObjectClass>> = { vehicle: 'car', person: 'person' };

export interface FcwEvaluation {
  frames: number;
  /** Frames where the labels call for a forward-collision warning of any level. */
  truthWarningFrames: number;
  /** Frames where the tracker's objects raised one. */
  warningFrames: number;
  /** Frames with a warning the labels do not call for. */
  falseAlarmFrames: number;
  /** Frames where the labels call for 'warning' or 'critical' and nothing was raised. */
  missedFrames: number;
  /** Frames where both levels are the same. */
  sameLevelFrames: number;
  /** Per level: frames [truth, estimate]. */
  levelFrames: Record<WarningLevel, [number, number]>;
  /** ACC lead gap: |estimated - labelled| in frames where both have a lead, m. */
  leadGapErrMedianM: number;
  leadGapErrP90M: number;
  /** Frames where both chose a lead. */
  leadFrames: number;
}

/** Labelled object positions of the previous frame, for differencing velocities. */
interface PreviousTruth {
  tNs: bigint;
  centres: Map<string, { x: number; y: number }>;
}

/**
 * The labelled objects the camera can see, as ADAS objects in the vehicle frame. `toVehicle` maps a
 * world point into the vehicle frame of this frame. Relative velocity is the change of the centre in
 * the (moving) vehicle frame since `previous`; objects new in this frame are taken as not moving
 * relative to the ego vehicle (no warning on a first sighting, as the tracker does).
 */
export function truthAdasObjects(
  objects: readonly GroundTruthObject[],
  projected: readonly ProjectedObject[],
  toVehicle: (pointM: { x: number; y: number; z: number }) => { x: number; y: number; z: number },
  tNs: bigint,
  previous: PreviousTruth | undefined,
): { objects: AdasObject[]; state: PreviousTruth } {
  const centres = new Map<string, { x: number; y: number }>();
  const out: AdasObject[] = [];
  const dtS = previous === undefined ? 0 : Number(tNs - previous.tNs) / 1e9;
  objects.forEach((object, j) => {
    const p = projected[j]!;
    if (!p.visible || p.evalClass === undefined) return;
    const centre = toVehicle(object.positionM);
    centres.set(object.id, { x: centre.x, y: centre.y });
    // Nearest footprint edge along x: the gap ADAS measures to the box's bottom.
    let nearestXM = Infinity;
    let leftM = -Infinity;
    let rightM = Infinity;
    const c = Math.cos(object.yawRad);
    const s = Math.sin(object.yawRad);
    for (const [u, v] of [[1, 1], [1, -1], [-1, 1], [-1, -1]] as const) {
      const dx = (u * object.lengthM) / 2;
      const dy = (v * object.widthM) / 2;
      const corner = toVehicle({ x: object.positionM.x + c * dx - s * dy, y: object.positionM.y + s * dx + c * dy, z: object.positionM.z });
      nearestXM = Math.min(nearestXM, corner.x);
      leftM = Math.max(leftM, corner.y);
      rightM = Math.min(rightM, corner.y);
    }
    const before = previous?.centres.get(object.id);
    const velocity = before && dtS > 0 ? { x: (centre.x - before.x) / dtS, y: (centre.y - before.y) / dtS } : { x: 0, y: 0 };
    out.push({ trackId: object.id, objectClass: TRUTH_CLASS[p.evalClass], positionM: { x: nearestXM, y: centre.y }, relativeVelocityMps: velocity, widthM: object.widthM, lateralExtentM: { leftM, rightM } });
  });
  return { objects: out, state: { tNs, centres } };
}

/**
 * `object` with its position moved `centreOffsetM` back towards the vehicle origin along its
 * bearing: from a box centre estimate (as the tracking evaluation tracks them, `groundContact` with a
 * centre offset) to the box's ground contact (as the world stage tracks them, and ADAS expects).
 */
export function atGroundContact(object: AdasObject, centreOffsetM: number): AdasObject {
  const { x, y } = object.positionM;
  const rangeM = Math.hypot(x, y);
  const scale = rangeM > centreOffsetM ? (rangeM - centreOffsetM) / rangeM : 0;
  return { ...object, positionM: { x: x * scale, y: y * scale } };
}

/** Runs ADAS on both sides of a drive, frame by frame, and counts where they differ. */
export class FcwComparison {
  readonly #truthEngine = new AdasEngine();
  readonly #engine = new AdasEngine();
  #previous: PreviousTruth | undefined;
  #frames = 0;
  #truthWarningFrames = 0;
  #warningFrames = 0;
  #falseAlarmFrames = 0;
  #missedFrames = 0;
  #sameLevelFrames = 0;
  readonly #levelFrames: Record<WarningLevel, [number, number]> = { none: [0, 0], caution: [0, 0], warning: [0, 0], critical: [0, 0] };
  readonly #leadGapErrM: number[] = [];

  /** One frame: the tracker's objects and the labels with their projection; returns both decisions. */
  add(
    input: { tNs: bigint; egoSpeedMps: number; egoYawRateRps: number },
    estimated: readonly AdasObject[],
    truth: { objects: readonly GroundTruthObject[]; projected: readonly ProjectedObject[]; toVehicle: (pointM: { x: number; y: number; z: number }) => { x: number; y: number; z: number } },
  ): { truth: AdasOutput; estimate: AdasOutput } | undefined {
    const labelled = truthAdasObjects(truth.objects, truth.projected, truth.toVehicle, input.tNs, this.#previous);
    this.#previous = labelled.state;
    const truthOut = this.#truthEngine.update({ ...input, objects: labelled.objects });
    const estimateOut = this.#engine.update({ ...input, objects: estimated });
    if (!truthOut || !estimateOut) return undefined;
    const truthLevel = truthOut.forwardCollision?.level ?? 'none';
    const level = estimateOut.forwardCollision?.level ?? 'none';
    this.#frames++;
    this.#levelFrames[truthLevel][0]++;
    this.#levelFrames[level][1]++;
    if (truthLevel !== 'none') this.#truthWarningFrames++;
    if (level !== 'none') this.#warningFrames++;
    if (level !== 'none' && truthLevel === 'none') this.#falseAlarmFrames++;
    if (level === 'none' && warningRank(truthLevel) >= warningRank('warning')) this.#missedFrames++;
    if (level === truthLevel) this.#sameLevelFrames++;
    if (truthOut.accLead && estimateOut.accLead) this.#leadGapErrM.push(Math.abs(estimateOut.accLead.gapM - truthOut.accLead.gapM));
    return { truth: truthOut, estimate: estimateOut };
  }

  result(): FcwEvaluation {
    return {
      frames: this.#frames,
      truthWarningFrames: this.#truthWarningFrames,
      warningFrames: this.#warningFrames,
      falseAlarmFrames: this.#falseAlarmFrames,
      missedFrames: this.#missedFrames,
      sameLevelFrames: this.#sameLevelFrames,
      levelFrames: structuredClone(this.#levelFrames),
      leadGapErrMedianM: quantile(this.#leadGapErrM, 0.5),
      leadGapErrP90M: quantile(this.#leadGapErrM, 0.9),
      leadFrames: this.#leadGapErrM.length,
    };
  }
}
