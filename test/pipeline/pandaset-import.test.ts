import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, readFile, readdir, rm, symlink, writeFile, access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  CAMERA_FRAME_ID,
  PandasetError,
  WORLD_FRAME_ID,
  importPandaset,
  lengthHeadingRad,
  vehicleStatesFromPoses,
  type CameraPose,
  type PandasetImportResult,
  type Quaternion,
} from '../../pipeline/sources/pandaset.js';
import { RecordingReader, type RecordedMessage } from '../../pipeline/recording/reader.js';
import {
  TOPIC_CAMERA,
  TOPIC_CAMERA_CALIBRATION,
  TOPIC_CAMERA_POSE,
  TOPIC_GROUND_TRUTH,
  TOPIC_VEHICLE_STATE,
  cameraCalibrationCodec,
  compressedImageCodec,
  groundTruthObjectsCodec,
  poseCodec,
  vehicleStateCodec,
} from '../../pipeline/recording/topics.js';
import { NS_PER_S, nsFromSeconds } from '../../pipeline/time.js';

// Real data: PandaSet sequence 002 (PandaSet, Hesai & Scale AI, CC BY 4.0); see ../shared/data/README.md.
const SEQUENCE_DIR = path.resolve('../shared/data/pandaset-002');
const FRAMES = 60;

interface PoseJson {
  position: { x: number; y: number; z: number };
  heading: { w: number; x: number; y: number; z: number };
}

let tmpDir: string;
let timestampsS: number[];
let intrinsics: { fx: number; fy: number; cx: number; cy: number };
let posesJson: PoseJson[];
let cuboidLines: string[][];

beforeAll(async () => {
  tmpDir = await mkdtemp(path.join(os.tmpdir(), 'arhud-pandaset-'));
  timestampsS = JSON.parse(await readFile(path.join(SEQUENCE_DIR, 'camera/timestamps.json'), 'utf8')) as number[];
  intrinsics = JSON.parse(await readFile(path.join(SEQUENCE_DIR, 'camera/intrinsics.json'), 'utf8')) as typeof intrinsics;
  posesJson = JSON.parse(await readFile(path.join(SEQUENCE_DIR, 'camera/poses.json'), 'utf8')) as PoseJson[];
  // The file has no quoted fields (checked), so a plain split is an independent reference here.
  const text = await readFile(path.join(SEQUENCE_DIR, 'annotations/cuboids.csv'), 'utf8');
  cuboidLines = text.split('\n').filter((line) => line !== '').map((line) => line.split(','));
});

afterAll(async () => {
  await rm(tmpDir, { recursive: true, force: true });
});

async function readAll(file: string, topic: string): Promise<RecordedMessage[]> {
  const reader = await RecordingReader.open(file, { strict: true });
  try {
    const messages: RecordedMessage[] = [];
    for await (const message of reader.messages({ topics: [topic] })) messages.push(message);
    return messages;
  } finally {
    await reader.close();
  }
}

/** A copy of the sequence under `tmpDir/<label>/pandaset-002` (JPEGs linked), with some files replaced or removed. */
async function sequenceCopy(label: string, replace: Record<string, string | null>): Promise<string> {
  const dir = path.join(tmpDir, label, 'pandaset-002');
  await mkdir(path.join(dir, 'camera'), { recursive: true });
  await mkdir(path.join(dir, 'annotations'), { recursive: true });
  for (const file of await readdir(path.join(SEQUENCE_DIR, 'camera'))) {
    const relative = `camera/${file}`;
    if (file.endsWith('.jpg') && !(relative in replace)) await symlink(path.join(SEQUENCE_DIR, relative), path.join(dir, relative));
  }
  for (const relative of ['camera/intrinsics.json', 'camera/poses.json', 'camera/timestamps.json', 'annotations/cuboids.csv']) {
    if (!(relative in replace)) await writeFile(path.join(dir, relative), await readFile(path.join(SEQUENCE_DIR, relative)));
  }
  for (const [relative, content] of Object.entries(replace)) {
    if (content !== null) await writeFile(path.join(dir, relative), content);
  }
  return dir;
}

async function importError(dir: string, output: string): Promise<Error> {
  try {
    await importPandaset(dir, output);
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`expected an Error, got ${String(error)}`);
  }
  throw new Error('expected the import to fail, it succeeded');
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

describe('importPandaset on pandaset-002', () => {
  let output: string;
  let result: PandasetImportResult;
  const progress: Array<[number, number]> = [];

  beforeAll(async () => {
    output = path.join(tmpDir, 'pandaset-002.mcap');
    result = await importPandaset(SEQUENCE_DIR, output, { onProgress: (done, total) => progress.push([done, total]) });
  });

  it('imports 60 frames with every row of cuboids.csv', () => {
    expect(result).toEqual({
      frames: FRAMES,
      firstNs: nsFromSeconds(timestampsS[0]!),
      lastNs: nsFromSeconds(timestampsS[FRAMES - 1]!),
      outputPath: output,
      aborted: false,
      groundTruthObjects: cuboidLines.length - 1,
    });
    expect(progress).toHaveLength(FRAMES);
    expect(progress.at(-1)).toEqual([FRAMES, FRAMES]);
  });

  it('writes an indexed recording with 60 messages per topic', async () => {
    const reader = await RecordingReader.open(output, { strict: true });
    try {
      expect(reader.indexed).toBe(true);
      expect(reader.messageCount).toBe(5 * FRAMES);
      for (const topic of [TOPIC_CAMERA, TOPIC_CAMERA_CALIBRATION, TOPIC_CAMERA_POSE, TOPIC_VEHICLE_STATE, TOPIC_GROUND_TRUTH]) {
        expect(reader.topic(topic)?.messageCount, topic).toBe(FRAMES);
      }
    } finally {
      await reader.close();
    }
  });

  it('stores the original JPEG bytes at the camera timestamps', async () => {
    const messages = await readAll(output, TOPIC_CAMERA);
    expect(messages).toHaveLength(FRAMES);
    for (const [i, message] of messages.entries()) {
      const expectedNs = nsFromSeconds(timestampsS[i]!);
      expect(message.logTimeNs).toBe(expectedNs);
      const image = compressedImageCodec.decode(message.data);
      expect(image.tNs).toBe(expectedNs);
      expect(image.format).toBe('jpeg');
      expect(image.frameId).toBe(CAMERA_FRAME_ID);
      const source = await readFile(path.join(SEQUENCE_DIR, 'camera', `${String(i).padStart(2, '0')}.jpg`));
      expect(Buffer.compare(Buffer.from(image.data), source), `frame ${i}`).toBe(0);
    }
  });

  it('stores the calibration of intrinsics.json with every frame', async () => {
    const messages = await readAll(output, TOPIC_CAMERA_CALIBRATION);
    expect(messages).toHaveLength(FRAMES);
    for (const [i, message] of messages.entries()) {
      expect(message.logTimeNs).toBe(nsFromSeconds(timestampsS[i]!));
      const { frameId, intrinsics: k } = cameraCalibrationCodec.decode(message.data);
      expect(frameId).toBe(CAMERA_FRAME_ID);
      expect(k).toEqual({ width: 1920, height: 1080, ...intrinsics, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] });
    }
  });

  it('stores the camera poses of poses.json in the world frame', async () => {
    const messages = await readAll(output, TOPIC_CAMERA_POSE);
    for (const [i, message] of messages.entries()) {
      const pose = poseCodec.decode(message.data);
      const { position, heading } = posesJson[i]!;
      expect(pose.frameId).toBe(WORLD_FRAME_ID);
      expect(pose.positionM).toEqual(position);
      for (const axis of ['w', 'x', 'y', 'z'] as const) expect(pose.orientation[axis]).toBeCloseTo(heading[axis], 12);
    }
  });

  it('turns PandaSet yaw (width-axis heading) into the length-axis heading, within (-pi, pi]', () => {
    expect(lengthHeadingRad(0)).toBeCloseTo(Math.PI / 2, 12);
    expect(lengthHeadingRad(Math.PI / 2)).toBeCloseTo(Math.PI, 12);
    expect(lengthHeadingRad(Math.PI)).toBeCloseTo(-Math.PI / 2, 12);
    expect(lengthHeadingRad(-Math.PI / 2)).toBeCloseTo(0, 12);
  });

  it('stores per frame exactly the cuboid rows of that frame, mapped field by field', async () => {
    const [header, ...rows] = cuboidLines;
    const column = (name: string) => header!.indexOf(name);
    const rowsPerFrame = new Array<number>(FRAMES).fill(0);
    for (const row of rows) rowsPerFrame[Number(row[column('frame')])]!++;
    const messages = await readAll(output, TOPIC_GROUND_TRUTH);
    const counts = messages.map((message) => groundTruthObjectsCodec.decode(message.data).objects.length);
    expect(counts).toEqual(rowsPerFrame);

    const first = rows[0]!;
    const frame = Number(first[column('frame')]);
    const message = groundTruthObjectsCodec.decode(messages[frame]!.data);
    expect(message.frameId).toBe(WORLD_FRAME_ID);
    expect(message.objects[0]).toEqual({
      id: first[column('uuid')],
      label: first[column('label')],
      positionM: { x: Number(first[column('position.x')]), y: Number(first[column('position.y')]), z: Number(first[column('position.z')]) },
      lengthM: Number(first[column('dimensions.y')]),
      widthM: Number(first[column('dimensions.x')]),
      heightM: Number(first[column('dimensions.z')]),
      yawRad: lengthHeadingRad(Number(first[column('yaw')])),
      stationary: first[column('stationary')] === 'True',
      cameraUsed: Number(first[column('camera_used')]),
      sensorId: Number(first[column('cuboids.sensor_id')]),
    });
    // Objects labelled by both LiDARs keep the link to their twin.
    const twin = rows.find((row) => row[column('cuboids.sibling_id')] !== '-')!;
    const twinMessage = groundTruthObjectsCodec.decode(messages[Number(twin[column('frame')])]!.data);
    expect(twinMessage.objects.find((o) => o.id === twin[column('uuid')])?.siblingId).toBe(twin[column('cuboids.sibling_id')]);
  });

  it('derives speeds that agree with the GPS velocity magnitude within 0.2 m/s, and a nearly straight drive', async () => {
    const gps = JSON.parse(await readFile(path.join(SEQUENCE_DIR, 'gps.json'), 'utf8')) as Array<{ xvel: number; yvel: number }>;
    const states = (await readAll(output, TOPIC_VEHICLE_STATE)).map((message) => vehicleStateCodec.decode(message.data));
    expect(states).toHaveLength(FRAMES);
    for (const [i, state] of states.entries()) {
      expect(state.tNs).toBe(nsFromSeconds(timestampsS[i]!));
      expect(Math.abs(state.speedMps - Math.hypot(gps[i]!.xvel, gps[i]!.yvel)), `frame ${i}`).toBeLessThan(0.2);
      expect(Math.abs(state.yawRateRps)).toBeLessThan(0.05);
    }
  });

  it('writes byte-identical files when importing twice', async () => {
    const again = path.join(tmpDir, 'pandaset-002-again.mcap');
    await importPandaset(SEQUENCE_DIR, again);
    expect(Buffer.compare(await readFile(again), await readFile(output))).toBe(0);
  });

  it('stops on abort and leaves a valid indexed recording of the frames written', async () => {
    const aborted = path.join(tmpDir, 'pandaset-002-aborted.mcap');
    const controller = new AbortController();
    const stopped = await importPandaset(SEQUENCE_DIR, aborted, {
      signal: controller.signal,
      onProgress: (done) => {
        if (done === 3) controller.abort();
      },
    });
    expect(stopped).toMatchObject({ frames: 3, aborted: true, firstNs: nsFromSeconds(timestampsS[0]!), lastNs: nsFromSeconds(timestampsS[2]!) });
    const reader = await RecordingReader.open(aborted, { strict: true });
    try {
      expect(reader.indexed).toBe(true);
      expect(reader.messageCount).toBe(5 * 3);
      expect(reader.topic(TOPIC_CAMERA)?.messageCount).toBe(3);
      expect(reader.endNs).toBe(nsFromSeconds(timestampsS[2]!));
    } finally {
      await reader.close();
    }
  });
});

describe('importPandaset refuses bad input with one line naming file and place', () => {
  it('non-increasing timestamps: names the file and both entries', async () => {
    const broken = [...timestampsS];
    broken[12] = broken[11]! - 0.1;
    const dir = await sequenceCopy('timestamps', { 'camera/timestamps.json': JSON.stringify(broken) });
    const output = path.join(tmpDir, 'timestamps.mcap');
    const error = await importError(dir, output);
    expect(error).toBeInstanceOf(PandasetError);
    expect(error.message).toBe(`pandaset-002/camera/timestamps.json: entry 12 (${broken[12]}) is not after entry 11 (${broken[11]})`);
    expect(await exists(output)).toBe(false);
  });

  it('a JSON field of the wrong type', async () => {
    const poses = structuredClone(posesJson) as unknown as Array<{ heading: { w: unknown } }>;
    poses[7]!.heading.w = '0.65';
    const dir = await sequenceCopy('pose-type', { 'camera/poses.json': JSON.stringify(poses) });
    const error = await importError(dir, path.join(tmpDir, 'pose-type.mcap'));
    expect(error.message).toBe(`pandaset-002/camera/poses.json: entry 7 field 'heading.w' must be a number, got "0.65"`);
  });

  it('a missing intrinsics file', async () => {
    const dir = await sequenceCopy('no-intrinsics', { 'camera/intrinsics.json': null });
    const error = await importError(dir, path.join(tmpDir, 'no-intrinsics.mcap'));
    expect(error.message).toBe('pandaset-002/camera/intrinsics.json: missing file');
  });

  it('a pose count that differs from the timestamp count', async () => {
    const dir = await sequenceCopy('pose-count', { 'camera/poses.json': JSON.stringify(posesJson.slice(0, 59)) });
    const error = await importError(dir, path.join(tmpDir, 'pose-count.mcap'));
    expect(error.message).toBe('pandaset-002/camera/poses.json: has 59 entries but camera/timestamps.json has 60; there must be one pose per frame');
  });

  it('a missing image', async () => {
    const dir = await sequenceCopy('no-image', { 'camera/17.jpg': null });
    const error = await importError(dir, path.join(tmpDir, 'no-image.mcap'));
    expect(error.message).toMatch(/^pandaset-002\/camera\/17\.jpg: missing file/);
  });

  it('a bad CSV row: names the line and column', async () => {
    const lines = cuboidLines.map((fields) => [...fields]);
    const stationary = lines[0]!.indexOf('stationary');
    lines[41]![stationary] = 'maybe';
    const dir = await sequenceCopy('csv', { 'annotations/cuboids.csv': lines.map((fields) => fields.join(',')).join('\n') + '\n' });
    const error = await importError(dir, path.join(tmpDir, 'csv.mcap'));
    expect(error.message).toBe(`pandaset-002/annotations/cuboids.csv: line 42: column 'stationary' must be 'True' or 'False', got "maybe"`);
  });

  it('parses quoted CSV fields, CRLF line ends and a BOM', async () => {
    const label = cuboidLines[0]!.indexOf('label');
    const text = cuboidLines
      .map((fields, i) => (i === 1 ? fields.map((field, j) => (j === label ? '"Car, ""quoted"""' : field)) : fields).join(','))
      .join('\r\n');
    const dir = await sequenceCopy('csv-quoted', { 'annotations/cuboids.csv': '\ufeff' + text + '\r\n' });
    const output = path.join(tmpDir, 'csv-quoted.mcap');
    const controller = new AbortController();
    await importPandaset(dir, output, { signal: controller.signal, onProgress: () => controller.abort() });
    const [message] = await readAll(output, TOPIC_GROUND_TRUTH);
    expect(groundTruthObjectsCodec.decode(message!.data).objects[0]!.label).toBe('Car, "quoted"');
  });
});

// ---------------------------------------------------------------------------------------------
// Synthetic poses: a camera looking along vehicle heading psi, OpenCV axes (x right, y down, z forward).

/** Hamilton product a * b. */
function multiply(a: Quaternion, b: Quaternion): Quaternion {
  return {
    w: a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
    x: a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
    y: a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
    z: a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
  };
}

/** q * v * q^-1 for a unit quaternion. */
function rotate(q: Quaternion, [x, y, z]: [number, number, number]): [number, number, number] {
  const r = multiply(multiply(q, { w: 0, x, y, z }), { w: q.w, x: -q.x, y: -q.y, z: -q.z });
  return [r.x, r.y, r.z];
}

/** worldFromCamera at heading 0, level: camera z -> world x, camera x -> world -y, camera y -> world -z. */
const WORLD_FROM_CAMERA_LEVEL: Quaternion = { w: 0.5, x: -0.5, y: 0.5, z: -0.5 };

/** Camera looking along heading `headingRad` (ccw from world x), pitched down by `pitchDownRad`. */
function cameraPose(x: number, y: number, headingRad: number, pitchDownRad = 0): CameraPose {
  const yaw: Quaternion = { w: Math.cos(headingRad / 2), x: 0, y: 0, z: Math.sin(headingRad / 2) };
  // Pitch down about the camera's own x axis (right): forward tips towards camera y (down).
  const pitch: Quaternion = { w: Math.cos(-pitchDownRad / 2), x: Math.sin(-pitchDownRad / 2), y: 0, z: 0 };
  return { positionM: { x, y, z: 1.8 }, worldFromCamera: multiply(multiply(yaw, WORLD_FROM_CAMERA_LEVEL), pitch) };
}

/** Evenly spaced times at `hz`, starting at an epoch time like PandaSet's. */
function times(count: number, hz: number): bigint[] {
  const t0Ns = 1_557_539_956n * NS_PER_S;
  return Array.from({ length: count }, (_, i) => t0Ns + BigInt(Math.round((i * 1e9) / hz)));
}

describe('vehicleStatesFromPoses', () => {
  it('test poses: camera forward (z) points along the heading, camera down (y) to world -z', () => {
    const { worldFromCamera } = cameraPose(0, 0, Math.PI / 2);
    const forward = rotate(worldFromCamera, [0, 0, 1]);
    const down = rotate(worldFromCamera, [0, 1, 0]);
    [0, 1, 0].forEach((value, i) => expect(forward[i]).toBeCloseTo(value, 12));
    [0, 0, -1].forEach((value, i) => expect(down[i]).toBeCloseTo(value, 12));
  });

  it('straight line at 10 m/s: speed 10, yaw rate 0, accel 0, whatever the heading and camera pitch', () => {
    const headingRad = 2.5;
    const tNs = times(50, 10);
    const poses = tNs.map((_, i) => cameraPose(i * Math.cos(headingRad), i * Math.sin(headingRad), headingRad, 0.05));
    const states = vehicleStatesFromPoses(tNs, poses);
    expect(states).toHaveLength(50);
    for (const [i, state] of states.entries()) {
      expect(state.tNs).toBe(tNs[i]);
      expect(state.speedMps).toBeCloseTo(10, 9);
      expect(state.yawRateRps).toBeCloseTo(0, 9);
      expect(state.accelMps2).toBeCloseTo(0, 6);
    }
  });

  for (const [turn, sign] of [
    ['left', 1],
    ['right', -1],
  ] as const) {
    it(`circle of radius 20 m at 5 m/s turning ${turn}: speed 5, yaw rate ${sign * 0.25} rad/s, across the +-pi heading wrap`, () => {
      const radiusM = 20;
      const omegaRps = (sign * 5) / radiusM;
      const tNs = times(300, 10); // 30 s: 7.5 rad of heading, so the wrap at +-pi is crossed twice
      const poses = tNs.map((_, i) => {
        const psi = omegaRps * i * 0.1;
        return cameraPose(radiusM * Math.sin(Math.abs(psi)), sign * radiusM * (1 - Math.cos(psi)), psi, 0.03);
      });
      for (const state of vehicleStatesFromPoses(tNs, poses)) {
        expect(state.speedMps).toBeCloseTo(5, 9);
        expect(state.yawRateRps).toBeCloseTo(sign * 0.25, 9);
        expect(state.accelMps2).toBeCloseTo(0, 6);
      }
    });
  }

  it('a camera mounted with a yaw offset gives the same speed and yaw rate', () => {
    const tNs = times(40, 10);
    const straight = tNs.map((_, i) => cameraPose(i * 0.5, 0, 0));
    const offset = tNs.map((_, i) => cameraPose(i * 0.5, 0, 0.1));
    const a = vehicleStatesFromPoses(tNs, straight);
    const b = vehicleStatesFromPoses(tNs, offset);
    for (const [i, state] of b.entries()) {
      expect(state.speedMps).toBeCloseTo(a[i]!.speedMps, 12);
      expect(state.yawRateRps).toBeCloseTo(a[i]!.yawRateRps, 12);
    }
  });

  it('constant acceleration of 2 m/s^2 from rest: speed 2t and accel 2 inside the sequence', () => {
    const tNs = times(30, 10);
    const poses = tNs.map((_, i) => cameraPose(0.5 * 2 * (i * 0.1) ** 2, 0, 0));
    const states = vehicleStatesFromPoses(tNs, poses);
    for (let i = 1; i < 29; i++) expect(states[i]!.speedMps).toBeCloseTo(2 * i * 0.1, 9);
    for (let i = 2; i < 28; i++) expect(states[i]!.accelMps2).toBeCloseTo(2, 6);
  });

  it('refuses mismatched lengths, too few poses and non-increasing times', () => {
    const tNs = times(3, 10);
    const poses = tNs.map((_, i) => cameraPose(i, 0, 0));
    expect(() => vehicleStatesFromPoses(tNs, poses.slice(0, 2))).toThrow(RangeError);
    expect(() => vehicleStatesFromPoses(tNs.slice(0, 1), poses.slice(0, 1))).toThrow(/need at least 2 poses/);
    expect(() => vehicleStatesFromPoses([tNs[0]!, tNs[0]!], poses.slice(0, 2))).toThrow(/'timesNs\[1\]' .* must be after 'timesNs\[0\]'/);
  });
});
