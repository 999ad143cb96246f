// The composed runtime graph: config pushes over MQTT applied mid-run, the staleness guard of the
// render stage, the per-frame metrics in the output recording, and the live runner on a real
// video through ffmpeg with vehicle signals.
import path from 'node:path';
import mqtt from 'mqtt';
import { from, lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyHudConfig, buildRuntimeGraph } from '../../bin/runtime-graph.js';
import { EmbeddedBroker } from '../../hud/broker.js';
import { HudLink } from '../../hud/link.js';
import { hudTopics } from '../../hud/topics.js';
import { Frame, ImageView, PipelineMetrics, RealClock, RecordingReader, SimulatedClock, TOPIC_FRAME_METRICS, frameMetricsCodec } from '../../pipeline/index.js';
import { BufferPool } from '../../pipeline/buffer-pool.js';
import { CAPTURE_STAMP, runLive } from '../../pipeline/live.js';
import { runReplay } from '../../pipeline/replay.js';
import { LiveCamera } from '../../pipeline/sources/live-camera.js';
import { VehicleSignals } from '../../pipeline/sources/vehicle-signals.js';
import { loadCameraMounting, builtInIntrinsics } from '../../perception/world/mounting-file.js';
import { HudRenderer } from '../../render/hud-renderer.js';
import { HudOptics } from '../../render/optics.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { PERCEPTION_LATE_NS, renderExtension, type HudView } from '../../render/render-stage.js';
import { HudOverlayScene } from '../../render/overlay-scene.js';
import { WarpMesh } from '../../render/warp-mesh.js';
import { DATA_DIR, importedPandasetDrive, tempDir } from '../support/data.js';

const UDACITY_VIDEO = path.join(DATA_DIR, 'udacity-lanelines', 'test_videos', 'solidWhiteRight.mp4');

let renderer: HudRenderer;
const optics = () => new HudOptics(HUD_OPTICS_DEFAULTS);

beforeAll(async () => {
  const o = optics();
  renderer = await HudRenderer.create({ widthPx: o.panel.widthPx, heightPx: o.panel.heightPx });
});
afterAll(() => renderer?.dispose());

describe('config pushed mid-run', () => {
  it('applies a new optics config to the render view from the next frame, and refuses one the renderer cannot take', () => {
    const metrics = new PipelineMetrics();
    const lines: string[] = [];
    const hud = { renderer, optics: optics(), warp: [] };
    const view: HudView = { overlay: new HudOverlayScene(hud.optics), warp: WarpMesh.identity() };
    const before = view.overlay;
    const closer = { ...HUD_OPTICS_DEFAULTS, far: { ...HUD_OPTICS_DEFAULTS.far, vidM: 7.5 } };
    expect(applyHudConfig('optics', closer, { target: view, hud, metrics, log: (l) => lines.push(l) })).toBe(true);
    expect(view.overlay).not.toBe(before);
    expect(hud.optics.far.vidM).toBe(7.5);
    expect(metrics.counter('config.optics.applied')).toBe(1);

    const applied = view.overlay;
    const otherPanel = { ...HUD_OPTICS_DEFAULTS, panel: { widthPx: 800, heightPx: 480 } };
    expect(applyHudConfig('optics', otherPanel, { target: view, hud, metrics, log: (l) => lines.push(l) })).toBe(false);
    expect(view.overlay).toBe(applied);
    expect(metrics.counter('config.optics.refused')).toBe(1);
    expect(lines.at(-1)).toMatch(/config\/optics: not applied: panel 800x480 px differs from the running renderer's 1280x480/);

    expect(applyHudConfig('pipeline', { detect: 'none' }, { target: view, hud, metrics, log: (l) => lines.push(l) })).toBe(false);
    expect(metrics.counter('config.pipeline.deferred')).toBe(1);
  });

  it('takes a config push that arrives over MQTT while the graph runs (real broker, real link)', async () => {
    const broker = await EmbeddedBroker.start();
    const link = await HudLink.create({ url: broker.url, vehicleId: 'cfg' });
    const pusher = await mqtt.connectAsync(broker.url);
    try {
      const metrics = new PipelineMetrics();
      const o = optics();
      const lines: string[] = [];
      const graph = buildRuntimeGraph({
        clock: new RealClock(),
        metrics,
        hud: { renderer, optics: o, warp: [{ region: o.far.region, mesh: WarpMesh.identity() }], recordPanels: false },
        link: { link, timeBase: 'pipeline' },
        log: (l) => lines.push(l),
      });
      const bad = { ...HUD_OPTICS_DEFAULTS, far: { ...HUD_OPTICS_DEFAULTS.far, vidM: -3 } };
      await pusher.publishAsync(hudTopics('cfg').configOptics, JSON.stringify(bad), { qos: 1 });
      await pusher.publishAsync(hudTopics('cfg').configOptics, JSON.stringify({ ...HUD_OPTICS_DEFAULTS, far: { ...HUD_OPTICS_DEFAULTS.far, vidM: 12 } }), { qos: 1 });
      for (let i = 0; i < 50 && metrics.counter('config.optics.applied') === 0; i++) await new Promise((r) => setTimeout(r, 20));
      // The invalid push was refused by the link's schema check and never reached the graph.
      expect(metrics.counter('config.optics.applied')).toBe(1);
      expect(lines).toContain('config/optics: applied from the next frame');
      graph.close();
    } finally {
      await pusher.endAsync();
      await link.dispose();
      await broker.stop();
    }
  });
});

describe('staleness guard at render', () => {
  it("measured display latency: a frame older than PERCEPTION_LATE_NS shows the degraded indicator and no AR content; a fresh one draws it", async () => {
    const clock = new SimulatedClock(10_000_000_000n);
    const metrics = new PipelineMetrics();
    const o = optics();
    const render = renderExtension({ renderer, view: { overlay: new HudOverlayScene(o), warp: WarpMesh.identity() }, displayLatency: 'measured', recordPanels: false })({ clock, metrics }).stages![0]!;
    const image = ImageView.packed(2, 2, 'rgb8', new Uint8Array(12));
    const frameEnteredAgo = (seq: number, agoNs: bigint) => {
      const frame = new Frame({ seq, tCaptureNs: 1_000_000_000n * BigInt(seq + 1), image, vehicle: { tNs: 0n, speedMps: 10, yawRateRps: 0 } });
      frame.stamps.push({ stage: 'decode', tEnterNs: clock.nowNs() - agoNs, tExitNs: clock.nowNs() - agoNs });
      // A world scene with a lane ribbon valid for 300 ms after capture.
      frame.hudScene = {
        version: 1,
        tCaptureNs: frame.tCaptureNs,
        brightness: 'day',
        degraded: false,
        primitives: [{ kind: 'lane', id: 'ego-left', role: 'ego-left', pointsM: [[5, 1.8], [30, 1.8]], lineType: 'solid', confidence: 1, validUntilNs: frame.tCaptureNs + 300_000_000n }],
      } as Frame['hudScene'];
      return frame;
    };
    const late = frameEnteredAgo(0, PERCEPTION_LATE_NS + 10_000_000n);
    const fresh = frameEnteredAgo(1, 30_000_000n);
    const [lateOut, freshOut] = await lastValueFrom(from([late, fresh]).pipe(render, toArray()));
    expect(lateOut!.hudScene!.degraded).toBe(true);
    expect(freshOut!.hudScene!.degraded).toBe(false);
    expect(metrics.counter('render.late')).toBe(1);
  });
});

describe('runtime graph in a real-time replay', () => {
  it('writes one /pipeline/metrics message per frame with per-stage latency and capture-to-publish', async () => {
    const broker = await EmbeddedBroker.start();
    const link = await HudLink.create({ url: broker.url, vehicleId: 'metrics' });
    const output = path.join(await tempDir(), 'out.mcap');
    try {
      const clock = new RealClock();
      const metrics = new PipelineMetrics();
      const o = optics();
      const graph = buildRuntimeGraph({
        clock,
        metrics,
        world: { mounting: await loadCameraMounting('pandaset-002') },
        hud: { renderer, optics: o, warp: [{ region: o.far.region, mesh: WarpMesh.identity() }] },
        link: { link, timeBase: 'pipeline' },
        guard: true,
        displayLatency: 'measured',
      });
      const summary = await runReplay({ input: await importedPandasetDrive(), output, pacing: { speed: 2 }, endS: 1, extensions: graph.extensions, watchdog: graph.watchdog, metrics, clock });
      graph.close();
      const reader = await RecordingReader.open(output);
      const messages = [];
      for await (const m of reader.messages({ topics: [TOPIC_FRAME_METRICS] })) messages.push(frameMetricsCodec.decode(m.data));
      await reader.close();
      expect(messages).toHaveLength(summary.frames);
      for (const m of messages) {
        expect(Object.keys(m.stageMs)).toEqual(expect.arrayContaining(['decode', 'track', 'lanes', 'adas', 'watchdog', 'render', 'link']));
        expect(m.captureToPublishMs).toBeGreaterThan(m.stageMs['render']!);
        expect(m.faults).toEqual([]);
      }
    } finally {
      await link.dispose();
      await broker.stop();
    }
  });
});

describe('runLive (the `arhud run` runner)', () => {
  it('runs the Udacity video through ffmpeg with fresh vehicle signals: capture stamp first, state attached, output recorded, stops at its duration', async () => {
    const clock = new RealClock();
    const metrics = new PipelineMetrics();
    const signals = new VehicleSignals({ timestamps: 'arrival', clock });
    let payloadMs = Date.now();
    const feed = () => signals.push(JSON.stringify({ timestamp: { sec: Math.floor(payloadMs / 1000), nsec: (payloadMs++ % 1000) * 1e6 }, speedMps: 25, yawRateRps: 0 }));
    feed();
    const feeder = setInterval(feed, 20);
    const camera = new LiveCamera({ source: UDACITY_VIDEO, widthPx: 480, heightPx: 270, clock, pool: new BufferPool({ name: 'test-camera' }) });
    const output = path.join(await tempDir(), 'live.mcap');
    const frames: { first: string | undefined; speed: number | undefined; hasCamera: boolean }[] = [];
    const intrinsics = { ...builtInIntrinsics('udacity-solidwhiteright')!, width: 480, height: 270, fx: 415.7, fy: 415.7, cx: 239.5, cy: 134.5 };
    const graph = buildRuntimeGraph({ clock, metrics, world: { mounting: await loadCameraMounting('udacity-solidwhiteright'), intrinsics }, guard: true });
    try {
      const summary = await runLive({
        camera,
        clock,
        metrics,
        signals,
        intrinsics,
        extensions: graph.extensions,
        watchdog: graph.watchdog,
        output,
        durationS: 1.5,
        onFrame: (f) => frames.push({ first: f.stamps[0]?.stage, speed: f.vehicle?.speedMps, hasCamera: f.camera !== undefined }),
      });
      expect(summary.frames).toBeGreaterThan(15);
      expect(summary.wallS).toBeLessThan(4);
      expect(frames.every((f) => f.first === CAPTURE_STAMP && f.speed === 25 && f.hasCamera)).toBe(true);
      expect(summary.stages['track']?.count).toBe(summary.frames);
      // No link stage in this graph: nothing was published, so no capture-to-publish figure.
      expect(summary.stages['capture_to_publish']).toBeUndefined();
      const reader = await RecordingReader.open(output);
      expect(reader.topic(TOPIC_FRAME_METRICS)?.messageCount).toBe(summary.frames);
      await reader.close();
    } finally {
      clearInterval(feeder);
      graph.close();
    }
  });

  it('without signals the frames carry no vehicle state and it is counted (the HUD shows degraded)', async () => {
    const clock = new RealClock();
    const metrics = new PipelineMetrics();
    const camera = new LiveCamera({ source: UDACITY_VIDEO, widthPx: 320, heightPx: 180, clock, pool: new BufferPool({ name: 'test-camera-2' }) });
    const summary = await runLive({ camera, clock, metrics, signals: new VehicleSignals({ timestamps: 'arrival', clock }), durationS: 0.6 });
    expect(summary.frames).toBeGreaterThan(3);
    expect(metrics.counter('signals.missingOrStale')).toBe(summary.frames);
  });
});
