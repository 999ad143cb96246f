/**
 * `npm run bench -- isp`: the ISP against OpenCV in the same run, on held-out real frames
 * (perception/isp/frames.ts: PandaSet 002 at 1280x720, the Udacity video at 960x540; never seen in
 * training).
 *
 * - Denoising: each clean frame gets sensor noise at the three gain levels (perception/isp/noise-model.ts,
 *   fixed seeds); ours is the committed learned denoiser in onnxruntime-node (FP32, the default; INT8 too), OpenCV's is
 *   cv2.fastNlMeansDenoisingColored (Debian python3-opencv, test/bench/opencv_isp.py). OpenCV gets
 *   its best filter strength per level: h = k x (the level's noise std at mid-grey) with k picked
 *   from NLM_H_FACTORS by PSNR on a TRAINING frame, so the comparison is with NLM at its best, not
 *   at its defaults. PSNR and SSIM against the clean frame, means over frames and levels.
 * - Fusion: [-2, 0, +2] EV brackets synthesized from each clean frame in linear light (scene 2x
 *   brighter than the frame, so the +2 bracket clips; 'low' gain noise on every bracket); ours is
 *   perception/isp/fusion.ts, OpenCV's cv2.createMergeMertens; both fused images are rounded to
 *   8 bits and scored with MEF-SSIM (Ma et al. 2015) against the brackets.
 * - Times are medians at 1280x720 (2 threads for ORT and OpenCV; our fusion is single-threaded
 *   TypeScript); the stage time is IspProcessor.process on a noisy 720p frame, learned denoiser at
 *   the 'medium' gain, with and without local tone mapping.
 * Without python3-opencv the OpenCV columns are skipped with a message.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { ImageView } from '../../pipeline/image.js';
import { DEFAULT_BRACKET_EV, synthesizeBrackets } from '../../perception/isp/brackets.js';
import { LearnedDenoiser } from '../../perception/isp/denoiser/denoiser.js';
import { loadIspFrames, type IspFrame } from '../../perception/isp/frames.js';
import { fuseExposures } from '../../perception/isp/fusion.js';
import { guidedFilterDenoise } from '../../perception/isp/guided-filter.js';
import { REFERENCE_CODE } from '../../perception/isp/noise-estimate.js';
import { SENSOR_GAIN_LEVELS, addSensorNoise, gainLevelByName, srgbNoiseStdAt } from '../../perception/isp/noise-model.js';
import { mefSsim, psnr, ssim } from '../../perception/isp/quality.js';
import { IspProcessor } from '../../perception/isp/stage.js';
import { median } from '../../perception/evaluate/stats.js';
import { DATA_DIR, PROJECT_ROOT } from '../support/data.js';

/** NLM strength candidates, as multiples of the noise std at mid-grey. */
const NLM_H_FACTORS = [0.6, 0.8, 1.0, 1.25, 1.5];
const PYTHONS = ['python3', '/usr/bin/python3'];
const SEED = 7;
const TIMING_REPEATS = 9;
const BRACKET_SCENE_GAIN = 2;
const TARGETS = { psnrOverOpencvDb: 0.5, denoiseSpeedup: 10, fusionSpeedup: 3, stageMs720p: 20 };

interface OpenCvJobResult {
  opencv: string;
  denoise: { output: string; width: number; height: number; medianMs: number }[];
  fusion: { output: string; width: number; height: number; medianMs: number }[];
}

const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / values.length;

async function writePng(file: string, image: ImageView): Promise<string> {
  const packed = image.isPacked && image.offset === 0 ? image : image.copy();
  const data = packed.data as Uint8Array;
  await sharp(Buffer.from(data.buffer, data.byteOffset, image.width * image.height * 3), { raw: { width: image.width, height: image.height, channels: 3 } }).png({ compressionLevel: 1 }).toFile(file);
  return file;
}

/** A 16-bit PNG (OpenCV's fused float result, see opencv_isp.py) rounded to 8 bits exactly as toRgb8 rounds ours. */
async function readRgb16AsRgb8(file: string): Promise<ImageView> {
  const { data, info } = await sharp(file).toColourspace('rgb16').removeAlpha().raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  const words = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  const out = new Uint8Array(info.width * info.height * 3);
  for (let i = 0; i < out.length; i++) out[i] = Math.round((words[i]! / 65535) * 255);
  return ImageView.packed(info.width, info.height, 'rgb8', out);
}

async function readRgb8(file: string): Promise<ImageView> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return ImageView.packed(info.width, info.height, 'rgb8', new Uint8Array(data.buffer, data.byteOffset, data.length));
}

function toRgb8(image: ImageView): ImageView {
  if (image.format === 'rgb8') return image;
  const src = image.copy().data;
  const out = new Uint8Array(image.width * image.height * 3);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(Math.min(1, Math.max(0, src[i]!)) * 255);
  return ImageView.packed(image.width, image.height, 'rgb8', out);
}

/** Runs opencv_isp.py on a job, or says why it cannot. */
async function runOpenCv(dir: string, name: string, job: Record<string, unknown>): Promise<OpenCvJobResult | { skipped: string }> {
  const jobFile = path.join(dir, `${name}.json`);
  await writeFile(jobFile, JSON.stringify(job));
  const script = path.join(PROJECT_ROOT, 'test/bench/opencv_isp.py');
  for (const python of PYTHONS) {
    const run = spawnSync(python, [script, jobFile], { encoding: 'utf8', maxBuffer: 16 << 20 });
    if (run.status === 0) return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as OpenCvJobResult;
    if (run.status !== 3 && run.error === undefined) return { skipped: `${python} opencv_isp.py failed (exit ${run.status}): ${run.stderr.trim().split('\n').at(-1)}` };
  }
  return { skipped: `OpenCV (cv2) not found in ${PYTHONS.join(' or ')}: apt-get install python3-opencv` };
}

async function timeMs(work: () => Promise<unknown> | unknown, repeats = TIMING_REPEATS): Promise<number> {
  await work();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const started = performance.now();
    await work();
    times.push(performance.now() - started);
  }
  return median(times);
}

export async function ispBenchmark(json: boolean): Promise<Record<string, unknown>> {
  const log = (line: string): void => void (json ? process.stderr : process.stdout).write(`${line}\n`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'arhud-bench-isp-'));
  const denoiser = await LearnedDenoiser.create({ precision: 'fp32' });
  const denoiserInt8 = await LearnedDenoiser.create({ precision: 'int8' });
  try {
    const frames: IspFrame[] = [
      ...(await loadIspFrames(DATA_DIR, 'heldOut', { sources: ['pandaset'], every: 2 })),
      ...(await loadIspFrames(DATA_DIR, 'heldOut', { sources: ['udacity'], every: 5 })),
    ];
    const is720p = (f: { width: number; height: number }) => f.width === 1280 && f.height === 720;
    log(`isp: ${frames.length} held-out frames (${frames.map((f) => f.name).join(', ')}), gain levels ${SENSOR_GAIN_LEVELS.map((l) => `${l.name} (${srgbNoiseStdAt(REFERENCE_CODE, l).toFixed(1)} codes at mid-grey)`).join(', ')}`);

    // --- OpenCV NLM strength, picked on a training frame.
    const [tuning] = await loadIspFrames(DATA_DIR, 'train', { sources: ['pandaset'], every: 50 });
    const tuningClean = tuning!.image.crop(320, 180, 640, 360).copy();
    const sweep: { level: string; h: number; file: string; clean: ImageView }[] = [];
    for (const level of SENSOR_GAIN_LEVELS) {
      const noisy = await writePng(path.join(dir, `tune-${level.name}.png`), addSensorNoise(tuningClean, level, SEED));
      for (const k of NLM_H_FACTORS) {
        const h = k * srgbNoiseStdAt(REFERENCE_CODE, level);
        sweep.push({ level: level.name, h, file: noisy, clean: tuningClean });
      }
    }
    const sweepRun = await runOpenCv(dir, 'sweep', {
      repeats: 1,
      denoise: sweep.map((s, i) => ({ input: s.file, output: path.join(dir, `tune-out-${i}.png`), h: s.h, hColor: s.h, templateWindowSize: 7, searchWindowSize: 21 })),
    });
    const nlmH: Record<string, number> = {};
    if (!('skipped' in sweepRun)) {
      const best: Record<string, number> = {};
      for (const [i, s] of sweep.entries()) {
        const score = psnr(s.clean, await readRgb8(sweepRun.denoise[i]!.output));
        if (!(s.level in best) || score > best[s.level]!) {
          best[s.level] = score;
          nlmH[s.level] = s.h;
        }
      }
      log(`OpenCV NLM strength per level (best of k = ${NLM_H_FACTORS.join(', ')} x noise std, on training frame ${tuning!.name}): ${Object.entries(nlmH).map(([l, h]) => `${l} h=${h.toFixed(1)}`).join(', ')}`);
    } else log(`OpenCV skipped: ${sweepRun.skipped}`);

    // --- Denoising quality and time.
    const rows: { frame: string; level: string; psnrNoisy: number; psnrOurs: number; psnrOursInt8: number; ssimNoisy: number; ssimOurs: number; psnrNlm?: number; ssimNlm?: number }[] = [];
    const nlmJobs: { input: string; output: string; h: number; hColor: number; templateWindowSize: number; searchWindowSize: number }[] = [];
    const oursMs: number[] = [];
    const oursInt8Ms: number[] = [];
    for (const [fi, frame] of frames.entries()) {
      for (const [li, level] of SENSOR_GAIN_LEVELS.entries()) {
        const noisy = addSensorNoise(frame.image, level, SEED + 100 * fi + li);
        const ours = await denoiser.denoise(noisy, level);
        const oursInt8 = await denoiserInt8.denoise(noisy, level);
        rows.push({ frame: frame.name, level: level.name, psnrNoisy: psnr(frame.image, noisy), psnrOurs: psnr(frame.image, ours), psnrOursInt8: psnr(frame.image, oursInt8), ssimNoisy: ssim(frame.image, noisy), ssimOurs: ssim(frame.image, ours) });
        if (is720p(frame.image) && fi === 0) {
          oursMs.push(await timeMs(() => denoiser.denoise(noisy, level)));
          oursInt8Ms.push(await timeMs(() => denoiserInt8.denoise(noisy, level)));
        }
        if (nlmH[level.name] !== undefined) {
          const h = nlmH[level.name]!;
          nlmJobs.push({ input: await writePng(path.join(dir, `noisy-${fi}-${li}.png`), noisy), output: path.join(dir, `nlm-${fi}-${li}.png`), h, hColor: h, templateWindowSize: 7, searchWindowSize: 21 });
        }
      }
    }
    let nlmMs = NaN;
    if (nlmJobs.length > 0) {
      log(`running OpenCV NLM on ${nlmJobs.length} noisy frames (a few seconds each)...`);
      const nlm = await runOpenCv(dir, 'nlm', { repeats: 1, denoise: nlmJobs });
      if ('skipped' in nlm) log(`OpenCV NLM skipped: ${nlm.skipped}`);
      else {
        for (const [i, row] of rows.entries()) {
          const out = await readRgb8(nlm.denoise[i]!.output);
          const clean = frames.find((f) => f.name === row.frame)!.image;
          row.psnrNlm = psnr(clean, out);
          row.ssimNlm = ssim(clean, out);
        }
        nlmMs = median(nlm.denoise.filter((d) => is720p(d)).map((d) => d.medianMs));
      }
    }
    const denoiseMs = median(oursMs);
    for (const level of SENSOR_GAIN_LEVELS) {
      const r = rows.filter((x) => x.level === level.name);
      log(
        `denoise ${level.name.padEnd(6)} PSNR noisy ${mean(r.map((x) => x.psnrNoisy)).toFixed(2)}  ours ${mean(r.map((x) => x.psnrOurs)).toFixed(2)} (INT8 ${mean(r.map((x) => x.psnrOursInt8)).toFixed(2)})  NLM ${mean(r.map((x) => x.psnrNlm ?? NaN)).toFixed(2)} dB | ` +
          `SSIM noisy ${mean(r.map((x) => x.ssimNoisy)).toFixed(4)}  ours ${mean(r.map((x) => x.ssimOurs)).toFixed(4)}  NLM ${mean(r.map((x) => x.ssimNlm ?? NaN)).toFixed(4)}`,
      );
    }

    // --- Fusion quality and time.
    const lowGain = gainLevelByName('low');
    const fusionRows: { frame: string; mefOurs: number; mefOpencv?: number }[] = [];
    const fusionJobs: { inputs: string[]; output: string }[] = [];
    const bracketSets: ImageView[][] = [];
    let fusionMs = NaN;
    for (const [fi, frame] of frames.entries()) {
      const brackets = synthesizeBrackets(frame.image, DEFAULT_BRACKET_EV, { sceneGain: BRACKET_SCENE_GAIN, noise: (image, i) => addSensorNoise(image, lowGain, SEED + 1000 + 10 * fi + i) });
      bracketSets.push(brackets);
      const fused = toRgb8(fuseExposures(brackets));
      fusionRows.push({ frame: frame.name, mefOurs: mefSsim(brackets, fused) });
      if (is720p(frame.image) && fi === 0) fusionMs = await timeMs(() => fuseExposures(brackets));
      fusionJobs.push({ inputs: await Promise.all(brackets.map((b, i) => writePng(path.join(dir, `bracket-${fi}-${i}.png`), b))), output: path.join(dir, `mertens-${fi}.png`) });
    }
    let opencvFusionMs = NaN;
    const mertens = await runOpenCv(dir, 'mertens', { repeats: 3, fusion: fusionJobs });
    if ('skipped' in mertens) log(`OpenCV Mertens skipped: ${mertens.skipped}`);
    else {
      for (const [i, row] of fusionRows.entries()) row.mefOpencv = mefSsim(bracketSets[i]!, await readRgb16AsRgb8(mertens.fusion[i]!.output));
      opencvFusionMs = median(mertens.fusion.filter((f) => is720p(f)).map((f) => f.medianMs));
    }
    log(`fusion MEF-SSIM ours ${mean(fusionRows.map((r) => r.mefOurs)).toFixed(4)}  OpenCV ${mean(fusionRows.map((r) => r.mefOpencv ?? NaN)).toFixed(4)} (${fusionRows.length} frames, brackets ${DEFAULT_BRACKET_EV.join('/')} EV)`);

    // --- The stage at 720p.
    const frame720 = frames.find((f) => is720p(f.image))!;
    const medium = gainLevelByName('medium');
    const noisy720 = addSensorNoise(frame720.image, medium, SEED);
    const stageMs = await timeMs(() => new IspProcessor({ denoiser, gain: medium }).process(noisy720.copy()));
    const stageToneMapMs = await timeMs(() => new IspProcessor({ denoiser, gain: medium, toneMap: true }).process(noisy720.copy()));
    const stageHalfMs = await timeMs(() => new IspProcessor({ denoiser, gain: medium, mode: 'half' }).process(noisy720.copy()));
    const guidedMs = await timeMs(() => guidedFilterDenoise(noisy720, { level: medium }));
    const autoGainMs = await timeMs(() => new IspProcessor({ denoiser }).process(noisy720.copy()));

    const result = {
      benchmark: 'isp',
      frames: frames.length,
      levels: SENSOR_GAIN_LEVELS.map((l) => l.name),
      psnrNoisy: mean(rows.map((r) => r.psnrNoisy)),
      psnrOurs: mean(rows.map((r) => r.psnrOurs)),
      psnrOursInt8: mean(rows.map((r) => r.psnrOursInt8)),
      psnrOpencvNlm: mean(rows.map((r) => r.psnrNlm ?? NaN)),
      ssimNoisy: mean(rows.map((r) => r.ssimNoisy)),
      ssimOurs: mean(rows.map((r) => r.ssimOurs)),
      ssimOpencvNlm: mean(rows.map((r) => r.ssimNlm ?? NaN)),
      perLevel: Object.fromEntries(
        SENSOR_GAIN_LEVELS.map((l) => {
          const r = rows.filter((x) => x.level === l.name);
          return [l.name, { psnrNoisy: mean(r.map((x) => x.psnrNoisy)), psnrOurs: mean(r.map((x) => x.psnrOurs)), psnrOursInt8: mean(r.map((x) => x.psnrOursInt8)), psnrOpencvNlm: mean(r.map((x) => x.psnrNlm ?? NaN)), nlmH: nlmH[l.name] ?? null }];
        }),
      ),
      denoiseMs720p: denoiseMs,
      denoiseInt8Ms720p: median(oursInt8Ms),
      opencvNlmMs720p: nlmMs,
      mefSsimOurs: mean(fusionRows.map((r) => r.mefOurs)),
      mefSsimOpencv: mean(fusionRows.map((r) => r.mefOpencv ?? NaN)),
      fusionMs720p: fusionMs,
      opencvFusionMs720p: opencvFusionMs,
      stageMs720p: stageMs,
      stageToneMapMs720p: stageToneMapMs,
      stageHalfResMs720p: stageHalfMs,
      stageAutoGainMs720p: autoGainMs,
      guidedFilterMs720p: guidedMs,
      model: { file: path.relative(PROJECT_ROOT, denoiser.modelFile), int8File: path.relative(PROJECT_ROOT, denoiserInt8.modelFile), parameters: denoiser.card.architecture.parameters },
      targets: TARGETS,
    };
    const met = {
      psnrOverOpencv: result.psnrOurs - result.psnrOpencvNlm >= TARGETS.psnrOverOpencvDb,
      denoiseSpeedup: result.opencvNlmMs720p / result.denoiseMs720p >= TARGETS.denoiseSpeedup,
      mefSsim: result.mefSsimOurs >= result.mefSsimOpencv,
      fusionSpeedup: result.opencvFusionMs720p / result.fusionMs720p >= TARGETS.fusionSpeedup,
      stageMs720p: result.stageMs720p <= TARGETS.stageMs720p,
    };
    log(
      `denoise (FP32, the default; INT8: ${result.psnrOursInt8.toFixed(2)} dB, ${result.denoiseInt8Ms720p.toFixed(1)} ms = ${(result.opencvNlmMs720p / result.denoiseInt8Ms720p).toFixed(1)}x NLM): PSNR ours ${result.psnrOurs.toFixed(2)} vs NLM ${result.psnrOpencvNlm.toFixed(2)} dB (+${(result.psnrOurs - result.psnrOpencvNlm).toFixed(2)}, target +${TARGETS.psnrOverOpencvDb}: ${met.psnrOverOpencv ? 'met' : 'NOT met'}); ` +
        `720p ${denoiseMs.toFixed(1)} ms vs NLM ${nlmMs.toFixed(0)} ms (${(nlmMs / denoiseMs).toFixed(1)}x, target ${TARGETS.denoiseSpeedup}x: ${met.denoiseSpeedup ? 'met' : 'NOT met'})`,
    );
    log(
      `fusion: MEF-SSIM ours ${result.mefSsimOurs.toFixed(4)} vs OpenCV ${result.mefSsimOpencv.toFixed(4)} (${met.mefSsim ? 'met' : 'NOT met'}); 720p ${fusionMs.toFixed(1)} ms vs OpenCV ${opencvFusionMs.toFixed(1)} ms (${(opencvFusionMs / fusionMs).toFixed(1)}x, target ${TARGETS.fusionSpeedup}x: ${met.fusionSpeedup ? 'met' : 'NOT met'})`,
    );
    log(
      `stage at 1280x720: ${stageMs.toFixed(1)} ms (target <= ${TARGETS.stageMs720p} ms: ${met.stageMs720p ? 'met' : 'NOT met'}); with tone mapping ${stageToneMapMs.toFixed(1)} ms; half resolution ${stageHalfMs.toFixed(1)} ms; ` +
        `measured gain ${autoGainMs.toFixed(1)} ms; guided-filter fallback alone ${guidedMs.toFixed(1)} ms`,
    );
    return { ...result, met };
  } finally {
    await denoiser.dispose();
    await denoiserInt8.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}
