/**
 * Wire format of the binary HUD link payloads: HUD panel frames ('AHF1') on `hud/frame` and camera
 * previews ('ACP1') on `camera/preview`. Pure TypeScript (typed arrays and DataView only, no Node
 * APIs), so the web viewer decodes with the same code.
 *
 * HUD frame, all integers little-endian, HUD_FRAME_HEADER_BYTES = 40:
 * ```
 * off size field
 *   0  4   magic 'AHF1'
 *   4  1   version (1)
 *   5  1   encoding: 0 raw, 1 rle
 *   6  1   flags: bit 0 degraded; other bits 0
 *   7  1   reserved (0)
 *   8  4   sequence (u32, wraps)
 *  12  2   widthPx  (1..HUD_FRAME_MAX_SIDE_PX)
 *  14  2   heightPx (1..HUD_FRAME_MAX_SIDE_PX)
 *  16  8   tCaptureNs (u64, source clock)
 *  24  8   tRenderNs (u64, source clock)
 *  32  4   payloadBytes (bytes after the header; must match the message)
 *  36  4   reserved (0)
 *  40  ... payload: raw = widthPx*heightPx*4 bytes RGBA, row-major, top row first;
 *          rle = runs of identical RGBA pixels, each an unsigned LEB128 pixel count (>= 1, at most
 *          5 bytes) followed by the pixel's 4 bytes; the counts add up to widthPx*heightPx exactly.
 * ```
 * HUD panels are mostly black, so runs are long: about 100x smaller than raw at 1280x480.
 */

/**
 * A payload refused at the link boundary. `field` is the dotted path of the failing field when there
 * is one. Message: `<topic>: field '<field>' <what is wrong>` or `<topic>: <what is wrong>`.
 * (Defined here so this module stays free of imports; `hud/topics.ts` re-exports it.)
 */
export class HudPayloadError extends Error {
  override readonly name = 'HudPayloadError';
  readonly topic: string;
  readonly field: string | undefined;

  constructor(topic: string, field: string | undefined, what: string, options?: ErrorOptions) {
    super(field === undefined ? `${topic}: ${what}` : `${topic}: field '${field}' ${what}`, options);
    this.topic = topic;
    this.field = field;
  }

  /** Wraps an error whose message reads `<source>: field '<path>' ...` (schemaError, parseWarpMap, ...). */
  static wrap(topic: string, error: unknown): HudPayloadError {
    if (error instanceof HudPayloadError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const match = /field '([^']*)' (.*)$/s.exec(message);
    if (match) return new HudPayloadError(topic, match[1], match[2]!, { cause: error });
    const colon = message.indexOf(': ');
    return new HudPayloadError(topic, undefined, colon >= 0 ? message.slice(colon + 2) : message, { cause: error });
  }
}

export type HudFrameEncoding = 'rle' | 'raw';

export interface HudFrameHeader {
  /** u32, assigned by the publisher, wraps. */
  sequence: number;
  tCaptureNs: bigint;
  tRenderNs: bigint;
  widthPx: number;
  heightPx: number;
  encoding: HudFrameEncoding;
  /** Perception late or faulty: the panel shows the degraded state. */
  degraded: boolean;
}

export const HUD_FRAME_MAGIC = 'AHF1';
export const HUD_FRAME_VERSION = 1;
export const HUD_FRAME_HEADER_BYTES = 40;
/** Largest panel side accepted (the optics config's PANEL_MAX_PX). */
export const HUD_FRAME_MAX_SIDE_PX = 8192;
/** Longest LEB128 run length: 5 bytes hold any u32 pixel count. */
export const RLE_MAX_LENGTH_BYTES = 5;

export const CAMERA_PREVIEW_MAGIC = 'ACP1';
export const CAMERA_PREVIEW_VERSION = 1;
export const CAMERA_PREVIEW_HEADER_BYTES = 24;
/** Largest JPEG carried in a camera preview. */
export const CAMERA_PREVIEW_MAX_JPEG_BYTES = 4 * 1024 * 1024 - CAMERA_PREVIEW_HEADER_BYTES;

const DEFAULT_FRAME_TOPIC = 'hud/frame';
const DEFAULT_PREVIEW_TOPIC = 'camera/preview';
const ENCODINGS: readonly HudFrameEncoding[] = ['raw', 'rle'];
const FLAG_DEGRADED = 1;
const U64_MAX = (1n << 64n) - 1n;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const magicBytes = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const FRAME_MAGIC_BYTES = magicBytes(HUD_FRAME_MAGIC);
const PREVIEW_MAGIC_BYTES = magicBytes(CAMERA_PREVIEW_MAGIC);

function magicText(bytes: Uint8Array, offset: number): string {
  return Array.from(bytes.subarray(offset, offset + 4), (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}

function hasMagic(bytes: Uint8Array, magic: Uint8Array): boolean {
  return bytes[0] === magic[0] && bytes[1] === magic[1] && bytes[2] === magic[2] && bytes[3] === magic[3];
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkU32(where: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`${where}: '${name}' must be an integer in 0..2^32-1, got ${value}`);
}

function checkU64(where: string, name: string, value: bigint): void {
  if (typeof value !== 'bigint') throw new TypeError(`${where}: '${name}' must be a bigint (ns), got ${typeof value}`);
  if (value < 0n || value > U64_MAX) throw new RangeError(`${where}: '${name}' must be in 0..2^64-1 ns, got ${value}`);
}

function checkSide(where: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1 || value > HUD_FRAME_MAX_SIDE_PX) {
    throw new RangeError(`${where}: '${name}' must be an integer in 1..${HUD_FRAME_MAX_SIDE_PX}, got ${value}`);
  }
}

/**
 * Encodes HUD panel frames. Keeps one output buffer and reuses it: the view `encode` returns is valid
 * until the next call (copy it to keep it). Chooses 'rle' unless it would be larger than 'raw'.
 */
export class HudFrameEncoder {
  #out = new Uint8Array(0);
  #aligned: Uint32Array | undefined;

  encode(rgba: Uint8Array, header: Omit<HudFrameHeader, 'encoding'>): Uint8Array {
    const where = 'HudFrameEncoder.encode';
    if (!(rgba instanceof Uint8Array)) throw new TypeError(`${where}: 'rgba' must be a Uint8Array, got ${typeof rgba}`);
    checkU32(where, 'header.sequence', header.sequence);
    checkSide(where, 'header.widthPx', header.widthPx);
    checkSide(where, 'header.heightPx', header.heightPx);
    checkU64(where, 'header.tCaptureNs', header.tCaptureNs);
    checkU64(where, 'header.tRenderNs', header.tRenderNs);
    const pixels = header.widthPx * header.heightPx;
    const rawBytes = pixels * 4;
    if (rgba.length !== rawBytes) {
      throw new RangeError(`${where}: 'rgba' must hold widthPx*heightPx*4 = ${rawBytes} bytes for ${header.widthPx}x${header.heightPx}, got ${rgba.length}`);
    }
    if (this.#out.length < HUD_FRAME_HEADER_BYTES + rawBytes) this.#out = new Uint8Array(HUD_FRAME_HEADER_BYTES + rawBytes);
    const out = this.#out;
    let payloadBytes = this.#rle(rgba, pixels, out);
    let encoding: HudFrameEncoding = 'rle';
    if (payloadBytes < 0) {
      out.set(rgba, HUD_FRAME_HEADER_BYTES);
      payloadBytes = rawBytes;
      encoding = 'raw';
    }
    writeFrameHeader(out, { ...header, encoding }, payloadBytes);
    return out.subarray(0, HUD_FRAME_HEADER_BYTES + payloadBytes);
  }

  /** Writes runs after the header; returns the payload size, or -1 once it would reach the raw size. */
  #rle(rgba: Uint8Array, pixels: number, out: Uint8Array): number {
    let px: Uint32Array;
    if (rgba.byteOffset % 4 === 0) {
      px = new Uint32Array(rgba.buffer, rgba.byteOffset, pixels);
    } else {
      if (!this.#aligned || this.#aligned.length < pixels) this.#aligned = new Uint32Array(pixels);
      px = this.#aligned.subarray(0, pixels);
      new Uint8Array(px.buffer, px.byteOffset, pixels * 4).set(rgba);
    }
    // Stop before a run could pass the raw size (worst case 5 length bytes + 4 pixel bytes).
    const limit = HUD_FRAME_HEADER_BYTES + pixels * 4 - (RLE_MAX_LENGTH_BYTES + 4);
    let o = HUD_FRAME_HEADER_BYTES;
    let i = 0;
    while (i < pixels) {
      const value = px[i];
      let j = i + 1;
      while (j < pixels && px[j] === value) j++;
      if (o > limit) return -1;
      let run = j - i;
      while (run >= 0x80) {
        out[o++] = (run & 0x7f) | 0x80;
        run >>>= 7;
      }
      out[o++] = run;
      const b = i * 4;
      out[o++] = rgba[b]!;
      out[o++] = rgba[b + 1]!;
      out[o++] = rgba[b + 2]!;
      out[o++] = rgba[b + 3]!;
      i = j;
    }
    return o - HUD_FRAME_HEADER_BYTES;
  }
}

function writeFrameHeader(out: Uint8Array, header: HudFrameHeader, payloadBytes: number): void {
  const view = viewOf(out);
  out.set(FRAME_MAGIC_BYTES, 0);
  view.setUint8(4, HUD_FRAME_VERSION);
  view.setUint8(5, ENCODINGS.indexOf(header.encoding));
  view.setUint8(6, header.degraded ? FLAG_DEGRADED : 0);
  view.setUint8(7, 0);
  view.setUint32(8, header.sequence, true);
  view.setUint16(12, header.widthPx, true);
  view.setUint16(14, header.heightPx, true);
  view.setBigUint64(16, header.tCaptureNs, true);
  view.setBigUint64(24, header.tRenderNs, true);
  view.setUint32(32, payloadBytes, true);
  view.setUint32(36, 0, true);
}

/**
 * Reads and validates a HUD frame header (magic, version, encoding, flags, sizes, payload length).
 * Throws HudPayloadError naming the field.
 */
export function readHudFrameHeader(message: Uint8Array, topic = DEFAULT_FRAME_TOPIC): HudFrameHeader {
  const fail = (field: string | undefined, what: string) => new HudPayloadError(topic, field, what);
  if (!(message instanceof Uint8Array)) throw new TypeError(`${topic}: message must be a Uint8Array, got ${typeof message}`);
  if (message.length < HUD_FRAME_HEADER_BYTES) throw fail('header', `is truncated: need ${HUD_FRAME_HEADER_BYTES} bytes, got ${message.length}`);
  if (!hasMagic(message, FRAME_MAGIC_BYTES)) throw fail('magic', `must be '${HUD_FRAME_MAGIC}', got '${magicText(message, 0)}'`);
  const view = viewOf(message);
  const version = view.getUint8(4);
  if (version !== HUD_FRAME_VERSION) throw fail('version', `must be ${HUD_FRAME_VERSION} (the only version this reader knows), got ${version}`);
  const encoding = ENCODINGS[view.getUint8(5)];
  if (encoding === undefined) throw fail('encoding', `must be 0 (raw) or 1 (rle), got ${view.getUint8(5)}`);
  const flags = view.getUint8(6);
  if ((flags & ~FLAG_DEGRADED) !== 0) throw fail('flags', `has unknown bits set, got 0x${flags.toString(16)}`);
  if (view.getUint8(7) !== 0 || view.getUint32(36, true) !== 0) throw fail('reserved', 'must be 0');
  const widthPx = view.getUint16(12, true);
  if (widthPx < 1 || widthPx > HUD_FRAME_MAX_SIDE_PX) throw fail('widthPx', `must be in 1..${HUD_FRAME_MAX_SIDE_PX}, got ${widthPx}`);
  const heightPx = view.getUint16(14, true);
  if (heightPx < 1 || heightPx > HUD_FRAME_MAX_SIDE_PX) throw fail('heightPx', `must be in 1..${HUD_FRAME_MAX_SIDE_PX}, got ${heightPx}`);
  const payloadBytes = view.getUint32(32, true);
  const actual = message.length - HUD_FRAME_HEADER_BYTES;
  if (payloadBytes !== actual) throw fail('payloadBytes', `must match the ${actual} bytes after the header, got ${payloadBytes}`);
  const rawBytes = widthPx * heightPx * 4;
  if (encoding === 'raw' && payloadBytes !== rawBytes) {
    throw fail('payloadBytes', `must be widthPx*heightPx*4 = ${rawBytes} for a raw ${widthPx}x${heightPx} frame, got ${payloadBytes}`);
  }
  if (encoding === 'rle' && payloadBytes < 5) throw fail('payloadBytes', `must hold at least one run (5 bytes) for an rle frame, got ${payloadBytes}`);
  return {
    sequence: view.getUint32(8, true),
    tCaptureNs: view.getBigUint64(16, true),
    tRenderNs: view.getBigUint64(24, true),
    widthPx,
    heightPx,
    encoding,
    degraded: (flags & FLAG_DEGRADED) !== 0,
  };
}

/**
 * Decodes a HUD frame into `into` (at least widthPx*heightPx*4 bytes; a new buffer when absent) and
 * returns the header and a view of the pixels. Runs must cover the frame exactly: a run of 0, a run
 * past the last pixel, a truncated run, too few pixels or bytes after the last run are refused with
 * a HudPayloadError naming 'runs'.
 */
export function decodeHudFrame(message: Uint8Array, into?: Uint8Array, topic = DEFAULT_FRAME_TOPIC): { header: HudFrameHeader; rgba: Uint8Array } {
  const header = readHudFrameHeader(message, topic);
  const pixels = header.widthPx * header.heightPx;
  const rawBytes = pixels * 4;
  if (into !== undefined && (!(into instanceof Uint8Array) || into.length < rawBytes)) {
    throw new RangeError(`decodeHudFrame: 'into' must be a Uint8Array of at least ${rawBytes} bytes for ${header.widthPx}x${header.heightPx}, got ${into instanceof Uint8Array ? into.length : typeof into}`);
  }
  const rgba = (into ?? new Uint8Array(rawBytes)).subarray(0, rawBytes);
  if (header.encoding === 'raw') {
    rgba.set(message.subarray(HUD_FRAME_HEADER_BYTES));
    return { header, rgba };
  }
  decodeRuns(message, rgba, pixels, topic);
  return { header, rgba };
}

function decodeRuns(message: Uint8Array, rgba: Uint8Array, pixels: number, topic: string): void {
  const fail = (what: string) => new HudPayloadError(topic, 'runs', what);
  const px = LITTLE_ENDIAN_HOST && rgba.byteOffset % 4 === 0 ? new Uint32Array(rgba.buffer, rgba.byteOffset, pixels) : undefined;
  const end = message.length;
  let o = HUD_FRAME_HEADER_BYTES;
  let p = 0;
  while (o < end) {
    if (p === pixels) throw fail(`cover all ${pixels} pixels at byte ${o}, but ${end - o} more bytes follow`);
    const at = o;
    let run = 0;
    let shift = 0;
    let byte: number;
    do {
      if (o >= end) throw fail(`is truncated: run length at byte ${at} runs past the end`);
      if (shift >= 7 * RLE_MAX_LENGTH_BYTES) throw fail(`has a run length longer than ${RLE_MAX_LENGTH_BYTES} bytes at byte ${at}`);
      byte = message[o++]!;
      run += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    if (run === 0) throw fail(`has a run of 0 pixels at byte ${at}`);
    if (run > pixels - p) throw fail(`overflow the frame: run of ${run} pixels at byte ${at} with ${pixels - p} pixels left`);
    if (o + 4 > end) throw fail(`is truncated: pixel of the run at byte ${at} runs past the end`);
    const r = message[o]!;
    const g = message[o + 1]!;
    const b = message[o + 2]!;
    const a = message[o + 3]!;
    o += 4;
    if (px) {
      px.fill((r | (g << 8) | (b << 16) | (a << 24)) >>> 0, p, p + run);
    } else {
      for (let k = p * 4, e = (p + run) * 4; k < e; k += 4) {
        rgba[k] = r;
        rgba[k + 1] = g;
        rgba[k + 2] = b;
        rgba[k + 3] = a;
      }
    }
    p += run;
  }
  if (p !== pixels) throw fail(`cover ${p} pixels, expected widthPx*heightPx = ${pixels} (short frame)`);
}

// ---------------------------------------------------------------------------------------------
// Camera preview: magic 'ACP1', version u8, 3 reserved bytes (0), sequence u32, jpegBytes u32,
// tCaptureNs u64, then the JPEG (little-endian; CAMERA_PREVIEW_HEADER_BYTES = 24).

export interface CameraPreview {
  sequence: number;
  tCaptureNs: bigint;
  /** JPEG bytes (a view into the message when decoded: no copy). */
  jpeg: Uint8Array;
}

export function encodeCameraPreview(preview: CameraPreview): Uint8Array {
  const where = 'encodeCameraPreview';
  checkU32(where, 'sequence', preview.sequence);
  checkU64(where, 'tCaptureNs', preview.tCaptureNs);
  const { jpeg } = preview;
  if (!(jpeg instanceof Uint8Array)) throw new TypeError(`${where}: 'jpeg' must be a Uint8Array, got ${typeof jpeg}`);
  if (jpeg.length > CAMERA_PREVIEW_MAX_JPEG_BYTES) throw new RangeError(`${where}: 'jpeg' must be at most ${CAMERA_PREVIEW_MAX_JPEG_BYTES} bytes, got ${jpeg.length}`);
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new RangeError(`${where}: 'jpeg' must start with the JPEG SOI marker FF D8`);
  const out = new Uint8Array(CAMERA_PREVIEW_HEADER_BYTES + jpeg.length);
  const view = viewOf(out);
  out.set(PREVIEW_MAGIC_BYTES, 0);
  view.setUint8(4, CAMERA_PREVIEW_VERSION);
  view.setUint32(8, preview.sequence, true);
  view.setUint32(12, jpeg.length, true);
  view.setBigUint64(16, preview.tCaptureNs, true);
  out.set(jpeg, CAMERA_PREVIEW_HEADER_BYTES);
  return out;
}

/** Validates and decodes a camera preview; throws HudPayloadError naming the field. */
export function decodeCameraPreview(bytes: Uint8Array, topic = DEFAULT_PREVIEW_TOPIC): CameraPreview {
  const fail = (field: string | undefined, what: string) => new HudPayloadError(topic, field, what);
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${topic}: message must be a Uint8Array, got ${typeof bytes}`);
  if (bytes.length < CAMERA_PREVIEW_HEADER_BYTES) throw fail('header', `is truncated: need ${CAMERA_PREVIEW_HEADER_BYTES} bytes, got ${bytes.length}`);
  if (!hasMagic(bytes, PREVIEW_MAGIC_BYTES)) throw fail('magic', `must be '${CAMERA_PREVIEW_MAGIC}', got '${magicText(bytes, 0)}'`);
  const view = viewOf(bytes);
  const version = view.getUint8(4);
  if (version !== CAMERA_PREVIEW_VERSION) throw fail('version', `must be ${CAMERA_PREVIEW_VERSION} (the only version this reader knows), got ${version}`);
  if (view.getUint8(5) !== 0 || view.getUint8(6) !== 0 || view.getUint8(7) !== 0) throw fail('reserved', 'must be 0');
  const jpegBytes = view.getUint32(12, true);
  const actual = bytes.length - CAMERA_PREVIEW_HEADER_BYTES;
  if (jpegBytes > CAMERA_PREVIEW_MAX_JPEG_BYTES) throw fail('jpegBytes', `must be at most ${CAMERA_PREVIEW_MAX_JPEG_BYTES}, got ${jpegBytes}`);
  if (jpegBytes !== actual) throw fail('jpegBytes', `must match the ${actual} bytes after the header, got ${jpegBytes}`);
  const jpeg = bytes.subarray(CAMERA_PREVIEW_HEADER_BYTES);
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw fail('jpeg', 'must start with the JPEG SOI marker FF D8');
  return { sequence: view.getUint32(8, true), tCaptureNs: view.getBigUint64(16, true), jpeg };
}
