/**
 * Residual heat-maps for calibration reports: a grid of non-negative values (e.g. arcmin across the
 * panel, or pixels across the camera image) as a PNG, dark blue = 0 to yellow = `maxValue`, with
 * cells that have no measurement in mid grey.
 */
import sharp from 'sharp';

/** Options of heatmapPng. */
export interface HeatmapOptions {
  /** Value drawn in the hottest colour; larger values saturate. Default: the largest finite value. */
  maxValue?: number;
  /** Output pixels per grid cell on each axis. Default 16. */
  cellPx?: number;
}

/** Colour stops (viridis-like): readable in print and for colour-blind readers. */
const STOPS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];
const NO_DATA_RGB = [128, 128, 128] as const;

/** Colour of `t` in [0, 1] on the heat-map scale. */
export function heatColour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const a = STOPS[i]!;
  const b = STOPS[i + 1]!;
  return [0, 1, 2].map((c) => Math.round(a[c]! + (b[c]! - a[c]!) * f)) as [number, number, number];
}

/**
 * Encodes `values` (cols x rows, row-major, row 0 at the top; NaN = no measurement) as a heat-map PNG.
 */
export async function heatmapPng(values: Float64Array | Float32Array, cols: number, rows: number, options: HeatmapOptions = {}): Promise<Buffer> {
  if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) {
    throw new RangeError(`heatmapPng: 'cols' and 'rows' must be positive integers, got ${cols} x ${rows}`);
  }
  if (values.length !== cols * rows) throw new RangeError(`heatmapPng: 'values' must have ${cols * rows} values (cols x rows), got ${values.length}`);
  const cellPx = options.cellPx ?? 16;
  let maxValue = options.maxValue ?? 0;
  if (options.maxValue === undefined) for (const v of values) if (Number.isFinite(v)) maxValue = Math.max(maxValue, v);
  const widthPx = cols * cellPx;
  const heightPx = rows * cellPx;
  const rgb = Buffer.alloc(widthPx * heightPx * 3);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c]!;
      const colour = Number.isFinite(v) ? heatColour(maxValue > 0 ? v / maxValue : 0) : NO_DATA_RGB;
      for (let y = r * cellPx; y < (r + 1) * cellPx; y++) {
        for (let x = c * cellPx; x < (c + 1) * cellPx; x++) rgb.set(colour, (y * widthPx + x) * 3);
      }
    }
  }
  return sharp(rgb, { raw: { width: widthPx, height: heightPx, channels: 3 } }).png().toBuffer();
}
