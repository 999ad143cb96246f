import { describe, expect, it } from 'vitest';
import { SingularMatrixError, solveLeastSquares, solveSymmetricPositiveDefinite, symmetricEigen } from '../../calibration/math/linalg.js';
import { levenbergMarquardt } from '../../calibration/math/levenberg-marquardt.js';
import { gaussianRandom, seededRandom } from '../support/random.js';

describe('linalg', () => {
  it('solves a symmetric positive definite system', () => {
    const a = Float64Array.from([4, 1, 0, 1, 3, 1, 0, 1, 2]);
    const x = solveSymmetricPositiveDefinite(a, Float64Array.from([1, 2, 3]), 3);
    const ax = [0, 1, 2].map((i) => a[i * 3]! * x[0]! + a[i * 3 + 1]! * x[1]! + a[i * 3 + 2]! * x[2]!);
    expect(ax[0]).toBeCloseTo(1, 12);
    expect(ax[1]).toBeCloseTo(2, 12);
    expect(ax[2]).toBeCloseTo(3, 12);
  });

  it('refuses a matrix that is not positive definite', () => {
    expect(() => solveSymmetricPositiveDefinite(Float64Array.from([1, 2, 2, 1]), Float64Array.from([1, 1]), 2)).toThrow(SingularMatrixError);
  });

  it('fits a badly scaled polynomial by least squares, several right-hand sides at once', () => {
    const m = 50;
    const a = new Float64Array(m * 4);
    const b = new Float64Array(m * 2);
    for (let i = 0; i < m; i++) {
      const t = 1000 + i * 10; // powers up to 1e9: normal equations would lose most digits
      a.set([1, t, t * t, t * t * t], i * 4);
      b[i * 2] = 2 - 3e-3 * t + 4e-6 * t * t - 1e-9 * t * t * t;
      b[i * 2 + 1] = 5;
    }
    const x = solveLeastSquares(a, m, 4, b, 2);
    expect(x[0]).toBeCloseTo(2, 6);
    expect(x[2 * 2]! / 4e-6).toBeCloseTo(1, 6);
    expect(x[1]).toBeCloseTo(5, 8);
  });

  it('refuses a rank-deficient least-squares system', () => {
    const a = Float64Array.from([1, 2, 2, 4, 3, 6]);
    expect(() => solveLeastSquares(a, 3, 2, Float64Array.from([1, 2, 3]))).toThrow(/rank deficient at column 1/);
  });

  it('finds eigenvalues and orthonormal eigenvectors', () => {
    const a = Float64Array.from([2, 1, 0, 1, 2, 0, 0, 0, 5]);
    const { values, vectors } = symmetricEigen(a, 3);
    expect([...values].map((v) => Number(v.toFixed(10)))).toEqual([1, 3, 5]);
    for (let k = 0; k < 3; k++) {
      for (let i = 0; i < 3; i++) {
        let av = 0;
        for (let j = 0; j < 3; j++) av += a[i * 3 + j]! * vectors[j * 3 + k]!;
        expect(av).toBeCloseTo(values[k]! * vectors[i * 3 + k]!, 10);
      }
    }
  });
});

describe('levenbergMarquardt', () => {
  it('recovers the parameters of a noisy exponential decay', () => {
    const gauss = gaussianRandom(seededRandom(7));
    const ts = Array.from({ length: 40 }, (_, i) => i * 0.1);
    const ys = ts.map((t) => 3 * Math.exp(-1.7 * t) + 0.5 + 0.001 * gauss());
    const result = levenbergMarquardt(
      { residualCount: ts.length, residuals: (p, out) => ts.forEach((t, i) => (out[i] = p[0]! * Math.exp(-p[1]! * t) + p[2]! - ys[i]!)) },
      Float64Array.from([1, 0.5, 0]),
    );
    expect(result.params[0]).toBeCloseTo(3, 2);
    expect(result.params[1]).toBeCloseTo(1.7, 2);
    expect(result.params[2]).toBeCloseTo(0.5, 2);
    expect(Math.sqrt(result.cost / ts.length)).toBeLessThan(0.002);
  });

  it('holds fixed parameters at their initial value', () => {
    const result = levenbergMarquardt(
      { residualCount: 2, residuals: (p, out) => ((out[0] = p[0]! - 1), (out[1] = p[1]! - 2)), fixed: new Set([1]) },
      Float64Array.from([0, 7]),
    );
    expect(result.params[0]).toBeCloseTo(1, 10);
    expect(result.params[1]).toBe(7);
  });
});
