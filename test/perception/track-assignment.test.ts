import { describe, expect, it } from 'vitest';
import { boxIou, iouCostMatrix, solveAssignment } from '../../perception/track/assignment.js';
import { iou } from '../../perception/detect/nms.js';
import type { Box } from '../../perception/detect/types.js';
import { seededRandom } from '../support/random.js';
import { thrownBy } from '../support/errors.js';

/** Objective the solver minimises: matched costs plus maxCost per unmatched row. */
function objective(cost: Float64Array, rows: number, cols: number, maxCost: number, rowToCol: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < rows; i++) {
    const j = rowToCol[i]!;
    total += j < 0 ? maxCost : cost[i * cols + j]!;
  }
  return total;
}

/** Best objective over every partial matching that uses only pairs with cost <= maxCost. */
function bruteForce(cost: Float64Array, rows: number, cols: number, maxCost: number): number {
  const usedCols = new Array<boolean>(cols).fill(false);
  const search = (i: number): number => {
    if (i === rows) return 0;
    let best = maxCost + search(i + 1);
    for (let j = 0; j < cols; j++) {
      const c = cost[i * cols + j]!;
      if (usedCols[j] || !(c <= maxCost)) continue;
      usedCols[j] = true;
      best = Math.min(best, c + search(i + 1));
      usedCols[j] = false;
    }
    return best;
  };
  return search(0);
}

function solve(cost: Float64Array, rows: number, cols: number, maxCost: number) {
  const rowToCol = new Int32Array(rows);
  const colToRow = new Int32Array(cols);
  const matches = solveAssignment(cost, rows, cols, maxCost, rowToCol, colToRow);
  return { matches, rowToCol, colToRow };
}

describe('solveAssignment', () => {
  it('is optimal against brute force on random small matrices, forbidden entries included', () => {
    const random = seededRandom(2024);
    for (let trial = 0; trial < 400; trial++) {
      const rows = Math.floor(random() * 6);
      const cols = Math.floor(random() * 6);
      const maxCost = 0.1 + random();
      const cost = new Float64Array(rows * cols);
      for (let k = 0; k < cost.length; k++) {
        const u = random();
        cost[k] = u < 0.1 ? NaN : u < 0.2 ? Infinity : u < 0.25 ? maxCost : random() * 1.5;
      }
      const { matches, rowToCol, colToRow } = solve(cost, rows, cols, maxCost);
      expect(objective(cost, rows, cols, maxCost, rowToCol)).toBeCloseTo(bruteForce(cost, rows, cols, maxCost), 9);
      let counted = 0;
      for (let i = 0; i < rows; i++) {
        const j = rowToCol[i]!;
        if (j < 0) continue;
        counted++;
        expect(colToRow[j]).toBe(i);
        expect(cost[i * cols + j]!).toBeLessThanOrEqual(maxCost);
      }
      for (let j = 0; j < cols; j++) if (colToRow[j]! >= 0) expect(rowToCol[colToRow[j]!]).toBe(j);
      expect(matches).toBe(counted);
    }
  });

  it('matches a pair costing exactly maxCost and never one just above', () => {
    const maxCost = 0.7;
    expect(solve(Float64Array.of(maxCost), 1, 1, maxCost).matches).toBe(1);
    expect(solve(Float64Array.of(maxCost + 1e-12), 1, 1, maxCost).matches).toBe(0);
    expect(solve(Float64Array.of(NaN), 1, 1, maxCost).matches).toBe(0);
  });

  it('prefers two good matches to one excellent one (global, not greedy)', () => {
    // Greedy takes (0,0) at 0.1 and leaves row 1 unmatched (0.1 + 0.5); optimal is (0,1) + (1,0) = 0.4.
    const cost = Float64Array.of(0.1, 0.2, 0.2, 2);
    const { rowToCol } = solve(cost, 2, 2, 0.5);
    expect([...rowToCol]).toEqual([1, 0]);
  });

  it('handles more rows than columns and empty sides', () => {
    const cost = Float64Array.of(0.9, 0.1, 0.5);
    const { rowToCol, colToRow } = solve(cost, 3, 1, 1);
    expect([...rowToCol]).toEqual([-1, 0, -1]);
    expect([...colToRow]).toEqual([1]);
    expect(solve(new Float64Array(0), 0, 4, 1).colToRow).toEqual(Int32Array.of(-1, -1, -1, -1));
    expect(solve(new Float64Array(0), 3, 0, 1).rowToCol).toEqual(Int32Array.of(-1, -1, -1));
  });

  it('reuses its workspace across sizes (big, then small, then big again)', () => {
    const random = seededRandom(5);
    for (const n of [40, 2, 3, 50, 1]) {
      const cost = Float64Array.from({ length: n * n }, () => random());
      const { matches } = solve(cost, n, n, 2);
      expect(matches).toBe(n);
    }
  });

  it('rejects bad arguments with RangeErrors naming the field', () => {
    const error = thrownBy(() => solveAssignment(new Float64Array(3), 2, 2, 1, new Int32Array(2), new Int32Array(2)));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('solveAssignment: cost has 3 entries, expected >= rows x cols = 4');
    expect(thrownBy(() => solveAssignment(new Float64Array(4), 2, 2, Infinity, new Int32Array(2), new Int32Array(2))).message).toBe(
      'solveAssignment: maxCost must be finite, got Infinity',
    );
    expect(thrownBy(() => solveAssignment(new Float64Array(4), 2, 2, 1, new Int32Array(1), new Int32Array(2))).message).toBe(
      'solveAssignment: rowToCol has 1 entries, expected >= rows = 2',
    );
    expect(thrownBy(() => solveAssignment(new Float64Array(4), -1, 2, 1, new Int32Array(1), new Int32Array(2))).message).toBe(
      'solveAssignment: rows and cols must be integers >= 0, got rows=-1 cols=2',
    );
  });
});

describe('boxIou / iouCostMatrix', () => {
  it('agrees with the detection IoU', () => {
    const random = seededRandom(3);
    const randomBox = (): Box => {
      const x = random() * 100;
      const y = random() * 100;
      return [x, y, x + 1 + random() * 50, y + 1 + random() * 50];
    };
    for (let k = 0; k < 200; k++) {
      const a = randomBox();
      const b = randomBox();
      expect(boxIou(a, b)).toBeCloseTo(iou(a, b), 12);
    }
  });

  it('fills 1 - IoU row-major and grows a too-small buffer', () => {
    const a: Box[] = [[0, 0, 10, 10], [20, 20, 30, 30]];
    const b: Box[] = [[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110]];
    const matrix = iouCostMatrix(a, b, new Float64Array(2));
    expect(matrix.length).toBeGreaterThanOrEqual(6);
    expect([...matrix.subarray(0, 6)]).toEqual([0, 1 - 50 / 150, 1, 1, 1, 1]);
  });
});
