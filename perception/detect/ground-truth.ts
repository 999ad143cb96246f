/**
 * Ground truth for 2D detection metrics: labelled 3D cuboids (world frame, metres) projected into
 * the camera image as axis-aligned pixel boxes, each with an honest visibility verdict.
 *
 * Frames and axes:
 * - world: the recording's world frame, metres, z up; cuboids are centred at `positionM` and
 *   turned by `yawRad` about world z.
 * - camera (OpenCV): x right, y down, z forward. The pose is camera-to-world (`worldFromCamera`,
 *   rotation R and camera centre t), so a world point P is `cameraFromWorld(P) = R^T (P - t)`.
 * - image: u = fx x / z + cx, v = fy y / z + cy, pixels; the image covers [0, width] x [0, height]
 *   (continuous coordinates, as COCO boxes), boxes are [x1, y1, x2, y2] with x1 <= x2, y1 <= y2.
 *
 * Corners behind the camera: the cuboid is clipped against the near plane z = NEAR_PLANE_M before
 * projecting (the clipped solid's vertices are the corners in front plus the points where its edges
 * cross the plane), so a box that straddles the camera plane gets the 2D extent of its visible part
 * instead of the wrapped-around nonsense a plain projection of every corner gives. An object whose
 * centre is not in front of the near plane is never visible (`behind-camera`), but what of it lies
 * in front of the plane still occludes farther objects.
 */
import type { CameraIntrinsics, GroundTruthObject, PoseMessage } from '../../pipeline/index.js';
import type { Box } from './types.js';

/** The classes detection metrics are reported for. */
export type EvalClass = 'vehicle' | 'person';
export const EVAL_CLASSES: readonly EvalClass[] = ['vehicle', 'person'];

/** PandaSet labels evaluated as 'vehicle'. */
export const VEHICLE_LABELS: readonly string[] = [
  'Car',
  'Pickup Truck',
  'Medium-sized Truck',
  'Semi-truck',
  'Bus',
  'Other Vehicle - Construction Vehicle',
  'Other Vehicle - Uncommon',
  'Other Vehicle - Pedicab',
];
/** PandaSet labels evaluated as 'person'. */
export const PERSON_LABELS: readonly string[] = ['Pedestrian', 'Pedestrian with Object'];
/** Detector (COCO) class names evaluated as 'vehicle'. */
export const DETECTOR_VEHICLE_CLASSES: readonly string[] = ['car', 'bus', 'truck'];
/** Detector (COCO) class names evaluated as 'person'. */
export const DETECTOR_PERSON_CLASSES: readonly string[] = ['person'];

/** Near clipping plane: camera z, metres. Cuboids are clipped here before projecting. */
export const NEAR_PLANE_M = 0.1;
/** Visible needs at least this fraction of the (near-clipped) projected box inside the image. */
export const MIN_INSIDE_FRACTION = 0.5;
/** Visible needs at least this height of the image-clipped box, pixels. */
export const MIN_HEIGHT_PX = 24;
/** Visible needs at most this fraction of the image-clipped box covered by nearer objects' boxes. */
export const MAX_OCCLUDED_FRACTION = 0.6;


/** Camera-to-world pose: camera centre in world metres; unit quaternion rotating OpenCV camera axes into world axes. */
export type CameraPoseInWorld = Pick<PoseMessage, 'positionM' | 'orientation'>;

export interface ProjectionOptions {
  /** Near clipping plane, camera z in metres. Default NEAR_PLANE_M. */
  nearPlaneM?: number;
  /** Default MIN_INSIDE_FRACTION. */
  minInsideFraction?: number;
  /** Default MIN_HEIGHT_PX. */
  minHeightPx?: number;
  /** Default MAX_OCCLUDED_FRACTION. */
  maxOccludedFraction?: number;
}

const DEFAULT_OPTIONS: Required<ProjectionOptions> = {
  nearPlaneM: NEAR_PLANE_M,
  minInsideFraction: MIN_INSIDE_FRACTION,
  minHeightPx: MIN_HEIGHT_PX,
  maxOccludedFraction: MAX_OCCLUDED_FRACTION,
};

/**
 * Why an object is not visible, checked in this order:
 * - 'duplicate': the twin of another box of the same object (PandaSet labels some objects once per
 *   LiDAR); dropped before everything else, so it neither counts nor occludes;
 * - 'behind-camera': the box centre is not in front of the near plane;
 * - 'outside-image': less than `minInsideFraction` of the projected box is inside the image;
 * - 'too-small': the image-clipped box is less than `minHeightPx` tall;
 * - 'occluded': more than `maxOccludedFraction` of the image-clipped box is covered by nearer boxes.
 */
export type InvisibleReason = 'duplicate' | 'behind-camera' | 'outside-image' | 'too-small' | 'occluded';

export interface ProjectedObject {
  id: string;
  label: string;
  /** Undefined for labels outside the evaluated classes (cones, bicycles, ...). */
  evalClass: EvalClass | undefined;
  /** Near-clipped projection clipped to the image; undefined when nothing of it lands in the image. */
  box: Box | undefined;
  /** Near-clipped projection, not clipped to the image; undefined when nothing is in front of the near plane. */
  unclippedBox: Box | undefined;
  /** Camera z of the box centre, metres (negative behind the camera). */
  depthM: number;
  /** area(box) / area(unclippedBox); 0 when either is missing or empty. */
  insideFraction: number;
  /** Height of `box`, pixels; 0 without a box. */
  heightPx: number;
  /** Fraction of `box` covered by the union of nearer objects' boxes; 0 without a box. */
  occludedFraction: number;
  visible: boolean;
  /** Set exactly when not visible. */
  reason?: InvisibleReason;
  /** For a dropped twin: id of the box that was kept. */
  duplicateOf?: string;
}

/** The evaluated class of a PandaSet label, or undefined when the label is not evaluated. */
export function evalClassOfLabel(label: string): EvalClass | undefined {
  if (VEHICLE_LABELS.includes(label)) return 'vehicle';
  if (PERSON_LABELS.includes(label)) return 'person';
  return undefined;
}

/** The evaluated class of a detector (COCO) class name, or undefined when detections of it are not evaluated. */
export function evalClassOfDetectorClass(className: string): EvalClass | undefined {
  if (DETECTOR_VEHICLE_CLASSES.includes(className)) return 'vehicle';
  if (DETECTOR_PERSON_CLASSES.includes(className)) return 'person';
  return undefined;
}

/**
 * Projects `objects` (world frame) into the camera at `pose` and decides which are visible.
 * Returns one entry per input object, in input order.
 */
export function projectGroundTruth(
  objects: readonly GroundTruthObject[],
  pose: CameraPoseInWorld,
  intrinsics: CameraIntrinsics,
  options: ProjectionOptions = {},
): ProjectedObject[] {
  const settings = resolveOptions(options);
  checkIntrinsics(intrinsics);
  const cameraFromWorld = cameraFromWorldTransform(pose);
  const duplicateOf = findDuplicates(objects);

  const projected = objects.map((object, index): ProjectedObject => {
    checkObject(object, index);
    const centre = cameraFromWorld(object.positionM);
    const unclippedBox = projectCuboid(object, cameraFromWorld, intrinsics, settings);
    const box = unclippedBox && intersect(unclippedBox, [0, 0, intrinsics.width, intrinsics.height]);
    const unclippedArea = unclippedBox ? area(unclippedBox) : 0;
    const kept = duplicateOf[index];
    return {
      id: object.id,
      label: object.label,
      evalClass: evalClassOfLabel(object.label),
      box,
      unclippedBox,
      depthM: centre.z,
      insideFraction: box && unclippedArea > 0 ? area(box) / unclippedArea : 0,
      heightPx: box ? box[3] - box[1] : 0,
      occludedFraction: 0,
      visible: false,
      ...(kept !== undefined ? { duplicateOf: kept } : {}),
    };
  });

  // Occluders: every kept object with a box (any label, visible or not), nearer by centre depth.
  // A box is never occluded by itself or by its own twin.
  const occluders = projected.filter((p) => p.duplicateOf === undefined && p.box !== undefined);
  projected.forEach((target, index) => {
    const box = target.box;
    if (!box) return;
    const sibling = objects[index]!.siblingId;
    const covering: Box[] = [];
    for (const other of occluders) {
      if (other === target || other.id === sibling || other.id === target.duplicateOf || !(other.depthM < target.depthM)) continue;
      const overlap = intersect(other.box!, box);
      if (overlap) covering.push(overlap);
    }
    const boxArea = area(box);
    target.occludedFraction = boxArea > 0 ? Math.min(1, unionArea(covering) / boxArea) : 0;
  });

  for (const target of projected) {
    const reason = invisibleReason(target, settings);
    target.visible = reason === undefined;
    if (reason !== undefined) target.reason = reason;
  }
  return projected;
}

function invisibleReason(p: ProjectedObject, settings: Required<ProjectionOptions>): InvisibleReason | undefined {
  if (p.duplicateOf !== undefined) return 'duplicate';
  if (!(p.depthM >= settings.nearPlaneM) || p.unclippedBox === undefined) return 'behind-camera';
  if (!(p.insideFraction >= settings.minInsideFraction)) return 'outside-image';
  if (!(p.heightPx >= settings.minHeightPx)) return 'too-small';
  if (!(p.occludedFraction <= settings.maxOccludedFraction)) return 'occluded';
  return undefined;
}

function resolveOptions(options: ProjectionOptions): Required<ProjectionOptions> {
  const settings: Required<ProjectionOptions> = { ...DEFAULT_OPTIONS };
  for (const key of Object.keys(DEFAULT_OPTIONS) as (keyof ProjectionOptions)[]) {
    if (options[key] !== undefined) Object.assign(settings, { [key]: options[key] });
  }
  const check = (name: keyof ProjectionOptions, ok: boolean, expected: string) => {
    if (!ok) throw new RangeError(`projectGroundTruth: option '${name}' must be ${expected}, got ${String(settings[name])}`);
  };
  check('nearPlaneM', settings.nearPlaneM > 0 && Number.isFinite(settings.nearPlaneM), 'a finite number > 0');
  check('minInsideFraction', settings.minInsideFraction >= 0 && settings.minInsideFraction <= 1, 'in [0, 1]');
  check('minHeightPx', settings.minHeightPx >= 0, 'a number >= 0');
  check('maxOccludedFraction', settings.maxOccludedFraction >= 0 && settings.maxOccludedFraction <= 1, 'in [0, 1]');
  return settings;
}

function checkIntrinsics(k: CameraIntrinsics): void {
  const fields = { fx: k.fx, fy: k.fy, width: k.width, height: k.height } as const;
  for (const [name, value] of Object.entries(fields)) {
    if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`projectGroundTruth: intrinsics.${name} must be a finite number > 0, got ${value}`);
  }
  if (!(Number.isFinite(k.cx) && Number.isFinite(k.cy))) throw new RangeError(`projectGroundTruth: intrinsics.cx and cy must be finite, got cx=${k.cx} cy=${k.cy}`);
  if (k.distortion.some((d) => d !== 0)) {
    // Projecting corners through a distortion model would also bend the box edges; only undistorted images are supported.
    throw new RangeError(`projectGroundTruth: intrinsics.distortion must be all zeros (undistorted image), got [${k.distortion.join(', ')}]`);
  }
}

function checkObject(object: GroundTruthObject, index: number): void {
  const where = `projectGroundTruth: objects[${index}] ('${object.id}')`;
  const { x, y, z } = object.positionM;
  if (![x, y, z, object.yawRad].every(Number.isFinite)) throw new RangeError(`${where}: positionM and yawRad must be finite, got (${x}, ${y}, ${z}) yaw ${object.yawRad}`);
  for (const name of ['lengthM', 'widthM', 'heightM'] as const) {
    if (!(object[name] >= 0 && Number.isFinite(object[name]))) throw new RangeError(`${where}: ${name} must be a finite number >= 0, got ${object[name]}`);
  }
}

interface Point3 {
  x: number;
  y: number;
  z: number;
}

/** `cameraFromWorld(P) = R^T (P - t)` for the camera-to-world pose (R, t). */
function cameraFromWorldTransform(pose: CameraPoseInWorld): (p: Point3) => Point3 {
  const { x: qx, y: qy, z: qz, w: qw } = pose.orientation;
  const norm = Math.hypot(qx, qy, qz, qw);
  if (!(norm > 1e-9 && Number.isFinite(norm))) throw new RangeError(`projectGroundTruth: pose.orientation must be a non-zero finite quaternion, got (${qx}, ${qy}, ${qz}, ${qw})`);
  const t = pose.positionM;
  if (![t.x, t.y, t.z].every(Number.isFinite)) throw new RangeError(`projectGroundTruth: pose.positionM must be finite, got (${t.x}, ${t.y}, ${t.z})`);
  const x = qx / norm;
  const y = qy / norm;
  const z = qz / norm;
  const w = qw / norm;
  // worldFromCamera rotation, row-major; its columns are the camera axes in world coordinates.
  const r00 = 1 - 2 * (y * y + z * z);
  const r01 = 2 * (x * y - z * w);
  const r02 = 2 * (x * z + y * w);
  const r10 = 2 * (x * y + z * w);
  const r11 = 1 - 2 * (x * x + z * z);
  const r12 = 2 * (y * z - x * w);
  const r20 = 2 * (x * z - y * w);
  const r21 = 2 * (y * z + x * w);
  const r22 = 1 - 2 * (x * x + y * y);
  return (p) => {
    const dx = p.x - t.x;
    const dy = p.y - t.y;
    const dz = p.z - t.z;
    return {
      x: r00 * dx + r10 * dy + r20 * dz,
      y: r01 * dx + r11 * dy + r21 * dz,
      z: r02 * dx + r12 * dy + r22 * dz,
    };
  };
}

/**
 * For each object that is the dropped twin of another, the id of the box kept: of two boxes linked
 * by `siblingId` (both in this frame), the one with sensorId 0 is kept, else the first in input order.
 */
function findDuplicates(objects: readonly GroundTruthObject[]): (string | undefined)[] {
  const indexOfId = new Map<string, number>();
  objects.forEach((object, index) => {
    if (!indexOfId.has(object.id)) indexOfId.set(object.id, index);
  });
  const duplicateOf: (string | undefined)[] = objects.map(() => undefined);
  objects.forEach((object, i) => {
    if (duplicateOf[i] !== undefined || object.siblingId === undefined) return;
    const j = indexOfId.get(object.siblingId);
    if (j === undefined || j === i || duplicateOf[j] !== undefined) return;
    const twin = objects[j]!;
    const objectFromSensor0 = object.sensorId === 0;
    const twinFromSensor0 = twin.sensorId === 0;
    const keepObject = objectFromSensor0 !== twinFromSensor0 ? objectFromSensor0 : i < j;
    if (keepObject) duplicateOf[j] = object.id;
    else duplicateOf[i] = twin.id;
  });
  return duplicateOf;
}

/**
 * Pixel bounds of the cuboid's part in front of the near plane, or undefined when none is.
 * Corners are indexed by bits: bit 0 the sign along the length axis, bit 1 across (width), bit 2 up.
 */
function projectCuboid(
  object: GroundTruthObject,
  cameraFromWorld: (p: Point3) => Point3,
  k: CameraIntrinsics,
  settings: Required<ProjectionOptions>,
): Box | undefined {
  const lengthYawRad = object.yawRad;
  const cos = Math.cos(lengthYawRad);
  const sin = Math.sin(lengthYawRad);
  const halfL = object.lengthM / 2;
  const halfW = object.widthM / 2;
  const halfH = object.heightM / 2;
  const c = object.positionM;
  const corners: Point3[] = [];
  for (let bits = 0; bits < 8; bits++) {
    const l = bits & 1 ? halfL : -halfL;
    const w = bits & 2 ? halfW : -halfW;
    const h = bits & 4 ? halfH : -halfH;
    // Length along (cos, sin), width along (-sin, cos), height along world z.
    corners.push(cameraFromWorld({ x: c.x + l * cos - w * sin, y: c.y + l * sin + w * cos, z: c.z + h }));
  }
  const near = settings.nearPlaneM;
  const points: Point3[] = corners.filter((p) => p.z >= near);
  if (points.length === 0) return undefined;
  if (points.length < 8) {
    // Each of the 12 edges joins corners differing in one bit; add where it crosses the near plane.
    for (let bits = 0; bits < 8; bits++) {
      for (const axis of [1, 2, 4]) {
        if (bits & axis) continue;
        const a = corners[bits]!;
        const b = corners[bits | axis]!;
        if ((a.z < near) === (b.z < near)) continue;
        const s = (near - a.z) / (b.z - a.z);
        points.push({ x: a.x + s * (b.x - a.x), y: a.y + s * (b.y - a.y), z: near });
      }
    }
  }
  let x1 = Infinity;
  let y1 = Infinity;
  let x2 = -Infinity;
  let y2 = -Infinity;
  for (const p of points) {
    const u = (k.fx * p.x) / p.z + k.cx;
    const v = (k.fy * p.y) / p.z + k.cy;
    x1 = Math.min(x1, u);
    y1 = Math.min(y1, v);
    x2 = Math.max(x2, u);
    y2 = Math.max(y2, v);
  }
  return [x1, y1, x2, y2];
}

function area(b: Box): number {
  return Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
}

/** The overlap of two boxes, or undefined when it has no area. */
function intersect(a: Box, b: Box): Box | undefined {
  const x1 = Math.max(a[0], b[0]);
  const y1 = Math.max(a[1], b[1]);
  const x2 = Math.min(a[2], b[2]);
  const y2 = Math.min(a[3], b[3]);
  return x2 > x1 && y2 > y1 ? [x1, y1, x2, y2] : undefined;
}

/** Exact area of a union of boxes: sweep over x slabs, merging the y intervals of the boxes spanning each slab. */
export function unionArea(boxes: readonly Box[]): number {
  const xs = [...new Set(boxes.flatMap((b) => [b[0], b[2]]))].sort((a, b) => a - b);
  let total = 0;
  for (let i = 0; i + 1 < xs.length; i++) {
    const left = xs[i]!;
    const right = xs[i + 1]!;
    const spans = boxes
      .filter((b) => b[0] <= left && b[2] >= right && b[3] > b[1])
      .map((b) => [b[1], b[3]] as const)
      .sort((a, b) => a[0] - b[0]);
    let covered = 0;
    let end = -Infinity;
    for (const [y1, y2] of spans) {
      // Only the part above the covered run so far adds (spans are sorted by top edge).
      if (y2 > end) {
        covered += y2 - Math.max(y1, end);
        end = y2;
      }
    }
    total += covered * (right - left);
  }
  return total;
}
