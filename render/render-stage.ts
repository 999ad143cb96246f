/**
 * Rendering as a pipeline stage: builds the HudScene for a frame, updates the overlay scene for the
 * predicted display time, renders it through the warp mesh, and keeps the panel image as PNG so
 * replay writes it to the output recording ('/hud/frame', foxglove.CompressedImage).
 */
import type * as THREE from 'three/webgpu';
import { stage, TOPIC_HUD_FRAME, compressedImageCodec, type Frame } from '../pipeline/index.js';
import type {} from '../pipeline/watchdog.js';
import type { ReplayExtensionFactory } from '../pipeline/replay.js';
import type { HudRenderer, RegionWarp } from './hud-renderer.js';
import { encodePanelPng } from './render-scene.js';
import { HUD_SCENE_VERSION, type HudScene } from './hud-scene.js';
import type { WarpMesh } from './warp-mesh.js';

declare module '../pipeline/frame.js' {
  interface Frame {
    /**
     * Set by the render stage when panels are recorded: the frame's own copy of the panel (RGBA8),
     * PNG-encoded only when the recording is written, after the link has published (off the
     * capture-to-display path).
     */
    hudPanelRecord?: Uint8Array;
    /**
     * Set by the render stage: the HUD panel as RGBA8 (row 0 = top), a view of the stage's one
     * readback buffer, valid until the next frame is rendered: read it synchronously in the stage
     * right after render (e.g. the display link encodes it at once), or copy it.
     */
    hudRgba?: Uint8Array;
    /** Set by the render stage: the scene the panel shows (the display link publishes it on hud/scene). */
    hudScene?: HudScene;
    /** Size of `hudRgba`, pixels. */
    hudSizePx?: Readonly<{ widthPx: number; heightPx: number }>;
  }
}

/** Capture-to-display latency assumed when predicting where to draw (camera, perception, render, link). */
export const ASSUMED_DISPLAY_LATENCY_NS = 100_000_000n;
/** Deadline of one render, ms (the CPU WebGPU path takes ~6 ms alone, 3x that beside detection). */
export const RENDER_DEADLINE_MS = 50;
/** From the end of rendering to light on the windshield: link, display controller, scan-out (measured live: ~5 ms link + one 60 Hz refresh). */
export const DISPLAY_TAIL_NS = 20_000_000n;
/** Perception this late at display is not drawn registered to the road (half the world content's 300 ms validity). */
export const PERCEPTION_LATE_NS = 150_000_000n;
/** How long status content from one frame stays valid. */
export const STATUS_VALIDITY_NS = 300_000_000n;

/** What the render stage needs of an overlay scene (HudOverlayScene implements it). */
export interface OverlayScene {
  readonly scene: THREE.Scene;
  readonly camera: THREE.Camera;
  update(hudScene: HudScene, displayTimeNs: bigint, motion?: { speedMps: number; yawRateRps: number; dtS: number }): void;
}

/**
 * The scene the pipeline can say today: vehicle speed on the near plane. World-registered content
 * (lanes, objects, warnings) arrives with the world-model and ADAS stages.
 */
export function statusScene(frame: Frame): HudScene {
  return {
    version: HUD_SCENE_VERSION,
    tCaptureNs: frame.tCaptureNs,
    brightness: 'day',
    degraded: frame.vehicle === undefined,
    primitives: frame.vehicle ? [{ kind: 'speed', speedMps: Math.max(0, frame.vehicle.speedMps), validUntilNs: frame.tCaptureNs + STATUS_VALIDITY_NS }] : [],
  };
}

/**
 * What the render stage draws by default: while the watchdog withholds AR overlays (a stage failed
 * or overran: `frame.safeBlank`), status content only, flagged degraded; else the world model's
 * scene, else statusScene. What is drawn is also what the link publishes (the stage stores it in
 * frame.hudScene).
 */
export function defaultSceneOf(frame: Frame): HudScene {
  if (frame.safeBlank) return { ...statusScene(frame), degraded: true };
  return frame.hudScene ?? statusScene(frame);
}

/**
 * What the render stage draws with. Read at every frame, so a config push (new optics, a new
 * windshield calibration) takes effect from the next frame without a restart.
 */
export interface HudView {
  overlay: OverlayScene;
  /** One mesh over the panel, or one per plane region. */
  warp: WarpMesh | readonly RegionWarp[];
}

export interface RenderStageOptions {
  renderer: HudRenderer;
  view: HudView;
  /**
   * How the display time is predicted. 'assumed' (default; deterministic replays): capture time +
   * ASSUMED_DISPLAY_LATENCY_NS. 'measured' (live and real-time replay): capture time + the time the
   * frame has already spent in the pipeline + DISPLAY_TAIL_NS; this is the staleness guard —
   * content past its validity at that time is not drawn, and a frame older than PERCEPTION_LATE_NS
   * shows the degraded indicator instead of AR overlays (counted `render.late`).
   */
  displayLatency?: 'assumed' | 'measured';
  /** Write every rendered panel to '/hud/frame' in the output recording (PNG). Default true. */
  recordPanels?: boolean;
  /** Scene for a frame. Default: status only while `frame.safeBlank` (watchdog), else `frame.hudScene` (set by the world stage), else statusScene. */
  sceneOf?: (frame: Frame) => HudScene;
}

/** Time since the frame entered the pipeline (its first stage stamp), ns; 0 without stamps. */
function elapsedInPipelineNs(frame: Frame, nowNs: bigint): bigint {
  const entered = frame.stamps[0]?.tEnterNs;
  return entered === undefined ? 0n : nowNs - entered;
}

/** The render stage plus its '/hud/frame' output, for runReplay. */
export function renderExtension(options: RenderStageOptions): ReplayExtensionFactory {
  // The world model's scene when a world stage ran, else what the pipeline can say on its own.
  const sceneOf = options.sceneOf ?? defaultSceneOf;
  const { renderer, view } = options;
  const measured = options.displayLatency === 'measured';
  const recordPanels = options.recordPanels ?? true;
  let rgba: Uint8Array | undefined;
  const hudSizePx = Object.freeze({ widthPx: renderer.widthPx, heightPx: renderer.heightPx });
  return (context) => ({
    stages: [
      stage(
        'render',
        async (frame) => {
          const latencyNs = measured ? elapsedInPipelineNs(frame, context.clock.nowNs()) + DISPLAY_TAIL_NS : ASSUMED_DISPLAY_LATENCY_NS;
          const displayTimeNs = frame.tCaptureNs + latencyNs;
          const vehicle = frame.vehicle;
          let scene = sceneOf(frame);
          if (latencyNs > PERCEPTION_LATE_NS && !scene.degraded) {
            context.metrics.count('render.late');
            scene = { ...scene, degraded: true };
          }
          frame.hudScene = scene;
          const { overlay, warp } = view;
          overlay.update(scene, displayTimeNs, vehicle ? { speedMps: vehicle.speedMps, yawRateRps: vehicle.yawRateRps, dtS: Number(latencyNs) / 1e9 } : undefined);
          rgba = await renderer.render(overlay.scene, overlay.camera, warp, rgba);
          frame.hudRgba = rgba;
          frame.hudSizePx = hudSizePx;
          if (recordPanels) frame.hudPanelRecord = rgba.slice();
        },
        { ...context, deadlineMs: RENDER_DEADLINE_MS },
      ),
    ],
    writeOutputs: async (frame, writer, logTimeNs) => {
      if (!frame.hudPanelRecord) return;
      // Mostly black panels: fast, small PNGs.
      const png = await encodePanelPng(frame.hudPanelRecord, renderer.widthPx, renderer.heightPx, 1);
      await writer.write(TOPIC_HUD_FRAME, compressedImageCodec, logTimeNs, { tNs: frame.tCaptureNs, frameId: 'hud_panel', format: 'png', data: png });
    },
  });
}
