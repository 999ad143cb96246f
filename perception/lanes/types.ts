/**
 * Lane detection types. Curves live in the ISO 8855 vehicle frame: x forward, y left, z up, metres;
 * the road is the plane z = 0.
 */

export type LaneRole = 'ego-left' | 'ego-right' | 'left-adjacent' | 'right-adjacent';

export type LineType = 'solid' | 'dashed' | 'unknown';

export interface LaneBoundary {
  role: LaneRole;
  /** y(x) = c0 + c1 x + c2 x^2 + c3 x^3 in the vehicle frame, metres, valid for x in [xMinM, xMaxM]. */
  coefficients: [number, number, number, number];
  xMinM: number;
  xMaxM: number;
  /** 0..1; decays frame by frame while the marking is not seen. */
  confidence: number;
  lineType: LineType;
}

export interface LaneEstimate {
  tNs: bigint;
  /** At most one boundary per role, ordered ego-left, ego-right, left-adjacent, right-adjacent. */
  boundaries: LaneBoundary[];
  /** Ego-left minus ego-right at x = 0, when both are reported. */
  laneWidthM?: number;
  /** y of the ego-lane centre at x = 0 (positive: the centre is left of the vehicle origin), when both are reported. */
  lateralOffsetM?: number;
}

/** A 2D point in pixels (written by projectVehiclePoint). */
export interface PixelOut {
  uPx: number;
  vPx: number;
}

/** A 3D point in metres (written by pixelToGround). */
export interface PointOutM {
  x: number;
  y: number;
  z: number;
}

/**
 * What the lane detector needs from a camera: vehicle frame <-> pixels. `perception/world`'s
 * CameraModel satisfies it structurally.
 */
export interface GroundProjection {
  /** Writes the pixel of a vehicle-frame point; false when it is behind the camera. */
  projectVehiclePoint(pointM: { x: number; y: number; z: number }, out: PixelOut): boolean;
  /** Writes where the pixel's ray meets the road plane z = 0; false when it does not (at or above the horizon). */
  pixelToGround(uPx: number, vPx: number, out: PointOutM): boolean;
}

/** A camera the detector can use: projection plus the image size it was calibrated for. */
export type LaneCamera = GroundProjection & { intrinsics: { width: number; height: number } };

/** y of the boundary at x (metres, vehicle frame); extrapolates the cubic outside [xMinM, xMaxM]. */
export function sampleBoundaryM(b: LaneBoundary, xM: number): number {
  const c = b.coefficients;
  return c[0] + xM * (c[1] + xM * (c[2] + xM * c[3]));
}

/** Order boundaries are reported in. */
export const LANE_ROLES: readonly LaneRole[] = ['ego-left', 'ego-right', 'left-adjacent', 'right-adjacent'];
