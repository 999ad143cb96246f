import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { BufferPool } from '../../pipeline/buffer-pool.js';
import { ImageView, channelsOf, packedLength, type PixelFormat } from '../../pipeline/image.js';
import { thrownBy } from '../support/errors.js';

const FLOAT_FORMATS: ReadonlySet<PixelFormat> = new Set<PixelFormat>(['rgbf32', 'grayf32']);

/** A packed image whose every element holds a distinct-looking value derived from its index. */
function patterned(width: number, height: number, format: PixelFormat): ImageView {
  const n = packedLength(format, width, height);
  const data = FLOAT_FORMATS.has(format) ? new Float32Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = FLOAT_FORMATS.has(format) ? i + 0.25 : (i * 7 + 3) % 251;
  return ImageView.packed(width, height, format, data);
}

/** All elements of a view in x, y, c order, read through `get`. */
function pixels(view: ImageView): number[] {
  const out: number[] = [];
  for (let y = 0; y < view.height; y++) {
    for (let x = 0; x < view.width; x++) for (let c = 0; c < view.channels; c++) out.push(view.get(x, y, c));
  }
  return out;
}

describe('ImageView views share storage', () => {
  it('a write through a crop is seen by the parent, and both use the same buffer', () => {
    const parent = patterned(8, 6, 'rgb8');
    const crop = parent.crop(2, 3, 4, 2);
    expect(crop.data.buffer).toBe(parent.data.buffer);
    expect(crop.sharesStorageWith(parent)).toBe(true);
    crop.set(1, 1, 2, 222);
    expect(parent.get(3, 4, 2)).toBe(222);
    parent.set(2, 3, 0, 17);
    expect(crop.get(0, 0, 0)).toBe(17);
  });

  it('a row view reads and writes row y of the parent', () => {
    const parent = patterned(5, 4, 'rgba8');
    const row = parent.row(2);
    expect([row.width, row.height, row.format]).toEqual([5, 1, 'rgba8']);
    expect(row.data.buffer).toBe(parent.data.buffer);
    for (let x = 0; x < 5; x++) for (let c = 0; c < 4; c++) expect(row.get(x, 0, c)).toBe(parent.get(x, 2, c));
    row.set(4, 0, 3, 99);
    expect(parent.get(4, 2, 3)).toBe(99);
  });

  it('the last row is reachable and the one after it is not', () => {
    const parent = patterned(3, 4, 'gray8');
    expect(parent.row(3).get(2, 0)).toBe(parent.get(2, 3));
    const error = thrownBy(() => parent.row(4));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView.crop: rectangle (0, 4, 3x1) is outside the 3x4 image');
  });

  it('nested crops index into the original storage', () => {
    const parent = patterned(10, 8, 'rgb8');
    const outer = parent.crop(2, 1, 6, 5);
    const inner = outer.crop(1, 2, 3, 2);
    expect(inner.offset).toBe(parent.index(3, 3));
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 3; x++) {
        for (let c = 0; c < 3; c++) {
          expect(inner.index(x, y, c)).toBe(parent.index(3 + x, 3 + y, c));
          expect(inner.get(x, y, c)).toBe(parent.get(3 + x, 3 + y, c));
        }
      }
    }
    inner.set(2, 1, 1, 201);
    expect(outer.get(3, 3, 1)).toBe(201);
    expect(parent.get(5, 4, 1)).toBe(201);
  });

  it('a channel view of rgb8 is gray8 and reads and writes that channel only', () => {
    const width = 4;
    const height = 3;
    const rgb = ImageView.packed(width, height, 'rgb8', new Uint8Array(packedLength('rgb8', width, height)));
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        rgb.set(x, y, 0, 10 * x);
        rgb.set(x, y, 1, 100 + 20 * y);
        rgb.set(x, y, 2, 200 + x + y);
      }
    }
    for (let c = 0; c < 3; c++) {
      const channel = rgb.channel(c);
      expect(channel.format).toBe('gray8');
      expect(channel.channels).toBe(1);
      expect(channel.data.buffer).toBe(rgb.data.buffer);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) expect(channel.get(x, y)).toBe(rgb.get(x, y, c));
    }
    expect(rgb.channel(1).get(3, 2)).toBe(140);
    rgb.channel(2).set(1, 1, 0, 7);
    expect([rgb.get(1, 1, 0), rgb.get(1, 1, 1), rgb.get(1, 1, 2)]).toEqual([10, 120, 7]);
  });

  it('a channel view of a crop reads that channel inside the crop', () => {
    const parent = patterned(7, 5, 'rgba8');
    const green = parent.crop(2, 1, 4, 3).channel(1);
    expect(green.offset).toBe(parent.index(2, 1, 1));
    for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) expect(green.get(x, y)).toBe(parent.get(2 + x, 1 + y, 1));
  });

  it('a channel view of rgbf32 is grayf32', () => {
    const rgb = patterned(3, 2, 'rgbf32');
    const blue = rgb.channel(2);
    expect(blue.format).toBe('grayf32');
    expect(blue.get(2, 1)).toBe(rgb.get(2, 1, 2));
  });
});

describe('ImageView copies', () => {
  it('copy() of a crop of a channel view is packed, equal and independent', () => {
    const parent = patterned(9, 7, 'rgb8');
    const view = parent.channel(1).crop(2, 1, 5, 4);
    expect(view.isPacked).toBe(false);
    const copy = view.copy();
    expect(copy.isPacked).toBe(true);
    expect([copy.width, copy.height, copy.format, copy.offset]).toEqual([5, 4, 'gray8', 0]);
    expect(copy.data.length).toBe(5 * 4);
    expect(copy.sharesStorageWith(parent)).toBe(false);
    expect(pixels(copy)).toEqual(pixels(view));
    for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) expect(copy.data[y * 5 + x]).toBe(parent.get(2 + x, 1 + y, 1));

    const before = parent.get(2, 1, 1);
    copy.set(0, 0, 0, (before + 1) % 256);
    expect(parent.get(2, 1, 1)).toBe(before);
    const copied = copy.get(1, 1);
    parent.set(3, 2, 1, (copied + 1) % 256);
    expect(copy.get(1, 1)).toBe(copied);
  });

  it('copy() of a crop with row gaps but packed pixels copies row by row', () => {
    const parent = patterned(6, 5, 'rgba8');
    const view = parent.crop(1, 1, 3, 3);
    expect(view.isPacked).toBe(false);
    const copy = view.copy();
    expect(copy.isPacked).toBe(true);
    expect(pixels(copy)).toEqual(pixels(view));
    expect(Array.from(copy.data)).toEqual(pixels(view));
  });

  it('copy() of a full-width crop (packed, nonzero offset) copies from the offset', () => {
    const parent = patterned(4, 6, 'rgbf32');
    const band = parent.crop(0, 2, 4, 3);
    expect(band.isPacked).toBe(true);
    expect(band.offset).toBe(parent.index(0, 2));
    const copy = band.copy();
    expect(copy.data).toBeInstanceOf(Float32Array);
    expect(copy.data.length).toBe(packedLength('rgbf32', 4, 3));
    expect(pixels(copy)).toEqual(pixels(band));
    expect(copy.sharesStorageWith(parent)).toBe(false);
  });

  it('copyInto writes into a pooled buffer and returns a view over it', () => {
    const parent = patterned(8, 8, 'rgb8');
    const view = parent.crop(3, 2, 4, 5).channel(0);
    const pool = new BufferPool();
    const buffer = pool.acquire(packedLength(view.format, view.width, view.height));
    buffer.bytes.fill(0xee);
    const out = view.copyInto(buffer.bytes);
    expect(out.data).toBe(buffer.bytes);
    expect(out.isPacked).toBe(true);
    expect(Array.from(buffer.bytes)).toEqual(pixels(view));
    for (let y = 0; y < 5; y++) for (let x = 0; x < 4; x++) expect(buffer.bytes[y * 4 + x]).toBe(parent.get(3 + x, 2 + y, 0));
    buffer.release();
  });

  it('copyInto a target one element too small throws RangeError', () => {
    const view = patterned(4, 3, 'rgb8').crop(0, 0, 2, 2);
    const error = thrownBy(() => view.copyInto(new Uint8Array(packedLength('rgb8', 2, 2) - 1)));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView: 2x2 rgb8 (offset 0, rowStride 6, pixelStride 3) needs 12 elements, storage has 11');
  });

  it('copyInto a Float32Array for a byte format throws TypeError', () => {
    const view = patterned(2, 2, 'gray8');
    const error = thrownBy(() => view.copyInto(new Float32Array(4)));
    expect(error.name).toBe('TypeError');
    expect(error.message).toBe("ImageView: format 'gray8' needs Uint8Array storage, got Float32Array");
  });

  it('property: crop(...).copy() equals reading the parent pixel by pixel', () => {
    const formats: PixelFormat[] = ['rgb8', 'rgba8', 'gray8', 'rgbf32', 'grayf32'];
    const scene = fc
      .record({
        width: fc.integer({ min: 1, max: 12 }),
        height: fc.integer({ min: 1, max: 12 }),
        format: fc.constantFrom(...formats),
        // Sometimes take one channel (before or after cropping): views with non-packed strides.
        channel: fc.option(fc.nat(3), { nil: undefined }),
        channelFirst: fc.boolean(),
      })
      .chain((image) =>
        fc
          .record({ x: fc.integer({ min: 0, max: image.width - 1 }), y: fc.integer({ min: 0, max: image.height - 1 }) })
          .chain((origin) =>
            fc.record({
              image: fc.constant(image),
              x: fc.constant(origin.x),
              y: fc.constant(origin.y),
              cropWidth: fc.integer({ min: 1, max: image.width - origin.x }),
              cropHeight: fc.integer({ min: 1, max: image.height - origin.y }),
            }),
          ),
      );
    fc.assert(
      fc.property(scene, (s) => {
        const base = patterned(s.image.width, s.image.height, s.image.format);
        const channel = s.image.channel === undefined ? undefined : s.image.channel % channelsOf(s.image.format);
        const crop = (v: ImageView) => v.crop(s.x, s.y, s.cropWidth, s.cropHeight);
        const view =
          channel === undefined ? crop(base) : s.image.channelFirst ? crop(base.channel(channel)) : crop(base).channel(channel);
        const copy = view.copy();
        expect(copy.isPacked).toBe(true);
        expect(copy.sharesStorageWith(base)).toBe(false);
        expect(copy.data.length).toBe(packedLength(copy.format, s.cropWidth, s.cropHeight));
        for (let y = 0; y < s.cropHeight; y++) {
          for (let x = 0; x < s.cropWidth; x++) {
            for (let c = 0; c < copy.channels; c++) {
              const expected = base.get(s.x + x, s.y + y, channel ?? c);
              expect(copy.data[(y * s.cropWidth + x) * copy.channels + c]).toBe(expected);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('ImageView misuse', () => {
  it('a crop one pixel past the right edge throws RangeError', () => {
    const image = patterned(4, 3, 'rgb8');
    expect(image.crop(1, 0, 3, 3).width).toBe(3); // exactly at the edge is fine
    const error = thrownBy(() => image.crop(1, 0, 4, 3));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView.crop: rectangle (1, 0, 4x3) is outside the 4x3 image');
  });

  it('a crop one pixel past the bottom edge throws RangeError', () => {
    const error = thrownBy(() => patterned(4, 3, 'rgb8').crop(0, 1, 4, 3));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView.crop: rectangle (0, 1, 4x3) is outside the 4x3 image');
  });

  it('a crop at a negative x throws RangeError', () => {
    const error = thrownBy(() => patterned(4, 3, 'rgb8').crop(-1, 0, 2, 2));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView.crop: rectangle (-1, 0, 2x2) is outside the 4x3 image');
  });

  it('a crop at a fractional y throws RangeError', () => {
    const error = thrownBy(() => patterned(4, 3, 'rgb8').crop(0, 0.5, 2, 2));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView.crop: rectangle (0, 0.5, 2x2) is outside the 4x3 image');
  });

  it('channel 3 of rgb8 throws RangeError', () => {
    const image = patterned(2, 2, 'rgb8');
    expect(image.channel(2).format).toBe('gray8'); // the last channel is fine
    const error = thrownBy(() => image.channel(3));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView.channel: channel must be in [0, 2] for rgb8, got 3');
  });

  it('channel -1 throws RangeError', () => {
    const error = thrownBy(() => patterned(2, 2, 'rgba8').channel(-1));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView.channel: channel must be in [0, 3] for rgba8, got -1');
  });

  it('a float format over Uint8Array storage throws TypeError', () => {
    const error = thrownBy(() => ImageView.packed(2, 2, 'rgbf32', new Uint8Array(12)));
    expect(error.name).toBe('TypeError');
    expect(error.message).toBe("ImageView: format 'rgbf32' needs Float32Array storage, got Uint8Array");
  });

  it('grayf32 over Float32Array storage is accepted', () => {
    const image = ImageView.packed(2, 2, 'grayf32', new Float32Array([0.5, 1.5, 2.5, 3.5]));
    expect(image.get(1, 1)).toBe(3.5);
  });

  it('storage one element too small throws RangeError; exactly enough is accepted', () => {
    const needed = packedLength('rgb8', 4, 3);
    expect(ImageView.packed(4, 3, 'rgb8', new Uint8Array(needed)).isPacked).toBe(true);
    const error = thrownBy(() => ImageView.packed(4, 3, 'rgb8', new Uint8Array(needed - 1)));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView: 4x3 rgb8 (offset 0, rowStride 12, pixelStride 3) needs 36 elements, storage has 35');
  });

  it('strided storage too small for its last pixel throws RangeError', () => {
    const error = thrownBy(
      () => new ImageView({ width: 2, height: 2, format: 'gray8', data: new Uint8Array(10), offset: 1, rowStride: 6, pixelStride: 3 }),
    );
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('ImageView: 2x2 gray8 (offset 1, rowStride 6, pixelStride 3) needs 11 elements, storage has 10');
  });

  it('a zero width throws RangeError', () => {
    const error = thrownBy(() => ImageView.packed(0, 2, 'gray8', new Uint8Array(4)));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("ImageView: 'width' must be a positive integer, got 0");
  });
});
