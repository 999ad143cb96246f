import { describe, expect, it } from 'vitest';
import {
  CAMERA_PREVIEW_HEADER_BYTES,
  CAMERA_PREVIEW_MAX_JPEG_BYTES,
  HUD_FRAME_HEADER_BYTES,
  HUD_FRAME_MAX_SIDE_PX,
  HudFrameEncoder,
  HudPayloadError,
  decodeCameraPreview,
  decodeHudFrame,
  encodeCameraPreview,
  readHudFrameHeader,
  type HudFrameHeader,
} from '../../hud/frame-codec.js';
import { thrownBy } from '../support/errors.js';
import { seededRandom } from '../support/random.js';
import { goldenFrames } from './support.js';

/** Issue #6: typical HUD frames must be at least this much smaller than raw RGBA. */
const MIN_COMPRESSION_RATIO = 20;
const TOPIC = 'arhud/v1/car-1/hud/frame';

const header = (widthPx: number, heightPx: number, extra: Partial<HudFrameHeader> = {}): Omit<HudFrameHeader, 'encoding'> => ({
  sequence: 7,
  tCaptureNs: 1_700_000_000_123_456_789n,
  tRenderNs: 1_700_000_000_133_456_789n,
  widthPx,
  heightPx,
  degraded: false,
  ...extra,
});

/** A HUD-like frame: black with a few solid rectangles of random colours. */
function blockFrame(seed: number, widthPx: number, heightPx: number): Uint8Array {
  const random = seededRandom(seed);
  const rgba = new Uint8Array(widthPx * heightPx * 4);
  for (let b = 0; b < 6; b++) {
    const x0 = Math.floor(random() * widthPx);
    const y0 = Math.floor(random() * heightPx);
    const w = 1 + Math.floor(random() * (widthPx - x0));
    const h = 1 + Math.floor(random() * (heightPx - y0));
    const colour = [255 * random(), 255 * random(), 255 * random(), 255].map(Math.floor);
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) rgba.set(colour, (y * widthPx + x) * 4);
  }
  return rgba;
}

function noiseFrame(seed: number, widthPx: number, heightPx: number): Uint8Array {
  const random = seededRandom(seed);
  return Uint8Array.from({ length: widthPx * heightPx * 4 }, () => Math.floor(256 * random()));
}

/** A frame message written field by field (offsets as documented in frame-codec.ts). */
function message(fields: { magic?: string; version?: number; encoding?: number; flags?: number; reserved?: number; widthPx?: number; heightPx?: number; payloadBytes?: number }, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HUD_FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  out.set(Array.from(fields.magic ?? 'AHF1', (c) => c.charCodeAt(0)), 0);
  view.setUint8(4, fields.version ?? 1);
  view.setUint8(5, fields.encoding ?? 1);
  view.setUint8(6, fields.flags ?? 0);
  view.setUint8(7, fields.reserved ?? 0);
  view.setUint32(8, 1, true);
  view.setUint16(12, fields.widthPx ?? 2, true);
  view.setUint16(14, fields.heightPx ?? 2, true);
  view.setUint32(32, fields.payloadBytes ?? payload.length, true);
  out.set(payload, HUD_FRAME_HEADER_BYTES);
  return out;
}

const pixel = [10, 20, 30, 255];
/** rle payload from (run length bytes, pixel) pairs. */
const runs = (...lengths: number[][]) => Uint8Array.from(lengths.flatMap((leb) => [...leb, ...pixel]));

function expectPayloadError(fn: () => unknown, field: string | undefined, message: RegExp): HudPayloadError {
  const error = thrownBy(fn);
  expect(error).toBeInstanceOf(HudPayloadError);
  expect(error.name).toBe('HudPayloadError');
  const payloadError = error as HudPayloadError;
  expect(payloadError.field).toBe(field);
  expect(payloadError.topic).toBe(TOPIC);
  expect(error.message).toMatch(message);
  if (field !== undefined) expect(error.message.startsWith(`${TOPIC}: field '${field}' `)).toBe(true);
  return payloadError;
}

describe('HUD frame codec', () => {
  it('round trips HUD-like frames as rle, header fields included', () => {
    const encoder = new HudFrameEncoder();
    for (let seed = 1; seed <= 20; seed++) {
      const widthPx = 1 + (seed * 37) % 300;
      const heightPx = 1 + (seed * 53) % 120;
      const rgba = blockFrame(seed, widthPx, heightPx);
      const h = header(widthPx, heightPx, { sequence: 0xffff_ffff - seed, degraded: seed % 2 === 0, tCaptureNs: (1n << 64n) - 1n - BigInt(seed) });
      const bytes = encoder.encode(rgba, h);
      const decoded = decodeHudFrame(bytes, undefined, TOPIC);
      expect(decoded.header).toEqual({ ...h, encoding: 'rle' });
      expect(readHudFrameHeader(bytes, TOPIC)).toEqual(decoded.header);
      expect(decoded.rgba).toEqual(rgba);
    }
  });

  it('falls back to raw when runs would be larger (noise), and round trips', () => {
    const encoder = new HudFrameEncoder();
    for (let seed = 1; seed <= 5; seed++) {
      const rgba = noiseFrame(seed, 64, 48);
      const bytes = encoder.encode(rgba, header(64, 48));
      expect(bytes.length).toBe(HUD_FRAME_HEADER_BYTES + rgba.length);
      const decoded = decodeHudFrame(bytes, undefined, TOPIC);
      expect(decoded.header.encoding).toBe('raw');
      expect(decoded.rgba).toEqual(rgba);
    }
  });

  it('compresses the render goldens (real 1280x480 HUD frames) at least 20x, losslessly', async () => {
    const encoder = new HudFrameEncoder();
    for (const golden of await goldenFrames()) {
      const bytes = encoder.encode(golden.rgba, header(golden.widthPx, golden.heightPx));
      const ratio = golden.rgba.length / bytes.length;
      expect(ratio, golden.name).toBeGreaterThanOrEqual(MIN_COMPRESSION_RATIO);
      const decoded = decodeHudFrame(bytes);
      expect(decoded.header.encoding).toBe('rle');
      expect(Buffer.from(decoded.rgba).equals(Buffer.from(golden.rgba)), golden.name).toBe(true);
    }
  });

  it('writes multi-byte run lengths (LEB128) for long runs', () => {
    const rgba = new Uint8Array(200 * 200 * 4); // one run of 40000 pixels: 3 length bytes
    const bytes = new HudFrameEncoder().encode(rgba, header(200, 200));
    expect(bytes.length).toBe(HUD_FRAME_HEADER_BYTES + 3 + 4);
    expect(decodeHudFrame(bytes).rgba).toEqual(rgba);
    const big = new Uint8Array(HUD_FRAME_MAX_SIDE_PX * 2 * 4);
    expect(decodeHudFrame(new HudFrameEncoder().encode(big, header(HUD_FRAME_MAX_SIDE_PX, 2))).rgba).toEqual(big);
  });

  it('reuses its output buffer: the returned view is valid until the next encode', () => {
    const encoder = new HudFrameEncoder();
    const first = encoder.encode(blockFrame(1, 32, 8), header(32, 8, { sequence: 1 }));
    const copy = first.slice();
    const second = encoder.encode(blockFrame(2, 32, 8), header(32, 8, { sequence: 2 }));
    expect(second.buffer).toBe(first.buffer);
    expect(readHudFrameHeader(copy).sequence).toBe(1);
    expect(new DataView(first.buffer, first.byteOffset).getUint32(8, true)).toBe(2); // overwritten: the sequence field
  });

  it('gives the same bytes for unaligned input and decodes into unaligned and reused buffers', () => {
    const rgba = blockFrame(3, 50, 20);
    const unaligned = new Uint8Array(rgba.length + 1).subarray(1);
    unaligned.set(rgba);
    const aligned = new HudFrameEncoder().encode(rgba, header(50, 20)).slice();
    const fromUnaligned = new HudFrameEncoder().encode(unaligned, header(50, 20));
    expect(fromUnaligned).toEqual(aligned);
    const into = new Uint8Array(rgba.length + 3).subarray(3);
    expect(decodeHudFrame(aligned, into).rgba).toEqual(rgba);
    const reused = new Uint8Array(rgba.length + 400).fill(99);
    const { rgba: out } = decodeHudFrame(aligned, reused);
    expect(out.buffer).toBe(reused.buffer);
    expect(out).toEqual(rgba);
  });

  it('refuses bad encoder arguments with RangeError naming the parameter', () => {
    const encoder = new HudFrameEncoder();
    const rgba = new Uint8Array(4 * 4 * 4);
    const cases: [() => unknown, RegExp][] = [
      [() => encoder.encode(rgba.subarray(1), header(4, 4)), /'rgba' must hold widthPx\*heightPx\*4 = 64 bytes for 4x4, got 63/],
      [() => encoder.encode(rgba, header(0, 4)), /'header.widthPx' must be an integer in 1..8192, got 0/],
      [() => encoder.encode(rgba, header(4, HUD_FRAME_MAX_SIDE_PX + 1)), /'header.heightPx' must be an integer in 1..8192, got 8193/],
      [() => encoder.encode(rgba, header(4, 4, { sequence: -1 })), /'header.sequence' must be an integer in 0..2\^32-1, got -1/],
      [() => encoder.encode(rgba, header(4, 4, { tCaptureNs: -1n })), /'header.tCaptureNs' must be in 0..2\^64-1 ns, got -1/],
      [() => encoder.encode(rgba, header(4, 4, { tRenderNs: 1n << 64n })), /'header.tRenderNs' must be in 0..2\^64-1 ns/],
    ];
    for (const [fn, text] of cases) {
      const error = thrownBy(fn);
      expect(error.name).toBe('RangeError');
      expect(error.message).toMatch(/^HudFrameEncoder.encode: /);
      expect(error.message).toMatch(text);
    }
    expect(thrownBy(() => decodeHudFrame(encoder.encode(rgba, header(4, 4)), new Uint8Array(10))).message).toMatch(/'into' must be a Uint8Array of at least 64 bytes for 4x4, got 10/);
  });

  describe('header validation', () => {
    const good = runs([4]);
    it('accepts a hand-written message', () => {
      expect(decodeHudFrame(message({}, good), undefined, TOPIC).rgba).toEqual(Uint8Array.from([...pixel, ...pixel, ...pixel, ...pixel]));
    });
    it.each([
      ['header', () => new Uint8Array(HUD_FRAME_HEADER_BYTES - 1), /is truncated: need 40 bytes, got 39/],
      ['magic', () => message({ magic: 'AHF2' }, good), /must be 'AHF1', got 'AHF2'/],
      ['magic', () => message({ magic: '\x00\xffAB' }, good), /got '\\x00\\xffAB'/],
      ['version', () => message({ version: 2 }, good), /must be 1 \(the only version this reader knows\), got 2/],
      ['encoding', () => message({ encoding: 2 }, good), /must be 0 \(raw\) or 1 \(rle\), got 2/],
      ['flags', () => message({ flags: 0x82 }, good), /has unknown bits set, got 0x82/],
      ['reserved', () => message({ reserved: 1 }, good), /must be 0/],
      ['widthPx', () => message({ widthPx: 0 }, good), /must be in 1..8192, got 0/],
      ['widthPx', () => message({ widthPx: HUD_FRAME_MAX_SIDE_PX + 1 }, good), /must be in 1..8192, got 8193/],
      ['heightPx', () => message({ heightPx: 0 }, good), /must be in 1..8192, got 0/],
      ['heightPx', () => message({ heightPx: 65535 }, good), /got 65535/],
      ['payloadBytes', () => message({ payloadBytes: 6 }, good), /must match the 5 bytes after the header, got 6/],
      ['payloadBytes', () => message({ payloadBytes: 4 }, good), /must match the 5 bytes after the header, got 4/],
      ['payloadBytes', () => message({ encoding: 0 }, new Uint8Array(15)), /must be widthPx\*heightPx\*4 = 16 for a raw 2x2 frame, got 15/],
      ['payloadBytes', () => message({}, new Uint8Array(0)), /must hold at least one run/],
    ])("refuses a bad '%s'", (field, make, text) => {
      expectPayloadError(() => readHudFrameHeader(make(), TOPIC), field, text);
      expectPayloadError(() => decodeHudFrame(make(), undefined, TOPIC), field, text);
    });
    it('accepts the largest panel side, 8192', () => {
      expect(readHudFrameHeader(message({ widthPx: HUD_FRAME_MAX_SIDE_PX, heightPx: 1 }, runs([0x80, 0x40]))).widthPx).toBe(HUD_FRAME_MAX_SIDE_PX);
    });
  });

  describe('run validation (2x2 = 4 pixels)', () => {
    it.each([
      ['a run of 0', runs([0], [4]), /has a run of 0 pixels at byte 40/],
      ['overflow', runs([3], [2]), /overflow the frame: run of 2 pixels at byte 45 with 1 pixels left/],
      ['a huge run', runs([0xff, 0xff, 0xff, 0xff, 0x0f]), /overflow the frame: run of 4294967295 pixels/],
      ['underflow (short frame)', runs([3]), /cover 3 pixels, expected widthPx\*heightPx = 4 \(short frame\)/],
      ['a truncated run length', Uint8Array.from([...runs([2]), 0x82]), /is truncated: run length at byte 45 runs past the end/],
      ['a truncated pixel', Uint8Array.from([...runs([2]), 2, 1, 2]), /is truncated: pixel of the run at byte 45 runs past the end/],
      ['bytes after the last run', Uint8Array.from([...runs([4]), 1]), /cover all 4 pixels at byte 45, but 1 more bytes follow/],
      ['a 6-byte run length', runs([0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), /has a run length longer than 5 bytes at byte 40/],
    ])('refuses %s naming runs', (_what, payload, text) => {
      expectPayloadError(() => decodeHudFrame(message({}, payload), undefined, TOPIC), 'runs', text);
    });
  });

  it('never throws anything but HudPayloadError on truncated or corrupted messages', () => {
    const random = seededRandom(42);
    const valid = new HudFrameEncoder().encode(blockFrame(9, 40, 10), header(40, 10)).slice();
    let refused = 0;
    for (let trial = 0; trial < 2000; trial++) {
      let bytes = valid.slice(0, trial % 3 === 0 ? Math.floor(random() * valid.length) : valid.length);
      if (trial % 3 !== 0) {
        bytes = bytes.slice();
        for (let k = 0; k < 1 + trial % 4; k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      try {
        decodeHudFrame(bytes, undefined, TOPIC);
      } catch (error) {
        expect(error).toBeInstanceOf(HudPayloadError);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(500);
  });
});

describe('camera preview codec', () => {
  const PREVIEW_TOPIC = 'arhud/v1/car-1/camera/preview';
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);

  it('round trips', () => {
    const bytes = encodeCameraPreview({ sequence: 0xffff_ffff, tCaptureNs: 123_456_789_012_345_678n, jpeg });
    expect(bytes.length).toBe(CAMERA_PREVIEW_HEADER_BYTES + jpeg.length);
    expect(decodeCameraPreview(bytes, PREVIEW_TOPIC)).toEqual({ sequence: 0xffff_ffff, tCaptureNs: 123_456_789_012_345_678n, jpeg });
  });

  it.each([
    ['header', (b: Uint8Array) => b.subarray(0, CAMERA_PREVIEW_HEADER_BYTES - 1), /is truncated: need 24 bytes, got 23/],
    ['magic', (b: Uint8Array) => (b.set([0x41, 0x48, 0x46, 0x31], 0), b), /must be 'ACP1', got 'AHF1'/],
    ['version', (b: Uint8Array) => ((b[4] = 9), b), /got 9/],
    ['reserved', (b: Uint8Array) => ((b[6] = 1), b), /must be 0/],
    ['jpegBytes', (b: Uint8Array) => b.subarray(0, b.length - 1), /must match the 8 bytes after the header, got 9/],
    ['jpegBytes', (b: Uint8Array) => (new DataView(b.buffer).setUint32(12, CAMERA_PREVIEW_MAX_JPEG_BYTES + 1, true), b), /must be at most/],
    ['jpeg', (b: Uint8Array) => ((b[CAMERA_PREVIEW_HEADER_BYTES] = 0x89), b), /must start with the JPEG SOI marker FF D8/],
  ])("refuses a bad '%s'", (field, spoil, text) => {
    const bytes = spoil(encodeCameraPreview({ sequence: 1, tCaptureNs: 5n, jpeg }));
    const error = thrownBy(() => decodeCameraPreview(bytes, PREVIEW_TOPIC)) as HudPayloadError;
    expect(error.name).toBe('HudPayloadError');
    expect(error.field).toBe(field);
    expect(error.message).toMatch(new RegExp(`^${PREVIEW_TOPIC}: field '${field}' `));
    expect(error.message).toMatch(text);
  });

  it('refuses to encode what is not a JPEG', () => {
    const error = thrownBy(() => encodeCameraPreview({ sequence: 1, tCaptureNs: 5n, jpeg: Uint8Array.from([0x89, 0x50]) }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("encodeCameraPreview: 'jpeg' must start with the JPEG SOI marker FF D8");
  });
});
