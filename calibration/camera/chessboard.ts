/**
 * Chessboard detection: X-corner candidates from the ChESS response (Bennett & Lasenby 2014) on a
 * lightly blurred image, then a lattice grown from a seed corner by predicting each neighbour from
 * the nodes already found, a colour-alternation check of every node, and finally sub-pixel
 * refinement. Pixel convention: OpenCV's, pixel centres at integer coordinates, x right, y down.
 *
 * Corners come back row-major: corner (i, j), i along the `cols` inner corners and j along the `rows`,
 * at index j * cols + i, matching object points (i * square, j * square, 0). The order is right-handed
 * (i to j turns clockwise in the image, so the board's z axis points away from the camera) and, when
 * cols + rows is odd, the square outside corner (0, 0) is the dark one (a 180 degree turn of such a
 * board swaps colours, so this pins the order down); otherwise corner (0, 0) is the one nearest the
 * image's top-left.
 */
import { gaussianBlur, sampleBilinear, type GrayImage } from './image.js';
import { refineCorners, type SubpixelOptions } from './subpixel.js';

/** Blur before the ChESS response (pixels): suppresses JPEG noise without moving corners. */
export const CHESS_BLUR_SIGMA_PX = 1;
/** ChESS ring radius (pixels); board squares must be larger than about 2.5x this. */
export const CHESS_RING_RADIUS_PX = 5;
/** Non-maximum suppression radius (pixels) for corner candidates. */
export const CANDIDATE_NMS_RADIUS_PX = 3;
/** A candidate's ChESS response must reach this fraction of the image's strongest. */
export const CANDIDATE_RELATIVE_RESPONSE = 0.08;
/** A neighbour is accepted within this fraction of the local lattice step from its prediction. */
export const LATTICE_TOLERANCE = 0.3;
/** The four lattice neighbours of a corner, as (di, dj) steps. */
const LATTICE_NEIGHBOURS = [
  [1, 0],
  [-1, 0],
  [0, 1],
  [0, -1],
] as const;
/** Seeds tried (strongest candidates first) before giving up. */
export const MAX_SEEDS = 20;
/** Quadrant samples sit this fraction of the lattice diagonal from the corner. */
export const QUADRANT_SAMPLE_FRACTION = 0.3;
/** Least dark/bright contrast at a corner (grey levels of 255); below it the node is not a board corner. */
export const MIN_CORNER_CONTRAST = 12;
/** Same-colour quadrants may differ by at most this fraction of the corner contrast (rejects board-edge junctions). */
export const MAX_QUADRANT_MISMATCH = 0.5;
/** Estimated edge blur (Gaussian sigma, pixels) above which a failed detection is reported as blurred. */
export const BLUR_LIMIT_PX = 2.5;

/** The inner-corner count of a chessboard. */
export interface BoardSize {
  /** Inner corners along a row. */
  cols: number;
  /** Inner corners along a column. */
  rows: number;
}

/** A found board. */
export interface ChessboardFound {
  found: true;
  /** cols * rows corners as (x, y) pairs in pixels, row-major (see the module comment). */
  corners: Float64Array;
  /** Corner candidates seen in the image. */
  candidateCount: number;
}

/** A board not found, with the reason in words. */
export interface ChessboardNotFound {
  found: false;
  /** Why, e.g. 'no 9x6 chessboard found (12 corner candidates)' or 'too blurred: ...'. */
  reason: string;
  /** Corner candidates seen in the image. */
  candidateCount: number;
}

/** Result of detectChessboard. */
export type ChessboardDetection = ChessboardFound | ChessboardNotFound;

/** Options of detectChessboard. */
export interface DetectChessboardOptions {
  /** Sub-pixel refinement options; `false` skips refinement (pixel-level corners). */
  subpixel?: SubpixelOptions | false;
}

interface Candidate {
  x: number;
  y: number;
  response: number;
}

const RING: readonly (readonly [number, number])[] = (() => {
  const out: [number, number][] = [];
  for (let k = 0; k < 16; k++) {
    const angle = (k * Math.PI) / 8;
    out.push([Math.round(CHESS_RING_RADIUS_PX * Math.cos(angle)), Math.round(CHESS_RING_RADIUS_PX * Math.sin(angle))]);
  }
  return out;
})();

/** ChESS response: high at X-junctions, low on edges, blobs and L-corners. */
function chessResponse(image: GrayImage): Float32Array {
  const { widthPx: w, heightPx: h, data } = image;
  const out = new Float32Array(w * h);
  const offsets = RING.map(([dx, dy]) => dy * w + dx);
  const ring = new Float64Array(16);
  const margin = CHESS_RING_RADIUS_PX + 1;
  for (let y = margin; y < h - margin; y++) {
    for (let x = margin; x < w - margin; x++) {
      const c = y * w + x;
      let ringSum = 0;
      for (let k = 0; k < 16; k++) ringSum += ring[k] = data[c + offsets[k]!]!;
      let sumResponse = 0;
      for (let n = 0; n < 4; n++) sumResponse += Math.abs(ring[n]! + ring[n + 8]! - ring[n + 4]! - ring[n + 12]!);
      let diffResponse = 0;
      for (let n = 0; n < 8; n++) diffResponse += Math.abs(ring[n]! - ring[n + 8]!);
      const local = (data[c]! + data[c - 1]! + data[c + 1]! + data[c - w]! + data[c + w]!) / 5;
      const meanResponse = Math.abs(ringSum / 16 - local);
      out[c] = sumResponse - diffResponse - 16 * meanResponse;
    }
  }
  return out;
}

function findCandidates(response: Float32Array, w: number, h: number): Candidate[] {
  let max = 0;
  for (const r of response) max = Math.max(max, r);
  if (!(max > 0)) return [];
  const threshold = CANDIDATE_RELATIVE_RESPONSE * max;
  const rad = CANDIDATE_NMS_RADIUS_PX;
  const out: Candidate[] = [];
  for (let y = rad; y < h - rad; y++) {
    for (let x = rad; x < w - rad; x++) {
      const r = response[y * w + x]!;
      if (r < threshold) continue;
      let isMax = true;
      for (let dy = -rad; dy <= rad && isMax; dy++) {
        for (let dx = -rad; dx <= rad; dx++) {
          const other = response[(y + dy) * w + x + dx]!;
          // Ties broken by position so a plateau yields one candidate.
          if (other > r || (other === r && (dy < 0 || (dy === 0 && dx < 0)))) {
            isMax = false;
            break;
          }
        }
      }
      if (!isMax) continue;
      // Parabolic peak interpolation: candidates to a fraction of a pixel for the lattice fit.
      const l = response[y * w + x - 1]!;
      const rr = response[y * w + x + 1]!;
      const u = response[(y - 1) * w + x]!;
      const d = response[(y + 1) * w + x]!;
      const ox = l - 2 * r + rr < 0 ? (0.5 * (l - rr)) / (l - 2 * r + rr) : 0;
      const oy = u - 2 * r + d < 0 ? (0.5 * (u - d)) / (u - 2 * r + d) : 0;
      out.push({ x: x + ox, y: y + oy, response: r });
    }
  }
  return out.sort((a, b) => b.response - a.response);
}

const KEY_OFFSET = 1 << 10;
const key = (i: number, j: number): number => (i + KEY_OFFSET) * (KEY_OFFSET * 2) + (j + KEY_OFFSET);

/** A lattice: grid index (i, j) to candidate index. */
class Lattice {
  readonly nodes = new Map<number, number>();
  readonly #candidates: readonly Candidate[];

  constructor(candidates: readonly Candidate[]) {
    this.#candidates = candidates;
  }

  get(i: number, j: number): Candidate | undefined {
    const index = this.nodes.get(key(i, j));
    return index === undefined ? undefined : this.#candidates[index];
  }

  *entries(): Generator<[number, number, Candidate]> {
    for (const [k, index] of this.nodes) {
      const i = Math.floor(k / (KEY_OFFSET * 2)) - KEY_OFFSET;
      const j = (k % (KEY_OFFSET * 2)) - KEY_OFFSET;
      yield [i, j, this.#candidates[index]!];
    }
  }

  bounds(): { iMin: number; iMax: number; jMin: number; jMax: number } {
    let iMin = Infinity;
    let iMax = -Infinity;
    let jMin = Infinity;
    let jMax = -Infinity;
    for (const [i, j] of this.entries()) {
      iMin = Math.min(iMin, i);
      iMax = Math.max(iMax, i);
      jMin = Math.min(jMin, j);
      jMax = Math.max(jMax, j);
    }
    return { iMin, iMax, jMin, jMax };
  }

  /** The lattice step from (i, j) in direction (di, dj), from the nodes around it (undefined if none). */
  step(i: number, j: number, di: number, dj: number): [number, number] | undefined {
    const p = this.get(i, j);
    if (!p) return undefined;
    const fwd = this.get(i + di, j + dj);
    if (fwd) return [fwd.x - p.x, fwd.y - p.y];
    const back = this.get(i - di, j - dj);
    if (back) return [p.x - back.x, p.y - back.y];
    for (const [ei, ej] of [
      [dj, di],
      [-dj, -di],
    ] as const) {
      const m = this.get(i + ei, j + ej);
      const md = this.get(i + ei + di, j + ej + dj);
      if (m && md) return [md.x - m.x, md.y - m.y];
    }
    return undefined;
  }
}

function nearestCandidate(candidates: readonly Candidate[], used: Uint8Array, x: number, y: number, radius: number): number {
  let best = -1;
  let bestD2 = radius * radius;
  for (let k = 0; k < candidates.length; k++) {
    if (used[k]) continue;
    const c = candidates[k]!;
    const d2 = (c.x - x) ** 2 + (c.y - y) ** 2;
    if (d2 < bestD2) {
      bestD2 = d2;
      best = k;
    }
  }
  return best;
}

/** Grows a lattice from a seed and two basis neighbours. */
function growLattice(candidates: readonly Candidate[], seed: number, a: number, b: number, maxExtent: number): Lattice {
  const lattice = new Lattice(candidates);
  const used = new Uint8Array(candidates.length);
  const place = (i: number, j: number, k: number): void => {
    lattice.nodes.set(key(i, j), k);
    used[k] = 1;
  };
  place(0, 0, seed);
  place(1, 0, a);
  place(0, 1, b);
  const s = candidates[seed]!;
  const basis: Record<string, [number, number]> = {
    '1,0': [candidates[a]!.x - s.x, candidates[a]!.y - s.y],
    '0,1': [candidates[b]!.x - s.x, candidates[b]!.y - s.y],
  };
  const queue: [number, number][] = [
    [0, 0],
    [1, 0],
    [0, 1],
  ];
  let iMin = 0;
  let iMax = 1;
  let jMin = 0;
  let jMax = 1;
  while (queue.length > 0) {
    const [i, j] = queue.shift()!;
    const p = lattice.get(i, j)!;
    for (const [di, dj] of LATTICE_NEIGHBOURS) {
      const ti = i + di;
      const tj = j + dj;
      if (lattice.get(ti, tj)) continue;
      if (Math.max(iMax, ti) - Math.min(iMin, ti) >= maxExtent || Math.max(jMax, tj) - Math.min(jMin, tj) >= maxExtent) continue;
      let step: [number, number];
      const back = lattice.get(i - di, j - dj);
      const local = back ? undefined : lattice.step(i, j, di, dj);
      if (back) step = [p.x - back.x, p.y - back.y];
      else if (local) step = local;
      else {
        const unit = basis[`${Math.abs(di)},${Math.abs(dj)}`]!;
        const sign = di + dj;
        step = [unit[0] * sign, unit[1] * sign];
      }
      const length = Math.hypot(step[0], step[1]);
      const k = nearestCandidate(candidates, used, p.x + step[0], p.y + step[1], LATTICE_TOLERANCE * length);
      if (k < 0) continue;
      place(ti, tj, k);
      iMin = Math.min(iMin, ti);
      iMax = Math.max(iMax, ti);
      jMin = Math.min(jMin, tj);
      jMax = Math.max(jMax, tj);
      queue.push([ti, tj]);
    }
  }
  return lattice;
}

/**
 * Colour check of a node: samples the four quadrants between the lattice directions. Returns +1 when
 * the quadrants towards +(u+v) and -(u+v) are bright, -1 when dark, 0 when the node is not a clean
 * X-corner (low contrast, or same-colour quadrants disagree, as at the board's outer edge).
 */
function polarity(image: GrayImage, lattice: Lattice, i: number, j: number): number {
  const p = lattice.get(i, j)!;
  const u = lattice.step(i, j, 1, 0);
  const v = lattice.step(i, j, 0, 1);
  if (!u || !v) return 0;
  const f = QUADRANT_SAMPLE_FRACTION;
  const at = (su: number, sv: number): number => sampleBilinear(image, p.x + f * (su * u[0] + sv * v[0]), p.y + f * (su * u[1] + sv * v[1]));
  const a1 = at(1, 1);
  const a2 = at(-1, -1);
  const b1 = at(1, -1);
  const b2 = at(-1, 1);
  const contrast = (a1 + a2 - b1 - b2) / 2;
  if (Math.abs(contrast) < MIN_CORNER_CONTRAST) return 0;
  if (Math.abs(a1 - a2) > MAX_QUADRANT_MISMATCH * Math.abs(contrast) || Math.abs(b1 - b2) > MAX_QUADRANT_MISMATCH * Math.abs(contrast)) return 0;
  return Math.sign(contrast);
}

/** Removes nodes whose colours do not alternate like a chessboard's; returns the parity sign used (0 if the lattice is not a board). */
function checkColours(image: GrayImage, lattice: Lattice): number {
  const signs: [number, number, number][] = [];
  let votes = 0;
  for (const [i, j] of lattice.entries()) {
    const s = polarity(image, lattice, i, j) * ((i + j) % 2 === 0 ? 1 : -1);
    signs.push([i, j, s]);
    votes += s;
  }
  const parity = Math.sign(votes);
  if (parity === 0) return 0;
  const agree = signs.filter(([, , s]) => s === parity).length;
  // A sheared basis (u, u + v) alternates on only half of its nodes: not a chessboard lattice.
  if (agree < 0.75 * signs.length) return 0;
  for (const [i, j, s] of signs) if (s !== parity) lattice.nodes.delete(key(i, j));
  return parity;
}

/**
 * Trims boundary rows and columns holding fewer than half the nodes of the lattice's extent along
 * them: a stray junction beyond the board (its frame, the background) that happened to fall on the
 * lattice's continuation, while every row of a real board is complete.
 */
function trimSparseEdges(lattice: Lattice): void {
  for (let changed = true; changed && lattice.nodes.size > 0; ) {
    changed = false;
    const { iMin, iMax, jMin, jMax } = lattice.bounds();
    const lines: [boolean, number, number][] = [
      [true, iMin, jMax - jMin + 1],
      [true, iMax, jMax - jMin + 1],
      [false, jMin, iMax - iMin + 1],
      [false, jMax, iMax - iMin + 1],
    ];
    for (const [isColumn, index, extent] of lines) {
      const members = [...lattice.entries()].filter(([i, j]) => (isColumn ? i : j) === index);
      if (members.length < 0.5 * extent) {
        for (const [i, j] of members) lattice.nodes.delete(key(i, j));
        changed = true;
        break;
      }
    }
  }
}

/** A pixel rectangle, inclusive bounds. */
export interface PixelRegion {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Estimated blur of the sharpest edges in a region (default: the whole image) as a Gaussian sigma in
 * pixels: a step of height C blurred by sigma s has a steepest slope of C / (sqrt(2 pi) s), with C
 * from the 2nd-98th intensity percentiles and the slope from the 99.5th gradient percentile.
 * Infinity for a flat region.
 */
export function estimateEdgeBlurPx(image: GrayImage, region?: PixelRegion): number {
  const { widthPx: w, heightPx: h, data } = image;
  const x0 = Math.max(1, Math.floor(region?.x0 ?? 1));
  const y0 = Math.max(1, Math.floor(region?.y0 ?? 1));
  const x1 = Math.min(w - 2, Math.ceil(region?.x1 ?? w - 2));
  const y1 = Math.min(h - 2, Math.ceil(region?.y1 ?? h - 2));
  const count = Math.max(0, x1 - x0 + 1) * Math.max(0, y1 - y0 + 1);
  if (count < 16) return Infinity;
  const values = new Float32Array(count);
  const gradients = new Float32Array(count);
  let n = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const c = y * w + x;
      values[n] = data[c]!;
      gradients[n++] = Math.hypot(data[c + 1]! - data[c - 1]!, data[c + w]! - data[c - w]!) / 2;
    }
  }
  values.sort();
  gradients.sort();
  const contrast = values[Math.floor(0.98 * (count - 1))]! - values[Math.floor(0.02 * (count - 1))]!;
  const gradient = gradients[Math.floor(0.995 * (count - 1))]!;
  if (!(gradient > 0) || !(contrast > 0)) return Infinity;
  return contrast / (Math.sqrt(2 * Math.PI) * gradient);
}

function lattices(image: GrayImage, candidates: readonly Candidate[], board: BoardSize): Lattice | undefined {
  const expected = board.cols * board.rows;
  const maxExtent = 2 * Math.max(board.cols, board.rows) + 2;
  let best: Lattice | undefined;
  const seen = new Uint8Array(candidates.length);
  const seeds = Math.min(candidates.length, MAX_SEEDS);
  for (let seed = 0; seed < seeds; seed++) {
    if (seen[seed]) continue;
    const s = candidates[seed]!;
    const neighbours = candidates
      .map((c, k) => ({ k, d: Math.hypot(c.x - s.x, c.y - s.y), dx: c.x - s.x, dy: c.y - s.y }))
      .filter((n) => n.k !== seed)
      .sort((p, q) => p.d - q.d)
      .slice(0, 8);
    const a = neighbours[0];
    if (!a) break;
    // Second basis vector: the nearest neighbours not collinear with the first; a diagonal choice is
    // caught by the colour check, so the three nearest are tried.
    const others = neighbours.filter((n) => n.k !== a.k && Math.abs((n.dx * a.dx + n.dy * a.dy) / (n.d * a.d)) < 0.8 && n.d < 2.5 * a.d).slice(0, 3);
    for (const b of others) {
      const lattice = growLattice(candidates, seed, a.k, b.k, maxExtent);
      if (lattice.nodes.size < 4 || checkColours(image, lattice) === 0) continue;
      trimSparseEdges(lattice);
      for (const index of lattice.nodes.values()) seen[index] = 1;
      if (!best || lattice.nodes.size > best.nodes.size) best = lattice;
      break;
    }
    if (best && best.nodes.size >= expected) break;
  }
  return best;
}

/** True when the lattice's next row or column on some side would fall outside the image. */
function touchesBorder(lattice: Lattice, image: GrayImage): boolean {
  const margin = CHESS_RING_RADIUS_PX + 1;
  for (const [i, j, p] of lattice.entries()) {
    for (const [di, dj] of LATTICE_NEIGHBOURS) {
      if (lattice.get(i + di, j + dj)) continue;
      const step = lattice.step(i, j, di, dj);
      if (!step) continue;
      const x = p.x + step[0];
      const y = p.y + step[1];
      if (x < margin || y < margin || x > image.widthPx - 1 - margin || y > image.heightPx - 1 - margin) return true;
    }
  }
  return false;
}

function checkBoardSize(board: BoardSize): void {
  for (const field of ['cols', 'rows'] as const) {
    const value = board[field];
    if (typeof value !== 'number') throw new TypeError(`detectChessboard: 'board.${field}' must be a number, got ${typeof value}`);
    if (!Number.isInteger(value) || value < 2 || value > 100) throw new RangeError(`detectChessboard: 'board.${field}' must be an integer in [2, 100], got ${value}`);
  }
}

/**
 * Finds the cols x rows inner corners of a chessboard in a grey image. Never throws for an image
 * without a board: the result says why (no board, wrong size, partly outside, too blurred).
 */
export function detectChessboard(image: GrayImage, board: BoardSize, options: DetectChessboardOptions = {}): ChessboardDetection {
  checkBoardSize(board);
  const { cols, rows } = board;
  const size = `${cols}x${rows}`;
  const blurred = gaussianBlur(image, CHESS_BLUR_SIGMA_PX);
  const candidates = findCandidates(chessResponse(blurred), image.widthPx, image.heightPx);
  const candidateCount = candidates.length;
  const fail = (reason: string): ChessboardNotFound => ({ found: false, reason, candidateCount });
  const lattice = lattices(blurred, candidates, board);
  const blurText = (): string => {
    const blurPx = estimateEdgeBlurPx(image);
    return blurPx > BLUR_LIMIT_PX ? `too blurred: edge blur ~${blurPx.toFixed(1)} px (limit ${BLUR_LIMIT_PX} px); ` : '';
  };
  if (!lattice) return fail(`${blurText()}no ${size} chessboard found (${candidateCount} corner candidates)`);
  const { iMin, iMax, jMin, jMax } = lattice.bounds();
  let width = iMax - iMin + 1;
  let height = jMax - jMin + 1;
  const count = lattice.nodes.size;
  const full = count === width * height;
  const transpose = !(width === cols && height === rows) && width === rows && height === cols;
  if (transpose) [width, height] = [height, width];
  const found = `a ${width}x${height} corner lattice (${count} corners)`;
  if (!(full && width === cols && height === rows)) {
    if (count < cols * rows && width <= Math.max(cols, rows) && height <= Math.max(cols, rows) && touchesBorder(lattice, image)) {
      return fail(`board partially outside the image: found ${found} reaching the image edge, expected ${size}`);
    }
    if (full) return fail(`wrong board size: found ${found}, expected ${size}`);
    return fail(`${blurText()}no complete ${size} chessboard: found ${count} corners, expected ${cols * rows} (${found.slice(2)})`);
  }
  // Index (i, j) of the board to lattice node.
  let corners: Float64Array = new Float64Array(2 * cols * rows);
  const nodeAt = (i: number, j: number, flipI: boolean, flipJ: boolean): Candidate => {
    const bi = flipI ? cols - 1 - i : i;
    const bj = flipJ ? rows - 1 - j : j;
    return transpose ? lattice.get(iMin + bj, jMin + bi)! : lattice.get(iMin + bi, jMin + bj)!;
  };
  const fill = (flipI: boolean, flipJ: boolean): void => {
    for (let j = 0; j < rows; j++) {
      for (let i = 0; i < cols; i++) {
        const c = nodeAt(i, j, flipI, flipJ);
        corners[2 * (j * cols + i)] = c.x;
        corners[2 * (j * cols + i) + 1] = c.y;
      }
    }
  };
  fill(false, false);
  const at = (i: number, j: number): [number, number] => [corners[2 * (j * cols + i)]!, corners[2 * (j * cols + i) + 1]!];
  const handedness = (): number => {
    const [x0, y0] = at(0, 0);
    const [x1, y1] = at(cols - 1, 0);
    const [x2, y2] = at(0, rows - 1);
    return (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0);
  };
  let flipJ = handedness() < 0;
  let flipI = false;
  fill(flipI, flipJ);
  // The square beyond corner (0, 0) (diagonally away from corner (1, 1)) against its neighbour
  // beyond the first row (towards +i, -j), which has the other colour.
  const outsideDark = (): boolean => {
    const [x0, y0] = at(0, 0);
    const [xi, yi] = at(1, 0);
    const [xj, yj] = at(0, 1);
    const f = QUADRANT_SAMPLE_FRACTION;
    const outside = sampleBilinear(blurred, x0 - f * (xi - x0 + xj - x0), y0 - f * (yi - y0 + yj - y0));
    const neighbour = sampleBilinear(blurred, x0 + f * (xi - x0 - (xj - x0)), y0 + f * (yi - y0 - (yj - y0)));
    return outside < neighbour;
  };
  const rotate = (cols + rows) % 2 === 1 ? !outsideDark() : at(0, 0)[0] + at(0, 0)[1] > at(cols - 1, rows - 1)[0] + at(cols - 1, rows - 1)[1];
  if (rotate) {
    flipI = !flipI;
    flipJ = !flipJ;
    fill(flipI, flipJ);
  }
  // A board found in a blurred image still has biased, noisy corners (motion blur is not symmetric).
  let bx0 = Infinity;
  let by0 = Infinity;
  let bx1 = -Infinity;
  let by1 = -Infinity;
  for (let k = 0; k < corners.length; k += 2) {
    bx0 = Math.min(bx0, corners[k]!);
    bx1 = Math.max(bx1, corners[k]!);
    by0 = Math.min(by0, corners[k + 1]!);
    by1 = Math.max(by1, corners[k + 1]!);
  }
  const boardBlurPx = estimateEdgeBlurPx(image, { x0: bx0, y0: by0, x1: bx1, y1: by1 });
  if (boardBlurPx > BLUR_LIMIT_PX) return fail(`too blurred: edge blur ~${boardBlurPx.toFixed(1)} px over the board (limit ${BLUR_LIMIT_PX} px)`);
  if (options.subpixel !== false) corners = refineCorners(image, corners, options.subpixel ?? {});
  return { found: true, corners, candidateCount };
}
