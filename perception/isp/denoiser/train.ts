/**
 * `npm run train:denoise`: trains the learned denoiser from the real frames in ../shared/data and
 * writes the model and its card (config, loss curve, held-out metrics) beside this module, where
 * they are committed.
 *
 * Division of work: this module owns the data — crops of the training split's frames with sensor
 * noise from perception/isp/noise-model.ts (the one noise model; the network learns exactly what
 * the benchmark applies) — and the evaluation on held-out frames through onnxruntime-node, as the
 * product runs the model. train_denoise.py owns the optimisation (PyTorch, Debian's python3-torch)
 * and the ONNX export. Everything is seeded.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { seededRandom } from '../../../calibration/math/random.js';
import { loadIspFrames, type IspFrame } from '../frames.js';
import { gainAtPosition } from '../gain.js';
import { SENSOR_GAIN_LEVELS, addSensorNoise, srgbNoiseStdAt } from '../noise-model.js';
import { REFERENCE_CODE } from '../noise-estimate.js';
import { psnr } from '../quality.js';
import { calibrate } from '../../models/calibration.js';
import { decodeOnnxModel, encodeOnnxModel } from '../../models/onnx.js';
import { quantizeStatic } from '../../models/quantize.js';
import { DENOISER_CARD_FILE, DENOISER_INT8_MODEL_FILE, DENOISER_MODEL_FILE, LearnedDenoiser, denoiserNoiseInputs, denoiserSourceDir, type DenoiserCard, type DenoiserPrecision } from './denoiser.js';

export interface DenoiserTrainingConfig {
  seed: number;
  /** Side of the square training crops, px (even). */
  cropPx: number;
  trainCrops: number;
  valCrops: number;
  /** Network width (channels) and depth (conv layers). */
  channels: number;
  depth: number;
  steps: number;
  batch: number;
  /** Peak learning rate (one-cycle schedule). */
  lr: number;
  logEvery: number;
  validateEvery: number;
  /**
   * Gains are drawn at positions uniform in this range on SENSOR_GAIN_LEVELS (0 = first level,
   * 2 = third), log-interpolated and extrapolated: the model sees gains around and between the
   * named levels, not only those three.
   */
  gainPositionRange: [number, number];
  /** Torch threads. */
  threads: number;
}

/** Crops at this mid-grey noise std (8-bit codes; about the 'medium' gain) have loss weight 1. */
export const LOSS_REFERENCE_NOISE_STD = 10;

export const DEFAULT_DENOISER_TRAINING: Readonly<DenoiserTrainingConfig> = Object.freeze({
  seed: 2026,
  cropPx: 64,
  trainCrops: 16000,
  valCrops: 768,
  channels: 24,
  depth: 3,
  steps: 8000,
  batch: 32,
  lr: 2e-3,
  logEvery: 100,
  validateEvery: 500,
  gainPositionRange: [-0.5, 2.4] as [number, number],
  threads: 2,
});

export interface TrainingProgressLine {
  step: number;
  loss: number;
  elapsedS: number;
  valPsnr?: number;
  valPsnrNoisy?: number;
}

export interface DenoiserTrainingOptions {
  dataDir: string;
  /** Where denoise.onnx and denoise.json go. Default: beside this module in the source tree (committed). */
  outputDir?: string;
  config?: Partial<DenoiserTrainingConfig>;
  /** Python with PyTorch. Default: 'python3' on PATH, else Debian's /usr/bin/python3 (a pyenv python on PATH may lack python3-torch). */
  python?: string;
  /** Held-out frames evaluated: every n-th of each source. Default 1 (all). */
  evaluateEvery?: number;
  onProgress?(line: TrainingProgressLine): void;
  onMessage?(message: string): void;
}

export interface HeldOutMetrics {
  frames: number;
  /** Per gain level name: mean PSNR (dB) of the noisy and denoised frames against the clean ones. */
  levels: Record<string, { psnrNoisy: number; psnrDenoised: number }>;
}

/** INT8 calibration: crops of this size from every CALIBRATION_EVERY-th training frame of each source, at each named gain. */
export const CALIBRATION_CROP_PX = { width: 640, height: 360 } as const;
export const CALIBRATION_EVERY = 10;

/** The network's input scale: the highest named gain maps to inputs of about one. */
export function noiseInputScale(): DenoiserCard['noiseInputScale'] {
  const high = SENSOR_GAIN_LEVELS[SENSOR_GAIN_LEVELS.length - 1]!;
  return { sqrtShotGain: Math.sqrt(high.shotGain), readNoiseStd: high.readNoiseStd };
}

/** Trains, evaluates on held-out frames, writes the model and card. Returns the card. */
export async function trainDenoiser(options: DenoiserTrainingOptions): Promise<DenoiserCard> {
  const config: DenoiserTrainingConfig = { ...DEFAULT_DENOISER_TRAINING, ...options.config };
  const say = options.onMessage ?? (() => {});
  const { python, torchVersion } = findTorch(options.python === undefined ? ['python3', '/usr/bin/python3'] : [options.python]);
  const outputDir = options.outputDir ?? denoiserSourceDir();
  const work = await mkdtemp(path.join(os.tmpdir(), 'arhud-train-denoise-'));
  try {
    say(`PyTorch ${torchVersion}; data in ${work}`);
    const train = await loadIspFrames(options.dataDir, 'train');
    const heldOut = await loadIspFrames(options.dataDir, 'heldOut');
    say(`frames: ${train.length} training, ${heldOut.length} held out`);
    const scale = noiseInputScale();
    const random = seededRandom(config.seed);
    await writeCrops(path.join(work, 'train'), train, config.trainCrops, config, scale, random);
    await writeCrops(path.join(work, 'val'), heldOut, config.valCrops, config, scale, random);
    await writeFile(path.join(work, 'meta.json'), JSON.stringify({ train: config.trainCrops, val: config.valCrops, cropPx: config.cropPx, noiseInputScale: scale }));
    await writeFile(path.join(work, 'config.json'), JSON.stringify(config));
    say(`crops written: ${config.trainCrops} training, ${config.valCrops} validation (${config.cropPx} px)`);

    const modelFile = path.join(work, DENOISER_MODEL_FILE);
    const lossCurve: TrainingProgressLine[] = [];
    const done = await runTrainer(python, ['--data', work, '--output', modelFile, '--config', path.join(work, 'config.json')], (line) => {
      lossCurve.push(line);
      options.onProgress?.(line);
    });

    const card: DenoiserCard = {
      version: 1,
      noiseInputScale: scale,
      architecture: { channels: config.channels, depth: config.depth, parameters: Number(done['parameters']) },
      training: { config, torch: torchVersion, trainSeconds: done['trainSeconds'], valPsnr: done['valPsnr'], valPsnrNoisy: done['valPsnrNoisy'], lossCurve },
      metrics: {},
    };
    await writeFile(path.join(work, DENOISER_CARD_FILE), `${JSON.stringify(card, null, 2)}\n`);
    say('quantizing to INT8 (calibrated on training frames)');
    const calibration = calibrationBatches(train, scale);
    await writeFile(path.join(work, DENOISER_INT8_MODEL_FILE), await quantizeDenoiser(modelFile, calibration));
    card.training['int8Calibration'] = { method: 'percentile', crops: calibration.length, cropPx: CALIBRATION_CROP_PX, frameEvery: CALIBRATION_EVERY };
    say('evaluating on held-out frames through onnxruntime-node');
    const every = options.evaluateEvery ?? 1;
    card.metrics = { heldOut: await evaluateDenoiser(work, heldOut, every, config.seed, 'fp32'), heldOutInt8: await evaluateDenoiser(work, heldOut, every, config.seed, 'int8') };
    await writeFile(path.join(outputDir, DENOISER_CARD_FILE), `${JSON.stringify(card, null, 2)}\n`);
    await copyFile(modelFile, path.join(outputDir, DENOISER_MODEL_FILE));
    await copyFile(path.join(work, DENOISER_INT8_MODEL_FILE), path.join(outputDir, DENOISER_INT8_MODEL_FILE));
    say(`wrote ${DENOISER_MODEL_FILE}, ${DENOISER_INT8_MODEL_FILE} and ${DENOISER_CARD_FILE} to ${outputDir}`);
    return card;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Mean PSNR of noisy and denoised held-out frames at each named gain level. */
export async function evaluateDenoiser(modelDir: string, frames: readonly IspFrame[], every: number, seed: number, precision: DenoiserPrecision): Promise<HeldOutMetrics> {
  const denoiser = await LearnedDenoiser.create({ modelDir, precision });
  try {
    const used = frames.filter((_, i) => i % every === 0);
    const levels: HeldOutMetrics['levels'] = {};
    for (const level of SENSOR_GAIN_LEVELS) {
      let noisySum = 0;
      let denoisedSum = 0;
      for (const [i, frame] of used.entries()) {
        const noisy = addSensorNoise(frame.image, level, seed + 1000 + i);
        noisySum += psnr(frame.image, noisy);
        denoisedSum += psnr(frame.image, await denoiser.denoise(noisy, level));
      }
      levels[level.name] = { psnrNoisy: noisySum / used.length, psnrDenoised: denoisedSum / used.length };
    }
    return { frames: used.length, levels };
  } finally {
    await denoiser.dispose();
  }
}

/** Noisy crops (CALIBRATION_CROP_PX, top-left) of every CALIBRATION_EVERY-th training frame of each source, at each named gain. */
function calibrationBatches(frames: readonly IspFrame[], scale: DenoiserCard['noiseInputScale']): { image: Uint8Array; noise: Float32Array }[] {
  const { width, height } = CALIBRATION_CROP_PX;
  const card = { noiseInputScale: scale } as DenoiserCard;
  const picked = [...sourcesOf(frames).values()].flatMap((list) => list.filter((_, i) => i % CALIBRATION_EVERY === 0));
  return picked.flatMap((frame, k) =>
    SENSOR_GAIN_LEVELS.map((level, j) => ({ image: addSensorNoise(frame.image.crop(0, 0, width, height).copy(), level, 10 * k + j).data as Uint8Array, noise: denoiserNoiseInputs(level, card) })),
  );
}

/**
 * The FP32 model quantized with the project's static QDQ quantizer (perception/models): uint8
 * activations, per-channel int8 weights, ranges from the calibration crops (the model's frame input
 * pinned to the crop size while calibrating, then symbolic again).
 */
async function quantizeDenoiser(modelFile: string, batches: readonly { image: Uint8Array; noise: Float32Array }[]): Promise<Uint8Array> {
  const fp32 = decodeOnnxModel(await readFile(modelFile), modelFile);
  const input = fp32.graph.inputs.find((i) => i.name === 'image');
  if (!input) throw new Error(`quantizeDenoiser: ${modelFile} has no input 'image'`);
  const symbolic = input.shape;
  input.shape = [1, CALIBRATION_CROP_PX.height, CALIBRATION_CROP_PX.width, 3];
  const ranges = await calibrate(fp32, batches, { method: 'percentile', activationType: 'uint8' });
  const int8 = quantizeStatic(fp32, ranges);
  const int8Input = int8.graph.inputs.find((i) => i.name === 'image')!;
  int8Input.shape = symbolic;
  return encodeOnnxModel(int8);
}

/** Frames grouped by source (the part of their name before '/'). */
function sourcesOf(frames: readonly IspFrame[]): Map<string, IspFrame[]> {
  const sources = new Map<string, IspFrame[]>();
  for (const frame of frames) {
    const name = frame.name.split('/')[0]!;
    sources.set(name, [...(sources.get(name) ?? []), frame]);
  }
  return sources;
}

/**
 * `count` random crops of `frames` with noise at random gains: <base>.bin (clean, noisy pairs),
 * <base>-noise.bin (the network's noise inputs) and <base>-weight.bin (loss weights). Each source
 * (PandaSet, Udacity) gives half the crops, whatever its frame count. The loss weight is
 * (LOSS_REFERENCE_NOISE_STD / the gain's mid-grey noise std)^2: plain MSE would be ruled by the
 * noisiest crops, and the model would learn little about low gains, where an error of one code
 * value already costs dB.
 */
async function writeCrops(base: string, frames: readonly IspFrame[], count: number, config: DenoiserTrainingConfig, scale: DenoiserCard['noiseInputScale'], random: () => number): Promise<void> {
  const s = config.cropPx;
  const cropBytes = s * s * 3;
  const pairs = new Uint8Array(count * 2 * cropBytes);
  const noise = new Float32Array(count * 2);
  const weight = new Float32Array(count);
  const [lo, hi] = config.gainPositionRange;
  const bySource = [...sourcesOf(frames).values()];
  for (let i = 0; i < count; i++) {
    const source = bySource[Math.floor(random() * bySource.length)]!;
    const frame = source[Math.floor(random() * source.length)]!.image;
    // Offsets on a 4-pixel grid keep the network's 2x2 unshuffle and stride-2 phases as on whole frames.
    const x = 4 * Math.floor((random() * (frame.width - s)) / 4);
    const y = 4 * Math.floor((random() * (frame.height - s)) / 4);
    const clean = frame.crop(x, y, s, s).copy();
    const level = gainAtPosition(lo + random() * (hi - lo));
    const noisy = addSensorNoise(clean, level, Math.floor(random() * 2 ** 31));
    pairs.set(clean.data as Uint8Array, 2 * i * cropBytes);
    pairs.set(noisy.data as Uint8Array, (2 * i + 1) * cropBytes);
    noise[2 * i] = Math.sqrt(level.shotGain) / scale.sqrtShotGain;
    noise[2 * i + 1] = level.readNoiseStd / scale.readNoiseStd;
    weight[i] = (LOSS_REFERENCE_NOISE_STD / srgbNoiseStdAt(REFERENCE_CODE, level)) ** 2;
  }
  await writeFile(`${base}.bin`, pairs);
  await writeFile(`${base}-noise.bin`, new Uint8Array(noise.buffer));
  await writeFile(`${base}-weight.bin`, new Uint8Array(weight.buffer));
}

/** The first of `pythons` that imports torch, with torch's version. */
function findTorch(pythons: readonly string[]): { python: string; torchVersion: string } {
  const problems: string[] = [];
  for (const python of pythons) {
    const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (!probe.error && probe.status === 0) return { python, torchVersion: probe.stdout.trim() };
    problems.push(`${python}: ${probe.error ? probe.error.message : probe.stderr.trim().split('\n').at(-1)}`);
  }
  throw new Error(`train:denoise needs PyTorch (on Debian: apt-get install python3-torch); ${problems.join('; ')}`);
}

/** Runs train_denoise.py; hands each progress line over; resolves with its final {"done": true} line. */
function runTrainer(python: string, args: readonly string[], onLine: (line: TrainingProgressLine) => void): Promise<Record<string, unknown>> {
  const script = path.join(denoiserSourceDir(), 'train_denoise.py');
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let pending = '';
    let done: Record<string, unknown> | undefined;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const text = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (!text) continue;
        const parsed = JSON.parse(text) as Record<string, unknown>;
        if (parsed['done'] === true) done = parsed;
        else onLine(parsed as unknown as TrainingProgressLine);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 && done) resolve(done);
      else reject(new Error(`train_denoise.py exited with ${code}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}
