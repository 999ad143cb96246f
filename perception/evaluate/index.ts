/**
 * World-model evaluation (issue #7): tracking and 3D positions on the PandaSet drive, lanes on both
 * real videos; the text report and the JSON line of `arhud eval track`.
 */
import type { EvalClass } from '../detect/ground-truth.js';
import type { LaneEvaluation, LaneVideoMetrics } from './lane-eval.js';
import { finiteOrNull } from './stats.js';
import { RANGE_MAX_M, RANGE_MIN_M, type PositionErrorStats, type TrackingEvaluation } from './track-eval.js';

export * from './track-eval.js';
export * from './lane-eval.js';
export * from './registration-eval.js';
export { forEachVideoFrame } from './video-frames.js';
export { writeOverlayPng, OVERLAY_MAX_WIDTH_PX } from './overlay.js';
export { quantile, median, rms } from './stats.js';

/** Issue #7 targets, as the report and tests check them. */
export const WORLD_TARGETS = Object.freeze({
  /** Vehicle |range error| / range at RANGE_MIN_M..RANGE_MAX_M, percent: median and p90 at most. */
  rangeErrMedianPct: 8,
  rangeErrP90Pct: 20,
  /** Vehicle id switches over the 60 PandaSet frames, at most. */
  vehicleIdSwitches: 3,
  /** RMS frame-to-frame change of the ego-lane centre at 10 m, cm, at most. */
  laneJitterCm: 5,
  /** Frames of the Udacity video with both ego boundaries, percent, at least. */
  laneBothFoundPct: 95,
});

/** The one-line JSON object of `arhud eval track --json` (NaN becomes null). */
export function worldEvaluationJson(track: TrackingEvaluation, lanes: LaneEvaluation): Record<string, unknown> {
  const vehicle = track.trackPosition.vehicle;
  const laneJson = (m: LaneVideoMetrics) => ({
    frames: m.frames,
    bothFoundPct: finiteOrNull(m.bothFoundPct),
    jitterCm: finiteOrNull(m.jitterCm),
    laneWidthMedianM: finiteOrNull(m.laneWidthMedianM),
    realLaneWidthM: m.realLaneWidthM,
    realLaneWidthNote: m.realLaneWidthNote,
    laneWidthErrPct: finiteOrNull(m.laneWidthErrPct ?? undefined),
  });
  return {
    frames: track.frames,
    precision: track.precision,
    motaVehicle: finiteOrNull(track.mot.vehicle.mota),
    idf1Vehicle: finiteOrNull(track.mot.vehicle.idf1),
    motaPerson: finiteOrNull(track.mot.person.mota),
    idf1Person: finiteOrNull(track.mot.person.idf1),
    idSwitches: track.mot.vehicle.idSwitches,
    idSwitchesPerson: track.mot.person.idSwitches,
    rangeErrMedianPct: finiteOrNull(vehicle.rangeErrMedianPct),
    rangeErrP90Pct: finiteOrNull(vehicle.rangeErrP90Pct),
    lateralErrMedianM: finiteOrNull(vehicle.lateralErrMedianM),
    positionSamples: vehicle.samples,
    rangeWindowM: [RANGE_MIN_M, RANGE_MAX_M],
    ap50Vehicle: finiteOrNull(track.ap50.vehicle),
    ap50Person: finiteOrNull(track.ap50.person),
    laneBothFoundPct: finiteOrNull(lanes.udacity.bothFoundPct),
    laneJitterCm: finiteOrNull(lanes.udacity.jitterCm),
    laneWidthM: finiteOrNull(lanes.udacity.laneWidthMedianM),
    lanes: { udacity: laneJson(lanes.udacity), pandaset: laneJson(lanes.pandaset) },
    fcwFalseAlarmFrames: track.fcw.falseAlarmFrames,
    fcwMissedFrames: track.fcw.missedFrames,
    fcw: { ...track.fcw, leadGapErrMedianM: finiteOrNull(track.fcw.leadGapErrMedianM), leadGapErrP90M: finiteOrNull(track.fcw.leadGapErrP90M) },
    targets: WORLD_TARGETS,
    met: worldTargetsMet(track, lanes),
  };
}

/** Which issue #7 targets the evaluation meets. */
export function worldTargetsMet(track: TrackingEvaluation, lanes: LaneEvaluation): Record<keyof typeof WORLD_TARGETS, boolean> {
  const vehicle = track.trackPosition.vehicle;
  return {
    rangeErrMedianPct: vehicle.rangeErrMedianPct <= WORLD_TARGETS.rangeErrMedianPct,
    rangeErrP90Pct: vehicle.rangeErrP90Pct <= WORLD_TARGETS.rangeErrP90Pct,
    vehicleIdSwitches: track.mot.vehicle.idSwitches <= WORLD_TARGETS.vehicleIdSwitches,
    laneJitterCm: lanes.udacity.jitterCm <= WORLD_TARGETS.laneJitterCm,
    laneBothFoundPct: lanes.udacity.bothFoundPct >= WORLD_TARGETS.laneBothFoundPct,
  };
}

const num = (value: number | null | undefined, digits: number, unit = ''): string => (value !== null && value !== undefined && Number.isFinite(value) ? `${value.toFixed(digits)}${unit}` : '-');

function fcwLine(track: TrackingEvaluation): string {
  const f = track.fcw;
  const levels = (['caution', 'warning', 'critical'] as const).map((l) => `${l} ${f.levelFrames[l][1]}/${f.levelFrames[l][0]}`).join(', ');
  return (
    `forward-collision warnings vs labels (${f.frames} frames): raised in ${f.warningFrames}, labels call for ${f.truthWarningFrames}; ` +
    `false-alarm frames ${f.falseAlarmFrames}, missed frames ${f.missedFrames}, same level ${f.sameLevelFrames}; frames per level ours/labels: ${levels}; ` +
    `ACC lead gap error median ${num(f.leadGapErrMedianM, 2, ' m')} p90 ${num(f.leadGapErrP90M, 2, ' m')} (${f.leadFrames} frames)`
  );
}

/** Text report for the CLI: tracking per class, position errors, lanes per video, targets. */
export function formatWorldEvaluation(track: TrackingEvaluation, lanes: LaneEvaluation): string {
  const met = worldTargetsMet(track, lanes);
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const classes: EvalClass[] = ['vehicle', 'person'];
  const motLines = classes.map((c) => {
    const m = track.mot[c];
    return `  ${c.padEnd(7)}  MOTA ${num(m.mota, 3).padStart(6)}  IDF1 ${num(m.idf1, 3).padStart(5)}  IDSW ${String(m.idSwitches).padStart(2)}  FP ${String(m.fp).padStart(3)}  FN ${String(m.fn).padStart(3)}  GT ${String(m.gtCount).padStart(3)}  AP50 ${num(100 * (track.ap50[c] ?? NaN), 1)}`;
  });
  const position = (label: string, s: PositionErrorStats) =>
    `  ${label.padEnd(18)} n ${String(s.samples).padStart(3)}  |range err|/range median ${num(s.rangeErrMedianPct, 1, '%')} p90 ${num(s.rangeErrP90Pct, 1, '%')} (bias ${num(s.rangeBiasMedianPct, 1, '%')})  lateral median ${num(s.lateralErrMedianM, 2, ' m')} p90 ${num(s.lateralErrP90M, 2, ' m')}`;
  const lane = (m: LaneVideoMetrics) =>
    `  ${m.name.padEnd(24)} ${String(m.frames).padStart(3)} frames  both ego found ${num(m.bothFoundPct, 1, '%')}  jitter@10m ${num(m.jitterCm, 2, ' cm')} (${m.jitterPairs} pairs)  width median ${num(m.laneWidthMedianM, 2, ' m')} ` +
    (m.realLaneWidthM !== null ? `vs real ${m.realLaneWidthM.toFixed(2)} m (${num(m.laneWidthErrPct, 1, '%')}, ${m.realLaneWidthNote})` : `(real width: ${m.realLaneWidthNote})`);
  return [
    `tracking: ${track.frames} frames of ${track.source}, detector ${track.model}, camera height ${track.mounting.positionM.z.toFixed(3)} m`,
    ...motLines,
    `  detector scores on visible vehicles: p10 ${num(track.matchedScores.vehicle.p10, 2)} median ${num(track.matchedScores.vehicle.median, 2)} p90 ${num(track.matchedScores.vehicle.p90, 2)} (n ${track.matchedScores.vehicle.samples})`,
    `position against cuboid centres, vehicles ${RANGE_MIN_M}-${RANGE_MAX_M} m:`,
    position('tracks', track.trackPosition.vehicle),
    position('raw detections', track.detectionPosition.vehicle),
    fcwLine(track),
    'lanes:',
    lane(lanes.udacity),
    lane(lanes.pandaset),
    'issue #7 targets:',
    `  vehicle range error median <= ${WORLD_TARGETS.rangeErrMedianPct}%: ${mark(met.rangeErrMedianPct)}; p90 <= ${WORLD_TARGETS.rangeErrP90Pct}%: ${mark(met.rangeErrP90Pct)}; ` +
      `vehicle id switches <= ${WORLD_TARGETS.vehicleIdSwitches}: ${mark(met.vehicleIdSwitches)}; lane jitter <= ${WORLD_TARGETS.laneJitterCm} cm: ${mark(met.laneJitterCm)}; ` +
      `Udacity both ego found >= ${WORLD_TARGETS.laneBothFoundPct}%: ${mark(met.laneBothFoundPct)}`,
    ...(track.overlays.length + lanes.udacity.overlays.length + lanes.pandaset.overlays.length > 0
      ? [`overlays: ${track.overlays.length} tracking, ${lanes.udacity.overlays.length + lanes.pandaset.overlays.length} lanes`]
      : []),
  ].join('\n');
}
