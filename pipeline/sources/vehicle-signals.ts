/**
 * Live vehicle signals: VehicleState from a JSON-lines stream (a file, stdin, a socket: any Readable;
 * one JSON object per line) or from single JSON payloads pushed by the caller (e.g. an MQTT message
 * handler wired in bin/: the pipeline core knows nothing of MQTT).
 *
 * Each object has the same form and schema as a recorded `/vehicle/state` message and is checked by
 * the same validator (`vehicleStateCodec.decode`):
 *   {"timestamp":{"sec":1700000000,"nsec":0},"speedMps":13.9,"yawRateRps":0.01,"gear":"D"}
 * A bad line (not JSON, schema violation, time not after the previous state's, too long) is skipped,
 * counted and logged with its line number and field; it never reaches the pipeline as an exception.
 *
 * Times: by default the payload's timestamp is the state's `tNs` and must be on the same clock as the
 * frames' `tCaptureNs`. When the producer's clock is unrelated (a CAN bridge with its own time base),
 * `timestamps: 'arrival'` stamps each accepted state with its arrival time on the given Clock instead;
 * payload times must still increase.
 *
 * The pipeline asks `latest(frame.tCaptureNs)`: the newest state not newer than that time, with its age,
 * and treats it as unknown when older than `staleAfterMs`.
 */
import type { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import type { VehicleState } from '../frame.js';
import { vehicleStateCodec } from '../recording/topics.js';

/** A state older than this is stale: the pipeline treats the signals as unknown. */
export const DEFAULT_STALE_AFTER_MS = 200;
/** States kept for `latest` lookups (2.5 s at 100 Hz). */
export const DEFAULT_HISTORY_SIZE = 256;
/** Longest accepted line, bytes; a longer one is skipped (bounded memory even without newlines). */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;
/** Problems logged one by one; later ones are only counted (a broken producer would flood the log). */
export const DEFAULT_MAX_LOGGED_PROBLEMS = 20;

export interface VehicleSignalsOptions {
  /** Names the source in logs: a file path, 'stdin', an MQTT topic. Default 'vehicle-signals'. */
  name?: string;
  /** 'payload' (default): tNs is the payload timestamp. 'arrival': tNs is the arrival time on `clock`. */
  timestamps?: 'payload' | 'arrival';
  /** Required for timestamps 'arrival'. */
  clock?: Clock;
  staleAfterMs?: number;
  historySize?: number;
  maxLineBytes?: number;
  maxLoggedProblems?: number;
  /** One line per skipped input (up to maxLoggedProblems). Default: none. */
  log?: (line: string) => void;
}

export type VehicleSignalProblem = 'malformed' | 'invalid' | 'outOfOrder' | 'tooLong';

export interface VehicleSignalsStats {
  /** Lines (or pushed payloads) seen, blank lines excluded. */
  linesRead: number;
  statesAccepted: number;
  /** Not JSON (or not UTF-8). */
  linesMalformed: number;
  /** JSON that fails the arhud.VehicleState schema. */
  linesInvalid: number;
  /** Timestamp not after the previous accepted state's. */
  linesOutOfOrder: number;
  /** Longer than maxLineBytes. */
  linesTooLong: number;
  /** The last problem's log line, logged or not. */
  lastProblem: string | undefined;
}

/** The state for a time, with how old it is then. */
export interface VehicleSignalSample {
  state: VehicleState;
  /** Query time minus the state's time, ms (>= 0). */
  ageMs: number;
  /** ageMs > staleAfterMs: treat the signals as unknown. */
  stale: boolean;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

export class VehicleSignals {
  readonly name: string;
  readonly staleAfterMs: number;
  readonly historySize: number;
  readonly maxLineBytes: number;
  readonly stats: VehicleSignalsStats = {
    linesRead: 0,
    statesAccepted: 0,
    linesMalformed: 0,
    linesInvalid: 0,
    linesOutOfOrder: 0,
    linesTooLong: 0,
    lastProblem: undefined,
  };
  readonly #timestamps: 'payload' | 'arrival';
  readonly #clock: Clock | undefined;
  readonly #maxLoggedProblems: number;
  readonly #log: (line: string) => void;
  /** Ring of accepted states in time order; `#start` is the oldest. */
  readonly #ring: VehicleState[] = [];
  #start = 0;
  /** Payload time of the last accepted state (what ordering is checked against). */
  #lastPayloadNs: bigint | undefined;
  #problemsLogged = 0;
  #lineNumber = 0;

  constructor(options: VehicleSignalsOptions = {}) {
    const where = 'VehicleSignals';
    this.name = options.name ?? 'vehicle-signals';
    if (typeof this.name !== 'string' || this.name === '') throw new TypeError(`${where}: 'name' must be a non-empty string, got ${JSON.stringify(options.name)}`);
    this.#timestamps = options.timestamps ?? 'payload';
    if (this.#timestamps !== 'payload' && this.#timestamps !== 'arrival') {
      throw new RangeError(`${where}: 'timestamps' must be 'payload' or 'arrival', got ${JSON.stringify(options.timestamps)}`);
    }
    this.#clock = options.clock;
    if (this.#timestamps === 'arrival' && this.#clock === undefined) throw new TypeError(`${where}: 'clock' is required with timestamps 'arrival'`);
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    if (!(this.staleAfterMs > 0) || !Number.isFinite(this.staleAfterMs)) throw new RangeError(`${where}: 'staleAfterMs' must be a finite number > 0, got ${options.staleAfterMs}`);
    const integer = (key: string, value: number | undefined, fallback: number, min: number): number => {
      const chosen = value ?? fallback;
      if (!Number.isInteger(chosen) || chosen < min) throw new RangeError(`${where}: '${key}' must be an integer >= ${min}, got ${value}`);
      return chosen;
    };
    this.historySize = integer('historySize', options.historySize, DEFAULT_HISTORY_SIZE, 1);
    this.maxLineBytes = integer('maxLineBytes', options.maxLineBytes, DEFAULT_MAX_LINE_BYTES, 16);
    this.#maxLoggedProblems = integer('maxLoggedProblems', options.maxLoggedProblems, DEFAULT_MAX_LOGGED_PROBLEMS, 0);
    this.#log = options.log ?? (() => {});
  }

  /** States held for lookups now. */
  get size(): number {
    return this.#ring.length;
  }

  /**
   * Reads JSON lines from `input` until it ends (or `signal` aborts) and returns the number of lines
   * read. Bad lines are skipped and counted, never thrown; only a failure of the stream itself rejects,
   * with an Error naming this source. Memory is bounded: a line longer than maxLineBytes is skipped as
   * it streams in.
   */
  async read(input: Readable, signal?: AbortSignal): Promise<number> {
    const startLine = this.#lineNumber;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    /** The current line went over maxLineBytes: its bytes are skipped up to the next newline. */
    let skipping = false;
    const endLine = (tail: Buffer) => {
      this.#lineNumber++;
      if (skipping) {
        skipping = false;
        this.#problem('tooLong', this.#lineNumber, `longer than ${this.maxLineBytes} bytes`);
        return;
      }
      const line = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
      pending = [];
      pendingBytes = 0;
      this.#accept(line, this.#lineNumber);
    };
    const onAbort = () => input.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const chunk of input as AsyncIterable<Buffer | string>) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
        let at = 0;
        while (at < bytes.length) {
          const newline = bytes.indexOf(NEWLINE, at);
          const end = newline === -1 ? bytes.length : newline;
          const piece = bytes.subarray(at, end);
          if (!skipping && pendingBytes + piece.length > this.maxLineBytes) {
            skipping = true;
            pending = [];
            pendingBytes = 0;
          }
          if (newline === -1) {
            // Copied: the stream may reuse its chunk buffers.
            if (!skipping) {
              pending.push(Buffer.from(piece));
              pendingBytes += piece.length;
            }
            break;
          }
          endLine(skipping ? Buffer.alloc(0) : piece);
          at = newline + 1;
        }
      }
      if (pendingBytes > 0 || skipping) endLine(Buffer.alloc(0));
    } catch (error) {
      if (!signal?.aborted) throw new Error(`VehicleSignals '${this.name}': cannot read the input after line ${this.#lineNumber} (${(error as Error).message})`, { cause: error });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return this.#lineNumber - startLine;
  }

  /**
   * One JSON object (a line without its newline, or a message payload). Returns the accepted state, or
   * undefined when it was skipped (counted and logged as `<name>: <where>: ...`).
   */
  push(payload: string | Uint8Array, where?: string): VehicleState | undefined {
    this.#lineNumber++;
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    if (bytes.length > this.maxLineBytes) {
      this.#problem('tooLong', where ?? this.#lineNumber, `longer than ${this.maxLineBytes} bytes`);
      return undefined;
    }
    return this.#accept(bytes, where ?? this.#lineNumber);
  }

  /** The newest state not newer than `tNs`, with its age then; undefined when none is held. */
  latest(tNs: bigint): VehicleSignalSample | undefined {
    const n = this.#ring.length;
    // Binary search for the last state with state.tNs <= tNs (states are in increasing time order).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#at(mid).tNs <= tNs) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return undefined;
    const state = this.#at(lo - 1);
    const ageMs = Number(tNs - state.tNs) / 1e6;
    return { state, ageMs, stale: ageMs > this.staleAfterMs };
  }

  /** The state for `tNs` when it is fresh (age <= staleAfterMs), else undefined: "unknown". */
  fresh(tNs: bigint): VehicleState | undefined {
    const sample = this.latest(tNs);
    return sample === undefined || sample.stale ? undefined : sample.state;
  }

  #at(index: number): VehicleState {
    return this.#ring[(this.#start + index) % this.#ring.length]!;
  }

  #accept(bytes: Uint8Array, where: number | string): VehicleState | undefined {
    // Blank lines (e.g. a trailing '\r' or an empty keep-alive) are not data.
    let end = bytes.length;
    while (end > 0 && (bytes[end - 1] === CARRIAGE_RETURN || bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)) end--;
    if (end === 0) return undefined;
    this.stats.linesRead++;
    const line = end === bytes.length ? bytes : bytes.subarray(0, end);
    let state: VehicleState;
    try {
      state = vehicleStateCodec.decode(line);
    } catch (error) {
      const message = (error as Error).message;
      this.#problem(isJson(line) ? 'invalid' : 'malformed', where, message);
      return undefined;
    }
    const payloadNs = state.tNs;
    if (this.#lastPayloadNs !== undefined && payloadNs <= this.#lastPayloadNs) {
      this.#problem('outOfOrder', where, `field 'timestamp' ${payloadNs} ns is not after the previous state's ${this.#lastPayloadNs} ns`);
      return undefined;
    }
    this.#lastPayloadNs = payloadNs;
    if (this.#timestamps === 'arrival') {
      const arrivalNs = this.#clock!.nowNs();
      const previous = this.#ring.length > 0 ? this.#at(this.#ring.length - 1).tNs : undefined;
      state.tNs = previous !== undefined && arrivalNs <= previous ? previous + 1n : arrivalNs;
    }
    if (this.#ring.length < this.historySize) this.#ring.push(state);
    else {
      this.#ring[this.#start] = state;
      this.#start = (this.#start + 1) % this.historySize;
    }
    this.stats.statesAccepted++;
    return state;
  }

  #problem(kind: VehicleSignalProblem, where: number | string, detail: string): void {
    if (kind === 'malformed') this.stats.linesMalformed++;
    else if (kind === 'invalid') this.stats.linesInvalid++;
    else if (kind === 'outOfOrder') this.stats.linesOutOfOrder++;
    else this.stats.linesTooLong++;
    const place = typeof where === 'number' ? `line ${where}` : where;
    const line = `VehicleSignals '${this.name}': ${place}: ${detail}; skipped`;
    this.stats.lastProblem = line;
    if (this.#problemsLogged < this.#maxLoggedProblems) {
      this.#problemsLogged++;
      this.#log(line);
      if (this.#problemsLogged === this.#maxLoggedProblems) this.#log(`VehicleSignals '${this.name}': further bad lines are counted, not logged`);
    }
  }
}

const jsonDecoder = new TextDecoder('utf-8', { fatal: true });

function isJson(bytes: Uint8Array): boolean {
  try {
    JSON.parse(jsonDecoder.decode(bytes));
    return true;
  } catch {
    return false;
  }
}
