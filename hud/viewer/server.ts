/**
 * The web viewer (`arhud view`, and `arhud display` without a framebuffer): a node:http server on
 * localhost serving one static page (page.ts) and a WebSocket that pushes HUD frames as PNG (encoded
 * here, so the browser needs no codec), camera JPEGs, the layout (where the HUD appears in the camera
 * image, layout.ts) and stats (fps, latency) every half second.
 *
 * HUD frames are processed one at a time (optional windshield un-warp, PNG encode); a frame arriving
 * while one is in work replaces any frame waiting (latest wins: the viewer is a monitor, it shows the
 * newest state, not every frame). A client whose socket is backed up skips images until it drains.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { WebSocketServer, WebSocket } from 'ws';
import { RealClock, type Clock } from '../../pipeline/clock.js';
import type { CameraIntrinsics } from '../../pipeline/frame.js';
import { loadHudOpticsConfig, HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { HudOptics } from '../../render/optics.js';
import { EyeboxWarp, loadWarpMap } from '../../render/warp-map.js';
import { DisplayController, type DisplayTlsOptions } from '../display-controller.js';
import { computeViewerLayout, PanelUnwarper, type RegionUnwarp, type ViewerLayout } from './layout.js';
import { VIEWER_PAGE_HTML, VIEWER_WS_PATH, WS_KIND_CAMERA_JPEG, WS_KIND_HUD_PNG } from './page.js';
import { LiveViewerSource, ReplayViewerSource, type ViewerHudFrame, type ViewerSink, type ViewerSource } from './sources.js';

export { LiveViewerSource, ReplayViewerSource, type ViewerSource, type ViewerSink, type ViewerHudFrame } from './sources.js';

/** Default viewer port of `arhud view`. */
export const DEFAULT_VIEWER_PORT = 8080;
/** How often stats go to the page, ms. */
export const STATS_INTERVAL_MS = 500;
/** A client with more than this much unsent data skips images until it drains, bytes. */
export const CLIENT_BACKLOG_LIMIT_BYTES = 8 * 1024 * 1024;
/** zlib level of the HUD PNGs: mostly black panels compress well even at 1, and 1 is fast. */
const PNG_COMPRESSION_LEVEL = 1;

/** Options of `ViewerServer.start`; defaults in `DEFAULTS`. */
export interface ViewerServerOptions {
  /** TCP port; 0 = any free port. Default DEFAULT_VIEWER_PORT. */
  port?: number;
  /** Interface to listen on; default '127.0.0.1' (the viewer is local, it has no authentication). */
  host?: string;
  source: ViewerSource;
  /** HUD optics (where the planes are); default the HUD_OPTICS_DEFAULTS optics. */
  optics?: HudOptics;
  /** Windshield warps of plane regions (region-local meshes): those regions are un-warped before display. */
  warp?: readonly (RegionUnwarp & { name: 'far' | 'near' })[];
  /** Clock for fps; default a RealClock. */
  clock?: Clock;
  log?: (line: string) => void;
}

/** Counters of the viewer server (a snapshot). */
export interface ViewerServerStats {
  hudFramesIn: number;
  hudFramesSent: number;
  /** HUD frames replaced by a newer one before being encoded. */
  hudFramesSuperseded: number;
  cameraImagesIn: number;
  clients: number;
}

const DEFAULTS = { port: DEFAULT_VIEWER_PORT, host: '127.0.0.1' };

interface PendingHud {
  frame: ViewerHudFrame;
  /** A copy of the frame's pixels or PNG (the source's buffer is only valid during the call). */
  bytes: Uint8Array;
}

/** Serves the viewer page and streams a source to it. Create with `start`, release with `stop`. */
export class ViewerServer {
  /** Page URL, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** The source shown. */
  readonly source: ViewerSource;

  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #optics: HudOptics;
  readonly #unwarper: PanelUnwarper | undefined;
  readonly #unwarped: ('far' | 'near')[];
  readonly #clock: Clock;
  readonly #log: (line: string) => void;
  readonly #statsTimer: ReturnType<typeof setInterval>;
  #layout: ViewerLayout;
  #layoutKey = '';
  #intrinsics: CameraIntrinsics | undefined;
  #cameraSizeProbe: Promise<void> | undefined;
  #latestCamera: Buffer | undefined;
  #latestHud: Buffer | undefined;
  #pending: PendingHud | undefined;
  #working = false;
  /** Bumped by blank(): frames in work from before a blank are not sent after it. */
  #generation = 0;
  #blank = false;
  #unwarpOut: Uint8Array | undefined;
  /** Two pixel buffers for live frames: one may be in work while the other takes the next frame. */
  #pixelBuffers: [Uint8Array, Uint8Array] = [new Uint8Array(0), new Uint8Array(0)];
  #inWork: Uint8Array | undefined;
  #mismatchLogged = false;
  #stopped = false;
  readonly #counts = { hudFramesIn: 0, hudFramesSent: 0, hudFramesSuperseded: 0, cameraImagesIn: 0 };
  readonly #window = { startNs: 0n, hud: 0, camera: 0, latencySumMs: 0, latencyCount: 0 };

  private constructor(http: Server, url: string, options: ViewerServerOptions) {
    this.#http = http;
    this.url = url;
    this.source = options.source;
    this.#optics = options.optics ?? new HudOptics(HUD_OPTICS_DEFAULTS);
    this.#clock = options.clock ?? new RealClock();
    this.#log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    const warp = options.warp ?? [];
    this.#unwarped = warp.map((w) => w.name);
    if (warp.length > 0) {
      const warpedNames = new Set(this.#unwarped);
      const others = [this.#optics.far, this.#optics.near].filter((p) => !warpedNames.has(p.name)).map((p) => p.region);
      this.#unwarper = new PanelUnwarper(this.#optics.panel, warp, others);
    }
    this.#layout = this.#computeLayout();
    this.#layoutKey = JSON.stringify(this.#layout);
    this.#window.startNs = this.#clock.nowNs();
    http.on('error', (error) => this.#log(`viewer: HTTP server error: ${error.message}`));
    this.#wss = new WebSocketServer({ server: http, path: VIEWER_WS_PATH });
    this.#wss.on('connection', (ws) => this.#onConnection(ws));
    this.#wss.on('error', (error) => this.#log(`viewer: WebSocket server error: ${error.message}`));
    this.#statsTimer = setInterval(() => this.#sendStats(), STATS_INTERVAL_MS);
    this.#statsTimer.unref();
  }

  /** Listens, then starts the source. Rejects when the port is taken. */
  static async start(options: ViewerServerOptions): Promise<ViewerServer> {
    if (!options?.source || typeof options.source.start !== 'function') throw new TypeError(`ViewerServer.start: 'source' must be a ViewerSource`);
    const port = options.port ?? DEFAULTS.port;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`ViewerServer.start: 'port' must be an integer in [0, 65535], got ${port}`);
    const host = options.host ?? DEFAULTS.host;
    const ready: { server?: ViewerServer } = {};
    const http = createServer((req, res) => {
      if (ready.server) ready.server.#onRequest(req, res);
      else res.writeHead(503).end();
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', (error) => reject(new Error(`ViewerServer.start: cannot listen on ${host}:${port} (${error.message})`, { cause: error })));
      http.listen(port, host, () => resolve());
    });
    const address = http.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    let server: ViewerServer;
    try {
      server = new ViewerServer(http, `http://${shownHost}:${address.port}/`, options);
    } catch (error) {
      await new Promise<void>((resolve) => http.close(() => resolve()));
      throw error;
    }
    ready.server = server;
    try {
      options.source.start(server.#sink);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** Counters (a snapshot). */
  get stats(): ViewerServerStats {
    return { ...this.#counts, clients: this.#wss.clients.size };
  }

  /** The layout sent to pages. */
  get layout(): ViewerLayout {
    return this.#layout;
  }

  /** Stops the source, closes every client and the server. Safe to call more than once. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#statsTimer);
    try {
      await this.source.stop();
    } finally {
      for (const ws of this.#wss.clients) ws.terminate();
      await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
      this.#http.closeAllConnections();
      await new Promise<void>((resolve) => this.#http.close(() => resolve()));
    }
  }

  readonly #sink: ViewerSink = {
    hudFrame: (frame) => this.#onHudFrame(frame),
    cameraImage: (image) => this.#onCameraImage(image.jpeg, image.tCaptureNs),
    cameraIntrinsics: (intrinsics) => {
      this.#intrinsics = intrinsics;
      this.#updateLayout();
    },
    blank: (reason) => {
      this.#generation++;
      this.#pending = undefined;
      this.#latestHud = undefined;
      this.#blank = true;
      this.#broadcastJson({ type: 'blank', reason });
    },
  };

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(VIEWER_PAGE_HTML);
    } else if (path === '/favicon.ico') {
      res.writeHead(204).end();
    } else if (path === '/stats.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...this.stats, layout: this.#layout }));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
    }
  }

  #onConnection(ws: WebSocket): void {
    ws.on('error', (error) => this.#log(`viewer: client error: ${error.message}`));
    ws.send(JSON.stringify({ type: 'hello', source: { kind: this.source.kind, description: this.source.description } }));
    ws.send(JSON.stringify({ type: 'layout', layout: this.#layout }));
    if (this.#latestCamera) ws.send(this.#latestCamera);
    if (this.#latestHud) ws.send(this.#latestHud);
  }

  #computeLayout(): ViewerLayout {
    return computeViewerLayout({ optics: this.#optics, intrinsics: this.#intrinsics, unwarped: this.#unwarped });
  }

  #updateLayout(cameraSizePx?: { widthPx: number; heightPx: number }): void {
    const layout = computeViewerLayout({ optics: this.#optics, intrinsics: this.#intrinsics, cameraSizePx, unwarped: this.#unwarped });
    const key = JSON.stringify(layout);
    if (key === this.#layoutKey) return;
    this.#layoutKey = key;
    this.#layout = layout;
    this.#broadcastJson({ type: 'layout', layout });
  }

  #onCameraImage(jpeg: Uint8Array, tCaptureNs: bigint): void {
    if (this.#stopped) return;
    this.#counts.cameraImagesIn++;
    this.#window.camera++;
    if (!this.#intrinsics && !this.#cameraSizeProbe) {
      // Without intrinsics the footprint is assumed from the image size: read it once from the JPEG header.
      const copy = Uint8Array.from(jpeg);
      this.#cameraSizeProbe = sharp(copy)
        .metadata()
        .then(({ width, height }) => {
          if (!this.#intrinsics && width && height) this.#updateLayout({ widthPx: width, heightPx: height });
        })
        .catch((error: unknown) => this.#log(`viewer: camera image is not readable: ${(error as Error).message}`));
    }
    this.#latestCamera = binaryMessage(WS_KIND_CAMERA_JPEG, { tCaptureNs: tCaptureNs.toString(), sentAtMs: Date.now() }, jpeg);
    this.#broadcastImage(this.#latestCamera);
  }

  #onHudFrame(frame: ViewerHudFrame): void {
    if (this.#stopped) return;
    this.#counts.hudFramesIn++;
    this.#window.hud++;
    if (Number.isFinite(frame.latencyMs)) {
      this.#window.latencySumMs += frame.latencyMs;
      this.#window.latencyCount++;
    }
    this.#blank = false;
    if (this.#pending) this.#counts.hudFramesSuperseded++;
    this.#pending = { frame, bytes: 'png' in frame ? Uint8Array.from(frame.png) : this.#copyPixels(frame.rgba, frame.widthPx * frame.heightPx * 4) };
    if (!this.#working) void this.#drain();
  }

  /** Copies pixels into whichever of the two pixel buffers is not being encoded (no per-frame allocation). */
  #copyPixels(rgba: Uint8Array, bytes: number): Uint8Array {
    const [a, b] = this.#pixelBuffers;
    let target = a === this.#inWork ? b : a;
    if (target.length !== bytes) {
      target = new Uint8Array(bytes);
      this.#pixelBuffers = a === this.#inWork ? [a, target] : [target, b];
    }
    target.set(rgba.subarray(0, bytes));
    return target;
  }

  /** Encodes and sends pending HUD frames one at a time until none is waiting. */
  async #drain(): Promise<void> {
    this.#working = true;
    try {
      while (this.#pending && !this.#stopped) {
        const { frame, bytes } = this.#pending;
        this.#pending = undefined;
        this.#inWork = bytes;
        const generation = this.#generation;
        let png: Uint8Array;
        try {
          png = await this.#encode(frame, bytes);
        } catch (error) {
          this.#log(`viewer: HUD frame ${frame.sequence} not shown: ${(error as Error).message}`);
          continue;
        }
        if (generation !== this.#generation || this.#stopped) continue;
        const header = { sequence: frame.sequence, tCaptureNs: frame.tCaptureNs.toString(), latencyMs: frame.latencyMs, degraded: frame.degraded, sentAtMs: Date.now() };
        this.#latestHud = binaryMessage(WS_KIND_HUD_PNG, header, png);
        this.#counts.hudFramesSent++;
        this.#broadcastImage(this.#latestHud);
      }
    } finally {
      this.#working = false;
      this.#inWork = undefined;
    }
  }

  /** The PNG the page shows: passed through, or decoded, un-warped and encoded again. */
  async #encode(frame: ViewerHudFrame, bytes: Uint8Array): Promise<Uint8Array> {
    let rgba: Uint8Array;
    let widthPx: number;
    let heightPx: number;
    if ('png' in frame) {
      if (!this.#unwarper) return bytes;
      const { data, info } = await sharp(bytes).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      rgba = data;
      widthPx = info.width;
      heightPx = info.height;
    } else {
      rgba = bytes;
      widthPx = frame.widthPx;
      heightPx = frame.heightPx;
    }
    const unwarper = this.#unwarper;
    if (unwarper && widthPx === unwarper.widthPx && heightPx === unwarper.heightPx) {
      this.#unwarpOut ??= new Uint8Array(widthPx * heightPx * 4);
      rgba = unwarper.unwarp(rgba, this.#unwarpOut);
    } else if (unwarper && !this.#mismatchLogged) {
      this.#mismatchLogged = true;
      this.#log(`viewer: HUD frames are ${widthPx}x${heightPx} but the optics panel is ${unwarper.widthPx}x${unwarper.heightPx}: shown without un-warp`);
    }
    return sharp(rgba, { raw: { width: widthPx, height: heightPx, channels: 4 } })
      .removeAlpha()
      .png({ compressionLevel: PNG_COMPRESSION_LEVEL })
      .toBuffer();
  }

  #sendStats(): void {
    const nowNs = this.#clock.nowNs();
    const w = this.#window;
    const elapsedS = Number(nowNs - w.startNs) / 1e9;
    const stats = {
      type: 'stats',
      hudFps: elapsedS > 0 ? w.hud / elapsedS : 0,
      cameraFps: elapsedS > 0 ? w.camera / elapsedS : 0,
      latencyMs: w.latencyCount > 0 ? w.latencySumMs / w.latencyCount : null,
      hudFrames: this.#counts.hudFramesIn,
      hudFramesSent: this.#counts.hudFramesSent,
      cameraImages: this.#counts.cameraImagesIn,
      blank: this.#blank,
    };
    w.startNs = nowNs;
    w.hud = 0;
    w.camera = 0;
    w.latencySumMs = 0;
    w.latencyCount = 0;
    this.#broadcastJson(stats);
  }

  #broadcastJson(message: object): void {
    const text = JSON.stringify(message);
    for (const ws of this.#wss.clients) if (ws.readyState === WebSocket.OPEN) ws.send(text);
  }

  #broadcastImage(message: Buffer): void {
    for (const ws of this.#wss.clients) {
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < CLIENT_BACKLOG_LIMIT_BYTES) ws.send(message);
    }
  }
}

/** [u8 kind][u32 LE header length][header JSON][payload], one buffer (the payload is copied). */
function binaryMessage(kind: number, header: object, payload: Uint8Array): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.allocUnsafe(5 + headerBytes.length + payload.length);
  out.writeUInt8(kind, 0);
  out.writeUInt32LE(headerBytes.length, 1);
  headerBytes.copy(out, 5);
  out.set(payload, 5 + headerBytes.length);
  return out;
}

/** Options of `runViewer` (the `arhud view` command): exactly one of `live` and `replay`. */
export interface RunViewerOptions {
  /** 0 = any free port. */
  port: number;
  host?: string;
  live?: { url: string; vehicleId: string; maxFrameAgeMs?: number; username?: string; password?: string; tls?: DisplayTlsOptions };
  replay?: { file: string; loop?: boolean; speed?: number };
  /** Warp-map file of the far (AR) plane: its panel image is un-warped ("through the windshield"). */
  warp?: string;
  /** Warp-map file of the near (status) plane. */
  warpNear?: string;
  /** HUD optics config file; default optics otherwise. */
  optics?: string;
  log: (line: string) => void;
}

/** Starts the viewer on a live broker or a recording. The returned server's `stop()` releases everything. */
export async function runViewer(options: RunViewerOptions): Promise<ViewerServer> {
  const { log } = options;
  if ((options.live === undefined) === (options.replay === undefined)) {
    throw new TypeError(`runViewer: exactly one of 'live' and 'replay' must be given, got ${options.live ? 'both' : 'neither'}`);
  }
  const optics = new HudOptics(options.optics ? await loadHudOpticsConfig(options.optics) : HUD_OPTICS_DEFAULTS);
  const warp: (RegionUnwarp & { name: 'far' | 'near' })[] = [];
  for (const [name, file] of [['far', options.warp], ['near', options.warpNear]] as const) {
    if (file === undefined) continue;
    const mesh = new EyeboxWarp(await loadWarpMap(file)).meshFor(optics.eyeboxCentreM);
    warp.push({ name, region: optics[name].region, mesh });
  }
  let source: ViewerSource;
  if (options.replay) {
    source = await ReplayViewerSource.open({ file: options.replay.file, loop: options.replay.loop, speed: options.replay.speed, log });
  } else {
    const live = options.live!;
    const controller = await DisplayController.create({
      url: live.url,
      vehicleId: live.vehicleId,
      maxFrameAgeMs: live.maxFrameAgeMs,
      username: live.username,
      password: live.password,
      tls: live.tls,
      acknowledge: false, // a monitor, not the display: the pipeline must only hear the display's acks
      log,
    });
    source = new LiveViewerSource(controller, { owned: true });
  }
  try {
    const server = await ViewerServer.start({ port: options.port, host: options.host, source, optics, warp, log });
    log(`viewer: ${server.url} showing ${source.kind} ${source.description}`);
    return server;
  } catch (error) {
    await source.stop();
    throw error;
  }
}
