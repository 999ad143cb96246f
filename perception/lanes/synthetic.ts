/**
 * Synthetic road images with known lane lines, rendered through a CameraModel's pixelToGround (lens
 * distortion included): flat grey asphalt (with seeded Gaussian noise), lines painted where
 * |y - line(x)| < width / 2 (anti-aliased over the pixel's ground footprint), dashes by x, sky above
 * the horizon. Pixel (u, v) is the ray through (u, v) (OpenCV: integer coordinates are pixel
 * centres). For the lane tests.
 */
import { gaussianRandom, seededRandom } from '../../calibration/math/random.js';
import { ImageView } from '../../pipeline/image.js';
import type { Vec3M } from '../../render/optics-config.js';
import type { CameraModel } from '../world/camera-model.js';

export interface SyntheticLine {
  /** y(x) = c0 + c1 x + c2 x^2 + c3 x^3 (vehicle frame, m). */
  coefficients: [number, number, number, number];
  /** Paint width (m); default 0.15. */
  widthM?: number;
  /** Dashes: paint where (x + phaseM) mod (onM + offM) < onM. Solid when absent. */
  dash?: { onM: number; offM: number; phaseM: number };
  /** Paint brightness over the asphalt (grey levels); default 120. 0 = gone. */
  contrast?: number;
  /** Colour of the paint for rgb8 output; default white. */
  colour?: 'white' | 'yellow';
}

export interface SyntheticScene {
  lines: SyntheticLine[];
  /** Asphalt grey level; default 90. */
  asphalt?: number;
  /** Standard deviation of per-pixel noise (grey levels); default 6. */
  noiseSigma?: number;
  /** Seed of the noise; default 1. */
  seed?: number;
}

const _g: Vec3M = { x: 0, y: 0, z: 0 };

/** Renders the scene into a new packed image of the camera's size (rgb8 or gray8). */
export function renderSyntheticRoad(
  camera: CameraModel,
  scene: SyntheticScene,
  format: 'rgb8' | 'gray8' = 'rgb8',
): ImageView {
  const { width, height, fx } = camera.intrinsics;
  const channels = format === 'rgb8' ? 3 : 1;
  const data = new Uint8Array(width * height * channels);
  const asphalt = scene.asphalt ?? 90;
  const noise = gaussianRandom(seededRandom(scene.seed ?? 1));
  const sigma = scene.noiseSigma ?? 6;
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      let r = 170, g = 190, b = 215; // sky
      if (camera.pixelToGround(u, v, _g)) {
        const footprintM = Math.max(1e-3, Math.hypot(_g.x, _g.y) / fx);
        let paint = 0, yellow = false;
        for (const line of scene.lines) {
          const contrast = line.contrast ?? 120;
          if (contrast <= 0) continue;
          const [c0, c1, c2, c3] = line.coefficients;
          const x = _g.x;
          if (line.dash !== undefined) {
            const period = line.dash.onM + line.dash.offM;
            const phase = (((x + line.dash.phaseM) % period) + period) % period;
            if (phase >= line.dash.onM) continue;
          }
          const yLine = c0 + x * (c1 + x * (c2 + x * c3));
          const slope = c1 + x * (2 * c2 + 3 * x * c3);
          const d = Math.abs(_g.y - yLine) / Math.sqrt(1 + slope * slope);
          const halfWidth = 0.5 * (line.widthM ?? 0.15);
          const cover = Math.min(1, Math.max(0, 0.5 + (halfWidth - d) / footprintM));
          if (cover * contrast > paint) {
            paint = cover * contrast;
            yellow = line.colour === 'yellow';
          }
        }
        const n = sigma * noise();
        const base = asphalt + n;
        r = base + paint;
        g = base + paint * (yellow ? 0.85 : 1);
        b = base + paint * (yellow ? -0.3 : 1);
      }
      const at = (v * width + u) * channels;
      if (channels === 3) {
        data[at] = clampByte(r);
        data[at + 1] = clampByte(g);
        data[at + 2] = clampByte(b);
      } else data[at] = clampByte(0.5 * (r + g));
    }
  }
  return ImageView.packed(width, height, format, data);
}

function clampByte(value: number): number {
  return value < 0 ? 0 : value > 255 ? 255 : Math.round(value);
}
