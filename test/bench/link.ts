/**
 * Link benchmark: HUD frames at 60 fps (the render goldens, real 1280x480 renderer output), a scene
 * per frame and an ADAS warning every second, published by HudLink through mosquitto on loopback
 * for LINK_BENCH_S seconds (the embedded broker when mosquitto is not installed). A minimal display
 * controller in a worker thread decodes and validates every frame, acknowledges it on display/ack
 * and records publish-to-controller latency (publish call to decoded frame, wall clock shared by
 * both threads). Targets (issue #6): p99 <= 5 ms, no warning lost, encode <= 3 ms, compression >= 20x.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import mqtt from 'mqtt';
import sharp from 'sharp';
import { EmbeddedBroker } from '../../hud/broker.js';
import { HudFrameEncoder, decodeHudFrame } from '../../hud/frame-codec.js';
import { HudLink } from '../../hud/link.js';
import { encodeDisplayAck, hudTopics, parseWarning } from '../../hud/topics.js';
import { HUD_SCENE_VERSION, type HudScene } from '../../render/hud-scene.js';
import { PROJECT_ROOT } from '../support/data.js';

export const LINK_BENCH_S = Number(process.env.ARHUD_BENCH_LINK_S ?? 60);
export const FRAME_RATE_HZ = 60;
export const WARNING_EVERY_FRAMES = 60;
export const TARGET_P99_MS = 5;
export const TARGET_ENCODE_MS = 3;
export const TARGET_COMPRESSION_RATIO = 20;
const MOSQUITTO = process.env.ARHUD_MOSQUITTO ?? '/usr/sbin/mosquitto';
const GOLDENS = ['busy-day', 'night', 'degraded'];
const VEHICLE_ID = 'bench';
const WORKER_ROLE = 'arhud-link-bench-controller';

/** Wall-clock ns with sub-ms resolution, the same in every thread of the process. */
const wallNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
const percentile = (sorted: ArrayLike<number>, q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

interface ControllerResult {
  framesShown: number;
  framesInvalid: number;
  scenesReceived: number;
  warningIds: string[];
  latenciesMs: Float64Array;
}

// ---------------------------------------------------------------------------------------------
// The display controller stand-in (worker thread)

function runController(url: string): void {
  const topics = hudTopics(VEHICLE_ID);
  const latenciesMs: number[] = [];
  const warningIds = new Set<string>();
  let framesShown = 0;
  let framesInvalid = 0;
  let scenesReceived = 0;
  let lastSequence = -1;
  let rgba: Uint8Array | undefined;
  const client = mqtt.connect(url, { protocolVersion: 5, clientId: 'arhud-bench-controller', reconnectPeriod: 200 });
  client.on('error', () => {});
  client.on('message', (topic, payload) => {
    if (topic === topics.frame) {
      try {
        const { header, rgba: shown } = decodeHudFrame(payload, rgba, topic);
        rgba = shown;
        if (header.widthPx !== 1280 || header.heightPx !== 480 || header.sequence <= lastSequence) throw new Error(`unexpected frame ${header.sequence}`);
        lastSequence = header.sequence;
        const tShownNs = wallNs();
        latenciesMs.push(Number(tShownNs - header.tRenderNs) / 1e6);
        framesShown++;
        client.publish(topics.displayAck, Buffer.from(encodeDisplayAck({ sequence: header.sequence, tCaptureNs: header.tCaptureNs, tShownNs })), { qos: 0 });
      } catch {
        framesInvalid++;
      }
    } else if (topic === topics.warnings) {
      warningIds.add(parseWarning(payload, topic).id);
    } else if (topic === topics.scene) {
      scenesReceived++;
    }
  });
  client.on('connect', () => {
    (client.stream as { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true);
    client.subscribe({ [topics.frame]: { qos: 0 }, [topics.scene]: { qos: 0 }, [topics.warnings]: { qos: 1 } }, () => parentPort!.postMessage('ready'));
  });
  parentPort!.on('message', () => {
    const result: ControllerResult = { framesShown, framesInvalid, scenesReceived, warningIds: [...warningIds], latenciesMs: Float64Array.from(latenciesMs) };
    client.end(true, {}, () => parentPort!.postMessage(result));
  });
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === WORKER_ROLE) runController((workerData as { url: string }).url);

// ---------------------------------------------------------------------------------------------
// Broker

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startBroker(): Promise<{ url: string; name: string; stop: () => Promise<void> }> {
  if (!existsSync(MOSQUITTO)) {
    const broker = await EmbeddedBroker.start();
    return { url: broker.url, name: 'embedded (aedes; mosquitto not installed)', stop: () => broker.stop() };
  }
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arhud-bench-mosquitto-'));
  const conf = path.join(dir, 'mosquitto.conf');
  await writeFile(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 10000', 'set_tcp_nodelay true', ...(process.getuid?.() === 0 ? ['user root'] : [])].join('\n') + '\n');
  const child: ChildProcess = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (i > 500 || child.exitCode !== null) throw new Error(`link benchmark: mosquitto did not start on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    name: 'mosquitto (loopback, MQTT 5)',
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------

function benchScene(i: number, tNs: bigint): HudScene {
  const valid = tNs + 200_000_000n;
  return {
    version: HUD_SCENE_VERSION,
    tCaptureNs: tNs,
    brightness: 'day',
    degraded: false,
    primitives: [
      { kind: 'lane', id: 'l', role: 'ego-left', pointsM: Array.from({ length: 20 }, (_, k) => [5 + 5 * k, 1.8 + 0.01 * (i % 10)] as [number, number]), lineType: 'solid', confidence: 0.9, validUntilNs: valid },
      { kind: 'lane', id: 'r', role: 'ego-right', pointsM: Array.from({ length: 20 }, (_, k) => [5 + 5 * k, -1.8 + 0.01 * (i % 10)] as [number, number]), lineType: 'dashed', confidence: 0.9, validUntilNs: valid },
      { kind: 'object', trackId: '1', objectClass: 'car', positionM: { x: 25, y: 0 }, widthM: 1.8, warning: 'caution', ttcS: 3.2, validUntilNs: valid },
      { kind: 'speed', speedMps: 13.9, limitMps: 13.9, validUntilNs: valid },
    ],
  };
}

async function loadGoldens(): Promise<Uint8Array[]> {
  return Promise.all(
    GOLDENS.map(async (name) => {
      const { data, info } = await sharp(path.join(PROJECT_ROOT, 'test/render/golden', `${name}.png`)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      if (info.width !== 1280 || info.height !== 480) throw new Error(`link benchmark: golden ${name} is ${info.width}x${info.height}, expected 1280x480`);
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }),
  );
}

export async function linkBenchmark(json: boolean): Promise<Record<string, unknown>> {
  const goldens = await loadGoldens();
  const encoder = new HudFrameEncoder();
  const encodedBytes = goldens.map((rgba) => encoder.encode(rgba, { sequence: 0, tCaptureNs: 0n, tRenderNs: 0n, widthPx: 1280, heightPx: 480, degraded: false }).length);
  const ratios = goldens.map((rgba, k) => rgba.length / encodedBytes[k]!);
  // Bytes over bytes of the frames the run sends (they cycle through the goldens), not a mean of ratios.
  const compressionRatio = goldens.reduce((sum, rgba) => sum + rgba.length, 0) / encodedBytes.reduce((a, b) => a + b, 0);

  const broker = await startBroker();
  let controller: Worker | undefined;
  let link: HudLink | undefined;
  try {
    return await measure(broker, goldens, compressionRatio, ratios, json, (w) => (controller = w), (l) => (link = l));
  } finally {
    // Whatever happened, no broker or worker outlives the benchmark.
    await link?.dispose().catch(() => {});
    await controller?.terminate();
    await broker.stop();
  }
}

async function measure(
  broker: { url: string; name: string },
  goldens: Uint8Array[],
  compressionRatio: number,
  ratios: number[],
  json: boolean,
  keepWorker: (worker: Worker) => void,
  keepLink: (link: HudLink) => void,
): Promise<Record<string, unknown>> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  // The worker runs this module again (compiled: npm run bench builds first; tsx cannot load workers).
  const controller = new Worker(new URL(import.meta.url), { workerData: { role: WORKER_ROLE, url: broker.url } });
  keepWorker(controller);
  const controllerResult = new Promise<ControllerResult>((resolve, reject) => {
    controller.on('message', (message: unknown) => {
      if (message !== 'ready') resolve(message as ControllerResult);
    });
    controller.once('error', reject);
  });
  await new Promise<void>((resolve, reject) => {
    controller.once('message', () => resolve());
    controller.once('error', reject);
  });

  const log: string[] = [];
  const link = await HudLink.create({ url: broker.url, vehicleId: VEHICLE_ID, clientId: 'arhud-bench-pipeline', log: (line) => log.push(line) });
  keepLink(link);
  const acks: number[] = [];
  link.onDisplayAck((ack, receivedNs) => acks.push(Number(receivedNs - ack.tCaptureNs) / 1e6));
  const frames = Math.round(LINK_BENCH_S * FRAME_RATE_HZ);
  const frameNs = 1_000_000_000 / FRAME_RATE_HZ;
  const encodeMs = new Float64Array(frames);
  let warningsSent = 0;
  say(`link benchmark: ${frames} frames at ${FRAME_RATE_HZ} fps (${LINK_BENCH_S} s), broker ${broker.name}${json ? '' : ', goldens ' + GOLDENS.join(', ')}`);
  const t0Ms = performance.now();
  for (let i = 0; i < frames; i++) {
    const due = t0Ms + (i * frameNs) / 1e6;
    const waitMs = due - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    else await new Promise((resolve) => setImmediate(resolve));
    const tNs = wallNs();
    link.publishFrame(goldens[i % goldens.length]!, { tCaptureNs: tNs, tRenderNs: tNs, widthPx: 1280, heightPx: 480, degraded: false });
    encodeMs[i] = link.stats.encodeMs;
    link.publishScene(benchScene(i, tNs));
    if (i % WARNING_EVERY_FRAMES === 0) {
      link.publishWarning({ id: `bench-${warningsSent}`, tNs, level: 'warning', kind: 'forward-collision', message: 'Brake', validUntilNs: tNs + 1_000_000_000n });
      warningsSent++;
    }
    if (i > 0 && i % (FRAME_RATE_HZ * 10) === 0) say(`  ${i / FRAME_RATE_HZ} s: ${link.stats.framesPublished} frames published, ${link.stats.framesDropped} dropped, ${acks.length} acks`);
  }
  const deadline = performance.now() + 5000;
  while (link.stats.warningsQueued > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setTimeout(resolve, 300)); // last frames and acks in flight
  controller.postMessage('done');
  const shown = await controllerResult;
  const stats = link.stats;

  // ARHUD_BENCH_LINK_DUMP=file.csv keeps the per-frame latencies (frame order) for a closer look at the tail.
  if (process.env.ARHUD_BENCH_LINK_DUMP) await writeFile(process.env.ARHUD_BENCH_LINK_DUMP, Array.from(shown.latenciesMs, (ms) => ms.toFixed(3)).join('\n') + '\n');
  const sorted = Float64Array.from(shown.latenciesMs).sort();
  const sortedEncode = Float64Array.from(encodeMs).sort();
  const sortedAcks = Float64Array.from(acks).sort();
  const warningIds = new Set(shown.warningIds);
  const warningsLost = Array.from({ length: warningsSent }, (_, k) => `bench-${k}`).filter((id) => !warningIds.has(id)).length;
  const result = {
    benchmark: 'link',
    broker: broker.name,
    durationS: LINK_BENCH_S,
    frames: 'render goldens busy-day, night, degraded (1280x480 RGBA)',
    p50Ms: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.at(-1) ?? NaN,
    framesSent: stats.framesPublished,
    framesDropped: stats.framesDropped,
    framesShown: shown.framesShown,
    framesInvalid: shown.framesInvalid,
    scenesSent: stats.scenesPublished,
    scenesReceived: shown.scenesReceived,
    warningsSent,
    warningsReceived: warningIds.size,
    warningsLost,
    warningsAcked: stats.warningsAcked,
    encodeMsMedian: percentile(sortedEncode, 0.5),
    encodeMsP99: percentile(sortedEncode, 0.99),
    compressionRatio,
    compressionRatioMin: Math.min(...ratios),
    ackRoundTripP50Ms: percentile(sortedAcks, 0.5),
    ackRoundTripP99Ms: percentile(sortedAcks, 0.99),
    reconnects: stats.reconnects,
    targets: { p99Ms: `<= ${TARGET_P99_MS}`, warningsLost: '0', encodeMsMedian: `<= ${TARGET_ENCODE_MS}`, compressionRatio: `>= ${TARGET_COMPRESSION_RATIO}` },
    met: false,
  };
  result.met = result.p99Ms <= TARGET_P99_MS && warningsLost === 0 && result.encodeMsMedian <= TARGET_ENCODE_MS && compressionRatio >= TARGET_COMPRESSION_RATIO;
  say(
    `link (${result.broker}): publish-to-controller p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, max ${result.maxMs.toFixed(1)} ms; ` +
      `frames ${result.framesSent} sent / ${result.framesShown} shown (${result.framesInvalid} invalid, ${result.framesDropped} dropped); ` +
      `warnings ${warningIds.size}/${warningsSent} (${warningsLost} lost); encode median ${result.encodeMsMedian.toFixed(2)} ms (p99 ${result.encodeMsP99.toFixed(2)}); ` +
      `compression ${compressionRatio.toFixed(0)}x (min ${result.compressionRatioMin.toFixed(0)}x); ack round trip p50 ${result.ackRoundTripP50Ms.toFixed(2)} ms -> targets ${result.met ? 'met' : 'NOT met'}`,
  );
  return result;
}
