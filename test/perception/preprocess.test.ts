import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BufferPool, ImageView, decodeImageInto } from '../../pipeline/index.js';
import { InputTensorWriter, boxToSource, clipBoxToSource, placeInInput, type InputTensorSpec } from '../../perception/detect/preprocess.js';
import type { Box } from '../../perception/detect/types.js';
import { PANDASET_DIR } from '../support/data.js';
import { thrownBy } from '../support/errors.js';

const CENTERNET: InputTensorSpec = { width: 512, height: 512, layout: 'nhwc', channelOrder: 'rgb', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 'letterbox', padValue: 0 };
const YOLO: InputTensorSpec = { width: 640, height: 640, layout: 'nchw', channelOrder: 'rgb', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], resize: 'letterbox', padValue: 114 };
const IMAGENET: InputTensorSpec = {
  width: 320,
  height: 256,
  layout: 'nchw',
  channelOrder: 'bgr',
  scale: 1 / 255,
  mean: [0.406, 0.456, 0.485],
  std: [0.225, 0.224, 0.229],
  resize: 'stretch',
  padValue: 0,
};

/**
 * The straightforward reference: for every input pixel, find its source point with the textbook
 * formula, clamp, and blend the four neighbours read through ImageView.get. Independent of the
 * writer's tables; it shares only the spec.
 */
function referenceTensor(spec: InputTensorSpec, image: ImageView): Float32Array {
  const { width: W, height: H } = spec;
  const w = image.width;
  const h = image.height;
  let nw = W;
  let nh = H;
  if (spec.resize === 'letterbox') {
    const s = Math.min(W / w, H / h);
    nw = Math.round(w * s);
    nh = Math.round(h * s);
  }
  const padX = Math.floor((W - nw) / 2);
  const padY = Math.floor((H - nh) / 2);
  const order = spec.channelOrder === 'rgb' ? [0, 1, 2] : [2, 1, 0];
  const out = new Float32Array(3 * W * H);
  for (let yo = 0; yo < H; yo++) {
    for (let xo = 0; xo < W; xo++) {
      for (let k = 0; k < 3; k++) {
        let pixel: number;
        if (xo < padX || xo >= padX + nw || yo < padY || yo >= padY + nh) {
          pixel = spec.padValue;
        } else {
          const sx = Math.min(Math.max((xo - padX + 0.5) * (w / nw) - 0.5, 0), w - 1);
          const sy = Math.min(Math.max((yo - padY + 0.5) * (h / nh) - 0.5, 0), h - 1);
          const x0 = Math.floor(sx);
          const y0 = Math.floor(sy);
          const x1 = Math.min(x0 + 1, w - 1);
          const y1 = Math.min(y0 + 1, h - 1);
          const fx = sx - x0;
          const fy = sy - y0;
          const c = order[k]!;
          pixel =
            image.get(x0, y0, c) * (1 - fx) * (1 - fy) +
            image.get(x1, y0, c) * fx * (1 - fy) +
            image.get(x0, y1, c) * (1 - fx) * fy +
            image.get(x1, y1, c) * fx * fy;
        }
        const value = (pixel * spec.scale - spec.mean[k]!) / spec.std[k]!;
        const at = spec.layout === 'nchw' ? k * W * H + yo * W + xo : (yo * W + xo) * 3 + k;
        out[at] = value;
      }
    }
  }
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** An rgba8 copy of an rgb8 view, with alpha 7 (ignored by the writer). */
function toRgba(image: ImageView): ImageView {
  const rgba = new ImageView({ width: image.width, height: image.height, format: 'rgba8', data: new Uint8Array(image.width * image.height * 4) });
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      for (let c = 0; c < 3; c++) rgba.set(x, y, c, image.get(x, y, c));
      rgba.set(x, y, 3, 7);
    }
  }
  return rgba;
}

describe('InputTensorWriter', () => {
  let frame: ImageView;

  beforeAll(async () => {
    const pool = new BufferPool();
    const decoded = await decodeImageInto(pool, await readFile(path.join(PANDASET_DIR, 'camera', '00.jpg')));
    frame = decoded.image;
  });

  it('places a 1920x1080 frame in 512x512 with the expected letterbox', () => {
    expect([frame.width, frame.height]).toEqual([1920, 1080]);
    const t = placeInInput(CENTERNET, 1920, 1080);
    // 1080 * 512 / 1920 = 288 rows, centred: (512 - 288) / 2 = 112 rows above.
    expect(t).toEqual({ scaleX: 512 / 1920, scaleY: 288 / 1080, padX: 0, padY: 112, sourceWidth: 1920, sourceHeight: 1080 });
    const stretch = placeInInput({ ...CENTERNET, resize: 'stretch' }, 1920, 1080);
    expect(stretch).toEqual({ scaleX: 512 / 1920, scaleY: 512 / 1080, padX: 0, padY: 0, sourceWidth: 1920, sourceHeight: 1080 });
    // Odd leftovers: 101 x 50 into 64 x 64 -> 64 x 32 (round(31.68)), pad 16 above (floor(32 / 2)).
    expect(placeInInput({ ...CENTERNET, width: 64, height: 64 }, 101, 50)).toMatchObject({ padX: 0, padY: 16, scaleX: 64 / 101, scaleY: 32 / 50 });
  });

  it('matches the reference on a real frame: letterbox, NHWC, rgb, scale 1 (CenterNet)', () => {
    const writer = new InputTensorWriter(CENTERNET);
    writer.write(frame);
    expect(maxAbsDiff(writer.data, referenceTensor(CENTERNET, frame))).toBeLessThan(1e-3);
    // Padding rows hold exactly the pad value, image rows real pixels.
    expect(writer.data[(10 * 512 + 100) * 3]).toBe(0);
    expect(writer.data.subarray(112 * 512 * 3, 400 * 512 * 3).some((v) => v > 0)).toBe(true);
  });

  it('matches the reference: letterbox, NCHW, scale 1/255, pad 114 (YOLO)', () => {
    const writer = new InputTensorWriter(YOLO);
    const t = writer.write(frame);
    expect(t.padY).toBe(140);
    expect(maxAbsDiff(writer.data, referenceTensor(YOLO, frame))).toBeLessThan(1e-5);
    expect(writer.data[0]).toBeCloseTo(114 / 255, 7);
    expect(writer.data[2 * 640 * 640 + 639 * 640 + 639]).toBeCloseTo(114 / 255, 7);
  });

  it('matches the reference: stretch, NCHW, bgr, mean/std', () => {
    const writer = new InputTensorWriter(IMAGENET);
    writer.write(frame);
    expect(maxAbsDiff(writer.data, referenceTensor(IMAGENET, frame))).toBeLessThan(1e-4);
  });

  it('matches the reference on crops (odd offsets, rgba pixel stride, upscaling)', () => {
    const crop = frame.crop(333, 101, 777, 505);
    for (const spec of [CENTERNET, YOLO, IMAGENET, { ...CENTERNET, channelOrder: 'bgr' as const, layout: 'nchw' as const }]) {
      const writer = new InputTensorWriter(spec);
      writer.write(crop);
      expect(maxAbsDiff(writer.data, referenceTensor(spec, crop)), `${spec.layout} ${spec.resize}`).toBeLessThan(1e-3);
    }
    const rgba = toRgba(frame.crop(1200, 600, 301, 211));
    const writer = new InputTensorWriter(YOLO);
    writer.write(rgba.crop(5, 3, 290, 200));
    expect(maxAbsDiff(writer.data, referenceTensor(YOLO, rgba.crop(5, 3, 290, 200)))).toBeLessThan(1e-5);
    // Upscaling a tiny crop (tall: pads left and right).
    const tiny = frame.crop(960, 540, 13, 29);
    const up = new InputTensorWriter({ ...CENTERNET, width: 64, height: 48 });
    const t = up.write(tiny);
    expect(t.padX).toBeGreaterThan(0);
    expect(maxAbsDiff(up.data, referenceTensor({ ...CENTERNET, width: 64, height: 48 }, tiny))).toBeLessThan(1e-3);
  });

  it('reuses its storage and tables: alternating sizes give the same result as fresh writers', () => {
    const writer = new InputTensorWriter(YOLO);
    const data = writer.data;
    const small = frame.crop(100, 100, 400, 700);
    writer.write(frame);
    const first = Float32Array.from(writer.data);
    writer.write(small);
    const second = Float32Array.from(writer.data);
    writer.write(frame);
    expect(writer.data).toBe(data);
    expect(maxAbsDiff(writer.data, first)).toBe(0);
    const fresh = new InputTensorWriter(YOLO);
    fresh.write(small);
    expect(maxAbsDiff(fresh.data, second)).toBe(0);
  });

  it('writes into a caller-supplied tensor buffer and transform target', () => {
    const data = new Float32Array(3 * 512 * 512);
    const writer = new InputTensorWriter(CENTERNET, data);
    const target = placeInInput(CENTERNET, 1, 1);
    const returned = writer.write(frame, target);
    expect(writer.data).toBe(data);
    expect(returned).toBe(target);
    expect(target.padY).toBe(112);
  });

  it('maps boxes from input pixels back to source pixels', () => {
    const t = placeInInput(CENTERNET, 1920, 1080);
    // Source box (960, 540)-(1920, 1080) lands at (256, 112 + 144)-(512, 400) in the input.
    const box: Box = [256, 256, 512, 400];
    expect(boxToSource(box, t)).toEqual([960, 540, 1920, 1080]);
    expect(clipBoxToSource([-5, 1000, 2000, 1100], t)).toEqual([0, 1000, 1920, 1080]);
  });

  it('measures 1920x1080 -> 512x512 (report)', () => {
    for (const spec of [CENTERNET, { ...CENTERNET, layout: 'nchw' as const }, { ...CENTERNET, resize: 'stretch' as const }]) {
      const writer = new InputTensorWriter(spec);
      for (let i = 0; i < 5; i++) writer.write(frame);
      const times: number[] = [];
      for (let i = 0; i < 30; i++) {
        const t0 = performance.now();
        writer.write(frame);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const medianMs = times[times.length >> 1]!;
      console.log(`preprocess 1920x1080 -> 512x512 ${spec.resize} ${spec.layout}: median ${medianMs.toFixed(2)} ms, min ${times[0]!.toFixed(2)} ms`);
      // Generous bound: a shared CI core, not a benchmark.
      expect(medianMs).toBeLessThan(50);
    }
  });

  it('refuses wrong images and specs with TypeError / RangeError naming the field', () => {
    const writer = new InputTensorWriter(CENTERNET);
    const gray = ImageView.packed(4, 4, 'gray8', new Uint8Array(16));
    let error = thrownBy(() => writer.write(gray));
    expect(error.name).toBe('TypeError');
    expect(error.message).toBe("InputTensorWriter.write: image format must be 'rgb8' or 'rgba8', got 'gray8'");
    error = thrownBy(() => new InputTensorWriter({ ...CENTERNET, width: 0 }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("InputTensorWriter: 'width' must be a positive integer, got 0");
    error = thrownBy(() => new InputTensorWriter({ ...CENTERNET, std: [1, 0, 1] }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("InputTensorWriter: 'std[1]' must be a finite number > 0, got 0");
    error = thrownBy(() => new InputTensorWriter({ ...CENTERNET, layout: 'chw' as never }));
    expect(error.name).toBe('TypeError');
    error = thrownBy(() => new InputTensorWriter(CENTERNET, new Float32Array(10)));
    expect(error.name).toBe('RangeError');
    expect(error.message).toContain("'data' must be a Float32Array of 786432 elements, got 10");
  });
});
