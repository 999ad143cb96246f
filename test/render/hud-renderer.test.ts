// Real Dawn, real GLES (llvmpipe on CPU machines): overlay -> warp -> readback, pixel-checked.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type * as THREE_NS from 'three/webgpu';
import { HudRenderer } from '../../render/hud-renderer.js';
import { installHeadlessWebGpu, noAdapterMessage } from '../../render/headless-gpu.js';
import { WARP_MIN_COLS, WARP_MIN_ROWS, WarpMesh, radialK1 } from '../../render/warp-mesh.js';

// pngjs ships no types (and @types/pngjs is not installed): type the one call used here.
const { PNG } = createRequire(import.meta.url)('pngjs') as {
  PNG: { new (o: { width: number; height: number }): { data: Buffer }; sync: { write(png: { data: Buffer }): Buffer } };
};

const W = 1280;
const H = 480;
const PNG_PATH = '/tmp/hud-test.png';
const BARREL_PNG_PATH = '/tmp/hud-test-barrel.png';
const BENCH_FRAMES = 200;

let THREE: typeof THREE_NS;
let hud: HudRenderer;
const frame = new Uint8Array(W * H * 4);

/** Overlay camera in pixel units, y down like the panel: (0, 0) = top-left, (W, H) = bottom-right. */
function pixelCamera(): THREE_NS.OrthographicCamera {
  return new THREE.OrthographicCamera(0, W, 0, H, -10, 10);
}

function quad(xPx: number, yPx: number, wPx: number, hPx: number, color: number): THREE_NS.Mesh {
  const m = new THREE.Mesh(
    new THREE.PlaneGeometry(wPx, hPx),
    new THREE.MeshBasicMaterial({ color, side: THREE.DoubleSide }),
  );
  m.position.set(xPx + wPx / 2, yPx + hPx / 2, 0);
  return m;
}

function px(buf: Uint8Array, x: number, y: number): [number, number, number, number] {
  const k = (y * W + x) * 4;
  return [buf[k] ?? -1, buf[k + 1] ?? -1, buf[k + 2] ?? -1, buf[k + 3] ?? -1];
}

/** Centroid of pixels whose red channel exceeds 127. */
function redCentroid(buf: Uint8Array): { x: number; y: number; n: number } {
  let sx = 0, sy = 0, n = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if ((buf[(y * W + x) * 4] ?? 0) > 127) { sx += x + 0.5; sy += y + 0.5; n++; }
    }
  }
  return { x: sx / n, y: sy / n, n };
}

function writePng(path: string, rgba: Uint8Array): void {
  const png = new PNG({ width: W, height: H });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  writeFileSync(path, PNG.sync.write(png));
}

beforeAll(async () => {
  hud = await HudRenderer.create({ widthPx: W, heightPx: H, backend: 'opengles' });
  THREE = await import('three/webgpu');
});

afterAll(() => hud?.dispose());

describe('HudRenderer (identity warp)', () => {
  it('draws a red quad at the expected panel pixels on a black background', async () => {
    const scene = new THREE.Scene();
    scene.add(quad(100, 50, 200, 100, 0xff0000)); // x 100..300, y 50..150 (top-down)
    scene.add(quad(900, 380, 100, 60, 0x00ff00)); // near the bottom right
    await hud.render(scene, pixelCamera(), WarpMesh.identity(), frame);
    writePng(PNG_PATH, frame);

    expect(px(frame, 101, 51)).toEqual([255, 0, 0, 255]);
    expect(px(frame, 200, 100)).toEqual([255, 0, 0, 255]);
    expect(px(frame, 298, 148)).toEqual([255, 0, 0, 255]);
    expect(px(frame, 950, 410)).toEqual([0, 255, 0, 255]);
    // Background: black and transparent (no light on a HUD).
    for (const [x, y] of [[0, 0], [98, 100], [302, 100], [200, 48], [200, 152], [W - 1, H - 1], [640, 240]] as const) {
      expect(px(frame, x, y)).toEqual([0, 0, 0, 0]);
    }
    const c = redCentroid(frame);
    expect(c.n).toBe(200 * 100);
    expect(c.x).toBeCloseTo(200, 5);
    expect(c.y).toBeCloseTo(100, 5);

  });

  it('puts the top of the scene in the top rows of the output (y-up camera)', async () => {
    const scene = new THREE.Scene();
    // Conventional y-up camera: the bar at y in [0.8, 1] is the top fifth of the view.
    const camera = new THREE.OrthographicCamera(0, 1, 1, 0, -1, 1);
    const bar = new THREE.Mesh(new THREE.PlaneGeometry(1, 0.2), new THREE.MeshBasicMaterial({ color: 0xff0000 }));
    bar.position.set(0.5, 0.9, 0);
    scene.add(bar);
    await hud.render(scene, camera, WarpMesh.identity(), frame);
    expect(px(frame, 640, 0)[0]).toBe(255);
    expect(px(frame, 640, Math.floor(0.2 * H) - 2)[0]).toBe(255);
    expect(px(frame, 640, Math.floor(0.2 * H) + 2)[0]).toBe(0);
    expect(px(frame, 640, H - 1)[0]).toBe(0);
  });
});

describe('HudRenderer (barrel warp)', () => {
  it('moves a known point to where the mesh says, within 1 px', async () => {
    const k1 = -0.1; // strong enough to move the point ~38 px, weak enough not to fold the grid
    const aspect = W / H;
    const warp = WarpMesh.radial(48, 24, k1, aspect);
    // Panel point on a grid vertex (exact in the mesh), far from the centre so the shift is large.
    const panel = { x: 40 / 48, y: 4 / 24 };
    const [u, v] = radialK1(panel.x, panel.y, k1, aspect);
    const scene = new THREE.Scene();
    scene.add(quad(u * W - 4, v * H - 4, 8, 8, 0xff0000));
    await hud.render(scene, pixelCamera(), warp, frame);
    const c = redCentroid(frame);
    expect(c.n).toBeGreaterThan(20);
    // Sanity: the warp really moved it (several px), and to the predicted place.
    expect(Math.hypot(u * W - panel.x * W, v * H - panel.y * H)).toBeGreaterThan(10);
    expect(Math.abs(c.x - panel.x * W)).toBeLessThan(1);
    expect(Math.abs(c.y - panel.y * H)).toBeLessThan(1);
  });

  it(`measures render + warp + readback at ${W}x${H} (median of ${BENCH_FRAMES})`, async () => {
    const scene = new THREE.Scene();
    for (let i = 0; i < 10; i++) scene.add(quad(50 + i * 110, 100 + (i % 3) * 80, 80, 60, 0x00ff00 + i * 0x100000));
    // A 20 x 10 line grid so the barrel pre-warp is visible in the PNG.
    for (let x = 0; x <= W; x += W / 20) scene.add(quad(Math.min(x, W - 2), 0, 2, H, 0x3060ff));
    for (let y = 0; y <= H; y += H / 10) scene.add(quad(0, Math.min(y, H - 2), W, 2, 0x3060ff));
    const camera = pixelCamera();
    const warp = WarpMesh.radial(WARP_MIN_COLS, WARP_MIN_ROWS, -0.1, W / H);
    for (let i = 0; i < 10; i++) await hud.render(scene, camera, warp, frame); // warm-up
    writePng(BARREL_PNG_PATH, frame);
    const times: number[] = [];
    for (let i = 0; i < BENCH_FRAMES; i++) {
      const t0 = performance.now();
      await hud.render(scene, camera, warp, frame);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const medianMs = times[times.length >> 1] ?? NaN;
    const p99Ms = times[Math.floor(times.length * 0.99)] ?? NaN;
    console.log(`HudRenderer ${W}x${H} render+warp+readback (${hud.gpu.adapterDescription}, readback ${hud.readbackPath}): median ${medianMs.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms`);
    expect(medianMs).toBeGreaterThan(0);
  });

  it('refuses a wrongly sized output buffer naming the field', async () => {
    await expect(hud.render(new THREE.Scene(), pixelCamera(), WarpMesh.identity(), new Uint8Array(10)))
      .rejects.toThrow(/HudRenderer.render: 'into' must be a Uint8Array of 2457600 bytes, got 10/);
  });
});

describe('WarpMesh validation', () => {
  it('refuses too few cols / rows naming the field', () => {
    expect(() => WarpMesh.identity(8, WARP_MIN_ROWS)).toThrow(new RangeError(`WarpMesh.fromFunction: 'cols' must be >= 32, got 8`));
    expect(() => WarpMesh.identity(WARP_MIN_COLS, WARP_MIN_ROWS - 1)).toThrow(`'rows' must be >= 16, got 15`);
    expect(() => WarpMesh.identity(32.5, 16)).toThrow(TypeError);
    expect(() => WarpMesh.identity(WARP_MIN_COLS, WARP_MIN_ROWS)).not.toThrow();
  });

  it('refuses bad arrays and non-finite warp values', () => {
    const n = (WARP_MIN_COLS + 1) * (WARP_MIN_ROWS + 1) * 2;
    expect(() => new WarpMesh(32, 16, new Float32Array(n - 1), new Float32Array(n))).toThrow(`WarpMesh: 'positions' must have ${n} values, got ${n - 1}`);
    const bad = new Float32Array(n);
    bad[7] = NaN;
    expect(() => new WarpMesh(32, 16, new Float32Array(n), bad)).toThrow(`WarpMesh: 'uvs[7]' must be finite, got NaN`);
    expect(() => WarpMesh.fromFunction(32, 16, () => [Infinity, 0])).toThrow(/WarpMesh.fromFunction: 'fn\(0, 0\)' must return finite/);
  });

  it('refuses a uv grid that folds over', () => {
    // k1 = -0.3 at this aspect folds the corners back on themselves (content would show twice).
    expect(() => WarpMesh.radial(32, 16, -0.3, 1280 / 480)).toThrow(/WarpMesh: 'uvs' grid folds or degenerates at cell \(0, 0\)/);
  });

  it('interpolates between two eye-position meshes and checks grids and t', () => {
    const a = WarpMesh.identity(32, 16);
    const b = WarpMesh.fromFunction(32, 16, (x, y) => [x + 0.1, y - 0.2]);
    const mid = WarpMesh.interpolate(a, b, 0.5);
    expect(mid.uvs[0]).toBeCloseTo(0.05, 6);
    expect(mid.uvs[1]).toBeCloseTo(-0.1, 6);
    const into = WarpMesh.identity(32, 16);
    expect(WarpMesh.interpolate(a, b, 1, into)).toBe(into);
    expect(into.uvs[0]).toBeCloseTo(0.1, 6);
    expect(() => WarpMesh.interpolate(a, WarpMesh.identity(33, 16), 0.5)).toThrow(`WarpMesh.interpolate: 'b' grid must match 'a' (32x16), got 33x16`);
    expect(() => WarpMesh.interpolate(a, b, 1.5)).toThrow(`WarpMesh.interpolate: 't' must be in [0, 1], got 1.5`);
  });
});

describe('installHeadlessWebGpu', () => {
  it('is idempotent and reports the adapter', async () => {
    const info = await installHeadlessWebGpu({ backend: 'opengles' });
    expect(info).toEqual(hud.gpu);
    expect(info.adapterDescription).not.toBe('');
  });

  it('refuses an unknown backend naming the field', async () => {
    await expect(installHeadlessWebGpu({ backend: 'metal' as 'vulkan' })).rejects.toThrow(
      `installHeadlessWebGpu: 'backend' must be one of opengles, vulkan, auto, got 'metal'`,
    );
  });

  it('names the backend tried and the environment it needs when no adapter exists', () => {
    const msg = noAdapterMessage('opengles', ['opengles'], ['opengles: requestAdapter returned null']);
    expect(msg).toContain(`no WebGPU adapter for backend 'opengles'`);
    expect(msg).toContain('libegl-mesa0 libgles2 libgl1-mesa-dri');
    expect(msg).toContain('EGL_PLATFORM=surfaceless');
    expect(noAdapterMessage('auto', ['vulkan', 'opengles'])).toMatch(/tried vulkan, opengles.*Vulkan driver.*libegl-mesa0/);
  });
});

describe('HudRenderer (one warp per plane region)', () => {
  const far = { xPx: 0, yPx: 0, widthPx: W, heightPx: 360 };
  const near = { xPx: 440, yPx: 360, widthPx: 400, heightPx: 120 };

  it('warps each region with its own mesh and never carries content across regions', async () => {
    expect(H).toBe(480);
    const scene = new THREE.Scene();
    // Content everywhere (a full-panel white quad) plus a red marker inside the near region.
    scene.add(quad(0, 0, W, H, 0xffffff));
    const marker = quad(600, 400, 40, 20, 0xff0000);
    marker.position.z = 1;
    scene.add(marker);
    const out = await hud.render(scene, pixelCamera(), [
      { region: far, mesh: WarpMesh.radial(32, 16, -0.1, far.widthPx / far.heightPx) },
      { region: near, mesh: WarpMesh.identity(32, 16) },
    ], frame);
    // Outside both regions nothing is drawn: black, no light.
    expect(px(out, 100, 420)).toEqual([0, 0, 0, 0]);
    expect(px(out, 1200, 470)).toEqual([0, 0, 0, 0]);
    // The near region is unwarped: its red (not white) marker is exactly where it was drawn.
    let n = 0, sx = 0, sy = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const [r, g] = px(out, x, y);
        if (r > 127 && g < 128) { n++; sx += x + 0.5; sy += y + 0.5; }
      }
    }
    expect(n).toBe(40 * 20);
    expect(sx / n).toBeCloseTo(620, 6);
    expect(sy / n).toBeCloseTo(410, 6);
    // The far region keeps its content (white at its centre) under its own barrel warp.
    expect(px(out, 640, 180)).toEqual([255, 255, 255, 255]);
  });

  it('shows black where a mesh samples outside its own region (no smeared edges, no other plane)', async () => {
    const scene = new THREE.Scene();
    scene.add(quad(0, 0, W, H, 0xffffff)); // content everywhere, also in the near region below the far one
    // A mesh that zooms out by 25% around the region's centre: its outer ring samples outside [0, 1].
    const zoomOut = WarpMesh.fromFunction(32, 16, (x, y) => [0.5 + (x - 0.5) * 1.25, 0.5 + (y - 0.5) * 1.25]);
    const out = await hud.render(scene, pixelCamera(), [{ region: far, mesh: zoomOut }], frame);
    expect(px(out, 640, 180)).toEqual([255, 255, 255, 255]); // inside: the content
    expect(px(out, 640, 355)).toEqual([0, 0, 0, 0]); // bottom edge samples v > 1 (the near plane's pixels): black
    expect(px(out, 3, 180)).toEqual([0, 0, 0, 0]); // left edge samples u < 0: black, not the edge pixel smeared
  });

  it('refuses a region outside the panel, naming it', async () => {
    await expect(hud.render(new THREE.Scene(), pixelCamera(), [{ region: { xPx: 0, yPx: 400, widthPx: W, heightPx: 100 }, mesh: WarpMesh.identity() }], frame)).rejects.toThrow(
      `HudRenderer.render: 'warp[0].region' must lie inside the ${W}x${H} panel`,
    );
  });
});
