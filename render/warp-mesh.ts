// Windshield pre-warp as a grid mesh: vertices sit at panel positions and carry UVs into the rendered
// overlay image. The panel shows, at each vertex, the overlay content found at that vertex's UV;
// between vertices the GPU interpolates linearly.
//
// Conventions (both top-down, like image rows and the panel readback):
//   panel position (x, y): x in [0, 1] left -> right, y in [0, 1] top -> bottom of the panel.
//   overlay uv (u, v):     u in [0, 1] left -> right, v in [0, 1] top -> bottom of the overlay image.
// Vertex (i, j), i in 0..cols, j in 0..rows, is stored at index j * (cols + 1) + i.

/** Minimum grid columns (cells) a warp map must have. */
export const WARP_MIN_COLS = 32;
/** Minimum grid rows (cells) a warp map must have. */
export const WARP_MIN_ROWS = 16;

/** Maps a panel position (x, y) to the overlay uv it shows: [u, v]. Both top-down, in [0, 1] for the panel. */
export type WarpFunction = (x: number, y: number) => readonly [number, number];

function checkGrid(where: string, cols: unknown, rows: unknown): void {
  for (const [name, value, min] of [['cols', cols, WARP_MIN_COLS], ['rows', rows, WARP_MIN_ROWS]] as const) {
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw new TypeError(`${where}: '${name}' must be an integer, got ${String(value)}`);
    }
    if (value < min) throw new RangeError(`${where}: '${name}' must be >= ${min}, got ${value}`);
  }
}

function checkArray(where: string, name: string, arr: unknown, expected: number): void {
  if (!(arr instanceof Float32Array)) throw new TypeError(`${where}: '${name}' must be a Float32Array`);
  if (arr.length !== expected) {
    throw new RangeError(`${where}: '${name}' must have ${expected} values, got ${arr.length}`);
  }
  for (let k = 0; k < arr.length; k++) {
    if (!Number.isFinite(arr[k])) throw new RangeError(`${where}: '${name}[${k}]' must be finite, got ${arr[k]}`);
  }
}

/** Refuses a uv grid that folds over (a cell whose orientation flips would show content twice). */
function checkNoFold(cols: number, rows: number, uvs: Float32Array): void {
  const at = (i: number, j: number, c: number): number => uvs[(j * (cols + 1) + i) * 2 + c] ?? 0;
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < cols; i++) {
      // Cross product of the cell's edges along +i and +j: positive for an unfolded top-down grid.
      const ax = at(i + 1, j, 0) - at(i, j, 0);
      const ay = at(i + 1, j, 1) - at(i, j, 1);
      const bx = at(i, j + 1, 0) - at(i, j, 0);
      const by = at(i, j + 1, 1) - at(i, j, 1);
      const cross = ax * by - ay * bx;
      if (!(cross > 0)) {
        throw new RangeError(`WarpMesh: 'uvs' grid folds or degenerates at cell (${i}, ${j}): edge cross product ${cross}, expected > 0`);
      }
    }
  }
}

/** A cols x rows cell warp grid (see the conventions at the top of this file). */
export class WarpMesh {
  /** Grid cells horizontally (>= WARP_MIN_COLS). */
  readonly cols: number;
  /** Grid cells vertically (>= WARP_MIN_ROWS). */
  readonly rows: number;
  /** Panel positions, x,y per vertex, (cols+1)*(rows+1)*2 values, top-down in [0, 1]. */
  readonly positions: Float32Array;
  /** Overlay uvs, u,v per vertex, (cols+1)*(rows+1)*2 values, top-down. */
  readonly uvs: Float32Array;
  /** Triangle indices, two triangles per cell (counter-clockwise with y up). */
  readonly indices: Uint16Array | Uint32Array;

  /** Builds a mesh from explicit arrays (e.g. a calibrated warp map); validates every field. */
  constructor(cols: number, rows: number, positions: Float32Array, uvs: Float32Array) {
    checkGrid('WarpMesh', cols, rows);
    const n = (cols + 1) * (rows + 1) * 2;
    checkArray('WarpMesh', 'positions', positions, n);
    checkArray('WarpMesh', 'uvs', uvs, n);
    checkNoFold(cols, rows, uvs);
    this.cols = cols;
    this.rows = rows;
    this.positions = positions;
    this.uvs = uvs;
    this.indices = WarpMesh.#gridIndices(cols, rows);
  }

  /** Vertex count, (cols + 1) * (rows + 1). */
  get vertexCount(): number {
    return (this.cols + 1) * (this.rows + 1);
  }

  /** The identity warp: every panel position shows the same overlay position. */
  static identity(cols = WARP_MIN_COLS, rows = WARP_MIN_ROWS): WarpMesh {
    return WarpMesh.fromFunction(cols, rows, (x, y) => [x, y]);
  }

  /** A parametric warp: uv of each vertex = fn(panel x, panel y); throws naming the vertex on a non-finite result. */
  static fromFunction(cols: number, rows: number, fn: WarpFunction): WarpMesh {
    checkGrid('WarpMesh.fromFunction', cols, rows);
    if (typeof fn !== 'function') throw new TypeError(`WarpMesh.fromFunction: 'fn' must be a function`);
    const n = (cols + 1) * (rows + 1) * 2;
    const positions = new Float32Array(n);
    const uvs = new Float32Array(n);
    for (let j = 0, k = 0; j <= rows; j++) {
      for (let i = 0; i <= cols; i++, k += 2) {
        const x = i / cols;
        const y = j / rows;
        const [u, v] = fn(x, y);
        if (!Number.isFinite(u) || !Number.isFinite(v)) {
          throw new RangeError(`WarpMesh.fromFunction: 'fn(${x}, ${y})' must return finite [u, v], got [${u}, ${v}]`);
        }
        positions[k] = x;
        positions[k + 1] = y;
        uvs[k] = u;
        uvs[k + 1] = v;
      }
    }
    return new WarpMesh(cols, rows, positions, uvs);
  }

  /**
   * Radial (k1) pre-distortion about the panel centre: uv = c + d * (1 + k1 * r^2), with d the
   * offset from the centre and r measured in panel heights (x scaled by `aspect` = width / height).
   * k1 < 0: panel points away from the centre show overlay content from nearer the centre, so the
   * panel image is stretched outwards towards the edges (straight overlay lines bow, corners pull out);
   * the windshield's opposite (barrel-type) distortion undoes it. k1 > 0 the reverse. Too strong a
   * k1 folds the grid and is refused by the constructor. A stand-in until calibrated maps exist.
   */
  static radial(cols: number, rows: number, k1: number, aspect = 1): WarpMesh {
    if (!Number.isFinite(k1)) throw new RangeError(`WarpMesh.radial: 'k1' must be finite, got ${k1}`);
    if (!(aspect > 0)) throw new RangeError(`WarpMesh.radial: 'aspect' must be > 0, got ${aspect}`);
    return WarpMesh.fromFunction(cols, rows, (x, y) => radialK1(x, y, k1, aspect));
  }

  /**
   * Linear blend of two meshes with the same grid (eye position between two calibrated eye points):
   * t = 0 gives a, t = 1 gives b. Writes into `into` when given (no allocation), else a new mesh.
   */
  static interpolate(a: WarpMesh, b: WarpMesh, t: number, into?: WarpMesh): WarpMesh {
    if (!(a instanceof WarpMesh)) throw new TypeError(`WarpMesh.interpolate: 'a' must be a WarpMesh`);
    if (!(b instanceof WarpMesh)) throw new TypeError(`WarpMesh.interpolate: 'b' must be a WarpMesh`);
    if (a.cols !== b.cols || a.rows !== b.rows) {
      throw new RangeError(`WarpMesh.interpolate: 'b' grid must match 'a' (${a.cols}x${a.rows}), got ${b.cols}x${b.rows}`);
    }
    if (!(t >= 0 && t <= 1)) throw new RangeError(`WarpMesh.interpolate: 't' must be in [0, 1], got ${t}`);
    if (into !== undefined && (into.cols !== a.cols || into.rows !== a.rows)) {
      throw new RangeError(`WarpMesh.interpolate: 'into' grid must be ${a.cols}x${a.rows}, got ${into.cols}x${into.rows}`);
    }
    const out = into ?? new WarpMesh(a.cols, a.rows, a.positions.slice(), a.uvs.slice());
    const s = 1 - t;
    for (let k = 0; k < a.positions.length; k++) {
      out.positions[k] = s * (a.positions[k] ?? 0) + t * (b.positions[k] ?? 0);
      out.uvs[k] = s * (a.uvs[k] ?? 0) + t * (b.uvs[k] ?? 0);
    }
    return out;
  }

  static #gridIndices(cols: number, rows: number): Uint16Array | Uint32Array {
    const vertices = (cols + 1) * (rows + 1);
    const out = vertices <= 0xffff ? new Uint16Array(cols * rows * 6) : new Uint32Array(cols * rows * 6);
    let k = 0;
    for (let j = 0; j < rows; j++) {
      for (let i = 0; i < cols; i++) {
        const tl = j * (cols + 1) + i; // top-left (panel y down)
        const tr = tl + 1;
        const bl = tl + cols + 1;
        const br = bl + 1;
        // Counter-clockwise once y is flipped up for the renderer.
        out[k++] = bl; out[k++] = br; out[k++] = tl;
        out[k++] = tl; out[k++] = br; out[k++] = tr;
      }
    }
    return out;
  }
}

/** The radial k1 map used by WarpMesh.radial, exposed so tests can predict where a point lands. */
export function radialK1(x: number, y: number, k1: number, aspect = 1): [number, number] {
  const dx = (x - 0.5) * aspect;
  const dy = y - 0.5;
  const f = 1 + k1 * (dx * dx + dy * dy);
  return [0.5 + (dx * f) / aspect, 0.5 + dy * f];
}
