// Parity of the tfjs -> ONNX converter: the converted model in onnxruntime against the original in
// tfjs (wasm backend), on real PandaSet frames and on a small generated model that exercises what
// centernet does not (quantized multi-shard weights, folded shape arithmetic, EXPLICIT padding, ...).
import * as ort from 'onnxruntime-node';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeOnnxModel, float16Bits, type OnnxModel } from '../../perception/models/onnx.js';
import { convertTfjsGraphModel, TfjsConversionError, type TfjsConvertOptions } from '../../perception/models/tfjs-converter.js';
import { PANDASET_DIR, PROJECT_ROOT, tempDir } from '../support/data.js';
import { loadTfjsGraphModel, tf, useTfjsWasm } from '../support/tfjs.js';

const MODEL_DIR = path.join(PROJECT_ROOT, 'node_modules/@vladmandic/human/models');
const CENTERNET = path.join(MODEL_DIR, 'centernet.json');
const INPUT = 'tower_0/images';
const KEYPOINTS = 'tower_0/keypoints';
const WH = 'tower_0/wh';
const SIZE = 512;
const GRID = 128;
const CLASSES = 80;
const FRAMES = ['00', '30'];
/** Sigmoid heat-map in 0..1: float32 conv arithmetic in a different order may differ by this much. */
const KEYPOINT_TOLERANCE = 1e-3;
/**
 * wh is a linear head scaled to input pixels (|wh| reaches ~200 on these frames): float32 rounding
 * grows with magnitude, so the bound is relative, 1e-4 of the largest |wh| (~0.02 px; 1e-3 px of a
 * 512 px box would be far below anything the decoder resolves).
 */
const WH_RELATIVE_TOLERANCE = 1e-4;
/** Generated model: small values, few layers. */
const SYNTHETIC_TOLERANCE = 1e-4;


const loadTfjs = loadTfjsGraphModel;

async function frameNhwc(frame: string): Promise<Float32Array> {
  const rgb = await sharp(path.join(PANDASET_DIR, 'camera', `${frame}.jpg`)).resize(SIZE, SIZE, { fit: 'fill' }).removeAlpha().raw().toBuffer();
  return Float32Array.from(rgb);
}

/** [h, w, c] row-major -> [c, h, w]. */
function toChw(hwc: Float32Array, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(hwc.length);
  for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) out[k * h * w + p] = hwc[p * c + k]!;
  return out;
}

function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]!));
  return max;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`expected an Error, got ${String(error)}`);
  }
  throw new Error('expected a rejection, got none');
}

async function session(model: OnnxModel): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeOnnxModel(model), { intraOpNumThreads: 2, interOpNumThreads: 1 });
}

async function runTfjs(model: Awaited<ReturnType<typeof loadTfjsGraphModel>>, nhwc: Float32Array, shape: number[], outputs: string[]): Promise<Float32Array[]> {
  const input = tf.tensor(nhwc, shape);
  const results = model.execute(input, outputs) as tf.Tensor[];
  const data = await Promise.all(results.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([input, ...results]);
  return data;
}

let work: string;
let backend: string;

beforeAll(async () => {
  work = await tempDir('arhud-tfjs-');
  // The wasm binary is read from node_modules; should it fail to load, the cpu backend is the reference (and the log says so).
  backend = await useTfjsWasm();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('convertTfjsGraphModel on MobileNetV3-CenterNet', () => {
  const options: TfjsConvertOptions = { outputs: [KEYPOINTS, WH] };

  it('matches tfjs on real frames, with one graph layout and no transposes', async () => {
    const { model, report } = await convertTfjsGraphModel(CENTERNET, options);
    const convsIn = (report.opsIn._FusedConv2D ?? 0) + (report.opsIn.Conv2D ?? 0) + (report.opsIn.FusedDepthwiseConv2dNative ?? 0) + (report.opsIn.DepthwiseConv2dNative ?? 0);
    const onnxOps = model.graph.nodes.map((n) => n.opType);
    expect(convsIn).toBe(89);
    expect(onnxOps.filter((op) => op === 'Conv')).toHaveLength(convsIn);
    expect(report.transposes).toBe(0);
    expect(onnxOps).not.toContain('Transpose');
    expect(report.nodesOut).toBe(model.graph.nodes.length);
    expect(report.inputName).toBe(INPUT);
    expect(report.outputNames).toEqual([KEYPOINTS, WH]);
    // The TopK/NMS decoding tail is pruned, with its unsupported ops.
    expect(report.opsIn.TopKV2).toBeUndefined();
    expect(report.opsIn.Const).toBeGreaterThan(0);
    expect(model.graph.inputs).toEqual([{ name: INPUT, elemType: 'float32', shape: [1, 3, SIZE, SIZE] }]);
    expect(model.graph.outputs.map((o) => o.shape)).toEqual([
      [1, CLASSES, GRID, GRID],
      [1, 4, GRID, GRID],
    ]);
    // float16 weights widened to float32: twice the shard, plus the graph.
    const bytes = encodeOnnxModel(model).length;
    const shardBytes = (await readFile(path.join(MODEL_DIR, 'centernet.bin'))).length;
    expect(bytes / shardBytes).toBeGreaterThan(1.95);
    expect(bytes / shardBytes).toBeLessThan(2.1);

    const ortSession = await session(model);
    const tfModel = await loadTfjs(CENTERNET);
    const lines: string[] = [];
    for (const frame of FRAMES) {
      const nhwc = await frameNhwc(frame);
      const run = await ortSession.run({ [INPUT]: new ort.Tensor('float32', toChw(nhwc, SIZE, SIZE, 3), [1, 3, SIZE, SIZE]) });
      const [keypoints, wh] = await runTfjs(tfModel, nhwc, [1, SIZE, SIZE, 3], [KEYPOINTS, WH]);
      const keypointDiff = maxDiff(toChw(keypoints!, GRID, GRID, CLASSES), run[KEYPOINTS]!.data as Float32Array);
      const whDiff = maxDiff(toChw(wh!, GRID, GRID, 4), run[WH]!.data as Float32Array);
      expect(maxAbs(keypoints!)).toBeGreaterThan(0.3); // a real heat-map, not all zeros
      expect(keypointDiff).toBeLessThanOrEqual(KEYPOINT_TOLERANCE);
      expect(whDiff).toBeLessThanOrEqual(WH_RELATIVE_TOLERANCE * maxAbs(wh!));
      lines.push(`frame ${frame}: max |keypoints diff| ${keypointDiff.toExponential(2)}, max |wh diff| ${whDiff.toExponential(2)} of max |wh| ${maxAbs(wh!).toFixed(1)}`);
    }
    // ORT FP32 latency, 2 intra-op threads: median of 10 after one warm-up run.
    const feeds = { [INPUT]: new ort.Tensor('float32', toChw(await frameNhwc(FRAMES[0]!), SIZE, SIZE, 3), [1, 3, SIZE, SIZE]) };
    await ortSession.run(feeds);
    const timesMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const start = performance.now();
      await ortSession.run(feeds);
      timesMs.push(performance.now() - start);
    }
    timesMs.sort((a, b) => a - b);
    const medianMs = (timesMs[4]! + timesMs[5]!) / 2;
    console.info(`centernet parity vs tfjs-${backend}: ${lines.join('; ')}; ONNX ${(bytes / 1e6).toFixed(2)} MB; ORT FP32 median ${medianMs.toFixed(0)} ms`);
    await ortSession.release();
    tfModel.dispose();
  });

  it('writes one Transpose per layout change for an NHWC input and NHWC outputs, with the same numbers', async () => {
    const nchw = await convertTfjsGraphModel(CENTERNET, options);
    const nhwc = await convertTfjsGraphModel(CENTERNET, { ...options, inputLayout: 'nhwc', outputLayout: 'nhwc' });
    expect(nhwc.report.transposes).toBe(3);
    expect(nhwc.model.graph.nodes.filter((n) => n.opType === 'Transpose')).toHaveLength(3);
    expect(nhwc.model.graph.inputs[0]!.shape).toEqual([1, SIZE, SIZE, 3]);
    expect(nhwc.model.graph.outputs.map((o) => o.shape)).toEqual([
      [1, GRID, GRID, CLASSES],
      [1, GRID, GRID, 4],
    ]);
    const inputOnly = await convertTfjsGraphModel(CENTERNET, { ...options, inputLayout: 'nhwc' });
    expect(inputOnly.report.transposes).toBe(1);

    const image = await frameNhwc(FRAMES[1]!);
    const [sessionA, sessionB] = await Promise.all([session(nchw.model), session(nhwc.model)]);
    const a = await sessionA.run({ [INPUT]: new ort.Tensor('float32', toChw(image, SIZE, SIZE, 3), [1, 3, SIZE, SIZE]) });
    const b = await sessionB.run({ [INPUT]: new ort.Tensor('float32', image, [1, SIZE, SIZE, 3]) });
    await Promise.all([sessionA.release(), sessionB.release()]);
    expect(maxDiff(a[KEYPOINTS]!.data as Float32Array, toChw(b[KEYPOINTS]!.data as Float32Array, GRID, GRID, CLASSES))).toBe(0);
    expect(maxDiff(a[WH]!.data as Float32Array, toChw(b[WH]!.data as Float32Array, GRID, GRID, 4))).toBe(0);
  });
});

describe('convertTfjsGraphModel errors', () => {
  /** A copy of centernet in its own directory, with model.json edited and the shard as given. */
  async function brokenCopy(name: string, json: string | ((model: Record<string, unknown>) => unknown), shard?: Uint8Array | null): Promise<string> {
    const dir = path.join(work, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const original = await readFile(CENTERNET, 'utf8');
    const text = typeof json === 'string' ? json : JSON.stringify(json(JSON.parse(original) as Record<string, unknown>));
    const file = path.join(dir, 'centernet.json');
    await writeFile(file, text);
    if (shard === undefined) await copyFile(path.join(MODEL_DIR, 'centernet.bin'), path.join(dir, 'centernet.bin'));
    else if (shard !== null) await writeFile(path.join(dir, 'centernet.bin'), shard);
    return file;
  }

  const options = { outputs: [KEYPOINTS, WH] };

  it('names the file when model.json is not a graph model', async () => {
    let file = await brokenCopy('not-json', '{"format": "graph-model", ');
    let error = await rejectionOf(convertTfjsGraphModel(file, options));
    expect(error).toBeInstanceOf(TfjsConversionError);
    expect(error.name).toBe('TfjsConversionError');
    expect(error.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not JSON \\(`));

    file = await brokenCopy('layers', (m) => ({ ...m, format: 'layers-model' }));
    error = await rejectionOf(convertTfjsGraphModel(file, options));
    expect(error.message).toBe(`${file}: not a TensorFlow.js graph model (format 'layers-model', expected 'graph-model')`);

    file = await brokenCopy('no-topology', (m) => ({ ...m, modelTopology: undefined }));
    error = await rejectionOf(convertTfjsGraphModel(file, options));
    expect(error.message).toBe(`${file}: missing 'modelTopology'`);
  });

  it('names the shard that is missing or does not match the manifest', async () => {
    const bin = await readFile(path.join(MODEL_DIR, 'centernet.bin'));
    let file = await brokenCopy('no-shard', (m) => m, null);
    let error = await rejectionOf(convertTfjsGraphModel(file, options));
    expect(error).toBeInstanceOf(TfjsConversionError);
    expect(error.message).toMatch(`${path.join(path.dirname(file), 'centernet.bin')}: cannot read the weight shard that ${file} lists (ENOENT`);

    file = await brokenCopy('short-shard', (m) => m, bin.subarray(0, bin.length - 1));
    error = await rejectionOf(convertTfjsGraphModel(file, options));
    expect(error.message).toBe(`${path.join(path.dirname(file), 'centernet.bin')}: has ${bin.length - 1} bytes, the manifest needs ${bin.length}`);
    expect(error.message).toMatch(/centernet\.bin: has 4030289 bytes, the manifest needs 4030290$/);

    file = await brokenCopy('long-shard', (m) => m, Buffer.concat([bin, Buffer.alloc(3)]));
    error = await rejectionOf(convertTfjsGraphModel(file, options));
    expect(error.message).toBe(`${path.join(path.dirname(file), 'centernet.bin')}: has ${bin.length + 3} bytes, the manifest needs ${bin.length}`);
  });

  it('names an output that is not in the graph', async () => {
    const error = await rejectionOf(convertTfjsGraphModel(CENTERNET, { outputs: [KEYPOINTS, 'tower_0/boxes'] }));
    expect(error).toBeInstanceOf(TfjsConversionError);
    expect(error.message).toBe(`${CENTERNET}: output 'tower_0/boxes' is not a node of the graph (the signature's outputs: tower_0/wh, tower_0/keypoints, tower_0/detections)`);
  });

  it('names the node and op of an unsupported op the outputs need, and ignores one they do not', async () => {
    const renamed = 'tower_0/MobilenetV3/Conv/hard_swish/Relu6';
    const file = await brokenCopy('elu', (m) => {
      const topology = m.modelTopology as { node: { name: string; op: string }[] };
      for (const node of topology.node) if (node.name === renamed) node.op = 'Elu';
      return m;
    });
    const error = await rejectionOf(convertTfjsGraphModel(file, options));
    expect(error).toBeInstanceOf(TfjsConversionError);
    expect(error.message).toMatch(new RegExp(`: node '${renamed}' \\(Elu\\): op 'Elu' is not supported; supported: `));
    expect(error.message.startsWith(`${file}: `)).toBe(true);
    // The decoding tail (TopKV2, GatherV2, FloorMod, ...) is needed only by 'tower_0/detections'.
    const tail = await rejectionOf(convertTfjsGraphModel(CENTERNET, { outputs: ['tower_0/detections'] }));
    expect(tail.message).toMatch(/: node 'tower_0\/[^']+' \((MaxPool|Equal|Cast|Reshape|TopKV2|StridedSlice|GatherV2)\): op '\w+' is not supported/);
  });

  it('rejects bad options with TypeError or RangeError naming the field', async () => {
    await expect(convertTfjsGraphModel(CENTERNET, { outputs: 'x' as never })).rejects.toThrow(new TypeError("convertTfjsGraphModel: 'options.outputs' must be an array of node names"));
    await expect(convertTfjsGraphModel(CENTERNET, { outputs: [] })).rejects.toThrow(RangeError);
    await expect(convertTfjsGraphModel(CENTERNET, { outputs: [WH], inputLayout: 'chw' as never })).rejects.toThrow("'options.inputLayout' must be 'nchw' or 'nhwc', got 'chw'");
    await expect(convertTfjsGraphModel(CENTERNET, { outputs: [WH], opset: 12 })).rejects.toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// A generated graph model: what centernet does not exercise.

type AttrJson = Record<string, unknown>;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const A = {
  s: (v: string): AttrJson => ({ s: b64(v) }),
  ints: (v: number[]): AttrJson => ({ list: { i: v.map(String) } }),
  strs: (v: string[]): AttrJson => ({ list: { s: v.map(b64) } }),
  int: (v: number): AttrJson => ({ i: String(v) }),
  bool: (v: boolean): AttrJson => ({ b: v }),
  type: (v: string): AttrJson => ({ type: v }),
};

interface SyntheticWeight {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  values: number[];
  quantization?: 'uint8' | 'uint16' | 'float16';
}

/** Deterministic values in [-1, 1). */
function pseudoRandom(count: number, seed: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/** Writes model.json and its weights as two shards split mid-weight; returns the model.json path and the shard sizes. */
async function writeSyntheticModel(dir: string): Promise<{ file: string; shardBytes: [number, number] }> {
  const weights: SyntheticWeight[] = [];
  const nodes: { name: string; op: string; input?: string[]; attr?: Record<string, AttrJson> }[] = [];
  const constant = (w: SyntheticWeight) => {
    weights.push(w);
    const dtype = w.dtype === 'float32' ? 'DT_FLOAT' : 'DT_INT32';
    nodes.push({ name: w.name, op: 'Const', attr: { dtype: A.type(dtype), value: { tensor: { dtype, tensorShape: { dim: w.shape.map((d) => ({ size: String(d) })) } } } } });
    return w.name;
  };
  const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const node = (name: string, op: string, input: string[], attr: Record<string, AttrJson> = {}) => {
    nodes.push({ name, op, input, attr });
    return name;
  };
  const convAttrs = (strides: number[], padding: string, extra: Record<string, AttrJson> = {}) => ({
    strides: A.ints(strides),
    padding: A.s(padding),
    data_format: A.s('NHWC'),
    dilations: A.ints([1, 1, 1, 1]),
    explicit_paddings: { list: {} },
    ...extra,
  });

  node('x', 'Placeholder', [], { dtype: A.type('DT_FLOAT'), shape: { shape: { dim: [1, 10, 12, 3].map((d) => ({ size: String(d) })) } } });
  // Stride-2 SAME on even sizes: TF pads the odd total (1 row, 1 column) at the end, not the start.
  const w1 = constant({ name: 'w1', shape: [3, 3, 3, 4], dtype: 'float32', values: pseudoRandom(108, 1), quantization: 'uint8' });
  const b1 = node('b1/read', 'Identity', [constant({ name: 'b1', shape: [4], dtype: 'float32', values: pseudoRandom(4, 2), quantization: 'float16' })]);
  const c1 = node('c1', '_FusedConv2D', ['x', w1, b1], convAttrs([1, 2, 2, 1], 'SAME', { num_args: A.int(1), fused_ops: A.strs(['BiasAdd', 'Relu6']), epsilon: { f: 0 } })); // [1,5,6,4]
  const dw = constant({ name: 'dw', shape: [3, 3, 4, 2], dtype: 'float32', values: pseudoRandom(72, 3), quantization: 'uint16' });
  const db = constant({ name: 'db', shape: [8], dtype: 'float32', values: pseudoRandom(8, 4) });
  const d1 = node('d1', 'FusedDepthwiseConv2dNative', [c1, dw, db], {
    ...convAttrs([1, 1, 1, 1], 'EXPLICIT', { explicit_paddings: A.ints([0, 0, 1, 0, 0, 2, 0, 0]) }),
    num_args: A.int(1),
    fused_ops: A.strs(['BiasAdd', 'Sigmoid']),
  }); // [1,4,6,8]
  const m = node('m', 'Mul', [d1, constant({ name: 'scale', shape: [8], dtype: 'float32', values: pseudoRandom(8, 5).map((v) => v * 3) })]);
  // A rank-4 constant broadcast over H, on the left: transposed to NCHW at conversion time.
  const s = node('s', 'Sub', [constant({ name: 'shift', shape: [1, 1, 6, 8], dtype: 'float32', values: pseudoRandom(48, 6) }), m]);
  const axes = constant({ name: 'axes', shape: [2], dtype: 'int32', values: [1, 2], quantization: 'uint8' });
  const meanHw = node('mean_hw', 'Mean', [s, axes], { keep_dims: A.bool(true), Tidx: A.type('DT_INT32') });
  const g = node('g', 'Mul', [s, node('gate', 'Sigmoid', [meanHw])]);
  const r1 = node('r1', 'Relu', [g]); // [1,4,6,8]
  // Keras-style upsampling size: Shape -> StridedSlice -> Mul -> Pack, all folded.
  const shape = node('shape', 'Shape', [r1], { out_type: A.type('DT_INT32') });
  const slice = (name: string, begin: number) =>
    node(name, 'StridedSlice', [shape, constant({ name: `${name}/b`, shape: [1], dtype: 'int32', values: [begin] }), constant({ name: `${name}/e`, shape: [1], dtype: 'int32', values: [begin + 1] }), constant({ name: `${name}/s`, shape: [1], dtype: 'int32', values: [1] })], {
      shrink_axis_mask: A.int(1),
      begin_mask: A.int(0),
      end_mask: A.int(0),
      ellipsis_mask: A.int(0),
      new_axis_mask: A.int(0),
    });
  const two = constant({ name: 'two', shape: [], dtype: 'int32', values: [2] });
  const size = node('size', 'Pack', [node('h_up', 'Mul', [slice('h', 1), two]), node('w_up', 'Mul', [slice('w', 2), two])], { axis: A.int(0), N: A.int(2) });
  const up = node('up', 'ResizeBilinear', [r1, size], { align_corners: A.bool(false), half_pixel_centers: A.bool(true) }); // [1,8,12,8]
  const c2 = node('c2', 'Conv2D', [up, constant({ name: 'w2', shape: [1, 1, 8, 4], dtype: 'float32', values: pseudoRandom(32, 7) })], convAttrs([1, 1, 1, 1], 'VALID'));
  const c3 = node('c3', 'Conv2D', [up, constant({ name: 'w3', shape: [3, 3, 8, 6], dtype: 'float32', values: pseudoRandom(432, 8) })], convAttrs([1, 1, 1, 1], 'SAME', { dilations: A.ints([1, 2, 2, 1]) }));
  const cat = node('cat', 'ConcatV2', [c2, c3, constant({ name: 'cat/axis', shape: [], dtype: 'int32', values: [-1] })], { N: A.int(2), Tidx: A.type('DT_INT32') });
  node('out1', 'Identity', [node('biased', 'AddV2', [cat, constant({ name: 'bias10', shape: [10], dtype: 'float32', values: pseudoRandom(10, 9) })])]); // [1,8,12,10]
  // align_corners, then a mean over H without keep_dims: TF keeps [N, W, C], so the ONNX graph reorders.
  const up2 = node('up2', 'ResizeBilinear', [r1, constant({ name: 'size2', shape: [2], dtype: 'int32', values: [7, 9] })], { align_corners: A.bool(true), half_pixel_centers: A.bool(false) });
  node('out2', 'Mean', [up2, constant({ name: 'axis_h', shape: [1], dtype: 'int32', values: [1] })], { keep_dims: A.bool(false) }); // [1,9,8]
  // Neither: asymmetric, non-integer scale; mean over C keeps [N, H, W] in both layouts.
  const up3 = node('up3', 'ResizeBilinear', [r1, constant({ name: 'size3', shape: [2], dtype: 'int32', values: [5, 7] })], { align_corners: A.bool(false), half_pixel_centers: A.bool(false) });
  node('out3', 'Mean', [up3, constant({ name: 'axis_c', shape: [1], dtype: 'int32', values: [-1] })], { keep_dims: A.bool(false) }); // [1,5,7]
  // A tail the outputs do not need, with an op the converter does not support.
  node('tail', 'Elu', ['out1']);

  const parts: Buffer[] = [];
  const offsets = new Map<string, number>();
  const specs = weights.map((w) => {
    offsets.set(w.name, parts.reduce((n, p) => n + p.length, 0));
    expect(w.values).toHaveLength(count(w.shape));
    if (w.quantization === 'float16') {
      parts.push(Buffer.from(Uint16Array.from(w.values, float16Bits).buffer));
      return { name: w.name, shape: w.shape, dtype: w.dtype, quantization: { dtype: 'float16', original_dtype: w.dtype } };
    }
    if (w.quantization) {
      const levels = w.quantization === 'uint8' ? 255 : 65535;
      const min = Math.min(...w.values);
      const scale = (Math.max(...w.values) - min) / levels || 1;
      const q = w.values.map((v) => Math.round((v - min) / scale));
      parts.push(Buffer.from((w.quantization === 'uint8' ? Uint8Array.from(q) : Uint16Array.from(q)).buffer));
      return { name: w.name, shape: w.shape, dtype: w.dtype, quantization: { dtype: w.quantization, min, scale, original_dtype: w.dtype } };
    }
    parts.push(Buffer.from((w.dtype === 'float32' ? Float32Array.from(w.values) : Int32Array.from(w.values)).buffer));
    return { name: w.name, shape: w.shape, dtype: w.dtype };
  });
  const all = Buffer.concat(parts);
  // An odd byte offset inside the uint16 depthwise filter: one weight spans both shards.
  const cut = offsets.get('dw')! + 51;
  await writeFile(path.join(dir, 'group1-shard1of2.bin'), all.subarray(0, cut));
  await writeFile(path.join(dir, 'group1-shard2of2.bin'), all.subarray(cut));
  const file = path.join(dir, 'model.json');
  await writeFile(
    file,
    JSON.stringify({
      format: 'graph-model',
      generatedBy: 'arhud test',
      convertedBy: 'hand',
      modelTopology: { node: nodes, library: {}, versions: {} },
      weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: specs }],
    }),
  );
  return { file, shardBytes: [cut, all.length - cut] };
}

describe('convertTfjsGraphModel on a generated model', () => {
  const outputs = ['out1', 'out2', 'out3'];
  const inputShape = [1, 10, 12, 3];

  it('matches tfjs: quantized two-shard weights, folded shape arithmetic, EXPLICIT/SAME/dilated convs, three resize modes', async () => {
    const dir = path.join(work, 'synthetic');
    await mkdir(dir, { recursive: true });
    const { file, shardBytes } = await writeSyntheticModel(dir);
    const image = Float32Array.from(pseudoRandom(count(inputShape), 10), (v) => v * 2);
    const tfModel = await loadTfjs(file);
    const expected = await runTfjs(tfModel, image, inputShape, outputs);
    tfModel.dispose();

    for (const opset of [17, 18]) {
      const { model, report } = await convertTfjsGraphModel(file, { outputs, opset });
      // b1/read (Identity of a const), Shape, 2 StridedSlice, 2 Mul, Pack.
      expect(report.foldedConstants).toBe(7);
      expect(report.opsIn.Elu).toBeUndefined();
      // out2's mean over H leaves [N, C, W] in NCHW: one reorder, the only Transpose.
      expect(report.transposes).toBe(1);
      expect(model.graph.outputs.map((o) => [o.name, o.shape])).toEqual([
        ['out1', [1, 10, 8, 12]],
        ['out2', [1, 9, 8]],
        ['out3', [1, 5, 7]],
      ]);
      expect(model.graph.nodes.filter((n) => n.opType === 'Resize').map((n) => n.attributes.coordinate_transformation_mode?.value)).toEqual([
        'half_pixel',
        'align_corners',
        'asymmetric',
      ]);
      const ortSession = await session(model);
      const run = await ortSession.run({ x: new ort.Tensor('float32', toChw(image, 10, 12, 3), [1, 3, 10, 12]) });
      expect(maxDiff(toChw(expected[0]!, 8, 12, 10), run.out1!.data as Float32Array)).toBeLessThanOrEqual(SYNTHETIC_TOLERANCE);
      expect(maxDiff(expected[1]!, run.out2!.data as Float32Array)).toBeLessThanOrEqual(SYNTHETIC_TOLERANCE);
      expect(maxDiff(expected[2]!, run.out3!.data as Float32Array)).toBeLessThanOrEqual(SYNTHETIC_TOLERANCE);
      expect(maxAbs(expected[0]!)).toBeGreaterThan(0.1);
      await ortSession.release();
    }

    // Several shards: the message names them all and their total.
    await writeFile(path.join(dir, 'group1-shard2of2.bin'), Buffer.alloc(5));
    const error = await rejectionOf(convertTfjsGraphModel(file, { outputs }));
    const shards = ['group1-shard1of2.bin', 'group1-shard2of2.bin'].map((f) => path.join(dir, f)).join(' + ');
    expect(error.message).toBe(`${shards}: have ${shardBytes[0] + 5} bytes, the manifest needs ${shardBytes[0] + shardBytes[1]}`);
  });
});

function count(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
