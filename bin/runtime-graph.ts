/**
 * The full graph, composed once for every use: `arhud replay`, `arhud run`, the demo and the
 * end-to-end benchmark all run ISP -> detect -> track -> lanes -> ADAS -> watchdog check -> render
 * -> link from here, so what is measured is what ships.
 *
 * - The accelerator scheduler (optional) takes the ISP as normal-class and detection as
 *   safety-class work; the degradation policy thins the lower classes first.
 * - The watchdog (optional) guards every stage: a throw, a hang or garbage output blanks the AR
 *   overlays (status only, degraded indicator) until the stages are healthy again.
 */
import type { Clock, PipelineMetrics } from '../pipeline/index.js';
import type { CameraIntrinsics, Frame } from '../pipeline/frame.js';
import { TOPIC_FRAME_METRICS, frameMetricsCodec, type FrameMetricsMessage } from '../pipeline/recording/topics.js';
import type { ReplayExtensionFactory } from '../pipeline/replay.js';
import { captureToPublishMs } from '../pipeline/live.js';
import { AcceleratorScheduler, DegradationPolicy, createRuntimeControls, degradationExtension, type RuntimeControls } from '../pipeline/scheduler.js';
import { StageWatchdog, watchdogCheckStage } from '../pipeline/watchdog.js';
import type { Detector } from '../perception/detect/detector.js';
import { detectExtension } from '../perception/detect/stage.js';
import type { LearnedDenoiser } from '../perception/isp/denoiser/denoiser.js';
import type { SensorGainLevel } from '../perception/isp/noise-model.js';
import { ispExtension } from '../perception/isp/stage.js';
import type { TrackerOptions } from '../perception/track/tracker.js';
import type { CameraMounting } from '../perception/world/camera-model.js';
import { worldExtension } from '../perception/world/stage.js';
import type { HudRenderer, RegionWarp } from '../render/hud-renderer.js';
import { HudOptics } from '../render/optics.js';
import { HudOverlayScene } from '../render/overlay-scene.js';
import { renderExtension, type HudView } from '../render/render-stage.js';
import type { HudOpticsConfig } from '../render/optics-config.js';
import { EyeboxWarp, type WarpMap } from '../render/warp-map.js';
import { WarpMesh } from '../render/warp-mesh.js';
import type { HudLink } from '../hud/link.js';
import type { HudConfigKind } from '../hud/topics.js';
import { linkExtension } from '../hud/link-stage.js';

export interface RuntimeGraphOptions {
  clock: Clock;
  /** Metrics the scheduler and policy record into (pass the run's, so one summary shows everything). */
  metrics: PipelineMetrics;
  /** ISP before detection; undefined = no ISP stage. */
  isp?: {
    denoise: 'learned' | 'guided' | 'off';
    denoiser?: LearnedDenoiser;
    gain?: SensorGainLevel;
    toneMap?: boolean;
    writeImages?: boolean;
    budgetMs?: number;
  };
  detector?: Detector;
  /** The world model (tracking, lanes, ADAS); needs where the camera sits. */
  world?: { mounting: CameraMounting; tracker?: TrackerOptions; intrinsics?: CameraIntrinsics };
  hud?: { renderer: HudRenderer; optics: HudOptics; warp: readonly RegionWarp[]; recordPanels?: boolean };
  link?: { link: HudLink; publishCamera?: boolean; timeBase: 'sensor' | 'pipeline' };
  /** Run accelerator work through the priority scheduler with load-driven degradation. */
  schedule?: boolean;
  /** Guard every stage with the watchdog (safe blanking on faults and overruns). */
  guard?: boolean;
  /** 'measured' (live, real-time replay): the staleness guard uses each frame's real age. Default 'assumed'. */
  displayLatency?: 'assumed' | 'measured';
  /** One line per watchdog event. */
  log?: (line: string) => void;
  /** Write each frame's runtime metrics to '/pipeline/metrics' in the output recording. Default true. */
  recordMetrics?: boolean;
}

const round2 = (ms: number) => Math.round(ms * 100) / 100;

/** How the runtime handled `frame` (call once it has passed every stage up to the link). */
export function frameMetricsOf(frame: Frame): FrameMetricsMessage {
  const stageMs: Record<string, number> = {};
  for (const s of frame.stamps) stageMs[s.stage] = round2(Number(s.tExitNs - s.tEnterNs) / 1e6);
  const latencyMs = captureToPublishMs(frame);
  return {
    tNs: frame.tCaptureNs,
    seq: frame.seq,
    stageMs,
    ...(latencyMs !== undefined ? { captureToPublishMs: round2(latencyMs) } : {}),
    degradationLevel: frame.degradationLevel ?? 0,
    safeBlank: frame.safeBlank ?? false,
    degraded: frame.hudScene?.degraded ?? false,
    faults: (frame.stageFaults ?? []).map((f) => `${f.stage} ${f.kind}: ${f.message}`),
  };
}

export interface RuntimeGraph {
  extensions: ReplayExtensionFactory[];
  /** Pass to the runner (runReplay / runLive) so it guards every stage. */
  watchdog?: StageWatchdog;
  scheduler?: AcceleratorScheduler;
  policy?: DegradationPolicy;
  /** The policy's current decision (what the stages read). */
  controls?: RuntimeControls;
  /** Stops the scheduler (queued jobs are refused). */
  close(): void;
}

export function buildRuntimeGraph(options: RuntimeGraphOptions): RuntimeGraph {
  const { clock, metrics } = options;
  const scheduler = options.schedule ? new AcceleratorScheduler({ clock, metrics }) : undefined;
  const policy = scheduler ? new DegradationPolicy({ metrics }) : undefined;
  const controls = scheduler ? createRuntimeControls() : undefined;
  const scheduling = scheduler && controls ? { scheduler, controls } : {};
  const watchdog = options.guard ? new StageWatchdog({ clock, metrics, log: options.log }) : undefined;

  const extensions: ReplayExtensionFactory[] = [];
  if (scheduler && policy && controls) extensions.push(degradationExtension(scheduler, policy, controls));
  const isp = options.isp;
  if (isp && (isp.denoise !== 'off' || isp.toneMap)) {
    extensions.push(
      ispExtension({
        denoise: isp.denoise,
        ...(isp.denoiser ? { denoiser: isp.denoiser } : {}),
        ...(isp.gain ? { gain: isp.gain } : {}),
        toneMap: isp.toneMap ?? false,
        writeImages: isp.writeImages ?? false,
        ...(isp.budgetMs !== undefined ? { budgetMs: isp.budgetMs } : {}),
        ...scheduling,
      }),
    );
  }
  if (options.detector) extensions.push(detectExtension(options.detector, scheduling));
  if (options.world) extensions.push(worldExtension(options.world));
  // After every perception stage, before rendering: the frame's faults decide its blanking.
  if (watchdog) extensions.push((context) => ({ stages: [watchdogCheckStage(watchdog, context)] }));
  const hud = options.hud;
  let view: HudView | undefined;
  if (hud) {
    view = { overlay: new HudOverlayScene(hud.optics), warp: hud.warp };
    extensions.push(
      renderExtension({
        renderer: hud.renderer,
        view,
        displayLatency: options.displayLatency ?? 'assumed',
        recordPanels: hud.recordPanels ?? true,
      }),
    );
  }
  if (options.link) extensions.push(linkExtension(options.link.link, { publishCamera: options.link.publishCamera ?? false, timeBase: options.link.timeBase }));
  if (options.recordMetrics ?? true) {
    extensions.push(() => ({
      writeOutputs: (frame, writer, logTimeNs) => writer.write(TOPIC_FRAME_METRICS, frameMetricsCodec, logTimeNs, frameMetricsOf(frame)),
    }));
  }
  if (options.link && hud && view) {
    const target = view;
    options.link.link.onConfig((kind, config) => applyHudConfig(kind, config, { target, hud, metrics, log: options.log ?? (() => {}) }));
  }
  return { extensions, watchdog, scheduler, policy, controls, close: () => scheduler?.close() };
}

/**
 * A config push accepted by the link (already schema-validated there) applied to the running
 * graph: optics and windshield calibration swap the render stage's view from the next frame; a
 * config the renderer cannot take (another panel size) is refused and logged, the view in use
 * stays. Pipeline settings (detector choice, brightness) take effect at the next start.
 */
export function applyHudConfig(
  kind: HudConfigKind,
  config: unknown,
  context: { target: HudView; hud: NonNullable<RuntimeGraphOptions['hud']>; metrics: PipelineMetrics; log: (line: string) => void },
): boolean {
  const { target, hud, metrics, log } = context;
  const refuse = (why: string) => {
    metrics.count(`config.${kind}.refused`);
    log(`config/${kind}: not applied: ${why}`);
    return false;
  };
  try {
    if (kind === 'optics') {
      const optics = new HudOptics(config as HudOpticsConfig);
      const { widthPx, heightPx } = optics.panel;
      if (widthPx !== hud.renderer.widthPx || heightPx !== hud.renderer.heightPx) {
        return refuse(`panel ${widthPx}x${heightPx} px differs from the running renderer's ${hud.renderer.widthPx}x${hud.renderer.heightPx}`);
      }
      const previous = target.overlay;
      target.overlay = new HudOverlayScene(optics);
      // Warp meshes belong to plane regions; new regions start unwarped until a calibration comes.
      target.warp = [
        { region: optics.far.region, mesh: WarpMesh.identity() },
        { region: optics.near.region, mesh: WarpMesh.identity() },
      ];
      hud.optics = optics;
      (previous as Partial<HudOverlayScene>).dispose?.();
    } else if (kind === 'calibration') {
      const mesh = new EyeboxWarp(config as WarpMap).meshFor(hud.optics.eyeboxCentreM);
      const regions = Array.isArray(target.warp) ? (target.warp as readonly RegionWarp[]) : [];
      target.warp = [{ region: hud.optics.far.region, mesh }, ...regions.filter((r) => r.region !== hud.optics.far.region)];
    } else {
      metrics.count(`config.${kind}.deferred`);
      log(`config/${kind}: accepted; takes effect at the next start`);
      return false;
    }
  } catch (error) {
    return refuse((error as Error).message);
  }
  metrics.count(`config.${kind}.applied`);
  log(`config/${kind}: applied from the next frame`);
  return true;
}
