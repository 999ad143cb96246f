/**
 * Detection benchmark, one process, the same real frames for every runtime: the original CenterNet
 * in tfjs with the wasm backend (the peer a Node user would pick), our FP32 ONNX in ORT and our INT8
 * ONNX in ORT, 2 threads each, 512x512 input. Then AP@0.5 of FP32 and INT8 on the whole PandaSet
 * drive. Targets (issue #3): INT8 >= 2x faster than FP32 ORT and >= 8x faster than tfjs-wasm; INT8
 * loses <= 1.0 AP point per class.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { Detector } from '../../perception/detect/detector.js';
import { EVAL_SCORE_THRESHOLD, evaluateDetectors, formatEvaluation } from '../../perception/detect/evaluate.js';
import { InputTensorWriter } from '../../perception/detect/preprocess.js';
import { defaultModelSource, ensureDefaultDetector, INPUT_NAME } from '../../perception/models/default-detector.js';
import { BufferPool, decodeImageInto } from '../../pipeline/index.js';
import { importPandaset } from '../../pipeline/sources/pandaset.js';
import { DATA_DIR, PANDASET_DIR, PROJECT_ROOT } from '../support/data.js';
import { loadTfjsGraphModel, tf, useTfjsWasm } from '../support/tfjs.js';

export const FRAMES = [0, 10, 20, 30, 40, 50];
export const RUNS_PER_FRAME = 3;
export const THREADS = 2;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function timeMs(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

export async function detectBenchmark(): Promise<Record<string, unknown>> {
  const cacheDir = path.join(PROJECT_ROOT, 'out', 'bench', 'models');
  const cards = await ensureDefaultDetector(DATA_DIR, { cacheDir });
  // Inputs once, preprocessed as the detector does (stretch to 512x512), NCHW for ORT and NHWC for tfjs.
  const writer = new InputTensorWriter({ ...cards.fp32Card.input });
  const pool = new BufferPool();
  const nchw: Float32Array[] = [];
  for (const i of FRAMES) {
    const { image, buffer } = await decodeImageInto(pool, await readFile(path.join(PANDASET_DIR, 'camera', `${String(i).padStart(2, '0')}.jpg`)));
    writer.write(image);
    buffer.release();
    nchw.push(writer.data.slice());
  }
  const size = 512;
  const toNhwc = (x: Float32Array) => {
    const out = new Float32Array(x.length);
    for (let c = 0; c < 3; c++) for (let p = 0; p < size * size; p++) out[p * 3 + c] = x[c * size * size + p]!;
    return out;
  };

  // tfjs-wasm: the original graph, outputs up to the heat-map and sizes (its own NMS tail not run).
  const backend = await useTfjsWasm();
  const tfModel = await loadTfjsGraphModel(defaultModelSource());
  const tfRun = async (x: Float32Array) => {
    const input = tf.tensor4d(toNhwc(x), [1, size, size, 3]);
    const outputs = tfModel.execute(input, ['tower_0/keypoints', 'tower_0/wh']) as InstanceType<typeof tf.Tensor>[];
    await Promise.all(outputs.map((t) => t.data()));
    tf.dispose([input, ...outputs]);
  };
  await tfRun(nchw[0]!);
  const tfjsMs: number[] = [];
  for (const x of nchw) for (let r = 0; r < RUNS_PER_FRAME; r++) tfjsMs.push(await timeMs(() => tfRun(x)));

  const ortTimes = async (modelPath: string) => {
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: THREADS,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      // As the Detector runs them: idle threads sleep rather than spin (see detector.ts).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const run = (x: Float32Array) => session.run({ [INPUT_NAME]: new ort.Tensor('float32', x, [1, 3, size, size]) });
    await run(nchw[0]!);
    const ms: number[] = [];
    for (const x of nchw) for (let r = 0; r < RUNS_PER_FRAME; r++) ms.push(await timeMs(() => run(x)));
    await session.release();
    return ms;
  };
  const fp32Ms = await ortTimes(cards.fp32Card.modelPath);
  const int8Ms = await ortTimes(cards.int8Card.modelPath);

  const drive = path.join(os.tmpdir(), `arhud-bench-detect-${process.pid}.mcap`);
  await importPandaset(PANDASET_DIR, drive);
  const detectors = [
    { name: 'fp32', detector: await Detector.create({ ...cards.fp32Card, scoreThreshold: EVAL_SCORE_THRESHOLD }) },
    { name: 'int8', detector: await Detector.create({ ...cards.int8Card, scoreThreshold: EVAL_SCORE_THRESHOLD }) },
  ];
  const evaluation = await evaluateDetectors(drive, detectors);
  for (const d of detectors) await d.detector.dispose();
  const ap = (name: string, c: 'vehicle' | 'person') => {
    const value = evaluation.results[name]![c].ap;
    return value === undefined ? null : Math.round(1000 * value) / 10;
  };
  const result = {
    benchmark: 'detect',
    data: `pandaset-002 frames ${FRAMES.join(',')} (x${RUNS_PER_FRAME}) for latency; all 60 frames for AP`,
    threads: THREADS,
    tfjsBackend: backend,
    tfjsWasmMs: median(tfjsMs),
    ortFp32Ms: median(fp32Ms),
    ortInt8Ms: median(int8Ms),
    int8VsFp32: median(fp32Ms) / median(int8Ms),
    int8VsTfjs: median(tfjsMs) / median(int8Ms),
    apVehicleFp32: ap('fp32', 'vehicle'),
    apVehicleInt8: ap('int8', 'vehicle'),
    apPersonFp32: ap('fp32', 'person'),
    apPersonInt8: ap('int8', 'person'),
    groundTruth: evaluation.groundTruth,
    targets: { int8VsFp32: '>= 2', int8VsTfjs: '>= 8', apLossPoints: '<= 1.0 per class' },
    met: false,
  };
  const apLoss = (c: 'Vehicle' | 'Person') => (result[`ap${c}Fp32`] ?? 0) - (result[`ap${c}Int8`] ?? 0);
  result.met = result.int8VsFp32 >= 2 && result.int8VsTfjs >= 8 && apLoss('Vehicle') <= 1 && apLoss('Person') <= 1;
  process.stdout.write(
    [
      `latency (median of ${tfjsMs.length}, ${THREADS} threads, 512x512): tfjs-${backend} ${result.tfjsWasmMs.toFixed(1)} ms, ORT FP32 ${result.ortFp32Ms.toFixed(1)} ms, ORT INT8 ${result.ortInt8Ms.toFixed(1)} ms`,
      `INT8 speed-up: ${result.int8VsFp32.toFixed(2)}x vs FP32, ${result.int8VsTfjs.toFixed(1)}x vs tfjs-${backend}`,
      formatEvaluation(evaluation),
      `targets ${result.met ? 'met' : 'NOT met'}`,
      '',
    ].join('\n'),
  );
  return result;
}
