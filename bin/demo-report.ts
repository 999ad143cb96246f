/**
 * What the demo keeps of a run for its HTML report: every frame's stage stamps and safety decisions,
 * and a few frames' camera image and unwarped HUD panel, turned into driver's-view pictures after
 * the run (so composing them never slows the real-time graph).
 */
import type { CameraIntrinsics, Frame } from '../pipeline/frame.js';
import type { ReportFrame, ReportSample } from '../pipeline/report/run-report.js';
import type { CameraMounting } from '../perception/world/camera-model.js';
import { driversView } from '../render/drivers-view.js';
import type { HudScene } from '../render/hud-scene.js';
import type { HudOptics } from '../render/optics.js';
import { frameMetricsOf } from './runtime-graph.js';

/** Keep a driver's-view sample every this many frames (PandaSet: one per 1.5 s). */
export const SAMPLE_EVERY_FRAMES = 15;
export const MAX_SAMPLES = 6;

interface Capture {
  seq: number;
  cameraRgb: Uint8Array;
  widthPx: number;
  heightPx: number;
  intrinsics: CameraIntrinsics;
  panelRgba: Uint8Array;
  caption: string;
}

/** The most severe warning the scene shows, or 'none'. */
function warningOf(scene: HudScene | undefined): string {
  const levels = (scene?.primitives ?? []).flatMap((p) => (p.kind === 'forward-collision' ? [p.level] : p.kind === 'lane-departure' ? ['warning'] : []));
  const order = ['critical', 'warning', 'caution'];
  return order.find((level) => levels.includes(level as never)) ?? 'none';
}

export class DemoReportCollector {
  readonly frames: ReportFrame[] = [];
  readonly #captures: Capture[] = [];
  readonly #mounting: CameraMounting;

  constructor(mounting: CameraMounting) {
    this.#mounting = mounting;
  }

  /** For runReplay's onFrame: called once per finished frame, before it is released. */
  readonly onFrame = (frame: Frame): void => {
    const metrics = frameMetricsOf(frame);
    const warning = warningOf(frame.hudScene);
    this.frames.push({
      seq: frame.seq,
      stamps: frame.stamps.map((s) => ({ stage: s.stage, tEnterNs: s.tEnterNs, tExitNs: s.tExitNs })),
      ...(metrics.captureToPublishMs !== undefined ? { endToEndMs: metrics.captureToPublishMs } : {}),
      degradationLevel: metrics.degradationLevel,
      safeBlank: metrics.safeBlank,
      faults: metrics.faults,
      ...(frame.detections ? { detections: frame.detections.length } : {}),
      warning,
    });
    if (frame.seq % SAMPLE_EVERY_FRAMES !== 0 || this.#captures.length >= MAX_SAMPLES || !frame.hudPanelRecord || !frame.hudSizePx || !frame.camera) return;
    const packed = frame.image.isPacked ? frame.image : frame.image.copy();
    const bytes = packed.data as Uint8Array;
    this.#captures.push({
      seq: frame.seq,
      cameraRgb: bytes.slice(packed.offset, packed.offset + packed.width * packed.height * 3),
      widthPx: packed.width,
      heightPx: packed.height,
      intrinsics: frame.camera,
      panelRgba: frame.hudPanelRecord,
      caption:
        `frame ${frame.seq}: ${frame.detections?.length ?? 'no'} detections, warning ${warning}, ` +
        `capture->publish ${metrics.captureToPublishMs?.toFixed(1) ?? 'n/a'} ms, degradation level ${metrics.degradationLevel}${metrics.safeBlank ? ', AR blanked' : ''}`,
    });
  };

  /** The kept frames as driver's-view JPEGs (camera + HUD light through the unwarped virtual image). */
  async samples(optics: HudOptics, panel: { widthPx: number; heightPx: number }): Promise<ReportSample[]> {
    const samples: ReportSample[] = [];
    for (const c of this.#captures) {
      const jpeg = await driversView({
        cameraRgb: c.cameraRgb,
        widthPx: c.widthPx,
        heightPx: c.heightPx,
        camera: { fx: c.intrinsics.fx, fy: c.intrinsics.fy, cx: c.intrinsics.cx, cy: c.intrinsics.cy, pitchRad: this.#mounting.pitchRad, yawRad: this.#mounting.yawRad },
        panelRgba: c.panelRgba,
        panelWidthPx: panel.widthPx,
        panelHeightPx: panel.heightPx,
        optics,
      });
      samples.push({ caption: c.caption, jpeg });
    }
    return samples;
  }
}
