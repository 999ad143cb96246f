/**
 * Optimal linear assignment with a cost limit, for associating tracks with detections.
 *
 * `solveAssignment` matches rows to columns of a rows x cols cost matrix (row-major) so that the sum
 * of matched costs plus `maxCost` for every unmatched row is least; pairs costing more than `maxCost`
 * (or NaN / Infinity: forbidden) are never matched. Equivalently it maximises sum(maxCost - cost)
 * over the matched pairs, as lap.lapjv's `cost_limit` does. Solved as a rectangular assignment of
 * every row to one of cols + rows columns, the extra column `cols + i` being row i's "unmatched"
 * choice at cost `maxCost`, by the shortest-augmenting-path Hungarian method with potentials
 * (Jonker-Volgenant style, O(rows^2 (rows + cols))). Workspaces grow on demand and are reused, so
 * a steady stream of similar sizes allocates nothing.
 */
import type { Box } from '../detect/types.js';

let _u = new Float64Array(0);
let _v = new Float64Array(0);
let _minv = new Float64Array(0);
let _p = new Int32Array(0);
let _way = new Int32Array(0);
let _used = new Uint8Array(0);

function ensureWorkspace(rows: number, columns: number): void {
  if (_u.length < rows + 1) _u = new Float64Array(2 * (rows + 1));
  if (_v.length < columns + 1) {
    const size = 2 * (columns + 1);
    _v = new Float64Array(size);
    _minv = new Float64Array(size);
    _p = new Int32Array(size);
    _way = new Int32Array(size);
    _used = new Uint8Array(size);
  }
}

/**
 * Fills `rowToCol` (length >= rows; -1 when unmatched) and `colToRow` (length >= cols; -1 when
 * unmatched) with an optimal assignment of `cost` (rows x cols, row-major) under `maxCost` (finite).
 * A pair is matched only if its cost is <= maxCost. Returns the number of matched pairs.
 */
export function solveAssignment(cost: Readonly<Float64Array>, rows: number, cols: number, maxCost: number, rowToCol: Int32Array, colToRow: Int32Array): number {
  if (!(Number.isInteger(rows) && rows >= 0 && Number.isInteger(cols) && cols >= 0)) {
    throw new RangeError(`solveAssignment: rows and cols must be integers >= 0, got rows=${rows} cols=${cols}`);
  }
  if (cost.length < rows * cols) throw new RangeError(`solveAssignment: cost has ${cost.length} entries, expected >= rows x cols = ${rows * cols}`);
  if (!Number.isFinite(maxCost)) throw new RangeError(`solveAssignment: maxCost must be finite, got ${maxCost}`);
  if (rowToCol.length < rows) throw new RangeError(`solveAssignment: rowToCol has ${rowToCol.length} entries, expected >= rows = ${rows}`);
  if (colToRow.length < cols) throw new RangeError(`solveAssignment: colToRow has ${colToRow.length} entries, expected >= cols = ${cols}`);
  rowToCol.fill(-1, 0, rows);
  colToRow.fill(-1, 0, cols);
  if (rows === 0 || cols === 0) return 0;

  // Anything dearer than the row's own "unmatched" column is never chosen by an optimal solution,
  // so forbidden pairs need only be finite and > maxCost (finite keeps the potentials arithmetic clean).
  const forbidden = maxCost + Math.max(1, Math.abs(maxCost));
  const columns = cols + rows;
  ensureWorkspace(rows, columns);
  const u = _u;
  const v = _v;
  const minv = _minv;
  const p = _p;
  const way = _way;
  const used = _used;
  u.fill(0, 0, rows + 1);
  v.fill(0, 0, columns + 1);
  p.fill(0, 0, columns + 1);
  way.fill(0, 0, columns + 1);

  // 1-based Hungarian (e-maxx): p[j] is the row (1-based) holding column j, 0 = free; column 0 is the virtual start.
  for (let i = 1; i <= rows; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Infinity, 0, columns + 1);
    used.fill(0, 0, columns + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      const rowBase = (i0 - 1) * cols;
      const ui0 = u[i0]!;
      for (let j = 1; j <= columns; j++) {
        if (used[j]) continue;
        let c: number;
        if (j <= cols) {
          c = cost[rowBase + j - 1]!;
          if (!(c <= maxCost)) c = forbidden;
        } else {
          c = j - cols === i0 ? maxCost : forbidden;
        }
        const reduced = c - ui0 - v[j]!;
        if (reduced < minv[j]!) {
          minv[j] = reduced;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= columns; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else {
          minv[j]! -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }

  let matches = 0;
  for (let j = 1; j <= cols; j++) {
    const i = p[j]!;
    if (i === 0) continue;
    const c = cost[(i - 1) * cols + j - 1]!;
    if (!(c <= maxCost)) continue;
    rowToCol[i - 1] = j - 1;
    colToRow[j - 1] = i - 1;
    matches++;
  }
  return matches;
}

/** Intersection over union of two boxes (continuous pixels); 0 without overlap or for empty boxes. */
export function boxIou(a: Readonly<Box>, b: Readonly<Box>): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (!(w > 0 && h > 0)) return 0;
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Cost matrix 1 - IoU (rows = `a`, cols = `b`, row-major) into `out` (grown when too small;
 * the returned array is the one to use). Allocates only when `out` is too small.
 */
export function iouCostMatrix(a: readonly Readonly<Box>[], b: readonly Readonly<Box>[], out: Float64Array = new Float64Array(a.length * b.length)): Float64Array {
  const size = a.length * b.length;
  const matrix = out.length >= size ? out : new Float64Array(size);
  for (let i = 0; i < a.length; i++) {
    const boxA = a[i]!;
    for (let j = 0; j < b.length; j++) matrix[i * b.length + j] = 1 - boxIou(boxA, b[j]!);
  }
  return matrix;
}
