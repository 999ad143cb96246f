/**
 * Multi-object tracker, ByteTrack style (Zhang et al. 2022): every detector run is associated in
 * stages by IoU of Kalman-predicted boxes, with an optimal assignment per stage:
 *   1. confirmed and coasting tracks  x  high-score detections (score >= highScore), IoU >= matchIouHigh;
 *   2. confirmed tracks left over     x  low-score detections (lowScore <= score < highScore), IoU >= matchIouLow:
 *      a weak box keeps a known object alive (occlusion, blur) but never starts a track;
 *   3. tentative tracks               x  high-score detections left over, IoU >= matchIouTentative.
 * High-score detections still unmatched with score >= newTrackScore start tentative tracks, which
 * are confirmed after `confirmHits` hits and dropped at their first miss. A confirmed track that
 * misses coasts on its prediction (size frozen) and dies once more than `maxCoastS` has passed since
 * its last hit; it is returned only for the first `outputCoastS` of that (kept, but not shown, for
 * re-association after an occlusion). Ids count up from 1 and are never reused.
 *
 * Each track carries a `BoxKalman` (image box) and, once a detection brings a ground position
 * (`TrackInput.positionM`, vehicle frame: x forward, y left, metres), a `GroundKalman` that is
 * carried through the vehicle's own motion (`egoDelta`). Where both a track and a detection have a
 * ground position, a pair whose Mahalanobis distance exceeds WORLD_GATE_CHI2 is not matched
 * (objects at different depths that overlap in the image keep their ids when they cross).
 *
 * Bad input never throws out of `update`: a frame whose time does not increase is rejected whole;
 * a detection with a non-finite or inverted box or a score outside [0, 1] is dropped; a bad ground
 * position or ego delta is ignored (the box / frame is still used). Each is counted in
 * `stats.rejections` by reason and reported to `onRejection` with a message naming the field.
 *
 * Per-frame work allocates nothing in steady state: tracks, filters and the returned array are
 * reused, cost matrices and index lists live in grown typed arrays. The returned tracks and their
 * boxes belong to the tracker and are valid until the next `update` / `coast`.
 */
import { HUD_CLASSES, hudClassOf, type Box, type Detection, type HudClass } from '../detect/types.js';
import type { VehiclePoseDelta } from '../../render/optics.js';
import { boxIou, solveAssignment } from './assignment.js';
import { BoxKalman, GroundKalman } from './kalman.js';

/** ByteTrack `track_thresh`: detections at or above this score are "high" (stage 1, may start tracks). */
export const HIGH_SCORE = 0.5;
/** ByteTrack's low cut: detections below this are ignored entirely (not even stage 2). */
export const LOW_SCORE = 0.1;
/** ByteTrack `det_thresh` = track_thresh + 0.1: a new track needs a clearly confident box. */
export const NEW_TRACK_SCORE = 0.6;
/** Stage 1 least IoU: ByteTrack `match_thresh` 0.8 on cost 1 - IoU (loose, prediction may lag). */
export const MATCH_IOU_HIGH = 0.2;
/** Stage 2 least IoU: ByteTrack's 0.5 cost limit for low-score boxes (stricter: they are often clutter). */
export const MATCH_IOU_LOW = 0.5;
/** Stage 3 least IoU for tentative tracks: ByteTrack's 0.7 cost limit for unconfirmed tracks. */
export const MATCH_IOU_TENTATIVE = 0.3;
/** Hits to confirm a track: ByteTrack activates a track at its second detection. */
export const CONFIRM_HITS = 2;
/**
 * Keep a track this long without a hit, seconds, so it can take its object back after an occlusion
 * (ByteTrack keeps lost tracks 30 frames). On the PandaSet drive 2 s has half the id switches of 1 s;
 * the long memory costs no false boxes because coasting tracks are returned only up to OUTPUT_COAST_S.
 */
export const MAX_COAST_S = 2.0;
/**
 * Return a coasting track only this long after its last hit, seconds: bridges up to three missed
 * detector runs at 10 Hz; longer, the predicted box drifts off the object (ByteTrack returns no lost
 * tracks at all). PandaSet, simulated detector: MOTA 0.92 at 0.25-0.35 s, 0.82 at 0, 0.78 unlimited.
 */
export const OUTPUT_COAST_S = 0.3;
/**
 * World gate: chi-square 99 % quantile with 2 degrees of freedom. A track-detection pair whose
 * ground positions are further apart (Mahalanobis) is not matched.
 */
export const WORLD_GATE_CHI2 = 9.21;

/**
 * Score thresholds for a given detector. ByteTrack's thresholds are relations, not absolutes: its
 * `track_thresh` is the detector's own confident-detection threshold (0.5-0.6 for YOLOX, whose
 * scores are objectness x class), `det_thresh` for a new track is 0.1 above it, and everything down
 * to 0.1 feeds the second stage. Scores of other detectors mean other things (a CenterNet heat-map
 * peak of 0.4 is a confident car), so the tracker takes its high threshold from the detector's model
 * card (`scoreThreshold`, the level the detector is shown at) and keeps ByteTrack's relations. The
 * detector must then report boxes down to `lowScore`.
 */
export function trackerOptionsForDetector(detectorScoreThreshold: number): Pick<TrackerOptions, 'highScore' | 'newTrackScore' | 'lowScore'> {
  if (!(detectorScoreThreshold > 0 && detectorScoreThreshold < 1)) {
    throw new RangeError(`trackerOptionsForDetector: 'detectorScoreThreshold' must be in (0, 1), got ${detectorScoreThreshold}`);
  }
  return {
    highScore: detectorScoreThreshold,
    newTrackScore: Math.min(1, detectorScoreThreshold + (NEW_TRACK_SCORE - HIGH_SCORE)),
    lowScore: Math.min(LOW_SCORE, detectorScoreThreshold / 2),
  };
}

/** Why an input (or part of it) was not used. */
export type TrackRejectionReason =
  | 'time-not-increasing'
  | 'time-invalid'
  | 'inputs-invalid'
  | 'box-not-finite'
  | 'box-inverted'
  | 'score-invalid'
  | 'position-invalid'
  | 'ego-delta-invalid';

export const TRACK_REJECTION_REASONS: readonly TrackRejectionReason[] = [
  'time-not-increasing',
  'time-invalid',
  'inputs-invalid',
  'box-not-finite',
  'box-inverted',
  'score-invalid',
  'position-invalid',
  'ego-delta-invalid',
];

export interface TrackRejection {
  reason: TrackRejectionReason;
  /** Where and what, e.g. `MultiObjectTracker.update: inputs[2].detection.box must be ..., got [...]`. */
  message: string;
  /** Index into `inputs` for a per-detection rejection. */
  index?: number;
}

export interface TrackerOptions {
  /** Default HIGH_SCORE. */
  highScore?: number;
  /** Default LOW_SCORE. */
  lowScore?: number;
  /** Default NEW_TRACK_SCORE (at least highScore). */
  newTrackScore?: number;
  /** Default MATCH_IOU_HIGH. */
  matchIouHigh?: number;
  /** Default MATCH_IOU_LOW. */
  matchIouLow?: number;
  /** Default MATCH_IOU_TENTATIVE. */
  matchIouTentative?: number;
  /** Hits (detector runs with a match, birth included) to confirm. Default CONFIRM_HITS. */
  confirmHits?: number;
  /** Longest coast before death, seconds. Default MAX_COAST_S. */
  maxCoastS?: number;
  /** Longest coast for which a track is still returned, seconds (Infinity: all live tracks). Default OUTPUT_COAST_S. */
  outputCoastS?: number;
  /** 'hud-class': a track only takes detections of its HUD class (className when neither has one). Default 'hud-class'. */
  classGating?: 'hud-class' | 'none';
  /** Gate pairs by ground position when both have one. Default true. */
  worldGating?: boolean;
  /** Also return tentative tracks. Default false. */
  outputTentative?: boolean;
  /** Called for each rejection (after it is counted). Must not throw. */
  onRejection?: (rejection: TrackRejection) => void;
}

export interface TrackInput {
  detection: Detection;
  /** Ground contact point in the vehicle frame (x forward, y left), metres. */
  positionM?: { x: number; y: number };
  /** Std of `positionM` along the ray from the vehicle origin, metres; required with positionM. */
  rangeSigmaM?: number;
  /** Std of `positionM` across that ray, metres; required with positionM. */
  lateralSigmaM?: number;
}

export type TrackState = 'tentative' | 'confirmed' | 'coasting';

export interface Track {
  /** Stable id, counting up from 1, never reused. */
  readonly id: number;
  hudClass: HudClass | undefined;
  className: string;
  state: TrackState;
  /** Kalman-filtered box [x1, y1, x2, y2], source-image pixels (the prediction while coasting). */
  box: Box;
  /** Score of the last matched detection. */
  score: number;
  /** update / coast calls since birth, birth included. */
  ageFrames: number;
  /** Matched detections, birth included. */
  hits: number;
  /** Seconds since the last matched detection. */
  timeSinceUpdateS: number;
  /** Filtered ground position, vehicle frame (x forward, y left), metres; once any detection brought one. */
  positionM?: { x: number; y: number };
  /** Velocity over ground in the vehicle frame, m/s; with positionM. */
  velocityMps?: { x: number; y: number };
  /** 1-sigma radius of positionM (larger axis of its covariance), metres; with positionM. */
  positionSigmaM?: number;
  /** 1-sigma error of velocityMps (larger axis of its covariance), m/s; with positionM. */
  velocitySigmaMps?: number;
}

export interface TrackerStats {
  framesAccepted: number;
  framesRejected: number;
  detectionsRejected: number;
  /** Ground positions or ego deltas ignored (their detection or frame was still used). */
  measurementsRejected: number;
  tracksBorn: number;
  tracksConfirmed: number;
  /** Confirmed tracks that died (coasted past maxCoastS). */
  tracksDied: number;
  /** Tentative tracks dropped before confirmation. */
  tentativeDropped: number;
  /** Per reason. */
  rejections: Record<TrackRejectionReason, number>;
}

/** Internal record: the public track plus its filters. */
interface TrackRecord {
  track: Track;
  boxKf: BoxKalman;
  groundKf: GroundKalman;
  hasGround: boolean;
  lastHitNs: bigint;
  /** Matched in the current detector run. */
  matched: boolean;
}

type Settings = Required<Omit<TrackerOptions, 'onRejection'>> & Pick<TrackerOptions, 'onRejection'>;

const DEFAULTS: Required<Omit<TrackerOptions, 'onRejection'>> = {
  highScore: HIGH_SCORE,
  lowScore: LOW_SCORE,
  newTrackScore: NEW_TRACK_SCORE,
  matchIouHigh: MATCH_IOU_HIGH,
  matchIouLow: MATCH_IOU_LOW,
  matchIouTentative: MATCH_IOU_TENTATIVE,
  confirmHits: CONFIRM_HITS,
  maxCoastS: MAX_COAST_S,
  outputCoastS: OUTPUT_COAST_S,
  classGating: 'hud-class',
  worldGating: true,
  outputTentative: false,
};

const NS_PER_S = 1e9;

/** Kind of each input this frame: dropped (rejected), high, low, or below lowScore (3, ignored). */
const KIND_DROPPED = 0;
const KIND_HIGH = 1;
const KIND_LOW = 2;
/** Association stages. */
const STAGE_HIGH = 1;
const STAGE_LOW = 2;
const STAGE_TENTATIVE = 3;

export class MultiObjectTracker {
  readonly #settings: Settings;
  readonly #stats: TrackerStats;
  readonly #records: TrackRecord[] = [];
  readonly #output: Track[] = [];
  #nextId = 1;
  #lastNs: bigint | undefined;

  // Per-frame scratch, grown on demand.
  #kind = new Uint8Array(64);
  #positionOk = new Uint8Array(64);
  /** Per input: index into HUD_CLASSES, -1 for none. */
  #hudClassIndex = new Int8Array(64);
  #detectionUsed = new Uint8Array(64);
  #rowRecords: TrackRecord[] = [];
  #colIndex = new Int32Array(64);
  #cost = new Float64Array(1024);
  #rowToCol = new Int32Array(64);
  #colToRow = new Int32Array(64);

  /**
   * Forgets every track (the time line restarted). Ids keep counting, so an id never names two
   * different objects in one run.
   */
  reset(): void {
    this.#records.length = 0;
    this.#output.length = 0;
    this.#lastNs = undefined;
  }

  constructor(options: TrackerOptions = {}) {
    this.#settings = resolveOptions(options);
    const rejections = {} as Record<TrackRejectionReason, number>;
    for (const reason of TRACK_REJECTION_REASONS) rejections[reason] = 0;
    this.#stats = {
      framesAccepted: 0,
      framesRejected: 0,
      detectionsRejected: 0,
      measurementsRejected: 0,
      tracksBorn: 0,
      tracksConfirmed: 0,
      tracksDied: 0,
      tentativeDropped: 0,
      rejections,
    };
  }

  /** Counters since construction (live object, updated in place). */
  get stats(): Readonly<TrackerStats> {
    return this.#stats;
  }

  /** The options in effect, defaults filled in. */
  get options(): Readonly<Required<Omit<TrackerOptions, 'onRejection'>>> {
    return this.#settings;
  }

  /**
   * One detector run at `tNs` (capture time, strictly increasing) with its detections; an empty
   * `inputs` means the detector ran and found nothing (tentative tracks drop, confirmed ones coast).
   * `egoDelta`: the vehicle's motion since the previous call. Returns the live tracks (confirmed, and
   * coasting up to `outputCoastS`; tentative too with `outputTentative`), in birth order.
   */
  update(tNs: bigint, inputs: readonly TrackInput[], egoDelta?: Readonly<VehiclePoseDelta>): readonly Track[] {
    if (!Array.isArray(inputs)) {
      this.#reject('inputs-invalid', `MultiObjectTracker.update: inputs must be an array, got ${typeof inputs}`);
      this.#stats.framesRejected++;
      return this.#collect();
    }
    if (!this.#advance('update', tNs, egoDelta)) return this.#collect();
    this.#associate(tNs, inputs);
    return this.#collect();
  }

  /**
   * Advances to `tNs` without a detector run (the camera frame between two runs): every track is
   * predicted, nothing counts as a miss; tracks past maxCoastS die. Returns the live tracks.
   */
  coast(tNs: bigint, egoDelta?: Readonly<VehiclePoseDelta>): readonly Track[] {
    if (this.#advance('coast', tNs, egoDelta)) this.#removeExpired(tNs);
    return this.#collect();
  }

  /** Checks time, predicts every track to `tNs`. False when the frame is rejected. */
  #advance(method: string, tNs: bigint, egoDelta: Readonly<VehiclePoseDelta> | undefined): boolean {
    if (typeof tNs !== 'bigint') {
      this.#reject('time-invalid', `MultiObjectTracker.${method}: tNs must be a bigint (nanoseconds), got ${typeof tNs}`);
      this.#stats.framesRejected++;
      return false;
    }
    if (this.#lastNs !== undefined && tNs <= this.#lastNs) {
      this.#reject('time-not-increasing', `MultiObjectTracker.${method}: tNs must be after the previous frame's ${this.#lastNs}, got ${tNs}`);
      this.#stats.framesRejected++;
      return false;
    }
    let ego = egoDelta;
    if (ego !== undefined && !(ego !== null && Number.isFinite(ego.dxM) && Number.isFinite(ego.dyM) && Number.isFinite(ego.dYawRad))) {
      this.#reject('ego-delta-invalid', `MultiObjectTracker.${method}: egoDelta must have finite dxM, dyM, dYawRad, got ${describeEgo(ego)}; predicting without ego motion`);
      this.#stats.measurementsRejected++;
      ego = undefined;
    }
    const dtS = this.#lastNs === undefined ? 0 : Number(tNs - this.#lastNs) / NS_PER_S;
    this.#lastNs = tNs;
    this.#stats.framesAccepted++;
    for (const record of this.#records) {
      record.boxKf.predict(dtS);
      if (record.hasGround) record.groundKf.predict(dtS, ego);
      record.track.ageFrames++;
      record.matched = false;
    }
    return true;
  }

  #associate(tNs: bigint, inputs: readonly TrackInput[]): void {
    const settings = this.#settings;
    const n = inputs.length;
    if (this.#kind.length < n) {
      this.#kind = new Uint8Array(2 * n);
      this.#positionOk = new Uint8Array(2 * n);
      this.#detectionUsed = new Uint8Array(2 * n);
      this.#hudClassIndex = new Int8Array(2 * n);
    }
    for (let i = 0; i < n; i++) {
      this.#kind[i] = this.#classify(inputs[i], i);
      this.#detectionUsed[i] = 0;
    }
    // Tracks past their coasting time cannot take a detection any more.
    this.#removeExpired(tNs);

    // Stage 1: confirmed + coasting x high.
    this.#stage(inputs, tNs, STAGE_HIGH, KIND_HIGH, settings.matchIouHigh);
    // Stage 2: confirmed tracks (not those already coasting before this run) left over x low.
    this.#stage(inputs, tNs, STAGE_LOW, KIND_LOW, settings.matchIouLow);
    // Stage 3: tentative x high left over.
    this.#stage(inputs, tNs, STAGE_TENTATIVE, KIND_HIGH, settings.matchIouTentative);

    // Misses: tentative tracks drop, confirmed ones coast.
    const records = this.#records;
    let kept = 0;
    for (let k = 0; k < records.length; k++) {
      const record = records[k]!;
      if (!record.matched) {
        if (record.track.state === 'tentative') {
          this.#stats.tentativeDropped++;
          continue;
        }
        if (record.track.state === 'confirmed') {
          record.track.state = 'coasting';
          record.boxKf.freezeSize();
        }
      }
      records[kept++] = record;
    }
    records.length = kept;

    // Births.
    for (let i = 0; i < n; i++) {
      if (this.#kind[i] !== KIND_HIGH || this.#detectionUsed[i]) continue;
      const input = inputs[i]!;
      if (input.detection.score < settings.newTrackScore) continue;
      this.#birth(input, i, tNs);
    }
  }

  /** Validates input i; returns its kind, counting rejections. */
  #classify(input: TrackInput | undefined, i: number): number {
    const where = `MultiObjectTracker.update: inputs[${i}]`;
    const detection = input?.detection;
    const box = detection?.box;
    if (!detection || !Array.isArray(box) || box.length !== 4 || !(Number.isFinite(box[0]) && Number.isFinite(box[1]) && Number.isFinite(box[2]) && Number.isFinite(box[3]))) {
      this.#rejectDetection('box-not-finite', `${where}.detection.box must be 4 finite numbers [x1, y1, x2, y2], got ${describeBox(box)}`, i);
      return KIND_DROPPED;
    }
    if (!(box[2] > box[0] && box[3] > box[1])) {
      this.#rejectDetection('box-inverted', `${where}.detection.box must have x2 > x1 and y2 > y1, got [${box.join(', ')}]`, i);
      return KIND_DROPPED;
    }
    const score = detection.score;
    if (!(typeof score === 'number' && score >= 0 && score <= 1)) {
      this.#rejectDetection('score-invalid', `${where}.detection.score must be a number in [0, 1], got ${String(score)}`, i);
      return KIND_DROPPED;
    }
    this.#positionOk[i] = 0;
    const position = input!.positionM;
    if (position !== undefined) {
      const { rangeSigmaM, lateralSigmaM } = input!;
      if (position !== null && Number.isFinite(position.x) && Number.isFinite(position.y) && isPositiveFinite(rangeSigmaM) && isPositiveFinite(lateralSigmaM)) {
        this.#positionOk[i] = 1;
      } else {
        this.#reject(
          'position-invalid',
          `${where}: positionM must be finite with rangeSigmaM and lateralSigmaM finite and > 0, got positionM=${position === null ? 'null' : `(${position.x}, ${position.y})`} rangeSigmaM=${rangeSigmaM} lateralSigmaM=${lateralSigmaM}; using the box only`,
          i,
        );
        this.#stats.measurementsRejected++;
      }
    }
    const hudClass = detection.hudClass ?? hudClassOf(detection.className);
    this.#hudClassIndex[i] = hudClass === undefined ? -1 : HUD_CLASSES.indexOf(hudClass);
    if (score >= this.#settings.highScore) return KIND_HIGH;
    if (score >= this.#settings.lowScore) return KIND_LOW;
    return 3;
  }

  /** One association stage: unmatched tracks eligible for `stage` x unused detections of `kind`, least IoU `minIou`. */
  #stage(inputs: readonly TrackInput[], tNs: bigint, stage: number, kind: number, minIou: number): void {
    const rows = this.#rowRecords;
    rows.length = 0;
    for (const record of this.#records) {
      if (record.matched) continue;
      const state = record.track.state;
      const eligible = stage === STAGE_HIGH ? state !== 'tentative' : stage === STAGE_LOW ? state === 'confirmed' : state === 'tentative';
      if (eligible) rows.push(record);
    }
    let cols = 0;
    if (this.#colIndex.length < inputs.length) this.#colIndex = new Int32Array(2 * inputs.length);
    for (let i = 0; i < inputs.length; i++) if (this.#kind[i] === kind && !this.#detectionUsed[i]) this.#colIndex[cols++] = i;
    if (rows.length === 0 || cols === 0) return;

    const size = rows.length * cols;
    if (this.#cost.length < size) this.#cost = new Float64Array(2 * size);
    if (this.#rowToCol.length < rows.length) this.#rowToCol = new Int32Array(2 * rows.length);
    if (this.#colToRow.length < cols) this.#colToRow = new Int32Array(2 * cols);
    const cost = this.#cost;
    const settings = this.#settings;
    const maxCost = 1 - minIou;
    for (let r = 0; r < rows.length; r++) {
      const record = rows[r]!;
      const track = record.track;
      for (let c = 0; c < cols; c++) {
        const index = this.#colIndex[c]!;
        const input = inputs[index]!;
        const detection = input.detection;
        let value = 1 - boxIou(track.box, detection.box);
        // Gates only matter for pairs the IoU allows (most pairs do not overlap at all).
        if (value > maxCost) value = Infinity;
        else if (settings.classGating === 'hud-class' && !this.#sameClass(track, index, detection)) value = Infinity;
        else if (settings.worldGating && record.hasGround && this.#positionOk[index]) {
          if (record.groundKf.distance2(input.positionM!, input.rangeSigmaM!, input.lateralSigmaM!) > WORLD_GATE_CHI2) value = Infinity;
        }
        cost[r * cols + c] = value;
      }
    }
    solveAssignment(cost, rows.length, cols, maxCost, this.#rowToCol, this.#colToRow);
    for (let r = 0; r < rows.length; r++) {
      const c = this.#rowToCol[r]!;
      if (c < 0) continue;
      const index = this.#colIndex[c]!;
      this.#detectionUsed[index] = 1;
      this.#hit(rows[r]!, inputs[index]!, index, tNs);
    }
    rows.length = 0;
  }

  #hit(record: TrackRecord, input: TrackInput, index: number, tNs: bigint): void {
    const track = record.track;
    const detection = input.detection;
    record.matched = true;
    record.lastHitNs = tNs;
    record.boxKf.update(detection.box, detection.score);
    record.boxKf.box(track.box);
    if (this.#positionOk[index]) {
      if (record.hasGround) record.groundKf.update(input.positionM!, input.rangeSigmaM!, input.lateralSigmaM!);
      else {
        record.groundKf.initiate(input.positionM!, input.rangeSigmaM!, input.lateralSigmaM!);
        record.hasGround = true;
      }
    }
    track.score = detection.score;
    track.className = detection.className;
    track.hudClass = HUD_CLASSES[this.#hudClassIndex[index]!];
    track.hits++;
    track.timeSinceUpdateS = 0;
    if (track.state === 'coasting') track.state = 'confirmed';
    else if (track.state === 'tentative' && track.hits >= this.#settings.confirmHits) {
      track.state = 'confirmed';
      this.#stats.tracksConfirmed++;
    }
  }

  #birth(input: TrackInput, index: number, tNs: bigint): void {
    const detection = input.detection;
    const track: Track = {
      id: this.#nextId++,
      hudClass: HUD_CLASSES[this.#hudClassIndex[index]!],
      className: detection.className,
      state: 'tentative',
      box: [0, 0, 0, 0],
      score: detection.score,
      ageFrames: 1,
      hits: 1,
      timeSinceUpdateS: 0,
    };
    const record: TrackRecord = { track, boxKf: new BoxKalman().initiate(detection.box), groundKf: new GroundKalman(), hasGround: false, lastHitNs: tNs, matched: true };
    record.boxKf.box(track.box);
    if (this.#positionOk[index]) {
      record.groundKf.initiate(input.positionM!, input.rangeSigmaM!, input.lateralSigmaM!);
      record.hasGround = true;
    }
    this.#stats.tracksBorn++;
    if (track.hits >= this.#settings.confirmHits) {
      track.state = 'confirmed';
      this.#stats.tracksConfirmed++;
    }
    this.#records.push(record);
  }

  /** Drops tracks whose last hit is more than maxCoastS before `tNs`; refreshes timeSinceUpdateS and boxes. */
  #removeExpired(tNs: bigint): void {
    const records = this.#records;
    const maxCoastS = this.#settings.maxCoastS;
    let kept = 0;
    for (let k = 0; k < records.length; k++) {
      const record = records[k]!;
      const sinceS = Number(tNs - record.lastHitNs) / NS_PER_S;
      if (sinceS > maxCoastS) {
        if (record.track.state === 'tentative') this.#stats.tentativeDropped++;
        else this.#stats.tracksDied++;
        continue;
      }
      record.track.timeSinceUpdateS = sinceS;
      record.boxKf.box(record.track.box);
      records[kept++] = record;
    }
    records.length = kept;
  }

  /** Refreshes the public fields and fills the reused output array. */
  #collect(): readonly Track[] {
    const output = this.#output;
    output.length = 0;
    const withTentative = this.#settings.outputTentative;
    const outputCoastS = this.#settings.outputCoastS;
    for (const record of this.#records) {
      const track = record.track;
      if (record.hasGround) {
        const s = record.groundKf.state;
        const position = (track.positionM ??= { x: 0, y: 0 });
        position.x = s[0]!;
        position.y = s[1]!;
        const velocity = (track.velocityMps ??= { x: 0, y: 0 });
        velocity.x = s[2]!;
        velocity.y = s[3]!;
        track.positionSigmaM = record.groundKf.positionSigmaM();
        track.velocitySigmaMps = record.groundKf.velocitySigmaMps();
      }
      if (track.state === 'tentative' ? withTentative : track.state === 'confirmed' || track.timeSinceUpdateS <= outputCoastS) output.push(track);
    }
    return output;
  }

  /** Class gate: same HUD class, or the same className when neither has one. */
  #sameClass(track: Track, index: number, detection: Detection): boolean {
    const hudClass = HUD_CLASSES[this.#hudClassIndex[index]!];
    if (track.hudClass !== undefined || hudClass !== undefined) return track.hudClass === hudClass;
    return track.className === detection.className;
  }

  #rejectDetection(reason: TrackRejectionReason, message: string, index: number): void {
    this.#stats.detectionsRejected++;
    this.#reject(reason, message, index);
  }

  #reject(reason: TrackRejectionReason, message: string, index?: number): void {
    this.#stats.rejections[reason]++;
    const onRejection = this.#settings.onRejection;
    if (onRejection) {
      try {
        onRejection(index === undefined ? { reason, message } : { reason, message, index });
      } catch {
        // A failing observer must not break tracking (never throw out of update).
      }
    }
  }
}

function resolveOptions(options: TrackerOptions): Settings {
  const settings = { ...DEFAULTS } as Settings;
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    if (options[key] !== undefined) Object.assign(settings, { [key]: options[key] });
  }
  if (options.onRejection !== undefined) settings.onRejection = options.onRejection;
  const fraction = (name: keyof typeof DEFAULTS) => {
    const value = settings[name];
    if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`MultiObjectTracker: option '${name}' must be a number, got ${String(value)}`);
    if (!(value >= 0 && value <= 1)) throw new RangeError(`MultiObjectTracker: option '${name}' must be in [0, 1], got ${value}`);
  };
  for (const name of ['highScore', 'lowScore', 'newTrackScore', 'matchIouHigh', 'matchIouLow', 'matchIouTentative'] as const) fraction(name);
  if (settings.lowScore > settings.highScore) throw new RangeError(`MultiObjectTracker: option 'lowScore' must be <= highScore (${settings.highScore}), got ${settings.lowScore}`);
  if (settings.newTrackScore < settings.highScore) throw new RangeError(`MultiObjectTracker: option 'newTrackScore' must be >= highScore (${settings.highScore}), got ${settings.newTrackScore}`);
  if (!(Number.isInteger(settings.confirmHits) && settings.confirmHits >= 1)) throw new RangeError(`MultiObjectTracker: option 'confirmHits' must be an integer >= 1, got ${settings.confirmHits}`);
  if (!(settings.maxCoastS >= 0 && Number.isFinite(settings.maxCoastS))) throw new RangeError(`MultiObjectTracker: option 'maxCoastS' must be a finite number >= 0, got ${settings.maxCoastS}`);
  if (!(settings.outputCoastS >= 0)) throw new RangeError(`MultiObjectTracker: option 'outputCoastS' must be a number >= 0 (Infinity allowed), got ${settings.outputCoastS}`);
  if (settings.classGating !== 'hud-class' && settings.classGating !== 'none') throw new RangeError(`MultiObjectTracker: option 'classGating' must be 'hud-class' or 'none', got '${String(settings.classGating)}'`);
  return settings;
}


function isPositiveFinite(value: number | undefined): boolean {
  return typeof value === 'number' && value > 0 && Number.isFinite(value);
}

function describeBox(box: unknown): string {
  return Array.isArray(box) ? `[${box.map(String).join(', ')}]` : String(box);
}

function describeEgo(ego: Readonly<VehiclePoseDelta>): string {
  return ego === null ? 'null' : `{ dxM: ${ego.dxM}, dyM: ${ego.dyM}, dYawRad: ${ego.dYawRad} }`;
}
