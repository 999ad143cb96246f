/**
 * Model cards: a small JSON file beside each ONNX detector that says how to feed it (input size,
 * layout, normalisation, resize) and how to read it (decoder, class names, thresholds). Cards are
 * validated with JSON Schema (ajv) at load; an invalid card is refused with the file and the failing
 * field. Defaults live in `MODEL_CARD_DEFAULTS` and nowhere else.
 */
import { access } from 'node:fs/promises';
import { readJsonFile } from '../../pipeline/index.js';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';

export type TensorLayout = 'nchw' | 'nhwc';
export type ChannelOrder = 'rgb' | 'bgr';
export type ResizeMode = 'letterbox' | 'stretch';
export type Rgb = [r: number, g: number, b: number];

/** How an image becomes the model's input tensor: value = (pixel0to255 * scale - mean[c]) / std[c]. */
export interface ModelInputSpec {
  /** Input tensor name; undefined = the session's only input. */
  name?: string;
  /** Input width in pixels. */
  width: number;
  /** Input height in pixels. */
  height: number;
  layout: TensorLayout;
  /** Channel order the model expects (the source image is always rgb). */
  channelOrder: ChannelOrder;
  /** Multiplier applied to 0..255 pixel values (1/255 for YOLO, 1 for CenterNet). */
  scale: number;
  /** Subtracted after `scale`, per channel in the model's channel order. Default [0, 0, 0]. */
  mean: Rgb;
  /** Divides after `mean`, per channel in the model's channel order. Default [1, 1, 1]. */
  std: Rgb;
  /** 'letterbox' keeps the aspect ratio and pads; 'stretch' scales each axis to fill. */
  resize: ResizeMode;
  /** 0..255 pixel value of the letterbox padding (before scale/mean/std). Default 114 for YOLO, 0 otherwise. */
  padValue: number;
}

export interface CenterNetDecoderSpec {
  kind: 'centernet';
  /** Output holding the per-class sigmoid heat-map [1, H/stride, W/stride, C] (or NCHW). */
  heatmap: string;
  /** Output holding per-cell box extents [1, H/stride, W/stride, 4] in input pixels (or NCHW). */
  sizes: string;
  /** Layout of both outputs. */
  layout: TensorLayout;
  /** Input pixels per heat-map cell. */
  stride: number;
  /** Peaks kept by the top-k (k). */
  maxDetections: number;
}

export interface YoloDecoderSpec {
  /** 'yolov5': [1, N, 5 + C] with objectness; 'yolov8' (also YOLO11): [1, 4 + C, N], no objectness. */
  kind: 'yolov5' | 'yolov8';
  /** Output name; undefined = the session's only (first) output. */
  output?: string;
  /** Detections kept after NMS. Default 300. */
  maxDetections: number;
}

export type DecoderSpec = CenterNetDecoderSpec | YoloDecoderSpec;

export interface ModelCard {
  name: string;
  /** The `model` field as written in the card (relative to the card's folder). */
  model: string;
  /** Absolute path of the .onnx file. */
  modelPath: string;
  /** Absolute path of the card file ('' when parsed from memory). */
  cardPath: string;
  input: ModelInputSpec;
  decoder: DecoderSpec;
  /** Class names, index = class id in the model's outputs. */
  classes: string[];
  /** Detections scoring below this are dropped before NMS. */
  scoreThreshold: number;
  /** A box is suppressed when its IoU with a kept box is greater than this (1 disables NMS). */
  nmsIouThreshold: number;
  /** NMS across classes instead of per class. Default false. */
  classAgnosticNms: boolean;
}

/** Every default of a model card, in one place. */
export const MODEL_CARD_DEFAULTS = {
  mean: [0, 0, 0] as Rgb,
  std: [1, 1, 1] as Rgb,
  /** Ultralytics' letterbox grey. */
  padValueYolo: 114,
  padValueOther: 0,
  yoloMaxDetections: 300,
  classAgnosticNms: false,
} as const;

const OUTPUT_NAME = { type: 'string', minLength: 1 } as const;
const RGB = { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 } as const;

/** JSON Schema of a card file (before defaults). */
export const MODEL_CARD_SCHEMA = {
  type: 'object',
  required: ['name', 'model', 'input', 'decoder', 'classes', 'scoreThreshold', 'nmsIouThreshold'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', minLength: 1 },
    model: { type: 'string', minLength: 1 },
    input: {
      type: 'object',
      required: ['width', 'height', 'layout', 'channelOrder', 'scale', 'resize'],
      additionalProperties: false,
      properties: {
        name: { type: 'string', minLength: 1 },
        width: { type: 'integer', minimum: 1, maximum: 8192 },
        height: { type: 'integer', minimum: 1, maximum: 8192 },
        layout: { enum: ['nchw', 'nhwc'] },
        channelOrder: { enum: ['rgb', 'bgr'] },
        scale: { type: 'number', exclusiveMinimum: 0 },
        mean: RGB,
        std: { ...RGB, items: { type: 'number', exclusiveMinimum: 0 } },
        resize: { enum: ['letterbox', 'stretch'] },
        padValue: { type: 'number', minimum: 0, maximum: 255 },
      },
    },
    decoder: {
      type: 'object',
      required: ['kind'],
      discriminator: { propertyName: 'kind' },
      oneOf: [
        {
          properties: {
            kind: { const: 'centernet' },
            heatmap: OUTPUT_NAME,
            sizes: OUTPUT_NAME,
            layout: { enum: ['nchw', 'nhwc'] },
            stride: { type: 'integer', minimum: 1 },
            maxDetections: { type: 'integer', minimum: 1 },
          },
          required: ['kind', 'heatmap', 'sizes', 'layout', 'stride', 'maxDetections'],
          additionalProperties: false,
        },
        {
          properties: {
            kind: { enum: ['yolov5', 'yolov8'] },
            output: OUTPUT_NAME,
            maxDetections: { type: 'integer', minimum: 1 },
          },
          required: ['kind'],
          additionalProperties: false,
        },
      ],
    },
    classes: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
    scoreThreshold: { type: 'number', minimum: 0, maximum: 1 },
    nmsIouThreshold: { type: 'number', minimum: 0, maximum: 1 },
    classAgnosticNms: { type: 'boolean' },
  },
} as const;

const ajv = new Ajv({ strict: false, allErrors: false, discriminator: true });
const validateCard = ajv.compile(MODEL_CARD_SCHEMA);

/** Keywords whose failure means a value is out of range (RangeError) rather than of the wrong kind (TypeError). */
const RANGE_KEYWORDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'minItems', 'maxItems']);

function fieldOf(instancePath: string): string {
  return instancePath.split('/').slice(1).join('.').replace(/\.(\d+)(?=\.|$)/g, '[$1]');
}

function valueAt(json: unknown, instancePath: string): unknown {
  let value = json;
  for (const key of instancePath.split('/').slice(1)) value = (value as Record<string, unknown> | undefined)?.[key];
  return value;
}

function cardError(where: string, error: ErrorObject, json: unknown): TypeError | RangeError {
  let field = fieldOf(error.instancePath);
  const got = JSON.stringify(valueAt(json, error.instancePath));
  let what: string;
  switch (error.keyword) {
    case 'required': {
      const missing = (error.params as { missingProperty: string }).missingProperty;
      field = field ? `${field}.${missing}` : missing;
      what = 'is required';
      break;
    }
    case 'additionalProperties': {
      const extra = (error.params as { additionalProperty: string }).additionalProperty;
      field = field ? `${field}.${extra}` : extra;
      what = 'is not a known field';
      break;
    }
    case 'discriminator':
      field = field ? `${field}.kind` : 'kind';
      what = `must be one of 'centernet', 'yolov5', 'yolov8', got ${JSON.stringify(valueAt(json, `${error.instancePath}/kind`))}`;
      break;
    case 'enum':
      what = `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}, got ${got}`;
      break;
    default:
      what = `${error.message ?? 'is invalid'}, got ${got}`;
  }
  const message = `${where}: field '${field || '(root)'}' ${what}`;
  return RANGE_KEYWORDS.has(error.keyword) ? new RangeError(message) : new TypeError(message);
}

/**
 * Validates a parsed card and fills in defaults. `cardPath` (absolute or relative to the working
 * directory) names the card in errors and anchors the relative `model` path; '' for an in-memory card
 * (then `model` is resolved against the working directory).
 */
export function parseModelCard(json: unknown, cardPath = ''): ModelCard {
  const where = `loadModelCard: ${cardPath || '(in-memory card)'}`;
  if (!validateCard(json)) throw cardError(where, validateCard.errors![0]!, json);
  const raw = json as unknown as RawCard;
  const isYolo = raw.decoder.kind !== 'centernet';
  const input: ModelInputSpec = {
    width: raw.input.width,
    height: raw.input.height,
    layout: raw.input.layout,
    channelOrder: raw.input.channelOrder,
    scale: raw.input.scale,
    mean: [...(raw.input.mean ?? MODEL_CARD_DEFAULTS.mean)] as Rgb,
    std: [...(raw.input.std ?? MODEL_CARD_DEFAULTS.std)] as Rgb,
    resize: raw.input.resize,
    padValue: raw.input.padValue ?? (isYolo ? MODEL_CARD_DEFAULTS.padValueYolo : MODEL_CARD_DEFAULTS.padValueOther),
  };
  if (raw.input.name !== undefined) input.name = raw.input.name;
  let decoder: DecoderSpec;
  if (raw.decoder.kind === 'centernet') {
    decoder = { ...raw.decoder };
    for (const axis of ['width', 'height'] as const) {
      if (input[axis] % decoder.stride !== 0) {
        throw new RangeError(`${where}: field 'decoder.stride' (${decoder.stride}) must divide 'input.${axis}' (${input[axis]})`);
      }
    }
  } else {
    decoder = { kind: raw.decoder.kind, maxDetections: raw.decoder.maxDetections ?? MODEL_CARD_DEFAULTS.yoloMaxDetections };
    if (raw.decoder.output !== undefined) decoder.output = raw.decoder.output;
  }
  const cardAbs = cardPath ? path.resolve(cardPath) : '';
  return {
    name: raw.name,
    model: raw.model,
    modelPath: path.resolve(cardAbs ? path.dirname(cardAbs) : process.cwd(), raw.model),
    cardPath: cardAbs,
    input,
    decoder,
    classes: [...raw.classes],
    scoreThreshold: raw.scoreThreshold,
    nmsIouThreshold: raw.nmsIouThreshold,
    classAgnosticNms: raw.classAgnosticNms ?? MODEL_CARD_DEFAULTS.classAgnosticNms,
  };
}

/** Reads, validates and completes a card; the model file must exist. */
export async function loadModelCard(cardPath: string): Promise<ModelCard> {
  const json = await readJsonFile(cardPath, 'loadModelCard');
  const card = parseModelCard(json, cardPath);
  try {
    await access(card.modelPath);
  } catch {
    throw new Error(`loadModelCard: ${cardPath}: field 'model' names ${card.modelPath}, which does not exist`);
  }
  return card;
}

/** The card as it is on disk (optional fields may be missing). */
interface RawCard {
  name: string;
  model: string;
  input: Omit<ModelInputSpec, 'mean' | 'std' | 'padValue'> & { mean?: Rgb; std?: Rgb; padValue?: number };
  decoder: CenterNetDecoderSpec | (Omit<YoloDecoderSpec, 'maxDetections'> & { maxDetections?: number });
  classes: string[];
  scoreThreshold: number;
  nmsIouThreshold: number;
  classAgnosticNms?: boolean;
}
