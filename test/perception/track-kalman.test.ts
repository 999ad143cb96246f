import { describe, expect, it } from 'vitest';
import {
  BOX_ACCEL_STD_REL,
  BOX_INIT_POSITION_STD_REL,
  BOX_INIT_VELOCITY_STD_REL_PER_S,
  BOX_MEASUREMENT_STD_REL,
  BoxKalman,
  GROUND_ACCEL_STD_MPS2,
  GROUND_INIT_SPEED_STD_MPS,
  GroundKalman,
  MIN_BOX_SIDE_PX,
  NSA_MIN_NOISE_SCALE,
} from '../../perception/track/kalman.js';
import type { Box } from '../../perception/detect/types.js';
import { vehicleAtDisplayFromVehicleAtCapture, type VehiclePoseDelta } from '../../render/optics.js';
import { gaussianRandom, seededRandom } from '../support/random.js';

/** Cholesky of a symmetric n x n matrix (row-major); false when not positive definite. */
function isPositiveDefinite(m: Float64Array, n: number): boolean {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = m[i * n + j]!;
      for (let k = 0; k < j; k++) sum -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        if (!(sum > 0)) return false;
        l[i * n + i] = Math.sqrt(sum);
      } else {
        l[i * n + j] = sum / l[j * n + j]!;
      }
    }
  }
  return true;
}

function expectSymmetric(m: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(m[i * n + j]).toBe(m[j * n + i]);
}

describe('BoxKalman', () => {
  // Box [0, 0, 10, 20]: cx 5, cy 10, w 10, h 20.
  const H = 20;
  const box: Box = [0, 0, 10, 20];

  it('initiates at the box centre and size with zero velocity and the initial uncertainty', () => {
    const kf = new BoxKalman().initiate(box);
    expect([...kf.state]).toEqual([5, 10, 10, 20, 0, 0, 0, 0]);
    for (let i = 0; i < 4; i++) {
      expect(kf.blocks[3 * i]).toBeCloseTo((BOX_INIT_POSITION_STD_REL * H) ** 2, 12);
      expect(kf.blocks[3 * i + 1]).toBe(0);
      expect(kf.blocks[3 * i + 2]).toBeCloseTo((BOX_INIT_VELOCITY_STD_REL_PER_S * H) ** 2, 12);
    }
    expect(kf.box([0, 0, 0, 0])).toEqual(box);
  });

  it('predicts and updates one coordinate as the hand-computed 2-state filter', () => {
    const kf = new BoxKalman().initiate(box);
    const pp0 = (BOX_INIT_POSITION_STD_REL * H) ** 2;
    const vv0 = (BOX_INIT_VELOCITY_STD_REL_PER_S * H) ** 2;
    const q = (BOX_ACCEL_STD_REL * H) ** 2;
    const dt = 0.5;
    kf.predict(dt);
    // P = F P F^T + q [[dt^3/3, dt^2/2], [dt^2/2, dt]] with P0 diagonal.
    const pp = pp0 + dt * dt * vv0 + (q * dt ** 3) / 3;
    const pv = dt * vv0 + (q * dt ** 2) / 2;
    const vv = vv0 + q * dt;
    expect(kf.blocks[0]).toBeCloseTo(pp, 9);
    expect(kf.blocks[1]).toBeCloseTo(pv, 9);
    expect(kf.blocks[2]).toBeCloseTo(vv, 9);
    expect(kf.state[0]).toBe(5);

    // Measure the box 10 px further right: only cx changes by 10.
    const r = (BOX_MEASUREMENT_STD_REL * H) ** 2;
    const distance2 = kf.update([10, 0, 20, 20]);
    const s = pp + r;
    expect(kf.state[0]).toBeCloseTo(5 + (pp / s) * 10, 9);
    expect(kf.state[4]).toBeCloseTo((pv / s) * 10, 9);
    expect(kf.blocks[0]).toBeCloseTo(pp - (pp * pp) / s, 9);
    expect(kf.blocks[1]).toBeCloseTo(pv - (pp * pv) / s, 9);
    expect(kf.blocks[2]).toBeCloseTo(vv - (pv * pv) / s, 9);
    expect(distance2).toBeCloseTo(100 / s, 9);
    // The other coordinates measured their predicted values: state unchanged there.
    expect(kf.state[1]).toBeCloseTo(10, 12);
    expect(kf.state[3]).toBeCloseTo(20, 12);
  });

  it('scales measurement noise by max(1 - score, NSA_MIN_NOISE_SCALE)', () => {
    const a = new BoxKalman().initiate(box).predict(0.1);
    const b = new BoxKalman().initiate(box).predict(0.1);
    const c = new BoxKalman().initiate(box).predict(0.1);
    const pp = a.blocks[0]!;
    const r = (BOX_MEASUREMENT_STD_REL * H) ** 2;
    a.update([10, 0, 20, 20]);
    b.update([10, 0, 20, 20], 0.6);
    c.update([10, 0, 20, 20], 0.99);
    expect(a.state[0]).toBeCloseTo(5 + (pp / (pp + r)) * 10, 9);
    expect(b.state[0]).toBeCloseTo(5 + (pp / (pp + 0.4 * r)) * 10, 9);
    expect(c.state[0]).toBeCloseTo(5 + (pp / (pp + NSA_MIN_NOISE_SCALE * r)) * 10, 9);
  });

  it('learns a constant velocity and predicts it', () => {
    const kf = new BoxKalman().initiate([100, 100, 150, 200]);
    const vxPxPerS = 80;
    for (let k = 1; k <= 30; k++) {
      kf.predict(0.1);
      const x = 100 + vxPxPerS * 0.1 * k;
      kf.update([x, 100, x + 50, 200]);
    }
    expect(kf.state[4]).toBeCloseTo(vxPxPerS, 1);
    expect(Math.abs(kf.state[5]!)).toBeLessThan(1e-9);
    kf.predict(0.5);
    expect(kf.box([0, 0, 0, 0])[0]).toBeCloseTo(100 + vxPxPerS * 3.5, 0);
  });

  it('keeps two predictions of dt/2 equal to one of dt (continuous noise model)', () => {
    const a = new BoxKalman().initiate(box);
    const b = new BoxKalman().initiate(box);
    a.update([1, 1, 12, 21]);
    b.update([1, 1, 12, 21]);
    a.predict(0.3);
    b.predict(0.15).predict(0.15);
    for (let i = 0; i < 12; i++) expect(b.blocks[i]).toBeCloseTo(a.blocks[i]!, 9);
  });

  it('keeps the covariance symmetric positive definite over random predict/update sequences', () => {
    const uniform = seededRandom(7);
    const normal = gaussianRandom(uniform);
    const kf = new BoxKalman().initiate([200, 300, 260, 420]);
    const p = new Float64Array(64);
    for (let step = 0; step < 500; step++) {
      kf.predict(uniform() * 0.5);
      if (uniform() < 0.7) {
        const cx = kf.state[0]! + normal() * 5;
        const cy = kf.state[1]! + normal() * 5;
        const w = Math.max(2, kf.state[2]! + normal() * 3);
        const h = Math.max(2, kf.state[3]! + normal() * 3);
        kf.update([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], uniform());
      }
      if (uniform() < 0.1) kf.freezeSize();
      kf.covariance(p);
      expectSymmetric(p, 8);
      expect(isPositiveDefinite(p, 8)).toBe(true);
    }
  });

  it('reports at least MIN_BOX_SIDE_PX sides when the size shrinks through zero', () => {
    const kf = new BoxKalman().initiate([0, 0, 4, 4]);
    kf.state[6] = -100;
    kf.state[7] = -100;
    kf.predict(1);
    const [x1, y1, x2, y2] = kf.box([0, 0, 0, 0]);
    expect(x2 - x1).toBe(MIN_BOX_SIDE_PX);
    expect(y2 - y1).toBe(MIN_BOX_SIDE_PX);
  });
});

describe('GroundKalman', () => {
  it('moves a static object by exactly the inverse ego motion', () => {
    const kf = new GroundKalman().initiate({ x: 20, y: -3 }, 1, 0.3);
    const ego: VehiclePoseDelta = { dxM: 1.7, dyM: 0.2, dYawRad: 0.05 };
    kf.predict(0.1, ego);
    const expected = vehicleAtDisplayFromVehicleAtCapture({ x: 20, y: -3, z: 0 }, ego, { x: 0, y: 0, z: 0 });
    expect(kf.state[0]).toBeCloseTo(expected.x, 12);
    expect(kf.state[1]).toBeCloseTo(expected.y, 12);
    expect(kf.state[2]).toBe(0);
    expect(kf.state[3]).toBe(0);
  });

  it('rotates the covariance with the ego heading change (dt = 0: a pure change of frame)', () => {
    const kf = new GroundKalman().initiate({ x: 10, y: 0 }, 2, 0.5);
    // Range along x: var(x) = 4, var(y) = 0.25. Turning left by 90 degrees puts the old x axis on -y.
    kf.predict(0, { dxM: 0, dyM: 0, dYawRad: Math.PI / 2 });
    expect(kf.state[0]).toBeCloseTo(0, 12);
    expect(kf.state[1]).toBeCloseTo(-10, 12);
    expect(kf.covariance[0]).toBeCloseTo(0.25, 12);
    expect(kf.covariance[5]).toBeCloseTo(4, 12);
    expect(kf.covariance[1]).toBeCloseTo(0, 12);
  });

  it('initiates with range / lateral noise along and across the bearing', () => {
    const kf = new GroundKalman().initiate({ x: 0, y: 10 }, 2, 0.5);
    // Bearing 90 degrees: range along y.
    expect(kf.covariance[0]).toBeCloseTo(0.25, 12);
    expect(kf.covariance[5]).toBeCloseTo(4, 12);
    expect(kf.covariance[10]).toBe(GROUND_INIT_SPEED_STD_MPS ** 2);
    const diagonal = new GroundKalman().initiate({ x: 10, y: 10 }, 2, 0.5);
    // Bearing 45 degrees: var(x) = var(y) = (4 + 0.25) / 2, cov = (4 - 0.25) / 2.
    expect(diagonal.covariance[0]).toBeCloseTo(2.125, 12);
    expect(diagonal.covariance[1]).toBeCloseTo(1.875, 12);
    expect(diagonal.positionSigmaM()).toBeCloseTo(2, 12);
    expect(diagonal.velocitySigmaMps()).toBeCloseTo(GROUND_INIT_SPEED_STD_MPS, 12);
  });

  it('becomes sure of a velocity as measurements come in (the velocity sigma ADAS gates warnings on)', () => {
    const kf = new GroundKalman().initiate({ x: 30, y: 0 }, 1, 0.2);
    const sigmas: number[] = [kf.velocitySigmaMps()];
    for (let k = 1; k <= 20; k++) {
      kf.predict(0.1);
      kf.update({ x: 30 - k * 0.5, y: 0 }, 1, 0.2);
      sigmas.push(kf.velocitySigmaMps());
    }
    // Falls to the steady state set by the acceleration noise (~1.9 m/s here), never rises.
    for (let k = 1; k < sigmas.length; k++) expect(sigmas[k]!).toBeLessThanOrEqual(sigmas[k - 1]! + 1e-3);
    expect(sigmas[3]!).toBeLessThan(GROUND_INIT_SPEED_STD_MPS / 2);
    expect(sigmas.at(-1)!).toBeLessThan(2.5);
    expect(kf.state[2]).toBeLessThan(-3);
  });

  it('predicts and updates as the hand-computed filter', () => {
    const kf = new GroundKalman().initiate({ x: 10, y: 0 }, 1, 0.5);
    const dt = 0.2;
    const q = GROUND_ACCEL_STD_MPS2 ** 2;
    const v0 = GROUND_INIT_SPEED_STD_MPS ** 2;
    kf.predict(dt);
    const pxx = 1 + dt * dt * v0 + (q * dt ** 3) / 3;
    const pxv = dt * v0 + (q * dt ** 2) / 2;
    expect(kf.covariance[0]).toBeCloseTo(pxx, 12);
    expect(kf.covariance[2]).toBeCloseTo(pxv, 12);
    expect(kf.covariance[8]).toBeCloseTo(pxv, 12);
    expect(kf.covariance[10]).toBeCloseTo(v0 + q * dt, 12);
    // Measure 2 m further at the same bearing, range sigma 1.
    const distance2 = kf.update({ x: 12, y: 0 }, 1, 0.5);
    const s = pxx + 1;
    expect(kf.state[0]).toBeCloseTo(10 + (pxx / s) * 2, 12);
    expect(kf.state[2]).toBeCloseTo((pxv / s) * 2, 12);
    expect(kf.state[1]).toBeCloseTo(0, 12);
    expect(kf.covariance[0]).toBeCloseTo(pxx - (pxx * pxx) / s, 12);
    expect(distance2).toBeCloseTo(4 / s, 12);
  });

  it('keeps the covariance symmetric positive definite with ego motion and random updates', () => {
    const uniform = seededRandom(11);
    const normal = gaussianRandom(uniform);
    const kf = new GroundKalman().initiate({ x: 25, y: 4 }, 1.5, 0.3);
    for (let step = 0; step < 500; step++) {
      const ego = { dxM: 1 + uniform(), dyM: normal() * 0.05, dYawRad: normal() * 0.05 };
      kf.predict(uniform() * 0.3, uniform() < 0.8 ? ego : undefined);
      if (uniform() < 0.7) kf.update({ x: kf.state[0]! + normal(), y: kf.state[1]! + normal() * 0.3 }, 0.5 + uniform() * 2, 0.1 + uniform() * 0.5);
      expectSymmetric(kf.covariance, 4);
      expect(isPositiveDefinite(kf.covariance, 4)).toBe(true);
    }
  });

  it('tracks a car driving alongside while the ego vehicle turns', () => {
    // Ego drives a circle (5 m/s, 0.2 rad/s); the other car is parked: its filtered velocity stays ~0.
    const kf = new GroundKalman().initiate({ x: 15, y: 5 }, 0.5, 0.2);
    const worldCar = { x: 15, y: 5 };
    let egoX = 0;
    let egoY = 0;
    let egoYaw = 0;
    for (let k = 0; k < 40; k++) {
      const ego: VehiclePoseDelta = { dxM: 0.5 * Math.sin(0.02) / 0.02, dyM: 0.5 * (1 - Math.cos(0.02)) / 0.02, dYawRad: 0.02 };
      egoX += Math.cos(egoYaw) * ego.dxM - Math.sin(egoYaw) * ego.dyM;
      egoY += Math.sin(egoYaw) * ego.dxM + Math.cos(egoYaw) * ego.dyM;
      egoYaw += ego.dYawRad;
      kf.predict(0.1, ego);
      const dx = worldCar.x - egoX;
      const dy = worldCar.y - egoY;
      const measured = { x: Math.cos(egoYaw) * dx + Math.sin(egoYaw) * dy, y: -Math.sin(egoYaw) * dx + Math.cos(egoYaw) * dy };
      expect(kf.state[0]).toBeCloseTo(measured.x, 6);
      expect(kf.state[1]).toBeCloseTo(measured.y, 6);
      kf.update(measured, 0.5, 0.2);
    }
    expect(Math.hypot(kf.state[2]!, kf.state[3]!)).toBeLessThan(1e-6);
  });
});
