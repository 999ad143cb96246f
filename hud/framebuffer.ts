/**
 * RGBA HUD frames to a Linux framebuffer device (fbdev, e.g. `/dev/fb0`).
 *
 * Geometry comes from sysfs (`/sys/class/graphics/fbN/virtual_size`, `bits_per_pixel`, `stride`)
 * when the device is `/dev/fbN` and the files exist, else from explicit options (which also override
 * sysfs). Pixel formats: 32 bpp little-endian XRGB8888 (bytes B, G, R, X; X written 255), 24 bpp
 * (B, G, R) and 16 bpp RGB565 little-endian; `channelOrder: 'rgb'` swaps red and blue for the rare
 * panels wired the other way (sysfs does not say which; FBIOGET_VSCREENINFO would).
 *
 * A frame is placed at the top-left corner of the framebuffer and clipped to it; what it does not
 * cover is black. Conversion is synchronous into a back buffer, the device write asynchronous from a
 * front buffer: a frame given while a write is in flight replaces any frame still waiting (latest
 * wins, counted in `stats.framesSuperseded`), so the caller's RGBA buffer may be reused at once.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Bits per pixel this module writes. */
export const FRAMEBUFFER_BITS_PER_PIXEL: readonly number[] = [16, 24, 32];
/** Largest framebuffer side accepted, pixels. */
export const FRAMEBUFFER_MAX_SIDE_PX = 16384;
const SYSFS_GRAPHICS_DIR = '/sys/class/graphics';

/** Framebuffer layout. */
export interface FramebufferGeometry {
  /** Visible width, pixels. */
  widthPx: number;
  /** Visible height, pixels. */
  heightPx: number;
  /** 16 (RGB565), 24 (BGR) or 32 (BGRX). */
  bitsPerPixel: number;
  /** Bytes per row (>= widthPx * bytes per pixel); default widthPx * bytes per pixel. */
  strideBytes: number;
}

/** Options of `FramebufferOutput.create`; defaults in `DEFAULTS`. */
export interface FramebufferOutputOptions {
  /** Device (or, for tests, a regular file) to write; it must exist. */
  path: string;
  /** Explicit geometry; each given field overrides what sysfs says. Required when sysfs is unavailable. */
  geometry?: Partial<FramebufferGeometry>;
  /** sysfs folder of the device; default `/sys/class/graphics/<basename of path>`. */
  sysfsDir?: string;
  /** Byte order of the colour channels in memory: 'bgr' (default, the usual XRGB8888 / RGB565) or 'rgb'. */
  channelOrder?: 'bgr' | 'rgb';
}

/** Counters of a framebuffer output. */
export interface FramebufferStats {
  /** Frames (and blanks) written to the device. */
  framesWritten: number;
  /** Frames replaced by a newer one before their write started. */
  framesSuperseded: number;
  /** Device writes that failed (each logged through `onError`). */
  writeErrors: number;
}

const DEFAULTS = { channelOrder: 'bgr' as const };

/** Writes RGBA frames to a framebuffer device. Create with `create`, release with `dispose`. */
export class FramebufferOutput {
  /** Device path. */
  readonly path: string;
  /** Geometry in use. */
  readonly geometry: Readonly<FramebufferGeometry>;
  /** Colour channel order in memory. */
  readonly channelOrder: 'bgr' | 'rgb';
  /** Called with each failed device write (the output keeps going). Default: none. */
  onError: ((error: Error) => void) | undefined;

  readonly #handle: FileHandle;
  #front: Uint8Array;
  #back: Uint8Array;
  #pending = false;
  #writing: Promise<void> | undefined;
  #disposed = false;
  readonly #stats: FramebufferStats = { framesWritten: 0, framesSuperseded: 0, writeErrors: 0 };

  private constructor(devicePath: string, handle: FileHandle, geometry: FramebufferGeometry, channelOrder: 'bgr' | 'rgb') {
    this.path = devicePath;
    this.#handle = handle;
    this.geometry = Object.freeze({ ...geometry });
    this.channelOrder = channelOrder;
    const bytes = geometry.strideBytes * geometry.heightPx;
    this.#front = new Uint8Array(bytes);
    this.#back = new Uint8Array(bytes);
  }

  /** Resolves the geometry (sysfs, then options) and opens the device for writing. */
  static async create(options: FramebufferOutputOptions): Promise<FramebufferOutput> {
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new TypeError(`FramebufferOutput.create: 'path' must be a non-empty string, got ${String(options?.path)}`);
    }
    const channelOrder = options.channelOrder ?? DEFAULTS.channelOrder;
    if (channelOrder !== 'bgr' && channelOrder !== 'rgb') {
      throw new RangeError(`FramebufferOutput.create: 'channelOrder' must be 'bgr' or 'rgb', got '${String(channelOrder)}'`);
    }
    const sysfsDir = options.sysfsDir ?? path.join(SYSFS_GRAPHICS_DIR, path.basename(options.path));
    const geometry = resolveGeometry(options.path, await readSysfsGeometry(sysfsDir), options.geometry ?? {});
    let handle: FileHandle;
    try {
      handle = await open(options.path, 'r+');
    } catch (error) {
      throw new Error(`FramebufferOutput.create: cannot open '${options.path}' for writing (${(error as Error).message})`, { cause: error });
    }
    return new FramebufferOutput(options.path, handle, geometry, channelOrder);
  }

  /** Counters (a snapshot). */
  get stats(): FramebufferStats {
    return { ...this.#stats };
  }

  /**
   * Converts an RGBA frame (row 0 = top) into the device format now and writes it asynchronously.
   * `rgba` is not kept: the caller may reuse it as soon as this returns.
   */
  write(rgba: Uint8Array, widthPx: number, heightPx: number): void {
    if (this.#disposed) throw new Error(`FramebufferOutput.write: '${this.path}' is disposed`);
    if (!Number.isInteger(widthPx) || !Number.isInteger(heightPx) || widthPx < 1 || heightPx < 1) {
      throw new RangeError(`FramebufferOutput.write: frame size must be positive integers, got ${widthPx}x${heightPx}`);
    }
    if (rgba.length < widthPx * heightPx * 4) {
      throw new RangeError(`FramebufferOutput.write: 'rgba' must hold ${widthPx}x${heightPx}x4 = ${widthPx * heightPx * 4} bytes, got ${rgba.length}`);
    }
    convertRgba(rgba, widthPx, heightPx, this.#back, this.geometry, this.channelOrder);
    this.#submit();
  }

  /** Writes black (no light) over the whole framebuffer. */
  blank(): void {
    if (this.#disposed) throw new Error(`FramebufferOutput.blank: '${this.path}' is disposed`);
    this.#back.fill(0);
    this.#submit();
  }

  /** Resolves when every frame given so far has been written (or superseded). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /** Waits for the last write and closes the device. Does not blank it (the controller does). */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.flush();
    await this.#handle.close();
  }

  #submit(): void {
    if (this.#pending) this.#stats.framesSuperseded++;
    this.#pending = true;
    this.#writing ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending) {
        this.#pending = false;
        const frame = this.#back;
        this.#back = this.#front;
        this.#front = frame;
        try {
          await this.#handle.write(frame, 0, frame.length, 0);
          this.#stats.framesWritten++;
        } catch (error) {
          this.#stats.writeErrors++;
          this.onError?.(new Error(`FramebufferOutput: write to '${this.path}' failed (${(error as Error).message})`, { cause: error }));
        }
      }
    } finally {
      this.#writing = undefined;
    }
  }
}

/** What sysfs says about a framebuffer; fields it does not have are undefined. */
async function readSysfsGeometry(dir: string): Promise<Partial<FramebufferGeometry>> {
  const read = async (name: string): Promise<string | undefined> => {
    try {
      return (await readFile(path.join(dir, name), 'utf8')).trim();
    } catch {
      return undefined;
    }
  };
  const [size, bpp, stride] = await Promise.all([read('virtual_size'), read('bits_per_pixel'), read('stride')]);
  const out: Partial<FramebufferGeometry> = {};
  const match = size === undefined ? null : /^(\d+),(\d+)$/.exec(size);
  if (match) {
    out.widthPx = Number(match[1]);
    out.heightPx = Number(match[2]);
  }
  if (bpp !== undefined && /^\d+$/.test(bpp)) out.bitsPerPixel = Number(bpp);
  if (stride !== undefined && /^\d+$/.test(stride) && Number(stride) > 0) out.strideBytes = Number(stride);
  return out;
}

/** Merges sysfs and explicit geometry (explicit wins) and validates the result. */
function resolveGeometry(devicePath: string, sysfs: Partial<FramebufferGeometry>, given: Partial<FramebufferGeometry>): FramebufferGeometry {
  const where = `FramebufferOutput.create('${devicePath}')`;
  const widthPx = given.widthPx ?? sysfs.widthPx;
  const heightPx = given.heightPx ?? sysfs.heightPx;
  const bitsPerPixel = given.bitsPerPixel ?? sysfs.bitsPerPixel;
  for (const [name, value] of [['widthPx', widthPx], ['heightPx', heightPx], ['bitsPerPixel', bitsPerPixel]] as const) {
    if (value === undefined) {
      throw new TypeError(`${where}: geometry field '${name}' is unknown (no sysfs entry); pass it in 'geometry'`);
    }
  }
  const w = widthPx!;
  const h = heightPx!;
  const bpp = bitsPerPixel!;
  if (!Number.isInteger(w) || w < 1 || w > FRAMEBUFFER_MAX_SIDE_PX) throw new RangeError(`${where}: geometry field 'widthPx' must be an integer in [1, ${FRAMEBUFFER_MAX_SIDE_PX}], got ${w}`);
  if (!Number.isInteger(h) || h < 1 || h > FRAMEBUFFER_MAX_SIDE_PX) throw new RangeError(`${where}: geometry field 'heightPx' must be an integer in [1, ${FRAMEBUFFER_MAX_SIDE_PX}], got ${h}`);
  if (!FRAMEBUFFER_BITS_PER_PIXEL.includes(bpp)) {
    throw new RangeError(`${where}: geometry field 'bitsPerPixel' must be one of ${FRAMEBUFFER_BITS_PER_PIXEL.join(', ')}, got ${bpp}`);
  }
  const minStride = w * (bpp / 8);
  // The sysfs stride belongs to the sysfs mode: keep it only when width and depth are the sysfs ones too.
  const sysfsStride = given.widthPx === undefined && given.bitsPerPixel === undefined ? sysfs.strideBytes : undefined;
  const strideBytes = given.strideBytes ?? sysfsStride ?? minStride;
  if (!Number.isInteger(strideBytes) || strideBytes < minStride) {
    throw new RangeError(`${where}: geometry field 'strideBytes' must be an integer >= ${minStride} (widthPx x bytes per pixel), got ${strideBytes}`);
  }
  return { widthPx: w, heightPx: h, bitsPerPixel: bpp, strideBytes };
}

/**
 * RGBA (row 0 = top) -> framebuffer bytes in `out`, frame at the top-left, clipped, the rest black.
 * Allocates nothing.
 */
export function convertRgba(
  rgba: Uint8Array,
  widthPx: number,
  heightPx: number,
  out: Uint8Array,
  geometry: Readonly<FramebufferGeometry>,
  channelOrder: 'bgr' | 'rgb' = 'bgr',
): void {
  const { strideBytes, bitsPerPixel } = geometry;
  const w = Math.min(widthPx, geometry.widthPx);
  const h = Math.min(heightPx, geometry.heightPx);
  const bytesPerPixel = bitsPerPixel / 8;
  // Offsets of R and B inside a 24/32-bit pixel.
  const rAt = channelOrder === 'bgr' ? 2 : 0;
  const bAt = 2 - rAt;
  for (let y = 0; y < geometry.heightPx; y++) {
    const row = y * strideBytes;
    if (y >= h) {
      out.fill(0, row, row + strideBytes);
      continue;
    }
    let s = y * widthPx * 4;
    let d = row;
    if (bitsPerPixel === 16) {
      for (let x = 0; x < w; x++, s += 4, d += 2) {
        const r = rgba[s]!;
        const g = rgba[s + 1]!;
        const b = rgba[s + 2]!;
        const hi = channelOrder === 'bgr' ? r : b; // the 5 top bits hold R in RGB565 (B in BGR565)
        const lo = channelOrder === 'bgr' ? b : r;
        const v = ((hi & 0xf8) << 8) | ((g & 0xfc) << 3) | (lo >> 3);
        out[d] = v & 0xff; // little-endian
        out[d + 1] = v >> 8;
      }
    } else {
      for (let x = 0; x < w; x++, s += 4, d += bytesPerPixel) {
        out[d + rAt] = rgba[s]!;
        out[d + 1] = rgba[s + 1]!;
        out[d + bAt] = rgba[s + 2]!;
        if (bytesPerPixel === 4) out[d + 3] = 255;
      }
    }
    out.fill(0, d, row + strideBytes);
  }
}
