/**
 * Raw detector outputs -> `Detection`s in source pixels. Each decoder works on the model's tensors
 * as flat Float32Arrays plus their dims, maps boxes from input pixels through the letterbox transform
 * and applies the score threshold; NMS (nms.ts) is a separate step.
 */
import type { TensorLayout } from './model-card.js';
import { boxToSource, type LetterboxTransform } from './preprocess.js';
import { hudClassOf, type Box, type Detection } from './types.js';

export interface DecodeOptions {
  /** Detections scoring below this are dropped (score >= scoreThreshold is kept). Default 0. */
  scoreThreshold?: number;
  /** Class names by id; a missing name becomes the id as a string. */
  classes?: readonly string[];
}

export interface CenterNetOptions extends DecodeOptions {
  /** Layout of both heat-map and sizes: nhwc [1, H, W, C] / [1, H, W, 4] or nchw [1, C, H, W] / [1, 4, H, W]. */
  layout: TensorLayout;
  /** Input pixels per heat-map cell (4 for the 512 -> 128 CenterNet). */
  stride: number;
  /** Peaks kept (the graph's TopKV2 k, 100 in the original). */
  maxDetections: number;
}

function makeDetection(classId: number, score: number, box: Box, t: LetterboxTransform, classes: readonly string[] | undefined): Detection {
  const className = classes?.[classId] ?? String(classId);
  const detection: Detection = { classId, className, score, box: boxToSource(box, t) };
  const hudClass = hudClassOf(className);
  if (hudClass !== undefined) detection.hudClass = hudClass;
  return detection;
}

function checkTensor(where: string, name: string, data: Float32Array, dims: readonly number[], rank: number): void {
  if (!(data instanceof Float32Array)) throw new TypeError(`${where}: '${name}' must be a Float32Array, got ${Object.prototype.toString.call(data)}`);
  if (dims.length !== rank || dims.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new RangeError(`${where}: '${name}' dims must be ${rank} positive integers, got [${dims.join(', ')}]`);
  }
  if (dims[0] !== 1) throw new RangeError(`${where}: '${name}' batch must be 1, got [${dims.join(', ')}]`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new RangeError(`${where}: '${name}' has ${data.length} elements, dims [${dims.join(', ')}] need ${count}`);
}

// --- CenterNet -------------------------------------------------------------------------------

/** Top-k scratch (grown on demand, reused across calls): a heap of candidates, worst at the root. */
let _heapScore = new Float64Array(128);
let _heapIndex = new Int32Array(128);

function growHeap(k: number): void {
  if (_heapScore.length >= k) return;
  _heapScore = new Float64Array(k);
  _heapIndex = new Int32Array(k);
}

/** Whether candidate a ranks below candidate b: lower score, or the same score and a later NHWC index. */
function worse(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa < sb || (sa === sb && ia > ib);
}

function siftDown(size: number, start: number): void {
  const s = _heapScore, idx = _heapIndex;
  let i = start;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) return;
    let m = l;
    const r = l + 1;
    if (r < size && worse(s[r]!, idx[r]!, s[l]!, idx[l]!)) m = r;
    if (!worse(s[m]!, idx[m]!, s[i]!, idx[i]!)) return;
    const ts = s[i]!, ti = idx[i]!;
    s[i] = s[m]!;
    idx[i] = idx[m]!;
    s[m] = ts;
    idx[m] = ti;
    i = m;
  }
}

function siftUp(pos: number): void {
  const s = _heapScore, idx = _heapIndex;
  let i = pos;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!worse(s[i]!, idx[i]!, s[p]!, idx[p]!)) return;
    const ts = s[i]!, ti = idx[i]!;
    s[i] = s[p]!;
    idx[i] = idx[p]!;
    s[p] = ts;
    idx[p] = ti;
    i = p;
  }
}

/**
 * Decodes CenterNet heat-map + sizes exactly as the original tfjs graph
 * (@vladmandic/human models/centernet.json) turns tower_0/keypoints + tower_0/wh into
 * tower_0/detections, then maps boxes to source pixels through `transform`:
 *
 * 1. MaxPool 3x3, stride 1, SAME; Equal(keypoints, pooled) -> Cast -> Mul: a cell keeps its value
 *    when it is >= each of its (in-image) 3x3 neighbours of the same class, else becomes 0.
 * 2. Reshape [1, -1] (NHWC order: flat = (y * W + x) * C + c); TopKV2 k = maxDetections, sorted:
 *    largest first, equal values in ascending flat index.
 * 3. FloorDiv / FloorMod: c = flat mod C, x = (flat div C) mod W, y = flat div C div W.
 * 4. GatherV2 of wh at y * W + x (wh reshaped [H*W, 4]); StridedSlice into its 4 columns;
 *    x1 = x * stride - wh0, y1 = y * stride - wh1, x2 = x * stride + wh2, y2 = y * stride + wh3
 *    (float32 arithmetic; wh is already in input pixels: the graph multiplies the head by 16
 *    before tower_0/wh). ConcatV2 [x1, y1, x2, y2, score, class].
 *
 * Non-peaks take part in the TopK with value 0, so with fewer than k positive peaks the list is
 * filled up with zero-score cells in flat-index order, as in the graph. Each box is then mapped to
 * source pixels; entries below `scoreThreshold` are dropped. Order is the TopK order. For an NCHW
 * layout ties still break by the NHWC flat index, so both layouts give identical results.
 *
 * @param dims heat-map dims as the tensor reports them ([1, H, W, C] for nhwc, [1, C, H, W] for nchw).
 */
export function decodeCenterNet(
  heatmap: Float32Array,
  sizes: Float32Array,
  dims: readonly number[],
  transform: LetterboxTransform,
  options: CenterNetOptions,
): Detection[] {
  const where = 'decodeCenterNet';
  const { layout, stride, maxDetections, scoreThreshold = 0, classes } = options;
  if (layout !== 'nchw' && layout !== 'nhwc') throw new TypeError(`${where}: 'layout' must be 'nchw' or 'nhwc', got '${String(layout)}'`);
  if (!(stride > 0)) throw new RangeError(`${where}: 'stride' must be > 0, got ${stride}`);
  if (!Number.isInteger(maxDetections) || maxDetections < 1) throw new RangeError(`${where}: 'maxDetections' must be an integer >= 1, got ${maxDetections}`);
  checkTensor(where, 'heatmap', heatmap, dims, 4);
  const nhwc = layout === 'nhwc';
  const H = nhwc ? dims[1]! : dims[2]!;
  const W = nhwc ? dims[2]! : dims[3]!;
  const C = nhwc ? dims[3]! : dims[1]!;
  checkTensor(where, 'sizes', sizes, nhwc ? [1, H, W, 4] : [1, 4, H, W], 4);
  const cells = H * W;
  const total = cells * C;
  const k = Math.min(maxDetections, total);
  growHeap(k);
  const hs = _heapScore, hi = _heapIndex;
  let size = 0;
  // The heap root (the current k-th best), kept in locals for the hot loop.
  let rootScore = -Infinity;
  let rootIndex = -1;
  // Strides of (y, x, c) in the heat-map storage.
  const sy = nhwc ? W * C : W;
  const sx = nhwc ? C : 1;
  const sc = nhwc ? 1 : cells;

  for (let y = 0; y < H; y++) {
    const yLo = y > 0 ? -sy : 0;
    const yHi = y < H - 1 ? sy : 0;
    for (let x = 0; x < W; x++) {
      const xLo = x > 0 ? -sx : 0;
      const xHi = x < W - 1 ? sx : 0;
      const cellBase = y * sy + x * sx;
      const flatBase = (y * W + x) * C;
      for (let c = 0; c < C; c++) {
        const at = cellBase + c * sc;
        const v = heatmap[at]!;
        const flat = flatBase + c;
        // Cheap rejection first: the masked value is v (peak) or 0 (not a peak); when neither
        // beats the current k-th candidate, the peak test cannot matter.
        if (size === k) {
          if (v < rootScore && rootScore > 0) continue;
          if (!worse(rootScore, rootIndex, v, flat) && !worse(rootScore, rootIndex, 0, flat)) continue;
        }
        let peak = true;
        for (let dy = yLo; dy <= yHi && peak; dy += sy) {
          for (let dx = xLo; dx <= xHi; dx += sx) {
            if (heatmap[at + dy + dx]! > v) {
              peak = false;
              break;
            }
          }
        }
        // Mul(keypoints, Cast(Equal)): v * 1 or v * 0 (which is -0 for a negative v, as in the graph).
        const masked = peak ? v : v * 0;
        if (size < k) {
          hs[size] = masked;
          hi[size] = flat;
          siftUp(size++);
        } else if (worse(rootScore, rootIndex, masked, flat)) {
          hs[0] = masked;
          hi[0] = flat;
          siftDown(size, 0);
        } else {
          continue;
        }
        rootScore = hs[0]!;
        rootIndex = hi[0]!;
      }
    }
  }

  // Pop worst-first into rank order.
  const order = new Int32Array(size);
  const orderScore = new Float64Array(size);
  for (let n = size - 1; n >= 0; n--) {
    order[n] = hi[0]!;
    orderScore[n] = hs[0]!;
    const last = --size;
    hs[0] = hs[last]!;
    hi[0] = hi[last]!;
    siftDown(last, 0);
  }

  const out: Detection[] = [];
  const emit = (flat: number, score: number): void => {
    if (score < scoreThreshold) return;
    const c = flat % C;
    const cell = (flat - c) / C;
    const x = cell % W;
    const y = (cell - x) / W;
    const sAt = nhwc ? cell * 4 : cell;
    const sStep = nhwc ? 1 : cells;
    const cx = x * stride;
    const cy = y * stride;
    const box: Box = [
      Math.fround(cx - sizes[sAt]!),
      Math.fround(cy - sizes[sAt + sStep]!),
      Math.fround(cx + sizes[sAt + 2 * sStep]!),
      Math.fround(cy + sizes[sAt + 3 * sStep]!),
    ];
    out.push(makeDetection(c, score, box, transform, classes));
  };
  for (let n = 0; n < order.length; n++) emit(order[n]!, orderScore[n]!);
  return out;
}

// --- YOLO ------------------------------------------------------------------------------------

/**
 * YOLOv5 output [1, N, 5 + C]: per row cx, cy, w, h (input pixels), objectness, C class
 * probabilities (all already sigmoid-ed, as exported models output them). Score = objectness x the
 * best class probability (first class on ties); box = centre +- size / 2, mapped to source pixels.
 */
export function decodeYoloV5(output: Float32Array, dims: readonly number[], transform: LetterboxTransform, options: DecodeOptions = {}): Detection[] {
  const where = 'decodeYoloV5';
  checkTensor(where, 'output', output, dims, 3);
  const n = dims[1]!;
  const rowLength = dims[2]!;
  if (rowLength < 6) throw new RangeError(`${where}: 'output' rows need 5 + classes >= 6 values, got dims [${dims.join(', ')}]`);
  const threshold = options.scoreThreshold ?? 0;
  const out: Detection[] = [];
  for (let i = 0; i < n; i++) {
    const row = i * rowLength;
    const objectness = output[row + 4]!;
    if (objectness < threshold) continue;
    let best = 5;
    for (let j = 6; j < rowLength; j++) if (output[row + j]! > output[row + best]!) best = j;
    const score = objectness * output[row + best]!;
    if (!(score >= threshold)) continue;
    const cx = output[row]!, cy = output[row + 1]!, halfW = output[row + 2]! / 2, halfH = output[row + 3]! / 2;
    out.push(makeDetection(best - 5, score, [cx - halfW, cy - halfH, cx + halfW, cy + halfH], transform, options.classes));
  }
  return out;
}

/**
 * YOLOv8 / YOLO11 output [1, 4 + C, N] (channel-major): rows cx, cy, w, h (input pixels), then C
 * class scores; no objectness. Score = the best class score (first class on ties).
 */
export function decodeYoloV8(output: Float32Array, dims: readonly number[], transform: LetterboxTransform, options: DecodeOptions = {}): Detection[] {
  const where = 'decodeYoloV8';
  checkTensor(where, 'output', output, dims, 3);
  const channels = dims[1]!;
  const n = dims[2]!;
  if (channels < 5) throw new RangeError(`${where}: 'output' needs 4 + classes >= 5 channels, got dims [${dims.join(', ')}]`);
  const threshold = options.scoreThreshold ?? 0;
  const out: Detection[] = [];
  for (let i = 0; i < n; i++) {
    let best = 4;
    let score = output[4 * n + i]!;
    for (let j = 5; j < channels; j++) {
      const s = output[j * n + i]!;
      if (s > score) {
        score = s;
        best = j;
      }
    }
    if (!(score >= threshold)) continue;
    const cx = output[i]!, cy = output[n + i]!, halfW = output[2 * n + i]! / 2, halfH = output[3 * n + i]! / 2;
    out.push(makeDetection(best - 4, score, [cx - halfW, cy - halfH, cx + halfW, cy + halfH], transform, options.classes));
  }
  return out;
}
