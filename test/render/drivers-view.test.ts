import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { cameraFromVehicle, driversView, type DriversViewInput } from '../../render/drivers-view.js';
import { HudOptics } from '../../render/optics.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';

const DEG = Math.PI / 180;
const optics = new HudOptics(HUD_OPTICS_DEFAULTS);
const far = optics.far;
const near = optics.near;
const PANEL_W = HUD_OPTICS_DEFAULTS.panel.widthPx;
const PANEL_H = HUD_OPTICS_DEFAULTS.panel.heightPx;
const W = 640;
const H = 400;
const F = 1000; // px; 17.45 px per degree near the axis
const CX = 319.5;
const CY = 199.5;
const LOOK_DOWN = far.lookDownDeg * DEG;
const BRIGHT = 128;
const DARK = 40;
/** Edge tolerance, px: JPEG ringing plus the half-pixel of the sampling decision. */
const EDGE_TOL_PX = 2;

type Rgba = [number, number, number, number];

function panel(fill: (uPx: number, vPx: number) => Rgba | undefined): Uint8Array {
  const out = new Uint8Array(PANEL_W * PANEL_H * 4);
  for (let v = 0; v < PANEL_H; v++) {
    for (let u = 0; u < PANEL_W; u++) {
      const c = fill(u, v);
      if (c) out.set(c, (v * PANEL_W + u) * 4);
    }
  }
  return out;
}

function inRegion(plane: typeof far, u: number, v: number): boolean {
  const r = plane.region;
  return u >= r.xPx && u < r.xPx + r.widthPx && v >= r.yPx && v < r.yPx + r.heightPx;
}

const WHITE: Rgba = [255, 255, 255, 255];
const farWhite = panel((u, v) => (inRegion(far, u, v) ? WHITE : undefined));
const allWhite = panel(() => WHITE);
/** A 64 x 48 panel-px white block centred on the far plane's centre (about 0.5 x 0.5 deg). */
const farCentreDot = panel((u, v) => {
  const r = far.region;
  const cu = r.xPx + r.widthPx / 2;
  const cv = r.yPx + r.heightPx / 2;
  return Math.abs(u + 0.5 - cu) < 32 && Math.abs(v + 0.5 - cv) < 24 ? WHITE : undefined;
});

function input(panelRgba: Uint8Array, pitchRad: number, yawRad = 0, grey = 0): DriversViewInput {
  return {
    cameraRgb: new Uint8Array(W * H * 3).fill(grey),
    widthPx: W,
    heightPx: H,
    camera: { fx: F, fy: F, cx: CX, cy: CY, pitchRad, yawRad },
    panelRgba,
    panelWidthPx: PANEL_W,
    panelHeightPx: PANEL_H,
    optics,
  };
}

interface Decoded {
  at(x: number, y: number): number;
  /** Bounding box of pixels brighter than BRIGHT (green channel), and their centroid. */
  bright(): { xMin: number; xMax: number; yMin: number; yMax: number; xMean: number; yMean: number; count: number };
}

async function decode(jpeg: Uint8Array): Promise<Decoded> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([W, H, 3]);
  const at = (x: number, y: number): number => data[(y * W + x) * 3 + 1]!;
  return {
    at,
    bright() {
      let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity, sx = 0, sy = 0, count = 0;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          if (at(x, y) <= BRIGHT) continue;
          xMin = Math.min(xMin, x);
          xMax = Math.max(xMax, x);
          yMin = Math.min(yMin, y);
          yMax = Math.max(yMax, y);
          sx += x;
          sy += y;
          count++;
        }
      }
      return { xMin, xMax, yMin, yMax, xMean: sx / count, yMean: sy / count, count };
    },
  };
}

describe('cameraFromVehicle', () => {
  it('is a rotation whose forward row is the pitched, yawed optical axis', () => {
    const pitch = 0.1;
    const yaw = -0.2;
    const m = cameraFromVehicle(pitch, yaw);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const dot = m[i * 3]! * m[j * 3]! + m[i * 3 + 1]! * m[j * 3 + 1]! + m[i * 3 + 2]! * m[j * 3 + 2]!;
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 12);
      }
    }
    // Right-handed: right x down = forward.
    const [r0, r1, r2, d0, d1, d2] = [m[0]!, m[1]!, m[2]!, m[3]!, m[4]!, m[5]!];
    expect(r1 * d2 - r2 * d1).toBeCloseTo(m[6]!, 12);
    expect(r2 * d0 - r0 * d2).toBeCloseTo(m[7]!, 12);
    expect(r0 * d1 - r1 * d0).toBeCloseTo(m[8]!, 12);
    // Forward points yaw left of x and pitch below the horizontal.
    expect(Math.atan2(m[7]!, m[6]!)).toBeCloseTo(yaw, 12);
    expect(Math.asin(-m[8]!)).toBeCloseTo(pitch, 12);
  });
});

describe('driversView', () => {
  it('puts the far plane centre where a pinhole pitched by pitchRad predicts', async () => {
    for (const pitchDeg of [0, 1, far.lookDownDeg, 4]) {
      const pitch = pitchDeg * DEG;
      const dot = (await decode(await driversView(input(farCentreDot, pitch)))).bright();
      expect(dot.count, `pitch ${pitchDeg} deg`).toBeGreaterThan(20);
      expect(dot.xMean).toBeCloseTo(CX, 0);
      // Centre direction: azimuth 0, elevation -lookDown.
      expect(Math.abs(dot.yMean - (CY + F * Math.tan(LOOK_DOWN - pitch))), `pitch ${pitchDeg} deg`).toBeLessThan(0.5);
    }
  });

  it('moves the far plane centre right when the camera yaws left', async () => {
    const yaw = 3 * DEG;
    const pitch = LOOK_DOWN;
    const dot = (await decode(await driversView(input(farCentreDot, pitch, yaw)))).bright();
    // Direction (cos L, 0, -sin L) in a camera yawed by psi, pitched by theta: x = sin psi cos L,
    // z = cos theta cos psi cos L + sin theta sin L; y = -sin theta cos psi cos L + cos theta sin L.
    const z = Math.cos(pitch) * Math.cos(yaw) * Math.cos(LOOK_DOWN) + Math.sin(pitch) * Math.sin(LOOK_DOWN);
    const x = Math.sin(yaw) * Math.cos(LOOK_DOWN);
    const y = -Math.sin(pitch) * Math.cos(yaw) * Math.cos(LOOK_DOWN) + Math.cos(pitch) * Math.sin(LOOK_DOWN);
    expect(CX + (F * x) / z).toBeGreaterThan(CX + 40);
    expect(Math.abs(dot.xMean - (CX + (F * x) / z))).toBeLessThan(0.5);
    expect(Math.abs(dot.yMean - (CY + (F * y) / z))).toBeLessThan(0.5);
  });

  it('lights exactly the far plane FOV when the camera looks along the HUD axis', async () => {
    const view = await decode(await driversView(input(farWhite, LOOK_DOWN)));
    expect(view.at(Math.round(CX), Math.round(CY))).toBeGreaterThan(240);
    expect(view.at(20, 20)).toBeLessThan(DARK);
    expect(view.at(Math.round(CX), H - 20)).toBeLessThan(DARK);
    // Plane perpendicular to the optical axis: a rectangle 2 f tan(fov / 2) across, centred on (cx, cy).
    const halfW = F * Math.tan((far.fovHorizontalDeg / 2) * DEG);
    const halfH = F * Math.tan((far.fovVerticalDeg / 2) * DEG);
    const box = view.bright();
    expect(Math.abs(box.xMin - (CX - halfW))).toBeLessThan(EDGE_TOL_PX);
    expect(Math.abs(box.xMax - (CX + halfW))).toBeLessThan(EDGE_TOL_PX);
    expect(Math.abs(box.yMin - (CY - halfH))).toBeLessThan(EDGE_TOL_PX);
    expect(Math.abs(box.yMax - (CY + halfH))).toBeLessThan(EDGE_TOL_PX);
    expect(box.count).toBeGreaterThan(0.95 * 4 * halfW * halfH);
    expect(box.count).toBeLessThan(1.05 * 4 * halfW * halfH);
  });

  it('moves the far plane down by the pitch change', async () => {
    const level = (await decode(await driversView(input(farWhite, 0)))).bright();
    const pitched = (await decode(await driversView(input(farWhite, LOOK_DOWN)))).bright();
    // Top and bottom edges are horizontal lines at elevations -L +- fov/2 (they are parallel to the camera's x axis).
    const halfV = (far.fovVerticalDeg / 2) * DEG;
    expect(Math.abs(level.yMin - (CY + F * Math.tan(LOOK_DOWN - halfV)))).toBeLessThan(EDGE_TOL_PX);
    expect(Math.abs(level.yMax - (CY + F * Math.tan(LOOK_DOWN + halfV)))).toBeLessThan(EDGE_TOL_PX);
    const expectedShiftPx = F * Math.tan(LOOK_DOWN - halfV) - F * Math.tan(-halfV);
    expect(Math.abs(level.yMin - pitched.yMin - expectedShiftPx)).toBeLessThan(EDGE_TOL_PX);
  });

  it('draws the near plane too, and nothing outside the two planes', async () => {
    const view = await decode(await driversView(input(allWhite, LOOK_DOWN)));
    const nearCentreV = CY + F * Math.tan((near.lookDownDeg - far.lookDownDeg) * DEG);
    const nearHalfW = F * Math.tan((near.fovHorizontalDeg / 2) * DEG);
    expect(view.at(Math.round(CX), Math.round(nearCentreV))).toBeGreaterThan(240);
    // Below the far plane, beside the near one: panel pixels there belong to no plane.
    expect(view.at(Math.round(CX - nearHalfW - 15), Math.round(nearCentreV))).toBeLessThan(DARK);
    expect(view.at(Math.round(CX + nearHalfW + 15), Math.round(nearCentreV))).toBeLessThan(DARK);
    expect(view.at(Math.round(CX), H - 10)).toBeLessThan(DARK);
    expect(view.at(10, Math.round(CY))).toBeLessThan(DARK);
  });

  it('adds light with a screen blend: black HUD leaves the camera unchanged, half-alpha white brightens', async () => {
    const grey = 100;
    const blackHud = panel(() => [0, 0, 0, 255]);
    const unchanged = await decode(await driversView(input(blackHud, LOOK_DOWN, 0, grey)));
    for (const [x, y] of [[CX, CY], [10, 10], [CX, CY + 50]] as const) expect(Math.abs(unchanged.at(Math.round(x), Math.round(y)) - grey)).toBeLessThanOrEqual(1);

    const halfWhite = panel((u, v) => (inRegion(far, u, v) ? [255, 255, 255, 128] : undefined));
    const lit = await decode(await driversView(input(halfWhite, LOOK_DOWN, 0, grey)));
    const hud = (255 * 128) / 255;
    const expected = 255 - ((255 - grey) * (255 - hud)) / 255;
    expect(Math.abs(lit.at(Math.round(CX), Math.round(CY)) - expected)).toBeLessThanOrEqual(2);
    expect(Math.abs(lit.at(10, 10) - grey)).toBeLessThanOrEqual(1);
  });

  it('refuses inconsistent sizes and bad options, naming the field', async () => {
    const bad = { ...input(farWhite, 0), cameraRgb: new Uint8Array(10) };
    await expect(driversView(bad)).rejects.toThrow(new RangeError(`driversView: field 'cameraRgb' must hold 640x400x3 = 768000 bytes, got 10`));
    await expect(driversView({ ...input(farWhite, 0), panelWidthPx: 100 })).rejects.toThrow(/field 'panelRgba' must hold 100x480x4/);
    await expect(driversView({ ...input(farWhite, 0), camera: { fx: 0, fy: F, cx: CX, cy: CY, pitchRad: 0, yawRad: 0 } })).rejects.toThrow(/field 'camera.fx' must be a finite number > 0, got 0/);
    await expect(driversView(input(farWhite, 0), { jpegQuality: 0 })).rejects.toThrow(RangeError);
  });
});
