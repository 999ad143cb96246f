/**
 * End-to-end benchmark (issue #9): the full graph (ISP -> detect INT8 -> track -> lanes -> ADAS ->
 * watchdog -> render -> link -> embedded broker) in real time, as `arhud replay` / `arhud run` run it.
 * - PandaSet 002 (10 Hz, 1920x1080) replayed at 1x from its MCAP (JPEG decode counts as capture).
 * - Udacity solidWhiteRight.mp4 (25 fps, 960x540) through the live path (`arhud run`): ffmpeg plays
 *   the file in real time, vehicle signals arrive as JSON at 50 Hz. The video has no signals: an
 *   ASSUMED constant 25 m/s straight drive (interstate) stands in.
 * - Both again with a background load: a low-priority ONNX job (the learned denoiser on 720p,
 *   one ORT thread, back to back) submitted through the same scheduler, which would saturate a core.
 * - Memory: the PandaSet drive 10 times through the full graph (as fast as possible), RSS trend.
 * - Registration: `arhud eval registration` on PandaSet with the measured capture-to-display latency.
 * Latency = capture (decode entry / camera arrival) to the end of the link stage (the frame handed
 * to MQTT); safety = the detector's scheduler wait + run.
 * Targets: Udacity p99 <= 60 ms; no dropped safety work; loaded safety p99 <= 1.1 x unloaded; RSS
 * flat (growth < 20 MB over 10 loops); registration median <= 0.5 deg, p90 <= 1.0 deg.
 */
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildRuntimeGraph } from '../../bin/runtime-graph.js';
import { EmbeddedBroker } from '../../hud/broker.js';
import { HudLink } from '../../hud/link.js';
import { Detector } from '../../perception/detect/detector.js';
import { DEFAULT_HUD_SEED, evaluateRegistration, registrationEvaluationJson } from '../../perception/evaluate/index.js';
import { LearnedDenoiser } from '../../perception/isp/denoiser/denoiser.js';
import { gainLevelByName } from '../../perception/isp/noise-model.js';
import { ensureDefaultDetector } from '../../perception/models/default-detector.js';
import { trackerOptionsForDetector } from '../../perception/track/tracker.js';
import { builtInIntrinsics, loadCameraMounting } from '../../perception/world/mounting-file.js';
import { BufferPool, ImageView, PipelineMetrics, RealClock } from '../../pipeline/index.js';
import { captureToPublishMs, runLive } from '../../pipeline/live.js';
import { runReplay } from '../../pipeline/replay.js';
import { importPandaset } from '../../pipeline/sources/pandaset.js';
import { LiveCamera } from '../../pipeline/sources/live-camera.js';
import { VehicleSignals } from '../../pipeline/sources/vehicle-signals.js';
import { HudRenderer } from '../../render/hud-renderer.js';
import { HudOptics } from '../../render/optics.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { WarpMesh } from '../../render/warp-mesh.js';
import { DATA_DIR, PANDASET_DIR, PROJECT_ROOT } from '../support/data.js';
import { median, quantile } from '../../perception/evaluate/stats.js';
import type { Frame } from '../../pipeline/frame.js';
import { DISPLAY_TAIL_NS } from '../../render/render-stage.js';

const UDACITY_VIDEO = path.join(DATA_DIR, 'udacity-lanelines', 'test_videos', 'solidWhiteRight.mp4');
/** ASSUMED signals for the Udacity video (it has none): straight interstate driving. */
const UDACITY_SPEED_MPS = 25;
const SIGNAL_PERIOD_MS = 20;
const MEMORY_LOOPS = 10;
const UDACITY_PAIRS = 3;
/** The first second of each run is start-up (ORT plans new shapes, shaders compile, JIT): not in the latency figures. */
const WARMUP_S = 1;
/** The background job's unit of work: the denoiser on one 640x360 tile (a long job would block the accelerator for its whole run). */
const BACKGROUND_TILE = { widthPx: 640, heightPx: 360 };
const TARGETS = { e2eP99Ms: 60, safetyDrops: 0, loadedSafetyP99Ratio: 1.1, rssGrowthMB: 20, regMedianDeg: 0.5, regP90Deg: 1.0 };

interface Resources {
  detector: Detector;
  denoiser: LearnedDenoiser;
  /** The background job's own ONNX session (one ORT thread). */
  backgroundModel: LearnedDenoiser;
  renderer: HudRenderer;
  optics: HudOptics;
  broker: EmbeddedBroker;
  link: HudLink;
  trackerLowScore: ReturnType<typeof trackerOptionsForDetector>;
}

interface RunFigures {
  frames: number;
  dropped: number;
  /** Capture to link publish, steady state (after WARMUP_S). */
  e2e: { count: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number };
  /** Safety work: the detect stage (scheduler wait + run) on frames the detector ran on, steady state. */
  safety: { count: number; p50Ms: number; p99Ms: number };
  safetyDrops: number;
  deadlineMisses: number;
  degradeLevels: Record<string, number>;
  watchdogEvents: number;
  backgroundJobs: number;
}

/** Per-frame latencies of one run, steady state only. */
class LatencyCollector {
  readonly e2eMs: number[] = [];
  readonly safetyMs: number[] = [];
  #firstNs: bigint | undefined;

  readonly onFrame = (frame: Frame): void => {
    const entered = frame.stamps[0]!.tEnterNs;
    this.#firstNs ??= entered;
    if (Number(entered - this.#firstNs) / 1e9 < WARMUP_S) return;
    const latencyMs = captureToPublishMs(frame);
    if (latencyMs !== undefined) this.e2eMs.push(latencyMs);
    const detect = frame.stamps.find((s) => s.stage === 'detect');
    if (detect && frame.detections !== undefined) this.safetyMs.push(Number(detect.tExitNs - detect.tEnterNs) / 1e6);
  };
}

function figuresOf(latencies: LatencyCollector, counters: Record<string, number>, frames: number, dropped: number, backgroundJobs: number): RunFigures {
  const e = latencies.e2eMs;
  const s = latencies.safetyMs;
  return {
    frames,
    dropped,
    e2e: { count: e.length, p50Ms: quantile(e, 0.5), p90Ms: quantile(e, 0.9), p99Ms: quantile(e, 0.99), maxMs: Math.max(...e) },
    safety: { count: s.length, p50Ms: quantile(s, 0.5), p99Ms: quantile(s, 0.99) },
    // Safety work is never refused for load: a drop would be a full safety queue or an expiry.
    safetyDrops: (counters['scheduler.safety.dropped'] ?? 0) + (counters['detect.queue-full'] ?? 0) + (counters['detect.expired'] ?? 0) + (counters['detect.closed'] ?? 0),
    deadlineMisses: (counters['scheduler.safety.late'] ?? 0) + Object.entries(counters).filter(([k]) => /^watchdog\..*\.overruns$/.test(k)).reduce((a, [, v]) => a + v, 0),
    degradeLevels: Object.fromEntries(Object.entries(counters).filter(([k]) => k.startsWith('scheduler.degrade.'))),
    watchdogEvents: (counters['watchdog.blanks'] ?? 0),
    backgroundJobs,
  };
}

/** A background ONNX job back to back through the scheduler until stopped; returns the jobs run. */
function startBackgroundLoad(denoiser: LearnedDenoiser, graph: ReturnType<typeof buildRuntimeGraph>): { stop: () => Promise<number> } {
  const { widthPx, heightPx } = BACKGROUND_TILE;
  const image = ImageView.packed(widthPx, heightPx, 'rgb8', new Uint8Array(widthPx * heightPx * 3).fill(118));
  let running = true;
  let jobs = 0;
  const loop = (async () => {
    while (running) {
      if (graph.controls?.backgroundPaused) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      const outcome = await graph.scheduler!.submit({ name: 'background-load', priority: 'background', deadlineMs: 2000 }, () => denoiser.denoise(image, gainLevelByName('low')));
      if (outcome.status === 'done') jobs++;
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return jobs;
    },
  };
}

async function pandasetRun(r: Resources, drive: string, out: string, mode: { loaded: boolean } | { loops: number }): Promise<{ figures: RunFigures; rssGrowthMB: number; rssByLoopMB: number[] }> {
  const clock = new RealClock();
  const metrics = new PipelineMetrics();
  const graph = buildRuntimeGraph({
    clock,
    metrics,
    isp: { denoise: 'learned', denoiser: r.denoiser },
    detector: r.detector,
    world: { mounting: await loadCameraMounting('pandaset-002'), tracker: r.trackerLowScore },
    hud: { renderer: r.renderer, optics: r.optics, warp: identityWarp(r.optics), recordPanels: false },
    link: { link: r.link, timeBase: 'pipeline' },
    schedule: true,
    guard: true,
    displayLatency: 'measured',
  });
  const load = 'loaded' in mode && mode.loaded ? startBackgroundLoad(r.backgroundModel, graph) : undefined;
  const latencies = new LatencyCollector();
  try {
    const summary = await runReplay({
      input: drive,
      output: out,
      pacing: 'loops' in mode ? 'afap' : { speed: 1 },
      loops: 'loops' in mode ? mode.loops : 1,
      extensions: graph.extensions,
      watchdog: graph.watchdog,
      metrics,
      clock,
      onFrame: latencies.onFrame,
    });
    const backgroundJobs = (await load?.stop()) ?? 0;
    return { figures: figuresOf(latencies, summary.counters, summary.frames, summary.framesDropped, backgroundJobs), rssGrowthMB: summary.rssGrowthMB, rssByLoopMB: summary.rssByLoopMB };
  } finally {
    await load?.stop();
    graph.close();
  }
}

async function udacityRun(r: Resources, loaded: boolean): Promise<RunFigures> {
  const clock = new RealClock();
  const metrics = new PipelineMetrics();
  const intrinsics = builtInIntrinsics('udacity-solidwhiteright')!;
  const signals = new VehicleSignals({ name: 'assumed-udacity-signals', timestamps: 'arrival', clock });
  const feeder = setInterval(() => {
    const nowMs = Date.now();
    signals.push(JSON.stringify({ timestamp: { sec: Math.floor(nowMs / 1000), nsec: (nowMs % 1000) * 1e6 }, speedMps: UDACITY_SPEED_MPS, yawRateRps: 0 }));
  }, SIGNAL_PERIOD_MS);
  const graph = buildRuntimeGraph({
    clock,
    metrics,
    isp: { denoise: 'learned', denoiser: r.denoiser },
    detector: r.detector,
    world: { mounting: await loadCameraMounting('udacity-solidwhiteright'), tracker: r.trackerLowScore, intrinsics },
    hud: { renderer: r.renderer, optics: r.optics, warp: identityWarp(r.optics), recordPanels: false },
    link: { link: r.link, timeBase: 'pipeline' },
    schedule: true,
    guard: true,
    displayLatency: 'measured',
  });
  const camera = new LiveCamera({ source: UDACITY_VIDEO, widthPx: 960, heightPx: 540, clock, pool: new BufferPool({ name: 'camera' }) });
  const load = loaded ? startBackgroundLoad(r.backgroundModel, graph) : undefined;
  const latencies = new LatencyCollector();
  try {
    const summary = await runLive({ camera, clock, metrics, signals, intrinsics, extensions: graph.extensions, watchdog: graph.watchdog, onFrame: latencies.onFrame });
    const backgroundJobs = (await load?.stop()) ?? 0;
    return figuresOf(latencies, summary.counters, summary.frames, summary.camera.framesDropped, backgroundJobs);
  } finally {
    clearInterval(feeder);
    await load?.stop();
    graph.close();
  }
}

function identityWarp(optics: HudOptics) {
  return [
    { region: optics.far.region, mesh: WarpMesh.identity() },
    { region: optics.near.region, mesh: WarpMesh.identity() },
  ];
}

const fmt = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(1));

function line(name: string, f: RunFigures): string {
  return (
    `${name.padEnd(22)} frames ${String(f.frames).padStart(4)} (dropped ${f.dropped})  capture->publish p50 ${fmt(f.e2e.p50Ms)} p99 ${fmt(f.e2e.p99Ms)} ms  ` +
    `safety p50 ${fmt(f.safety.p50Ms)} p99 ${fmt(f.safety.p99Ms)} ms  drops ${f.safetyDrops}  misses ${f.deadlineMisses}  blanks ${f.watchdogEvents}  ` +
    `degrade ${JSON.stringify(f.degradeLevels)}${f.backgroundJobs ? `  background jobs ${f.backgroundJobs}` : ''}`
  );
}

export async function e2eBenchmark(): Promise<Record<string, unknown>> {
  const cacheDir = path.join(PROJECT_ROOT, 'out', 'bench', 'models');
  const work = path.join(os.tmpdir(), `arhud-bench-e2e-${process.pid}`);
  await mkdir(work, { recursive: true });
  const drive = path.join(work, 'pandaset-002.mcap');
  await importPandaset(PANDASET_DIR, drive);
  const cards = await ensureDefaultDetector(DATA_DIR, { cacheDir });
  const trackerLowScore = trackerOptionsForDetector(cards.int8Card.scoreThreshold);
  const optics = new HudOptics(HUD_OPTICS_DEFAULTS);
  const broker = await EmbeddedBroker.start();
  const r: Resources = {
    detector: await Detector.create({ ...cards.int8Card, scoreThreshold: trackerLowScore.lowScore! }),
    denoiser: await LearnedDenoiser.create({ precision: 'int8' }),
    backgroundModel: await LearnedDenoiser.create({ precision: 'int8', intraOpThreads: 1 }),
    renderer: await HudRenderer.create({ widthPx: optics.panel.widthPx, heightPx: optics.panel.heightPx }),
    optics,
    broker,
    link: await HudLink.create({ url: broker.url, vehicleId: 'bench' }),
    trackerLowScore,
  };
  try {
    const out = path.join(work, 'out.mcap');
    // Warm-up: model sessions, shader pipelines, JIT (not reported).
    await pandasetRun(r, drive, out, { loaded: false });
    const pandaset = (await pandasetRun(r, drive, out, { loaded: false })).figures;
    const pandasetLoaded = (await pandasetRun(r, drive, out, { loaded: true })).figures;
    // The host is shared and noisy, and a p99 of ~200 frames is its 2nd-3rd worst frame: the Udacity
    // runs alternate without and with load, UDACITY_PAIRS times, and the figures are medians.
    const udacityRuns: RunFigures[] = [];
    const udacityLoadedRuns: RunFigures[] = [];
    for (let k = 0; k < UDACITY_PAIRS; k++) {
      udacityRuns.push(await udacityRun(r, false));
      udacityLoadedRuns.push(await udacityRun(r, true));
    }
    const medianOf = (runs: RunFigures[], value: (f: RunFigures) => number) => median(runs.map(value));
    const memory = await pandasetRun(r, drive, out, { loops: MEMORY_LOOPS });
    const latencyMs = pandaset.e2e.p50Ms + Number(DISPLAY_TAIL_NS) / 1e6;
    const registration = registrationEvaluationJson(await evaluateRegistration(DATA_DIR, { cacheDir, precision: 'int8', latencyMs, hudSeed: DEFAULT_HUD_SEED }));

    const lines = [
      'end-to-end, full graph in real time (capture -> link publish), 2 cores, CPU only:',
      line('PandaSet 10 Hz 1080p', pandaset),
      line('PandaSet + bg load', pandasetLoaded),
      ...udacityRuns.flatMap((f, k) => [line(`Udacity 25 fps 540p #${k + 1}`, f), line(`Udacity + bg load #${k + 1}`, udacityLoadedRuns[k]!)]),
      `memory: ${MEMORY_LOOPS} loops of PandaSet, RSS by loop ${memory.rssByLoopMB.map((v) => v.toFixed(0)).join(' ')} MB, trend ${memory.rssGrowthMB.toFixed(1)} MB`,
      `registration (latency ${latencyMs.toFixed(0)} ms): median ${fmt(registration.regMedianDeg as number)}, p90 ${fmt(registration.regP90Deg as number)} deg over ${String(registration.samples)} in-view samples`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const all = [pandaset, pandasetLoaded, ...udacityRuns, ...udacityLoadedRuns];
    const safetyDrops = all.reduce((sum, f) => sum + f.safetyDrops, 0);
    const safetyP99Ms = medianOf(udacityRuns, (f) => f.safety.p99Ms);
    const safetyP99MsLoaded = medianOf(udacityLoadedRuns, (f) => f.safety.p99Ms);
    const loadedRatio = safetyP99MsLoaded / safetyP99Ms;
    const e2eP99Ms = medianOf(udacityRuns, (f) => f.e2e.p99Ms);
    process.stdout.write(
      `Udacity medians over ${UDACITY_PAIRS} runs: capture->publish p50 ${fmt(medianOf(udacityRuns, (f) => f.e2e.p50Ms))} p99 ${fmt(e2eP99Ms)} ms (loaded ${fmt(medianOf(udacityLoadedRuns, (f) => f.e2e.p99Ms))}); ` +
        `safety p99 ${fmt(safetyP99Ms)} ms, loaded ${fmt(safetyP99MsLoaded)} ms (x${loadedRatio.toFixed(2)})\n`,
    );
    const result = {
      benchmark: 'e2e',
      e2eP50Ms: medianOf(udacityRuns, (f) => f.e2e.p50Ms),
      e2eP99Ms,
      e2eP99MsLoaded: medianOf(udacityLoadedRuns, (f) => f.e2e.p99Ms),
      safetyP99Ms,
      safetyP99MsLoaded,
      safetyP99LoadedRatio: loadedRatio,
      safetyDrops,
      deadlineMisses: all.reduce((sum, f) => sum + f.deadlineMisses, 0),
      rssGrowthMB: memory.rssGrowthMB,
      rssByLoopMB: memory.rssByLoopMB,
      regMedianDeg: registration.regMedianDeg,
      regP90Deg: registration.regP90Deg,
      regSamples: registration.samples,
      regLatencyMs: latencyMs,
      runs: { pandaset, pandasetLoaded, udacity: udacityRuns, udacityLoaded: udacityLoadedRuns },
      targets: TARGETS,
      met: {
        e2eP99Ms: e2eP99Ms <= TARGETS.e2eP99Ms,
        safetyDrops: safetyDrops === 0,
        loadedSafety: loadedRatio <= TARGETS.loadedSafetyP99Ratio,
        rssFlat: memory.rssGrowthMB < TARGETS.rssGrowthMB,
        registration: (registration.regMedianDeg as number) <= TARGETS.regMedianDeg && (registration.regP90Deg as number) <= TARGETS.regP90Deg,
      },
    };
    return result;
  } finally {
    await r.detector.dispose();
    await r.denoiser.dispose();
    await r.backgroundModel.dispose();
    r.renderer.dispose();
    await r.link.dispose();
    await broker.stop();
    await rm(work, { recursive: true, force: true });
  }
}
