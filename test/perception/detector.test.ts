import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ImageView } from '../../pipeline/index.js';
import { OnnxGraphBuilder, encodeOnnxModel } from '../../perception/models/onnx.js';
import { DETECTOR_DEFAULTS, Detector, availableExecutionProviders, type ExecutionProvider } from '../../perception/detect/detector.js';
import { parseModelCard, type ModelCard } from '../../perception/detect/model-card.js';
import { tempDir } from '../support/data.js';

const SIZE_PX = 64;
const CLASSES = ['person', 'car', 'traffic light'];
/** Anchor boxes (cx, cy, w, h in input pixels) of the synthetic model, one column per candidate. */
const ANCHORS = [
  [16, 48, 16], // cx
  [16, 32, 17], // cy
  [8, 16, 8], // w
  [8, 32, 10], // h
];
/** Class score of candidate i = mean of input channel j x GAIN[j][i]. */
const GAIN = [
  [1, 0.1, 0.9],
  [0.2, 1, 0.1],
  [0, 0, 0],
];

/**
 * A tiny YOLOv8-layout model, images [1, 3, 64, 64] -> output0 [1, 4 + 3, 3]: constant boxes and class
 * scores from the per-channel image means, so the scores depend on what the detector fed in.
 * `poison` adds a NaN or Infinity to the scores (Sqrt(-1), or 1 / 0).
 */
function syntheticYoloV8(poison?: 'nan' | 'inf'): Uint8Array {
  const g = new OnnxGraphBuilder('synthetic-yolov8');
  const images = g.addInput('images', 'float32', [1, 3, SIZE_PX, SIZE_PX]);
  const [mean] = g.addNode('GlobalAveragePool', [images]);
  const shape = g.addInitializer('shape', 'int64', [3], BigInt64Array.from([1n, 3n, 1n]));
  const [column] = g.addNode('Reshape', [mean!, shape]);
  const gain = g.addInitializer('gain', 'float32', [1, 3, 3], Float32Array.from(GAIN.flat()));
  let [scores] = g.addNode('Mul', [column!, gain]);
  if (poison) {
    const bad = g.addInitializer('bad', 'float32', [], Float32Array.from([poison === 'nan' ? -1 : 0]));
    const [value] = g.addNode(poison === 'nan' ? 'Sqrt' : 'Reciprocal', [bad]);
    [scores] = g.addNode('Add', [scores!, value!]);
  }
  const boxes = g.addInitializer('boxes', 'float32', [1, 4, 3], Float32Array.from(ANCHORS.flat()));
  g.addNode('Concat', [boxes, scores!], ['output0'], { axis: { type: 'int', value: 1 } });
  g.addOutput('output0', 'float32', [1, 4 + CLASSES.length, 3]);
  return encodeOnnxModel(g.build());
}

/** A card as loose JSON, so tests can change any field. */
interface CardJson {
  input: Record<string, unknown>;
  decoder: Record<string, unknown>;
  classes: unknown[];
  [field: string]: unknown;
}

function solid(width: number, height: number, rgb: [number, number, number]): ImageView {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return ImageView.packed(width, height, 'rgb8', data);
}

describe('Detector (synthetic YOLOv8-layout ONNX model)', () => {
  let dir: string;
  let card: ModelCard;

  function cardFor(model: string, edit: (c: CardJson) => void = () => {}): ModelCard {
    const json: CardJson = {
      name: 'synthetic',
      model,
      input: { name: 'images', width: SIZE_PX, height: SIZE_PX, layout: 'nchw', channelOrder: 'rgb', scale: 1 / 255, resize: 'stretch' },
      decoder: { kind: 'yolov8' },
      classes: CLASSES,
      scoreThreshold: 0.25,
      nmsIouThreshold: 0.5,
    };
    edit(json);
    return parseModelCard(json, path.join(dir, 'card.json'));
  }

  beforeAll(async () => {
    dir = await tempDir('arhud-detector-');
    await writeFile(path.join(dir, 'synthetic.onnx'), syntheticYoloV8());
    await writeFile(path.join(dir, 'nan.onnx'), syntheticYoloV8('nan'));
    await writeFile(path.join(dir, 'inf.onnx'), syntheticYoloV8('inf'));
    card = cardFor('synthetic.onnx');
  });

  it('detects end to end: preprocess, ORT, decode, NMS, boxes in source pixels', async () => {
    const detector = await Detector.create(card);
    expect(detector.executionProvider).toBe(DETECTOR_DEFAULTS.executionProvider);
    expect(detector.inputName).toBe('images');
    expect(detector.outputNames).toEqual(['output0']);
    // 128 x 64 source stretched to 64 x 64: x halves, y stays. Channel means 200/255, 50/255, 0.
    const red = solid(128, 64, [200, 50, 0]);
    const detections = await detector.detect(red);
    // Candidate 0: person 200/255 = 0.784 (up to float32 sums in GlobalAveragePool). Candidate 1: car 50/255 = 0.196 < 0.25, dropped.
    // Candidate 2: person 0.9 x 0.784 = 0.706, box overlapping candidate 0's with IoU 64/80 > 0.5: suppressed.
    expect(detections).toHaveLength(1);
    const [person] = detections;
    expect(person!.className).toBe('person');
    expect(person!.hudClass).toBe('person');
    expect(person!.score).toBeCloseTo(200 / 255, 4);
    // Input box [12, 12, 20, 20] -> source [24, 12, 40, 20].
    expect(person!.box.map((v) => +v.toFixed(4))).toEqual([24, 12, 40, 20]);

    // Another frame through the same input buffer: a green image makes candidate 1 a car.
    const green = solid(128, 64, [0, 230, 0]);
    const next = await detector.detect(green);
    expect(next.map((d) => d.className)).toEqual(['car']);
    expect(next[0]!.score).toBeCloseTo(230 / 255, 4);
    // Input box [40, 16, 56, 48] -> source [80, 16, 112, 48].
    expect(next[0]!.box.map((v) => +v.toFixed(4))).toEqual([80, 16, 112, 48]);
    await detector.dispose();
    await expect(detector.detect(red)).rejects.toThrow("Detector.detect: detector for model 'synthetic' was disposed");
  });

  it('serialises concurrent detect calls over its one input buffer and clips boxes to the source', async () => {
    const detector = await Detector.create(cardFor('synthetic.onnx', (c) => (c.input.resize = 'letterbox')), { intraOpThreads: 1, graphOptimizationLevel: 'basic' });
    // 64 x 32 letterboxed into 64 x 64: 16 rows of padding (pad 114 -> means rise), scale 1.
    const [a, b] = await Promise.all([detector.detect(solid(64, 32, [255, 0, 0])), detector.detect(solid(64, 32, [0, 255, 0]))]);
    expect(a!.map((d) => d.className)).toEqual(['person']);
    expect(b!.map((d) => d.className)).toEqual(['car']);
    // Car anchor: input [40, 16, 56, 48] -> source y (16 - 16, 48 - 16) = [0, 32]: within the image.
    expect(b![0]!.box).toEqual([40, 0, 56, 32]);
    // Person anchor: input [12, 12, 20, 20] -> source y [-4, 4], clipped to [0, 4].
    expect(a![0]!.box).toEqual([12, 0, 20, 4]);
    await detector.dispose();
  });

  it('checks the session input against the card, naming the input and both shapes', async () => {
    const wrongSize = cardFor('synthetic.onnx', (c) => (c.input.width = 32));
    await expect(Detector.create(wrongSize)).rejects.toThrow(
      `Detector.create: model 'synthetic' (${path.join(dir, 'synthetic.onnx')}): input 'images' has shape [1, 3, 64, 64], the card (nchw, 32x64) expects [1, 3, 64, 32]`,
    );
    const wrongLayout = cardFor('synthetic.onnx', (c) => (c.input.layout = 'nhwc'));
    await expect(Detector.create(wrongLayout)).rejects.toThrow(RangeError);
    const wrongName = cardFor('synthetic.onnx', (c) => (c.input.name = 'tower_0/images'));
    await expect(Detector.create(wrongName)).rejects.toThrow("has no input 'tower_0/images' (inputs: 'images')");
    const wrongOutput = cardFor('synthetic.onnx', (c) => (c.decoder.output = 'detections'));
    await expect(Detector.create(wrongOutput)).rejects.toThrow("has no output 'detections' (outputs: 'output0')");
  });

  it('checks the class count of the output against the card', async () => {
    await expect(Detector.create(cardFor('synthetic.onnx', (c) => (c.classes = ['person', 'car'])))).rejects.toThrow(
      `Detector.create: model 'synthetic' (${path.join(dir, 'synthetic.onnx')}): output 'output0' dims [1, 7, 3] give 3 classes, the card lists 2`,
    );
  });

  it('rejects NaN and Infinity in outputs, naming the tensor', async () => {
    for (const [file, value] of [
      ['nan.onnx', 'NaN'],
      ['inf.onnx', 'Infinity'],
    ] as const) {
      const detector = await Detector.create(cardFor(file));
      const error = await detector.detect(solid(8, 8, [1, 2, 3])).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toBe(`Detector.detect: model 'synthetic': output 'output0' holds ${value} at element 12 (of dims [1, 7, 3])`);
      // The detector stays usable for the next frame's call (the queue is not poisoned).
      await expect(detector.detect(solid(8, 8, [1, 2, 3]))).rejects.toThrow(RangeError);
      await detector.dispose();
    }
  });

  it('refuses unknown or unavailable execution providers and bad options, naming them', async () => {
    const available = availableExecutionProviders();
    expect(available).toContain('cpu');
    for (const provider of (['cuda', 'tensorrt'] as ExecutionProvider[]).filter((p) => !available.includes(p))) {
      await expect(Detector.create(card, { executionProvider: provider })).rejects.toThrow(
        `Detector.create: execution provider '${provider}' is not available on this machine (available: ${available.join(', ')})`,
      );
    }
    await expect(Detector.create(card, { executionProvider: 'rocm' as never })).rejects.toThrow(
      "Detector.create: 'executionProvider' must be one of cpu, cuda, tensorrt, got 'rocm'",
    );
    await expect(Detector.create(card, { intraOpThreads: 0 })).rejects.toThrow("Detector.create: 'intraOpThreads' must be an integer >= 1, got 0");
    await expect(Detector.create(card, { graphOptimizationLevel: 'max' as never })).rejects.toThrow(RangeError);
    await expect(Detector.create(cardFor('missing.onnx'))).rejects.toThrow(`Detector.create: cannot load model 'synthetic' from ${path.join(dir, 'missing.onnx')}`);
  });
});
