import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BufferPool, decodeImageInto } from '../../pipeline/index.js';
import { decodeCenterNet, decodeYoloV5, decodeYoloV8, type CenterNetOptions } from '../../perception/detect/decoders.js';
import { InputTensorWriter, identityTransform, placeInInput, type InputTensorSpec } from '../../perception/detect/preprocess.js';
import { COCO_CLASSES, type Detection } from '../../perception/detect/types.js';
import { PANDASET_DIR, PROJECT_ROOT } from '../support/data.js';
import { thrownBy } from '../support/errors.js';
import { loadTfjsGraphModel, tf, useTfjsWasm } from '../support/tfjs.js';

const MODEL_DIR = path.join(PROJECT_ROOT, 'node_modules/@vladmandic/human/models');
const CENTERNET_INPUT: InputTensorSpec = { width: 512, height: 512, layout: 'nhwc', channelOrder: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 'stretch', padValue: 0 };
/** What the original graph does: k = 100 (tower_0/TopKV2/k), stride 4 (tower_0/mul_3/y ... mul_6/y). */
const GRAPH_OPTIONS: CenterNetOptions = { layout: 'nhwc', stride: 4, maxDetections: 100, scoreThreshold: 0, classes: COCO_CLASSES };

/** NHWC [1, H, W, C] -> NCHW [1, C, H, W]. */
function toNchw(data: Float32Array, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[k * h * w + y * w + x] = data[(y * w + x) * c + k]!;
  return out;
}

interface GraphRun {
  frame: string;
  keypoints: Float32Array;
  wh: Float32Array;
  detections: Float32Array;
  sourceWidth: number;
  sourceHeight: number;
}

describe('decodeCenterNet against the original tfjs graph', () => {
  const runs: GraphRun[] = [];
  let backend = '';

  beforeAll(async () => {
    // wasm initialises in Node and runs the graph in ~0.3 s; the pure-JS cpu backend takes ~7 s per frame.
    backend = await useTfjsWasm();
    const model = await loadTfjsGraphModel(path.join(MODEL_DIR, 'centernet.json'));
    const pool = new BufferPool();
    const writer = new InputTensorWriter(CENTERNET_INPUT);
    for (const frame of ['00.jpg', '40.jpg']) {
      const { image, buffer } = await decodeImageInto(pool, await readFile(path.join(PANDASET_DIR, 'camera', frame)));
      writer.write(image);
      const input = tf.tensor4d(writer.data, [1, 512, 512, 3]);
      const outputs = model.execute(input, ['tower_0/keypoints', 'tower_0/wh', 'tower_0/detections']) as tf.Tensor[];
      const [keypoints, wh, detections] = (await Promise.all(outputs.map((t) => t.data()))) as Float32Array[];
      expect(outputs.map((t) => t.shape)).toEqual([
        [1, 128, 128, 80],
        [1, 128, 128, 4],
        [1, 100, 6],
      ]);
      runs.push({ frame, keypoints: keypoints!, wh: wh!, detections: detections!, sourceWidth: image.width, sourceHeight: image.height });
      tf.dispose([input, ...outputs]);
      buffer.release();
    }
    model.dispose();
  });

  it('reproduces tower_0/detections from tower_0/keypoints + tower_0/wh (NHWC): boxes within 1e-3 px, same scores, classes and order', () => {
    for (const run of runs) {
      const t0 = performance.now();
      const decoded = decodeCenterNet(run.keypoints, run.wh, [1, 128, 128, 80], identityTransform(512, 512), GRAPH_OPTIONS);
      const decodeMs = performance.now() - t0;
      expect(decoded).toHaveLength(100);
      let worstBoxPx = 0;
      decoded.forEach((d, i) => {
        const row = run.detections.subarray(i * 6, i * 6 + 6);
        expect(d.classId, `${run.frame} #${i} class`).toBe(row[5]);
        expect(d.score, `${run.frame} #${i} score`).toBe(row[4]);
        for (let j = 0; j < 4; j++) worstBoxPx = Math.max(worstBoxPx, Math.abs(d.box[j]! - row[j]!));
      });
      expect(worstBoxPx, run.frame).toBeLessThan(1e-3);
      const top = decoded.slice(0, 5).map((d) => `${d.className} ${d.score.toFixed(3)}`);
      console.log(`${run.frame} (tfjs ${backend}): 100/100 rows match, worst box difference ${worstBoxPx} px, decode ${decodeMs.toFixed(1)} ms; top 5: ${top.join(', ')}`);
    }
  });

  it('gives the same result from NCHW tensors', () => {
    for (const run of runs) {
      const nhwc = decodeCenterNet(run.keypoints, run.wh, [1, 128, 128, 80], identityTransform(512, 512), GRAPH_OPTIONS);
      const nchw = decodeCenterNet(toNchw(run.keypoints, 128, 128, 80), toNchw(run.wh, 128, 128, 4), [1, 80, 128, 128], identityTransform(512, 512), {
        ...GRAPH_OPTIONS,
        layout: 'nchw',
      });
      expect(nchw).toEqual(nhwc);
    }
  });

  it('maps the graph boxes to source pixels through the transform and applies the score threshold', () => {
    const run = runs[0]!;
    const t = placeInInput(CENTERNET_INPUT, run.sourceWidth, run.sourceHeight);
    const decoded = decodeCenterNet(run.keypoints, run.wh, [1, 128, 128, 80], t, { ...GRAPH_OPTIONS, scoreThreshold: 0.3 });
    const kept = [...Array(100).keys()].filter((i) => run.detections[i * 6 + 4]! >= 0.3);
    expect(decoded).toHaveLength(kept.length);
    expect(decoded.length).toBeGreaterThan(0);
    decoded.forEach((d, n) => {
      const row = run.detections.subarray(kept[n]! * 6, kept[n]! * 6 + 6);
      expect(d.box[0]).toBeCloseTo(row[0]! * (1920 / 512), 2);
      expect(d.box[1]).toBeCloseTo(row[1]! * (1080 / 512), 2);
      expect(d.box[2]).toBeCloseTo(row[2]! * (1920 / 512), 2);
      expect(d.box[3]).toBeCloseTo(row[3]! * (1080 / 512), 2);
      expect(d.className).toBe(COCO_CLASSES[row[5]!]);
    });
    // A street scene: cars among the confident detections, tagged as HUD class.
    expect(decoded.some((d) => d.hudClass === 'car')).toBe(true);
  });
});

describe('decodeCenterNet on hand-made tensors', () => {
  /** 1 x 3 x 4 x 2 heat-map (NHWC) from a per-class 3 x 4 grid. */
  function heatmapOf(class0: number[][], class1: number[][]): Float32Array {
    const out = new Float32Array(3 * 4 * 2);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 4; x++) {
        out[(y * 4 + x) * 2] = class0[y]![x]!;
        out[(y * 4 + x) * 2 + 1] = class1[y]![x]!;
      }
    }
    return out;
  }
  const sizes = new Float32Array(3 * 4 * 4);
  for (let cell = 0; cell < 12; cell++) sizes.set([1 + cell, 2, 3, 4 + cell], cell * 4);
  const options: CenterNetOptions = { layout: 'nhwc', stride: 8, maxDetections: 5, classes: ['person', 'car'] };

  it('keeps 3x3 maxima (plateaus count as maxima), ranks by score then NHWC index, and builds boxes from the sizes', () => {
    const heatmap = heatmapOf(
      [
        [0.9, 0.1, 0.1, 0.5],
        [0.1, 0.1, 0.1, 0.1],
        [0.1, 0.5, 0.1, 0.1],
      ],
      [
        [0.2, 0.2, 0.1, 0.1],
        [0.1, 0.1, 0.1, 0.7],
        [0.1, 0.1, 0.1, 0.1],
      ],
    );
    const d = decodeCenterNet(heatmap, sizes, [1, 3, 4, 2], identityTransform(32, 24), options);
    // Peaks: class 0 at (0,0) 0.9, (3,0) 0.5, (1,2) 0.5; class 1 at (3,1) 0.7, plateau (0,0) and (1,0) 0.2.
    // 0.5 tie: (3,0) has flat index (0*4+3)*2 = 6, (1,2) has (2*4+1)*2 = 18 -> (3,0) first.
    expect(d.map((x) => [x.classId, x.score])).toEqual([
      [0, Math.fround(0.9)],
      [1, Math.fround(0.7)],
      [0, Math.fround(0.5)],
      [0, Math.fround(0.5)],
      [1, Math.fround(0.2)],
    ]);
    // (3, 1): cell 7, sizes [8, 2, 3, 11]; centre (24, 8) -> [24 - 8, 8 - 2, 24 + 3, 8 + 11].
    expect(d[1]!.box).toEqual([16, 6, 27, 19]);
    expect(d[1]!.className).toBe('car');
    expect(d[1]!.hudClass).toBe('car');
    expect(d[2]!.box).toEqual([24 - 4, -2, 27, 4 + 3]);
    // The 0.2 plateau: (0,0) flat 1 outranks (1,0) flat 3.
    expect(d[4]!.box).toEqual([0 - 1, 0 - 2, 3, 4]);
  });

  it('fills up with zero-score cells like TopK when there are fewer positive peaks than k, and drops them by threshold', () => {
    const flat = heatmapOf(
      [
        [0, 0, 0, 0],
        [0, 0.6, 0, 0],
        [0, 0, 0, 0],
      ],
      [
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
      ],
    );
    const all = decodeCenterNet(flat, sizes, [1, 3, 4, 2], identityTransform(32, 24), { ...options, maxDetections: 4 });
    // Non-peaks enter TopK as 0 (Mul by the Equal mask) and equal values rank by flat index, so the
    // list fills up with flat 0 (class 0, a non-peak next to the 0.6), 1 (class 1) and 2 (class 0).
    expect(all.map((d) => d.score)).toEqual([Math.fround(0.6), 0, 0, 0]);
    expect(all.map((d) => d.classId)).toEqual([0, 0, 1, 0]);
    expect(all.map((d) => d.box.slice(0, 2))).toEqual([
      [8 - 6, 8 - 2],
      [0 - 1, 0 - 2],
      [0 - 1, 0 - 2],
      [8 - 2, 0 - 2],
    ]);
    const kept = decodeCenterNet(flat, sizes, [1, 3, 4, 2], identityTransform(32, 24), { ...options, maxDetections: 4, scoreThreshold: 0.6 });
    expect(kept).toHaveLength(1);
    expect(decodeCenterNet(flat, sizes, [1, 3, 4, 2], identityTransform(32, 24), { ...options, scoreThreshold: Math.fround(0.6) + 1e-7 })).toHaveLength(0);
  });

  it('refuses tensors that do not fit their dims, naming the tensor', () => {
    let error = thrownBy(() => decodeCenterNet(new Float32Array(24), new Float32Array(47), [1, 3, 4, 2], identityTransform(32, 24), options));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("decodeCenterNet: 'sizes' has 47 elements, dims [1, 3, 4, 4] need 48");
    error = thrownBy(() => decodeCenterNet(new Float32Array(24), sizes, [3, 4, 2], identityTransform(32, 24), options));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("decodeCenterNet: 'heatmap' dims must be 4 positive integers, got [3, 4, 2]");
    error = thrownBy(() => decodeCenterNet([] as never, sizes, [1, 3, 4, 2], identityTransform(32, 24), options));
    expect(error.name).toBe('TypeError');
  });
});

describe('YOLO decoders on hand-made tensors', () => {
  // Source 200 x 100 letterboxed into 64 x 64: scale 0.32, resized 64 x 32, 16 rows of padding above.
  const t = placeInInput({ width: 64, height: 64, resize: 'letterbox' }, 200, 100);
  const classes = ['person', 'car', 'traffic light'];

  it('checks the transform the expectations below assume', () => {
    expect(t).toEqual({ scaleX: 0.32, scaleY: 0.32, padX: 0, padY: 16, sourceWidth: 200, sourceHeight: 100 });
  });

  it('decodeYoloV5: score = objectness x best class, box = centre +- size / 2 mapped back', () => {
    // [1, 3, 5 + 3]: cx, cy, w, h, obj, p(person), p(car), p(light)
    const rows = [
      [32, 32, 16, 8, 0.9, 0.1, 0.8, 0.2], // car 0.72, input [24, 28, 40, 36]
      [8, 20, 4, 4, 0.5, 0.6, 0.6, 0.1], // tie person/car -> person 0.3
      [40, 40, 10, 10, 0.2, 0.9, 0.1, 0.1], // objectness 0.2: person 0.18
    ];
    const output = Float32Array.from(rows.flat());
    const all = decodeYoloV5(output, [1, 3, 8], t, { classes });
    expect(all.map((d) => [d.className, d.score])).toEqual([
      ['car', Math.fround(0.9) * Math.fround(0.8)],
      ['person', Math.fround(0.5) * Math.fround(0.6)],
      ['person', Math.fround(0.2) * Math.fround(0.9)],
    ]);
    // [24, 28, 40, 36] -> x / 0.32, (y - 16) / 0.32 = [75, 37.5, 125, 62.5]
    const box = all[0]!.box;
    expect(box[0]).toBeCloseTo(75, 9);
    expect(box[1]).toBeCloseTo(37.5, 9);
    expect(box[2]).toBeCloseTo(125, 9);
    expect(box[3]).toBeCloseTo(62.5, 9);
    // [6, 18, 10, 22] -> [6 / 0.32, (18 - 16) / 0.32, 10 / 0.32, (22 - 16) / 0.32]
    expect(all[1]!.box.map((v) => +v.toFixed(6))).toEqual([18.75, 6.25, 31.25, 18.75]);
    // At the limit: a score equal to the threshold is kept, just above it is not.
    const limit = Math.fround(0.5) * Math.fround(0.6);
    expect(decodeYoloV5(output, [1, 3, 8], t, { classes, scoreThreshold: limit }).map((d) => d.className)).toEqual(['car', 'person']);
    expect(decodeYoloV5(output, [1, 3, 8], t, { classes, scoreThreshold: limit + 1e-9 }).map((d) => d.className)).toEqual(['car']);
  });

  it('decodeYoloV8 (and YOLO11): [1, 4 + C, N] channel-major, no objectness', () => {
    // Two candidates: A at input (32, 32) 16 x 8, classes [0.1, 0.7, 0.3]; B at (10, 50) 20 x 4, classes [0.4, 0.05, 0.4].
    const channels = [
      [32, 10], // cx
      [32, 50], // cy
      [16, 20], // w
      [8, 4], // h
      [0.1, 0.4], // person
      [0.7, 0.05], // car
      [0.3, 0.4], // traffic light
    ];
    const output = Float32Array.from(channels.flat());
    const all: Detection[] = decodeYoloV8(output, [1, 7, 2], t, { classes });
    expect(all.map((d) => [d.classId, d.score, d.hudClass])).toEqual([
      [1, Math.fround(0.7), 'car'],
      [0, Math.fround(0.4), 'person'],
    ]);
    expect(all[0]!.box.map((v) => +v.toFixed(6))).toEqual([75, 37.5, 125, 62.5]);
    // B: [0, 48, 20, 52] -> [0, 100, 62.5, 112.5] (outside the source below; clipping is the detector's job)
    expect(all[1]!.box.map((v) => +v.toFixed(6))).toEqual([0, 100, 62.5, 112.5]);
    expect(decodeYoloV8(output, [1, 7, 2], t, { classes, scoreThreshold: 0.5 })).toHaveLength(1);
    // No class names: the id as a string, no HUD class.
    expect(decodeYoloV8(output, [1, 7, 2], t)[0]).toMatchObject({ classId: 1, className: '1' });
  });

  it('refuses outputs of the wrong shape, naming the decoder and tensor', () => {
    let error = thrownBy(() => decodeYoloV8(new Float32Array(8), [1, 4, 2], t));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("decodeYoloV8: 'output' needs 4 + classes >= 5 channels, got dims [1, 4, 2]");
    error = thrownBy(() => decodeYoloV5(new Float32Array(10), [1, 2, 6], t));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("decodeYoloV5: 'output' has 10 elements, dims [1, 2, 6] need 12");
  });
});
