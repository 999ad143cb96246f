/**
 * The driver's view: the camera frame with the HUD's virtual images added as light, for reports
 * and demos (what the driver would see through the windshield, not a calibrated simulation).
 *
 * Frames:
 * - vehicle (ISO 8855): x forward, y left, z up.
 * - camera: x right, y down, z along the optical axis; pinhole u = cx + fx x / z, v = cy + fy y / z,
 *   pixels, centres at integer coordinates (OpenCV, as calibration/camera). The camera is yawed by
 *   `yawRad` (positive left, about vehicle z) and then pitched down by `pitchRad` (about its own right axis).
 * - hud (per plane, from render/optics.ts): x right, y down, z along the HUD axis.
 * - panel pixels: pixel (i, j) has its centre at (i + 0.5, j + 0.5).
 *
 * Parallax approximation: the eye is taken to sit at the camera, so only directions matter and the
 * virtual image distance drops out. The real eye is ~0.5 m from the camera, so a scene point at
 * distance D is seen ~0.5 m / D rad apart from the two viewpoints: small for the far plane's content
 * (>= 7 m; about 2 deg at 15 m, the nearest road it shows), and it shifts the scene under the HUD
 * image, never the image's own shape or size. Good enough for a picture, not for checking registration.
 */
import sharp from 'sharp';
import type { HudOptics, VirtualImagePlane } from './optics.js';

export interface DriversViewInput {
  /** The camera frame: packed RGB8 bytes, width x height. */
  cameraRgb: Uint8Array;
  widthPx: number;
  heightPx: number;
  /** Intrinsics (fx, fy, cx, cy in px); pitch below horizontal (rad, positive = down); yaw (rad, positive = left). */
  camera: { fx: number; fy: number; cx: number; cy: number; pitchRad: number; yawRad: number };
  /** The HUD panel as RGBA8, row 0 = top, panelWidthPx x panelHeightPx, rendered with the identity warp. */
  panelRgba: Uint8Array;
  panelWidthPx: number;
  panelHeightPx: number;
  optics: HudOptics;
}

export interface DriversViewOptions {
  /** JPEG quality 1..100; default `DRIVERS_VIEW_JPEG_QUALITY`. */
  jpegQuality?: number;
}

export const DRIVERS_VIEW_JPEG_QUALITY = 85;

// Scratch, reused by every call: the per-pixel loop is synchronous, so calls never interleave here.
const _cameraFromVehicle = new Float64Array(9);
const _hudFromCamera = new Float64Array(9);
const _bounds = new Float64Array(4); // uMin, vMin, uMax, vMax

/**
 * The camera frame with the HUD's far and near virtual images screen-blended in, as a JPEG.
 * Throws TypeError / RangeError (naming the field) on inconsistent sizes or bad intrinsics.
 */
export async function driversView(input: DriversViewInput, options: DriversViewOptions = {}): Promise<Uint8Array> {
  const quality = options.jpegQuality ?? DRIVERS_VIEW_JPEG_QUALITY;
  validate(input, quality);
  const out = new Uint8Array(input.cameraRgb); // the camera image, to which the HUD adds light
  cameraFromVehicle(input.camera.pitchRad, input.camera.yawRad, _cameraFromVehicle);
  drawPlane(input, input.optics.far, out);
  drawPlane(input, input.optics.near, out);
  const jpeg = await sharp(out, { raw: { width: input.widthPx, height: input.heightPx, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
  return new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
}

/**
 * cameraFromVehicle, row-major 3x3: rows = camera right, down, forward as vehicle-frame unit vectors.
 * Start from the level camera (right = -y, down = -z, forward = x), yaw left by psi about z:
 *   forward = (cos psi, sin psi, 0), right = (sin psi, -cos psi, 0), down = (0, 0, -1);
 * then pitch down by theta about `right`:
 *   forward' = cos theta forward + sin theta down = (cos theta cos psi, cos theta sin psi, -sin theta)
 *   down'    = cos theta down - sin theta forward = (-sin theta cos psi, -sin theta sin psi, -cos theta).
 * Exported for tests.
 */
export function cameraFromVehicle(pitchRad: number, yawRad: number, out: Float64Array = new Float64Array(9)): Float64Array {
  const ct = Math.cos(pitchRad);
  const st = Math.sin(pitchRad);
  const cp = Math.cos(yawRad);
  const sp = Math.sin(yawRad);
  // prettier-ignore
  out.set([
    sp, -cp, 0,                // right
    -st * cp, -st * sp, -ct,   // down
    ct * cp, ct * sp, -st,     // forward
  ]);
  return out;
}

function validate(input: DriversViewInput, quality: number): void {
  const { widthPx, heightPx, panelWidthPx, panelHeightPx, camera } = input;
  for (const [name, v] of [['widthPx', widthPx], ['heightPx', heightPx], ['panelWidthPx', panelWidthPx], ['panelHeightPx', panelHeightPx]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`driversView: field '${name}' must be an integer >= 1, got ${v}`);
  }
  if (!(input.cameraRgb instanceof Uint8Array)) throw new TypeError(`driversView: field 'cameraRgb' must be a Uint8Array`);
  if (!(input.panelRgba instanceof Uint8Array)) throw new TypeError(`driversView: field 'panelRgba' must be a Uint8Array`);
  if (input.cameraRgb.length !== widthPx * heightPx * 3) {
    throw new RangeError(`driversView: field 'cameraRgb' must hold ${widthPx}x${heightPx}x3 = ${widthPx * heightPx * 3} bytes, got ${input.cameraRgb.length}`);
  }
  if (input.panelRgba.length !== panelWidthPx * panelHeightPx * 4) {
    throw new RangeError(
      `driversView: field 'panelRgba' must hold ${panelWidthPx}x${panelHeightPx}x4 = ${panelWidthPx * panelHeightPx * 4} bytes, got ${input.panelRgba.length}`,
    );
  }
  for (const plane of [input.optics.far, input.optics.near]) {
    const r = plane.region;
    if (r.xPx + r.widthPx > panelWidthPx || r.yPx + r.heightPx > panelHeightPx) {
      throw new RangeError(`driversView: the ${plane.name} plane region ${r.widthPx}x${r.heightPx} at (${r.xPx}, ${r.yPx}) must lie inside the ${panelWidthPx}x${panelHeightPx} panel`);
    }
  }
  for (const key of ['fx', 'fy'] as const) {
    if (!(camera[key] > 0) || !Number.isFinite(camera[key])) throw new RangeError(`driversView: field 'camera.${key}' must be a finite number > 0, got ${camera[key]}`);
  }
  for (const key of ['cx', 'cy', 'pitchRad', 'yawRad'] as const) {
    if (!Number.isFinite(camera[key])) throw new RangeError(`driversView: field 'camera.${key}' must be finite, got ${camera[key]}`);
  }
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new RangeError(`driversView: option 'jpegQuality' must be an integer in [1, 100], got ${quality}`);
}

/**
 * Camera-pixel bounds of the plane's four corners (uMin, vMin, uMax, vMax into `_bounds`); false when a
 * corner is not in front of the camera (then the caller scans the whole image). Directions are in hud
 * axes; camera = cameraFromVehicle x vehicleFromHud.
 */
function projectedBounds(plane: VirtualImagePlane, cam: DriversViewInput['camera']): boolean {
  const tanX = plane.halfWidthM / plane.vidM;
  const tanY = plane.halfHeightM / plane.vidM;
  const h = _hudFromCamera; // rows map camera -> hud; its transpose maps hud -> camera
  _bounds[0] = Infinity;
  _bounds[1] = Infinity;
  _bounds[2] = -Infinity;
  _bounds[3] = -Infinity;
  for (let corner = 0; corner < 4; corner++) {
    const hx = corner & 1 ? tanX : -tanX;
    const hy = corner & 2 ? tanY : -tanY;
    // camera = transpose(hudFromCamera) * (hx, hy, 1)
    const x = h[0]! * hx + h[3]! * hy + h[6]!;
    const y = h[1]! * hx + h[4]! * hy + h[7]!;
    const z = h[2]! * hx + h[5]! * hy + h[8]!;
    if (!(z > 1e-9)) return false;
    const u = cam.cx + (cam.fx * x) / z;
    const v = cam.cy + (cam.fy * y) / z;
    _bounds[0] = Math.min(_bounds[0], u);
    _bounds[1] = Math.min(_bounds[1], v);
    _bounds[2] = Math.max(_bounds[2], u);
    _bounds[3] = Math.max(_bounds[3], v);
  }
  return true;
}

/**
 * Inverse mapping: for each camera pixel near the plane's projected quad, the camera ray in hud axes,
 * its intersection with the virtual image (as tangents of the angles off the HUD axis) and so the
 * panel position; a bilinear sample of the panel region there is screen-blended into `out`.
 */
function drawPlane(input: DriversViewInput, plane: VirtualImagePlane, out: Uint8Array): void {
  const { camera: cam, widthPx, heightPx, panelRgba, panelWidthPx } = input;
  // hudFromCamera = hudFromVehicle x vehicleFromCamera, vehicleFromCamera = transpose(cameraFromVehicle).
  const a = plane.hudFromVehicle;
  const c = _cameraFromVehicle;
  const h = _hudFromCamera;
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) h[row * 3 + col] = a[row * 3]! * c[col * 3]! + a[row * 3 + 1]! * c[col * 3 + 1]! + a[row * 3 + 2]! * c[col * 3 + 2]!;
  }
  let x0 = 0;
  let y0 = 0;
  let x1 = widthPx - 1;
  let y1 = heightPx - 1;
  if (projectedBounds(plane, cam)) {
    // One pixel of margin: the region test below decides exactly which pixels belong.
    x0 = Math.max(x0, Math.floor(_bounds[0]!) - 1);
    y0 = Math.max(y0, Math.floor(_bounds[1]!) - 1);
    x1 = Math.min(x1, Math.ceil(_bounds[2]!) + 1);
    y1 = Math.min(y1, Math.ceil(_bounds[3]!) + 1);
  }
  if (x0 > x1 || y0 > y1) return;

  const r = plane.region;
  const invTanX = plane.vidM / plane.halfWidthM;
  const invTanY = plane.vidM / plane.halfHeightM;
  const regionRight = r.xPx + r.widthPx;
  const regionBottom = r.yPx + r.heightPx;
  const lastCol = r.xPx + r.widthPx - 1;
  const lastRow = r.yPx + r.heightPx - 1;
  for (let y = y0; y <= y1; y++) {
    const yn = (y - cam.cy) / cam.fy;
    for (let x = x0; x <= x1; x++) {
      const xn = (x - cam.cx) / cam.fx;
      // Camera ray (xn, yn, 1) in hud axes.
      const dz = h[6]! * xn + h[7]! * yn + h[8]!;
      if (!(dz > 0)) continue;
      const dx = h[0]! * xn + h[1]! * yn + h[2]!;
      const dy = h[3]! * xn + h[4]! * yn + h[5]!;
      // Linear map of the plane onto its region (as VirtualImagePlane.panelFromPlane), in tangents.
      const pu = r.xPx + ((dx / dz) * invTanX + 1) * 0.5 * r.widthPx;
      const pv = r.yPx + ((dy / dz) * invTanY + 1) * 0.5 * r.heightPx;
      if (!(pu >= r.xPx && pu < regionRight && pv >= r.yPx && pv < regionBottom)) continue;
      // Bilinear on pixel centres, clamped to the region so the other plane never bleeds in.
      const fu = Math.min(Math.max(pu - 0.5, r.xPx), lastCol);
      const fv = Math.min(Math.max(pv - 0.5, r.yPx), lastRow);
      const i0 = Math.floor(fu);
      const j0 = Math.floor(fv);
      const i1 = Math.min(i0 + 1, lastCol);
      const j1 = Math.min(j0 + 1, lastRow);
      const wu = fu - i0;
      const wv = fv - j0;
      const w00 = (1 - wu) * (1 - wv);
      const w10 = wu * (1 - wv);
      const w01 = (1 - wu) * wv;
      const w11 = wu * wv;
      const p00 = (j0 * panelWidthPx + i0) * 4;
      const p10 = (j0 * panelWidthPx + i1) * 4;
      const p01 = (j1 * panelWidthPx + i0) * 4;
      const p11 = (j1 * panelWidthPx + i1) * 4;
      // Premultiplied by alpha before interpolating, so transparent texels add no colour.
      const a00 = (w00 * panelRgba[p00 + 3]!) / 255;
      const a10 = (w10 * panelRgba[p10 + 3]!) / 255;
      const a01 = (w01 * panelRgba[p01 + 3]!) / 255;
      const a11 = (w11 * panelRgba[p11 + 3]!) / 255;
      const o = (y * widthPx + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const light = a00 * panelRgba[p00 + ch]! + a10 * panelRgba[p10 + ch]! + a01 * panelRgba[p01 + ch]! + a11 * panelRgba[p11 + ch]!;
        // Screen blend: the HUD adds light, it never darkens the scene.
        out[o + ch] = Math.round(255 - ((255 - out[o + ch]!) * (255 - light)) / 255);
      }
    }
  }
}
