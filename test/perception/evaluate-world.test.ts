/**
 * The world-model evaluation of issue #7 on the real data: the default detector (INT8) + ground
 * contact + tracker on the PandaSet drive ("PandaSet, Hesai & Scale AI", CC BY 4.0), and the lane
 * detector on the Udacity highway video (MIT) and the PandaSet street. Targets the system meets are
 * asserted as the issue states them; for those it does not meet, the test asserts what is true and
 * names the target and the measured value beside it (the numbers are printed on every run).
 *
 * The default detector is built once into out/test/models (about a minute), then served from there.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  JITTER_AT_M,
  RANGE_MAX_M,
  RANGE_MIN_M,
  US_LANE_WIDTH_M,
  WORLD_TARGETS,
  evaluateLanes,
  evaluateTracking,
  formatWorldEvaluation,
  laneMetrics,
  worldEvaluationJson,
  type LaneEvaluation,
  type TrackingEvaluation,
} from '../../perception/evaluate/index.js';
import type { LaneBoundary, LaneEstimate } from '../../perception/lanes/index.js';
import { DATA_DIR, PROJECT_ROOT, importedPandasetDrive, tempDir } from '../support/data.js';

const CACHE_DIR = path.join(PROJECT_ROOT, 'out', 'test', 'models');
const OVERLAY_EVERY = 20;

let track: TrackingEvaluation;
let lanes: LaneEvaluation;
let overlayDir: string;

beforeAll(async () => {
  overlayDir = await tempDir('arhud-eval-world-');
  track = await evaluateTracking(DATA_DIR, { source: await importedPandasetDrive(), cacheDir: CACHE_DIR, overlayDir, overlayEvery: OVERLAY_EVERY });
  lanes = await evaluateLanes(DATA_DIR, { overlayDir, overlayEvery: OVERLAY_EVERY });
  console.log(`${formatWorldEvaluation(track, lanes)}\noverlays in ${overlayDir}`);
}, 240_000);

describe('evaluateTracking on the PandaSet drive (default INT8 detector, default tracker)', () => {
  it('runs every frame and scores both classes under the detection evaluation visibility rule', () => {
    expect(track.frames).toBe(60);
    expect(track.mot.vehicle.gtCount).toBeGreaterThan(300);
    expect(track.mot.person.gtCount).toBeGreaterThan(0);
    expect(track.tracker.framesAccepted).toBe(60);
    expect(track.tracker.detectionsRejected + track.tracker.measurementsRejected).toBe(0);
    // The same detections as the detection evaluation: its vehicle AP@0.5 on this drive.
    expect(track.ap50.vehicle).toBeGreaterThan(0.6);
  });

  it(`keeps vehicle ids: at most ${WORLD_TARGETS.vehicleIdSwitches} switches over the 60 frames (issue #7)`, () => {
    expect(track.mot.vehicle.idSwitches).toBeLessThanOrEqual(WORLD_TARGETS.vehicleIdSwitches);
  });

  it('tracks most visible vehicles with ByteTrack thresholds taken from the detector card (measured; no issue target)', () => {
    // Measured (INT8): vehicle MOTA 0.27, IDF1 0.63, FN 166 and FP 174 of 466. Persons: the
    // detector's person AP50 is ~0.01, so person tracks are false positives (MOTA < 0): the
    // detector's limit, not the tracker's.
    expect(track.mot.vehicle.mota).toBeGreaterThan(0.2);
    expect(track.mot.vehicle.idf1).toBeGreaterThan(0.5);
    expect(track.mot.vehicle.fn).toBeLessThan(track.mot.vehicle.gtCount / 2);
  });

  it(`places tracked vehicles ${RANGE_MIN_M}-${RANGE_MAX_M} m away: |range error|/range median <= ${WORLD_TARGETS.rangeErrMedianPct}%, p90 <= ${WORLD_TARGETS.rangeErrP90Pct}% (issue #7)`, () => {
    const v = track.trackPosition.vehicle;
    expect(v.samples).toBeGreaterThan(100);
    expect(v.rangeErrMedianPct).toBeLessThanOrEqual(WORLD_TARGETS.rangeErrMedianPct);
    expect(v.rangeErrP90Pct).toBeLessThanOrEqual(WORLD_TARGETS.rangeErrP90Pct);
    expect(v.lateralErrMedianM).toBeLessThan(0.3);
    const d = track.detectionPosition.vehicle;
    expect(d.samples).toBeGreaterThan(150);
    expect(d.rangeErrMedianPct).toBeLessThanOrEqual(WORLD_TARGETS.rangeErrMedianPct);
    expect(d.rangeErrP90Pct).toBeLessThanOrEqual(WORLD_TARGETS.rangeErrP90Pct);
  });

  it('checks forward-collision warnings against the labels on every frame (measured; no issue target)', () => {
    const f = track.fcw;
    expect(f.frames).toBe(60);
    // The labelled drive: slow city traffic behind a lead SUV, nothing on a collision course.
    expect(f.truthWarningFrames).toBe(0);
    expect(f.missedFrames).toBe(0);
    // Measured (INT8): 11 false-alarm frames, all on a parked pickup the detector calls both 'car'
    // and 'truck' (the truck class width, 2.5 m, reaches into the corridor 7 m ahead). Before the
    // velocity-uncertainty gate: 20. The ACC lead is the labelled lead within ~2 m (median 1.8 m).
    expect(f.falseAlarmFrames).toBeLessThan(f.frames / 4);
    expect(f.leadFrames).toBeGreaterThan(50);
    expect(f.leadGapErrMedianM).toBeLessThan(3);
  });

  it('writes a tracking overlay every OVERLAY_EVERY frames', () => {
    expect(track.overlays).toHaveLength(60 / OVERLAY_EVERY);
    for (const file of track.overlays) expect(existsSync(file)).toBe(true);
  });

  it('rejects a bad precision and overlay step, naming the option', async () => {
    await expect(evaluateTracking(DATA_DIR, { precision: 'fp16' as 'int8' })).rejects.toThrow(new RangeError("evaluateTracking: option 'precision' must be 'int8' or 'fp32', got 'fp16'"));
    await expect(evaluateTracking(DATA_DIR, { overlayEvery: 0 })).rejects.toThrow(new RangeError("evaluateTracking: option 'overlayEvery' must be an integer >= 1, got 0"));
  });
});

describe('evaluateLanes on both real videos', () => {
  it(`Udacity: both ego boundaries in >= ${WORLD_TARGETS.laneBothFoundPct}% of 221 frames, jitter <= ${WORLD_TARGETS.laneJitterCm} cm at ${JITTER_AT_M} m (issue #7)`, () => {
    const u = lanes.udacity;
    expect(u.frames).toBe(221);
    expect(u.bothFoundPct).toBeGreaterThanOrEqual(WORLD_TARGETS.laneBothFoundPct);
    expect(u.jitterCm).toBeLessThanOrEqual(WORLD_TARGETS.laneJitterCm);
    // Width scales with the assumed 1.30 m camera height: within 10 % of the 12 ft lane.
    expect(u.realLaneWidthM).toBe(US_LANE_WIDTH_M);
    expect(Math.abs(u.laneWidthErrPct!)).toBeLessThan(10);
    expect(u.overlays.length).toBeGreaterThan(0);
  });

  it('PandaSet: measured and reported; the street has no reference lane width', () => {
    const p = lanes.pandaset;
    expect(p.frames).toBe(60);
    // Measured: both ego boundaries in 48 % of the frames (left 65 %, right 75 %), jitter 3.8 cm on
    // 23 pairs. The right side has no paint (parked cars, a gutter seam), so no target applies here.
    expect(p.egoLeftFoundPct).toBeGreaterThan(50);
    expect(p.realLaneWidthM).toBeNull();
    expect(p.laneWidthErrPct).toBeNull();
    expect(p.realLaneWidthNote).toMatch(/^no reference/);
  });
});

describe('worldEvaluationJson and formatWorldEvaluation', () => {
  it('gives every key of `arhud eval track --json` as a number or null, on one line', () => {
    const json = worldEvaluationJson(track, lanes);
    const line = JSON.stringify(json);
    expect(line).not.toContain('\n');
    const parsed = JSON.parse(line) as Record<string, unknown>;
    for (const key of ['motaVehicle', 'idf1Vehicle', 'motaPerson', 'idSwitches', 'rangeErrMedianPct', 'rangeErrP90Pct', 'lateralErrMedianM', 'laneBothFoundPct', 'laneJitterCm']) {
      expect(parsed, key).toHaveProperty(key);
      expect(parsed[key] === null || typeof parsed[key] === 'number', key).toBe(true);
    }
    expect(parsed.laneBothFoundPct).toBe(lanes.udacity.bothFoundPct);
    expect(parsed.idSwitches).toBe(track.mot.vehicle.idSwitches);
  });

  it('reports both classes, both videos and every target', () => {
    const text = formatWorldEvaluation(track, lanes);
    for (const part of ['vehicle', 'person', 'udacity solidWhiteRight', 'pandaset 002', 'issue #7 targets', 'no reference']) expect(text).toContain(part);
  });
});

describe('laneMetrics', () => {
  const boundary = (role: LaneBoundary['role'], yM: number): LaneBoundary => ({ role, coefficients: [yM, 0, 0, 0], xMinM: 5, xMaxM: 40, confidence: 1, lineType: 'solid' });
  const estimate = (centreM: number | undefined): LaneEstimate =>
    centreM === undefined
      ? { tNs: 0n, boundaries: [boundary('ego-left', 1.8)] }
      : { tNs: 0n, boundaries: [boundary('ego-left', centreM + 1.75), boundary('ego-right', centreM - 1.75)], laneWidthM: 3.5, lateralOffsetM: centreM };

  it('measures jitter as the RMS change of the ego-lane centre over consecutive frames that both have it', () => {
    // Centres 0, 0.03, (missing), 0.03, -0.01: pairs (0 -> 0.03) and (0.03 -> -0.01) count.
    const m = laneMetrics('synthetic', [estimate(0), estimate(0.03), estimate(undefined), estimate(0.03), estimate(-0.01)], [1, 2, 3], 3.5, 'synthetic');
    expect(m.jitterPairs).toBe(2);
    expect(m.jitterCm).toBeCloseTo(Math.sqrt((3 ** 2 + 4 ** 2) / 2), 9);
    expect(m.bothFoundPct).toBeCloseTo(80, 9);
    expect(m.egoLeftFoundPct).toBe(100);
    expect(m.laneWidthMedianM).toBe(3.5);
    expect(m.laneWidthErrPct).toBe(0);
    expect(m.detectMedianMs).toBe(2);
  });

  it('gives NaN, not a number, when nothing was found', () => {
    const m = laneMetrics('empty', [estimate(undefined)], [], null, 'no reference');
    expect(m.jitterPairs).toBe(0);
    expect(m.jitterCm).toBeNaN();
    expect(m.laneWidthMedianM).toBeNaN();
    expect(m.laneWidthErrPct).toBeNull();
  });
});
