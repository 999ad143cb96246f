/**
 * Lane detection on synthetic road images rendered through a known camera with known lane lines:
 * fitted curves, line types, temporal behaviour when markings fade, and misuse errors.
 */
import { firstValueFrom, from, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../pipeline/clock.js';
import { Frame } from '../../pipeline/frame.js';
import { PipelineMetrics } from '../../pipeline/metrics.js';
import { ImageView } from '../../pipeline/image.js';
import { CameraModel, createPixelPoint } from '../../perception/world/camera-model.js';
import { PANDASET_002_FRONT_MOUNTING } from '../../perception/world/pandaset-mounting.js';
import { pandaset002FrontCamera, UDACITY_CAMERA_HEIGHT_M, UDACITY_VANISHING_POINT_PX, udacityCamera } from '../../perception/lanes/assumed-cameras.js';
import { BirdsEyeView } from '../../perception/lanes/birdseye.js';
import { CONFIDENCE_TAU_S, DEFAULT_GRID, LaneDetector, REPORT_MIN_CONFIDENCE } from '../../perception/lanes/detector.js';
import { fitPolynomialRobust, FIT_OUTLIER_M } from '../../perception/lanes/fit.js';
import { drawLaneOverlay } from '../../perception/lanes/overlay.js';
import { renderSyntheticRoad, type SyntheticLine } from '../../perception/lanes/synthetic.js';
import { LANES_STAGE_NAME, lanesStage } from '../../perception/lanes/stage.js';
import { sampleBoundaryM, type LaneBoundary, type LaneEstimate, type LaneRole } from '../../perception/lanes/types.js';
import { thrownBy } from '../support/errors.js';

const FX_PX = 831.4;
const FRAME_NS = 40_000_000n; // 25 fps
/** US dashes: 3 m paint, 9 m gap. */
const US_DASH = { onM: 3, offM: 9, phaseM: 0 };

/** 960x540, 60 deg HFOV, 1.3 m high, 1.5 deg down: like the Udacity dash cam. */
function camera(): CameraModel {
  return new CameraModel(
    { width: 960, height: 540, fx: FX_PX, fy: FX_PX, cx: 479.5, cy: 269.5, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] },
    { positionM: { x: 0, y: 0, z: 1.3 }, pitchRad: (1.5 * Math.PI) / 180, yawRad: 0, rollRad: 0 },
  );
}

function boundary(estimate: LaneEstimate, role: LaneRole): LaneBoundary | undefined {
  return estimate.boundaries.find((b) => b.role === role);
}

/** Runs `frames` frames of a scene whose dashes move as at `speedMps`; returns the last estimate. */
function runSequence(detector: LaneDetector, lines: SyntheticLine[], frames: number, speedMps = 20, format: 'rgb8' | 'gray8' = 'rgb8'): LaneEstimate {
  const cam = camera();
  let estimate: LaneEstimate | undefined;
  for (let f = 0; f < frames; f++) {
    const moved = lines.map((l) => (l.dash ? { ...l, dash: { ...l.dash, phaseM: l.dash.phaseM + f * speedMps * 0.04 } } : l));
    estimate = detector.detect(renderSyntheticRoad(cam, { lines: moved, seed: f + 1 }, format), BigInt(f) * FRAME_NS);
  }
  return estimate!;
}

/** Largest |detected - true| lateral error (m) over x in [x0, x1]. */
function maxErrorM(b: LaneBoundary, truth: [number, number, number, number], x0: number, x1: number): number {
  let worst = 0;
  for (let x = x0; x <= x1; x += 1) {
    const y = truth[0] + x * (truth[1] + x * (truth[2] + x * truth[3]));
    worst = Math.max(worst, Math.abs(sampleBoundaryM(b, x) - y));
  }
  return worst;
}

describe('lane detection on synthetic roads', () => {
  it('fits straight ego and adjacent lines within 5 cm over their valid range up to 30 m and tells dashed from solid', () => {
    const egoLeft: [number, number, number, number] = [1.8, 0, 0, 0];
    const egoRight: [number, number, number, number] = [-1.85, 0, 0, 0];
    const leftAdj: [number, number, number, number] = [5.45, 0, 0, 0];
    const rightAdj: [number, number, number, number] = [-5.5, 0, 0, 0];
    const lines: SyntheticLine[] = [
      { coefficients: egoLeft, dash: US_DASH },
      { coefficients: egoRight },
      { coefficients: leftAdj, dash: { ...US_DASH, phaseM: 5 } },
      { coefficients: rightAdj, widthM: 0.2 },
    ];
    const detector = new LaneDetector(camera());
    const estimate = runSequence(detector, lines, 12);
    const truth: Record<LaneRole, [number, number, number, number]> = { 'ego-left': egoLeft, 'ego-right': egoRight, 'left-adjacent': leftAdj, 'right-adjacent': rightAdj };
    const types: Record<LaneRole, string> = { 'ego-left': 'dashed', 'ego-right': 'solid', 'left-adjacent': 'dashed', 'right-adjacent': 'solid' };
    expect(estimate.boundaries.map((b) => b.role)).toEqual(['ego-left', 'ego-right', 'left-adjacent', 'right-adjacent']);
    for (const b of estimate.boundaries) {
      // Over the boundary's valid range (an adjacent line enters the view beyond xNearM).
      expect(maxErrorM(b, truth[b.role], b.xMinM, 30), b.role).toBeLessThan(0.05);
      expect(b.lineType, b.role).toBe(types[b.role]);
      expect(b.confidence, b.role).toBeGreaterThan(0.5);
      expect(b.xMinM).toBeGreaterThanOrEqual(DEFAULT_GRID.xNearM);
      expect(b.xMaxM).toBeLessThanOrEqual(DEFAULT_GRID.xFarM + 1e-9);
    }
    expect(estimate.laneWidthM).toBeCloseTo(3.65, 1);
    expect(Math.abs(estimate.laneWidthM! - 3.65)).toBeLessThan(0.05);
    expect(Math.abs(estimate.lateralOffsetM! - -0.025)).toBeLessThan(0.03);
  });

  it('follows a 250 m radius left curve with an offset and heading (within 5 cm to 20 m, 15 cm to 30 m)', () => {
    const c2 = 1 / (2 * 250);
    const egoLeft: [number, number, number, number] = [1.2, 0.02, c2, 0];
    const egoRight: [number, number, number, number] = [-2.45, 0.02, c2, 0];
    const detector = new LaneDetector(camera());
    const estimate = runSequence(detector, [{ coefficients: egoLeft, colour: 'yellow' }, { coefficients: egoRight, dash: US_DASH }], 12);
    const left = boundary(estimate, 'ego-left'), right = boundary(estimate, 'ego-right');
    expect(left).toBeDefined();
    expect(right).toBeDefined();
    for (const [b, truth] of [[left!, egoLeft], [right!, egoRight]] as const) {
      expect(maxErrorM(b, truth, DEFAULT_GRID.xNearM, 20)).toBeLessThan(0.05);
      expect(maxErrorM(b, truth, 20, 30)).toBeLessThan(0.15);
    }
    expect(left!.lineType).toBe('solid');
    expect(right!.lineType).toBe('dashed');
    expect(Math.abs(estimate.laneWidthM! - 3.65)).toBeLessThan(0.05);
  });

  it('fits straight lines within 5 cm through a distorting lens (barrel k1 = -0.2) rendered and detected with the same CameraModel', () => {
    const distorted = new CameraModel({ ...camera().intrinsics, distortion: [-0.2, 0.03, 0.001, -0.0005, 0] }, camera().mounting);
    const egoLeft: [number, number, number, number] = [1.8, 0, 0, 0];
    const egoRight: [number, number, number, number] = [-1.85, 0, 0, 0];
    const detector = new LaneDetector(distorted);
    let estimate: LaneEstimate | undefined;
    for (let f = 0; f < 12; f++) {
      const lines: SyntheticLine[] = [{ coefficients: egoLeft, dash: { ...US_DASH, phaseM: f * 0.8 } }, { coefficients: egoRight }];
      estimate = detector.detect(renderSyntheticRoad(distorted, { lines, seed: f + 1 }), BigInt(f) * FRAME_NS);
    }
    const left = boundary(estimate!, 'ego-left'), right = boundary(estimate!, 'ego-right');
    expect(left && right).toBeTruthy();
    expect(maxErrorM(left!, egoLeft, left!.xMinM, 30)).toBeLessThan(0.05);
    expect(maxErrorM(right!, egoRight, right!.xMinM, 30)).toBeLessThan(0.05);
    expect(left!.lineType).toBe('dashed');
    expect(right!.lineType).toBe('solid');
  });

  it('works on gray8 images and keeps the lateral offset at 10 m steady under pixel noise (RMS step < 1 cm)', () => {
    const lines: SyntheticLine[] = [{ coefficients: [1.75, 0, 0, 0], dash: US_DASH }, { coefficients: [-1.9, 0, 0, 0] }];
    const detector = new LaneDetector(camera());
    const cam = camera();
    const centres: number[] = [];
    for (let f = 0; f < 20; f++) {
      const moved = lines.map((l) => (l.dash ? { ...l, dash: { ...l.dash, phaseM: f * 0.8 } } : l));
      const estimate = detector.detect(renderSyntheticRoad(cam, { lines: moved, seed: 100 + f, noiseSigma: 10 }, 'gray8'), BigInt(f) * FRAME_NS);
      const l = boundary(estimate, 'ego-left'), r = boundary(estimate, 'ego-right');
      if (f >= 5) {
        expect(l && r, `frame ${f}`).toBeTruthy();
        centres.push(0.5 * (sampleBoundaryM(l!, 10) + sampleBoundaryM(r!, 10)));
      }
    }
    let sum = 0;
    for (let i = 1; i < centres.length; i++) sum += (centres[i]! - centres[i - 1]!) ** 2;
    const rmsStepM = Math.sqrt(sum / (centres.length - 1));
    expect(rmsStepM).toBeLessThan(0.01);
    expect(Math.abs(centres[centres.length - 1]! - -0.075)).toBeLessThan(0.03);
  });

  it('decays confidence when markings fade out and drops the boundaries; nothing is invented', () => {
    const cam = camera();
    const detector = new LaneDetector(cam);
    const FULL = 10, FADE = 8, GONE = 15;
    let lastVisibleFrame = -1;
    const history: LaneEstimate[] = [];
    for (let f = 0; f < FULL + FADE + GONE; f++) {
      const contrast = f < FULL ? 120 : Math.max(0, 120 * (1 - (f - FULL + 1) / FADE));
      if (contrast > 0) lastVisibleFrame = f;
      // Only the right line exists: the left one must never be reported.
      const image = renderSyntheticRoad(cam, { lines: [{ coefficients: [-1.8, 0, 0, 0], contrast }], seed: f + 7 });
      const estimate = detector.detect(image, BigInt(f) * FRAME_NS);
      history.push(estimate);
      expect(estimate.boundaries.every((b) => b.role === 'ego-right'), `frame ${f}: ${estimate.boundaries.map((b) => b.role).join()}`).toBe(true);
      expect(estimate.laneWidthM).toBeUndefined();
      expect(estimate.lateralOffsetM).toBeUndefined();
    }
    expect(boundary(history[FULL - 1]!, 'ego-right')!.confidence).toBeGreaterThan(0.8);
    // After the paint is gone the confidence falls every frame...
    const confidences = history.slice(lastVisibleFrame + 1).map((e) => boundary(e, 'ego-right')?.confidence ?? 0);
    for (let i = 1; i < confidences.length; i++) {
      if (confidences[i - 1]! > 0) expect(confidences[i]!).toBeLessThan(confidences[i - 1]!);
    }
    // ...by exp(-dt / CONFIDENCE_TAU_S) per frame, so it is gone within ln(1 / REPORT_MIN_CONFIDENCE) tau.
    const framesToDrop = Math.ceil((Math.log(1 / REPORT_MIN_CONFIDENCE) * CONFIDENCE_TAU_S) / 0.04);
    for (const e of history.slice(lastVisibleFrame + 1 + framesToDrop)) expect(e.boundaries).toEqual([]);
    // The kept curve is the last measured one, not extrapolated.
    const held = history.slice(lastVisibleFrame + 1).map((e) => boundary(e, 'ego-right')).filter((b) => b !== undefined);
    for (const b of held) expect(Math.abs(sampleBoundaryM(b, 10) - -1.8)).toBeLessThan(0.1);
  });

  it('reports nothing on a road without markings', () => {
    const detector = new LaneDetector(camera());
    const estimate = runSequence(detector, [], 5);
    expect(estimate.boundaries).toEqual([]);
    expect(detector.pointCount).toBe(0);
  });

  it('drops a boundary whose line jumps and re-acquires it after REINIT frames (lane change)', () => {
    const detector = new LaneDetector(camera());
    runSequence(detector, [{ coefficients: [1.8, 0, 0, 0] }, { coefficients: [-1.8, 0, 0, 0] }], 8);
    // The car is now one lane to the right: old ego-right is the new ego-left.
    const estimate = runSequence(detector, [{ coefficients: [5.4, 0, 0, 0] }, { coefficients: [1.8, 0, 0, 0] }, { coefficients: [-1.8, 0, 0, 0] }], 8);
    expect(Math.abs(sampleBoundaryM(boundary(estimate, 'ego-left')!, 10) - 1.8)).toBeLessThan(0.05);
    expect(Math.abs(sampleBoundaryM(boundary(estimate, 'ego-right')!, 10) - -1.8)).toBeLessThan(0.05);
  });

  it('draws an overlay of the camera-sized RGB image', () => {
    const cam = camera();
    const detector = new LaneDetector(cam);
    const image = renderSyntheticRoad(cam, { lines: [{ coefficients: [1.8, 0, 0, 0] }, { coefficients: [-1.8, 0, 0, 0] }] });
    const estimate = detector.detect(image, 0n);
    const rgb = drawLaneOverlay(image, estimate, cam);
    expect(rgb.length).toBe(960 * 540 * 3);
    // The ego-right line at x = 15 m is drawn green.
    const px = { uPx: 0, vPx: 0 };
    cam.projectVehiclePoint({ x: 15, y: -1.8, z: 0 }, px);
    const at = (Math.round(px.vPx) * 960 + Math.round(px.uPx)) * 3;
    expect(rgb[at + 1]!).toBeGreaterThan(rgb[at]! + 50);
  });
});

describe('lane detection building blocks', () => {
  it('sampleBoundaryM evaluates the cubic', () => {
    const b: LaneBoundary = { role: 'ego-left', coefficients: [1, 0.1, 0.01, 0.001], xMinM: 0, xMaxM: 50, confidence: 1, lineType: 'solid' };
    expect(sampleBoundaryM(b, 10)).toBeCloseTo(1 + 1 + 1 + 1, 12);
    expect(sampleBoundaryM(b, 0)).toBe(1);
  });

  it('fitPolynomialRobust recovers a cubic and ignores outliers beyond FIT_OUTLIER_M', () => {
    const n = 60;
    const xs = new Float32Array(n), ys = new Float32Array(n), ws = new Float32Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      xs[i] = 6 + i * 0.5;
      ys[i] = -1.5 + 0.01 * xs[i]! + 0.002 * xs[i]! ** 2;
      if (i % 10 === 3) ys[i] = ys[i]! + 3 * FIT_OUTLIER_M;
    }
    const out = new Float64Array(4);
    const result = { rmsM: 0, keptWeight: 0, keptCount: 0 };
    expect(fitPolynomialRobust(xs, ys, ws, n, 3, out, result)).toBe(true);
    for (const x of [6, 15, 30, 35]) expect(Math.abs(out[0]! + x * (out[1]! + x * (out[2]! + x * out[3]!)) - (-1.5 + 0.01 * x + 0.002 * x * x))).toBeLessThan(0.01);
    expect(result.keptCount).toBe(n - 6);
    expect(fitPolynomialRobust(xs, ys, ws, 2, 3, out, result)).toBe(false);
  });

  it('the Udacity camera looks up at the measured vanishing point; the PandaSet camera uses the fitted 002 mounting', () => {
    const udacity = udacityCamera();
    const px = createPixelPoint();
    // A point far down the vehicle x axis images at the vanishing point of the lane lines.
    expect(udacity.projectVehiclePoint({ x: 1e7, y: 0, z: UDACITY_CAMERA_HEIGHT_M }, px)).toBe(true);
    expect(px.uPx).toBeCloseTo(UDACITY_VANISHING_POINT_PX.uPx, 3);
    expect(px.vPx).toBeCloseTo(UDACITY_VANISHING_POINT_PX.vPx, 3);
    expect(udacity.mounting.pitchRad).toBeLessThan(0); // horizon below the image centre: looking up
    expect(udacity.mounting.positionM).toEqual({ x: 0, y: 0, z: UDACITY_CAMERA_HEIGHT_M });
    // The road 10 m ahead, 1.8 m to the left, comes back from its pixel.
    const ground = { x: 0, y: 0, z: 0 };
    udacity.projectVehiclePoint({ x: 10, y: 1.8, z: 0 }, px);
    expect(px.uPx).toBeLessThan(UDACITY_VANISHING_POINT_PX.uPx);
    expect(udacity.pixelToGround(px.uPx, px.vPx, ground)).toBe(true);
    expect(ground.x).toBeCloseTo(10, 9);
    expect(ground.y).toBeCloseTo(1.8, 9);

    const pandaset = pandaset002FrontCamera({ fx: 1970, fy: 1971, cx: 970, cy: 483 });
    expect(pandaset.mounting).toEqual(PANDASET_002_FRONT_MOUNTING);
    expect(pandaset.intrinsics).toEqual({ width: 1920, height: 1080, fx: 1970, fy: 1971, cx: 970, cy: 483, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] });
  });

  it('the bird\'s-eye cells land where the camera projects them, also on a half-size image', () => {
    const cam = camera();
    const bev = new BirdsEyeView(cam, DEFAULT_GRID);
    // A bright dot at the pixel of (x, y) = (12 m, -1 m) lights the matching cell on a half-size image.
    const half = ImageView.packed(480, 270, 'gray8', new Uint8Array(480 * 270));
    const px = { uPx: 0, vPx: 0 };
    cam.projectVehiclePoint({ x: 12, y: -1, z: 0 }, px);
    half.set(Math.round((px.uPx + 0.5) / 2 - 0.5), Math.round((px.vPx + 0.5) / 2 - 0.5), 0, 255);
    bev.update(half);
    const i = Math.round((12 - DEFAULT_GRID.xNearM) / DEFAULT_GRID.dxM), j = Math.round(bev.colOfY(-1));
    expect(bev.gray[i * bev.cols + j]).toBe(255);
    expect(Number.isNaN(bev.gray[0])).toBe(true); // (6 m, +7.2 m) is outside the image
  });

  it('the bird\'s-eye view leaves out road cells whose projection folds back into the image beyond the lens\'s field of view', () => {
    // k1 = -0.5: r (1 - 0.5 r^2) peaks at r = 0.82 (39 deg off-axis) and falls beyond, so (6 m, +7.2 m),
    // 50 deg off-axis, lands inside the 960x540 image at a pixel whose ray goes elsewhere.
    const folding = new CameraModel({ ...camera().intrinsics, distortion: [-0.5, 0, 0, 0, 0] }, camera().mounting);
    const px = createPixelPoint();
    expect(folding.projectVehiclePoint({ x: 6, y: 7.2, z: 0 }, px)).toBe(true);
    expect(px.uPx >= 0 && px.uPx <= 959 && px.vPx >= 0 && px.vPx <= 539).toBe(true);
    const bev = new BirdsEyeView(folding, DEFAULT_GRID);
    expect(bev.valid[0]).toBe(0); // row 0 (x = 6 m), column 0 (y = +7.2 m)
    // Straight ahead is unaffected.
    expect(bev.valid[Math.round(bev.colOfY(0))]).toBe(1);
  });
});

describe('lanes stage', () => {
  it('sets frame.lanes in frame order and counts a bad frame as an error when told to skip', async () => {
    const cam = camera();
    const image = renderSyntheticRoad(cam, { lines: [{ coefficients: [1.8, 0, 0, 0] }, { coefficients: [-1.8, 0, 0, 0] }] });
    const float = ImageView.packed(960, 540, 'grayf32', new Float32Array(960 * 540));
    const frames = [0, 1, 2].map((seq) => new Frame({ seq, tCaptureNs: BigInt(seq) * FRAME_NS, image: seq === 1 ? float : image }));
    const metrics = new PipelineMetrics();
    const out = await firstValueFrom(from(frames).pipe(lanesStage(new LaneDetector(cam), { clock: new SimulatedClock(), metrics, onError: 'skip' }), toArray()));
    expect(out.map((f) => f.seq)).toEqual([0, 2]);
    expect(out[1]!.lanes!.tNs).toBe(2n * FRAME_NS);
    expect(out[1]!.lanes!.boundaries.map((b) => b.role)).toEqual(['ego-left', 'ego-right']);
    expect(out[0]!.stamps.map((s) => s.stage)).toEqual([LANES_STAGE_NAME]);
    expect(metrics.counter(`${LANES_STAGE_NAME}.errors`)).toBe(1);
  });
});

describe('lane detection misuse', () => {
  it('rejects a float image, a non-bigint time and an image of another aspect ratio', () => {
    const detector = new LaneDetector(camera());
    const float = ImageView.packed(960, 540, 'grayf32', new Float32Array(960 * 540));
    const e1 = thrownBy(() => detector.detect(float, 0n));
    expect(e1.name).toBe('TypeError');
    expect(e1.message).toBe("LaneDetector.detect: field 'image.format' must be 'rgb8', 'rgba8' or 'gray8', got 'grayf32'");
    const gray = ImageView.packed(960, 540, 'gray8', new Uint8Array(960 * 540));
    const e2 = thrownBy(() => detector.detect(gray, 0 as unknown as bigint));
    expect(e2.name).toBe('TypeError');
    expect(e2.message).toBe("LaneDetector.detect: 'tNs' must be a bigint, got number");
    const square = ImageView.packed(540, 540, 'gray8', new Uint8Array(540 * 540));
    const e3 = thrownBy(() => detector.detect(square, 0n));
    expect(e3.name).toBe('RangeError');
    expect(e3.message).toBe("BirdsEyeView.update: image 540x540 does not have the camera's aspect ratio (960x540)");
  });

  it('rejects bad options and a camera that is not a CameraModel', () => {
    const e1 = thrownBy(() => new LaneDetector(camera(), { reportMinConfidence: 1 }));
    expect(e1.name).toBe('RangeError');
    expect(e1.message).toBe("LaneDetector: option 'reportMinConfidence' must be in (0, 1), got 1");
    const e2 = thrownBy(() => new LaneDetector(camera(), { grid: { xNearM: 40 } }));
    expect(e2.name).toBe('RangeError');
    expect(e2.message).toBe("BirdsEyeView: fields 'xNearM'/'xFarM' must satisfy 0 < xNearM < xFarM, got 40/36");
    const e3 = thrownBy(() => new LaneDetector({ intrinsics: { width: 960, height: 540 } } as never));
    expect(e3.name).toBe('TypeError');
    expect(e3.message).toBe("LaneDetector: 'camera' must be a CameraModel, got object");
  });
});
