/**
 * Small dense linear algebra for calibration: matrices are row-major Float64Arrays with their sizes
 * passed beside them (m rows x n columns, element (i, j) at i * n + j). Sizes here are tens to a few
 * hundred unknowns, so plain O(n^3) algorithms are the clear choice.
 */

/** Thrown when a system has no unique solution (singular or not positive definite). */
export class SingularMatrixError extends Error {
  override readonly name = 'SingularMatrixError';
}

function checkSize(where: string, name: string, array: Float64Array, expected: number): void {
  if (array.length !== expected) throw new RangeError(`${where}: '${name}' must have ${expected} values, got ${array.length}`);
}

/**
 * Solves A x = b for symmetric positive definite A (n x n) by Cholesky factorisation.
 * `a` and `b` are left untouched; returns x. Throws SingularMatrixError when A is not positive definite.
 */
export function solveSymmetricPositiveDefinite(a: Float64Array, b: Float64Array, n: number): Float64Array {
  checkSize('solveSymmetricPositiveDefinite', 'a', a, n * n);
  checkSize('solveSymmetricPositiveDefinite', 'b', b, n);
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j]!;
      for (let k = 0; k < j; k++) sum -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        if (!(sum > 0)) throw new SingularMatrixError(`solveSymmetricPositiveDefinite: matrix is not positive definite (pivot ${i} is ${sum})`);
        l[i * n + i] = Math.sqrt(sum);
      } else {
        l[i * n + j] = sum / l[j * n + j]!;
      }
    }
  }
  const x = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    let sum = x[i]!;
    for (let k = 0; k < i; k++) sum -= l[i * n + k]! * x[k]!;
    x[i] = sum / l[i * n + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let sum = x[i]!;
    for (let k = i + 1; k < n; k++) sum -= l[k * n + i]! * x[k]!;
    x[i] = sum / l[i * n + i]!;
  }
  return x;
}

/**
 * Least-squares solution of A x ~= b (A is m x n, m >= n) by Householder QR, which stays accurate on
 * the badly scaled systems that polynomial fits produce (normal equations would square the
 * condition number). Several right-hand sides at once: `b` is m x k, the result n x k.
 * Throws SingularMatrixError when A is rank deficient.
 */
export function solveLeastSquares(a: Float64Array, m: number, n: number, b: Float64Array, k = 1): Float64Array {
  checkSize('solveLeastSquares', 'a', a, m * n);
  checkSize('solveLeastSquares', 'b', b, m * k);
  if (m < n) throw new RangeError(`solveLeastSquares: need at least as many rows as unknowns, got ${m} rows for ${n} unknowns`);
  const r = Float64Array.from(a);
  const y = Float64Array.from(b);
  const v = new Float64Array(m);
  let largestDiagonal = 0;
  for (let col = 0; col < n; col++) {
    let norm = 0;
    for (let i = col; i < m; i++) norm += r[i * n + col]! ** 2;
    norm = Math.sqrt(norm);
    const alpha = r[col * n + col]! > 0 ? -norm : norm;
    for (let i = col; i < m; i++) v[i] = r[i * n + col]!;
    v[col] = v[col]! - alpha;
    let vNorm2 = 0;
    for (let i = col; i < m; i++) vNorm2 += v[i]! ** 2;
    largestDiagonal = Math.max(largestDiagonal, Math.abs(alpha));
    if (vNorm2 === 0 || Math.abs(alpha) <= 1e-12 * largestDiagonal) {
      throw new SingularMatrixError(`solveLeastSquares: matrix is rank deficient at column ${col}`);
    }
    // Apply H = I - 2 v v^T / (v^T v) to the remaining columns of R and to every column of y.
    for (let j = col; j < n; j++) {
      let dot = 0;
      for (let i = col; i < m; i++) dot += v[i]! * r[i * n + j]!;
      const f = (2 * dot) / vNorm2;
      for (let i = col; i < m; i++) r[i * n + j] = r[i * n + j]! - f * v[i]!;
    }
    for (let j = 0; j < k; j++) {
      let dot = 0;
      for (let i = col; i < m; i++) dot += v[i]! * y[i * k + j]!;
      const f = (2 * dot) / vNorm2;
      for (let i = col; i < m; i++) y[i * k + j] = y[i * k + j]! - f * v[i]!;
    }
  }
  const x = new Float64Array(n * k);
  for (let j = 0; j < k; j++) {
    for (let i = n - 1; i >= 0; i--) {
      let sum = y[i * k + j]!;
      for (let c = i + 1; c < n; c++) sum -= r[i * n + c]! * x[c * k + j]!;
      x[i * k + j] = sum / r[i * n + i]!;
    }
  }
  return x;
}

/** Eigen-decomposition of a symmetric matrix. */
export interface SymmetricEigen {
  /** Eigenvalues in ascending order. */
  values: Float64Array;
  /** Eigenvectors as columns, n x n row-major: vector k is (vectors[0 * n + k], vectors[1 * n + k], ...). */
  vectors: Float64Array;
}

/**
 * Eigenvalues and eigenvectors of a symmetric n x n matrix by cyclic Jacobi rotations (accurate to
 * machine precision, fine for n up to ~50). Used for null spaces, e.g. the DLT homography as the
 * eigenvector of A^T A with the smallest eigenvalue.
 */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  checkSize('symmetricEigen', 'a', a, n * n);
  const s = Float64Array.from(a);
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += s[i * n + j]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let r = p + 1; r < n; r++) {
        const apr = s[p * n + r]!;
        if (Math.abs(apr) < 1e-300) continue;
        const theta = (s[r * n + r]! - s[p * n + p]!) / (2 * apr);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < n; k++) {
          const akp = s[k * n + p]!;
          const akr = s[k * n + r]!;
          s[k * n + p] = c * akp - sn * akr;
          s[k * n + r] = sn * akp + c * akr;
        }
        for (let k = 0; k < n; k++) {
          const apk = s[p * n + k]!;
          const ark = s[r * n + k]!;
          s[p * n + k] = c * apk - sn * ark;
          s[r * n + k] = sn * apk + c * ark;
        }
        for (let k = 0; k < n; k++) {
          const qkp = q[k * n + p]!;
          const qkr = q[k * n + r]!;
          q[k * n + p] = c * qkp - sn * qkr;
          q[k * n + r] = sn * qkp + c * qkr;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => s[i * n + i]! - s[j * n + j]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((from, to) => {
    values[to] = s[from * n + from]!;
    for (let k = 0; k < n; k++) vectors[k * n + to] = q[k * n + from]!;
  });
  return { values, vectors };
}
