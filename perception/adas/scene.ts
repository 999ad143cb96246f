/**
 * The HudScene the renderer draws, from the world model and the ADAS decisions: lane ribbons, ground
 * brackets under tracked objects coloured by warning level, the forward-collision banner, the
 * lane-departure edge, the ACC lead marker and the speed. Everything is valid for a short time after
 * capture, so a late or stopped perception never leaves stale overlays on the road.
 */
import { HUD_SCENE_VERSION, type HudPrimitive, type HudScene, type LaneRibbon } from '../../render/hud-scene.js';
import type { AdasObject, AdasOutput } from './adas.js';

/** World-registered content is drawn for at most this long after capture, ns (3 frames at 10 Hz). */
export const WORLD_VALIDITY_NS = 300_000_000n;
/** Lane ribbons are drawn from here to here, m (closer is under the hood, farther is noise). */
export const LANE_DRAW_MIN_M = 5;
export const LANE_DRAW_MAX_M = 100;
/** Spacing of the ribbon's polyline points, m. */
export const LANE_POINT_SPACING_M = 5;
/** Lanes below this confidence are not drawn (nothing invented). */
export const LANE_DRAW_MIN_CONFIDENCE = 0.3;

/** A lane boundary as the lane detector reports it (perception/lanes). */
export interface SceneLaneBoundary {
  role: 'ego-left' | 'ego-right' | 'left-adjacent' | 'right-adjacent';
  /** y(x) = c0 + c1 x + c2 x^2 + c3 x^3, vehicle frame, m. */
  coefficients: readonly [number, number, number, number];
  xMinM: number;
  xMaxM: number;
  confidence: number;
  lineType: 'solid' | 'dashed' | 'unknown';
}

export interface SceneInput {
  tCaptureNs: bigint;
  egoSpeedMps?: number;
  speedLimitMps?: number;
  brightness?: 'day' | 'night';
  /** Perception is late or faulty: only status content is shown. */
  degraded?: boolean;
  objects: readonly AdasObject[];
  lanes?: readonly SceneLaneBoundary[];
  adas?: AdasOutput;
}

const ROLE_OF: Record<SceneLaneBoundary['role'], LaneRibbon['role']> = {
  'ego-left': 'ego-left',
  'ego-right': 'ego-right',
  'left-adjacent': 'adjacent-left',
  'right-adjacent': 'adjacent-right',
};

function ribbonOf(boundary: SceneLaneBoundary, validUntilNs: bigint): LaneRibbon | undefined {
  const fromM = Math.max(LANE_DRAW_MIN_M, boundary.xMinM);
  const toM = Math.min(LANE_DRAW_MAX_M, boundary.xMaxM);
  if (!(toM > fromM) || !(boundary.confidence >= LANE_DRAW_MIN_CONFIDENCE)) return undefined;
  const [c0, c1, c2, c3] = boundary.coefficients;
  const pointsM: [number, number][] = [];
  for (let x = fromM; x < toM + 1e-9; x += LANE_POINT_SPACING_M) pointsM.push([x, c0 + x * (c1 + x * (c2 + x * c3))]);
  if (pointsM.length < 2) pointsM.push([toM, c0 + toM * (c1 + toM * (c2 + toM * c3))]);
  if (pointsM.some(([x, y]) => !Number.isFinite(x) || !Number.isFinite(y))) return undefined;
  return { kind: 'lane', id: boundary.role, role: ROLE_OF[boundary.role], pointsM, lineType: boundary.lineType, confidence: Math.min(1, boundary.confidence), validUntilNs };
}

/** Builds the HudScene for one perception cycle. */
export function buildHudScene(input: SceneInput): HudScene {
  const validUntilNs = input.tCaptureNs + WORLD_VALIDITY_NS;
  const primitives: HudPrimitive[] = [];
  const degraded = input.degraded ?? false;
  if (!degraded) {
    for (const boundary of input.lanes ?? []) {
      const ribbon = ribbonOf(boundary, validUntilNs);
      if (ribbon) primitives.push(ribbon);
    }
    const assessments = new Map((input.adas?.objects ?? []).map((a) => [a.trackId, a]));
    for (const object of input.objects) {
      const assessment = assessments.get(object.trackId);
      const marker: HudPrimitive = {
        kind: 'object',
        trackId: object.trackId,
        objectClass: object.objectClass,
        positionM: { x: object.positionM.x, y: object.positionM.y },
        widthM: object.widthM,
        warning: assessment?.warning ?? 'none',
        validUntilNs,
      };
      if (assessment?.ttcS !== undefined) marker.ttcS = assessment.ttcS;
      primitives.push(marker);
    }
    const adas = input.adas;
    if (adas?.forwardCollision) primitives.push({ kind: 'forward-collision', level: adas.forwardCollision.level, ttcS: adas.forwardCollision.ttcS, validUntilNs });
    if (adas?.laneDeparture) primitives.push({ kind: 'lane-departure', side: adas.laneDeparture.side, validUntilNs });
    if (adas?.accLead) primitives.push({ kind: 'acc-lead', trackId: adas.accLead.trackId, gapM: adas.accLead.gapM, validUntilNs });
  }
  if (input.egoSpeedMps !== undefined && Number.isFinite(input.egoSpeedMps)) {
    const speed: HudPrimitive = { kind: 'speed', speedMps: Math.max(0, input.egoSpeedMps), validUntilNs };
    if (input.speedLimitMps !== undefined) speed.limitMps = input.speedLimitMps;
    primitives.push(speed);
  }
  return { version: HUD_SCENE_VERSION, tCaptureNs: input.tCaptureNs, brightness: input.brightness ?? 'day', degraded, primitives };
}
