/**
 * Lane detection on the two real videos in ../shared/data (see its README):
 * - Udacity CarND-LaneLines-P1 `solidWhiteRight.mp4` (MIT): 221 highway frames, 960x540, 25 fps;
 *   camera assumed as documented in perception/lanes/assumed-cameras.ts.
 * - PandaSet 002 front camera ("PandaSet, Hesai & Scale AI", CC BY 4.0): 60 city frames at 10 Hz,
 *   downsampled to 960x540 (the size the bench runs at); intrinsics from the sequence, mounting
 *   PANDASET_002_FRONT_MOUNTING (perception/world/pandaset-mounting.ts, 2.21 m above the road).
 *
 * Metrics (printed):
 * - found: fraction of frames reporting both ego boundaries.
 * - jitter: frame-to-frame change of the ego-lane centre's y at x = 10 m, over consecutive frame
 *   pairs that both report it; RMS, median |d| and max |d|. It includes the car's real lateral
 *   motion, so it bounds the measurement noise from above.
 * - lane width: ego-left minus ego-right at x = 0, median and range.
 * Overlays go to OVERLAY_DIR; look at them.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ImageView } from '../../pipeline/image.js';
import { forEachVideoFrame } from '../../perception/evaluate/video-frames.js';
import { pandaset002FrontCamera, UDACITY_CAMERA_HEIGHT_M, udacityCamera } from '../../perception/lanes/assumed-cameras.js';
import { LaneDetector } from '../../perception/lanes/detector.js';
import { drawLaneOverlay } from '../../perception/lanes/overlay.js';
import { sampleBoundaryM, type LaneEstimate, type LaneRole } from '../../perception/lanes/types.js';
import type { CameraModel } from '../../perception/world/camera-model.js';
import { DATA_DIR, PANDASET_DIR } from '../support/data.js';

const UDACITY_VIDEO = path.join(DATA_DIR, 'udacity-lanelines/test_videos/solidWhiteRight.mp4');
const OVERLAY_DIR = '/tmp/arhud-lanes';
/** US interstate lane width, 12 ft. */
const US_LANE_WIDTH_M = 3.66;
/** Issue #7 targets. */
const TARGET_FOUND_FRACTION = 0.95;
const TARGET_JITTER_M = 0.05;

interface Run {
  frames: number;
  estimates: LaneEstimate[];
  msPerFrame: number[];
}

function find(e: LaneEstimate, role: LaneRole) {
  return e.boundaries.find((b) => b.role === role);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

/** Found fraction, jitter of the ego-lane centre at 10 m, lane width; printed and returned. */
function metrics(name: string, run: Run) {
  const centres = run.estimates.map((e) => {
    const l = find(e, 'ego-left'), r = find(e, 'ego-right');
    return l && r ? 0.5 * (sampleBoundaryM(l, 10) + sampleBoundaryM(r, 10)) : NaN;
  });
  const steps: number[] = [];
  for (let i = 1; i < centres.length; i++) if (Number.isFinite(centres[i]) && Number.isFinite(centres[i - 1])) steps.push(centres[i]! - centres[i - 1]!);
  const widths = run.estimates.map((e) => e.laneWidthM).filter((w): w is number => w !== undefined);
  const share = (role: LaneRole) => run.estimates.filter((e) => find(e, role) !== undefined).length / run.frames;
  const typeShare = (role: LaneRole, type: string) => run.estimates.filter((e) => find(e, role)?.lineType === type).length / run.frames;
  const m = {
    frames: run.frames,
    bothEgoFound: centres.filter(Number.isFinite).length / run.frames,
    egoLeftFound: share('ego-left'),
    egoRightFound: share('ego-right'),
    leftAdjacentFound: share('left-adjacent'),
    rightAdjacentFound: share('right-adjacent'),
    jitterRmsM: Math.sqrt(steps.reduce((a, d) => a + d * d, 0) / steps.length),
    jitterMedianAbsM: median(steps.map(Math.abs)),
    jitterMaxAbsM: Math.max(...steps.map(Math.abs)),
    laneWidthMedianM: median(widths),
    laneWidthMinM: Math.min(...widths),
    laneWidthMaxM: Math.max(...widths),
    egoLeftDashed: typeShare('ego-left', 'dashed'),
    egoRightSolid: typeShare('ego-right', 'solid'),
    detectMedianMs: median(run.msPerFrame),
  };
  console.log(`lanes on ${name}:`, JSON.stringify(m, (_k, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(4)) : v), 1));
  return m;
}

async function saveOverlay(image: ImageView, estimate: LaneEstimate, camera: CameraModel, file: string): Promise<void> {
  const rgb = drawLaneOverlay(image, estimate, camera);
  await sharp(rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toFile(path.join(OVERLAY_DIR, file));
}

describe('lane detection on the Udacity highway video (solidWhiteRight.mp4, all frames)', () => {
  const run: Run = { frames: 0, estimates: [], msPerFrame: [] };
  beforeAll(async () => {
    mkdirSync(OVERLAY_DIR, { recursive: true });
    const camera = udacityCamera();
    const detector = new LaneDetector(camera);
    run.frames = await forEachVideoFrame(UDACITY_VIDEO, 960, 540, async (image, index) => {
      const t0 = performance.now();
      const estimate = detector.detect(image, BigInt(index) * 40_000_000n);
      run.msPerFrame.push(performance.now() - t0);
      run.estimates.push(estimate);
      if (index % 55 === 0) await saveOverlay(image, estimate, camera, `udacity-${String(index).padStart(3, '0')}.png`);
    });
  });

  it('finds both ego boundaries in >= 95% of frames, with <= 5 cm jitter at 10 m and a lane width near 3.66 m', () => {
    const m = metrics('udacity solidWhiteRight', run);
    console.log(
      `udacity: lane width with the assumed ${UDACITY_CAMERA_HEIGHT_M} m camera height: ${m.laneWidthMedianM.toFixed(3)} m; ` +
        `3.66 m would mean a height of ${((UDACITY_CAMERA_HEIGHT_M * US_LANE_WIDTH_M) / m.laneWidthMedianM).toFixed(3)} m`,
    );
    expect(run.frames).toBe(221);
    expect(m.bothEgoFound).toBeGreaterThanOrEqual(TARGET_FOUND_FRACTION);
    expect(m.jitterRmsM).toBeLessThanOrEqual(TARGET_JITTER_M);
    // Lateral scale follows the assumed camera height (not measurable from the video): +-10 %.
    expect(Math.abs(m.laneWidthMedianM - US_LANE_WIDTH_M) / US_LANE_WIDTH_M).toBeLessThan(0.1);
    // The video's ego lane: dashed on the left, solid on the right.
    expect(m.egoLeftDashed).toBeGreaterThan(0.8);
    expect(m.egoRightSolid).toBeGreaterThan(0.8);
  });
});

describe('lane detection on the PandaSet city street (sequence 002, 60 frames)', () => {
  const run: Run = { frames: 0, estimates: [], msPerFrame: [] };
  beforeAll(async () => {
    mkdirSync(OVERLAY_DIR, { recursive: true });
    const intrinsics = JSON.parse(readFileSync(path.join(PANDASET_DIR, 'camera/intrinsics.json'), 'utf8')) as { fx: number; fy: number; cx: number; cy: number };
    const timestampsS = JSON.parse(readFileSync(path.join(PANDASET_DIR, 'camera/timestamps.json'), 'utf8')) as number[];
    const camera = pandaset002FrontCamera(intrinsics);
    const detector = new LaneDetector(camera);
    for (let f = 0; f < timestampsS.length; f++) {
      const { data, info } = await sharp(path.join(PANDASET_DIR, `camera/${String(f).padStart(2, '0')}.jpg`))
        .resize(960, 540)
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const image = ImageView.packed(info.width, info.height, 'rgb8', new Uint8Array(data.buffer, data.byteOffset, data.length));
      const t0 = performance.now();
      const estimate = detector.detect(image, BigInt(Math.round(timestampsS[f]! * 1e6)) * 1000n);
      run.msPerFrame.push(performance.now() - t0);
      run.estimates.push(estimate);
      if (f % 15 === 0) await saveOverlay(image, estimate, camera, `pandaset-${String(f).padStart(2, '0')}.png`);
    }
    run.frames = timestampsS.length;
  });

  it('finds the painted left ego boundary in most frames (the right side has no marking, only parked cars)', () => {
    const m = metrics('pandaset 002', run);
    expect(run.frames).toBe(60);
    // The dashed white line left of the ego lane is the only paint. In the first ~20 frames a car
    // close ahead leaves one dash or less of it in view, so finding it there is marginal: with the
    // fitted mounting it is found in 39 of 60 frames, and mountings 0.2 m higher or lower or rolled
    // by 0.2 deg give 34-52 of 60, not monotonically. This is a regression guard at the measured
    // level, not a target. The right side has no paint: the seam between the asphalt and the
    // lighter concrete gutter / the parked cars' wheel line is reported as ego-right in many frames
    // (a known false positive of the ridge detector), so it is not asserted.
    expect(m.egoLeftFound).toBeGreaterThanOrEqual(0.6);
    // Where found, the left line is about half a lane to the left.
    for (const e of run.estimates) {
      const l = find(e, 'ego-left');
      if (l !== undefined) expect(l.coefficients[0]).toBeGreaterThan(0.6);
    }
  });
});
