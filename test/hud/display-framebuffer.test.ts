import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FRAMEBUFFER_BITS_PER_PIXEL, FramebufferOutput, convertRgba } from '../../hud/framebuffer.js';

/** 4x2 RGBA: red, green, blue, white / black, grey, (1,2,3), (250,128,7). */
const FRAME_4X2 = Uint8Array.from([
  255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255,
  0, 0, 0, 255, 128, 128, 128, 255, 1, 2, 3, 255, 250, 128, 7, 255,
]);

/** RGB565 little-endian bytes of one colour. */
function rgb565(r: number, g: number, b: number): [number, number] {
  const v = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3);
  return [v & 0xff, v >> 8];
}

describe('FramebufferOutput', () => {
  let dir: string;
  let device: string;
  let output: FramebufferOutput | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'arhud-fb-'));
    device = path.join(dir, 'fb0');
    await writeFile(device, new Uint8Array(0));
  });

  afterEach(async () => {
    await output?.dispose();
    output = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const open = async (geometry: { widthPx?: number; heightPx?: number; bitsPerPixel?: number; strideBytes?: number }, channelOrder?: 'bgr' | 'rgb') => {
    output = await FramebufferOutput.create({ path: device, geometry, sysfsDir: path.join(dir, 'no-sysfs'), channelOrder });
    return output;
  };

  it('writes 32 bpp as B, G, R, X with explicit 4x2 geometry', async () => {
    const fb = await open({ widthPx: 4, heightPx: 2, bitsPerPixel: 32 });
    expect(fb.geometry).toEqual({ widthPx: 4, heightPx: 2, bitsPerPixel: 32, strideBytes: 16 });
    fb.write(FRAME_4X2, 4, 2);
    await fb.flush();
    expect([...(await readFile(device))]).toEqual([
      0, 0, 255, 255, 0, 255, 0, 255, 255, 0, 0, 255, 255, 255, 255, 255,
      0, 0, 0, 255, 128, 128, 128, 255, 3, 2, 1, 255, 7, 128, 250, 255,
    ]);
    expect(fb.stats).toEqual({ framesWritten: 1, framesSuperseded: 0, writeErrors: 0 });
  });

  it('writes 32 bpp as R, G, B, X with channelOrder rgb', async () => {
    const fb = await open({ widthPx: 4, heightPx: 2, bitsPerPixel: 32 }, 'rgb');
    fb.write(FRAME_4X2, 4, 2);
    await fb.flush();
    const bytes = await readFile(device);
    expect([...bytes.subarray(0, 4)]).toEqual([255, 0, 0, 255]);
    expect([...bytes.subarray(28, 32)]).toEqual([250, 128, 7, 255]);
  });

  it('writes 16 bpp as little-endian RGB565 with explicit 4x2 geometry', async () => {
    const fb = await open({ widthPx: 4, heightPx: 2, bitsPerPixel: 16 });
    fb.write(FRAME_4X2, 4, 2);
    await fb.flush();
    const expected: number[] = [];
    for (let i = 0; i < 8; i++) expected.push(...rgb565(FRAME_4X2[i * 4]!, FRAME_4X2[i * 4 + 1]!, FRAME_4X2[i * 4 + 2]!));
    expect([...(await readFile(device))]).toEqual(expected);
    // Spot values: pure red 0xF800, pure green 0x07E0, pure blue 0x001F.
    expect(expected.slice(0, 6)).toEqual([0x00, 0xf8, 0xe0, 0x07, 0x1f, 0x00]);
  });

  it('writes 24 bpp as B, G, R', async () => {
    const fb = await open({ widthPx: 4, heightPx: 2, bitsPerPixel: 24 });
    fb.write(FRAME_4X2, 4, 2);
    await fb.flush();
    const bytes = await readFile(device);
    expect(bytes.length).toBe(24);
    expect([...bytes.subarray(0, 6)]).toEqual([0, 0, 255, 0, 255, 0]);
  });

  it('places a frame at the top-left, clips it and fills the rest and the row padding with black', async () => {
    const fb = await open({ widthPx: 3, heightPx: 3, bitsPerPixel: 32, strideBytes: 16 });
    await writeFile(device, new Uint8Array(48).fill(9));
    fb.write(FRAME_4X2, 4, 2); // 4 wide into 3: clipped; 2 high into 3: last row black
    await fb.flush();
    const bytes = await readFile(device);
    expect([...bytes.subarray(0, 16)]).toEqual([0, 0, 255, 255, 0, 255, 0, 255, 255, 0, 0, 255, 0, 0, 0, 0]);
    expect([...bytes.subarray(16, 32)]).toEqual([0, 0, 0, 255, 128, 128, 128, 255, 3, 2, 1, 255, 0, 0, 0, 0]);
    expect([...bytes.subarray(32, 48)].every((b) => b === 0)).toBe(true);
  });

  it('blank() writes black over the whole framebuffer', async () => {
    const fb = await open({ widthPx: 4, heightPx: 2, bitsPerPixel: 16 });
    fb.write(FRAME_4X2, 4, 2);
    fb.blank();
    await fb.flush();
    expect([...(await readFile(device))]).toEqual(new Array<number>(16).fill(0));
  });

  it('keeps only the newest frame while a write is in flight, and the caller may reuse its buffer at once', async () => {
    const fb = await open({ widthPx: 4, heightPx: 2, bitsPerPixel: 32 });
    const reused = FRAME_4X2.slice();
    fb.write(reused, 4, 2); // starts writing
    reused.fill(0);
    fb.write(reused, 4, 2); // waits
    reused.fill(255);
    fb.write(reused, 4, 2); // replaces the waiting one
    reused.fill(1); // must not reach the device
    await fb.flush();
    expect([...(await readFile(device))].every((b) => b === 255)).toBe(true);
    expect(fb.stats).toEqual({ framesWritten: 2, framesSuperseded: 1, writeErrors: 0 });
  });

  it('reads the geometry from sysfs (virtual_size, bits_per_pixel, stride); explicit fields win', async () => {
    const sysfsDir = path.join(dir, 'sysfs-fb0');
    await mkdir(sysfsDir);
    await writeFile(path.join(sysfsDir, 'virtual_size'), '4,2\n');
    await writeFile(path.join(sysfsDir, 'bits_per_pixel'), '16\n');
    await writeFile(path.join(sysfsDir, 'stride'), '12\n');
    output = await FramebufferOutput.create({ path: device, sysfsDir });
    expect(output.geometry).toEqual({ widthPx: 4, heightPx: 2, bitsPerPixel: 16, strideBytes: 12 });
    await output.dispose();
    output = await FramebufferOutput.create({ path: device, sysfsDir, geometry: { bitsPerPixel: 32 } });
    // The sysfs stride belongs to the 16 bpp mode: with another depth the stride is computed.
    expect(output.geometry).toEqual({ widthPx: 4, heightPx: 2, bitsPerPixel: 32, strideBytes: 16 });
  });

  it('refuses unknown or invalid geometry naming the field', async () => {
    await expect(FramebufferOutput.create({ path: device, sysfsDir: path.join(dir, 'none'), geometry: { widthPx: 4, heightPx: 2 } })).rejects.toThrow(
      new TypeError(`FramebufferOutput.create('${device}'): geometry field 'bitsPerPixel' is unknown (no sysfs entry); pass it in 'geometry'`),
    );
    await expect(open({ widthPx: 4, heightPx: 2, bitsPerPixel: 8 })).rejects.toThrow(
      new RangeError(`FramebufferOutput.create('${device}'): geometry field 'bitsPerPixel' must be one of ${FRAMEBUFFER_BITS_PER_PIXEL.join(', ')}, got 8`),
    );
    await expect(open({ widthPx: 4, heightPx: 2, bitsPerPixel: 32, strideBytes: 15 })).rejects.toThrow(
      new RangeError(`FramebufferOutput.create('${device}'): geometry field 'strideBytes' must be an integer >= 16 (widthPx x bytes per pixel), got 15`),
    );
    await expect(FramebufferOutput.create({ path: path.join(dir, 'missing'), geometry: { widthPx: 4, heightPx: 2, bitsPerPixel: 32 }, sysfsDir: dir })).rejects.toThrow(
      /cannot open '.*missing' for writing/,
    );
  });

  it('refuses a frame whose buffer is smaller than its size', async () => {
    const fb = await open({ widthPx: 4, heightPx: 2, bitsPerPixel: 32 });
    expect(() => fb.write(new Uint8Array(31), 4, 2)).toThrow(new RangeError(`FramebufferOutput.write: 'rgba' must hold 4x2x4 = 32 bytes, got 31`));
  });

  it('convertRgba allocates nothing and is usable on its own', () => {
    const out = new Uint8Array(16);
    convertRgba(FRAME_4X2, 4, 2, out, { widthPx: 4, heightPx: 2, bitsPerPixel: 16, strideBytes: 8 });
    expect([...out.subarray(0, 2)]).toEqual(rgb565(255, 0, 0));
  });
});
