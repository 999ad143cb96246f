/**
 * The world model as a pipeline stage, after detection and before rendering: detections become
 * tracked objects on the road (ground contact, ego-motion-compensated tracking), lanes are found in
 * the frame, ADAS decides what deserves the driver's attention, and the result is the frame's
 * `HudScene`, which the render stage draws and the display link publishes.
 *
 * A frame without camera calibration, or whose capture time goes backwards, gets a degraded scene
 * (status only, no AR content) and is counted: nothing is drawn on the road that the model cannot
 * place.
 *
 * In replays the scene is also written to the output recording, once per frame: as is on
 * TOPIC_HUD_SCENE ('/hud/scene', arhud.HudScene) and as 3D entities on TOPIC_WORLD_SCENE
 * ('/world/scene', foxglove.SceneUpdate, built from the scene by `sceneUpdateOf`).
 */
import type { CameraIntrinsics, Frame } from '../../pipeline/frame.js';
import { TOPIC_HUD_SCENE, TOPIC_WORLD_SCENE, hudSceneCodec, sceneUpdateCodec } from '../../pipeline/recording/topics.js';
import type { ReplayExtensionFactory } from '../../pipeline/replay.js';
import { stage } from '../../pipeline/stage.js';
import type { HudObjectClass, HudScene } from '../../render/hud-scene.js';
import { AdasEngine, buildHudScene, type AdasLane, type AdasObject } from '../adas/index.js';
import type {} from '../detect/stage.js';
import { LaneDetector } from '../lanes/detector.js';
import type { LaneEstimate } from '../lanes/types.js';
import { MultiObjectTracker, type TrackInput, type TrackerOptions } from '../track/index.js';
import { CameraModel, type CameraMounting } from './camera-model.js';
import { EgoMotion } from './ego-motion.js';
import { groundContact } from './ground-plane.js';
import { sceneUpdateOf } from './scene-update.js';

declare module '../../pipeline/frame.js' {
  interface Frame {
    /** Set by the world stage: lane boundaries in the vehicle frame. */
    lanes?: LaneEstimate;
    /** Set by the world stage: what the HUD shows for this frame (the render stage draws it). */
    hudScene?: HudScene;
  }
}

export const WORLD_STAGE_NAME = 'world';
/** Typical widths of the HUD classes, m: a box's width in pixels is noisier than this prior. */
export const OBJECT_WIDTH_M: Readonly<Record<HudObjectClass, number>> = { person: 0.6, bicycle: 0.7, motorcycle: 0.9, car: 1.85, bus: 2.55, truck: 2.5 };

export interface WorldStageOptions {
  /** Where the camera sits on the vehicle (from calibration). */
  mounting: CameraMounting;
  tracker?: TrackerOptions;
  /** Find lanes in each frame. Default true. */
  lanes?: boolean;
}

/** A string id the HUD and MQTT payloads carry for a track. */
function trackIdOf(id: number): string {
  return `t${id}`;
}

/** The world model for runReplay (put it after the detect extension and before the render one). */
export function worldExtension(options: WorldStageOptions): ReplayExtensionFactory {
  return ({ clock, metrics }) => {
    const tracker = new MultiObjectTracker(options.tracker);
    const ego = new EgoMotion();
    const adas = new AdasEngine();
    let camera: CameraModel | undefined;
    let cameraOf: CameraIntrinsics | undefined;
    let lanes: LaneDetector | undefined;
    let lastTNs: bigint | undefined;
    const inputs: TrackInput[] = [];
    const objects: AdasObject[] = [];

    const cameraFor = (intrinsics: CameraIntrinsics): CameraModel => {
      if (camera === undefined || cameraOf !== intrinsics) {
        camera = new CameraModel(intrinsics, options.mounting);
        cameraOf = intrinsics;
        lanes = options.lanes === false ? undefined : new LaneDetector(camera);
      }
      return camera;
    };

    const degradedScene = (frame: Frame): HudScene =>
      buildHudScene({ tCaptureNs: frame.tCaptureNs, egoSpeedMps: frame.vehicle?.speedMps, degraded: true, objects: [] });

    const work = (frame: Frame): void => {
      if (!frame.camera) {
        metrics.count('world.noCalibration');
        frame.hudScene = degradedScene(frame);
        return;
      }
      if (lastTNs !== undefined && frame.tCaptureNs <= lastTNs) {
        metrics.count('world.timeNotIncreasing');
        frame.hudScene = degradedScene(frame);
        return;
      }
      const previousTNs = lastTNs;
      lastTNs = frame.tCaptureNs;
      const cam = cameraFor(frame.camera);
      const speedMps = frame.vehicle?.speedMps ?? 0;
      const yawRateRps = frame.vehicle?.yawRateRps ?? 0;
      if (frame.vehicle) ego.update(frame.tCaptureNs, { speedMps, yawRateRps });
      const egoDelta = previousTNs === undefined ? undefined : ego.deltaBetween(previousTNs, frame.tCaptureNs);

      inputs.length = 0;
      for (const detection of frame.detections ?? []) {
        if (detection.hudClass === undefined) continue;
        let contact;
        try {
          contact = groundContact(detection.box, cam);
        } catch {
          metrics.count('world.badBoxes');
          continue;
        }
        inputs.push(contact ? { detection, positionM: contact.positionM, rangeSigmaM: contact.rangeSigmaM, lateralSigmaM: contact.lateralSigmaM } : { detection });
      }
      // Frames the detector skipped coast; frames it ran on update (an empty run ends tentative tracks).
      const tracks = frame.detections === undefined ? tracker.coast(frame.tCaptureNs, egoDelta) : tracker.update(frame.tCaptureNs, inputs, egoDelta);

      objects.length = 0;
      for (const track of tracks) {
        if (track.state === 'tentative' || !track.positionM || !track.hudClass) continue;
        const v = track.velocityMps ?? { x: 0, y: 0 };
        const { x, y } = track.positionM;
        objects.push({
          trackId: trackIdOf(track.id),
          objectClass: track.hudClass,
          positionM: { x, y },
          // Over ground -> relative to the ego vehicle (its speed along x, and the turn sweeping the point).
          relativeVelocityMps: { x: v.x - speedMps + yawRateRps * y, y: v.y - yawRateRps * x },
          widthM: OBJECT_WIDTH_M[track.hudClass],
        });
      }

      metrics.count('world.tracks', tracks.length);
      metrics.count('world.objectsOnRoad', objects.length);
      const laneEstimate = lanes?.detect(frame.image, frame.tCaptureNs);
      if (laneEstimate) frame.lanes = laneEstimate;
      let lane: AdasLane | undefined;
      if (laneEstimate?.lateralOffsetM !== undefined && laneEstimate.laneWidthM !== undefined) {
        const confidenceOf = (role: string) => laneEstimate.boundaries.find((b) => b.role === role)?.confidence ?? 0;
        lane = { lateralOffsetM: laneEstimate.lateralOffsetM, laneWidthM: laneEstimate.laneWidthM, leftConfidence: confidenceOf('ego-left'), rightConfidence: confidenceOf('ego-right') };
      }
      const decisions = adas.update({ tNs: frame.tCaptureNs, egoSpeedMps: speedMps, egoYawRateRps: yawRateRps, objects, lane });
      frame.hudScene = buildHudScene({
        tCaptureNs: frame.tCaptureNs,
        egoSpeedMps: frame.vehicle?.speedMps,
        degraded: frame.vehicle === undefined,
        objects,
        lanes: laneEstimate?.boundaries,
        adas: decisions,
      });
    };

    return {
      stages: [stage(WORLD_STAGE_NAME, work, { clock, metrics, concurrency: 1 })],
      // The scene as given to the HUD, and the same scene as 3D entities for Foxglove.
      writeOutputs: async (frame, writer, logTimeNs) => {
        const scene = frame.hudScene;
        if (!scene) return;
        await writer.write(TOPIC_WORLD_SCENE, sceneUpdateCodec, logTimeNs, sceneUpdateOf(scene, scene.tCaptureNs));
        await writer.write(TOPIC_HUD_SCENE, hudSceneCodec, logTimeNs, scene);
      },
    };
  };
}
