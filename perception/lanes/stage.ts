/**
 * Lane detection as a pipeline stage: sets `frame.lanes` from the frame's image and capture time.
 * The detector keeps per-role tracks, so one detector serves one camera stream, frames in order
 * (concurrency 1). Failures (e.g. an unsupported pixel format) go where `options.onError` says.
 */
import type { OperatorFunction } from 'rxjs';
import type { Frame } from '../../pipeline/frame.js';
import { stage, type StageOptions } from '../../pipeline/stage.js';
import type { LaneDetector } from './detector.js';
import type { LaneEstimate } from './types.js';

declare module '../../pipeline/frame.js' {
  interface Frame {
    /** Set by the lanes stage: lane boundaries in the vehicle frame at this frame's capture time. */
    lanes?: LaneEstimate;
  }
}

export const LANES_STAGE_NAME = 'lanes';

export function lanesStage(detector: LaneDetector, options: Omit<StageOptions, 'concurrency'>): OperatorFunction<Frame, Frame> {
  return stage(
    LANES_STAGE_NAME,
    (frame) => {
      frame.lanes = detector.detect(frame.image, frame.tCaptureNs);
    },
    { ...options, concurrency: 1 },
  );
}
