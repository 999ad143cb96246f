/**
 * The viewer page in headless Debian Chromium (never a downloaded browser), driven by playwright-core:
 * a replay of a small recording (camera calibration, flat blue-grey camera JPEGs, HUD panels with a
 * bright green rectangle in the middle of the far plane), and the same images live from a HudLink
 * through the display controller, must show the rectangle added onto the camera image where the
 * optics put the far plane in the camera.
 * System suite: needs Debian's chromium (`.ci/run` installs it); without it these tests fail.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBroker } from '../../hud/broker.js';
import { DisplayController } from '../../hud/display-controller.js';
import { HudLink, epochNowNs } from '../../hud/link.js';
import { computeViewerLayout, type ViewerLayout } from '../../hud/viewer/layout.js';
import { LiveViewerSource, ViewerServer, runViewer } from '../../hud/viewer/server.js';
import type { CameraIntrinsics } from '../../pipeline/frame.js';
import { RecordingWriter } from '../../pipeline/recording/writer.js';
import { TOPIC_CAMERA, TOPIC_CAMERA_CALIBRATION, TOPIC_HUD_FRAME, cameraCalibrationCodec, compressedImageCodec } from '../../pipeline/recording/topics.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { HudOptics } from '../../render/optics.js';
import { tempDir } from '../support/data.js';
import { CHROMIUM, CHROMIUM_BINARY, requireBinaries } from './binaries.js';

requireBinaries(CHROMIUM_BINARY);

const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;
const PANEL = HUD_OPTICS_DEFAULTS.panel;
const CAMERA: CameraIntrinsics = { width: 640, height: 360, fx: 1200, fy: 1200, cx: 320, cy: 180, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] };
const CAMERA_RGB = { r: 40, g: 60, b: 90 };
/** The HUD rectangle, panel pixels: centred on the far plane (its region is 1280x360 at the top). */
const RECT = { x0: 540, x1: 740, y0: 130, y1: 230 };
const FRAMES_TO_SEE = 3;
/** Live camera previews (no intrinsics on the link): the viewer reads their size and assumes a pinhole. */
const LIVE_CAMERA = { widthPx: 960, heightPx: 540 };

/** The HUD panel with the rectangle, as RGBA; the camera preview JPEG. */
async function liveImages(): Promise<{ jpeg: Uint8Array; hudRgba: Uint8Array }> {
  const jpeg = await sharp({ create: { width: LIVE_CAMERA.widthPx, height: LIVE_CAMERA.heightPx, channels: 3, background: CAMERA_RGB } }).jpeg({ quality: 95 }).toBuffer();
  const hudRgba = new Uint8Array(PANEL.widthPx * PANEL.heightPx * 4);
  for (let i = 3; i < hudRgba.length; i += 4) hudRgba[i] = 255;
  for (let y = RECT.y0; y < RECT.y1; y++) for (let x = RECT.x0; x < RECT.x1; x++) hudRgba.set([0, 255, 0, 255], (y * PANEL.widthPx + x) * 4);
  return { jpeg, hudRgba };
}

async function writeRecording(file: string, frames: number): Promise<void> {
  const jpeg = await sharp({ create: { width: CAMERA.width, height: CAMERA.height, channels: 3, background: CAMERA_RGB } }).jpeg({ quality: 95 }).toBuffer();
  const hud = new Uint8Array(PANEL.widthPx * PANEL.heightPx * 3);
  for (let y = RECT.y0; y < RECT.y1; y++) for (let x = RECT.x0; x < RECT.x1; x++) hud.set([0, 255, 0], (y * PANEL.widthPx + x) * 3);
  const png = await sharp(hud, { raw: { width: PANEL.widthPx, height: PANEL.heightPx, channels: 3 } }).png().toBuffer();
  const writer = await RecordingWriter.create(file);
  await writer.write(TOPIC_CAMERA_CALIBRATION, cameraCalibrationCodec, T0, { tNs: T0, frameId: 'camera_front', intrinsics: CAMERA });
  for (let i = 0; i < frames; i++) {
    const tNs = T0 + BigInt(i) * 100n * MS;
    await writer.write(TOPIC_CAMERA, compressedImageCodec, tNs, { tNs, frameId: 'camera_front', format: 'jpeg', data: jpeg });
    await writer.write(TOPIC_HUD_FRAME, compressedImageCodec, tNs, { tNs, frameId: 'hud_panel', format: 'png', data: png });
  }
  await writer.close();
}

interface PageStats {
  connected: boolean;
  blank: boolean;
  /** The view was redrawn since the blank, without HUD. */
  blankDrawn: boolean;
  /** Layouts received, and the layout the HUD was last drawn with: equal once the view is drawn with the latest. */
  layoutVersion: number;
  hudDrawnLayoutVersion: number;
  hudFramesReceived: number;
  hudFramesDrawn: number;
  cameraFramesDrawn: number;
  layout: { intrinsicsKnown: boolean } | null;
  server: { hudFps: number } | null;
  errors: number;
}

/** Polls the page's counters until `done` holds (generous: a slow 2-core machine, software rendering). */
async function waitForStats(page: Page, what: string, done: (s: PageStats) => boolean, timeoutMs = 30_000): Promise<PageStats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await page.evaluate<PageStats | null>('window.__arhudStats ?? null');
    if (stats && done(stats)) return stats;
    if (Date.now() > deadline) throw new Error(`viewer page: timed out waiting for ${what}; stats ${JSON.stringify(stats)}`);
    await page.waitForTimeout(100);
  }
}

/**
 * Screenshots the view canvas (drawn at the camera resolution; its CSS size may differ) and checks
 * the HUD rectangle is added onto the camera image where `layout` puts the far plane's centre.
 */
async function expectHudOverCamera(page: Page, cameraWidthPx: number, cameraHeightPx: number, layout: ViewerLayout, screenshotPath: string): Promise<void> {
  const shot = await page.locator('#view').screenshot();
  await writeFile(screenshotPath, shot);
  const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const scale = info.width / cameraWidthPx;
  expect(info.width / info.height).toBeCloseTo(cameraWidthPx / cameraHeightPx, 1);
  const rgbAtCamera = (x: number, y: number): [number, number, number] => {
    const o = (Math.round(y * scale) * info.width + Math.round(x * scale)) * 3;
    return [data[o]!, data[o + 1]!, data[o + 2]!];
  };
  const far = layout.planes[0]!;
  const centre = far.cols / 2 + (far.rows / 2) * (far.cols + 1);
  const [cx, cy] = [far.vertices[centre * 4 + 2]!, far.vertices[centre * 4 + 3]!];
  expect(cy).toBeGreaterThan(cameraHeightPx / 2); // below the horizon: the HUD looks down 2.5 deg
  // Half the rectangle's size in camera pixels, from the footprint's scale (far plane: 1280 x 360 panel px).
  const pxPerPanelPx = (far.vertices[(centre + 1) * 4 + 2]! - far.vertices[centre * 4 + 2]!) / (far.region.widthPx / far.cols);
  const halfW = ((RECT.x1 - RECT.x0) / 2) * pxPerPanelPx;
  const halfH = ((RECT.y1 - RECT.y0) / 2) * pxPerPanelPx * (HUD_OPTICS_DEFAULTS.far.fovVerticalDeg / far.region.heightPx) / (HUD_OPTICS_DEFAULTS.far.fovHorizontalDeg / far.region.widthPx);
  expect(halfW).toBeGreaterThan(8); // big enough to probe inside and outside its edges
  expect(halfH).toBeGreaterThan(6);
  const [r, g, b] = rgbAtCamera(cx, cy);
  // Added light: camera green + HUD green saturates; red and blue stay the camera's.
  expect(g).toBeGreaterThan(230);
  expect(Math.abs(r - CAMERA_RGB.r)).toBeLessThan(20);
  expect(Math.abs(b - CAMERA_RGB.b)).toBeLessThan(20);
  // HUD black adds nothing: the camera shows unchanged around it.
  for (const [x, y] of [
    [cx, cy - 3 * halfH],
    [cx - 3 * halfW, cy],
    [cx + 3 * halfW, cy],
    [20, 20],
  ] as const) {
    const [rr, gg, bb] = rgbAtCamera(x, y);
    expect(Math.abs(rr - CAMERA_RGB.r) + Math.abs(gg - CAMERA_RGB.g) + Math.abs(bb - CAMERA_RGB.b), `(${x}, ${y})`).toBeLessThan(30);
  }
  // The rectangle's edges: green a little inside, camera a little outside.
  expect(rgbAtCamera(cx - 0.7 * halfW, cy)[1]).toBeGreaterThan(230);
  expect(rgbAtCamera(cx + 0.7 * halfW, cy)[1]).toBeGreaterThan(230);
  expect(rgbAtCamera(cx, cy - 0.6 * halfH)[1]).toBeGreaterThan(230);
  expect(rgbAtCamera(cx - 1.4 * halfW, cy)[1]).toBeLessThan(100);
  expect(rgbAtCamera(cx + 1.4 * halfW, cy)[1]).toBeLessThan(100);
  expect(rgbAtCamera(cx, cy - 1.5 * halfH)[1]).toBeLessThan(100);
}

/** Fails on errors the page logged. */
function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

describe('viewer page in headless Chromium', () => {
  let dir: string;
  let server: ViewerServer;
  let browser: Browser;

  beforeAll(async () => {
    dir = await tempDir('arhud-viewer-chromium-');
    const file = path.join(dir, 'hud.mcap');
    await writeRecording(file, 5);
    server = await runViewer({ port: 0, replay: { file, loop: true }, log: () => undefined });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('receives replayed frames and shows the HUD over the camera image where the far plane appears', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    const consoleErrors = collectPageErrors(page);
    await page.goto(server.url);
    const stats = await waitForStats(page, `${FRAMES_TO_SEE} HUD frames drawn with the recording's intrinsics and stats`, (s) =>
      s.connected && s.hudFramesDrawn >= FRAMES_TO_SEE && s.cameraFramesDrawn >= 1 && s.layout?.intrinsicsKnown === true && s.hudDrawnLayoutVersion === s.layoutVersion && s.server !== null,
    );
    expect(stats.errors).toBe(0);
    expect(consoleErrors).toEqual([]);
    // Charts exist and have been drawn on.
    for (const id of ['fpsChart', 'latencyChart']) {
      // A string: the test is compiled without DOM types; this runs in the page.
      const painted = await page.evaluate<number>(`(() => {
        const chart = document.getElementById('${id}');
        if (!chart) return -1;
        const data = chart.getContext('2d').getImageData(0, 0, chart.width, chart.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
        return n;
      })()`);
      expect(painted, id).toBeGreaterThan(0);
    }

    await expectHudOverCamera(page, CAMERA.width, CAMERA.height, computeViewerLayout({ optics: new HudOptics(HUD_OPTICS_DEFAULTS), intrinsics: CAMERA }), path.join(dir, 'viewer-replay.png'));
    await page.close();
  });

  it('shows live frames from a HudLink through the display controller the same way', async () => {
    const broker = await EmbeddedBroker.start({ port: 0 });
    // Shared process clock (epochNowNs); a generous frame age so a loaded machine drops nothing.
    const LIVE_MAX_FRAME_AGE_MS = 1500;
    const controller = await DisplayController.create({ url: broker.url, vehicleId: 'chromium', maxFrameAgeMs: LIVE_MAX_FRAME_AGE_MS, acknowledge: false, log: () => undefined });
    const live = await ViewerServer.start({ port: 0, source: new LiveViewerSource(controller, { owned: true }), log: () => undefined });
    const link = await HudLink.create({ url: broker.url, vehicleId: 'chromium', log: () => undefined });
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    const consoleErrors = collectPageErrors(page);
    const { jpeg, hudRgba } = await liveImages();
    // A 10 Hz "pipeline" until the page has drawn enough frames.
    const timer = setInterval(() => {
      const tCaptureNs = epochNowNs();
      link.publishCameraPreview(jpeg, tCaptureNs);
      link.publishFrame(hudRgba, { tCaptureNs, tRenderNs: tCaptureNs, widthPx: PANEL.widthPx, heightPx: PANEL.heightPx, degraded: false });
    }, 100);
    try {
      await page.goto(live.url);
      await waitForStats(page, `${FRAMES_TO_SEE} live HUD frames drawn over a camera preview`, (st) =>
        st.connected &&
        st.hudFramesDrawn >= FRAMES_TO_SEE &&
        st.cameraFramesDrawn >= 1 &&
        st.layout !== null &&
        (st.layout as unknown as ViewerLayout).camera.widthPx === LIVE_CAMERA.widthPx &&
        st.hudDrawnLayoutVersion === st.layoutVersion,
      );
      expect(consoleErrors).toEqual([]);
      // No intrinsics on the live link: a pinhole of the assumed FOV over the preview, as the page says.
      const layout = computeViewerLayout({ optics: new HudOptics(HUD_OPTICS_DEFAULTS), cameraSizePx: LIVE_CAMERA });
      expect(await page.locator('#notes').textContent()).toContain('Camera intrinsics unknown');
      await expectHudOverCamera(page, LIVE_CAMERA.widthPx, LIVE_CAMERA.heightPx, layout, path.join(dir, 'viewer-live.png'));
      // The pipeline stops: the controller blanks the HUD after the frame age, and the page drops the overlay.
      clearInterval(timer);
      await waitForStats(page, 'the blank, drawn', (st) => st.blank && st.blankDrawn, LIVE_MAX_FRAME_AGE_MS + 30_000);
      const shot = await page.locator('#view').screenshot();
      const { data, info } = await sharp(shot).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const far = layout.planes[0]!;
      const centre = far.cols / 2 + (far.rows / 2) * (far.cols + 1);
      const scale = info.width / LIVE_CAMERA.widthPx;
      const o = (Math.round(far.vertices[centre * 4 + 3]! * scale) * info.width + Math.round(far.vertices[centre * 4 + 2]! * scale)) * 3;
      expect(Math.abs(data[o + 1]! - CAMERA_RGB.g)).toBeLessThan(20); // no HUD green any more
    } finally {
      clearInterval(timer);
      await page.close();
      await link.dispose();
      await live.stop();
      await broker.stop();
    }
  });
});
