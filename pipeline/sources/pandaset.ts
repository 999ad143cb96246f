/**
 * PandaSet importer: one sequence directory (front camera JPEGs, intrinsics, camera poses,
 * timestamps, 3D cuboids) into an arhud recording. Every input file is validated before anything is
 * written; each problem is one line naming the file and the entry, field or line.
 *
 * Frames and axes:
 * - world: the dataset's local frame, metres, z up (x, y horizontal, arbitrary heading).
 * - camera (OpenCV): x right, y down, z forward. `worldFromCamera` maps camera axes to world axes;
 *   a world point P is R^T (P - t) in camera coordinates.
 * - Vehicle heading: the camera's forward axis R * [0, 0, 1] projected on the world x-y plane,
 *   counter-clockwise from world x (so positive yaw rate = turning left, as in ISO 8855).
 *
 * Per frame i, all at log time nsFromSeconds(timestamps[i]), in this order: camera image, camera
 * calibration, camera pose, vehicle state, ground-truth objects.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { CameraIntrinsics, VehicleState } from '../frame.js';
import { RecordingWriter } from '../recording/writer.js';
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
  type GroundTruthObject,
  type Vector3M,
} from '../recording/topics.js';
import { nsFromSeconds, secondsFromNs } from '../time.js';

/** frame_id of the image and calibration messages. */
export const CAMERA_FRAME_ID = 'camera_front';
/** frame_id of poses and ground-truth boxes (the dataset's world frame, z up). */
export const WORLD_FRAME_ID = 'world';
/** A pose quaternion whose norm is further than this from 1 is refused as corrupt. */
export const QUATERNION_NORM_TOLERANCE = 1e-3;
/** Below this horizontal length of the unit forward axis (camera within 0.06 deg of vertical) there is no heading. */
export const MIN_FORWARD_HORIZONTAL = 1e-3;

const CAMERA_DIR = 'camera';
const INTRINSICS_FILE = 'camera/intrinsics.json';
const POSES_FILE = 'camera/poses.json';
const TIMESTAMPS_FILE = 'camera/timestamps.json';
const CUBOIDS_FILE = 'annotations/cuboids.csv';
const IMAGE_NAME = /^(\d+)\.jpg$/;
/** Columns of cuboids.csv the importer reads (others, e.g. attributes, are ignored). */
const CUBOID_COLUMNS = [
  'frame',
  'uuid',
  'label',
  'yaw',
  'stationary',
  'position.x',
  'position.y',
  'position.z',
  'dimensions.x',
  'dimensions.y',
  'dimensions.z',
  'camera_used',
  'cuboids.sibling_id',
  'cuboids.sensor_id',
] as const;
type CuboidColumn = (typeof CUBOID_COLUMNS)[number];

export interface PandasetImportOptions {
  /** Called after each frame is written: frames written so far, frames in the sequence. */
  onProgress?: (done: number, total: number) => void;
  /** Stops before the next frame; the recording is closed and stays valid with what was written. */
  signal?: AbortSignal;
}

export interface PandasetImportResult {
  /** Frames written (each with all five topics). */
  frames: number;
  /** Log time of the first and last frame written (0n when none was). */
  firstNs: bigint;
  lastNs: bigint;
  outputPath: string;
  /** True when `signal` stopped the import before the last frame. */
  aborted: boolean;
  /** Ground-truth boxes written, summed over frames. */
  groundTruthObjects: number;
}

/** Unit quaternion. */
export interface Quaternion {
  w: number;
  x: number;
  y: number;
  z: number;
}

/** Camera-to-world pose: camera centre in world metres; rotation from OpenCV camera axes to world axes (z up). */
export interface CameraPose {
  positionM: Vector3M;
  worldFromCamera: Quaternion;
}

/** A problem with an input file of a PandaSet sequence; `file` is `<sequence>/<path in sequence>`. */
export class PandasetError extends Error {
  override readonly name = 'PandasetError';
  readonly file: string;
  readonly reason: string;

  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.file = file;
    this.reason = reason;
  }
}

interface PinholeIntrinsics {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

/** A validated sequence, everything but the image bytes. */
interface PandasetSequence {
  /** `<sequence dir name>/<relative path>` per image, for messages. */
  imageNames: string[];
  imagePaths: string[];
  timesNs: bigint[];
  intrinsics: PinholeIntrinsics;
  poses: CameraPose[];
  objectsByFrame: GroundTruthObject[][];
}

/**
 * Imports the PandaSet sequence in `sequenceDir` into a new recording at `outputPath`. Inputs are
 * validated before the output is created; the recording is closed on success, error and abort.
 * The output is deterministic: the same inputs give a byte-identical file.
 */
export async function importPandaset(sequenceDir: string, outputPath: string, options: PandasetImportOptions = {}): Promise<PandasetImportResult> {
  const sequence = await loadSequence(sequenceDir);
  const states = vehicleStatesFromPoses(sequence.timesNs, sequence.poses);
  const total = sequence.timesNs.length;
  const writer = await RecordingWriter.create(outputPath);
  const result: PandasetImportResult = { frames: 0, firstNs: 0n, lastNs: 0n, outputPath, aborted: false, groundTruthObjects: 0 };
  let size: { width: number; height: number; from: string } | undefined;
  try {
    for (let i = 0; i < total; i++) {
      if (options.signal?.aborted) {
        result.aborted = true;
        break;
      }
      const tNs = sequence.timesNs[i]!;
      const pose = sequence.poses[i]!;
      const objects = sequence.objectsByFrame[i]!;
      const imageName = sequence.imageNames[i]!;
      const jpeg = await readImage(sequence.imagePaths[i]!, imageName);
      const { width, height } = await jpegSize(jpeg, imageName);
      size ??= { width, height, from: imageName };
      if (width !== size.width || height !== size.height) {
        throw new PandasetError(imageName, `is ${width}x${height} but ${size.from} is ${size.width}x${size.height}; intrinsics.json describes one camera`);
      }
      const intrinsics: CameraIntrinsics = { width, height, ...sequence.intrinsics, distortionModel: 'plumb_bob', distortion: [0, 0, 0, 0, 0] };
      const q = pose.worldFromCamera;
      await writer.write(TOPIC_CAMERA, compressedImageCodec, tNs, { tNs, frameId: CAMERA_FRAME_ID, format: 'jpeg', data: jpeg });
      await writer.write(TOPIC_CAMERA_CALIBRATION, cameraCalibrationCodec, tNs, { tNs, frameId: CAMERA_FRAME_ID, intrinsics });
      await writer.write(TOPIC_CAMERA_POSE, poseCodec, tNs, {
        tNs,
        frameId: WORLD_FRAME_ID,
        positionM: pose.positionM,
        orientation: { x: q.x, y: q.y, z: q.z, w: q.w },
      });
      await writer.write(TOPIC_VEHICLE_STATE, vehicleStateCodec, tNs, states[i]!);
      await writer.write(TOPIC_GROUND_TRUTH, groundTruthObjectsCodec, tNs, { tNs, frameId: WORLD_FRAME_ID, objects });
      if (result.frames === 0) result.firstNs = tNs;
      result.lastNs = tNs;
      result.frames++;
      result.groundTruthObjects += objects.length;
      options.onProgress?.(result.frames, total);
    }
  } catch (error) {
    // The first error is the one worth reporting; closing still writes the summary of what was written.
    await writer.close().catch(() => undefined);
    throw error;
  }
  await writer.close();
  return result;
}

/**
 * Vehicle signals from camera-to-world poses at strictly increasing times (at least two):
 * - heading: camera forward axis projected on world x-y, unwrapped across +-pi;
 * - speedMps: horizontal displacement / dt (unsigned), with the chord of a constant-curvature arc
 *   corrected to its length (factor (dpsi/2)/sin(dpsi/2), exactly 1 on a straight line);
 * - yawRateRps: heading change / dt, positive turning left (counter-clockwise seen from above);
 * - accelMps2: change of speed / dt.
 * Each derivative is a central difference over the neighbouring samples, one-sided at the ends.
 * The values are those of the camera's mounting point; a constant yaw offset of the camera on the
 * vehicle changes neither speed nor yaw rate.
 */
export function vehicleStatesFromPoses(timesNs: readonly bigint[], poses: readonly CameraPose[]): VehicleState[] {
  const n = timesNs.length;
  if (poses.length !== n) throw new RangeError(`vehicleStatesFromPoses: 'poses' has ${poses.length} entries, 'timesNs' has ${n}; they must match`);
  if (n < 2) throw new RangeError(`vehicleStatesFromPoses: need at least 2 poses to derive motion, got ${n}`);
  const t0Ns = timesNs[0]!;
  const tS = timesNs.map((tNs, i) => {
    if (i > 0 && !(tNs > timesNs[i - 1]!)) throw new RangeError(`vehicleStatesFromPoses: 'timesNs[${i}]' (${tNs}) must be after 'timesNs[${i - 1}]' (${timesNs[i - 1]})`);
    return secondsFromNs(tNs - t0Ns);
  });
  const headingRad = unwrap(poses.map((pose, i) => headingOf(pose.worldFromCamera, i)));
  const speedMps = centralDifference(tS, (a, b) => {
    const pa = poses[a]!.positionM;
    const pb = poses[b]!.positionM;
    return Math.hypot(pb.x - pa.x, pb.y - pa.y) * arcFromChord(headingRad[b]! - headingRad[a]!);
  });
  const yawRateRps = centralDifference(tS, (a, b) => headingRad[b]! - headingRad[a]!);
  const accelMps2 = centralDifference(tS, (a, b) => speedMps[b]! - speedMps[a]!);
  return timesNs.map((tNs, i) => ({ tNs, speedMps: speedMps[i]!, yawRateRps: yawRateRps[i]!, accelMps2: accelMps2[i]! }));
}

/** d(i) / dt with d given as the change between samples a < b: central inside, one-sided at the ends. */
function centralDifference(tS: readonly number[], change: (a: number, b: number) => number): number[] {
  const last = tS.length - 1;
  return tS.map((_, i) => {
    const a = Math.max(0, i - 1);
    const b = Math.min(last, i + 1);
    return change(a, b) / (tS[b]! - tS[a]!);
  });
}

/** Arc length / chord length of a circular arc turning by `turnRad` (1 when straight; no correction past a half turn). */
function arcFromChord(turnRad: number): number {
  const half = Math.abs(turnRad) / 2;
  if (half < 1e-6 || half >= Math.PI / 2) return 1;
  return half / Math.sin(half);
}

/** Heading of the camera's forward axis (R * [0,0,1]) in the world x-y plane, rad counter-clockwise from x. */
function headingOf(q: Quaternion, index: number): number {
  const forwardX = 2 * (q.x * q.z + q.w * q.y);
  const forwardY = 2 * (q.y * q.z - q.w * q.x);
  const norm2 = q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z;
  if (!(Math.hypot(forwardX, forwardY) / norm2 >= MIN_FORWARD_HORIZONTAL)) {
    throw new RangeError(`vehicleStatesFromPoses: pose ${index}: the camera's forward axis is (nearly) vertical, so it has no heading`);
  }
  return Math.atan2(forwardY, forwardX);
}

/** Removes 2*pi jumps so consecutive angles differ by at most pi. */
function unwrap(anglesRad: readonly number[]): number[] {
  const out: number[] = [];
  for (const angle of anglesRad) {
    const previous = out.at(-1);
    const step = previous === undefined ? 0 : angle - previous;
    out.push(previous === undefined ? angle : previous + step - 2 * Math.PI * Math.round(step / (2 * Math.PI)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Loading and validation

async function loadSequence(sequenceDir: string): Promise<PandasetSequence> {
  const root = path.resolve(sequenceDir);
  const name = (relative: string) => `${path.basename(root)}/${relative}`;

  const timestamps = expectArray(await readJson(root, TIMESTAMPS_FILE, name), name(TIMESTAMPS_FILE));
  const timesNs = timesFromSeconds(timestamps, name(TIMESTAMPS_FILE));
  const frameCount = timesNs.length;
  if (frameCount === 0) throw new PandasetError(name(TIMESTAMPS_FILE), 'has no entries; a sequence needs at least one frame');

  const intrinsics = parseIntrinsics(await readJson(root, INTRINSICS_FILE, name), name(INTRINSICS_FILE));

  const poseEntries = expectArray(await readJson(root, POSES_FILE, name), name(POSES_FILE));
  if (poseEntries.length !== frameCount) {
    throw new PandasetError(name(POSES_FILE), `has ${poseEntries.length} entries but ${TIMESTAMPS_FILE} has ${frameCount}; there must be one pose per frame`);
  }
  const poses = poseEntries.map((entry, i) => parsePose(entry, i, name(POSES_FILE)));

  const { imagePaths, imageNames } = await listImages(root, frameCount, name);

  const cuboidText = await readText(root, CUBOIDS_FILE, name);
  const objectsByFrame = parseCuboids(cuboidText, frameCount, name(CUBOIDS_FILE));

  return { imageNames, imagePaths, timesNs, intrinsics, poses, objectsByFrame };
}

async function readText(root: string, relative: string, name: (relative: string) => string): Promise<string> {
  try {
    return await readFile(path.join(root, relative), 'utf8');
  } catch (error) {
    throw new PandasetError(name(relative), describeReadError(error), { cause: error });
  }
}

async function readJson(root: string, relative: string, name: (relative: string) => string): Promise<unknown> {
  const text = await readText(root, relative, name);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new PandasetError(name(relative), `is not valid JSON (${(error as Error).message})`, { cause: error });
  }
}

async function readImage(file: string, displayName: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new PandasetError(displayName, describeReadError(error), { cause: error });
  }
}

async function jpegSize(jpeg: Buffer, displayName: string): Promise<{ width: number; height: number }> {
  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(jpeg).metadata();
  } catch (error) {
    throw new PandasetError(displayName, `is not a readable image (${(error as Error).message})`, { cause: error });
  }
  if (metadata.format !== 'jpeg') throw new PandasetError(displayName, `must be a JPEG, got ${metadata.format ?? 'an unknown format'}`);
  if (metadata.orientation !== undefined && metadata.orientation !== 1) {
    // The bytes are passed through; a viewer would rotate them and the intrinsics would no longer fit.
    throw new PandasetError(displayName, `has EXIF orientation ${metadata.orientation}; only unrotated images (1 or none) are supported`);
  }
  if (!(metadata.width > 0 && metadata.height > 0)) throw new PandasetError(displayName, `has no image size (${metadata.width}x${metadata.height})`);
  return { width: metadata.width, height: metadata.height };
}

function describeReadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'missing file';
  return `cannot be read (${(error as Error).message})`;
}

async function listImages(root: string, frameCount: number, name: (relative: string) => string): Promise<{ imagePaths: string[]; imageNames: string[] }> {
  let entries: string[];
  try {
    entries = await readdir(path.join(root, CAMERA_DIR));
  } catch (error) {
    throw new PandasetError(name(CAMERA_DIR), describeReadError(error).replace('missing file', 'missing directory'), { cause: error });
  }
  const present = new Set(entries.filter((entry) => IMAGE_NAME.test(entry)));
  const imagePaths: string[] = [];
  const imageNames: string[] = [];
  for (let i = 0; i < frameCount; i++) {
    const file = `${CAMERA_DIR}/${String(i).padStart(2, '0')}.jpg`;
    if (!present.has(path.basename(file))) {
      throw new PandasetError(name(file), `missing file (${TIMESTAMPS_FILE} has ${frameCount} entries, so frames 00..${String(frameCount - 1).padStart(2, '0')} are expected)`);
    }
    imagePaths.push(path.join(root, file));
    imageNames.push(name(file));
  }
  if (present.size !== frameCount) {
    throw new PandasetError(name(CAMERA_DIR), `has ${present.size} frame images (NN.jpg) but ${TIMESTAMPS_FILE} has ${frameCount} entries; they must match`);
  }
  return { imagePaths, imageNames };
}

function timesFromSeconds(entries: readonly unknown[], file: string): bigint[] {
  const timesNs: bigint[] = [];
  entries.forEach((value, i) => {
    const seconds = expectNumber(value, `entry ${i}`, file);
    if (!(seconds > 0)) throw new PandasetError(file, `entry ${i} (${seconds}) must be a UNIX time > 0 s`);
    const tNs = nsFromSeconds(seconds);
    if (i > 0) {
      const previous = entries[i - 1] as number;
      if (!(seconds > previous)) throw new PandasetError(file, `entry ${i} (${seconds}) is not after entry ${i - 1} (${previous})`);
      if (!(tNs > timesNs[i - 1]!)) throw new PandasetError(file, `entry ${i} (${seconds}) rounds to the same microsecond as entry ${i - 1} (${previous})`);
    }
    timesNs.push(tNs);
  });
  return timesNs;
}

function parseIntrinsics(json: unknown, file: string): PinholeIntrinsics {
  const object = expectObject(json, '(root)', file);
  const field = (key: keyof PinholeIntrinsics) => expectNumber(object[key], `field '${key}'`, file);
  const intrinsics = { fx: field('fx'), fy: field('fy'), cx: field('cx'), cy: field('cy') };
  if (!(intrinsics.fx > 0 && intrinsics.fy > 0)) throw new PandasetError(file, `fields 'fx' and 'fy' must be > 0, got fx=${intrinsics.fx} fy=${intrinsics.fy}`);
  return intrinsics;
}

function parsePose(entry: unknown, index: number, file: string): CameraPose {
  const where = `entry ${index}`;
  const pose = expectObject(entry, where, file);
  const position = expectObject(pose.position, `${where} field 'position'`, file);
  const heading = expectObject(pose.heading, `${where} field 'heading'`, file);
  const positionM = {
    x: expectNumber(position.x, `${where} field 'position.x'`, file),
    y: expectNumber(position.y, `${where} field 'position.y'`, file),
    z: expectNumber(position.z, `${where} field 'position.z'`, file),
  };
  const q = {
    w: expectNumber(heading.w, `${where} field 'heading.w'`, file),
    x: expectNumber(heading.x, `${where} field 'heading.x'`, file),
    y: expectNumber(heading.y, `${where} field 'heading.y'`, file),
    z: expectNumber(heading.z, `${where} field 'heading.z'`, file),
  };
  const norm = Math.hypot(q.w, q.x, q.y, q.z);
  if (!(Math.abs(norm - 1) <= QUATERNION_NORM_TOLERANCE)) {
    throw new PandasetError(file, `${where} field 'heading' must be a unit quaternion, got norm ${norm}`);
  }
  return { positionM, worldFromCamera: { w: q.w / norm, x: q.x / norm, y: q.y / norm, z: q.z / norm } };
}

function expectArray(value: unknown, file: string): unknown[] {
  if (!Array.isArray(value)) throw new PandasetError(file, `must hold a JSON array, got ${describeValue(value)}`);
  return value;
}

function expectObject(value: unknown, where: string, file: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PandasetError(file, `${where} must be an object, got ${describeValue(value)}`);
  return value as Record<string, unknown>;
}

function expectNumber(value: unknown, where: string, file: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new PandasetError(file, `${where} must be a number, got ${describeValue(value)}`);
  return value;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  if (Array.isArray(value)) return 'an array';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

// ---------------------------------------------------------------------------------------------
// cuboids.csv

interface CsvRecord {
  /** 1-based line where the record starts. */
  line: number;
  fields: string[];
}

/** RFC 4180 CSV: quoted fields (with "" escapes, commas and line breaks inside), LF or CRLF, optional BOM; blank lines skipped. */
function parseCsv(text: string, file: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let recordLine = 1;
  let fields: string[] = [];
  let anyQuoted = false;
  for (;;) {
    if (i >= n && fields.length === 0) break;
    let value: string;
    if (text[i] === '"') {
      anyQuoted = true;
      const startLine = line;
      const parts: string[] = [];
      let from = ++i;
      for (;;) {
        if (i >= n) throw new PandasetError(file, `line ${startLine}: quoted field is never closed`);
        const c = text[i];
        if (c === '"') {
          parts.push(text.slice(from, i));
          if (text[i + 1] === '"') {
            parts.push('"');
            i += 2;
            from = i;
            continue;
          }
          i++;
          break;
        }
        if (c === '\n') line++;
        i++;
      }
      value = parts.join('');
      if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
        throw new PandasetError(file, `line ${line}: unexpected ${JSON.stringify(text[i])} after the closing quote of a field`);
      }
    } else {
      let end = i;
      while (end < n && text[end] !== ',' && text[end] !== '\n' && text[end] !== '\r') end++;
      value = text.slice(i, end);
      if (value.includes('"')) throw new PandasetError(file, `line ${line}: stray quote in unquoted field ${JSON.stringify(value)}`);
      i = end;
    }
    fields.push(value);
    if (i < n && text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    if (!(fields.length === 1 && fields[0] === '' && !anyQuoted)) records.push({ line: recordLine, fields });
    fields = [];
    anyQuoted = false;
    line++;
    recordLine = line;
  }
  return records;
}

const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Heading of a PandaSet box's length axis, in (-pi, pi], from its yaw (the heading of its width axis). */
export function lengthHeadingRad(pandasetYawRad: number): number {
  const heading = pandasetYawRad + Math.PI / 2;
  return heading > Math.PI ? heading - 2 * Math.PI : heading;
}

/** Cuboid rows grouped by frame, in file order; every row validated. */
function parseCuboids(text: string, frameCount: number, file: string): GroundTruthObject[][] {
  const [header, ...rows] = parseCsv(text, file);
  if (!header) throw new PandasetError(file, 'is empty; expected a header line');
  const columnIndex = new Map<CuboidColumn, number>();
  for (const column of CUBOID_COLUMNS) {
    const index = header.fields.indexOf(column);
    if (index < 0) throw new PandasetError(file, `line ${header.line}: header has no column '${column}'`);
    columnIndex.set(column, index);
  }
  const objectsByFrame: GroundTruthObject[][] = Array.from({ length: frameCount }, () => []);
  const firstLineOf = new Map<string, number>();
  for (const row of rows) {
    if (row.fields.length !== header.fields.length) {
      throw new PandasetError(file, `line ${row.line}: has ${row.fields.length} fields, the header has ${header.fields.length}`);
    }
    const cell = (column: CuboidColumn) => row.fields[columnIndex.get(column)!]!;
    const fail = (column: CuboidColumn, expected: string): never => {
      throw new PandasetError(file, `line ${row.line}: column '${column}' must be ${expected}, got ${JSON.stringify(cell(column))}`);
    };
    const number = (column: CuboidColumn, minimum = -Infinity) => {
      const textValue = cell(column);
      const value = NUMBER_TEXT.test(textValue) ? Number(textValue) : NaN;
      if (!(Number.isFinite(value) && value >= minimum)) fail(column, minimum === -Infinity ? 'a number' : `a number >= ${minimum}`);
      return value;
    };
    const frameText = cell('frame');
    const frame = /^\d+$/.test(frameText) ? Number(frameText) : NaN;
    if (!(frame < frameCount)) fail('frame', `a frame index 0..${frameCount - 1} (${frameCount} frames)`);
    const id = cell('uuid');
    if (id === '') fail('uuid', 'a non-empty id');
    const label = cell('label');
    if (label === '') fail('label', 'a non-empty label');
    const stationaryText = cell('stationary');
    if (stationaryText !== 'True' && stationaryText !== 'False') fail('stationary', "'True' or 'False'");
    const cameraText = cell('camera_used');
    if (!/^-?\d+$/.test(cameraText) || Number(cameraText) < -1) fail('camera_used', 'a camera index or -1');
    const sensorText = cell('cuboids.sensor_id');
    if (!/^-?\d+$/.test(sensorText) || Number(sensorText) < -1) fail('cuboids.sensor_id', 'a sensor index or -1');
    const siblingText = cell('cuboids.sibling_id');
    const key = `${frame}\u0000${id}`;
    const seenAt = firstLineOf.get(key);
    if (seenAt !== undefined) throw new PandasetError(file, `line ${row.line}: uuid '${id}' appears twice in frame ${frame} (first on line ${seenAt})`);
    firstLineOf.set(key, row.line);
    objectsByFrame[frame]!.push({
      id,
      label,
      positionM: { x: number('position.x'), y: number('position.y'), z: number('position.z') },
      lengthM: number('dimensions.y', 0),
      widthM: number('dimensions.x', 0),
      heightM: number('dimensions.z', 0),
      // PandaSet's yaw heads the box's x (width) axis (pandaset-devkit center_box_to_corners); ours heads the length axis.
      yawRad: lengthHeadingRad(number('yaw')),
      stationary: stationaryText === 'True',
      cameraUsed: Number(cameraText),
      // PandaSet labels an object seen by both LiDARs twice (one box per sensor), linked by sibling id.
      ...(siblingText !== '-' && siblingText !== '' ? { siblingId: siblingText } : {}),
      sensorId: Number(sensorText),
    });
  }
  return objectsByFrame;
}
