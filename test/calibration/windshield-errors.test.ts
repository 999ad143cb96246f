import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HudOpticsSimulator, simulateWindshieldCaptures } from '../../calibration/sim/index.js';
import { rejectedCalibrationPath } from '../../calibration/report/rejected.js';
import { CAPTURE_MANIFEST_FILE, WARP_MAP_FILE, calibrateWindshield, writeWindshieldCalibration } from '../../calibration/windshield/index.js';
import { loadWarpMap } from '../../render/warp-map.js';

describe('windshield calibration bad input', () => {
  let base: string;
  let manifestText: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'arhud-ws-bad-'));
    dirs.push(base);
    const sim = new HudOpticsSimulator();
    await simulateWindshieldCaptures(base, { simulator: sim, eyePositionsM: [sim.eyeboxCentreM] });
    manifestText = await readFile(join(base, CAPTURE_MANIFEST_FILE), 'utf8');
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function variant(edit: (m: Record<string, unknown>) => void, image?: Buffer): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'arhud-ws-bad-'));
    dirs.push(dir);
    const m = JSON.parse(manifestText) as Record<string, unknown>;
    edit(m);
    await writeFile(join(dir, CAPTURE_MANIFEST_FILE), JSON.stringify(m));
    if (image !== undefined) await writeFile(join(dir, 'eye-0.png'), image);
    else await copyFile(join(base, 'eye-0.png'), join(dir, 'eye-0.png'));
    return dir;
  }

  it('names a corrupt manifest field', async () => {
    const dir = await variant((m) => { (m.camera as Record<string, unknown>).fxPx = -3; });
    await expect(calibrateWindshield(dir)).rejects.toThrow(`${join(dir, CAPTURE_MANIFEST_FILE)}: field 'camera.fxPx' must be > 0, got -3`);
    const dir2 = await variant((m) => { (m.dotGrid as Record<string, unknown>).cols = 32; });
    await expect(calibrateWindshield(dir2)).rejects.toThrow(/field 'dotGrid.dots' must hold cols x rows = 544 dots, got 561/);
  });

  it('names a missing capture image', async () => {
    const dir = await variant((m) => { (m.captures as { file: string }[])[0]!.file = 'nope.png'; });
    await expect(calibrateWindshield(dir)).rejects.toThrow(`calibrateWindshield: cannot read capture image ${join(dir, 'nope.png')}`);
  });

  it('names a capture with no dots', async () => {
    const black = await sharp(Buffer.alloc(1280 * 720, 12), { raw: { width: 1280, height: 720, channels: 1 } }).png().toBuffer();
    const dir = await variant(() => undefined, black);
    await expect(calibrateWindshield(dir)).rejects.toThrow(new RegExp(`capture ${join(dir, 'eye-0.png')} has 0 of 561 grid dots indexed`));
  });

  it('writes a calibration over its limit as rejected, not loadable as a warp map', async () => {
    const dir = await variant(() => undefined);
    const output = join(dir, WARP_MAP_FILE);
    await writeFile(output, 'an earlier calibration'); // must survive a rejected recalibration
    const result = await calibrateWindshield(dir, { maxResidualArcmin: 0.001 });
    expect(result.status).toBe('rejected');
    expect(result.reason).toMatch(/exceeds the limit 0.001 arcmin/);
    const path = await writeWindshieldCalibration(output, result);
    expect(path).toBe(rejectedCalibrationPath(output));
    expect(await readFile(output, 'utf8')).toBe('an earlier calibration');
    await expect(loadWarpMap(path)).rejects.toThrow(`${path}: field 'version' must be 1`);
    const accepted = await calibrateWindshield(dir);
    expect(accepted.status).toBe('accepted');
    expect(await writeWindshieldCalibration(output, accepted)).toBe(output);
    expect((await loadWarpMap(join(dir, WARP_MAP_FILE))).meshes).toHaveLength(1);
  });
});
