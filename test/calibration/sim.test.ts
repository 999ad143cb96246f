import { describe, expect, it } from 'vitest';
import { DESIGN_EYEBOX_HEIGHT_M, DESIGN_EYEBOX_WIDTH_M, HudOpticsSimulator, TOL_PANEL_SHIFT_M } from '../../calibration/sim/index.js';
import type { Vec3M } from '../../render/optics-config.js';
import { createEyeRay } from '../../render/optics.js';

const ARCMIN = (180 * 60) / Math.PI;
const angleArcmin = (a: Vec3M, b: Vec3M): number => Math.acos(Math.min(1, a.x * b.x + a.y * b.y + a.z * b.z)) * ARCMIN;

describe('HudOpticsSimulator', () => {
  const sim = new HudOpticsSimulator();
  const nominal = new HudOpticsSimulator({ toleranceScale: 0 });
  const c = sim.eyeboxCentreM;
  const corners: Vec3M[] = [-1, 1].flatMap((sy) => [-1, 1].map((sz) => ({ x: c.x, y: c.y + (sy * DESIGN_EYEBOX_WIDTH_M) / 2, z: c.z + (sz * DESIGN_EYEBOX_HEIGHT_M) / 2 })));

  it('traces forward and back consistently (apparentDirection -> panelPointOf round trip)', () => {
    const d = { x: 0, y: 0, z: 0 };
    const p = { uPx: 0, vPx: 0 };
    for (const eye of [c, ...corners]) {
      for (const [u, v] of [[0, 0], [640, 180], [1280, 360], [100, 300], [1111, 17]] as const) {
        sim.apparentDirection(u, v, eye, d);
        expect(Math.hypot(d.x, d.y, d.z)).toBeCloseTo(1, 12);
        sim.panelPointOf(d, eye, p);
        expect(Math.abs(p.uPx - u)).toBeLessThan(1e-5);
        expect(Math.abs(p.vPx - v)).toBeLessThan(1e-5);
      }
    }
  });

  it('shows about the designed FOV and VID from the eyebox centre', () => {
    const l = nominal.apparentDirection(0, 180, c, { x: 0, y: 0, z: 0 });
    const r = nominal.apparentDirection(1280, 180, c, { x: 0, y: 0, z: 0 });
    const t = nominal.apparentDirection(640, 0, c, { x: 0, y: 0, z: 0 });
    const b = nominal.apparentDirection(640, 360, c, { x: 0, y: 0, z: 0 });
    expect(angleArcmin(l, r) / 60).toBeCloseTo(10, 1);
    expect(angleArcmin(t, b) / 60).toBeCloseTo(4, 1);
    // VID: rays from two eyes 20 mm apart towards the centre pixel cross about 10 m ahead.
    const e2 = { ...c, y: c.y + 0.02 };
    const d1 = nominal.apparentDirection(640, 180, c, { x: 0, y: 0, z: 0 });
    const d2 = nominal.apparentDirection(640, 180, e2, { x: 0, y: 0, z: 0 });
    const convergenceRad = Math.atan2(d1.y, d1.x) - Math.atan2(d2.y, d2.x);
    const vidM = 0.02 / convergenceRad;
    expect(vidM).toBeGreaterThan(8);
    expect(vidM).toBeLessThan(12.5);
  });

  it('has realistic distortion that depends on the eye position', () => {
    const ray = createEyeRay();
    const offsetArcmin = (eye: Vec3M, u: number, v: number): number => angleArcmin(sim.apparentDirection(u, v, eye, { x: 0, y: 0, z: 0 }), sim.plane.panelToRay(u, v, ray, eye).direction);
    let worst = 0;
    for (const [u, v] of [[0, 0], [1280, 0], [0, 360], [1280, 360]] as const) worst = Math.max(worst, offsetArcmin(c, u, v));
    expect(worst).toBeGreaterThan(5); // a few % at the corners (1 % of the half-diagonal is ~3.2 arcmin)
    expect(worst).toBeLessThan(60);
    // Dynamic distortion: the corner's error changes by arcminutes across the eyebox.
    const d0 = sim.apparentDirection(1280, 360, corners[0]!, { x: 0, y: 0, z: 0 });
    const i0 = sim.plane.panelToRay(1280, 360, ray, corners[0]!).direction;
    const e0 = { x: d0.x - i0.x, y: d0.y - i0.y, z: d0.z - i0.z };
    const d3 = sim.apparentDirection(1280, 360, corners[3]!, { x: 0, y: 0, z: 0 });
    const i3 = sim.plane.panelToRay(1280, 360, ray, corners[3]!).direction;
    const change = Math.hypot(e0.x - (d3.x - i3.x), e0.y - (d3.y - i3.y), e0.z - (d3.z - i3.z)) * ARCMIN;
    expect(change).toBeGreaterThan(1);
    expect(change).toBeLessThan(30);
  });

  it('draws manufacturing tolerances deterministically from the seed', () => {
    const again = new HudOpticsSimulator();
    const other = new HudOpticsSimulator({ seed: 2 });
    expect(again.tolerances).toEqual(sim.tolerances);
    expect(other.tolerances).not.toEqual(sim.tolerances);
    expect(Math.abs(sim.tolerances.panelShiftUM)).toBeLessThanOrEqual(TOL_PANEL_SHIFT_M);
    expect(Object.values(nominal.tolerances).flat().every((v) => v === 0)).toBe(true);
    const at = (s: HudOpticsSimulator): Vec3M => s.apparentDirection(300, 100, c, { x: 0, y: 0, z: 0 });
    expect(at(again)).toEqual(at(sim));
    expect(angleArcmin(at(other), at(sim))).toBeGreaterThan(0.5);
    expect(angleArcmin(at(nominal), at(sim))).toBeGreaterThan(0.5);
  });

  it('refuses bad options', () => {
    expect(() => new HudOpticsSimulator({ seed: 1.5 })).toThrow(TypeError);
    expect(() => new HudOpticsSimulator({ toleranceScale: -1 })).toThrow("HudOpticsSimulator: 'toleranceScale' must be >= 0, got -1");
  });
});
