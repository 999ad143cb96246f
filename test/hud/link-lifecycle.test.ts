/**
 * HudLink creation, options, disposal, the last-will when the pipeline process dies, MQTT version
 * fallback, and TLS (mutual, with mosquitto).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../hud/broker.js';
import { HUD_LINK_DEFAULTS, HudLink } from '../../hud/link.js';
import { hudTopics, parseStatus } from '../../hud/topics.js';
import { PROJECT_ROOT, tempDir } from '../support/data.js';
import { thrownBy } from '../support/errors.js';
import { seededRandom } from '../support/random.js';
import {
  AedesTestBroker,
  HAS_MOSQUITTO,
  Inbox,
  LogLines,
  Mosquitto,
  MosquittoTestBroker,
  freePort,
  freshVehicleId,
  noteMissingMosquitto,
  passwordOf,
  roleClient,
  testClient,
  testFrame,
  testWarning,
  waitFor,
  type TestBroker,
} from './support.js';

noteMissingMosquitto();
const OPENSSL = '/usr/bin/openssl';

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

/** A pipeline process that connects a HudLink and then waits to be killed. */
async function spawnPipeline(url: string, vehicleId: string, auth: { username?: string; password?: string }): Promise<{ kill: () => Promise<void> }> {
  const dir = await tempDir('arhud-lwt-');
  const script = path.join(dir, 'pipeline.mts');
  const linkUrl = pathToFileURL(path.join(PROJECT_ROOT, 'hud/link.ts')).href;
  await writeFile(
    script,
    `import { HudLink } from ${JSON.stringify(linkUrl)};
     const link = await HudLink.create({ url: ${JSON.stringify(url)}, vehicleId: ${JSON.stringify(vehicleId)}, ...${JSON.stringify(auth)}, log: () => {} });
     process.stdout.write(link.stats.connected ? 'connected\\n' : 'not connected\\n');
     setInterval(() => {}, 1000);`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor('the pipeline process to connect', () => out.includes('connected') || child.exitCode !== null, 30_000);
  expect(out.trim()).toBe('connected');
  return {
    kill: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const lastWillCases: [string, () => Promise<TestBroker>][] = [['embedded broker', () => AedesTestBroker.start()]];
if (HAS_MOSQUITTO) lastWillCases.push(['mosquitto', () => MosquittoTestBroker.start()]);

describe.each(lastWillCases)('last-will on %s', (_name, start) => {
  it('marks the pipeline offline (retained) when its process dies', async () => {
    const broker = await start();
    try {
      const vehicleId = freshVehicleId('lwt');
      const topics = hudTopics(vehicleId);
      const pipeline = await spawnPipeline(broker.url, vehicleId, broker.auth('pipeline'));
      const viewer = await roleClient(broker, 'viewer');
      const inbox = new Inbox(viewer);
      await viewer.subscribeAsync(topics.status, { qos: 1 });
      await waitFor('status online', () => inbox.on(topics.status).length === 1);
      expect(parseStatus(inbox.on(topics.status)[0]!, topics.status).state).toBe('online');
      await pipeline.kill();
      await waitFor('the last-will', () => inbox.on(topics.status).length === 2);
      expect(parseStatus(inbox.on(topics.status)[1]!, topics.status)).toMatchObject({ state: 'offline', reason: 'connection lost' });
      await viewer.endAsync();
      // Retained: whoever subscribes later learns the pipeline is offline.
      const late = await roleClient(broker, 'display');
      const lateInbox = new Inbox(late);
      await late.subscribeAsync(topics.status, { qos: 1 });
      await waitFor('retained last-will', () => lateInbox.on(topics.status).length === 1);
      expect(parseStatus(lateInbox.on(topics.status)[0]!, topics.status).state).toBe('offline');
      await late.endAsync();
    } finally {
      await broker.dispose();
    }
  });
});

describe.skipIf(!HAS_MOSQUITTO || !existsSync(OPENSSL))('TLS to mosquitto (CA, client certificate, username/password)', () => {
  let mosquitto: Mosquitto;
  let dir: string;
  const file = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    dir = await tempDir('arhud-tls-');
    const openssl = (...args: string[]) => promisify(execFile)(OPENSSL, args, { cwd: dir });
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=arhud test CA');
    await writeFile(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const [name, cn] of [['broker', '127.0.0.1'], ['pipeline', 'pipeline']] as const) {
      await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...(name === 'broker' ? ['-extfile', 'san.ext'] : []));
    }
    // A second CA that signed nothing: trusting it must fail the handshake.
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=other CA');
    mosquitto = await Mosquitto.start({
      dir,
      scheme: 'mqtts',
      listenerConf: [`cafile ${file('ca.crt')}`, `certfile ${file('broker.crt')}`, `keyfile ${file('broker.key')}`, 'require_certificate true', 'tls_version tlsv1.2'],
    });
  });
  afterAll(async () => {
    await mosquitto?.dispose();
  });

  it('connects with the CA, a client certificate and a password', async () => {
    const log = new LogLines();
    const link = await HudLink.create({
      url: mosquitto.url,
      vehicleId: freshVehicleId(),
      username: 'pipeline',
      password: passwordOf('pipeline'),
      tls: { caFile: file('ca.crt'), certFile: file('pipeline.crt'), keyFile: file('pipeline.key') },
      log: log.log,
    });
    expect(link.stats).toMatchObject({ connected: true, protocolVersion: 5 });
    link.publishWarning(testWarning('tls-1', 1n));
    await waitFor('warning acknowledged over TLS', () => link.stats.warningsAcked === 1);
    await link.dispose();
  });

  it('does not connect to a broker whose certificate the CA did not sign, and keeps retrying', async () => {
    const log = new LogLines();
    const link = await HudLink.create({
      url: mosquitto.url,
      vehicleId: freshVehicleId(),
      username: 'pipeline',
      password: passwordOf('pipeline'),
      tls: { caFile: file('other.crt'), certFile: file('pipeline.crt'), keyFile: file('pipeline.key') },
      log: log.log,
    });
    expect(link.stats.connected).toBe(false);
    expect(log.matching(/certificate/i).length).toBeGreaterThanOrEqual(1);
    await link.dispose();
  });

  it('the example hud/mosquitto/mosquitto.conf runs and serves the link over mutual TLS', async () => {
    const example = await readFile(path.join(PROJECT_ROOT, 'hud/mosquitto/mosquitto.conf'), 'utf8');
    const plainPort = await freePort();
    const exampleBroker = await Mosquitto.start({
      dir: await tempDir('arhud-example-conf-'),
      scheme: 'mqtts',
      conf: (port, exampleDir) =>
        example
          .replaceAll('/etc/mosquitto/certs/', `${dir}/`)
          .replaceAll('/etc/mosquitto/arhud.passwd', path.join(exampleDir, 'passwd'))
          .replaceAll('/etc/mosquitto/arhud.acl', path.join(PROJECT_ROOT, 'hud/mosquitto/acl'))
          .replaceAll('/var/lib/mosquitto/', `${exampleDir}/`)
          .replace('listener 1883 ', `listener ${plainPort} `)
          .replace('listener 8883', `listener ${port}`) + '\nuser root\n',
    });
    try {
      const log = new LogLines();
      const link = await HudLink.create({
        url: exampleBroker.url,
        vehicleId: freshVehicleId(),
        username: 'pipeline',
        password: passwordOf('pipeline'),
        tls: { caFile: file('ca.crt'), certFile: file('pipeline.crt'), keyFile: file('pipeline.key') },
        log: log.log,
      });
      expect(link.stats.connected).toBe(true);
      link.publishWarning(testWarning('example-1', 1n));
      await waitFor('warning acknowledged', () => link.stats.warningsAcked === 1);
      await link.dispose();
    } finally {
      await exampleBroker.dispose();
    }
  });
});
