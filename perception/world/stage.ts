/**
 * The world model as pipeline stages after detection and before rendering — 'track', 'lanes',
 * 'adas', each measured on its own: detections become
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
import type { HudScene } from '../../render/hud-scene.js';
import { AdasEngine, buildHudScene, type AdasLane, type AdasObject } from '../adas/index.js';
import type {} from '../detect/stage.js';
import { LaneDetector } from '../lanes/detector.js';
import { LANES_STAGE_NAME } from '../lanes/stage.js';
import type { LaneEstimate } from '../lanes/types.js';
import { MultiObjectTracker, type TrackInput, type TrackerOptions } from '../track/index.js';
import { CameraModel, type CameraMounting } from './camera-model.js';
import { EgoMotion } from './ego-motion.js';
import { groundContact } from './ground-plane.js';
import { sceneUpdateOf } from './scene-update.js';
import { adasObjectOf } from './adas-objects.js';

declare module '../../pipeline/frame.js' {
  interface Frame {
    /** Set by the world stage: lane boundaries in the vehicle frame. */
    lanes?: LaneEstimate;
    /** Set by the world stage: what the HUD shows for this frame (the render stage draws it). */
    hudScene?: HudScene;
    /** Set by the track stage: confirmed tracks on the road, as ADAS sees them (this frame's own copies). */
    worldObjects?: AdasObject[];
    /** Set by the track stage: no calibration, or time went back; later stages give a degraded scene. */
    worldDegraded?: boolean;
  }
}

/** The world model's stages, in order (their latency shows separately in the replay summary). */
export const TRACK_STAGE_NAME = 'track';
export const ADAS_STAGE_NAME = 'adas';

export interface WorldStageOptions {
  /** Where the camera sits on the vehicle (from calibration). */
  mounting: CameraMounting;
  tracker?: TrackerOptions;
  /** Find lanes in each frame. Default true. */
  lanes?: boolean;
}

function sameIntrinsics(a: CameraIntrinsics, b: CameraIntrinsics): boolean {
  return (
    a.width === b.width && a.height === b.height && a.fx === b.fx && a.fy === b.fy && a.cx === b.cx && a.cy === b.cy &&
    a.distortion.length === b.distortion.length && a.distortion.every((k, i) => k === b.distortion[i])
  );
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

    // Recordings repeat the calibration with every frame (a new object each time): compare values,
    // so the camera model and the lane detector's temporal state survive from frame to frame.
    const cameraFor = (intrinsics: CameraIntrinsics): CameraModel => {
      if (camera === undefined || cameraOf === undefined || !sameIntrinsics(cameraOf, intrinsics)) {
        camera = new CameraModel(intrinsics, options.mounting);
        cameraOf = intrinsics;
        metrics.count('world.cameraModels');
        lanes = options.lanes === false ? undefined : new LaneDetector(camera);
      }
      return camera;
    };

    /** Stage 'track': ground contacts of the boxes, ego motion, tracking -> frame.worldObjects. */
    const track = (frame: Frame): void => {
      if (!frame.camera) {
        metrics.count('world.noCalibration');
        frame.worldDegraded = true;
        return;
      }
      if (lastTNs !== undefined && frame.tCaptureNs <= lastTNs) {
        metrics.count('world.timeNotIncreasing');
        frame.worldDegraded = true;
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

      // The tracker reuses its Track objects on the next frame, which may enter this stage before
      // this frame leaves the next ones: the frame gets its own copies.
      const objects: AdasObject[] = [];
      for (const t of tracks) {
        const object = adasObjectOf(t, speedMps, yawRateRps);
        if (object) objects.push(object);
      }
      metrics.count('world.tracks', tracks.length);
      metrics.count('world.objectsOnRoad', objects.length);
      frame.worldObjects = objects;
    };

    /** Stage 'lanes': lane boundaries in the vehicle frame -> frame.lanes. */
    const findLanes = (frame: Frame): void => {
      if (frame.worldDegraded || !lanes) return;
      frame.lanes = lanes.detect(frame.image, frame.tCaptureNs);
    };

    /** Stage 'adas': decisions and the scene the HUD draws -> frame.hudScene. */
    const decide = (frame: Frame): void => {
      if (frame.worldDegraded) {
        frame.hudScene = buildHudScene({ tCaptureNs: frame.tCaptureNs, egoSpeedMps: frame.vehicle?.speedMps, degraded: true, objects: [] });
        return;
      }
      const objects = frame.worldObjects ?? [];
      const laneEstimate = frame.lanes;
      let lane: AdasLane | undefined;
      if (laneEstimate?.lateralOffsetM !== undefined && laneEstimate.laneWidthM !== undefined) {
        const confidenceOf = (role: string) => laneEstimate.boundaries.find((b) => b.role === role)?.confidence ?? 0;
        lane = { lateralOffsetM: laneEstimate.lateralOffsetM, laneWidthM: laneEstimate.laneWidthM, leftConfidence: confidenceOf('ego-left'), rightConfidence: confidenceOf('ego-right') };
      }
      const decisions = adas.update({ tNs: frame.tCaptureNs, egoSpeedMps: frame.vehicle?.speedMps ?? 0, egoYawRateRps: frame.vehicle?.yawRateRps ?? 0, objects, lane });
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
      stages: [
        stage(TRACK_STAGE_NAME, track, { clock, metrics, concurrency: 1 }),
        stage(LANES_STAGE_NAME, findLanes, { clock, metrics, concurrency: 1 }),
        stage(ADAS_STAGE_NAME, decide, { clock, metrics, concurrency: 1 }),
      ],
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
