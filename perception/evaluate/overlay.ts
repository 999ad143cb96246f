/**
 * Overlay images for looking at evaluation results: a packed RGB frame with an SVG drawn over it,
 * written as PNG by sharp (librsvg draws the SVG; text needs a system font, boxes do not).
 */
import sharp from 'sharp';
import type { ImageView } from '../../pipeline/image.js';

/** Overlays are written at most this wide, px (a 1920x1080 frame is halved: smaller files, same story). */
export const OVERLAY_MAX_WIDTH_PX = 960;

/** Writes `rgb` (packed, width x height x 3) with `svg` (same pixel coordinates) on top, as PNG. */
export async function writeOverlayPng(file: string, rgb: Uint8Array, width: number, height: number, svg?: string): Promise<void> {
  if (rgb.length < width * height * 3) throw new RangeError(`writeOverlayPng: 'rgb' must hold ${width * height * 3} bytes for ${width}x${height}, got ${rgb.length}`);
  let image = sharp(rgb, { raw: { width, height, channels: 3 } });
  if (svg !== undefined) {
    // Composite first at full size (the SVG is in frame pixels), then scale: sharp would scale before compositing in one pipeline.
    const { data, info } = await image.composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    image = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
  }
  const scaled = width > OVERLAY_MAX_WIDTH_PX ? image.resize(OVERLAY_MAX_WIDTH_PX) : image;
  await scaled.png({ compressionLevel: 3 }).toFile(file);
}

/** Escapes text for an SVG text node. */
export function svgText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A stable, distinct colour per track id (golden-angle hue steps). */
export function colourOfId(id: number): string {
  return `hsl(${Math.round((id * 137.508) % 360)}, 90%, 55%)`;
}

/** The pixels of an rgb8 view as packed RGB: the view's own storage when packed, else a copy. */
export function packedRgbOf(image: ImageView): Uint8Array {
  if (image.format !== 'rgb8' || !(image.data instanceof Uint8Array)) throw new TypeError(`packedRgbOf: field 'image.format' must be 'rgb8', got '${image.format}'`);
  const { width, height, data, offset, rowStride, pixelStride } = image;
  if (image.isPacked) return data.subarray(offset, offset + width * height * 3);
  const out = new Uint8Array(width * height * 3);
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const src = offset + v * rowStride + u * pixelStride;
      const dst = 3 * (v * width + u);
      out[dst] = data[src]!;
      out[dst + 1] = data[src + 1]!;
      out[dst + 2] = data[src + 2]!;
    }
  }
  return out;
}
