import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vec3M } from '../../render/optics-config.js';
import {
  EyeboxWarp,
  loadWarpMap,
  parametricWarpMap,
  parseWarpMap,
  WARP_MAP_VERSION,
  warpMapToJson,
  type WarpMap,
} from '../../render/warp-map.js';
import { WARP_MIN_COLS, WARP_MIN_ROWS, WarpMesh } from '../../render/warp-mesh.js';
import { thrownBy } from '../support/errors.js';

const PANEL = { widthPx: 1280, heightPx: 480 };
const EYE_X_M = 1.6;
const EYE_Z_M = 1.2;
/** Three positions across the eyebox along y (left-right), like a camera slid across the eyebox. */
const LINE_EYES: Vec3M[] = [0.27, 0.37, 0.47].map((y) => ({ x: EYE_X_M, y, z: EYE_Z_M }));
const k1OfLine = (eye: Vec3M): number => -0.05 + 0.4 * (eye.y - 0.37);
const lineMap = parametricWarpMap({ panel: PANEL, eyePositionsM: LINE_EYES, k1Of: k1OfLine });

/** A 3 (y) x 2 (z) grid of eye positions. */
const GRID_EYES: Vec3M[] = [1.15, 1.25].flatMap((z) => [0.27, 0.37, 0.47].map((y) => ({ x: EYE_X_M, y, z })));
const k1OfGrid = (eye: Vec3M): number => -0.05 + 0.4 * (eye.y - 0.37) + 0.3 * (eye.z - 1.2);
const gridMap = parametricWarpMap({ panel: PANEL, eyePositionsM: GRID_EYES, k1Of: k1OfGrid });

/** A fresh, valid file object to break in one place. */
function goodFile(): Record<string, unknown> & { meshes: { eyeIndex: number; uvs: number[] }[]; grid: { cols: number; rows: number } } {
  return JSON.parse(warpMapToJson(lineMap)) as ReturnType<typeof goodFile>;
}

function expectAverage(mid: WarpMesh, a: WarpMesh, b: WarpMesh, tolerance = 1e-6): void {
  for (let k = 0; k < mid.uvs.length; k++) expect(Math.abs(mid.uvs[k]! - (a.uvs[k]! + b.uvs[k]!) / 2)).toBeLessThan(tolerance);
}

describe('warp-map file', () => {
  it('round trips to JSON and back byte-stably', () => {
    const text = warpMapToJson(lineMap);
    const back = parseWarpMap(JSON.parse(text), 'warp.json');
    expect(warpMapToJson(back)).toBe(text);
    expect(back.cols).toBe(WARP_MIN_COLS);
    expect(back.rows).toBe(WARP_MIN_ROWS);
    expect(back.eyePositionsM).toEqual(LINE_EYES);
    expect(back.source?.tool).toBe('parametricWarpMap');
    for (let e = 0; e < LINE_EYES.length; e++) expect(back.meshes[e]!.uvs).toEqual(lineMap.meshes[e]!.uvs);
    const file = JSON.parse(text) as { version: number; meshes: { uvs: number[] }[] };
    expect(file.version).toBe(WARP_MAP_VERSION);
    expect(file.meshes[0]!.uvs).toHaveLength(2 * (WARP_MIN_COLS + 1) * (WARP_MIN_ROWS + 1));
  });

  it('keeps the optional rmsArcmin and writes meshes in eye order whatever the file order', () => {
    const file = goodFile();
    file.meshes.reverse();
    file.source = { tool: 'arhud-calibrate', date: '2025-01-01', rmsArcmin: 1.8 };
    const map = parseWarpMap(file, 'warp.json');
    expect(map.source).toEqual({ tool: 'arhud-calibrate', date: '2025-01-01', rmsArcmin: 1.8 });
    expect(map.meshes[0]!.uvs).toEqual(lineMap.meshes[0]!.uvs);
    expect(parseWarpMap(JSON.parse(warpMapToJson(map))).meshes[2]!.uvs).toEqual(lineMap.meshes[2]!.uvs);
  });

  const bad: [string, (f: ReturnType<typeof goodFile>) => void, 'TypeError' | 'RangeError', RegExp][] = [
    ['wrong version', (f) => { f.version = 2; }, 'RangeError', /^warp\.json: field 'version' must be 1 .*got 2$/],
    ['too few cols', (f) => { f.grid.cols = 8; }, 'RangeError', /^warp\.json: field 'grid\.cols' must be >= 32, got 8$/],
    ['non-integer rows', (f) => { f.grid.rows = 16.5; }, 'TypeError', /^warp\.json: field 'grid\.rows' must be integer, got 16\.5$/],
    ['uvs length mismatch', (f) => { f.meshes[1]!.uvs.pop(); }, 'RangeError', /^warp\.json: field 'meshes\.1\.uvs' must have 2\*\(cols\+1\)\*\(rows\+1\) = 1122 values .*got 1121$/],
    ['NaN uv', (f) => { f.meshes[0]!.uvs[5] = NaN; }, 'TypeError', /^warp\.json: field 'meshes\.0\.uvs\.5' must be number, got NaN$/],
    ['Infinity eye position', (f) => { (f.eyePositionsM as Vec3M[])[1]!.y = Infinity; }, 'TypeError', /^warp\.json: field 'eyePositionsM\.1\.y' must be number, got Infinity$/],
    ['no eye positions', (f) => { f.eyePositionsM = []; }, 'RangeError', /^warp\.json: field 'eyePositionsM' must NOT have fewer than 1 items/],
    ['eye without mesh', (f) => { f.meshes.splice(1, 1); }, 'RangeError', /^warp\.json: field 'meshes' must hold one mesh for every eye position, got none for 'eyePositionsM\.1'$/],
    ['duplicate mesh', (f) => { f.meshes[2]!.eyeIndex = 0; }, 'RangeError', /^warp\.json: field 'meshes\.2\.eyeIndex' must be unique, got 0 again \(already used by 'meshes\.0'\)$/],
    ['mesh for an unknown eye', (f) => { f.meshes[2]!.eyeIndex = 7; }, 'RangeError', /^warp\.json: field 'meshes\.2\.eyeIndex' must be < 3 .*got 7$/],
    ['duplicate eye position', (f) => { (f.eyePositionsM as Vec3M[])[2] = { ...LINE_EYES[0]! }; }, 'RangeError', /^warp\.json: field 'eyePositionsM\.2' must differ from 'eyePositionsM\.0'/],
    ['unknown field', (f) => { f.colour = 'red'; }, 'TypeError', /^warp\.json: field 'colour' is not a known field$/],
    ['missing grid', (f) => { delete (f as Partial<typeof f>).grid; }, 'TypeError', /^warp\.json: field 'grid' is required$/],
    [
      'folded mesh',
      (f) => {
        // Swap the u of two horizontally adjacent vertices in row 3: the cell between them flips.
        const uvs = f.meshes[1]!.uvs;
        const k = (3 * (WARP_MIN_COLS + 1) + 10) * 2;
        [uvs[k], uvs[k + 2]] = [uvs[k + 2]!, uvs[k]!];
      },
      'RangeError',
      /^warp\.json: field 'meshes\.1\.uvs' is not a valid warp mesh: WarpMesh: 'uvs' grid folds or degenerates at cell/,
    ],
  ];
  for (const [name, breakIt, errorName, message] of bad) {
    it(`refuses ${name}, naming the field`, () => {
      const file = goodFile();
      breakIt(file);
      const error = thrownBy(() => parseWarpMap(file, 'warp.json'));
      expect(error.name).toBe(errorName);
      expect(error.message).toMatch(message);
    });
  }

  describe('loadWarpMap', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'warp-map-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('loads a written map and names the file in errors', async () => {
      const good = join(dir, 'warp.json');
      await writeFile(good, warpMapToJson(gridMap));
      expect(warpMapToJson(await loadWarpMap(good))).toBe(warpMapToJson(gridMap));
      const badPath = join(dir, 'bad.json');
      const file = goodFile();
      file.grid.cols = 8;
      await writeFile(badPath, JSON.stringify(file));
      await expect(loadWarpMap(badPath)).rejects.toThrow(`${badPath}: field 'grid.cols' must be >= 32, got 8`);
      await writeFile(badPath, '{ nope');
      await expect(loadWarpMap(badPath)).rejects.toThrow(/^loadWarpMap: .*bad\.json is not valid JSON/);
      await expect(loadWarpMap(join(dir, 'missing.json'))).rejects.toThrow(/^loadWarpMap: cannot read .*missing\.json/);
    });
  });

  it('parametricWarpMap builds the radial model per eye and refuses a non-finite k1', () => {
    const aspect = PANEL.widthPx / PANEL.heightPx;
    LINE_EYES.forEach((eye, e) => {
      expect(lineMap.meshes[e]!.uvs).toEqual(WarpMesh.radial(WARP_MIN_COLS, WARP_MIN_ROWS, k1OfLine(eye), aspect).uvs);
    });
    const error = thrownBy(() => parametricWarpMap({ panel: PANEL, eyePositionsM: LINE_EYES, k1Of: () => NaN }));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("parametricWarpMap: 'k1Of(eyePositionsM[0])' must be finite, got NaN");
  });
});

describe('EyeboxWarp', () => {
  const line = new EyeboxWarp(lineMap);
  const grid = new EyeboxWarp(gridMap);

  it('chooses the layout from the eye positions', () => {
    expect(line.layout).toBe('line');
    expect(grid.layout).toBe('grid');
    expect(new EyeboxWarp(parametricWarpMap({ panel: PANEL, eyePositionsM: [LINE_EYES[0]!], k1Of: k1OfLine })).layout).toBe('single');
    const scattered = [LINE_EYES[0]!, LINE_EYES[1]!, { x: EYE_X_M, y: 0.3, z: 1.25 }];
    expect(new EyeboxWarp(parametricWarpMap({ panel: PANEL, eyePositionsM: scattered, k1Of: k1OfLine })).layout).toBe('scattered');
  });

  it('reproduces the calibrated meshes exactly at the calibrated positions', () => {
    for (const [warp, map] of [[line, lineMap], [grid, gridMap]] as const) {
      map.eyePositionsM.forEach((eye, e) => {
        expect(warp.meshFor(eye).uvs).toEqual(map.meshes[e]!.uvs);
        expect(warp.lastClamped).toBe(false);
      });
    }
  });

  it('halfway between two positions gives the average of their meshes', () => {
    expectAverage(line.meshFor({ x: EYE_X_M, y: 0.32, z: EYE_Z_M }), lineMap.meshes[0]!, lineMap.meshes[1]!);
    expectAverage(line.meshFor({ x: EYE_X_M, y: 0.42, z: EYE_Z_M }), lineMap.meshes[1]!, lineMap.meshes[2]!);
    // Along a grid line (z = 1.15, rows 0) and across rows (y = 0.37).
    expectAverage(grid.meshFor({ x: EYE_X_M, y: 0.42, z: 1.15 }), gridMap.meshes[1]!, gridMap.meshes[2]!);
    expectAverage(grid.meshFor({ x: EYE_X_M, y: 0.37, z: 1.2 }), gridMap.meshes[1]!, gridMap.meshes[4]!);
  });

  it('clamps outside the eyebox and reports it, without extrapolating', () => {
    const out = line.meshFor({ x: EYE_X_M, y: 0.6, z: EYE_Z_M });
    expect(line.lastClamped).toBe(true);
    expect(line.lastClampDistanceM).toBeCloseTo(0.13, 9);
    expect(out.uvs).toEqual(lineMap.meshes[2]!.uvs);
    grid.meshFor({ x: EYE_X_M, y: 0.2, z: 1.4 });
    expect(grid.lastClamped).toBe(true);
    expect(grid.lastClampDistanceM).toBeCloseTo(Math.hypot(0.07, 0.15), 9);
    expect(grid.meshFor({ x: EYE_X_M, y: 0.2, z: 1.4 }).uvs).toEqual(gridMap.meshes[3]!.uvs);
    // Off the line / plane is projected, not clamped.
    expect(line.meshFor({ x: EYE_X_M + 0.05, y: 0.37, z: EYE_Z_M + 0.02 }).uvs).toEqual(lineMap.meshes[1]!.uvs);
    expect(line.lastClamped).toBe(false);
  });

  it('writes into a given mesh without replacing its arrays, and refuses a wrong grid', () => {
    const into = WarpMesh.identity();
    const { uvs, positions } = into;
    expect(line.meshFor({ x: EYE_X_M, y: 0.32, z: EYE_Z_M }, into)).toBe(into);
    expect(into.uvs).toBe(uvs);
    expect(into.positions).toBe(positions);
    expectAverage(into, lineMap.meshes[0]!, lineMap.meshes[1]!);
    const error = thrownBy(() => line.meshFor(LINE_EYES[0]!, WarpMesh.identity(WARP_MIN_COLS + 1, WARP_MIN_ROWS)));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("EyeboxWarp.meshFor: 'into' must be a 32x16 WarpMesh, got 33x16");
    expect(thrownBy(() => line.meshFor({ x: NaN, y: 0, z: 1 })).message).toMatch(/^EyeboxWarp\.meshFor: 'eyeM' must be finite/);
  });

  it('scattered layout is exact at calibrated positions and stays within the meshes', () => {
    const eyes = [LINE_EYES[0]!, LINE_EYES[2]!, { x: EYE_X_M, y: 0.37, z: 1.25 }];
    const map = parametricWarpMap({ panel: PANEL, eyePositionsM: eyes, k1Of: k1OfGrid });
    const warp = new EyeboxWarp(map);
    eyes.forEach((eye, e) => expect(warp.meshFor(eye).uvs).toEqual(map.meshes[e]!.uvs));
    warp.meshFor({ x: EYE_X_M, y: 0.37, z: 1.0 });
    expect(warp.lastClamped).toBe(true);
  });

  it('property: interpolated uvs lie between the bracketing meshes (line and grid)', () => {
    const into = WarpMesh.identity();
    const between = (value: number, bounds: number[]): boolean =>
      value >= Math.min(...bounds) - 1e-6 && value <= Math.max(...bounds) + 1e-6;
    fc.assert(
      fc.property(fc.double({ min: 0.27, max: 0.47, noNaN: true }), fc.double({ min: 1.15, max: 1.25, noNaN: true }), (yM, zM) => {
        line.meshFor({ x: EYE_X_M, y: yM, z: EYE_Z_M }, into);
        const i = yM <= 0.37 ? 0 : 1;
        for (let k = 0; k < into.uvs.length; k++) {
          if (!between(into.uvs[k]!, [lineMap.meshes[i]!.uvs[k]!, lineMap.meshes[i + 1]!.uvs[k]!])) return false;
        }
        grid.meshFor({ x: EYE_X_M, y: yM, z: zM }, into);
        const corners = [i, i + 1, i + 3, i + 4].map((e) => gridMap.meshes[e]!.uvs);
        for (let k = 0; k < into.uvs.length; k++) {
          if (!between(into.uvs[k]!, corners.map((c) => c[k]!))) return false;
        }
        return !line.lastClamped && !grid.lastClamped;
      }),
      { numRuns: 200 },
    );
  });
});

describe('warpMapToJson', () => {
  it('refuses a map whose meshes do not match its eye positions', () => {
    const broken: WarpMap = { ...lineMap, meshes: lineMap.meshes.slice(0, 2) };
    const error = thrownBy(() => warpMapToJson(broken));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("warpMapToJson: field 'meshes' must hold 3 meshes (one per eye position), got 2");
  });
});
