/**
 * Test support for the HUD link: a real mosquitto on a free loopback port (with the example ACL from
 * hud/mosquitto/acl and a generated password file), MQTT test clients, golden HUD frames, and
 * waiting on conditions without wall-clock assertions.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { EmbeddedBroker, type EmbeddedBrokerPersistence } from '../../hud/broker.js';
import { HudFrameEncoder, decodeHudFrame, readHudFrameHeader } from '../../hud/frame-codec.js';
import { HudLink, type HudLinkOptions } from '../../hud/link.js';
import {
  HUD_FRAME_CONTENT_TYPE,
  MAX_PAYLOAD_BYTES,
  encodeDisplayAck,
  hudTopics,
  parseConfigResult,
  parseStatus,
  parseWarning,
  type AdasWarning,
  type DisplayAck,
} from '../../hud/topics.js';
import { HUD_SCENE_VERSION } from '../../render/hud-scene.js';
import { seededRandom } from '../support/random.js';
import { PROJECT_ROOT, tempDir } from '../support/data.js';

export const MOSQUITTO = process.env.ARHUD_MOSQUITTO ?? '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD = process.env.ARHUD_MOSQUITTO_PASSWD ?? '/usr/bin/mosquitto_passwd';
export const EXAMPLE_ACL = path.join(PROJECT_ROOT, 'hud/mosquitto/acl');
export const GOLDEN_DIR = path.join(PROJECT_ROOT, 'test/render/golden');
export const GOLDEN_NAMES = ['busy-day', 'degraded', 'night'] as const;

/** Roles of the example ACL, each with its test password. */
export const ROLES = ['pipeline', 'display', 'viewer', 'calibration'] as const;
export type Role = (typeof ROLES)[number];
export const passwordOf = (role: Role) => `${role}-secret`;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port. */
async function waitForPort(port: number, process: ChildProcess, stderr: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process.exitCode !== null) throw new Error(`mosquitto exited with code ${process.exitCode} before listening on ${port}: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A mosquitto process with the example ACL, a password file for ROLES and persistence on. */
export class Mosquitto {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  #process: ChildProcess | undefined;
  #stderr = '';

  private constructor(dir: string, port: number, scheme: string) {
    this.dir = dir;
    this.port = port;
    this.url = `${scheme}://127.0.0.1:${port}`;
  }

  /**
   * `acl: false` runs without the example ACL; `listenerConf(dir)` adds lines to the listener (TLS
   * files written into `dir` beforehand), with `scheme` 'mqtts' for a TLS listener.
   */
  static async start(options: { acl?: boolean; dir?: string; listenerConf?: string[]; scheme?: 'mqtt' | 'mqtts'; conf?: (port: number, dir: string) => string } = {}): Promise<Mosquitto> {
    const dir = options.dir ?? (await tempDir('arhud-mosquitto-'));
    const passwd = path.join(dir, 'passwd');
    for (const [i, role] of ROLES.entries()) {
      await promisify(execFile)(MOSQUITTO_PASSWD, [...(i === 0 ? ['-c'] : []), '-b', passwd, role, passwordOf(role)]);
    }
    const port = await freePort();
    const conf = [
      'per_listener_settings false',
      `listener ${port} 127.0.0.1`,
      ...(options.listenerConf ?? []),
      'allow_anonymous false',
      `password_file ${passwd}`,
      ...(options.acl === false ? [] : [`acl_file ${EXAMPLE_ACL}`]),
      'persistence true',
      `persistence_location ${dir}/`,
      'user root',
      'max_inflight_messages 20',
      'max_queued_messages 10000',
      'log_type error',
      'log_dest stderr',
    ].join('\n');
    await writeFile(path.join(dir, 'mosquitto.conf'), `${options.conf ? options.conf(port, dir) : conf}\n`);
    const broker = new Mosquitto(dir, port, options.scheme ?? 'mqtt');
    await broker.restart();
    return broker;
  }

  /** mosquitto's stderr so far (for failure messages). */
  get stderr(): string {
    return this.#stderr;
  }

  /** Starts mosquitto (again) on the same port, with the state it saved when stopped. */
  async restart(): Promise<void> {
    if (this.#process) await this.stop();
    const child = spawn(MOSQUITTO, ['-c', path.join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    this.#process = child;
    await waitForPort(this.port, child, () => this.#stderr);
  }

  /** Stops mosquitto (SIGTERM: it saves its persistence file and closes every connection). */
  async stop(): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** An MQTT client for tests: v5 unless the broker needs 3.1.1 (aedes), failing fast. */
export async function testClient(url: string, options: IClientOptions & { role?: Role } = {}): Promise<MqttClient> {
  const { role, ...rest } = options;
  const auth = role ? { username: role, password: passwordOf(role) } : {};
  return mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...auth, ...rest });
}

/** Collects the messages a client receives, per topic. */
export class Inbox {
  readonly messages: { topic: string; payload: Buffer; retain: boolean; contentType: string | undefined }[] = [];

  constructor(client?: MqttClient) {
    if (client) this.attach(client);
  }

  attach(client: MqttClient): void {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, payload, retain: packet.retain, contentType: packet.properties?.contentType });
    });
  }

  on(topic: string): Buffer[] {
    return this.messages.filter((m) => m.topic === topic).map((m) => m.payload);
  }
}

/** Polls `condition` until it holds (or fails with `what` after timeoutMs). Not a timing assertion. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export interface GoldenFrame {
  name: string;
  rgba: Uint8Array;
  widthPx: number;
  heightPx: number;
}

let goldens: Promise<GoldenFrame[]> | undefined;

/** The render goldens (real 1280x480 renderer output) as RGBA. */
export function goldenFrames(): Promise<GoldenFrame[]> {
  goldens ??= Promise.all(
    GOLDEN_NAMES.map(async (name) => {
      const { data, info } = await sharp(path.join(GOLDEN_DIR, `${name}.png`)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      return { name, rgba: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), widthPx: info.width, heightPx: info.height };
    }),
  );
  return goldens;
}

// ---------------------------------------------------------------------------------------------
// Brokers the link suites run against

/** A broker a test can stop and start again on the same port, keeping its persistent state. */
export interface TestBroker {
  readonly kind: 'aedes' | 'mosquitto';
  readonly url: string;
  readonly port: number;
  /** MQTT version test clients use (aedes speaks 3.1.1 only). */
  readonly protocolVersion: 4 | 5;
  /** Connect options for a role (mosquitto checks passwords and the ACL; aedes lets anyone in). */
  auth(role: Role): { username?: string; password?: string };
  stop(): Promise<void>;
  /** Starts again on the same port with the sessions, queued messages and retained messages kept. */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

export class AedesTestBroker implements TestBroker {
  readonly kind = 'aedes';
  readonly protocolVersion = 4;
  readonly port: number;
  readonly url: string;
  #broker: EmbeddedBroker | undefined;
  #persistence: EmbeddedBrokerPersistence;

  private constructor(broker: EmbeddedBroker) {
    this.#broker = broker;
    this.port = broker.port;
    this.url = broker.url;
    this.#persistence = broker.persistence;
  }

  static async start(): Promise<AedesTestBroker> {
    return new AedesTestBroker(await EmbeddedBroker.start());
  }

  auth(): { username?: string; password?: string } {
    return {};
  }

  async stop(): Promise<void> {
    await this.#broker?.stop();
    this.#broker = undefined;
  }

  async start(): Promise<void> {
    this.#broker ??= await EmbeddedBroker.start({ port: this.port, persistence: this.#persistence });
  }

  dispose(): Promise<void> {
    return this.stop();
  }
}

export class MosquittoTestBroker implements TestBroker {
  readonly kind = 'mosquitto';
  readonly protocolVersion = 5;
  readonly #mosquitto: Mosquitto;

  private constructor(mosquitto: Mosquitto) {
    this.#mosquitto = mosquitto;
  }

  static async start(): Promise<MosquittoTestBroker> {
    return new MosquittoTestBroker(await Mosquitto.start());
  }

  get url(): string {
    return this.#mosquitto.url;
  }

  get port(): number {
    return this.#mosquitto.port;
  }

  auth(role: Role): { username?: string; password?: string } {
    return { username: role, password: passwordOf(role) };
  }

  stop(): Promise<void> {
    return this.#mosquitto.stop();
  }

  start(): Promise<void> {
    return this.#mosquitto.restart();
  }

  dispose(): Promise<void> {
    return this.#mosquitto.dispose();
  }
}

let clientCount = 0;

/**
 * A test client of a role, in the broker's MQTT version. `persistent`: a session that outlives
 * disconnects and broker restarts. `inbox` is attached before connecting, so messages queued for a
 * persistent session (they come right after the CONNACK) are not missed.
 */
export async function roleClient(broker: TestBroker, role: Role, options: { persistent?: string; reconnect?: boolean; inbox?: Inbox } & IClientOptions = {}): Promise<MqttClient> {
  const { persistent, reconnect, inbox, ...rest } = options;
  const session: IClientOptions = persistent
    ? { clientId: persistent, clean: false, ...(broker.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}) }
    : { clientId: `arhud-test-${role}-${process.pid}-${++clientCount}` };
  const client = mqtt.connect(broker.url, {
    protocolVersion: broker.protocolVersion,
    reconnectPeriod: reconnect ? 50 : 0,
    connectTimeout: 5000,
    ...broker.auth(role),
    ...session,
    ...rest,
  });
  inbox?.attach(client);
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error(`${role} client: connection closed before CONNACK`)));
    });
  } catch (error) {
    client.end(true);
    throw error;
  }
  return client;
}

let vehicleCount = 0;
/** A vehicle id no other test uses (retained messages stay on the broker). */
export const freshVehicleId = (prefix = 'car') => `${prefix}-${process.pid}-${++vehicleCount}`;

// ---------------------------------------------------------------------------------------------
// The reliability suite, run against each broker kind (link.test.ts: aedes; test/system/link-mosquitto.test.ts)

/** A small HUD-like frame (black with one bright bar that moves with `i`). */
export function testFrame(i: number, widthPx = 160, heightPx = 60): Uint8Array {
  const rgba = new Uint8Array(widthPx * heightPx * 4);
  const y = i % heightPx;
  for (let x = 0; x < widthPx; x++) rgba.set([0, 255, 128, 255], (y * widthPx + x) * 4);
  return rgba;
}

export const testWarning = (id: string, tNs: bigint, validForNs = 1_000_000_000n): AdasWarning => ({
  id,
  tNs,
  level: 'warning',
  kind: 'forward-collision',
  message: `warning ${id}`,
  validUntilNs: tNs + validForNs,
});

/** Collects the link's log lines. */
export class LogLines {
  readonly lines: string[] = [];
  readonly log = (line: string) => {
    this.lines.push(line);
  };

  matching(pattern: RegExp): string[] {
    return this.lines.filter((l) => pattern.test(l));
  }
}

export function linkOptions(broker: TestBroker, vehicleId: string, log: LogLines, extra: Partial<HudLinkOptions> = {}): HudLinkOptions {
  return { url: broker.url, vehicleId, ...broker.auth('pipeline'), reconnectMinMs: 20, reconnectMaxMs: 200, log: log.log, ...extra };
}

export function defineLinkSuite(startBroker: () => Promise<TestBroker>): void {
  let broker: TestBroker;
  const cleanups: (() => Promise<unknown>)[] = [];
  const later = <T extends { dispose(): Promise<void> } | MqttClient>(thing: T): T => {
    cleanups.push(() => ('endAsync' in thing ? thing.endAsync(true) : thing.dispose()));
    return thing;
  };

  beforeAll(async () => {
    broker = await startBroker();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });
  afterAll(async () => {
    await broker?.dispose();
  });

  it('publishes frames, scenes, warnings and retained status that a display decodes', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    const display = later(await roleClient(broker, 'display'));
    const inbox = new Inbox(display);
    await display.subscribeAsync(`${topics.root}/#`, { qos: 1 });
    const log = new LogLines();
    const link = later(await HudLink.create(linkOptions(broker, vehicleId, log)));
    expect(link.stats.connected).toBe(true);
    expect(link.stats.protocolVersion).toBe(broker.protocolVersion);
    const frames = [testFrame(1), testFrame(2)];
    for (const [i, rgba] of frames.entries()) link.publishFrame(rgba, { tCaptureNs: BigInt(i + 1) * 1000n, tRenderNs: BigInt(i + 1) * 1000n + 7n, widthPx: 160, heightPx: 60, degraded: i === 1 });
    link.publishScene({ version: HUD_SCENE_VERSION, tCaptureNs: 1000n, brightness: 'day', degraded: false, primitives: [] });
    link.publishWarning(testWarning('w-1', 5n));
    await waitFor('2 frames, a scene, a warning', () => inbox.on(topics.frame).length === 2 && inbox.on(topics.scene).length === 1 && inbox.on(topics.warnings).length === 1);
    const decoded = inbox.on(topics.frame).map((m) => decodeHudFrame(m, undefined, topics.frame));
    expect(decoded.map((d) => d.header.sequence)).toEqual([0, 1]);
    expect(decoded.map((d) => d.header.degraded)).toEqual([false, true]);
    expect(decoded[1]!.header.tRenderNs).toBe(2007n);
    expect(decoded.map((d) => Buffer.from(d.rgba).equals(Buffer.from(frames[d.header.sequence]!)))).toEqual([true, true]);
    expect(parseWarning(inbox.on(topics.warnings)[0]!, topics.warnings).id).toBe('w-1');
    const status = inbox.messages.filter((m) => m.topic === topics.status);
    expect(parseStatus(status.at(-1)!.payload, topics.status).state).toBe('online');
    if (broker.protocolVersion === 5) {
      expect(inbox.messages.find((m) => m.topic === topics.frame)!.contentType).toBe(HUD_FRAME_CONTENT_TYPE);
      expect(inbox.messages.find((m) => m.topic === topics.warnings)!.contentType).toBe('application/json');
    }
    await waitFor('warning acknowledged', () => link.stats.warningsAcked === 1);
    await link.dispose();
    // Retained status after dispose: offline. A late subscriber sees it.
    const late = later(await roleClient(broker, 'viewer'));
    const lateInbox = new Inbox(late);
    await late.subscribeAsync(topics.status, { qos: 1 });
    await waitFor('retained status', () => lateInbox.on(topics.status).length === 1);
    expect(lateInbox.messages[0]!.retain).toBe(true);
    expect(parseStatus(lateInbox.on(topics.status)[0]!, topics.status)).toMatchObject({ state: 'offline', reason: 'disposed' });
  });

  it('broker restart mid-stream: no QoS 1 warning lost, frames resume', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    // The display keeps a persistent session (as the real controller does), so warnings the broker
    // takes while the display is still reconnecting wait for it.
    const inbox = new Inbox();
    const display = later(await roleClient(broker, 'display', { persistent: `arhud-test-display-${vehicleId}`, reconnect: true, inbox }));
    await display.subscribeAsync({ [topics.warnings]: { qos: 1 }, [topics.frame]: { qos: 0 } });
    const log = new LogLines();
    const link = later(await HudLink.create(linkOptions(broker, vehicleId, log)));
    const WARNINGS = 60;
    const ids = Array.from({ length: WARNINGS }, (_, i) => `restart-${i}`);
    let framesBeforeStop = 0;
    for (let i = 0; i < WARNINGS; i++) {
      if (i === 20) {
        await waitFor('frames before the restart', () => inbox.on(topics.frame).length > 0);
        framesBeforeStop = link.stats.framesPublished;
        await broker.stop();
      }
      if (i === 40) await broker.start();
      link.publishWarning(testWarning(ids[i]!, BigInt(i) * 1_000_000n));
      for (let k = 0; k < 3; k++) link.publishFrame(testFrame(i * 3 + k), { tCaptureNs: BigInt(i), tRenderNs: BigInt(i), widthPx: 160, heightPx: 60, degraded: false });
      await sleep(5);
    }
    const received = () => new Set(inbox.on(topics.warnings).map((m) => parseWarning(m, topics.warnings).id));
    await waitFor('every warning at the display', () => ids.every((id) => received().has(id)));
    await waitFor('all warnings acknowledged', () => link.stats.warningsQueued === 0);
    expect(link.stats.warningsAcked).toBeGreaterThanOrEqual(WARNINGS);
    expect(link.stats.reconnects).toBeGreaterThanOrEqual(1);
    // Frames resume: frames published after the reconnect arrive.
    const lastSequence = () => Math.max(...inbox.on(topics.frame).map((m) => readHudFrameHeader(m, topics.frame).sequence));
    for (let i = 0; i < 20 && !(lastSequence() > framesBeforeStop); i++) {
      link.publishFrame(testFrame(i), { tCaptureNs: 1n, tRenderNs: 1n, widthPx: 160, heightPx: 60, degraded: false });
      await sleep(20);
    }
    await waitFor('a frame sent after the restart', () => lastSequence() > framesBeforeStop);
    expect(link.stats.framesDropped).toBeGreaterThan(0); // frames published while the broker was down: latest wins
    expect(log.matching(/connection .* lost/).length).toBeGreaterThanOrEqual(1);
  });

  it('rejects malformed, truncated and oversize payloads on every subscribed topic, logs why, keeps working', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    const log = new LogLines();
    const link = later(await HudLink.create(linkOptions(broker, vehicleId, log)));
    const acks: DisplayAck[] = [];
    link.onDisplayAck((ack) => acks.push(ack));
    const configs: string[] = [];
    link.onConfig((kind) => configs.push(kind));
    const calibration = later(await roleClient(broker, 'calibration'));
    const display = later(await roleClient(broker, 'display'));
    const results = new Inbox(calibration);
    await calibration.subscribeAsync(topics.configResult, { qos: 1 });
    const frameBytes = new HudFrameEncoder().encode(testFrame(1), { sequence: 1, tCaptureNs: 1n, tRenderNs: 1n, widthPx: 160, heightPx: 60, degraded: false }).slice();
    const bad: Record<string, Uint8Array> = {
      'not JSON': Buffer.from('hello'),
      truncated: Buffer.from('{"sequence": 1, "tCaptu'),
      'not UTF-8': Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
      'a HUD frame': frameBytes,
      'wrong schema': Buffer.from('{"sequence": "one", "tCaptureNs": "1", "tShownNs": "2"}'),
    };
    const subscribed: [MqttClient, string, number][] = [
      [calibration, topics.configOptics, MAX_PAYLOAD_BYTES.configOptics],
      [calibration, topics.configCalibration, MAX_PAYLOAD_BYTES.configCalibration],
      [calibration, topics.configPipeline, MAX_PAYLOAD_BYTES.configPipeline],
      [display, topics.displayAck, MAX_PAYLOAD_BYTES.displayAck],
    ];
    let sent = 0;
    for (const [client, topic, maxBytes] of subscribed) {
      for (const payload of [...Object.values(bad), Buffer.alloc(maxBytes + 1, 0x20)]) {
        await client.publishAsync(topic, Buffer.from(payload), { qos: 1 });
        sent++;
      }
    }
    await waitFor(`${sent} rejections`, () => link.stats.payloadsRejected === sent);
    expect(link.stats.configsRejected).toBe(3 * 6);
    expect(link.stats.configsAccepted).toBe(0);
    expect(configs).toEqual([]);
    expect(acks).toEqual([]);
    for (const [, topic, maxBytes] of subscribed) {
      const lines = log.matching(new RegExp(`rejected payload \\(#\\d+ on ${topic}\\)`));
      expect(lines.length, topic).toBe(6);
      expect(lines.some((l) => l.includes('not JSON'))).toBe(true);
      expect(lines.some((l) => l.includes('not valid UTF-8'))).toBe(true);
      expect(lines.some((l) => l.includes(`payload of ${maxBytes + 1} bytes exceeds the limit of ${maxBytes} bytes`))).toBe(true);
    }
    expect(log.matching(/field 'sequence' must be integer/).length).toBe(1);
    // Every config rejection is answered on config/result.
    await waitFor('18 config results', () => results.on(topics.configResult).length === 18);
    expect(results.on(topics.configResult).map((m) => parseConfigResult(m, topics.configResult).accepted)).not.toContain(true);
    for (const kind of ['optics', 'calibration', 'pipeline'] as const) expect(link.currentConfig(kind)).toBeUndefined();
    // Still working: a good ack arrives, frames go out.
    await display.publishAsync(topics.displayAck, Buffer.from(encodeDisplayAck({ sequence: 1, tCaptureNs: 1n, tShownNs: 2n })), { qos: 1 });
    await waitFor('the good ack', () => acks.length === 1);
    expect(acks[0]).toEqual({ sequence: 1, tCaptureNs: 1n, tShownNs: 2n });
    expect(link.stats.connected).toBe(true);
  });

  it('an invalid config push is rejected naming the field; the config in use stays', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    const log = new LogLines();
    const link = later(await HudLink.create(linkOptions(broker, vehicleId, log)));
    const seen: [string, unknown][] = [];
    link.onConfig((kind, config) => seen.push([kind, config]));
    const calibration = later(await roleClient(broker, 'calibration'));
    const results = new Inbox(calibration);
    await calibration.subscribeAsync(topics.configResult, { qos: 1 });
    const push = (topic: string, json: unknown) => calibration.publishAsync(topic, JSON.stringify(json), { qos: 1, retain: true });
    const resultsFor = (topic: string) => results.on(topics.configResult).map((m) => parseConfigResult(m, topics.configResult)).filter((r) => r.topic === topic);

    await push(topics.configPipeline, { detect: 'int8', maxFrameAgeMs: 150 });
    await waitFor('pipeline config accepted', () => resultsFor(topics.configPipeline).length === 1);
    expect(resultsFor(topics.configPipeline)[0]).toMatchObject({ accepted: true });
    expect(link.currentConfig('pipeline')).toEqual({ detect: 'int8', maxFrameAgeMs: 150 });

    await push(topics.configPipeline, { detect: 'int8', maxFrameAgeMs: -5 });
    await waitFor('pipeline config rejected', () => resultsFor(topics.configPipeline).length === 2);
    const rejected = resultsFor(topics.configPipeline)[1]!;
    expect(rejected).toMatchObject({ accepted: false, field: 'maxFrameAgeMs' });
    expect(rejected.error).toMatch(new RegExp(`^${topics.configPipeline}: field 'maxFrameAgeMs' must be > 0, got -5`));
    expect(link.currentConfig('pipeline')).toEqual({ detect: 'int8', maxFrameAgeMs: 150 });

    await push(topics.configOptics, { far: { vidM: 12 } });
    await push(topics.configOptics, { far: { vidM: 40 } });
    await waitFor('two optics results', () => resultsFor(topics.configOptics).length === 2);
    expect(resultsFor(topics.configOptics).map((r) => [r.accepted, r.field])).toEqual([
      [true, undefined],
      [false, 'far.vidM'],
    ]);
    expect(link.currentConfig('optics')?.far.vidM).toBe(12);
    expect(seen.map(([kind]) => kind)).toEqual(['pipeline', 'optics']);
    expect(link.stats).toMatchObject({ configsAccepted: 2, configsRejected: 2 });
    expect(log.matching(/keeping the pipeline config in use/)).toHaveLength(1);
    // A listener added later gets the configs in use at once.
    const late: string[] = [];
    link.onConfig((kind) => late.push(kind));
    expect(late.sort()).toEqual(['optics', 'pipeline']);
  });

  it('keeps running with no broker reachable, queues bounded; when the broker comes, warnings arrive', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    // The display's persistent session exists on the broker before it goes away.
    const sessionId = `arhud-test-display-${vehicleId}`;
    const first = await roleClient(broker, 'display', { persistent: sessionId });
    await first.subscribeAsync(topics.warnings, { qos: 1 });
    await first.endAsync();
    await broker.stop();
    const log = new LogLines();
    const MAX_FRAMES = 3;
    const MAX_WARNINGS = 1000;
    const link = later(await HudLink.create(linkOptions(broker, vehicleId, log, { maxQueuedFrames: MAX_FRAMES, maxQueuedWarnings: MAX_WARNINGS })));
    expect(link.stats.connected).toBe(false);
    const random = seededRandom(7);
    const noise = Uint8Array.from({ length: 320 * 120 * 4 }, () => Math.floor(256 * random())); // raw-size frames: 150 KiB each
    const external0 = process.memoryUsage().arrayBuffers;
    const WARNINGS = 500;
    for (let i = 0; i < 10_000; i++) {
      link.publishFrame(noise, { tCaptureNs: BigInt(i), tRenderNs: BigInt(i), widthPx: 320, heightPx: 120, degraded: false });
      if (i % 20 === 0) link.publishWarning(testWarning(`offline-${i / 20}`, BigInt(i)));
      if (i % 500 === 0) {
        expect(link.stats.framesQueued).toBeLessThanOrEqual(MAX_FRAMES);
        expect(link.stats.warningsQueued).toBeLessThanOrEqual(MAX_WARNINGS);
        await sleep(1); // let reconnect attempts run
      }
    }
    const stats = link.stats;
    expect(stats.connected).toBe(false);
    expect(stats.framesQueued).toBe(MAX_FRAMES);
    expect(stats.framesDropped).toBe(10_000 - MAX_FRAMES);
    expect(stats.warningsQueued).toBe(WARNINGS);
    expect(stats.warningsDropped).toBe(0);
    // 10k frames of 150 KiB would be 1.5 GB if anything kept them.
    expect((process.memoryUsage().arrayBuffers - external0) / 2 ** 20).toBeLessThan(300);

    await broker.start();
    await waitFor('link connected', () => link.stats.connected);
    await waitFor('warnings acknowledged', () => link.stats.warningsQueued === 0);
    const inbox = new Inbox();
    later(await roleClient(broker, 'display', { persistent: sessionId, inbox }));
    const received = () => new Set(inbox.on(topics.warnings).map((m) => parseWarning(m, topics.warnings).id));
    await waitFor('500 warnings at the display', () => received().size === WARNINGS);
    expect(link.stats.framesPublished).toBe(MAX_FRAMES);
  });

  it('drops the oldest expired warning first when the warning queue is full', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    const sessionId = `arhud-test-display-${vehicleId}`;
    const first = await roleClient(broker, 'display', { persistent: sessionId });
    await first.subscribeAsync(topics.warnings, { qos: 1 });
    await first.endAsync();
    await broker.stop();
    let nowNs = 1_000_000_000n;
    const log = new LogLines();
    const link = later(await HudLink.create(linkOptions(broker, vehicleId, log, { maxQueuedWarnings: 4, now: () => nowNs })));
    link.publishWarning(testWarning('keep-1', 0n, 10_000_000_000n));
    link.publishWarning(testWarning('expired-1', 0n, 1n));
    link.publishWarning(testWarning('keep-2', 0n, 10_000_000_000n));
    link.publishWarning(testWarning('expired-2', 0n, 1n));
    link.publishWarning(testWarning('keep-3', 0n, 10_000_000_000n)); // drops expired-1
    link.publishWarning(testWarning('keep-4', 0n, 10_000_000_000n)); // drops expired-2
    link.publishWarning(testWarning('keep-5', 0n, 10_000_000_000n)); // none expired: drops keep-1
    nowNs += 1n;
    expect(link.stats).toMatchObject({ warningsQueued: 4, warningsDropped: 3, warningsPublished: 7 });
    await broker.start();
    const inbox = new Inbox();
    later(await roleClient(broker, 'display', { persistent: sessionId, inbox }));
    await waitFor('4 warnings', () => inbox.on(topics.warnings).length >= 4);
    await waitFor('acknowledged', () => link.stats.warningsQueued === 0);
    expect([...new Set(inbox.on(topics.warnings).map((m) => parseWarning(m, topics.warnings).id))].sort()).toEqual(['keep-2', 'keep-3', 'keep-4', 'keep-5']);
  });
}

// ---------------------------------------------------------------------------------------------
// The last-will case, run against each broker kind (link-lifecycle.test.ts: aedes;
// test/system/link-lifecycle-mosquitto.test.ts)

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

/** The last-will case: call inside a `describe('last-will on <broker>')`. */
export function defineLastWillCase(start: () => Promise<TestBroker>): void {
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
}
