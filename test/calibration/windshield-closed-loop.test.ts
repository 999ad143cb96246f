import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HudOpticsSimulator, simulateWindshieldCaptures } from '../../calibration/sim/index.js';
import {
  WARP_MAP_FILE,
  WINDSHIELD_TARGET_MAX_ARCMIN,
  WINDSHIELD_TARGET_MEDIAN_ARCMIN,
  WINDSHIELD_WARP_COLS,
  WINDSHIELD_WARP_ROWS,
  calibrateWindshield,
  EVALUATION_SAMPLES_U,
  EVALUATION_SAMPLES_V,
  evaluateWarpMap,
  heldOutEyePositions,
  writeWindshieldCalibration,
  writeWindshieldReport,
} from '../../calibration/windshield/index.js';
import { loadWarpMap } from '../../render/warp-map.js';
import { WarpMesh } from '../../render/warp-mesh.js';

describe('windshield calibration closed loop (9 captures, 3 x 3 over the eyebox)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('meets the residual targets at held-out eye positions', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arhud-ws-'));
    dirs.push(dir);
    const sim = new HudOpticsSimulator({ seed: 5 });
    const { truth } = await simulateWindshieldCaptures(dir, { simulator: sim });
    const progress: string[] = [];
    const result = await calibrateWindshield(dir, { onProgress: (done, total, what) => progress.push(`${done}/${total} ${what}`), date: '2025-01-01T00:00:00.000Z' });
    expect(progress).toHaveLength(11);
    expect(result.status).toBe('accepted');
    expect(result.model.eyeTerms).toBe(9);
    result.captures.forEach((c, k) => {
      expect(c.indexed).toBe(c.found - c.spurious);
      // Every left-out dot is missed; at most a couple more are lost (a reflection blob merged into a dot).
      expect(c.missing - truth[k]!.missing.length).toBeGreaterThanOrEqual(0);
      expect(c.missing - truth[k]!.missing.length).toBeLessThanOrEqual(2);
    });
    const map = result.warpMap;
    expect([map.cols, map.rows]).toEqual([WINDSHIELD_WARP_COLS, WINDSHIELD_WARP_ROWS]);
    expect(map.source?.tool).toBe('arhud-calibrate');

    // Held-out eyes: a 4 x 3 grid reaching close to the eyebox edges plus an inner 2 x 2, none on the capture grid.
    const c = sim.eyeboxCentreM;
    const heldOut = heldOutEyePositions(c);
    const captured = new Set(result.captures.map((k) => `${k.eyeM.y.toFixed(4)},${k.eyeM.z.toFixed(4)}`));
    expect(heldOut.some((e) => captured.has(`${e.y.toFixed(4)},${e.z.toFixed(4)}`))).toBe(false);
    const evaluation = evaluateWarpMap(sim, map, sim.plane, heldOut, EVALUATION_SAMPLES_U, EVALUATION_SAMPLES_V);
    expect(evaluation.perEye).toHaveLength(16);
    expect(evaluation.medianArcmin).toBeLessThanOrEqual(WINDSHIELD_TARGET_MEDIAN_ARCMIN);
    expect(evaluation.maxArcmin).toBeLessThanOrEqual(WINDSHIELD_TARGET_MAX_ARCMIN);

    // Without the warp (identity) the same loop is far off: the test measures something.
    const identity = { ...map, meshes: map.meshes.map((m) => new WarpMesh(m.cols, m.rows, m.positions, m.positions.slice())) };
    expect(evaluateWarpMap(sim, identity, sim.plane, heldOut.slice(0, 2), 17, 9).maxArcmin).toBeGreaterThan(5);

    // The written calibration loads as the renderer's warp map; the report has its heat-maps.
    const path = await writeWindshieldCalibration(join(dir, WARP_MAP_FILE), result);
    expect(path).toBe(join(dir, WARP_MAP_FILE));
    const loaded = await loadWarpMap(path);
    expect(loaded.meshes[3]!.uvs).toEqual(map.meshes[3]!.uvs);
    await writeWindshieldReport(join(dir, 'report'), result, evaluation);
    const files = await readdir(join(dir, 'report'));
    expect(files).toEqual(expect.arrayContaining(['report.json', 'fit-max.png', 'fit-eyebox.png', 'fit-eye-0.png', 'closed-loop-max.png']));
  });
});
