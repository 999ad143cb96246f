/**
 * Bird's-eye view (inverse perspective mapping) of the road plane and a lateral ridge filter on it.
 *
 * Grid (vehicle frame, metres): row i at x = xNearM + i * dxM (row 0 nearest), column j at
 * y = yHalfM - j * dyM (column 0 leftmost, +y). Each cell holds the brightness of the image pixel
 * its centre projects to (nearest neighbour; lookup built once per image layout). Brightness is
 * (R + G) / 2 for colour images, so white and yellow paint both stand out from grey asphalt.
 */
import type { ImageView } from '../../pipeline/image.js';
import { createPixelPoint, type CameraModel } from '../world/camera-model.js';

export interface BirdsEyeGrid {
  /** Nearest and farthest x (m). */
  xNearM: number;
  xFarM: number;
  /** Longitudinal cell size (m). */
  dxM: number;
  /** Lateral half-width (m): y in [-yHalfM, yHalfM]. */
  yHalfM: number;
  /** Lateral cell size (m). */
  dyM: number;
}

/** Painted lane lines are 0.10-0.15 m wide (MUTCD 3A.06: 4-6 in); centre window of the ridge filter (m). */
export const RIDGE_CENTRE_WIDTH_M = 0.15;
/** Width of each flanking window (m): wide enough to average asphalt texture, narrow enough to stay in the lane. */
export const RIDGE_SIDE_WIDTH_M = 0.2;
/**
 * Paint lies on one surface, so both flanks are alike; edges of cars, kerbs and shadows are bright on
 * one side only. The response loses this fraction of |left - right| (unitless). Not 1: a white line
 * (200) between asphalt (90) and a lighter concrete shoulder (140) must keep a response above
 * MIN_RIDGE_CONTRAST (200 - 140 - 0.5 * 50 = 35).
 */
export const RIDGE_ASYMMETRY_PENALTY = 0.5;

/**
 * A cell is used only if its pixel maps back to it within this fraction of its distance (unitless):
 * beyond the lens's field of view a distortion polynomial folds back, projecting far-off road points
 * into the image at pixels that belong to other points.
 */
export const ROUND_TRIP_TOLERANCE = 0.01;

const _px = createPixelPoint();
const _p = { x: 0, y: 0, z: 0 };
const _back = { x: 0, y: 0, z: 0 };

export class BirdsEyeView {
  readonly grid: Readonly<BirdsEyeGrid>;
  readonly rows: number;
  readonly cols: number;
  /** Brightness per cell (0..255), NaN where the cell is outside the image. */
  readonly gray: Float32Array;
  /** Ridge response per cell: min(centre - left, centre - right) - RIDGE_ASYMMETRY_PENALTY |left - right|, >= 0; 0 where undefined. */
  readonly ridge: Float32Array;
  /** 1 where the cell projects inside the image. */
  readonly valid: Uint8Array;
  readonly #uPx: Float32Array;
  readonly #vPx: Float32Array;
  readonly #cameraWidth: number;
  readonly #cameraHeight: number;
  #index: Int32Array;
  /** Image layout the index map was built for: width, height, rowStride, pixelStride. */
  readonly #layout = new Int32Array(4);
  readonly #prefix: Float64Array;
  readonly #prefixValid: Int32Array;
  readonly #centreHalfCells: number;
  readonly #sideCells: number;

  constructor(camera: CameraModel, grid: BirdsEyeGrid) {
    const where = 'BirdsEyeView';
    if (!(grid.xFarM > grid.xNearM && grid.xNearM > 0)) throw new RangeError(`${where}: fields 'xNearM'/'xFarM' must satisfy 0 < xNearM < xFarM, got ${grid.xNearM}/${grid.xFarM}`);
    for (const key of ['dxM', 'dyM', 'yHalfM'] as const) {
      if (!(grid[key] > 0)) throw new RangeError(`${where}: field '${key}' must be > 0, got ${grid[key]}`);
    }
    this.grid = { ...grid };
    this.rows = Math.floor((grid.xFarM - grid.xNearM) / grid.dxM) + 1;
    this.cols = Math.floor((2 * grid.yHalfM) / grid.dyM) + 1;
    const cells = this.rows * this.cols;
    this.gray = new Float32Array(cells);
    this.ridge = new Float32Array(cells);
    this.valid = new Uint8Array(cells);
    this.#uPx = new Float32Array(cells);
    this.#vPx = new Float32Array(cells);
    this.#index = new Int32Array(cells);
    this.#prefix = new Float64Array(this.cols + 1);
    this.#prefixValid = new Int32Array(this.cols + 1);
    this.#cameraWidth = camera.intrinsics.width;
    this.#cameraHeight = camera.intrinsics.height;
    this.#centreHalfCells = Math.max(1, Math.round(RIDGE_CENTRE_WIDTH_M / grid.dyM / 2));
    this.#sideCells = Math.max(2, Math.round(RIDGE_SIDE_WIDTH_M / grid.dyM));
    for (let i = 0; i < this.rows; i++) {
      for (let j = 0; j < this.cols; j++) {
        const k = i * this.cols + j;
        _p.x = this.xOfRow(i);
        _p.y = this.yOfCol(j);
        _p.z = 0;
        const ok =
          camera.projectVehiclePoint(_p, _px) &&
          _px.uPx >= 0 &&
          _px.vPx >= 0 &&
          _px.uPx <= this.#cameraWidth - 1 &&
          _px.vPx <= this.#cameraHeight - 1 &&
          camera.pixelToGround(_px.uPx, _px.vPx, _back) &&
          Math.hypot(_back.x - _p.x, _back.y - _p.y) <= ROUND_TRIP_TOLERANCE * Math.hypot(_p.x, _p.y);
        this.valid[k] = ok ? 1 : 0;
        this.#uPx[k] = ok ? _px.uPx : -1;
        this.#vPx[k] = ok ? _px.vPx : -1;
      }
    }
  }

  xOfRow(i: number): number {
    return this.grid.xNearM + i * this.grid.dxM;
  }

  yOfCol(j: number): number {
    return this.grid.yHalfM - j * this.grid.dyM;
  }

  /** Column of lateral position y (fractional). */
  colOfY(yM: number): number {
    return (this.grid.yHalfM - yM) / this.grid.dyM;
  }

  /** Samples `image` (rgb8, rgba8 or gray8, any size with the camera's aspect ratio) into `gray`, then fills `ridge`. */
  update(image: ImageView): void {
    this.#ensureLayout(image);
    const { data, offset, format } = image;
    const colour = format !== 'gray8';
    const index = this.#index, gray = this.gray;
    for (let k = 0; k < index.length; k++) {
      const idx = index[k]!;
      if (idx < 0) {
        gray[k] = NaN;
        continue;
      }
      const at = offset + idx;
      gray[k] = colour ? 0.5 * (data[at]! + data[at + 1]!) : data[at]!;
    }
    this.#ridgeFilter();
  }

  #ensureLayout(image: ImageView): void {
    const layout = this.#layout;
    if (layout[0] === image.width && layout[1] === image.height && layout[2] === image.rowStride && layout[3] === image.pixelStride) return;
    const sx = image.width / this.#cameraWidth, sy = image.height / this.#cameraHeight;
    if (Math.abs(sx - sy) > 0.01 * sx) {
      throw new RangeError(
        `BirdsEyeView.update: image ${image.width}x${image.height} does not have the camera's aspect ratio (${this.#cameraWidth}x${this.#cameraHeight})`,
      );
    }
    for (let k = 0; k < this.#index.length; k++) {
      if (!this.valid[k]) {
        this.#index[k] = -1;
        continue;
      }
      // Pixel centres: camera pixel u covers image pixels [u*sx, (u+1)*sx).
      const u = Math.min(image.width - 1, Math.max(0, Math.round((this.#uPx[k]! + 0.5) * sx - 0.5)));
      const v = Math.min(image.height - 1, Math.max(0, Math.round((this.#vPx[k]! + 0.5) * sy - 0.5)));
      this.#index[k] = v * image.rowStride + u * image.pixelStride;
    }
    layout[0] = image.width;
    layout[1] = image.height;
    layout[2] = image.rowStride;
    layout[3] = image.pixelStride;
  }

  #ridgeFilter(): void {
    const { rows, cols, gray, ridge } = this;
    const prefix = this.#prefix, prefixValid = this.#prefixValid;
    const hc = this.#centreHalfCells, sw = this.#sideCells;
    const nCentre = 2 * hc + 1;
    for (let i = 0; i < rows; i++) {
      const base = i * cols;
      prefix[0] = 0;
      prefixValid[0] = 0;
      for (let j = 0; j < cols; j++) {
        const g = gray[base + j]!;
        const ok = g === g;
        prefix[j + 1] = prefix[j]! + (ok ? g : 0);
        prefixValid[j + 1] = prefixValid[j]! + (ok ? 1 : 0);
      }
      for (let j = 0; j < cols; j++) {
        const c0 = j - hc, c1 = j + hc + 1;
        const l0 = c0 - sw, r1 = c1 + sw;
        if (l0 < 0 || r1 > cols || prefixValid[r1]! - prefixValid[l0]! !== r1 - l0) {
          ridge[base + j] = 0;
          continue;
        }
        const centre = (prefix[c1]! - prefix[c0]!) / nCentre;
        const left = (prefix[c0]! - prefix[l0]!) / sw;
        const right = (prefix[r1]! - prefix[c1]!) / sw;
        const r = Math.min(centre - left, centre - right) - RIDGE_ASYMMETRY_PENALTY * Math.abs(left - right);
        ridge[base + j] = r > 0 ? r : 0;
      }
    }
  }
}
