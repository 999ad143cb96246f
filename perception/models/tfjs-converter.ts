/**
 * TensorFlow.js graph model (model.json + weight shards) -> ONNX, for the conv-net subset that
 * detectors such as MobileNetV3-CenterNet use.
 *
 * Layout convention: TF tensors are NHWC; the ONNX graph runs NCHW throughout. A runtime 4-D tensor
 * is always stored NCHW in ONNX while its recorded `shape` stays in TF terms ([N, H, W, C]); layout
 * is converted once at the graph input (or not at all, when the caller writes NCHW) and once per 4-D
 * output when asked. Layout-dependent ops remap their axes (`NCHW_AXIS_OF_NHWC`), and constants that
 * broadcast against 4-D activations are reshaped or transposed at conversion time.
 *
 * Every node whose inputs are all constants (including `Shape` of a statically shaped tensor) is
 * computed here and never reaches the ONNX graph. Nodes the requested outputs do not need are pruned
 * before conversion, so unsupported ops in a decoding tail (TopK, NMS) do no harm.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  MIN_OPSET,
  OnnxGraphBuilder,
  attr,
  float16Value,
  type OnnxAttribute,
  type OnnxDataType,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxTensorData,
} from './onnx.js';

/** Opset written unless the options ask for another. */
export const DEFAULT_OPSET = 17;
/** Highest opset accepted (ReduceMean takes its axes as an input from 18 on; both forms are written). */
export const MAX_OPSET = 21;

/** Axis convention: index = NHWC axis (TF), value = the same axis in NCHW (ONNX). */
const NCHW_AXIS_OF_NHWC = [0, 2, 3, 1] as const;
/** Transpose perms between the two layouts. */
const PERM_NCHW_FROM_NHWC = [0, 3, 1, 2];
const PERM_NHWC_FROM_NCHW = [0, 2, 3, 1];
/** Fused activations of _FusedConv2D / FusedDepthwiseConv2dNative this converter writes. */
const FUSED_ACTIVATIONS = ['Relu', 'Relu6', 'Sigmoid'] as const;
/** Bytes per element of the tfjs weight dtypes (quantized dtypes included). */
const WEIGHT_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };
/** tfjs string weights: a uint32 length before each element's bytes. */
const STRING_LENGTH_BYTES = 4;

export interface TfjsConvertOptions {
  /** Graph outputs to keep (everything not needed for them is pruned, e.g. the TopK/NMS decoding tail). */
  outputs: string[];
  /** Layout of the ONNX input: 'nchw' (default; the caller writes NCHW, no transpose in the graph) or 'nhwc' (one Transpose at the input). */
  inputLayout?: 'nchw' | 'nhwc';
  /** Layout of 4-D outputs: 'nchw' (default) or 'nhwc' (one Transpose per output). */
  outputLayout?: 'nchw' | 'nhwc';
  /** ONNX opset, MIN_OPSET..MAX_OPSET; default DEFAULT_OPSET. */
  opset?: number;
}

export interface TfjsConversionReport {
  /** TF op counts of the nodes the outputs need (after pruning, Const and Placeholder included). */
  opsIn: Record<string, number>;
  /** ONNX nodes written. */
  nodesOut: number;
  /** TF nodes (not Const) computed at conversion time. */
  foldedConstants: number;
  /** Transpose nodes written (layout changes at the input and outputs only). */
  transposes: number;
  inputName: string;
  outputNames: string[];
}

/** A model the converter cannot read or convert; the message names the file, and the node and op where there is one. */
export class TfjsConversionError extends Error {
  override readonly name = 'TfjsConversionError';
}

/**
 * Reads `modelJsonPath` and its weight shards and returns the equivalent ONNX model (float32
 * weights) with a report of what was converted.
 */
export async function convertTfjsGraphModel(modelJsonPath: string, options: TfjsConvertOptions): Promise<{ model: OnnxModel; report: TfjsConversionReport }> {
  const settings = checkOptions(options);
  const { nodes, weights, signatureOutputs } = await readGraphModel(modelJsonPath);
  return convertGraph(modelJsonPath, nodes, weights, signatureOutputs, settings);
}

// ---------------------------------------------------------------------------------------------
// Options

interface Settings {
  outputs: string[];
  inputLayout: 'nchw' | 'nhwc';
  outputLayout: 'nchw' | 'nhwc';
  opset: number;
}

function checkOptions(options: TfjsConvertOptions): Settings {
  const where = 'convertTfjsGraphModel';
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: 'options' must be an object`);
  const { outputs } = options;
  if (!Array.isArray(outputs) || !outputs.every((o) => typeof o === 'string')) throw new TypeError(`${where}: 'options.outputs' must be an array of node names`);
  if (outputs.length === 0) throw new RangeError(`${where}: 'options.outputs' must name at least one node`);
  if (new Set(outputs).size !== outputs.length) throw new RangeError(`${where}: 'options.outputs' names a node twice: [${outputs.join(', ')}]`);
  const layout = (key: 'inputLayout' | 'outputLayout'): 'nchw' | 'nhwc' => {
    const value = options[key] ?? 'nchw';
    if (value !== 'nchw' && value !== 'nhwc') throw new RangeError(`${where}: 'options.${key}' must be 'nchw' or 'nhwc', got '${String(value)}'`);
    return value;
  };
  const opset = options.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) throw new RangeError(`${where}: 'options.opset' must be an integer in ${MIN_OPSET}..${MAX_OPSET}, got ${opset}`);
  return { outputs: [...outputs], inputLayout: layout('inputLayout'), outputLayout: layout('outputLayout'), opset };
}

// ---------------------------------------------------------------------------------------------
// Reading model.json and the weight shards

interface TfAttr {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  type?: string;
  list?: { s?: string[]; i?: (string | number)[]; f?: number[]; b?: boolean[] };
  shape?: TfShapeJson;
}

interface TfShapeJson {
  dim?: { size?: string | number }[];
  unknownRank?: boolean;
}

interface TfNode {
  name: string;
  op: string;
  /** Data inputs as written ('node' or 'node:1'); control inputs ('^node') dropped. */
  inputs: string[];
  attr: Record<string, TfAttr>;
}

type TfDtype = 'float32' | 'int32' | 'bool';

interface ConstValue {
  kind: 'const';
  dtype: TfDtype;
  /** TF shape and row-major TF layout. */
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/** A weight whose dtype cannot become an ONNX tensor (string, complex64): fine unless a kept node reads it. */
interface UnusableWeight {
  kind: 'unusable';
  reason: string;
}

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype?: string; min?: number; scale?: number };
}

interface GraphModelFiles {
  nodes: Map<string, TfNode>;
  weights: Map<string, ConstValue | UnusableWeight>;
  signatureOutputs: string[];
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

async function readGraphModel(file: string): Promise<GraphModelFiles> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new TfjsConversionError(`${file}: cannot read the model (${(error as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TfjsConversionError(`${file}: not JSON (${(error as Error).message})`);
  }
  if (!isObject(json)) throw new TfjsConversionError(`${file}: not a TensorFlow.js model (expected a JSON object)`);
  if (json.format !== undefined && json.format !== 'graph-model') {
    throw new TfjsConversionError(`${file}: not a TensorFlow.js graph model (format '${String(json.format)}', expected 'graph-model')`);
  }
  const topology = json.modelTopology;
  if (topology === undefined) throw new TfjsConversionError(`${file}: missing 'modelTopology'`);
  if (!isObject(topology) || !Array.isArray(topology.node)) {
    throw new TfjsConversionError(`${file}: not a TensorFlow.js graph model ('modelTopology.node' must be an array of nodes)`);
  }
  const nodes = new Map<string, TfNode>();
  topology.node.forEach((raw: unknown, index) => {
    if (!isObject(raw) || typeof raw.name !== 'string' || typeof raw.op !== 'string') {
      throw new TfjsConversionError(`${file}: modelTopology.node[${index}] needs string fields 'name' and 'op'`);
    }
    if (nodes.has(raw.name)) throw new TfjsConversionError(`${file}: node '${raw.name}' is defined twice`);
    const inputs = Array.isArray(raw.input) ? raw.input.filter((i): i is string => typeof i === 'string' && !i.startsWith('^')) : [];
    nodes.set(raw.name, { name: raw.name, op: raw.op, inputs, attr: isObject(raw.attr) ? (raw.attr as Record<string, TfAttr>) : {} });
  });
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw new TfjsConversionError(`${file}: missing 'weightsManifest' (an array of weight groups)`);
  const weights = new Map<string, ConstValue | UnusableWeight>();
  for (const [groupIndex, group] of manifest.entries()) {
    const where = `${file}: weightsManifest[${groupIndex}]`;
    if (!isObject(group) || !Array.isArray(group.paths) || !group.paths.every((p) => typeof p === 'string') || !Array.isArray(group.weights)) {
      throw new TfjsConversionError(`${where} needs 'paths' (strings) and 'weights' (an array)`);
    }
    const specs = group.weights.map((spec: unknown, i) => checkWeightSpec(spec, `${where}.weights[${i}]`));
    const shardPaths = (group.paths as string[]).map((p) => path.join(path.dirname(file), p));
    const bytes = await readShards(file, shardPaths);
    decodeWeightGroup(file, bytes, specs, shardPaths, weights);
  }
  const signature = isObject(json.signature) && isObject(json.signature.outputs) ? Object.keys(json.signature.outputs) : [];
  return { nodes, weights, signatureOutputs: signature };
}

function checkWeightSpec(spec: unknown, where: string): WeightSpec {
  if (!isObject(spec) || typeof spec.name !== 'string' || typeof spec.dtype !== 'string' || !Array.isArray(spec.shape)) {
    throw new TfjsConversionError(`${where} needs 'name', 'dtype' and 'shape'`);
  }
  if (!spec.shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    throw new TfjsConversionError(`${where} ('${spec.name}'): shape must hold integers >= 0, got [${spec.shape.join(', ')}]`);
  }
  if (spec.quantization !== undefined && !isObject(spec.quantization)) throw new TfjsConversionError(`${where} ('${spec.name}'): 'quantization' must be an object`);
  return spec as unknown as WeightSpec;
}

async function readShards(modelFile: string, shardPaths: string[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const shard of shardPaths) {
    try {
      parts.push(await readFile(shard));
    } catch (error) {
      throw new TfjsConversionError(`${shard}: cannot read the weight shard that ${modelFile} lists (${(error as Error).message})`);
    }
  }
  if (parts.length === 1) return parts[0]!;
  const total = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    total.set(part, offset);
    offset += part.length;
  }
  return total;
}

/** Decodes one group's concatenated shards as tfjs does (io_utils.decodeWeights), checking the byte count. */
function decodeWeightGroup(file: string, bytes: Uint8Array, specs: WeightSpec[], shardPaths: string[], out: Map<string, ConstValue | UnusableWeight>): void {
  const shards = shardPaths.length === 1 ? `${shardPaths[0]!}: has` : `${shardPaths.join(' + ')}: have`;
  const sizeError = (needed: number) => new TfjsConversionError(`${shards} ${bytes.length} bytes, the manifest needs ${needed}`);
  let offset = 0;
  const decoded: [WeightSpec, number, number][] = [];
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    let length: number;
    if (spec.quantization) {
      const qBytes = WEIGHT_BYTES[spec.quantization.dtype ?? ''];
      if (spec.quantization.dtype !== 'uint8' && spec.quantization.dtype !== 'uint16' && spec.quantization.dtype !== 'float16') {
        throw new TfjsConversionError(`${file}: weight '${spec.name}' has quantization dtype '${String(spec.quantization.dtype)}' (supported: uint8, uint16, float16)`);
      }
      length = count * qBytes!;
    } else if (spec.dtype === 'string') {
      length = 0;
      for (let i = 0; i < count; i++) {
        if (offset + length + STRING_LENGTH_BYTES > bytes.length) throw sizeError(offset + length + STRING_LENGTH_BYTES);
        const view = new DataView(bytes.buffer, bytes.byteOffset + offset + length, STRING_LENGTH_BYTES);
        length += STRING_LENGTH_BYTES + view.getUint32(0, true);
      }
    } else {
      const size = WEIGHT_BYTES[spec.dtype];
      if (size === undefined) throw new TfjsConversionError(`${file}: weight '${spec.name}' has dtype '${spec.dtype}' (supported: float32, int32, bool, string, complex64)`);
      length = count * size;
    }
    decoded.push([spec, offset, length]);
    offset += length;
  }
  if (offset !== bytes.length) throw sizeError(offset);
  for (const [spec, start, length] of decoded) out.set(spec.name, decodeWeight(file, spec, bytes.subarray(start, start + length)));
}

function decodeWeight(file: string, spec: WeightSpec, raw: Uint8Array): ConstValue | UnusableWeight {
  const where = `${file}: weight '${spec.name}'`;
  // An aligned copy: a weight may start at any byte offset and may span two shards.
  const buffer = new Uint8Array(raw).buffer;
  const shape = [...spec.shape];
  const q = spec.quantization;
  if (q) {
    if (q.dtype === 'float16') {
      if (spec.dtype !== 'float32') throw new TfjsConversionError(`${where}: float16 quantization needs dtype float32, got ${spec.dtype}`);
      const halves = new Uint16Array(buffer);
      return { kind: 'const', dtype: 'float32', shape, data: Float32Array.from(halves, float16Value) };
    }
    if (typeof q.min !== 'number' || typeof q.scale !== 'number') throw new TfjsConversionError(`${where}: ${q.dtype ?? ''} quantization needs numbers 'min' and 'scale'`);
    const { min, scale } = q;
    const levels = q.dtype === 'uint8' ? new Uint8Array(buffer) : new Uint16Array(buffer);
    if (spec.dtype === 'float32') return { kind: 'const', dtype: 'float32', shape, data: Float32Array.from(levels, (v) => v * scale + min) };
    if (spec.dtype === 'int32') return { kind: 'const', dtype: 'int32', shape, data: Int32Array.from(levels, (v) => Math.round(v * scale + min)) };
    throw new TfjsConversionError(`${where}: ${q.dtype ?? ''} quantization needs dtype float32 or int32, got ${spec.dtype}`);
  }
  switch (spec.dtype) {
    case 'float32':
      return { kind: 'const', dtype: 'float32', shape, data: new Float32Array(buffer) };
    case 'int32':
      return { kind: 'const', dtype: 'int32', shape, data: new Int32Array(buffer) };
    case 'bool':
      return { kind: 'const', dtype: 'bool', shape, data: new Uint8Array(buffer) };
    default:
      return { kind: 'unusable', reason: `weight '${spec.name}' has dtype ${spec.dtype}, which ONNX conversion does not support` };
  }
}

// ---------------------------------------------------------------------------------------------
// Attributes

const decodeBase64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

function attrString(node: TfNode, key: string): string | undefined {
  const value = node.attr[key]?.s;
  return value === undefined ? undefined : decodeBase64(value);
}

function attrInts(node: TfNode, key: string): number[] | undefined {
  const list = node.attr[key]?.list;
  return list ? (list.i ?? []).map(Number) : undefined;
}

function attrInt(node: TfNode, key: string): number | undefined {
  const value = node.attr[key]?.i;
  return value === undefined ? undefined : Number(value);
}

function attrBool(node: TfNode, key: string): boolean {
  return node.attr[key]?.b === true;
}

function attrStrings(node: TfNode, key: string): string[] {
  return (node.attr[key]?.list?.s ?? []).map(decodeBase64);
}

const DTYPE_OF_TF: Record<string, TfDtype> = { DT_FLOAT: 'float32', DT_INT32: 'int32', DT_BOOL: 'bool' };

// ---------------------------------------------------------------------------------------------
// Tensor helpers (TF layout, row-major)

const elementCount = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape[i + 1]!;
  return strides;
}

function newData(dtype: TfDtype, count: number): Float32Array | Int32Array | Uint8Array {
  return dtype === 'float32' ? new Float32Array(count) : dtype === 'int32' ? new Int32Array(count) : new Uint8Array(count);
}

/** Row-major transpose: output axis i is input axis perm[i]. */
function transposeData<T extends Float32Array | Int32Array | Uint8Array>(data: T, shape: readonly number[], perm: readonly number[]): T {
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = stridesOf(shape);
  const permStrides = perm.map((p) => inStrides[p]!);
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const index = new Array<number>(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let source = 0;
    for (let d = 0; d < index.length; d++) source += index[d]! * permStrides[d]!;
    out[o] = data[source]!;
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d]! < outShape[d]!) break;
      index[d] = 0;
    }
  }
  return out;
}

/** True when transposing `shape` by `perm` moves only size-1 axes, so a Reshape does the same. */
function isReshapeOnly(shape: readonly number[], perm: readonly number[]): boolean {
  const moved = perm.filter((p) => shape[p] !== 1);
  return moved.every((p, i) => i === 0 || p > moved[i - 1]!);
}

/** NumPy broadcasting of two TF shapes; undefined when they do not broadcast. */
function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Values during conversion

interface RuntimeValue {
  kind: 'runtime';
  dtype: TfDtype;
  /** TF shape ([N, H, W, C] for 4-D, whose ONNX tensor is NCHW). */
  shape: number[];
  /** ONNX tensor name. */
  name: string;
}

type Value = ConstValue | RuntimeValue;

const ONNX_TYPE: Record<TfDtype, OnnxDataType> = { float32: 'float32', int32: 'int32', bool: 'bool' };

/** The ONNX-side shape of a runtime value: NCHW for 4-D. */
function onnxShape(value: RuntimeValue): number[] {
  return value.shape.length === 4 ? PERM_NCHW_FROM_NHWC.map((p) => value.shape[p]!) : [...value.shape];
}

/** Collects ONNX nodes and initializers; names built from TF node names plus ':suffix' never collide with TF names. */
class Emitter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers = new Map<string, OnnxTensor>();
  readonly #names = new Set<string>();
  readonly #cache = new Map<string, string>();

  fresh(prefix: string): string {
    let name = prefix;
    for (let i = 1; this.#names.has(name); i++) name = `${prefix}_${i}`;
    this.#names.add(name);
    return name;
  }

  /** Claims a name that must be exactly this (a TF node's primary output); undefined when it is taken. */
  exact(name: string): string | undefined {
    if (this.#names.has(name)) return undefined;
    this.#names.add(name);
    return name;
  }

  node(opType: string, inputs: string[], output: string, attributes: Record<string, OnnxAttribute> = {}): string {
    this.nodes.push({ name: this.fresh(`${output}:${opType}`), opType, inputs, outputs: [output], attributes });
    return output;
  }

  /** An initializer made once per `key`. */
  initializer(key: string, make: () => Omit<OnnxTensor, 'name'> & { name?: string }): string {
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached;
    const tensor = make();
    const name = this.fresh(tensor.name ?? key);
    this.initializers.set(name, { ...tensor, name });
    this.#cache.set(key, name);
    return name;
  }

  int64(key: string, values: number[]): string {
    return this.initializer(key, () => ({ dataType: 'int64', dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) }));
  }

  scalar(key: string, value: number): string {
    return this.initializer(key, () => ({ dataType: 'float32', dims: [], data: Float32Array.of(value) }));
  }
}

interface Ctx {
  node: TfNode;
  inputs: Value[];
  emit: Emitter;
  opset: number;
  /** The name of this node's primary ONNX output. */
  out: () => string;
  /** A fresh name for an intermediate tensor of this node. */
  temp: (suffix: string) => string;
  fail: Fail;
}

function constInitializer(ctx: Ctx, value: ConstValue, sourceName: string, variant: 'tf' | 'nchw'): string {
  const shape = variant === 'nchw' ? PERM_NCHW_FROM_NHWC.map((p) => padTo4(value.shape)[p]!) : value.shape;
  return ctx.emit.initializer(`${sourceName}|${variant}`, () => {
    const data = variant === 'nchw' ? transposeData(value.data, padTo4(value.shape), PERM_NCHW_FROM_NHWC) : value.data;
    return { name: variant === 'nchw' ? `${sourceName}:nchw` : sourceName, dataType: ONNX_TYPE[value.dtype], dims: shape, data: data as OnnxTensorData };
  });
}

const padTo4 = (shape: readonly number[]): number[] => [...new Array<number>(4 - shape.length).fill(1), ...shape];

/** An operand in TF layout (non-4-D ops). */
function plainOperand(ctx: Ctx, value: Value, index: number): string {
  if (value.kind === 'runtime') {
    if (value.shape.length === 4) ctx.fail(`input ${index} is 4-D (NCHW in the ONNX graph) and the op's other operands are not; mixing is not supported`);
    return value.name;
  }
  return constInitializer(ctx, value, ctx.node.inputs[index] ?? `${ctx.node.name}:in${index}`, 'tf');
}

/** An operand of a 4-D op: NCHW, broadcastable like its TF counterpart was against NHWC. */
function nchwOperand(ctx: Ctx, value: Value, index: number): string {
  if (value.shape.length > 4) ctx.fail(`input ${index} has rank ${value.shape.length}; at most 4 is supported`);
  if (value.kind === 'const') {
    // A single element broadcasts the same in any layout.
    if (elementCount(value.shape) === 1) return constInitializer(ctx, value, ctx.node.inputs[index] ?? ctx.node.name, 'tf');
    return constInitializer(ctx, value, ctx.node.inputs[index] ?? ctx.node.name, 'nchw');
  }
  if (value.shape.length === 4 || elementCount(value.shape) === 1) return value.name;
  const shape4 = padTo4(value.shape);
  const target = PERM_NCHW_FROM_NHWC.map((p) => shape4[p]!);
  if (isReshapeOnly(shape4, PERM_NCHW_FROM_NHWC)) {
    return ctx.emit.node('Reshape', [value.name, ctx.emit.int64(`shape:${target.join(',')}`, target)], ctx.temp(`in${index}_nchw`));
  }
  const reshaped = ctx.emit.node('Reshape', [value.name, ctx.emit.int64(`shape:${shape4.join(',')}`, shape4)], ctx.temp(`in${index}_4d`));
  return ctx.emit.node('Transpose', [reshaped], ctx.temp(`in${index}_nchw`), { perm: attr.ints(PERM_NCHW_FROM_NHWC) });
}

const runtime = (name: string, shape: number[], dtype: TfDtype): RuntimeValue => ({ kind: 'runtime', name, shape, dtype });

function requireRuntime4d(ctx: Ctx, index: number): RuntimeValue {
  const value = ctx.inputs[index];
  if (!value || value.kind !== 'runtime' || value.shape.length !== 4) ctx.fail(`input ${index} must be a 4-D NHWC tensor computed at run time, got ${describe(value)}`);
  return value;
}

function requireConst(ctx: Ctx, index: number, what: string): ConstValue {
  const value = ctx.inputs[index];
  if (!value || value.kind !== 'const') ctx.fail(`${what} (input ${index}) must fold to a constant, got ${describe(value)}`);
  return value;
}

function describe(value: Value | undefined): string {
  if (!value) return 'nothing';
  return `a ${value.kind === 'const' ? 'constant' : 'run-time tensor'} of shape [${value.shape.join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------
// Ops -> ONNX

type Converter = (ctx: Ctx) => Value;

function convolution(ctx: Ctx, depthwise: boolean, fused: boolean): Value {
  const { node } = ctx;
  const x = requireRuntime4d(ctx, 0);
  const filter = requireConst(ctx, 1, 'the filter');
  if (filter.dtype !== 'float32' || filter.shape.length !== 4) ctx.fail(`the filter must be a 4-D float32 constant, got ${filter.dtype} [${filter.shape.join(', ')}]`);
  const format = attrString(node, 'data_format') ?? 'NHWC';
  if (format !== 'NHWC') ctx.fail(`data_format '${format}' is not supported (NHWC only)`);
  const strides = attrInts(node, 'strides') ?? [1, 1, 1, 1];
  const dilations = attrInts(node, 'dilations') ?? [1, 1, 1, 1];
  if (strides.length !== 4 || strides[0] !== 1 || strides[3] !== 1) ctx.fail(`strides must be [1, h, w, 1], got [${strides.join(', ')}]`);
  if (dilations.length !== 4 || dilations[0] !== 1 || dilations[3] !== 1) ctx.fail(`dilations must be [1, h, w, 1], got [${dilations.join(', ')}]`);
  const [kh, kw, filterIn, filterOut] = filter.shape as [number, number, number, number];
  const [n, h, w, c] = x.shape as [number, number, number, number];
  let group: number;
  let outChannels: number;
  let weights: Float32Array;
  let weightDims: number[];
  if (depthwise) {
    if (filterIn !== c) ctx.fail(`the depthwise filter [${filter.shape.join(', ')}] needs ${filterIn} input channels, the input has ${c}`);
    group = c;
    outChannels = c * filterOut;
    // [kh, kw, in, mult] -> [in, mult, kh, kw] = [in * mult, 1, kh, kw]: output channel i * mult + m, as in TF.
    weights = transposeData(filter.data as Float32Array, filter.shape, [2, 3, 0, 1]);
    weightDims = [outChannels, 1, kh, kw];
  } else {
    if (c % filterIn !== 0) ctx.fail(`the filter [${filter.shape.join(', ')}] needs a multiple of ${filterIn} input channels, the input has ${c}`);
    group = c / filterIn;
    outChannels = filterOut;
    weights = transposeData(filter.data as Float32Array, filter.shape, [3, 2, 0, 1]);
    weightDims = [filterOut, filterIn, kh, kw];
  }
  const [padTop, padBottom, outH] = convPads(ctx, h, kh, strides[1]!, dilations[1]!, 1);
  const [padLeft, padRight, outW] = convPads(ctx, w, kw, strides[2]!, dilations[2]!, 2);
  const filterName = node.inputs[1]!;
  const inputs = [x.name, ctx.emit.initializer(`${filterName}|${depthwise ? 'depthwise' : 'oihw'}`, () => ({ name: filterName, dataType: 'float32', dims: weightDims, data: weights }))];

  let activation: (typeof FUSED_ACTIVATIONS)[number] | undefined;
  if (fused) {
    const ops = attrStrings(node, 'fused_ops');
    const numArgs = attrInt(node, 'num_args') ?? 0;
    const [first, second, ...rest] = ops;
    const hasBias = first === 'BiasAdd';
    const act = hasBias ? second : first;
    if (rest.length > 0 || (hasBias && ops.length > 2) || (act !== undefined && !(FUSED_ACTIVATIONS as readonly string[]).includes(act))) {
      ctx.fail(`fused_ops [${ops.join(', ')}] are not supported (BiasAdd, optionally followed by ${FUSED_ACTIVATIONS.join(' or ')})`);
    }
    activation = act as typeof activation;
    const expectedArgs = hasBias ? 1 : 0;
    if (numArgs !== expectedArgs || ctx.inputs.length !== 2 + numArgs) {
      ctx.fail(`fused_ops [${ops.join(', ')}] need num_args ${expectedArgs} and ${2 + expectedArgs} inputs, got num_args ${numArgs} and ${ctx.inputs.length} inputs`);
    }
    if (hasBias) {
      const bias = requireConst(ctx, 2, 'the bias');
      if (bias.dtype !== 'float32' || elementCount(bias.shape) !== outChannels) ctx.fail(`the bias must hold ${outChannels} float32 values, got ${bias.dtype} [${bias.shape.join(', ')}]`);
      inputs.push(ctx.emit.initializer(`${node.inputs[2]!}|bias`, () => ({ name: node.inputs[2]!, dataType: 'float32', dims: [outChannels], data: bias.data as Float32Array })));
    }
  } else if (ctx.inputs.length !== 2) {
    ctx.fail(`expects 2 inputs (input, filter), got ${ctx.inputs.length}`);
  }
  const attributes: Record<string, OnnxAttribute> = {
    kernel_shape: attr.ints([kh, kw]),
    strides: attr.ints([strides[1]!, strides[2]!]),
    dilations: attr.ints([dilations[1]!, dilations[2]!]),
    pads: attr.ints([padTop, padLeft, padBottom, padRight]),
    group: attr.int(group),
  };
  const conv = ctx.emit.node('Conv', inputs, activation ? ctx.temp('conv') : ctx.out(), attributes);
  const result = activation ? emitActivation(ctx, activation, conv, ctx.out()) : conv;
  return runtime(result, [n, outH, outW, outChannels], 'float32');
}

/** [padBegin, padEnd, outSize] of one spatial axis as TF computes them (SAME pads the extra pixel at the end). */
function convPads(ctx: Ctx, size: number, kernel: number, stride: number, dilation: number, axis: 1 | 2): [number, number, number] {
  const padding = attrString(ctx.node, 'padding') ?? '';
  const effective = (kernel - 1) * dilation + 1;
  let result: [number, number, number];
  if (padding === 'SAME') {
    const out = Math.ceil(size / stride);
    const total = Math.max((out - 1) * stride + effective - size, 0);
    result = [Math.floor(total / 2), total - Math.floor(total / 2), out];
  } else if (padding === 'VALID') {
    result = [0, 0, Math.ceil((size - effective + 1) / stride)];
  } else if (padding === 'EXPLICIT') {
    const pads = attrInts(ctx.node, 'explicit_paddings') ?? [];
    if (pads.length !== 8) ctx.fail(`EXPLICIT padding needs 8 explicit_paddings, got [${pads.join(', ')}]`);
    const begin = pads[axis * 2]!;
    const end = pads[axis * 2 + 1]!;
    result = [begin, end, Math.floor((size + begin + end - effective) / stride) + 1];
  } else {
    ctx.fail(`padding '${padding}' is not supported (SAME, VALID, EXPLICIT)`);
  }
  if (result[2] < 1) ctx.fail(`the output would be empty along axis ${axis} (size ${size}, kernel ${kernel}, dilation ${dilation}, stride ${stride}, ${padding})`);
  return result;
}

function emitActivation(ctx: Ctx, activation: (typeof FUSED_ACTIVATIONS)[number], input: string, output: string): string {
  if (activation === 'Relu6') return ctx.emit.node('Clip', [input, ctx.emit.scalar('relu6:min', 0), ctx.emit.scalar('relu6:max', 6)], output);
  return ctx.emit.node(activation, [input], output);
}

function unary(activation: (typeof FUSED_ACTIVATIONS)[number]): Converter {
  return (ctx: Ctx) => {
    const x = ctx.inputs[0];
    if (!x || x.kind !== 'runtime' || x.dtype !== 'float32') ctx.fail(`input 0 must be a float32 run-time tensor, got ${describe(x)}`);
    return runtime(emitActivation(ctx, activation, x.name, ctx.out()), x.shape, x.dtype);
  };
}

function binary(onnxOp: 'Add' | 'Sub' | 'Mul'): Converter {
  return (ctx: Ctx) => {
    const [a, b] = ctx.inputs;
    if (!a || !b || ctx.inputs.length !== 2) ctx.fail(`expects 2 inputs, got ${ctx.inputs.length}`);
    if (a.dtype !== b.dtype) ctx.fail(`operands have different dtypes (${a.dtype}, ${b.dtype})`);
    const shape = broadcastShapes(a.shape, b.shape);
    if (!shape) ctx.fail(`shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not broadcast`);
    if (shape.length > 4) ctx.fail(`rank ${shape.length} results are not supported (at most 4)`);
    const operand = shape.length === 4 ? nchwOperand : plainOperand;
    return runtime(ctx.emit.node(onnxOp, [operand(ctx, a, 0), operand(ctx, b, 1)], ctx.out()), shape, a.dtype);
  };
}

/** Normalized, sorted, de-duplicated axes of a const axis input. */
function axesOf(ctx: Ctx, value: ConstValue, rank: number): number[] {
  if (value.dtype !== 'int32') ctx.fail(`axes must be int32, got ${value.dtype}`);
  const axes = [...new Set(Array.from(value.data, (a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
  if (axes.some((a) => a < 0 || a >= rank)) ctx.fail(`axes [${Array.from(value.data).join(', ')}] are out of range for rank ${rank}`);
  return axes;
}

function mean(ctx: Ctx): Value {
  const x = ctx.inputs[0];
  if (!x || x.kind !== 'runtime' || x.dtype !== 'float32') ctx.fail(`input 0 must be a float32 run-time tensor, got ${describe(x)}`);
  const rank = x.shape.length;
  const axes = axesOf(ctx, requireConst(ctx, 1, 'the reduction axes'), rank);
  const keep = attrBool(ctx.node, 'keep_dims');
  if (axes.length === 0) return x; // TF reduces nothing; ONNX would reduce everything.
  const layout4 = rank === 4;
  const onnxAxes = layout4 ? axes.map((a) => NCHW_AXIS_OF_NHWC[a]!).sort((p, q) => p - q) : axes;
  const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  // Without keep_dims a 4-D input leaves its kept axes in NCHW order; TF leaves them in NHWC order.
  const reorder = layout4 && !keep ? keptAxesPerm(axes, onnxAxes) : undefined;
  const needsReorder = reorder !== undefined && !reorder.every((p, i) => p === i);
  const attributes: Record<string, OnnxAttribute> = { keepdims: attr.int(keep ? 1 : 0) };
  const inputs = [x.name];
  if (ctx.opset >= 18) inputs.push(ctx.emit.int64(`axes:${onnxAxes.join(',')}`, onnxAxes));
  else attributes.axes = attr.ints(onnxAxes);
  const reduced = ctx.emit.node('ReduceMean', inputs, needsReorder ? ctx.temp('reduced') : ctx.out(), attributes);
  if (!needsReorder) return runtime(reduced, shape, 'float32');
  const onnxReduced = [0, 1, 2, 3].filter((a) => !onnxAxes.includes(a)).map((a) => onnxShape(x)[a]!);
  const output = isReshapeOnly(onnxReduced, reorder)
    ? ctx.emit.node('Reshape', [reduced, ctx.emit.int64(`shape:${shape.join(',')}`, shape)], ctx.out())
    : ctx.emit.node('Transpose', [reduced], ctx.out(), { perm: attr.ints(reorder) });
  return runtime(output, shape, 'float32');
}

/** Perm from the NCHW-ordered kept axes of a reduction to the NHWC-ordered ones TF keeps. */
function keptAxesPerm(tfAxes: number[], onnxAxes: number[]): number[] {
  const onnxKept = [0, 1, 2, 3].filter((a) => !onnxAxes.includes(a));
  const tfKept = [0, 1, 2, 3].filter((a) => !tfAxes.includes(a)).map((a) => NCHW_AXIS_OF_NHWC[a]!);
  return tfKept.map((a) => onnxKept.indexOf(a));
}

function resizeBilinear(ctx: Ctx): Value {
  const x = requireRuntime4d(ctx, 0);
  const size = requireConst(ctx, 1, 'the output size');
  if (size.dtype !== 'int32' || size.data.length !== 2 || !Array.from(size.data).every((d) => d > 0)) {
    ctx.fail(`the output size must be two positive int32 values, got ${size.dtype} [${Array.from(size.data).join(', ')}]`);
  }
  const alignCorners = attrBool(ctx.node, 'align_corners');
  const halfPixel = attrBool(ctx.node, 'half_pixel_centers');
  if (alignCorners && halfPixel) ctx.fail('align_corners and half_pixel_centers cannot both be true');
  const [outH, outW] = Array.from(size.data) as [number, number];
  const [n, , , c] = x.shape as [number, number, number, number];
  const sizes = ctx.emit.int64(`sizes:${n},${c},${outH},${outW}`, [n, c, outH, outW]);
  const mode = alignCorners ? 'align_corners' : halfPixel ? 'half_pixel' : 'asymmetric';
  const output = ctx.emit.node('Resize', [x.name, '', '', sizes], ctx.out(), { mode: attr.string('linear'), coordinate_transformation_mode: attr.string(mode) });
  return runtime(output, [n, outH, outW, c], x.dtype);
}

function concat(ctx: Ctx): Value {
  const parts = ctx.inputs.slice(0, -1);
  const first = parts[0];
  if (!first) ctx.fail('needs at least one input before the axis');
  const rank = first.shape.length;
  const [axis] = axesOf(ctx, requireConst(ctx, ctx.inputs.length - 1, 'the axis'), rank);
  if (axis === undefined) ctx.fail('the axis is empty');
  for (const [i, part] of parts.entries()) {
    if (part.dtype !== first.dtype || part.shape.length !== rank || part.shape.some((d, k) => k !== axis && d !== first.shape[k])) {
      ctx.fail(`input ${i} [${part.shape.join(', ')}] ${part.dtype} does not concatenate with [${first.shape.join(', ')}] ${first.dtype} along axis ${axis}`);
    }
  }
  const shape = first.shape.map((d, k) => (k === axis ? parts.reduce((sum, p) => sum + p.shape[k]!, 0) : d));
  const layout4 = rank === 4;
  const names = parts.map((p, i) => (layout4 ? nchwOperand(ctx, p, i) : plainOperand(ctx, p, i)));
  const output = ctx.emit.node('Concat', names, ctx.out(), { axis: attr.int(layout4 ? NCHW_AXIS_OF_NHWC[axis]! : axis) });
  return runtime(output, shape, first.dtype);
}

const CONVERTERS: Record<string, Converter | undefined> = {
  Identity: (ctx) => ctx.inputs[0] ?? ctx.fail('expects 1 input'),
  Conv2D: (ctx) => convolution(ctx, false, false),
  _FusedConv2D: (ctx) => convolution(ctx, false, true),
  DepthwiseConv2dNative: (ctx) => convolution(ctx, true, false),
  FusedDepthwiseConv2dNative: (ctx) => convolution(ctx, true, true),
  Relu: unary('Relu'),
  Relu6: unary('Relu6'),
  Sigmoid: unary('Sigmoid'),
  Add: binary('Add'),
  AddV2: binary('Add'),
  Sub: binary('Sub'),
  Mul: binary('Mul'),
  Mean: mean,
  ResizeBilinear: resizeBilinear,
  ConcatV2: concat,
};

/** Ops the converter turns into ONNX nodes (Placeholder and Const included). */
export const SUPPORTED_OPS: readonly string[] = ['Placeholder', 'Const', ...Object.keys(CONVERTERS)];

// ---------------------------------------------------------------------------------------------
// Constant folding (TF semantics, TF layout)

type Fail = (message: string) => never;
type Folder = (node: TfNode, inputs: ConstValue[], fail: Fail) => ConstValue;

function foldBinary(fn: (a: number, b: number) => number, intFn: (a: number, b: number) => number = fn): Folder {
  return (_node: TfNode, [a, b]: ConstValue[], fail: Fail) => {
    if (!a || !b) fail('expects 2 inputs');
    const shape = broadcastShapes(a.shape, b.shape) ?? fail(`shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not broadcast`);
    const out = newData(a.dtype, elementCount(shape));
    const f = a.dtype === 'float32' ? fn : intFn;
    const stridesA = broadcastStrides(a.shape, shape);
    const stridesB = broadcastStrides(b.shape, shape);
    const index = new Array<number>(shape.length).fill(0);
    for (let o = 0; o < out.length; o++) {
      let ia = 0;
      let ib = 0;
      for (let d = 0; d < shape.length; d++) {
        ia += index[d]! * stridesA[d]!;
        ib += index[d]! * stridesB[d]!;
      }
      out[o] = f(a.data[ia]!, b.data[ib]!);
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++index[d]! < shape[d]!) break;
        index[d] = 0;
      }
    }
    return { kind: 'const', dtype: a.dtype, shape, data: out };
  };
}

function foldUnary(fn: (v: number) => number): Folder {
  return (_node: TfNode, [x]: ConstValue[], fail: Fail) => {
    if (!x || x.dtype !== 'float32') fail('expects 1 float32 input');
    return { ...x, data: Float32Array.from(x.data, fn) };
  };
}

/** Strides of `shape` read as `target` (0 along broadcast axes). */
function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const own = stridesOf(shape);
  return target.map((_, i) => {
    const k = i - (target.length - shape.length);
    return k < 0 || shape[k] === 1 ? 0 : own[k]!;
  });
}

function foldStridedSlice(node: TfNode, [x, beginValue, endValue, stridesValue]: ConstValue[], fail: Fail): ConstValue {
  if (!x || !beginValue || !endValue || !stridesValue) fail('expects 4 inputs');
  if ((attrInt(node, 'ellipsis_mask') ?? 0) !== 0 || (attrInt(node, 'new_axis_mask') ?? 0) !== 0) fail('ellipsis_mask and new_axis_mask are not supported');
  const beginMask = attrInt(node, 'begin_mask') ?? 0;
  const endMask = attrInt(node, 'end_mask') ?? 0;
  const shrinkMask = attrInt(node, 'shrink_axis_mask') ?? 0;
  const picks: number[][] = [];
  const shape: number[] = [];
  x.shape.forEach((dim, d) => {
    if (d >= beginValue.data.length) {
      picks.push(Array.from({ length: dim }, (_, i) => i));
      shape.push(dim);
      return;
    }
    const stride = stridesValue.data[d]!;
    if (stride === 0) fail(`stride ${d} is 0`);
    const normalize = (i: number) => (i < 0 ? i + dim : i);
    if (shrinkMask & (1 << d)) {
      const i = normalize(beginValue.data[d]!);
      if (i < 0 || i >= dim) fail(`index ${beginValue.data[d]!} is out of range for axis ${d} of size ${dim}`);
      picks.push([i]);
      return;
    }
    const lo = stride > 0 ? 0 : -1;
    const hi = stride > 0 ? dim : dim - 1;
    const clamp = (i: number) => Math.min(Math.max(i, lo), hi);
    const begin = beginMask & (1 << d) ? (stride > 0 ? 0 : dim - 1) : clamp(normalize(beginValue.data[d]!));
    const end = endMask & (1 << d) ? (stride > 0 ? dim : -1) : clamp(normalize(endValue.data[d]!));
    const pick: number[] = [];
    for (let i = begin; stride > 0 ? i < end : i > end; i += stride) pick.push(i);
    picks.push(pick);
    shape.push(pick.length);
  });
  const strides = stridesOf(x.shape);
  const out = newData(x.dtype, elementCount(picks.map((p) => p.length)));
  let o = 0;
  const walk = (d: number, offset: number): void => {
    if (d === picks.length) {
      out[o++] = x.data[offset]!;
      return;
    }
    for (const i of picks[d]!) walk(d + 1, offset + i * strides[d]!);
  };
  walk(0, 0);
  return { kind: 'const', dtype: x.dtype, shape, data: out };
}

/** Stacks (Pack, new axis) or joins (ConcatV2, existing axis) constants. */
function joinConsts(parts: ConstValue[], axis: number, stack: boolean, fail: Fail): ConstValue {
  const first = parts[0] ?? fail('needs at least one input');
  const rank = first.shape.length;
  if (parts.some((p) => p.dtype !== first.dtype || p.shape.length !== rank)) fail('inputs differ in dtype or rank');
  const outer = elementCount(first.shape.slice(0, axis));
  const inners = parts.map((p) => (stack ? elementCount(p.shape) / Math.max(outer, 1) : elementCount(p.shape.slice(axis))));
  const shape = stack ? [...first.shape.slice(0, axis), parts.length, ...first.shape.slice(axis)] : first.shape.map((d, k) => (k === axis ? parts.reduce((s, p) => s + p.shape[k]!, 0) : d));
  const out = newData(first.dtype, elementCount(shape));
  let o = 0;
  for (let i = 0; i < outer; i++) {
    parts.forEach((p, k) => {
      out.set(p.data.subarray(i * inners[k]!, (i + 1) * inners[k]!), o);
      o += inners[k]!;
    });
  }
  return { kind: 'const', dtype: first.dtype, shape, data: out };
}

const FOLDERS: Record<string, Folder | undefined> = {
  Identity: (_node, [x], fail) => x ?? fail('expects 1 input'),
  Add: foldBinary((a, b) => a + b),
  AddV2: foldBinary((a, b) => a + b),
  Sub: foldBinary((a, b) => a - b),
  Mul: foldBinary((a, b) => a * b, (a, b) => Math.imul(a, b)),
  RealDiv: foldBinary((a, b) => a / b, (a, b) => Math.trunc(a / b)),
  FloorDiv: foldBinary((a, b) => Math.floor(a / b)),
  Maximum: foldBinary(Math.max),
  Minimum: foldBinary(Math.min),
  Relu: foldUnary((v) => Math.max(v, 0)),
  Relu6: foldUnary((v) => Math.min(Math.max(v, 0), 6)),
  Sigmoid: foldUnary((v) => 1 / (1 + Math.exp(-v))),
  Cast: (node: TfNode, [x]: ConstValue[], fail: Fail) => {
    if (!x) fail('expects 1 input');
    const dtype = DTYPE_OF_TF[node.attr.DstT?.type ?? ''] ?? fail(`DstT '${String(node.attr.DstT?.type)}' is not supported`);
    const convert = dtype === 'bool' ? (v: number) => (v !== 0 ? 1 : 0) : dtype === 'int32' ? Math.trunc : (v: number) => v;
    const data = newData(dtype, x.data.length);
    x.data.forEach((v, i) => (data[i] = convert(v)));
    return { kind: 'const', dtype, shape: [...x.shape], data };
  },
  StridedSlice: foldStridedSlice,
  Pack: (node, parts, fail) => {
    const rank = (parts[0]?.shape.length ?? 0) + 1;
    const raw = attrInt(node, 'axis') ?? 0;
    return joinConsts(parts, raw < 0 ? raw + rank : raw, true, fail);
  },
  ConcatV2: (_node, inputs, fail) => {
    const axisValue = inputs[inputs.length - 1] ?? fail('needs an axis');
    const rank = inputs[0]?.shape.length ?? 0;
    const raw = axisValue.data[0] ?? fail('the axis is empty');
    return joinConsts(inputs.slice(0, -1), raw < 0 ? raw + rank : raw, false, fail);
  },
  Reshape: (_node: TfNode, [x, shapeValue]: ConstValue[], fail: Fail): ConstValue => {
    if (!x || !shapeValue) fail('expects 2 inputs');
    const shape = Array.from(shapeValue.data);
    const known = elementCount(shape.filter((d) => d !== -1));
    const resolved = shape.map((d) => (d === -1 ? x.data.length / known : d));
    if (elementCount(resolved) !== x.data.length || !resolved.every(Number.isInteger)) fail(`cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
    return { ...x, shape: resolved };
  },
};

/** Ops computed at conversion time when all their inputs are constants (`Shape` whenever the shape is static, which it always is here). */
export const FOLDABLE_OPS: readonly string[] = ['Shape', ...Object.keys(FOLDERS)];

// ---------------------------------------------------------------------------------------------
// The graph

function splitRef(ref: string): [string, number] {
  const colon = ref.lastIndexOf(':');
  if (colon > 0 && /^\d+$/.test(ref.slice(colon + 1))) return [ref.slice(0, colon), Number(ref.slice(colon + 1))];
  return [ref, 0];
}

const refKey = (ref: string): string => {
  const [name, index] = splitRef(ref);
  return `${name}:${index}`;
};

/** The nodes `outputs` need, inputs before users. */
function prunedOrder(file: string, nodes: Map<string, TfNode>, outputs: string[]): TfNode[] {
  const order: TfNode[] = [];
  const state = new Map<string, 'open' | 'done'>();
  for (const output of outputs) {
    const stack: [TfNode, number][] = [[nodes.get(splitRef(output)[0])!, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [node, next] = top;
      if (next === 0) {
        if (state.get(node.name) === 'done') {
          stack.pop();
          continue;
        }
        state.set(node.name, 'open');
      }
      if (next < node.inputs.length) {
        top[1]++;
        const [inputName] = splitRef(node.inputs[next]!);
        const input = nodes.get(inputName);
        if (!input) throw new TfjsConversionError(`${file}: node '${node.name}' (${node.op}) reads '${node.inputs[next]!}', which is not a node of the graph`);
        if (state.get(inputName) === 'open') throw new TfjsConversionError(`${file}: node '${node.name}' (${node.op}) is part of a cycle through '${inputName}'; control flow is not supported`);
        if (state.get(inputName) !== 'done') stack.push([input, 0]);
      } else {
        state.set(node.name, 'done');
        order.push(node);
        stack.pop();
      }
    }
  }
  return order;
}

function placeholderShape(node: TfNode): number[] | undefined {
  const shape = node.attr.shape?.shape;
  if (!shape || shape.unknownRank) return undefined;
  return (shape.dim ?? []).map((d) => Number(d.size ?? 0));
}

function convertGraph(
  file: string,
  nodes: Map<string, TfNode>,
  weights: Map<string, ConstValue | UnusableWeight>,
  signatureOutputs: string[],
  settings: Settings,
): { model: OnnxModel; report: TfjsConversionReport } {
  for (const output of settings.outputs) {
    if (!nodes.has(splitRef(output)[0])) {
      const known = signatureOutputs.length > 0 ? ` (the signature's outputs: ${signatureOutputs.join(', ')})` : '';
      throw new TfjsConversionError(`${file}: output '${output}' is not a node of the graph${known}`);
    }
  }
  const order = prunedOrder(file, nodes, settings.outputs);
  const opsIn: Record<string, number> = {};
  for (const node of order) opsIn[node.op] = (opsIn[node.op] ?? 0) + 1;
  const placeholders = order.filter((n) => n.op === 'Placeholder');
  if (placeholders.length !== 1) {
    throw new TfjsConversionError(`${file}: the outputs [${settings.outputs.join(', ')}] need ${placeholders.length} inputs (${placeholders.map((p) => p.name).join(', ') || 'none'}); exactly one is supported`);
  }

  const emit = new Emitter();
  const values = new Map<string, Value>();
  let foldedConstants = 0;
  let input: { name: string; dtype: TfDtype; shape: number[] } | undefined;

  for (const node of order) {
    const fail: Fail = (message: string): never => {
      throw new TfjsConversionError(`${file}: node '${node.name}' (${node.op}): ${message}`);
    };
    const key = `${node.name}:0`;
    if (node.op === 'Const') {
      const weight = weights.get(node.name) ?? fail(`no weight named '${node.name}' in weightsManifest`);
      if (weight.kind === 'unusable') fail(weight.reason);
      values.set(key, weight);
      continue;
    }
    if (node.op === 'Placeholder') {
      const dtype = DTYPE_OF_TF[node.attr.dtype?.type ?? 'DT_FLOAT'] ?? fail(`dtype '${String(node.attr.dtype?.type)}' is not supported`);
      const shape = placeholderShape(node);
      if (!shape || !shape.every((d) => Number.isInteger(d) && d > 0)) fail(`needs a static shape, got ${shape ? `[${shape.join(', ')}]` : 'an unknown rank'}`);
      input = { name: node.name, dtype, shape };
      values.set(key, runtime(emit.exact(node.name) ?? fail(`the ONNX tensor name '${node.name}' is already taken`), shape, dtype));
      continue;
    }
    const inputs = node.inputs.map((ref) => values.get(refKey(ref)) ?? fail(`input '${ref}' is not a tensor this converter produces (only output 0 of each node is)`));
    const folder = FOLDERS[node.op];
    if (node.op === 'Shape' && inputs[0]) {
      values.set(key, { kind: 'const', dtype: 'int32', shape: [inputs[0].shape.length], data: Int32Array.from(inputs[0].shape) });
      foldedConstants++;
      continue;
    }
    if (folder && inputs.every((v): v is ConstValue => v.kind === 'const')) {
      values.set(key, folder(node, inputs, fail));
      foldedConstants++;
      continue;
    }
    const converter = CONVERTERS[node.op];
    if (!converter) {
      const why = folder ? ' with inputs computed at run time (it is supported only when it folds to a constant)' : '';
      fail(`op '${node.op}' is not supported${why}; supported: ${SUPPORTED_OPS.join(', ')}`);
    }
    let claimed: string | undefined;
    const ctx: Ctx = {
      node,
      inputs,
      emit,
      opset: settings.opset,
      out: () => (claimed ??= emit.exact(node.name) ?? fail(`the ONNX tensor name '${node.name}' is already taken`)),
      temp: (suffix) => emit.fresh(`${node.name}:${suffix}`),
      fail,
    };
    values.set(key, converter(ctx));
  }
  if (!input) throw new TfjsConversionError(`${file}: no graph input`);

  return assemble(file, emit, values, input, settings, { opsIn, foldedConstants });
}

/** Names the graph input and outputs, adds the layout Transposes asked for, drops dead nodes and builds the model. */
function assemble(
  file: string,
  emit: Emitter,
  values: Map<string, Value>,
  input: { name: string; dtype: TfDtype; shape: number[] },
  settings: Settings,
  counts: { opsIn: Record<string, number>; foldedConstants: number },
): { model: OnnxModel; report: TfjsConversionReport } {
  const claim = (name: string): string => {
    const claimed = emit.exact(name);
    if (claimed === undefined) throw new TfjsConversionError(`${file}: output '${name}' cannot be named so: an ONNX tensor of that name already exists`);
    return claimed;
  };
  // Emitted tensor -> its name in the model (the producer writes an output's name itself when it can).
  const finalName = new Map<string, string>();
  const head: OnnxNode[] = [];
  const tail: OnnxNode[] = [];
  const input4d = input.shape.length === 4;
  if (input4d && settings.inputLayout === 'nhwc') {
    // The graph input keeps the TF name and NHWC; the nodes read its NCHW transpose.
    const nchw = emit.fresh(`${input.name}:nchw`);
    finalName.set(input.name, nchw);
    head.push({ name: emit.fresh(`${input.name}:Transpose`), opType: 'Transpose', inputs: [input.name], outputs: [nchw], attributes: { perm: attr.ints(PERM_NCHW_FROM_NHWC) } });
  }
  const produced = new Set(emit.nodes.flatMap((n) => n.outputs));
  const outputInfos: { name: string; dtype: TfDtype; shape: number[] }[] = [];
  for (const output of settings.outputs) {
    const value = values.get(refKey(output))!;
    if (value.kind === 'const') {
      const source = emit.initializer(`${output}|output`, () => ({ name: `${output}:value`, dataType: ONNX_TYPE[value.dtype], dims: value.shape, data: value.data as OnnxTensorData }));
      tail.push({ name: emit.fresh(`${output}:Identity`), opType: 'Identity', inputs: [source], outputs: [claim(output)], attributes: {} });
      outputInfos.push({ name: output, dtype: value.dtype, shape: value.shape });
      continue;
    }
    if (value.name === input.name) throw new TfjsConversionError(`${file}: output '${output}' is the graph input itself`);
    const transpose = value.shape.length === 4 && settings.outputLayout === 'nhwc';
    outputInfos.push({ name: output, dtype: value.dtype, shape: transpose ? value.shape : onnxShape(value) });
    if (transpose) {
      let source = finalName.get(value.name) ?? value.name;
      if (value.name === output) {
        source = emit.fresh(`${output}:nchw`);
        finalName.set(output, source);
      } else {
        claim(output);
      }
      tail.push({ name: emit.fresh(`${output}:Transpose`), opType: 'Transpose', inputs: [source], outputs: [output], attributes: { perm: attr.ints(PERM_NHWC_FROM_NCHW) } });
      } else if (value.name === output) {
      continue;
    } else if (produced.has(value.name) && !finalName.has(value.name) && !settings.outputs.includes(value.name)) {
      finalName.set(value.name, claim(output));
    } else {
      tail.push({ name: emit.fresh(`${output}:Identity`), opType: 'Identity', inputs: [finalName.get(value.name) ?? value.name], outputs: [claim(output)], attributes: {} });
    }
  }
  const rename = (name: string) => finalName.get(name) ?? name;
  const body = emit.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
  const nodes = liveNodes([...head, ...body, ...tail], outputInfos.map((o) => o.name));
  const used = new Set(nodes.flatMap((n) => n.inputs));

  const builder = new OnnxGraphBuilder(path.basename(file, path.extname(file)));
  builder.addInput(input.name, ONNX_TYPE[input.dtype], input4d && settings.inputLayout === 'nchw' ? onnxShape(runtime(input.name, input.shape, input.dtype)) : input.shape);
  for (const tensor of emit.initializers.values()) if (used.has(tensor.name)) builder.addInitializer(tensor.name, tensor.dataType, tensor.dims, tensor.data);
  for (const n of nodes) builder.addNode(n.opType, n.inputs, n.outputs, n.attributes, n.name);
  for (const info of outputInfos) builder.addOutput(info.name, ONNX_TYPE[info.dtype], info.shape);
  const model = builder.build({
    opset: settings.opset,
    producerName: 'arhud-tfjs-converter',
    metadata: { source: path.basename(file), inputLayout: settings.inputLayout, outputLayout: settings.outputLayout },
  });
  const transposes = nodes.filter((n) => n.opType === 'Transpose').length;
  return {
    model,
    report: { opsIn: counts.opsIn, nodesOut: nodes.length, foldedConstants: counts.foldedConstants, transposes, inputName: input.name, outputNames: outputInfos.map((o) => o.name) },
  };
}

/** The nodes some graph output depends on, in their order (a tensor read only by a folded Shape is dead). */
function liveNodes(nodes: OnnxNode[], outputs: string[]): OnnxNode[] {
  const needed = new Set(outputs);
  const live: OnnxNode[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    live.push(node);
    for (const input of node.inputs) needed.add(input);
  }
  return live.reverse();
}
