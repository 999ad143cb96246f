/**
 * The learned denoiser at run time: the committed ONNX model (trained by `npm run train:denoise`,
 * see train.ts) in onnxruntime-node. 8-bit RGB frames go in and come out as they are; the model
 * converts inside the graph, so every per-pixel step runs on ORT's threads. The noise level is an
 * input (the sensor's gain level): one model serves every gain.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { ImageView } from '../../../pipeline/image.js';
import type { SensorGainLevel } from '../noise-model.js';

/** The committed models (FP32 as trained; INT8 quantized from it) and their card, beside this module in the source tree. */
export const DENOISER_MODEL_FILE = 'denoise.onnx';
export const DENOISER_INT8_MODEL_FILE = 'denoise.int8.onnx';
export const DENOISER_CARD_FILE = 'denoise.json';
/** The network's sides must be multiples of this (pixel-unshuffle by 2, then a stride-2 level): frames are padded to it. */
export const DENOISER_SIZE_MULTIPLE = 4;

/** What the committed card says about the model (written by the training command). */
export interface DenoiserCard {
  version: 1;
  /** Network inputs from a gain level: [sqrt(shotGain) / sqrtShotGain, readNoiseStd / readNoiseStd]. */
  noiseInputScale: { sqrtShotGain: number; readNoiseStd: number };
  architecture: { channels: number; depth: number; parameters: number };
  /** The training config and what it reached (held-out frames), for the record. */
  training: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

export type DenoiserPrecision = 'int8' | 'fp32';

export interface LearnedDenoiserOptions {
  /** Directory with the models and denoise.json. Default: the committed model. */
  modelDir?: string;
  /**
   * Default 'fp32'. 'int8' runs 1.7x faster at 720p but loses 0.8-2.4 dB on the held-out frames
   * (card: metrics.heldOutInt8), which at low and medium gain puts it level with the guided filter.
   */
  precision?: DenoiserPrecision;
  /** ORT intra-op threads. Default 2 (this machine's cores). */
  intraOpThreads?: number;
}

/** perception/isp/denoiser in the source tree (where the models, the card and train_denoise.py live), also when running from dist/. */
export function denoiserSourceDir(): string {
  return path.dirname(fileURLToPath(import.meta.url)).replace(`${path.sep}dist${path.sep}`, path.sep);
}

/** The committed model's directory: beside this module (vitest, tsx), else in the source tree (dist/). */
export function defaultDenoiserDir(): string {
  const candidates = [path.dirname(fileURLToPath(import.meta.url)), denoiserSourceDir()];
  const found = candidates.find((dir) => existsSync(path.join(dir, DENOISER_CARD_FILE)));
  if (found === undefined) throw new Error(`LearnedDenoiser: no ${DENOISER_CARD_FILE} in ${candidates.join(' or ')}; run \`npm run train:denoise\``);
  return found;
}

/** The network's noise inputs for a gain level. */
export function denoiserNoiseInputs(level: Readonly<SensorGainLevel>, card: Readonly<DenoiserCard>): Float32Array {
  return new Float32Array([Math.sqrt(level.shotGain) / card.noiseInputScale.sqrtShotGain, level.readNoiseStd / card.noiseInputScale.readNoiseStd]);
}

export class LearnedDenoiser {
  readonly card: DenoiserCard;
  readonly modelFile: string;
  readonly #session: ort.InferenceSession;
  /** Reused input frame storage (frames are padded here to sides of DENOISER_SIZE_MULTIPLE). */
  #input: Uint8Array = new Uint8Array(0);

  private constructor(session: ort.InferenceSession, card: DenoiserCard, modelFile: string) {
    this.#session = session;
    this.card = card;
    this.modelFile = modelFile;
  }

  static async create(options: LearnedDenoiserOptions = {}): Promise<LearnedDenoiser> {
    const dir = options.modelDir ?? defaultDenoiserDir();
    const precision = options.precision ?? 'fp32';
    if (precision !== 'int8' && precision !== 'fp32') throw new RangeError(`LearnedDenoiser: option 'precision' must be 'int8' or 'fp32', got '${String(precision)}'`);
    const modelFile = path.join(dir, precision === 'int8' ? DENOISER_INT8_MODEL_FILE : DENOISER_MODEL_FILE);
    const cardFile = path.join(dir, DENOISER_CARD_FILE);
    const card = readCard(cardFile);
    const session = await ort.InferenceSession.create(modelFile, {
      intraOpNumThreads: options.intraOpThreads ?? 2,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // As the detector's: idle workers sleep, since the cores are shared with detection and rendering
      // (spinning workers of one session starve the next session's run).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    for (const name of ['image', 'noise']) {
      if (!session.inputNames.includes(name)) throw new Error(`LearnedDenoiser: ${modelFile} has no input '${name}' (inputs: ${session.inputNames.join(', ')})`);
    }
    return new LearnedDenoiser(session, card, modelFile);
  }

  /** A new packed rgb8 image: `image` (rgb8, any strides) denoised for `level`. */
  async denoise(image: ImageView, level: Readonly<SensorGainLevel>): Promise<ImageView> {
    if (image.format !== 'rgb8') throw new TypeError(`LearnedDenoiser.denoise: field 'image' must be rgb8, got ${image.format}`);
    if (!(level.shotGain >= 0 && level.readNoiseStd >= 0)) throw new RangeError(`LearnedDenoiser.denoise: gain level '${level.name}' must have shotGain >= 0 and readNoiseStd >= 0`);
    const width = Math.ceil(image.width / DENOISER_SIZE_MULTIPLE) * DENOISER_SIZE_MULTIPLE;
    const height = Math.ceil(image.height / DENOISER_SIZE_MULTIPLE) * DENOISER_SIZE_MULTIPLE;
    const bytes = width * height * 3;
    if (this.#input.length !== bytes) this.#input = new Uint8Array(bytes);
    copyPadded(image, this.#input, width, height);
    const feeds = {
      image: new ort.Tensor('uint8', this.#input, [1, height, width, 3]),
      noise: new ort.Tensor('float32', denoiserNoiseInputs(level, this.card), [1, 2]),
    };
    const result = await this.#session.run(feeds);
    const output = result['denoised'];
    if (!output || output.type !== 'uint8') throw new Error(`LearnedDenoiser: ${this.modelFile} gave no uint8 'denoised' output`);
    const data = output.data as Uint8Array;
    if (width === image.width && height === image.height) return ImageView.packed(width, height, 'rgb8', data);
    return new ImageView({ width, height, format: 'rgb8', data }).crop(0, 0, image.width, image.height).copy();
  }

  async dispose(): Promise<void> {
    await this.#session.release();
  }
}

function readCard(file: string): DenoiserCard {
  let card: unknown;
  try {
    card = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`LearnedDenoiser: cannot read the model card ${file}: ${(error as Error).message}`);
  }
  const c = card as Partial<DenoiserCard>;
  if (c.version !== 1) throw new Error(`LearnedDenoiser: ${file}: field 'version' must be 1, got ${JSON.stringify(c.version)}`);
  const scale = c.noiseInputScale;
  if (!scale || !(scale.sqrtShotGain > 0) || !(scale.readNoiseStd > 0)) throw new Error(`LearnedDenoiser: ${file}: field 'noiseInputScale' must have positive sqrtShotGain and readNoiseStd`);
  return c as DenoiserCard;
}

/** Copies `image` into packed `target` of width x height (>= the image's), repeating the last column/row. */
function copyPadded(image: ImageView, target: Uint8Array, width: number, height: number): void {
  const src = image.data;
  for (let y = 0; y < height; y++) {
    const row = image.offset + Math.min(y, image.height - 1) * image.rowStride;
    let to = y * width * 3;
    for (let x = 0; x < width; x++) {
      const p = row + Math.min(x, image.width - 1) * image.pixelStride;
      target[to] = src[p]!;
      target[to + 1] = src[p + 1]!;
      target[to + 2] = src[p + 2]!;
      to += 3;
    }
  }
}
