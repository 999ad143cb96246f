/**
 * Dot detection in a calibration capture: threshold above the background, 8-connected components,
 * size and shape gating, then an intensity-weighted sub-pixel centroid over a window around each
 * blob with the local background subtracted (unclipped weights, so noise does not bias it).
 * Coordinates: pixel (i, j) has its centre at (i + 0.5, j + 0.5).
 */

/** Threshold = background + this fraction of (bright level - background) (robust to exposure). */
const THRESHOLD_FRACTION = 0.3;
/** ... but at least this many background noise sigmas above it. */
const THRESHOLD_MIN_SIGMA = 6;
/** Percentile taken as the "bright" level (dots cover ~1-3 % of the frame). */
const BRIGHT_PERCENTILE = 0.998;
/** Components smaller than this are noise, pixels. */
export const DOT_MIN_AREA_PX = 4;
/** Components larger than this are flare, merged dots or reflections, pixels. */
export const DOT_MAX_AREA_PX = 400;
/** Largest axis ratio (sqrt of the second-moment eigenvalue ratio) of a dot; streaks are rejected. */
export const DOT_MAX_ELONGATION = 2.2;
/** Centroid window half-size = this x the blob's equivalent radius + WINDOW_PAD_PX. */
const WINDOW_RADIUS_FACTOR = 1.6;
const WINDOW_PAD_PX = 2;
/** Re-centring passes of the windowed centroid. */
const CENTROID_PASSES = 3;

/** An 8-bit grayscale image, row-major. */
export interface GrayImage {
  widthPx: number;
  heightPx: number;
  data: Uint8Array;
}

/** A detected dot. */
export interface DetectedDot {
  /** Sub-pixel centroid, pixels. */
  xPx: number;
  yPx: number;
  /** Thresholded area, pixels. */
  areaPx: number;
  /** Background-subtracted flux in the centroid window, DN. */
  fluxDn: number;
}

/** Options of detectDots (defaults: the constants above). */
export interface DotDetectionOptions {
  minAreaPx?: number;
  maxAreaPx?: number;
  maxElongation?: number;
}

/** Result of detectDots: accepted dots and how many blobs were rejected by size or shape. */
export interface DotDetection {
  dots: DetectedDot[];
  rejectedBlobs: number;
  /** Background level and its noise sigma, DN. */
  backgroundDn: number;
  noiseDn: number;
}

/** Finds the dots of a capture. */
export function detectDots(image: GrayImage, options: DotDetectionOptions = {}): DotDetection {
  const { widthPx: w, heightPx: h, data } = image;
  if (!(data instanceof Uint8Array)) throw new TypeError(`detectDots: 'image.data' must be a Uint8Array`);
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1 || data.length !== w * h) {
    throw new RangeError(`detectDots: 'image' must be widthPx x heightPx = ${w} x ${h} = ${w * h} bytes, got ${data.length}`);
  }
  const minArea = options.minAreaPx ?? DOT_MIN_AREA_PX;
  const maxArea = options.maxAreaPx ?? DOT_MAX_AREA_PX;
  const maxElongation = options.maxElongation ?? DOT_MAX_ELONGATION;
  const hist = new Float64Array(256);
  for (let k = 0; k < data.length; k++) hist[data[k]!]!++;
  const percentile = (p: number): number => {
    let acc = 0;
    const target = p * data.length;
    for (let v = 0; v < 256; v++) if ((acc += hist[v]!) >= target) return v;
    return 255;
  };
  const bg = percentile(0.5);
  const noise = Math.max(0.5, (percentile(0.5 + 0.3413) - percentile(0.5 - 0.3413)) / 2);
  const bright = percentile(BRIGHT_PERCENTILE);
  const threshold = bg + Math.max(THRESHOLD_MIN_SIGMA * noise, THRESHOLD_FRACTION * (bright - bg));

  const labels = new Int32Array(w * h);
  const stack = new Int32Array(w * h);
  const dots: DetectedDot[] = [];
  let rejected = 0;
  let label = 0;
  for (let start = 0; start < w * h; start++) {
    if (labels[start] !== 0 || data[start]! <= threshold) continue;
    label++;
    let top = 0;
    stack[top++] = start;
    labels[start] = label;
    let area = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, sw = 0;
    let touchesBorder = false;
    while (top > 0) {
      const p = stack[--top]!;
      const x = p % w, y = (p - x) / w;
      const wt = data[p]! - bg;
      area++;
      sw += wt; sx += wt * x; sy += wt * y; sxx += wt * x * x; syy += wt * y * y; sxy += wt * x * y;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) touchesBorder = true;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const q = yy * w + xx;
          if (labels[q] === 0 && data[q]! > threshold) {
            labels[q] = label;
            stack[top++] = q;
          }
        }
      }
    }
    if (area < minArea || area > maxArea || touchesBorder) {
      rejected++;
      continue;
    }
    const cx = sx / sw, cy = sy / sw;
    const vxx = sxx / sw - cx * cx, vyy = syy / sw - cy * cy, vxy = sxy / sw - cx * cy;
    const tr = vxx + vyy, disc = Math.sqrt(Math.max(0, ((vxx - vyy) / 2) ** 2 + vxy * vxy));
    const l1 = tr / 2 + disc, l2 = Math.max(1e-9, tr / 2 - disc);
    if (Math.sqrt(l1 / l2) > maxElongation) {
      rejected++;
      continue;
    }
    const refined = windowedCentroid(image, cx + 0.5, cy + 0.5, WINDOW_RADIUS_FACTOR * Math.sqrt(area / Math.PI) + WINDOW_PAD_PX);
    if (refined === undefined) {
      rejected++;
      continue;
    }
    dots.push({ xPx: refined[0], yPx: refined[1], areaPx: area, fluxDn: refined[2] });
  }
  return { dots, rejectedBlobs: rejected, backgroundDn: bg, noiseDn: noise };
}

/**
 * Centroid over a square window around (x, y) with the window's border ring mean as background;
 * re-centred CENTROID_PASSES times. Returns [x, y, flux] or undefined near the image edge.
 */
function windowedCentroid(image: GrayImage, x: number, y: number, radiusPx: number): [number, number, number] | undefined {
  const { widthPx: w, heightPx: h, data } = image;
  const r = Math.ceil(radiusPx);
  let cx = x, cy = y, flux = 0;
  for (let pass = 0; pass < CENTROID_PASSES; pass++) {
    const ix = Math.floor(cx), iy = Math.floor(cy);
    const x0 = ix - r, x1 = ix + r, y0 = iy - r, y1 = iy + r;
    if (x0 < 0 || y0 < 0 || x1 >= w || y1 >= h) return undefined;
    let ring = 0, ringCount = 0;
    for (let yy = y0; yy <= y1; yy++) {
      for (let xx = x0; xx <= x1; xx++) {
        if (yy === y0 || yy === y1 || xx === x0 || xx === x1) {
          ring += data[yy * w + xx]!;
          ringCount++;
        }
      }
    }
    const bg = ring / ringCount;
    let sw = 0, sx = 0, sy = 0;
    for (let yy = y0; yy <= y1; yy++) {
      for (let xx = x0; xx <= x1; xx++) {
        const wt = data[yy * w + xx]! - bg;
        sw += wt;
        sx += wt * (xx + 0.5);
        sy += wt * (yy + 0.5);
      }
    }
    if (!(sw > 0)) return undefined;
    cx = sx / sw;
    cy = sy / sw;
    flux = sw;
  }
  return [cx, cy, flux];
}
