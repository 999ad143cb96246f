/**
 * Lane overlay for looking at results: the frame (as packed RGB) with each reported boundary drawn
 * along its valid x range. Colours: ego boundaries green, adjacent ones cyan; solid lines drawn
 * continuous, dashed ones drawn dashed, unknown type dotted; brightness follows confidence.
 * The part of the curve extrapolated from x = 0 to xMinM is drawn thin, for reference.
 */
import type { ImageView } from '../../pipeline/image.js';
import { createPixelPoint, type CameraModel } from '../world/camera-model.js';
import { sampleBoundaryM, type LaneEstimate } from './types.js';

/** Step along x (m) between drawn curve points. */
const OVERLAY_STEP_M = 0.5;

const _a = createPixelPoint();
const _b = createPixelPoint();
const _p = { x: 0, y: 0, z: 0 };

export function drawLaneOverlay(
  image: ImageView,
  estimate: LaneEstimate,
  camera: CameraModel,
  out?: Uint8Array,
): Uint8Array {
  if (image.format !== 'rgb8' && image.format !== 'gray8' && image.format !== 'rgba8') {
    throw new TypeError(`drawLaneOverlay: field 'image.format' must be 'rgb8', 'rgba8' or 'gray8', got '${image.format}'`);
  }
  const { width, height } = image;
  const rgb = out ?? new Uint8Array(width * height * 3);
  if (rgb.length < width * height * 3) throw new RangeError(`drawLaneOverlay: 'out' must hold ${width * height * 3} bytes, got ${rgb.length}`);
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const at = (v * width + u) * 3;
      if (image.format === 'gray8') {
        rgb[at] = rgb[at + 1] = rgb[at + 2] = image.get(u, v);
      } else {
        rgb[at] = image.get(u, v, 0);
        rgb[at + 1] = image.get(u, v, 1);
        rgb[at + 2] = image.get(u, v, 2);
      }
    }
  }
  const sx = width / camera.intrinsics.width, sy = height / camera.intrinsics.height;
  const thick = Math.max(1, Math.round(width / 320));
  for (const b of estimate.boundaries) {
    const ego = b.role === 'ego-left' || b.role === 'ego-right';
    const k = 0.4 + 0.6 * b.confidence;
    const colour: [number, number, number] = ego ? [40 * k, 255 * k, 60 * k] : [40 * k, 220 * k, 255 * k];
    let segment = 0;
    for (let x = 0; x < b.xMaxM; x += OVERLAY_STEP_M, segment++) {
      const x1 = Math.min(b.xMaxM, x + OVERLAY_STEP_M);
      const extrapolated = x1 <= b.xMinM;
      if (!extrapolated) {
        if (b.lineType === 'dashed' && segment % 4 >= 2) continue;
        if (b.lineType === 'unknown' && segment % 2 === 1) continue;
      }
      _p.x = x;
      _p.y = sampleBoundaryM(b, x);
      if (!camera.projectVehiclePoint(_p, _a)) continue;
      _p.x = x1;
      _p.y = sampleBoundaryM(b, x1);
      if (!camera.projectVehiclePoint(_p, _b)) continue;
      drawSegment(rgb, width, height, _a.uPx * sx, _a.vPx * sy, _b.uPx * sx, _b.vPx * sy, extrapolated ? 0 : thick, colour);
    }
  }
  return rgb;
}

function drawSegment(rgb: Uint8Array, width: number, height: number, u0: number, v0: number, u1: number, v1: number, half: number, colour: [number, number, number]): void {
  const steps = Math.ceil(Math.max(Math.abs(u1 - u0), Math.abs(v1 - v0), 1));
  for (let s = 0; s <= steps; s++) {
    const t = s / steps;
    const uc = Math.round(u0 + t * (u1 - u0)), vc = Math.round(v0 + t * (v1 - v0));
    for (let dv = -half; dv <= half; dv++) {
      for (let du = -half; du <= half; du++) {
        const u = uc + du, v = vc + dv;
        if (u < 0 || v < 0 || u >= width || v >= height) continue;
        const at = (v * width + u) * 3;
        rgb[at] = colour[0];
        rgb[at + 1] = colour[1];
        rgb[at + 2] = colour[2];
      }
    }
  }
}
