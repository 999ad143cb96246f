/**
 * Windshield warp-map file: one calibrated warp mesh per eye position across the eyebox, shared by
 * the renderer and the calibration tool, and `EyeboxWarp`, which interpolates the mesh for the
 * tracked eye.
 *
 * File format (JSON, version 1):
 *   {
 *     "version": 1,
 *     "panel": { "widthPx": 1280, "heightPx": 480 },
 *     "grid": { "cols": 32, "rows": 16 },                   // cells; >= WARP_MIN_COLS x WARP_MIN_ROWS
 *     "eyePositionsM": [{ "x": 1.6, "y": 0.3, "z": 1.2 }, ...],   // vehicle frame, >= 1, distinct
 *     "meshes": [{ "eyeIndex": 0, "uvs": [u, v, u, v, ...] }, ...], // exactly one per eye position
 *     "source": { "tool": "arhud-calibrate", "date": "2025-01-01T00:00:00Z", "rmsArcmin": 1.8 }  // optional
 *   }
 * `uvs` holds 2 * (cols + 1) * (rows + 1) values in WarpMesh order (vertex (i, j) at j * (cols + 1) + i,
 * top-down); the panel positions are implicit, the regular grid (i / cols, j / rows). Values are
 * stored as float32 (written in their shortest round-tripping decimal form).
 *
 * Frames and units: eye positions in the vehicle frame (ISO 8855: x forward, y left, z up; metres).
 */
import { readJsonFile, schemaError, shownValue as shown } from '../pipeline/index.js';
import { Ajv } from 'ajv';
import { PANEL_MAX_PX, type Vec3M } from './optics-config.js';
import { WARP_MIN_COLS, WARP_MIN_ROWS, WarpMesh } from './warp-mesh.js';

/** The only warp-map file version this module reads and writes. */
export const WARP_MAP_VERSION = 1;
/** Largest grid accepted on either axis, cells. */
export const WARP_MAX_CELLS = 1024;
/** Largest number of calibrated eye positions accepted. */
export const WARP_MAX_EYE_POSITIONS = 256;
/** Eye positions closer than this are the same position; also the collinearity/grid tolerance, metres. */
export const EYE_POSITION_TOLERANCE_M = 1e-6;

/** Provenance of a warp map. */
export interface WarpMapSource {
  /** Tool that produced the map (e.g. 'arhud-calibrate', 'parametricWarpMap'). */
  tool: string;
  /** When it was produced, ISO 8601. */
  date: string;
  /** Closed-loop RMS residual of the calibration, arcminutes (absent for parametric maps). */
  rmsArcmin?: number;
}

/** A validated warp map in memory: `meshes[e]` is the mesh measured from `eyePositionsM[e]`. */
export interface WarpMap {
  /** Panel resolution the map was measured for, pixels. */
  panel: { widthPx: number; heightPx: number };
  /** Grid cells horizontally. */
  cols: number;
  /** Grid cells vertically. */
  rows: number;
  /** Calibrated eye positions, vehicle frame, metres. */
  eyePositionsM: readonly Vec3M[];
  /** One mesh per eye position, same order. */
  meshes: readonly WarpMesh[];
  /** Provenance, if known. */
  source?: WarpMapSource;
}

/** JSON Schema of an eye position in the vehicle frame, metres (shared by calibration capture manifests). */
export const EYE_POSITION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['x', 'y', 'z'],
  properties: {
    x: { type: 'number', minimum: -5, maximum: 10 },
    y: { type: 'number', minimum: -2, maximum: 2 },
    z: { type: 'number', exclusiveMinimum: 0, maximum: 4 },
  },
} as const;

/** JSON Schema of the warp-map file (dependent lengths and uniqueness are checked by `parseWarpMap`). */
export const WARP_MAP_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'panel', 'grid', 'eyePositionsM', 'meshes'],
  properties: {
    version: { const: WARP_MAP_VERSION },
    panel: {
      type: 'object',
      additionalProperties: false,
      required: ['widthPx', 'heightPx'],
      properties: {
        widthPx: { type: 'integer', minimum: 1, maximum: PANEL_MAX_PX },
        heightPx: { type: 'integer', minimum: 1, maximum: PANEL_MAX_PX },
      },
    },
    grid: {
      type: 'object',
      additionalProperties: false,
      required: ['cols', 'rows'],
      properties: {
        cols: { type: 'integer', minimum: WARP_MIN_COLS, maximum: WARP_MAX_CELLS },
        rows: { type: 'integer', minimum: WARP_MIN_ROWS, maximum: WARP_MAX_CELLS },
      },
    },
    eyePositionsM: { type: 'array', minItems: 1, maxItems: WARP_MAX_EYE_POSITIONS, items: EYE_POSITION_SCHEMA },
    meshes: {
      type: 'array',
      minItems: 1,
      maxItems: WARP_MAX_EYE_POSITIONS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['eyeIndex', 'uvs'],
        properties: {
          eyeIndex: { type: 'integer', minimum: 0 },
          uvs: { type: 'array', items: { type: 'number' } },
        },
      },
    },
    source: {
      type: 'object',
      additionalProperties: false,
      required: ['tool', 'date'],
      properties: {
        tool: { type: 'string', minLength: 1 },
        date: { type: 'string', minLength: 1 },
        rmsArcmin: { type: 'number', minimum: 0 },
      },
    },
  },
} as const;

/** The JSON shape of a version-1 warp-map file. */
interface WarpMapFileV1 {
  version: 1;
  panel: { widthPx: number; heightPx: number };
  grid: { cols: number; rows: number };
  eyePositionsM: Vec3M[];
  meshes: { eyeIndex: number; uvs: number[] }[];
  source?: WarpMapSource;
}

// strictNumbers: NaN and Infinity are not numbers (a warp map built in memory may carry them).
const ajv = new Ajv({ strict: true, allErrors: false, strictNumbers: true });
const validateWarpMap = ajv.compile(WARP_MAP_SCHEMA);

/**
 * Validates a parsed warp-map file and builds its meshes. `source` names the file in errors.
 * Throws TypeError (wrong kind, unknown or missing field) or RangeError (value out of range, uvs
 * length not matching the grid, an eye position without or with two meshes, duplicate eye
 * positions, a folded mesh), the message starting `<source>: field '<path>' ...`.
 */
export function parseWarpMap(json: unknown, source = '(in-memory warp map)'): WarpMap {
  const version = (json as { version?: unknown } | null)?.version;
  if (typeof json === 'object' && json !== null && !Array.isArray(json) && version !== WARP_MAP_VERSION) {
    throw new RangeError(`${source}: field 'version' must be ${WARP_MAP_VERSION} (the only version this reader knows), got ${shown(version)}`);
  }
  if (!validateWarpMap(json)) throw schemaError(source, validateWarpMap.errors![0]!, json);
  const file = json as WarpMapFileV1;
  const { cols, rows } = file.grid;
  const eyes = file.eyePositionsM;
  for (let e = 1; e < eyes.length; e++) {
    for (let f = 0; f < e; f++) {
      if (distanceM(eyes[e]!, eyes[f]!) < EYE_POSITION_TOLERANCE_M) {
        throw new RangeError(`${source}: field 'eyePositionsM.${e}' must differ from 'eyePositionsM.${f}', got the same position (${vecText(eyes[e]!)})`);
      }
    }
  }
  const expected = 2 * (cols + 1) * (rows + 1);
  const meshOf: (number | undefined)[] = new Array<number | undefined>(eyes.length).fill(undefined);
  file.meshes.forEach((m, k) => {
    if (m.eyeIndex >= eyes.length) {
      throw new RangeError(`${source}: field 'meshes.${k}.eyeIndex' must be < ${eyes.length} (the number of eye positions), got ${m.eyeIndex}`);
    }
    const earlier = meshOf[m.eyeIndex];
    if (earlier !== undefined) {
      throw new RangeError(`${source}: field 'meshes.${k}.eyeIndex' must be unique, got ${m.eyeIndex} again (already used by 'meshes.${earlier}')`);
    }
    meshOf[m.eyeIndex] = k;
    if (m.uvs.length !== expected) {
      throw new RangeError(`${source}: field 'meshes.${k}.uvs' must have 2*(cols+1)*(rows+1) = ${expected} values for the ${cols}x${rows} grid, got ${m.uvs.length}`);
    }
  });
  const missing = meshOf.indexOf(undefined);
  if (missing >= 0) {
    throw new RangeError(`${source}: field 'meshes' must hold one mesh for every eye position, got none for 'eyePositionsM.${missing}'`);
  }
  const positions = gridPositions(cols, rows);
  const meshes = meshOf.map((k) => {
    const uvs = Float32Array.from(file.meshes[k!]!.uvs);
    try {
      return new WarpMesh(cols, rows, positions.slice(), uvs);
    } catch (error) {
      throw new RangeError(`${source}: field 'meshes.${k}.uvs' is not a valid warp mesh: ${(error as Error).message}`, { cause: error });
    }
  });
  const map: WarpMap = {
    panel: { ...file.panel },
    cols,
    rows,
    eyePositionsM: eyes.map((p) => ({ x: p.x, y: p.y, z: p.z })),
    meshes,
  };
  if (file.source !== undefined) map.source = { ...file.source };
  return map;
}

/** Reads and validates a warp-map file; errors name the file (and the field, see `parseWarpMap`). */
export async function loadWarpMap(path: string): Promise<WarpMap> {
  const json = await readJsonFile(path, 'loadWarpMap');
  return parseWarpMap(json, path);
}

/** Shortest decimal that reads back as the same float32 (so writing is stable across round trips). */
function float32Text(value: number): string {
  const f = Math.fround(value);
  if (Object.is(f, -0)) return '0';
  for (let p = 1; p < 9; p++) {
    const text = String(Number(f.toPrecision(p)));
    if (Math.fround(Number(text)) === f) return text;
  }
  return String(Number(f.toPrecision(9)));
}

/**
 * Serialises a warp map as version-1 JSON text (meshes in eye order, one mesh per line, uvs as
 * float32). The map is validated first (via `parseWarpMap` on the result), so a map that cannot be
 * read back is refused here. Writing what `parseWarpMap` returns gives the same bytes again.
 */
export function warpMapToJson(map: WarpMap): string {
  const where = 'warpMapToJson';
  if (map.meshes.length !== map.eyePositionsM.length) {
    throw new RangeError(`${where}: field 'meshes' must hold ${map.eyePositionsM.length} meshes (one per eye position), got ${map.meshes.length}`);
  }
  map.meshes.forEach((m, e) => {
    if (!(m instanceof WarpMesh)) throw new TypeError(`${where}: field 'meshes.${e}' must be a WarpMesh`);
    if (m.cols !== map.cols || m.rows !== map.rows) {
      throw new RangeError(`${where}: field 'meshes.${e}' grid must be ${map.cols}x${map.rows}, got ${m.cols}x${m.rows}`);
    }
  });
  const lines: string[] = [
    '{',
    `  "version": ${WARP_MAP_VERSION},`,
    `  "panel": ${JSON.stringify({ widthPx: map.panel.widthPx, heightPx: map.panel.heightPx })},`,
    `  "grid": ${JSON.stringify({ cols: map.cols, rows: map.rows })},`,
    '  "eyePositionsM": [',
    map.eyePositionsM.map((p) => `    ${JSON.stringify({ x: p.x, y: p.y, z: p.z })}`).join(',\n'),
    '  ],',
    '  "meshes": [',
    map.meshes
      .map((m, e) => `    {"eyeIndex":${e},"uvs":[${Array.from(m.uvs, float32Text).join(',')}]}`)
      .join(',\n'),
    map.source === undefined ? '  ]' : '  ],',
  ];
  if (map.source !== undefined) {
    const { tool, date, rmsArcmin } = map.source;
    lines.push(`  "source": ${JSON.stringify(rmsArcmin === undefined ? { tool, date } : { tool, date, rmsArcmin })}`);
  }
  lines.push('}', '');
  const text = lines.join('\n');
  parseWarpMap(JSON.parse(text), where);
  return text;
}

/** Options of `parametricWarpMap`. */
export interface ParametricWarpMapOptions {
  /** Panel resolution, pixels (its aspect ratio scales the radial model). */
  panel: { widthPx: number; heightPx: number };
  /** Grid cells horizontally; default WARP_MIN_COLS. */
  cols?: number;
  /** Grid cells vertically; default WARP_MIN_ROWS. */
  rows?: number;
  /** Eye positions to build a mesh for, vehicle frame, metres. */
  eyePositionsM: readonly Vec3M[];
  /** Radial coefficient k1 of the windshield seen from `eyeM` (see WarpMesh.radial). */
  k1Of: (eyeM: Vec3M) => number;
  /** Provenance; default { tool: 'parametricWarpMap', date: 1970-01-01 } so output is reproducible. */
  source?: WarpMapSource;
}

/**
 * A warp map from the radial k1 model (WarpMesh.radial), one mesh per eye position: the stand-in
 * until the calibration tool produces measured maps. The result passes the same checks as a file.
 */
export function parametricWarpMap(options: ParametricWarpMapOptions): WarpMap {
  const { panel, eyePositionsM, k1Of } = options;
  const cols = options.cols ?? WARP_MIN_COLS;
  const rows = options.rows ?? WARP_MIN_ROWS;
  if (typeof k1Of !== 'function') throw new TypeError(`parametricWarpMap: 'k1Of' must be a function`);
  if (!Array.isArray(eyePositionsM)) throw new TypeError(`parametricWarpMap: 'eyePositionsM' must be an array`);
  const aspect = panel.widthPx / panel.heightPx;
  const file: WarpMapFileV1 = {
    version: 1,
    panel: { widthPx: panel.widthPx, heightPx: panel.heightPx },
    grid: { cols, rows },
    eyePositionsM: eyePositionsM.map((p) => ({ x: p.x, y: p.y, z: p.z })),
    meshes: eyePositionsM.map((eyeM, e) => {
      const k1 = k1Of(eyeM);
      if (!Number.isFinite(k1)) throw new RangeError(`parametricWarpMap: 'k1Of(eyePositionsM[${e}])' must be finite, got ${k1}`);
      return { eyeIndex: e, uvs: Array.from(WarpMesh.radial(cols, rows, k1, aspect).uvs) };
    }),
    source: options.source ?? { tool: 'parametricWarpMap', date: '1970-01-01T00:00:00.000Z' },
  };
  return parseWarpMap(file, 'parametricWarpMap');
}

/** How EyeboxWarp interpolates, chosen from the layout of the calibrated eye positions. */
export type EyeboxLayout = 'single' | 'line' | 'grid' | 'scattered';

/**
 * The warp mesh for any eye position, interpolated between the calibrated meshes of a warp map.
 *
 * The method depends on the layout of the calibrated eye positions (`layout`):
 * - 'single': one position; its mesh is used everywhere.
 * - 'line': all positions on one line (any direction, e.g. spaced along y across the eyebox). The eye
 *   is projected onto the line and the two bracketing meshes are blended linearly: exact at the
 *   calibrated positions, linear between them (halfway = average).
 * - 'grid': the positions form a full tensor grid along the vehicle axes (e.g. 3 y x 3 z, or
 *   2 x 2 x 2): multilinear (bi-/trilinear) blending over the surrounding cell; exact at calibrated
 *   positions, linear along every grid line. Axes on which all positions agree are ignored.
 * - 'scattered': anything else: inverse-distance weighting (power 2) over all positions. Exact at the
 *   calibrated positions, but NOT linear between them, and the clamp is to the axis-aligned bounding
 *   box of the positions, which can be larger than their convex hull.
 *
 * No extrapolation: in 'line' and 'grid' the eye is clamped to the calibrated range (the convex hull
 * within the line/grid's own axes); the eye's offset across the line (or along ignored axes) carries no
 * information and is projected away, not counted as clamping. `lastClamped` and `lastClampDistanceM`
 * report the last call. Blending unfolded meshes can in principle fold a cell; `meshFor` with `into`
 * does not re-check (the per-frame path allocates nothing), without `into` the new mesh is checked.
 */
export class EyeboxWarp {
  /** Interpolation method chosen from the eye-position layout. */
  readonly layout: EyeboxLayout;
  /** Grid cells horizontally. */
  readonly cols: number;
  /** Grid cells vertically. */
  readonly rows: number;
  /** Whether the last `meshFor` clamped the eye to the calibrated range. */
  get lastClamped(): boolean {
    return this.#lastClampDistanceM > 0;
  }
  /** How far the last `meshFor` moved the (projected) eye to bring it into the calibrated range, metres (0 inside). */
  get lastClampDistanceM(): number {
    return this.#lastClampDistanceM;
  }

  readonly #meshes: readonly WarpMesh[];
  readonly #positions: Float64Array; // x, y, z per calibrated eye
  readonly #origin = new Float64Array(3);
  /** Axis-aligned bounding box of the calibrated positions (the 'scattered' clamp). */
  readonly #boxLo = new Float64Array(3).fill(Infinity);
  readonly #boxHi = new Float64Array(3).fill(-Infinity);
  /** Unit axes the eye is projected on (3 per axis); one for 'line', 1-3 vehicle axes for 'grid'. */
  readonly #axes: Float64Array;
  /** Sorted distinct coordinates along each axis. */
  readonly #ticks: Float64Array[];
  /** Mesh index of each grid node, row-major over the axes (last axis fastest). */
  readonly #nodeMesh: Int32Array;
  // Scratch (no per-call allocation).
  readonly #cell: Int32Array;
  readonly #t: Float64Array;
  readonly #weights: Float64Array;
  readonly #wMesh: Int32Array;
  #lastClampDistanceM = 0;

  /** Builds the interpolator; the map's meshes are shared, not copied. */
  constructor(map: WarpMap) {
    if (map.meshes.length === 0 || map.meshes.length !== map.eyePositionsM.length) {
      throw new RangeError(`EyeboxWarp: field 'meshes' must hold one mesh per eye position (${map.eyePositionsM.length}), got ${map.meshes.length}`);
    }
    this.cols = map.cols;
    this.rows = map.rows;
    this.#meshes = map.meshes;
    const n = map.eyePositionsM.length;
    this.#positions = new Float64Array(n * 3);
    map.eyePositionsM.forEach((p, e) => this.#positions.set([p.x, p.y, p.z], e * 3));
    const p = this.#positions;
    this.#origin.set(p.subarray(0, 3));
    for (let e = 0; e < n; e++) {
      for (let c = 0; c < 3; c++) {
        this.#boxLo[c] = Math.min(this.#boxLo[c]!, p[e * 3 + c]!);
        this.#boxHi[c] = Math.max(this.#boxHi[c]!, p[e * 3 + c]!);
      }
    }

    let axes: number[] = [];
    let layout: EyeboxLayout;
    if (n === 1) {
      layout = 'single';
    } else {
      // Line through the two positions farthest apart; collinear if every position lies on it.
      let a = 0, b = 1, best = -1;
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
        const d = this.#dist2(i, j);
        if (d > best) { best = d; a = i; b = j; }
      }
      const len = Math.sqrt(best);
      const dir = [0, 1, 2].map((c) => (p[b * 3 + c]! - p[a * 3 + c]!) / len);
      let collinear = true;
      for (let i = 0; i < n && collinear; i++) {
        const v = [0, 1, 2].map((c) => p[i * 3 + c]! - p[a * 3 + c]!);
        const s = v[0]! * dir[0]! + v[1]! * dir[1]! + v[2]! * dir[2]!;
        const off = Math.hypot(v[0]! - s * dir[0]!, v[1]! - s * dir[1]!, v[2]! - s * dir[2]!);
        collinear = off <= EYE_POSITION_TOLERANCE_M;
      }
      if (collinear) {
        layout = 'line';
        axes = dir;
      } else {
        layout = 'grid';
        for (let c = 0; c < 3; c++) {
          const unit = [0, 0, 0];
          unit[c] = 1;
          if (distinct(p, c, n).length > 1) axes.push(...unit);
        }
      }
    }
    const axisCount = axes.length / 3;
    this.#axes = Float64Array.from(axes);
    const coords = (e: number, k: number): number => {
      let s = 0;
      for (let c = 0; c < 3; c++) s += (p[e * 3 + c]! - this.#origin[c]!) * this.#axes[k * 3 + c]!;
      return s;
    };
    this.#ticks = [];
    for (let k = 0; k < axisCount; k++) {
      const values = Array.from({ length: n }, (_, e) => coords(e, k));
      this.#ticks.push(Float64Array.from(clusterSorted(values)));
    }
    let nodes = 1;
    for (const t of this.#ticks) nodes *= t.length;
    this.#nodeMesh = new Int32Array(nodes).fill(-1);
    if (layout !== 'single') {
      if (nodes !== n) layout = 'scattered';
      for (let e = 0; e < n && layout !== 'scattered'; e++) {
        let node = 0;
        for (let k = 0; k < axisCount; k++) {
          const ticks = this.#ticks[k]!;
          node = node * ticks.length + nearestIndex(ticks, coords(e, k));
        }
        if (this.#nodeMesh[node] !== -1) layout = 'scattered';
        this.#nodeMesh[node] = e;
      }
    }
    if (layout === 'scattered') {
      this.#ticks = [];
      this.#axes = new Float64Array(0);
      this.#nodeMesh = new Int32Array(0);
    }
    this.layout = layout;
    const corners = layout === 'scattered' ? n : 1 << this.#ticks.length;
    this.#cell = new Int32Array(this.#ticks.length);
    this.#t = new Float64Array(this.#ticks.length);
    this.#weights = new Float64Array(corners);
    this.#wMesh = new Int32Array(corners);
  }

  /**
   * The warp mesh for an eye at `eyeM` (vehicle frame, metres). Writes into `into` when given (its
   * grid must match; nothing is allocated), else returns a new mesh. Sets `lastClamped`.
   */
  meshFor(eyeM: Vec3M, into?: WarpMesh): WarpMesh {
    const ex = eyeM.x, ey = eyeM.y, ez = eyeM.z;
    if (!Number.isFinite(ex) || !Number.isFinite(ey) || !Number.isFinite(ez)) {
      throw new RangeError(`EyeboxWarp.meshFor: 'eyeM' must be finite, got (${ex}, ${ey}, ${ez})`);
    }
    if (into !== undefined && (!(into instanceof WarpMesh) || into.cols !== this.cols || into.rows !== this.rows)) {
      throw new RangeError(`EyeboxWarp.meshFor: 'into' must be a ${this.cols}x${this.rows} WarpMesh, got ${into instanceof WarpMesh ? `${into.cols}x${into.rows}` : typeof into}`);
    }
    const count = this.layout === 'scattered' ? this.#scatteredWeights(ex, ey, ez) : this.#gridWeights(ex, ey, ez);
    const first = this.#meshes[this.#wMesh[0]!]!;
    const out = into ?? new WarpMesh(this.cols, this.rows, first.positions.slice(), first.uvs.slice());
    out.positions.set(first.positions);
    const uvs = out.uvs;
    const len = uvs.length;
    for (let k = 0; k < len; k++) uvs[k] = 0;
    for (let c = 0; c < count; c++) {
      const w = this.#weights[c]!;
      if (w === 0) continue;
      const src = this.#meshes[this.#wMesh[c]!]!.uvs;
      for (let k = 0; k < len; k++) uvs[k] = uvs[k]! + w * src[k]!;
    }
    return into ?? new WarpMesh(this.cols, this.rows, out.positions, out.uvs);
  }

  /** Multilinear weights over the cell around the clamped, projected eye; returns the corner count. */
  #gridWeights(ex: number, ey: number, ez: number): number {
    const axisCount = this.#ticks.length;
    let clamp2 = 0;
    for (let k = 0; k < axisCount; k++) {
      const ax = this.#axes;
      let s = (ex - this.#origin[0]!) * ax[k * 3]! + (ey - this.#origin[1]!) * ax[k * 3 + 1]! + (ez - this.#origin[2]!) * ax[k * 3 + 2]!;
      const ticks = this.#ticks[k]!;
      const lo = ticks[0]!, hi = ticks[ticks.length - 1]!;
      if (s < lo) { clamp2 += (lo - s) ** 2; s = lo; }
      if (s > hi) { clamp2 += (s - hi) ** 2; s = hi; }
      let i = 0;
      while (i < ticks.length - 2 && s > ticks[i + 1]!) i++;
      this.#cell[k] = i;
      this.#t[k] = (s - ticks[i]!) / (ticks[i + 1]! - ticks[i]!);
    }
    this.#lastClampDistanceM = Math.sqrt(clamp2);
    const corners = 1 << axisCount;
    for (let c = 0; c < corners; c++) {
      let w = 1;
      let node = 0;
      for (let k = 0; k < axisCount; k++) {
        const upper = (c >> (axisCount - 1 - k)) & 1;
        const t = this.#t[k]!;
        w *= upper ? t : 1 - t;
        node = node * this.#ticks[k]!.length + this.#cell[k]! + upper;
      }
      this.#weights[c] = w;
      this.#wMesh[c] = axisCount === 0 ? 0 : this.#nodeMesh[node]!;
    }
    return corners;
  }

  /** Inverse-distance (power 2) weights over all positions after clamping to their bounding box. */
  #scatteredWeights(ex: number, ey: number, ez: number): number {
    const p = this.#positions;
    const n = this.#meshes.length;
    const lo = this.#boxLo, hi = this.#boxHi;
    const cx = Math.min(hi[0]!, Math.max(lo[0]!, ex));
    const cy = Math.min(hi[1]!, Math.max(lo[1]!, ey));
    const cz = Math.min(hi[2]!, Math.max(lo[2]!, ez));
    const clamp2 = (cx - ex) ** 2 + (cy - ey) ** 2 + (cz - ez) ** 2;
    this.#lastClampDistanceM = Math.sqrt(clamp2);
    let sum = 0;
    let exact = -1;
    for (let e = 0; e < n; e++) {
      const d2 = (p[e * 3]! - cx) ** 2 + (p[e * 3 + 1]! - cy) ** 2 + (p[e * 3 + 2]! - cz) ** 2;
      if (d2 < EYE_POSITION_TOLERANCE_M ** 2) exact = e;
      const w = 1 / Math.max(d2, Number.MIN_VALUE);
      this.#weights[e] = w;
      this.#wMesh[e] = e;
      sum += w;
    }
    for (let e = 0; e < n; e++) this.#weights[e] = exact < 0 ? this.#weights[e]! / sum : e === exact ? 1 : 0;
    return n;
  }

  #dist2(i: number, j: number): number {
    const p = this.#positions;
    return (p[i * 3]! - p[j * 3]!) ** 2 + (p[i * 3 + 1]! - p[j * 3 + 1]!) ** 2 + (p[i * 3 + 2]! - p[j * 3 + 2]!) ** 2;
  }
}

function distinct(p: Float64Array, c: number, n: number): number[] {
  return clusterSorted(Array.from({ length: n }, (_, e) => p[e * 3 + c]!));
}

/** Sorted values with those closer than EYE_POSITION_TOLERANCE_M merged. */
function clusterSorted(values: number[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  const out: number[] = [];
  for (const v of sorted) if (out.length === 0 || v - out[out.length - 1]! > EYE_POSITION_TOLERANCE_M) out.push(v);
  return out;
}

function nearestIndex(ticks: Float64Array, v: number): number {
  let best = 0;
  for (let i = 1; i < ticks.length; i++) if (Math.abs(ticks[i]! - v) < Math.abs(ticks[best]! - v)) best = i;
  return best;
}

function gridPositions(cols: number, rows: number): Float32Array {
  const out = new Float32Array((cols + 1) * (rows + 1) * 2);
  for (let j = 0, k = 0; j <= rows; j++) {
    for (let i = 0; i <= cols; i++, k += 2) {
      out[k] = i / cols;
      out[k + 1] = j / rows;
    }
  }
  return out;
}

function distanceM(a: Vec3M, b: Vec3M): number {
  return Math.hypot(a.x - b.x, a.y - b.y, a.z - b.z);
}

function vecText(v: Vec3M): string {
  return `${v.x}, ${v.y}, ${v.z}`;
}
