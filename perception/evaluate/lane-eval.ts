/**
 * Lane detection on the two real videos of the shared data directory (issue #7):
 * - Udacity CarND-LaneLines-P1 `solidWhiteRight.mp4` (MIT): 221 highway frames, 960x540, 25 fps,
 *   camera `udacityCamera()` (assumed focal length and height, measured vanishing point);
 * - PandaSet sequence 002 front camera ("PandaSet, Hesai & Scale AI", CC BY 4.0): 60 city frames at
 *   10 Hz, scaled to 960x540 (the size the benchmark runs at), camera `pandaset002FrontCamera`
 *   (the sequence's intrinsics, fitted mounting).
 *
 * Metrics per video:
 * - both found: percentage of frames reporting both ego boundaries;
 * - jitter: RMS, over consecutive frame pairs that both report both ego boundaries, of the change of
 *   the ego-lane centre's lateral offset at x = JITTER_AT_M (y of the mid-point of the two boundaries
 *   there). It includes the car's real lateral motion, so it bounds the measurement noise from above;
 * - lane width: ego-left minus ego-right at x = 0 (`LaneEstimate.laneWidthM`), median and range,
 *   against the road's real width where one is known (US interstate 3.66 m for Udacity; none for the
 *   PandaSet street, see PANDASET_LANE_WIDTH_UNKNOWN).
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { ImageView } from '../../pipeline/image.js';
import { LaneDetector, drawLaneOverlay, pandaset002FrontCamera, sampleBoundaryM, udacityCamera, type LaneEstimate, type LaneRole } from '../lanes/index.js';
import type { CameraModel } from '../world/camera-model.js';
import { writeOverlayPng } from './overlay.js';
import { median, rms } from './stats.js';
import { forEachVideoFrame } from './video-frames.js';

/** The Udacity video inside the shared data directory. */
export const UDACITY_VIDEO = path.join('udacity-lanelines', 'test_videos', 'solidWhiteRight.mp4');
/** The Udacity video's frame period, ns (25 fps). */
export const UDACITY_FRAME_NS = 40_000_000n;
/** The PandaSet sequence inside the shared data directory. */
export const PANDASET_SEQUENCE = 'pandaset-002';
/** Frame size the lanes are evaluated at, px (Udacity's own; PandaSet's 1920x1080 is halved). */
export const LANE_EVAL_WIDTH_PX = 960;
export const LANE_EVAL_HEIGHT_PX = 540;
/** Jitter is measured on the ego-lane centre this far ahead, m (issue #7). */
export const JITTER_AT_M = 10;
/** Real lane width of the Udacity highway: US interstate lanes are 12 ft. */
export const US_LANE_WIDTH_M = 3.66;
/** Why the PandaSet street has no reference width. */
export const PANDASET_LANE_WIDTH_UNKNOWN =
  'no reference: the PandaSet sample has no map or lane labels, and the ego lane has no painted right boundary (parked cars and a gutter seam)';
/** Default: an overlay every this many frames. */
export const DEFAULT_OVERLAY_EVERY = 10;

export interface LaneEvaluationOptions {
  /** Write overlay PNGs of the detected lanes here. */
  overlayDir?: string;
  /** With overlayDir: every n-th frame of each video. Default DEFAULT_OVERLAY_EVERY. */
  overlayEvery?: number;
}

export interface LaneVideoMetrics {
  name: string;
  frames: number;
  /** Percentage of frames with both ego boundaries. */
  bothFoundPct: number;
  egoLeftFoundPct: number;
  egoRightFoundPct: number;
  /** RMS frame-to-frame change of the ego-lane centre offset at JITTER_AT_M, cm (NaN with no pair). */
  jitterCm: number;
  jitterMedianAbsCm: number;
  jitterMaxAbsCm: number;
  /** Consecutive frame pairs the jitter is measured on. */
  jitterPairs: number;
  /** Estimated ego-lane width at x = 0, m (NaN when never found). */
  laneWidthMedianM: number;
  laneWidthMinM: number;
  laneWidthMaxM: number;
  /** The road's real lane width, m, or null with `realLaneWidthNote` saying why. */
  realLaneWidthM: number | null;
  realLaneWidthNote: string;
  /** (median estimate - real) / real, percent; null without a reference. */
  laneWidthErrPct: number | null;
  /** Share of frames whose ego-left / ego-right boundary is reported dashed / solid, percent. */
  egoLeftDashedPct: number;
  egoRightSolidPct: number;
  /** Median LaneDetector.detect time, ms (informative; the benchmark is the reference). */
  detectMedianMs: number;
  overlays: string[];
}

export interface LaneEvaluation {
  udacity: LaneVideoMetrics;
  pandaset: LaneVideoMetrics;
}

/** Runs the lane detector on both videos of `dataDir` (the shared data directory). */
export async function evaluateLanes(dataDir: string, options: LaneEvaluationOptions = {}): Promise<LaneEvaluation> {
  const overlayEvery = options.overlayEvery ?? DEFAULT_OVERLAY_EVERY;
  if (!(Number.isInteger(overlayEvery) && overlayEvery >= 1)) throw new RangeError(`evaluateLanes: option 'overlayEvery' must be an integer >= 1, got ${overlayEvery}`);
  if (options.overlayDir !== undefined) await mkdir(options.overlayDir, { recursive: true });
  const udacity = await runLanes('udacity', udacityCamera(), options.overlayDir, overlayEvery, (onFrame) =>
    forEachVideoFrame(path.join(dataDir, UDACITY_VIDEO), LANE_EVAL_WIDTH_PX, LANE_EVAL_HEIGHT_PX, (image, index) => onFrame(image, BigInt(index) * UDACITY_FRAME_NS)),
  );
  const sequenceDir = path.join(dataDir, PANDASET_SEQUENCE);
  const pinhole = JSON.parse(await readFile(path.join(sequenceDir, 'camera', 'intrinsics.json'), 'utf8')) as { fx: number; fy: number; cx: number; cy: number };
  const timestampsS = JSON.parse(await readFile(path.join(sequenceDir, 'camera', 'timestamps.json'), 'utf8')) as number[];
  const pandaset = await runLanes('pandaset', pandaset002FrontCamera(pinhole), options.overlayDir, overlayEvery, async (onFrame) => {
    for (let f = 0; f < timestampsS.length; f++) {
      const { data, info } = await sharp(path.join(sequenceDir, 'camera', `${String(f).padStart(2, '0')}.jpg`))
        .resize(LANE_EVAL_WIDTH_PX, LANE_EVAL_HEIGHT_PX)
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const image = ImageView.packed(info.width, info.height, 'rgb8', new Uint8Array(data.buffer, data.byteOffset, data.length));
      await onFrame(image, BigInt(Math.round(timestampsS[f]! * 1e6)) * 1000n);
    }
    return timestampsS.length;
  });
  return {
    udacity: laneMetrics('udacity solidWhiteRight', udacity.estimates, udacity.msPerFrame, US_LANE_WIDTH_M, 'US interstate lane, 12 ft', udacity.overlays),
    pandaset: laneMetrics('pandaset 002', pandaset.estimates, pandaset.msPerFrame, null, PANDASET_LANE_WIDTH_UNKNOWN, pandaset.overlays),
  };
}

type FrameSink = (image: ImageView, tNs: bigint) => Promise<void>;

async function runLanes(
  name: string,
  camera: CameraModel,
  overlayDir: string | undefined,
  overlayEvery: number,
  frames: (onFrame: FrameSink) => Promise<number>,
): Promise<{ estimates: LaneEstimate[]; msPerFrame: number[]; overlays: string[] }> {
  const detector = new LaneDetector(camera);
  const estimates: LaneEstimate[] = [];
  const msPerFrame: number[] = [];
  const overlays: string[] = [];
  const count = await frames(async (image, tNs) => {
    const t0 = performance.now();
    const estimate = detector.detect(image, tNs);
    msPerFrame.push(performance.now() - t0);
    const index = estimates.length;
    estimates.push(estimate);
    if (overlayDir !== undefined && index % overlayEvery === 0) {
      const file = path.join(overlayDir, `lanes-${name}-${String(index).padStart(3, '0')}.png`);
      await writeOverlayPng(file, drawLaneOverlay(image, estimate, camera), image.width, image.height);
      overlays.push(file);
    }
  });
  if (count !== estimates.length) throw new RangeError(`evaluateLanes: ${name} reported ${count} frames, ${estimates.length} were detected`);
  return { estimates, msPerFrame, overlays };
}

function boundary(estimate: LaneEstimate, role: LaneRole) {
  return estimate.boundaries.find((b) => b.role === role);
}

/**
 * The metrics of one video's lane estimates (see the module comment). `realLaneWidthM` null means no
 * reference, with `realLaneWidthNote` saying why; otherwise the note names the reference.
 */
export function laneMetrics(
  name: string,
  estimates: readonly LaneEstimate[],
  msPerFrame: readonly number[],
  realLaneWidthM: number | null,
  realLaneWidthNote: string,
  overlays: string[] = [],
): LaneVideoMetrics {
  const frames = estimates.length;
  const centres = estimates.map((e) => {
    const left = boundary(e, 'ego-left');
    const right = boundary(e, 'ego-right');
    return left && right ? 0.5 * (sampleBoundaryM(left, JITTER_AT_M) + sampleBoundaryM(right, JITTER_AT_M)) : NaN;
  });
  const steps: number[] = [];
  for (let i = 1; i < centres.length; i++) {
    const a = centres[i - 1]!;
    const b = centres[i]!;
    if (Number.isFinite(a) && Number.isFinite(b)) steps.push(b - a);
  }
  const widths = estimates.map((e) => e.laneWidthM).filter((w): w is number => w !== undefined && Number.isFinite(w));
  const pct = (count: number) => (frames > 0 ? (100 * count) / frames : NaN);
  const share = (test: (e: LaneEstimate) => boolean) => pct(estimates.filter(test).length);
  const widthMedian = median(widths);
  return {
    name,
    frames,
    bothFoundPct: pct(centres.filter(Number.isFinite).length),
    egoLeftFoundPct: share((e) => boundary(e, 'ego-left') !== undefined),
    egoRightFoundPct: share((e) => boundary(e, 'ego-right') !== undefined),
    jitterCm: 100 * rms(steps),
    jitterMedianAbsCm: 100 * median(steps.map(Math.abs)),
    jitterMaxAbsCm: steps.length > 0 ? 100 * Math.max(...steps.map(Math.abs)) : NaN,
    jitterPairs: steps.length,
    laneWidthMedianM: widthMedian,
    laneWidthMinM: widths.length > 0 ? Math.min(...widths) : NaN,
    laneWidthMaxM: widths.length > 0 ? Math.max(...widths) : NaN,
    realLaneWidthM,
    realLaneWidthNote,
    laneWidthErrPct: realLaneWidthM !== null && Number.isFinite(widthMedian) ? (100 * (widthMedian - realLaneWidthM)) / realLaneWidthM : null,
    egoLeftDashedPct: share((e) => boundary(e, 'ego-left')?.lineType === 'dashed'),
    egoRightSolidPct: share((e) => boundary(e, 'ego-right')?.lineType === 'solid'),
    detectMedianMs: median(msPerFrame),
    overlays,
  };
}
