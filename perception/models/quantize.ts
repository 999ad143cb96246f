/**
 * Static INT8 quantization of an FP32 ONNX model into QDQ form, following onnxruntime's quantizer
 * (quantize_static, QuantFormat.QDQ) so ORT's CPU graph optimizer fuses each DequantizeLinear -> op ->
 * QuantizeLinear group into an integer kernel (QLinearConv, QLinearAdd, QLinearMul, QLinearConcat,
 * QLinearSigmoid, QLinearGlobalAveragePool) or drops the Q/DQ around ops that only move values (Resize,
 * MaxPool, Transpose, Reshape ...).
 *
 * Conventions (the ORT ones):
 * - Conv weights: int8, symmetric, per output channel (axis 0): scale[c] = max|W[c]| / 127, zero point 0,
 *   stored as an int8 initializer read through a DequantizeLinear with `axis = 0`.
 * - Conv bias: int32, scale[c] = inputScale * weightScale[c], zero point 0 (what QLinearConv adds to
 *   its int32 accumulators).
 * - Activations: one QuantizeLinear -> DequantizeLinear pair per tensor that a quantized op reads or
 *   writes; every consumer (quantized or not) reads the DequantizeLinear output, so a quantized op's
 *   output edges all end in a QuantizeLinear, which the fusion requires.
 *   'uint8' (default): asymmetric over [min(0, min), max(0, max)], 256 levels. 'int8': symmetric,
 *   scale = max|x| / 127, zero point 0.
 * - Ops that only move or select values (Resize, MaxPool, Transpose, Reshape ...) give their output the
 *   scale and zero point of their input, so ORT can run them on the 8-bit data directly.
 * - A node kept FP32 (skipNodes, or not quantizable) reads the dequantized tensor, except a Conv,
 *   ConvTranspose or Gemm: it reads the value before quantization (see FLOAT_WEIGHT_OPS), so that ORT
 *   does not quantize its weights per tensor behind the skip list's back.
 * - A quantized Relu, or a Clip whose bounds contain 0, that is the only reader of a quantized op's
 *   output is removed and the producer writes its output tensor instead (uint8 only): the activation's
 *   calibrated range starts at 0, so uint8 saturation performs the clamp (ORT's QDQRemovableActivation).
 * Beyond ORT's quantizer, two exact rewrites that let more of the graph run on integers:
 * - A quantized Mul by a positive scalar constant (hard-swish's x / 6) is removed; its output is the
 *   input's integers read through a DequantizeLinear with scale * constant.
 * - A quantized ReduceMean over H, W of a 4-D tensor with keepdims (an SE block's squeeze) becomes the
 *   equivalent GlobalAveragePool, which ORT fuses (it has no QDQ fusion for ReduceMean).
 *
 * Why uint8 activations (U8S8): on x86, ORT fuses QDQ Conv into QLinearConv only for uint8 activations
 * (`QDQIsInt8Allowed()` is true only on ARM; int8 activations leave DQ -> FP32 Conv -> Q, slower than
 * plain FP32), and MLAS's x86 int8 GEMM/conv kernels are u8 x s8 (VPMADDUBSW on AVX2, VPDPBUSD on
 * AVX512-VNNI / AVX-VNNI). On AVX2 CPUs without VNNI, VPMADDUBSW adds two u8*s8 products into a
 * saturating int16; `reduceRange` (7-bit weights) avoids that overflow at some accuracy cost.
 */
import { validateOnnxModel, attr, type OnnxGraph, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx.js';

export type ActivationType = 'uint8' | 'int8';

/** A calibrated real-valued range of one tensor. */
export interface TensorRange {
  min: number;
  max: number;
}

export interface QuantizeOptions {
  /** Activation element type: 'uint8' asymmetric (x86 fast path, default) or 'int8' symmetric. */
  activationType: ActivationType;
  /** Op types to quantize; Conv is always included. Supported: the keys of QUANTIZABLE_OPS. */
  opTypes: readonly string[];
  /** Names of nodes kept in FP32. */
  skipNodes: readonly string[];
  /** 7-bit weights ([-63, 63]) for AVX2 CPUs without VNNI, where u8 x s8 pairs can saturate int16. */
  reduceRange: boolean;
  /** Remove Relu/Clip after a quantized op and let uint8 saturation clamp (uint8 only). */
  foldActivations: boolean;
  /**
   * Remove a quantized Mul by a positive scalar constant (hard-swish's x / 6): its output is the input's
   * integers read through a DequantizeLinear with scale * constant. Exact, and one integer kernel less.
   */
  foldScalarMul: boolean;
}

/**
 * How each quantizable op is handled: which inputs carry activations, and whether the output gets its
 * own calibrated range or reuses the input's quantization parameters (ops that only move values).
 */
export const QUANTIZABLE_OPS: Readonly<Record<string, { inputs: 'first' | 'all'; output: 'calibrated' | 'input' }>> = Object.freeze({
  Conv: { inputs: 'first', output: 'calibrated' },
  Add: { inputs: 'all', output: 'calibrated' },
  Mul: { inputs: 'all', output: 'calibrated' },
  Concat: { inputs: 'all', output: 'calibrated' },
  Relu: { inputs: 'first', output: 'calibrated' },
  Clip: { inputs: 'first', output: 'calibrated' },
  Sigmoid: { inputs: 'first', output: 'calibrated' },
  GlobalAveragePool: { inputs: 'first', output: 'calibrated' },
  AveragePool: { inputs: 'first', output: 'calibrated' },
  ReduceMean: { inputs: 'first', output: 'calibrated' },
  Resize: { inputs: 'first', output: 'input' },
  MaxPool: { inputs: 'first', output: 'input' },
  Transpose: { inputs: 'first', output: 'input' },
  Reshape: { inputs: 'first', output: 'input' },
  Flatten: { inputs: 'first', output: 'input' },
  Squeeze: { inputs: 'first', output: 'input' },
  Unsqueeze: { inputs: 'first', output: 'input' },
});

/**
 * Defaults: the ops ORT's CPU optimizer turns into integer kernels or runs on 8-bit data. ORT has no
 * QDQ fusion for ReduceMean, so a quantized ReduceMean must be a spatial mean of a 4-D tensor with
 * keepdims (an SE block's squeeze), which is rewritten to the equivalent GlobalAveragePool (fused to
 * QLinearGlobalAveragePool); other ReduceMeans stay FP32. (Measured on the MobileNetV3 CenterNet: ORT
 * runs the quantized graph in NHWC, where an FP32 ReduceMean over H, W took 7x longer than in NCHW.)
 */
export const DEFAULT_QUANTIZE_OPTIONS: Readonly<QuantizeOptions> = Object.freeze({
  activationType: 'uint8',
  opTypes: Object.freeze(['Conv', 'Add', 'Mul', 'Concat', 'Relu', 'Clip', 'Sigmoid', 'ReduceMean', 'GlobalAveragePool', 'AveragePool', 'Resize', 'MaxPool', 'Transpose']),
  skipNodes: Object.freeze([]),
  reduceRange: false,
  foldActivations: true,
  foldScalarMul: true,
});

/**
 * Ops whose FP32 weights onnxruntime quantizes itself (per-tensor int8, its WeightBiasQuantization
 * transformer) when their input 0 comes from a DequantizeLinear. One of them that stays FP32 (skipped,
 * or not quantizable) therefore reads its input before quantization, so it really computes in FP32;
 * the producer of that input then cannot be fused (its output also feeds a non-Q node).
 */
const FLOAT_WEIGHT_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm']);

/** Metadata key under which the quantized model records how it was made. */
export const QUANTIZATION_METADATA_KEY = 'arhud.quantization';

/** Float32 values below this give a zero scale; ORT then uses scale 1 (numpy.finfo(float32).tiny). */
const FLOAT32_TINY = 1.1754943508222875e-38;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** Which ops the quantizer touched, for reports and tests. */
export interface QuantizationPlan {
  /** Nodes that run quantized (their data inputs and outputs get Q/DQ). */
  quantized: string[];
  /** Relu/Clip nodes removed because the producer's uint8 output range clamps instead. */
  folded: { node: string; into: string }[];
  /** ReduceMean nodes (spatial means) written as GlobalAveragePool under the same name. */
  rewritten: string[];
  /** Mul-by-positive-scalar nodes removed: `output` is `input` read with its scale times `factor`. */
  scaled: { node: string; input: string; output: string; factor: number }[];
  /** Nodes of a quantizable op type that stay FP32, with the reason. */
  float: { node: string; reason: string }[];
  /** Activation tensors that need a calibrated range (after folding; ops that reuse their input's parameters excluded). */
  calibrationTensors: string[];
}

export interface QParams {
  scale: number;
  zeroPoint: number;
}

// ---------------------------------------------------------------------------------------------
// Tensor types

/** Ops whose outputs have the element type of their first input. */
const SAME_TYPE_OPS = new Set([
  'Abs', 'Add', 'AveragePool', 'BatchNormalization', 'Clip', 'Concat', 'Conv', 'ConvTranspose', 'DepthToSpace', 'Div', 'Dropout', 'Elu', 'Erf',
  'Exp', 'Expand', 'Flatten', 'Gather', 'Gemm', 'GlobalAveragePool', 'GlobalMaxPool', 'HardSigmoid', 'HardSwish', 'Identity', 'InstanceNormalization',
  'LayerNormalization', 'LeakyRelu', 'Log', 'MatMul', 'Max', 'MaxPool', 'Mean', 'Min', 'Mul', 'Neg', 'Pad', 'Pow', 'PRelu', 'ReduceMax', 'ReduceMean',
  'ReduceMin', 'ReduceSum', 'Relu', 'Reshape', 'Resize', 'Sigmoid', 'Slice', 'Softmax', 'SpaceToDepth', 'Split', 'Sqrt', 'Squeeze', 'Sub', 'Tanh',
  'Tile', 'TopK', 'Transpose', 'Unsqueeze', 'Upsample',
]);
/** Of those, ops whose outputs after the first are not data (indices, masks, statistics). */
const FIRST_OUTPUT_ONLY_OPS = new Set(['BatchNormalization', 'Dropout', 'LayerNormalization', 'MaxPool', 'TopK']);
const ONNX_FLOAT = 1;

/**
 * Names of the float32 tensors that nodes compute or the graph takes as input (not initializers), in
 * graph order: the activations a calibrator can observe. Types are propagated through ops whose output
 * type follows their first input; tensors of other ops (Shape, Cast to int ...) are left out.
 */
export function floatActivationTensors(graph: Readonly<OnnxGraph>): string[] {
  const float = new Set<string>();
  const result: string[] = [];
  for (const input of graph.inputs) {
    if (input.elemType === 'float32' && !graph.initializers.some((t) => t.name === input.name)) {
      float.add(input.name);
      result.push(input.name);
    }
  }
  for (const tensor of graph.initializers) if (tensor.dataType === 'float32') float.add(tensor.name);
  for (const node of graph.nodes) {
    let outputs: string[] = [];
    if (node.opType === 'Cast') {
      const to = node.attributes.to;
      if (to?.type === 'int' && to.value === ONNX_FLOAT) outputs = node.outputs.slice(0, 1);
    } else if (node.opType === 'Constant') {
      const value = node.attributes.value;
      if (value?.type === 'tensor' && value.value.dataType === 'float32') node.outputs.forEach((o) => float.add(o));
    } else if (SAME_TYPE_OPS.has(node.opType) && float.has(node.inputs[0] ?? '')) {
      outputs = FIRST_OUTPUT_ONLY_OPS.has(node.opType) ? node.outputs.slice(0, 1) : node.outputs;
    }
    for (const output of outputs) {
      if (output === '') continue;
      float.add(output);
      result.push(output);
    }
  }
  return result;
}

/** Ops whose output rank is the (largest) rank of their inputs. */
const RANK_PRESERVING_OPS = new Set([
  'Abs', 'Add', 'BatchNormalization', 'Clip', 'Concat', 'Conv', 'Div', 'Elu', 'Exp', 'HardSigmoid', 'HardSwish', 'Identity', 'LeakyRelu', 'Log',
  'Max', 'Min', 'Mul', 'Neg', 'Pow', 'PRelu', 'Relu', 'Resize', 'Sigmoid', 'Softmax', 'Sqrt', 'Sub', 'Tanh', 'Transpose', 'AveragePool', 'MaxPool',
  'GlobalAveragePool', 'GlobalMaxPool',
]);

/** Ranks of the tensors whose rank follows from graph inputs and initializers through rank-preserving ops. */
export function tensorRanks(graph: Readonly<OnnxGraph>): Map<string, number> {
  const ranks = new Map<string, number>();
  for (const input of graph.inputs) if (!input.shapeUnknown) ranks.set(input.name, input.shape.length);
  for (const tensor of graph.initializers) ranks.set(tensor.name, tensor.dims.length);
  for (const node of graph.nodes) {
    const keepsDims = node.opType !== 'ReduceMean' || node.attributes.keepdims?.value !== 0;
    if (!(RANK_PRESERVING_OPS.has(node.opType) || (node.opType === 'ReduceMean' && keepsDims))) continue;
    const dataInputs = node.opType === 'Resize' || node.opType === 'Clip' || node.opType === 'ReduceMean' ? node.inputs.slice(0, 1) : node.inputs.filter((i) => i !== '');
    const inputRanks = dataInputs.map((i) => ranks.get(i));
    if (inputRanks.length === 0 || inputRanks.some((r) => r === undefined)) continue;
    ranks.set(node.outputs[0]!, Math.max(...(inputRanks as number[])));
  }
  return ranks;
}

/** Whether a ReduceMean is a spatial mean (axes H, W of a 4-D NCHW tensor, keepdims), i.e. a GlobalAveragePool. */
function isSpatialMean(node: OnnxNode, ranks: ReadonlyMap<string, number>, initializers: ReadonlyMap<string, OnnxTensor>): boolean {
  if (node.opType !== 'ReduceMean' || ranks.get(node.inputs[0] ?? '') !== 4 || node.attributes.keepdims?.value === 0) return false;
  const axesInput = node.inputs[1] ? initializers.get(node.inputs[1]) : undefined;
  const axes = axesInput ? Array.from(axesInput.data as BigInt64Array, Number) : node.attributes.axes?.type === 'ints' ? node.attributes.axes.value : undefined;
  if (!axes || (node.inputs[1] && !axesInput)) return false;
  const normalized = axes.map((a) => (a < 0 ? a + 4 : a)).sort();
  return normalized.length === 2 && normalized[0] === 2 && normalized[1] === 3;
}

// ---------------------------------------------------------------------------------------------
// Quantization parameters

/** Rounds half to even, like QuantizeLinear and numpy.round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return (r - x === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0;
}

/**
 * Scale and zero point for a real range, as ORT's compute_scale_zp: the range is widened to contain
 * 0 (so 0 is exact); uint8 is asymmetric over 0..255, int8 symmetric over -127..127 with zero point 0.
 * The scale is rounded to float32, as stored.
 */
export function activationQParams(range: TensorRange, type: ActivationType): QParams {
  let rmin = Math.min(range.min, 0);
  let rmax = Math.max(range.max, 0);
  if (type === 'int8') {
    const absMax = Math.max(-rmin, rmax);
    rmin = -absMax;
    rmax = absMax;
  }
  const [qmin, qmax] = type === 'int8' ? [-127, 127] : [0, 255];
  const scale = Math.fround((rmax - rmin) / (qmax - qmin));
  if (!(scale >= FLOAT32_TINY)) return { scale: 1, zeroPoint: 0 };
  return { scale, zeroPoint: Math.min(qmax, Math.max(qmin, roundHalfEven(qmin - rmin / scale))) };
}

/** Symmetric per-output-channel int8 quantization of a weight tensor along axis 0. */
export function quantizeWeightsPerChannel(weights: Float32Array, channels: number, qmax: number): { data: Int8Array; scales: Float32Array } {
  const perChannel = weights.length / channels;
  const data = new Int8Array(weights.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let absMax = 0;
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) absMax = Math.max(absMax, Math.abs(weights[i]!));
    const scale = Math.fround(absMax / qmax);
    scales[c] = scale >= FLOAT32_TINY ? scale : 1;
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) data[i] = Math.max(-qmax, Math.min(qmax, roundHalfEven(weights[i]! / scales[c]!)));
  }
  return { data, scales };
}

// ---------------------------------------------------------------------------------------------
// Planning

interface Plan extends QuantizationPlan {
  nodes: OnnxNode[];
  quantizedSet: Set<OnnxNode>;
  /** Outputs of removed scalar Muls -> the tensor they scale. */
  aliases: Map<string, { source: string; factor: number }>;
}

function resolveOptions(options: Partial<QuantizeOptions>, where: string): QuantizeOptions {
  const resolved: QuantizeOptions = { ...DEFAULT_QUANTIZE_OPTIONS, ...options };
  if (resolved.activationType !== 'uint8' && resolved.activationType !== 'int8') {
    throw new RangeError(`${where}: options.activationType must be 'uint8' or 'int8', got '${String(resolved.activationType)}'`);
  }
  for (const op of resolved.opTypes) {
    if (!(op in QUANTIZABLE_OPS)) throw new RangeError(`${where}: options.opTypes: '${op}' is not a quantizable op type (supported: ${Object.keys(QUANTIZABLE_OPS).join(', ')})`);
  }
  return resolved;
}

function scalarInitializer(initializers: ReadonlyMap<string, OnnxTensor>, name: string | undefined): number | undefined {
  if (name === undefined || name === '') return undefined;
  const tensor = initializers.get(name);
  if (!tensor || tensor.data.length !== 1 || tensor.dataType !== 'float32') return Number.NaN;
  return (tensor.data as Float32Array)[0]!;
}

/** The node's [lo, hi] clamp if it is a Relu or a Clip with constant bounds, else undefined. */
export function activationClamp(node: OnnxNode, initializers: ReadonlyMap<string, OnnxTensor>): [number, number] | undefined {
  if (node.opType === 'Relu') return [0, Infinity];
  if (node.opType !== 'Clip') return undefined;
  const lo = scalarInitializer(initializers, node.inputs[1]) ?? -Infinity;
  const hi = scalarInitializer(initializers, node.inputs[2]) ?? Infinity;
  return Number.isNaN(lo) || Number.isNaN(hi) ? undefined : [lo, hi];
}

function makePlan(model: OnnxModel, options: QuantizeOptions, where: string): Plan {
  const { graph } = model;
  const initializers = new Map(graph.initializers.map((t) => [t.name, t]));
  const floatTensors = new Set(floatActivationTensors(graph));
  const skip = new Set(options.skipNodes);
  const nodeNames = new Set(graph.nodes.map((n) => n.name));
  for (const name of skip) if (!nodeNames.has(name)) throw new RangeError(`${where}: options.skipNodes: no node named '${name}' in graph '${graph.name}'`);
  const opTypes = new Set(['Conv', ...options.opTypes]);
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));

  const ranks = tensorRanks(graph);
  const rewritten: string[] = [];
  const nodes = graph.nodes.map((n): OnnxNode => {
    if (opTypes.has('ReduceMean') && !skip.has(n.name) && isSpatialMean(n, ranks, initializers)) {
      rewritten.push(n.name);
      return { name: n.name, opType: 'GlobalAveragePool', inputs: [n.inputs[0]!], outputs: [...n.outputs], attributes: {}, ...(n.domain ? { domain: n.domain } : {}) };
    }
    return { ...n, inputs: [...n.inputs], outputs: [...n.outputs] };
  });
  if (opTypes.has('ReduceMean')) opTypes.add('GlobalAveragePool');
  const quantizedSet = new Set<OnnxNode>();
  const float: QuantizationPlan['float'] = [];
  for (const node of nodes) {
    if (!opTypes.has(node.opType) || (node.domain ?? '') !== '') continue;
    const reason = skip.has(node.name) ? 'in skipNodes' : unsupportedReason(node, initializers, floatTensors);
    if (reason) float.push({ node: node.name, reason });
    else quantizedSet.add(node);
  }

  // FP32 Conv/Gemm nodes read their input before quantization (FLOAT_WEIGHT_OPS), so the tensors they
  // read must exist in FP32 with their true values: no scaled alias (no FP32 value at all) and no
  // folded activation (the value before Q would be the producer's, unclamped).
  const readByFloatWeightOp = new Set(nodes.filter((n) => !quantizedSet.has(n) && FLOAT_WEIGHT_OPS.has(n.opType)).map((n) => n.inputs[0]!));

  // Mul by a positive scalar: an alias of its input with a scaled scale (before activation folding,
  // which could otherwise have moved a clamp into the Mul).
  const scaled: QuantizationPlan['scaled'] = [];
  const aliases = new Map<string, { source: string; factor: number }>();
  if (options.foldScalarMul) {
    for (const node of [...nodes]) {
      if (!quantizedSet.has(node) || node.opType !== 'Mul' || node.inputs.length !== 2) continue;
      const constant = node.inputs.findIndex((i) => {
        const t = initializers.get(i);
        return t !== undefined && t.data.length === 1 && t.dataType === 'float32' && (t.data as Float32Array)[0]! > 0 && t.dims.length <= 1;
      });
      const source = node.inputs[1 - constant];
      if (constant < 0 || !source || initializers.has(source) || readByFloatWeightOp.has(node.outputs[0]!)) continue;
      const factor = (initializers.get(node.inputs[constant]!)!.data as Float32Array)[0]!;
      aliases.set(node.outputs[0]!, { source, factor });
      nodes.splice(nodes.indexOf(node), 1);
      quantizedSet.delete(node);
      scaled.push({ node: node.name, input: source, output: node.outputs[0]!, factor });
    }
  }

  // Fold Relu/Clip into a quantized producer (uint8 only: the range starts at 0, saturation clamps).
  const folded: QuantizationPlan['folded'] = [];
  if (options.foldActivations && options.activationType === 'uint8') {
    const producer = new Map<string, OnnxNode>();
    const readers = new Map<string, number>();
    for (const node of nodes) {
      for (const input of node.inputs) readers.set(input, (readers.get(input) ?? 0) + 1);
      for (const output of node.outputs) producer.set(output, node);
    }
    for (const node of [...nodes]) {
      if (!quantizedSet.has(node)) continue;
      const clamp = activationClamp(node, initializers);
      const input = node.inputs[0]!;
      const source = producer.get(input);
      if (!clamp || !(clamp[0] <= 0 && clamp[1] >= 0) || !source || !quantizedSet.has(source)) continue;
      if (QUANTIZABLE_OPS[source.opType]!.output !== 'calibrated') continue;
      if (readers.get(input) !== 1 || graphOutputs.has(input) || readByFloatWeightOp.has(node.outputs[0]!)) continue;
      source.outputs[source.outputs.indexOf(input)] = node.outputs[0]!;
      producer.set(node.outputs[0]!, source);
      nodes.splice(nodes.indexOf(node), 1);
      quantizedSet.delete(node);
      folded.push({ node: node.name, into: source.name });
    }
  }

  // Tensors that need a calibrated range: data inputs and outputs of quantized nodes, except outputs
  // of ops that reuse their input's parameters.
  const calibration = new Set<string>([...aliases.values()].map((a) => a.source).filter((t) => !aliases.has(t)));
  for (const node of nodes) {
    if (!quantizedSet.has(node)) continue;
    for (const input of dataInputs(node)) if (!initializers.has(input)) calibration.add(input);
    if (QUANTIZABLE_OPS[node.opType]!.output === 'calibrated') calibration.add(node.outputs[0]!);
  }
  // Outputs of ops that reuse their input's parameters (and scaled aliases) need no range even where a quantized op reads them.
  for (const node of nodes) if (quantizedSet.has(node) && QUANTIZABLE_OPS[node.opType]!.output === 'input') calibration.delete(node.outputs[0]!);
  for (const alias of aliases.keys()) calibration.delete(alias);
  const calibrationTensors = [...floatTensors].filter((t) => calibration.has(t));
  return {
    nodes,
    quantizedSet,
    aliases,
    quantized: nodes.filter((n) => quantizedSet.has(n)).map((n) => n.name),
    folded,
    rewritten,
    scaled,
    float,
    calibrationTensors,
  };
}

/** Indices of the inputs of a quantizable node that carry data (not weights, roi, scales, bounds). */
function dataInputIndices(node: OnnxNode): number[] {
  const count = QUANTIZABLE_OPS[node.opType]!.inputs === 'all' ? node.inputs.length : Math.min(1, node.inputs.length);
  return Array.from({ length: count }, (_, i) => i).filter((i) => node.inputs[i] !== '');
}

function dataInputs(node: OnnxNode): string[] {
  return dataInputIndices(node).map((i) => node.inputs[i]!);
}

function unsupportedReason(node: OnnxNode, initializers: ReadonlyMap<string, OnnxTensor>, floatTensors: ReadonlySet<string>): string | undefined {
  if (node.outputs.filter((o) => o !== '').length !== 1) return 'has more than one output';
  if (!floatTensors.has(node.outputs[0]!)) return `output '${node.outputs[0]}' is not known to be float32`;
  for (const input of dataInputs(node)) {
    const constant = initializers.get(input);
    if (constant ? constant.dataType !== 'float32' : !floatTensors.has(input)) return `input '${input}' is not float32`;
  }
  if (node.opType === 'Conv') {
    const weight = initializers.get(node.inputs[1] ?? '');
    if (!weight || weight.dataType !== 'float32' || weight.dims.length < 3) return `weight '${node.inputs[1] ?? ''}' is not a float32 initializer of rank >= 3`;
    const bias = node.inputs[2];
    if (bias) {
      const b = initializers.get(bias);
      if (!b || b.dataType !== 'float32' || b.data.length !== weight.dims[0]) return `bias '${bias}' is not a float32 initializer of ${weight.dims[0]} elements`;
    }
  }
  if (node.opType === 'Clip' && !activationClamp(node, initializers)) return 'min/max are not scalar float32 initializers';
  if (node.opType === 'ReduceMean') return 'not a spatial mean of a 4-D tensor (ORT has no QDQ fusion for ReduceMean)';
  return undefined;
}

/**
 * Which nodes `quantizeStatic` would quantize, fold or keep FP32 with these options, and which
 * activation tensors need calibrated ranges. Needs no ranges.
 */
export function planQuantization(model: OnnxModel, options: Partial<QuantizeOptions> = {}): QuantizationPlan {
  const { quantized, folded, rewritten, scaled, float, calibrationTensors } = makePlan(model, resolveOptions(options, 'planQuantization'), 'planQuantization');
  return { quantized, folded, rewritten, scaled, float, calibrationTensors };
}

// ---------------------------------------------------------------------------------------------
// Rewriting

/**
 * Quantizes `model` to QDQ form with the calibrated activation `ranges` (tensor name -> range, e.g.
 * from `calibrate`). Returns a new model (the input is not modified; FP32 weights that quantized Convs
 * no longer read are dropped). Throws a RangeError naming the tensor when a needed range is missing.
 */
export function quantizeStatic(model: OnnxModel, ranges: ReadonlyMap<string, TensorRange>, options: Partial<QuantizeOptions> = {}): OnnxModel {
  const where = 'quantizeStatic';
  validateOnnxModel(model);
  const opts = resolveOptions(options, where);
  const opset = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')!;
  if (opset.version < 13) throw new RangeError(`${where}: per-channel DequantizeLinear needs opset >= 13, model has ${opset.version}`);
  for (const [tensor, range] of ranges) {
    if (!Number.isFinite(range.min) || !Number.isFinite(range.max) || range.min > range.max) {
      throw new RangeError(`${where}: range of tensor '${tensor}' must be finite with min <= max, got [${range.min}, ${range.max}]`);
    }
  }
  const { graph } = model;
  const plan = makePlan(model, opts, where);
  const { nodes, quantizedSet, aliases } = plan;
  const initializers = new Map(graph.initializers.map((t) => [t.name, t]));
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  const producers = new Map<string, OnnxNode>();
  for (const node of nodes) for (const output of node.outputs) producers.set(output, node);

  const used = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.map((t) => t.name)]);
  for (const node of graph.nodes) {
    used.add(node.name);
    for (const name of [...node.inputs, ...node.outputs]) used.add(name);
  }
  const fresh = (base: string): string => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };

  const newInitializers: OnnxTensor[] = [];
  const headNodes: OnnxNode[] = [];
  const addInitializer = (base: string, dataType: OnnxTensor['dataType'], dims: number[], data: OnnxTensor['data']): string => {
    const name = fresh(base);
    newInitializers.push({ name, dataType, dims, data });
    return name;
  };
  const dequantize = (base: string, inputs: string[], axis?: number): string => {
    const output = fresh(`${base}_DequantizeLinear_Output`);
    headNodes.push({ name: fresh(`${base}_DequantizeLinear`), opType: 'DequantizeLinear', inputs, outputs: [output], attributes: axis === undefined ? {} : { axis: attr.int(axis) } });
    return output;
  };
  const zeroPointTensor = (zeroPoint: number) => (opts.activationType === 'uint8' ? Uint8Array.of(zeroPoint) : Int8Array.of(zeroPoint));

  // Activation parameters: calibrated, or inherited through ops that only move values.
  const paramsMemo = new Map<string, { params: QParams; scale: string; zeroPoint: string }>();
  const paramsOf = (tensor: string, reader: string): { params: QParams; scale: string; zeroPoint: string } => {
    const known = paramsMemo.get(tensor);
    if (known) return known;
    const producer = producers.get(tensor);
    const alias = aliases.get(tensor);
    let entry;
    if (alias) {
      const source = paramsOf(alias.source, reader);
      const params = { scale: Math.fround(source.params.scale * alias.factor), zeroPoint: source.params.zeroPoint };
      entry = { params, scale: addInitializer(`${tensor}_scale`, 'float32', [], Float32Array.of(params.scale)), zeroPoint: source.zeroPoint };
    } else if (producer && quantizedSet.has(producer) && QUANTIZABLE_OPS[producer.opType]!.output === 'input') {
      entry = paramsOf(producer.inputs[0]!, `node '${producer.name}' (${producer.opType})`);
    } else {
      const range = ranges.get(tensor);
      if (!range) throw new RangeError(`${where}: no calibrated range for tensor '${tensor}', which ${reader} reads or writes`);
      const params = activationQParams(range, opts.activationType);
      entry = {
        params,
        scale: addInitializer(`${tensor}_scale`, 'float32', [], Float32Array.of(params.scale)),
        zeroPoint: addInitializer(`${tensor}_zero_point`, opts.activationType, [], zeroPointTensor(params.zeroPoint)),
      };
    }
    paramsMemo.set(tensor, entry);
    return entry;
  };

  // Which activation tensors get a Q -> DQ pair.
  const quantizedTensors = new Set<string>();
  for (const node of nodes) {
    if (!quantizedSet.has(node)) continue;
    const label = `node '${node.name}' (${node.opType})`;
    for (const input of dataInputs(node)) {
      if (initializers.has(input)) continue;
      paramsOf(input, label);
      quantizedTensors.add(input);
    }
    paramsOf(node.outputs[0]!, label);
    quantizedTensors.add(node.outputs[0]!);
  }
  // The integers a scaled alias reads: its source's (through chains of aliases).
  const rootOf = (tensor: string): string => (aliases.has(tensor) ? rootOf(aliases.get(tensor)!.source) : tensor);
  const aliasesOfRoot = new Map<string, string[]>();
  for (const alias of aliases.keys()) {
    const root = rootOf(alias);
    paramsOf(alias, `the Mul that wrote '${alias}'`);
    quantizedTensors.delete(alias);
    quantizedTensors.add(root);
    aliasesOfRoot.set(root, [...(aliasesOfRoot.get(root) ?? []), alias]);
  }

  // Names: consumers read `dqName`; a graph output keeps its name on the DequantizeLinear output and
  // its producer writes `<name>_QuantizeLinear_Input` (ORT's naming).
  const qdq = new Map<string, { pre: string; quantized: string; dq: string }>();
  for (const tensor of quantizedTensors) {
    const isOutput = graphOutputs.has(tensor) && producers.has(tensor);
    qdq.set(tensor, {
      pre: isOutput ? fresh(`${tensor}_QuantizeLinear_Input`) : tensor,
      quantized: fresh(`${tensor}_QuantizeLinear_Output`),
      dq: isOutput ? tensor : fresh(`${tensor}_DequantizeLinear_Output`),
    });
  }
  for (const alias of aliases.keys()) {
    qdq.set(alias, { pre: alias, quantized: qdq.get(rootOf(alias))!.quantized, dq: graphOutputs.has(alias) ? alias : fresh(`${alias}_DequantizeLinear_Output`) });
  }
  const dequantizeNode = (tensor: string): OnnxNode => {
    const { scale, zeroPoint } = paramsOf(tensor, 'a quantized node');
    const names = qdq.get(tensor)!;
    return { name: fresh(`${tensor}_DequantizeLinear`), opType: 'DequantizeLinear', inputs: [names.quantized, scale, zeroPoint], outputs: [names.dq], attributes: {} };
  };
  const qdqNodes = (tensor: string): OnnxNode[] => {
    const names = qdq.get(tensor)!;
    const { scale, zeroPoint } = paramsOf(tensor, 'a quantized node');
    return [
      { name: fresh(`${tensor}_QuantizeLinear`), opType: 'QuantizeLinear', inputs: [names.pre, scale, zeroPoint], outputs: [names.quantized], attributes: {} },
      dequantizeNode(tensor),
      ...(aliasesOfRoot.get(tensor) ?? []).map(dequantizeNode),
    ];
  };

  // Constant operands of quantized ops (weights, biases, Add/Mul/Concat constants).
  const weightQmax = opts.reduceRange ? 63 : 127;
  const quantizedWeights = new Map<string, { dq: string; scales: Float32Array }>();
  const quantizeConvWeight = (name: string) => {
    let entry = quantizedWeights.get(name);
    if (!entry) {
      const weight = initializers.get(name)!;
      const { data, scales } = quantizeWeightsPerChannel(weight.data as Float32Array, weight.dims[0]!, weightQmax);
      const q = addInitializer(`${name}_quantized`, 'int8', [...weight.dims], data);
      const s = addInitializer(`${name}_scale`, 'float32', [scales.length], scales);
      const z = addInitializer(`${name}_zero_point`, 'int8', [scales.length], new Int8Array(scales.length));
      entry = { dq: dequantize(name, [q, s, z], 0), scales };
      quantizedWeights.set(name, entry);
    }
    return entry;
  };
  const quantizedBiases = new Map<string, string>();
  const quantizeConvBias = (name: string, inputScale: number, weightScales: Float32Array, conv: OnnxNode): string => {
    const key = `${name}\u0000${inputScale}\u0000${conv.inputs[1]}`;
    let dq = quantizedBiases.get(key);
    if (!dq) {
      const bias = initializers.get(name)!.data as Float32Array;
      const scales = weightScales.map((s) => Math.fround(inputScale * s));
      const data = Int32Array.from(bias, (b, c) => Math.max(INT32_MIN, Math.min(INT32_MAX, roundHalfEven(b / scales[c]!))));
      const q = addInitializer(`${name}_quantized`, 'int32', [bias.length], data);
      const s = addInitializer(`${name}_quantized_scale`, 'float32', [bias.length], scales);
      const z = addInitializer(`${name}_quantized_zero_point`, 'int32', [bias.length], new Int32Array(bias.length));
      dq = dequantize(`${name}_quantized`, [q, s, z], 0);
      quantizedBiases.set(key, dq);
    }
    return dq;
  };
  const quantizedConstants = new Map<string, string>();
  const quantizeConstant = (name: string): string => {
    let dq = quantizedConstants.get(name);
    if (!dq) {
      const tensor = initializers.get(name)!;
      const values = tensor.data as Float32Array;
      let min = 0;
      let max = 0;
      for (const v of values) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      const params = activationQParams({ min, max }, opts.activationType);
      const [qmin, qmax] = opts.activationType === 'uint8' ? [0, 255] : [-127, 127];
      const quantize = (v: number) => Math.max(qmin, Math.min(qmax, roundHalfEven(v / params.scale) + params.zeroPoint));
      const data = opts.activationType === 'uint8' ? Uint8Array.from(values, quantize) : Int8Array.from(values, quantize);
      const q = addInitializer(`${name}_quantized`, opts.activationType, [...tensor.dims], data);
      const s = addInitializer(`${name}_scale`, 'float32', [], Float32Array.of(params.scale));
      const z = addInitializer(`${name}_zero_point`, opts.activationType, [], zeroPointTensor(params.zeroPoint));
      dq = dequantize(name, [q, s, z]);
      quantizedConstants.set(name, dq);
    }
    return dq;
  };

  const body: OnnxNode[] = [];
  for (const input of graph.inputs) if (quantizedTensors.has(input.name)) body.push(...qdqNodes(input.name));
  for (const node of nodes) {
    const readsFloat = !quantizedSet.has(node) && FLOAT_WEIGHT_OPS.has(node.opType);
    const inputs = node.inputs.map((input, i) => {
      const names = qdq.get(input);
      return names ? (readsFloat && i === 0 ? names.pre : names.dq) : input;
    });
    if (quantizedSet.has(node)) {
      if (node.opType === 'Conv') {
        const weight = quantizeConvWeight(node.inputs[1]!);
        inputs[1] = weight.dq;
        const bias = node.inputs[2];
        if (bias) inputs[2] = quantizeConvBias(bias, paramsOf(node.inputs[0]!, `node '${node.name}' (Conv)`).params.scale, weight.scales, node);
      } else {
        for (const i of dataInputIndices(node)) if (initializers.has(node.inputs[i]!)) inputs[i] = quantizeConstant(node.inputs[i]!);
      }
    }
    const outputs = node.outputs.map((output) => (qdq.has(output) ? qdq.get(output)!.pre : output));
    body.push({ ...node, inputs, outputs });
    for (const output of node.outputs) if (qdq.has(output)) body.push(...qdqNodes(output));
  }

  const allNodes = [...headNodes, ...body];
  const read = new Set(allNodes.flatMap((n) => n.inputs));
  const produced = new Set(allNodes.flatMap((n) => n.outputs));
  const result: OnnxModel = {
    ...model,
    metadata: {
      ...model.metadata,
      [QUANTIZATION_METADATA_KEY]: JSON.stringify({
        format: 'QDQ',
        activations: opts.activationType === 'uint8' ? 'uint8 asymmetric' : 'int8 symmetric',
        weights: `int8 symmetric per-channel${opts.reduceRange ? ' (7-bit)' : ''}`,
        quantized: plan.quantized.length,
        folded: plan.folded.length,
        rewritten: plan.rewritten.length,
        scaled: plan.scaled.length,
        float: plan.float.length,
      }),
    },
    graph: {
      ...graph,
      nodes: allNodes,
      initializers: [...graph.initializers.filter((t) => read.has(t.name) || graphOutputs.has(t.name)), ...newInitializers],
      valueInfos: graph.valueInfos.filter((v) => produced.has(v.name)),
    },
  };
  validateOnnxModel(result);
  return result;
}
