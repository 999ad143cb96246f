/**
 * Provisional cameras for the two real test videos, until calibrations come from
 * `perception/world` / the recording. Each number says where it comes from.
 */
import { PinholeGroundCamera } from './pinhole-ground.js';

/**
 * Udacity CarND-LaneLines-P1 `solidWhiteRight.mp4` (960x540 dash cam, calibration unknown).
 * - Focal length: ASSUMED 60 deg horizontal field of view (typical dash cam): fx = fy = 480 / tan(30 deg) = 831.4 px;
 *   principal point at the image centre.
 * - Pitch and yaw: MEASURED from the vanishing point of the two straight ego-lane lines in
 *   `test_images/solidWhiteRight.jpg` (a frame of the same video), rows 396..534: left line
 *   u = 355 - 1.45 (v - 396), right line u = 621 + 1.558 (v - 396), meeting at (483, 308) px.
 *   The horizon lies 38 px below the image centre, so the camera looks UP:
 *   pitch = atan((270 - 308) / 831.4) = -2.62 deg (positive = down); yaw = atan((483 - 480) / 831.4) = 0.21 deg left.
 * - Height: ASSUMED 1.30 m (windshield-mounted camera in a sedan). Not measurable from the images
 *   without a known length; every lateral distance (lane width, offsets) scales with it. The lane
 *   width measured with it is reported by the tests, not tuned: 3.66 m would need about 1.22 m.
 * - Vehicle origin: on the road below the camera (x = y = 0), as the car's geometry is unknown.
 */
export const UDACITY_FX_PX = 480 / Math.tan((30 * Math.PI) / 180);
export const UDACITY_VANISHING_POINT_PX = { uPx: 483, vPx: 308 } as const;
export const UDACITY_CAMERA_HEIGHT_M = 1.3;

export function udacityCamera(): PinholeGroundCamera {
  const fx = UDACITY_FX_PX;
  return new PinholeGroundCamera(
    { width: 960, height: 540, fx, fy: fx, cx: 480, cy: 270 },
    {
      positionM: { x: 0, y: 0, z: UDACITY_CAMERA_HEIGHT_M },
      pitchRad: Math.atan((270 - UDACITY_VANISHING_POINT_PX.vPx) / fx),
      yawRad: Math.atan((UDACITY_VANISHING_POINT_PX.uPx - 480) / fx),
      rollRad: 0,
    },
  );
}

/**
 * PandaSet sequence 002 front camera (1920x1080, undistorted; intrinsics from `camera/intrinsics.json`).
 * Mounting PROVISIONAL until perception/world provides it: height 1.80 m (the camera pose's z in the
 * first frame; the world origin's height above the road is not given), pitch 0.12 deg down and roll
 * 1.0 deg from the first pose's camera axes (forward z = -0.0021, right z = -0.0176).
 */
export function pandasetCamera(intrinsics: { fx: number; fy: number; cx: number; cy: number }): PinholeGroundCamera {
  return new PinholeGroundCamera(
    { width: 1920, height: 1080, ...intrinsics },
    { positionM: { x: 0, y: 0, z: 1.8 }, pitchRad: 0.0021, yawRad: 0, rollRad: 0.0176 },
  );
}
