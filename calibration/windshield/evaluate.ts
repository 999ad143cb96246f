/**
 * Closed-loop evaluation of a warp map against the simulator: for each eye position, the mesh that
 * EyeboxWarp (the renderer's interpolation) gives for that eye, interpolated over its triangles like
 * the GPU does, is applied to a dense panel sample; the error at panel point p is the angle between
 * p's true apparent direction (simulator) and the direction to the ideal-plane point the mesh says p
 * shows.
 */
import type { Vec3M } from '../../render/optics-config.js';
import { createEyeRay, type VirtualImagePlane } from '../../render/optics.js';
import { EyeboxWarp, type WarpMap } from '../../render/warp-map.js';
import { WarpMesh } from '../../render/warp-mesh.js';
import { DESIGN_EYEBOX_HEIGHT_M, DESIGN_EYEBOX_WIDTH_M, type HudOpticsSimulator } from '../sim/hud-optics-simulator.js';
import { eyeboxGrid } from '../sim/captures.js';
import { median } from '../math/statistics.js';

const RAD_TO_ARCMIN = (180 * 60) / Math.PI;

/** Closed-loop error at one eye position. */
export interface EyeEvaluation {
  eyeM: Vec3M;
  medianArcmin: number;
  maxArcmin: number;
  /** Error per panel sample (samplesU x samplesV, row-major), arcmin. */
  residualArcmin: Float64Array;
}

/** Result of evaluateWarpMap. */
export interface WarpMapEvaluation {
  medianArcmin: number;
  maxArcmin: number;
  rmsArcmin: number;
  samplesU: number;
  samplesV: number;
  perEye: EyeEvaluation[];
  /** Largest error over the eyes per panel sample, arcmin. */
  maxOverEyesArcmin: Float64Array;
}

/** Closed-loop panel sampling: odd counts put samples on cell centres and edges of a 64 x 32 mesh alike. */
export const EVALUATION_SAMPLES_U = 97;
export const EVALUATION_SAMPLES_V = 41;

/**
 * Eye positions to judge a 3 x 3 capture grid by, none of them captured: a 4 x 3 grid reaching close
 * to the eyebox edges (92% x 88% of it) plus an inner 2 x 2 (half of it), where interpolation
 * between captures is weakest. 16 positions.
 */
export function heldOutEyePositions(eyeboxCentreM: Readonly<Vec3M>): Vec3M[] {
  return [
    ...eyeboxGrid(eyeboxCentreM, 4, 3, DESIGN_EYEBOX_WIDTH_M * 0.92, DESIGN_EYEBOX_HEIGHT_M * 0.88),
    ...eyeboxGrid(eyeboxCentreM, 2, 2, DESIGN_EYEBOX_WIDTH_M * 0.5, DESIGN_EYEBOX_HEIGHT_M * 0.5),
  ];
}

/** The uv a triangulated mesh gives at region-normalised panel position (x, y) (GPU interpolation). */
export function meshUvAt(mesh: WarpMesh, x: number, y: number, out: Float64Array): Float64Array {
  const { cols, rows, uvs } = mesh;
  const fx = Math.min(Math.max(x, 0), 1) * cols, fy = Math.min(Math.max(y, 0), 1) * rows;
  const i = Math.min(cols - 1, Math.floor(fx)), j = Math.min(rows - 1, Math.floor(fy));
  const s = fx - i, t = fy - j;
  const tl = (j * (cols + 1) + i) * 2, tr = tl + 2, bl = tl + (cols + 1) * 2, br = bl + 2;
  // Cells are split along the tl-br diagonal (WarpMesh indices: bl, br, tl and tl, br, tr).
  for (let c = 0; c < 2; c++) {
    out[c] = t >= s
      ? uvs[tl + c]! + s * (uvs[br + c]! - uvs[bl + c]!) + t * (uvs[bl + c]! - uvs[tl + c]!)
      : uvs[tl + c]! + s * (uvs[tr + c]! - uvs[tl + c]!) + t * (uvs[br + c]! - uvs[tr + c]!);
  }
  return out;
}

/** Evaluates `warpMap` in closed loop (see the file comment) on samplesU x samplesV panel points (edges included). */
export function evaluateWarpMap(simulator: HudOpticsSimulator, warpMap: WarpMap, plane: VirtualImagePlane, eyePositionsM: readonly Vec3M[], samplesU: number, samplesV: number): WarpMapEvaluation {
  if (!Number.isInteger(samplesU) || !Number.isInteger(samplesV) || samplesU < 2 || samplesV < 2) {
    throw new RangeError(`evaluateWarpMap: 'samplesU' and 'samplesV' must be integers >= 2, got ${samplesU} x ${samplesV}`);
  }
  if (eyePositionsM.length === 0) throw new RangeError(`evaluateWarpMap: 'eyePositionsM' must not be empty`);
  const warp = new EyeboxWarp(warpMap);
  const mesh = new WarpMesh(warpMap.cols, warpMap.rows, warpMap.meshes[0]!.positions.slice(), warpMap.meshes[0]!.uvs.slice());
  const r = plane.region;
  const uv = new Float64Array(2);
  const ray = createEyeRay();
  const d: Vec3M = { x: 0, y: 0, z: 0 };
  const all: number[] = [];
  const maxOver = new Float64Array(samplesU * samplesV);
  const perEye = eyePositionsM.map((eyeM) => {
    warp.meshFor(eyeM, mesh);
    const residual = new Float64Array(samplesU * samplesV);
    for (let b = 0; b < samplesV; b++) {
      for (let a = 0; a < samplesU; a++) {
        const x = a / (samplesU - 1), y = b / (samplesV - 1);
        simulator.apparentDirection(r.xPx + x * r.widthPx, r.yPx + y * r.heightPx, eyeM, d);
        meshUvAt(mesh, x, y, uv);
        const q = plane.panelToRay(r.xPx + uv[0]! * r.widthPx, r.yPx + uv[1]! * r.heightPx, ray, eyeM).direction;
        const err = Math.acos(Math.min(1, d.x * q.x + d.y * q.y + d.z * q.z)) * RAD_TO_ARCMIN;
        const k = b * samplesU + a;
        residual[k] = Number.isFinite(err) ? err : Infinity;
        maxOver[k] = Math.max(maxOver[k]!, residual[k]!);
        all.push(residual[k]!);
      }
    }
    let max = 0;
    for (const e of residual) max = Math.max(max, e);
    return { eyeM: { ...eyeM }, medianArcmin: median(residual), maxArcmin: max, residualArcmin: residual };
  });
  return {
    medianArcmin: median(all),
    maxArcmin: Math.max(...perEye.map((e) => e.maxArcmin)),
    rmsArcmin: Math.sqrt(all.reduce((s, e) => s + e * e, 0) / all.length),
    samplesU,
    samplesV,
    perEye,
    maxOverEyesArcmin: maxOver,
  };
}
