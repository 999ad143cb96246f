/**
 * `ImageView`: a typed window onto pixel storage, like a tensor view over a storage buffer. Crops,
 * single-channel views and row views share the storage of the view they come from; only `copy()`
 * and `copyInto()` move pixels.
 */

export type PixelFormat = 'rgb8' | 'rgba8' | 'gray8' | 'rgbf32' | 'grayf32';

export type PixelStorage = Uint8Array | Float32Array;

const CHANNELS: Record<PixelFormat, number> = { rgb8: 3, rgba8: 4, gray8: 1, rgbf32: 3, grayf32: 1 };
const IS_FLOAT: Record<PixelFormat, boolean> = { rgb8: false, rgba8: false, gray8: false, rgbf32: true, grayf32: true };

export function channelsOf(format: PixelFormat): number {
  return CHANNELS[format];
}

/** Elements (bytes for *8 formats, floats for *f32) a packed image of this size needs. */
export function packedLength(format: PixelFormat, width: number, height: number): number {
  return width * height * CHANNELS[format];
}

export interface ImageViewInit {
  width: number;
  height: number;
  format: PixelFormat;
  data: PixelStorage;
  /** Element index of channel 0 of pixel (0, 0). Default 0. */
  offset?: number;
  /** Elements from one row to the next. Default width * pixelStride (packed). */
  rowStride?: number;
  /** Elements from one pixel to the next. Default the format's channel count. */
  pixelStride?: number;
}

export class ImageView {
  readonly width: number;
  readonly height: number;
  readonly format: PixelFormat;
  readonly channels: number;
  /** The whole shared storage, not just this view's pixels. */
  readonly data: PixelStorage;
  readonly offset: number;
  readonly rowStride: number;
  readonly pixelStride: number;

  constructor(init: ImageViewInit) {
    const { width, height, format, data } = init;
    if (!(format in CHANNELS)) throw new TypeError(`ImageView: unknown format '${String(format)}'`);
    if (!Number.isInteger(width) || width <= 0) throw new RangeError(`ImageView: 'width' must be a positive integer, got ${width}`);
    if (!Number.isInteger(height) || height <= 0) throw new RangeError(`ImageView: 'height' must be a positive integer, got ${height}`);
    const wantFloat = IS_FLOAT[format];
    if (wantFloat !== data instanceof Float32Array) {
      throw new TypeError(`ImageView: format '${format}' needs ${wantFloat ? 'Float32Array' : 'Uint8Array'} storage, got ${data.constructor.name}`);
    }
    this.width = width;
    this.height = height;
    this.format = format;
    this.channels = CHANNELS[format];
    this.data = data;
    this.offset = init.offset ?? 0;
    this.pixelStride = init.pixelStride ?? this.channels;
    this.rowStride = init.rowStride ?? width * this.pixelStride;
    const last = this.offset + (height - 1) * this.rowStride + (width - 1) * this.pixelStride + this.channels - 1;
    if (this.offset < 0 || last >= data.length) {
      throw new RangeError(
        `ImageView: ${width}x${height} ${format} (offset ${this.offset}, rowStride ${this.rowStride}, pixelStride ${this.pixelStride}) needs ${last + 1} elements, storage has ${data.length}`,
      );
    }
  }

  /** A packed image over `data` (which must hold exactly or at least width*height*channels elements). */
  static packed(width: number, height: number, format: PixelFormat, data: PixelStorage): ImageView {
    return new ImageView({ width, height, format, data });
  }

  /** True when pixels and rows follow each other with no gaps (one memcpy moves the image). */
  get isPacked(): boolean {
    return this.pixelStride === this.channels && this.rowStride === this.width * this.channels;
  }

  /** Element index of channel `c` of pixel (x, y) in `data`. */
  index(x: number, y: number, c = 0): number {
    return this.offset + y * this.rowStride + x * this.pixelStride + c;
  }

  get(x: number, y: number, c = 0): number {
    return this.data[this.index(x, y, c)]!;
  }

  set(x: number, y: number, c: number, value: number): void {
    this.data[this.index(x, y, c)] = value;
  }

  /** The rectangle [x, x+width) x [y, y+height), sharing storage. */
  crop(x: number, y: number, width: number, height: number): ImageView {
    if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x + width > this.width || y + height > this.height) {
      throw new RangeError(`ImageView.crop: rectangle (${x}, ${y}, ${width}x${height}) is outside the ${this.width}x${this.height} image`);
    }
    return new ImageView({
      width,
      height,
      format: this.format,
      data: this.data,
      offset: this.index(x, y),
      rowStride: this.rowStride,
      pixelStride: this.pixelStride,
    });
  }

  /** Row `y` as a 1-pixel-high view, sharing storage. */
  row(y: number): ImageView {
    return this.crop(0, y, this.width, 1);
  }

  /** Channel `c` as a single-channel view (gray8 or grayf32), sharing storage. */
  channel(c: number): ImageView {
    if (!Number.isInteger(c) || c < 0 || c >= this.channels) {
      throw new RangeError(`ImageView.channel: channel must be in [0, ${this.channels - 1}] for ${this.format}, got ${c}`);
    }
    return new ImageView({
      width: this.width,
      height: this.height,
      format: IS_FLOAT[this.format] ? 'grayf32' : 'gray8',
      data: this.data,
      offset: this.offset + c,
      rowStride: this.rowStride,
      pixelStride: this.pixelStride,
    });
  }

  /** Whether the two views look into the same storage. */
  sharesStorageWith(other: ImageView): boolean {
    return this.data.buffer === other.data.buffer;
  }

  /** A packed copy in new storage. */
  copy(): ImageView {
    const data = IS_FLOAT[this.format]
      ? new Float32Array(packedLength(this.format, this.width, this.height))
      : new Uint8Array(packedLength(this.format, this.width, this.height));
    return this.copyInto(data);
  }

  /** A packed copy written into `target` (e.g. a pooled buffer); returns the view over it. */
  copyInto(target: PixelStorage): ImageView {
    const out = ImageView.packed(this.width, this.height, this.format, target);
    const rowElements = this.width * this.channels;
    if (this.isPacked) {
      target.set(this.data.subarray(this.offset, this.offset + rowElements * this.height) as never);
      return out;
    }
    for (let y = 0; y < this.height; y++) {
      const src = this.offset + y * this.rowStride;
      const dst = y * rowElements;
      if (this.pixelStride === this.channels) {
        target.set(this.data.subarray(src, src + rowElements) as never, dst);
        continue;
      }
      for (let x = 0; x < this.width; x++) {
        for (let c = 0; c < this.channels; c++) target[dst + x * this.channels + c] = this.data[src + x * this.pixelStride + c]!;
      }
    }
    return out;
  }
}
