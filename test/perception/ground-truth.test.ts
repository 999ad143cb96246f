import { describe, it, expect, beforeAll } from 'vitest';
import sharp from 'sharp';
import {
  EVAL_CLASSES,
  MAX_OCCLUDED_FRACTION,
  MIN_HEIGHT_PX,
  MIN_INSIDE_FRACTION,
  NEAR_PLANE_M,
  PERSON_LABELS,
  VEHICLE_LABELS,
  evalClassOfDetectorClass,
  evalClassOfLabel,
  projectGroundTruth,
  unionArea,
  type CameraPoseInWorld,
  type ProjectedObject,
} from '../../perception/detect/ground-truth.js';
import { iou } from '../../perception/detect/average-precision.js';
import type { Box } from '../../perception/detect/types.js';
import {
  RecordingReader,
  TOPIC_CAMERA,
  TOPIC_CAMERA_CALIBRATION,
  TOPIC_CAMERA_POSE,
  TOPIC_GROUND_TRUTH,
  cameraCalibrationCodec,
  compressedImageCodec,
  groundTruthObjectsCodec,
  poseCodec,
  type CameraIntrinsics,
  type CompressedImageMessage,
  type GroundTruthObject,
  type PoseMessage,
} from '../../pipeline/index.js';
import { importedPandasetDrive } from '../support/data.js';
import { thrownBy } from '../support/errors.js';

// Synthetic rig: camera 1.5 m above the world origin looking along world +x, so camera x (right) is
// world -y, camera y (down) is world -z and camera z (forward) is world +x. The rotation
// worldFromCamera has columns (0,-1,0), (0,0,-1), (1,0,0): quaternion (x,y,z,w) = (-1,1,-1,1)/2.
const CAMERA_HEIGHT_M = 1.5;
const POSE: CameraPoseInWorld = { positionM: { x: 0, y: 0, z: CAMERA_HEIGHT_M }, orientation: { x: -0.5, y: 0.5, z: -0.5, w: 0.5 } };
const F_PX = 1000;
const INTRINSICS: CameraIntrinsics = {
  width: 1920,
  height: 1080,
  fx: F_PX,
  fy: F_PX,
  cx: 960,
  cy: 540,
  distortionModel: 'plumb_bob',
  distortion: [0, 0, 0, 0, 0],
};

function cuboid(id: string, init: Partial<GroundTruthObject> = {}): GroundTruthObject {
  return {
    id,
    label: 'Car',
    positionM: { x: 20, y: 0, z: CAMERA_HEIGHT_M },
    lengthM: 4,
    widthM: 2,
    heightM: 1.5,
    yawRad: 0,
    stationary: false,
    ...init,
  };
}

/** A flat board facing the camera at `depthM` whose projection is exactly `box` (zero length, yaw 0). */
function board(id: string, depthM: number, box: Box, init: Partial<GroundTruthObject> = {}): GroundTruthObject {
  const [x1, y1, x2, y2] = box.map((value, i) => ((value - (i % 2 === 0 ? INTRINSICS.cx : INTRINSICS.cy)) * depthM) / F_PX) as Box;
  return cuboid(id, {
    positionM: { x: depthM, y: -(x1 + x2) / 2, z: CAMERA_HEIGHT_M - (y1 + y2) / 2 },
    lengthM: 0,
    widthM: x2 - x1,
    heightM: y2 - y1,
    ...init,
  });
}

function project(objects: GroundTruthObject[], options = {}): ProjectedObject[] {
  return projectGroundTruth(objects, POSE, INTRINSICS, options);
}

function only(objects: GroundTruthObject[], id: string, options = {}): ProjectedObject {
  const found = project(objects, options).find((p) => p.id === id);
  if (!found) throw new Error(`no projected object '${id}'`);
  return found;
}

function expectBox(actual: Box | undefined, expected: Box): void {
  expect(actual).toBeDefined();
  actual!.forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 6));
}

describe('evalClassOfLabel', () => {
  it('maps PandaSet vehicle and person labels and leaves the rest out', () => {
    for (const label of VEHICLE_LABELS) expect(evalClassOfLabel(label)).toBe('vehicle');
    for (const label of PERSON_LABELS) expect(evalClassOfLabel(label)).toBe('person');
    for (const label of ['Cones', 'Bicycle', 'Motorcycle', 'Towed Object', 'Pylons', 'Signs', 'car', '']) expect(evalClassOfLabel(label)).toBeUndefined();
    expect(EVAL_CLASSES).toEqual(['vehicle', 'person']);
  });

  it('maps detector class names the same way', () => {
    expect(['car', 'bus', 'truck', 'person'].map(evalClassOfDetectorClass)).toEqual(['vehicle', 'vehicle', 'vehicle', 'person']);
    for (const name of ['bicycle', 'motorcycle', 'train', 'traffic light', 'Car']) expect(evalClassOfDetectorClass(name)).toBeUndefined();
  });
});

describe('projectGroundTruth geometry', () => {
  it('projects a box straight ahead where pinhole math puts it', () => {
    // 4 m long (along x), 2 m wide, 1.5 m tall, centre 20 m ahead at camera height: the near face
    // (depth 18 m) bounds the image box: u = 960 +- 1000 * 1 / 18, v = 540 +- 1000 * 0.75 / 18.
    const p = only([cuboid('a')], 'a');
    expectBox(p.box, [960 - 1000 / 18, 540 - 750 / 18, 960 + 1000 / 18, 540 + 750 / 18]);
    expectBox(p.unclippedBox, p.box!);
    expect(p.depthM).toBeCloseTo(20, 12);
    expect(p.heightPx).toBeCloseTo(1500 / 18, 9);
    expect(p.insideFraction).toBeCloseTo(1, 12);
    expect(p).toMatchObject({ id: 'a', label: 'Car', evalClass: 'vehicle', occludedFraction: 0, visible: true });
    expect(p.reason).toBeUndefined();
  });

  it('takes the near corners for the outer edge and the far corners for the inner edge off-axis', () => {
    // Centre 5 m to the right (world y = -5): camera x spans 4..6 m over depths 18..22 m.
    const p = only([cuboid('a', { positionM: { x: 20, y: -5, z: CAMERA_HEIGHT_M } })], 'a');
    expectBox(p.box, [960 + 4000 / 22, 540 - 750 / 18, 960 + 6000 / 18, 540 + 750 / 18]);
  });

  it('swaps length and width when the yaw turns by 90 degrees', () => {
    // Length now along world y (4 m across the view), width 2 m in depth: near face at 19 m.
    const turned = only([cuboid('a', { yawRad: Math.PI / 2 })], 'a');
    expectBox(turned.box, [960 - 2000 / 19, 540 - 750 / 19, 960 + 2000 / 19, 540 + 750 / 19]);
  });

  it('does not show an object behind the camera', () => {
    const p = only([cuboid('a', { positionM: { x: -10, y: 0, z: CAMERA_HEIGHT_M } })], 'a');
    expect(p).toMatchObject({ visible: false, reason: 'behind-camera', box: undefined, unclippedBox: undefined, insideFraction: 0, heightPx: 0 });
    expect(p.depthM).toBeCloseTo(-10, 12);
  });

  it('clips a box that straddles the camera plane at the near plane, and what is in front still occludes', () => {
    // Beside the camera: x -2..2 (depth), camera x 0.5..2.5 m, camera y -0.75..0.75 m. Clipped to
    // depth NEAR_PLANE_M..2: u from 960 + 1000 * 0.5 / 2 to 960 + 1000 * 2.5 / NEAR_PLANE_M.
    const beside = cuboid('beside', { positionM: { x: 0, y: -1.5, z: CAMERA_HEIGHT_M } });
    const behindIt = board('far', 20, [1300, 440, 1500, 640]);
    const [a, b] = project([beside, behindIt]);
    expectBox(a!.unclippedBox, [1210, 540 - 750 / NEAR_PLANE_M, 960 + 2500 / NEAR_PLANE_M, 540 + 750 / NEAR_PLANE_M]);
    expectBox(a!.box, [1210, 0, 1920, 1080]);
    expect(a).toMatchObject({ visible: false, reason: 'behind-camera' });
    expect(b!.occludedFraction).toBeCloseTo(1, 12);
    expect(b).toMatchObject({ visible: false, reason: 'occluded' });
  });
});

describe('projectGroundTruth visibility limits', () => {
  const TARGET: Box = [860, 440, 1060, 640];

  it(`needs at least MIN_INSIDE_FRACTION (${MIN_INSIDE_FRACTION}) of the box inside the image`, () => {
    const straddlingRightEdge = (fraction: number) => board('a', 10, [1920 - 200 * fraction, 440, 1920 + 200 * (1 - fraction), 640]);
    const above = only([straddlingRightEdge(MIN_INSIDE_FRACTION + 1e-3)], 'a');
    expect(above.insideFraction).toBeCloseTo(MIN_INSIDE_FRACTION + 1e-3, 9);
    expect(above.visible).toBe(true);
    expectBox(above.box, [1920 - 200 * (MIN_INSIDE_FRACTION + 1e-3), 440, 1920, 640]);
    const below = only([straddlingRightEdge(MIN_INSIDE_FRACTION - 1e-3)], 'a');
    expect(below.insideFraction).toBeCloseTo(MIN_INSIDE_FRACTION - 1e-3, 9);
    expect(below).toMatchObject({ visible: false, reason: 'outside-image' });
    const gone = only([board('a', 10, [2000, 440, 2100, 640])], 'a');
    expect(gone).toMatchObject({ visible: false, reason: 'outside-image', box: undefined, insideFraction: 0 });
  });

  it(`needs the clipped box at least MIN_HEIGHT_PX (${MIN_HEIGHT_PX} px) tall`, () => {
    const above = only([board('a', 30, [900, 500, 1000, 500 + MIN_HEIGHT_PX + 0.01])], 'a');
    expect(above.heightPx).toBeCloseTo(MIN_HEIGHT_PX + 0.01, 9);
    expect(above.visible).toBe(true);
    const below = only([board('a', 30, [900, 500, 1000, 500 + MIN_HEIGHT_PX - 0.01])], 'a');
    expect(below).toMatchObject({ visible: false, reason: 'too-small' });
    // The height that counts is the one inside the image.
    const cut = only([board('a', 30, [900, 1080 - (MIN_HEIGHT_PX - 0.01), 1000, 1080 + 2])], 'a', { minInsideFraction: 0 });
    expect(cut).toMatchObject({ visible: false, reason: 'too-small' });
    expect(only([board('a', 30, [900, 500, 1000, 510])], 'a', { minHeightPx: 10 }).visible).toBe(true);
  });

  it(`allows at most MAX_OCCLUDED_FRACTION (${MAX_OCCLUDED_FRACTION}) of the box covered by nearer boxes of any label`, () => {
    // A cone's box covers the target's left `fraction` over its full height.
    const cone = (fraction: number) => board('cone', 10, [700, 400, 860 + 200 * fraction, 700], { label: 'Cones' });
    const above = only([board('t', 20, TARGET), cone(MAX_OCCLUDED_FRACTION - 1e-3)], 't');
    expect(above.occludedFraction).toBeCloseTo(MAX_OCCLUDED_FRACTION - 1e-3, 9);
    expect(above.visible).toBe(true);
    const below = only([board('t', 20, TARGET), cone(MAX_OCCLUDED_FRACTION + 1e-3)], 't');
    expect(below.occludedFraction).toBeCloseTo(MAX_OCCLUDED_FRACTION + 1e-3, 9);
    expect(below).toMatchObject({ visible: false, reason: 'occluded' });
    // The same cone farther away (same image box) occludes nothing.
    const farCone = board('cone', 30, [700, 400, 860 + 200 * 0.9, 700], { label: 'Cones' });
    expect(only([board('t', 20, TARGET), farCone], 't')).toMatchObject({ occludedFraction: 0, visible: true });
  });

  it('measures occlusion by the union of nearer boxes, not their sum', () => {
    // Left 0-35 % and 25-55 % of the target: 65 % summed, 55 % covered.
    const a = board('a', 10, [800, 400, 860 + 70, 700]);
    const b = board('b', 12, [860 + 50, 300, 860 + 110, 800]);
    const target = only([board('t', 20, TARGET), a, b], 't');
    expect(target.occludedFraction).toBeCloseTo(0.55, 9);
    expect(target.visible).toBe(true);
    expect(unionArea([[0, 0, 2, 2], [1, 1, 3, 3]])).toBeCloseTo(7, 12);
    expect(unionArea([[0, 0, 4, 4], [1, 1, 2, 2]])).toBeCloseTo(16, 12);
    expect(unionArea([[0, 0, 1, 1], [2, 0, 3, 1], [0, 3, 1, 5]])).toBeCloseTo(4, 12);
    expect(unionArea([])).toBe(0);
  });

  it('drops the twin of an object labelled twice, keeping the sensor-0 box, and the twin does not occlude', () => {
    const twin = board('twin', 19.9, TARGET, { sensorId: 1, siblingId: 'kept' });
    const kept = board('kept', 20, TARGET, { sensorId: 0, siblingId: 'twin' });
    const [t, k] = project([twin, kept]);
    expect(t).toMatchObject({ visible: false, reason: 'duplicate', duplicateOf: 'kept' });
    expect(k).toMatchObject({ visible: true, occludedFraction: 0 });
    expect(k!.duplicateOf).toBeUndefined();
    // Neither from sensor 0: the first is kept. The dropped twin is not occluded by its sibling either.
    const [first, second] = project([board('p', 20, TARGET, { sensorId: 1, siblingId: 'q' }), board('q', 20.1, TARGET, { sensorId: -1, siblingId: 'p' })]);
    expect(first).toMatchObject({ visible: true, occludedFraction: 0 });
    expect(second).toMatchObject({ reason: 'duplicate', duplicateOf: 'p', occludedFraction: 0 });
    // A sibling id that names no box of this frame drops nothing.
    expect(only([board('lone', 20, TARGET, { siblingId: 'elsewhere' })], 'lone').visible).toBe(true);
  });
});

describe('projectGroundTruth input checks', () => {
  it('names what is wrong', () => {
    const zeroQuaternion = thrownBy(() => projectGroundTruth([], { ...POSE, orientation: { x: 0, y: 0, z: 0, w: 0 } }, INTRINSICS));
    expect(zeroQuaternion.name).toBe('RangeError');
    expect(zeroQuaternion.message).toBe('projectGroundTruth: pose.orientation must be a non-zero finite quaternion, got (0, 0, 0, 0)');
    const fx = thrownBy(() => projectGroundTruth([], POSE, { ...INTRINSICS, fx: 0 }));
    expect(fx.message).toBe('projectGroundTruth: intrinsics.fx must be a finite number > 0, got 0');
    const distorted = thrownBy(() => projectGroundTruth([], POSE, { ...INTRINSICS, distortion: [0.1, 0, 0, 0, 0] }));
    expect(distorted.message).toBe('projectGroundTruth: intrinsics.distortion must be all zeros (undistorted image), got [0.1, 0, 0, 0, 0]');
    const length = thrownBy(() => project([cuboid('bad', { lengthM: -1 })]));
    expect(length.message).toBe("projectGroundTruth: objects[0] ('bad'): lengthM must be a finite number >= 0, got -1");
    const option = thrownBy(() => project([], { maxOccludedFraction: 1.5 }));
    expect(option.name).toBe('RangeError');
    expect(option.message).toBe("projectGroundTruth: option 'maxOccludedFraction' must be in [0, 1], got 1.5");
  });
});

// Real data: PandaSet sequence 002 (PandaSet, Hesai & Scale AI, CC BY 4.0); see ../shared/data/README.md.
describe('projectGroundTruth on the PandaSet drive', () => {
  interface DriveFrame {
    objects: GroundTruthObject[];
    pose: PoseMessage;
    intrinsics: CameraIntrinsics;
  }
  const frames: DriveFrame[] = [];
  let image0: CompressedImageMessage | undefined;

  beforeAll(async () => {
    const reader = await RecordingReader.open(await importedPandasetDrive(), { strict: true });
    try {
      // All five topics of a frame share its log time.
      const byTime = new Map<bigint, Partial<DriveFrame>>();
      const topics = [TOPIC_GROUND_TRUTH, TOPIC_CAMERA_POSE, TOPIC_CAMERA_CALIBRATION, TOPIC_CAMERA];
      for await (const message of reader.messages({ topics })) {
        const frame = byTime.get(message.logTimeNs) ?? {};
        byTime.set(message.logTimeNs, frame);
        if (message.topic === TOPIC_GROUND_TRUTH) frame.objects = groundTruthObjectsCodec.decode(message.data).objects;
        else if (message.topic === TOPIC_CAMERA_POSE) frame.pose = poseCodec.decode(message.data);
        else if (message.topic === TOPIC_CAMERA_CALIBRATION) frame.intrinsics = cameraCalibrationCodec.decode(message.data).intrinsics;
        else if (byTime.size === 1) image0 = compressedImageCodec.decode(message.data);
      }
      for (const frame of byTime.values()) {
        if (!frame.objects || !frame.pose || !frame.intrinsics) throw new Error('a frame of the drive lacks ground truth, pose or calibration');
        frames.push(frame as DriveFrame);
      }
    } finally {
      await reader.close();
    }
  });

  const projectFrame = (frame: DriveFrame) => projectGroundTruth(frame.objects, frame.pose, frame.intrinsics);

  it('has a plausible number of visible vehicles and persons per frame, all inside the image', () => {
    expect(frames).toHaveLength(60);
    const counts = frames.map((frame) => {
      const projected = projectFrame(frame);
      for (const p of projected.filter((q) => q.visible)) {
        const [x1, y1, x2, y2] = p.box!;
        expect(x1).toBeGreaterThanOrEqual(0);
        expect(y1).toBeGreaterThanOrEqual(0);
        expect(x2).toBeLessThanOrEqual(1920);
        expect(y2).toBeLessThanOrEqual(1080);
        expect(x2 - x1).toBeGreaterThan(0);
        expect(p.depthM).toBeGreaterThan(NEAR_PLANE_M);
      }
      return {
        vehicle: projected.filter((p) => p.visible && p.evalClass === 'vehicle').length,
        person: projected.filter((p) => p.visible && p.evalClass === 'person').length,
      };
    });
    // A dense city street: a handful of unoccluded vehicles, a pedestrian or two.
    for (const { vehicle, person } of counts) {
      expect(vehicle).toBeGreaterThanOrEqual(3);
      expect(vehicle).toBeLessThanOrEqual(20);
      expect(person).toBeLessThanOrEqual(6);
    }
    // Counted on this drive with the module's thresholds (frames 0, 10, 20, 30, 40, 50, 59).
    expect([0, 10, 20, 30, 40, 50, 59].map((i) => `${counts[i]!.vehicle}/${counts[i]!.person}`)).toEqual(['5/1', '7/2', '8/1', '9/1', '9/1', '8/0', '7/0']);
  });

  it('gets length-axis headings from the importer: parked cars lie along the street', () => {
    const frame = frames[0]!;
    const q = frame.pose.orientation;
    const forwardRad = Math.atan2(2 * (q.y * q.z - q.w * q.x), 2 * (q.x * q.z + q.w * q.y));
    const ahead = projectFrame(frame).filter((p) => p.label === 'Car' && p.visible);
    expect(ahead.length).toBeGreaterThanOrEqual(3);
    for (const p of ahead) {
      const object = frame.objects.find((o) => o.id === p.id)!;
      const lengthAxisRad = object.yawRad;
      // Angle between the length axis and the camera's forward axis, as lines (mod 180 deg).
      const offsetRad = Math.abs(Math.atan(Math.tan(lengthAxisRad - forwardRad)));
      expect(offsetRad).toBeLessThan((10 * Math.PI) / 180);
    }
  });

  it('puts the boxes of the three nearest visible cars of frame 0 on the cars', async () => {
    const projected = projectFrame(frames[0]!);
    const nearest = projected.filter((p) => p.visible && p.label === 'Car').sort((a, b) => a.depthM - b.depthM).slice(0, 3);
    // Where the cars are in camera/00.jpg, read off the image by eye (mirrors to tyres), not from the labels:
    // the white SUV ahead in our lane, the brown SUV parked on the right, the black SUV on the left.
    const byEye: Box[] = [
      [746, 535, 1120, 858],
      [1255, 538, 1718, 858],
      [297, 505, 472, 622],
    ];
    expect(nearest.map((p) => p.id)).toEqual(['8ac00bad-822c-4040-b9a2-31424dbcd486', '92b61b3d-8f2f-4205-921b-fdc047ab86e2', 'f0b32b02-58aa-44e9-8616-2c58fe16c2c9']);
    nearest.forEach((p, i) => {
      const eye = byEye[i]!;
      // A projected cuboid circumscribes the car (corners the rounded body does not fill), so it is
      // somewhat larger than the car's outline; it must still sit on the car.
      expect(iou(p.box!, eye)).toBeGreaterThan(0.6);
      const [x1, y1, x2, y2] = p.box!;
      const inside = (Math.max(0, Math.min(x2, eye[2]) - Math.max(x1, eye[0])) * Math.max(0, Math.min(y2, eye[3]) - Math.max(y1, eye[1]))) / ((eye[2] - eye[0]) * (eye[3] - eye[1]));
      expect(inside).toBeGreaterThan(0.95);
    });
    // The white SUV is also labelled from the second LiDAR (sensor 1); only its sensor-0 box counts.
    expect(projected.find((p) => p.id === '5efc9139-933d-4339-b584-00054253c4ce')).toMatchObject({ reason: 'duplicate', duplicateOf: nearest[0]!.id });

    // Set ARHUD_GT_RENDER=/tmp/gt-frame0.png to look at the boxes (visible: vehicles green, persons magenta, others cyan).
    const out = process.env.ARHUD_GT_RENDER;
    if (out && image0) {
      const colour = (p: ProjectedObject) => (p.evalClass === 'vehicle' ? 'lime' : p.evalClass === 'person' ? 'magenta' : 'cyan');
      const rects = projected
        .filter((p) => p.visible)
        .map((p) => {
          const [x1, y1, x2, y2] = p.box!;
          return `<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="${colour(p)}" stroke-width="3"/>` +
            `<text x="${x1 + 4}" y="${y1 - 6}" fill="${colour(p)}" font-size="22" font-family="sans-serif">${p.label} ${p.depthM.toFixed(1)} m</text>`;
        })
        .join('');
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${frames[0]!.intrinsics.width}" height="${frames[0]!.intrinsics.height}">${rects}</svg>`;
      await sharp(image0.data).composite([{ input: Buffer.from(svg) }]).png().toFile(out);
    }
  });
});
