/**
 * Calibration for static quantization: run the FP32 model in onnxruntime over caller-supplied input
 * batches with every observed activation added as a graph output, and accumulate per-tensor statistics
 * (running min/max and a histogram of |x|); then turn them into ranges by one of three methods:
 *
 * - 'minmax': the running min and max (ORT's MinMax calibrator without moving average).
 * - 'percentile': clip |x| at the given percentile of the |x| histogram (ORT's symmetric Percentile).
 * - 'entropy': TensorRT's KL-divergence threshold on a 2048-bin histogram of |x| over [0, max|x|]
 *   (see `entropyThreshold`); 128 levels, or 256 for a one-sided tensor quantized to uint8. Checked
 *   against a numpy port of NVIDIA pytorch-quantization's `_compute_amax_entropy`: equal on exact
 *   histograms, within about 2 % on sampled ones.
 * A clipped range keeps the tensor's own sign extent: [max(min, -t), min(max, t)]. Graph outputs and the
 * logits feeding them keep their min/max (`outputChainTensors`).
 *
 * Histogram merge across batches (one pass, bounded memory): each tensor keeps numBins x
 * HISTOGRAM_OVERSAMPLING bins of |x| over [0, histogramMax). The first batch sets histogramMax =
 * max|x|; a later batch whose max|x| exceeds it doubles histogramMax (merging bin pairs, which moves no
 * count across a bin edge) until it fits, then adds its counts. The final range is less than twice the
 * true max|x|, so at least 4 accumulation bins fall in each of the numBins analysis bins over
 * [0, max|x|] that the entropy search rebins to. No batch's activations are kept: memory is
 * 8 x numBins x 8 bytes (128 KB) per tensor.
 */
import * as ort from 'onnxruntime-node';
import { encodeOnnxModel, validateOnnxModel, type OnnxModel } from './onnx.js';
import { floatActivationTensors, type ActivationType, type TensorRange } from './quantize.js';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

/** One model input: a Float32Array for a single-input model, else input name -> data. */
export type CalibrationBatch = Float32Array | Readonly<Record<string, Float32Array | Uint8Array>>;

export interface CalibrationOptions {
  /** How statistics become ranges. */
  method: CalibrationMethod;
  /** Percentile of |x| kept by 'percentile', in percent. */
  percentile: number;
  /** Histogram bins (TensorRT uses 2048). */
  numBins: number;
  /** The activation type the ranges are for; decides the entropy method's level count. */
  activationType: ActivationType;
  /** Tensors to observe; default every float32 activation (`floatActivationTensors`). */
  tensors: readonly string[] | undefined;
  /**
   * Tensors that always get their min/max range whatever the method; default `outputChainTensors`
   * (graph outputs and the logits feeding them): a detection head's peaks are its rarest, largest
   * values, and clipping them (measured on the CenterNet heat map: percentile 99.99 or entropy)
   * removes every detection.
   */
  fullRangeTensors: readonly string[] | undefined;
  /** onnxruntime intra-op threads for the calibration runs. */
  intraOpNumThreads: number;
}

export const DEFAULT_CALIBRATION_OPTIONS: Readonly<CalibrationOptions> = Object.freeze({
  method: 'minmax',
  percentile: 99.999,
  numBins: 2048,
  activationType: 'uint8',
  tensors: undefined,
  fullRangeTensors: undefined,
  intraOpNumThreads: 2,
});

/** Levels the entropy method quantizes to: int8 symmetric (0..127) vs uint8 on a one-sided tensor (0..255). */
export const ENTROPY_LEVELS_SYMMETRIC = 128;
export const ENTROPY_LEVELS_ONE_SIDED = 256;
/**
 * Fewest values per analysis bin for the entropy method to clip at all. Below it (e.g. an SE block's
 * per-channel gate: C values per frame) the histogram is mostly empty bins and the KL search picks
 * thresholds from sampling noise (seen: a sigmoid gate's range collapsed to its minimum), so max|x| is kept.
 */
export const ENTROPY_MIN_VALUES_PER_BIN = 8;
/** Fewest histogram bins a candidate threshold keeps (TensorRT: 128 of 2048, so at most 1/16 of max|x| is cut to). */
export const ENTROPY_START_BINS = 128;
/**
 * Accumulation bins per analysis bin. Range doubling can leave only half of the accumulation bins over
 * the data; with 8x oversampling at least 4 fine bins still fall in each of the `numBins` analysis bins
 * over [0, max|x|], so rebinning to them is accurate to a quarter bin.
 */
export const HISTOGRAM_OVERSAMPLING = 8;

/** Accumulated statistics of one tensor. Mutated in place by `accumulateStatistics`. */
export interface TensorStatistics {
  min: number;
  max: number;
  /** Elements seen. */
  count: number;
  /** Counts of |x| (numBins * HISTOGRAM_OVERSAMPLING bins); bin k covers [k, k + 1) * histogramMax / histogram.length, the last bin also histogramMax. */
  histogram: Float64Array;
  /** Upper edge of the histogram; 0 until a non-zero value is seen. */
  histogramMax: number;
  /** Bins over [0, max|x|] the entropy search works on. */
  numBins: number;
}

export function createStatistics(numBins: number = DEFAULT_CALIBRATION_OPTIONS.numBins): TensorStatistics {
  if (!Number.isInteger(numBins) || numBins < 2) throw new RangeError(`createStatistics: numBins must be an integer >= 2, got ${numBins}`);
  return { min: Infinity, max: -Infinity, count: 0, histogram: new Float64Array(numBins * HISTOGRAM_OVERSAMPLING), histogramMax: 0, numBins };
}

/**
 * Adds one batch of values of a tensor to its statistics (see the module comment for the merge rule).
 * One pass bins against the current range while tracking min/max; values beyond it are binned by a
 * second pass after the range has doubled (the first batch, and rarely later). Throws on NaN or
 * infinite values (the statistics are then unusable).
 */
export function accumulateStatistics(stats: TensorStatistics, values: Float32Array): void {
  const n = values.length;
  if (n === 0) return;
  const { histogram } = stats;
  const bins = histogram.length;
  const last = bins - 1;
  let min = Infinity;
  let max = -Infinity;
  let binned = 0;
  const previousMax = stats.histogramMax;
  if (previousMax > 0) {
    const toBin = bins / previousMax;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      min = v < min ? v : min;
      max = v > max ? v : max;
      const k = Math.floor(Math.abs(v) * toBin);
      if (k < bins) {
        histogram[k]! += 1;
        binned++;
      }
    }
  } else {
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      min = v < min ? v : min;
      max = v > max ? v : max;
    }
  }
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new RangeError(`accumulateStatistics: values must be finite, got min ${min}, max ${max}`);
  const absMax = Math.max(-min, max);
  if (previousMax === 0) {
    stats.histogramMax = absMax;
  } else {
    while (absMax > stats.histogramMax) {
      for (let k = 0; k < bins / 2; k++) histogram[k] = histogram[2 * k]! + histogram[2 * k + 1]!;
      histogram.fill(0, bins / 2);
      stats.histogramMax *= 2;
    }
  }
  if (binned < n) {
    // Values at or beyond the previous range (all of them for a first batch): bin in the current one.
    if (stats.histogramMax === 0) {
      histogram[0]! += n - binned;
      binned = n;
    } else {
      const toBin = bins / stats.histogramMax;
      for (let i = 0; i < n; i++) {
        const a = Math.abs(values[i]!);
        if (a >= previousMax) {
          const k = Math.floor(a * toBin);
          histogram[k < last ? k : last]! += 1;
          binned++;
        }
      }
    }
  }
  // NaN is skipped by every comparison above, so it shows as a shortfall here.
  if (binned !== n) throw new RangeError(`accumulateStatistics: ${n - binned} of ${n} values are NaN`);
  stats.min = Math.min(stats.min, min);
  stats.max = Math.max(stats.max, max);
  stats.count += n;
}

/**
 * The |x| histogram as `stats.numBins` bins over exactly [0, max|x|] (TensorRT's layout), splitting
 * each accumulation bin's count in proportion to its overlap with the analysis bins.
 */
export function analysisHistogram(stats: TensorStatistics): { histogram: Float64Array; binWidth: number } {
  const absMax = Math.max(-stats.min, stats.max, 0);
  const out = new Float64Array(stats.numBins);
  const fine = stats.histogram;
  if (!(absMax > 0)) {
    out[0] = stats.count;
    return { histogram: out, binWidth: 0 };
  }
  const fineWidth = stats.histogramMax / fine.length;
  const binWidth = absMax / stats.numBins;
  for (let k = 0; k < fine.length; k++) {
    const count = fine[k]!;
    if (count === 0) continue;
    const lo = (k * fineWidth) / binWidth;
    const hi = Math.min(stats.numBins, ((k + 1) * fineWidth) / binWidth);
    let j = Math.min(stats.numBins - 1, Math.floor(lo));
    if (hi <= j + 1 || j === stats.numBins - 1) {
      out[j]! += count;
      continue;
    }
    // Spread over the (at most few) analysis bins this fine bin overlaps.
    const span = hi - lo;
    for (let edge = lo; edge < hi; j++) {
      const next = Math.min(hi, j + 1);
      out[j]! += (count * (next - edge)) / span;
      edge = next;
    }
  }
  return { histogram: out, binWidth };
}

/** The |x| below which `percentile` percent of the values lie (linear within a bin), at most max|x|. */
export function percentileThreshold(stats: TensorStatistics, percentile: number): number {
  if (!(percentile > 0 && percentile <= 100)) throw new RangeError(`percentileThreshold: percentile must be in (0, 100], got ${percentile}`);
  const absMax = Math.max(-stats.min, stats.max);
  const { histogram } = stats;
  const width = stats.histogramMax / histogram.length;
  const target = (stats.count * percentile) / 100;
  let cumulative = 0;
  for (let k = 0; k < histogram.length; k++) {
    const count = histogram[k]!;
    if (cumulative + count >= target && count > 0) return Math.min(absMax, (k + (target - cumulative) / count) * width);
    cumulative += count;
  }
  return absMax;
}

/**
 * The KL-divergence-optimal clipping threshold of |x| (TensorRT's entropy calibration) for `levels`
 * quantization levels, on `stats.numBins` bins over [0, max|x|]. Nothing is clipped when fewer than
 * ENTROPY_MIN_VALUES_PER_BIN * numBins values were seen.
 *
 * For candidate i bins (i from ENTROPY_START_BINS, TensorRT's 128): P = bins 0..i-1 with the outliers
 * (bins >= i) added to bin i-1; Q = bins 0..i-1 (without outliers) merged into `levels` groups with
 * even boundaries (group g = bins [ceil(g i / levels), ceil((g + 1) i / levels)), as NVIDIA's
 * pytorch-quantization; MXNet/ORT instead give the whole remainder to the last group), each group's
 * mass spread evenly over its bins that are non-empty in P. Because Q is constant over each group's
 * non-empty bins, KL(P || Q) has a closed form in per-group prefix sums: O(levels) per candidate
 * instead of O(i) logarithms. A group where P has mass and Q none (outliers beyond an empty tail) has
 * infinite divergence (MXNet/ORT's eps smoothing makes it merely huge; elsewhere it changes little).
 */
export function entropyThreshold(stats: TensorStatistics, levels: number): number {
  if (!Number.isInteger(levels) || levels < 2) throw new RangeError(`entropyThreshold: levels must be an integer >= 2, got ${levels}`);
  const absMax = Math.max(-stats.min, stats.max);
  if (stats.count < ENTROPY_MIN_VALUES_PER_BIN * stats.numBins) return absMax;
  const { histogram: hist, binWidth } = analysisHistogram(stats);
  const bins = hist.length;
  if (bins <= ENTROPY_START_BINS || binWidth === 0) return absMax;
  // Bin 0 holds the spike of exact zeros that ReLU-like activations have. Zero is exact in every
  // zero-preserving quantization, so the spike costs nothing, but spreading it over its level's bins
  // would dominate the divergence and drive the threshold down to `levels` bins (no merging at all).
  // Like NVIDIA's pytorch-quantization (`_compute_amax_entropy`), count bin 0 as bin 1.
  hist[0] = hist[1]!;
  const xlogx = (x: number) => (x > 0 ? x * Math.log(x) : 0);
  // Prefix sums over bins: mass, number of non-empty bins, sum of h log h.
  const mass = new Float64Array(bins + 1);
  const nonEmpty = new Float64Array(bins + 1);
  const plogp = new Float64Array(bins + 1);
  for (let k = 0; k < bins; k++) {
    mass[k + 1] = mass[k]! + hist[k]!;
    nonEmpty[k + 1] = nonEmpty[k]! + (hist[k]! > 0 ? 1 : 0);
    plogp[k + 1] = plogp[k]! + xlogx(hist[k]!);
  }
  const total = mass[bins]!;
  let best = Infinity;
  let bestBins = bins;
  for (let i = ENTROPY_START_BINS; i <= bins; i++) {
    const outliers = total - mass[i]!;
    const last = hist[i - 1]! + outliers;
    // sum over P of p log p (P's total is `total`).
    const pLogP = plogp[i - 1]! + xlogx(last);
    // sum over P of p log q: per group, log(group mass / non-empty bins) times P's mass in the group.
    let pLogQ = 0;
    let infinite = false;
    for (let g = 0, start = 0; g < levels && !infinite; g++) {
      const end = Math.ceil(((g + 1) * i) / levels);
      if (end > start) {
        const qMass = mass[end]! - mass[start]!;
        const holdsLast = end === i;
        const pMass = holdsLast ? qMass + outliers : qMass;
        if (pMass > 0 && qMass === 0) infinite = true;
        else if (pMass > 0) pLogQ += pMass * Math.log(qMass / (nonEmpty[end]! - nonEmpty[start]! + (holdsLast && hist[i - 1] === 0 && outliers > 0 ? 1 : 0)));
      }
      start = end;
    }
    if (infinite) continue;
    // KL = sum (p/P) log((p/P) / (q/Q)), P = total, Q = mass of the first i bins.
    const divergence = (pLogP - pLogQ) / total + Math.log(mass[i]! / total);
    // On ties keep the larger threshold (clip less), as pytorch-quantization does.
    if (divergence <= best + 1e-12) {
      best = divergence;
      bestBins = i;
    }
  }
  return Math.min(absMax, bestBins * binWidth);
}

/** The calibrated range of one tensor by `method`. A clipped range keeps the tensor's own sign extent. */
export function rangeFromStatistics(stats: TensorStatistics, options: Partial<CalibrationOptions> = {}): TensorRange {
  const { method, percentile, activationType } = { ...DEFAULT_CALIBRATION_OPTIONS, ...options };
  if (stats.count === 0) throw new RangeError('rangeFromStatistics: no values were accumulated');
  if (method === 'minmax') return { min: stats.min, max: stats.max };
  let threshold: number;
  if (method === 'percentile') {
    threshold = percentileThreshold(stats, percentile);
  } else if (method === 'entropy') {
    const oneSided = stats.min >= 0 || stats.max <= 0;
    threshold = entropyThreshold(stats, oneSided && activationType === 'uint8' ? ENTROPY_LEVELS_ONE_SIDED : ENTROPY_LEVELS_SYMMETRIC);
  } else {
    throw new RangeError(`rangeFromStatistics: method must be 'minmax', 'percentile' or 'entropy', got '${String(method)}'`);
  }
  return { min: Math.max(stats.min, -threshold), max: Math.min(stats.max, threshold) };
}

/** Ranges of every tensor in `statistics` by one method (min/max for `options.fullRangeTensors`). */
export function rangesFromStatistics(statistics: ReadonlyMap<string, TensorStatistics>, options: Partial<CalibrationOptions> = {}): Map<string, TensorRange> {
  const ranges = new Map<string, TensorRange>();
  const fullRange = new Set(options.fullRangeTensors ?? []);
  for (const [tensor, stats] of statistics) {
    if (stats.count === 0) continue;
    try {
      ranges.set(tensor, rangeFromStatistics(stats, fullRange.has(tensor) ? { ...options, method: 'minmax' } : options));
    } catch (error) {
      throw new RangeError(`rangesFromStatistics: tensor '${tensor}': ${(error as Error).message}`);
    }
  }
  return ranges;
}

// ---------------------------------------------------------------------------------------------
// Running the model

/**
 * A copy of `model` that also outputs `tensors` (float32; existing outputs kept), declared without a
 * shape so onnxruntime keeps the one it infers.
 */
export function withExtraOutputs(model: OnnxModel, tensors: readonly string[]): OnnxModel {
  const outputs = new Set(model.graph.outputs.map((o) => o.name));
  const extra = tensors.filter((t) => !outputs.has(t)).map((name) => ({ name, elemType: 'float32' as const, shape: [], shapeUnknown: true }));
  const copy: OnnxModel = { ...model, graph: { ...model.graph, outputs: [...model.graph.outputs, ...extra] } };
  validateOnnxModel(copy);
  return copy;
}

/** onnxruntime feeds for one batch; dims from the model's inputs, one symbolic dim inferred from the length. */
export function feedsFor(model: OnnxModel, batch: CalibrationBatch, where: string): Record<string, ort.Tensor> {
  const initializers = new Set(model.graph.initializers.map((t) => t.name));
  const inputs = model.graph.inputs.filter((i) => !initializers.has(i.name));
  const byName: Readonly<Record<string, Float32Array | Uint8Array>> =
    batch instanceof Float32Array ? (inputs.length === 1 ? { [inputs[0]!.name]: batch } : {}) : batch;
  if (batch instanceof Float32Array && inputs.length !== 1) {
    throw new TypeError(`${where}: the model has ${inputs.length} inputs (${inputs.map((i) => `'${i.name}'`).join(', ')}); pass a record of input name -> Float32Array`);
  }
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) {
    const data = byName[input.name];
    // 8-bit image inputs (a model that converts its frames itself) calibrate from their bytes.
    const type = input.elemType === 'uint8' ? 'uint8' : 'float32';
    if (!(type === 'uint8' ? data instanceof Uint8Array : data instanceof Float32Array)) throw new TypeError(`${where}: input '${input.name}' needs a ${type === 'uint8' ? 'Uint8Array' : 'Float32Array'}`);
    if (input.elemType !== 'float32' && input.elemType !== 'uint8') throw new TypeError(`${where}: input '${input.name}' is ${input.elemType}; only float32 and uint8 inputs are supported`);
    const fixed = input.shape.reduce<number>((n, d) => (typeof d === 'number' ? n * d : n), 1);
    const symbolic = input.shape.filter((d) => typeof d !== 'number').length;
    if (symbolic > 1 || (symbolic === 0 ? data!.length !== fixed : data!.length % fixed !== 0)) {
      throw new RangeError(`${where}: input '${input.name}' of shape [${input.shape.join(', ')}] cannot hold ${data!.length} elements`);
    }
    const dims = input.shape.map((d) => (typeof d === 'number' ? d : data!.length / fixed));
    feeds[input.name] = type === 'uint8' ? new ort.Tensor('uint8', data as Uint8Array, dims) : new ort.Tensor('float32', data as Float32Array, dims);
  }
  return feeds;
}

/** An onnxruntime session for `model`. */
export function createSession(model: OnnxModel, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeOnnxModel(model), options);
}

/**
 * Runs the FP32 `model` over `batches` and accumulates statistics of `options.tensors` (default every
 * float32 activation). Each batch's activations are dropped after accumulation.
 */
export async function collectStatistics(
  model: OnnxModel,
  batches: Iterable<CalibrationBatch> | AsyncIterable<CalibrationBatch>,
  options: Partial<Pick<CalibrationOptions, 'tensors' | 'numBins' | 'intraOpNumThreads'>> = {},
): Promise<Map<string, TensorStatistics>> {
  const where = 'collectStatistics';
  const { tensors, numBins, intraOpNumThreads } = { ...DEFAULT_CALIBRATION_OPTIONS, ...options };
  const observable = new Set(floatActivationTensors(model.graph));
  const names = tensors ?? [...observable];
  for (const name of names) if (!observable.has(name)) throw new RangeError(`${where}: tensor '${name}' is not a float32 activation of graph '${model.graph.name}'`);
  const statistics = new Map(names.map((name) => [name, createStatistics(numBins)]));
  const session = await createSession(withExtraOutputs(model, names), { graphOptimizationLevel: 'disabled', intraOpNumThreads });
  try {
    let index = 0;
    for await (const batch of batches) {
      const results = await session.run(feedsFor(model, batch, `${where}: batch ${index}`));
      for (const [name, stats] of statistics) {
        const output = results[name];
        if (!output || output.type !== 'float32') throw new TypeError(`${where}: batch ${index}: tensor '${name}' came back as ${output?.type ?? 'nothing'}, expected float32`);
        try {
          accumulateStatistics(stats, output.data as Float32Array);
        } catch (error) {
          throw new RangeError(`${where}: batch ${index}: tensor '${name}': ${(error as Error).message}`);
        }
      }
      index++;
    }
    if (index === 0) throw new RangeError(`${where}: no calibration batches were given`);
  } finally {
    await session.release();
  }
  return statistics;
}

/**
 * The graph outputs and, walking back from each, the tensors it is computed from through nodes with
 * a single activation input (Sigmoid, Mul by a constant ...), up to and including a Conv's output:
 * e.g. a heat map and its logits.
 */
export function outputChainTensors(model: OnnxModel): string[] {
  const producer = new Map(model.graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const constants = new Set(model.graph.initializers.map((t) => t.name));
  const chain = new Set<string>();
  for (const output of model.graph.outputs) {
    for (let tensor: string | undefined = output.name; tensor !== undefined && !chain.has(tensor); ) {
      chain.add(tensor);
      const node = producer.get(tensor);
      const inputs = node?.inputs.filter((i) => i !== '' && !constants.has(i)) ?? [];
      tensor = node && node.opType !== 'Conv' && inputs.length === 1 ? inputs[0] : undefined;
    }
  }
  return [...chain];
}

/** Statistics then ranges: tensor name -> calibrated range for `quantizeStatic`. */
export async function calibrate(
  model: OnnxModel,
  batches: Iterable<CalibrationBatch> | AsyncIterable<CalibrationBatch>,
  options: Partial<CalibrationOptions> = {},
): Promise<Map<string, TensorRange>> {
  const fullRangeTensors = options.fullRangeTensors ?? outputChainTensors(model);
  return rangesFromStatistics(await collectStatistics(model, batches, options), { ...options, fullRangeTensors });
}
