/**
 * Camera calibration report: where in the image the model fits worst. Reprojection residuals of
 * every used corner, binned over the image, as a JSON summary and a heat-map PNG.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { heatmapPng } from '../report/heatmap.js';
import type { CameraCalibration } from './calibrate.js';
import { boardObjectPoints, projectPoints } from './camera-model.js';

/** Heat-map cells across the image (4:3-ish; a 640x480 image gets 40 px cells). */
export const REPORT_GRID_COLS = 16;
export const REPORT_GRID_ROWS = 12;

/** Mean reprojection residual per image cell, pixels (NaN where no corner fell). */
export interface CameraResidualGrid {
  cols: number;
  rows: number;
  meanResidualPx: Float64Array;
  /** Largest single-corner residual, pixels, and the image it is in. */
  maxResidualPx: number;
  maxResidualImage: string;
}

/** Bins the residual of every corner of the used views over a cols x rows grid of the image. */
export function cameraResidualGrid(calibration: CameraCalibration, cols = REPORT_GRID_COLS, rows = REPORT_GRID_ROWS): CameraResidualGrid {
  const sum = new Float64Array(cols * rows);
  const count = new Uint32Array(cols * rows);
  const { widthPx, heightPx } = calibration.imageSize;
  const { cols: boardCols, rows: boardRows, squareM } = calibration.board;
  const objectPointsM = boardObjectPoints(boardCols, boardRows, squareM);
  const intrinsics = { fx: calibration.fx, fy: calibration.fy, cx: calibration.cx, cy: calibration.cy };
  const projected = new Float64Array(boardCols * boardRows * 2);
  let maxResidualPx = 0;
  let maxResidualImage = '';
  for (const view of calibration.views) {
    if (view.status !== 'used' || !view.pose || !view.cornersPx) continue;
    projectPoints(objectPointsM, view.pose, intrinsics, calibration.distortion, projected);
    for (let k = 0; k < projected.length / 2; k++) {
      const x: number = view.cornersPx[2 * k]!;
      const y: number = view.cornersPx[2 * k + 1]!;
      const residualPx = Math.hypot(projected[2 * k]! - x, projected[2 * k + 1]! - y);
      const cell = Math.min(rows - 1, Math.max(0, Math.floor((y / heightPx) * rows))) * cols + Math.min(cols - 1, Math.max(0, Math.floor((x / widthPx) * cols)));
      sum[cell] = sum[cell]! + residualPx;
      count[cell] = count[cell]! + 1;
      if (residualPx > maxResidualPx) {
        maxResidualPx = residualPx;
        maxResidualImage = view.image;
      }
    }
  }
  const meanResidualPx = sum.map((s, i) => (count[i]! > 0 ? s / count[i]! : NaN));
  return { cols, rows, meanResidualPx, maxResidualPx, maxResidualImage };
}

/** Writes `report.json` (summary, per-view errors) and `residuals.png` (mean residual across the image) into `dir`. */
export async function writeCameraReport(dir: string, calibration: CameraCalibration): Promise<{ reportPath: string; heatmapPath: string }> {
  await mkdir(dir, { recursive: true });
  const grid = cameraResidualGrid(calibration);
  const reportPath = path.join(dir, 'report.json');
  const heatmapPath = path.join(dir, 'residuals.png');
  const report = {
    kind: 'camera',
    status: calibration.status,
    rejectionReason: calibration.rejectionReason,
    rmsPx: calibration.rmsPx,
    maxRmsPx: calibration.maxRmsPx,
    maxResidualPx: grid.maxResidualPx,
    maxResidualImage: grid.maxResidualImage,
    views: calibration.views.map((v) => ({ image: v.image, status: v.status, reason: v.reason, rmsPx: v.rmsPx })),
    heatmap: { file: path.basename(heatmapPath), what: 'mean reprojection residual per image cell, pixels; colour scale 0 to the largest cell mean', cols: grid.cols, rows: grid.rows, largestCellMeanPx: Math.max(0, ...[...grid.meanResidualPx].filter(Number.isFinite)) },
  };
  await writeFile(reportPath, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(heatmapPath, await heatmapPng(grid.meanResidualPx, grid.cols, grid.rows, { cellPx: 40 }));
  return { reportPath, heatmapPath };
}
