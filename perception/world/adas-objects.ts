/**
 * Tracks as ADAS sees them: the tracker estimates positions and velocities over ground in the
 * vehicle frame; ADAS reasons about motion relative to the moving ego vehicle. One conversion, used
 * by the world stage and by the evaluation that checks its warnings against ground truth.
 */
import type { HudObjectClass } from '../../render/hud-scene.js';
import type { AdasObject } from '../adas/index.js';
import type { Track } from '../track/index.js';

/** Typical widths of the HUD classes, m: a box's width in pixels is noisier than this prior. */
export const OBJECT_WIDTH_M: Readonly<Record<HudObjectClass, number>> = { person: 0.6, bicycle: 0.7, motorcycle: 0.9, car: 1.85, bus: 2.55, truck: 2.5 };

/** A string id the HUD and MQTT payloads carry for a track. */
export function trackIdOf(id: number): string {
  return `t${id}`;
}

/**
 * The confirmed or coasting track with a ground position and a HUD class as an `AdasObject` (a new
 * object: tracks are reused by the tracker), else undefined. `egoSpeedMps` and `egoYawRateRps` turn
 * the velocity over ground into one relative to the ego vehicle: its speed along x, and the turn
 * sweeping the point. The lateral extent is the class width around the box's bottom centre: the
 * box's bottom corners are not on the object when it is seen obliquely (a parked car beside the path
 * would reach into it).
 */
export function adasObjectOf(track: Readonly<Track>, egoSpeedMps: number, egoYawRateRps: number): AdasObject | undefined {
  if (track.state === 'tentative' || !track.positionM || !track.hudClass) return undefined;
  const v = track.velocityMps ?? { x: 0, y: 0 };
  const { x, y } = track.positionM;
  const object: AdasObject = {
    trackId: trackIdOf(track.id),
    objectClass: track.hudClass,
    positionM: { x, y },
    relativeVelocityMps: { x: v.x - egoSpeedMps + egoYawRateRps * y, y: v.y - egoYawRateRps * x },
    widthM: OBJECT_WIDTH_M[track.hudClass],
  };
  if (track.velocitySigmaMps !== undefined) object.velocitySigmaMps = track.velocitySigmaMps;
  return object;
}
