/**
 * Image -> model input tensor: resize (letterbox or stretch, bilinear, pixel-centre aligned like
 * OpenCV's INTER_LINEAR without anti-aliasing), channel order, scale/mean/std, NCHW or NHWC, written
 * into one preallocated Float32Array. The per-frame path allocates nothing: per-column and per-row
 * source indices and weights are computed once per source size and cached.
 *
 * Coordinates: pixel (i, j) covers [i, i+1) x [j, j+1); its centre is (i + 0.5, j + 0.5). An input
 * pixel centre x_in + 0.5 comes from the source point (x_in + 0.5 - padX) / scaleX, so the source
 * sample position is (x_in + 0.5 - padX) / scaleX - 0.5, clamped to the image (edge replication).
 */
import type { ImageView } from '../../pipeline/index.js';
import type { ModelInputSpec } from './model-card.js';
import type { Box } from './types.js';

/**
 * Where the source image sits in the model input (inputFromSource, x right / y down, pixels):
 *   x_in = x_src * scaleX + padX,  y_in = y_src * scaleY + padY.
 * Letterbox keeps scaleX ~= scaleY (equal up to rounding the resized size to whole pixels); stretch
 * scales each axis on its own. Boxes go back with `boxToSource`.
 */
export interface LetterboxTransform {
  /** Input pixels per source pixel along x. */
  scaleX: number;
  /** Input pixels per source pixel along y. */
  scaleY: number;
  /** Input pixels of padding left of the image. */
  padX: number;
  /** Input pixels of padding above the image. */
  padY: number;
  /** Source image width in pixels (the view given to `write`). */
  sourceWidth: number;
  /** Source image height in pixels. */
  sourceHeight: number;
}

/** The part of ModelInputSpec the writer needs. */
export type InputTensorSpec = Pick<ModelInputSpec, 'width' | 'height' | 'layout' | 'channelOrder' | 'scale' | 'mean' | 'std' | 'resize' | 'padValue'>;

/** A transform that maps input pixels to themselves (for a model input used as the source). */
export function identityTransform(width: number, height: number): LetterboxTransform {
  return { scaleX: 1, scaleY: 1, padX: 0, padY: 0, sourceWidth: width, sourceHeight: height };
}

/**
 * Geometry of placing a `sourceWidth` x `sourceHeight` image into the input, written into `target`.
 * Letterbox: s = min(W / w, H / h), resized size round(w s) x round(h s), centred (left/top padding
 * floor((W - resized) / 2)).
 */
export function placeInInput(
  spec: Pick<ModelInputSpec, 'width' | 'height' | 'resize'>,
  sourceWidth: number,
  sourceHeight: number,
  target: LetterboxTransform = identityTransform(sourceWidth, sourceHeight),
): LetterboxTransform {
  let resizedWidth = spec.width;
  let resizedHeight = spec.height;
  if (spec.resize === 'letterbox') {
    const s = Math.min(spec.width / sourceWidth, spec.height / sourceHeight);
    resizedWidth = Math.max(1, Math.min(spec.width, Math.round(sourceWidth * s)));
    resizedHeight = Math.max(1, Math.min(spec.height, Math.round(sourceHeight * s)));
  }
  target.scaleX = resizedWidth / sourceWidth;
  target.scaleY = resizedHeight / sourceHeight;
  target.padX = Math.floor((spec.width - resizedWidth) / 2);
  target.padY = Math.floor((spec.height - resizedHeight) / 2);
  target.sourceWidth = sourceWidth;
  target.sourceHeight = sourceHeight;
  return target;
}

/** Maps a box from input pixels to source pixels, in place (returns `box`). No clipping. */
export function boxToSource(box: Box, t: LetterboxTransform): Box {
  box[0] = (box[0] - t.padX) / t.scaleX;
  box[1] = (box[1] - t.padY) / t.scaleY;
  box[2] = (box[2] - t.padX) / t.scaleX;
  box[3] = (box[3] - t.padY) / t.scaleY;
  return box;
}

/** Clips a box to [0, sourceWidth] x [0, sourceHeight], in place (returns `box`). */
export function clipBoxToSource(box: Box, t: LetterboxTransform): Box {
  box[0] = Math.min(Math.max(box[0], 0), t.sourceWidth);
  box[1] = Math.min(Math.max(box[1], 0), t.sourceHeight);
  box[2] = Math.min(Math.max(box[2], 0), t.sourceWidth);
  box[3] = Math.min(Math.max(box[3], 0), t.sourceHeight);
  return box;
}

/** Source sample positions and weights for one source size. */
interface ResampleTables {
  sourceWidth: number;
  sourceHeight: number;
  transform: LetterboxTransform;
  resizedWidth: number;
  resizedHeight: number;
  /** Per resized column: left/right source column and the right one's weight. */
  x0: Int32Array;
  x1: Int32Array;
  wx: Float64Array;
  /** Per resized row: upper/lower source row and the lower one's weight. */
  y0: Int32Array;
  y1: Int32Array;
  wy: Float64Array;
}

/** Source sizes whose tables are kept (a camera plus a few crop sizes). */
const MAX_CACHED_SIZES = 8;

function axisTables(resized: number, source: number, scale: number, i0: Int32Array, i1: Int32Array, w: Float64Array): void {
  for (let i = 0; i < resized; i++) {
    const s = Math.min(Math.max((i + 0.5) / scale - 0.5, 0), source - 1);
    const lo = Math.floor(s);
    i0[i] = lo;
    i1[i] = Math.min(lo + 1, source - 1);
    w[i] = s - lo;
  }
}

/**
 * Writes rgb8 (or rgba8, alpha ignored) ImageViews of any strides, crops included, into `data`, a
 * Float32Array of 3 x width x height in the spec's layout. Reuse one writer per model: `data` is
 * allocated once and overwritten by every `write`.
 */
export class InputTensorWriter {
  /** The input tensor's elements; overwritten by `write`. */
  readonly data: Float32Array;
  /** [1, 3, H, W] for nchw, [1, H, W, 3] for nhwc. */
  readonly dims: readonly number[];
  readonly spec: Readonly<InputTensorSpec>;
  /** The transform of the latest `write` when no target was given. */
  readonly transform: LetterboxTransform = identityTransform(1, 1);
  readonly #tables = new Map<number, ResampleTables>();
  /** Per output channel k: source channel, multiplier and offset (value = pixel * mul + add). */
  readonly #sourceChannel: Int32Array;
  readonly #mul = new Float64Array(3);
  readonly #add = new Float64Array(3);
  readonly #padValues = new Float32Array(3);

  /** `data` may be given (e.g. over an ORT tensor's storage); it must hold 3 x width x height floats. */
  constructor(spec: InputTensorSpec, data?: Float32Array) {
    for (const axis of ['width', 'height'] as const) {
      if (!Number.isInteger(spec[axis]) || spec[axis] < 1) throw new RangeError(`InputTensorWriter: '${axis}' must be a positive integer, got ${spec[axis]}`);
    }
    if (spec.layout !== 'nchw' && spec.layout !== 'nhwc') throw new TypeError(`InputTensorWriter: 'layout' must be 'nchw' or 'nhwc', got '${String(spec.layout)}'`);
    if (spec.channelOrder !== 'rgb' && spec.channelOrder !== 'bgr') throw new TypeError(`InputTensorWriter: 'channelOrder' must be 'rgb' or 'bgr', got '${String(spec.channelOrder)}'`);
    if (spec.resize !== 'letterbox' && spec.resize !== 'stretch') throw new TypeError(`InputTensorWriter: 'resize' must be 'letterbox' or 'stretch', got '${String(spec.resize)}'`);
    if (!(spec.scale > 0) || !Number.isFinite(spec.scale)) throw new RangeError(`InputTensorWriter: 'scale' must be a finite number > 0, got ${spec.scale}`);
    if (!(spec.padValue >= 0 && spec.padValue <= 255)) throw new RangeError(`InputTensorWriter: 'padValue' must be in [0, 255], got ${spec.padValue}`);
    for (let k = 0; k < 3; k++) {
      const std = spec.std[k]!;
      const mean = spec.mean[k]!;
      if (!(std > 0) || !Number.isFinite(std)) throw new RangeError(`InputTensorWriter: 'std[${k}]' must be a finite number > 0, got ${std}`);
      if (!Number.isFinite(mean)) throw new RangeError(`InputTensorWriter: 'mean[${k}]' must be finite, got ${mean}`);
      this.#mul[k] = spec.scale / std;
      this.#add[k] = -mean / std;
      this.#padValues[k] = spec.padValue * this.#mul[k]! + this.#add[k]!;
    }
    const length = 3 * spec.width * spec.height;
    if (data !== undefined && (!(data instanceof Float32Array) || data.length !== length)) {
      throw new RangeError(`InputTensorWriter: 'data' must be a Float32Array of ${length} elements, got ${data instanceof Float32Array ? data.length : String(data)}`);
    }
    this.data = data ?? new Float32Array(length);
    this.spec = { ...spec, mean: [...spec.mean], std: [...spec.std] };
    this.dims = spec.layout === 'nchw' ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3];
    this.#sourceChannel = Int32Array.from(spec.channelOrder === 'rgb' ? [0, 1, 2] : [2, 1, 0]);
  }

  /**
   * Resamples `image` into `data` and returns where it landed (written into `target`, by default the
   * writer's own `transform`, which the next call overwrites).
   */
  write(image: ImageView, target: LetterboxTransform = this.transform): LetterboxTransform {
    if (image.format !== 'rgb8' && image.format !== 'rgba8') {
      throw new TypeError(`InputTensorWriter.write: image format must be 'rgb8' or 'rgba8', got '${image.format}'`);
    }
    const t = this.#tablesFor(image.width, image.height);
    target.scaleX = t.transform.scaleX;
    target.scaleY = t.transform.scaleY;
    target.padX = t.transform.padX;
    target.padY = t.transform.padY;
    target.sourceWidth = t.sourceWidth;
    target.sourceHeight = t.sourceHeight;
    this.#fillPadding(t);
    if (this.spec.layout === 'nhwc') this.#resampleNhwc(image, t);
    else this.#resampleNchw(image, t);
    return target;
  }

  #tablesFor(sourceWidth: number, sourceHeight: number): ResampleTables {
    const key = sourceWidth * 65536 + sourceHeight;
    const cached = this.#tables.get(key);
    if (cached) return cached;
    const transform = placeInInput(this.spec, sourceWidth, sourceHeight);
    const resizedWidth = Math.round(transform.scaleX * sourceWidth);
    const resizedHeight = Math.round(transform.scaleY * sourceHeight);
    const tables: ResampleTables = {
      sourceWidth,
      sourceHeight,
      transform,
      resizedWidth,
      resizedHeight,
      x0: new Int32Array(resizedWidth),
      x1: new Int32Array(resizedWidth),
      wx: new Float64Array(resizedWidth),
      y0: new Int32Array(resizedHeight),
      y1: new Int32Array(resizedHeight),
      wy: new Float64Array(resizedHeight),
    };
    axisTables(resizedWidth, sourceWidth, transform.scaleX, tables.x0, tables.x1, tables.wx);
    axisTables(resizedHeight, sourceHeight, transform.scaleY, tables.y0, tables.y1, tables.wy);
    if (this.#tables.size >= MAX_CACHED_SIZES) this.#tables.clear();
    this.#tables.set(key, tables);
    return tables;
  }

  /** Writes the pad value into every input pixel outside the resized image. */
  #fillPadding(t: ResampleTables): void {
    const { width, height, layout } = this.spec;
    const { padX, padY } = t.transform;
    if (padX === 0 && padY === 0 && t.resizedWidth === width && t.resizedHeight === height) return;
    const out = this.data;
    const plane = width * height;
    const right = padX + t.resizedWidth;
    const bottom = padY + t.resizedHeight;
    for (let k = 0; k < 3; k++) {
      const v = this.#padValues[k]!;
      for (let y = 0; y < height; y++) {
        const inside = y >= padY && y < bottom;
        if (layout === 'nchw') {
          const row = k * plane + y * width;
          if (!inside) {
            out.fill(v, row, row + width);
          } else {
            out.fill(v, row, row + padX);
            out.fill(v, row + right, row + width);
          }
        } else {
          const row = y * width * 3 + k;
          for (let x = 0; x < width; x++) {
            if (inside && x === padX) x = right;
            if (x >= width) break;
            out[row + 3 * x] = v;
          }
        }
      }
    }
  }

  #resampleNhwc(image: ImageView, t: ResampleTables): void {
    const src = image.data;
    const out = this.data;
    const { offset, rowStride, pixelStride } = image;
    const { x0, x1, wx, y0, y1, wy, resizedWidth, resizedHeight } = t;
    const { padX, padY } = t.transform;
    const c0 = this.#sourceChannel[0]!, c1 = this.#sourceChannel[1]!, c2 = this.#sourceChannel[2]!;
    const m0 = this.#mul[0]!, m1 = this.#mul[1]!, m2 = this.#mul[2]!;
    const a0 = this.#add[0]!, a1 = this.#add[1]!, a2 = this.#add[2]!;
    const width = this.spec.width;
    for (let y = 0; y < resizedHeight; y++) {
      const top = offset + y0[y]! * rowStride;
      const bottom = offset + y1[y]! * rowStride;
      const v = wy[y]!;
      let o = ((y + padY) * width + padX) * 3;
      for (let x = 0; x < resizedWidth; x++, o += 3) {
        const l = x0[x]! * pixelStride;
        const r = x1[x]! * pixelStride;
        const u = wx[x]!;
        const tl = top + l, tr = top + r, bl = bottom + l, br = bottom + r;
        let p = src[tl + c0]!, q = src[bl + c0]!;
        let s = p + (src[tr + c0]! - p) * u;
        out[o] = (s + (q + (src[br + c0]! - q) * u - s) * v) * m0 + a0;
        p = src[tl + c1]!;
        q = src[bl + c1]!;
        s = p + (src[tr + c1]! - p) * u;
        out[o + 1] = (s + (q + (src[br + c1]! - q) * u - s) * v) * m1 + a1;
        p = src[tl + c2]!;
        q = src[bl + c2]!;
        s = p + (src[tr + c2]! - p) * u;
        out[o + 2] = (s + (q + (src[br + c2]! - q) * u - s) * v) * m2 + a2;
      }
    }
  }

  #resampleNchw(image: ImageView, t: ResampleTables): void {
    const src = image.data;
    const out = this.data;
    const { offset, rowStride, pixelStride } = image;
    const { x0, x1, wx, y0, y1, wy, resizedWidth, resizedHeight } = t;
    const { padX, padY } = t.transform;
    const c0 = this.#sourceChannel[0]!, c1 = this.#sourceChannel[1]!, c2 = this.#sourceChannel[2]!;
    const m0 = this.#mul[0]!, m1 = this.#mul[1]!, m2 = this.#mul[2]!;
    const a0 = this.#add[0]!, a1 = this.#add[1]!, a2 = this.#add[2]!;
    const width = this.spec.width;
    const plane = width * this.spec.height;
    for (let y = 0; y < resizedHeight; y++) {
      const top = offset + y0[y]! * rowStride;
      const bottom = offset + y1[y]! * rowStride;
      const v = wy[y]!;
      let o = (y + padY) * width + padX;
      for (let x = 0; x < resizedWidth; x++, o++) {
        const l = x0[x]! * pixelStride;
        const r = x1[x]! * pixelStride;
        const u = wx[x]!;
        const tl = top + l, tr = top + r, bl = bottom + l, br = bottom + r;
        let p = src[tl + c0]!, q = src[bl + c0]!;
        let s = p + (src[tr + c0]! - p) * u;
        out[o] = (s + (q + (src[br + c0]! - q) * u - s) * v) * m0 + a0;
        p = src[tl + c1]!;
        q = src[bl + c1]!;
        s = p + (src[tr + c1]! - p) * u;
        out[o + plane] = (s + (q + (src[br + c1]! - q) * u - s) * v) * m1 + a1;
        p = src[tl + c2]!;
        q = src[bl + c2]!;
        s = p + (src[tr + c2]! - p) * u;
        out[o + 2 * plane] = (s + (q + (src[br + c2]! - q) * u - s) * v) * m2 + a2;
      }
    }
  }
}
