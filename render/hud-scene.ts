/**
 * `HudScene`: what the HUD should show, as overlay primitives in the vehicle frame (ISO 8855: x
 * forward, y left, z up, metres, origin at the rear-axle centre on the ground), each valid until a
 * time. It is the contract between the decision side (ADAS) and drawing, and an MQTT payload, so
 * it has a JSON form with a JSON Schema; times travel as decimal strings of nanoseconds (JSON numbers
 * cannot hold epoch nanoseconds).
 */
import { Ajv, type ErrorObject } from 'ajv';

export const HUD_SCENE_VERSION = 1;

export type WarningLevel = 'none' | 'caution' | 'warning' | 'critical';
export type HudObjectClass = 'person' | 'bicycle' | 'motorcycle' | 'car' | 'bus' | 'truck';

interface Validity {
  /** The primitive must not be drawn at or after this time (source clock, ns). */
  validUntilNs: bigint;
}

/** A lane boundary or the ego path as a polyline on the road (z = 0). */
export interface LaneRibbon extends Validity {
  kind: 'lane';
  id: string;
  role: 'ego-left' | 'ego-right' | 'adjacent-left' | 'adjacent-right' | 'path';
  /** Points [xM, yM] on the ground, nearest first. */
  pointsM: [number, number][];
  lineType: 'solid' | 'dashed' | 'unknown';
  confidence: number;
}

/** A bracket on the ground under a tracked object. */
export interface ObjectMarker extends Validity {
  kind: 'object';
  trackId: string;
  objectClass: HudObjectClass;
  positionM: { x: number; y: number };
  widthM: number;
  warning: WarningLevel;
  /** Time to collision, when closing. */
  ttcS?: number;
}

export interface CollisionWarning extends Validity {
  kind: 'forward-collision';
  level: Exclude<WarningLevel, 'none'>;
  ttcS: number;
}

export interface LaneDeparture extends Validity {
  kind: 'lane-departure';
  side: 'left' | 'right';
}

export interface AccLeadMarker extends Validity {
  kind: 'acc-lead';
  trackId: string;
  gapM: number;
}

export interface NavigationArrow extends Validity {
  kind: 'navigation';
  /** Distance along the road to the manoeuvre. */
  distanceM: number;
  turn: 'left' | 'right' | 'straight' | 'u-turn';
}

export interface SpeedStatus extends Validity {
  kind: 'speed';
  speedMps: number;
  limitMps?: number;
}

export type HudPrimitive = LaneRibbon | ObjectMarker | CollisionWarning | LaneDeparture | AccLeadMarker | NavigationArrow | SpeedStatus;

export interface HudScene {
  version: typeof HUD_SCENE_VERSION;
  /** Capture time of the perception this scene comes from. */
  tCaptureNs: bigint;
  brightness: 'day' | 'night';
  /** Perception is late or faulty: show the degraded-state indicator, no AR content. */
  degraded: boolean;
  primitives: HudPrimitive[];
}

/** Primitives still valid at `displayTimeNs` (anything else must not be drawn: no stale overlays). */
export function validPrimitives(scene: HudScene, displayTimeNs: bigint): HudPrimitive[] {
  return scene.primitives.filter((p) => displayTimeNs < p.validUntilNs);
}

// ---------------------------------------------------------------------------------------------
// JSON form

const NS = { type: 'string', pattern: '^[0-9]{1,20}$' };
const WARNING = { enum: ['none', 'caution', 'warning', 'critical'] };
const finite = { type: 'number' };
const nonNegative = { type: 'number', minimum: 0 };
const primitive = (kind: string, properties: Record<string, unknown>, required: string[]) => ({
  type: 'object',
  additionalProperties: false,
  properties: { kind: { const: kind }, validUntilNs: NS, ...properties },
  required: ['kind', 'validUntilNs', ...required],
});

/** JSON Schema of the scene as sent over MQTT and stored in files. */
export const HUD_SCENE_SCHEMA = {
  $id: 'arhud.HudScene',
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { const: HUD_SCENE_VERSION },
    tCaptureNs: NS,
    brightness: { enum: ['day', 'night'] },
    degraded: { type: 'boolean' },
    primitives: {
      type: 'array',
      maxItems: 256,
      items: {
        oneOf: [
          primitive(
            'lane',
            {
              id: { type: 'string' },
              role: { enum: ['ego-left', 'ego-right', 'adjacent-left', 'adjacent-right', 'path'] },
              pointsM: { type: 'array', minItems: 2, maxItems: 512, items: { type: 'array', items: finite, minItems: 2, maxItems: 2 } },
              lineType: { enum: ['solid', 'dashed', 'unknown'] },
              confidence: { type: 'number', minimum: 0, maximum: 1 },
            },
            ['id', 'role', 'pointsM', 'lineType', 'confidence'],
          ),
          primitive(
            'object',
            {
              trackId: { type: 'string' },
              objectClass: { enum: ['person', 'bicycle', 'motorcycle', 'car', 'bus', 'truck'] },
              positionM: { type: 'object', additionalProperties: false, properties: { x: finite, y: finite }, required: ['x', 'y'] },
              widthM: nonNegative,
              warning: WARNING,
              ttcS: nonNegative,
            },
            ['trackId', 'objectClass', 'positionM', 'widthM', 'warning'],
          ),
          primitive('forward-collision', { level: { enum: ['caution', 'warning', 'critical'] }, ttcS: nonNegative }, ['level', 'ttcS']),
          primitive('lane-departure', { side: { enum: ['left', 'right'] } }, ['side']),
          primitive('acc-lead', { trackId: { type: 'string' }, gapM: nonNegative }, ['trackId', 'gapM']),
          primitive('navigation', { distanceM: nonNegative, turn: { enum: ['left', 'right', 'straight', 'u-turn'] } }, ['distanceM', 'turn']),
          primitive('speed', { speedMps: nonNegative, limitMps: nonNegative }, ['speedMps']),
        ],
      },
    },
  },
  required: ['version', 'tCaptureNs', 'brightness', 'degraded', 'primitives'],
} as const;

const validateScene = new Ajv({ strict: false, allErrors: false }).compile(HUD_SCENE_SCHEMA);

/** A scene payload that fails its schema; the message names the source and the field. */
export class HudSceneError extends Error {
  override readonly name = 'HudSceneError';
}

function describe(errors: ErrorObject[] | null | undefined): string {
  // oneOf failures report every branch; the deepest path is the most useful one.
  const first = [...(errors ?? [])].sort((a, b) => b.instancePath.length - a.instancePath.length)[0];
  if (!first) return 'invalid scene';
  const field = first.instancePath === '' ? '(root)' : first.instancePath.slice(1).replaceAll('/', '.');
  return `field '${field}' ${first.message ?? 'is invalid'}`;
}

export function hudSceneToJson(scene: HudScene): string {
  return JSON.stringify(scene, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
}

/** Parses and validates a scene (from MQTT or a file); `source` names it in errors. */
export function parseHudScene(text: string, source = 'scene'): HudScene {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new HudSceneError(`${source}: not JSON (${(error as Error).message})`);
  }
  if (!validateScene(json)) throw new HudSceneError(`${source}: ${describe(validateScene.errors)}`);
  const raw = json as Omit<HudScene, 'tCaptureNs' | 'primitives'> & { tCaptureNs: string; primitives: (Omit<HudPrimitive, 'validUntilNs'> & { validUntilNs: string })[] };
  return {
    ...raw,
    tCaptureNs: BigInt(raw.tCaptureNs),
    primitives: raw.primitives.map((p) => ({ ...p, validUntilNs: BigInt(p.validUntilNs) }) as HudPrimitive),
  };
}
