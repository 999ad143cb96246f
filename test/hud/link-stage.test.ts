/** The link as a replay stage: HUD panel, scene and camera preview of each frame go out over MQTT. */
import { from, lastValueFrom, toArray } from 'rxjs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../hud/broker.js';
import { decodeCameraPreview, decodeHudFrame } from '../../hud/frame-codec.js';
import { HudLink } from '../../hud/link.js';
import { linkExtension, renderTimeNs } from '../../hud/link-stage.js';
import { hudTopics, parseScenePayload } from '../../hud/topics.js';
import { Frame, ImageView, PipelineMetrics, RealClock, SimulatedClock, TOPIC_CAMERA, compressedImageCodec } from '../../pipeline/index.js';
import { HUD_SCENE_VERSION, type HudScene } from '../../render/hud-scene.js';
import { Inbox, LogLines, testClient, testFrame, waitFor } from './support.js';

describe('linkExtension', () => {
  let broker: EmbeddedBroker;
  beforeAll(async () => {
    broker = await EmbeddedBroker.start();
  });
  afterAll(async () => {
    await broker.stop();
  });

  it('publishes each rendered frame, its scene and the camera JPEG; frames without a panel are counted, never dropped', async () => {
    const vehicleId = 'stage-car';
    const topics = hudTopics(vehicleId);
    const viewer = await testClient(broker.url, { protocolVersion: 4 });
    const inbox = new Inbox(viewer);
    await viewer.subscribeAsync(`${topics.root}/#`);
    const log = new LogLines();
    const link = await HudLink.create({ url: broker.url, vehicleId, log: log.log });
    const jpeg = new Uint8Array(await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } }).jpeg().toBuffer());
    const sizePx = { widthPx: 160, heightPx: 60 };
    const makeFrame = (seq: number, withPanel: boolean) => {
      const tCaptureNs = 1_000_000_000n * BigInt(seq + 1);
      const data = compressedImageCodec.encode({ tNs: tCaptureNs, frameId: 'camera_front', format: 'jpeg', data: jpeg });
      const frame = new Frame({
        seq,
        tCaptureNs,
        image: ImageView.packed(2, 2, 'rgb8', new Uint8Array(12)),
        vehicle: { tNs: tCaptureNs, speedMps: 10, yawRateRps: 0 },
        origin: { message: { topic: TOPIC_CAMERA, schemaName: compressedImageCodec.schemaName, logTimeNs: tCaptureNs, sequence: seq, data }, loop: 0, outputLogTimeNs: tCaptureNs, sideMessages: [] },
      });
      if (withPanel) {
        frame.hudRgba = testFrame(seq);
        frame.hudSizePx = sizePx;
        const scene: HudScene = { version: HUD_SCENE_VERSION, tCaptureNs, brightness: 'day', degraded: false, primitives: [{ kind: 'speed', speedMps: 10, validUntilNs: tCaptureNs + 1n }] };
        frame.hudScene = scene;
      }
      return frame;
    };
    const frames = [makeFrame(0, true), makeFrame(1, false), makeFrame(2, true)];
    const metrics = new PipelineMetrics();
    const extension = linkExtension(link, { publishCamera: true })({ clock: new RealClock(), metrics });
    const stages = extension.stages ?? [];
    expect(stages).toHaveLength(1);
    const out = await lastValueFrom(from(frames).pipe(stages[0]!, toArray()));
    expect(out.map((f) => f.seq)).toEqual([0, 1, 2]);
    expect(metrics.counter('link.noHudFrame')).toBe(1);
    expect(metrics.counter('link.errors')).toBe(0);

    await waitFor('2 frames, 2 scenes, 3 previews', () => inbox.on(topics.frame).length === 2 && inbox.on(topics.scene).length === 2 && inbox.on(topics.cameraPreview).length === 3);
    const decoded = inbox.on(topics.frame).map((m) => decodeHudFrame(m));
    expect(decoded.map((d) => d.header.tCaptureNs)).toEqual([1_000_000_000n, 3_000_000_000n]);
    expect(Buffer.from(decoded[1]!.rgba).equals(Buffer.from(testFrame(2)))).toBe(true);
    expect(parseScenePayload(inbox.on(topics.scene)[0]!, topics.scene).tCaptureNs).toBe(1_000_000_000n);
    const previews = inbox.on(topics.cameraPreview).map((m) => decodeCameraPreview(m, topics.cameraPreview));
    expect(previews.map((p) => p.sequence)).toEqual([0, 1, 2]);
    expect(Buffer.from(previews[0]!.jpeg).equals(Buffer.from(jpeg))).toBe(true);
    await link.dispose();
    await viewer.endAsync();
  });

  it("with timeBase 'pipeline' (replay) puts this run's times on the wire, not the recording's", async () => {
    const vehicleId = 'stage-replay';
    const topics = hudTopics(vehicleId);
    const viewer = await testClient(broker.url, { protocolVersion: 4 });
    const inbox = new Inbox(viewer);
    await viewer.subscribeAsync(topics.frame);
    const link = await HudLink.create({ url: broker.url, vehicleId, log: new LogLines().log });
    // Recorded in 2018; entered the pipeline at 1 us and rendered by 5 us on the pipeline clock, which
    // reads 10 us now, while the display's clock reads 1 s.
    const frame = new Frame({ seq: 0, tCaptureNs: 1_530_000_000_000_000_000n, image: ImageView.packed(1, 1, 'rgb8', new Uint8Array(3)) });
    frame.stamps.push({ stage: 'decode', tEnterNs: 1_000n, tExitNs: 2_000n });
    frame.stamps.push({ stage: 'render', tEnterNs: 3_000n, tExitNs: 5_000n });
    frame.hudRgba = testFrame(0);
    frame.hudSizePx = { widthPx: 160, heightPx: 60 };
    const stages = linkExtension(link, { timeBase: 'pipeline', now: () => 1_000_000_000n })({ clock: new SimulatedClock(10_000n), metrics: new PipelineMetrics() }).stages ?? [];
    await lastValueFrom(from([frame]).pipe(stages[0]!, toArray()));
    await waitFor('the frame', () => inbox.on(topics.frame).length === 1);
    const { header } = decodeHudFrame(inbox.on(topics.frame)[0]!);
    expect(header.tCaptureNs).toBe(1_000_000_000n - 9_000n);
    expect(header.tRenderNs).toBe(1_000_000_000n - 5_000n);
    await link.dispose();
    await viewer.endAsync();
  });

  it('stamps the render time on the source clock: capture time plus pipeline time up to the end of rendering', () => {
    const frame = new Frame({ seq: 0, tCaptureNs: 5_000_000_000n, image: ImageView.packed(1, 1, 'rgb8', new Uint8Array(3)) });
    expect(renderTimeNs(frame)).toBe(5_000_000_000n);
    frame.stamps.push({ stage: 'decode', tEnterNs: 100n, tExitNs: 2_000_100n });
    frame.stamps.push({ stage: 'render', tEnterNs: 3_000_100n, tExitNs: 13_000_100n });
    expect(renderTimeNs(frame)).toBe(5_013_000_000n);
  });
});
