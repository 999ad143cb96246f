// The default detector end to end on real data: built into a fresh cache (convert -> calibrate on
// Udacity stills -> mixed-precision INT8), served from the cache the second time, run as the
// replay's detect stage, and evaluated on the PandaSet drive (FP32 vs INT8 AP@0.5).
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../../perception/detect/detector.js';
import { EVAL_SCORE_THRESHOLD, evaluateDetectors } from '../../perception/detect/evaluate.js';
import { iou } from '../../perception/detect/nms.js';
import { detectExtension } from '../../perception/detect/stage.js';
import {
  FP32_MODEL_FILE,
  INT8_MODEL_FILE,
  MAX_FLOAT_BLOCKS,
  ensureDefaultDetector,
  type DefaultDetector,
} from '../../perception/models/default-detector.js';
import { decodeOnnxModel } from '../../perception/models/onnx.js';
import { optimizedOpCounts } from '../../perception/models/qdq-debug.js';
import { AcceleratorScheduler, PipelineMetrics, RealClock, RecordingReader, TOPIC_DETECTIONS, createRuntimeControls, imageBoxesCodec } from '../../pipeline/index.js';
import { gainLevelByName } from '../../perception/isp/noise-model.js';
import { TOPIC_ISP_REPORT, ispExtension, ispReportCodec } from '../../perception/isp/stage.js';
import { runReplay } from '../../pipeline/replay.js';
import { readFile } from 'node:fs/promises';
import { DATA_DIR, importedPandasetDrive, tempDir } from '../support/data.js';

/** The white SUV ahead in camera/00.jpg, read off the image by eye (not from the labels). */
const SUV_AHEAD_FRAME0: [number, number, number, number] = [746, 535, 1120, 858];

describe('default detector (MobileNetV3 CenterNet, INT8)', () => {
  let cacheDir: string;
  let built: DefaultDetector;

  beforeAll(async () => {
    cacheDir = path.join(await tempDir('arhud-models-'), 'cache');
    built = await ensureDefaultDetector(DATA_DIR, { cacheDir });
  }, 240_000);

  it('builds one complete cache entry once, then serves it', async () => {
    expect(built.built).toBe(true);
    expect(await readdir(cacheDir)).toEqual([path.basename(built.entry.dir)]);
    const again = await ensureDefaultDetector(DATA_DIR, { cacheDir });
    expect(again.built).toBe(false);
    expect(again.entry.dir).toBe(built.entry.dir);
    const recipe = built.entry.manifest.recipe as { quantization: { floatBlocks: string[] }; calibration: { images: string[] } };
    expect(recipe.quantization.floatBlocks.length).toBeLessThanOrEqual(MAX_FLOAT_BLOCKS);
    expect(recipe.calibration.images).toHaveLength(6);
  });

  it('runs INT8 convolutions as QLinearConv in onnxruntime', async () => {
    const int8 = decodeOnnxModel(await readFile(path.join(built.entry.dir, INT8_MODEL_FILE)), INT8_MODEL_FILE);
    const fp32 = decodeOnnxModel(await readFile(path.join(built.entry.dir, FP32_MODEL_FILE)), FP32_MODEL_FILE);
    const convs = fp32.graph.nodes.filter((n) => n.opType === 'Conv').length;
    const counts = await optimizedOpCounts(int8);
    // All but the convolutions of the blocks kept FP32 run as integer kernels.
    expect(counts.get('QLinearConv') ?? 0).toBeGreaterThan(convs * 0.8);
  });

  it('runs under the accelerator scheduler and the degradation knobs: detector every 2nd frame, ISP skipped', async () => {
    const detector = await Detector.create(built.int8Card);
    const scheduler = new AcceleratorScheduler({ clock: new RealClock(), metrics: new PipelineMetrics() });
    const controls = createRuntimeControls();
    // What DegradationPolicy's last step decides under sustained overload.
    Object.assign(controls, { detectEveryN: 2, ispMode: 'skip', level: 3 });
    const output = path.join(await tempDir(), 'degraded.mcap');
    try {
      const summary = await runReplay({
        input: await importedPandasetDrive(),
        output,
        pacing: 'afap',
        endS: 0.45,
        extensions: [ispExtension({ gain: gainLevelByName('low'), scheduler, controls }), detectExtension(detector, { scheduler, controls })],
      });
      expect(summary.frames).toBe(5);
      // Detector on frames 0, 2, 4 only (the tracker coasts between), as safety work; the ISP as normal work, skipped.
      expect(scheduler.stats.safety).toMatchObject({ submitted: 3, done: 3 });
      // The ISP's normal-class jobs wait behind the detector: one may be refused by admission when
      // the detector's run leaves no room in its deadline (its frame then goes on unprocessed).
      expect(scheduler.stats.normal.submitted).toBe(5);
      expect(scheduler.stats.normal.done + scheduler.stats.normal.rejected).toBe(5);
      const reader = await RecordingReader.open(output, { strict: true });
      try {
        expect(reader.topic(TOPIC_DETECTIONS)?.messageCount).toBe(3);
        for await (const m of reader.messages({ topics: [TOPIC_ISP_REPORT] })) expect(ispReportCodec.decode(m.data)).toMatchObject({ mode: 'skip', denoise: 'off' });
      } finally {
        await reader.close();
      }
    } finally {
      await detector.dispose();
      scheduler.close();
    }
  });

  it('finds the cars of frame 0 as the replay detect stage, written as ImageAnnotations', async () => {
    const detector = await Detector.create(built.int8Card);
    const output = path.join(await tempDir(), 'detect.mcap');
    const summary = await runReplay({ input: await importedPandasetDrive(), output, pacing: 'afap', endS: 0.25, extensions: [detectExtension(detector)] });
    await detector.dispose();
    expect(summary.stages.detect?.count).toBe(3);
    const reader = await RecordingReader.open(output);
    const frames = [];
    for await (const m of reader.messages({ topics: [TOPIC_DETECTIONS] })) frames.push(imageBoxesCodec.decode(m.data));
    await reader.close();
    expect(frames).toHaveLength(3);
    const cars = frames[0]!.boxes.filter((b) => b.label === 'car');
    expect(cars.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...cars.map((c) => iou(c.box, SUV_AHEAD_FRAME0)))).toBeGreaterThan(0.6);
  });

  it('keeps vehicle AP@0.5 within 1 point of FP32 on the PandaSet drive', async () => {
    const detectors = [
      { name: 'fp32', detector: await Detector.create({ ...built.fp32Card, scoreThreshold: EVAL_SCORE_THRESHOLD }) },
      { name: 'int8', detector: await Detector.create({ ...built.int8Card, scoreThreshold: EVAL_SCORE_THRESHOLD }) },
    ];
    const evaluation = await evaluateDetectors(await importedPandasetDrive(), detectors);
    for (const d of detectors) await d.detector.dispose();
    const fp32 = evaluation.results.fp32!.vehicle.ap!;
    const int8 = evaluation.results.int8!.vehicle.ap!;
    expect(evaluation.frames).toBe(60);
    expect(fp32).toBeGreaterThan(0.6);
    expect(fp32 - int8).toBeLessThanOrEqual(0.01);
  });
});
