import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MODEL_CARD_DEFAULTS, loadModelCard, parseModelCard } from '../../perception/detect/model-card.js';
import { COCO_CLASSES } from '../../perception/detect/types.js';
import { tempDir } from '../support/data.js';

/** The default detector's card, as the converted CenterNet would ship with. */
function centernetCard(): Record<string, unknown> {
  return {
    name: 'centernet-mobilenetv3-coco',
    model: 'centernet.onnx',
    input: { name: 'tower_0/images', width: 512, height: 512, layout: 'nhwc', channelOrder: 'rgb', scale: 1, resize: 'letterbox' },
    decoder: { kind: 'centernet', heatmap: 'tower_0/keypoints', sizes: 'tower_0/wh', layout: 'nhwc', stride: 4, maxDetections: 100 },
    classes: [...COCO_CLASSES],
    scoreThreshold: 0.3,
    nmsIouThreshold: 0.5,
  };
}

function yoloCard(): Record<string, unknown> {
  return {
    name: 'yolov8n',
    model: 'models/yolov8n.onnx',
    input: { width: 640, height: 640, layout: 'nchw', channelOrder: 'rgb', scale: 1 / 255, resize: 'letterbox' },
    decoder: { kind: 'yolov8' },
    classes: [...COCO_CLASSES],
    scoreThreshold: 0.25,
    nmsIouThreshold: 0.45,
    classAgnosticNms: true,
  };
}

/** A card as loose JSON, so tests can break any field. */
interface CardJson {
  input: Record<string, unknown>;
  decoder: Record<string, unknown>;
  classes: unknown[];
  [field: string]: unknown;
}

/** A deep copy with `mutate` applied. */
function edited(card: Record<string, unknown>, mutate: (c: CardJson) => void): Record<string, unknown> {
  const copy = structuredClone(card);
  mutate(copy as CardJson);
  return copy;
}

describe('model cards', () => {
  let dir: string;
  let cardFile: string;

  beforeAll(async () => {
    dir = await tempDir('arhud-card-');
    cardFile = path.join(dir, 'centernet.card.json');
    await writeFile(cardFile, JSON.stringify(centernetCard()));
    await writeFile(path.join(dir, 'centernet.onnx'), 'not really a model');
  });

  it('loads a card, resolves the model next to it and fills in the defaults', async () => {
    const card = await loadModelCard(cardFile);
    expect(card.modelPath).toBe(path.join(dir, 'centernet.onnx'));
    expect(card.cardPath).toBe(cardFile);
    expect(card.input).toEqual({
      name: 'tower_0/images',
      width: 512,
      height: 512,
      layout: 'nhwc',
      channelOrder: 'rgb',
      scale: 1,
      mean: MODEL_CARD_DEFAULTS.mean,
      std: MODEL_CARD_DEFAULTS.std,
      resize: 'letterbox',
      padValue: MODEL_CARD_DEFAULTS.padValueOther,
    });
    expect(card.decoder).toEqual({ kind: 'centernet', heatmap: 'tower_0/keypoints', sizes: 'tower_0/wh', layout: 'nhwc', stride: 4, maxDetections: 100 });
    expect(card.classAgnosticNms).toBe(MODEL_CARD_DEFAULTS.classAgnosticNms);
    expect(card.classes).toHaveLength(80);
  });

  it('gives YOLO cards the YOLO defaults (pad 114, 300 detections) and keeps explicit values', () => {
    const card = parseModelCard(yoloCard(), path.join(dir, 'yolo.json'));
    expect(card.input.padValue).toBe(MODEL_CARD_DEFAULTS.padValueYolo);
    expect(card.input.name).toBeUndefined();
    expect(card.decoder).toEqual({ kind: 'yolov8', maxDetections: MODEL_CARD_DEFAULTS.yoloMaxDetections });
    expect(card.modelPath).toBe(path.join(dir, 'models', 'yolov8n.onnx'));
    expect(card.classAgnosticNms).toBe(true);
    const explicit = parseModelCard(
      edited(yoloCard(), (c) => {
        c.input.padValue = 0;
        c.input.mean = [0.485, 0.456, 0.406];
        c.decoder = { kind: 'yolov5', output: 'output0', maxDetections: 50 };
      }),
    );
    expect(explicit.input.padValue).toBe(0);
    expect(explicit.input.mean).toEqual([0.485, 0.456, 0.406]);
    expect(explicit.decoder).toEqual({ kind: 'yolov5', output: 'output0', maxDetections: 50 });
  });

  const file = '/cards/bad.json';
  const cases: [string, (c: CardJson) => void, 'TypeError' | 'RangeError', string][] = [
    ['missing input.width', (c) => delete c.input.width, 'TypeError', "field 'input.width' is required"],
    ['missing scoreThreshold', (c) => delete c.scoreThreshold, 'TypeError', "field 'scoreThreshold' is required"],
    ['width 0', (c) => (c.input.width = 0), 'RangeError', "field 'input.width' must be >= 1, got 0"],
    ['fractional width', (c) => (c.input.width = 511.5), 'TypeError', "field 'input.width' must be integer, got 511.5"],
    ['layout', (c) => (c.input.layout = 'chw'), 'TypeError', `field 'input.layout' must be one of "nchw", "nhwc", got "chw"`],
    ['scoreThreshold 1.5', (c) => (c.scoreThreshold = 1.5), 'RangeError', "field 'scoreThreshold' must be <= 1, got 1.5"],
    ['negative iou', (c) => (c.nmsIouThreshold = -0.1), 'RangeError', "field 'nmsIouThreshold' must be >= 0, got -0.1"],
    ['scale 0', (c) => (c.input.scale = 0), 'RangeError', "field 'input.scale' must be > 0, got 0"],
    ['std with 0', (c) => (c.input.std = [1, 0, 1]), 'RangeError', "field 'input.std[1]' must be > 0, got 0"],
    ['mean of 2', (c) => (c.input.mean = [1, 2]), 'RangeError', "field 'input.mean' must NOT have fewer than 3 items, got [1,2]"],
    ['padValue 300', (c) => (c.input.padValue = 300), 'RangeError', "field 'input.padValue' must be <= 255, got 300"],
    ['unknown decoder', (c) => (c.decoder.kind = 'ssd'), 'TypeError', `field 'decoder.kind' must be one of 'centernet', 'yolov5', 'yolov8', got "ssd"`],
    ['centernet without sizes', (c) => delete c.decoder.sizes, 'TypeError', "field 'decoder.sizes' is required"],
    ['stride 0', (c) => (c.decoder.stride = 0), 'RangeError', "field 'decoder.stride' must be >= 1, got 0"],
    ['stride not dividing', (c) => (c.decoder.stride = 3), 'RangeError', "field 'decoder.stride' (3) must divide 'input.width' (512)"],
    ['empty classes', (c) => (c.classes = []), 'RangeError', "field 'classes' must NOT have fewer than 1 items, got []"],
    ['class not a string', (c) => (c.classes[2] = 7), 'TypeError', "field 'classes[2]' must be string, got 7"],
    ['unknown field', (c) => (c.input.normalize = true), 'TypeError', "field 'input.normalize' is not a known field"],
  ];
  for (const [what, mutate, name, message] of cases) {
    it(`refuses a card with ${what}, naming the file and field`, () => {
      let error: Error | undefined;
      try {
        parseModelCard(edited(centernetCard(), mutate), file);
      } catch (e) {
        error = e as Error;
      }
      expect(error?.name).toBe(name);
      expect(error?.message).toBe(`loadModelCard: ${file}: ${message}`);
    });
  }

  it('refuses invalid JSON and a missing model file, naming the card', async () => {
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, '{ "name": ');
    await expect(loadModelCard(broken)).rejects.toThrow(new RegExp(`^loadModelCard: ${broken} is not valid JSON`));
    const orphan = path.join(dir, 'orphan.json');
    await writeFile(orphan, JSON.stringify(edited(centernetCard(), (c) => (c.model = 'missing.onnx'))));
    await expect(loadModelCard(orphan)).rejects.toThrow(`loadModelCard: ${orphan}: field 'model' names ${path.join(dir, 'missing.onnx')}, which does not exist`);
    await expect(loadModelCard(path.join(dir, 'nope.json'))).rejects.toThrow(`loadModelCard: cannot read ${path.join(dir, 'nope.json')}`);
  });
});
