import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { firstValueFrom, map, toArray, type Subscription } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../hud/broker.js';
import { BufferPool } from '../../pipeline/buffer-pool.js';
import { RealClock, SimulatedClock } from '../../pipeline/clock.js';
import type { Frame } from '../../pipeline/frame.js';
import {
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_WAITING_FRAMES,
  LiveCamera,
  LiveCameraError,
  liveSourceKind,
  redactSource,
  type LiveCameraEvent,
  type LiveCameraOptions,
} from '../../pipeline/sources/live-camera.js';
import { DEFAULT_STALE_AFTER_MS, VehicleSignals } from '../../pipeline/sources/vehicle-signals.js';
import { NS_PER_MS, NS_PER_S } from '../../pipeline/time.js';
import { DATA_DIR, tempDir } from '../support/data.js';

const VIDEO = path.join(DATA_DIR, 'udacity-lanelines/test_videos/solidWhiteRight.mp4');
/** solidWhiteRight.mp4 plays at 25 fps. */
const VIDEO_FPS = 25;
const WIDTH = 480;
const HEIGHT = 270;
const FRAME_BYTES = WIDTH * HEIGHT * 3;

const run = promisify(execFile);
const sleepMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function camera(options: Partial<LiveCameraOptions> & { source: string }): { camera: LiveCamera; pool: BufferPool; events: LiveCameraEvent[] } {
  const pool = new BufferPool({ name: 'live-test' });
  const events: LiveCameraEvent[] = [];
  const cam = new LiveCamera({ widthPx: WIDTH, heightPx: HEIGHT, clock: new RealClock(), pool, onEvent: (event) => events.push(event), ...options });
  return { camera: cam, pool, events };
}

/** Waits until `done()` holds, polling; fails after `timeoutMs` with `what`. */
async function waitFor(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleepMs(10);
  }
}

/** A closed loopback port: listen, note the port, close. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('LiveCamera options', () => {
  const pool = new BufferPool();
  const clock = new RealClock();
  const make = (options: Partial<LiveCameraOptions>) => () => new LiveCamera({ source: VIDEO, widthPx: WIDTH, heightPx: HEIGHT, clock, pool, ...options });

  it('refuses odd, zero and huge sizes naming the option', () => {
    expect(make({ widthPx: 481 })).toThrow(new RangeError(`LiveCamera: 'widthPx' must be an even integer in [2, 8192] px, got 481`));
    expect(make({ heightPx: 0 })).toThrow(/'heightPx' must be an even integer/);
    expect(make({ widthPx: 10_000 })).toThrow(/'widthPx' .* got 10000/);
  });

  it('refuses fps <= 0, bad counts and timeouts', () => {
    expect(make({ fps: 0 })).toThrow(new RangeError(`LiveCamera: 'fps' must be a finite number > 0, got 0`));
    expect(make({ fps: -5 })).toThrow(/'fps' must be a finite number > 0, got -5/);
    expect(make({ stallTimeoutMs: 0 })).toThrow(/'stallTimeoutMs' must be a finite number > 0/);
    expect(make({ maxWaitingFrames: 0 })).toThrow(/'maxWaitingFrames' must be an integer >= 1, got 0/);
    expect(make({ maxInFlight: 1.5 })).toThrow(/'maxInFlight' must be an integer >= 1, got 1.5/);
  });

  it('refuses options that do not apply to the kind of source, and option-like sources', () => {
    expect(make({ source: 'rtsp://cam.local/stream', loop: true })).toThrow(/'loop' applies to files only; 'rtsp:\/\/cam.local\/stream' is a stream/);
    expect(make({ captureWidthPx: 640 })).toThrow(/'captureWidthPx' applies to V4L2 devices/);
    expect(make({ source: '-i' })).toThrow(/must not start with '-'/);
    expect(make({ source: '' })).toThrow(TypeError);
    expect(make({ source: '/dev/video0', inputFormat: 'mjpeg; rm' })).toThrow(/'inputFormat' must be an ffmpeg format name/);
  });

  it('classifies sources and redacts URL passwords', () => {
    expect(liveSourceKind('/dev/video2')).toBe('device');
    expect(liveSourceKind('rtsp://10.0.0.5:554/h264')).toBe('stream');
    expect(liveSourceKind('udp://0.0.0.0:5000')).toBe('stream');
    expect(liveSourceKind('file:///tmp/a.mp4')).toBe('file');
    expect(liveSourceKind('drives/a.mp4')).toBe('file');
    expect(redactSource('rtsp://admin:hunter2@10.0.0.5/h264')).toBe('rtsp://admin:***@10.0.0.5/h264');
    expect(redactSource('rtsp://10.0.0.5/h264')).toBe('rtsp://10.0.0.5/h264');
  });

  it('builds the V4L2 command line from the options', () => {
    const cam = make({ source: '/dev/video0', fps: 15, captureWidthPx: 640, captureHeightPx: 480, deviceInputFormat: 'mjpeg' })();
    const args = cam.ffmpegArgs.join(' ');
    expect(args).toContain('-f v4l2 -input_format mjpeg -framerate 15 -video_size 640x480 -i /dev/video0');
    expect(args).toContain(`scale=${WIDTH}:${HEIGHT}`);
    expect(args).toContain('-f rawvideo -pix_fmt rgb24');
    expect(args).not.toContain('-re');
    const file = make({ loop: true })().ffmpegArgs.join(' ');
    expect(file).toContain(`-re -stream_loop -1 -i file:${VIDEO}`);
  });
});

describe('LiveCamera on a video file played in real time', () => {
  it('delivers frames at about the video rate in pooled rgb8 buffers, and stops ffmpeg on unsubscribe', async () => {
    const { camera: cam, pool, events } = camera({ source: VIDEO, loop: true });
    const frames: { seq: number; tCaptureNs: bigint; width: number; height: number; format: string; sum: number }[] = [];
    let firstAtMs: number | undefined;
    const subscription = cam.frames().subscribe({
      next: (frame) => {
        firstAtMs ??= Date.now();
        const { data } = frame.image;
        let sum = 0;
        for (let i = 0; i < data.length; i += 997) sum += data[i]!;
        frames.push({ seq: frame.seq, tCaptureNs: frame.tCaptureNs, width: frame.image.width, height: frame.image.height, format: frame.image.format, sum });
        frame.release();
      },
      error: (error: unknown) => {
        throw error;
      },
    });
    await waitFor(() => firstAtMs !== undefined, 'the first frame');
    await sleepMs(1000);
    const inOneSecond = frames.filter((_, i) => i > 0).length;
    subscription.unsubscribe();
    const readAtUnsubscribe = cam.stats.framesRead;

    // 25 fps: about 25 frames in the second after the first; generous for a busy machine.
    expect(inOneSecond).toBeGreaterThanOrEqual(VIDEO_FPS * 0.4);
    expect(inOneSecond).toBeLessThanOrEqual(VIDEO_FPS * 1.6);
    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => i));
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.tCaptureNs).toBeGreaterThan(frames[i - 1]!.tCaptureNs);
    expect(frames[0]).toMatchObject({ width: WIDTH, height: HEIGHT, format: 'rgb8' });
    expect(frames.every((f) => f.sum > 0)).toBe(true);
    // Consumer released every frame: nothing dropped, every buffer back, only the reserved buffers ever allocated.
    expect(cam.stats.framesDropped).toBe(0);
    expect(pool.stats.allocations).toBe(cam.maxBuffers);
    expect(pool.stats.allocations).toBe(DEFAULT_MAX_IN_FLIGHT + DEFAULT_MAX_WAITING_FRAMES + 1);
    expect(pool.stats.reuses).toBeGreaterThanOrEqual(frames.length);
    expect(pool.stats.inUse).toBe(0);
    expect(events.filter((e) => e.kind === 'stall')).toEqual([]);

    // ffmpeg is gone: nothing more is read.
    await sleepMs(300);
    expect(cam.stats.framesRead).toBe(readAtUnsubscribe);
  });

  it('drops the oldest waiting frames, counted, when the consumer is slow; memory stays bounded', async () => {
    const { camera: cam, pool } = camera({ source: VIDEO, maxInFlight: 1, maxWaitingFrames: 2 });
    const held: Frame[] = [];
    const seen: number[] = [];
    const subscription = cam.frames().subscribe((frame) => {
      seen.push(frame.seq);
      held.push(frame);
      // A consumer that needs 250 ms per frame (10x the frame period).
      setTimeout(() => frame.release(), 250);
    });
    await waitFor(() => cam.stats.framesRead >= 30, '30 frames read');
    const { framesRead, framesEmitted, framesDropped, waiting, inFlight } = cam.stats;
    subscription.unsubscribe();

    expect(framesDropped).toBeGreaterThan(0);
    expect(framesEmitted).toBeLessThan(framesRead / 2);
    expect(framesRead).toBe(framesEmitted + framesDropped + waiting);
    expect(waiting).toBeLessThanOrEqual(2);
    expect(inFlight).toBeLessThanOrEqual(1);
    // Later frames are delivered (the newest waiting ones), not the backlog: seq jumps.
    expect(seen.at(-1)! - seen[0]!).toBeGreaterThan(seen.length);
    // Never more buffers than in flight + waiting + filling.
    expect(pool.stats.allocations).toBeLessThanOrEqual(1 + 2 + 1);
    expect(pool.stats.bytesHeld).toBeLessThanOrEqual(4 * FRAME_BYTES);
    await waitFor(() => pool.stats.inUse === 0, 'the consumer to release its frames', 2000);
  });

  it('ends a file that is not looped with an ended event and completion, not a stall', async () => {
    const dir = await tempDir('arhud-live-');
    try {
      const clip = path.join(dir, 'clip.mkv');
      await run(ffmpegInstaller.path, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=25', '-frames:v', '8', '-c:v', 'mjpeg', clip]);
      const { camera: cam, events, pool } = camera({ source: clip, stallTimeoutMs: 5000 });
      const seqs = await firstValueFrom(
        cam.frames().pipe(
          map((frame) => {
            frame.release();
            return frame.seq;
          }),
          toArray(),
        ),
      );
      expect(seqs).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(events.map((e) => e.kind)).toEqual(['ended']);
      expect(events[0]).toMatchObject({ kind: 'ended', framesRead: 8 });
      expect(cam.stats.stalls).toBe(0);
      expect(pool.stats.inUse).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('LiveCamera failures', () => {
  it('errors naming an unreachable URL (password redacted) and ffmpeg\'s last stderr line', async () => {
    const port = await closedPort();
    const url = `http://viewer:s3cret@127.0.0.1:${port}/camera.mjpg`;
    const { camera: cam } = camera({ source: url, inputFormat: 'mjpeg' });
    const error = await firstValueFrom(cam.frames()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LiveCameraError);
    const message = (error as LiveCameraError).message;
    expect(message).toContain(`LiveCamera 'http://viewer:***@127.0.0.1:${port}/camera.mjpg': ffmpeg exited (exit code 1) after 0 frames: `);
    expect(message).toMatch(/Connection refused/i);
    expect(message).not.toContain('s3cret');
  });

  it('errors naming a missing file', async () => {
    const missing = path.join(DATA_DIR, 'no-such-video.mp4');
    const { camera: cam } = camera({ source: missing });
    await expect(firstValueFrom(cam.frames())).rejects.toThrow(`LiveCamera '${missing}': ffmpeg exited (exit code 1) after 0 frames: `);
    await expect(firstValueFrom(cam.frames())).rejects.toThrow(/No such file or directory/);
  });

  it('reports a stream that stops sending as a stall and keeps waiting; the sender closing is an error', async () => {
    const dir = await tempDir('arhud-live-');
    const mjpeg = path.join(dir, 'clip.mjpeg');
    await run(ffmpegInstaller.path, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=25', '-frames:v', '12', '-c:v', 'mjpeg', '-f', 'mjpeg', mjpeg]);
    const bytes = await readFile(mjpeg);
    await rm(dir, { recursive: true, force: true });
    // An MJPEG-over-HTTP camera that sends 12 frames and then nothing, holding the connection open until told to close.
    let closeStream: (() => void) | undefined;
    const server = http.createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'video/x-motion-jpeg' });
      response.write(bytes);
      closeStream = () => response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/camera.mjpg`;
    let subscription: Subscription | undefined;
    try {
      const { camera: cam, events } = camera({ source: url, inputFormat: 'mjpeg', stallTimeoutMs: 300, startTimeoutMs: 8000 });
      let failure: unknown;
      let completed = false;
      subscription = cam.frames().subscribe({ next: (frame) => frame.release(), error: (e: unknown) => (failure = e), complete: () => (completed = true) });
      await waitFor(() => cam.stats.stalls === 1, 'a stall');
      expect(cam.stats.framesRead).toBeGreaterThanOrEqual(8);
      const stall = events.find((e) => e.kind === 'stall');
      expect(stall).toMatchObject({ kind: 'stall', lastSeq: cam.stats.framesRead - 1 });
      // Timed from the last frame with the stall timeout, not from the start with the start timeout.
      expect((stall as { waitedMs: number }).waitedMs).toBeGreaterThanOrEqual(300);
      expect((stall as { waitedMs: number }).waitedMs).toBeLessThan(8000);
      // Still open: a stall does not end the stream, and it is reported once.
      await sleepMs(500);
      expect(cam.stats.stalls).toBe(1);
      expect(failure).toBeUndefined();
      expect(completed).toBe(false);

      closeStream!();
      await waitFor(() => failure !== undefined, 'the stream end');
      expect(failure).toBeInstanceOf(LiveCameraError);
      expect((failure as Error).message).toMatch(new RegExp(`^LiveCamera '${url}': the stream ended \\(ffmpeg exited with exit code 0\\) after \\d+ frames`));
      expect(completed).toBe(false);
      expect(events.some((e) => e.kind === 'ended')).toBe(false);
    } finally {
      subscription?.unsubscribe();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

// ---------------------------------------------------------------------------------------------
const T0_S = 1_700_000_000;
const tNs = (offsetMs: number) => BigInt(T0_S) * NS_PER_S + BigInt(offsetMs) * NS_PER_MS;
const line = (offsetMs: number, fields: Record<string, unknown> = {}) =>
  JSON.stringify({ timestamp: { sec: T0_S + Math.floor(offsetMs / 1000), nsec: (offsetMs % 1000) * 1_000_000 }, speedMps: 10 + offsetMs / 1000, yawRateRps: 0.01, ...fields });

describe('VehicleSignals from JSON lines', () => {
  const text = [
    line(0, { gear: 'D' }), // 1 good
    line(50, { accelMps2: 0.5, steeringRad: -0.02 }), // 2 good
    '{"timestamp": {"sec": 1700000000, ', // 3 malformed
    line(60, { speedMps: 'fast' }), // 4 schema: wrong type
    JSON.stringify({ timestamp: { sec: T0_S, nsec: 70_000_000 }, speedMps: 3 }), // 5 schema: missing yawRateRps
    line(40), // 6 backwards in time
    line(50), // 7 same time as line 2
    '', // 8 blank
    `${line(100)}\r`, // 9 good, CRLF
    line(300), // 10 good, last
  ].join('\n');

  async function readAll(chunkBytes: number, options = {}): Promise<{ signals: VehicleSignals; logs: string[]; lines: number }> {
    const logs: string[] = [];
    const signals = new VehicleSignals({ name: 'can-bridge.jsonl', log: (l) => logs.push(l), ...options });
    // Chunks split lines anywhere, like a pipe does.
    const bytes = Buffer.from(text);
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += chunkBytes) chunks.push(bytes.subarray(at, at + chunkBytes));
    const lines = await signals.read(Readable.from(chunks));
    return { signals, logs, lines };
  }

  it('accepts good lines and counts and logs bad ones with line number and field', async () => {
    const { signals, logs, lines } = await readAll(7);
    expect(lines).toBe(10);
    expect(signals.stats).toMatchObject({ linesRead: 9, statesAccepted: 4, linesMalformed: 1, linesInvalid: 2, linesOutOfOrder: 2, linesTooLong: 0 });
    expect(logs).toHaveLength(5);
    expect(logs[0]).toMatch(/^VehicleSignals 'can-bridge.jsonl': line 3: arhud.VehicleState: payload is not JSON .*; skipped$/);
    expect(logs[1]).toBe(`VehicleSignals 'can-bridge.jsonl': line 4: arhud.VehicleState: field 'speedMps' must be number; skipped`);
    expect(logs[2]).toBe(`VehicleSignals 'can-bridge.jsonl': line 5: arhud.VehicleState: field '(root)' must have required property 'yawRateRps'; skipped`);
    expect(logs[3]).toBe(`VehicleSignals 'can-bridge.jsonl': line 6: field 'timestamp' ${tNs(40)} ns is not after the previous state's ${tNs(50)} ns; skipped`);
    expect(logs[4]).toMatch(/^VehicleSignals 'can-bridge.jsonl': line 7: field 'timestamp' .* is not after/);
    expect(signals.stats.lastProblem).toBe(logs[4]);
  });

  it('gives the newest state not newer than a time, with its age and staleness', async () => {
    const { signals } = await readAll(4096);
    expect(signals.latest(tNs(0) - 1n)).toBeUndefined();
    expect(signals.latest(tNs(0))).toEqual({ state: { tNs: tNs(0), speedMps: 10, yawRateRps: 0.01, gear: 'D' }, ageMs: 0, stale: false });
    const at80 = signals.latest(tNs(80))!;
    expect(at80.state).toEqual({ tNs: tNs(50), speedMps: 10.05, yawRateRps: 0.01, accelMps2: 0.5, steeringRad: -0.02 });
    expect(at80.ageMs).toBe(30);
    expect(signals.latest(tNs(299))!.state.tNs).toBe(tNs(100));
    // Exactly at the stale limit is still fresh; one ns later it is stale (unknown).
    expect(signals.latest(tNs(300 + DEFAULT_STALE_AFTER_MS))).toMatchObject({ ageMs: DEFAULT_STALE_AFTER_MS, stale: false });
    expect(signals.latest(tNs(300 + DEFAULT_STALE_AFTER_MS) + 1n)!.stale).toBe(true);
    expect(signals.fresh(tNs(300 + DEFAULT_STALE_AFTER_MS) + 1n)).toBeUndefined();
    expect(signals.fresh(tNs(310))!.tNs).toBe(tNs(300));
  });

  it('keeps a bounded history and skips over-long lines without buffering them', async () => {
    const logs: string[] = [];
    const signals = new VehicleSignals({ historySize: 3, maxLineBytes: 256, log: (l) => logs.push(l) });
    const input = Readable.from([`${line(0)}\n${'x'.repeat(300)}`, `${'y'.repeat(300)}\n${line(10)}\n${line(20)}\n${line(30)}\n`]);
    expect(await signals.read(input)).toBe(5);
    expect(signals.stats).toMatchObject({ statesAccepted: 4, linesTooLong: 1 });
    expect(logs).toEqual([`VehicleSignals 'vehicle-signals': line 2: longer than 256 bytes; skipped`]);
    expect(signals.size).toBe(3);
    // The state at 0 ms fell out of the history.
    expect(signals.latest(tNs(5))).toBeUndefined();
    expect(signals.latest(tNs(25))!.state.tNs).toBe(tNs(20));
    expect(signals.latest(tNs(1000))!.state.tNs).toBe(tNs(30));
  });

  it('stamps arrival time on the clock when asked, still rejecting payload times that go back', () => {
    const clock = new SimulatedClock(5n * NS_PER_S);
    const signals = new VehicleSignals({ timestamps: 'arrival', clock });
    expect(signals.push(line(0))!.tNs).toBe(5n * NS_PER_S);
    clock.advanceBy(20n * NS_PER_MS);
    expect(signals.push(line(10))!.tNs).toBe(5n * NS_PER_S + 20n * NS_PER_MS);
    expect(signals.push(line(5))).toBeUndefined();
    expect(signals.stats.linesOutOfOrder).toBe(1);
    expect(signals.latest(5n * NS_PER_S + 30n * NS_PER_MS)!.ageMs).toBe(10);
  });

  it('logs only the first problems, then counts', () => {
    const logs: string[] = [];
    const signals = new VehicleSignals({ maxLoggedProblems: 2, log: (l) => logs.push(l) });
    for (let i = 0; i < 5; i++) signals.push('not json');
    expect(signals.stats.linesMalformed).toBe(5);
    expect(logs).toHaveLength(3);
    expect(logs[2]).toBe(`VehicleSignals 'vehicle-signals': further bad lines are counted, not logged`);
    expect(signals.stats.lastProblem).toMatch(/line 5: /);
  });

  it('refuses bad options naming them', () => {
    expect(() => new VehicleSignals({ timestamps: 'arrival' })).toThrow(new TypeError(`VehicleSignals: 'clock' is required with timestamps 'arrival'`));
    expect(() => new VehicleSignals({ staleAfterMs: 0 })).toThrow(/'staleAfterMs' must be a finite number > 0, got 0/);
    expect(() => new VehicleSignals({ historySize: 0 })).toThrow(/'historySize' must be an integer >= 1, got 0/);
  });

  it('rejects with an error naming the source when the input stream fails', async () => {
    const signals = new VehicleSignals({ name: 'stdin' });
    const input = new Readable({ read() {} });
    input.push(`${line(0)}\n`);
    setTimeout(() => input.destroy(new Error('EIO: i/o error')), 10);
    await expect(signals.read(input)).rejects.toThrow(`VehicleSignals 'stdin': cannot read the input after line 1 (EIO: i/o error)`);
    expect(signals.stats.statesAccepted).toBe(1);
  });
});

describe('VehicleSignals from MQTT payloads (wired by the caller)', () => {
  let broker: EmbeddedBroker;
  beforeAll(async () => {
    broker = await EmbeddedBroker.start();
  });
  afterAll(async () => {
    await broker.stop();
  });

  it('takes one JSON object per message, naming the topic in logs', async () => {
    const topic = 'vehicle/test/state';
    const logs: string[] = [];
    const signals = new VehicleSignals({ name: topic, log: (l) => logs.push(l) });
    const subscriber = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    try {
      let received = 0;
      subscriber.on('message', (_topic, payload) => {
        received++;
        signals.push(payload, `message ${received}`);
      });
      await subscriber.subscribeAsync(topic, { qos: 1 });
      for (const payload of [line(0), line(20, { yawRateRps: null }), line(40)]) await publisher.publishAsync(topic, payload, { qos: 1 });
      await waitFor(() => received === 3, 'three MQTT messages');
      expect(signals.stats).toMatchObject({ statesAccepted: 2, linesInvalid: 1 });
      expect(logs).toEqual([`VehicleSignals '${topic}': message 2: arhud.VehicleState: field 'yawRateRps' must be number; skipped`]);
      expect(signals.latest(tNs(45))).toMatchObject({ ageMs: 5, stale: false });
    } finally {
      await subscriber.endAsync();
      await publisher.endAsync();
    }
  });
});
