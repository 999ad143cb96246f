import { describe, expect, it } from 'vitest';
import {
  AdasEngine,
  EGO_HALF_WIDTH_M,
  FCW_CAUTION_TTC_S,
  LDW_MIN_SPEED_MPS,
  RELEASE_HOLD_S,
  WORLD_VALIDITY_NS,
  buildHudScene,
  levelForTtc,
  type AdasObject,
  type AdasOutput,
} from '../../perception/adas/index.js';
import { hudSceneToJson, parseHudScene } from '../../render/hud-scene.js';

const STEP_NS = 100_000_000n;
const car = (x: number, y: number, vx: number, vy = 0): AdasObject => ({ trackId: 'lead', objectClass: 'car', positionM: { x, y }, relativeVelocityMps: { x: vx, y: vy }, widthM: 1.8 });

/** Runs `steps` updates 100 ms apart and returns the first step at which `pick` changes to each value. */
function timeline<T>(steps: number, input: (k: number) => Parameters<AdasEngine['update']>[0], pick: (out: AdasOutput) => T): [number, T][] {
  const engine = new AdasEngine();
  const changes: [number, T][] = [];
  for (let k = 0; k < steps; k++) {
    const value = pick(engine.update(input(k))!);
    if (changes.length === 0 || changes.at(-1)![1] !== value) changes.push([k, value]);
  }
  return changes;
}

describe('forward-collision warning', () => {
  it('stages caution, warning, critical as a closing lead vehicle gets nearer, and releases after the hold', () => {
    // 1 m closer per 100 ms step (10 m/s closing): TTC = (45 - k) / 10 s; closing stops at k = 35.
    const changes = timeline(
      50,
      (k) => ({ tNs: BigInt(k) * STEP_NS, egoSpeedMps: 15, egoYawRateRps: 0, objects: [car(45 - Math.min(k, 35), 0.2, k < 35 ? -10 : 0)] }),
      (out) => out.forwardCollision?.level ?? 'none',
    );
    // caution: TTC < 4 s from k = 6, confirmed on the 2nd update; warning: TTC < 2.6 s from k = 20,
    // confirmed at 21; critical: TTC < 1.6 s from k = 30, at once; released 0.6 s after closing stops.
    expect(changes).toEqual([
      [0, 'none'],
      [7, 'caution'],
      [21, 'warning'],
      [30, 'critical'],
      [35 + RELEASE_HOLD_S * 10, 'none'],
    ]);
  });

  it('waits until the tracker is sure an object closes in, and does not sweep a parked car into the path on lateral velocity noise', () => {
    const level = (object: AdasObject) => timeline(3, (k) => ({ tNs: BigInt(k) * STEP_NS, egoSpeedMps: 5, egoYawRateRps: 0, objects: [object] }), (out) => out.forwardCollision?.level ?? 'none').at(-1)![1];
    // Closing at 5 m/s from 7 m (TTC 1.4 s): critical when the estimate is good to 1 m/s...
    expect(level({ ...car(7, 0.3, -5), velocitySigmaMps: 1 })).toBe('critical');
    // ...nothing while its uncertainty still covers "not closing" (a young track).
    expect(level({ ...car(7, 0.3, -5), velocitySigmaMps: 6 })).toBe('none');
    // A parked car 2.9 m right of the path (its left edge 2 m out), 0.6 m/s of lateral noise on a
    // 1.5 m/s-uncertain estimate: not in the path...
    expect(level({ ...car(7, -2.9, -5, 0.6), velocitySigmaMps: 1.5 })).toBe('none');
    // ...while the same lateral speed, known to 0.1 m/s, does carry it into the corridor in time.
    expect(level({ ...car(7, -2.9, -5, 0.6), velocitySigmaMps: 0.1 })).toBe('critical');
    // Labelled lateral extents replace the class width: a wide object reaching into the corridor.
    expect(level({ ...car(7, -2.9, -5), lateralExtentM: { leftM: -1.2, rightM: -4 } })).toBe('critical');
    expect(level({ ...car(7, -2.9, -5), lateralExtentM: { leftM: -1.9, rightM: -4 } })).toBe('none');
  });

  it('does not flicker when TTC hovers at a threshold', () => {
    // Two updates clearly inside caution, then TTC alternates 0.05 s either side of the threshold.
    const ttcAt = (k: number) => (k < 2 ? FCW_CAUTION_TTC_S - 0.1 : k % 2 === 0 ? FCW_CAUTION_TTC_S - 0.05 : FCW_CAUTION_TTC_S + 0.05);
    const changes = timeline(40, (k) => ({ tNs: BigInt(k) * STEP_NS, egoSpeedMps: 15, egoYawRateRps: 0, objects: [car(10 * ttcAt(k), 0, -10)] }), (out) => out.forwardCollision?.level ?? 'none');
    expect(changes).toEqual([
      [0, 'none'],
      [1, 'caution'],
    ]);
    // A single noisy frame never raises a warning either.
    const blip = timeline(10, (k) => ({ tNs: BigInt(k) * STEP_NS, egoSpeedMps: 15, egoYawRateRps: 0, objects: [car(k === 4 ? 35 : 50, 0, -10)] }), (out) => out.forwardCollision?.level ?? 'none');
    expect(blip).toEqual([[0, 'none']]);
  });

  it('ignores vehicles outside the path corridor and follows the path into a curve', () => {
    const engine = new AdasEngine();
    const beside = engine.update({ tNs: 0n, egoSpeedMps: 15, egoYawRateRps: 0, objects: [car(20, 4, -10)] })!;
    expect(beside.objects[0]).toMatchObject({ inPath: false, warning: 'none' });
    expect(beside.objects[0]!.ttcS).toBeUndefined();
    // Turning left at 0.3 rad/s and 15 m/s: the path at 20 m is 0.5 * (0.3 / 15) * 400 = 4 m to the left.
    const curve = new AdasEngine().update({ tNs: 0n, egoSpeedMps: 15, egoYawRateRps: 0.3, objects: [car(20, 4, -10)] })!;
    expect(curve.objects[0]).toMatchObject({ inPath: true, ttcS: 2 });
  });

  it('levels follow the thresholds exactly', () => {
    expect([5, 3.99, 2.59, 1.59, -1, undefined].map(levelForTtc)).toEqual(['none', 'caution', 'warning', 'critical', 'none', 'none']);
  });
});

describe('vulnerable road users', () => {
  const walker = (id: string, y: number, vy: number): AdasObject => ({ trackId: id, objectClass: 'person', positionM: { x: 30, y }, relativeVelocityMps: { x: -10, y: vy }, widthM: 0.6 });

  it('warns for a pedestrian walking into the path, not for one walking away or standing on the kerb', () => {
    const engine = new AdasEngine();
    let out: AdasOutput | undefined;
    for (let k = 0; k < 3; k++) {
      out = engine.update({ tNs: BigInt(k) * STEP_NS, egoSpeedMps: 10, egoYawRateRps: 0, objects: [walker('crossing', 6, -1.5), walker('leaving', 6, 1.5), walker('kerb', 4, 0)] });
    }
    const byId = new Map(out!.objects.map((o) => [o.trackId, o]));
    expect(byId.get('crossing')).toMatchObject({ inPath: true, warning: 'caution' });
    expect(byId.get('leaving')).toMatchObject({ inPath: false, warning: 'none' });
    expect(byId.get('kerb')).toMatchObject({ inPath: false, warning: 'none' });
    expect(out!.forwardCollision?.trackId).toBe('crossing');
  });
});

describe('lane-departure warning', () => {
  const STEP = 125_000_000n; // 1/8 s: the offsets below stay exact in binary floating point
  const lane = (offsetM: number, confidence = 0.9) => ({ lateralOffsetM: offsetM, laneWidthM: 3.6, leftConfidence: confidence, rightConfidence: confidence });

  it('warns when drifting right would cross the boundary within the time limit, and releases after the hold', () => {
    // Drifting right at 0.5 m/s (1/16 m per step) until k = 12, then holding the line.
    const changes = timeline(
      24,
      (k) => ({ tNs: BigInt(k) * STEP, egoSpeedMps: 25, egoYawRateRps: 0, objects: [], lane: lane(Math.min(k, 12) / 16) }),
      (out) => out.laneDeparture?.side ?? 'none',
    );
    // Distance to the right line: 1.8 - EGO_HALF_WIDTH_M - offset; crossing within 0.8 s once offset > 0.45 m.
    expect(EGO_HALF_WIDTH_M).toBe(0.95);
    expect(changes).toEqual([
      [0, 'none'],
      [8, 'right'],
      // k = 13 is the first update without drift; 5 steps of 1/8 s later (0.625 s >= the 0.6 s hold) it ends.
      [18, 'none'],
    ]);
  });

  it('stays quiet below the LDW speed and with untrusted lane boundaries', () => {
    const slow = timeline(12, (k) => ({ tNs: BigInt(k) * STEP, egoSpeedMps: LDW_MIN_SPEED_MPS - 0.1, egoYawRateRps: 0, objects: [], lane: lane(k / 16) }), (out) => out.laneDeparture?.side ?? 'none');
    expect(slow).toEqual([[0, 'none']]);
    const unsure = timeline(12, (k) => ({ tNs: BigInt(k) * STEP, egoSpeedMps: 25, egoYawRateRps: 0, objects: [], lane: lane(k / 16, 0.2) }), (out) => out.laneDeparture?.side ?? 'none');
    expect(unsure).toEqual([[0, 'none']]);
  });
});

describe('ACC lead and bad input', () => {
  it('selects the nearest vehicle in the lane ahead, not pedestrians or vehicles beside', () => {
    const out = new AdasEngine().update({
      tNs: 0n,
      egoSpeedMps: 20,
      egoYawRateRps: 0,
      objects: [
        { ...car(60, 0.3, 0), trackId: 'far' },
        { ...car(35, -0.4, 0), trackId: 'near' },
        { ...car(20, 3.5, 0), trackId: 'beside' },
        { trackId: 'ped', objectClass: 'person', positionM: { x: 15, y: 0 }, relativeVelocityMps: { x: 0, y: 0 }, widthM: 0.6 },
      ],
    })!;
    expect(out.accLead).toEqual({ trackId: 'near', gapM: 35 });
  });

  it('refuses time going backwards and skips non-finite positions', () => {
    const engine = new AdasEngine();
    expect(engine.update({ tNs: 10n, egoSpeedMps: 10, egoYawRateRps: 0, objects: [car(NaN, 0, -10)] })!.objects).toEqual([]);
    expect(engine.update({ tNs: 5n, egoSpeedMps: 10, egoYawRateRps: 0, objects: [] })).toBeUndefined();
    expect(engine.rejectedUpdates).toBe(1);
  });
});

describe('buildHudScene', () => {
  const boundary = (role: 'ego-left' | 'left-adjacent', c0: number, confidence: number) => ({ role, coefficients: [c0, 0, 0.001, 0] as [number, number, number, number], xMinM: 2, xMaxM: 60, confidence, lineType: 'solid' as const });

  it('draws lanes from 5 m, objects with their warnings, the banner and the lead, all valid for a short time', () => {
    const tCaptureNs = 7_000_000_000n;
    const objects = [car(30, 0, -10)];
    const adas: AdasOutput = { tNs: tCaptureNs, objects: [{ trackId: 'lead', warning: 'warning', ttcS: 2.2, inPath: true }], forwardCollision: { level: 'warning', ttcS: 2.2, trackId: 'lead' }, accLead: { trackId: 'lead', gapM: 30 } };
    const scene = buildHudScene({ tCaptureNs, egoSpeedMps: 12, objects, lanes: [boundary('ego-left', 1.8, 0.9), boundary('left-adjacent', 5.4, 0.1)], adas });
    expect(parseHudScene(hudSceneToJson(scene), 'scene')).toEqual(scene);
    const lanes = scene.primitives.filter((p) => p.kind === 'lane');
    expect(lanes).toHaveLength(1); // the low-confidence adjacent boundary is not drawn
    expect(lanes[0]!.pointsM[0]).toEqual([5, 1.8 + 0.001 * 25]);
    expect(lanes[0]!.pointsM.at(-1)![0]).toBe(60);
    expect(scene.primitives.map((p) => p.kind)).toEqual(['lane', 'object', 'forward-collision', 'acc-lead', 'speed']);
    expect(scene.primitives.every((p) => p.validUntilNs === tCaptureNs + WORLD_VALIDITY_NS)).toBe(true);
    expect(scene.primitives.find((p) => p.kind === 'object')).toMatchObject({ warning: 'warning', ttcS: 2.2 });
  });

  it('shows only the speed when perception is degraded', () => {
    const scene = buildHudScene({ tCaptureNs: 0n, egoSpeedMps: 12, degraded: true, objects: [car(30, 0, -10)], lanes: [boundary('ego-left', 1.8, 0.9)] });
    expect(scene.degraded).toBe(true);
    expect(scene.primitives.map((p) => p.kind)).toEqual(['speed']);
  });
});
