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
import { AdasEngine, WORLD_VALIDITY_NS, buildHudScene, type AdasLane, type AdasObject } from '../adas/index.js';
import type {} from '../detect/stage.js';
import { LaneDetector } from '../lanes/detector.js';
import { LANES_STAGE_NAME } from '../lanes/stage.js';
import type { LaneEstimate } from '../lanes/types.js';
import { MultiObjectTracker, withoutVehicleDuplicates, type TrackInput, type TrackerOptions } from '../track/index.js';
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
/**
 * Objects are drawn only while the newest detector run is at most this old (the world content's
 * validity): the tracker coasts through frames the detector skips (degradation) or loses (faults,
 * overruns), but not for longer — then the scene is degraded (indicator, no AR objects).
 */
export const DETECTION_STALE_NS = WORLD_VALIDITY_NS;
/** Capture time going back by more than this is a clock reset (the world model starts over), ns; less is an out-of-order frame (skipped). */
export const TIME_RESET_NS = 1_000_000_000n;
/** Deadline of each world-model stage, ms (they take ~1 ms; lanes at 1080p ~25 ms at p99 on a loaded host). */
export const WORLD_STAGE_DEADLINE_MS = 50;

export interface WorldStageOptions {
  /** Where the camera sits on the vehicle (from calibration). */
  mounting: CameraMounting;
  tracker?: TrackerOptions;
  /** Camera intrinsics for frames that carry none (a video or live source); frames' own calibration wins. */
  intrinsics?: CameraIntrinsics;
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
  return (context) => {
    const { metrics } = context;
    const tracker = new MultiObjectTracker(options.tracker);
    let ego = new EgoMotion();
    let adas = new AdasEngine();
    let camera: CameraModel | undefined;
    let cameraOf: CameraIntrinsics | undefined;
    let lanes: LaneDetector | undefined;
    let lastTNs: bigint | undefined;
    let lastDetectedTNs: bigint | undefined;
    const inputs: TrackInput[] = [];
    const resetState = () => {
      tracker.reset();
      ego = new EgoMotion();
      adas = new AdasEngine();
      if (camera) lanes = options.lanes === false ? undefined : new LaneDetector(camera);
      lastTNs = undefined;
      lastDetectedTNs = undefined;
    };

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
      const intrinsics = frame.camera ?? options.intrinsics;
      if (!intrinsics) {
        metrics.count('world.noCalibration');
        frame.worldDegraded = true;
        return;
      }
      if (lastTNs !== undefined && frame.tCaptureNs <= lastTNs) {
        if (lastTNs - frame.tCaptureNs <= TIME_RESET_NS) {
          metrics.count('world.timeNotIncreasing');
          frame.worldDegraded = true;
          return;
        }
        // A clock reset (a source restarted, a recording looped): nothing tracked before is valid
        // on the new time line; start over instead of waiting for the old time to come back.
        metrics.count('world.timeResets');
        resetState();
      }
      const previousTNs = lastTNs;
      lastTNs = frame.tCaptureNs;
      const cam = cameraFor(intrinsics);
      const speedMps = frame.vehicle?.speedMps ?? 0;
      const yawRateRps = frame.vehicle?.yawRateRps ?? 0;
      if (frame.vehicle) ego.update(frame.tCaptureNs, { speedMps, yawRateRps });
      const egoDelta = previousTNs === undefined ? undefined : ego.deltaBetween(previousTNs, frame.tCaptureNs);

      inputs.length = 0;
      let duplicates = 0;
      const detections = frame.detections ? withoutVehicleDuplicates(frame.detections) : [];
      if (frame.detections) duplicates = frame.detections.length - detections.length;
      if (duplicates > 0) metrics.count('world.vehicleDuplicates', duplicates);
      for (const detection of detections) {
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
      if (frame.detections !== undefined) lastDetectedTNs = frame.tCaptureNs;
      // Before the first detector run there are no tracks to draw (a graph may run lanes alone).
      const perceptionStale = lastDetectedTNs !== undefined && frame.tCaptureNs - lastDetectedTNs > DETECTION_STALE_NS;
      if (perceptionStale) metrics.count('world.detectionsStale');
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
        degraded: frame.vehicle === undefined || perceptionStale,
        objects,
        lanes: laneEstimate?.boundaries,
        adas: decisions,
      });
    };

    return {
      stages: [
        stage(TRACK_STAGE_NAME, track, { ...context, deadlineMs: WORLD_STAGE_DEADLINE_MS }),
        stage(LANES_STAGE_NAME, findLanes, { ...context, deadlineMs: WORLD_STAGE_DEADLINE_MS }),
        stage(ADAS_STAGE_NAME, decide, { ...context, deadlineMs: WORLD_STAGE_DEADLINE_MS }),
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
