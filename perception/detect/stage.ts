/**
 * Detection as a pipeline stage: runs the Detector on each frame's image (every n-th frame when
 * asked; frames in between carry no detections rather than stale ones) and writes the boxes to
 * recordings as foxglove.ImageAnnotations.
 */
import { stage, TOPIC_DETECTIONS, imageBoxesCodec, type LabelledBox, type RgbaColor } from '../../pipeline/index.js';
import type { ReplayExtensionFactory } from '../../pipeline/replay.js';
import type { AcceleratorScheduler, RuntimeControls } from '../../pipeline/scheduler.js';
import type { Detector } from './detector.js';
import type { Detection, HudClass } from './types.js';

declare module '../../pipeline/frame.js' {
  interface Frame {
    /** Set by the detect stage: boxes in this frame's image pixels; undefined when the stage skipped it. */
    detections?: Detection[];
  }
}

/** Box colours per HUD class in recordings (other classes grey). */
const CLASS_COLORS: Record<HudClass, RgbaColor> = {
  person: { r: 1, g: 0.25, b: 0.25, a: 1 },
  bicycle: { r: 1, g: 0.6, b: 0.1, a: 1 },
  motorcycle: { r: 1, g: 0.6, b: 0.1, a: 1 },
  car: { r: 0.2, g: 0.8, b: 1, a: 1 },
  bus: { r: 0.4, g: 0.6, b: 1, a: 1 },
  truck: { r: 0.4, g: 0.6, b: 1, a: 1 },
};
const OTHER_COLOR: RgbaColor = { r: 0.7, g: 0.7, b: 0.7, a: 1 };

export interface DetectStageOptions {
  /** Run the detector on every n-th frame (1 = all). Default 1; `controls.detectEveryN` when controls are given. */
  everyNthFrame?: number;
  /** Run inferences through the shared accelerator scheduler, as safety-class work. */
  scheduler?: AcceleratorScheduler;
  /** The degradation policy's knobs: the detector runs on every `detectEveryN`-th frame (the tracker coasts between). */
  controls?: RuntimeControls;
  /** Deadline of one inference from the frame's entry into the stage, ms. Default DETECT_DEADLINE_MS. */
  deadlineMs?: number;
}

/** Default deadline of a detector run: one frame period at 10 Hz. */
export const DETECT_DEADLINE_MS = 100;

/** Boxes of `detections` for foxglove.ImageAnnotations. */
export function labelledBoxes(detections: readonly Detection[]): LabelledBox[] {
  return detections.map((d) => ({
    label: d.className,
    score: Math.round(d.score * 1e4) / 1e4,
    box: d.box.map((v) => Math.round(v * 100) / 100) as [number, number, number, number],
    color: d.hudClass ? CLASS_COLORS[d.hudClass] : OTHER_COLOR,
  }));
}

/** Box corners may overshoot the image this much (a box of an object cut by the border), px. */
const BOX_SLACK_PX = 64;

/**
 * A detector's output is checked before anything downstream trusts it: boxes finite, ordered and
 * inside the image (with slack), scores in [0, 1]. A model gone wrong (a bad export, a broken
 * accelerator) gives garbage, not an exception; this turns it into one, which the watchdog counts
 * and answers with safe blanking.
 */
export function checkDetections(detections: unknown, widthPx: number, heightPx: number): asserts detections is Detection[] {
  if (!Array.isArray(detections)) throw new TypeError(`detector output is not a list of detections (got ${typeof detections})`);
  detections.forEach((d: Partial<Detection> | undefined, i) => {
    const box = d?.box;
    if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) throw new TypeError(`detector output [${i}]: field 'box' must be 4 finite numbers, got ${JSON.stringify(box)}`);
    const [x0, y0, x1, y1] = box as [number, number, number, number];
    if (!(x1 > x0 && y1 > y0 && x0 >= -BOX_SLACK_PX && y0 >= -BOX_SLACK_PX && x1 <= widthPx + BOX_SLACK_PX && y1 <= heightPx + BOX_SLACK_PX)) {
      throw new RangeError(`detector output [${i}]: field 'box' [${box.join(', ')}] is not a box inside the ${widthPx}x${heightPx} image`);
    }
    if (!(typeof d!.score === 'number' && d!.score >= 0 && d!.score <= 1)) throw new RangeError(`detector output [${i}]: field 'score' must be in [0, 1], got ${d!.score}`);
  });
}

/** The detect stage plus its '/camera/front/detections' output, for runReplay. */
export function detectExtension(detector: Detector, options: DetectStageOptions = {}): ReplayExtensionFactory {
  const fixedEvery = options.everyNthFrame ?? 1;
  if (!Number.isInteger(fixedEvery) || fixedEvery < 1) throw new RangeError(`detectExtension: 'everyNthFrame' must be an integer >= 1, got ${fixedEvery}`);
  const deadlineMs = options.deadlineMs ?? DETECT_DEADLINE_MS;
  if (!(deadlineMs > 0)) throw new RangeError(`detectExtension: 'deadlineMs' must be > 0, got ${deadlineMs}`);
  const { scheduler, controls } = options;
  return (context) => ({
    stages: [
      stage(
        'detect',
        async (frame, abandoned) => {
          const every = controls ? Math.max(fixedEvery, controls.detectEveryN) : fixedEvery;
          if (frame.seq % every !== 0) return;
          let detections: Detection[] | undefined;
          if (!scheduler) {
            detections = await detector.detect(frame.image);
          } else {
            const outcome = await scheduler.submit({ name: 'detect', priority: 'safety', deadlineMs }, () => detector.detect(frame.image));
            // Safety work is never refused for load; a full safety queue drops the older frame's run.
            if (outcome.status === 'done') detections = outcome.value;
            else context.metrics.count(`detect.${outcome.reason}`);
          }
          // A run the watchdog gave up on must not write into a frame that has moved on.
          if (detections === undefined || abandoned?.aborted) return;
          checkDetections(detections, frame.image.width, frame.image.height);
          frame.detections = detections;
        },
        { ...context, deadlineMs },
      ),
    ],
    writeOutputs: async (frame, writer, logTimeNs) => {
      if (!frame.detections) return;
      await writer.write(TOPIC_DETECTIONS, imageBoxesCodec, logTimeNs, { tNs: frame.tCaptureNs, boxes: labelledBoxes(frame.detections) });
    },
  });
}
