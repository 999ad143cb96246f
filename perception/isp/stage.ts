/**
 * The ISP as a pipeline stage, first after decoding: it denoises each frame (the learned model, or
 * the guided filter when no model is configured) and optionally tone-maps it locally, in place — the
 * later stages (detector, lanes, recording of processed images) see the processed frame, in the same
 * pixel coordinates. What it did goes into `frame.isp` and, in replays, '/camera/front/isp/report'.
 *
 * Noise level: the sensor's gain when the source knows it, else measured in the frame
 * (`estimateNoiseStd`, every NOISE_ESTIMATE_EVERY frames, smoothed): recordings carry no gain.
 *
 * Under load it degrades by itself (the scheduler of issue #9 can also force a mode): when the
 * stage's own time stays above `budgetMs`, full resolution -> half resolution -> skipped, and back up
 * when it has room again. Every step is counted in the metrics and recorded on the frame.
 */
import { ImageView } from '../../pipeline/image.js';
import { TOPIC_CAMERA, compressedImageCodec, jsonCodec, timestampSchema } from '../../pipeline/recording/topics.js';
import { nsFromTimestamp, timestampFromNs, type Timestamp } from '../../pipeline/time.js';
import type { ReplayExtensionFactory } from '../../pipeline/replay.js';
import type { AcceleratorScheduler, RuntimeControls } from '../../pipeline/scheduler.js';
import { stage } from '../../pipeline/stage.js';
import sharp from 'sharp';
import type { LearnedDenoiser } from './denoiser/denoiser.js';
import { toneMapLocal } from './fusion.js';
import { guidedFilterDenoise } from './guided-filter.js';
import { REFERENCE_CODE, estimateNoiseStd, gainForNoiseStd } from './noise-estimate.js';
import { srgbNoiseStdAt, type SensorGainLevel } from './noise-model.js';

/** Processed frames, as JPEG (foxglove.CompressedImage). */
export const TOPIC_ISP_IMAGE = `${TOPIC_CAMERA}/isp`;
/** What the ISP did per frame (arhud.IspReport). */
export const TOPIC_ISP_REPORT = `${TOPIC_CAMERA}/isp/report`;
export const ISP_STAGE_NAME = 'isp';
/** The noise is measured on every n-th frame (it changes with the scene's light, slowly). */
export const NOISE_ESTIMATE_EVERY = 10;
/** Weight of a new noise measurement in the running estimate. */
export const NOISE_SMOOTHING = 0.3;
/**
 * The estimate samples every NOISE_ESTIMATE_STEP-th row and column: 8 gives 8k samples at 960x540
 * (3 ms; step 4 took 6 ms, 27-44 ms at 1080p, on the frame's critical path every 10th frame) and the
 * same estimate within 2 % on real frames at every gain (measured: 3.56 vs 3.55, 9.02 vs 9.10).
 */
export const NOISE_ESTIMATE_STEP = 8;
/** Frames over (or well under) budget before the stage steps down (or up). */
export const BUDGET_WINDOW = 5;
/** From half resolution, back to full only when the last BUDGET_WINDOW frames took less than this share of the budget (full costs ~4x half). */
export const RECOVER_BUDGET_SHARE = 0.25;
/** Skipped frames cost nothing and so cannot show room: half resolution is retried after this many. */
export const SKIP_RETRY_FRAMES = 4 * BUDGET_WINDOW;
/** Below this measured noise std (8-bit codes) a frame is left as it is: denoising clean frames only blurs them. */
export const MIN_DENOISE_NOISE_STD = 1.5;
/** JPEG quality of written processed frames. */
export const ISP_JPEG_QUALITY = 90;

export type IspMode = 'full' | 'half' | 'skip';
const MODES: readonly IspMode[] = ['full', 'half', 'skip'];

export type IspDenoiseMethod = 'learned' | 'guided' | 'off';

/** What the ISP did to one frame. */
export interface IspRecord {
  mode: IspMode;
  /** Why the mode differs from full, if it does. */
  reason?: 'load' | 'forced' | 'clean';
  denoise: IspDenoiseMethod;
  /** The gain the denoiser was run for (ISO) and the noise std it implies at mid-grey, 8-bit codes. */
  gainIso: number;
  noiseStd: number;
  /** The measured noise std, when measured on this frame. */
  measuredNoiseStd?: number;
  toneMapped: boolean;
  durationMs: number;
}

declare module '../../pipeline/frame.js' {
  interface Frame {
    /** Set by the isp stage: what it did to this frame's image. */
    isp?: IspRecord;
  }
}

export interface IspStageOptions {
  /** The learned denoiser; without one, the guided filter (the classical fallback). */
  denoiser?: LearnedDenoiser;
  /** 'off' leaves noise alone (tone mapping only). Default: 'learned' with a denoiser, else 'guided'. */
  denoise?: IspDenoiseMethod;
  /** The sensor's gain, when known; default: measured in the frames. */
  gain?: SensorGainLevel;
  /** Local tone mapping for SDR frames. Default false. */
  toneMap?: boolean;
  /** Stage time budget, ms, for the automatic degradation. Default Infinity (never degrades). */
  budgetMs?: number;
  /** Start (and, without a budget, stay) in this mode. Default 'full'. */
  mode?: IspMode;
  /** Write processed frames to TOPIC_ISP_IMAGE in replays. Default false. */
  writeImages?: boolean;
  /** Run through the shared accelerator scheduler, as normal-class work (refused under load: the frame goes on unprocessed). */
  scheduler?: AcceleratorScheduler;
  /** The degradation policy's knobs: `ispMode` sets the mode (instead of the stage's own budget logic). */
  controls?: RuntimeControls;
  /** Deadline of one frame's processing for the scheduler, ms. Default ISP_DEADLINE_MS. */
  deadlineMs?: number;
}

/** Default ISP deadline: it must not hold a 10 Hz frame longer than its period. */
export const ISP_DEADLINE_MS = 100;

export const ispReportCodec = jsonCodec<IspRecord & { tNs: bigint; seq: number }, IspRecord & { seq: number; timestamp: Timestamp }>(
  'arhud.IspReport',
  {
    title: 'arhud.IspReport',
    description: 'What the ISP stage did to one camera frame.',
    type: 'object',
    properties: {
      timestamp: timestampSchema,
      seq: { type: 'integer', minimum: 0 },
      mode: { enum: MODES },
      reason: { enum: ['load', 'forced', 'clean'] },
      denoise: { enum: ['learned', 'guided', 'off'] },
      gainIso: { type: 'number', minimum: 0 },
      noiseStd: { type: 'number', minimum: 0 },
      measuredNoiseStd: { type: 'number', minimum: 0 },
      toneMapped: { type: 'boolean' },
      durationMs: { type: 'number', minimum: 0 },
    },
    required: ['timestamp', 'seq', 'mode', 'denoise', 'gainIso', 'noiseStd', 'toneMapped', 'durationMs'],
  },
  ({ tNs, ...rest }) => ({ ...rest, timestamp: timestampFromNs(tNs) }),
  ({ timestamp, ...rest }) => ({ ...rest, tNs: nsFromTimestamp(timestamp) }),
);

/** The ISP's per-stream state: noise estimate and degradation mode. One per camera stream. */
export class IspProcessor {
  readonly #options: IspStageOptions;
  readonly #method: IspDenoiseMethod;
  #noiseStd: number | undefined;
  /** The gain the denoiser runs for: given, or derived from #noiseStd when that changes (not per frame). */
  #gain: SensorGainLevel;
  #frames = 0;
  #mode: IspMode;
  readonly #recent: number[] = [];
  #skipped = 0;

  constructor(options: IspStageOptions = {}) {
    const budget = options.budgetMs ?? Infinity;
    if (!(budget > 0)) throw new RangeError(`IspProcessor: 'budgetMs' must be > 0, got ${budget}`);
    if (options.mode !== undefined && !MODES.includes(options.mode)) throw new RangeError(`IspProcessor: 'mode' must be one of ${MODES.join(', ')}, got '${String(options.mode)}'`);
    const method = options.denoise ?? (options.denoiser ? 'learned' : 'guided');
    if (method === 'learned' && !options.denoiser) throw new Error("IspProcessor: denoise 'learned' needs a denoiser (LearnedDenoiser.create())");
    this.#options = options;
    this.#method = method;
    this.#mode = options.mode ?? 'full';
    this.#gain = options.gain ?? gainForNoiseStd(0);
  }

  get mode(): IspMode {
    return this.#mode;
  }

  /** Forces a mode (the scheduler's degradation); the budget logic continues from there. */
  setMode(mode: IspMode): void {
    if (!MODES.includes(mode)) throw new RangeError(`IspProcessor.setMode: 'mode' must be one of ${MODES.join(', ')}, got '${String(mode)}'`);
    this.#mode = mode;
    this.#recent.length = 0;
    this.#skipped = 0;
  }

  /** The record of a frame the stage did not process (refused by the scheduler). */
  skipped(reason: NonNullable<IspRecord['reason']>): IspRecord {
    const gain = this.#gain;
    return { mode: 'skip', reason, denoise: 'off', gainIso: gain.iso, noiseStd: srgbNoiseStdAt(REFERENCE_CODE, gain), toneMapped: false, durationMs: 0 };
  }

  /**
   * Processes `image` (rgb8) in place; returns what it did. `nowMs` is the clock for the stage's own
   * time. Once `abandoned` fires (the watchdog gave up on this frame, whose buffer may already serve
   * another frame) the result is not written into `image`.
   */
  async process(image: ImageView, nowMs: () => number = () => performance.now(), abandoned?: AbortSignal): Promise<IspRecord> {
    if (image.format !== 'rgb8') throw new TypeError(`IspProcessor.process: field 'image' must be rgb8, got ${image.format}`);
    const started = nowMs();
    const mode = this.#mode;
    let measured: number | undefined;
    if (this.#options.gain === undefined && this.#frames % NOISE_ESTIMATE_EVERY === 0 && mode !== 'skip') {
      measured = estimateNoiseStd(image, NOISE_ESTIMATE_STEP);
      this.#noiseStd = this.#noiseStd === undefined ? measured : this.#noiseStd + NOISE_SMOOTHING * (measured - this.#noiseStd);
      this.#gain = gainForNoiseStd(this.#noiseStd);
    }
    this.#frames++;
    const gain = this.#gain;
    const noiseStd = srgbNoiseStdAt(REFERENCE_CODE, gain);
    const toneMap = this.#options.toneMap ?? false;
    let reason: IspRecord['reason'] = mode === 'full' ? undefined : this.#options.budgetMs === undefined ? 'forced' : 'load';
    let method: IspDenoiseMethod = this.#method;
    if (method !== 'off' && noiseStd < MIN_DENOISE_NOISE_STD && this.#options.gain === undefined) {
      method = 'off';
      reason ??= 'clean';
    }
    if (mode !== 'skip') {
      const working = mode === 'half' ? halfSize(image) : image;
      const workingGain = mode === 'half' ? halfSizeGain(gain) : gain;
      let result = working;
      if (method === 'learned') result = await this.#options.denoiser!.denoise(working, workingGain);
      else if (method === 'guided') result = guidedFilterDenoise(working, { level: workingGain });
      if (toneMap) result = toneMapLocal(result, { output: 'rgb8' });
      if (abandoned?.aborted) {
        // Nothing written: the frame went on without this stage.
      } else if (mode === 'half') addUpsampledChange(image, working, result);
      else if (result !== image) writeInto(image, result);
    }
    const durationMs = nowMs() - started;
    this.#adapt(durationMs, mode);
    const record: IspRecord = { mode, denoise: mode === 'skip' ? 'off' : method, gainIso: gain.iso, noiseStd, toneMapped: toneMap && mode !== 'skip', durationMs };
    if (reason !== undefined) record.reason = reason;
    if (measured !== undefined) record.measuredNoiseStd = measured;
    return record;
  }

  /** Steps down after BUDGET_WINDOW frames over budget, back up when there is room (see the constants). */
  #adapt(durationMs: number, mode: IspMode): void {
    const budget = this.#options.budgetMs;
    if (budget === undefined) return;
    if (mode === 'skip') {
      if (++this.#skipped >= SKIP_RETRY_FRAMES) this.setMode('half');
      return;
    }
    this.#recent.push(durationMs);
    if (this.#recent.length > BUDGET_WINDOW) this.#recent.shift();
    if (this.#recent.length < BUDGET_WINDOW) return;
    if (this.#recent.every((ms) => ms > budget)) this.setMode(mode === 'full' ? 'half' : 'skip');
    else if (mode === 'half' && this.#recent.every((ms) => ms < budget * RECOVER_BUDGET_SHARE)) this.setMode('full');
  }
}

/** The isp stage plus its outputs (report, optionally processed images), for runReplay. Put it first. */
export function ispExtension(options: IspStageOptions = {}): ReplayExtensionFactory {
  return (context) => {
    const { clock, metrics } = context;
    const processor = new IspProcessor(options);
    const nowMs = () => Number(clock.nowNs()) / 1e6;
    return {
      stages: [
        stage(
          ISP_STAGE_NAME,
          async (frame, abandoned) => {
            const { scheduler, controls } = options;
            if (controls && controls.ispMode !== processor.mode) processor.setMode(controls.ispMode);
            if (!scheduler) {
              frame.isp = await processor.process(frame.image, nowMs, abandoned);
            } else {
              // One run-time estimate per mode: after a refused full-resolution run, half resolution still gets its chance.
              const name = `${ISP_STAGE_NAME}.${processor.mode}`;
              const outcome = await scheduler.submit({ name, priority: 'normal', deadlineMs: options.deadlineMs ?? ISP_DEADLINE_MS }, () => processor.process(frame.image, nowMs, abandoned));
              frame.isp = outcome.status === 'done' ? outcome.value : processor.skipped('load');
            }
            metrics.count(`isp.${frame.isp.mode}`);
            if (frame.isp.denoise !== 'off') metrics.count(`isp.denoise.${frame.isp.denoise}`);
          },
          { ...context, deadlineMs: options.deadlineMs ?? ISP_DEADLINE_MS },
        ),
      ],
      writeOutputs: async (frame, writer, logTimeNs) => {
        if (!frame.isp) return;
        await writer.write(TOPIC_ISP_REPORT, ispReportCodec, logTimeNs, { tNs: frame.tCaptureNs, seq: frame.seq, ...frame.isp });
        if (options.writeImages) {
          const { width, height } = frame.image;
          const packed = frame.image.isPacked ? frame.image : frame.image.copy();
          const rgb = packed.data as Uint8Array;
          const jpeg = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset + packed.offset, width * height * 3), { raw: { width, height, channels: 3 } }).jpeg({ quality: ISP_JPEG_QUALITY }).toBuffer();
          await writer.write(TOPIC_ISP_IMAGE, compressedImageCodec, logTimeNs, { tNs: frame.tCaptureNs, frameId: 'camera_front', format: 'jpeg', data: jpeg });
        }
      },
    };
  };
}

/** `image` (rgb8) averaged over 2x2 blocks: a new packed image of half its size (rounded down, at least 1). */
export function halfSize(image: ImageView): ImageView {
  const w = Math.max(1, image.width >> 1);
  const h = Math.max(1, image.height >> 1);
  const out = new Uint8Array(w * h * 3);
  const { data, offset, rowStride, pixelStride } = image;
  const x1 = image.width > 1 ? pixelStride : 0;
  const y1 = image.height > 1 ? rowStride : 0;
  for (let y = 0, o = 0; y < h; y++) {
    for (let x = 0; x < w; x++, o += 3) {
      const p = offset + 2 * y * rowStride + 2 * x * pixelStride;
      for (let c = 0; c < 3; c++) out[o + c] = (data[p + c]! + data[p + x1 + c]! + data[p + y1 + c]! + data[p + x1 + y1 + c]! + 2) >> 2;
    }
  }
  return ImageView.packed(w, h, 'rgb8', out);
}

/**
 * Adds what processing did at half resolution (`after - before`, upsampled bilinearly) to the
 * full-resolution `image`, in place: the coarse part of the noise goes, the full-resolution detail
 * stays (upsampling the processed half-size frame itself would blur the frame more than the noise
 * costs: on PandaSet at 720p a clean frame halved and upsampled is only 23.5 dB PSNR).
 */
export function addUpsampledChange(image: ImageView, before: ImageView, after: ImageView): void {
  const { width: w, height: h, data, offset, rowStride, pixelStride } = image;
  const lw = before.width;
  const lh = before.height;
  const change = new Float32Array(lw * lh * 3);
  for (let y = 0, i = 0; y < lh; y++) {
    for (let x = 0; x < lw; x++, i += 3) {
      const pb = before.offset + y * before.rowStride + x * before.pixelStride;
      const pa = after.offset + y * after.rowStride + x * after.pixelStride;
      for (let c = 0; c < 3; c++) change[i + c] = after.data[pa + c]! - before.data[pb + c]!;
    }
  }
  for (let y = 0; y < h; y++) {
    // Half-resolution sample j sits at full-resolution coordinate 2j + 0.5.
    const fy = Math.min(Math.max((y - 0.5) / 2, 0), lh - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, lh - 1);
    const wy = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(Math.max((x - 0.5) / 2, 0), lw - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, lw - 1);
      const wx = fx - x0;
      const p = offset + y * rowStride + x * pixelStride;
      for (let c = 0; c < 3; c++) {
        const top = change[(y0 * lw + x0) * 3 + c]! * (1 - wx) + change[(y0 * lw + x1) * 3 + c]! * wx;
        const bottom = change[(y1 * lw + x0) * 3 + c]! * (1 - wx) + change[(y1 * lw + x1) * 3 + c]! * wx;
        const v = data[p + c]! + top * (1 - wy) + bottom * wy;
        data[p + c] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
      }
    }
  }
}

/** The noise of `gain` after halfSize's 2x2 mean: a quarter of the variance (shot and read alike). */
export function halfSizeGain(gain: SensorGainLevel): SensorGainLevel {
  return { name: `${gain.name}/2x2`, iso: gain.iso / 4, shotGain: gain.shotGain / 4, readNoiseStd: gain.readNoiseStd / 2 };
}

/** Copies `source` (rgb8, same size) into `image`'s storage. */
function writeInto(image: ImageView, source: ImageView): void {
  if (source.width !== image.width || source.height !== image.height || source.format !== 'rgb8') {
    throw new Error(`isp: processed image is ${source.width}x${source.height} ${source.format}, the frame is ${image.width}x${image.height} rgb8`);
  }
  const { data, offset, rowStride, pixelStride, width, height } = image;
  const s = source.data;
  for (let y = 0; y < height; y++) {
    let p = offset + y * rowStride;
    let q = source.offset + y * source.rowStride;
    for (let x = 0; x < width; x++, p += pixelStride, q += source.pixelStride) {
      data[p] = s[q]!;
      data[p + 1] = s[q + 1]!;
      data[p + 2] = s[q + 2]!;
    }
  }
}
