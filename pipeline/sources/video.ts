/**
 * Video file -> arhud recording: ffmpeg decodes the video (a child process, no shell) to packed
 * rgb24 on its stdout, and its `showinfo` filter reports each frame's pts and size on stderr; every
 * frame is re-encoded as JPEG with sharp and written to TOPIC_CAMERA as a foxglove.CompressedImage.
 *
 * Times: a frame's capture time (and log time) is `base + pts`, where `base` is the container's
 * `creation_time` when ffmpeg reports one, else the video file's mtime. pts come from ffmpeg as
 * integers in the stream's time base, so they convert to ns exactly (showinfo's `pts_time` text is
 * only printed to 6 significant digits).
 *
 * No camera calibration is written: the intrinsics of an arbitrary video are unknown, and a guessed
 * one would be silently trusted downstream. Add one with the calibration tools when it is known.
 */
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import sharp from 'sharp';
import { RecordingError, firstLine } from '../recording/errors.js';
import { compressedImageCodec, TOPIC_CAMERA } from '../recording/topics.js';
import { RecordingWriter } from '../recording/writer.js';
import { NS_PER_S } from '../time.js';

export interface VideoImportOptions {
  /** ffmpeg executable; default the one shipped in @ffmpeg-installer/ffmpeg. */
  ffmpegPath?: string;
  /** JPEG quality 1-100 for the re-encoded frames; default 90. */
  jpegQuality?: number;
  /** Called after each frame with (framesDone, framesExpected | undefined). */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Abort: stop ffmpeg, close the output recording properly (it must stay a valid, indexed MCAP holding every frame written so far). */
  signal?: AbortSignal;
}

export interface VideoImportResult {
  /** Frames written to the recording. */
  frames: number;
  /** Frame size in pixels (as decoded, after any rotation ffmpeg applies); 0 when no frame was seen. */
  width: number;
  height: number;
  /** Capture time of the first and last frame written (0n when none was). */
  firstNs: bigint;
  lastNs: bigint;
  outputPath: string;
  /** True when `signal` stopped the import; the recording then holds the frames written before it. */
  aborted: boolean;
}

/** frame_id of the written images. */
export const VIDEO_FRAME_ID = 'camera_front';

/** Frames being JPEG-encoded at once (libuv threads) while the next ones are read; each holds one raw frame buffer. */
const ENCODES_IN_FLIGHT = 3;

/** Stderr lines kept for error messages. */
const STDERR_TAIL_LINES = 8;

/**
 * Codecs ffmpeg uses to render text files as "ANSI art" (its tty demuxer claims .txt, .nfo, .asc...
 * by extension alone): ffmpeg happily decodes those, but they are not camera video.
 */
const TEXT_ART_CODECS = new Set(['ansi', 'bintext', 'xbin', 'idf']);

/** Lines of ffmpeg's stderr that are its boilerplate after a failure, not the reason for it. */
const GENERIC_FFMPEG_LINES = [/^Conversion failed!?$/, /^To ignore this, add a trailing '\?' to the map/, /^Exiting normally/];

interface Settings {
  ffmpegPath: string;
  jpegQuality: number;
  onProgress: ((done: number, total: number | undefined) => void) | undefined;
  signal: AbortSignal | undefined;
}

function settingsFrom(options: VideoImportOptions): Settings {
  const settings: Settings = {
    ffmpegPath: options.ffmpegPath ?? ffmpegInstaller.path,
    jpegQuality: options.jpegQuality ?? 90,
    onProgress: options.onProgress,
    signal: options.signal,
  };
  if (typeof settings.ffmpegPath !== 'string' || settings.ffmpegPath === '') {
    throw new TypeError(`importVideo: 'ffmpegPath' must be a non-empty string, got ${JSON.stringify(settings.ffmpegPath)}`);
  }
  if (!Number.isInteger(settings.jpegQuality) || settings.jpegQuality < 1 || settings.jpegQuality > 100) {
    throw new RangeError(`importVideo: 'jpegQuality' must be an integer in 1..100, got ${settings.jpegQuality}`);
  }
  return settings;
}

/**
 * Imports a video file (anything this ffmpeg decodes: mp4/H.264, mjpeg, ...) as a recording with
 * one JPEG per frame on TOPIC_CAMERA. The output is created once the video is found to exist and is
 * always closed (a valid, indexed MCAP) before this returns or throws; on abort or error it holds
 * the frames written until then. The same input and options give a byte-identical recording.
 *
 * Throws RecordingError naming the video for: a missing or unreadable file, a file ffmpeg cannot
 * decode or that holds no video (with ffmpeg's own last stderr line), a pts that does not increase,
 * or a time that would not be after the epoch.
 */
export async function importVideo(videoPath: string, outputPath: string, options: VideoImportOptions = {}): Promise<VideoImportResult> {
  const settings = settingsFrom(options);
  if (resolve(outputPath) === resolve(videoPath)) {
    throw new RangeError(`importVideo: output path must differ from the video path, got '${outputPath}' for both`);
  }
  let mtimeNs: bigint;
  try {
    const stats = await stat(videoPath, { bigint: true });
    if (!stats.isFile()) throw new Error('not a regular file');
    mtimeNs = stats.mtimeNs;
  } catch (error) {
    throw new RecordingError({ file: videoPath }, `cannot read the video (${firstLine(error)})`, { cause: error });
  }

  let writer: RecordingWriter;
  try {
    writer = await RecordingWriter.create(outputPath);
  } catch (error) {
    throw new RecordingError({ file: outputPath }, `cannot create the recording (${firstLine(error)})`, { cause: error });
  }
  const ffmpeg = startFfmpeg(settings.ffmpegPath, videoPath);
  const stop = () => ffmpeg.kill();
  settings.signal?.addEventListener('abort', stop, { once: true });
  let outcome: { result: VideoImportResult } | { error: unknown };
  try {
    outcome = { result: await transcode(videoPath, outputPath, mtimeNs, ffmpeg, writer, settings) };
  } catch (error) {
    outcome = { error };
  } finally {
    settings.signal?.removeEventListener('abort', stop);
    ffmpeg.kill();
    await ffmpeg.exited;
  }
  try {
    await writer.close();
  } catch (error) {
    if ('result' in outcome) throw new RecordingError({ file: outputPath }, `cannot finish the recording (${firstLine(error)})`, { cause: error });
  }
  if ('error' in outcome) throw outcome.error;
  return outcome.result;
}

// ---------------------------------------------------------------------------------------------
/** What ffmpeg's stream info says about the input, before any frame. */
interface VideoHeader {
  /** Demuxer names, e.g. 'mov,mp4,m4a,3gp,3g2,mj2'. */
  format: string | undefined;
  /** Container `creation_time` as epoch ns, when present and after the epoch. */
  creationNs: bigint | undefined;
  durationS: number | undefined;
  /** Codec of the first video stream that is not cover art. */
  codec: string | undefined;
  fps: number | undefined;
}

/** One frame as announced by showinfo, before its bytes arrive on stdout. */
interface FrameInfo {
  /** pts in the stream time base, as printed (may be 'NOPTS'). */
  ptsText: string;
  /** pts in ns from the stream's zero, or undefined when ffmpeg had none. */
  ptsNs: bigint | undefined;
  width: number;
  height: number;
  pixelFormat: string;
}

async function transcode(
  videoPath: string,
  outputPath: string,
  mtimeNs: bigint,
  ffmpeg: FfmpegProcess,
  writer: RecordingWriter,
  settings: Settings,
): Promise<VideoImportResult> {
  const { jpegQuality, onProgress, signal } = settings;
  const fail = (reason: string, cause?: unknown) => new RecordingError({ file: videoPath }, reason, { cause });
  const result: VideoImportResult = { frames: 0, width: 0, height: 0, firstNs: 0n, lastNs: 0n, outputPath, aborted: false };
  if (signal?.aborted) return { ...result, aborted: true };

  const readFrame = createExactReader(ffmpeg.stdout);
  const buffers: Buffer[] = [];
  const inFlight: Promise<{ tNs: bigint; jpeg: Buffer }>[] = [];
  let header: VideoHeader | undefined;
  let total: number | undefined;
  let baseNs = 0n;
  let previous: FrameInfo | undefined;
  let read = 0;
  let endOfFrames = false;
  let failure: Error | undefined;

  /** Reads the next frame and starts its encode; false when there is none (or reading failed). */
  const readNext = async (): Promise<boolean> => {
    const info = await ffmpeg.frames.next();
    if (info === undefined || signal?.aborted) return false;
    if (header === undefined) {
      header = ffmpeg.header();
      if (header.codec !== undefined && TEXT_ART_CODECS.has(header.codec)) {
        throw fail(`not a video (ffmpeg reads it as '${header.format ?? '?'}' text art, codec '${header.codec}')`);
      }
      baseNs = header.creationNs ?? mtimeNs;
      total = expectedFrames(header);
    }
    if (info.pixelFormat !== 'rgb24') throw fail(`frame ${read}: ffmpeg delivered pixel format '${info.pixelFormat}' (expected 'rgb24')`);
    if (result.width === 0) {
      result.width = info.width;
      result.height = info.height;
    } else if (info.width !== result.width || info.height !== result.height) {
      throw fail(`frame ${read}: size changed from ${result.width}x${result.height} to ${info.width}x${info.height} mid-stream`);
    }
    if (info.ptsNs === undefined) throw fail(`frame ${read}: ffmpeg reports no usable presentation timestamp (pts ${info.ptsText})`);
    if (previous?.ptsNs !== undefined && info.ptsNs <= previous.ptsNs) {
      throw fail(`frame ${read}: pts ${info.ptsText} (${info.ptsNs} ns) is not after frame ${read - 1}'s pts ${previous.ptsText} (${previous.ptsNs} ns)`);
    }
    const tNs = baseNs + info.ptsNs;
    if (tNs <= 0n) throw fail(`frame ${read}: capture time ${tNs} ns (base ${baseNs} ns + pts ${info.ptsNs} ns) is not after the epoch`);

    const frameBytes = info.width * info.height * 3;
    const slot = read % ENCODES_IN_FLIGHT;
    let buffer = buffers[slot];
    if (buffer?.length !== frameBytes) buffer = buffers[slot] = Buffer.allocUnsafe(frameBytes);
    const got = await readFrame(buffer);
    if (got < frameBytes) {
      if (signal?.aborted) return false;
      // ffmpeg stopped mid-frame: its exit status says why, when it failed.
      await ffmpeg.exited;
      throw fail(`${ffmpeg.failure() ?? 'ffmpeg output ended'} (frame ${read} has ${got} of ${frameBytes} bytes)`);
    }
    previous = info;
    const encoding = sharp(buffer, { raw: { width: info.width, height: info.height, channels: 3 } })
      .jpeg({ quality: jpegQuality })
      .toBuffer()
      .then((jpeg) => ({ tNs, jpeg }));
    // Awaited in order below; this only keeps a failure of a frame never awaited from going unhandled.
    encoding.catch(() => undefined);
    inFlight.push(encoding);
    read++;
    return true;
  };

  for (;;) {
    while (!endOfFrames && failure === undefined && inFlight.length < ENCODES_IN_FLIGHT) {
      try {
        endOfFrames = !(await readNext());
      } catch (error) {
        // Frames already read are still written, then the failure is thrown.
        failure = error as Error;
      }
    }
    const encoding = inFlight.shift();
    if (encoding === undefined) break;
    let frame: { tNs: bigint; jpeg: Buffer };
    try {
      frame = await encoding;
    } catch (error) {
      throw fail(`frame ${result.frames}: JPEG encoding failed (${firstLine(error)})`, error);
    }
    if (signal?.aborted) break;
    await writer.write(TOPIC_CAMERA, compressedImageCodec, frame.tNs, { tNs: frame.tNs, frameId: VIDEO_FRAME_ID, format: 'jpeg', data: frame.jpeg });
    if (result.frames === 0) result.firstNs = frame.tNs;
    result.lastNs = frame.tNs;
    result.frames++;
    onProgress?.(result.frames, total);
    if (signal?.aborted) break;
  }
  if (failure !== undefined) throw failure;
  if (signal?.aborted) return { ...result, aborted: true };

  // The frames ended with stderr, so ffmpeg has exited or is exiting.
  await ffmpeg.exited;
  const ffmpegFailure = ffmpeg.failure();
  if (ffmpegFailure !== undefined) {
    const input = ffmpeg.header();
    if (input.format !== undefined && input.codec === undefined) throw fail(`not a video: the '${input.format}' input has no video stream (${ffmpegFailure})`);
    throw fail(ffmpegFailure);
  }
  if ((await readFrame(Buffer.alloc(1))) > 0) throw fail(`ffmpeg wrote more bytes than the ${read} frames it announced`);
  if (result.frames === 0) {
    const last = ffmpeg.lastLine();
    throw fail(`not a video: ffmpeg decoded no frames${last === undefined ? '' : ` (${last})`}`);
  }
  return result;
}

function expectedFrames(header: VideoHeader): number | undefined {
  if (header.durationS === undefined || header.fps === undefined) return undefined;
  return Math.round(header.durationS * header.fps);
}

// ---------------------------------------------------------------------------------------------
interface FfmpegProcess {
  stdout: Readable;
  /** Frames announced on stderr, in order; undefined once stderr has ended. */
  frames: { next(): Promise<FrameInfo | undefined> };
  /** Stream info parsed from stderr so far. */
  header(): VideoHeader;
  /** Resolves once the process has exited (or failed to start) and all of its stderr is parsed. */
  exited: Promise<void>;
  /** One line on why ffmpeg failed (exit status and its last stderr line), or undefined when it did not, or was killed by us. */
  failure(): string | undefined;
  /** ffmpeg's last meaningful stderr line. */
  lastLine(): string | undefined;
  /** Kills ffmpeg if it is still running and stops reading its stdout. */
  kill(): void;
}

/** The command line: the first video stream (not cover art), every frame as it is (no rate conversion), rgb24 on stdout. */
function ffmpegArgs(videoPath: string): string[] {
  return [
    '-nostdin',
    '-hide_banner',
    '-nostats',
    '-loglevel', 'info',
    // 'file:' so names like 'x:y.mp4' or '-z.mp4' are never read as protocols or options.
    '-i', `file:${resolve(videoPath)}`,
    '-map', '0:V:0',
    '-an', '-sn', '-dn',
    // rawvideo has no timestamps, so ffmpeg would otherwise duplicate/drop frames to a constant rate.
    '-vsync', 'passthrough',
    // showinfo after the conversion, so its size and format are exactly what stdout carries.
    '-vf', 'format=rgb24,showinfo',
    '-f', 'rawvideo',
    '-pix_fmt', 'rgb24',
    'pipe:1',
  ];
}

function startFfmpeg(ffmpegPath: string, videoPath: string): FfmpegProcess {
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(ffmpegPath, ffmpegArgs(videoPath), {
    stdio: ['ignore', 'pipe', 'pipe'],
    windowsHide: true,
  });
  const parser = createStderrParser();
  let spawnError: Error | undefined;
  let exitCode: number | null = null;
  let exitSignal: NodeJS.Signals | null = null;
  let killed = false;

  // Exit status and all of stderr (for the failure line); not 'close', which also waits for stdout to be read to its end.
  let stderrClosed!: () => void;
  const stderrDone = new Promise<void>((done) => (stderrClosed = done));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => parser.push(text));
  child.stderr.once('close', () => {
    parser.end();
    stderrClosed();
  });
  const processDone = new Promise<void>((done) => {
    child.once('error', (error) => {
      spawnError = error;
      parser.end();
      stderrClosed();
      done();
    });
    child.once('exit', (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      done();
    });
  });
  const exited = Promise.all([processDone, stderrDone]).then(() => undefined);

  return {
    stdout: child.stdout,
    frames: parser.frames,
    header: parser.header,
    exited,
    lastLine: parser.lastLine,
    failure: () => {
      if (spawnError) return `cannot run ffmpeg '${ffmpegPath}' (${firstLine(spawnError)})`;
      if (killed || exitCode === 0) return undefined;
      const status = exitCode !== null ? `exit code ${exitCode}` : `signal ${exitSignal ?? '?'}`;
      const last = parser.lastLine();
      return `ffmpeg failed (${status})${last === undefined ? '' : `: ${last}`}`;
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null && spawnError === undefined) {
        killed = true;
        // ffmpeg keeps nothing worth saving (it only writes the pipe); SIGTERM could leave it blocked on a full pipe.
        child.kill('SIGKILL');
      }
      child.stdout.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------------------
const SHOWINFO_FRAME = /\[Parsed_showinfo_\d+ @ [^\]]*\] n:\s*\d+ pts:\s*(\S+)\s+pts_time:\S+.*?\bfmt:(\S+).*?\bs:(\d+)x(\d+)/;
const SHOWINFO_TIME_BASE = /\[Parsed_showinfo_\d+ @ [^\]]*\] config in time_base: (\d+)\/(\d+)/;
const SHOWINFO_ANY = /^\[Parsed_showinfo_\d+ @ /;
const INPUT_LINE = /^Input #0, (.+?), from /;
const CREATION_TIME = /^\s*creation_time\s*:\s*(\S+)/;
const DURATION = /^\s*Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/;
const VIDEO_STREAM = /^\s*Stream #0:\d+.*?: Video: (\w+)/;
const STREAM_FPS = /, (\d+(?:\.\d+)?)(k?) fps/;
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z?$/;

/** Splits ffmpeg's stderr into lines and parses stream info and showinfo's per-frame lines. */
function createStderrParser() {
  const header: VideoHeader = { format: undefined, creationNs: undefined, durationS: undefined, codec: undefined, fps: undefined };
  const queued: FrameInfo[] = [];
  let waiting: ((info: FrameInfo | undefined) => void) | undefined;
  let partial = '';
  let ended = false;
  let inInputHeader = false;
  let sawStream = false;
  let timeBase: { num: bigint; den: bigint } | undefined;
  const tail: string[] = [];

  const deliver = (info: FrameInfo) => {
    if (waiting) {
      const resolveNext = waiting;
      waiting = undefined;
      resolveNext(info);
    } else queued.push(info);
  };

  const parseLine = (line: string) => {
    if (line.trim() === '') return;
    const frame = SHOWINFO_FRAME.exec(line);
    if (frame) {
      const [, ptsText, pixelFormat, width, height] = frame as unknown as [string, string, string, string, string];
      const ptsNs = /^-?\d+$/.test(ptsText) && timeBase ? roundDiv(BigInt(ptsText) * timeBase.num * NS_PER_S, timeBase.den) : undefined;
      deliver({ ptsText, ptsNs, width: Number(width), height: Number(height), pixelFormat });
      return;
    }
    const base = SHOWINFO_TIME_BASE.exec(line);
    if (base) {
      const num = BigInt(base[1]!);
      const den = BigInt(base[2]!);
      timeBase = num > 0n && den > 0n ? { num, den } : undefined;
      return;
    }
    if (SHOWINFO_ANY.test(line)) return;
    if (!GENERIC_FFMPEG_LINES.some((generic) => generic.test(line.trim()))) {
      tail.push(line.trim());
      if (tail.length > STDERR_TAIL_LINES) tail.shift();
    }

    const input = INPUT_LINE.exec(line);
    if (input) {
      header.format = input[1];
      inInputHeader = true;
      return;
    }
    if (/^(Stream mapping:|Output #)/.test(line)) {
      inInputHeader = false;
      return;
    }
    if (!inInputHeader) return;
    if (/^\s*Stream #/.test(line)) sawStream = true;
    const creation = CREATION_TIME.exec(line);
    // Only the container's own metadata, which comes before the first stream.
    if (creation && !sawStream && header.creationNs === undefined) header.creationNs = nsFromIsoTime(creation[1]!);
    const duration = DURATION.exec(line);
    if (duration) header.durationS = Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]);
    const video = VIDEO_STREAM.exec(line);
    if (video && header.codec === undefined && !line.includes('(attached pic)')) {
      header.codec = video[1];
      const fps = STREAM_FPS.exec(line);
      if (fps) header.fps = Number(fps[1]) * (fps[2] === 'k' ? 1000 : 1);
    }
  };

  return {
    push(text: string) {
      const lines = (partial + text).split(/\r\n|\r|\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) parseLine(line);
    },
    end() {
      if (ended) return;
      if (partial !== '') parseLine(partial);
      partial = '';
      ended = true;
      waiting?.(undefined);
      waiting = undefined;
    },
    frames: {
      next(): Promise<FrameInfo | undefined> {
        const info = queued.shift();
        if (info !== undefined || ended) return Promise.resolve(info);
        return new Promise((resolveNext) => (waiting = resolveNext));
      },
    },
    header: (): VideoHeader => ({ ...header }),
    lastLine: (): string | undefined => tail.at(-1),
  };
}

/** ffmpeg's ISO-8601 UTC text ('2016-08-28T21:16:08.000000Z') to epoch ns; undefined if unparsable or not after the epoch. */
function nsFromIsoTime(text: string): bigint | undefined {
  const match = ISO_TIME.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction] = match;
  const epochMs = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  if (!Number.isFinite(epochMs)) return undefined;
  const ns = BigInt(epochMs) * 1_000_000n + BigInt((fraction ?? '').padEnd(9, '0'));
  return ns > 0n ? ns : undefined;
}

/** n / d rounded half away from zero (d > 0). */
function roundDiv(n: bigint, d: bigint): bigint {
  return n >= 0n ? (2n * n + d) / (2n * d) : -((-2n * n + d) / (2n * d));
}

/**
 * Returns a function that fills a buffer with the next bytes of `stream`, whatever its chunking;
 * it resolves with the byte count, short only at the end of the stream. Reading pauses between
 * calls, so ffmpeg is held back by the pipe instead of the video piling up in memory.
 */
function createExactReader(stream: Readable): (target: Buffer) => Promise<number> {
  const chunks: AsyncIterator<Buffer> = stream[Symbol.asyncIterator]();
  let pending: Buffer | undefined;
  let done = false;
  return async (target) => {
    let filled = 0;
    while (filled < target.length) {
      if (pending === undefined || pending.length === 0) {
        if (done) break;
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch {
          // The pipe was destroyed (ffmpeg killed): treat as its end.
          next = { done: true, value: undefined };
        }
        if (next.done) {
          done = true;
          break;
        }
        pending = next.value;
      }
      const copied = pending.copy(target, filled, 0, Math.min(pending.length, target.length - filled));
      filled += copied;
      pending = pending.subarray(copied);
    }
    return filled;
  };
}
