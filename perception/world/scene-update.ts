/**
 * The HudScene as a foxglove.SceneUpdate for replay recordings, so Foxglove Studio's 3D panel shows
 * what the HUD was told: one entity per tracked object (a box on the road at its ground position,
 * coloured by warning level) and one per lane boundary (a line on the road through the ribbon's
 * points). Everything comes from the HudScene alone, so the recording cannot disagree with the HUD;
 * each entity lives exactly as long as its primitive is valid.
 */
import {
  LINE_STRIP,
  type KeyValuePair,
  type PoseJson,
  type RgbaColor,
  type SceneEntityJson,
  type SceneUpdateMessage,
} from '../../pipeline/recording/topics.js';
import { timestampFromNs } from '../../pipeline/time.js';
import type { HudObjectClass, HudScene, LaneRibbon, ObjectMarker, WarningLevel } from '../../render/hud-scene.js';

export type { SceneUpdateMessage } from '../../pipeline/recording/topics.js';

/** Frame the entities are expressed in: the ISO 8855 vehicle frame of the HudScene. */
export const SCENE_FRAME_ID = 'vehicle';

/** Object box colours by warning level: none grey, caution yellow, warning orange, critical red. */
export const SCENE_WARNING_COLORS: Readonly<Record<WarningLevel, RgbaColor>> = Object.freeze({
  none: { r: 0.6, g: 0.6, b: 0.6, a: 0.6 },
  caution: { r: 1, g: 0.85, b: 0, a: 0.7 },
  warning: { r: 1, g: 0.5, b: 0, a: 0.8 },
  critical: { r: 1, g: 0.1, b: 0.1, a: 0.9 },
});

/** Typical heights of the HUD classes, m (the HudScene carries width only; the box's height is a prior). */
export const OBJECT_HEIGHT_M: Readonly<Record<HudObjectClass, number>> = Object.freeze({
  person: 1.7,
  bicycle: 1.7,
  motorcycle: 1.5,
  car: 1.5,
  bus: 3.2,
  truck: 3.5,
});

const LANE_COLORS: Readonly<Record<LaneRibbon['role'], RgbaColor>> = {
  'ego-left': { r: 1, g: 1, b: 1, a: 1 },
  'ego-right': { r: 1, g: 1, b: 1, a: 1 },
  'adjacent-left': { r: 0.6, g: 0.7, b: 0.9, a: 1 },
  'adjacent-right': { r: 0.6, g: 0.7, b: 0.9, a: 1 },
  path: { r: 0.1, g: 0.8, b: 0.55, a: 1 },
};
/** Drawn width of a lane boundary, m (a painted line is 0.10-0.15 m). */
export const LANE_LINE_THICKNESS_M = 0.15;

const NS_PER_S = 1_000_000_000n;
const IDENTITY = { x: 0, y: 0, z: 0, w: 1 };

function poseAt(x: number, y: number, z: number): PoseJson {
  return { position: { x, y, z }, orientation: { ...IDENTITY } };
}

function entity(id: string, tNs: bigint, validUntilNs: bigint, metadata: KeyValuePair[]): SceneEntityJson {
  const lifetimeNs = validUntilNs - tNs;
  return {
    timestamp: timestampFromNs(tNs),
    frame_id: SCENE_FRAME_ID,
    id,
    lifetime: { sec: Number(lifetimeNs / NS_PER_S), nsec: Number(lifetimeNs % NS_PER_S) },
    frame_locked: true,
    metadata,
    arrows: [],
    cubes: [],
    spheres: [],
    cylinders: [],
    lines: [],
    triangles: [],
    texts: [],
    models: [],
  };
}

function objectEntity(marker: ObjectMarker, tNs: bigint): SceneEntityJson {
  const metadata: KeyValuePair[] = [
    { key: 'trackId', value: marker.trackId },
    { key: 'class', value: marker.objectClass },
    { key: 'warning', value: marker.warning },
  ];
  if (marker.ttcS !== undefined) metadata.push({ key: 'ttcS', value: marker.ttcS.toFixed(3) });
  const e = entity(`object/${marker.trackId}`, tNs, marker.validUntilNs, metadata);
  const heightM = OBJECT_HEIGHT_M[marker.objectClass];
  e.cubes.push({
    pose: poseAt(marker.positionM.x, marker.positionM.y, heightM / 2),
    size: { x: marker.widthM, y: marker.widthM, z: heightM },
    color: { ...SCENE_WARNING_COLORS[marker.warning] },
  });
  return e;
}

function laneEntity(ribbon: LaneRibbon, tNs: bigint): SceneEntityJson {
  const e = entity(`lane/${ribbon.id}`, tNs, ribbon.validUntilNs, [
    { key: 'role', value: ribbon.role },
    { key: 'lineType', value: ribbon.lineType },
    { key: 'confidence', value: ribbon.confidence.toFixed(3) },
  ]);
  e.lines.push({
    type: LINE_STRIP,
    pose: poseAt(0, 0, 0),
    thickness: LANE_LINE_THICKNESS_M,
    scale_invariant: false,
    points: ribbon.pointsM.map(([x, y]) => ({ x, y, z: 0 })),
    color: { ...LANE_COLORS[ribbon.role], a: Math.max(0.3, ribbon.confidence) },
    colors: [],
    indices: [],
  });
  return e;
}

/**
 * The SceneUpdate of `scene` at `tNs` (the entities' timestamp, normally the scene's capture time):
 * object markers and lane ribbons still valid at `tNs`, each with `lifetime` = its validity left.
 * Status primitives (speed, warnings banners) are not 3D content and stay in the HudScene topic.
 */
export function sceneUpdateOf(scene: HudScene, tNs: bigint): SceneUpdateMessage {
  const entities: SceneEntityJson[] = [];
  if (!scene.degraded) {
    for (const p of scene.primitives) {
      // Lifetime zero would mean "forever" to Foxglove: a primitive no longer valid is left out.
      if (p.validUntilNs <= tNs) continue;
      if (p.kind === 'lane') entities.push(laneEntity(p, tNs));
      else if (p.kind === 'object') entities.push(objectEntity(p, tNs));
    }
  }
  return { deletions: [], entities };
}
