/**
 * Detection accuracy on a recording with 3D ground truth (e.g. an imported PandaSet drive): every
 * camera frame is decoded once and run through each detector; the cuboids of the same instant are
 * projected with the camera pose and intrinsics; AP@0.5 per evaluation class.
 */
import {
  BufferPool,
  RecordingError,
  RecordingReader,
  TOPIC_CAMERA,
  TOPIC_CAMERA_CALIBRATION,
  TOPIC_CAMERA_POSE,
  TOPIC_GROUND_TRUTH,
  cameraCalibrationCodec,
  compressedImageCodec,
  decodeImageInto,
  groundTruthObjectsCodec,
  poseCodec,
  type RecordedMessage,
} from '../../pipeline/index.js';
import { averagePrecision, evalGroundTruthOf, type AveragePrecisionResult, type EvalDetection, type EvalFrame } from './average-precision.js';
import type { Detector } from './detector.js';
import { evalClassOfDetectorClass, projectGroundTruth } from './ground-truth.js';

/** Score threshold for evaluation: AP integrates over scores, so keep low-confidence boxes (COCO practice). */
export const EVAL_SCORE_THRESHOLD = 0.05;

export interface DetectorUnderTest {
  name: string;
  detector: Detector;
}

export interface DetectionEvaluation {
  recording: string;
  frames: number;
  /** Visible (counted) ground-truth boxes per class over all frames. */
  groundTruth: Record<string, number>;
  results: Record<string, AveragePrecisionResult>;
}

export interface EvaluateOptions {
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Messages grouped by log time: one group per instant (image, calibration, pose and labels of a frame). */
async function* instants(reader: RecordingReader): AsyncGenerator<RecordedMessage[]> {
  let group: RecordedMessage[] = [];
  for await (const message of reader.messages({ topics: [TOPIC_CAMERA, TOPIC_CAMERA_CALIBRATION, TOPIC_CAMERA_POSE, TOPIC_GROUND_TRUTH] })) {
    if (group.length > 0 && message.logTimeNs !== group[0]!.logTimeNs) {
      yield group;
      group = [];
    }
    group.push(message);
  }
  if (group.length > 0) yield group;
}

export async function evaluateDetectors(recordingPath: string, detectors: readonly DetectorUnderTest[], options: EvaluateOptions = {}): Promise<DetectionEvaluation> {
  const reader = await RecordingReader.open(recordingPath, { strict: true });
  try {
    for (const topic of [TOPIC_CAMERA, TOPIC_CAMERA_CALIBRATION, TOPIC_CAMERA_POSE, TOPIC_GROUND_TRUTH]) {
      if (!reader.topic(topic)) throw new RecordingError({ file: recordingPath }, `evaluation needs topic '${topic}' (camera, intrinsics, pose and 3D labels)`);
    }
    const total = reader.topic(TOPIC_CAMERA)!.messageCount;
    const pool = new BufferPool({ name: 'eval' });
    const framesByDetector = new Map<string, EvalFrame[]>(detectors.map((d) => [d.name, []]));
    const groundTruth: Record<string, number> = {};
    let frames = 0;
    for await (const group of instants(reader)) {
      options.signal?.throwIfAborted();
      const find = (topic: string) => group.find((m) => m.topic === topic);
      const [image, calibration, pose, objects] = [find(TOPIC_CAMERA), find(TOPIC_CAMERA_CALIBRATION), find(TOPIC_CAMERA_POSE), find(TOPIC_GROUND_TRUTH)];
      if (!image) continue;
      if (!calibration || !pose || !objects) {
        throw new RecordingError({ file: recordingPath, topic: TOPIC_CAMERA, logTimeNs: image.logTimeNs }, 'frame has no calibration, pose or labels at the same log time');
      }
      const projected = projectGroundTruth(
        groundTruthObjectsCodec.decode(objects.data).objects,
        poseCodec.decode(pose.data),
        cameraCalibrationCodec.decode(calibration.data).intrinsics,
      );
      const truths = evalGroundTruthOf(projected);
      for (const t of truths) if (!t.ignore) groundTruth[t.evalClass] = (groundTruth[t.evalClass] ?? 0) + 1;
      const decoded = await decodeImageInto(pool, compressedImageCodec.decode(image.data).data);
      try {
        for (const { name, detector } of detectors) {
          const detections: EvalDetection[] = [];
          for (const d of await detector.detect(decoded.image)) {
            const evalClass = evalClassOfDetectorClass(d.className);
            if (evalClass) detections.push({ evalClass, score: d.score, box: d.box });
          }
          framesByDetector.get(name)!.push({ detections, groundTruth: truths });
        }
      } finally {
        decoded.buffer.release();
      }
      frames++;
      options.onProgress?.(frames, total);
    }
    const results: Record<string, AveragePrecisionResult> = {};
    for (const [name, evalFrames] of framesByDetector) results[name] = averagePrecision(evalFrames);
    return { recording: recordingPath, frames, groundTruth, results };
  } finally {
    await reader.close();
  }
}

/** Text table: AP per class and detector, in points (0-100). */
export function formatEvaluation(evaluation: DetectionEvaluation): string {
  const names = Object.keys(evaluation.results);
  const classes = Object.keys(evaluation.groundTruth).sort();
  const header = ['class', 'GT boxes', ...names.map((n) => `AP50 ${n}`)];
  const rows = classes.map((c) => [
    c,
    String(evaluation.groundTruth[c] ?? 0),
    ...names.map((n) => {
      const ap = evaluation.results[n]![c as keyof AveragePrecisionResult]?.ap;
      return ap === undefined ? '-' : (100 * ap).toFixed(1);
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [`${evaluation.frames} frames of ${evaluation.recording}`, line(header), ...rows.map(line)].join('\n');
}
