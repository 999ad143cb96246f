// Runtime faults end to end: a stage that throws, hangs or returns garbage, a source whose time
// jumps or that stalls, and a display broker that goes away — the pipeline keeps running, counts
// the fault, withholds AR overlays while it cannot trust them and brings them back when it can.
// Real parts where they run here: the PandaSet drive, the default detector (wrapped only to inject
// the fault), the world model, ffmpeg behind LiveCamera and the embedded MQTT broker.
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Subject, lastValueFrom, toArray, type OperatorFunction, type Subscription } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRuntimeGraph } from '../../bin/runtime-graph.js';
import { EmbeddedBroker } from '../../hud/broker.js';
import { readHudFrameHeader } from '../../hud/frame-codec.js';
import { HudLink } from '../../hud/link.js';
import { linkExtension } from '../../hud/link-stage.js';
import { hudTopics } from '../../hud/topics.js';
import { Detector } from '../../perception/detect/detector.js';
import { detectExtension } from '../../perception/detect/stage.js';
import type { Detection } from '../../perception/detect/types.js';
import { ensureDefaultDetector } from '../../perception/models/default-detector.js';
import { CameraModel, type CameraMounting } from '../../perception/world/camera-model.js';
import { loadCameraMounting } from '../../perception/world/mounting-file.js';
import { DETECTION_STALE_NS, worldExtension } from '../../perception/world/stage.js';
import { BufferPool } from '../../pipeline/buffer-pool.js';
import { RealClock, SimulatedClock } from '../../pipeline/clock.js';
import { Frame, type CameraIntrinsics } from '../../pipeline/frame.js';
import { ImageView } from '../../pipeline/image.js';
import { PipelineMetrics } from '../../pipeline/metrics.js';
import { runReplay, type ReplayExtensionFactory } from '../../pipeline/replay.js';
import { LiveCamera, type LiveCameraEvent } from '../../pipeline/sources/live-camera.js';
import { StageWatchdog, watchdogCheckStage, type StageFault } from '../../pipeline/watchdog.js';
import { HUD_SCENE_VERSION, type HudPrimitive, type HudScene } from '../../render/hud-scene.js';
import { defaultSceneOf } from '../../render/render-stage.js';
import { DATA_DIR, importedPandasetDrive, tempDir } from '../support/data.js';
import { Inbox, testClient, testFrame, waitFor } from '../hud/support.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);

/** What a test keeps of a finished frame (the frame itself is released after onFrame). */
interface FrameRecord {
  seq: number;
  safeBlank: boolean | undefined;
  faults: StageFault[];
  detections: Detection[] | undefined;
  /** The world model's scene (frame.hudScene from the adas stage). */
  worldScene: HudScene | undefined;
  /** What the render stage would draw (defaultSceneOf). */
  drawn: HudScene;
  stamps: { stage: string; ms: number }[];
}

function recordOf(frame: Frame): FrameRecord {
  return {
    seq: frame.seq,
    safeBlank: frame.safeBlank,
    faults: [...(frame.stageFaults ?? [])],
    detections: frame.detections,
    worldScene: frame.hudScene,
    drawn: defaultSceneOf(frame),
    stamps: frame.stamps.map((s) => ({ stage: s.stage, ms: Number(s.tExitNs - s.tEnterNs) / 1e6 })),
  };
}

/** AR (world-registered) content: anything but the speed status. */
const worldPrimitives = (scene: HudScene | undefined): HudPrimitive[] => (scene?.primitives ?? []).filter((p) => p.kind !== 'speed');

/**
 * The real detector with a fault injected: `inject(call)` may return what call number `call` gives
 * instead of the real result (a rejection, a promise that never settles, garbage); undefined = real.
 */
function injected(real: Detector, inject: (call: number) => Promise<unknown> | undefined): { detector: Detector; calls: () => number } {
  let call = 0;
  const detector = {
    card: real.card,
    detect: (image: ImageView) => {
      const n = call++;
      return inject(n) ?? real.detect(image);
    },
  } as unknown as Detector;
  return { detector, calls: () => call };
}

/** Expected safeBlank per frame for faults on `faultyIndexes` with recovery after `recover` healthy frames. */
function expectedBlanking(count: number, faultyIndexes: readonly number[], recover = 5): boolean[] {
  let blanked = false;
  let healthy = 0;
  return Array.from({ length: count }, (_, i) => {
    if (faultyIndexes.includes(i)) {
      blanked = true;
      healthy = 0;
    } else if (blanked && ++healthy >= recover) blanked = false;
    return blanked;
  });
}

/**
 * Frames with a fault other than the injected ones: the real detector overrunning its default
 * 300 ms limit on a loaded machine (it takes ~60-150 ms here). Tolerated, counted and logged, so the
 * blanking expected is computed from every faulty frame, not assumed.
 */
function unplannedFaults(records: readonly FrameRecord[], injectedIndexes: readonly number[]): number[] {
  const unplanned = records.flatMap((r, i) => (r.faults.length > 0 && !injectedIndexes.includes(i) ? [i] : []));
  for (const i of unplanned) {
    // Only overruns of a slow real inference are acceptable noise; any other fault fails the test.
    expect(records[i]!.faults.every((f) => f.stage === 'detect' && f.kind === 'overrun')).toBe(true);
    console.warn(`runtime-faults: frame ${i}: unplanned ${records[i]!.faults.map((f) => `${f.stage} ${f.kind}: ${f.message}`).join('; ')}`);
  }
  return unplanned;
}

describe('runtime faults in the full graph on the PandaSet drive', () => {
  let drive: string;
  let real: Detector;
  let mounting: CameraMounting;

  beforeAll(async () => {
    drive = await importedPandasetDrive();
    const built = await ensureDefaultDetector(DATA_DIR);
    real = await Detector.create(built.int8Card);
    mounting = await loadCameraMounting('pandaset-002');
  }, 240_000);

  afterAll(async () => {
    await (real as Detector | undefined)?.dispose();
  });

  /** Runs the first `endS` seconds of the drive afap under `watchdog`, collecting every frame. */
  async function replay(extensions: ReplayExtensionFactory[], watchdog: StageWatchdog, metrics: PipelineMetrics, clock: RealClock, endS = 1.55) {
    const records: FrameRecord[] = [];
    const output = path.join(await tempDir('arhud-faults-'), 'out.mcap');
    const started = performance.now();
    const summary = await runReplay({ input: drive, output, pacing: 'afap', endS, extensions, watchdog, metrics, clock, onFrame: (f) => records.push(recordOf(f)) });
    return { summary, records, wallMs: performance.now() - started };
  }

  it('a detector that throws on one frame: counted once, that frame and the next 4 blanked (status only, degraded), overlays back on the 5th healthy frame', async () => {
    const FAULTY_CALL = 3;
    const { detector } = injected(real, (n) => (n === FAULTY_CALL ? Promise.reject(new Error('accelerator lost')) : undefined));
    const clock = new RealClock();
    const metrics = new PipelineMetrics();
    const graph = buildRuntimeGraph({ clock, metrics, detector, world: { mounting }, guard: true });
    expect(graph.watchdog).toBeDefined();
    const { summary, records } = await replay(graph.extensions, graph.watchdog!, metrics, clock);
    graph.close();

    expect(records.length).toBeGreaterThanOrEqual(12);
    expect(summary.frames).toBe(records.length);
    // Exactly one fault in the whole run, on the 4th frame (the detect stage runs one frame at a time, in order).
    expect(summary.counters['watchdog.detect.faults']).toBe(1);
    const faulty = FAULTY_CALL;
    expect(records[faulty]!.faults).toEqual([expect.objectContaining({ stage: 'detect', kind: 'fault', message: 'accelerator lost' })]);
    expect(records[faulty]!.detections).toBeUndefined();
    const unplanned = unplannedFaults(records, [faulty]);
    expect(graph.watchdog!.stats).toMatchObject({ faults: 1, overruns: unplanned.length });
    expect(records.map((r) => r.safeBlank)).toEqual(expectedBlanking(records.length, [faulty, ...unplanned]));
    if (unplanned.length === 0) {
      // The plain case: that frame and the next 4 blanked, the 5th healthy one not.
      expect(records.slice(faulty, faulty + 6).map((r) => r.safeBlank)).toEqual([true, true, true, true, true, false]);
      expect(graph.watchdog!.stats).toMatchObject({ blanks: 1, recoveries: 1 });
      expect(summary.counters['watchdog.blankedFrames']).toBe(5);
    }

    // Blanked frames: what is drawn is the status only, flagged degraded — even where the world
    // model still had objects (coasting tracks on the faulty frame).
    for (const r of records.slice(faulty, faulty + 5)) {
      expect(r.drawn.degraded).toBe(true);
      expect(worldPrimitives(r.drawn)).toEqual([]);
      expect(r.drawn.primitives.map((p) => p.kind)).toEqual(['speed']);
    }
    expect(records.slice(faulty, faulty + 5).some((r) => worldPrimitives(r.worldScene).some((p) => p.kind === 'object'))).toBe(true);
    // After recovery the world model's scene is drawn again, objects included (the drive has cars ahead).
    const after = records.slice(faulty + 5).filter((r) => !r.safeBlank);
    expect(after.length).toBeGreaterThanOrEqual(3);
    for (const r of after) expect(r.drawn).toBe(r.worldScene);
    expect(after.some((r) => r.drawn.primitives.some((p) => p.kind === 'object'))).toBe(true);
  });

  it('a detector that hangs on one frame: abandoned at 3 x its deadline, counted as an overrun, the run goes on and later frames get detections', async () => {
    const HUNG_CALL = 3;
    const DEADLINE_MS = 300;
    let release!: () => void;
    const hung = new Promise<Detection[]>((resolve) => (release = () => resolve([])));
    let hungAt: number | undefined;
    const { detector } = injected(real, (n) => {
      if (n !== HUNG_CALL) return undefined;
      hungAt = performance.now();
      return hung;
    });
    const clock = new RealClock();
    const metrics = new PipelineMetrics();
    const watchdog = new StageWatchdog({ clock, metrics });
    const extensions: ReplayExtensionFactory[] = [
      detectExtension(detector, { deadlineMs: DEADLINE_MS }),
      worldExtension({ mounting }),
      (context) => ({ stages: [watchdogCheckStage(watchdog, context)] }),
    ];
    const { summary, records, wallMs } = await replay(extensions, watchdog, metrics, clock);

    expect(wallMs).toBeLessThan(5000);
    expect(hungAt).toBeDefined();
    expect(summary.counters['watchdog.detect.overruns']).toBe(1);
    expect(watchdog.stats).toMatchObject({ faults: 0, overruns: 1, blanks: 1, recoveries: 1 });
    const hungIndex = records.findIndex((r) => r.faults.length > 0);
    expect(hungIndex).toBe(HUNG_CALL);
    expect(records[hungIndex]!.faults).toEqual([expect.objectContaining({ stage: 'detect', kind: 'overrun', message: expect.stringContaining(`3 x its ${DEADLINE_MS} ms deadline`) })]);
    expect(records[hungIndex]!.detections).toBeUndefined();
    // The stage waited for the hung call exactly as long as the limit (3 x 300 ms), not longer.
    const waitedMs = records[hungIndex]!.stamps.find((s) => s.stage === 'detect')!.ms;
    expect(waitedMs).toBeGreaterThanOrEqual(3 * DEADLINE_MS - 5);
    expect(waitedMs).toBeLessThan(3 * DEADLINE_MS + 1000);
    expect(records.map((r) => r.safeBlank)).toEqual(expectedBlanking(records.length, [hungIndex]));
    // Every later frame ran the (real) detector and got its boxes.
    const later = records.slice(hungIndex + 1);
    expect(later.length).toBeGreaterThanOrEqual(5);
    for (const r of later) expect(r.detections).toBeDefined();
    expect(later.some((r) => (r.detections?.length ?? 0) > 0)).toBe(true);

    // The hung call's result, when it finally comes, is dropped and counted, not written anywhere.
    expect(watchdog.stats.lateResultsDropped).toBe(0);
    release();
    await sleep(0);
    await sleep(0);
    expect(watchdog.stats.lateResultsDropped).toBe(1);
    expect(metrics.counter('watchdog.detect.lateResultsDropped')).toBe(1);
  });

  it('garbage detector output (a NaN box, a score of 7): a fault naming the field each time, no detections on those frames, overlays blanked and back', async () => {
    const garbage = new Map<number, Detection[]>([
      [3, [{ classId: 2, className: 'car', hudClass: 'car', score: 0.9, box: [Number.NaN, 0, 10, 10] }]],
      [5, [{ classId: 2, className: 'car', hudClass: 'car', score: 7, box: [100, 100, 200, 200] }]],
    ]);
    const { detector } = injected(real, (n) => {
      const output = garbage.get(n);
      return output ? Promise.resolve(output) : undefined;
    });
    const clock = new RealClock();
    const metrics = new PipelineMetrics();
    const graph = buildRuntimeGraph({ clock, metrics, detector, world: { mounting }, guard: true });
    const { summary, records } = await replay(graph.extensions, graph.watchdog!, metrics, clock, 1.65);
    graph.close();

    expect(records.length).toBeGreaterThanOrEqual(13);
    expect(summary.counters['watchdog.detect.faults']).toBe(2);
    const unplanned = unplannedFaults(records, [3, 5]);
    expect(graph.watchdog!.stats).toMatchObject({ faults: 2, overruns: unplanned.length });
    if (unplanned.length === 0) expect(graph.watchdog!.stats).toMatchObject({ blanks: 1, recoveries: 1 });
    expect(records[3]!.faults[0]).toMatchObject({ stage: 'detect', kind: 'fault', message: expect.stringMatching(/field 'box' must be 4 finite numbers/) });
    expect(records[5]!.faults[0]).toMatchObject({ stage: 'detect', kind: 'fault', message: expect.stringMatching(/field 'score' must be in \[0, 1\], got 7/) });
    // The garbage never reaches the world model: those frames carry no detections at all.
    expect(records[3]!.detections).toBeUndefined();
    expect(records[5]!.detections).toBeUndefined();
    expect(records[4]!.detections).toBeDefined();
    // Blanked from the first garbage to the 5th healthy frame after the second one (frames 3..9), back at 10.
    expect(records.map((r) => r.safeBlank)).toEqual(expectedBlanking(records.length, [3, 5, ...unplanned]));
    expect(records.slice(3, 10).every((r) => r.drawn.degraded && worldPrimitives(r.drawn).length === 0)).toBe(true);
    if (!unplanned.some((i) => i < 10)) expect(records[10]!.safeBlank).toBe(false);
    expect(records.slice(10).some((r) => r.drawn.primitives.some((p) => p.kind === 'object'))).toBe(true);
  });
});

describe('a source whose capture time jumps (world model stages on crafted frames)', () => {
  const INTRINSICS: CameraIntrinsics = { width: 1920, height: 1080, fx: 1970, fy: 1970, cx: 970, cy: 483, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] };
  const IMAGE = ImageView.packed(4, 4, 'rgb8', new Uint8Array(48));
  const FRAME_NS = 100_000_000n;
  const T0 = 1_557_539_956_000_000_000n;

  async function worldStages() {
    const mounting = await loadCameraMounting('pandaset-002');
    const camera = new CameraModel(INTRINSICS, mounting);
    const metrics = new PipelineMetrics();
    const stages = worldExtension({ mounting, lanes: false })({ clock: new SimulatedClock(), metrics }).stages ?? [];
    expect(stages).toHaveLength(3);
    /** The detector's box of a car whose rear is at (xM, yM): 1.8 m wide, 1.5 m tall. */
    const carAt = (xM: number, yM: number): Detection => {
      const corners = [
        { x: xM, y: yM + 0.9, z: 0 },
        { x: xM, y: yM - 0.9, z: 1.5 },
      ].map((p) => {
        const out = { uPx: 0, vPx: 0 };
        expect(camera.projectVehiclePoint(p, out)).toBe(true);
        return out;
      });
      return { classId: 2, className: 'car', hudClass: 'car', score: 0.9, box: [corners[0]!.uPx, corners[1]!.vPx, corners[1]!.uPx, corners[0]!.vPx] };
    };
    const frameAt = (seq: number, tNs: bigint, detections: Detection[] | undefined) => {
      const frame = new Frame({ seq, tCaptureNs: tNs, image: IMAGE, vehicle: { tNs, speedMps: 0, yawRateRps: 0 }, camera: INTRINSICS });
      frame.detections = detections;
      return frame;
    };
    return { metrics, stages, carAt, frameAt };
  }

  /** Pushes `frames` through `stages` in order and collects them. */
  async function fromFrames(frames: Frame[], stages: OperatorFunction<Frame, Frame>[]): Promise<Frame[]> {
    const input = new Subject<Frame>();
    const out = lastValueFrom(stages.reduce((stream, op) => stream.pipe(op), input.asObservable()).pipe(toArray()));
    for (const frame of frames) input.next(frame);
    input.complete();
    return out;
  }

  const objectsOf = (frame: Frame) => (frame.hudScene?.primitives ?? []).filter((p): p is Extract<HudPrimitive, { kind: 'object' }> => p.kind === 'object');

  it('a clock reset (time back by more than TIME_RESET_NS) restarts the world model instead of degrading every frame until the old time comes back', async () => {
    const { metrics, stages, carAt, frameAt } = await worldStages();
    const before = Array.from({ length: 6 }, (_, k) => frameAt(k, T0 + 60n * FRAME_NS + BigInt(k) * FRAME_NS, [carAt(30, 0)]));
    // The source restarts 6 s earlier (a looped recording, a restarted camera clock).
    const after = Array.from({ length: 6 }, (_, k) => frameAt(6 + k, T0 + BigInt(k) * FRAME_NS, [carAt(20, 0)]));
    const out = await fromFrames([...before, ...after], stages);
    expect(metrics.counter('world.timeResets')).toBe(1);
    expect(metrics.counter('world.timeNotIncreasing')).toBe(0);
    const oldIds = new Set(objectsOf(out[5]!).map((o) => o.trackId));
    expect(oldIds.size).toBe(1);
    for (const f of out.slice(8)) {
      expect(f.hudScene!.degraded).toBe(false);
      expect(objectsOf(f).some((o) => oldIds.has(o.trackId))).toBe(false);
    }
    expect(objectsOf(out.at(-1)!)).toHaveLength(1);
  });

  it('a frame whose time goes back is degraded and counted; the increasing frames after it are not, and the track survives', async () => {
    const { metrics, stages, carAt, frameAt } = await worldStages();
    const frames = [
      ...Array.from({ length: 8 }, (_, k) => frameAt(k, T0 + BigInt(k) * FRAME_NS, [carAt(30, 0)])),
      // Out of order: captured before frame 7.
      frameAt(8, T0 + 5n * FRAME_NS + FRAME_NS / 2n, [carAt(30, 0)]),
      ...Array.from({ length: 4 }, (_, k) => frameAt(9 + k, T0 + BigInt(8 + k) * FRAME_NS, [carAt(30, 0)])),
    ];
    const out = await fromFrames(frames, stages);
    expect(out.map((f) => f.seq)).toEqual(frames.map((f) => f.seq));
    expect(metrics.counter('world.timeNotIncreasing')).toBe(1);
    const jumped = out[8]!;
    expect(jumped.hudScene!.degraded).toBe(true);
    expect(jumped.hudScene!.primitives.map((p) => p.kind)).toEqual(['speed']);
    const before = objectsOf(out[7]!);
    expect(before).toHaveLength(1);
    for (const f of out.slice(9)) {
      expect(f.hudScene!.degraded).toBe(false);
      // Same car, same track: the out-of-order frame did not disturb the tracker.
      expect(objectsOf(f).map((o) => o.trackId)).toEqual([before[0]!.trackId]);
    }
  });

  it('a forward jump of 10 s: nothing from before is drawn after it; a frame without a detector run is stale (degraded), the next runs build new tracks', async () => {
    const { metrics, stages, carAt, frameAt } = await worldStages();
    const JUMP_NS = 10_000_000_000n;
    const tAfter = (k: number) => T0 + 9n * FRAME_NS + JUMP_NS + BigInt(k) * FRAME_NS;
    const frames = [
      ...Array.from({ length: 10 }, (_, k) => frameAt(k, T0 + BigInt(k) * FRAME_NS, [carAt(25, 0)])),
      // First frame after the jump: the detector did not run (skipped or lost).
      frameAt(10, tAfter(0), undefined),
      // Then runs again, seeing a different car (other lane, farther) — the old one is gone.
      ...Array.from({ length: 6 }, (_, k) => frameAt(11 + k, tAfter(k + 1), [carAt(40, 3.5)])),
    ];
    const out = await fromFrames(frames, stages);
    const oldIds = new Set(objectsOf(out[9]!).map((o) => o.trackId));
    expect(oldIds.size).toBe(1);
    expect(metrics.counter('world.timeNotIncreasing')).toBe(0);

    // The coast frame 10 s on: the newest detector run is 10 s old (> DETECTION_STALE_NS): degraded, no AR objects.
    expect(tAfter(0) - (T0 + 9n * FRAME_NS)).toBeGreaterThan(DETECTION_STALE_NS);
    expect(out[10]!.hudScene!.degraded).toBe(true);
    expect(objectsOf(out[10]!)).toEqual([]);
    expect(metrics.counter('world.detectionsStale')).toBe(1);

    // Afterwards: fresh detections, not stale, and no object of a track from before the jump — in
    // particular nothing at the old car's place, and everything drawn valid at the new time.
    const afterJump = out.slice(11);
    for (const f of afterJump) {
      expect(f.hudScene!.degraded).toBe(false);
      for (const o of objectsOf(f)) {
        expect(oldIds.has(o.trackId)).toBe(false);
        expect(o.validUntilNs).toBeGreaterThan(f.tCaptureNs);
        expect(o.positionM.y).toBeGreaterThan(2); // the new car, in the left lane
      }
      for (const p of f.hudScene!.primitives) expect(p.validUntilNs).toBeGreaterThan(f.tCaptureNs);
    }
    expect(objectsOf(out.at(-1)!)).toHaveLength(1);
  });
});

describe('a live camera that stalls, through watched stages', () => {
  it('keeps the pipeline running across a stall: stall and resumed reported, frames after it processed, no stage fault, no blanking', async () => {
    const dir = await tempDir('arhud-live-faults-');
    const mjpeg = path.join(dir, 'clip.mjpeg');
    await run(ffmpegInstaller.path, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=25', '-frames:v', '10', '-c:v', 'mjpeg', '-f', 'mjpeg', mjpeg]);
    const burst = await readFile(mjpeg);
    await rm(dir, { recursive: true, force: true });
    // An MJPEG-over-HTTP camera: a burst of frames, silence until told, then another burst.
    let sendMore: (() => void) | undefined;
    const server = http.createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'video/x-motion-jpeg' });
      response.write(burst);
      sendMore = () => response.write(burst);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/camera.mjpg`;

    const clock = new RealClock();
    const metrics = new PipelineMetrics();
    const watchdog = new StageWatchdog({ clock, metrics });
    const events: LiveCameraEvent[] = [];
    const camera = new LiveCamera({ source: url, inputFormat: 'mjpeg', widthPx: 64, heightPx: 48, clock, pool: new BufferPool({ name: 'live-faults' }), stallTimeoutMs: 300, startTimeoutMs: 8000, onEvent: (e) => events.push(e) });
    let detectorCalls = 0;
    const detector = { detect: () => Promise.resolve((detectorCalls++, [])) } as unknown as Detector;
    const context = { clock, metrics, watchdog };
    const intrinsics: CameraIntrinsics = { width: 64, height: 48, fx: 66, fy: 66, cx: 32, cy: 24, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] };
    const stages = [
      ...(detectExtension(detector, { deadlineMs: 200 })(context).stages ?? []),
      ...(worldExtension({ mounting: await loadCameraMounting('pandaset-002'), intrinsics, lanes: false })(context).stages ?? []),
      watchdogCheckStage<Frame>(watchdog, context),
    ];
    const done: { seq: number; safeBlank: boolean | undefined; faults: number; degradedByTime: boolean }[] = [];
    let failure: unknown;
    let completed = false;
    let subscription: Subscription | undefined;
    try {
      subscription = stages
        .reduce((stream, op) => stream.pipe(op), camera.frames())
        .subscribe({
          next: (frame) => {
            done.push({ seq: frame.seq, safeBlank: frame.safeBlank, faults: frame.stageFaults?.length ?? 0, degradedByTime: frame.worldDegraded === true });
            frame.release();
          },
          error: (e: unknown) => (failure = e),
          complete: () => (completed = true),
        });
      await waitFor('a stall after the first burst', () => camera.stats.stalls === 1, 15_000);
      const beforeResume = done.length;
      expect(beforeResume).toBeGreaterThanOrEqual(5);
      expect(events.filter((e) => e.kind === 'stall')).toHaveLength(1);
      // Stalled: nothing errors, nothing completes, the watchdog sees no stage fault (a quiet source is not a hung stage).
      await sleep(300);
      expect(failure).toBeUndefined();
      expect(completed).toBe(false);
      expect(watchdog.stats.overruns + watchdog.stats.faults).toBe(0);

      sendMore!();
      await waitFor('frames after the stall', () => done.length >= beforeResume + 5, 15_000);
      const resumed = events.find((e) => e.kind === 'resumed');
      expect(resumed).toMatchObject({ kind: 'resumed', seq: expect.any(Number) });
      const resumedSeq = (resumed as Extract<LiveCameraEvent, { kind: 'resumed' }>).seq;
      // The first frame after the stall is a new one (a burst may lose frames to the bounded queue, counted by the camera).
      expect(resumedSeq).toBeGreaterThan(done[beforeResume - 1]!.seq);
      expect(done.some((d) => d.seq >= resumedSeq)).toBe(true);
      expect((resumed as { stalledMs: number }).stalledMs).toBeGreaterThanOrEqual(300);
      expect(failure).toBeUndefined();
      // Every frame the camera emitted went through every stage, in order, healthy: no blanking, time kept increasing.
      await waitFor('the stages to drain', () => done.length === camera.stats.framesEmitted, 5000);
      expect(done.map((d) => d.seq)).toEqual([...done.map((d) => d.seq)].sort((a, b) => a - b));
      expect(new Set(done.map((d) => d.seq)).size).toBe(done.length);
      expect(done.every((d) => d.faults === 0 && d.safeBlank === false && !d.degradedByTime)).toBe(true);
      expect(detectorCalls).toBe(done.length);
      expect(metrics.counter('world.timeNotIncreasing')).toBe(0);
      // The first frame after the stall had its own detector run: not stale.
      expect(metrics.counter('world.detectionsStale')).toBe(0);
      expect(watchdog.stats).toMatchObject({ faults: 0, overruns: 0, blanks: 0 });
    } finally {
      subscription?.unsubscribe();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('the display broker goes away under the link stage', () => {
  it('keeps the stage flowing (no error, no stall, bounded queue, drops counted) while the broker is gone, and publishes again once it is back', async () => {
    let broker = await EmbeddedBroker.start();
    const port = broker.port;
    const vehicleId = `faults-${process.pid}`;
    const topics = hudTopics(vehicleId);
    const logLines: string[] = [];
    const link = await HudLink.create({ url: broker.url, vehicleId, log: (l) => logLines.push(l), reconnectMinMs: 50, reconnectMaxMs: 200, maxQueuedFrames: 2 });
    const clock = new RealClock();
    const metrics = new PipelineMetrics();
    const watchdog = new StageWatchdog({ clock, metrics });
    const context = { clock, metrics, watchdog };
    const linkStage = linkExtension(link, { timeBase: 'sensor' })(context).stages![0]!;

    const input = new Subject<Frame>();
    const out: Frame[] = [];
    let failure: unknown;
    let completed = false;
    const subscription = input.pipe(linkStage, watchdogCheckStage<Frame>(watchdog, context)).subscribe({
      next: (frame) => out.push(frame),
      error: (e: unknown) => (failure = e),
      complete: () => (completed = true),
    });
    const sizePx = { widthPx: 160, heightPx: 60 };
    let seq = 0;
    /** Feeds one frame carrying a rendered panel and its scene; resolves once it has left the stages. */
    const feed = async () => {
      const tCaptureNs = 1_000_000_000n + BigInt(seq) * 40_000_000n;
      const frame = new Frame({ seq, tCaptureNs, image: ImageView.packed(2, 2, 'rgb8', new Uint8Array(12)), vehicle: { tNs: tCaptureNs, speedMps: 10, yawRateRps: 0 } });
      frame.hudRgba = testFrame(seq);
      frame.hudSizePx = sizePx;
      frame.hudScene = { version: HUD_SCENE_VERSION, tCaptureNs, brightness: 'day', degraded: false, primitives: [{ kind: 'speed', speedMps: 10, validUntilNs: tCaptureNs + 300_000_000n }] };
      seq++;
      const expected = out.length + 1;
      const t0 = performance.now();
      input.next(frame);
      await waitFor(`frame ${frame.seq} out of the link stage`, () => out.length >= expected, 2000);
      const tookMs = performance.now() - t0;
      await sleep(10);
      return tookMs;
    };

    let viewer = await testClient(broker.url, { protocolVersion: 4 });
    try {
      let inbox = new Inbox(viewer);
      await viewer.subscribeAsync(topics.frame);
      for (let i = 0; i < 5; i++) await feed();
      await waitFor('frames at the viewer', () => inbox.on(topics.frame).length === 5);
      const before = link.stats;
      expect(before).toMatchObject({ connected: true, framesPublished: 5, framesDropped: 0, framesQueued: 0 });

      // The broker goes away mid-stream.
      await viewer.endAsync(true);
      await broker.stop();
      await waitFor('the link to notice', () => !link.stats.connected, 5000);
      const FRAMES_WHILE_DOWN = 20;
      const tooks: number[] = [];
      for (let i = 0; i < FRAMES_WHILE_DOWN; i++) tooks.push(await feed());
      // Every frame left the stage promptly: the link never waits on the network.
      expect(out).toHaveLength(5 + FRAMES_WHILE_DOWN);
      expect(Math.max(...tooks)).toBeLessThan(1000);
      expect(failure).toBeUndefined();
      expect(completed).toBe(false);
      const down = link.stats;
      expect(down.connected).toBe(false);
      expect(down.framesPublished).toBe(before.framesPublished);
      // Bounded: only the newest maxQueuedFrames are kept, the rest dropped and counted; one scene kept.
      expect(down.framesQueued).toBe(2);
      expect(down.framesDropped).toBe(FRAMES_WHILE_DOWN - 2);
      expect(down.scenesDropped - before.scenesDropped).toBe(FRAMES_WHILE_DOWN - 1);
      expect(metrics.counter('link.errors')).toBe(0);
      expect(watchdog.stats).toMatchObject({ faults: 0, overruns: 0, blanks: 0 });
      expect(out.every((f) => f.safeBlank === false)).toBe(true);

      // A broker on the same port again: the link reconnects by itself and publishes again.
      broker = await EmbeddedBroker.start({ port });
      await waitFor('the link to reconnect', () => link.stats.connected, 10_000);
      expect(link.stats.reconnects).toBe(1);
      // The two frames kept while down went out on reconnect.
      expect(link.stats.framesPublished).toBe(before.framesPublished + 2);
      expect(link.stats.framesQueued).toBe(0);
      viewer = await testClient(broker.url, { protocolVersion: 4 });
      inbox = new Inbox(viewer);
      await viewer.subscribeAsync(topics.frame);
      const lastSeqBefore = seq - 1;
      for (let i = 0; i < 5; i++) await feed();
      await waitFor('frames after the reconnect', () => inbox.on(topics.frame).length === 5);
      const sequences = inbox.on(topics.frame).map((m) => readHudFrameHeader(m, topics.frame).sequence);
      expect(sequences).toEqual([lastSeqBefore + 1, lastSeqBefore + 2, lastSeqBefore + 3, lastSeqBefore + 4, lastSeqBefore + 5]);
      expect(link.stats).toMatchObject({ connected: true, framesDropped: FRAMES_WHILE_DOWN - 2, framesQueued: 0 });
      expect(logLines.some((l) => l.includes('connection to') && l.includes('lost'))).toBe(true);

      input.complete();
      expect(completed).toBe(true);
      expect(failure).toBeUndefined();
      expect(out.map((f) => f.seq)).toEqual(Array.from({ length: seq }, (_, i) => i));
    } finally {
      subscription.unsubscribe();
      await viewer.endAsync(true).catch(() => undefined);
      await link.dispose();
      await broker.stop();
    }
  });
});
