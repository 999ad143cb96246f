import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { firstValueFrom, tap, toArray } from 'rxjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { SimulatedClock } from '../../pipeline/clock.js';
import { RecordingError } from '../../pipeline/recording/errors.js';
import { RecordingReader, type RecordedMessage } from '../../pipeline/recording/reader.js';
import {
  TOPIC_CAMERA,
  TOPIC_CAMERA_CALIBRATION,
  TOPIC_FRAME_REPORT,
  TOPIC_VEHICLE_STATE,
  compressedImageCodec,
  frameReportCodec,
  vehicleStateCodec,
} from '../../pipeline/recording/topics.js';
import { RecordingWriter } from '../../pipeline/recording/writer.js';
import { decodeSamples, runReplay } from '../../pipeline/replay.js';
import { BufferPool } from '../../pipeline/buffer-pool.js';
import type { Frame } from '../../pipeline/frame.js';
import { PipelineMetrics } from '../../pipeline/metrics.js';
import { MAX_REPLAY_SPEED, MIN_REPLAY_SPEED, RecordingPlayer, type CameraSample } from '../../pipeline/sources/replay.js';
import { PANDASET_DIR, importedPandasetDrive, tempDir } from '../support/data.js';

const FRAME_NS = 100_000_000n;
const T0 = 1_557_539_956_000_000_000n;

/** A small recording of real PandaSet JPEGs; `mutate` may alter frame i's message. */
async function writeCameraRecording(
  file: string,
  frames: number,
  mutate: (i: number, message: { tNs: bigint; data: Uint8Array }) => { tNs: bigint; data: Uint8Array } = (_i, m) => m,
): Promise<void> {
  const writer = await RecordingWriter.create(file);
  for (let i = 0; i < frames; i++) {
    const logTimeNs = T0 + BigInt(i) * FRAME_NS;
    const jpeg = await readFile(path.join(PANDASET_DIR, 'camera', `${String(i).padStart(2, '0')}.jpg`));
    const { tNs, data } = mutate(i, { tNs: logTimeNs, data: jpeg });
    await writer.write(TOPIC_VEHICLE_STATE, vehicleStateCodec, logTimeNs, { tNs: logTimeNs, speedMps: i, yawRateRps: 0 });
    await writer.write(TOPIC_CAMERA, compressedImageCodec, logTimeNs, { tNs, frameId: 'camera_front', format: 'jpeg', data });
  }
  await writer.close();
}

async function readTopic(file: string, topic: string): Promise<RecordedMessage[]> {
  const reader = await RecordingReader.open(file);
  const out: RecordedMessage[] = [];
  for await (const m of reader.messages({ topics: [topic] })) out.push(m);
  await reader.close();
  return out;
}

describe('RecordingPlayer pacing (simulated clock)', () => {
  let drive: string;
  beforeAll(async () => {
    drive = path.join(await tempDir(), 'small.mcap');
    await writeCameraRecording(drive, 6);
  });

  /** Lets file reads run until the player sleeps on the clock again (or finishes). */
  async function settle(clock: SimulatedClock, finished: () => boolean): Promise<void> {
    await vi.waitFor(() => expect(clock.pendingSleepers > 0 || finished()).toBe(true), { interval: 1, timeout: 5000 });
  }

  it.each([1, 2, 0.5])('emits each frame exactly at log time / speed (speed %s)', async (speed) => {
    const reader = await RecordingReader.open(drive);
    const clock = new SimulatedClock(5_000n);
    const player = new RecordingPlayer(reader, { pacing: { mode: 'paced', speed, clock } });
    const seen: { seq: number; atNs: bigint }[] = [];
    let finished = false;
    player.samples().subscribe({
      next: (s) => {
        seen.push({ seq: s.seq, atNs: clock.nowNs() });
        player.done();
      },
      complete: () => (finished = true),
    });
    const stepNs = BigInt(Math.round(Number(FRAME_NS) / speed));
    for (let i = 0; i < 6; i++) {
      await settle(clock, () => finished);
      const dueNs = 5_000n + BigInt(i) * stepNs;
      // One nanosecond early: frame i must not be out yet.
      if (dueNs - 1n > clock.nowNs()) {
        clock.advanceTo(dueNs - 1n);
        await settle(clock, () => finished);
        expect(seen.length).toBe(i);
      }
      clock.advanceTo(dueNs);
      await vi.waitFor(() => expect(seen.length).toBe(i + 1), { interval: 1 });
    }
    await settle(clock, () => finished);
    expect(finished).toBe(true);
    expect(seen.map((s) => s.atNs - 5_000n)).toEqual([0, 1, 2, 3, 4, 5].map((i) => BigInt(i) * stepNs));
    await reader.close();
  });

  it('attaches the latest vehicle state and passes other messages along', async () => {
    const reader = await RecordingReader.open(drive);
    const player = new RecordingPlayer(reader, { pacing: { mode: 'afap', maxInFlight: 8 } });
    const samples = await firstValueFrom(player.samples().pipe(toArray()));
    expect(samples.map((s) => s.vehicle?.speedMps)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(samples.every((s) => s.sideMessages.length === 1 && s.sideMessages[0]!.topic === TOPIC_VEHICLE_STATE)).toBe(true);
    await reader.close();
  });

  it('seeks, loops with shifted times, and filters topics', async () => {
    const reader = await RecordingReader.open(drive);
    const player = new RecordingPlayer(reader, { pacing: { mode: 'afap', maxInFlight: 2 }, startS: 0.2, endS: 0.4, loops: 3 });
    const samples: CameraSample[] = await firstValueFrom(player.samples().pipe(tap(() => player.done()), toArray()));
    // 3 frames (0.2, 0.3, 0.4 s) x 3 loops, each loop shifted by span + one frame period.
    expect(samples.map((s) => s.tCaptureNs - T0)).toEqual([200, 300, 400, 500, 600, 700, 800, 900, 1000].map((ms) => BigInt(ms) * 1_000_000n));
    expect(samples.map((s) => s.loop)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    expect(player.stats.loopsCompleted).toBe(3);

    const cameraOnly = new RecordingPlayer(reader, { pacing: { mode: 'afap', maxInFlight: 8 }, topics: [TOPIC_CAMERA] });
    const only = await firstValueFrom(cameraOnly.samples().pipe(toArray()));
    expect(only.every((s) => s.sideMessages.length === 0 && s.vehicle === undefined)).toBe(true);
    await reader.close();
  });

  it('never has more than maxInFlight samples out in afap mode', async () => {
    const reader = await RecordingReader.open(drive);
    const player = new RecordingPlayer(reader, { pacing: { mode: 'afap', maxInFlight: 2 } });
    const held: CameraSample[] = [];
    let finished = false;
    player.samples().subscribe({ next: (s) => held.push(s), complete: () => (finished = true) });
    await vi.waitFor(() => expect(held.length).toBe(2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(held.length).toBe(2);
    for (let i = 0; i < 4; i++) {
      player.done();
      await vi.waitFor(() => expect(held.length).toBe(3 + i));
    }
    player.done();
    player.done();
    await vi.waitFor(() => expect(finished).toBe(true));
    await reader.close();
  });

  it('refuses bad options and names missing topics', async () => {
    const reader = await RecordingReader.open(drive);
    const clock = new SimulatedClock();
    expect(() => new RecordingPlayer(reader, { pacing: { mode: 'paced', speed: MAX_REPLAY_SPEED * 1.01, clock } })).toThrow(
      new RangeError(`replay: speed must be in [${MIN_REPLAY_SPEED}, ${MAX_REPLAY_SPEED}], got ${MAX_REPLAY_SPEED * 1.01}`),
    );
    expect(() => new RecordingPlayer(reader, { pacing: { mode: 'paced', speed: MIN_REPLAY_SPEED * 0.99, clock } })).toThrow(RangeError);
    expect(() => new RecordingPlayer(reader, { pacing: { mode: 'afap', maxInFlight: 1 }, startS: 9 })).toThrow(/start must be in \[0, 0.500\] s/);
    expect(() => new RecordingPlayer(reader, { pacing: { mode: 'afap', maxInFlight: 1 }, topics: ['/lidar'] })).toThrow(
      new RecordingError({ file: drive }, "missing topic(s) '/lidar'; the recording has '/vehicle/state', '/camera/front'"),
    );
    await reader.close();
  });
});

describe('decodeSamples under overload (paced replay)', () => {
  it('drops the oldest waiting frames, counts them, and carries their side messages to the next frame', async () => {
    const drive = path.join(await tempDir(), 'burst.mcap');
    await writeCameraRecording(drive, 12);
    const reader = await RecordingReader.open(drive);
    const clock = new SimulatedClock();
    const player = new RecordingPlayer(reader, { pacing: { mode: 'paced', speed: 1, clock } });
    const metrics = new PipelineMetrics();
    const pool = new BufferPool();
    const frames: Frame[] = [];
    const done = new Promise<void>((resolve, reject) =>
      player
        .samples()
        .pipe(decodeSamples(player, pool, { clock, metrics, queueCapacity: 1, onProblem: reject }))
        .subscribe({ next: (frame) => frames.push(frame), error: reject, complete: resolve }),
    );
    // The whole drive becomes due at once: far more frames than the decoder can take.
    clock.advanceTo(10n * 1_000_000_000n);
    await done;
    const drops = metrics.counter('decode.drops');
    expect(drops).toBeGreaterThan(0);
    expect(frames.length + drops).toBe(12);
    expect(frames.at(-1)!.seq).toBe(11);
    // Every vehicle state reaches the output, dropped frames' ones included, in order.
    const speeds = frames.flatMap((f) => f.origin!.sideMessages.map((m) => vehicleStateCodec.decode(m.data).speedMps));
    expect(speeds).toEqual([...Array(12).keys()]);
    frames.forEach((f) => f.release());
    expect(pool.stats.inUse).toBe(0);
    await reader.close();
  });
});

describe('replay job on the imported PandaSet drive', () => {
  let drive: string;
  beforeAll(async () => {
    drive = await importedPandasetDrive();
  });

  it('--afap twice gives byte-identical output recordings with all inputs passed through', async () => {
    const dir = await tempDir();
    const a = await runReplay({ input: drive, output: path.join(dir, 'a.mcap'), pacing: 'afap', endS: 1.95 });
    const b = await runReplay({ input: drive, output: path.join(dir, 'b.mcap'), pacing: 'afap', endS: 1.95 });
    expect(a.frames).toBe(20);
    expect(Buffer.compare(await readFile(a.output), await readFile(b.output))).toBe(0);

    const reports = await readTopic(a.output, TOPIC_FRAME_REPORT);
    expect(reports).toHaveLength(20);
    const first = frameReportCodec.decode(reports[0]!.data);
    const { data, info } = await sharp(path.join(PANDASET_DIR, 'camera', '00.jpg')).raw().toBuffer({ resolveWithObject: true });
    expect([first.width, first.height]).toEqual([info.width, info.height]);
    // Mean luma of frame 0 measured independently on every pixel agrees with the sampled estimate.
    let sum = 0;
    for (let i = 0; i < data.length; i += 3) sum += 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
    expect(first.meanLuma).toBeCloseTo(sum / (data.length / 3), 0);

    const source = await readTopic(drive, TOPIC_CAMERA);
    const passed = await readTopic(a.output, TOPIC_CAMERA);
    expect(passed).toHaveLength(20);
    passed.forEach((m, i) => expect(Buffer.compare(m.data, source[i]!.data)).toBe(0));
    expect(await readTopic(a.output, TOPIC_CAMERA_CALIBRATION)).toHaveLength(20);
    expect(a.stages.decode!.count).toBe(20);
    expect(a.stages.exposure!.count).toBe(20);
  });

  it('loops reuse frame buffers: no new buffers after the first loop', async () => {
    const dir = await tempDir();
    const summary = await runReplay({ input: drive, output: path.join(dir, 'loop.mcap'), pacing: 'afap', endS: 0.95, loops: 4 });
    expect(summary.frames).toBe(40);
    expect(summary.loopsCompleted).toBe(4);
    expect(summary.poolAllocsSteadyState).toBe(0);
    expect(summary.pool.inUse).toBe(0);
    const reports = (await readTopic(summary.output, TOPIC_FRAME_REPORT)).map((m) => frameReportCodec.decode(m.data));
    expect(reports.map((r) => r.seq)).toEqual([...Array(40).keys()]);
    for (let i = 1; i < reports.length; i++) expect(reports[i]!.tNs).toBeGreaterThan(reports[i - 1]!.tNs);
  });

  it('stops on abort with a finalized output holding what was replayed', async () => {
    const dir = await tempDir();
    const controller = new AbortController();
    const summary = await runReplay({
      input: drive,
      output: path.join(dir, 'aborted.mcap'),
      pacing: 'afap',
      signal: controller.signal,
      onProgress: (done) => done === 5 && controller.abort(),
    });
    expect(summary.interrupted).toBe(true);
    expect(summary.frames).toBeGreaterThanOrEqual(5);
    expect(summary.frames).toBeLessThan(60);
    const reader = await RecordingReader.open(summary.output, { strict: true });
    expect(reader.indexed).toBe(true);
    expect(reader.topic(TOPIC_FRAME_REPORT)?.messageCount).toBe(summary.frames);
    await reader.close();
  });
});

describe('bad input during replay', () => {
  it('skips and counts an undecodable JPEG, naming file, topic and time; --strict stops', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'bad-jpeg.mcap');
    await writeCameraRecording(file, 5, (i, m) => (i === 2 ? { ...m, data: m.data.subarray(0, 2000) } : m));
    const problems: RecordingError[] = [];
    const summary = await runReplay({ input: file, output: path.join(dir, 'out.mcap'), pacing: 'afap', onProblem: (p) => problems.push(p) });
    expect(summary.frames).toBe(4);
    expect(summary.counters['decode.errors']).toBe(1);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(
      new RegExp(`^${file.replaceAll('.', '\\.')}: topic '/camera/front' at log time ${T0 + 2n * FRAME_NS} ns \\(2019-05-11T01:59:16.200Z\\): undecodable JPEG`),
    );
    // Nothing else is lost: the vehicle state of the skipped frame is still passed through.
    expect(await readTopic(path.join(dir, 'out.mcap'), TOPIC_VEHICLE_STATE)).toHaveLength(5);
    await expect(runReplay({ input: file, output: path.join(dir, 'strict.mcap'), pacing: 'afap', strict: true })).rejects.toThrow(/undecodable JPEG/);
    // The strict run's output is still a valid recording.
    const reader = await RecordingReader.open(path.join(dir, 'strict.mcap'), { strict: true });
    await reader.close();
  });

  it('skips non-monotonic timestamps', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'backwards.mcap');
    await writeCameraRecording(file, 5, (i, m) => (i === 3 ? { ...m, tNs: m.tNs - 2n * FRAME_NS } : m));
    const problems: RecordingError[] = [];
    const summary = await runReplay({ input: file, output: path.join(dir, 'out.mcap'), pacing: 'afap', onProblem: (p) => problems.push(p) });
    expect(summary.frames).toBe(4);
    expect(summary.messagesSkipped).toBe(1);
    expect(problems[0]!.message).toMatch(/topic '\/camera\/front' at log time \d+ ns .*: non-monotonic timestamp: \d+ ns is not after the previous message's \d+ ns/);
    await expect(runReplay({ input: file, output: path.join(dir, 'strict.mcap'), pacing: 'afap', strict: true })).rejects.toThrow(/non-monotonic/);
  });

  it('refuses a topic with the wrong schema', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'wrong-schema.mcap');
    const writer = await RecordingWriter.create(file);
    await writer.write(TOPIC_CAMERA, vehicleStateCodec, T0, { tNs: T0, speedMps: 1, yawRateRps: 0 });
    await writer.close();
    await expect(runReplay({ input: file, output: path.join(dir, 'out.mcap'), pacing: 'afap' })).rejects.toThrow(
      `${file}: topic '/camera/front': wrong schema 'arhud.VehicleState' (expected 'foxglove.CompressedImage')`,
    );
  });

  it('refuses a recording without camera frames', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'no-camera.mcap');
    const writer = await RecordingWriter.create(file);
    await writer.write(TOPIC_VEHICLE_STATE, vehicleStateCodec, T0, { tNs: T0, speedMps: 1, yawRateRps: 0 });
    await writer.close();
    await expect(runReplay({ input: file, output: path.join(dir, 'out.mcap'), pacing: 'afap' })).rejects.toThrow(
      `${file}: no '/camera/front' topic to replay; the recording has '/vehicle/state'`,
    );
  });
});
