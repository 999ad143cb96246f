import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadCameraCalibration } from '../../calibration/camera/index.js';
import { WINDSHIELD_TARGET_MAX_ARCMIN, WINDSHIELD_TARGET_MEDIAN_ARCMIN } from '../../calibration/windshield/index.js';
import { loadWarpMap } from '../../render/warp-map.js';
import { arhud } from '../support/cli.js';
import { DATA_DIR, tempDir } from '../support/data.js';

const BOARDS = path.join(DATA_DIR, 'opencv-chessboard');
const IMAGES = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '11', '12', '13', '14'].map((n) => path.join(BOARDS, `left${n}.jpg`));

describe('arhud calibrate camera', () => {
  it('calibrates the OpenCV chessboards, writes the file and the report, and prints it as JSON', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'camera.json');
    const run = await arhud(['calibrate', 'camera', ...IMAGES, '--board', '9x6', '--square', '25mm', '--fix-aspect-ratio', '-o', output, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const printed = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { fx: number; fy: number; status: string; board: { squareM: number } };
    expect(printed.status).toBe('accepted');
    expect(printed.fy).toBe(printed.fx);
    expect(printed.board.squareM).toBeCloseTo(0.025, 12);
    expect((await loadCameraCalibration(output)).fx).toBe(printed.fx);
    expect(run.stderr).toContain('views used 13 of 13');
    expect((await stat(path.join(dir, 'camera.report', 'residuals.png'))).size).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(path.join(dir, 'camera.report', 'report.json'), 'utf8'))).toMatchObject({ kind: 'camera', status: 'accepted' });
  });

  it('writes a calibration over its limit as rejected beside the output, keeps the good one, and exits 1', async () => {
    const dir = await tempDir();
    const output = path.join(dir, 'camera.json');
    await writeFile(output, 'the calibration in use');
    const run = await arhud(['calibrate', 'camera', ...IMAGES.slice(0, 4), '--board', '9x6', '--square', '2.5cm', '-o', output, '--max-rms', '0.01', '-q']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^REJECTED: /);
    expect(await readFile(output, 'utf8')).toBe('the calibration in use');
    await expect(loadCameraCalibration(path.join(dir, 'camera.rejected.json'))).rejects.toThrow(/rejected/);
  });

  it('names the images without a board when too few views remain', async () => {
    const dir = await tempDir();
    // A real road image at the chessboard camera's size: no board in it.
    const noBoard = path.join(dir, 'road.png');
    await sharp(path.join(DATA_DIR, 'pandaset-002', 'camera', '00.jpg')).resize(640, 480, { fit: 'fill' }).png().toFile(noBoard);
    const run = await arhud(['calibrate', 'camera', IMAGES[0]!, noBoard, '--board', '9x6', '--square', '25mm', '-o', path.join(dir, 'c.json')]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^arhud calibrate: calibrateCamera: too few views with a 9x6 board: 1 of 2.*left01\.jpg.*road\.png/);
  });

  it('rejects a malformed board or square size with exit code 2', async () => {
    const board = await arhud(['calibrate', 'camera', IMAGES[0]!, '--board', '9', '--square', '25mm']);
    expect(board.code).toBe(2);
    expect(board.stderr).toContain("--board takes inner corners as COLSxROWS with both >= 2 (e.g. 9x6), got '9'");
    const square = await arhud(['calibrate', 'camera', IMAGES[0]!, '--board', '9x6', '--square', '-3mm']);
    expect(square.code).toBe(2);
  });
});

describe('arhud calibrate simulate + windshield', () => {
  it('simulates captures, calibrates a warp map the renderer loads, and meets the closed-loop targets', async () => {
    const dir = await tempDir();
    const captures = path.join(dir, 'captures');
    const sim = await arhud(['calibrate', 'simulate', '-o', captures, '--hud-seed', '3']);
    expect(sim.code, sim.stderr).toBe(0);
    expect(sim.stdout).toContain('simulated 9 dot-grid captures');
    const output = path.join(dir, 'warp.json');
    const run = await arhud(['calibrate', 'windshield', captures, '-o', output, '--simulator-seed', '3', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { status: string; closedLoopMedianArcmin: number; closedLoopMaxArcmin: number };
    expect(summary.status).toBe('accepted');
    expect(summary.closedLoopMedianArcmin).toBeLessThanOrEqual(WINDSHIELD_TARGET_MEDIAN_ARCMIN);
    expect(summary.closedLoopMaxArcmin).toBeLessThanOrEqual(WINDSHIELD_TARGET_MAX_ARCMIN);
    const map = await loadWarpMap(output);
    expect(map.panel).toEqual({ widthPx: 1280, heightPx: 360 });
    expect((await stat(path.join(dir, 'warp.report', 'closed-loop-max.png'))).size).toBeGreaterThan(0);
    // The map drives the renderer.
    const png = path.join(dir, 'panel.png');
    const render = await arhud(['render', '--scene', 'docs/examples/hud-scene.json', '--warp', output, '-o', png]);
    expect(render.code, render.stderr).toBe(0);
    expect((await stat(png)).size).toBeGreaterThan(0);
  });
});
