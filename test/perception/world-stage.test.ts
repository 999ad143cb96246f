import { from, lastValueFrom, toArray, type OperatorFunction } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { Frame, ImageView, PipelineMetrics, SimulatedClock, type CameraIntrinsics } from '../../pipeline/index.js';
import type { Detection } from '../../perception/detect/types.js';
import { CameraModel, PANDASET_002_FRONT_MOUNTING } from '../../perception/world/index.js';
import { worldExtension } from '../../perception/world/stage.js';
import type { HudPrimitive } from '../../render/hud-scene.js';

const INTRINSICS: CameraIntrinsics = { width: 1920, height: 1080, fx: 1970, fy: 1970, cx: 970, cy: 483, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] };
const camera = new CameraModel(INTRINSICS, PANDASET_002_FRONT_MOUNTING);
const IMAGE = ImageView.packed(4, 4, 'rgb8', new Uint8Array(48));
const FRAME_NS = 100_000_000n;

/** The detector's box of a car whose rear is at (xM, yM): 1.8 m wide, 1.5 m tall. */
function carBox(xM: number, yM: number): Detection['box'] {
  const pts = [
    { x: xM, y: yM + 0.9, z: 0 },
    { x: xM, y: yM - 0.9, z: 1.5 },
  ].map((p) => {
    const out = { uPx: 0, vPx: 0 };
    expect(camera.projectVehiclePoint(p, out)).toBe(true);
    return out;
  });
  return [pts[0]!.uPx, pts[1]!.vPx, pts[1]!.uPx, pts[0]!.vPx];
}

function frameAt(k: number, detections: Detection[] | undefined, withCalibration = true, tNs = BigInt(k) * FRAME_NS): Frame {
  const frame = new Frame({ seq: k, tCaptureNs: tNs, image: IMAGE, vehicle: { tNs, speedMps: 10, yawRateRps: 0 }, camera: withCalibration ? INTRINSICS : undefined });
  frame.detections = detections;
  return frame;
}

async function run(frames: Frame[]): Promise<{ frames: Frame[]; metrics: PipelineMetrics }> {
  const metrics = new PipelineMetrics();
  const stages = worldExtension({ mounting: PANDASET_002_FRONT_MOUNTING, lanes: false })({ clock: new SimulatedClock(), metrics }).stages ?? [];
  expect(stages).toHaveLength(3); // track, lanes, adas
  const [track, lanes, adas] = stages as [OperatorFunction<Frame, Frame>, OperatorFunction<Frame, Frame>, OperatorFunction<Frame, Frame>];
  return { frames: await lastValueFrom(from(frames).pipe(track, lanes, adas, toArray())), metrics };
}

const car = (box: Detection['box']): Detection => ({ classId: 2, className: 'car', hudClass: 'car', score: 0.9, box });

describe('world stage', () => {
  it('turns detections of a stopped car ahead into a tracked object on the road and escalates the collision warning', async () => {
    // Ego at 10 m/s towards a stopped car 40 m ahead: 1 m closer per 100 ms frame.
    const { frames } = await run(Array.from({ length: 30 }, (_, k) => frameAt(k, [car(carBox(40 - k, 0))])));
    const markerAt = (k: number) => frames[k]!.hudScene!.primitives.find((p): p is Extract<HudPrimitive, { kind: 'object' }> => p.kind === 'object');
    const late = markerAt(29)!;
    expect(late.positionM.x).toBeGreaterThan(11 - 0.5);
    expect(late.positionM.x).toBeLessThan(11 + 0.5);
    expect(Math.abs(late.positionM.y)).toBeLessThan(0.3);
    expect(late.ttcS).toBeGreaterThan(0.8);
    expect(late.ttcS).toBeLessThan(1.4);
    const levels = frames.map((f) => f.hudScene!.primitives.find((p) => p.kind === 'forward-collision'));
    expect(levels.some((p) => p?.kind === 'forward-collision' && p.level === 'caution')).toBe(true);
    expect(levels.at(-1)).toMatchObject({ kind: 'forward-collision', level: 'critical' });
    expect(frames[29]!.hudScene!.primitives.find((p) => p.kind === 'acc-lead')).toBeDefined();
  });

  it('gives frames without calibration or with time going back a degraded scene, and counts them', async () => {
    const { frames, metrics } = await run([frameAt(0, [car(carBox(30, 0))], false), frameAt(1, []), frameAt(2, [], true, 50_000_000n)]);
    expect(frames[0]!.hudScene!.degraded).toBe(true);
    expect(frames[0]!.hudScene!.primitives.map((p) => p.kind)).toEqual(['speed']);
    expect(frames[1]!.hudScene!.degraded).toBe(false);
    expect(frames[2]!.hudScene!.degraded).toBe(true);
    expect(metrics.counter('world.noCalibration')).toBe(1);
    expect(metrics.counter('world.timeNotIncreasing')).toBe(1);
  });

  it("keeps one camera model (and the lane detector's state) while the calibration repeats with every frame", async () => {
    const frames = Array.from({ length: 3 }, (_, k) => frameAt(k, []));
    for (const frame of frames) frame.camera = structuredClone(INTRINSICS);
    const changed = frameAt(3, []);
    changed.camera = { ...INTRINSICS, fx: INTRINSICS.fx + 1 };
    const { metrics } = await run([...frames, changed]);
    expect(metrics.counter('world.cameraModels')).toBe(2);
  });

  it('counts inverted boxes and keeps going', async () => {
    const { frames, metrics } = await run([frameAt(0, [car([500, 600, 400, 500])]), frameAt(1, [car(carBox(30, 0))])]);
    expect(frames).toHaveLength(2);
    expect(metrics.counter('world.badBoxes')).toBe(1);
  });
});
