/**
 * Video frames for evaluations and benchmarks: ffmpeg (the one shipped in @ffmpeg-installer/ffmpeg,
 * a child process, no shell) decodes a video to packed rgb24 at a given size; each frame is handed
 * over in one reused buffer.
 */
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { spawn } from 'node:child_process';
import { ImageView } from '../../pipeline/image.js';

/**
 * Decodes `file` scaled to width x height and awaits `onFrame(image, index)` for each frame in order.
 * The image's storage is reused for the next frame: copy what must outlive the call. Returns the
 * number of frames. Throws when ffmpeg fails, with its message.
 */
export async function forEachVideoFrame(file: string, width: number, height: number, onFrame: (image: ImageView, index: number) => Promise<void> | void): Promise<number> {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) {
    throw new RangeError(`forEachVideoFrame: width and height must be positive integers, got ${width}x${height}`);
  }
  const args = ['-v', 'error', '-i', file, '-vf', `scale=${width}:${height}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'];
  const ffmpeg = spawn(ffmpegInstaller.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  ffmpeg.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => ffmpeg.on('close', (code) => resolve(code ?? -1)));
  const frameBytes = width * height * 3;
  const frame = new Uint8Array(frameBytes);
  const image = ImageView.packed(width, height, 'rgb8', frame);
  let filled = 0;
  let index = 0;
  try {
    for await (const chunk of ffmpeg.stdout as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < chunk.length) {
        const take = Math.min(frameBytes - filled, chunk.length - at);
        frame.set(chunk.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === frameBytes) {
          await onFrame(image, index++);
          filled = 0;
        }
      }
    }
  } finally {
    if (ffmpeg.exitCode === null) ffmpeg.kill();
  }
  const code = await exited;
  if (code !== 0) throw new Error(`forEachVideoFrame: ffmpeg exited with ${code} for ${file}: ${stderr.trim()}`);
  return index;
}
