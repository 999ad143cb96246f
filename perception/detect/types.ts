/**
 * Detection types shared by the detector runtime, its decoders and evaluation: the COCO class list
 * the default models use, the subset of classes the HUD draws, and `Detection` itself.
 */

/** Classes the HUD shows markers for (road users), in the order adas/ reports them. */
export const HUD_CLASSES = ['person', 'bicycle', 'motorcycle', 'car', 'bus', 'truck'] as const;

export type HudClass = (typeof HUD_CLASSES)[number];

/** The 80 COCO detection classes in the standard (contiguous, 0-based) training order. */
export const COCO_CLASSES = [
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
  'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
  'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
  'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
  'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
  'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
  'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush',
] as const;

export type CocoClass = (typeof COCO_CLASSES)[number];

/** Box corners [x1, y1, x2, y2] in pixels; x right, y down; x1 <= x2 and y1 <= y2 for a valid box. */
export type Box = [x1: number, y1: number, x2: number, y2: number];

export interface Detection {
  /** Index into the model card's `classes`. */
  classId: number;
  /** `classes[classId]`. */
  className: string;
  /** The HUD class this detection counts as, if any (see `hudClassOf`). */
  hudClass?: HudClass;
  /** Confidence in [0, 1] as the decoder defines it (heat-map peak, objectness x class probability, ...). */
  score: number;
  /** Corners in SOURCE image pixels (the ImageView given to the detector), not model-input pixels. */
  box: Box;
}

const HUD_CLASS_SET: ReadonlySet<string> = new Set(HUD_CLASSES);

/** Synonyms some datasets and model cards use for the HUD classes. */
const HUD_CLASS_ALIASES: Readonly<Record<string, HudClass>> = {
  pedestrian: 'person',
  motorbike: 'motorcycle',
  bike: 'bicycle',
};

/** The HUD class a model class name maps to (case-insensitive, common synonyms accepted), or undefined. */
export function hudClassOf(className: string): HudClass | undefined {
  const name = className.trim().toLowerCase();
  if (HUD_CLASS_SET.has(name)) return name as HudClass;
  return HUD_CLASS_ALIASES[name];
}
