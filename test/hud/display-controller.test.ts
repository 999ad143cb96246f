import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../hud/broker.js';
import {
  DEFAULT_MAX_FRAME_AGE_MS,
  DISPLAY_TOPIC_KEYS,
  DisplayController,
  FLICKER_BLANKS_BEFORE_HINT,
  MAX_FRAME_AGE_LIMIT_MS,
  type BlankReason,
  type DisplayTopicKey,
  type ShownFrame,
  runDisplay,
} from '../../hud/display-controller.js';
import { HudFrameEncoder, encodeCameraPreview } from '../../hud/frame-codec.js';
import { FramebufferOutput } from '../../hud/framebuffer.js';
import { HudLink } from '../../hud/link.js';
import { MAX_PAYLOAD_BYTES, encodeStatus, encodeWarning, hudTopics, parseDisplayAck, type DisplayAck } from '../../hud/topics.js';
import { HUD_SCENE_VERSION, hudSceneToJson } from '../../render/hud-scene.js';
import { Inbox, testClient, waitFor } from './support.js';

const VEHICLE = 'display-test';
const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;
const WIDTH_PX = 8;
const HEIGHT_PX = 4;
/** Each test gets its own vehicle (and so its own topics): late acks of one test cannot reach the next. */
let testNumber = 0;
let topics = hudTopics(VEHICLE);

/** An 8x4 frame: black with one pixel of `value` at `(x, 1)`; a copy (the encoder reuses its buffer). */
function frameBytes(sequence: number, tCaptureNs: bigint, x = 1, value = 200): Uint8Array {
  const rgba = new Uint8Array(WIDTH_PX * HEIGHT_PX * 4);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  rgba.set([value, 255 - value, 30, 255], (1 * WIDTH_PX + x) * 4);
  const encoded = new HudFrameEncoder().encode(rgba, { sequence, tCaptureNs, tRenderNs: tCaptureNs + 1n, widthPx: WIDTH_PX, heightPx: HEIGHT_PX, degraded: false });
  return Uint8Array.from(encoded);
}

/** The vehicle id of a topic set (`arhud/v1/<id>`). */
const vehicleOf = (t: { root: string }) => t.root.split('/')[2]!;

const JPEG = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 0xff, 0xd9]);

/** One valid payload per subscribed topic. */
function validPayload(key: DisplayTopicKey): Uint8Array {
  switch (key) {
    case 'frame':
      return frameBytes(0, T0);
    case 'cameraPreview':
      return encodeCameraPreview({ sequence: 1, tCaptureNs: T0, jpeg: JPEG });
    case 'scene':
      return new TextEncoder().encode(hudSceneToJson({ version: HUD_SCENE_VERSION, tCaptureNs: T0, brightness: 'day', degraded: false, primitives: [] }));
    case 'warnings':
      return encodeWarning({ id: 'w1', tNs: T0, level: 'warning', kind: 'fcw', message: 'brake', validUntilNs: T0 + 500n * MS });
    case 'status':
      return encodeStatus({ state: 'online', tNs: T0 });
  }
}

describe('DisplayController', () => {
  let broker: EmbeddedBroker;
  let publisher: MqttClient;
  let acks: Inbox;
  let controller: DisplayController | undefined;
  let nowNs: bigint;
  let lines: string[];

  beforeAll(async () => {
    broker = await EmbeddedBroker.start({ port: 0 });
    publisher = await testClient(broker.url, { protocolVersion: 4 });
    await publisher.subscribeAsync('arhud/v1/+/display/ack', { qos: 0 });
    acks = new Inbox(publisher);
  });

  afterAll(async () => {
    await publisher.endAsync();
    await broker.stop();
  });

  beforeEach(() => {
    topics = hudTopics(`${VEHICLE}-${++testNumber}`);
    nowNs = T0;
    lines = [];
    acks.messages.length = 0;
  });

  afterEach(async () => {
    await controller?.dispose();
    controller = undefined;
  });

  const start = async (options: { maxFrameAgeMs?: number; framebuffer?: FramebufferOutput } = {}) => {
    controller = await DisplayController.create({ url: broker.url, vehicleId: vehicleOf(topics), now: () => nowNs, log: (line) => lines.push(line), ...options });
    return controller;
  };
  const publish = (topic: string, payload: Uint8Array, qos: 0 | 1 = 0) => publisher.publishAsync(topic, Buffer.from(payload), { qos });
  const receivedAcks = (): DisplayAck[] => acks.on(topics.displayAck).map((p) => parseDisplayAck(p, topics.displayAck));

  it('decodes, shows and acknowledges frames with their display time', async () => {
    const c = await start();
    const shown: { sequence: number; pixel: number[]; shownNs: bigint }[] = [];
    c.onFrame(({ header, rgba, shownNs }: ShownFrame) => shown.push({ sequence: header.sequence, pixel: [...rgba.subarray((WIDTH_PX + 3) * 4, (WIDTH_PX + 3) * 4 + 4)], shownNs }));
    nowNs = T0 + 7n * MS;
    await publish(topics.frame, frameBytes(0, T0, 3, 200));
    await waitFor('the ack', () => receivedAcks().length === 1);
    expect(shown).toEqual([{ sequence: 0, pixel: [200, 55, 30, 255], shownNs: T0 + 7n * MS }]);
    expect(receivedAcks()).toEqual([{ sequence: 0, tCaptureNs: T0, tShownNs: T0 + 7n * MS, dropped: 0 }]);
    expect(c.stats).toMatchObject({ framesReceived: 1, framesShown: 1, lastLatencyMs: 7, blank: false });
  });

  it('counts gaps in the sequence and the frames missing, modulo 2^32', async () => {
    const c = await start();
    // 9 -> 0xfffffffd is a step back modulo 2^32 with a newer capture: a publisher restart.
    const sequences = [0, 1, 2, 5, 6, 9, 0xffff_fffd, 0xffff_ffff, 0, 2];
    for (const [i, sequence] of sequences.entries()) await publish(topics.frame, frameBytes(sequence, T0 + BigInt(i) * MS));
    nowNs = T0 + 20n * MS;
    await waitFor('every frame', () => c.stats.framesReceived === sequences.length);
    // Missing: 3, 4 | 7, 8 | 0xfffffffe | (0xffffffff -> 0 wraps, no gap) | 1.
    expect(c.stats.sequenceGaps).toBe(4);
    expect(c.stats.framesMissing).toBe(6);
  });

  it('a step back in sequence with a newer capture is a publisher restart, not a gap', async () => {
    const c = await start();
    nowNs = T0 + 50n * MS;
    for (const [i, sequence] of [100, 101, 0, 1].entries()) await publish(topics.frame, frameBytes(sequence, T0 + BigInt(i) * MS));
    await waitFor('every frame', () => c.stats.framesReceived === 4);
    expect(c.stats).toMatchObject({ sequenceGaps: 0, framesMissing: 0, framesShown: 4 });
  });

  it(`drops frames older than maxFrameAgeMs (shown at exactly ${DEFAULT_MAX_FRAME_AGE_MS} ms, dropped 1 ns later) and reports them in the next ack`, async () => {
    const c = await start();
    expect(c.maxFrameAgeMs).toBe(DEFAULT_MAX_FRAME_AGE_MS);
    const limitNs = BigInt(DEFAULT_MAX_FRAME_AGE_MS) * MS;
    nowNs = T0 + limitNs;
    await publish(topics.frame, frameBytes(0, T0)); // age == limit: shown
    await waitFor('frame 0', () => c.stats.framesReceived === 1);
    nowNs = T0 + 10n * MS + limitNs + 1n;
    await publish(topics.frame, frameBytes(1, T0 + 10n * MS)); // 1 ns too old: dropped
    await waitFor('frame 1', () => c.stats.framesReceived === 2);
    expect(c.stats).toMatchObject({ framesShown: 1, framesDroppedStale: 1 });
    await publish(topics.frame, frameBytes(2, T0 + 5n * MS)); // newer than frame 0, but 105 ms old: dropped
    await waitFor('frame 2', () => c.stats.framesReceived === 3);
    expect(c.stats.framesDroppedStale).toBe(2);
    nowNs = T0 + 30n * MS;
    await publish(topics.frame, frameBytes(3, T0 + 20n * MS)); // fresh: shown, its ack carries the 2 drops
    await waitFor('two acks', () => receivedAcks().length === 2);
    expect(receivedAcks().map((a) => [a.sequence, a.dropped])).toEqual([
      [0, 0],
      [3, 2],
    ]);
  });

  it('never goes back in time: a frame captured before the last one shown is dropped', async () => {
    const c = await start();
    nowNs = T0 + 20n * MS;
    await publish(topics.frame, frameBytes(1, T0 + 10n * MS));
    await publish(topics.frame, frameBytes(0, T0 + 5n * MS));
    await publish(topics.frame, frameBytes(2, T0 + 10n * MS)); // same capture time again
    await waitFor('three frames', () => c.stats.framesReceived === 3);
    expect(c.stats).toMatchObject({ framesShown: 1, framesDroppedOutOfOrder: 2, sequenceGaps: 0 });
  });

  it('rejects malformed, truncated and oversize payloads on every subscribed topic with a logged reason, and keeps working', async () => {
    const c = await start();
    const valid = DISPLAY_TOPIC_KEYS.map((key) => [key, validPayload(key)] as const);
    for (const [key, payload] of valid) {
      const topic = topics[key];
      const qos = key === 'frame' || key === 'cameraPreview' ? 0 : 1;
      await publish(topic, new TextEncoder().encode('{"not": "this"'), qos); // malformed
      await publish(topic, payload.subarray(0, payload.length - 3), qos); // truncated
      await publish(topic, new Uint8Array(MAX_PAYLOAD_BYTES[key] + 1).fill(0x41), qos); // oversize
    }
    await waitFor('every rejection', () => DISPLAY_TOPIC_KEYS.every((key) => c.stats.payloadsRejected[key] === 3));
    for (const key of DISPLAY_TOPIC_KEYS) {
      const mine = lines.filter((line) => line.includes(`rejected payload on '${topics[key]}'`));
      expect(mine, key).toHaveLength(3);
      expect(mine[2], key).toContain(`payload of ${MAX_PAYLOAD_BYTES[key] + 1} bytes exceeds the ${MAX_PAYLOAD_BYTES[key]}-byte limit`);
    }
    // Still working: every valid payload is taken.
    nowNs = T0 + 1n * MS;
    for (const [key, payload] of valid) await publish(topics[key], payload, key === 'frame' || key === 'cameraPreview' ? 0 : 1);
    await waitFor('the valid payloads', () => c.stats.framesShown === 1 && c.stats.scenesReceived === 1 && c.stats.warningsReceived === 1 && c.stats.cameraPreviewsReceived === 1 && c.stats.pipelineState === 'online');
    expect(Object.values(c.stats.payloadsRejected)).toEqual([3, 3, 3, 3, 3]);
  });

  it('passes each warning on once (QoS 1 may repeat it) and never an expired one', async () => {
    const c = await start();
    const seen: string[] = [];
    c.onWarning((w) => seen.push(w.id));
    nowNs = T0 + 100n * MS;
    const warning = (id: string, validUntilNs: bigint) => encodeWarning({ id, tNs: T0, level: 'critical', kind: 'fcw', message: 'brake', validUntilNs });
    await publish(topics.warnings, warning('a', T0 + 500n * MS), 1);
    await publish(topics.warnings, warning('a', T0 + 500n * MS), 1);
    await publish(topics.warnings, warning('old', T0 + 100n * MS - 1n), 1);
    await publish(topics.warnings, warning('b', T0 + 100n * MS), 1);
    await waitFor('four warnings', () => c.stats.warningsReceived === 4);
    expect(seen).toEqual(['a', 'b']);
    expect(c.stats).toMatchObject({ warningsDuplicate: 1, warningsExpired: 1 });
  });

  it('names the failing field of a frame header in the log', async () => {
    const c = await start();
    const bad = frameBytes(0, T0);
    bad[12] = 0; // widthPx = 0 (low byte) ...
    bad[13] = 0; // ... and high byte
    await publish(topics.frame, bad);
    await waitFor('the rejection', () => c.stats.payloadsRejected.frame === 1);
    expect(lines.join('\n')).toMatch(new RegExp(`rejected payload on '${topics.frame}': .*widthPx`));
  });

  it('blanks the framebuffer when no fresh frame arrives within maxFrameAgeMs, and when the pipeline goes offline', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'arhud-display-'));
    const device = path.join(dir, 'fb0');
    await writeFile(device, new Uint8Array(WIDTH_PX * HEIGHT_PX * 4).fill(7)); // stale content from before
    const framebuffer = await FramebufferOutput.create({ path: device, geometry: { widthPx: WIDTH_PX, heightPx: HEIGHT_PX, bitsPerPixel: 32 } });
    try {
      const maxFrameAgeMs = 20;
      const c = await start({ maxFrameAgeMs, framebuffer });
      const blanks: BlankReason[] = [];
      c.onBlank((reason) => blanks.push(reason));
      await framebuffer.flush();
      expect((await readFile(device)).every((b) => b === 0)).toBe(true); // blanked at start
      nowNs = T0 + 1n * MS;
      await publish(topics.frame, frameBytes(0, T0, 1, 200));
      await waitFor('the frame on the framebuffer', () => c.stats.framesShown === 1);
      await framebuffer.flush();
      const shown = await readFile(device);
      expect([...shown.subarray((WIDTH_PX + 1) * 4, (WIDTH_PX + 1) * 4 + 4)]).toEqual([30, 55, 200, 255]); // BGRX
      // Frames stop; the clock passes the frame's deadline: the controller blanks (it looks again when its timer fires).
      nowNs = T0 + BigInt(maxFrameAgeMs) * MS + 1n;
      await waitFor('the blank', () => blanks.includes('stale'));
      await framebuffer.flush();
      expect((await readFile(device)).every((b) => b === 0)).toBe(true);
      expect(c.stats.blank).toBe(true);
      expect(lines.some((l) => l.includes(`no fresh frame within ${maxFrameAgeMs} ms`))).toBe(true);
      // A new frame lights it again; an offline status blanks at once.
      nowNs = T0 + 100n * MS;
      await publish(topics.frame, frameBytes(1, T0 + 95n * MS));
      await waitFor('frame 1', () => c.stats.framesShown === 2 && !c.stats.blank);
      await publish(topics.status, encodeStatus({ state: 'offline', tNs: nowNs, reason: 'test' }), 1);
      await waitFor('the offline blank', () => blanks.includes('offline'));
      await framebuffer.flush();
      expect((await readFile(device)).every((b) => b === 0)).toBe(true);
    } finally {
      await controller?.dispose();
      controller = undefined;
      await framebuffer.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts blanks between frames that come further apart than maxFrameAgeMs, and explains them once', async () => {
    const maxFrameAgeMs = 20;
    const c = await start({ maxFrameAgeMs });
    for (let i = 0; i < FLICKER_BLANKS_BEFORE_HINT + 1; i++) {
      const captureNs = T0 + BigInt(i * 30) * MS; // 30 ms apart: 10 ms more than the age allows
      nowNs = captureNs + 5n * MS;
      await publish(topics.frame, frameBytes(i, captureNs));
      await waitFor(`frame ${i}`, () => c.stats.framesShown === i + 1);
      nowNs = captureNs + BigInt(maxFrameAgeMs) * MS + 1n;
      await waitFor(`blank ${i}`, () => c.stats.blank);
    }
    expect(c.stats.flickerBlanks).toBe(FLICKER_BLANKS_BEFORE_HINT);
    const hints = lines.filter((l) => l.includes('the output blanks between frames'));
    expect(hints).toEqual([
      `display: the output blanks between frames: they come 30 ms apart and are shown 5 ms after capture, more than maxFrameAgeMs ${maxFrameAgeMs} allows; raise it above the frame interval plus latency if that age is acceptable`,
    ]);
  });

  it('keeps going when a listener throws', async () => {
    const c = await start();
    c.onFrame(() => {
      throw new Error('listener bug');
    });
    nowNs = T0 + 1n * MS;
    await publish(topics.frame, frameBytes(0, T0));
    await waitFor('the ack', () => receivedAcks().length === 1);
    expect(lines).toContain('display: a frame listener threw: listener bug');
  });

  it('refuses bad options naming them, and an unreachable broker naming its URL', async () => {
    await expect(DisplayController.create({ url: broker.url, vehicleId: VEHICLE, maxFrameAgeMs: 0 })).rejects.toThrow(
      new RangeError(`DisplayController.create: 'maxFrameAgeMs' must be in (0, ${MAX_FRAME_AGE_LIMIT_MS}], got 0`),
    );
    await expect(DisplayController.create({ url: '', vehicleId: VEHICLE })).rejects.toThrow(TypeError);
    await expect(DisplayController.create({ url: broker.url, vehicleId: 'a/#' })).rejects.toThrow(/hudTopics: 'vehicleId' must match/);
    await expect(DisplayController.create({ url: 'mqtt://127.0.0.1:1', vehicleId: VEHICLE })).rejects.toThrow(/cannot connect to mqtt:\/\/127\.0\.0\.1:1/);
  });

  it('shows what a HudLink publishes and the link hears the acks (shared clock)', async () => {
    const c = await DisplayController.create({ url: broker.url, vehicleId: vehicleOf(topics), log: (line) => lines.push(line) });
    controller = c;
    const link = await HudLink.create({ url: broker.url, vehicleId: vehicleOf(topics), log: () => undefined });
    try {
      const linkAcks: DisplayAck[] = [];
      link.onDisplayAck((ack) => linkAcks.push(ack));
      const rgba = new Uint8Array(WIDTH_PX * HEIGHT_PX * 4);
      rgba.fill(90);
      const { epochNowNs } = await import('../../hud/link.js');
      const tCaptureNs = epochNowNs();
      // The link may still be subscribing: publish until an ack comes back.
      await waitFor('an ack at the link', () => {
        if (linkAcks.length === 0) link.publishFrame(rgba, { tCaptureNs, tRenderNs: tCaptureNs, widthPx: WIDTH_PX, heightPx: HEIGHT_PX, degraded: false });
        return linkAcks.length > 0;
      });
      expect(linkAcks[0]!.tCaptureNs).toBe(tCaptureNs);
      expect(linkAcks[0]!.tShownNs).toBeGreaterThanOrEqual(tCaptureNs);
    } finally {
      await link.dispose();
    }
  });
});

describe('runDisplay', () => {
  let broker: EmbeddedBroker;
  beforeAll(async () => {
    broker = await EmbeddedBroker.start({ port: 0 });
  });
  afterAll(async () => {
    await broker.stop();
  });

  it('writes to a framebuffer when one is given, and blanks it when stopped', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'arhud-run-display-'));
    const device = path.join(dir, 'fb');
    await writeFile(device, new Uint8Array(WIDTH_PX * HEIGHT_PX * 2).fill(3));
    const lines: string[] = [];
    const handle = await runDisplay({
      url: broker.url,
      vehicleId: VEHICLE,
      maxFrameAgeMs: 1000,
      framebuffer: device,
      framebufferGeometry: { widthPx: WIDTH_PX, heightPx: HEIGHT_PX, bitsPerPixel: 16 },
      log: (l) => lines.push(l),
    });
    try {
      expect(handle.viewerUrl).toBeUndefined();
      expect(lines.join('\n')).toContain(`-> ${device} (8x4, 16 bpp), max frame age 1000 ms`);
      await handle.stop();
      expect((await readFile(device)).every((b) => b === 0)).toBe(true);
    } finally {
      await handle.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves the viewer when no framebuffer is given', async () => {
    const handle = await runDisplay({ url: broker.url, vehicleId: VEHICLE, maxFrameAgeMs: 100, viewerPort: 0, log: () => undefined });
    try {
      expect(handle.viewerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(handle.viewerUrl!);
      expect(await page.text()).toContain('arhud viewer');
    } finally {
      await handle.stop();
    }
  });
});
