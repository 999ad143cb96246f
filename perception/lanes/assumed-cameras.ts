/**
 * Cameras of the two real test videos, as `CameraModel`s (perception/world/camera-model.ts). Each
 * number says where it comes from: ASSUMED (a typical value, not measurable from the data),
 * MEASURED (from the images) or FITTED (perception/world's offline calibration).
 *
 * Conventions are CameraModel's: OpenCV pixels (integer coordinates are pixel centres, so the
 * centre of a W x H image is ((W - 1) / 2, (H - 1) / 2)); vehicle frame ISO 8855 (x forward, y left,
 * z up, road z = 0); mounting pitch positive = looking down, yaw positive = turned left, roll
 * positive = counter-clockwise as seen from behind.
 */
import type { CameraIntrinsics } from '../../pipeline/frame.js';
import { CameraModel, type CameraMounting } from '../world/camera-model.js';
import { PANDASET_002_FRONT_MOUNTING } from '../world/pandaset-mounting.js';

/**
 * Udacity CarND-LaneLines-P1 `solidWhiteRight.mp4` (960x540 dash cam, calibration unknown).
 * - Focal length: ASSUMED 60 deg horizontal field of view (typical dash cam): fx = fy = 480 / tan(30 deg)
 *   = 831.4 px; principal point ASSUMED at the image centre, (479.5, 269.5) px; no lens distortion
 *   (the lane lines of the video are straight to the image edge).
 */
export const UDACITY_FX_PX = 480 / Math.tan((30 * Math.PI) / 180);
export const UDACITY_INTRINSICS: Readonly<CameraIntrinsics> = Object.freeze({
  width: 960,
  height: 540,
  fx: UDACITY_FX_PX,
  fy: UDACITY_FX_PX,
  cx: (960 - 1) / 2,
  cy: (540 - 1) / 2,
  distortionModel: 'plumb_bob',
  distortion: Object.freeze([0, 0, 0, 0, 0]),
});

/**
 * Vanishing point of the road (the vehicle's x axis), MEASURED from the two straight ego-lane lines
 * in `test_images/solidWhiteRight.jpg` (a frame of the same video), rows 396..534: left line
 * u = 355 - 1.45 (v - 396), right line u = 621 + 1.558 (v - 396), meeting at (483, 308) px.
 */
export const UDACITY_VANISHING_POINT_PX = Object.freeze({ uPx: 483, vPx: 308 });

/**
 * Height of the Udacity camera above the road, ASSUMED 1.30 m (windshield-mounted camera in a
 * sedan). Not measurable from the images without a known length; every lateral distance (lane
 * width, offsets) scales with it. The lane width measured with it is reported by the tests, not
 * tuned to: 3.66 m (US interstate) would need about 1.23 m.
 */
export const UDACITY_CAMERA_HEIGHT_M = 1.3;

/**
 * Mounting of the Udacity camera, from the vanishing point: with roll 0, the vehicle x axis images at
 * v = cy - fy tan(pitch) and u = cx + fx tan(yaw) / cos(pitch), so
 * - pitch = atan((cy - 308) / fy) = -2.65 deg: the horizon is 38.5 px BELOW the image centre, the
 *   camera looks UP (negative pitch in CameraModel's convention);
 * - yaw = atan((483 - cx) cos(pitch) / fx) = +0.24 deg (turned left).
 * - roll: ASSUMED 0 (one vanishing point does not give it).
 * - position: the vehicle origin is on the road below the camera (x = y = 0), as the car's geometry
 *   is unknown; z = UDACITY_CAMERA_HEIGHT_M.
 */
export const UDACITY_MOUNTING: Readonly<CameraMounting> = Object.freeze(udacityMountingFromVanishingPoint());

function udacityMountingFromVanishingPoint(): CameraMounting {
  const k = UDACITY_INTRINSICS;
  const vp = UDACITY_VANISHING_POINT_PX;
  const pitchRad = Math.atan((k.cy - vp.vPx) / k.fy);
  return {
    positionM: Object.freeze({ x: 0, y: 0, z: UDACITY_CAMERA_HEIGHT_M }),
    pitchRad,
    yawRad: Math.atan(((vp.uPx - k.cx) * Math.cos(pitchRad)) / k.fx),
    rollRad: 0,
  };
}

/** The Udacity `solidWhiteRight.mp4` camera: UDACITY_INTRINSICS mounted at UDACITY_MOUNTING. */
export function udacityCamera(): CameraModel {
  return new CameraModel(UDACITY_INTRINSICS, UDACITY_MOUNTING);
}

/** Size of the PandaSet front-camera images, px (the JPEGs of sequence 002). */
export const PANDASET_IMAGE_WIDTH_PX = 1920;
export const PANDASET_IMAGE_HEIGHT_PX = 1080;

/**
 * PandaSet sequence 002 front camera: the pinhole intrinsics of the sequence's
 * `camera/intrinsics.json` ({fx, fy, cx, cy}, px at 1920x1080), no distortion (PandaSet ships
 * undistorted images; pipeline/sources/pandaset.ts says the same), mounted at
 * PANDASET_002_FRONT_MOUNTING (FITTED offline by perception/world/pandaset-mounting.ts from the
 * labelled vehicles' road plane and the drive direction: height 2.21 m, origin on the road under the
 * camera). The mounting is specific to sequence 002.
 */
export function pandaset002FrontCamera(pinhole: { fx: number; fy: number; cx: number; cy: number }): CameraModel {
  const { fx, fy, cx, cy } = pinhole;
  return new CameraModel(
    { width: PANDASET_IMAGE_WIDTH_PX, height: PANDASET_IMAGE_HEIGHT_PX, fx, fy, cx, cy, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] },
    PANDASET_002_FRONT_MOUNTING,
  );
}
