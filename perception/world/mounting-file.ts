/**
 * Camera mounting files: where the camera sits on the vehicle, as calibrated. JSON, validated by
 * JSON Schema:
 *   { "positionM": { "x": 1.2, "y": 0, "z": 1.45 }, "pitchDeg": 1.5, "yawDeg": 0, "rollDeg": 0 }
 * Vehicle frame ISO 8855 (x forward, y left, z up, metres); pitch positive looking down, yaw positive
 * turned left, roll positive counter-clockwise seen from behind. `pandaset-002` names the built-in
 * mounting fitted for that recording (pandaset-mounting.ts).
 */
import { Ajv } from 'ajv';
import { readJsonFile, schemaError } from '../../pipeline/index.js';
import type { CameraIntrinsics } from '../../pipeline/frame.js';
import { UDACITY_INTRINSICS, UDACITY_MOUNTING } from '../lanes/assumed-cameras.js';
import type { CameraMounting } from './camera-model.js';
import { PANDASET_002_FRONT_MOUNTING } from './pandaset-mounting.js';

const DEG_TO_RAD = Math.PI / 180;
/** Built-in mountings by name. */
export const BUILT_IN_MOUNTINGS: Readonly<Record<string, Readonly<CameraMounting>>> = {
  'pandaset-002': PANDASET_002_FRONT_MOUNTING,
  'udacity-solidwhiteright': UDACITY_MOUNTING,
};

/**
 * Intrinsics of built-in cameras whose recordings carry none (an imported video): the world model
 * uses them for frames without calibration. PandaSet recordings carry their own.
 */
const BUILT_IN_INTRINSICS: Readonly<Record<string, Readonly<CameraIntrinsics>>> = { 'udacity-solidwhiteright': UDACITY_INTRINSICS };

/** The built-in camera's intrinsics for `mountingName`, if it has any (undefined for files and calibrated recordings). */
export function builtInIntrinsics(mountingName: string): CameraIntrinsics | undefined {
  const intrinsics = BUILT_IN_INTRINSICS[mountingName];
  return intrinsics ? { ...intrinsics, distortion: [...intrinsics.distortion] } : undefined;
}

export const CAMERA_MOUNTING_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['positionM', 'pitchDeg', 'yawDeg', 'rollDeg'],
  properties: {
    positionM: {
      type: 'object',
      additionalProperties: false,
      required: ['x', 'y', 'z'],
      properties: { x: { type: 'number', minimum: -10, maximum: 10 }, y: { type: 'number', minimum: -3, maximum: 3 }, z: { type: 'number', exclusiveMinimum: 0, maximum: 5 } },
    },
    pitchDeg: { type: 'number', minimum: -45, maximum: 45 },
    yawDeg: { type: 'number', minimum: -45, maximum: 45 },
    rollDeg: { type: 'number', minimum: -45, maximum: 45 },
  },
} as const;

const validate = new Ajv({ strict: true, allErrors: false, strictNumbers: true }).compile(CAMERA_MOUNTING_SCHEMA);

/** Validates a parsed mounting file; errors name `source` and the field. */
export function parseCameraMounting(json: unknown, source = '(in-memory camera mounting)'): CameraMounting {
  if (!validate(json)) throw schemaError(source, validate.errors![0]!, json);
  const file = json as { positionM: { x: number; y: number; z: number }; pitchDeg: number; yawDeg: number; rollDeg: number };
  return { positionM: { ...file.positionM }, pitchRad: file.pitchDeg * DEG_TO_RAD, yawRad: file.yawDeg * DEG_TO_RAD, rollRad: file.rollDeg * DEG_TO_RAD };
}

/** A built-in mounting by name, or a mounting file. */
export async function loadCameraMounting(nameOrPath: string): Promise<CameraMounting> {
  const builtIn = BUILT_IN_MOUNTINGS[nameOrPath];
  if (builtIn) return { ...builtIn, positionM: { ...builtIn.positionM } };
  return parseCameraMounting(await readJsonFile(nameOrPath, 'loadCameraMounting'), nameOrPath);
}
