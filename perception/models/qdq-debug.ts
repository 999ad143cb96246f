/**
 * Where does a QDQ model lose accuracy? Like onnxruntime's qdq_loss_debug: run the FP32 model and its
 * QDQ quantization on the same inputs, with every quantized activation exposed as an output, match
 * tensors by name, and report per tensor
 * - the cumulative error: FP32 activation vs the QDQ model's dequantized activation (all upstream
 *   quantization included), as SQNR (dB), relative L2 error and max abs error;
 * - the layer SQNR: the SQNR counting only the noise the producing node adds, i.e. the relative noise
 *   power (1 / linear SQNR) of its output minus the largest of its quantized inputs' (reached through
 *   unquantized nodes). It catches both a bad range at this tensor and a layer that amplifies its
 *   input's quantization noise (MobileNet's depthwise convs on channels of small range), which the
 *   local error below does not see;
 * - the local error: the QDQ model's own value before vs after this tensor's QuantizeLinear ->
 *   DequantizeLinear (the rounding and saturation this tensor alone adds; a folded Relu/Clip's clamp
 *   is applied to the value before, so the clamp does not count as error).
 * Sorted worst layer SQNR first: the producers at the top are the candidates for the quantizer's skip
 * list. Noise that later layers amplify shows up at each of them, so on deep networks confirm with
 * `quantizationSensitivity`, which found the MobileNetV3 stem that this ranking puts lower down.
 * (A skipped node still reads its inputs' Q -> DQ, except a Conv/Gemm: see quantize.ts.) Statistics
 * are accumulated over inputs; no activations are kept.
 *
 * The QDQ model runs unoptimized (graphOptimizationLevel 'disabled'): exposing intermediate tensors
 * prevents ORT's QLinear fusions anyway, and unfused Q/DQ is the reference semantics the fused integer
 * kernels approximate (they differ by requantization rounding only).
 *
 * `quantizationSensitivity` answers the complementary question (which nodes, quantized alone, cost the
 * most), and ORT-side checks of a quantized model (fused op counts, median latency) are here too.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { createSession, feedsFor, withExtraOutputs, type CalibrationBatch } from './calibration.js';
import { decodeOnnxModel, type OnnxModel, type OnnxNode } from './onnx.js';
import { activationClamp, DEFAULT_QUANTIZE_OPTIONS, floatActivationTensors, quantizeStatic, type QuantizeOptions, type TensorRange } from './quantize.js';

/** Error statistics of one quantized activation tensor. */
export interface TensorErrorReport {
  /** Tensor name in the FP32 model. */
  tensor: string;
  /** FP32 node that writes it (for a folded Relu/Clip: that activation node). */
  producer: string;
  producerOpType: string;
  /** Node of the QDQ model that writes the value before quantization (differs when an activation was folded). */
  quantizedProducer: string;
  elements: number;
  /** FP32 vs QDQ model: 10 log10(sum x^2 / sum (x - y)^2); Infinity when equal. */
  sqnrDb: number;
  /** sqrt(sum (x - y)^2 / sum x^2). */
  relativeL2: number;
  maxAbsError: number;
  /** SQNR of the noise this node adds: -10 log10(1/SQNR(out) - max 1/SQNR(quantized inputs)), linear SQNRs; Infinity if none. */
  layerSqnrDb: number;
  /** This tensor's own Q -> DQ in the QDQ model, as SQNR (dB); NaN for graph outputs and scaled aliases (no Q of their own). */
  localSqnrDb: number;
}

export interface QdqReport {
  /** Quantized activations, worst `layerSqnrDb` first. */
  tensors: TensorErrorReport[];
  /** Graph outputs (in model order), FP32 vs QDQ model end to end. */
  outputs: TensorErrorReport[];
  /** Inputs the statistics cover. */
  inputs: number;
}

export interface QdqDebugOptions {
  /** onnxruntime intra-op threads. */
  intraOpNumThreads: number;
}

export const DEFAULT_QDQ_DEBUG_OPTIONS: Readonly<QdqDebugOptions> = Object.freeze({ intraOpNumThreads: 2 });

interface Accumulator {
  signal: number;
  error: number;
  maxAbs: number;
  elements: number;
  localSignal: number;
  localError: number;
}

interface Match {
  tensor: string;
  /** QDQ-model tensor before QuantizeLinear, or undefined for graph outputs that are not quantized. */
  pre: string | undefined;
  /** QDQ-model tensor compared with the FP32 one. */
  post: string;
  producer: string;
  producerOpType: string;
  quantizedProducer: string;
  clamp: [number, number];
  /** Matched tensors the FP32 producer reads, directly or through unmatched nodes. */
  upstream: string[];
  acc: Accumulator;
}

const newAccumulator = (): Accumulator => ({ signal: 0, error: 0, maxAbs: 0, elements: 0, localSignal: 0, localError: 0 });

/** The suffix `quantizeStatic` gives a DequantizeLinear output that stands for tensor `t`. */
const DQ_SUFFIX = '_DequantizeLinear_Output';

/**
 * Pairs each DequantizeLinear of a QuantizeLinear in the QDQ model with the FP32 tensor it stands
 * for: the Q input (same scale: the tensor's own pair), or for a DQ with another scale (a scaled
 * alias of a removed Mul) the FP32 tensor named by the DQ output (`t` or `t_DequantizeLinear_Output`).
 */
function matchTensors(fp32: OnnxModel, qdq: OnnxModel): { tensors: Match[]; outputs: Match[] } {
  const floatTensors = new Set(floatActivationTensors(fp32.graph));
  const fp32Producer = new Map(fp32.graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const fp32Initializers = new Map(fp32.graph.initializers.map((t) => [t.name, t]));
  const qdqProducer = new Map(qdq.graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const pairs: { tensor: string; pre: string | undefined; post: string }[] = [];
  for (const dq of qdq.graph.nodes) {
    const q = qdqProducer.get(dq.inputs[0] ?? '');
    if (dq.opType !== 'DequantizeLinear' || q?.opType !== 'QuantizeLinear') continue;
    const post = dq.outputs[0]!;
    if (dq.inputs[1] === q.inputs[1]) {
      const pre = q.inputs[0]!;
      const tensor = floatTensors.has(pre) ? pre : floatTensors.has(post) ? post : undefined;
      if (tensor !== undefined) pairs.push({ tensor, pre, post });
    } else {
      const tensor = floatTensors.has(post) ? post : post.endsWith(DQ_SUFFIX) ? post.slice(0, -DQ_SUFFIX.length) : undefined;
      if (tensor !== undefined && floatTensors.has(tensor)) pairs.push({ tensor, pre: undefined, post });
    }
  }
  const matched = new Set(pairs.map((p) => p.tensor));
  const upstreamOf = (tensor: string): string[] => {
    const found = new Set<string>();
    const seen = new Set<string>();
    const visit = (node: OnnxNode | undefined) => {
      for (const input of node?.inputs ?? []) {
        if (seen.has(input)) continue;
        seen.add(input);
        if (matched.has(input)) found.add(input);
        else visit(fp32Producer.get(input));
      }
    };
    visit(fp32Producer.get(tensor));
    return [...found];
  };
  const describe = ({ tensor, pre, post }: { tensor: string; pre: string | undefined; post: string }): Match => {
    const producer = fp32Producer.get(tensor);
    const quantizedProducer = qdqProducer.get(pre ?? post);
    const folded = producer && quantizedProducer && producer.opType !== quantizedProducer.opType;
    const clamp = (folded && activationClamp(producer, fp32Initializers)) || [-Infinity, Infinity];
    return {
      tensor,
      pre,
      post,
      producer: producer?.name ?? '(graph input)',
      producerOpType: producer?.opType ?? 'input',
      quantizedProducer: quantizedProducer?.name ?? '(graph input)',
      clamp,
      upstream: upstreamOf(tensor),
      acc: newAccumulator(),
    };
  };
  const qdqOutputs = new Set(qdq.graph.outputs.map((o) => o.name));
  const outputs = fp32.graph.outputs.map((o) => {
    if (!qdqOutputs.has(o.name)) throw new RangeError(`compareQdq: graph output '${o.name}' of the FP32 model is not an output of the QDQ model`);
    return describe({ tensor: o.name, pre: undefined, post: o.name });
  });
  return { tensors: pairs.map(describe), outputs };
}

function accumulate(acc: Accumulator, reference: Float32Array, value: Float32Array, where: string): void {
  if (reference.length !== value.length) throw new RangeError(`${where}: FP32 has ${reference.length} elements, QDQ ${value.length}`);
  for (let i = 0; i < reference.length; i++) {
    const x = reference[i]!;
    const d = x - value[i]!;
    acc.signal += x * x;
    acc.error += d * d;
    const a = Math.abs(d);
    if (a > acc.maxAbs) acc.maxAbs = a;
  }
  acc.elements += reference.length;
}

function accumulateLocal(acc: Accumulator, pre: Float32Array, post: Float32Array, [lo, hi]: [number, number]): void {
  for (let i = 0; i < pre.length; i++) {
    const x = Math.min(hi, Math.max(lo, pre[i]!));
    const d = x - post[i]!;
    acc.localSignal += x * x;
    acc.localError += d * d;
  }
}

const sqnr = (signal: number, error: number): number => (error === 0 ? Infinity : 10 * Math.log10(signal / error));

function toReport(match: Match, sqnrOf: ReadonlyMap<string, number>): TensorErrorReport {
  const { acc } = match;
  const sqnrDb = sqnr(acc.signal, acc.error);
  const inputSqnrDb = Math.min(Infinity, ...match.upstream.map((t) => sqnrOf.get(t) ?? Infinity));
  const addedNoise = 10 ** (-sqnrDb / 10) - 10 ** (-inputSqnrDb / 10);
  return {
    tensor: match.tensor,
    producer: match.producer,
    producerOpType: match.producerOpType,
    quantizedProducer: match.quantizedProducer,
    elements: acc.elements,
    sqnrDb,
    relativeL2: acc.signal === 0 ? (acc.error === 0 ? 0 : Infinity) : Math.sqrt(acc.error / acc.signal),
    maxAbsError: acc.maxAbs,
    layerSqnrDb: addedNoise > 0 ? -10 * Math.log10(addedNoise) : Infinity,
    localSqnrDb: match.pre === undefined ? Number.NaN : sqnr(acc.localSignal, acc.localError),
  };
}

/**
 * Runs `fp32` and its QDQ quantization `qdq` on each input and reports per-tensor errors (see the
 * module comment). `qdq` must come from `quantizeStatic(fp32, ...)` or follow its naming.
 */
export async function compareQdq(
  fp32: OnnxModel,
  qdq: OnnxModel,
  inputs: Iterable<CalibrationBatch> | AsyncIterable<CalibrationBatch>,
  options: Partial<QdqDebugOptions> = {},
): Promise<QdqReport> {
  const where = 'compareQdq';
  const { intraOpNumThreads } = { ...DEFAULT_QDQ_DEBUG_OPTIONS, ...options };
  const { tensors, outputs } = matchTensors(fp32, qdq);
  const fp32Session = await createSession(withExtraOutputs(fp32, tensors.map((m) => m.tensor)), { graphOptimizationLevel: 'disabled', intraOpNumThreads });
  try {
    const qdqSession = await createSession(withExtraOutputs(qdq, tensors.flatMap((m) => (m.pre === undefined ? [m.post] : [m.pre, m.post]))), { graphOptimizationLevel: 'disabled', intraOpNumThreads });
    try {
      let count = 0;
      for await (const input of inputs) {
        const label = `${where}: input ${count}`;
        const reference = await fp32Session.run(feedsFor(fp32, input, label));
        const quantized = await qdqSession.run(feedsFor(qdq, input, label));
        const data = (results: ort.InferenceSession.ReturnType, name: string) => {
          const tensor = results[name];
          if (!tensor || tensor.type !== 'float32') throw new TypeError(`${label}: tensor '${name}' came back as ${tensor?.type ?? 'nothing'}, expected float32`);
          return tensor.data as Float32Array;
        };
        for (const match of [...tensors, ...outputs]) {
          accumulate(match.acc, data(reference, match.tensor), data(quantized, match.post), `${label}: tensor '${match.tensor}'`);
          if (match.pre !== undefined) accumulateLocal(match.acc, data(quantized, match.pre), data(quantized, match.post), match.clamp);
        }
        count++;
      }
      if (count === 0) throw new RangeError(`${where}: no inputs were given`);
      const sqnrOf = new Map(tensors.map((m) => [m.tensor, sqnr(m.acc.signal, m.acc.error)]));
      const reports = tensors.map((m) => toReport(m, sqnrOf)).sort((a, b) => a.layerSqnrDb - b.layerSqnrDb || a.localSqnrDb - b.localSqnrDb);
      return { tensors: reports, outputs: outputs.map((m) => toReport(m, sqnrOf)), inputs: count };
    } finally {
      await qdqSession.release();
    }
  } finally {
    await fp32Session.release();
  }
}

/** The report as a fixed-width text table (`limit` rows of tensors, worst first; outputs after). */
export function formatQdqReport(report: QdqReport, limit = Infinity): string {
  const db = (v: number) => (Number.isNaN(v) ? '-' : v === Infinity ? 'inf' : v.toFixed(1));
  const header = ['tensor', 'producer', 'op', 'layer dB', 'SQNR dB', 'local dB', 'rel L2', 'max |err|'];
  const row = (r: TensorErrorReport) => [r.tensor, r.producer, r.producerOpType, db(r.layerSqnrDb), db(r.sqnrDb), db(r.localSqnrDb), r.relativeL2.toExponential(2), r.maxAbsError.toPrecision(3)];
  const shown = report.tensors.slice(0, limit);
  const rows = [header, ...shown.map(row), ['-- graph outputs --', '', '', '', '', '', '', ''], ...report.outputs.map(row)];
  const widths = header.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
  const hidden = report.tensors.length - shown.length;
  return [`QDQ error report over ${report.inputs} input(s), worst layer SQNR first`, ...lines, ...(hidden > 0 ? [`(${hidden} more tensors not shown)`] : [])].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Sensitivity: quantize one group of nodes at a time

export interface SensitivityOptions {
  /** Group key of a node (e.g. its network block), or undefined to leave it out; default the node's own name. */
  groupOf: (node: OnnxNode) => string | undefined;
  /** Options for `quantizeStatic`; each group's run adds every other group's nodes to `skipNodes`. */
  quantize: Partial<QuantizeOptions>;
  intraOpNumThreads: number;
}

export interface SensitivityEntry {
  group: string;
  nodes: string[];
  /** SQNR (dB) of each graph output with only this group quantized, over all inputs. */
  outputSqnrDb: Record<string, number>;
  /** The lowest of `outputSqnrDb`. */
  worstSqnrDb: number;
}

/**
 * For each group of quantizable nodes, quantizes only that group (all other groups kept FP32) and
 * measures the graph outputs against FP32: the groups at the top of the result (worst first) cost the
 * most accuracy on their own, and are the ones to keep FP32. Unlike the per-tensor report, this sees
 * where noise is created even when later layers amplify it. One ORT session per group: group coarsely
 * (e.g. by network block) for big models.
 */
export async function quantizationSensitivity(
  fp32: OnnxModel,
  ranges: ReadonlyMap<string, TensorRange>,
  inputs: readonly CalibrationBatch[],
  options: Partial<SensitivityOptions> = {},
): Promise<SensitivityEntry[]> {
  const where = 'quantizationSensitivity';
  if (inputs.length === 0) throw new RangeError(`${where}: no inputs were given`);
  const groupOf = options.groupOf ?? ((node: OnnxNode) => node.name);
  const quantizeOptions = options.quantize ?? {};
  const intraOpNumThreads = options.intraOpNumThreads ?? DEFAULT_QDQ_DEBUG_OPTIONS.intraOpNumThreads;
  const opTypes = new Set(['Conv', ...(quantizeOptions.opTypes ?? DEFAULT_QUANTIZE_OPTIONS.opTypes)]);
  const skipped = new Set(quantizeOptions.skipNodes ?? []);
  const groups = new Map<string, string[]>();
  for (const node of fp32.graph.nodes) {
    if (!opTypes.has(node.opType) || skipped.has(node.name)) continue;
    const group = groupOf(node);
    if (group !== undefined) groups.set(group, [...(groups.get(group) ?? []), node.name]);
  }
  const outputNames = fp32.graph.outputs.map((o) => o.name);
  const run = async (model: OnnxModel): Promise<Float32Array[][]> => {
    const session = await createSession(model, { graphOptimizationLevel: 'all', intraOpNumThreads });
    try {
      const results: Float32Array[][] = [];
      for (const [index, input] of inputs.entries()) {
        const out = await session.run(feedsFor(model, input, `${where}: input ${index}`));
        results.push(outputNames.map((name) => out[name]!.data as Float32Array));
      }
      return results;
    } finally {
      await session.release();
    }
  };
  const reference = await run(fp32);
  const allNodes = [...groups.values()].flat();
  const entries: SensitivityEntry[] = [];
  for (const [group, nodes] of groups) {
    const own = new Set(nodes);
    const model = quantizeStatic(fp32, ranges, { ...quantizeOptions, skipNodes: [...skipped, ...allNodes.filter((n) => !own.has(n))] });
    const results = await run(model);
    const outputSqnrDb: Record<string, number> = {};
    outputNames.forEach((name, o) => {
      const acc = newAccumulator();
      results.forEach((result, i) => accumulate(acc, reference[i]![o]!, result[o]!, `${where}: group '${group}' output '${name}'`));
      outputSqnrDb[name] = sqnr(acc.signal, acc.error);
    });
    entries.push({ group, nodes, outputSqnrDb, worstSqnrDb: Math.min(...Object.values(outputSqnrDb)) });
  }
  return entries.sort((a, b) => a.worstSqnrDb - b.worstSqnrDb);
}

// ---------------------------------------------------------------------------------------------
// onnxruntime-side checks

/**
 * Op types (with their counts) of the graph onnxruntime actually runs for `model` at the given
 * optimization level, read back from `optimizedModelFilePath`: e.g. how many Convs became QLinearConv.
 */
export async function optimizedOpCounts(
  model: OnnxModel,
  options: { graphOptimizationLevel?: ort.InferenceSession.SessionOptions['graphOptimizationLevel']; intraOpNumThreads?: number } = {},
): Promise<Map<string, number>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arhud-ort-opt-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    // Level 'all' warns that the saved model is hardware-specific; that is the point here.
    const session = await createSession(model, {
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
      intraOpNumThreads: options.intraOpNumThreads ?? DEFAULT_QDQ_DEBUG_OPTIONS.intraOpNumThreads,
      optimizedModelFilePath: file,
      logSeverityLevel: 3,
    });
    await session.release();
    const counts = new Map<string, number>();
    for (const node of decodeOnnxModel(await readFile(file), file).graph.nodes) counts.set(node.opType, (counts.get(node.opType) ?? 0) + 1);
    return counts;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface LatencyOptions {
  /** Timed runs; the median is reported. */
  runs: number;
  /** Untimed runs first. */
  warmupRuns: number;
  intraOpNumThreads: number;
  graphOptimizationLevel: NonNullable<ort.InferenceSession.SessionOptions['graphOptimizationLevel']>;
}

export const DEFAULT_LATENCY_OPTIONS: Readonly<LatencyOptions> = Object.freeze({ runs: 10, warmupRuns: 2, intraOpNumThreads: 2, graphOptimizationLevel: 'all' });

/**
 * Median wall-clock latency (ms) of `session.run` on one input for each model, with the samples.
 * Runs alternate between the models (A B A B ...), so load from other processes falls on all alike.
 * Intra-op threads do not spin between runs (`session.intra_op.allow_spinning` 0): a session's
 * spinning workers would otherwise take the cores from the next model's run (measured: FP32
 * CenterNet 25 -> 50 ms with four sessions alternating on two cores). Latencies are therefore
 * a little higher than a single spinning session's.
 */
export async function measureLatencyMs(
  models: readonly OnnxModel[],
  input: CalibrationBatch,
  options: Partial<LatencyOptions> = {},
): Promise<{ medianMs: number; samplesMs: number[] }[]> {
  const { runs, warmupRuns, intraOpNumThreads, graphOptimizationLevel } = { ...DEFAULT_LATENCY_OPTIONS, ...options };
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`measureLatencyMs: options.runs must be an integer >= 1, got ${runs}`);
  const sessions: ort.InferenceSession[] = [];
  try {
    for (const model of models) {
      sessions.push(
        await createSession(model, { graphOptimizationLevel, intraOpNumThreads, interOpNumThreads: 1, executionMode: 'sequential', extra: { session: { intra_op: { allow_spinning: '0' } } } }),
      );
    }
    const feeds = models.map((model, i) => feedsFor(model, input, `measureLatencyMs: model ${i}`));
    const samples = models.map((): number[] => []);
    for (let r = 0; r < warmupRuns + runs; r++) {
      for (const [i, session] of sessions.entries()) {
        const start = performance.now();
        await session.run(feeds[i]!);
        if (r >= warmupRuns) samples[i]!.push(performance.now() - start);
      }
    }
    return samples.map((samplesMs) => {
      const sorted = [...samplesMs].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      return { medianMs: sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2, samplesMs };
    });
  } finally {
    for (const session of sessions) await session.release();
  }
}
