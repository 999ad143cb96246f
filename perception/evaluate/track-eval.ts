/**
 * Tracking and 3D position evaluation on a PandaSet drive (issue #7): the default detector runs on
 * every camera frame, each box is put on the road by `groundContact` with the camera's fitted
 * mounting, the tracker runs with ego-motion from the recorded poses, and the result is compared
 * with the labelled cuboids:
 * - MOT (CLEAR-MOT and IDF1) per evaluation class, with the detection evaluation's visibility rule
 *   (`motFrameOf`: visible objects count, other boxed objects of the class are ignored);
 * - position: every returned track with a ground position that overlaps a visible labelled object
 *   (IoU >= MOT_IOU_THRESHOLD, optimal one-to-one assignment per frame) is compared with that
 *   cuboid's CENTRE in the vehicle frame, for objects RANGE_MIN_M..RANGE_MAX_M away:
 *   |range error| / range, and the lateral error across the line of sight (metres). The same is
 *   reported for the raw per-frame ground contacts of the detector's boxes, so tracker smoothing and
 *   detector box quality can be told apart.
 *
 * The detector runs inside the detection evaluation itself (`evaluateDetectors`, wrapped so each
 * frame's boxes also feed the tracker): one decode per frame, the same frames, and the AP@0.5 of the
 * very detections tracked comes for free.
 *
 * Frames: world (dataset, z up), vehicle (ISO 8855: x forward, y left, z up, origin on the road under
 * the camera; see perception/world/pandaset-mounting.ts), image (u right, v down, pixels).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EVAL_SCORE_THRESHOLD, evaluateDetectors } from '../detect/evaluate.js';
import { Detector } from '../detect/detector.js';
import { EVAL_CLASSES, evalClassOfDetectorClass, projectGroundTruth, type EvalClass, type ProjectedObject } from '../detect/ground-truth.js';
import type { Box, Detection } from '../detect/types.js';
import { ensureDefaultDetector } from '../models/default-detector.js';
import { boxIou, solveAssignment } from '../track/assignment.js';
import { MOT_IOU_THRESHOLD, evaluateMot, motFrameOf, type MotFrame, type MotResult } from '../track/mot-metrics.js';
import { withoutVehicleDuplicates } from '../track/vehicle-duplicates.js';
import { MultiObjectTracker, trackerOptionsForDetector, type Track, type TrackInput, type TrackerOptions, type TrackerStats } from '../track/tracker.js';
import { CameraModel, type CameraMounting } from '../world/camera-model.js';
import { EgoMotion } from '../world/ego-motion.js';
import { VEHICLE_CENTRE_OFFSET_M, groundContact } from '../world/ground-plane.js';
import { PandasetVehicleFrames, fitPandasetMounting } from '../world/pandaset-mounting.js';
import {
  RecordingError,
  RecordingReader,
  TOPIC_CAMERA,
  TOPIC_CAMERA_CALIBRATION,
  TOPIC_CAMERA_POSE,
  TOPIC_GROUND_TRUTH,
  cameraCalibrationCodec,
  groundTruthObjectsCodec,
  poseCodec,
  type CameraIntrinsics,
  type GroundTruthObject,
  type PoseMessage,
} from '../../pipeline/index.js';
import type { ImageView } from '../../pipeline/image.js';
import { importPandaset } from '../../pipeline/sources/pandaset.js';
import { adasObjectOf } from '../world/adas-objects.js';
import { FcwComparison, atGroundContact, type FcwEvaluation } from './fcw-eval.js';
import { colourOfId, packedRgbOf, svgText, writeOverlayPng } from './overlay.js';
import { quantile } from './stats.js';

/** Position errors are measured for objects whose cuboid centre is this far from the vehicle origin at least, m (issue #7). */
export const RANGE_MIN_M = 5;
/** ... and at most, m. */
export const RANGE_MAX_M = 40;
/**
 * Contact-to-centre offset for persons, m: half a walking person's 0.5-0.7 m depth. Picked a priori,
 * like VEHICLE_CENTRE_OFFSET_M for vehicles.
 */
export const PERSON_CENTRE_OFFSET_M = 0.3;
/**
 * A box whose bottom is within this of the image's bottom edge, px, is cut by the image: its bottom
 * is not the object's ground contact, so it gets no ground position (the tracker uses the box alone).
 */
export const BOTTOM_EDGE_MARGIN_PX = 2;
/** Default PandaSet sequence inside the shared data directory. */
export const DEFAULT_SEQUENCE = 'pandaset-002';

export interface TrackingEvaluationOptions {
  /** PandaSet sequence directory or an imported .mcap recording. Default `<dataDir>/pandaset-002`. */
  source?: string;
  /** Model cache for the default detector. Default the user cache (see perception/models/cache.ts). */
  cacheDir?: string;
  /** Default 'int8' (what the HUD runs). */
  precision?: 'int8' | 'fp32';
  /** Camera mounting in the vehicle frame. Default: fitted to the recording by `fitPandasetMounting` (offline, from poses and labels). */
  mounting?: CameraMounting;
  /** Write one PNG per frame here: labelled boxes and tracks with their ids. */
  overlayDir?: string;
  /** With overlayDir: only every n-th frame (from frame 0). Default 1. */
  overlayEvery?: number;
  /** Contact-to-centre offsets, m. Default VEHICLE_CENTRE_OFFSET_M for vehicles, PERSON_CENTRE_OFFSET_M for persons. */
  centreOffsetM?: Partial<Record<EvalClass, number>>;
  /** Tracker settings over trackerOptionsForDetector(the detector card's scoreThreshold), as the world stage runs. */
  tracker?: TrackerOptions;
  onProgress?(done: number, total: number): void;
  signal?: AbortSignal;
  /**
   * Called once per camera frame right after the tracker's update (e.g. by registration-eval.ts).
   * The tracks are the tracker's own objects, reused next frame: copy what you keep.
   */
  onTrackedFrame?(frame: TrackedFrame): void;
}

/** One frame of the tracking evaluation as `onTrackedFrame` sees it. */
export interface TrackedFrame {
  /** Index into `frames` (camera frames in time order). */
  frameIndex: number;
  frames: readonly DriveFrame[];
  /** The vehicle frame at every frame of the drive (world -> vehicle). */
  vehicleFrames: PandasetVehicleFrames;
  /** Tracks after this frame's update; positions are centre estimates (see `centreOffsetM`). */
  tracks: readonly Track[];
  /** This frame's labels projected into the image (same order as `frames[frameIndex].objects`). */
  projected: readonly ProjectedObject[];
  /** Ego speed (m/s) and yaw rate (rad/s) from the poses up to this frame, as the tracker used them. */
  egoSpeedMps: number;
  egoYawRateRps: number;
  /** Contact-to-centre offsets the ground positions were given, m. */
  centreOffsetM: Readonly<Record<EvalClass, number>>;
}

export interface PositionErrorStats {
  /** Compared (estimate, cuboid) pairs at RANGE_MIN_M..RANGE_MAX_M. */
  samples: number;
  /** Median and 90th percentile of |estimated range - true range| / true range, percent. */
  rangeErrMedianPct: number;
  rangeErrP90Pct: number;
  /** Median and 90th percentile of the error across the line of sight to the true centre, m. */
  lateralErrMedianM: number;
  lateralErrP90M: number;
  /** Median signed range error / range, percent (positive: estimates too far). */
  rangeBiasMedianPct: number;
}

export interface ScoreStats {
  /** Detections matched (IoU >= MOT_IOU_THRESHOLD) to visible labelled objects. */
  samples: number;
  p10: number;
  median: number;
  p90: number;
}

export interface TrackingEvaluation {
  source: string;
  frames: number;
  precision: 'int8' | 'fp32';
  model: string;
  mounting: CameraMounting;
  /** Per evaluation class. */
  mot: Record<EvalClass, MotResult>;
  /** AP@0.5 of the same detections (undefined without ground truth). */
  ap50: Record<EvalClass, number | undefined>;
  /** Tracks (confirmed or briefly coasting, as the HUD gets them) against cuboid centres. */
  trackPosition: Record<EvalClass, PositionErrorStats>;
  /** Raw ground contacts of the detector's boxes against cuboid centres (no tracking). */
  detectionPosition: Record<EvalClass, PositionErrorStats>;
  /** Scores of the detector's boxes on visible labelled objects: what the tracker's score thresholds meet. */
  matchedScores: Record<EvalClass, ScoreStats>;
  tracker: TrackerStats;
  /** Forward-collision warnings from the tracks against those the labels call for. */
  fcw: FcwEvaluation;
  /** Overlay PNGs written. */
  overlays: string[];
}

/** One camera frame of a labelled drive: capture time, labels, camera pose and intrinsics. */
export interface DriveFrame {
  tNs: bigint;
  objects: GroundTruthObject[];
  pose: PoseMessage;
  intrinsics: CameraIntrinsics;
}

interface ErrorSamples {
  /** Scores of the matched estimates (detections only). */
  scores: number[];
  rangeRel: number[];
  rangeSigned: number[];
  lateralM: number[];
}

/** Runs the default detector, ground contact and tracker over a PandaSet drive; see the module comment. */
export async function evaluateTracking(dataDir: string, options: TrackingEvaluationOptions = {}): Promise<TrackingEvaluation> {
  const precision = options.precision ?? 'int8';
  if (precision !== 'int8' && precision !== 'fp32') throw new RangeError(`evaluateTracking: option 'precision' must be 'int8' or 'fp32', got '${String(precision)}'`);
  const overlayEvery = options.overlayEvery ?? 1;
  if (!(Number.isInteger(overlayEvery) && overlayEvery >= 1)) throw new RangeError(`evaluateTracking: option 'overlayEvery' must be an integer >= 1, got ${overlayEvery}`);
  const source = options.source ?? path.join(dataDir, DEFAULT_SEQUENCE);

  let tempDir: string | undefined;
  let recording = source;
  if (!source.endsWith('.mcap')) {
    tempDir = await mkdtemp(path.join(os.tmpdir(), 'arhud-eval-track-'));
    recording = path.join(tempDir, 'drive.mcap');
    await importPandaset(source, recording, options.signal ? { signal: options.signal } : {});
  }
  let detector: Detector | undefined;
  try {
    const frames = await readDriveFrames(recording);
    const first = frames[0];
    if (first === undefined) throw new RecordingError({ file: recording }, 'evaluateTracking: the recording has no camera frames with pose, calibration and labels');
    const mounting =
      options.mounting ??
      fitPandasetMounting(
        frames.map((f) => f.pose),
        frames.map((f) => f.objects),
      ).mounting;
    const camera = new CameraModel(first.intrinsics, mounting);
    const vehicleFrames = new PandasetVehicleFrames(
      frames.map((f) => f.pose),
      camera,
    );
    const cards = await ensureDefaultDetector(dataDir, options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {});
    const card = precision === 'int8' ? cards.int8Card : cards.fp32Card;
    detector = await Detector.create({ ...card, scoreThreshold: EVAL_SCORE_THRESHOLD });
    if (options.overlayDir !== undefined) await mkdir(options.overlayDir, { recursive: true });

    const offsets: Record<EvalClass, number> = { vehicle: VEHICLE_CENTRE_OFFSET_M, person: PERSON_CENTRE_OFFSET_M, ...options.centreOffsetM };
    // ByteTrack's thresholds relative to this detector's own confident threshold (its model card).
    const tracker = new MultiObjectTracker({ ...trackerOptionsForDetector(card.scoreThreshold), ...options.tracker });
    const ego = new EgoMotion();
    const motFrames: Record<EvalClass, MotFrame[]> = { vehicle: [], person: [] };
    const trackErrors: Record<EvalClass, ErrorSamples> = { vehicle: emptySamples(), person: emptySamples() };
    const detectionErrors: Record<EvalClass, ErrorSamples> = { vehicle: emptySamples(), person: emptySamples() };
    const overlays: string[] = [];
    const fcw = new FcwComparison();
    let frameIndex = 0;

    const onFrame = async (image: ImageView, detections: readonly Detection[]): Promise<void> => {
      const k = frameIndex++;
      const frame = frames[k];
      if (frame === undefined) throw new RangeError(`evaluateTracking: the detection evaluation ran more frames than the recording has (${frames.length})`);
      ego.updateFromPose(frame.tNs, vehicleFrames.vehiclePoseInWorld(k));
      const previous = frames[k - 1];
      const egoDelta = previous === undefined ? undefined : ego.deltaBetween(previous.tNs, frame.tNs);
      // As the world stage does: one object, one track.
      const inputs = trackInputsOf(withoutVehicleDuplicates(detections), camera, offsets);
      const tracks = tracker.update(frame.tNs, inputs, egoDelta);
      const projected = projectGroundTruth(frame.objects, frame.pose, frame.intrinsics);
      const toVehicle = (pointM: { x: number; y: number; z: number }) => vehicleFrames.vehiclePointFromWorld(k, pointM, { x: 0, y: 0, z: 0 });
      const centres = frame.objects.map((object) => toVehicle(object.positionM));
      const egoNow = { tNs: frame.tNs, egoSpeedMps: ego.speedMps, egoYawRateRps: ego.yawRateRps };
      // ADAS reasons on ground contacts; these tracks follow centre estimates (see trackInputsOf).
      const adasObjects = tracks.flatMap((t) => {
        const object = adasObjectOf(t, egoNow.egoSpeedMps, egoNow.egoYawRateRps);
        const evalClass = evalClassOfDetectorClass(t.className);
        return object === undefined ? [] : [evalClass === undefined ? object : atGroundContact(object, offsets[evalClass])];
      });
      fcw.add(egoNow, adasObjects, { objects: frame.objects, projected, toVehicle });
      options.onTrackedFrame?.({ frameIndex: k, frames, vehicleFrames, tracks, projected, egoSpeedMps: ego.speedMps, egoYawRateRps: ego.yawRateRps, centreOffsetM: offsets });
      for (const evalClass of EVAL_CLASSES) {
        motFrames[evalClass].push(motFrameOf(projected, tracks, evalClass));
        const trackEstimates = tracks.filter((t) => evalClassOfDetectorClass(t.className) === evalClass).map((t) => ({ box: t.box, positionM: t.positionM, score: t.score }));
        collectErrors(projected, centres, evalClass, trackEstimates, trackErrors[evalClass]);
        const detectionEstimates = inputs.filter((i) => evalClassOfDetectorClass(i.detection.className) === evalClass).map((i) => ({ box: i.detection.box, positionM: i.positionM, score: i.detection.score }));
        collectErrors(projected, centres, evalClass, detectionEstimates, detectionErrors[evalClass]);
      }
      if (options.overlayDir !== undefined && k % overlayEvery === 0) {
        const file = path.join(options.overlayDir, `track-${String(k).padStart(3, '0')}.png`);
        await writeOverlayPng(file, packedRgbOf(image), image.width, image.height, trackOverlaySvg(image.width, image.height, projected, tracks, k));
        overlays.push(file);
      }
    };

    const evaluation = await evaluateDetectors(recording, [{ name: precision, detector: tappedDetector(detector, onFrame) }], {
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (frameIndex !== frames.length) throw new RangeError(`evaluateTracking: the detection evaluation ran ${frameIndex} frames, the recording has ${frames.length}`);
    const ap = evaluation.results[precision];
    return {
      source,
      frames: frames.length,
      precision,
      model: card.name,
      mounting,
      mot: { vehicle: evaluateMot(motFrames.vehicle), person: evaluateMot(motFrames.person) },
      ap50: { vehicle: ap?.vehicle.ap, person: ap?.person.ap },
      trackPosition: { vehicle: statsOf(trackErrors.vehicle), person: statsOf(trackErrors.person) },
      detectionPosition: { vehicle: statsOf(detectionErrors.vehicle), person: statsOf(detectionErrors.person) },
      matchedScores: { vehicle: scoreStatsOf(detectionErrors.vehicle.scores), person: scoreStatsOf(detectionErrors.person.scores) },
      tracker: structuredClone(tracker.stats) as TrackerStats,
      fcw: fcw.result(),
      overlays,
    };
  } finally {
    await detector?.dispose();
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
  }
}

/**
 * The detector as `evaluateDetectors` sees it, with every frame's image and boxes also handed to
 * `onFrame` (awaited before the frame's buffer is released). Everything but `detect` is the real
 * detector's. Goes away once evaluate.ts exports its per-frame loop.
 */
function tappedDetector(detector: Detector, onFrame: (image: ImageView, detections: readonly Detection[]) => Promise<void>): Detector {
  const detect = async (image: ImageView): Promise<Detection[]> => {
    const detections = await detector.detect(image);
    await onFrame(image, detections);
    return detections;
  };
  return new Proxy(detector, {
    get(target, property) {
      if (property === 'detect') return detect;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Tracker inputs: detections of HUD or evaluation classes, with a ground position where the box bottom is in the image. */
function trackInputsOf(detections: readonly Detection[], camera: CameraModel, offsets: Readonly<Record<EvalClass, number>>): TrackInput[] {
  const inputs: TrackInput[] = [];
  const bottomLimitPx = camera.intrinsics.height - BOTTOM_EDGE_MARGIN_PX;
  for (const detection of detections) {
    const evalClass = evalClassOfDetectorClass(detection.className);
    if (detection.hudClass === undefined && evalClass === undefined) continue;
    const input: TrackInput = { detection };
    if (detection.box[3] < bottomLimitPx) {
      const centreOffsetM = evalClass === undefined ? 0 : offsets[evalClass];
      const ground = groundContact(detection.box, camera, { centreOffsetM });
      if (ground !== undefined) {
        input.positionM = ground.positionM;
        input.rangeSigmaM = ground.rangeSigmaM;
        input.lateralSigmaM = ground.lateralSigmaM;
      }
    }
    inputs.push(input);
  }
  return inputs;
}

/** Matches estimates to visible labelled objects of the class by IoU; records the matches' scores and, with a ground position, the position errors at RANGE_MIN_M..RANGE_MAX_M. */
function collectErrors(
  projected: readonly ProjectedObject[],
  centres: readonly { x: number; y: number }[],
  evalClass: EvalClass,
  estimates: readonly { box: Box; positionM: { x: number; y: number } | undefined; score: number }[],
  out: ErrorSamples,
): void {
  const truths = projected.map((p, j) => ({ p, j })).filter(({ p }) => p.visible && p.evalClass === evalClass && p.box !== undefined);
  if (truths.length === 0 || estimates.length === 0) return;
  const cost = new Float64Array(truths.length * estimates.length);
  truths.forEach(({ p }, r) => estimates.forEach((e, c) => (cost[r * estimates.length + c] = 1 - boxIou(p.box!, e.box))));
  const rowToCol = new Int32Array(truths.length);
  solveAssignment(cost, truths.length, estimates.length, 1 - MOT_IOU_THRESHOLD, rowToCol, new Int32Array(estimates.length));
  rowToCol.forEach((c, r) => {
    if (c < 0) return;
    out.scores.push(estimates[c]!.score);
    const estimate = estimates[c]!.positionM;
    if (estimate === undefined) return;
    const truth = centres[truths[r]!.j]!;
    const rangeM = Math.hypot(truth.x, truth.y);
    if (rangeM < RANGE_MIN_M || rangeM > RANGE_MAX_M) return;
    const signed = (Math.hypot(estimate.x, estimate.y) - rangeM) / rangeM;
    out.rangeRel.push(Math.abs(signed));
    out.rangeSigned.push(signed);
    // Across the line of sight: the error's component along the unit normal (-y, x) / range.
    out.lateralM.push(Math.abs((-(estimate.x - truth.x) * truth.y + (estimate.y - truth.y) * truth.x) / rangeM));
  });
}

function emptySamples(): ErrorSamples {
  return { scores: [], rangeRel: [], rangeSigned: [], lateralM: [] };
}

function scoreStatsOf(scores: readonly number[]): ScoreStats {
  return { samples: scores.length, p10: quantile(scores, 0.1), median: quantile(scores, 0.5), p90: quantile(scores, 0.9) };
}

function statsOf(samples: ErrorSamples): PositionErrorStats {
  return {
    samples: samples.rangeRel.length,
    rangeErrMedianPct: 100 * quantile(samples.rangeRel, 0.5),
    rangeErrP90Pct: 100 * quantile(samples.rangeRel, 0.9),
    lateralErrMedianM: quantile(samples.lateralM, 0.5),
    lateralErrP90M: quantile(samples.lateralM, 0.9),
    rangeBiasMedianPct: 100 * quantile(samples.rangeSigned, 0.5),
  };
}

/** Camera frames with their pose, intrinsics and labels, in log-time order (the order the detection evaluation visits them). */
/** The camera frames of a recording with their labels, pose and calibration, in time order; refuses a frame lacking any. */
export async function readDriveFrames(recording: string): Promise<DriveFrame[]> {
  const reader = await RecordingReader.open(recording, { strict: true });
  try {
    const byTime = new Map<bigint, Partial<DriveFrame> & { image?: boolean }>();
    for await (const message of reader.messages({ topics: [TOPIC_CAMERA, TOPIC_CAMERA_CALIBRATION, TOPIC_CAMERA_POSE, TOPIC_GROUND_TRUTH] })) {
      let frame = byTime.get(message.logTimeNs);
      if (frame === undefined) byTime.set(message.logTimeNs, (frame = { tNs: message.logTimeNs }));
      if (message.topic === TOPIC_CAMERA) frame.image = true;
      else if (message.topic === TOPIC_GROUND_TRUTH) frame.objects = groundTruthObjectsCodec.decode(message.data).objects;
      else if (message.topic === TOPIC_CAMERA_POSE) frame.pose = poseCodec.decode(message.data);
      else frame.intrinsics = cameraCalibrationCodec.decode(message.data).intrinsics;
    }
    const frames: DriveFrame[] = [];
    for (const frame of [...byTime.values()].sort((a, b) => (a.tNs! < b.tNs! ? -1 : a.tNs! > b.tNs! ? 1 : 0))) {
      if (!frame.image) continue;
      if (!frame.objects || !frame.pose || !frame.intrinsics) throw new RecordingError({ file: recording, topic: TOPIC_CAMERA, logTimeNs: frame.tNs! }, 'frame has no calibration, pose or labels at the same log time');
      frames.push({ tNs: frame.tNs!, objects: frame.objects, pose: frame.pose, intrinsics: frame.intrinsics });
    }
    return frames;
  } finally {
    await reader.close();
  }
}

/** SVG over a frame: labelled boxes (visible white, ignored grey dashed) and tracks (coloured by id, with id, class and range). */
function trackOverlaySvg(width: number, height: number, projected: readonly ProjectedObject[], tracks: readonly Track[], frameIndex: number): string {
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">`];
  const rect = (b: Box, style: string) => `<rect x="${b[0].toFixed(1)}" y="${b[1].toFixed(1)}" width="${(b[2] - b[0]).toFixed(1)}" height="${(b[3] - b[1]).toFixed(1)}" fill="none" ${style}/>`;
  for (const p of projected) {
    if (p.evalClass === undefined || p.box === undefined || p.reason === 'duplicate') continue;
    parts.push(rect(p.box, p.visible ? 'stroke="white" stroke-width="2"' : 'stroke="#888" stroke-width="2" stroke-dasharray="8 6"'));
  }
  for (const t of tracks) {
    const colour = colourOfId(t.id);
    const dashed = t.state === 'coasting' ? ' stroke-dasharray="14 8"' : '';
    parts.push(rect(t.box, `stroke="${colour}" stroke-width="5"${dashed}`));
    const range = t.positionM ? ` ${Math.hypot(t.positionM.x, t.positionM.y).toFixed(1)}m` : '';
    const label = svgText(`#${t.id} ${t.className}${range}`);
    const y = Math.max(28, t.box[1] - 6);
    parts.push(`<text x="${t.box[0].toFixed(1)}" y="${y.toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="26" font-weight="bold" fill="${colour}" stroke="black" stroke-width="1">${label}</text>`);
  }
  parts.push(`<text x="16" y="${height - 20}" font-family="DejaVu Sans, sans-serif" font-size="30" fill="white" stroke="black" stroke-width="1">frame ${frameIndex}: white = visible label, grey dashed = ignored, colour = track (dashed: coasting)</text>`);
  parts.push('</svg>');
  return parts.join('');
}
