import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { EmbeddedBroker } from '../../hud/broker.js';
import { DisplayController } from '../../hud/display-controller.js';
import { HudFrameEncoder, encodeCameraPreview } from '../../hud/frame-codec.js';
import { hudTopics } from '../../hud/topics.js';
import {
  ASSUMED_CAMERA_HFOV_DEG,
  ASSUMED_CAMERA_SIZE_PX,
  FOOTPRINT_COLS,
  FOOTPRINT_ROWS,
  PanelUnwarper,
  computeViewerLayout,
  type PlaneFootprint,
} from '../../hud/viewer/layout.js';
import { VIEWER_PAGE_HTML, WS_KIND_CAMERA_JPEG, WS_KIND_HUD_PNG } from '../../hud/viewer/page.js';
import { LiveViewerSource, ReplayViewerSource, ViewerServer, runViewer, type ViewerHudFrame, type ViewerSink } from '../../hud/viewer/server.js';
import { SimulatedClock } from '../../pipeline/clock.js';
import type { CameraIntrinsics } from '../../pipeline/frame.js';
import { RecordingWriter } from '../../pipeline/recording/writer.js';
import { TOPIC_CAMERA, TOPIC_CAMERA_CALIBRATION, TOPIC_HUD_FRAME, cameraCalibrationCodec, compressedImageCodec } from '../../pipeline/recording/topics.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { HudOptics } from '../../render/optics.js';
import { parametricWarpMap, warpMapToJson } from '../../render/warp-map.js';
import { WarpMesh, radialK1 } from '../../render/warp-mesh.js';
import { tempDir } from '../support/data.js';
import { testClient, waitFor } from './support.js';

const DEG = Math.PI / 180;
const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;
const optics = new HudOptics(HUD_OPTICS_DEFAULTS);
const PANEL = HUD_OPTICS_DEFAULTS.panel;
const CAMERA: CameraIntrinsics = { width: 640, height: 360, fx: 1200, fy: 1200, cx: 320, cy: 180, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] };

/** Camera pixel of grid vertex (i, j) of a footprint. */
function vertex(plane: PlaneFootprint, i: number, j: number): [number, number] {
  const n = (j * (plane.cols + 1) + i) * 4;
  return [plane.vertices[n + 2]!, plane.vertices[n + 3]!];
}

describe('computeViewerLayout', () => {
  it('puts the far plane centre on the camera axis, looked down by the look-down angle (camera at the eye)', () => {
    const layout = computeViewerLayout({ optics, intrinsics: CAMERA });
    const far = layout.planes.find((p) => p.name === 'far')!;
    expect(far.cols).toBe(FOOTPRINT_COLS);
    const [x, y] = vertex(far, FOOTPRINT_COLS / 2, FOOTPRINT_ROWS / 2);
    expect(x).toBeCloseTo(CAMERA.cx, 6);
    expect(y).toBeCloseTo(CAMERA.cy + CAMERA.fy * Math.tan(HUD_OPTICS_DEFAULTS.far.lookDownDeg * DEG), 6);
    // Left and right edges at +-5 deg (the centre row crosses the plane through its centre).
    const [left] = vertex(far, 0, FOOTPRINT_ROWS / 2);
    const [right] = vertex(far, FOOTPRINT_COLS, FOOTPRINT_ROWS / 2);
    const halfWidthPx = CAMERA.fx * Math.tan((HUD_OPTICS_DEFAULTS.far.fovHorizontalDeg / 2) * DEG) / Math.cos(HUD_OPTICS_DEFAULTS.far.lookDownDeg * DEG);
    expect(CAMERA.cx - left).toBeCloseTo(halfWidthPx, 3);
    expect(right - CAMERA.cx).toBeCloseTo(halfWidthPx, 3);
    // The near plane sits below the far one.
    const near = layout.planes.find((p) => p.name === 'near')!;
    expect(vertex(near, 0, 0)[1]).toBeGreaterThan(vertex(far, 0, FOOTPRINT_ROWS)[1]);
    expect(layout).toMatchObject({ camera: { widthPx: 640, heightPx: 360 }, panel: PANEL, intrinsicsKnown: true, unwarped: [] });
    expect(layout.notes[0]).toMatch(/Eye approximated at the camera/);
  });

  it('follows barrel/pincushion distortion of the camera', () => {
    const plain = computeViewerLayout({ optics, intrinsics: CAMERA }).planes[0]!;
    const distorted = computeViewerLayout({ optics, intrinsics: { ...CAMERA, distortion: [0.5, 0, 0, 0, 0] } }).planes[0]!;
    const [x0] = vertex(plain, 0, FOOTPRINT_ROWS / 2);
    const [x1] = vertex(distorted, 0, FOOTPRINT_ROWS / 2);
    expect(x1).toBeLessThan(x0); // k1 > 0 pushes points away from the centre
  });

  it('assumes a pinhole over the camera image when the intrinsics are unknown, and says so', () => {
    const layout = computeViewerLayout({ optics });
    expect(layout.camera).toEqual(ASSUMED_CAMERA_SIZE_PX);
    expect(layout.intrinsicsKnown).toBe(false);
    expect(layout.notes.join(' ')).toContain(`assumed a ${ASSUMED_CAMERA_HFOV_DEG} deg horizontal FOV`);
  });
});

describe('PanelUnwarper', () => {
  const far = optics.far.region;
  const near = optics.near.region;

  /** A panel-sized RGBA image, black, with a bright square in the far region at (cx, cy) +- half. */
  function overlayWithSquare(cx: number, cy: number, half: number): Uint8Array {
    const rgba = new Uint8Array(PANEL.widthPx * PANEL.heightPx * 4);
    for (let y = 0; y < PANEL.heightPx; y++) {
      for (let x = 0; x < PANEL.widthPx; x++) {
        const o = (y * PANEL.widthPx + x) * 4;
        const inside = Math.abs(x + 0.5 - cx) < half && Math.abs(y + 0.5 - cy) < half;
        rgba.set(inside ? [250, 240, 0, 255] : [0, 0, 0, 255], o);
      }
    }
    return rgba;
  }

  it('is the identity through an identity mesh, and blacks out what lies in no region', () => {
    const unwarper = new PanelUnwarper(PANEL, [{ region: far, mesh: WarpMesh.identity() }], [near]);
    expect(unwarper.coverage[0]).toBe(1);
    const input = new Uint8Array(PANEL.widthPx * PANEL.heightPx * 4);
    for (let i = 0; i < input.length; i++) input[i] = (i * 7) % 251;
    const out = unwarper.unwarp(input, new Uint8Array(input.length));
    const at = (img: Uint8Array, x: number, y: number) => [...img.subarray((y * PANEL.widthPx + x) * 4, (y * PANEL.widthPx + x) * 4 + 3)];
    for (const [x, y] of [[0, 0], [1279, 359], [640, 200], [500, 400]] as const) expect(at(out, x, y)).toEqual(at(input, x, y));
    expect(at(out, 10, 400)).toEqual([0, 0, 0]); // left of the near region: no plane there
  });

  it('undoes a radial pre-warp: the driver sees the overlay content where it was drawn', () => {
    const k1 = -0.05;
    const aspect = far.widthPx / far.heightPx;
    const mesh = WarpMesh.radial(64, 32, k1, aspect);
    // The panel as the renderer pre-warps it: panel position p shows the overlay at uv(p) (nearest sample).
    const overlay = overlayWithSquare(far.xPx + 1000, far.yPx + 100, 20);
    const panel = new Uint8Array(overlay.length);
    for (let y = 0; y < far.heightPx; y++) {
      for (let x = 0; x < far.widthPx; x++) {
        const [u, v] = radialK1((x + 0.5) / far.widthPx, (y + 0.5) / far.heightPx, k1, aspect);
        const sx = Math.min(far.widthPx - 1, Math.max(0, Math.floor(u * far.widthPx)));
        const sy = Math.min(far.heightPx - 1, Math.max(0, Math.floor(v * far.heightPx)));
        panel.set(overlay.subarray((sy * PANEL.widthPx + sx) * 4, (sy * PANEL.widthPx + sx) * 4 + 4), (y * PANEL.widthPx + x) * 4);
      }
    }
    const unwarper = new PanelUnwarper(PANEL, [{ region: far, mesh }]);
    expect(unwarper.coverage[0]).toBeLessThan(1); // k1 < 0: the panel corners show content from nearer the centre
    const out = unwarper.unwarp(panel, new Uint8Array(panel.length));
    const yellow = (img: Uint8Array, x: number, y: number) => img[(y * PANEL.widthPx + x) * 4]! > 200;
    // The square is back at its overlay position (inside, edges 3 px in; outside, 3 px out).
    expect(yellow(out, far.xPx + 1000, far.yPx + 100)).toBe(true);
    expect(yellow(out, far.xPx + 1000 - 17, far.yPx + 100 - 17)).toBe(true);
    expect(yellow(out, far.xPx + 1000 + 17, far.yPx + 100 + 17)).toBe(true);
    expect(yellow(out, far.xPx + 1000 - 23, far.yPx + 100)).toBe(false);
    expect(yellow(out, far.xPx + 1000 + 23, far.yPx + 100)).toBe(false);
    // In the pre-warped panel it was elsewhere (the warp moved it by several pixels).
    expect(yellow(panel, far.xPx + 1000 - 17, far.yPx + 100 - 17) && yellow(panel, far.xPx + 1000 + 17, far.yPx + 100 + 17)).toBe(false);
  });

  it('refuses images of the wrong size naming both', () => {
    const unwarper = new PanelUnwarper({ widthPx: 4, heightPx: 2 }, []);
    expect(() => unwarper.unwarp(new Uint8Array(31), new Uint8Array(32))).toThrow(new RangeError('PanelUnwarper.unwarp: images must hold 4x2x4 = 32 bytes, got 31 in and 32 out'));
  });
});

/** A small recording: camera calibration + `frames` camera JPEGs and HUD PNGs, 100 ms apart. */
async function writeRecording(file: string, frames: number): Promise<void> {
  const jpeg = await sharp({ create: { width: CAMERA.width, height: CAMERA.height, channels: 3, background: { r: 40, g: 60, b: 90 } } }).jpeg().toBuffer();
  const hud = new Uint8Array(PANEL.widthPx * PANEL.heightPx * 3);
  for (let y = 130; y < 230; y++) for (let x = 540; x < 740; x++) hud.set([0, 255, 0], (y * PANEL.widthPx + x) * 3);
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

/** A sink that records what it is given. */
function recordingSink() {
  const seen = { hud: [] as ViewerHudFrame[], camera: [] as bigint[], intrinsics: [] as CameraIntrinsics[], blanks: [] as string[] };
  const sink: ViewerSink = {
    hudFrame: (f) => seen.hud.push({ ...f }),
    cameraImage: (c) => seen.camera.push(c.tCaptureNs),
    cameraIntrinsics: (k) => seen.intrinsics.push(k),
    blank: (r) => seen.blanks.push(r),
  };
  return { seen, sink };
}

/** A WebSocket client of the viewer collecting what it is sent. */
async function viewerClient(url: string) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}ws`);
  const json: { type: string; [key: string]: unknown }[] = [];
  const images: { kind: number; header: Record<string, unknown>; bytes: Buffer }[] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      json.push(JSON.parse(data.toString('utf8')) as { type: string });
      return;
    }
    const headerLength = data.readUInt32LE(1);
    images.push({ kind: data[0]!, header: JSON.parse(data.subarray(5, 5 + headerLength).toString('utf8')) as Record<string, unknown>, bytes: data.subarray(5 + headerLength) });
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, json, images };
}

describe('ReplayViewerSource', () => {
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = await tempDir('arhud-viewer-');
    file = path.join(dir, 'small.mcap');
    await writeRecording(file, 3);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('paces by log time on the given clock and loops', async () => {
    const clock = new SimulatedClock(5n);
    const source = await ReplayViewerSource.open({ file, clock, log: () => undefined });
    const { seen, sink } = recordingSink();
    source.start(sink);
    try {
      await waitFor('the first frame', () => seen.hud.length === 1);
      await waitFor('the player to wait for the next frame', () => clock.pendingSleepers === 1);
      expect(seen.camera).toEqual([T0]);
      expect(seen.intrinsics[0]).toEqual(CAMERA);
      expect(clock.nextDeadlineNs).toBe(5n + 100n * MS); // the next message is due 100 ms of log time later
      clock.advanceBy(100n * MS);
      await waitFor('the second frame', () => seen.hud.length === 2);
      clock.advanceBy(100n * MS);
      await waitFor('the third frame and the start of the next loop', () => seen.hud.length === 4);
      expect(source.loopsCompleted).toBe(1);
      expect(seen.hud.map((f) => [f.sequence, f.tCaptureNs, f.latencyMs])).toEqual([
        [0, T0, 0],
        [1, T0 + 100n * MS, 0],
        [2, T0 + 200n * MS, 0],
        [3, T0, 0],
      ]);
    } finally {
      await source.stop();
    }
  });

  it('refuses a recording with neither HUD frames nor camera images', async () => {
    const empty = path.join(dir, 'empty.mcap');
    const writer = await RecordingWriter.create(empty);
    await writer.write(TOPIC_CAMERA_CALIBRATION, cameraCalibrationCodec, T0, { tNs: T0, frameId: 'camera_front', intrinsics: CAMERA });
    await writer.close();
    await expect(ReplayViewerSource.open({ file: empty })).rejects.toThrow(`ReplayViewerSource.open: ${empty} has neither '/hud/frame' nor '/camera/front'`);
  });
});

describe('ViewerServer', () => {
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = await tempDir('arhud-viewer-');
    file = path.join(dir, 'small.mcap');
    await writeRecording(file, 3);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the page, and over the WebSocket the layout, HUD PNGs, camera JPEGs and stats of a replay', async () => {
    const server = await runViewer({ port: 0, replay: { file }, log: () => undefined });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(server.url);
      expect(page.headers.get('content-type')).toContain('text/html');
      expect(await page.text()).toBe(VIEWER_PAGE_HTML);
      expect((await fetch(`${server.url}nothing`)).status).toBe(404);
      const client = await viewerClient(server.url);
      await waitFor('images and stats', () => client.images.some((i) => i.kind === WS_KIND_HUD_PNG) && client.images.some((i) => i.kind === WS_KIND_CAMERA_JPEG) && client.json.some((m) => m.type === 'stats'));
      expect(client.json[0]).toMatchObject({ type: 'hello', source: { kind: 'replay' } });
      await waitFor('the layout from the calibration topic', () => client.json.some((m) => m.type === 'layout' && (m.layout as { intrinsicsKnown: boolean }).intrinsicsKnown));
      const hud = client.images.find((i) => i.kind === WS_KIND_HUD_PNG)!;
      const { data, info } = await sharp(hud.bytes).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([PANEL.widthPx, PANEL.heightPx]);
      expect([...data.subarray((180 * PANEL.widthPx + 640) * info.channels, (180 * PANEL.widthPx + 640) * info.channels + 3)]).toEqual([0, 255, 0]);
      client.ws.close();
    } finally {
      await server.stop();
    }
  });

  it('shows live frames the controller shows, as PNG, and passes its blanks on', async () => {
    const broker = await EmbeddedBroker.start({ port: 0 });
    const publisher = await testClient(broker.url, { protocolVersion: 4 });
    let nowNs = T0;
    const controller = await DisplayController.create({ url: broker.url, vehicleId: 'viewer-test', maxFrameAgeMs: 50, now: () => nowNs, log: () => undefined });
    const server = await ViewerServer.start({ port: 0, source: new LiveViewerSource(controller, { owned: true }), log: () => undefined });
    try {
      const client = await viewerClient(server.url);
      const rgba = new Uint8Array(16 * 8 * 4);
      for (let i = 0; i < rgba.length; i += 4) rgba.set([10, 200, 30, 255], i);
      const frame = new HudFrameEncoder().encode(rgba, { sequence: 7, tCaptureNs: T0, tRenderNs: T0, widthPx: 16, heightPx: 8, degraded: false });
      nowNs = T0 + 3n * MS;
      await publisher.publishAsync(hudTopics('viewer-test').frame, Buffer.from(frame));
      await waitFor('the HUD image', () => client.images.some((i) => i.kind === WS_KIND_HUD_PNG));
      const hud = client.images.find((i) => i.kind === WS_KIND_HUD_PNG)!;
      expect(hud.header).toMatchObject({ sequence: 7, tCaptureNs: T0.toString(), latencyMs: 3 });
      const { data } = await sharp(hud.bytes).raw().toBuffer({ resolveWithObject: true });
      expect([...data.subarray(0, 3)]).toEqual([10, 200, 30]);
      // A camera preview: passed on as JPEG; without intrinsics the layout assumes a pinhole over its size.
      const jpeg = await sharp({ create: { width: 320, height: 180, channels: 3, background: { r: 1, g: 2, b: 3 } } }).jpeg().toBuffer();
      await publisher.publishAsync(hudTopics('viewer-test').cameraPreview, Buffer.from(encodeCameraPreview({ sequence: 1, tCaptureNs: T0, jpeg })));
      await waitFor('the camera image and its layout', () =>
        client.images.some((i) => i.kind === WS_KIND_CAMERA_JPEG) && client.json.some((m) => m.type === 'layout' && (m.layout as { camera: { widthPx: number } }).camera.widthPx === 320),
      );
      expect(client.images.find((i) => i.kind === WS_KIND_CAMERA_JPEG)!.bytes.equals(jpeg)).toBe(true);
      expect(server.layout).toMatchObject({ camera: { widthPx: 320, heightPx: 180 }, intrinsicsKnown: false });
      nowNs = T0 + 60n * MS; // frames stopped: the controller blanks, the page is told
      await waitFor('the blank', () => client.json.some((m) => m.type === 'blank' && m.reason === 'stale'));
      client.ws.close();
    } finally {
      await server.stop(); // stops the owned controller too
      await publisher.endAsync();
      await broker.stop();
    }
  });

  it('un-warps the far plane through a warp-map file (--warp) and says so in the layout', async () => {
    const warpFile = path.join(dir, 'warp.json');
    const { widthPx, heightPx } = optics.far.region;
    await writeFile(warpFile, warpMapToJson(parametricWarpMap({ panel: { widthPx, heightPx }, eyePositionsM: [optics.eyeboxCentreM], k1Of: () => 0 })));
    const server = await runViewer({ port: 0, replay: { file }, warp: warpFile, log: () => undefined });
    try {
      expect(server.layout.unwarped).toEqual(['far']);
      expect(server.layout.notes.join(' ')).toContain('Seen through the simulated windshield: far plane un-warped');
      const client = await viewerClient(server.url);
      await waitFor('a HUD image', () => client.images.some((i) => i.kind === WS_KIND_HUD_PNG));
      const hud = client.images.find((i) => i.kind === WS_KIND_HUD_PNG)!;
      const { data, info } = await sharp(hud.bytes).raw().toBuffer({ resolveWithObject: true });
      // k1 = 0: the un-warp is the identity, the rectangle stays where it was drawn.
      const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
      expect(at(640, 180)).toEqual([0, 255, 0]);
      expect(at(540, 130)).toEqual([0, 255, 0]);
      expect(at(538, 128)).toEqual([0, 0, 0]);
      client.ws.close();
    } finally {
      await server.stop();
    }
  });

  it('runViewer wants exactly one source', async () => {
    await expect(runViewer({ port: 0, log: () => undefined })).rejects.toThrow(new TypeError(`runViewer: exactly one of 'live' and 'replay' must be given, got neither`));
  });
});
