import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../pipeline/buffer-pool.js';
import { DARK_LUMA, measureExposure } from '../../pipeline/exposure.js';
import { ImageView } from '../../pipeline/image.js';
import { decodeImageInto } from '../../pipeline/jpeg.js';
import { DATA_DIR } from '../support/data.js';

function rgb(width: number, height: number, fill: (x: number, y: number) => [number, number, number]): ImageView {
  const image = ImageView.packed(width, height, 'rgb8', new Uint8Array(width * height * 3));
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) fill(x, y).forEach((v, c) => image.set(x, y, c, v));
  return image;
}

describe('measureExposure', () => {
  it('measures BT.601 luma, dark and clipped fractions', () => {
    // Left half black, right half white: every sample is either dark or clipped.
    const image = rgb(64, 32, (x) => (x < 32 ? [0, 0, 0] : [255, 255, 255]));
    const stats = measureExposure(image, 1);
    expect(stats.meanLuma).toBeCloseTo(127.5, 6);
    expect(stats.darkFraction).toBeCloseTo(0.5, 6);
    expect(stats.clippedFraction).toBeCloseTo(0.5, 6);
    // Just at the dark limit is not dark; pure red is clipped but has luma 76.245.
    expect(measureExposure(rgb(4, 4, () => [DARK_LUMA, DARK_LUMA, DARK_LUMA]), 1).darkFraction).toBe(0);
    expect(measureExposure(rgb(4, 4, () => [DARK_LUMA - 1, DARK_LUMA - 1, DARK_LUMA - 1]), 1).darkFraction).toBe(1);
    const red = measureExposure(rgb(4, 4, () => [255, 0, 0]), 1);
    expect([red.meanLuma, red.clippedFraction]).toEqual([76.245, 1]);
  });

  it('reads crops in place', () => {
    const image = rgb(64, 32, (x) => (x < 32 ? [0, 0, 0] : [200, 200, 200]));
    expect(measureExposure(image.crop(32, 0, 32, 32), 1).meanLuma).toBeCloseTo(200, 6);
    expect(measureExposure(image.crop(0, 0, 32, 32), 1).darkFraction).toBe(1);
  });

  it('refuses single-channel images', () => {
    expect(() => measureExposure(rgb(4, 4, () => [1, 2, 3]).channel(0))).toThrow(new TypeError('measureExposure: needs an rgb8 or rgba8 image, got gray8'));
  });
});

describe('decodeImageInto', () => {
  it('decodes a real grey chessboard JPEG to rgb8 in a pooled buffer', async () => {
    const pool = new BufferPool();
    const jpeg = await readFile(path.join(DATA_DIR, 'opencv-chessboard', 'left01.jpg'));
    const { image, buffer } = await decodeImageInto(pool, jpeg);
    expect([image.width, image.height, image.format]).toEqual([640, 480, 'rgb8']);
    expect(image.data.buffer).toBe(buffer.bytes.buffer);
    // Grey input: the three channels are equal.
    for (const [x, y] of [[10, 10], [320, 240], [600, 400]] as const) {
      expect(image.get(x, y, 0)).toBe(image.get(x, y, 1));
      expect(image.get(x, y, 1)).toBe(image.get(x, y, 2));
    }
    buffer.release();
    // The next frame of the same size reuses the storage.
    const again = await decodeImageInto(pool, jpeg);
    expect(pool.stats).toMatchObject({ allocations: 1, reuses: 1 });
    again.buffer.release();
  });

  it('rejects a truncated JPEG without taking a buffer', async () => {
    const pool = new BufferPool();
    const jpeg = await readFile(path.join(DATA_DIR, 'opencv-chessboard', 'left01.jpg'));
    await expect(decodeImageInto(pool, jpeg.subarray(0, jpeg.length / 2))).rejects.toThrow();
    expect(pool.stats.inUse).toBe(0);
  });
});
