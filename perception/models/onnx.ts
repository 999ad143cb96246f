/**
 * ONNX models in TypeScript: typed graph construction (`OnnxGraphBuilder`), protobuf encoding and
 * decoding of ModelProto (the subset of onnx.proto that inference graphs use, with the standard's
 * field numbers), and a structural validator that names the offending node or tensor.
 */
import protobuf from 'protobufjs';

/** Lowest opset the builder writes and the validator accepts. */
export const MIN_OPSET = 13;
/** IR version written (ONNX 1.10+: IR 8 goes with opsets 15-16; ORT 1.30 reads up to IR 10). */
export const IR_VERSION = 8;

export type OnnxDataType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool' | 'float16';

/** TensorProto.DataType numbers of the types above. */
const DATA_TYPE_CODE: Record<OnnxDataType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10 };
const DATA_TYPE_OF_CODE = new Map(Object.entries(DATA_TYPE_CODE).map(([k, v]) => [v, k as OnnxDataType]));
const BYTES_PER_ELEMENT: Record<OnnxDataType, number> = { float32: 4, uint8: 1, int8: 1, int32: 4, int64: 8, bool: 1, float16: 2 };

export type OnnxTensorData = Float32Array | Uint8Array | Int8Array | Int32Array | BigInt64Array | Uint16Array;

export interface OnnxTensor {
  name: string;
  dataType: OnnxDataType;
  dims: number[];
  /** Row-major elements; float16 as raw uint16 bits, bool as 0/1 bytes. */
  data: OnnxTensorData;
}

export type OnnxAttribute =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'tensor'; value: OnnxTensor };

/** Attribute constructors, so a call site says which ONNX type it means (1 vs 1.0). */
export const attr = {
  float: (value: number): OnnxAttribute => ({ type: 'float', value }),
  int: (value: number): OnnxAttribute => ({ type: 'int', value }),
  string: (value: string): OnnxAttribute => ({ type: 'string', value }),
  floats: (value: number[]): OnnxAttribute => ({ type: 'floats', value }),
  ints: (value: number[]): OnnxAttribute => ({ type: 'ints', value }),
  tensor: (value: OnnxTensor): OnnxAttribute => ({ type: 'tensor', value }),
};

export interface OnnxNode {
  name: string;
  opType: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Record<string, OnnxAttribute>;
  domain?: string;
}

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataType;
  /** Sizes; a string is a symbolic dimension (e.g. 'batch'). */
  shape: (number | string)[];
  /** True when even the rank is unknown (no shape in the proto; `shape` is then []). */
  shapeUnknown?: boolean;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  valueInfos: OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  opsetImports: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  graph: OnnxGraph;
  /** ModelProto.metadata_props. */
  metadata: Record<string, string>;
}

/** A model that breaks a structural rule; the message names the node or tensor. */
export class OnnxValidationError extends Error {
  override readonly name = 'OnnxValidationError';
}

/** Bytes that are not a readable ONNX model. */
export class OnnxDecodeError extends Error {
  override readonly name = 'OnnxDecodeError';
}

// ---------------------------------------------------------------------------------------------
// Building

/**
 * Builds a graph node by node. Names are checked as they are added; `build()` validates the whole
 * model. Tensors and nodes keep insertion order, which must be topological.
 */
export class OnnxGraphBuilder {
  readonly #graph: OnnxGraph;
  readonly #names = new Set<string>();
  #counter = 0;

  constructor(name: string) {
    this.#graph = { name, nodes: [], initializers: [], inputs: [], outputs: [], valueInfos: [] };
  }

  get graph(): Readonly<OnnxGraph> {
    return this.#graph;
  }

  /** A fresh tensor or node name starting with `prefix`. */
  uniqueName(prefix: string): string {
    let name = prefix;
    while (this.#names.has(name)) name = `${prefix}_${++this.#counter}`;
    return name;
  }

  addInput(name: string, elemType: OnnxDataType, shape: (number | string)[]): string {
    this.#claim(name, 'graph input');
    this.#graph.inputs.push({ name, elemType, shape });
    return name;
  }

  /** Declares an existing tensor as a graph output. */
  addOutput(name: string, elemType: OnnxDataType, shape: (number | string)[]): string {
    this.#graph.outputs.push({ name, elemType, shape });
    return name;
  }

  addInitializer(name: string, dataType: OnnxDataType, dims: number[], data: OnnxTensorData): string {
    checkTensor({ name, dataType, dims, data }, `OnnxGraphBuilder.addInitializer('${name}')`);
    this.#claim(name, 'initializer');
    this.#graph.initializers.push({ name, dataType, dims: [...dims], data });
    return name;
  }

  /** Adds a node; returns its output names (fresh names when `outputs` is a count). */
  addNode(opType: string, inputs: string[], outputs: string[] | number = 1, attributes: Record<string, OnnxAttribute> = {}, name?: string): string[] {
    const nodeName = this.uniqueName(name ?? opType);
    this.#names.add(nodeName);
    const outputNames = typeof outputs === 'number' ? Array.from({ length: outputs }, (_, i) => this.uniqueName(`${nodeName}_out${i}`)) : outputs;
    for (const output of outputNames) this.#claim(output, `output of node '${nodeName}'`);
    this.#graph.nodes.push({ name: nodeName, opType, inputs: [...inputs], outputs: outputNames, attributes });
    return outputNames;
  }

  addValueInfo(info: OnnxValueInfo): void {
    this.#graph.valueInfos.push(info);
  }

  /** The finished, validated model. */
  build(options: { opset?: number; producerName?: string; producerVersion?: string; metadata?: Record<string, string> } = {}): OnnxModel {
    const model: OnnxModel = {
      irVersion: IR_VERSION,
      opsetImports: [{ domain: '', version: options.opset ?? 17 }],
      producerName: options.producerName ?? 'arhud',
      producerVersion: options.producerVersion ?? '',
      graph: this.#graph,
      metadata: options.metadata ?? {},
    };
    validateOnnxModel(model);
    return model;
  }

  #claim(name: string, what: string): void {
    if (name === '') throw new OnnxValidationError(`OnnxGraphBuilder: ${what} needs a non-empty name`);
    if (this.#names.has(name)) throw new OnnxValidationError(`OnnxGraphBuilder: tensor name '${name}' (${what}) is already used`);
    this.#names.add(name);
  }
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function checkTensor(tensor: OnnxTensor, where: string): void {
  if (!(tensor.dataType in DATA_TYPE_CODE)) throw new OnnxValidationError(`${where}: unsupported data type '${String(tensor.dataType)}'`);
  if (!tensor.dims.every((d) => Number.isInteger(d) && d >= 0)) throw new OnnxValidationError(`${where}: dims must be integers >= 0, got [${tensor.dims.join(', ')}]`);
  const expected = elementCount(tensor.dims);
  if (tensor.data.length !== expected) {
    throw new OnnxValidationError(`${where}: dims [${tensor.dims.join(', ')}] need ${expected} elements, data has ${tensor.data.length}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Validation

/**
 * Structural checks: an opset >= MIN_OPSET, unique tensor names, every node input defined before
 * use (graph input, initializer or an earlier node's output), graph outputs produced, initializer
 * sizes matching their dims.
 */
export function validateOnnxModel(model: OnnxModel): void {
  const opset = model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (!opset) throw new OnnxValidationError('model: no opset import for the default ONNX domain');
  if (opset.version < MIN_OPSET) throw new OnnxValidationError(`model: opset ${opset.version} is below the minimum ${MIN_OPSET}`);
  const { graph } = model;
  const defined = new Set<string>();
  const define = (name: string, what: string) => {
    if (defined.has(name)) throw new OnnxValidationError(`graph '${graph.name}': tensor '${name}' (${what}) is defined twice`);
    defined.add(name);
  };
  for (const input of graph.inputs) define(input.name, 'graph input');
  for (const tensor of graph.initializers) {
    checkTensor(tensor, `initializer '${tensor.name}'`);
    // An initializer may also be listed as a graph input (IR < 4 style): that is one tensor.
    if (!graph.inputs.some((i) => i.name === tensor.name)) define(tensor.name, 'initializer');
  }
  const nodeNames = new Set<string>();
  graph.nodes.forEach((node, index) => {
    const label = `node '${node.name || `#${index}`}' (${node.opType})`;
    if (node.name) {
      if (nodeNames.has(node.name)) throw new OnnxValidationError(`graph '${graph.name}': node name '${node.name}' is used twice`);
      nodeNames.add(node.name);
    }
    if (node.opType === '') throw new OnnxValidationError(`graph '${graph.name}': ${label} has no op type`);
    for (const input of node.inputs) {
      if (input !== '' && !defined.has(input)) {
        throw new OnnxValidationError(`graph '${graph.name}': ${label} reads '${input}', which no graph input, initializer or earlier node defines`);
      }
    }
    if (node.outputs.length === 0) throw new OnnxValidationError(`graph '${graph.name}': ${label} has no outputs`);
    for (const output of node.outputs) if (output !== '') define(output, `output of ${label}`);
    for (const [key, attribute] of Object.entries(node.attributes)) {
      if (attribute.type === 'int' && !Number.isInteger(attribute.value)) throw new OnnxValidationError(`graph '${graph.name}': ${label} attribute '${key}' must be an integer, got ${attribute.value}`);
      if (attribute.type === 'ints' && !attribute.value.every(Number.isInteger)) throw new OnnxValidationError(`graph '${graph.name}': ${label} attribute '${key}' must hold integers`);
      if (attribute.type === 'tensor') checkTensor(attribute.value, `${label} attribute '${key}'`);
    }
  });
  if (graph.outputs.length === 0) throw new OnnxValidationError(`graph '${graph.name}': no graph outputs`);
  for (const output of graph.outputs) {
    if (!defined.has(output.name)) throw new OnnxValidationError(`graph '${graph.name}': graph output '${output.name}' is not produced by any node`);
  }
}

// ---------------------------------------------------------------------------------------------
// Protobuf encoding (field numbers from onnx/onnx.proto3)

const ONNX_PROTO = `
syntax = "proto3";
package onnx;
message AttributeProto {
  string name = 1; int32 type = 20; float f = 2; int64 i = 3; bytes s = 4; TensorProto t = 5;
  repeated float floats = 7; repeated int64 ints = 8; repeated bytes strings = 9; repeated TensorProto tensors = 10;
  string doc_string = 13;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; string doc_string = 3; }
message NodeProto {
  repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4; string domain = 7;
  repeated AttributeProto attribute = 5; string doc_string = 6;
}
message StringStringEntryProto { string key = 1; string value = 2; }
message ModelProto {
  int64 ir_version = 1; repeated OperatorSetIdProto opset_import = 8; string producer_name = 2; string producer_version = 3;
  string domain = 4; int64 model_version = 5; string doc_string = 6; GraphProto graph = 7; repeated StringStringEntryProto metadata_props = 14;
}
message GraphProto {
  repeated NodeProto node = 1; string name = 2; repeated TensorProto initializer = 5; string doc_string = 10;
  repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; repeated ValueInfoProto value_info = 13;
}
message TensorProto {
  repeated int64 dims = 1; int32 data_type = 2; repeated float float_data = 4; repeated int32 int32_data = 5;
  repeated int64 int64_data = 7; string name = 8; bytes raw_data = 9; repeated StringStringEntryProto external_data = 13;
  int32 data_location = 14; string doc_string = 12;
}
message TensorShapeProto { message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } } repeated Dimension dim = 1; }
message TypeProto { message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; } oneof value { Tensor tensor_type = 1; } }
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
`;

const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;
const ATTRIBUTE_OF_CODE = new Map(Object.entries(ATTRIBUTE_TYPE).map(([k, v]) => [v as number, k as OnnxAttribute['type']]));

const onnxRoot = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
const ModelProto = onnxRoot.lookupType('onnx.ModelProto');

type Int64 = number | { toString(): string };
const toNumber = (value: Int64 | undefined | null): number => (value === undefined || value === null ? 0 : typeof value === 'number' ? value : Number(value.toString()));

function tensorToProto(tensor: OnnxTensor): Record<string, unknown> {
  const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  return { name: tensor.name, dims: tensor.dims, data_type: DATA_TYPE_CODE[tensor.dataType], raw_data: bytes };
}

function valueInfoToProto(info: OnnxValueInfo): Record<string, unknown> {
  return {
    name: info.name,
    type: {
      tensor_type: {
        elem_type: DATA_TYPE_CODE[info.elemType],
        ...(info.shapeUnknown ? {} : { shape: { dim: info.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } }),
      },
    },
  };
}

function attributeToProto(name: string, attribute: OnnxAttribute): Record<string, unknown> {
  const base = { name, type: ATTRIBUTE_TYPE[attribute.type] };
  switch (attribute.type) {
    case 'float':
      return { ...base, f: attribute.value };
    case 'int':
      return { ...base, i: attribute.value };
    case 'string':
      return { ...base, s: new TextEncoder().encode(attribute.value) };
    case 'floats':
      return { ...base, floats: attribute.value };
    case 'ints':
      return { ...base, ints: attribute.value };
    case 'tensor':
      return { ...base, t: tensorToProto(attribute.value) };
  }
}

/** Serializes a model to ONNX protobuf bytes (tensors as little-endian raw_data). */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const { graph } = model;
  const message = {
    ir_version: model.irVersion,
    opset_import: model.opsetImports,
    producer_name: model.producerName,
    producer_version: model.producerVersion,
    metadata_props: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: graph.name,
      node: graph.nodes.map((node) => ({
        name: node.name,
        op_type: node.opType,
        domain: node.domain ?? '',
        input: node.inputs,
        output: node.outputs,
        attribute: Object.entries(node.attributes).map(([name, attribute]) => attributeToProto(name, attribute)),
      })),
      initializer: graph.initializers.map(tensorToProto),
      input: graph.inputs.map(valueInfoToProto),
      output: graph.outputs.map(valueInfoToProto),
      value_info: graph.valueInfos.map(valueInfoToProto),
    },
  };
  return ModelProto.encode(ModelProto.fromObject(message)).finish();
}

interface TensorProtoWire {
  name?: string;
  dims?: Int64[];
  data_type?: number;
  raw_data?: Uint8Array;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: Int64[];
  data_location?: number;
}

function tensorFromProto(wire: TensorProtoWire, where: string): OnnxTensor {
  const name = wire.name ?? '';
  const dataType = DATA_TYPE_OF_CODE.get(wire.data_type ?? 0);
  if (!dataType) throw new OnnxDecodeError(`${where}: tensor '${name}' has unsupported data type ${wire.data_type ?? 0}`);
  if (wire.data_location === 1) throw new OnnxDecodeError(`${where}: tensor '${name}' keeps its data in an external file, which is not supported`);
  const dims = (wire.dims ?? []).map(toNumber);
  const count = elementCount(dims);
  let data: OnnxTensorData;
  const raw = wire.raw_data;
  if (raw && raw.length > 0) {
    if (raw.length !== count * BYTES_PER_ELEMENT[dataType]) {
      throw new OnnxDecodeError(`${where}: tensor '${name}' dims [${dims.join(', ')}] need ${count * BYTES_PER_ELEMENT[dataType]} bytes of ${dataType}, raw_data has ${raw.length}`);
    }
    // An aligned copy of its own: raw_data may be a view at any offset (Buffer.slice would not copy).
    const copy = new Uint8Array(raw).buffer;
    data = typedArrayOf(dataType, copy);
  } else if (dataType === 'float32') {
    data = Float32Array.from(wire.float_data ?? []);
  } else if (dataType === 'int64') {
    data = BigInt64Array.from((wire.int64_data ?? []).map((v) => BigInt(v.toString())));
  } else {
    const ints = wire.int32_data ?? [];
    data = dataType === 'int32' ? Int32Array.from(ints) : dataType === 'int8' ? Int8Array.from(ints) : dataType === 'float16' ? Uint16Array.from(ints) : Uint8Array.from(ints);
  }
  if (data.length !== count) throw new OnnxDecodeError(`${where}: tensor '${name}' dims [${dims.join(', ')}] need ${count} elements, it holds ${data.length}`);
  return { name, dataType, dims, data };
}

function typedArrayOf(dataType: OnnxDataType, buffer: ArrayBuffer): OnnxTensorData {
  switch (dataType) {
    case 'float32':
      return new Float32Array(buffer);
    case 'int8':
      return new Int8Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    case 'int64':
      return new BigInt64Array(buffer);
    case 'float16':
      return new Uint16Array(buffer);
    default:
      return new Uint8Array(buffer);
  }
}

interface ValueInfoWire {
  name?: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: { dim_value?: Int64; dim_param?: string }[] } } };
}

function valueInfoFromProto(wire: ValueInfoWire, where: string): OnnxValueInfo {
  const tensorType = wire.type?.tensor_type;
  const elemType = DATA_TYPE_OF_CODE.get(tensorType?.elem_type ?? 0);
  if (!elemType) throw new OnnxDecodeError(`${where}: value '${wire.name ?? ''}' has unsupported element type ${tensorType?.elem_type ?? 0}`);
  return {
    name: wire.name ?? '',
    elemType,
    shape: (tensorType?.shape?.dim ?? []).map((d) => (d.dim_param ? d.dim_param : toNumber(d.dim_value))),
    ...(tensorType && !tensorType.shape ? { shapeUnknown: true } : {}),
  };
}

/** Parses ONNX bytes; `source` (a file name) goes into every error message. */
export function decodeOnnxModel(bytes: Uint8Array, source = 'model'): OnnxModel {
  let wire: Record<string, unknown>;
  try {
    wire = ModelProto.toObject(ModelProto.decode(bytes), { defaults: false, arrays: true }) as Record<string, unknown>;
  } catch (error) {
    throw new OnnxDecodeError(`${source}: not a readable ONNX model (${(error as Error).message})`);
  }
  const graphWire = wire.graph as Record<string, unknown> | undefined;
  if (!graphWire) throw new OnnxDecodeError(`${source}: ONNX model has no graph`);
  const nodes = ((graphWire.node as Record<string, unknown>[] | undefined) ?? []).map((node, index): OnnxNode => {
    const name = (node.name as string | undefined) ?? '';
    const where = `${source}: node '${name || `#${index}`}'`;
    const attributes: Record<string, OnnxAttribute> = {};
    for (const a of (node.attribute as Record<string, unknown>[] | undefined) ?? []) {
      const type = ATTRIBUTE_OF_CODE.get((a.type as number | undefined) ?? 0);
      const key = (a.name as string | undefined) ?? '';
      if (!type) throw new OnnxDecodeError(`${where}: attribute '${key}' has unsupported type ${String(a.type)}`);
      attributes[key] =
        type === 'float'
          ? { type, value: (a.f as number | undefined) ?? 0 }
          : type === 'int'
            ? { type, value: toNumber(a.i as Int64 | undefined) }
            : type === 'string'
              ? { type, value: new TextDecoder().decode((a.s as Uint8Array | undefined) ?? new Uint8Array()) }
              : type === 'floats'
                ? { type, value: (a.floats as number[] | undefined) ?? [] }
                : type === 'ints'
                  ? { type, value: ((a.ints as Int64[] | undefined) ?? []).map(toNumber) }
                  : { type, value: tensorFromProto(a.t as TensorProtoWire, `${where} attribute '${key}'`) };
    }
    return {
      name,
      opType: (node.op_type as string | undefined) ?? '',
      inputs: (node.input as string[] | undefined) ?? [],
      outputs: (node.output as string[] | undefined) ?? [],
      attributes,
      ...(node.domain ? { domain: node.domain as string } : {}),
    };
  });
  const list = <T>(key: string, convert: (item: never, where: string) => T) =>
    ((graphWire[key] as never[] | undefined) ?? []).map((item) => convert(item, `${source}: graph ${key}`));
  return {
    irVersion: toNumber(wire.ir_version as Int64 | undefined),
    opsetImports: ((wire.opset_import as { domain?: string; version?: Int64 }[] | undefined) ?? []).map((o) => ({ domain: o.domain ?? '', version: toNumber(o.version) })),
    producerName: (wire.producer_name as string | undefined) ?? '',
    producerVersion: (wire.producer_version as string | undefined) ?? '',
    metadata: Object.fromEntries(((wire.metadata_props as { key?: string; value?: string }[] | undefined) ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    graph: {
      name: (graphWire.name as string | undefined) ?? '',
      nodes,
      initializers: list('initializer', tensorFromProto),
      inputs: list('input', valueInfoFromProto),
      outputs: list('output', valueInfoFromProto),
      valueInfos: list('value_info', valueInfoFromProto),
    },
  };
}

/** Float32 -> IEEE half bits (round to nearest even), for float16 initializers. */
export function float16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const u32 = new Uint32Array(f32.buffer)[0]!;
  const sign = (u32 >>> 16) & 0x8000;
  const exponent = ((u32 >>> 23) & 0xff) - 127 + 15;
  const mantissa = u32 & 0x7fffff;
  if (exponent >= 0x1f) return sign | 0x7c00 | (((u32 >>> 23) & 0xff) === 0xff && mantissa ? 0x200 : 0);
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    const m = (mantissa | 0x800000) >>> (1 - exponent);
    return sign | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
  }
  const rounded = (exponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  return sign | (rounded + (remainder > 0x1000 || (remainder === 0x1000 && (rounded & 1)) ? 1 : 0));
}

/** IEEE half bits -> number. */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
