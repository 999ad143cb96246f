/**
 * HudLink creation, options, disposal, the last-will when the pipeline process dies, and MQTT version
 * fallback, on the embedded broker (mosquitto and TLS: test/system/link-lifecycle-mosquitto.test.ts).
 */
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../hud/broker.js';
import { HUD_LINK_DEFAULTS, HudLink } from '../../hud/link.js';
import { hudTopics, parseStatus } from '../../hud/topics.js';
import { PROJECT_ROOT } from '../support/data.js';
import { thrownBy } from '../support/errors.js';
import { seededRandom } from '../support/random.js';
import { AedesTestBroker, Inbox, LogLines, defineLastWillCase, freePort, freshVehicleId, testClient, testFrame, testWarning, waitFor } from './support.js';

describe('HudLink options and lifecycle', () => {
  let broker: EmbeddedBroker;
  beforeAll(async () => {
    broker = await EmbeddedBroker.start();
  });
  afterAll(async () => {
    await broker.stop();
  });

  it.each([
    [{ url: 'not a url' }, 'TypeError', /^HudLink.create: 'url' must be a broker URL like mqtt:\/\/host:1883, got "not a url"/],
    [{ url: 'http://127.0.0.1:1883' }, 'TypeError', /^HudLink.create: 'url' must use one of mqtt: mqtts: .*, got http:/],
    [{ vehicleId: 'car/1' }, 'RangeError', /^hudTopics: 'vehicleId' must match/],
    [{ vehicleId: 'car+' }, 'RangeError', /'vehicleId'/],
    [{ maxQueuedFrames: 0 }, 'RangeError', /^HudLink.create: 'maxQueuedFrames' must be an integer >= 1, got 0/],
    [{ maxQueuedWarnings: 1.5 }, 'RangeError', /'maxQueuedWarnings' must be an integer >= 1, got 1.5/],
    [{ reconnectMinMs: 500, reconnectMaxMs: 100 }, 'RangeError', /'reconnectMaxMs' must be >= reconnectMinMs \(500\), got 100/],
    [{ protocolVersion: 3 as 4 }, 'RangeError', /'protocolVersion' must be 4 or 5, got 3/],
    [{ tls: { caFile: '/nonexistent/ca.crt' } }, 'Error', /^HudLink.create: cannot read 'tls.caFile' \/nonexistent\/ca.crt: ENOENT/],
    [{ tls: { certFile: path.join(PROJECT_ROOT, 'package.json') } }, 'TypeError', /'tls.certFile' and 'tls.keyFile' must be given together/],
  ])('refuses %j', async (change, name, message) => {
    const error = await HudLink.create({ url: broker.url, vehicleId: 'car-1', log: () => {}, ...change }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe(name);
    expect(error?.message).toMatch(message);
  });

  it('falls back to MQTT 3.1.1 on the embedded broker and says so', async () => {
    const log = new LogLines();
    const link = await HudLink.create({ url: broker.url, vehicleId: freshVehicleId(), log: log.log });
    expect(link.stats).toMatchObject({ connected: true, protocolVersion: 4, reconnects: 0 });
    expect(log.matching(/does not speak MQTT 5; using MQTT 3.1.1/)).toHaveLength(1);
    await link.dispose();
    await link.dispose(); // idempotent
    expect(() => link.publishFrame(testFrame(0), { tCaptureNs: 0n, tRenderNs: 0n, widthPx: 160, heightPx: 60, degraded: false })).toThrow('HudLink.publishFrame: the link is disposed');
    expect(() => link.publishWarning(testWarning('late', 0n))).toThrow('HudLink.publishWarning: the link is disposed');
  });

  it('resolves create with no broker listening, keeps state, disposes at once', async () => {
    const log = new LogLines();
    const link = await HudLink.create({ url: `mqtt://127.0.0.1:${await freePort()}`, vehicleId: freshVehicleId(), log: log.log, reconnectMinMs: 10, reconnectMaxMs: 50 });
    expect(link.stats.connected).toBe(false);
    link.setStatus('degraded', 'camera late');
    link.publishScene({ version: 1, tCaptureNs: 1n, brightness: 'day', degraded: true, primitives: [] });
    link.publishScene({ version: 1, tCaptureNs: 2n, brightness: 'day', degraded: true, primitives: [] });
    link.publishCameraPreview(Uint8Array.from([0xff, 0xd8, 0xff, 0xd9]), 1n);
    expect(link.stats).toMatchObject({ scenesDropped: 1, previewsDropped: 1, scenesPublished: 0 });
    expect(log.matching(/ECONNREFUSED/).length).toBeGreaterThanOrEqual(1);
    await link.dispose();
    expect(HUD_LINK_DEFAULTS.maxQueuedFrames).toBe(2);
  });

  it('the embedded broker survives garbage and half packets on its socket', async () => {
    const vehicleId = freshVehicleId();
    const link = await HudLink.create({ url: broker.url, vehicleId, log: () => {} });
    const random = seededRandom(3);
    for (let k = 0; k < 5; k++) {
      const socket = net.connect(broker.port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('connect', resolve));
      // A CONNECT header promising more bytes than follow, then noise.
      socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f, ...Array.from({ length: 64 }, () => Math.floor(256 * random()))]));
      socket.destroy();
    }
    link.publishWarning(testWarning('after-garbage', 1n));
    await waitFor('warning acknowledged', () => link.stats.warningsAcked === 1);
    expect(link.stats.connected).toBe(true);
    await link.dispose();
  });

  it('refuses frames and warnings that do not fit, naming the field', async () => {
    const link = await HudLink.create({ url: broker.url, vehicleId: freshVehicleId(), log: () => {} });
    try {
      const frameError = thrownBy(() => link.publishFrame(testFrame(0).subarray(4), { tCaptureNs: 0n, tRenderNs: 0n, widthPx: 160, heightPx: 60, degraded: false }));
      expect(frameError.name).toBe('RangeError');
      expect(frameError.message).toMatch(/'rgba' must hold widthPx\*heightPx\*4 = 38400 bytes for 160x60, got 38396/);
      const warningError = thrownBy(() => link.publishWarning({ ...testWarning('long', 1n), message: 'x'.repeat(600) }));
      expect(warningError.name).toBe('HudPayloadError');
      expect(warningError.message).toMatch(/adas\/warnings: field 'message' must NOT have more than 512 characters/);
      expect(link.stats).toMatchObject({ framesPublished: 0, warningsPublished: 0 });
    } finally {
      await link.dispose();
    }
  });

  it('with a stalled broker (connected, never reading) frames wait in the bounded queue, nothing piles up in the socket', async () => {
    // A fake broker: accepts the MQTT 3.1.1 CONNECT, then stops reading (refuses v5 first, like aedes).
    const sockets: net.Socket[] = [];
    const stalled = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      socket.once('data', (connect: Buffer) => {
        let at = 1;
        while (connect[at]! & 0x80) at++;
        const level = connect[at + 7];
        socket.write(Buffer.from([0x20, 0x02, 0x00, level === 4 ? 0x00 : 0x01]));
        if (level === 4) socket.pause();
      });
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    const { port } = stalled.address() as net.AddressInfo;
    const log = new LogLines();
    const link = await HudLink.create({ url: `mqtt://127.0.0.1:${port}`, vehicleId: freshVehicleId(), log: log.log, maxQueuedFrames: 2 });
    try {
      expect(link.stats.connected).toBe(true);
      const random = seededRandom(11);
      const noise = Uint8Array.from({ length: 320 * 120 * 4 }, () => Math.floor(256 * random())); // 150 KiB, raw
      const FRAMES = 1000; // 150 MB if all of it went into the socket
      for (let i = 0; i < FRAMES; i++) {
        link.publishFrame(noise, { tCaptureNs: BigInt(i), tRenderNs: BigInt(i), widthPx: 320, heightPx: 120, degraded: false });
        expect(link.stats.framesQueued).toBeLessThanOrEqual(2);
        if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const stats = link.stats;
      expect(stats.framesPublished).toBeLessThan(FRAMES / 2);
      expect(stats.framesDropped).toBe(FRAMES - stats.framesPublished - stats.framesQueued);
      expect(stats.framesPublished * noise.length).toBeLessThan(64 * 2 ** 20); // socket buffers, not the heap
    } finally {
      for (const socket of sockets) socket.destroy();
      await link.dispose();
      await new Promise((resolve) => stalled.close(resolve));
    }
  });

  it('refuses setStatus with an unknown state and publishes a valid one retained', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    const link = await HudLink.create({ url: broker.url, vehicleId, log: () => {} });
    expect(() => link.setStatus('asleep' as 'online')).toThrow(/^HudLink.setStatus: 'state' must be online, offline or degraded, got asleep/);
    link.setStatus('degraded', 'perception late');
    const viewer = await testClient(broker.url, { protocolVersion: 4 });
    const inbox = new Inbox(viewer);
    await viewer.subscribeAsync(topics.status, { qos: 1 });
    await waitFor('retained status', () => inbox.on(topics.status).length > 0);
    expect(parseStatus(inbox.on(topics.status).at(-1)!, topics.status)).toMatchObject({ state: 'degraded', reason: 'perception late' });
    await link.dispose();
    await viewer.endAsync();
  });
});

describe('last-will on embedded broker', () => {
  defineLastWillCase(() => AedesTestBroker.start());
});
