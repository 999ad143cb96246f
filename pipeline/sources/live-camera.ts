/**
 * Live camera: frames from a V4L2 device (`/dev/videoN`), a stream URL (rtsp://, http://, udp://,
 * ...) or a file played at its own real-time rate, decoded by ffmpeg (a child process, no shell) to
 * packed rgb24 at a configured size, as a cold rxjs Observable<Frame>.
 *
 * Why an Observable: the pipeline's stages are rxjs operators (`stage`, `queuedMap`) and the replay
 * source is an Observable too, so `bin/` composes `camera.frames().pipe(stage(...), ...)` the same way
 * for live and replayed drives. A live camera cannot be paused the way a pull (AsyncIterable)
 * consumer would want; it must be read continuously. How fast the consumer is, is measured through the
 * frame ownership contract that already exists: a frame is "in flight" until its last `release()`.
 *
 * Backpressure: ffmpeg's stdout is always read. At most `maxInFlight` frames are out with the consumer
 * at once; further frames wait in a drop-oldest queue of `maxWaitingFrames` and the oldest is released
 * and counted (`stats.framesDropped`) when a newer one arrives. So at most maxInFlight +
 * maxWaitingFrames + 1 (being filled) frame buffers exist, all from the BufferPool, reserved at start.
 *
 * Times: `tCaptureNs` is the arrival time of the frame's last byte on the given Clock (the monotonic
 * clock when live). ffmpeg's pts is not used: for V4L2 it is the driver's timestamp (monotonic or wall
 * clock depending on the driver), for RTSP/HTTP/UDP it is the sender's clock (unrelated to ours, and it
 * may jump or wrap on reconnect), and for a file played with `-re` it is paced to arrival anyway. One
 * rule for all sources keeps capture times on the pipeline's clock, comparable with vehicle signals
 * stamped on the same clock; the cost is the decode + pipe latency (a few ms) included in the age.
 *
 * Ending: a file that is not looped ends normally: an 'ended' event, then the stream completes. ffmpeg
 * exiting on a device or stream (even with status 0: the sender closed) is an error naming the source
 * and ffmpeg's last stderr line. A source that stays open but delivers no frame for `stallTimeoutMs` is
 * a stall: a 'stall' event and `stats.stalls`, while the stream keeps waiting ('resumed' when frames
 * come back). Unsubscribing kills ffmpeg.
 */
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Observable, type Subscriber } from 'rxjs';
import { BoundedQueue } from '../bounded-queue.js';
import type { BufferPool, PooledBuffer } from '../buffer-pool.js';
import type { Clock } from '../clock.js';
import { Frame, type FrameInit } from '../frame.js';
import { ImageView } from '../image.js';
import { reentrantPump } from '../queued-map.js';

/** Frames waiting for the consumer before the oldest is dropped. */
export const DEFAULT_MAX_WAITING_FRAMES = 2;
/** Frames the consumer may hold (not yet released) before new ones wait. */
export const DEFAULT_MAX_IN_FLIGHT = 2;
/** No frame for this long (after the first) is a stall. */
export const DEFAULT_STALL_TIMEOUT_MS = 1000;
/** No first frame for this long after start is a stall (opening RTSP or a camera takes a while). */
export const DEFAULT_START_TIMEOUT_MS = 5000;
/** V4L2 capture rate when none is given. */
export const DEFAULT_DEVICE_FPS = 30;
/** Largest accepted frame side, px. */
export const MAX_FRAME_SIDE_PX = 8192;
/** ffmpeg stderr lines kept for error messages. */
const STDERR_TAIL_LINES = 8;
/** Longest stderr line kept (ffmpeg can print long binary-ish lines for broken streams). */
const MAX_STDERR_LINE_CHARS = 1000;

/** Where frames come from: a V4L2 device, a network stream, or a file played in real time. */
export type LiveSourceKind = 'device' | 'stream' | 'file';

export interface LiveCameraOptions {
  /** `/dev/videoN`, a URL (rtsp://, rtsps://, http(s)://, udp://, tcp://, srt://, file://) or a file path. */
  source: string;
  /** Output image size in px (ffmpeg scales to exactly this; no letterbox); even. */
  widthPx: number;
  heightPx: number;
  clock: Clock;
  pool: BufferPool;
  /**
   * Frames per second. Device: the V4L2 capture rate (default 30). Stream/file: when given, ffmpeg's
   * `fps` filter converts to this rate; default the source's own rate.
   */
  fps?: number;
  /** Device only: capture size requested from the driver (`-video_size`); default widthPx x heightPx. */
  captureWidthPx?: number;
  captureHeightPx?: number;
  /** Device only: V4L2 pixel format (`-input_format`, e.g. 'mjpeg', 'yuyv422'); default the driver's. */
  deviceInputFormat?: string;
  /** ffmpeg demuxer (`-f`, e.g. 'mjpeg', 'mpegts') for streams/files it cannot probe; default auto ('v4l2' for devices). */
  inputFormat?: string;
  /** File only: play it again and again (`-stream_loop -1`). Default false. */
  loop?: boolean;
  /** Extra ffmpeg input options placed before `-i` (e.g. ['-rtsp_transport', 'tcp']). */
  inputOptions?: readonly string[];
  maxWaitingFrames?: number;
  maxInFlight?: number;
  stallTimeoutMs?: number;
  startTimeoutMs?: number;
  /** Stall, resume and end events. */
  onEvent?: (event: LiveCameraEvent) => void;
  /** ffmpeg executable; default the one shipped in @ffmpeg-installer/ffmpeg. */
  ffmpegPath?: string;
}

export type LiveCameraEvent =
  /** No frame for `waitedMs` (>= the stall or start timeout); the source keeps waiting. */
  | { kind: 'stall'; tNs: bigint; waitedMs: number; lastSeq: number | undefined }
  /** Frames arrive again after a stall of `stalledMs`. */
  | { kind: 'resumed'; tNs: bigint; stalledMs: number; seq: number }
  /** A file source reached its end (not looping); the stream completes next. */
  | { kind: 'ended'; tNs: bigint; framesRead: number };

export interface LiveCameraStats {
  /** Complete frames read from ffmpeg. */
  framesRead: number;
  /** Frames handed to the consumer. */
  framesEmitted: number;
  /** Frames released unseen because the consumer was slow (drop-oldest). */
  framesDropped: number;
  /** Stall episodes (each reported once). */
  stalls: number;
  /** Frames the consumer holds now. */
  inFlight: number;
  /** Frames waiting for the consumer now. */
  waiting: number;
}

/** A live source failed: names the source (password redacted) and gives the reason. */
export class LiveCameraError extends Error {
  override readonly name = 'LiveCameraError';
  /** The source as given, password redacted. */
  readonly source: string;
  readonly reason: string;

  constructor(source: string, reason: string, options?: { cause?: unknown }) {
    super(`LiveCamera '${source}': ${reason}`, options);
    this.source = source;
    this.reason = reason;
  }
}

interface Settings {
  source: string;
  /** For messages: the source with any URL password replaced by '***'. */
  shownSource: string;
  kind: LiveSourceKind;
  widthPx: number;
  heightPx: number;
  fps: number | undefined;
  captureWidthPx: number;
  captureHeightPx: number;
  deviceInputFormat: string | undefined;
  inputFormat: string | undefined;
  loop: boolean;
  inputOptions: readonly string[];
  maxWaitingFrames: number;
  maxInFlight: number;
  stallTimeoutNs: bigint;
  startTimeoutNs: bigint;
  ffmpegPath: string;
}

/** What kind of source a string names: `/dev/...` a device, `scheme://` a stream (file:// a file), else a file path. */
export function liveSourceKind(source: string): LiveSourceKind {
  if (source.startsWith('/dev/')) return 'device';
  if (/^file:\/\//i.test(source)) return 'file';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) return 'stream';
  return 'file';
}

/** The source for messages: a URL's password replaced by '***' (camera URLs often carry credentials). */
export function redactSource(source: string): string {
  return source.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}

function settingsFrom(options: LiveCameraOptions): Settings {
  const where = 'LiveCamera';
  if (typeof options.source !== 'string' || options.source.trim() === '') {
    throw new TypeError(`${where}: 'source' must be a non-empty string (/dev/videoN, a URL or a file path), got ${JSON.stringify(options.source)}`);
  }
  if (options.source.startsWith('-')) throw new RangeError(`${where}: 'source' must not start with '-' (it would be read as an ffmpeg option), got '${options.source}'`);
  const kind = liveSourceKind(options.source);
  const evenSide = (name: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 2 || value > MAX_FRAME_SIDE_PX || value % 2 !== 0) {
      throw new RangeError(`${where}: '${name}' must be an even integer in [2, ${MAX_FRAME_SIDE_PX}] px, got ${String(value)}`);
    }
    return value;
  };
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    const chosen = value ?? fallback;
    if (typeof chosen !== 'number' || !Number.isFinite(chosen) || chosen <= 0) throw new RangeError(`${where}: '${name}' must be a finite number > 0, got ${String(value)}`);
    return chosen;
  };
  const count = (name: string, value: number | undefined, fallback: number): number => {
    const chosen = value ?? fallback;
    if (!Number.isInteger(chosen) || chosen < 1) throw new RangeError(`${where}: '${name}' must be an integer >= 1, got ${String(value)}`);
    return chosen;
  };
  const word = (name: string, value: string | undefined): string | undefined => {
    if (value !== undefined && (typeof value !== 'string' || !/^[A-Za-z0-9_,.-]+$/.test(value))) {
      throw new TypeError(`${where}: '${name}' must be an ffmpeg format name (letters, digits, '_', ',', '.', '-'), got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const widthPx = evenSide('widthPx', options.widthPx);
  const heightPx = evenSide('heightPx', options.heightPx);
  if (kind !== 'device') {
    for (const name of ['captureWidthPx', 'captureHeightPx', 'deviceInputFormat'] as const) {
      if (options[name] !== undefined) throw new RangeError(`${where}: '${name}' applies to V4L2 devices (/dev/videoN) only; '${redactSource(options.source)}' is a ${kind}`);
    }
  }
  if (options.loop === true && kind !== 'file') throw new RangeError(`${where}: 'loop' applies to files only; '${redactSource(options.source)}' is a ${kind}`);
  if (options.loop !== undefined && typeof options.loop !== 'boolean') throw new TypeError(`${where}: 'loop' must be a boolean, got ${typeof options.loop}`);
  const inputOptions = options.inputOptions ?? [];
  if (!Array.isArray(inputOptions) || !inputOptions.every((item) => typeof item === 'string')) {
    throw new TypeError(`${where}: 'inputOptions' must be an array of strings`);
  }
  const fps = options.fps === undefined && kind !== 'device' ? undefined : positive('fps', options.fps, DEFAULT_DEVICE_FPS);
  const ffmpegPath = options.ffmpegPath ?? ffmpegInstaller.path;
  if (typeof ffmpegPath !== 'string' || ffmpegPath === '') throw new TypeError(`${where}: 'ffmpegPath' must be a non-empty string, got ${JSON.stringify(ffmpegPath)}`);
  if (options.clock === undefined || typeof options.clock.nowNs !== 'function') throw new TypeError(`${where}: 'clock' must be a Clock`);
  if (options.pool === undefined || typeof options.pool.acquire !== 'function') throw new TypeError(`${where}: 'pool' must be a BufferPool`);
  return {
    source: options.source,
    shownSource: redactSource(options.source),
    kind,
    widthPx,
    heightPx,
    fps,
    captureWidthPx: options.captureWidthPx === undefined ? widthPx : evenSide('captureWidthPx', options.captureWidthPx),
    captureHeightPx: options.captureHeightPx === undefined ? heightPx : evenSide('captureHeightPx', options.captureHeightPx),
    deviceInputFormat: word('deviceInputFormat', options.deviceInputFormat),
    inputFormat: word('inputFormat', options.inputFormat),
    loop: options.loop ?? false,
    inputOptions,
    maxWaitingFrames: count('maxWaitingFrames', options.maxWaitingFrames, DEFAULT_MAX_WAITING_FRAMES),
    maxInFlight: count('maxInFlight', options.maxInFlight, DEFAULT_MAX_IN_FLIGHT),
    stallTimeoutNs: BigInt(Math.round(positive('stallTimeoutMs', options.stallTimeoutMs, DEFAULT_STALL_TIMEOUT_MS) * 1e6)),
    startTimeoutNs: BigInt(Math.round(positive('startTimeoutMs', options.startTimeoutMs, DEFAULT_START_TIMEOUT_MS) * 1e6)),
    ffmpegPath,
  };
}

/** The ffmpeg command line (without the executable) for these settings. */
function ffmpegArgs(s: Settings): string[] {
  const input: string[] = [];
  if (s.kind === 'device') {
    input.push('-f', 'v4l2');
    if (s.deviceInputFormat !== undefined) input.push('-input_format', s.deviceInputFormat);
    input.push('-framerate', String(s.fps), '-video_size', `${s.captureWidthPx}x${s.captureHeightPx}`);
  } else {
    if (s.kind === 'file') input.push('-re');
    if (s.loop) input.push('-stream_loop', '-1');
    if (s.kind === 'stream') input.push('-fflags', 'nobuffer');
    if (s.inputFormat !== undefined) input.push('-f', s.inputFormat);
  }
  input.push(...s.inputOptions);
  // A file path gets 'file:' so names like 'x:y.mp4' are never read as protocols.
  const url = s.kind === 'file' ? `file:${/^file:\/\//i.test(s.source) ? fileURLToPath(s.source) : resolve(s.source)}` : s.source;
  const filters = [`scale=${s.widthPx}:${s.heightPx}:flags=bilinear`];
  if (s.fps !== undefined && s.kind !== 'device') filters.push(`fps=${s.fps}`);
  return [
    '-nostdin',
    '-hide_banner',
    '-nostats',
    '-loglevel', 'error',
    ...input,
    '-i', url,
    '-map', '0:V:0',
    '-an', '-sn', '-dn',
    // rawvideo has no timestamps: without passthrough ffmpeg would duplicate/drop frames to a constant rate.
    '-vsync', 'passthrough',
    '-vf', filters.join(','),
    '-f', 'rawvideo',
    '-pix_fmt', 'rgb24',
    // Write each frame out whole at once, instead of holding its tail in the 32 KiB output buffer until the next frame.
    '-flush_packets', '1',
    'pipe:1',
  ];
}

/** A frame that tells its camera when it is released, so a freed consumer slot is refilled at once. */
class LiveFrame extends Frame {
  readonly #onRelease: () => void;

  constructor(init: FrameInit, onRelease: () => void) {
    super(init);
    this.#onRelease = onRelease;
  }

  override release(): void {
    super.release();
    this.#onRelease();
  }
}

/**
 * One live camera. `frames()` is cold: each subscription starts its own ffmpeg; subscribe once. Options
 * are validated here, so a bad configuration fails at start-up with the option's name.
 */
export class LiveCamera {
  readonly kind: LiveSourceKind;
  readonly widthPx: number;
  readonly heightPx: number;
  /** Bytes per frame (packed rgb24). */
  readonly frameBytes: number;
  readonly stats: LiveCameraStats = { framesRead: 0, framesEmitted: 0, framesDropped: 0, stalls: 0, inFlight: 0, waiting: 0 };
  readonly #settings: Settings;
  readonly #clock: Clock;
  readonly #pool: BufferPool;
  readonly #onEvent: (event: LiveCameraEvent) => void;

  constructor(options: LiveCameraOptions) {
    this.#settings = settingsFrom(options);
    this.kind = this.#settings.kind;
    this.widthPx = this.#settings.widthPx;
    this.heightPx = this.#settings.heightPx;
    this.frameBytes = this.widthPx * this.heightPx * 3;
    this.#clock = options.clock;
    this.#pool = options.pool;
    this.#onEvent = options.onEvent ?? (() => {});
  }

  /** The ffmpeg arguments this camera runs with (for logs and `--dry-run`). */
  get ffmpegArgs(): string[] {
    return ffmpegArgs(this.#settings);
  }

  /** Frame buffers this camera can hold at once: in flight + waiting + the one being filled. */
  get maxBuffers(): number {
    return this.#settings.maxInFlight + this.#settings.maxWaitingFrames + 1;
  }

  /**
   * Frames as they arrive. The consumer owns each frame and must `release()` it; until then it counts
   * against `maxInFlight`. Errors with LiveCameraError when ffmpeg cannot start or exits (except at the
   * normal end of a non-looping file, which completes).
   */
  frames(): Observable<Frame> {
    return new Observable<Frame>((subscriber) => this.#run(subscriber));
  }

  #run(subscriber: Subscriber<Frame>): () => void {
    const s = this.#settings;
    const clock = this.#clock;
    const fail = (reason: string, cause?: unknown) => new LiveCameraError(s.shownSource, reason, { cause });
    try {
      this.#pool.reserve(this.frameBytes, this.maxBuffers);
    } catch (error) {
      subscriber.error(fail(`cannot reserve ${this.maxBuffers} frame buffers (maxInFlight + maxWaitingFrames + 1) in pool '${this.#pool.name}': ${(error as Error).message}`, error));
      return () => {};
    }

    const stop = new AbortController();
    const firstFrame = new AbortController();
    const waiting = new BoundedQueue<LiveFrame>(s.maxWaitingFrames, (dropped) => {
      this.stats.framesDropped++;
      dropped.release();
    });
    const inFlight: PooledBuffer[] = [];
    let filling: PooledBuffer | undefined;
    let filled = 0;
    let seq = 0;
    let closed = false;
    let lastArrivalNs = clock.nowNs();
    let lastCaptureNs = -1n;
    let stalledSinceNs: bigint | undefined;
    let wakeWatcher: (() => void) | undefined;
    const stderr = createStderrTail();

    const updateCounts = () => {
      this.stats.inFlight = inFlight.length;
      this.stats.waiting = waiting.length;
    };

    const runPasses = reentrantPump(() => {
      for (let i = inFlight.length - 1; i >= 0; i--) if (inFlight[i]!.refCount === 0) inFlight.splice(i, 1);
      while (!closed && inFlight.length < s.maxInFlight && waiting.length > 0) {
        const frame = waiting.shift()!;
        inFlight.push(frame.buffer!);
        this.stats.framesEmitted++;
        updateCounts();
        subscriber.next(frame);
      }
      return false;
    });
    const pump = () => {
      runPasses();
      updateCounts();
    };

    const frameArrived = (buffer: PooledBuffer) => {
      // Arrival time on the pipeline clock; kept strictly increasing when frames come in one chunk.
      const nowNs = clock.nowNs();
      const tCaptureNs = nowNs > lastCaptureNs ? nowNs : lastCaptureNs + 1n;
      lastCaptureNs = tCaptureNs;
      lastArrivalNs = nowNs;
      const frame = new LiveFrame(
        { seq: seq++, tCaptureNs, image: ImageView.packed(this.widthPx, this.heightPx, 'rgb8', buffer.bytes), buffer },
        () => {
          if (!closed) pump();
        },
      );
      this.stats.framesRead++;
      if (frame.seq === 0) firstFrame.abort();
      if (stalledSinceNs !== undefined) {
        const stalledMs = Number(nowNs - stalledSinceNs) / 1e6;
        stalledSinceNs = undefined;
        this.#onEvent({ kind: 'resumed', tNs: nowNs, stalledMs, seq: frame.seq });
      }
      waiting.push(frame);
      wakeWatcher?.();
      pump();
    };

    const onData = (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length && !closed) {
        if (filling === undefined) {
          filling = this.#pool.acquire(this.frameBytes);
          filled = 0;
        }
        const copied = chunk.copy(filling.bytes, filled, at, Math.min(chunk.length, at + this.frameBytes - filled));
        filled += copied;
        at += copied;
        if (filled === this.frameBytes) {
          const buffer = filling;
          filling = undefined;
          frameArrived(buffer);
        }
      }
    };

    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      child = spawn(s.ffmpegPath, ffmpegArgs(s), { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    } catch (error) {
      subscriber.error(fail(`cannot run ffmpeg '${s.ffmpegPath}' (${(error as Error).message})`, error));
      return () => {};
    }
    child.stdout.on('data', onData);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => stderr.push(text));

    const finish = (error: LiveCameraError | undefined) => {
      if (closed) return;
      stop.abort();
      wakeWatcher?.();
      if (filling !== undefined) {
        filling.release();
        filling = undefined;
      }
      if (error !== undefined) {
        closed = true;
        for (const frame of waiting.drain()) frame.release();
        updateCounts();
        subscriber.error(error);
        return;
      }
      // Normal end: what is waiting still goes out (at most maxWaitingFrames beyond the in-flight limit).
      this.#onEvent({ kind: 'ended', tNs: clock.nowNs(), framesRead: this.stats.framesRead });
      while (waiting.length > 0) {
        const frame = waiting.shift()!;
        inFlight.push(frame.buffer!);
        this.stats.framesEmitted++;
        subscriber.next(frame);
      }
      closed = true;
      updateCounts();
      subscriber.complete();
    };

    child.once('error', (error) => finish(fail(`cannot run ffmpeg '${s.ffmpegPath}' (${error.message})`, error)));
    // 'close': the process has exited and its stdout/stderr are fully read.
    child.once('close', (code, signal) => {
      stderr.end();
      if (closed) return;
      const partial = filling !== undefined && filled > 0 ? ` (a partial frame of ${filled} of ${this.frameBytes} bytes was discarded)` : '';
      // ffmpeg quotes the URL in its messages: show it redacted like the source.
      const last = stderr.last()?.replaceAll(s.source, s.shownSource);
      if (s.kind === 'file' && code === 0) {
        finish(undefined);
        return;
      }
      const status = code !== null ? `exit code ${code}` : `signal ${signal ?? '?'}`;
      const what = code === 0 ? `the ${s.kind} ended (ffmpeg exited with ${status})` : `ffmpeg exited (${status})`;
      finish(fail(`${what} after ${this.stats.framesRead} frames${last === undefined ? '' : `: ${last}`}${partial}`));
    });

    /** Reports a stall once per episode when no frame arrives within the start/stall timeout; never ends the stream. */
    const watchStalls = async (): Promise<void> => {
      while (!stop.signal.aborted) {
        if (stalledSinceNs !== undefined) {
          await new Promise<void>((wake) => (wakeWatcher = wake));
          continue;
        }
        const sinceNs = lastArrivalNs;
        if (seq === 0) {
          // Until the first frame the (longer) start timeout applies; the first frame re-arms with the stall timeout.
          try {
            await clock.sleepUntilNs(sinceNs + s.startTimeoutNs, AbortSignal.any([stop.signal, firstFrame.signal]));
          } catch (error) {
            if (stop.signal.aborted) throw error;
          }
        } else {
          await clock.sleepUntilNs(sinceNs + s.stallTimeoutNs, stop.signal);
        }
        // A frame came meanwhile: wait again from it.
        if (stop.signal.aborted || lastArrivalNs !== sinceNs) continue;
        const nowNs = clock.nowNs();
        stalledSinceNs = sinceNs;
        this.stats.stalls++;
        this.#onEvent({ kind: 'stall', tNs: nowNs, waitedMs: Number(nowNs - sinceNs) / 1e6, lastSeq: seq > 0 ? seq - 1 : undefined });
      }
    };
    // Rejects only when aborted (the stream closed).
    watchStalls().catch(() => undefined);

    return () => {
      const wasClosed = closed;
      closed = true;
      stop.abort();
      wakeWatcher?.();
      child.stdout.off('data', onData);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
      if (!wasClosed) {
        for (const frame of waiting.drain()) frame.release();
        if (filling !== undefined) filling.release();
        filling = undefined;
        updateCounts();
      }
    };
  }
}

/** Keeps ffmpeg's last few stderr lines (bounded), for error messages. */
function createStderrTail() {
  const tail: string[] = [];
  let partial = '';
  const add = (line: string) => {
    const trimmed = line.trim().slice(0, MAX_STDERR_LINE_CHARS);
    if (trimmed === '') return;
    tail.push(trimmed);
    if (tail.length > STDERR_TAIL_LINES) tail.shift();
  };
  return {
    push(text: string) {
      const lines = (partial + text).split(/\r\n|\r|\n/);
      partial = (lines.pop() ?? '').slice(0, MAX_STDERR_LINE_CHARS);
      for (const line of lines) add(line);
    },
    end() {
      add(partial);
      partial = '';
    },
    last: (): string | undefined => tail.at(-1),
  };
}
