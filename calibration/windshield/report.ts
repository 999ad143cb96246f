/**
 * Windshield calibration report: `report.json` (status, dot statistics, fit residuals per capture,
 * closed-loop results when given) and heat-maps of the residuals: per capture across the dot grid
 * (`fit-eye-<k>.png`), the max over captures (`fit-max.png`), across the eyebox (`fit-eyebox.png`,
 * max per capture placed on the eye grid), and, with an evaluation, the closed-loop max over the
 * evaluated eyes across the panel (`closed-loop-max.png`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { heatmapPng } from '../report/heatmap.js';
import type { WindshieldCalibrationResult } from './calibrate.js';
import type { WarpMapEvaluation } from './evaluate.js';

/** Heat-map colour scale top, arcmin (the closed-loop max target). */
const HEATMAP_MAX_ARCMIN = 2;

/** Writes the report into `dir`; returns the files written. */
export async function writeWindshieldReport(dir: string, result: WindshieldCalibrationResult, evaluation?: WarpMapEvaluation): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const put = async (name: string, data: string | Buffer): Promise<void> => {
    await writeFile(join(dir, name), data);
    files.push(name);
  };
  const { dotCols: cols, dotRows: rows } = result;
  const maxOver = new Float64Array(cols * rows).fill(NaN);
  for (let c = 0; c < result.captures.length; c++) {
    const r = result.captures[c]!.residualArcmin;
    await put(`fit-eye-${c}.png`, await heatmapPng(r, cols, rows, { maxValue: HEATMAP_MAX_ARCMIN }));
    r.forEach((v, k) => { if (Number.isFinite(v)) maxOver[k] = Number.isFinite(maxOver[k]!) ? Math.max(maxOver[k]!, v) : v; });
  }
  await put('fit-max.png', await heatmapPng(maxOver, cols, rows, { maxValue: HEATMAP_MAX_ARCMIN }));
  const ys = [...new Set(result.captures.map((k) => k.eyeM.y))].sort((a, b) => b - a); // left (larger y) first
  const zs = [...new Set(result.captures.map((k) => k.eyeM.z))].sort((a, b) => b - a); // top first
  const eyebox = new Float64Array(ys.length * zs.length).fill(NaN);
  for (const k of result.captures) eyebox[zs.indexOf(k.eyeM.z) * ys.length + ys.indexOf(k.eyeM.y)] = k.fitMaxArcmin;
  await put('fit-eyebox.png', await heatmapPng(eyebox, ys.length, zs.length, { maxValue: HEATMAP_MAX_ARCMIN, cellPx: 48 }));
  if (evaluation !== undefined) {
    await put('closed-loop-max.png', await heatmapPng(evaluation.maxOverEyesArcmin, evaluation.samplesU, evaluation.samplesV, { maxValue: HEATMAP_MAX_ARCMIN, cellPx: 8 }));
  }
  const report = {
    status: result.status,
    ...(result.reason === undefined ? {} : { reason: result.reason }),
    maxResidualArcmin: result.maxResidualArcmin,
    fit: { medianArcmin: result.fitMedianArcmin, maxArcmin: result.fitMaxArcmin, rmsArcmin: result.fitRmsArcmin, eyeTerms: result.model.eyeTerms, panelDegree: result.model.degree },
    timing: { detectMs: result.detectMs, fitMs: result.fitMs },
    warpMap: { cols: result.warpMap.cols, rows: result.warpMap.rows, eyePositions: result.warpMap.eyePositionsM.length },
    captures: result.captures.map((k) => ({ file: k.file, eyeM: k.eyeM, found: k.found, indexed: k.indexed, missing: k.missing, spurious: k.spurious, rejectedBlobs: k.rejectedBlobs, outliers: k.outliers, fitMedianArcmin: k.fitMedianArcmin, fitMaxArcmin: k.fitMaxArcmin })),
    ...(evaluation === undefined
      ? {}
      : { closedLoop: { medianArcmin: evaluation.medianArcmin, maxArcmin: evaluation.maxArcmin, rmsArcmin: evaluation.rmsArcmin, perEye: evaluation.perEye.map((e) => ({ eyeM: e.eyeM, medianArcmin: e.medianArcmin, maxArcmin: e.maxArcmin })) } }),
    files: [...files, 'report.json'],
  };
  await put('report.json', JSON.stringify(report, null, 2) + '\n');
  return files;
}
