/**
 * `arhud` command line: parses arguments, wires modules, prints progress and summaries. Every
 * error is one line on stderr; exit codes: 0 ok, 1 failed, 2 bad usage, 130 interrupted (the
 * output recording is still finalized).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatLatencyTable } from '../pipeline/metrics.js';
import { firstLine, type RecordingError } from '../pipeline/recording/errors.js';
import { RecordingReader } from '../pipeline/recording/reader.js';
import { runReplay, type ReplaySummary } from '../pipeline/replay.js';
import { importPandaset } from '../pipeline/sources/pandaset.js';
import { MAX_REPLAY_SPEED, MIN_REPLAY_SPEED } from '../pipeline/sources/replay.js';
import { importVideo } from '../pipeline/sources/video.js';
import { isoFromNs } from '../pipeline/time.js';
import { Detector } from '../perception/detect/detector.js';
import { EVAL_SCORE_THRESHOLD, evaluateDetectors, formatEvaluation } from '../perception/detect/evaluate.js';
import { loadModelCard, type ModelCard } from '../perception/detect/model-card.js';
import {
  DEFAULT_HUD_SEED,
  DEFAULT_REGISTRATION_LATENCY_MS,
  evaluateLanes,
  evaluateRegistration,
  evaluateTracking,
  formatRegistrationEvaluation,
  formatWorldEvaluation,
  registrationEvaluationJson,
  worldEvaluationJson,
} from '../perception/evaluate/index.js';
import { trackerOptionsForDetector } from '../perception/track/tracker.js';
import { builtInIntrinsics, loadCameraMounting } from '../perception/world/mounting-file.js';
import { ModelCache, defaultCacheDir } from '../perception/models/cache.js';
import { QDQ_REPORT_FILE, ensureDefaultDetector, type DefaultDetector } from '../perception/models/default-detector.js';
import { HudRenderer, type RegionWarp } from '../render/hud-renderer.js';
import { parseHudScene } from '../render/hud-scene.js';
import { HudOptics } from '../render/optics.js';
import { HUD_OPTICS_DEFAULTS, loadHudOpticsConfig } from '../render/optics-config.js';
import { renderHudSceneToPng } from '../render/render-scene.js';
import { EyeboxWarp, loadWarpMap } from '../render/warp-map.js';
import { WarpMesh } from '../render/warp-mesh.js';
import { addCalibrateCommands } from './calibrate.js';
import { DEFAULT_VEHICLE_ID, addHudCommands } from './hud-commands.js';
import { addIspCommands } from './isp-commands.js';
import { LearnedDenoiser } from '../perception/isp/denoiser/denoiser.js';
import { gainLevelByName } from '../perception/isp/noise-model.js';
import { PipelineMetrics, RealClock } from '../pipeline/index.js';
import { EmbeddedBroker } from '../hud/broker.js';
import { DisplayController } from '../hud/display-controller.js';
import { HudLink } from '../hud/link.js';
import { createProgress } from './progress.js';
import { PERCEPTION_LATE_NS } from '../render/render-stage.js';
import { DemoReportCollector } from './demo-report.js';
import { renderRunReport } from '../pipeline/report/run-report.js';
import { createReadStream } from 'node:fs';
import mqtt from 'mqtt';
import { BufferPool } from '../pipeline/buffer-pool.js';
import { runLive } from '../pipeline/live.js';
import { LiveCamera, redactSource } from '../pipeline/sources/live-camera.js';
import { VehicleSignals } from '../pipeline/sources/vehicle-signals.js';
import { buildRuntimeGraph, type RuntimeGraph } from './runtime-graph.js';
import type { Frame } from '../pipeline/frame.js';

const PROJECT_ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
/** Real data lives beside the project (see ../shared/data/README.md); ARHUD_DATA overrides. */
const DEFAULT_DATA_DIR = process.env.ARHUD_DATA ?? path.resolve(PROJECT_ROOT, '../shared/data');
/** Problems printed one by one before the rest are only counted. */
const MAX_PROBLEM_LINES = 20;
const EXIT_INTERRUPTED = 130;
/**
 * The demo's display drops frames older than this from capture: the next frame of the 10 Hz drive
 * is due 100 ms after the last, and may itself be up to the render stage's perception-late limit
 * old when it comes; a tighter limit would blank the HUD between every two frames.
 */
const DEMO_MAX_FRAME_AGE_MS = 100 + Number(PERCEPTION_LATE_NS) / 1e6;
const DEMO_DRAIN_MS = 300;

class Interrupt {
  readonly controller = new AbortController();
  #signals = 0;
  readonly #onSignal = () => {
    this.#signals++;
    if (this.#signals > 1) process.exit(EXIT_INTERRUPTED);
    process.stderr.write('\narhud: interrupted; finishing the output recording (Ctrl-C again to quit at once)\n');
    this.controller.abort(new Error('interrupted'));
  };

  constructor() {
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
  }
}

function problemPrinter(command: string): (problem: RecordingError) => void {
  let count = 0;
  return (problem) => {
    count++;
    if (count <= MAX_PROBLEM_LINES) process.stderr.write(`arhud ${command}: warning: ${problem.message}\n`);
    else if (count === MAX_PROBLEM_LINES + 1) process.stderr.write(`arhud ${command}: warning: more problems follow; counted in the summary\n`);
  };
}

function parseNumber(name: string, min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || value > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got '${text}'`);
    return value;
  };
}

function parseLoops(text: string | true): number {
  if (text === true) return Infinity;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`--loop takes a whole number of passes >= 1, got '${text}'`);
  return value;
}

function defaultReplayOutput(input: string): string {
  return input.replace(/(\.mcap)?$/i, '.replay.mcap');
}

function printReplaySummary(summary: ReplaySummary, json: boolean): void {
  const lines = [
    `replayed ${summary.frames} frames (${summary.loopsCompleted} loop(s), ${summary.pacing}) from ${summary.input}`,
    `wrote ${summary.messagesWritten} messages to ${summary.output}`,
    `${summary.fps.toFixed(1)} fps, ${summary.xRealtime.toFixed(1)}x real time (${summary.recordedS.toFixed(2)} s recorded in ${summary.wallS.toFixed(2)} s)`,
    `skipped ${summary.messagesSkipped} message(s), dropped ${summary.framesDropped} frame(s), ${summary.problems} problem(s)`,
    `frame buffers: ${summary.pool.allocations} allocated, ${summary.pool.reuses} reused, ${summary.poolAllocsSteadyState} allocated after warm-up`,
    summary.loopsCompleted > 2
      ? `RSS ${summary.rssEndMB.toFixed(1)} MB (trend over ${summary.loopsCompleted} loops ${summary.rssGrowthMB.toFixed(1)} MB; JS heap ${summary.heapGrowthMB.toFixed(1)} MB)`
      : `RSS ${summary.rssEndMB.toFixed(1)} MB`,
    '',
    formatLatencyTable(summary.stages),
  ];
  if (summary.interrupted) lines.unshift('interrupted: the output holds everything replayed so far');
  process.stdout.write(`${lines.join('\n')}\n`);
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
}

type DetectChoice = 'int8' | 'fp32' | 'none';

interface ModelCliOptions {
  data: string;
  cache: string;
  /** A user's model card (e.g. a YOLO export) instead of the default detector. */
  modelCard?: string;
  quiet?: boolean;
}

/** The default detector's model cards, building the cache entry (with a progress bar) on first use. */
async function defaultDetectorCards(opts: ModelCliOptions): Promise<DefaultDetector> {
  const progress = createProgress('models build', { quiet: opts.quiet, unit: 'steps' });
  try {
    return await ensureDefaultDetector(opts.data, { cacheDir: opts.cache, onProgress: (_step, done, total) => progress.update(done, total) });
  } finally {
    progress.stop();
  }
}

/** `cardOverrides`: fields to replace, or a function of the card that returns them. */
async function createDetector(choice: DetectChoice, opts: ModelCliOptions, cardOverrides: Partial<ModelCard> | ((card: ModelCard) => Partial<ModelCard>) = {}): Promise<Detector | undefined> {
  if (choice === 'none') return undefined;
  const card = opts.modelCard ? await loadModelCard(opts.modelCard) : await defaultDetectorCards(opts).then((cards) => (choice === 'int8' ? cards.int8Card : cards.fp32Card));
  return Detector.create({ ...card, ...(typeof cardOverrides === 'function' ? cardOverrides(card) : cardOverrides) });
}

interface HudCliOptions {
  optics?: string;
  warp?: string;
  warpNear?: string;
}

/**
 * Optics from a config file (or the defaults) and each plane's own warp for the eyebox centre, from
 * its warp-map file, or none (identity) until the windshield is calibrated.
 */
async function hudSetup(opts: HudCliOptions): Promise<{ optics: HudOptics; warp: RegionWarp[] }> {
  const optics = new HudOptics(opts.optics ? await loadHudOpticsConfig(opts.optics) : HUD_OPTICS_DEFAULTS);
  const meshFrom = async (file: string | undefined) => (file ? new EyeboxWarp(await loadWarpMap(file)).meshFor(optics.eyeboxCentreM) : WarpMesh.identity());
  return {
    optics,
    warp: [
      { region: optics.far.region, mesh: await meshFrom(opts.warp) },
      { region: optics.near.region, mesh: await meshFrom(opts.warpNear) },
    ],
  };
}

interface ReplayCliOptions extends ModelCliOptions, HudCliOptions {
  hud?: boolean;
  /** Broker URL to publish HUD frames, scenes and camera previews to; true = an embedded broker. */
  publish?: string | true;
  vehicle?: string;
  /** Camera mounting (built-in name or file): runs the world model (tracking, lanes, ADAS) after detection. */
  mounting?: string;
  /** ISP denoiser before detection: 'learned', 'guided' or 'off' (no ISP stage). */
  isp?: 'learned' | 'guided' | 'off';
  ispGain?: string;
  ispPrecision?: 'fp32' | 'int8';
  ispToneMap?: boolean;
  ispImages?: boolean;
  ispBudget?: number;
  /** Run accelerator work (ISP, detection) through the priority scheduler with load-driven degradation. */
  schedule?: boolean;
  /** Called once the broker (if any) is up, before frames flow (the demo starts its display here). */
  beforeRun?: (brokerUrl: string | undefined) => Promise<void>;
  /** Called after the last frame, while the link and broker still run. */
  afterRun?: (summary: ReplaySummary) => Promise<void>;
  /** Each finished frame, in order (before it is released). */
  onFrame?: (frame: Frame) => void;
  detect: DetectChoice;
  output?: string;
  speed: number;
  afap?: boolean;
  start?: number;
  end?: number;
  loop?: number;
  topics?: string[];
  strict?: boolean;
  json?: boolean;
  quiet?: boolean;
}

async function replayCommand(input: string, opts: ReplayCliOptions): Promise<number> {
  const interrupt = new Interrupt();
  // With the world model the tracker needs the detector's boxes down to ByteTrack's low threshold,
  // and takes its high threshold from the detector's own (its model card's) confident level.
  let trackerOptions: ReturnType<typeof trackerOptionsForDetector> | undefined;
  const detector = await createDetector(opts.detect, opts, (card) => {
    if (!opts.mounting) return {};
    trackerOptions = trackerOptionsForDetector(card.scoreThreshold);
    return { scoreThreshold: trackerOptions.lowScore };
  });
  const hud = opts.hud || opts.publish ? await hudSetup(opts) : undefined;
  const renderer = hud ? await HudRenderer.create({ widthPx: hud.optics.panel.widthPx, heightPx: hud.optics.panel.heightPx }) : undefined;
  const broker = opts.publish === true ? await EmbeddedBroker.start() : undefined;
  const brokerUrl = typeof opts.publish === 'string' ? opts.publish : broker?.url;
  if (broker) process.stderr.write(`arhud replay: embedded MQTT broker at ${broker.url}\n`);
  const link = brokerUrl ? await HudLink.create({ url: brokerUrl, vehicleId: opts.vehicle ?? DEFAULT_VEHICLE_ID, log: (line) => process.stderr.write(`arhud replay: ${line}\n`) }) : undefined;
  const denoiser = opts.isp === 'learned' ? await LearnedDenoiser.create({ precision: opts.ispPrecision ?? 'fp32' }) : undefined;
  const progress = createProgress('replay', { quiet: opts.quiet });
  let graph: RuntimeGraph | undefined;
  try {
    const output = opts.output ?? defaultReplayOutput(input);
    const clock = new RealClock();
    const metrics = new PipelineMetrics();
    // Real-time replays run like the vehicle: every stage guarded, staleness judged by each frame's
    // real age. As-fast-as-possible replays stay deterministic (no wall-time decisions).
    const realTime = !opts.afap;
    graph = buildRuntimeGraph({
      clock,
      metrics,
      ...(opts.isp !== undefined
        ? {
            isp: {
              denoise: opts.isp,
              ...(denoiser ? { denoiser } : {}),
              ...(opts.ispGain !== undefined ? { gain: gainLevelByName(opts.ispGain) } : {}),
              toneMap: opts.ispToneMap ?? false,
              writeImages: opts.ispImages ?? false,
              ...(opts.ispBudget !== undefined ? { budgetMs: opts.ispBudget } : {}),
            },
          }
        : {}),
      ...(detector ? { detector } : {}),
      ...(opts.mounting ? { world: { mounting: await loadCameraMounting(opts.mounting), tracker: trackerOptions, intrinsics: builtInIntrinsics(opts.mounting) } } : {}),
      ...(hud && renderer ? { hud: { renderer, optics: hud.optics, warp: hud.warp } } : {}),
      // A replay's capture times are from the day of the drive: the wire carries this run's times.
      ...(link ? { link: { link, publishCamera: true, timeBase: 'pipeline' as const } } : {}),
      schedule: opts.schedule ?? false,
      guard: realTime,
      displayLatency: realTime ? 'measured' : 'assumed',
      log: (line) => process.stderr.write(`arhud replay: ${line}
`),
    });
    await opts.beforeRun?.(brokerUrl);
    const summary = await runReplay({
      extensions: graph.extensions,
      watchdog: graph.watchdog,
      metrics,
      clock,
      ...(opts.onFrame ? { onFrame: opts.onFrame } : {}),
      input,
      output,
      pacing: opts.afap ? 'afap' : { speed: opts.speed },
      topics: opts.topics,
      startS: opts.start,
      endS: opts.end,
      loops: opts.loop ?? 1,
      strict: opts.strict,
      signal: interrupt.signal,
      onProblem: problemPrinter('replay'),
      onProgress: (done, total) => progress.update(done, total),
    });
    progress.stop();
    await writeFile(`${output}.summary.json`, `${JSON.stringify(summary, null, 2)}\n`);
    if (link) {
      const s = link.stats;
      process.stdout.write(`link: ${s.framesPublished} HUD frames published (${s.framesDropped} dropped), ${s.scenesPublished} scenes, ${s.previewsPublished} camera previews to ${brokerUrl}\n`);
    }
    await opts.afterRun?.(summary);
    const runtimeCounters = Object.entries(summary.counters).filter(([k]) => /^(scheduler|watchdog|render\.late|world\.detectionsStale|detect\.)/.test(k));
    if (runtimeCounters.length > 0) process.stdout.write(`runtime: ${runtimeCounters.map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
    printReplaySummary(summary, opts.json ?? false);
    return summary.interrupted ? EXIT_INTERRUPTED : 0;
  } finally {
    progress.stop();
    interrupt.dispose();
    graph?.close();
    await denoiser?.dispose();
    await detector?.dispose();
    renderer?.dispose();
    await link?.dispose();
    await broker?.stop();
  }
}

interface RunCliOptions extends ModelCliOptions, HudCliOptions {
  size: { widthPx: number; heightPx: number };
  fps?: number;
  loop?: boolean;
  inputFormat?: string;
  signals?: string;
  signalsTopic?: string;
  mounting?: string;
  publish?: string | true;
  vehicle: string;
  isp?: 'learned' | 'guided' | 'off';
  ispPrecision?: 'fp32' | 'int8';
  schedule: boolean;
  detect: DetectChoice;
  output?: string;
  duration?: number;
  json?: boolean;
}

/**
 * `arhud run`: live operation. Camera through ffmpeg, vehicle signals from JSON lines (a file, a
 * pipe, '-' for stdin) or an MQTT topic, the full graph, the display link. Runs until the source
 * ends, --duration passes, or Ctrl-C.
 */
async function runCommand(source: string, opts: RunCliOptions): Promise<number> {
  const interrupt = new Interrupt();
  const log = (line: string) => process.stderr.write(`arhud run: ${line}\n`);
  const clock = new RealClock();
  const metrics = new PipelineMetrics();
  const pool = new BufferPool({ name: 'camera' });
  let trackerOptions: ReturnType<typeof trackerOptionsForDetector> | undefined;
  const detector = await createDetector(opts.detect, opts, (card) => {
    if (!opts.mounting) return {};
    trackerOptions = trackerOptionsForDetector(card.scoreThreshold);
    return { scoreThreshold: trackerOptions.lowScore };
  });
  const hud = await hudSetup(opts);
  const renderer = await HudRenderer.create({ widthPx: hud.optics.panel.widthPx, heightPx: hud.optics.panel.heightPx });
  const broker = opts.publish === true || opts.publish === undefined ? await EmbeddedBroker.start() : undefined;
  const brokerUrl = typeof opts.publish === 'string' ? opts.publish : broker!.url;
  if (broker) log(`embedded MQTT broker at ${broker.url}`);
  const link = await HudLink.create({ url: brokerUrl, vehicleId: opts.vehicle, log });
  const denoiser = opts.isp === 'learned' ? await LearnedDenoiser.create({ precision: opts.ispPrecision ?? 'int8' }) : undefined;
  // Signal timestamps come from another clock (the vehicle bus): freshness is judged by arrival.
  const signals = new VehicleSignals({ name: opts.signals ?? opts.signalsTopic ?? 'vehicle-signals', timestamps: 'arrival', clock, log });
  // The signal stream may outlive the camera (a bus feed never ends): stop reading when the run ends.
  const signalsStop = new AbortController();
  interrupt.signal.addEventListener('abort', () => signalsStop.abort(), { once: true });
  const signalsDone = opts.signals
    ? signals.read(opts.signals === '-' ? process.stdin : createReadStream(opts.signals), signalsStop.signal).catch((error: unknown) => log((error as Error).message))
    : undefined;
  const signalsClient = opts.signalsTopic ? await mqtt.connectAsync(brokerUrl, { reconnectPeriod: 1000 }) : undefined;
  if (signalsClient && opts.signalsTopic) {
    const topic = opts.signalsTopic;
    signalsClient.on('message', (t, payload) => void signals.push(payload, t));
    await signalsClient.subscribeAsync(topic, { qos: 0 });
  }
  const camera = new LiveCamera({
    source,
    widthPx: opts.size.widthPx,
    heightPx: opts.size.heightPx,
    clock,
    pool,
    ...(opts.fps !== undefined ? { fps: opts.fps } : {}),
    ...(opts.inputFormat ? { inputFormat: opts.inputFormat } : {}),
    loop: opts.loop ?? false,
    onEvent: (event) => {
      metrics.count(`camera.${event.kind}`);
      if (event.kind === 'stall') log(`camera: no frame for ${event.waitedMs.toFixed(0)} ms (AR overlays age out; waiting)`);
      else if (event.kind === 'resumed') log(`camera: frames again after ${event.stalledMs.toFixed(0)} ms`);
    },
  });
  const intrinsics = opts.mounting ? builtInIntrinsics(opts.mounting) : undefined;
  if (opts.mounting && !intrinsics) log(`no built-in intrinsics for '${opts.mounting}': world-registered overlays need a calibrated camera; the HUD shows status only`);
  const graph = buildRuntimeGraph({
    clock,
    metrics,
    ...(opts.isp ? { isp: { denoise: opts.isp, ...(denoiser ? { denoiser } : {}) } } : {}),
    ...(detector ? { detector } : {}),
    ...(opts.mounting ? { world: { mounting: await loadCameraMounting(opts.mounting), tracker: trackerOptions, ...(intrinsics ? { intrinsics } : {}) } } : {}),
    hud: { renderer, optics: hud.optics, warp: hud.warp, recordPanels: opts.output !== undefined },
    link: { link, timeBase: 'pipeline' },
    schedule: opts.schedule,
    guard: true,
    displayLatency: 'measured',
    log,
  });
  try {
    const summary = await runLive({
      camera,
      clock,
      metrics,
      signals,
      ...(intrinsics ? { intrinsics } : {}),
      extensions: graph.extensions,
      watchdog: graph.watchdog,
      ...(opts.output ? { output: opts.output } : {}),
      ...(opts.duration !== undefined ? { durationS: opts.duration } : {}),
      signal: interrupt.signal,
    });
    const s = link.stats;
    const lines = [
      `ran ${summary.frames} frames in ${summary.wallS.toFixed(1)} s (${summary.fps.toFixed(1)} fps) from ${redactSource(source)}; camera dropped ${summary.camera.framesDropped}, stalls ${summary.camera.stalls}`,
      `link: ${s.framesPublished} HUD frames published (${s.framesDropped} dropped) to ${brokerUrl}`,
      `signals: ${signals.stats.statesAccepted} states accepted, ${signals.stats.linesMalformed + signals.stats.linesInvalid + signals.stats.linesOutOfOrder + signals.stats.linesTooLong} skipped`,
      `runtime: ${Object.entries(summary.counters).filter(([k]) => /^(scheduler\.degrade|watchdog|render\.late|config|camera|signals)/.test(k)).map(([k, v]) => `${k} ${v}`).join(', ') || 'no events'}`,
      opts.output ? `wrote ${summary.messagesWritten} messages to ${opts.output}` : '',
      '',
      formatLatencyTable(summary.stages),
    ].filter((line, i) => line !== '' || i > 4);
    process.stdout.write(`${lines.join('\n')}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary.interrupted ? EXIT_INTERRUPTED : 0;
  } finally {
    interrupt.dispose();
    graph.close();
    signalsStop.abort();
    await signalsDone;
    await signalsClient?.endAsync();
    await denoiser?.dispose();
    await detector?.dispose();
    renderer.dispose();
    await link.dispose();
    await broker?.stop();
  }
}

function parseSize(text: string): { widthPx: number; heightPx: number } {
  const match = /^(\d+)x(\d+)$/.exec(text);
  const widthPx = Number(match?.[1]);
  const heightPx = Number(match?.[2]);
  if (!match || widthPx < 2 || heightPx < 2 || widthPx % 2 || heightPx % 2 || widthPx > 8192 || heightPx > 8192) {
    throw new InvalidArgumentError(`--size takes WIDTHxHEIGHT in px, even, 2..8192 (e.g. 960x540), got '${text}'`);
  }
  return { widthPx, heightPx };
}

async function infoCommand(file: string): Promise<number> {
  const problems = problemPrinter('info');
  const reader = await RecordingReader.open(file, { onProblem: problems });
  try {
    const durationS = Number(reader.endNs - reader.startNs) / 1e9;
    const lines = [
      `${file}: ${reader.messageCount} messages, ${durationS.toFixed(3)} s${reader.indexed ? '' : ' (recovered without index)'}`,
      reader.messageCount > 0 ? `  from ${isoFromNs(reader.startNs)} to ${isoFromNs(reader.endNs)}` : '  (empty)',
      ...reader.topics.map((t) => `  ${t.topic.padEnd(28)} ${String(t.messageCount).padStart(6)}  ${t.schemaName}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await reader.close();
  }
}

const detectOption = () => new Option('--detect <precision>', 'run the default detector (int8, fp32) or not (none)').choices(['int8', 'fp32', 'none']).default('int8');
const dataOption = () => new Option('--data <dir>', 'shared data directory (calibration images, datasets)').default(DEFAULT_DATA_DIR);
const cacheOption = () => new Option('--cache <dir>', 'model cache directory').default(defaultCacheDir());
const modelCardOption = () => new Option('--model-card <file>', 'detect with your own ONNX model (e.g. a YOLOv8 export) described by a model card JSON');

export function createProgram(): Command {
  const program = new Command('arhud')
    .description('Automotive AR head-up display pipeline: import and replay recorded drives (MCAP).')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const importCmd = program.command('import').description('import a dataset or video into an MCAP recording');
  importCmd
    .command('pandaset')
    .description('import a PandaSet sequence (front camera, intrinsics, poses, vehicle state, 3D cuboids)')
    .argument('<dir>', 'sequence directory, e.g. ../shared/data/pandaset-002')
    .requiredOption('-o, --output <file>', 'output recording (.mcap)')
    .option('-q, --quiet', 'no progress bar')
    .action(async (dir: string, opts: { output: string; quiet?: boolean }) => {
      const interrupt = new Interrupt();
      const progress = createProgress('import', { quiet: opts.quiet });
      try {
        const result = await importPandaset(dir, opts.output, { signal: interrupt.signal, onProgress: (d, t) => progress.update(d, t) });
        progress.stop();
        process.stdout.write(
          `imported ${result.frames} frames (${isoFromNs(result.firstNs)} .. ${isoFromNs(result.lastNs)}), ${result.groundTruthObjects} labelled boxes -> ${result.outputPath}${result.aborted ? ' (interrupted)' : ''}\n`,
        );
        process.exitCode = result.aborted ? EXIT_INTERRUPTED : 0;
      } finally {
        progress.stop();
        interrupt.dispose();
      }
    });
  importCmd
    .command('video')
    .description('import a video file (decoded by ffmpeg; timestamps from the stream pts)')
    .argument('<file>', 'video file, e.g. ../shared/data/udacity-lanelines/test_videos/solidWhiteRight.mp4')
    .requiredOption('-o, --output <file>', 'output recording (.mcap)')
    .addOption(new Option('--quality <q>', 'JPEG quality of the stored frames').default(90).argParser(parseNumber('--quality', 1, 100)))
    .option('-q, --quiet', 'no progress bar')
    .action(async (file: string, opts: { output: string; quality: number; quiet?: boolean }) => {
      const interrupt = new Interrupt();
      const progress = createProgress('import', { quiet: opts.quiet });
      try {
        const result = await importVideo(file, opts.output, {
          jpegQuality: opts.quality,
          signal: interrupt.signal,
          onProgress: (d, t) => progress.update(d, t),
        });
        progress.stop();
        process.stdout.write(
          `imported ${result.frames} frames ${result.width}x${result.height} (${isoFromNs(result.firstNs)} .. ${isoFromNs(result.lastNs)}) -> ${result.outputPath}${result.aborted ? ' (interrupted)' : ''}\n`,
        );
        process.exitCode = result.aborted ? EXIT_INTERRUPTED : 0;
      } finally {
        progress.stop();
        interrupt.dispose();
      }
    });

  program
    .command('info')
    .description('list the topics, message counts and time span of a recording')
    .argument('<file>', 'recording (.mcap)')
    .action(async (file: string) => {
      process.exitCode = await infoCommand(file);
    });

  program
    .command('replay')
    .description('replay a recording through the pipeline into a new recording, paced by log time or as fast as possible')
    .argument('<file>', 'recording (.mcap)')
    .option('-o, --output <file>', 'output recording (default: <file>.replay.mcap); a summary goes to <output>.summary.json')
    .addOption(new Option('--speed <x>', `pace factor vs recorded time (${MIN_REPLAY_SPEED}..${MAX_REPLAY_SPEED})`).default(1).argParser(parseNumber('--speed', MIN_REPLAY_SPEED, MAX_REPLAY_SPEED)))
    .addOption(new Option('--afap', 'as fast as possible (deterministic output)').conflicts('speed'))
    .addOption(new Option('--start <s>', 'start this many seconds after the first message').argParser(parseNumber('--start', 0, Number.MAX_SAFE_INTEGER)))
    .addOption(new Option('--end <s>', 'stop this many seconds after the first message').argParser(parseNumber('--end', 0, Number.MAX_SAFE_INTEGER)))
    .addOption(new Option('--loop [n]', 'play n times (forever without n, until Ctrl-C)').argParser(parseLoops))
    .addOption(new Option('--topics <list>', 'comma-separated topics to play').argParser((text) => text.split(',').map((t) => t.trim()).filter(Boolean)))
    .option('--strict', 'stop at the first corrupt or out-of-order message instead of skipping it')
    .addOption(detectOption())
    .addOption(modelCardOption())
    .option('--hud', 'render HUD frames (headless WebGPU) into /hud/frame')
    .option('--optics <file>', 'HUD optics config (JSON); default optics otherwise')
    .option('--warp <file>', 'windshield warp map of the far (AR) plane (JSON); no pre-warp otherwise')
    .option('--warp-near <file>', 'windshield warp map of the near (status) plane (JSON)')
    .option('--mounting <name|file>', "camera mounting on the vehicle (built-in 'pandaset-002', or a JSON file): runs the world model (tracking, lanes, ADAS) whose scene the HUD draws")
    .option('--publish [url]', 'publish HUD frames, scenes and camera previews over MQTT (implies --hud); without a URL, to an embedded broker')
    .option('--vehicle <id>', 'vehicle id in the topics arhud/v1/{id}/... (with --publish)', DEFAULT_VEHICLE_ID)
    .addOption(new Option('--isp <denoiser>', 'ISP stage before detection: the learned denoiser, the guided filter, or off').choices(['learned', 'guided', 'off']))
    .addOption(new Option('--isp-gain <level>', 'the sensor gain the frames were taken at (default: measured in the frames)').choices(['low', 'medium', 'high']))
    .addOption(new Option('--isp-precision <p>', 'ISP: the learned denoiser in FP32 (default) or INT8 (1.7x faster, 0.8-2.4 dB lower)').choices(['fp32', 'int8']))
    .option('--isp-tone-map', 'ISP: local tone mapping (lifts shadows)')
    .option('--isp-images', 'ISP: write the processed frames to /camera/front/isp')
    .option('--schedule', 'run ISP and detection through the priority scheduler (safety > high > normal > background) with load-driven degradation')
    .addOption(new Option('--isp-budget <ms>', 'ISP: degrade (half resolution, then skip) when the stage takes longer').argParser(parseNumber('--isp-budget', 0.1, 1e6)))
    .addOption(dataOption())
    .addOption(cacheOption())
    .option('--json', 'print the summary as one JSON line last')
    .option('-q, --quiet', 'no progress bar')
    .action(async (file: string, opts: ReplayCliOptions) => {
      process.exitCode = await replayCommand(file, opts);
    });

  program
    .command('run')
    .description('live: camera (V4L2 device, stream URL or file, via ffmpeg) + vehicle signals -> full graph -> HUD display link')
    .argument('<source>', '/dev/videoN, a stream URL (rtsp://, udp://, http://...) or a video file (played in real time)')
    .addOption(new Option('--size <WxH>', 'frame size the pipeline works at (ffmpeg scales)').default({ widthPx: 960, heightPx: 540 }, '960x540').argParser(parseSize))
    .addOption(new Option('--fps <n>', 'frame rate (device capture rate; streams/files: converted to it)').argParser(parseNumber('--fps', 1, 240)))
    .option('--loop', 'file source: play it again and again')
    .option('--input-format <fmt>', "ffmpeg demuxer for sources it cannot probe (e.g. 'mjpeg', 'mpegts')")
    .option('--signals <file>', "vehicle signals as JSON lines (arhud.VehicleState), a file or pipe; '-' = stdin")
    .option('--signals-topic <topic>', 'vehicle signals as MQTT messages (arhud.VehicleState JSON) on this topic of the broker')
    .option('--mounting <name|file>', "camera mounting (built-in 'pandaset-002', 'udacity-solidwhiteright', or a JSON file): runs the world model")
    .option('--publish <url>', 'broker to publish the HUD to (default: an embedded broker)')
    .option('--vehicle <id>', 'vehicle id in the topics arhud/v1/{id}/...', DEFAULT_VEHICLE_ID)
    .option('--optics <file>', 'HUD optics config (JSON)')
    .option('--warp <file>', 'windshield warp map of the far (AR) plane (JSON)')
    .option('--warp-near <file>', 'windshield warp map of the near (status) plane (JSON)')
    .addOption(new Option('--isp <denoiser>', 'ISP stage before detection').choices(['learned', 'guided', 'off']))
    .addOption(new Option('--isp-precision <p>', 'ISP: learned denoiser precision (default int8 live)').choices(['fp32', 'int8']))
    .option('--no-schedule', 'run accelerator work without the priority scheduler')
    .addOption(detectOption())
    .addOption(modelCardOption())
    .option('-o, --output <file>', 'record what the pipeline produces (detections, HUD frames, scenes) to this MCAP')
    .addOption(new Option('--duration <s>', 'stop after this many seconds').argParser(parseNumber('--duration', 0.1, 1e9)))
    .addOption(dataOption())
    .addOption(cacheOption())
    .option('--json', 'print the summary as one JSON line last')
    .option('-q, --quiet', 'no progress bar')
    .action(async (source: string, opts: RunCliOptions) => {
      process.exitCode = await runCommand(source, opts);
    });

  const models = program.command('models').description('build and inspect detection models (tfjs -> ONNX -> INT8) in the model cache');
  models
    .command('build')
    .description('convert and quantize the default detector into the cache (skipped when already built)')
    .addOption(dataOption())
    .addOption(cacheOption())
    .option('-q, --quiet', 'no progress bar')
    .action(async (opts: ModelCliOptions) => {
      const cards = await defaultDetectorCards(opts);
      const { manifest } = cards.entry;
      const sizes = Object.entries(manifest.files).map(([file, bytes]) => `${file} ${(bytes / 1e6).toFixed(2)} MB`);
      process.stdout.write(`${cards.built ? 'built' : 'already built'}: ${cards.entry.dir} (${(manifest.buildMs / 1000).toFixed(1)} s)\n  ${sizes.join('\n  ')}\n`);
    });
  models
    .command('list')
    .description('list the cache entries')
    .addOption(cacheOption())
    .action(async (opts: { cache: string }) => {
      const entries = await new ModelCache(opts.cache).list();
      if (entries.length === 0) process.stdout.write(`no models in ${opts.cache} (run \`arhud models build\`)\n`);
      for (const e of entries) {
        const mb = Object.values(e.manifest.files).reduce((a, b) => a + b, 0) / 1e6;
        process.stdout.write(`${e.manifest.name}-${e.manifest.hash}  built ${e.manifest.builtAt}  ${mb.toFixed(1)} MB  ${e.dir}\n`);
      }
    });
  models
    .command('info')
    .description('how a cache entry was built: sources, conversion, calibration, quantization, QDQ error report')
    .argument('[entry]', 'entry directory name (default: the newest)')
    .addOption(cacheOption())
    .action(async (name: string | undefined, opts: { cache: string }) => {
      const entries = await new ModelCache(opts.cache).list();
      const entry = name === undefined ? entries[0] : entries.find((e) => path.basename(e.dir) === name || `${e.manifest.name}-${e.manifest.hash}` === name);
      if (!entry) throw new Error(name === undefined ? `no models in ${opts.cache}` : `no entry '${name}' in ${opts.cache}`);
      process.stdout.write(`${entry.dir}\n${JSON.stringify(entry.manifest, null, 2)}\n`);
      const report = await readFile(path.join(entry.dir, QDQ_REPORT_FILE), 'utf8').catch(() => '');
      if (report) process.stdout.write(`\n${report}`);
    });

  const evalCommand = program.command('eval').description('evaluate perception against ground truth');
  evalCommand
    .command('detect')
    .description('AP@0.5 of the default detector (FP32 and INT8) on a drive with 3D labels (a PandaSet sequence or an imported recording)')
    .argument('<source>', 'PandaSet sequence directory (e.g. ../shared/data/pandaset-002) or .mcap recording')
    .addOption(new Option('--precision <list>', 'comma-separated: fp32,int8 (ignored with --model-card)').default('fp32,int8'))
    .addOption(modelCardOption())
    .addOption(dataOption())
    .addOption(cacheOption())
    .option('--json', 'print the result as one JSON line last')
    .option('-q, --quiet', 'no progress bar')
    .action(async (source: string, opts: ModelCliOptions & { precision: string; json?: boolean }) => {
      const precisions = opts.modelCard ? ['fp32'] : opts.precision.split(',').map((p) => p.trim());
      for (const p of precisions) if (p !== 'fp32' && p !== 'int8') throw new InvalidArgumentError(`--precision takes fp32 and/or int8, got '${p}'`);
      let recording = source;
      if (!source.endsWith('.mcap')) {
        recording = path.join(await mkdtemp(path.join(os.tmpdir(), 'arhud-eval-')), 'drive.mcap');
        await importPandaset(source, recording);
      }
      const detectors = [];
      for (const p of precisions) detectors.push({ name: p, detector: (await createDetector(p as DetectChoice, opts, { scoreThreshold: EVAL_SCORE_THRESHOLD }))! });
      const progress = createProgress('eval', { quiet: opts.quiet });
      try {
        const evaluation = await evaluateDetectors(recording, detectors, { onProgress: (d, t) => progress.update(d, t) });
        progress.stop();
        process.stdout.write(`${formatEvaluation(evaluation)}\n`);
        if (opts.json) {
          const ap = (p: string, c: 'vehicle' | 'person') => evaluation.results[p]?.[c].ap ?? null;
          process.stdout.write(`${JSON.stringify({ frames: evaluation.frames, groundTruth: evaluation.groundTruth, ...Object.fromEntries(precisions.flatMap((p) => [[`apVehicle${p === 'fp32' ? 'Fp32' : 'Int8'}`, ap(p, 'vehicle')], [`apPerson${p === 'fp32' ? 'Fp32' : 'Int8'}`, ap(p, 'person')]])) })}\n`);
        }
      } finally {
        progress.stop();
        for (const { detector } of detectors) await detector.dispose();
      }
    });

  evalCommand
    .command('track')
    .description('tracking (MOTA, IDF1, id switches), 3D position error of tracks and lane detection, on real data with ground truth')
    .argument('[source]', 'PandaSet sequence directory or .mcap recording (default: <data>/pandaset-002)')
    .addOption(new Option('--precision <p>', 'detector precision').choices(['int8', 'fp32']).default('int8'))
    .option('--overlays <dir>', 'write overlay images of tracks and lanes here (look at them)')
    .addOption(dataOption())
    .addOption(cacheOption())
    .option('--json', 'print the result as one JSON line last')
    .option('-q, --quiet', 'no progress bar')
    .action(async (source: string | undefined, opts: { precision: 'int8' | 'fp32'; overlays?: string; data: string; cache: string; json?: boolean; quiet?: boolean }) => {
      const progress = createProgress('eval track', { quiet: opts.quiet });
      try {
        const track = await evaluateTracking(opts.data, {
          source,
          cacheDir: opts.cache,
          precision: opts.precision,
          overlayDir: opts.overlays && path.join(opts.overlays, 'tracks'),
          onProgress: (d, t) => progress.update(d, t),
        });
        const lanes = await evaluateLanes(opts.data, { overlayDir: opts.overlays && path.join(opts.overlays, 'lanes') });
        progress.stop();
        process.stdout.write(`${formatWorldEvaluation(track, lanes)}\n`);
        if (opts.json) process.stdout.write(`${JSON.stringify(worldEvaluationJson(track, lanes))}\n`);
      } finally {
        progress.stop();
      }
    });

  evalCommand
    .command('registration')
    .description('end-to-end registration: angle from the eye between each tracked object\'s HUD marker (through the simulated, calibrated windshield) and the real object at display time, with and without latency compensation')
    .argument('[source]', 'PandaSet sequence directory or .mcap recording (default: <data>/pandaset-002)')
    .addOption(new Option('--precision <p>', 'detector precision').choices(['int8', 'fp32']).default('int8'))
    .addOption(new Option('--latency-ms <ms>', 'capture-to-display latency (the render stage assumes 100 ms)').default(DEFAULT_REGISTRATION_LATENCY_MS).argParser(parseNumber('--latency-ms', 0, 10_000)))
    .addOption(
      new Option('--hud-seed <n>', 'manufacturing-tolerance draw of the simulated HUD').default(DEFAULT_HUD_SEED).argParser((text) => {
        const value = Number(text);
        if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`--hud-seed must be a whole number >= 0, got '${text}'`);
        return value;
      }),
    )
    .option('--warp <file>', 'far-plane warp map to use instead of calibrating one from simulated captures')
    .option('--optics <file>', 'HUD optics config (JSON)')
    .addOption(dataOption())
    .addOption(cacheOption())
    .option('--json', 'print the result as one JSON line last')
    .option('-q, --quiet', 'no progress bar')
    .action(
      async (
        source: string | undefined,
        opts: { precision: 'int8' | 'fp32'; latencyMs: number; hudSeed: number; warp?: string; optics?: string; data: string; cache: string; json?: boolean; quiet?: boolean },
      ) => {
        const opticsConfig = opts.optics ? await loadHudOpticsConfig(opts.optics) : HUD_OPTICS_DEFAULTS;
        const warpMap = opts.warp ? await loadWarpMap(opts.warp) : undefined;
        const progress = createProgress('eval registration', { quiet: opts.quiet });
        try {
          const evaluation = await evaluateRegistration(opts.data, {
            source,
            cacheDir: opts.cache,
            precision: opts.precision,
            latencyMs: opts.latencyMs,
            hudSeed: opts.hudSeed,
            opticsConfig,
            ...(warpMap ? { warpMap } : {}),
            onProgress: (d, t) => progress.update(d, t),
          });
          progress.stop();
          process.stdout.write(`${formatRegistrationEvaluation(evaluation)}\n`);
          if (opts.json) process.stdout.write(`${JSON.stringify(registrationEvaluationJson(evaluation))}\n`);
        } finally {
          progress.stop();
        }
      },
    );

  program
    .command('render')
    .description('render one HudScene (JSON) to a PNG of the HUD panel, for inspection')
    .requiredOption('--scene <file>', 'HudScene JSON')
    .requiredOption('-o, --output <file>', 'output PNG')
    .option('--optics <file>', 'HUD optics config (JSON)')
    .option('--warp <file>', 'windshield warp map of the far (AR) plane (JSON)')
    .option('--warp-near <file>', 'windshield warp map of the near (status) plane (JSON)')
    .action(async (opts: HudCliOptions & { scene: string; output: string }) => {
      const scene = parseHudScene(await readFile(opts.scene, 'utf8'), opts.scene);
      const { optics, warp } = await hudSetup(opts);
      const png = await renderHudSceneToPng(scene, { optics, warp, displayTimeNs: scene.tCaptureNs });
      await writeFile(opts.output, png);
      process.stdout.write(`rendered ${scene.primitives.length} primitive(s) -> ${opts.output}\n`);
    });

  addCalibrateCommands(program);
  addHudCommands(program);
  addIspCommands(program, DEFAULT_DATA_DIR);

  program
    .command('demo')
    .description('the full graph on the PandaSet drive in real time (ISP -> detect INT8 -> lanes -> track -> world -> ADAS -> render -> link -> display controller), with a Foxglove recording and an HTML report')
    .option('--data <dir>', 'shared data directory', DEFAULT_DATA_DIR)
    .option('--out <dir>', 'where recordings, summaries and the report go', path.join(PROJECT_ROOT, 'out'))
    .addOption(detectOption())
    .addOption(cacheOption())
    .option('--json', 'print the replay summary as one JSON line last')
    .action(async (opts: { data: string; out: string; json?: boolean; detect: DetectChoice; cache: string }) => {
      await mkdir(opts.out, { recursive: true });
      const drive = path.join(opts.out, 'pandaset-002.mcap');
      const output = path.join(opts.out, 'pandaset-002.replay.mcap');
      const reportFile = path.join(opts.out, 'demo-report.html');
      process.stdout.write(`arhud demo: importing ${path.join(opts.data, 'pandaset-002')} (PandaSet, Hesai & Scale AI, CC BY 4.0)\n`);
      const progress = createProgress('import');
      const imported = await importPandaset(path.join(opts.data, 'pandaset-002'), drive, { onProgress: (d, t) => progress.update(d, t) });
      progress.stop();
      process.stdout.write(`imported ${imported.frames} frames, ${imported.groundTruthObjects} labelled boxes -> ${drive}\n\n`);
      // The reference display controller on the embedded broker shows what the pipeline publishes.
      let display: DisplayController | undefined;
      const latenciesMs: number[] = [];
      const mounting = await loadCameraMounting('pandaset-002');
      const collector = new DemoReportCollector(mounting);
      const displayLines: string[] = [];
      process.exitCode = await replayCommand(drive, {
        output,
        speed: 1,
        json: opts.json,
        detect: opts.detect,
        data: opts.data,
        cache: opts.cache,
        hud: true,
        mounting: 'pandaset-002',
        publish: true,
        vehicle: DEFAULT_VEHICLE_ID,
        // The vehicle's configuration: learned ISP (INT8 on this CPU) and the shared-accelerator scheduler.
        isp: 'learned',
        ispPrecision: 'int8',
        schedule: true,
        quiet: true,
        onFrame: collector.onFrame,
        beforeRun: async (brokerUrl) => {
          display = await DisplayController.create({ url: brokerUrl!, vehicleId: DEFAULT_VEHICLE_ID, maxFrameAgeMs: DEMO_MAX_FRAME_AGE_MS, log: (line) => process.stderr.write(`arhud demo: ${line}\n`) });
          display.onFrame((frame) => latenciesMs.push(Number(frame.shownNs - frame.header.tCaptureNs) / 1e6));
        },
        afterRun: async (summary) => {
          if (!display) return;
          // QoS 0 frames in flight on loopback arrive within milliseconds; give them a moment.
          await new Promise((resolve) => setTimeout(resolve, DEMO_DRAIN_MS));
          const s = display.stats;
          const sorted = [...latenciesMs].sort((a, b) => a - b);
          const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1) : 'n/a');
          displayLines.push(
            `display controller: ${s.framesReceived} HUD frames received, ${s.framesShown} shown, ${s.framesDroppedStale} dropped as older than ${DEMO_MAX_FRAME_AGE_MS} ms, ${s.sequenceGaps} sequence gaps; ` +
              `capture-to-display latency p50 ${at(0.5)} ms, p99 ${at(0.99)} ms`,
          );
          await display.dispose();
          const optics = new HudOptics(HUD_OPTICS_DEFAULTS);
          const html = renderRunReport({
            title: `arhud demo: PandaSet 002 in real time (${summary.frames} frames)`,
            summaryLines: [...displayLines, `replay: ${summary.frames} frames, ${summary.framesDropped} dropped at entry, ${summary.fps.toFixed(1)} fps, ${summary.xRealtime.toFixed(2)}x real time`],
            frames: collector.frames,
            counters: summary.counters,
            samples: await collector.samples(optics, optics.panel),
          });
          await writeFile(reportFile, html);
        },
      });
      process.stdout.write(
        `${displayLines.join('\n')}\n` +
          `recording (open in Foxglove: camera, detections, HUD frames, scene, metrics): ${output}\n` +
          `report (per-stage latency, timeline, driver's view): ${reportFile}\n`,
      );
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
      process.exitCode = 0;
      return;
    }
    if (code?.startsWith('commander.')) {
      process.exitCode = 2;
      return;
    }
    const command = argv.slice(2).find((arg) => !arg.startsWith('-')) ?? 'arhud';
    process.stderr.write(`arhud ${command}: ${firstLine(error)}\n`);
    process.exitCode = 1;
  }
}

