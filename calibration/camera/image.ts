/**
 * Grayscale images for calibration. Pixel convention (as OpenCV): the centre of pixel (col, row) is
 * at the continuous coordinate (x = col, y = row); x to the right, y down, in pixels.
 */
import sharp from 'sharp';

/** A single-channel image, row-major, intensities 0..255. */
export interface GrayImage {
  /** Width in pixels. */
  readonly widthPx: number;
  /** Height in pixels. */
  readonly heightPx: number;
  /** widthPx * heightPx intensities, row-major. */
  readonly data: Float32Array;
}

/** Reads an image file (any format sharp decodes) as grayscale. Errors name the caller and the file. */
export async function loadGrayImage(path: string, caller = 'loadGrayImage'): Promise<GrayImage> {
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    decoded = await sharp(path).greyscale().raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new Error(`${caller}: cannot read image ${path}: ${(error as Error).message}`, { cause: error });
  }
  const { width, height, channels } = decoded.info;
  const data = new Float32Array(width * height);
  for (let i = 0; i < width * height; i++) data[i] = decoded.data[i * channels]!;
  return { widthPx: width, heightPx: height, data };
}

/** Intensity at a continuous position by bilinear interpolation, clamped at the image border. */
export function sampleBilinear(image: GrayImage, x: number, y: number): number {
  const { widthPx: w, heightPx: h, data } = image;
  const xc = Math.min(Math.max(x, 0), w - 1);
  const yc = Math.min(Math.max(y, 0), h - 1);
  const x0 = Math.min(Math.floor(xc), w - 2);
  const y0 = Math.min(Math.floor(yc), h - 2);
  const fx = xc - x0;
  const fy = yc - y0;
  const i = y0 * w + x0;
  const top = data[i]! + fx * (data[i + 1]! - data[i]!);
  const bottom = data[i + w]! + fx * (data[i + w + 1]! - data[i + w]!);
  return top + fy * (bottom - top);
}

/** A separable Gaussian blur (sigma in pixels, kernel to 3 sigma, border clamped); returns a new image. */
export function gaussianBlur(image: GrayImage, sigmaPx: number): GrayImage {
  const { widthPx: w, heightPx: h, data } = image;
  const radius = Math.max(1, Math.ceil(3 * sigmaPx));
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let k = -radius; k <= radius; k++) sum += kernel[k + radius] = Math.exp((-k * k) / (2 * sigmaPx * sigmaPx));
  for (let k = 0; k < kernel.length; k++) kernel[k] = kernel[k]! / sum;
  const tmp = new Float32Array(w * h);
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) acc += kernel[k + radius]! * data[row + Math.min(Math.max(x + k, 0), w - 1)]!;
      tmp[row + x] = acc;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let k = -radius; k <= radius; k++) acc += kernel[k + radius]! * tmp[Math.min(Math.max(y + k, 0), h - 1) * w + x]!;
      out[y * w + x] = acc;
    }
  }
  return { widthPx: w, heightPx: h, data: out };
}
