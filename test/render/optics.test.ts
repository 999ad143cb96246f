import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compensateForLatency,
  createEyeRay,
  createPanelPoint,
  createVehiclePoseDelta,
  HudOptics,
  predictVehiclePose,
  vehicleAtDisplayFromVehicleAtCapture,
  type VirtualImagePlane,
} from '../../render/optics.js';
import {
  FAR_VID_MAX_M,
  HUD_OPTICS_DEFAULTS,
  loadHudOpticsConfig,
  parseHudOpticsConfig,
  type Vec3M,
} from '../../render/optics-config.js';
import { thrownBy } from '../support/errors.js';

const DEG = Math.PI / 180;
const config = parseHudOpticsConfig({}, 'defaults');
const optics = new HudOptics(config);
const eye = config.eyeM;

/** A vehicle-frame point at `rangeM` along the direction `azimuthDeg` right / `elevationDeg` down of `plane`'s HUD axis, seen from the eyebox centre. */
function pointAtHudAngles(plane: VirtualImagePlane, rightDeg: number, downDeg: number, rangeAlongAxisM: number): Vec3M {
  // Hand-built from the HUD axis convention: axis = (cos L, 0, -sin L), right = (0, -1, 0), down = (-sin L, 0, -cos L).
  const l = plane.lookDownDeg * DEG;
  const x = Math.tan(rightDeg * DEG) * rangeAlongAxisM;
  const y = Math.tan(downDeg * DEG) * rangeAlongAxisM;
  const z = rangeAlongAxisM;
  return {
    x: eye.x + z * Math.cos(l) - y * Math.sin(l),
    y: eye.y - x,
    z: eye.z - z * Math.sin(l) - y * Math.cos(l),
  };
}

describe('HUD optics config', () => {
  it('fills in the documented defaults', () => {
    expect(config).toEqual(HUD_OPTICS_DEFAULTS);
    expect(config.eyeM).toEqual({ x: 1.6, y: 0.37, z: 1.2 });
    expect(config.panel).toEqual({ widthPx: 1280, heightPx: 480 });
    expect(config.far.vidM).toBe(10);
    expect(config.near.vidM).toBe(2.5);
  });

  it('merges a partial file with the defaults', () => {
    const c = parseHudOpticsConfig({ far: { vidM: 12, panelRegion: { heightPx: 300 } } }, 'hud-optics.json');
    expect(c.far.vidM).toBe(12);
    expect(c.far.fovHorizontalDeg).toBe(HUD_OPTICS_DEFAULTS.far.fovHorizontalDeg);
    expect(c.far.panelRegion).toEqual({ xPx: 0, yPx: 0, widthPx: 1280, heightPx: 300 });
  });

  it('accepts the far VID exactly at its limit and refuses beyond it, naming file and field', () => {
    expect(parseHudOpticsConfig({ far: { vidM: FAR_VID_MAX_M } }, 'hud-optics.json').far.vidM).toBe(FAR_VID_MAX_M);
    const error = thrownBy(() => parseHudOpticsConfig({ far: { vidM: 20 } }, 'hud-optics.json'));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("hud-optics.json: field 'far.vidM' must be <= 15, got 20");
  });

  it('refuses a negative FOV', () => {
    const error = thrownBy(() => parseHudOpticsConfig({ near: { fovVerticalDeg: -1.5 } }, 'hud-optics.json'));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe("hud-optics.json: field 'near.fovVerticalDeg' must be > 0, got -1.5");
  });

  it('refuses overlapping panel regions', () => {
    const error = thrownBy(() => parseHudOpticsConfig({ near: { panelRegion: { yPx: 300 } } }, 'hud-optics.json'));
    expect(error.name).toBe('RangeError');
    expect(error.message).toMatch(/^hud-optics\.json: field 'near\.panelRegion' must not overlap 'far\.panelRegion' \(1280x360 at \(0, 0\)\), got 400x120 at \(440, 300\)$/);
  });

  it('refuses a region outside the panel', () => {
    const error = thrownBy(() => parseHudOpticsConfig({ panel: { heightPx: 400 } }, 'hud-optics.json'));
    expect(error.message).toBe("hud-optics.json: field 'near.panelRegion' must lie inside the 1280x400 panel, got 400x120 at (440, 360)");
  });

  it('refuses an unknown field and a wrong type', () => {
    const unknown = thrownBy(() => parseHudOpticsConfig({ far: { vid: 10 } }, 'hud-optics.json'));
    expect(unknown.name).toBe('TypeError');
    expect(unknown.message).toBe("hud-optics.json: field 'far.vid' is not a known field");
    const wrong = thrownBy(() => parseHudOpticsConfig({ panel: { widthPx: 1280.5 } }, 'hud-optics.json'));
    expect(wrong.name).toBe('TypeError');
    expect(wrong.message).toBe("hud-optics.json: field 'panel.widthPx' must be integer, got 1280.5");
  });

  describe('loadHudOpticsConfig', () => {
    let dir = '';
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'arhud-optics-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('loads a file and names it in errors', async () => {
      const good = join(dir, 'good.json');
      await writeFile(good, JSON.stringify({ far: { vidM: 7.5 } }));
      expect((await loadHudOpticsConfig(good)).far.vidM).toBe(7.5);
      const bad = join(dir, 'hud-optics.json');
      await writeFile(bad, JSON.stringify({ far: { vidM: 20 } }));
      await expect(loadHudOpticsConfig(bad)).rejects.toThrow(`${bad}: field 'far.vidM' must be <= 15, got 20`);
      const notJson = join(dir, 'broken.json');
      await writeFile(notJson, '{ far: ');
      await expect(loadHudOpticsConfig(notJson)).rejects.toThrow(`loadHudOpticsConfig: ${notJson} is not valid JSON`);
      await expect(loadHudOpticsConfig(join(dir, 'missing.json'))).rejects.toThrow(/^loadHudOpticsConfig: cannot read .*missing\.json/);
    });
  });
});

describe('VirtualImagePlane geometry', () => {
  const far = optics.far;
  const r = far.region;
  const out = createPanelPoint();

  it('maps a point on the HUD axis at the VID to the far region centre', () => {
    const l = far.lookDownDeg * DEG;
    const p = { x: eye.x + far.vidM * Math.cos(l), y: eye.y, z: eye.z - far.vidM * Math.sin(l) };
    optics.vehicleToPanel(p, out);
    expect(out.behindEye).toBe(false);
    expect(out.outsideFov).toBe(false);
    expect(out.uPx).toBeCloseTo(r.xPx + r.widthPx / 2, 9); // 640
    expect(out.vPx).toBeCloseTo(r.yPx + r.heightPx / 2, 9); // 180
    // Any range along the axis lands on the same pixel.
    optics.vehicleToPanel({ x: eye.x + 80 * Math.cos(l), y: eye.y, z: eye.z - 80 * Math.sin(l) }, out);
    expect(out.uPx).toBeCloseTo(640, 9);
    expect(out.vPx).toBeCloseTo(180, 9);
  });

  it('maps points at the FOV edge angles to the region edges', () => {
    const halfH = far.fovHorizontalDeg / 2;
    const halfV = far.fovVerticalDeg / 2;
    optics.vehicleToPanel(pointAtHudAngles(far, halfH, 0, 30), out);
    expect(out.uPx).toBeCloseTo(1280, 9);
    expect(out.vPx).toBeCloseTo(180, 9);
    expect(out.outsideFov).toBe(false);
    optics.vehicleToPanel(pointAtHudAngles(far, -halfH, 0, 30), out);
    expect(out.uPx).toBeCloseTo(0, 9);
    optics.vehicleToPanel(pointAtHudAngles(far, 0, -halfV, 30), out);
    expect(out.vPx).toBeCloseTo(0, 9);
    optics.vehicleToPanel(pointAtHudAngles(far, 0, halfV, 30), out);
    expect(out.vPx).toBeCloseTo(360, 9);
    // A hair further out is outside the FOV.
    optics.vehicleToPanel(pointAtHudAngles(far, halfH + 0.01, 0, 30), out);
    expect(out.outsideFov).toBe(true);
    expect(out.uPx).toBeGreaterThan(1280);
  });

  it('a road point lands where hand trigonometry with the look-down tilt says', () => {
    const distanceM = 30;
    const lateralM = -1.5; // 1.5 m right of the centreline
    optics.roadPointToPanel(distanceM, lateralM, out);
    const aheadM = distanceM - eye.x;
    const depressionRad = Math.atan2(eye.z, aheadM); // below the horizontal, seen from the eye
    const belowAxisRad = depressionRad - far.lookDownDeg * DEG;
    const alongAxisM = Math.hypot(aheadM, eye.z) * Math.cos(belowAxisRad);
    const rightM = eye.y - lateralM;
    const expectedU = r.xPx + r.widthPx / 2 + (r.widthPx / 2) * ((rightM / alongAxisM) / Math.tan((far.fovHorizontalDeg / 2) * DEG));
    const expectedV = r.yPx + r.heightPx / 2 + (r.heightPx / 2) * (Math.tan(belowAxisRad) / Math.tan((far.fovVerticalDeg / 2) * DEG));
    expect(out.behindEye).toBe(false);
    expect(out.outsideFov).toBe(false);
    expect(out.uPx).toBeCloseTo(expectedU, 9);
    expect(out.vPx).toBeCloseTo(expectedV, 9);
    // The road meets the HUD axis at eyeZ / tan(lookDown) ahead of the eye: the region's middle row.
    const axisRoadM = eye.x + eye.z / Math.tan(far.lookDownDeg * DEG);
    expect(optics.roadPointToPanel(axisRoadM, eye.y, out).vPx).toBeCloseTo(180, 9);
    expect(out.uPx).toBeCloseTo(640, 9);
  });

  it('flags points behind the eye', () => {
    optics.vehicleToPanel({ x: eye.x - 5, y: eye.y, z: eye.z }, out);
    expect(out.behindEye).toBe(true);
    expect(out.outsideFov).toBe(true);
    expect(out.uPx).toBeNaN();
    // Beside the eye, square to the HUD axis: the ray never reaches the plane.
    optics.vehicleToPanel({ x: eye.x, y: eye.y - 3, z: eye.z }, out);
    expect(out.behindEye).toBe(true);
  });

  it('near and far planes map to their own panel regions', () => {
    const near = optics.near;
    optics.vehicleToPanel(pointAtHudAngles(near, 0, 0, near.vidM), out, eye, near);
    expect(out.uPx).toBeCloseTo(near.region.xPx + near.region.widthPx / 2, 9); // 640
    expect(out.vPx).toBeCloseTo(near.region.yPx + near.region.heightPx / 2, 9); // 420
    expect(optics.planeAtPanel(out.uPx, out.vPx)).toBe(near);
    optics.vehicleToPanel(pointAtHudAngles(near, near.fovHorizontalDeg / 2, near.fovVerticalDeg / 2, 2), out, eye, near);
    expect(out.uPx).toBeCloseTo(840, 9);
    expect(out.vPx).toBeCloseTo(480, 9);
    optics.vehicleToPanel(pointAtHudAngles(near, -near.fovHorizontalDeg / 2, -near.fovVerticalDeg / 2, 2), out, eye, near);
    expect(out.uPx).toBeCloseTo(440, 9);
    expect(out.vPx).toBeCloseTo(360, 9);
    expect(optics.planeAtPanel(640.5, 180.5)).toBe(optics.far);
    expect(optics.planeAtPanel(100.5, 420.5)).toBeUndefined();
    // The same world direction maps to different pixels on the two planes.
    const p = pointAtHudAngles(optics.far, 0, 0, 20);
    const onNear = optics.vehicleToPanel(p, createPanelPoint(), eye, near);
    expect(onNear.outsideFov).toBe(true); // far axis is above the near FOV
  });

  it('a tracked eye sees a world point through a different pixel (parallax)', () => {
    const p = pointAtHudAngles(far, 0, 0, 10); // on the plane centre
    const moved = { x: eye.x, y: eye.y + 0.05, z: eye.z };
    const tracked = new HudOptics(config).setEyeM(moved);
    const viaSetter = tracked.vehicleToPanel(p, createPanelPoint());
    const viaArg = optics.vehicleToPanel(p, createPanelPoint(), moved);
    // A point on the plane itself shows on the same pixel from any eye.
    expect(viaSetter.uPx).toBeCloseTo(640, 9);
    expect(viaArg.uPx).toBeCloseTo(640, 9);
    // A point beyond the plane moves with the eye against the nearer image (eye 5 cm left -> point
    // drawn left of centre): the ray from the moved eye meets the plane 10/40 of the way to the
    // point, 0.05 * (1 - 10/40) m left of the plane centre.
    const farPoint = pointAtHudAngles(far, 0, 0, 40);
    const u = tracked.vehicleToPanel(farPoint, createPanelPoint()).uPx;
    const pxPerM = far.region.widthPx / (2 * far.halfWidthM);
    expect(u).toBeLessThan(640);
    expect(640 - u).toBeCloseTo(0.05 * (1 - 10 / 40) * pxPerM, 9);
    expect(tracked.resetEye().eyeM).toEqual(eye);
    expect(thrownBy(() => tracked.setEyeM({ x: NaN, y: 0, z: 1 })).message).toMatch(/^HudOptics\.setEyeM: eyeM must be finite/);
  });
});

describe('optics round trips (property)', () => {
  const eyes = fc.record({
    x: fc.double({ min: -0.065, max: 0.065, noNaN: true }),
    y: fc.double({ min: -0.065, max: 0.065, noNaN: true }),
    z: fc.double({ min: -0.025, max: 0.025, noNaN: true }),
  });

  for (const name of ['far', 'near'] as const) {
    it(`${name}: panel -> ray -> plane -> panel within 1e-9 px`, () => {
      const plane = optics[name];
      const r = plane.region;
      const ray = createEyeRay();
      const out = createPanelPoint();
      fc.assert(
        fc.property(
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.double({ min: 0.5, max: 300, noNaN: true }),
          eyes,
          (fu, fv, rangeM, eyeOffset) => {
            const u = r.xPx + fu * r.widthPx;
            const v = r.yPx + fv * r.heightPx;
            const e = { x: eye.x + eyeOffset.x, y: eye.y + eyeOffset.y, z: eye.z + eyeOffset.z };
            optics.panelToRay(u, v, plane, ray, e);
            expect(Math.hypot(ray.direction.x, ray.direction.y, ray.direction.z)).toBeCloseTo(1, 12);
            const p = { x: e.x + rangeM * ray.direction.x, y: e.y + rangeM * ray.direction.y, z: e.z + rangeM * ray.direction.z };
            optics.vehicleToPanel(p, out, e, plane);
            expect(out.behindEye).toBe(false);
            expect(Math.abs(out.uPx - u)).toBeLessThan(1e-9);
            expect(Math.abs(out.vPx - v)).toBeLessThan(1e-9);
          },
        ),
        { numRuns: 500 },
      );
    });
  }

  it('vehicle -> panel -> ray passes within 1e-9 m of the point', () => {
    const ray = createEyeRay();
    const out = createPanelPoint();
    fc.assert(
      fc.property(
        fc.double({ min: 3, max: 200, noNaN: true }),
        fc.double({ min: -30, max: 30, noNaN: true }),
        fc.double({ min: -1, max: 6, noNaN: true }),
        eyes,
        fc.constantFrom('far' as const, 'near' as const),
        (aheadM, yM, zM, eyeOffset, name) => {
          const plane = optics[name];
          const e = { x: eye.x + eyeOffset.x, y: eye.y + eyeOffset.y, z: eye.z + eyeOffset.z };
          const p = { x: eye.x + aheadM, y: yM, z: zM };
          optics.vehicleToPanel(p, out, e, plane);
          if (out.behindEye) return;
          optics.panelToRay(out.uPx, out.vPx, plane, ray, e);
          const wx = p.x - e.x;
          const wy = p.y - e.y;
          const wz = p.z - e.z;
          const d = ray.direction;
          const along = wx * d.x + wy * d.y + wz * d.z;
          expect(along).toBeGreaterThan(0);
          const missM = Math.hypot(wy * d.z - wz * d.y, wz * d.x - wx * d.z, wx * d.y - wy * d.x);
          expect(missM).toBeLessThan(1e-9);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('latency compensation', () => {
  it('straight line: 10 m/s for 0.1 s moves 1 m forward', () => {
    const pose = predictVehiclePose(10, 0, 0.1);
    expect(pose.dxM).toBeCloseTo(1, 12);
    expect(pose.dyM).toBe(0);
    expect(pose.dYawRad).toBe(0);
  });

  it('a turn follows the exact arc', () => {
    const v = 15;
    const yawRate = 0.4;
    const dt = 0.25;
    const pose = predictVehiclePose(v, yawRate, dt, createVehiclePoseDelta());
    const radiusM = v / yawRate;
    expect(pose.dYawRad).toBeCloseTo(yawRate * dt, 15);
    expect(pose.dxM).toBeCloseTo(radiusM * Math.sin(yawRate * dt), 12);
    expect(pose.dyM).toBeCloseTo(radiusM * (1 - Math.cos(yawRate * dt)), 12);
    // Right turn mirrors.
    const right = predictVehiclePose(v, -yawRate, dt);
    expect(right.dxM).toBeCloseTo(pose.dxM, 12);
    expect(right.dyM).toBeCloseTo(-pose.dyM, 12);
    // Quarter circle: dx = dy = radius.
    const quarter = predictVehiclePose(10, Math.PI / 2, 1);
    expect(quarter.dxM).toBeCloseTo(20 / Math.PI, 12);
    expect(quarter.dyM).toBeCloseTo(20 / Math.PI, 12);
  });

  it('matches the arc on both sides of the straight-line limit', () => {
    // Reference in a form that stays accurate for tiny angles: 1 - cos(a) = 2 sin^2(a / 2).
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 60, noNaN: true }),
        fc.double({ min: 1e-7, max: 1e-1, noNaN: true }),
        fc.constantFrom(1, -1),
        (v, r, sign) => {
          const dt = 0.05;
          const a = sign * r * dt;
          const pose = predictVehiclePose(v, sign * r, dt);
          const radiusM = v / (sign * r);
          expect(Math.abs(pose.dxM - radiusM * Math.sin(a))).toBeLessThanOrEqual(1e-12 * (1 + v * dt));
          expect(Math.abs(pose.dyM - radiusM * 2 * Math.sin(a / 2) ** 2)).toBeLessThanOrEqual(1e-12 * (1 + v * dt));
        },
      ),
      { numRuns: 500 },
    );
    // Where 1 - cos(a) cancels to 0 in doubles, the series keeps dy = v dt a / 2.
    const tiny = predictVehiclePose(20, 1e-7, 0.1);
    expect(1 - Math.cos(1e-8)).toBe(0);
    expect(tiny.dyM).toBeCloseTo(2 * 1e-8 / 2, 20);
    expect(tiny.dxM).toBeCloseTo(2, 14);
  });

  it('moves a point 20 m ahead by -1 m in x for 0.1 s at 10 m/s', () => {
    const p = compensateForLatency({ x: 20, y: 0, z: 0.5 }, 10, 0, 0.1, { x: 0, y: 0, z: 0 });
    expect(p.x).toBeCloseTo(19, 12);
    expect(p.y).toBeCloseTo(0, 12);
    expect(p.z).toBe(0.5);
  });

  it('in a left turn a point ahead moves right and closer, consistent with the arc', () => {
    const pose = predictVehiclePose(10, 0.5, 0.2);
    // The vehicle's own position at display time, expressed at capture, maps to the origin.
    const origin = vehicleAtDisplayFromVehicleAtCapture({ x: pose.dxM, y: pose.dyM, z: 0 }, pose, { x: 0, y: 0, z: 0 });
    expect(Math.hypot(origin.x, origin.y)).toBeLessThan(1e-12);
    // A point ahead along the new heading lands on the new x axis.
    const ahead = { x: pose.dxM + 20 * Math.cos(pose.dYawRad), y: pose.dyM + 20 * Math.sin(pose.dYawRad), z: 0 };
    const q = vehicleAtDisplayFromVehicleAtCapture(ahead, pose, ahead); // in place
    expect(q.x).toBeCloseTo(20, 12);
    expect(q.y).toBeCloseTo(0, 12);
    const straightAhead = compensateForLatency({ x: 20, y: 0, z: 0 }, 10, 0.5, 0.2, { x: 0, y: 0, z: 0 });
    expect(straightAhead.y).toBeLessThan(0);
    expect(straightAhead.x).toBeLessThan(20);
  });
});
