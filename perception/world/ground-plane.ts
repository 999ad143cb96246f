/**
 * Ground contact: where an image box touches the road, as a vehicle-frame position with a 1-sigma
 * uncertainty along and across the viewing direction.
 *
 * Frames: vehicle (ISO 8855, x forward, y left, z up, metres, road = plane z = 0); image boxes are
 * [x1, y1, x2, y2] pixels, u right, v down. The contact point is the bottom-centre of the box
 * ((x1 + x2) / 2, y2), back-projected through the camera onto z = 0.
 *
 * What the position means: for a box around a vehicle the box bottom is the lowest image point of
 * the object, i.e. (for a flat road) its nearest point on the ground, not its centre. Callers that
 * want a centre pass `centreOffsetM` (e.g. VEHICLE_CENTRE_OFFSET_M).
 *
 * Uncertainty model (first order, flat road). With camera height h, horizontal distance s from the
 * camera and depression angle theta of the ray below the horizon (tan theta = h / s):
 * - ds/dtheta = -h / sin^2(theta) (~ s^2 / h far away): a pitch error of sigma_p moves the point by
 *   h / sin^2(theta) * sigma_p along the ray; a vertical pixel error sigma_px changes theta by
 *   sigma_px / (fy (1 + y^2)) (y the normalised image coordinate);
 * - s is proportional to h: a height error sigma_h moves it by s sigma_h / h;
 * - across the ray, a horizontal pixel error turns the ray by sigma_px / (fx (1 + x^2)), so the
 *   point moves by s times that.
 * The along-ray terms are added in quadrature. Range therefore grows quadratically with range under
 * pitch error, which dominates beyond ~10 m. Camera yaw and roll errors are not modelled.
 */
import type { Vec3M } from '../../render/optics-config.js';
import type { CameraModel } from './camera-model.js';

const DEG_TO_RAD = Math.PI / 180;

/** Default pitch uncertainty, rad: 0.5 deg, the spread of body pitch under braking/acceleration plus calibration error. */
export const DEFAULT_PITCH_SIGMA_RAD = 0.5 * DEG_TO_RAD;
/** Default pixel uncertainty of a box edge, px: a detector's box bottom is rarely better than this. */
export const DEFAULT_PIXEL_SIGMA_PX = 2;
/** Default camera height uncertainty, m: suspension travel with load and passengers, a few centimetres. */
export const DEFAULT_CAMERA_HEIGHT_SIGMA_M = 0.03;

/**
 * Contact-to-centre offset for vehicles, m. The lowest image point of a car seen from behind or in
 * front is where its near tyres touch the road (the bumper hangs above the road), i.e. the near
 * axle; the centre is half the wheelbase beyond it: 1.4 m for a typical 2.8 m wheelbase. (It was
 * 2 m, half a car's length, until the tracking evaluation showed every range 8-10 % long; the
 * value now comes from car geometry, not from fitting that evaluation.) Its effect on PandaSet 002
 * is printed by test/perception/world-pandaset.test.ts.
 */
export const VEHICLE_CENTRE_OFFSET_M = 1.4;

export interface GroundPosition {
  /** Vehicle-frame position on the road, metres (x forward, y left). */
  positionM: { x: number; y: number };
  /** 1-sigma along the range direction and across it, m. */
  rangeSigmaM: number;
  lateralSigmaM: number;
  /** Distance from the vehicle-frame origin, m. */
  rangeM: number;
}

export interface GroundContactOptions {
  /** 1-sigma camera pitch error, rad. Default DEFAULT_PITCH_SIGMA_RAD (0.5 deg). */
  pitchSigmaRad?: number;
  /** 1-sigma error of the box's bottom edge and centre, px. Default DEFAULT_PIXEL_SIGMA_PX (2). */
  pixelSigmaPx?: number;
  /** 1-sigma camera height error, m. Default DEFAULT_CAMERA_HEIGHT_SIGMA_M (0.03). */
  cameraHeightSigmaM?: number;
  /**
   * Moves the result this far further along the (horizontal) viewing direction, m. Default 0: the
   * visible contact itself. A box bottom is the object's nearest ground point; about half an
   * object's depth (e.g. VEHICLE_CENTRE_OFFSET_M) here estimates its centre instead. The sigmas do
   * not include the spread of object sizes.
   */
  centreOffsetM?: number;
}

const DEFAULTS: Required<GroundContactOptions> = {
  pitchSigmaRad: DEFAULT_PITCH_SIGMA_RAD,
  pixelSigmaPx: DEFAULT_PIXEL_SIGMA_PX,
  cameraHeightSigmaM: DEFAULT_CAMERA_HEIGHT_SIGMA_M,
  centreOffsetM: 0,
};

const _ground: Vec3M = { x: 0, y: 0, z: 0 };
const _ray: Vec3M = { x: 0, y: 0, z: 0 };
const _normalized = { x: 0, y: 0 };

/**
 * The road position under the bottom-centre of `box` ([x1, y1, x2, y2], pixels), or undefined when
 * the box bottom is at or above the horizon (no intersection with the road ahead).
 * Throws TypeError for a box that is not four numbers and RangeError for a non-finite or inverted
 * box (x2 < x1 or y2 < y1), or bad options; the message names 'box' or the option.
 */
export function groundContact(
  box: [x1: number, y1: number, x2: number, y2: number],
  camera: CameraModel,
  options: GroundContactOptions = {},
): GroundPosition | undefined {
  const [x1, , x2, y2] = checkBox(box);
  const { pitchSigmaRad, pixelSigmaPx, cameraHeightSigmaM, centreOffsetM } = resolveOptions(options);
  const uPx = (x1 + x2) / 2;
  const vPx = y2;
  if (!camera.pixelToGround(uPx, vPx, _ground)) return undefined;

  const c = camera.mounting.positionM;
  const k = camera.intrinsics;
  const heightM = c.z;
  const alongM = Math.hypot(_ground.x - c.x, _ground.y - c.y);
  camera.pixelToVehicleRay(uPx, vPx, _ray);
  const sinDepression = -_ray.z;
  camera.undistortPixel(uPx, vPx, _normalized);
  const radPerPxVertical = 1 / (k.fy * (1 + _normalized.y * _normalized.y));
  const radPerPxHorizontal = 1 / (k.fx * (1 + _normalized.x * _normalized.x));

  const alongPerRad = heightM / (sinDepression * sinDepression);
  const angleSigmaRad = Math.hypot(pitchSigmaRad, pixelSigmaPx * radPerPxVertical);
  const rangeSigmaM = Math.hypot(alongPerRad * angleSigmaRad, (alongM * cameraHeightSigmaM) / heightM);
  const lateralSigmaM = alongM * pixelSigmaPx * radPerPxHorizontal;
  const horizontal = Math.hypot(_ray.x, _ray.y);
  const x = _ground.x + (centreOffsetM * _ray.x) / horizontal;
  const y = _ground.y + (centreOffsetM * _ray.y) / horizontal;
  return { positionM: { x, y }, rangeSigmaM, lateralSigmaM, rangeM: Math.hypot(x, y) };
}

function checkBox(box: unknown): [number, number, number, number] {
  if (!Array.isArray(box) || box.length !== 4) {
    throw new TypeError(`groundContact: field 'box' must be [x1, y1, x2, y2] (4 numbers), got ${describe(box)}`);
  }
  for (let i = 0; i < 4; i++) {
    const value: unknown = box[i];
    if (typeof value !== 'number') throw new TypeError(`groundContact: field 'box[${i}]' must be a number, got ${describe(value)}`);
    if (!Number.isFinite(value)) throw new RangeError(`groundContact: field 'box[${i}]' must be finite, got ${value}`);
  }
  const [x1, y1, x2, y2] = box as [number, number, number, number];
  if (x2 < x1 || y2 < y1) {
    throw new RangeError(`groundContact: field 'box' must have x1 <= x2 and y1 <= y2, got [${x1}, ${y1}, ${x2}, ${y2}] (inverted)`);
  }
  return [x1, y1, x2, y2];
}

function resolveOptions(options: GroundContactOptions): Required<GroundContactOptions> {
  const settings = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof GroundContactOptions)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (!(typeof value === 'number' && Number.isFinite(value) && value >= 0)) {
      throw new RangeError(`groundContact: option '${key}' must be a finite number >= 0, got ${describe(value)}`);
    }
    settings[key] = value;
  }
  return settings;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => String(v)).join(', ')}]`;
  return typeof value === 'string' ? `'${value}'` : String(value);
}
