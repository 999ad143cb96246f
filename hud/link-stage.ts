/**
 * The HUD link as a replay stage: after rendering, publishes the frame's HUD panel (and its scene,
 * and optionally the camera JPEG for the viewer) through a HudLink. Publishing never blocks the
 * pipeline: the link queues (bounded) or drops by its own rules.
 */
import { compressedImageCodec, stage, type Frame } from '../pipeline/index.js';
import type { ReplayExtensionFactory } from '../pipeline/replay.js';
import type {} from '../render/render-stage.js';
import { epochNowNs, type HudLink } from './link.js';

// `frame.hudRgba`, `frame.hudSizePx` and `frame.hudScene` come from render/render-stage.ts.

/** Deadline of handing one frame to the link, ms (encoding and queueing; the link never waits on the network). */
export const LINK_DEADLINE_MS = 20;

export interface LinkStageOptions {
  /** Also publish the recorded camera JPEG on camera/preview. Default false. */
  publishCamera?: boolean;
  /**
   * Which capture and render times go on the wire. 'sensor' (live): the frame's own capture time,
   * on the vehicle's synchronised clock. 'pipeline' (replay): a recording's capture times are
   * from the day it was driven, so a display would judge every frame stale; instead the wire
   * carries when the frame entered the pipeline and when it was rendered, on `now`'s clock, so the
   * display's age check and latency figures measure this run. Default 'sensor'.
   */
  timeBase?: 'sensor' | 'pipeline';
  /** The display's clock for timeBase 'pipeline', ns. Default epochNowNs (wall clock). */
  now?: () => bigint;
}

/** The camera JPEG a frame was decoded from, when it came from a recording as JPEG. */
function cameraJpegOf(frame: Frame): Uint8Array | undefined {
  const message = frame.origin?.message;
  if (!message || message.schemaName !== compressedImageCodec.schemaName) return undefined;
  const image = compressedImageCodec.decode(message.data);
  return image.format === 'jpeg' ? image.data : undefined;
}

/**
 * When the panel was rendered, on the source clock (like tCaptureNs): capture time plus the time the
 * frame spent in the pipeline up to the end of the render stage (stage stamps are on the pipeline
 * clock, whose zero differs). Capture time when the frame carries no render stamp.
 */
export function renderTimeNs(frame: Frame): bigint {
  const rendered = frame.stamps.findLast((s) => s.stage === 'render');
  const entered = frame.stamps[0];
  if (!rendered || !entered) return frame.tCaptureNs;
  return frame.tCaptureNs + (rendered.tExitNs - entered.tEnterNs);
}

/** The link stage for runReplay; put it after the render extension. */
export function linkExtension(link: HudLink, options: LinkStageOptions = {}): ReplayExtensionFactory {
  const publishCamera = options.publishCamera ?? false;
  const timeBase = options.timeBase ?? 'sensor';
  const now = options.now ?? epochNowNs;
  return (context) => {
    const { clock, metrics } = context;
    let warned = false;
    /** Capture and render times as they go on the wire (see LinkStageOptions.timeBase). */
    const wireTimes = (frame: Frame): { tCaptureNs: bigint; tRenderNs: bigint } => {
      if (timeBase === 'sensor') return { tCaptureNs: frame.tCaptureNs, tRenderNs: renderTimeNs(frame) };
      const offsetNs = now() - clock.nowNs(); // pipeline clock -> display clock
      const entered = frame.stamps[0]?.tEnterNs ?? clock.nowNs();
      const rendered = frame.stamps.findLast((s) => s.stage === 'render')?.tExitNs ?? clock.nowNs();
      return { tCaptureNs: entered + offsetNs, tRenderNs: rendered + offsetNs };
    };
    const publish = (frame: Frame) => {
      const rgba = frame.hudRgba;
      const size = frame.hudSizePx;
      const times = wireTimes(frame);
      if (rgba && size) {
        link.publishFrame(rgba, {
          tCaptureNs: times.tCaptureNs,
          tRenderNs: times.tRenderNs,
          widthPx: size.widthPx,
          heightPx: size.heightPx,
          degraded: frame.hudScene?.degraded ?? frame.vehicle === undefined,
        });
      } else {
        metrics.count('link.noHudFrame');
      }
      if (frame.hudScene) link.publishScene(frame.hudScene);
      if (publishCamera) {
        const jpeg = cameraJpegOf(frame);
        if (jpeg) link.publishCameraPreview(jpeg, times.tCaptureNs);
      }
    };
    return {
      stages: [
        stage(
          'link',
          (frame) => {
            try {
              publish(frame);
            } catch (error) {
              // The link must not stop the replay: count it, log the first, keep the frame.
              metrics.count('link.errors');
              if (!warned) process.stderr.write(`link stage: ${(error as Error).message}\n`);
              warned = true;
            }
          },
          { ...context, deadlineMs: LINK_DEADLINE_MS },
        ),
      ],
    };
  };
}
