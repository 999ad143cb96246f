/**
 * Levenberg-Marquardt for small dense non-linear least squares: minimise sum r_i(p)^2 over the
 * parameters p. The caller gives the residuals and, optionally, the Jacobian; without one, a central
 * difference Jacobian is used (2 residual evaluations per parameter).
 */
import { SingularMatrixError, solveSymmetricPositiveDefinite } from './linalg.js';

/** A least-squares problem. */
export interface LeastSquaresProblem {
  /** Number of residuals. */
  residualCount: number;
  /** Writes the residuals at `params` into `out` (length residualCount). */
  residuals(params: Float64Array, out: Float64Array): void;
  /**
   * Writes the Jacobian d residual_i / d param_j at `params` into `jacobian` (residualCount x
   * params.length, row-major). Optional: central differences otherwise.
   */
  jacobian?(params: Float64Array, jacobian: Float64Array): void;
  /** Parameters held at their initial value (e.g. a fixed distortion term), by index. */
  fixed?: ReadonlySet<number>;
}

/** Options of levenbergMarquardt, defaults in LM_DEFAULTS. */
export interface LevenbergMarquardtOptions {
  /** Most iterations (accepted or rejected steps). */
  maxIterations?: number;
  /** Stop when the relative decrease of the cost in an accepted step is below this. */
  costTolerance?: number;
  /** Stop when the step is below this relative to the parameter norm. */
  stepTolerance?: number;
  /** Starting damping, relative to the largest diagonal element of J^T J. */
  initialDamping?: number;
}

export const LM_DEFAULTS: Required<LevenbergMarquardtOptions> = {
  maxIterations: 200,
  costTolerance: 1e-12,
  stepTolerance: 1e-12,
  initialDamping: 1e-3,
};

/** Result of levenbergMarquardt. */
export interface LevenbergMarquardtResult {
  /** Parameters at the minimum found. */
  params: Float64Array;
  /** Sum of squared residuals at `params`. */
  cost: number;
  /** Residuals at `params`. */
  residuals: Float64Array;
  /** Iterations run. */
  iterations: number;
  /** Why it stopped. */
  stopReason: 'cost' | 'step' | 'maxIterations' | 'damping';
}

function sumOfSquares(values: Float64Array): number {
  let sum = 0;
  for (const value of values) sum += value * value;
  return sum;
}

function numericJacobian(problem: LeastSquaresProblem, params: Float64Array, jacobian: Float64Array): void {
  const m = problem.residualCount;
  const n = params.length;
  const plus = new Float64Array(m);
  const minus = new Float64Array(m);
  const p = Float64Array.from(params);
  for (let j = 0; j < n; j++) {
    const h = 1e-6 * Math.max(1, Math.abs(params[j]!));
    p[j] = params[j]! + h;
    problem.residuals(p, plus);
    p[j] = params[j]! - h;
    problem.residuals(p, minus);
    p[j] = params[j]!;
    for (let i = 0; i < m; i++) jacobian[i * n + j] = (plus[i]! - minus[i]!) / (2 * h);
  }
}

/** Minimises the problem's sum of squared residuals starting from `initial` (not modified). */
export function levenbergMarquardt(problem: LeastSquaresProblem, initial: Float64Array, options: LevenbergMarquardtOptions = {}): LevenbergMarquardtResult {
  const { maxIterations, costTolerance, stepTolerance, initialDamping } = { ...LM_DEFAULTS, ...options };
  const m = problem.residualCount;
  const n = initial.length;
  const fixed = problem.fixed ?? new Set<number>();
  let params = Float64Array.from(initial);
  let residuals = new Float64Array(m);
  problem.residuals(params, residuals);
  let cost = sumOfSquares(residuals);
  if (!Number.isFinite(cost)) throw new RangeError(`levenbergMarquardt: residuals at the initial parameters are not finite (cost ${cost})`);
  const jacobian = new Float64Array(m * n);
  const normal = new Float64Array(n * n);
  const gradient = new Float64Array(n);
  const candidate = new Float64Array(n);
  let trial = new Float64Array(m);
  let lambda = -1;
  let needJacobian = true;
  let iterations = 0;
  let stopReason: LevenbergMarquardtResult['stopReason'] = 'maxIterations';
  for (; iterations < maxIterations; iterations++) {
    if (needJacobian) {
      if (problem.jacobian) problem.jacobian(params, jacobian);
      else numericJacobian(problem, params, jacobian);
      normal.fill(0);
      gradient.fill(0);
      for (let i = 0; i < m; i++) {
        const row = i * n;
        const r = residuals[i]!;
        for (let a = 0; a < n; a++) {
          const ja = jacobian[row + a]!;
          if (ja === 0) continue;
          gradient[a] = gradient[a]! + ja * r;
          for (let b = a; b < n; b++) normal[a * n + b] = normal[a * n + b]! + ja * jacobian[row + b]!;
        }
      }
      for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) normal[a * n + b] = normal[b * n + a]!;
      // A fixed parameter: its row and column become the identity with a zero gradient, so its step is 0.
      for (const f of fixed) {
        for (let k = 0; k < n; k++) {
          normal[f * n + k] = 0;
          normal[k * n + f] = 0;
        }
        normal[f * n + f] = 1;
        gradient[f] = 0;
      }
      if (lambda < 0) {
        let largest = 0;
        for (let a = 0; a < n; a++) largest = Math.max(largest, normal[a * n + a]!);
        lambda = initialDamping * (largest || 1);
      }
      needJacobian = false;
    }
    const damped = Float64Array.from(normal);
    // Marquardt's scaling: damp each parameter by its own curvature, so units do not matter.
    for (let a = 0; a < n; a++) damped[a * n + a] = normal[a * n + a]! + lambda * Math.max(normal[a * n + a]!, 1e-12);
    let step: Float64Array;
    try {
      step = solveSymmetricPositiveDefinite(damped, gradient, n);
    } catch (error) {
      if (!(error instanceof SingularMatrixError)) throw error;
      lambda *= 10;
      continue;
    }
    let stepNorm = 0;
    let paramNorm = 0;
    for (let a = 0; a < n; a++) {
      candidate[a] = params[a]! - step[a]!;
      stepNorm += step[a]! ** 2;
      paramNorm += params[a]! ** 2;
    }
    problem.residuals(candidate, trial);
    const trialCost = sumOfSquares(trial);
    if (Number.isFinite(trialCost) && trialCost < cost) {
      const decrease = (cost - trialCost) / Math.max(cost, 1e-300);
      params = Float64Array.from(candidate);
      [residuals, trial] = [trial, residuals];
      cost = trialCost;
      lambda = Math.max(lambda / 10, 1e-15);
      needJacobian = true;
      if (decrease < costTolerance) {
        stopReason = 'cost';
        iterations++;
        break;
      }
      if (Math.sqrt(stepNorm) < stepTolerance * (Math.sqrt(paramNorm) + stepTolerance)) {
        stopReason = 'step';
        iterations++;
        break;
      }
    } else {
      lambda *= 10;
      if (lambda > 1e16) {
        stopReason = 'damping';
        break;
      }
    }
  }
  return { params, cost, residuals, iterations, stopReason };
}
