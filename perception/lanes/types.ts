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

/** y of the boundary at x (metres, vehicle frame); extrapolates the cubic outside [xMinM, xMaxM]. */
export function sampleBoundaryM(b: LaneBoundary, xM: number): number {
  const c = b.coefficients;
  return c[0] + xM * (c[1] + xM * (c[2] + xM * c[3]));
}

/** Order boundaries are reported in. */
export const LANE_ROLES: readonly LaneRole[] = ['ego-left', 'ego-right', 'left-adjacent', 'right-adjacent'];
