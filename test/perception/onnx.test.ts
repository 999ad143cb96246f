import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  MIN_OPSET,
  OnnxDecodeError,
  OnnxGraphBuilder,
  OnnxValidationError,
  attr,
  decodeOnnxModel,
  encodeOnnxModel,
  float16Bits,
  float16Value,
  validateOnnxModel,
} from '../../perception/models/onnx.js';
import { thrownBy } from '../support/errors.js';

/** y = relu(conv3x3(x, w) + b) + 1, NCHW, 1 -> 2 channels. */
function convModel() {
  const g = new OnnxGraphBuilder('conv-test');
  const x = g.addInput('x', 'float32', [1, 1, 4, 4]);
  const w = g.addInitializer('w', 'float32', [2, 1, 3, 3], Float32Array.from({ length: 18 }, (_, i) => (i < 9 ? 1 : i === 13 ? 2 : 0)));
  const b = g.addInitializer('b', 'float32', [2], Float32Array.from([-3, 0.5]));
  const one = g.addInitializer('one', 'float32', [], Float32Array.from([1]));
  const [conv] = g.addNode('Conv', [x, w, b], 1, { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
  const [relu] = g.addNode('Relu', [conv!]);
  g.addNode('Add', [relu!, one], ['y']);
  g.addOutput('y', 'float32', [1, 2, 4, 4]);
  return g.build({ metadata: { source: 'unit test' } });
}

describe('ONNX builder, encoder and decoder', () => {
  it('builds a model onnxruntime runs with the expected numbers', async () => {
    const bytes = encodeOnnxModel(convModel());
    const session = await ort.InferenceSession.create(bytes);
    const input = Float32Array.from({ length: 16 }, (_, i) => i);
    const { y } = await session.run({ x: new ort.Tensor('float32', input, [1, 1, 4, 4]) });
    const out = y!.data as Float32Array;
    // Channel 0: box sum of the 3x3 neighbourhood - 3, relu, +1. Centre pixel (1,1): sum of 0,1,2,4,5,6,8,9,10 = 45.
    expect(out[1 * 4 + 1]).toBe(45 - 3 + 1);
    // Corner (0,0): 0+1+4+5 = 10.
    expect(out[0]).toBe(10 - 3 + 1);
    // Channel 1: 2x the pixel (centre tap) + 0.5, +1.
    expect(out[16 + 5]).toBe(2 * 5 + 0.5 + 1);
    await session.release();
  });

  it('round-trips through bytes', () => {
    const model = convModel();
    const decoded = decodeOnnxModel(encodeOnnxModel(model), 'conv.onnx');
    expect(decoded.opsetImports).toEqual([{ domain: '', version: 17 }]);
    expect(decoded.metadata).toEqual({ source: 'unit test' });
    expect(decoded.graph.nodes.map((n) => [n.opType, n.inputs, n.outputs])).toEqual(model.graph.nodes.map((n) => [n.opType, n.inputs, n.outputs]));
    expect(decoded.graph.nodes[0]!.attributes).toEqual({ kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) });
    expect([...(decoded.graph.initializers[0]!.data as Float32Array)]).toEqual([...(model.graph.initializers[0]!.data as Float32Array)]);
    expect(decoded.graph.inputs).toEqual([{ name: 'x', elemType: 'float32', shape: [1, 1, 4, 4] }]);
    expect(() => validateOnnxModel(decoded)).not.toThrow();
  });

  it('names the node or tensor that breaks a rule', () => {
    const g = new OnnxGraphBuilder('bad');
    g.addInput('x', 'float32', [1]);
    expect(thrownBy(() => g.addInput('x', 'float32', [1])).message).toBe("OnnxGraphBuilder: tensor name 'x' (graph input) is already used");
    expect(thrownBy(() => g.addInitializer('w', 'float32', [2, 2], new Float32Array(3))).message).toBe(
      "OnnxGraphBuilder.addInitializer('w'): dims [2, 2] need 4 elements, data has 3",
    );
    g.addNode('Relu', ['missing'], ['y'], {}, 'relu1');
    g.addOutput('y', 'float32', [1]);
    const error = thrownBy(() => g.build());
    expect(error).toBeInstanceOf(OnnxValidationError);
    expect(error.message).toBe("graph 'bad': node 'relu1' (Relu) reads 'missing', which no graph input, initializer or earlier node defines");

    const old = convModel();
    old.opsetImports = [{ domain: '', version: MIN_OPSET - 1 }];
    expect(() => validateOnnxModel(old)).toThrow(`model: opset ${MIN_OPSET - 1} is below the minimum ${MIN_OPSET}`);
    const unproduced = convModel();
    unproduced.graph.outputs.push({ name: 'z', elemType: 'float32', shape: [1] });
    expect(() => validateOnnxModel(unproduced)).toThrow("graph 'conv-test': graph output 'z' is not produced by any node");
  });

  it('refuses corrupt and truncated bytes, naming the source', () => {
    const bytes = encodeOnnxModel(convModel());
    expect(() => decodeOnnxModel(bytes.subarray(0, bytes.length - 40), 'cut.onnx')).toThrow(OnnxDecodeError);
    expect(() => decodeOnnxModel(bytes.subarray(0, bytes.length - 40), 'cut.onnx')).toThrow(/^cut\.onnx: /);
    expect(() => decodeOnnxModel(new TextEncoder().encode('definitely not protobuf'), 'text.onnx')).toThrow(/^text\.onnx: /);
  });

  it('converts float16 exactly where representable', () => {
    for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) expect(float16Value(float16Bits(v))).toBe(v);
    expect(float16Value(float16Bits(0.1))).toBeCloseTo(0.1, 3);
    expect(float16Value(float16Bits(1e6))).toBe(Infinity);
  });
});
