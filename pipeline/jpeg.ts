import sharp from 'sharp';
import type { BufferPool, PooledBuffer } from './buffer-pool.js';
import { ImageView, packedLength } from './image.js';

// Frames are cached by nobody but the pool; libvips' own operation cache would only hold memory.
sharp.cache(false);

export interface DecodedImage {
  image: ImageView;
  buffer: PooledBuffer;
}

/**
 * Decodes a JPEG (or PNG) to packed rgb8 in a buffer from `pool`. libvips returns its result in
 * storage of its own, so the pixels are copied once into the pooled buffer (about 0.5 ms at
 * 1920x1080); the pool, not the decoder, owns every frame buffer that lives on in the pipeline.
 */
export async function decodeImageInto(pool: BufferPool, encoded: Uint8Array): Promise<DecodedImage> {
  const { data, info } = await sharp(encoded, { failOn: 'error' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decodeImageInto: expected 3 channels after conversion, got ${info.channels}`);
  const buffer = pool.acquire(packedLength('rgb8', info.width, info.height));
  buffer.bytes.set(data);
  return { image: ImageView.packed(info.width, info.height, 'rgb8', buffer.bytes), buffer };
}
