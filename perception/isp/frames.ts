/**
 * The real frames the ISP learns from and is judged on, split once so that training never sees an
 * evaluation frame: PandaSet 002 (city, 1920x1080 JPEG, shown at the benchmark's 1280x720) and the
 * Udacity highway video (960x540). Consecutive video frames are near duplicates, so a gap of 20
 * frames separates the video's training and held-out parts.
 */
import path from 'node:path';
import sharp from 'sharp';
import { ImageView } from '../../pipeline/image.js';
import { forEachVideoFrame } from '../evaluate/video-frames.js';

export type IspSplit = 'train' | 'heldOut';

/** PandaSet frame numbers per split. */
export const PANDASET_FRAMES: Readonly<Record<IspSplit, readonly number[]>> = {
  train: Array.from({ length: 50 }, (_, i) => i),
  heldOut: Array.from({ length: 10 }, (_, i) => 50 + i),
};
/** Udacity video frame indices per split (every other frame for training: neighbours add little). */
export const UDACITY_FRAMES: Readonly<Record<IspSplit, readonly number[]>> = {
  train: Array.from({ length: 90 }, (_, i) => 2 * i),
  heldOut: Array.from({ length: 21 }, (_, i) => 200 + i),
};
/** PandaSet frames are used at this size (the ISP benchmark's 720p). */
export const PANDASET_SIZE_PX = { width: 1280, height: 720 } as const;
export const UDACITY_SIZE_PX = { width: 960, height: 540 } as const;
export const UDACITY_VIDEO = path.join('udacity-lanelines', 'test_videos', 'solidWhiteRight.mp4');

export interface IspFrame {
  /** e.g. 'pandaset-002/55' or 'udacity/203'. */
  name: string;
  image: ImageView;
}

/** Loads the split's frames (packed rgb8, each its own storage), PandaSet first; `every` keeps every n-th of each list. */
export async function loadIspFrames(dataDir: string, split: IspSplit, options: { every?: number; sources?: readonly ('pandaset' | 'udacity')[] } = {}): Promise<IspFrame[]> {
  const every = options.every ?? 1;
  if (!(Number.isInteger(every) && every >= 1)) throw new RangeError(`loadIspFrames: option 'every' must be an integer >= 1, got ${every}`);
  const sources = options.sources ?? ['pandaset', 'udacity'];
  const frames: IspFrame[] = [];
  if (sources.includes('pandaset')) {
    const { width, height } = PANDASET_SIZE_PX;
    for (const n of PANDASET_FRAMES[split].filter((_, i) => i % every === 0)) {
      const file = path.join(dataDir, 'pandaset-002', 'camera', `${String(n).padStart(2, '0')}.jpg`);
      const data = await sharp(file).resize(width, height, { kernel: 'lanczos3' }).removeAlpha().raw().toBuffer();
      frames.push({ name: `pandaset-002/${n}`, image: ImageView.packed(width, height, 'rgb8', new Uint8Array(data.buffer, data.byteOffset, data.length)) });
    }
  }
  if (sources.includes('udacity')) {
    const wanted = new Set(UDACITY_FRAMES[split].filter((_, i) => i % every === 0));
    const { width, height } = UDACITY_SIZE_PX;
    await forEachVideoFrame(path.join(dataDir, UDACITY_VIDEO), width, height, (image, index) => {
      if (wanted.has(index)) frames.push({ name: `udacity/${index}`, image: image.copy() });
    });
  }
  return frames;
}
