/**
 * Where the HUD appears in the camera image, and the windshield un-warp, for the web viewer.
 *
 * Footprint: each virtual image plane (far AR plane, near status plane) is sampled on a grid of
 * panel pixels; each sample's eye ray (`VirtualImagePlane.panelToRay`) is projected into the camera
 * (pinhole + OpenCV plumb_bob distortion). The page draws the panel region through that grid, cell by
 * cell, so keystone and lens distortion are followed. The eye-to-camera offset is not known to the
 * viewer: the camera is put at the eye, looking straight ahead and level. That is exact for the
 * direction of far content and off by the eye-camera baseline for near content (parallax), which the
 * page says.
 *
 * Frames:
 * - vehicle (ISO 8855): x forward, y left, z up; metres.
 * - camera: x right, y down, z along the optical axis. `CAMERA_FROM_VEHICLE` below, rows = camera
 *   axes written in the vehicle frame: x_cam = -y_veh, y_cam = -z_veh, z_cam = x_veh.
 * - camera pixels: u right, v down, pixel (i, j) centred at (i + 0.5, j + 0.5) as in OpenCV with the
 *   principal point in the same convention as the calibration (cx, cy).
 *
 * Un-warp: the panel shows, at panel position p of a region, the overlay content at uv(p) (warp
 * mesh, region-local). Through a calibrated windshield the driver sees that content where the ideal
 * (unwarped) panel pixel uv(p) would appear. `PanelUnwarper` builds once, per region, the inverse
 * lookup overlay pixel -> panel position by rasterizing the mesh's triangles in uv space, then each
 * frame samples the panel image through it (bilinear), giving the image the driver sees.
 */
import type { CameraIntrinsics } from '../../pipeline/frame.js';
import type { HudOptics, VirtualImagePlane } from '../../render/optics.js';
import { createEyeRay } from '../../render/optics.js';
import type { PanelRegionPx } from '../../render/optics-config.js';
import type { WarpMesh } from '../../render/warp-mesh.js';

/** Horizontal field of view assumed when the camera's intrinsics are unknown, degrees. */
export const ASSUMED_CAMERA_HFOV_DEG = 60;
/** Camera image size assumed before any camera image arrives, pixels. */
export const ASSUMED_CAMERA_SIZE_PX = Object.freeze({ widthPx: 1280, heightPx: 720 });
/** Grid cells per plane footprint (horizontal x vertical) the page draws through. */
export const FOOTPRINT_COLS = 16;
export const FOOTPRINT_ROWS = 8;

// prettier-ignore
/** cameraFromVehicle rotation, row-major: rows = camera x (right), y (down), z (forward) in vehicle axes. */
export const CAMERA_FROM_VEHICLE: readonly number[] = Object.freeze([
  0, -1, 0,
  0, 0, -1,
  1, 0, 0,
]);

/** One plane's footprint in the camera image. */
export interface PlaneFootprint {
  name: 'far' | 'near';
  /** The plane's panel region, panel pixels. */
  region: PanelRegionPx;
  /** Grid cells across / down. */
  cols: number;
  rows: number;
  /**
   * (cols + 1) x (rows + 1) vertices, row by row, top-down: [panel u, panel v, camera x, camera y],
   * pixels; camera coordinates NaN where the ray points behind the camera.
   */
  vertices: number[];
}

/** What the page needs to place the HUD over the camera image (JSON-safe). */
export interface ViewerLayout {
  /** Camera image size, pixels. */
  camera: { widthPx: number; heightPx: number };
  /** HUD panel size, pixels. */
  panel: { widthPx: number; heightPx: number };
  planes: PlaneFootprint[];
  /** True when intrinsics came from the source (recording calibration topic), false when assumed. */
  intrinsicsKnown: boolean;
  /** Which planes' panel images are un-warped through a windshield warp map before display. */
  unwarped: ('far' | 'near')[];
  /** Caveats the page shows under the image. */
  notes: string[];
}

/** Options of `computeViewerLayout`. */
export interface ViewerLayoutOptions {
  optics: HudOptics;
  /** Camera intrinsics; when absent a pinhole with ASSUMED_CAMERA_HFOV_DEG over `cameraSizePx` is used. */
  intrinsics?: CameraIntrinsics;
  /** Camera image size when the intrinsics are unknown; default ASSUMED_CAMERA_SIZE_PX. */
  cameraSizePx?: { widthPx: number; heightPx: number };
  /** Planes that are un-warped (reported to the page). */
  unwarped?: ('far' | 'near')[];
  cols?: number;
  rows?: number;
}

/** A pinhole without distortion with the given horizontal FOV, principal point at the centre. */
export function assumedIntrinsics(widthPx: number, heightPx: number, hfovDeg = ASSUMED_CAMERA_HFOV_DEG): CameraIntrinsics {
  const f = widthPx / 2 / Math.tan((hfovDeg / 2) * (Math.PI / 180));
  return { width: widthPx, height: heightPx, fx: f, fy: f, cx: widthPx / 2, cy: heightPx / 2, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] };
}

/**
 * Projects a direction in the vehicle frame, seen from the camera (placed at the eye), to camera
 * pixels with plumb_bob distortion. Writes [x, y] into `out` at `at`; NaN when it points behind.
 */
export function projectVehicleDirection(k: Readonly<CameraIntrinsics>, dx: number, dy: number, dz: number, out: number[], at: number): void {
  const R = CAMERA_FROM_VEHICLE;
  const xc = R[0]! * dx + R[1]! * dy + R[2]! * dz;
  const yc = R[3]! * dx + R[4]! * dy + R[5]! * dz;
  const zc = R[6]! * dx + R[7]! * dy + R[8]! * dz;
  if (!(zc > 1e-9)) {
    out[at] = NaN;
    out[at + 1] = NaN;
    return;
  }
  const x = xc / zc;
  const y = yc / zc;
  const [k1 = 0, k2 = 0, p1 = 0, p2 = 0, k3 = 0] = k.distortion;
  const r2 = x * x + y * y;
  const radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3));
  const xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x);
  const yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y;
  out[at] = k.fx * xd + k.cx;
  out[at + 1] = k.fy * yd + k.cy;
}

/** Footprints of the far and near planes in the camera image (camera at the eyebox centre). */
export function computeViewerLayout(options: ViewerLayoutOptions): ViewerLayout {
  const { optics } = options;
  const size = options.cameraSizePx ?? ASSUMED_CAMERA_SIZE_PX;
  const k = options.intrinsics ?? assumedIntrinsics(size.widthPx, size.heightPx);
  const cols = options.cols ?? FOOTPRINT_COLS;
  const rows = options.rows ?? FOOTPRINT_ROWS;
  if (!Number.isInteger(cols) || cols < 1 || !Number.isInteger(rows) || rows < 1) {
    throw new RangeError(`computeViewerLayout: 'cols' and 'rows' must be integers >= 1, got ${cols} x ${rows}`);
  }
  const ray = createEyeRay();
  const eyeM = optics.eyeboxCentreM;
  const footprint = (plane: VirtualImagePlane): PlaneFootprint => {
    const r = plane.region;
    const vertices: number[] = new Array<number>((cols + 1) * (rows + 1) * 4);
    for (let j = 0, n = 0; j <= rows; j++) {
      for (let i = 0; i <= cols; i++, n += 4) {
        const u = r.xPx + (i / cols) * r.widthPx;
        const v = r.yPx + (j / rows) * r.heightPx;
        plane.panelToRay(u, v, ray, eyeM);
        vertices[n] = u;
        vertices[n + 1] = v;
        projectVehicleDirection(k, ray.direction.x, ray.direction.y, ray.direction.z, vertices, n + 2);
      }
    }
    return { name: plane.name, region: { ...r }, cols, rows, vertices };
  };
  const notes = [
    'Eye approximated at the camera (eye-to-camera offset unknown): camera assumed at the eyebox centre, level, looking straight ahead; near-plane content is off by the eye-camera parallax.',
  ];
  if (!options.intrinsics) notes.push(`Camera intrinsics unknown: assumed a ${ASSUMED_CAMERA_HFOV_DEG} deg horizontal FOV pinhole.`);
  const unwarped = options.unwarped ?? [];
  notes.push(unwarped.length > 0 ? `Seen through the simulated windshield: ${unwarped.join(' and ')} plane un-warped through the warp map.` : 'No warp map: the panel image is shown as rendered (no windshield).');
  return {
    camera: { widthPx: k.width, heightPx: k.height },
    panel: { widthPx: optics.panel.widthPx, heightPx: optics.panel.heightPx },
    planes: [footprint(optics.far), footprint(optics.near)],
    intrinsicsKnown: options.intrinsics !== undefined,
    unwarped,
    notes,
  };
}

/** A windshield warp of one panel region (the mesh is region-local, as `RegionWarp` in the renderer). */
export interface RegionUnwarp {
  region: PanelRegionPx;
  mesh: WarpMesh;
}

/**
 * Panel image -> driver's view, through the warp meshes of some regions (others copied unchanged,
 * pixels outside every region black). The lookup is built once; `unwarp` allocates nothing.
 */
export class PanelUnwarper {
  /** Panel size, pixels. */
  readonly widthPx: number;
  readonly heightPx: number;
  /** Fraction of each warped region's pixels the mesh covers (the rest stays black). */
  readonly coverage: readonly number[];
  /** Per panel pixel: source x, y (panel pixels, continuous) to sample; NaN = black. */
  readonly #source: Float32Array;

  constructor(panel: { widthPx: number; heightPx: number }, warps: readonly RegionUnwarp[], passThrough: readonly PanelRegionPx[] = []) {
    const { widthPx, heightPx } = panel;
    if (!Number.isInteger(widthPx) || !Number.isInteger(heightPx) || widthPx < 1 || heightPx < 1) {
      throw new RangeError(`PanelUnwarper: panel size must be positive integers, got ${widthPx}x${heightPx}`);
    }
    this.widthPx = widthPx;
    this.heightPx = heightPx;
    this.#source = new Float32Array(widthPx * heightPx * 2).fill(NaN);
    for (const r of passThrough) {
      forEachPixel(clipRegion(r, widthPx, heightPx), (x, y) => {
        const k = (y * widthPx + x) * 2;
        this.#source[k] = x + 0.5;
        this.#source[k + 1] = y + 0.5;
      });
    }
    this.coverage = warps.map((w) => this.#rasterize(w));
  }

  /**
   * Samples `panelRgba` (RGBA8, row 0 = top, this panel's size) through the lookup into `out`
   * (same size; must not alias the input). Bilinear; returns `out`.
   */
  unwarp(panelRgba: Uint8Array, out: Uint8Array): Uint8Array {
    const w = this.widthPx;
    const h = this.heightPx;
    const n = w * h * 4;
    if (panelRgba.length < n || out.length < n) {
      throw new RangeError(`PanelUnwarper.unwarp: images must hold ${w}x${h}x4 = ${n} bytes, got ${panelRgba.length} in and ${out.length} out`);
    }
    const src = this.#source;
    for (let p = 0, k = 0, o = 0; p < w * h; p++, k += 2, o += 4) {
      const sx = src[k]! - 0.5;
      const sy = src[k + 1]! - 0.5;
      if (sx !== sx) {
        out[o] = 0;
        out[o + 1] = 0;
        out[o + 2] = 0;
        out[o + 3] = 255;
        continue;
      }
      const x0 = Math.max(0, Math.min(w - 1, Math.floor(sx)));
      const y0 = Math.max(0, Math.min(h - 1, Math.floor(sy)));
      const x1 = Math.min(w - 1, x0 + 1);
      const y1 = Math.min(h - 1, y0 + 1);
      const fx = Math.max(0, Math.min(1, sx - x0));
      const fy = Math.max(0, Math.min(1, sy - y0));
      const a = (y0 * w + x0) * 4;
      const b = (y0 * w + x1) * 4;
      const c = (y1 * w + x0) * 4;
      const d = (y1 * w + x1) * 4;
      for (let ch = 0; ch < 3; ch++) {
        const top = panelRgba[a + ch]! + (panelRgba[b + ch]! - panelRgba[a + ch]!) * fx;
        const bottom = panelRgba[c + ch]! + (panelRgba[d + ch]! - panelRgba[c + ch]!) * fx;
        out[o + ch] = top + (bottom - top) * fy + 0.5;
      }
      out[o + 3] = 255;
    }
    return out;
  }

  /** Fills the lookup of one region: rasterizes each mesh triangle at its uv, interpolating panel positions. */
  #rasterize({ region, mesh }: RegionUnwarp): number {
    const r = clipRegion(region, this.widthPx, this.heightPx);
    const { positions, uvs, indices } = mesh;
    const src = this.#source;
    const w = this.widthPx;
    // Region pixels the mesh does not reach stay black: clear the region first.
    forEachPixel(r, (x, y) => src.fill(NaN, (y * w + x) * 2, (y * w + x) * 2 + 2));
    let covered = 0;
    const ux = (k: number) => region.xPx + uvs[k * 2]! * region.widthPx;
    const vy = (k: number) => region.yPx + uvs[k * 2 + 1]! * region.heightPx;
    const px = (k: number) => region.xPx + positions[k * 2]! * region.widthPx;
    const py = (k: number) => region.yPx + positions[k * 2 + 1]! * region.heightPx;
    for (let t = 0; t < indices.length; t += 3) {
      const i0 = indices[t]!;
      const i1 = indices[t + 1]!;
      const i2 = indices[t + 2]!;
      const ax = ux(i0), ay = vy(i0), bx = ux(i1), by = vy(i1), cx = ux(i2), cy = vy(i2);
      const area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
      if (area === 0) continue;
      const minX = Math.max(r.xPx, Math.floor(Math.min(ax, bx, cx)));
      const maxX = Math.min(r.xPx + r.widthPx - 1, Math.ceil(Math.max(ax, bx, cx)));
      const minY = Math.max(r.yPx, Math.floor(Math.min(ay, by, cy)));
      const maxY = Math.min(r.yPx + r.heightPx - 1, Math.ceil(Math.max(ay, by, cy)));
      // Shared edges: a small tolerance so no pixel centre on an edge falls between two triangles.
      const eps = -1e-9;
      for (let y = minY; y <= maxY; y++) {
        const qy = y + 0.5;
        for (let x = minX; x <= maxX; x++) {
          const qx = x + 0.5;
          const w0 = ((bx - qx) * (cy - qy) - (by - qy) * (cx - qx)) / area;
          const w1 = ((cx - qx) * (ay - qy) - (cy - qy) * (ax - qx)) / area;
          const w2 = 1 - w0 - w1;
          if (w0 < eps || w1 < eps || w2 < eps) continue;
          const k = (y * w + x) * 2;
          if (src[k] !== src[k]) covered++;
          src[k] = w0 * px(i0) + w1 * px(i1) + w2 * px(i2);
          src[k + 1] = w0 * py(i0) + w1 * py(i1) + w2 * py(i2);
        }
      }
    }
    return r.widthPx * r.heightPx === 0 ? 0 : covered / (r.widthPx * r.heightPx);
  }
}

function clipRegion(r: PanelRegionPx, widthPx: number, heightPx: number): PanelRegionPx {
  const x0 = Math.max(0, Math.min(widthPx, Math.round(r.xPx)));
  const y0 = Math.max(0, Math.min(heightPx, Math.round(r.yPx)));
  const x1 = Math.max(x0, Math.min(widthPx, Math.round(r.xPx + r.widthPx)));
  const y1 = Math.max(y0, Math.min(heightPx, Math.round(r.yPx + r.heightPx)));
  return { xPx: x0, yPx: y0, widthPx: x1 - x0, heightPx: y1 - y0 };
}

function forEachPixel(r: PanelRegionPx, fn: (x: number, y: number) => void): void {
  for (let y = r.yPx; y < r.yPx + r.heightPx; y++) for (let x = r.xPx; x < r.xPx + r.widthPx; x++) fn(x, y);
}
