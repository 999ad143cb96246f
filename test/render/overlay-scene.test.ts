// HudOverlayScene on real Dawn: geometry closed loop (optics -> overlay -> warp -> readback ->
// measured centroid), stale-content suppression and golden images.
//
// Closed loop: a compact ribbon blob around road point (d, y) is rendered at 4 x 4 sub-pixel
// placements; the mean signed error of its measured (intensity-weighted) centroid against the
// optics prediction must be < 0.5 px. Identity warp: the prediction is the area centroid of the quad
// whose corners optics.roadPointToPanel gives. Radial pre-warp: the centroid of the panel region
// that shows that quad through the mesh (the GPU's own piecewise-linear map): < 0.5 px; against the
// smooth radial model it stands in for: < 0.5 px + the mesh's interpolation error for that blob
// (piecewise-linear vs radial, computed by the test, 0.04-0.6 px here).
//
// Golden images live in test/render/golden/. Regenerate them (after LOOKING at the result) with
//   UPDATE_GOLDEN=1 npx vitest run test/render/overlay-scene.test.ts
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import pixelmatch from 'pixelmatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HudRenderer } from '../../render/hud-renderer.js';
import { HudOptics } from '../../render/optics.js';
import { HUD_OPTICS_DEFAULTS, parseHudOpticsConfig } from '../../render/optics-config.js';
import { HudOverlayScene, LANE_RIBBON_WIDTH_M, type HudMotion } from '../../render/overlay-scene.js';
import { renderHudSceneToPng } from '../../render/render-scene.js';
import type { HudPrimitive, HudScene } from '../../render/hud-scene.js';
import { WARP_MIN_COLS, WARP_MIN_ROWS, WarpMesh, radialK1 } from '../../render/warp-mesh.js';

const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), 'golden');
const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';
/** pixelmatch per-pixel colour threshold (0..1, its YIQ distance). */
const GOLDEN_THRESHOLD = 0.1;
/** Pixels allowed to differ (0.05 % of the 1280x480 panel: a GPU backend rasterising edges differently). */
const GOLDEN_MAX_MISMATCH_PX = 300;
/** Closed-loop tolerance, panel pixels (the bound). */
const CLOSED_LOOP_TOLERANCE_PX = 0.5;

const T0 = 1_000_000_000n;
const VALID = T0 + 200_000_000n;

const optics = new HudOptics(HUD_OPTICS_DEFAULTS);
const W = optics.panel.widthPx;
const H = optics.panel.heightPx;
let hud: HudRenderer;
let overlay: HudOverlayScene;
const frame = new Uint8Array(W * H * 4);

beforeAll(async () => {
  hud = await HudRenderer.create({ widthPx: W, heightPx: H, backend: 'opengles' });
  overlay = new HudOverlayScene(optics);
});

afterAll(() => {
  overlay?.dispose();
  hud?.dispose();
});

function scene(primitives: HudPrimitive[], extra: Partial<HudScene> = {}): HudScene {
  return { version: 1, tCaptureNs: T0, brightness: 'day', degraded: false, primitives, ...extra };
}

/** A straight ribbon on the road from (x0, y0) to (x1, y1). */
function ribbon(x0: number, y0: number, x1: number, y1: number, validUntilNs = VALID): HudPrimitive {
  return { kind: 'lane', id: 'probe', role: 'ego-left', pointsM: [[x0, y0], [x1, y1]], lineType: 'solid', confidence: 1, validUntilNs };
}

/** Panel rows per metre along the road (x) and columns per metre across it (y) at road point (d, y). */
function pixelsPerMetre(d: number, y: number): { rows: number; cols: number } {
  const rows = Math.abs(optics.roadPointToPanel(d + 0.5, y).vPx - optics.roadPointToPanel(d - 0.5, y).vPx);
  const cols = Math.abs(optics.roadPointToPanel(d, y + 0.5).uPx - optics.roadPointToPanel(d, y - 0.5).uPx);
  return { rows, cols };
}

/** Probe blob height, panel rows: compact (the ribbon is ~20-40 px wide). */
const PROBE_ROWS = 24;
/** Sub-pixel placements per axis: the probe visits DITHER x DITHER phases of one pixel. */
const DITHER = 4;

/**
 * The probe ribbon around road point (d, y), moved by (i, j) / DITHER of a panel pixel (column, row):
 * a LANE_RIBBON_WIDTH_M wide band along x, PROBE_ROWS rows long. Returns [x0, y0, x1, y1].
 * Pixel-centre sampling of one placement biases a blob's centroid (its ends are horizontal edges,
 * its sides slanted and long, up to ~1.8 px measured); visiting a full grid of sub-pixel phases and
 * averaging the signed error removes that quantization and leaves the geometric error.
 */
function probe(d: number, y: number, i = 0, j = 0): [number, number, number, number] {
  const ppm = pixelsPerMetre(d, y);
  const halfM = PROBE_ROWS / ppm.rows / 2;
  const c = d + j / DITHER / ppm.rows;
  const l = y - i / DITHER / ppm.cols; // +u is to the right, -y
  return [c - halfM, l, c + halfM, l];
}

/** Intensity-weighted centroid (pixel centres at i + 0.5) of the lit pixels, and their count. */
function litCentroid(buf: Uint8Array): { x: number; y: number; n: number } {
  let sx = 0, sy = 0, sw = 0, n = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const k = (y * W + x) * 4;
      const w = (buf[k] ?? 0) + (buf[k + 1] ?? 0) + (buf[k + 2] ?? 0);
      if (w === 0) continue;
      sx += w * (x + 0.5);
      sy += w * (y + 0.5);
      sw += w;
      n++;
    }
  }
  return { x: sx / sw, y: sy / sw, n };
}

type Px = readonly [number, number];

/**
 * Ideal panel corners of the ribbon quad from (x0, y0) to (x1, y1), LANE_RIBBON_WIDTH_M wide, each
 * projected with optics.roadPointToPanel; `shiftXM` moves the road points back (the car moved
 * forward). The panel image of a straight-edged road quad is the quad of its projected corners.
 */
function idealCorners(x0: number, y0: number, x1: number, y1: number, shiftXM = 0): Px[] {
  const len = Math.hypot(x1 - x0, y1 - y0);
  const nx = (-(y1 - y0) / len) * (LANE_RIBBON_WIDTH_M / 2);
  const ny = ((x1 - x0) / len) * (LANE_RIBBON_WIDTH_M / 2);
  const road = [[x0 - nx, y0 - ny], [x1 - nx, y1 - ny], [x1 + nx, y1 + ny], [x0 + nx, y0 + ny]];
  return road.map(([cx, cy]) => {
    const p = optics.roadPointToPanel(cx! - shiftXM, cy!);
    return [p.uPx, p.vPx] as const;
  });
}

/** Area centroid of a simple polygon (shoelace). */
function polygonCentroid(corners: readonly Px[]): { x: number; y: number } {
  let a = 0, gx = 0, gy = 0;
  for (let i = 0; i < corners.length; i++) {
    const p = corners[i]!;
    const q = corners[(i + 1) % corners.length]!;
    const cross = p[0] * q[1] - q[0] * p[1];
    a += cross;
    gx += (p[0] + q[0]) * cross;
    gy += (p[1] + q[1]) * cross;
  }
  return { x: gx / (3 * a), y: gy / (3 * a) };
}

function insideConvex(corners: readonly Px[], x: number, y: number): boolean {
  let sign = 0;
  for (let i = 0; i < corners.length; i++) {
    const p = corners[i]!;
    const q = corners[(i + 1) % corners.length]!;
    const c = (q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]);
    if (c === 0) continue;
    if (sign === 0) sign = Math.sign(c);
    else if (Math.sign(c) !== sign) return false;
  }
  return true;
}

/** Overlay uv (top-down, 0..1) that panel position (x, y) (0..1) shows through the GPU's piecewise-linear mesh. */
function meshUv(mesh: WarpMesh, x: number, y: number): Px {
  const i = Math.min(mesh.cols - 1, Math.max(0, Math.floor(x * mesh.cols)));
  const j = Math.min(mesh.rows - 1, Math.max(0, Math.floor(y * mesh.rows)));
  const s = x * mesh.cols - i; // right within the cell
  const t = y * mesh.rows - j; // down within the cell
  const at = (ii: number, jj: number, c: number) => mesh.uvs[2 * (jj * (mesh.cols + 1) + ii) + c]!;
  const out: [number, number] = [0, 0];
  for (let c = 0; c < 2; c++) {
    const tl = at(i, j, c), tr = at(i + 1, j, c), bl = at(i, j + 1, c), br = at(i + 1, j + 1, c);
    // The mesh's triangles split each cell along tl-br: (bl, br, tl) below it, (tl, br, tr) above.
    out[c] = t >= s ? tl + t * (bl - tl) + s * (br - bl) : tl + s * (tr - tl) + t * (br - tr);
  }
  return out;
}

/** Sub-samples per panel pixel and axis when integrating a warped region. */
const REGION_SUBSAMPLES = 4;

/**
 * Centroid (panel px) of the panel region that shows the ideal polygon through `uvAt` (panel 0..1 ->
 * overlay uv 0..1): the blob's predicted centroid after the warp. (The warp of the ideal centroid is
 * not it: the pre-warp magnifies unevenly, by up to 1.5x in area near the edges, which moved a
 * 100 px blob's centroid by 3-4 px in trials.) Integrated on a REGION_SUBSAMPLES^2-per-pixel grid.
 */
function warpedRegionCentroid(corners: readonly Px[], uvAt: (x: number, y: number) => Px, box: { x0: number; x1: number; y0: number; y1: number }): { x: number; y: number } {
  let sx = 0, sy = 0, n = 0;
  const step = 1 / REGION_SUBSAMPLES;
  for (let py = box.y0 + step / 2; py < box.y1; py += step) {
    for (let px = box.x0 + step / 2; px < box.x1; px += step) {
      const [u, v] = uvAt(px / W, py / H);
      if (!insideConvex(corners, u * W, v * H)) continue;
      sx += px;
      sy += py;
      n++;
    }
  }
  return { x: sx / n, y: sy / n };
}

/** Panel position (0..1, top-down) whose piecewise-linear mesh uv equals (u, v): the GPU's own inverse. */
function invertMesh(mesh: WarpMesh, u: number, v: number): { x: number; y: number } {
  const c = mesh.cols;
  const uv = mesh.uvs;
  const pos = mesh.positions;
  const idx = mesh.indices;
  for (let t = 0; t < idx.length; t += 3) {
    const [a, b, d] = [idx[t]!, idx[t + 1]!, idx[t + 2]!];
    const ax = uv[2 * a]!, ay = uv[2 * a + 1]!;
    const bx = uv[2 * b]! - ax, by = uv[2 * b + 1]! - ay;
    const dx = uv[2 * d]! - ax, dy = uv[2 * d + 1]! - ay;
    const det = bx * dy - by * dx;
    const s = ((u - ax) * dy - (v - ay) * dx) / det;
    const r = (bx * (v - ay) - by * (u - ax)) / det;
    if (s >= -1e-9 && r >= -1e-9 && s + r <= 1 + 1e-9) {
      return {
        x: pos[2 * a]! + s * (pos[2 * b]! - pos[2 * a]!) + r * (pos[2 * d]! - pos[2 * a]!),
        y: pos[2 * a + 1]! + s * (pos[2 * b + 1]! - pos[2 * a + 1]!) + r * (pos[2 * d + 1]! - pos[2 * a + 1]!),
      };
    }
  }
  throw new Error(`invertMesh: (${u}, ${v}) is outside the ${c}-column mesh`);
}

const PROBES: readonly (readonly [number, number])[] = [[20, 0.5], [30, 1.6], [45, -2.2], [60, 3.5]];

describe('HudOverlayScene geometry closed loop', () => {
  /**
   * Renders the probe at every dither placement through `warp`; each predictor maps the ideal
   * (optics) panel polygon to where its blob's centroid should appear on the panel. Returns, per
   * predictor, the mean signed error's length and the largest single-placement error, panel pixels.
   */
  async function measure(d: number, y: number, warp: WarpMesh, predictors: readonly ((corners: readonly Px[]) => { x: number; y: number })[]) {
    const n = DITHER * DITHER;
    const sums = predictors.map(() => ({ ex: 0, ey: 0, worst: 0 }));
    let pixels = 0;
    for (let step = 0; step < n; step++) {
      const r = probe(d, y, step % DITHER, Math.floor(step / DITHER));
      overlay.update(scene([ribbon(...r)]), T0);
      await hud.render(overlay.scene, overlay.camera, warp, frame);
      const c = litCentroid(frame);
      const corners = idealCorners(...r);
      predictors.forEach((predict, k) => {
        const want = predict(corners);
        const sum = sums[k]!;
        sum.ex += (c.x - want.x) / n;
        sum.ey += (c.y - want.y) / n;
        sum.worst = Math.max(sum.worst, Math.hypot(c.x - want.x, c.y - want.y));
      });
      pixels = c.n;
    }
    return { errors: sums.map((sum) => ({ meanErrorPx: Math.hypot(sum.ex, sum.ey), worstSinglePx: sum.worst })), pixels };
  }

  it(`lands road points where optics.roadPointToPanel predicts, within ${CLOSED_LOOP_TOLERANCE_PX} px (identity warp)`, async () => {
    const warp = WarpMesh.identity();
    const report: string[] = [];
    for (const [d, y] of PROBES) {
      const m = await measure(d, y, warp, [polygonCentroid]);
      const e = m.errors[0]!;
      const point = optics.roadPointToPanel(d, y);
      report.push(`d=${d} y=${y} (panel ${point.uPx.toFixed(1)}, ${point.vPx.toFixed(1)}): ${m.pixels} px blob, mean error ${e.meanErrorPx.toFixed(3)} px, worst single placement ${e.worstSinglePx.toFixed(3)} px`);
      expect(point.outsideFov).toBe(false);
      expect(m.pixels).toBeGreaterThan(200);
      expect(e.meanErrorPx).toBeLessThan(CLOSED_LOOP_TOLERANCE_PX);
    }
    console.log(`closed loop, identity warp:\n  ${report.join('\n  ')}`);
  });

  it('lands road points where the inverse of a radial pre-warp mesh puts them', async () => {
    const k1 = -0.1;
    const aspect = W / H;
    const warp = WarpMesh.radial(WARP_MIN_COLS, WARP_MIN_ROWS, k1, aspect);
    const report: string[] = [];
    let maxMovedPx = 0;
    for (const [d, y] of PROBES) {
      const ideal = optics.roadPointToPanel(d, y);
      const at = invertMesh(warp, ideal.uPx / W, ideal.vPx / H);
      const movedPx = Math.hypot(at.x * W - ideal.uPx, at.y * H - ideal.vPx);
      maxMovedPx = Math.max(maxMovedPx, movedPx);
      // The warp pushes edge content outwards; the probe must stay on the panel to be measured whole.
      expect(Math.min(at.x * W, W - at.x * W, at.y * H, H - at.y * H)).toBeGreaterThan(30);
      const boxOf = (corners: readonly Px[]) => {
        const ps = corners.map(([u, v]) => invertMesh(warp, u / W, v / H));
        const xs = ps.map((p) => p.x * W), ys = ps.map((p) => p.y * H);
        return { x0: Math.floor(Math.min(...xs)) - 4, x1: Math.ceil(Math.max(...xs)) + 4, y0: Math.floor(Math.min(...ys)) - 4, y1: Math.ceil(Math.max(...ys)) + 4 };
      };
      const viaMesh = (corners: readonly Px[]) => warpedRegionCentroid(corners, (x, yy) => meshUv(warp, x, yy), boxOf(corners));
      const viaModel = (corners: readonly Px[]) => warpedRegionCentroid(corners, (x, yy) => radialK1(x, yy, k1, aspect), boxOf(corners));
      const viaPoint = (corners: readonly Px[]) => {
        const c = polygonCentroid(corners);
        const p = invertMesh(warp, c.x / W, c.y / H);
        return { x: p.x * W, y: p.y * H };
      };
      const m = await measure(d, y, warp, [viaMesh, viaModel, viaPoint]);
      const [mesh, model, point] = m.errors as [typeof m.errors[0], typeof m.errors[0], typeof m.errors[0]];
      // Mesh interpolation error for this blob: piecewise-linear mesh vs the radial model it samples.
      const corners = idealCorners(...probe(d, y));
      const a = viaMesh(corners), b = viaModel(corners);
      const interpolationPx = Math.hypot(a.x - b.x, a.y - b.y);
      report.push(
        `d=${d} y=${y}: warp moved it ${movedPx.toFixed(1)} px; mean error vs mesh prediction ${mesh.meanErrorPx.toFixed(3)} px ` +
          `(worst single ${mesh.worstSinglePx.toFixed(3)}), vs radial-model prediction ${model.meanErrorPx.toFixed(3)} px ` +
          `(mesh interpolation error ${interpolationPx.toFixed(3)} px); [warp of the ideal centroid would be off by ${point.meanErrorPx.toFixed(2)} px]`,
      );
      // The GPU draws the piecewise-linear mesh, so the mesh's own map is the prediction: 0.5 px.
      expect(mesh.meanErrorPx).toBeLessThan(CLOSED_LOOP_TOLERANCE_PX);
      // Against the smooth radial model, add the mesh's interpolation error for this blob.
      expect(model.meanErrorPx).toBeLessThan(CLOSED_LOOP_TOLERANCE_PX + interpolationPx);
    }
    expect(maxMovedPx).toBeGreaterThan(10); // the warp really moves content
    console.log(`closed loop, radial k1=${k1} ${WARP_MIN_COLS}x${WARP_MIN_ROWS} warp:\n  ${report.join('\n  ')}`);
  });

  it('compensates latency: content captured at d is drawn where the car will see it after dtS', async () => {
    const motion: HudMotion = { speedMps: 25, yawRateRps: 0, dtS: 0.1 }; // 2.5 m forward
    const [d, y] = [30, 1];
    const r = probe(d, y);
    overlay.update(scene([ribbon(...r)]), T0, motion);
    await hud.render(overlay.scene, overlay.camera, WarpMesh.identity(), frame);
    const c = litCentroid(frame);
    const want = polygonCentroid(idealCorners(...r, motion.speedMps * motion.dtS));
    expect(Math.hypot(c.x - want.x, c.y - want.y)).toBeLessThan(CLOSED_LOOP_TOLERANCE_PX);
  });
});

describe('HudOverlayScene stale content', () => {
  it('does not draw a primitive whose validUntilNs is at or before the display time', async () => {
    const warp = WarpMesh.identity();
    for (const displayTimeNs of [VALID, VALID + 1n]) {
      overlay.update(scene([ribbon(25, 0.5, 40, 0.5), { kind: 'speed', speedMps: 20, validUntilNs: VALID }]), displayTimeNs);
      expect(overlay.triangleCount).toBe(0);
      await hud.render(overlay.scene, overlay.camera, warp, frame);
      expect(frame.every((byte, k) => k % 4 === 3 || byte === 0)).toBe(true);
    }
    // One nanosecond earlier it is still valid and drawn.
    overlay.update(scene([ribbon(25, 0.5, 40, 0.5)]), VALID - 1n);
    await hud.render(overlay.scene, overlay.camera, warp, frame);
    expect(litCentroid(frame).n).toBeGreaterThan(100);
  });

  it('renderHudSceneToPng refuses a renderer of another size than the optics panel', async () => {
    const small = new HudOptics(
      parseHudOpticsConfig({
        panel: { widthPx: 640, heightPx: 480 },
        far: { panelRegion: { xPx: 0, yPx: 0, widthPx: 640, heightPx: 360 } },
        near: { panelRegion: { xPx: 120, yPx: 360, widthPx: 400, heightPx: 120 } },
      }),
    );
    await expect(renderHudSceneToPng(scene([]), { optics: small, renderer: hud })).rejects.toThrow(
      new RangeError(`renderHudSceneToPng: 'renderer' must match the optics panel 640x480, got 1280x480`),
    );
  });

  it('refuses bad arguments naming the method and field', () => {
    expect(() => overlay.update(scene([]), 5 as unknown as bigint)).toThrow(new TypeError(`HudOverlayScene.update: 'displayTimeNs' must be a bigint, got number`));
    expect(() => overlay.update(scene([]), T0, { speedMps: NaN, yawRateRps: 0, dtS: 0 })).toThrow(
      new RangeError(`HudOverlayScene.update: 'motion.speedMps' must be a finite number, got NaN`),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Golden images

const KMH = 1 / 3.6;

function busyDayScene(): HudScene {
  const curve = (y0: number): [number, number][] => Array.from({ length: 25 }, (_, i) => [i * 5, y0 + 0.00025 * (i * 5) ** 2] as [number, number]);
  return scene([
    { kind: 'lane', id: 'l', role: 'ego-left', pointsM: curve(1.8), lineType: 'solid', confidence: 1, validUntilNs: VALID },
    { kind: 'lane', id: 'r', role: 'ego-right', pointsM: curve(-1.8), lineType: 'dashed', confidence: 0.9, validUntilNs: VALID },
    { kind: 'navigation', distanceM: 45, turn: 'right', validUntilNs: VALID },
    { kind: 'object', trackId: 'lead', objectClass: 'car', positionM: { x: 32, y: 0.6 }, widthM: 1.8, warning: 'warning', ttcS: 2.1, validUntilNs: VALID },
    { kind: 'object', trackId: 'ped', objectClass: 'person', positionM: { x: 27, y: -1.6 }, widthM: 0.6, warning: 'critical', ttcS: 1.2, validUntilNs: VALID },
    { kind: 'object', trackId: 'far', objectClass: 'truck', positionM: { x: 75, y: 5 }, widthM: 2.5, warning: 'none', validUntilNs: VALID },
    { kind: 'object', trackId: 'bike', objectClass: 'bicycle', positionM: { x: 52, y: -2.6 }, widthM: 0.8, warning: 'caution', validUntilNs: VALID },
    { kind: 'acc-lead', trackId: 'lead', gapM: 28, validUntilNs: VALID },
    { kind: 'forward-collision', level: 'critical', ttcS: 1.2, validUntilNs: VALID },
    { kind: 'lane-departure', side: 'left', validUntilNs: VALID },
    { kind: 'speed', speedMps: 87 * KMH, limitMps: 80 * KMH, validUntilNs: VALID },
    // Stale: must not appear in the golden image.
    { kind: 'object', trackId: 'stale', objectClass: 'car', positionM: { x: 40, y: 0 }, widthM: 1.8, warning: 'critical', validUntilNs: T0 },
  ]);
}

function nightScene(): HudScene {
  return scene(
    [
      { kind: 'lane', id: 'l', role: 'ego-left', pointsM: [[0, 1.75], [120, 1.75]], lineType: 'solid', confidence: 1, validUntilNs: VALID },
      { kind: 'lane', id: 'r', role: 'ego-right', pointsM: [[0, -1.75], [120, -1.75]], lineType: 'solid', confidence: 1, validUntilNs: VALID },
      { kind: 'lane', id: 'p', role: 'path', pointsM: [[0, 0], [120, 0]], lineType: 'solid', confidence: 1, validUntilNs: VALID },
      { kind: 'object', trackId: 'lead', objectClass: 'car', positionM: { x: 40, y: 0 }, widthM: 1.8, warning: 'caution', validUntilNs: VALID },
      { kind: 'navigation', distanceM: 30, turn: 'straight', validUntilNs: VALID },
      { kind: 'speed', speedMps: 50 * KMH, limitMps: 50 * KMH, validUntilNs: VALID },
    ],
    { brightness: 'night' },
  );
}

function degradedScene(): HudScene {
  const busy = busyDayScene();
  return { ...busy, degraded: true };
}

const GOLDENS: readonly [string, () => HudScene][] = [
  ['busy-day', busyDayScene],
  ['night', nightScene],
  ['degraded', degradedScene],
];

describe('HudOverlayScene golden images', () => {
  for (const [name, make] of GOLDENS) {
    it(`renders '${name}' like test/render/golden/${name}.png (threshold ${GOLDEN_THRESHOLD}, <= ${GOLDEN_MAX_MISMATCH_PX} px differ)`, async () => {
      const png = await renderHudSceneToPng(make(), { optics, renderer: hud, displayTimeNs: T0 });
      const path = join(GOLDEN_DIR, `${name}.png`);
      if (UPDATE_GOLDEN) {
        mkdirSync(GOLDEN_DIR, { recursive: true });
        writeFileSync(path, png);
      }
      if (!existsSync(path)) throw new Error(`missing golden ${path}: run with UPDATE_GOLDEN=1 and look at it`);
      const actual = PNG.sync.read(png);
      const expected = PNG.sync.read(readFileSync(path));
      expect([actual.width, actual.height]).toEqual([expected.width, expected.height]);
      const diff = pixelmatch(actual.data, expected.data, undefined, W, H, { threshold: GOLDEN_THRESHOLD });
      expect(diff).toBeLessThanOrEqual(GOLDEN_MAX_MISMATCH_PX);
    });
  }
});
