/**
 * The detector runtime: one ONNX Runtime session per model card, an input tensor whose storage is
 * reused for every frame, the card's decoder, NMS, and boxes back in source-image pixels.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ImageView } from '../../pipeline/index.js';
import { decodeCenterNet, decodeYoloV5, decodeYoloV8 } from './decoders.js';
import type { ModelCard } from './model-card.js';
import { nms } from './nms.js';
import { InputTensorWriter, clipBoxToSource, identityTransform, type LetterboxTransform } from './preprocess.js';
import type { Detection } from './types.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'tensorrt';
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface DetectorOptions {
  /** ONNX Runtime execution provider. Default 'cpu'. */
  executionProvider?: ExecutionProvider;
  /** Threads for one operator. Default 2. */
  intraOpThreads?: number;
  /** ORT graph optimisations applied at session creation. Default 'all'. */
  graphOptimizationLevel?: GraphOptimizationLevel;
}

/** Every default of `Detector.create`, in one place. */
export const DETECTOR_DEFAULTS: Readonly<Required<DetectorOptions>> = {
  executionProvider: 'cpu',
  intraOpThreads: 2,
  graphOptimizationLevel: 'all',
};

const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'cuda', 'tensorrt'];
const OPTIMIZATION_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

/**
 * Execution providers of this list that can run here: bundled in the onnxruntime-node binary, or
 * with their provider library (libonnxruntime_providers_<name>.so) installed beside the binding.
 */
export function availableExecutionProviders(): ExecutionProvider[] {
  const bindingDir = path.join(path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  const libraryName = (name: string) => (process.platform === 'win32' ? `onnxruntime_providers_${name}.dll` : `libonnxruntime_providers_${name}.so`);
  return ort
    .listSupportedBackends()
    .filter((b) => (EXECUTION_PROVIDERS as readonly string[]).includes(b.name))
    .filter((b) => b.bundled || existsSync(path.join(bindingDir, libraryName(b.name))))
    .map((b) => b.name as ExecutionProvider);
}

function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

/** Where in an output tensor the first non-finite value is, or -1. */
function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v - v is NaN for NaN and +-Infinity, 0 for every finite v.
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Throws unless the decoder's class axis of `dims` (the first fetched output) matches the card's classes. */
function checkClassCount(where: string, card: ModelCard, output: string, dims: readonly number[]): void {
  const decoder = card.decoder;
  let classCount: number;
  if (decoder.kind === 'centernet') classCount = (decoder.layout === 'nhwc' ? dims[3] : dims[1]) ?? 0;
  else if (decoder.kind === 'yolov5') classCount = (dims[2] ?? 0) - 5;
  else classCount = (dims[1] ?? 0) - 4;
  if (classCount !== card.classes.length) {
    throw new RangeError(`${where}: output '${output}' dims ${formatShape(dims)} give ${classCount} classes, the card lists ${card.classes.length}`);
  }
}

/**
 * Runs one detection model on ImageViews. Build with `Detector.create(card)`, call `detect` per
 * frame (calls are serialised: the input tensor's storage is shared between them), `dispose` at
 * the end.
 */
export class Detector {
  readonly card: ModelCard;
  /** The session input fed with images. */
  readonly inputName: string;
  /** Outputs fetched per frame: [heatmap, sizes] for CenterNet, [output] for YOLO. */
  readonly outputNames: readonly string[];
  readonly executionProvider: ExecutionProvider;
  readonly #session: ort.InferenceSession;
  readonly #writer: InputTensorWriter;
  readonly #inputTensor: ort.Tensor;
  readonly #transform: LetterboxTransform = identityTransform(1, 1);
  #queue: Promise<unknown> = Promise.resolve();
  #disposed = false;

  private constructor(card: ModelCard, session: ort.InferenceSession, inputName: string, outputNames: string[], executionProvider: ExecutionProvider) {
    this.card = card;
    this.#session = session;
    this.inputName = inputName;
    this.outputNames = outputNames;
    this.executionProvider = executionProvider;
    this.#writer = new InputTensorWriter(card.input);
    this.#inputTensor = new ort.Tensor('float32', this.#writer.data, [...this.#writer.dims]);
  }

  /** Loads the card's model into a session and checks its input and outputs against the card. */
  static async create(card: ModelCard, options: DetectorOptions = {}): Promise<Detector> {
    const where = 'Detector.create';
    const executionProvider = options.executionProvider ?? DETECTOR_DEFAULTS.executionProvider;
    const intraOpThreads = options.intraOpThreads ?? DETECTOR_DEFAULTS.intraOpThreads;
    const graphOptimizationLevel = options.graphOptimizationLevel ?? DETECTOR_DEFAULTS.graphOptimizationLevel;
    if (!EXECUTION_PROVIDERS.includes(executionProvider)) {
      throw new RangeError(`${where}: 'executionProvider' must be one of ${EXECUTION_PROVIDERS.join(', ')}, got '${String(executionProvider)}'`);
    }
    const available = availableExecutionProviders();
    if (!available.includes(executionProvider)) {
      throw new Error(`${where}: execution provider '${executionProvider}' is not available on this machine (available: ${available.join(', ') || 'none'})`);
    }
    if (!Number.isInteger(intraOpThreads) || intraOpThreads < 1) throw new RangeError(`${where}: 'intraOpThreads' must be an integer >= 1, got ${intraOpThreads}`);
    if (!OPTIMIZATION_LEVELS.includes(graphOptimizationLevel)) {
      throw new RangeError(`${where}: 'graphOptimizationLevel' must be one of ${OPTIMIZATION_LEVELS.join(', ')}, got '${String(graphOptimizationLevel)}'`);
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(card.modelPath, {
        executionProviders: [executionProvider],
        intraOpNumThreads: intraOpThreads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel,
        // Idle intra-op threads sleep instead of spinning: the cores are shared with decode, ISP,
        // rendering and other sessions, which spinning workers would starve (measured: a second
        // session's latency doubles on 2 cores).
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
    } catch (error) {
      throw new Error(`${where}: cannot load model '${card.name}' from ${card.modelPath} with provider '${executionProvider}': ${(error as Error).message}`, { cause: error });
    }
    try {
      const inputName = Detector.#checkInput(card, session);
      const outputNames = Detector.#checkOutputs(card, session);
      return new Detector(card, session, inputName, outputNames, executionProvider);
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  static #checkInput(card: ModelCard, session: ort.InferenceSession): string {
    const where = `Detector.create: model '${card.name}' (${card.modelPath})`;
    const wanted = card.input.name;
    if (wanted === undefined && session.inputNames.length !== 1) {
      throw new Error(`${where} has inputs ${session.inputNames.map((n) => `'${n}'`).join(', ')}; the card must name one in 'input.name'`);
    }
    const name = wanted ?? session.inputNames[0]!;
    const meta = session.inputMetadata.find((m) => m.name === name);
    if (meta === undefined) {
      throw new Error(`${where} has no input '${name}' (inputs: ${session.inputNames.map((n) => `'${n}'`).join(', ')})`);
    }
    const { width, height, layout } = card.input;
    const expected = layout === 'nchw' ? [1, 3, height, width] : [1, height, width, 3];
    if (!meta.isTensor) throw new TypeError(`${where}: input '${name}' is not a tensor`);
    if (meta.type !== 'float32') throw new TypeError(`${where}: input '${name}' has type ${meta.type}, the detector feeds float32`);
    // Symbolic dimensions (e.g. 'batch') accept the card's size; numbers must match it.
    const fits = meta.shape.length === 4 && meta.shape.every((d, i) => typeof d === 'string' || d < 0 || d === expected[i]);
    if (!fits) {
      throw new RangeError(`${where}: input '${name}' has shape ${formatShape(meta.shape)}, the card (${layout}, ${width}x${height}) expects ${formatShape(expected)}`);
    }
    return name;
  }

  static #checkOutputs(card: ModelCard, session: ort.InferenceSession): string[] {
    const where = `Detector.create: model '${card.name}' (${card.modelPath})`;
    const decoder = card.decoder;
    const names = decoder.kind === 'centernet' ? [decoder.heatmap, decoder.sizes] : [decoder.output ?? session.outputNames[0]!];
    for (const name of names) {
      if (!session.outputNames.includes(name)) {
        throw new Error(`${where} has no output '${name}' (outputs: ${session.outputNames.map((n) => `'${n}'`).join(', ')})`);
      }
    }
    // With static output dims the class count can be checked now; otherwise at the first detect.
    const meta = session.outputMetadata.find((m) => m.name === names[0]);
    if (meta?.isTensor && meta.shape.every((d) => typeof d === 'number' && d > 0)) {
      checkClassCount(where, card, names[0]!, meta.shape as number[]);
    }
    return names;
  }

  /** Detects objects in `image` (rgb8/rgba8, any strides); boxes in `image`'s pixels, clipped to it. */
  detect(image: ImageView): Promise<Detection[]> {
    const run = this.#queue.then(() => this.#detect(image));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #detect(image: ImageView): Promise<Detection[]> {
    if (this.#disposed) throw new Error(`Detector.detect: detector for model '${this.card.name}' was disposed`);
    const transform = this.#writer.write(image, this.#transform);
    const results = await this.#session.run({ [this.inputName]: this.#inputTensor }, this.outputNames);
    try {
      const outputs = this.outputNames.map((name) => this.#checkedOutput(name, results[name]));
      const detections = this.#decode(outputs, transform);
      const kept = nms(detections, {
        iouThreshold: this.card.nmsIouThreshold,
        maxDetections: this.card.decoder.maxDetections,
        classAgnostic: this.card.classAgnosticNms,
      });
      for (const d of kept) clipBoxToSource(d.box, transform);
      return kept;
    } finally {
      for (const name of this.outputNames) results[name]?.dispose();
    }
  }

  #checkedOutput(name: string, value: ort.OnnxValue | undefined): ort.Tensor {
    const where = `Detector.detect: model '${this.card.name}'`;
    if (!(value instanceof ort.Tensor)) throw new TypeError(`${where}: output '${name}' is missing or not a tensor`);
    if (value.type !== 'float32') throw new TypeError(`${where}: output '${name}' has type ${value.type}, expected float32`);
    const bad = firstNonFinite(value.data as Float32Array);
    if (bad >= 0) throw new RangeError(`${where}: output '${name}' holds ${(value.data as Float32Array)[bad]} at element ${bad} (of dims ${formatShape(value.dims)})`);
    return value;
  }

  #decode(outputs: ort.Tensor[], transform: LetterboxTransform): Detection[] {
    const card = this.card;
    const decoder = card.decoder;
    const options = { scoreThreshold: card.scoreThreshold, classes: card.classes };
    const first = outputs[0]!;
    checkClassCount(`Detector.detect: model '${card.name}'`, card, this.outputNames[0]!, first.dims);
    switch (decoder.kind) {
      case 'centernet':
        return decodeCenterNet(first.data as Float32Array, outputs[1]!.data as Float32Array, first.dims, transform, { ...options, ...decoder });
      case 'yolov5':
        return decodeYoloV5(first.data as Float32Array, first.dims, transform, options);
      case 'yolov8':
        return decodeYoloV8(first.data as Float32Array, first.dims, transform, options);
    }
  }

  /** Releases the ORT session; `detect` afterwards is an error. Waits for a running `detect`. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#queue;
    await this.#session.release();
  }
}
