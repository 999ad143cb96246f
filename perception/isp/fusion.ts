/**
 * Mertens exposure fusion (Mertens, Kautz, Van Reeth, "Exposure Fusion", 2007), computed as OpenCV's
 * `createMergeMertens(1, 1, 1)` (contrast, saturation and well-exposedness all to the power 1; note
 * that OpenCV's own default exposure weight is 0, which drops well-exposedness), and a single-frame
 * local tone mapper built on it.
 *
 * Per bracket and pixel, on encoded values in [0, 1]:
 *   contrast        |Laplacian| (3x3, [0 1 0; 1 -4 1; 0 1 0]) of grey 0.299 R + 0.587 G + 0.114 B
 *   saturation      sqrt(sum_c (c - mean)^2)  (OpenCV's form: sqrt(3) x the std of R, G, B, a factor
 *                   that cancels when the weights are normalized)
 *   well-exposed    prod_c exp(-(c - 0.5)^2 / (2 * 0.2^2))
 *   weight          contrast * saturation * well-exposed + 1e-12, divided by the sum over brackets
 * The brackets' Laplacian pyramids are blended with the Gaussian pyramids of their weights and the
 * blend is collapsed: blending per band hides the seams a per-pixel blend of such spiky weights
 * would leave. Pyramids are OpenCV's pyrDown/pyrUp: 5-tap binomial [1 4 6 4 1]/16, reflect-101
 * borders (pyrUp reflects in the upsampled grid, as OpenCV does), floor(log2(min(w, h))) halvings.
 *
 * Agreement: on real 64x48 brackets the output matches OpenCV 4.6's to a mean absolute 2e-7 (max
 * 1.5e-5), border and odd-size handling included (test/perception/fixtures/mertens-opencv.json).
 *
 * Speed: an `ExposureFusion` per image size holds every buffer, so a stream allocates nothing per
 * frame but its output. Weights are computed row by row across the brackets and normalized while in
 * cache, and level 1 is downsampled from those same rows as they finish; downsampling filters only
 * the kept rows and columns, through 5-row rings; the blend and collapse are reordered (see
 * ExposureFusion) so that each level is one pass with the upsampling fused in, and level 0 reads
 * the brackets' pixels directly. Measured at 1280x720, three rgb8 brackets, on a shared 2-core
 * machine: ~120 ms single-threaded (median), against ~57-73 ms for OpenCV 4.6's SIMD C++
 * createMergeMertens on one thread: scalar TypeScript runs at about half OpenCV's speed here. The
 * coarse levels cost little (the full-size weights, level-1 downsampling and level-0 blend
 * dominate), so fewer levels would not buy speed.
 */

import { ImageView } from '../../pipeline/image.js';
import { exposeInLinearLight } from './brackets.js';

/** Well-exposedness is a Gaussian of this sigma around mid-grey 0.5 (the paper's and OpenCV's). */
export const WELL_EXPOSED_SIGMA = 0.2;
const WELL_EXPOSED_INV_2VAR = 1 / (2 * WELL_EXPOSED_SIGMA * WELL_EXPOSED_SIGMA);
/** Added to every weight before normalizing (OpenCV's 1e-12): where every product is 0 (flat or clipped in every bracket) the brackets get equal weights instead of 0/0. */
const WEIGHT_EPSILON = 1e-12;
const GREY_R = 0.299;
const GREY_G = 0.587;
const GREY_B = 0.114;

const f32 = Math.fround;

/** Encoded value of each 8-bit code, rounded as OpenCV's convertTo(CV_32F, 1/255.f) rounds it. */
const CODE_TO_UNIT: Float32Array = (() => {
  const lut = new Float32Array(256);
  const scale = f32(1 / 255);
  for (let i = 0; i < 256; i++) lut[i] = f32(i * scale);
  return lut;
})();

/** Well-exposedness of one channel at each 8-bit code: rgb8 brackets need no exp per pixel. */
const WELL_EXPOSED_8: Float32Array = (() => {
  const lut = new Float32Array(256);
  for (let i = 0; i < 256; i++) lut[i] = Math.exp(-((CODE_TO_UNIT[i]! - 0.5) ** 2) * WELL_EXPOSED_INV_2VAR);
  return lut;
})();

/**
 * OpenCV's saturation of a grey pixel (R = G = B = v). Exactly it is 0, but OpenCV's float32
 * mean (R + G + B) * (1/3.f) leaves a rounding residue of ~1e-8 which, times contrast and
 * well-exposedness, outweighs the 1e-12 epsilon: the weights of grey pixels (roads, sky, clipped
 * white) are set by that residue. Reproducing it keeps the output OpenCV's (to ~1e-7 instead of
 * up to 0.05 off at such pixels); everywhere else float32 rounding is negligible.
 */
function greySaturation(v: number): number {
  const mean = f32(f32(f32(v + v) + v) * f32(1 / 3));
  const d = f32(v - mean);
  const sq = f32(d * d);
  return f32(Math.sqrt(f32(f32(sq + sq) + sq)));
}

const GREY_SATURATION_8: Float32Array = (() => {
  const lut = new Float32Array(256);
  for (let i = 0; i < 256; i++) lut[i] = greySaturation(CODE_TO_UNIT[i]!);
  return lut;
})();

export interface FusionOptions {
  /** Pyramid depth in halvings (OpenCV's `maxlevel`). Default, and maximum, floor(log2(min(width, height))), as OpenCV. */
  levels?: number;
}

/** OpenCV's default pyramid depth for an image of this size. */
export function defaultFusionLevels(width: number, height: number): number {
  return Math.floor(Math.log2(Math.min(width, height)));
}

/** Index `i` mirrored into [0, n) without repeating the edge (OpenCV's BORDER_REFLECT_101). */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

function checkBrackets(fn: string, brackets: readonly ImageView[]): void {
  if (brackets.length < 2) throw new RangeError(`${fn}: 'brackets' needs at least 2 images, got ${brackets.length}`);
  const first = brackets[0]!;
  for (let i = 0; i < brackets.length; i++) {
    const b = brackets[i]!;
    if (b.format !== 'rgb8' && b.format !== 'rgbf32') throw new TypeError(`${fn}: 'brackets[${i}]' is ${b.format}, expected rgb8 or rgbf32`);
    if (b.format !== first.format) throw new TypeError(`${fn}: 'brackets[${i}]' is ${b.format}, brackets[0] is ${first.format}`);
    if (b.width !== first.width || b.height !== first.height) {
      throw new RangeError(`${fn}: 'brackets[${i}]' is ${b.width}x${b.height}, brackets[0] is ${first.width}x${first.height}`);
    }
  }
}

/** The first non-finite sample of a float image, for the error message (the hot loop only notices that there is one). */
function nonFiniteError(fn: string, name: string, image: ImageView): RangeError {
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      for (let c = 0; c < 3; c++) {
        const v = image.get(x, y, c);
        if (!Number.isFinite(v)) return new RangeError(`${fn}: '${name}' has ${v} at pixel (${x}, ${y}) channel ${c}`);
      }
    }
  }
  return new RangeError(`${fn}: '${name}' has a non-finite value`);
}

/**
 * Row `y` of `image`: grey into ring slot y % 3 of `greyRing` (3 rows of width), saturation x
 * well-exposedness into `weight`. Returns false if the row holds a non-finite value.
 */
function weightRowPointwise(image: ImageView, y: number, greyRing: Float32Array, weight: Float32Array): boolean {
  const { width: w, data, pixelStride: ps } = image;
  let s = image.offset + y * image.rowStride;
  const g0 = (y % 3) * w;
  const p0 = y * w;
  if (image.format === 'rgb8') {
    for (let x = 0; x < w; x++, s += ps) {
      const cr = data[s]!;
      const cg = data[s + 1]!;
      const cb = data[s + 2]!;
      const r = cr * (1 / 255);
      const g = cg * (1 / 255);
      const b = cb * (1 / 255);
      greyRing[g0 + x] = GREY_R * r + GREY_G * g + GREY_B * b;
      const mean = (r + g + b) * (1 / 3);
      const dr = r - mean;
      const dg = g - mean;
      const db = b - mean;
      // For a grey pixel this is ~1e-17 in doubles; OpenCV's float32 residue is added instead,
      // without a branch (grey pixels come in unpredictable runs).
      const differ = (cr ^ cg) | (cg ^ cb);
      const grey = 1 - ((differ | -differ) >>> 31);
      const saturation = Math.sqrt(dr * dr + dg * dg + db * db) + grey * GREY_SATURATION_8[cr]!;
      weight[p0 + x] = saturation * WELL_EXPOSED_8[cr]! * WELL_EXPOSED_8[cg]! * WELL_EXPOSED_8[cb]!;
    }
    return true;
  }
  let finite = 0;
  for (let x = 0; x < w; x++, s += ps) {
    const r = data[s]!;
    const g = data[s + 1]!;
    const b = data[s + 2]!;
    const grey = GREY_R * r + GREY_G * g + GREY_B * b;
    greyRing[g0 + x] = grey;
    // NaN or an infinity in any channel makes this NaN: one test per row instead of three per pixel.
    finite += grey - grey;
    let saturation: number;
    if (r === g && g === b) saturation = greySaturation(r);
    else {
      const mean = (r + g + b) * (1 / 3);
      const dr = r - mean;
      const dg = g - mean;
      const db = b - mean;
      saturation = Math.sqrt(dr * dr + dg * dg + db * db);
    }
    const er = r - 0.5;
    const eg = g - 0.5;
    const eb = b - 0.5;
    weight[p0 + x] = saturation * Math.exp(-(er * er + eg * eg + eb * eb) * WELL_EXPOSED_INV_2VAR);
  }
  return finite === 0;
}

/** Row `y` of `weight` times |Laplacian| of grey (3x3, reflect-101, OpenCV's Laplacian with ksize 1), plus epsilon; grey rows y-1..y+1 are in the ring. */
function weightRowContrast(greyRing: Float32Array, weight: Float32Array, w: number, h: number, y: number): void {
  const up = (reflect101(y - 1, h) % 3) * w;
  const mid = (y % 3) * w;
  const down = (reflect101(y + 1, h) % 3) * w;
  const p0 = y * w;
  if (w === 1) {
    weight[p0] = Math.abs(greyRing[up]! + greyRing[down]! - 2 * greyRing[mid]!) * weight[p0]! + WEIGHT_EPSILON;
    return;
  }
  weight[p0] = Math.abs(greyRing[up]! + greyRing[down]! + 2 * greyRing[mid + 1]! - 4 * greyRing[mid]!) * weight[p0]! + WEIGHT_EPSILON;
  for (let x = 1; x < w - 1; x++) {
    const lap = greyRing[up + x]! + greyRing[down + x]! + greyRing[mid + x - 1]! + greyRing[mid + x + 1]! - 4 * greyRing[mid + x]!;
    weight[p0 + x] = Math.abs(lap) * weight[p0 + x]! + WEIGHT_EPSILON;
  }
  const x = w - 1;
  const lap = greyRing[up + x]! + greyRing[down + x]! + 2 * greyRing[mid + x - 1]! - 4 * greyRing[mid + x]!;
  weight[p0 + x] = Math.abs(lap) * weight[p0 + x]! + WEIGHT_EPSILON;
}

/** Row `y` of every weight plane divided by their sum there; `rowSum` is scratch of the width. */
function normalizeWeightRow(weights: readonly Float32Array[], count: number, w: number, y: number, rowSum: Float32Array): void {
  const p0 = y * w;
  // The usual two and three brackets in one pass each; other counts plane by plane.
  if (count === 2 || count === 3) {
    const a = weights[0]!;
    const b = weights[1]!;
    const c = weights[count - 1]!;
    const third = count === 3 ? 1 : 0;
    for (let p = p0; p < p0 + w; p++) {
      const inv = 1 / (a[p]! + b[p]! + third * c[p]!);
      a[p]! *= inv;
      b[p]! *= inv;
      if (third) c[p]! *= inv;
    }
    return;
  }
  const first = weights[0]!;
  for (let x = 0; x < w; x++) rowSum[x] = first[p0 + x]!;
  for (let i = 1; i < count; i++) {
    const plane = weights[i]!;
    for (let x = 0; x < w; x++) rowSum[x]! += plane[p0 + x]!;
  }
  for (let x = 0; x < w; x++) rowSum[x] = 1 / rowSum[x]!;
  for (let i = 0; i < count; i++) {
    const plane = weights[i]!;
    for (let x = 0; x < w; x++) plane[p0 + x]! *= rowSum[x]!;
  }
}

/** Kept columns x whose five taps 2x-2..2x+2 all lie inside a row of `sw`: x in [1, end). */
function interiorEnd(sw: number, dw: number): number {
  return Math.max(1, Math.min(dw, ((sw - 3) >> 1) + 1));
}

/** Source rows in flight while downsampling: the five taps of one kept row, reflected, lie within five consecutive rows. */
const DOWN_RING_ROWS = 5;

/**
 * Vertical half of pyrDown for kept row `y`: rows 2y-2..2y+2 (reflect-101) of the `ring` of
 * horizontally filtered rows (slot = row % 5, dw wide, unscaled) into row y of `dst`, times `scale`.
 */
function pyrDownRow(ring: Float32Array, sh: number, dw: number, y: number, dst: Float32Array, scale: number): void {
  const r0 = (reflect101(2 * y - 2, sh) % DOWN_RING_ROWS) * dw;
  const r1 = (reflect101(2 * y - 1, sh) % DOWN_RING_ROWS) * dw;
  const r2 = (reflect101(2 * y, sh) % DOWN_RING_ROWS) * dw;
  const r3 = (reflect101(2 * y + 1, sh) % DOWN_RING_ROWS) * dw;
  const r4 = (reflect101(2 * y + 2, sh) % DOWN_RING_ROWS) * dw;
  const d = y * dw;
  for (let x = 0; x < dw; x++) {
    dst[d + x] = (ring[r0 + x]! + ring[r4 + x]! + 4 * (ring[r1 + x]! + ring[r3 + x]!) + 6 * ring[r2 + x]!) * scale;
  }
}

/**
 * Horizontal half of pyrDown for row `y` of `src` (sw wide): the kept columns filtered with
 * [1 4 6 4 1] (unscaled), reflect-101, into ring slot y % 5 of `ring` (dw wide).
 */
function pyrDownFilterRow(src: Float32Array, sw: number, y: number, ring: Float32Array): void {
  const dw = (sw + 1) >> 1;
  const xEnd = interiorEnd(sw, dw);
  const s = y * sw;
  const t = (y % DOWN_RING_ROWS) * dw;
  // Border columns (x = 0 and from xEnd on) go through reflect101; the interior does not.
  for (let x = 0; x < dw; x = x === 0 ? xEnd : x + 1) {
    const c = 2 * x;
    ring[t + x] =
      src[s + reflect101(c - 2, sw)]! +
      4 * (src[s + reflect101(c - 1, sw)]! + src[s + reflect101(c + 1, sw)]!) +
      6 * src[s + reflect101(c, sw)]! +
      src[s + reflect101(c + 2, sw)]!;
  }
  if (xEnd === 1) return; // no interior (sw < 5), and no loads past the row
  // Consecutive kept columns share three taps: carry them, load two.
  let a = src[s]!;
  let b = src[s + 1]!;
  let c = src[s + 2]!;
  for (let x = 1, i = s + 2; x < xEnd; x++, i += 2) {
    const d = src[i + 1]!;
    const e = src[i + 2]!;
    ring[t + x] = a + e + 4 * (b + d) + 6 * c;
    a = c;
    b = d;
    c = e;
  }
}

/**
 * OpenCV's pyrDown: `src` (sw x sh) blurred with [1 4 6 4 1]/16 both ways, reflect-101, every
 * other row and column kept, into `dst` ((sw+1)>>1 x (sh+1)>>1). Only kept columns are filtered
 * horizontally, into `ring` (5 rows of dw, so they stay in cache), and only kept rows vertically.
 */
function pyrDown(src: Float32Array, sw: number, sh: number, dst: Float32Array, ring: Float32Array): void {
  const dw = (sw + 1) >> 1;
  const dh = (sh + 1) >> 1;
  let filtered = -1;
  for (let dy = 0; dy < dh; dy++) {
    for (const last = Math.min(2 * dy + 2, sh - 1); filtered < last; ) pyrDownFilterRow(src, sw, ++filtered, ring);
    pyrDownRow(ring, sh, dw, dy, dst, 1 / 256);
  }
}

/**
 * Horizontal half of pyrDown for row `y` of a bracket, straight from its pixels (no float copy of
 * level 0): R, G, B into ring slot y % 5 of `rings` (three, dw wide). rgb8 codes are filtered as
 * integers (scaled by 1/255 in the vertical half).
 */
function pyrDownFilterImageRow(image: ImageView, y: number, rings: readonly Float32Array[]): void {
  const { width: sw, data, pixelStride: ps } = image;
  const dw = (sw + 1) >> 1;
  const xEnd = interiorEnd(sw, dw);
  const tr = rings[0]!;
  const tg = rings[1]!;
  const tb = rings[2]!;
  const ps2 = 2 * ps;
  const s0 = image.offset + y * image.rowStride;
  const t = (y % DOWN_RING_ROWS) * dw;
  for (let x = 0; x < dw; x = x === 0 ? xEnd : x + 1) {
    const a = s0 + reflect101(2 * x - 2, sw) * ps;
    const b = s0 + reflect101(2 * x - 1, sw) * ps;
    const c = s0 + reflect101(2 * x, sw) * ps;
    const d = s0 + reflect101(2 * x + 1, sw) * ps;
    const e = s0 + reflect101(2 * x + 2, sw) * ps;
    tr[t + x] = data[a]! + data[e]! + 4 * (data[b]! + data[d]!) + 6 * data[c]!;
    tg[t + x] = data[a + 1]! + data[e + 1]! + 4 * (data[b + 1]! + data[d + 1]!) + 6 * data[c + 1]!;
    tb[t + x] = data[a + 2]! + data[e + 2]! + 4 * (data[b + 2]! + data[d + 2]!) + 6 * data[c + 2]!;
  }
  if (xEnd === 1) return; // no interior (sw < 5), and no loads past the row
  // Consecutive kept columns share three taps: carry them, load two (per channel).
  let ra = data[s0]!;
  let ga = data[s0 + 1]!;
  let ba = data[s0 + 2]!;
  let rb = data[s0 + ps]!;
  let gb = data[s0 + ps + 1]!;
  let bb = data[s0 + ps + 2]!;
  let rc = data[s0 + ps2]!;
  let gc = data[s0 + ps2 + 1]!;
  let bc = data[s0 + ps2 + 2]!;
  for (let x = 1, s = s0 + ps2; x < xEnd; x++, s += ps2) {
    const rd = data[s + ps]!;
    const gd = data[s + ps + 1]!;
    const bd = data[s + ps + 2]!;
    const re = data[s + ps2]!;
    const ge = data[s + ps2 + 1]!;
    const be = data[s + ps2 + 2]!;
    tr[t + x] = ra + re + 4 * (rb + rd) + 6 * rc;
    tg[t + x] = ga + ge + 4 * (gb + gd) + 6 * gc;
    tb[t + x] = ba + be + 4 * (bb + bd) + 6 * bc;
    ra = rc;
    ga = gc;
    ba = bc;
    rb = rd;
    gb = gd;
    bb = bd;
    rc = re;
    gc = ge;
    bc = be;
  }
}

/**
 * Vertical half of OpenCV's pyrUp for destination row `y` from a source of sh rows (dw elements
 * apart): the source rows' offsets and weights, (1 6 1)/64 for even rows, (0 4 4)/64 for odd ones
 * (x8 = unit gain; the callers apply the horizontal half). Borders as OpenCV: row -1 is row 1 and
 * row sh is row sh - 1 (reflect-101 in the upsampled grid).
 */
function pyrUpTaps(sh: number, dw: number, y: number, taps: Float64Array): void {
  const k = y >> 1;
  const next = Math.min(k + 1, sh - 1) * dw;
  if ((y & 1) === 0) {
    taps[0] = (k === 0 ? (sh > 1 ? 1 : 0) : k - 1) * dw;
    taps[1] = k * dw;
    taps[2] = next;
    taps[3] = 1 / 64;
    taps[4] = 6 / 64;
    taps[5] = 1 / 64;
  } else {
    taps[0] = k * dw;
    taps[1] = k * dw;
    taps[2] = next;
    taps[3] = 0;
    taps[4] = 4 / 64;
    taps[5] = 4 / 64;
  }
}

/**
 * Mertens fusion for one image size, holding every buffer it needs: build it once per stream and
 * call `fuse` per frame. Not reentrant (calls share the buffers).
 *
 * The blend is computed in an equivalent order that saves full-size passes: with B_l the blended
 * Laplacian band and C_l the collapsed result at level l, C_l = B_l + up(C_{l+1}), and since the
 * brackets' weight pyramids sum to one at every level,
 *   C_l = sum_i Wg_i,l * (G_i,l + up(C_{l+1} - G_i,l+1)).
 * So the coarse levels are collapsed first (a quarter of the pixels and less), and level 0 is one
 * pass over the output that reads the brackets' pixels directly: no full-size band pyramid, no
 * full-size collapse, no float copy of the brackets.
 */
export class ExposureFusion {
  readonly width: number;
  readonly height: number;
  /** Pyramid depth in halvings. */
  readonly levels: number;
  readonly #levelWidth: number[] = [];
  readonly #levelHeight: number[] = [];
  /** Per bracket, three rows of grey for the Laplacian. */
  readonly #greyRings: Float32Array[] = [];
  readonly #rowSum: Float32Array;
  /** One full-size weight plane per bracket. */
  readonly #weights: Float32Array[] = [];
  /** Per bracket: Gaussian pyramids from level 1 of R, G, B ([bracket][channel][level - 1]) and of the weight ([bracket][level - 1]). */
  readonly #image: Float32Array[][][] = [];
  readonly #weightPyramid: Float32Array[][] = [];
  /** Per bracket, C_1 - G_i,1 (level 1, RGB interleaved): the detail the level-0 pass upsamples. */
  readonly #detail: Float32Array[] = [];
  /** The collapsed result per channel at levels 1..levels ([channel][level - 1]). */
  readonly #collapsed: Float32Array[][] = [[], [], []];
  readonly #rings: Float32Array[];
  /** Per bracket, pyrDown rings for R, G, B and the weight, for level 1 streamed from the weight rows. */
  readonly #downRings: Float32Array[][] = [];
  /** The detail of a 0-level pyramid: one level-1-sized row of zeros. */
  readonly #zeroDetail: Float32Array;
  /** One output row being accumulated over the brackets. */
  readonly #accRow: Float64Array;
  readonly #taps = new Float64Array(6);

  constructor(width: number, height: number, options: FusionOptions = {}) {
    if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
      throw new RangeError(`ExposureFusion: size must be positive integers, got ${width}x${height}`);
    }
    const maxLevels = defaultFusionLevels(width, height);
    const levels = options.levels ?? maxLevels;
    if (!Number.isInteger(levels) || levels < 0 || levels > maxLevels) {
      throw new RangeError(`ExposureFusion: 'levels' must be an integer in [0, ${maxLevels}] for ${width}x${height}, got ${levels}`);
    }
    this.width = width;
    this.height = height;
    this.levels = levels;
    for (let l = 0, w = width, h = height; l <= levels; l++, w = (w + 1) >> 1, h = (h + 1) >> 1) {
      this.#levelWidth.push(w);
      this.#levelHeight.push(h);
      if (l > 0) for (let c = 0; c < 3; c++) this.#collapsed[c]!.push(new Float32Array(w * h));
    }
    this.#rowSum = new Float32Array(width);
    // pyrDown's ring of horizontally filtered rows for the coarser levels.
    this.#rings = [new Float32Array(DOWN_RING_ROWS * ((width + 1) >> 1))];
    this.#zeroDetail = new Float32Array(((width + 1) >> 1) * 3);
    this.#accRow = new Float64Array(width * 3);
  }

  /** Buffers for at least `count` brackets (allocated on first use of that many). */
  #reserve(count: number): void {
    const n = this.width * this.height;
    while (this.#weights.length < count) {
      this.#weights.push(new Float32Array(n));
      this.#greyRings.push(new Float32Array(3 * this.width));
      const ringSize = DOWN_RING_ROWS * ((this.width + 1) >> 1);
      this.#downRings.push([0, 1, 2, 3].map(() => new Float32Array(ringSize)));
      const channels: Float32Array[][] = [[], [], []];
      const weightLevels: Float32Array[] = [];
      for (let l = 1; l <= this.levels; l++) {
        const size = this.#levelWidth[l]! * this.#levelHeight[l]!;
        for (const channel of channels) channel.push(new Float32Array(size));
        weightLevels.push(new Float32Array(size));
      }
      this.#image.push(channels);
      this.#weightPyramid.push(weightLevels);
      this.#detail.push(new Float32Array(this.levels > 0 ? this.#levelWidth[1]! * this.#levelHeight[1]! * 3 : 0));
    }
  }

  /**
   * The normalized Mertens weights of `brackets`, one full-size plane each, summing to one at every
   * pixel. The planes are this object's buffers: valid until the next call. `fn` names the caller
   * in error messages.
   */
  weights(brackets: readonly ImageView[], fn = 'ExposureFusion.weights'): Float32Array[] {
    checkBrackets(fn, brackets);
    const first = brackets[0]!;
    if (first.width !== this.width || first.height !== this.height) {
      throw new RangeError(`${fn}: 'brackets[0]' is ${first.width}x${first.height}, this ExposureFusion is for ${this.width}x${this.height}`);
    }
    this.#reserve(brackets.length);
    this.#weightRows(brackets, fn, undefined);
    return this.#weights.slice(0, brackets.length);
  }

  /**
   * The normalized weights of `brackets`, row by row through all brackets so that a row is
   * normalized while in cache (contrast needs the grey row below, so rows finish one behind);
   * `finished(y)` runs as row y is final, while the brackets' row y is in cache too.
   */
  #weightRows(brackets: readonly ImageView[], fn: string, finished: ((y: number) => void) | undefined): void {
    const { width: w, height: h } = this;
    const count = brackets.length;
    for (let y = 0; y <= h; y++) {
      for (let i = 0; i < count && y < h; i++) {
        if (!weightRowPointwise(brackets[i]!, y, this.#greyRings[i]!, this.#weights[i]!)) throw nonFiniteError(fn, `brackets[${i}]`, brackets[i]!);
      }
      if (y === 0) continue;
      for (let i = 0; i < count; i++) weightRowContrast(this.#greyRings[i]!, this.#weights[i]!, w, h, y - 1);
      normalizeWeightRow(this.#weights, count, w, y - 1, this.#rowSum);
      finished?.(y - 1);
    }
  }

  /**
   * Fuses `brackets` (rgb8, or rgbf32 encoded in [0, 1]; all this object's size) into packed rgbf32
   * encoded in [0, 1], clamped. Writes into `out` (width * height * 3 floats) when given, else
   * into a new array. `fn` names the caller in error messages.
   */
  fuse(brackets: readonly ImageView[], out?: Float32Array, fn = 'ExposureFusion.fuse'): ImageView {
    const { width: w, height: h, levels } = this;
    const result = out ?? new Float32Array(w * h * 3);
    if (result.length < w * h * 3) throw new RangeError(`${fn}: 'out' has ${result.length} floats, ${w}x${h} rgbf32 needs ${w * h * 3}`);
    checkBrackets(fn, brackets);
    const first = brackets[0]!;
    if (first.width !== w || first.height !== h) {
      throw new RangeError(`${fn}: 'brackets[0]' is ${first.width}x${first.height}, this ExposureFusion is for ${w}x${h}`);
    }
    const count = brackets.length;
    this.#reserve(count);
    const weights = this.#weights;
    const lw = this.#levelWidth;
    const lh = this.#levelHeight;
    // Level 1 of every bracket's image and weight, downsampled as the weight rows are finished,
    // while the brackets' rows and the weights' are still in cache.
    const scale = first.format === 'rgb8' ? 1 / (256 * 255) : 1 / 256;
    let nextRow = 0; // next level-1 row to emit
    const downsample =
      levels === 0
        ? undefined
        : (y: number): void => {
            for (let i = 0; i < count; i++) {
              const rings = this.#downRings[i]!;
              pyrDownFilterImageRow(brackets[i]!, y, rings);
              pyrDownFilterRow(weights[i]!, w, y, rings[3]!);
            }
            // Level-1 row dy needs rows up to 2dy + 2 (reflected at the bottom).
            for (; nextRow < lh[1]! && Math.min(2 * nextRow + 2, h - 1) <= y; nextRow++) {
              for (let i = 0; i < count; i++) {
                const rings = this.#downRings[i]!;
                const image = this.#image[i]!;
                for (let c = 0; c < 3; c++) pyrDownRow(rings[c]!, h, lw[1]!, nextRow, image[c]![0]!, scale);
                pyrDownRow(rings[3]!, h, lw[1]!, nextRow, this.#weightPyramid[i]![0]!, 1 / 256);
              }
            }
          };
    this.#weightRows(brackets, fn, downsample);
    // The coarser levels from level 1.
    const ring = this.#rings[0]!;
    for (let i = 0; i < count; i++) {
      const image = this.#image[i]!;
      const wp = this.#weightPyramid[i]!;
      for (let l = 1; l < levels; l++) {
        for (let c = 0; c < 3; c++) pyrDown(image[c]![l - 1]!, lw[l]!, lh[l]!, image[c]![l]!, ring);
        pyrDown(wp[l - 1]!, lw[l]!, lh[l]!, wp[l]!, ring);
      }
    }
    if (levels > 0) this.#collapseCoarse(count);
    this.#level0(brackets, weights, result);
    return ImageView.packed(w, h, 'rgbf32', result);
  }

  /** C_l for l = levels..1: the top is the weighted sum of the brackets' top Gaussians, each lower level as in the class comment. */
  #collapseCoarse(count: number): void {
    const { levels } = this;
    const lw = this.#levelWidth;
    const lh = this.#levelHeight;
    const taps = this.#taps;
    for (let l = levels; l >= 1; l--) {
      const w = lw[l]!;
      const h = lh[l]!;
      for (let c = 0; c < 3; c++) {
        const collapsed = this.#collapsed[c]![l - 1]!;
        for (let i = 0; i < count; i++) {
          const g = this.#image[i]![c]![l - 1]!;
          const wg = this.#weightPyramid[i]![l - 1]!;
          if (l === levels) {
            const n = w * h;
            if (i === 0) for (let p = 0; p < n; p++) collapsed[p] = wg[p]! * g[p]!;
            else for (let p = 0; p < n; p++) collapsed[p]! += wg[p]! * g[p]!;
            continue;
          }
          const sw = lw[l + 1]!;
          const sh = lh[l + 1]!;
          const next = this.#collapsed[c]![l]!;
          const gNext = this.#image[i]![c]![l]!;
          if (i === 0) collapsed.fill(0);
          for (let y = 0; y < h; y++) {
            pyrUpTaps(sh, sw, y, taps);
            // pyrUpTaps' weights carry a horizontal x8 that blendRowPlanar normalizes itself.
            blendRowPlanar(g, wg, next, gNext, w, y, taps[0]!, taps[1]!, taps[2]!, taps[3]! * 8, taps[4]! * 8, taps[5]! * 8, collapsed);
          }
        }
      }
    }
  }

  /** C_1 - G_i,1, the detail level 0 upsamples for bracket i, RGB interleaved. */
  #fillDetail(i: number): void {
    const n = this.#levelWidth[1]! * this.#levelHeight[1]!;
    const detail = this.#detail[i]!;
    for (let c = 0; c < 3; c++) {
      const collapsed = this.#collapsed[c]![0]!;
      const g = this.#image[i]![c]![0]!;
      for (let p = 0, j = c; p < n; p++, j += 3) detail[j] = collapsed[p]! - g[p]!;
    }
  }

  /**
   * Level 0: out = sum_i W_i * (G_i,0 + up(C_1 - G_i,1)), row by row, clamped to [0, 1]. The
   * upsampling is done inside the blend, sliding along the row: each level-1 column is combined
   * vertically once per output row and then serves two output pixels horizontally.
   */
  #level0(brackets: readonly ImageView[], weights: readonly Float32Array[], out: Float32Array): void {
    const { width: w, height: h, levels } = this;
    const count = brackets.length;
    const w1 = (w + 1) >> 1;
    const h1 = levels > 0 ? this.#levelHeight[1]! : 1;
    const taps = this.#taps;
    if (levels > 0) for (let i = 0; i < count; i++) this.#fillDetail(i);
    for (let y = 0; y < h; y++) {
      let ra = 0;
      let rb = 0;
      let rd = 0;
      let ka = 0;
      let kb = 0;
      let kd = 0;
      if (levels > 0) {
        pyrUpTaps(h1, w1 * 3, y, taps);
        ra = taps[0]!;
        rb = taps[1]!;
        rd = taps[2]!;
        // pyrUpTaps' weights carry the horizontal pass's x8, which blendRow normalizes itself.
        ka = taps[3]! * 8;
        kb = taps[4]! * 8;
        kd = taps[5]! * 8;
      }
      // The row accumulates in doubles (no float32 rounding per bracket) and is clamped into `out`.
      const acc = this.#accRow;
      acc.fill(0);
      for (let i = 0; i < count; i++) {
        const e = levels > 0 ? this.#detail[i]! : this.#zeroDetail;
        blendRow(brackets[i]!, y, weights[i]!, e, ra, rb, rd, ka, kb, kd, acc);
      }
      for (let j = 0, o = y * w * 3; j < w * 3; j++) {
        const value = acc[j]!;
        out[o + j] = value < 0 ? 0 : value > 1 ? 1 : value;
      }
    }
  }
}

/**
 * Row `y` of `acc` (one channel of a level, w wide) += wg * (g + pyrUp(next - gNext)), next and
 * gNext being that channel at the next level (ceil(w/2) wide): vertically its rows at offsets ra,
 * rb, rd weighted ka, kb, kd, then horizontally as in blendRow.
 */
function blendRowPlanar(
  g: Float32Array,
  wg: Float32Array,
  next: Float32Array,
  gNext: Float32Array,
  w: number,
  y: number,
  ra: number,
  rb: number,
  rd: number,
  ka: number,
  kb: number,
  kd: number,
  acc: Float32Array,
): void {
  const sw = (w + 1) >> 1;
  const o = y * w;
  const m0 = sw > 1 ? 1 : 0;
  let prev = ka * (next[ra + m0]! - gNext[ra + m0]!) + kb * (next[rb + m0]! - gNext[rb + m0]!) + kd * (next[rd + m0]! - gNext[rd + m0]!);
  let cur = ka * (next[ra]! - gNext[ra]!) + kb * (next[rb]! - gNext[rb]!) + kd * (next[rd]! - gNext[rd]!);
  for (let m = 0, x = 0; m < sw; m++, x += 2) {
    const mn = m + 1 < sw ? m + 1 : m;
    const after = ka * (next[ra + mn]! - gNext[ra + mn]!) + kb * (next[rb + mn]! - gNext[rb + mn]!) + kd * (next[rd + mn]! - gNext[rd + mn]!);
    acc[o + x]! += wg[o + x]! * (g[o + x]! + (prev + 6 * cur + after) * 0.125);
    if (x + 1 < w) acc[o + x + 1]! += wg[o + x + 1]! * (g[o + x + 1]! + (cur + after) * 0.5);
    prev = cur;
    cur = after;
  }
}

/**
 * `acc` (one output row) += weight * (row `y` of the bracket (rgb8 or rgbf32) + pyrUp of the level-1 detail `e`, RGB
 * interleaved, ceil(w/2) wide): vertically the rows at offsets ra, rb, rd weighted ka, kb, kd, then
 * horizontally (1 6 1)/8 and (1 1)/2 with OpenCV's borders v[-1] = v[1], v[w1] = v[w1 - 1]. The
 * previous, current and next vertical sums slide along in locals.
 */
function blendRow(
  image: ImageView,
  y: number,
  weight: Float32Array,
  e: Float32Array,
  ra: number,
  rb: number,
  rd: number,
  ka: number,
  kb: number,
  kd: number,
  acc: Float64Array,
): void {
  const { width: w, data, pixelStride: ps } = image;
  // Bracket values in [0, 1]: 8-bit codes scaled, floats as they are.
  const unit = image.format === 'rgb8' ? 1 / 255 : 1;
  const w1 = (w + 1) >> 1;
  const p0 = y * w;
  let s = image.offset + y * image.rowStride;
  const j0 = w1 > 1 ? 3 : 0;
  let pr = ka * e[ra + j0]! + kb * e[rb + j0]! + kd * e[rd + j0]!;
  let pg = ka * e[ra + j0 + 1]! + kb * e[rb + j0 + 1]! + kd * e[rd + j0 + 1]!;
  let pb = ka * e[ra + j0 + 2]! + kb * e[rb + j0 + 2]! + kd * e[rd + j0 + 2]!;
  let cr = ka * e[ra]! + kb * e[rb]! + kd * e[rd]!;
  let cg = ka * e[ra + 1]! + kb * e[rb + 1]! + kd * e[rd + 1]!;
  let cb = ka * e[ra + 2]! + kb * e[rb + 2]! + kd * e[rd + 2]!;
  for (let m = 0, x = 0, j = 0; m < w1; m++, x += 2, j += 3) {
    const jn = m + 1 < w1 ? j + 3 : j;
    const nr = ka * e[ra + jn]! + kb * e[rb + jn]! + kd * e[rd + jn]!;
    const ng = ka * e[ra + jn + 1]! + kb * e[rb + jn + 1]! + kd * e[rd + jn + 1]!;
    const nb = ka * e[ra + jn + 2]! + kb * e[rb + jn + 2]! + kd * e[rd + jn + 2]!;
    const q = 3 * x;
    // Even output on the level-1 sample, (1 6 1)/8; odd one halfway to the next, (1 1)/2.
    let wt = weight[p0 + x]!;
    acc[q]! += wt * (data[s]! * unit + (pr + 6 * cr + nr) * 0.125);
    acc[q + 1]! += wt * (data[s + 1]! * unit + (pg + 6 * cg + ng) * 0.125);
    acc[q + 2]! += wt * (data[s + 2]! * unit + (pb + 6 * cb + nb) * 0.125);
    s += ps;
    if (x + 1 < w) {
      wt = weight[p0 + x + 1]!;
      acc[q + 3]! += wt * (data[s]! * unit + (cr + nr) * 0.5);
      acc[q + 4]! += wt * (data[s + 1]! * unit + (cg + ng) * 0.5);
      acc[q + 5]! += wt * (data[s + 2]! * unit + (cb + nb) * 0.5);
      s += ps;
    }
    pr = cr;
    pg = cg;
    pb = cb;
    cr = nr;
    cg = ng;
    cb = nb;
  }
}


/** One ExposureFusion kept for the last size fused, so a stream through fuseExposures allocates its buffers once. */
let cachedFusion: ExposureFusion | undefined;

function fusionFor(width: number, height: number, levels: number | undefined): ExposureFusion {
  const want = levels ?? defaultFusionLevels(width, height);
  if (cachedFusion?.width !== width || cachedFusion.height !== height || cachedFusion.levels !== want) {
    cachedFusion = new ExposureFusion(width, height, { levels: want });
  }
  return cachedFusion;
}

/** The normalized Mertens weights of `brackets` (new arrays), one per bracket, summing to one at every pixel. */
export function mertensWeights(brackets: readonly ImageView[]): Float32Array[] {
  checkBrackets('mertensWeights', brackets);
  const { width, height } = brackets[0]!;
  return fusionFor(width, height, undefined)
    .weights(brackets, 'mertensWeights')
    .map((plane) => plane.slice());
}

/**
 * Mertens exposure fusion of two or more brackets of one scene: rgb8, or rgbf32 encoded in [0, 1],
 * all the same size and format. Returns a new packed rgbf32 image encoded in [0, 1] (callers
 * quantize). Reuses the buffers of the previous call when the size is the same; for several streams
 * of different sizes keep one `ExposureFusion` each.
 */
export function fuseExposures(brackets: readonly ImageView[], options: FusionOptions = {}): ImageView {
  checkBrackets('fuseExposures', brackets);
  const { width, height } = brackets[0]!;
  const maxLevels = defaultFusionLevels(width, height);
  const { levels } = options;
  if (levels !== undefined && (!Number.isInteger(levels) || levels < 0 || levels > maxLevels)) {
    throw new RangeError(`fuseExposures: 'levels' must be an integer in [0, ${maxLevels}] for ${width}x${height}, got ${levels}`);
  }
  return fusionFor(width, height, levels).fuse(brackets, undefined, 'fuseExposures');
}

/** Default virtual exposures of toneMapLocal: the frame itself and one 1.5 stops brighter for the shadows. */
export const DEFAULT_TONE_MAP_EV: readonly number[] = [0, 1.5];

export interface ToneMapOptions extends FusionOptions {
  /** Virtual exposures in stops, applied in linear light. Default DEFAULT_TONE_MAP_EV. At least two. */
  evStops?: readonly number[];
  /** 'rgbf32' (default, encoded [0, 1], like fuseExposures) or 'rgb8' (rounded). */
  output?: 'rgbf32' | 'rgb8';
}

/**
 * Single-frame local tone mapping for SDR frames (rgb8, or rgbf32 encoded in [0, 1]): virtual
 * exposures of the frame made in linear light (x 2^ev, clipped at 1, re-encoded with the sRGB
 * curve) and fused with fuseExposures. Shadows take the brighter exposure's detail while highlights,
 * clipped there, keep the original's; 0 EV is the frame itself.
 */
export function toneMapLocal(image: ImageView, options: ToneMapOptions = {}): ImageView {
  const fn = 'toneMapLocal';
  if (image.format !== 'rgb8' && image.format !== 'rgbf32') throw new TypeError(`${fn}: 'image' is ${image.format}, expected rgb8 or rgbf32`);
  const evStops = options.evStops ?? DEFAULT_TONE_MAP_EV;
  if (evStops.length < 2) throw new RangeError(`${fn}: 'evStops' needs at least 2 stops, got ${evStops.length}`);
  evStops.forEach((ev, i) => {
    if (!Number.isFinite(ev)) throw new RangeError(`${fn}: 'evStops[${i}]' must be finite, got ${ev}`);
  });
  const output = options.output ?? 'rgbf32';
  if (output !== 'rgbf32' && output !== 'rgb8') throw new TypeError(`${fn}: 'output' must be 'rgbf32' or 'rgb8', got '${String(output)}'`);
  const { width: w, height: h } = image;
  const brackets = evStops.map((ev) => (ev === 0 ? image : exposeInLinearLight(fn, image, 2 ** ev)));
  const { levels } = options;
  const maxLevels = defaultFusionLevels(w, h);
  if (levels !== undefined && (!Number.isInteger(levels) || levels < 0 || levels > maxLevels)) {
    throw new RangeError(`${fn}: 'levels' must be an integer in [0, ${maxLevels}] for ${w}x${h}, got ${levels}`);
  }
  const fused = fusionFor(w, h, levels).fuse(brackets, undefined, fn);
  if (output === 'rgbf32') return fused;
  const src = fused.data;
  const bytes = new Uint8Array(w * h * 3);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.round(src[i]! * 255);
  return ImageView.packed(w, h, 'rgb8', bytes);
}
