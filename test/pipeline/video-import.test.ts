import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingError } from '../../pipeline/recording/errors.js';
import { RecordingReader } from '../../pipeline/recording/reader.js';
import { compressedImageCodec, TOPIC_CAMERA, TOPIC_CAMERA_CALIBRATION } from '../../pipeline/recording/topics.js';
import { importVideo, VIDEO_FRAME_ID, type VideoImportResult } from '../../pipeline/sources/video.js';
import { NS_PER_MS } from '../../pipeline/time.js';

const VIDEO = path.resolve('../shared/data/udacity-lanelines/test_videos/solidWhiteRight.mp4');
const VIDEO_FRAMES = 221;
const VIDEO_WIDTH = 960;
const VIDEO_HEIGHT = 540;
const FRAME_PERIOD_NS = 40n * NS_PER_MS;
/** The container's creation_time, 2016-08-28T21:16:08Z. */
const VIDEO_CREATION_NS = BigInt(Date.UTC(2016, 7, 28, 21, 16, 8)) * NS_PER_MS;

const run = promisify(execFile);

async function readCamera(file: string): Promise<{ reader: RecordingReader; logTimes: bigint[] }> {
  const reader = await RecordingReader.open(file, { strict: true });
  const logTimes: bigint[] = [];
  for await (const message of reader.messages({ topics: [TOPIC_CAMERA] })) logTimes.push(message.logTimeNs);
  return { reader, logTimes };
}

/** A small mjpeg .mkv from ffmpeg's test source: `frames` frames at 25 fps, no creation_time. */
async function makeClip(file: string, frames: number, size = '64x48'): Promise<void> {
  await run(ffmpegInstaller.path, [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=25`,
    '-frames:v', String(frames), '-c:v', 'mjpeg', file,
  ]);
}

describe('importVideo', () => {
  let dir: string;
  let output: string;
  let result: VideoImportResult;
  const progress: [number, number | undefined][] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'arhud-video-'));
    output = path.join(dir, 'first.mcap');
    result = await importVideo(VIDEO, output, { onProgress: (done, total) => progress.push([done, total]) });
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('imports every frame at the video size, with progress against the expected count', () => {
    expect(result).toMatchObject({ frames: VIDEO_FRAMES, width: VIDEO_WIDTH, height: VIDEO_HEIGHT, outputPath: output, aborted: false });
    expect(progress).toHaveLength(VIDEO_FRAMES);
    expect(progress[0]).toEqual([1, VIDEO_FRAMES]);
    expect(progress.at(-1)).toEqual([VIDEO_FRAMES, VIDEO_FRAMES]);
  });

  it('stamps frames at creation_time + pts, strictly increasing, 40 ms apart', async () => {
    const { reader, logTimes } = await readCamera(output);
    await reader.close();
    expect(logTimes).toHaveLength(VIDEO_FRAMES);
    expect(logTimes[0]).toBe(VIDEO_CREATION_NS);
    expect(result.firstNs).toBe(logTimes[0]);
    expect(result.lastNs).toBe(logTimes.at(-1));
    for (let i = 1; i < logTimes.length; i++) {
      const stepNs = logTimes[i]! - logTimes[i - 1]!;
      expect(stepNs).toBeGreaterThan(0n);
      expect(stepNs >= FRAME_PERIOD_NS - NS_PER_MS && stepNs <= FRAME_PERIOD_NS + NS_PER_MS, `frame ${i}: step ${stepNs} ns`).toBe(true);
    }
  });

  it('writes an indexed recording of JPEGs that decode to the video size, and no calibration', async () => {
    const reader = await RecordingReader.open(output, { strict: true });
    try {
      expect(reader.indexed).toBe(true);
      expect(reader.topic(TOPIC_CAMERA)).toEqual({ topic: TOPIC_CAMERA, schemaName: compressedImageCodec.schemaName, messageCount: VIDEO_FRAMES });
      expect(reader.topic(TOPIC_CAMERA_CALIBRATION)).toBeUndefined();
      let decoded = 0;
      for await (const message of reader.messages({ topics: [TOPIC_CAMERA] })) {
        const image = compressedImageCodec.decode(message.data);
        expect(image.tNs).toBe(message.logTimeNs);
        expect(image.tNs).not.toBe(0n);
        expect(image.frameId).toBe(VIDEO_FRAME_ID);
        expect(image.format).toBe('jpeg');
        const { info } = await sharp(image.data, { failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
        expect([info.width, info.height, info.channels]).toEqual([VIDEO_WIDTH, VIDEO_HEIGHT, 3]);
        decoded++;
      }
      expect(decoded).toBe(VIDEO_FRAMES);
    } finally {
      await reader.close();
    }
  });

  it('carries the exact decoded pixels of frames 1 and 220 (no framing drift in the pipe)', async () => {
    const picks = [1, VIDEO_FRAMES - 1];
    const { stdout: raw } = await run(
      ffmpegInstaller.path,
      ['-nostdin', '-hide_banner', '-loglevel', 'error', '-i', VIDEO, '-vf', `select='${picks.map((n) => `eq(n\\,${n})`).join('+')}'`, '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
      { encoding: 'buffer', maxBuffer: 1 << 24 },
    );
    const frameBytes = VIDEO_WIDTH * VIDEO_HEIGHT * 3;
    expect(raw.length).toBe(picks.length * frameBytes);
    const reader = await RecordingReader.open(output, { strict: true });
    const images: Buffer[] = [];
    for await (const message of reader.messages({ topics: [TOPIC_CAMERA] })) images.push(Buffer.from(compressedImageCodec.decode(message.data).data));
    await reader.close();
    for (const [k, n] of picks.entries()) {
      const pixels = raw.subarray(k * frameBytes, (k + 1) * frameBytes);
      // The same encoder on the same pixels gives the same bytes (default quality 90).
      const jpeg = await sharp(pixels, { raw: { width: VIDEO_WIDTH, height: VIDEO_HEIGHT, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
      expect(images[n]!.equals(jpeg), `frame ${n}`).toBe(true);
    }
  });

  it('gives a byte-identical recording when run again', async () => {
    const again = path.join(dir, 'again.mcap');
    await importVideo(VIDEO, again);
    expect((await readFile(again)).equals(await readFile(output))).toBe(true);
  });

  it('stops on abort and leaves a valid indexed recording of the frames written so far', async () => {
    const aborted = path.join(dir, 'aborted.mcap');
    const controller = new AbortController();
    const stopAt = 20;
    const partial = await importVideo(VIDEO, aborted, {
      signal: controller.signal,
      onProgress: (done) => {
        if (done === stopAt) controller.abort();
      },
    });
    expect(partial).toMatchObject({ frames: stopAt, width: VIDEO_WIDTH, height: VIDEO_HEIGHT, aborted: true });
    const { reader, logTimes } = await readCamera(aborted);
    await reader.close();
    expect(reader.indexed).toBe(true);
    expect(logTimes).toHaveLength(stopAt);
    expect(logTimes[0]).toBe(VIDEO_CREATION_NS);
    expect(partial.lastNs).toBe(logTimes.at(-1));
  });

  it('returns at once, with an empty valid recording, when the signal is already aborted', async () => {
    const empty = path.join(dir, 'pre-aborted.mcap');
    const partial = await importVideo(VIDEO, empty, { signal: AbortSignal.abort() });
    expect(partial).toMatchObject({ frames: 0, aborted: true, firstNs: 0n, lastNs: 0n });
    const reader = await RecordingReader.open(empty, { strict: true });
    await reader.close();
    expect([reader.indexed, reader.messageCount]).toEqual([true, 0]);
  });

  it('falls back to the file mtime as time base when the container has no creation_time', async () => {
    const clip = path.join(dir, 'clip.mkv');
    await makeClip(clip, 5);
    const mtimeS = 1_577_934_245; // 2020-01-02T03:04:05Z
    await utimes(clip, mtimeS, mtimeS);
    const imported = await importVideo(clip, path.join(dir, 'clip.mcap'));
    expect(imported).toMatchObject({ frames: 5, width: 64, height: 48, aborted: false });
    expect(imported.firstNs).toBe(BigInt(mtimeS) * 1_000_000_000n);
    expect(imported.lastNs - imported.firstNs).toBe(4n * FRAME_PERIOD_NS);
  });

  it('frames the raw pipe exactly when many small frames share a chunk (odd size 61x47)', async () => {
    const clip = path.join(dir, 'odd.mkv');
    const frames = 12;
    await makeClip(clip, frames, '61x47');
    const out = path.join(dir, 'odd.mcap');
    expect(await importVideo(clip, out, { jpegQuality: 100 })).toMatchObject({ frames, width: 61, height: 47 });
    const { stdout: raw } = await run(ffmpegInstaller.path, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-i', clip, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
      encoding: 'buffer',
      maxBuffer: 1 << 24,
    });
    const frameBytes = 61 * 47 * 3;
    expect(raw.length).toBe(frames * frameBytes);
    const reader = await RecordingReader.open(out, { strict: true });
    let index = 0;
    for await (const message of reader.messages({ topics: [TOPIC_CAMERA] })) {
      // The same encoder on the same pixels gives the same bytes; a frame read from the wrong offset does not.
      const expected = raw.subarray(index * frameBytes, (index + 1) * frameBytes);
      const jpeg = await sharp(expected, { raw: { width: 61, height: 47, channels: 3 } }).jpeg({ quality: 100 }).toBuffer();
      expect(Buffer.from(compressedImageCodec.decode(message.data).data).equals(jpeg), `frame ${index}`).toBe(true);
      index++;
    }
    await reader.close();
    expect(index).toBe(frames);
  });

  it('refuses a pts that goes back, naming the video and the frame, after writing the frames before it', async () => {
    await makeClip(path.join(dir, 'ten.mkv'), 10);
    // The concat demuxer places the second copy 0.2 s after the first one's start: frame 10 has pts 0.2 s < 0.36 s.
    const playlist = path.join(dir, 'backwards.ffconcat');
    await writeFile(playlist, 'ffconcat version 1.0\nfile ten.mkv\nduration 0.2\nfile ten.mkv\n');
    const out = path.join(dir, 'backwards.mcap');
    const error = await importVideo(playlist, out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecordingError);
    expect((error as Error).message).toMatch(new RegExp(`^${escape(playlist)}: frame 10: pts 200 \\(200000000 ns\\) is not after frame 9's pts 360 \\(360000000 ns\\)$`));
    const { reader, logTimes } = await readCamera(out);
    await reader.close();
    expect([reader.indexed, logTimes.length]).toEqual([true, 10]);
  });

  it('refuses a text file as not a video, naming it, and still closes the output', async () => {
    const text = path.join(dir, 'notes.txt');
    await writeFile(text, 'not a video\n');
    const out = path.join(dir, 'text.mcap');
    const error = await importVideo(text, out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecordingError);
    expect((error as Error).message).toMatch(new RegExp(`^${escape(text)}: not a video`));
    expect((error as Error).message).not.toContain('\n');
    const reader = await RecordingReader.open(out, { strict: true });
    await reader.close();
    expect([reader.indexed, reader.messageCount]).toEqual([true, 0]);
  });

  it('refuses a file without a video stream, with the reason from ffmpeg', async () => {
    const audio = path.join(dir, 'tone.m4a');
    await run(ffmpegInstaller.path, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=duration=0.5', audio]);
    await expect(importVideo(audio, path.join(dir, 'tone.mcap'))).rejects.toThrow(
      new RegExp(`^${escape(audio)}: not a video: the '.*' input has no video stream \\(ffmpeg failed \\(exit code 1\\): Stream map '0:V:0' matches no streams\\.\\)$`),
    );
  });

  it("refuses data ffmpeg cannot read, with ffmpeg's own last stderr line", async () => {
    const junk = path.join(dir, 'junk.mp4');
    await writeFile(junk, Buffer.alloc(4096, 0x5a));
    const error = await importVideo(junk, path.join(dir, 'junk.mcap')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecordingError);
    expect((error as Error).message).toMatch(new RegExp(`^${escape(junk)}: ffmpeg failed \\(exit code 1\\): .*Invalid data found when processing input$`));
  });

  it('refuses a missing file, naming it', async () => {
    const missing = path.join(dir, 'missing.mp4');
    await expect(importVideo(missing, path.join(dir, 'missing.mcap'))).rejects.toThrow(new RegExp(`^${escape(missing)}: cannot read the video \\(ENOENT`));
  });

  it('names a bad ffmpeg executable', async () => {
    await expect(importVideo(VIDEO, path.join(dir, 'no-ffmpeg.mcap'), { ffmpegPath: path.join(dir, 'no-such-ffmpeg') })).rejects.toThrow(
      new RegExp(`^${escape(VIDEO)}: cannot run ffmpeg '.*no-such-ffmpeg' \\(spawn .* ENOENT\\)$`),
    );
  });

  it('validates options and refuses to overwrite its input', async () => {
    await expect(importVideo(VIDEO, path.join(dir, 'q.mcap'), { jpegQuality: 0 })).rejects.toThrow(
      new RangeError("importVideo: 'jpegQuality' must be an integer in 1..100, got 0"),
    );
    await expect(importVideo(VIDEO, path.join(dir, 'q.mcap'), { jpegQuality: 90.5 })).rejects.toThrow(RangeError);
    await expect(importVideo(VIDEO, VIDEO)).rejects.toThrow(/^importVideo: output path must differ from the video path/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
