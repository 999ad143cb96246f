/**
 * The default detector: MobileNetV3 CenterNet (COCO, 80 classes) from the tfjs graph model shipped
 * in @vladmandic/human (MIT), converted to ONNX by our converter and quantized to INT8 QDQ by our
 * quantizer, built once into the model cache. Calibration images are real road frames that the
 * evaluation does not use (Udacity highway stills), so INT8 accuracy is measured on unseen data.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BufferPool, decodeImageInto } from '../../pipeline/index.js';
import { loadModelCard, type ModelCard } from '../detect/model-card.js';
import { InputTensorWriter } from '../detect/preprocess.js';
import { COCO_CLASSES } from '../detect/types.js';
import { BuildHash, ModelCache, type CacheEntry } from './cache.js';
import { calibrate, type CalibrationMethod } from './calibration.js';
import { encodeOnnxModel, type OnnxModel } from './onnx.js';
import { compareQdq, formatQdqReport, quantizationSensitivity } from './qdq-debug.js';
import { planQuantization, quantizeStatic, type TensorRange } from './quantize.js';
import { convertTfjsGraphModel } from './tfjs-converter.js';

export const DEFAULT_MODEL_NAME = 'centernet-mobilenetv3';
export const INPUT_NAME = 'tower_0/images';
export const HEATMAP_OUTPUT = 'tower_0/keypoints';
export const SIZES_OUTPUT = 'tower_0/wh';
export const INPUT_SIZE_PX = 512;
/** Runtime score threshold for the HUD (evaluation uses its own, lower one). */
export const HUD_SCORE_THRESHOLD = 0.3;
/** Files in a cache entry. */
export const FP32_MODEL_FILE = 'model.fp32.onnx';
export const INT8_MODEL_FILE = 'model.int8.onnx';
export const FP32_CARD_FILE = 'card.fp32.json';
export const INT8_CARD_FILE = 'card.int8.json';
export const QDQ_REPORT_FILE = 'qdq-report.txt';

/**
 * Mixed precision: network blocks whose quantization alone costs the most (measured on calibration
 * images, never on evaluation data) are kept FP32, worst first, until the heat-map SQNR of the whole
 * INT8 model reaches TARGET_HEATMAP_SQNR_DB or MAX_FLOAT_BLOCKS blocks are FP32. Why: this
 * MobileNetV3 has stem channels spanning ~1% of their tensor's range that depthwise kernels then
 * amplify; per-tensor uint8 activations (all that QLinearConv takes) cannot carry them.
 */
export const TARGET_HEATMAP_SQNR_DB = 15;
export const MAX_FLOAT_BLOCKS = 4;

/** Network block of a node: 'tower_0/MobilenetV3/expanded_conv_3', 'tower_0/CenternetHead/c4_upsample'... */
export function blockOf(node: { name: string }): string {
  return node.name.split('/').slice(0, 3).join('/');
}

/** Modules whose code decides the built files: their text is part of the cache hash. */
const RECIPE_MODULES = ['default-detector', 'tfjs-converter', 'calibration', 'quantize', 'onnx'];

export interface DefaultDetectorOptions {
  cacheDir?: string;
  /** Real frames to calibrate activations on. Default: the Udacity highway stills in the shared data. */
  calibrationImages?: readonly string[];
  /** Default 'percentile'. */
  calibrationMethod?: CalibrationMethod;
  /** Nodes kept in FP32. */
  skipNodes?: readonly string[];
  onProgress?: (step: string, done: number, total: number) => void;
}

export interface DefaultDetector {
  entry: CacheEntry;
  /** Whether this call built the entry (false: served from the cache). */
  built: boolean;
  fp32Card: ModelCard;
  int8Card: ModelCard;
}

/** The tfjs model.json of the default detector inside node_modules. */
export function defaultModelSource(): string {
  // The package's exports hide package.json; its main entry sits in dist/, the models beside it.
  const main = createRequire(import.meta.url).resolve('@vladmandic/human');
  return path.resolve(path.dirname(main), '..', 'models', 'centernet.json');
}

export function defaultCalibrationImages(dataDir: string): string[] {
  const dir = path.join(dataDir, 'udacity-lanelines', 'test_images');
  return ['solidWhiteCurve', 'solidWhiteRight', 'solidYellowCurve', 'solidYellowCurve2', 'solidYellowLeft', 'whiteCarLaneSwitch'].map((n) => path.join(dir, `${n}.jpg`));
}

/** The original graph reads a 512x512 resize of the whole frame (no letterbox), pixels 0..255. */
const INPUT_SPEC = {
  width: INPUT_SIZE_PX,
  height: INPUT_SIZE_PX,
  layout: 'nchw',
  channelOrder: 'rgb',
  scale: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  resize: 'stretch',
  padValue: 0,
} as const satisfies ConstructorParameters<typeof InputTensorWriter>[0];

function cardJson(modelFile: string, name: string): Record<string, unknown> {
  return {
    name,
    model: modelFile,
    input: { name: INPUT_NAME, ...INPUT_SPEC, mean: [...INPUT_SPEC.mean], std: [...INPUT_SPEC.std] },
    decoder: { kind: 'centernet', heatmap: HEATMAP_OUTPUT, sizes: SIZES_OUTPUT, layout: 'nchw', stride: 4, maxDetections: 100 },
    classes: [...COCO_CLASSES],
    scoreThreshold: HUD_SCORE_THRESHOLD,
    nmsIouThreshold: 0.5,
  };
}

async function recipeCodeHash(): Promise<string> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const ext = path.extname(fileURLToPath(import.meta.url));
  const hash = createHash('sha256');
  for (const module of RECIPE_MODULES) hash.update(await readFile(path.join(here, `${module}${ext}`)));
  return hash.digest('hex');
}

/** Calibration inputs: each image decoded and preprocessed exactly as the detector will at run time. */
async function calibrationInputs(images: readonly string[]): Promise<Float32Array[]> {
  const writer = new InputTensorWriter(INPUT_SPEC);
  const pool = new BufferPool({ name: 'calibration' });
  const batches: Float32Array[] = [];
  for (const file of images) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      throw new Error(`default detector: calibration image ${file} cannot be read (${(error as Error).message})`);
    }
    const { image, buffer } = await decodeImageInto(pool, bytes);
    writer.write(image);
    buffer.release();
    batches.push(writer.data.slice());
  }
  return batches;
}

/** Greedy mixed precision (see TARGET_HEATMAP_SQNR_DB): returns the nodes to keep FP32. */
async function chooseFloatBlocks(
  fp32: OnnxModel,
  ranges: Map<string, TensorRange>,
  inputs: readonly Float32Array[],
  userSkip: readonly string[],
): Promise<{ skip: string[]; floatBlocks: string[]; heatmapSqnrDb: number }> {
  const heatmapSqnr = async (skip: readonly string[]) => {
    const report = await compareQdq(fp32, quantizeStatic(fp32, ranges, { skipNodes: skip }), inputs);
    return report.outputs.find((o) => o.tensor === HEATMAP_OUTPUT)!.sqnrDb;
  };
  const sensitivity = await quantizationSensitivity(fp32, ranges, inputs.slice(0, 2), { groupOf: blockOf, quantize: { skipNodes: userSkip } });
  const skip = [...userSkip];
  const floatBlocks: string[] = [];
  let sqnrDb = await heatmapSqnr(skip);
  for (const entry of sensitivity) {
    if (sqnrDb >= TARGET_HEATMAP_SQNR_DB || floatBlocks.length >= MAX_FLOAT_BLOCKS) break;
    skip.push(...entry.nodes);
    floatBlocks.push(entry.group);
    sqnrDb = await heatmapSqnr(skip);
  }
  return { skip, floatBlocks, heatmapSqnrDb: sqnrDb };
}

/** The default detector's FP32 and INT8 models and cards, built into the cache on first use. */
export async function ensureDefaultDetector(dataDir: string, options: DefaultDetectorOptions = {}): Promise<DefaultDetector> {
  const source = defaultModelSource();
  const images = options.calibrationImages ?? defaultCalibrationImages(dataDir);
  const method = options.calibrationMethod ?? 'percentile';
  const skipNodes = options.skipNodes ?? [];
  const progress = options.onProgress ?? (() => undefined);
  const manifest = await readFile(source);
  const shards = (JSON.parse(manifest.toString('utf8')) as { weightsManifest: { paths: string[] }[] }).weightsManifest.flatMap((g) => g.paths);
  const hash = new BuildHash().add('model.json', manifest);
  for (const shard of shards) hash.add(shard, await readFile(path.join(path.dirname(source), shard)));
  for (const image of images) hash.add(`calibration:${path.basename(image)}`, await readFile(image).catch(() => Buffer.from(`missing ${image}`)));
  hash.add('options', JSON.stringify({ method, skipNodes })).add('code', await recipeCodeHash());

  const cache = new ModelCache(options.cacheDir);
  const entry = await cache.getOrBuild(DEFAULT_MODEL_NAME, hash.digest(), async (dir) => {
    const steps = 5;
    progress('convert', 0, steps);
    const { model: fp32, report } = await convertTfjsGraphModel(source, { outputs: [HEATMAP_OUTPUT, SIZES_OUTPUT] });
    await writeFile(path.join(dir, FP32_MODEL_FILE), encodeOnnxModel(fp32));
    progress('calibrate', 1, steps);
    const inputs = await calibrationInputs(images);
    const ranges = await calibrate(fp32, inputs, { method, activationType: 'uint8' });
    progress('quantize', 2, steps);
    const { skip, floatBlocks, heatmapSqnrDb } = await chooseFloatBlocks(fp32, ranges, inputs, skipNodes);
    const int8 = quantizeStatic(fp32, ranges, { skipNodes: skip });
    await writeFile(path.join(dir, INT8_MODEL_FILE), encodeOnnxModel(int8));
    progress('report', 3, steps);
    const qdq = await compareQdq(fp32, int8, inputs.slice(0, 2));
    await writeFile(path.join(dir, QDQ_REPORT_FILE), `${formatQdqReport(qdq, 25)}\n`);
    await writeFile(path.join(dir, FP32_CARD_FILE), `${JSON.stringify(cardJson(FP32_MODEL_FILE, `${DEFAULT_MODEL_NAME}-fp32`), null, 2)}\n`);
    await writeFile(path.join(dir, INT8_CARD_FILE), `${JSON.stringify(cardJson(INT8_MODEL_FILE, `${DEFAULT_MODEL_NAME}-int8`), null, 2)}\n`);
    progress('done', steps, steps);
    const plan = planQuantization(fp32, { skipNodes: skip });
    const worst = qdq.tensors[0];
    return {
      source: { model: 'MobileNetV3 CenterNet (COCO 80), @vladmandic/human models/centernet.json (MIT)', file: path.basename(source) },
      conversion: report,
      calibration: { method, images: images.map((i) => path.basename(i)), activationType: 'uint8' },
      quantization: { quantizedNodes: plan.quantized.length, foldedActivations: plan.folded.length, floatNodes: plan.float.length, skipNodes, floatBlocks, heatmapSqnrDbOnCalibration: heatmapSqnrDb },
      qdqOutputs: qdq.outputs.map((o) => ({ tensor: o.tensor, sqnrDb: o.sqnrDb })),
      worstTensor: worst ? { tensor: worst.tensor, localSqnrDb: worst.localSqnrDb } : undefined,
    };
  });
  return {
    entry,
    built: entry.built,
    fp32Card: await loadModelCard(path.join(entry.dir, FP32_CARD_FILE)),
    int8Card: await loadModelCard(path.join(entry.dir, INT8_CARD_FILE)),
  };
}
