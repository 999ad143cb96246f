import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BLUR_LIMIT_PX,
  calibrateCameraFromImages,
  cameraCalibrationToJson,
  detectChessboard,
  loadCameraCalibration,
  loadGrayImage,
  MIN_VIEWS,
  parseCameraCalibration,
  type CameraCalibration,
} from '../../calibration/camera/index.js';
import { seededRandom } from '../../calibration/math/random.js';
import { DATA_DIR, tempDir } from '../support/data.js';

const DIR = path.join(DATA_DIR, 'opencv-chessboard');
const LEFT01 = path.join(DIR, 'left01.jpg');
const THREE = ['left01.jpg', 'left03.jpg', 'left11.jpg'].map((n) => path.join(DIR, n));
const BOARD = { cols: 9, rows: 6 };
const SQUARE_M = 0.025;

async function thrown(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
  }
  throw new Error('expected a rejection with an Error');
}

describe('bad calibration input', () => {
  let dir: string;
  let blurred: string;
  let partial: string;
  let noise: string;
  beforeAll(async () => {
    dir = await tempDir('arhud-camera-');
    blurred = path.join(dir, 'blurred-left01.png');
    await sharp(LEFT01).blur(8).toFile(blurred);
    // Cut the image through the board's middle row of squares.
    const image = await loadGrayImage(LEFT01);
    const detection = detectChessboard(image, BOARD);
    if (!detection.found) throw new Error(detection.reason);
    const c = detection.corners;
    const ys = Array.from({ length: c.length / 2 }, (_, k) => c[2 * k + 1]!);
    const cutPx = Math.round((Math.min(...ys) + Math.max(...ys)) / 2);
    partial = path.join(dir, 'partial-left01.png');
    await sharp(LEFT01).extract({ left: 0, top: 0, width: image.widthPx, height: cutPx }).toFile(partial);
    noise = path.join(dir, 'noise.png');
    const random = seededRandom(5);
    const pixels = Buffer.from(Array.from({ length: 640 * 480 }, () => Math.floor(random() * 256)));
    await sharp(pixels, { raw: { width: 640, height: 480, channels: 1 } }).png().toFile(noise);
  });

  it('reports a blurred board as too blurred, naming the image', async () => {
    const detection = detectChessboard(await loadGrayImage(blurred), BOARD);
    expect(detection.found).toBe(false);
    if (!detection.found) expect(detection.reason).toMatch(new RegExp(`^too blurred: edge blur ~[0-9.]+ px (over the board )?\\(limit ${BLUR_LIMIT_PX} px\\)`));
    const error = await thrown(calibrateCameraFromImages([blurred, ...THREE.slice(0, 2)], { board: BOARD, squareM: SQUARE_M }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toMatch(/^calibrateCamera: too few views with a 9x6 board: 2 of 3, need >= 3 \(used: left01\.jpg, left03\.jpg; not found: blurred-left01\.png \(too blurred: /);
  });

  it('reports a board cut by the image edge as partially outside', async () => {
    const detection = detectChessboard(await loadGrayImage(partial), BOARD);
    expect(detection.found).toBe(false);
    if (!detection.found) expect(detection.reason).toMatch(/^board partially outside the image: found a 9x\d corner lattice .* reaching the image edge, expected 9x6/);
  });

  it.each([
    [8, 5],
    [10, 7],
    [9, 5],
  ])('refuses to read the 9x6 board as %ix%i', async (cols, rows) => {
    const detection = detectChessboard(await loadGrayImage(LEFT01), { cols, rows });
    expect(detection.found).toBe(false);
    if (!detection.found) expect(detection.reason).toMatch(new RegExp(`^wrong board size: found a \\d+x\\d+ corner lattice \\(54 corners\\), expected ${cols}x${rows}$`));
  });

  it('finds no board in noise and names the image among the failures', async () => {
    const detection = detectChessboard(await loadGrayImage(noise), BOARD);
    expect(detection.found).toBe(false);
    if (!detection.found) expect(detection.reason).toMatch(/^no (complete )?9x6 chessboard/);
    const error = await thrown(calibrateCameraFromImages([noise, LEFT01], { board: BOARD, squareM: SQUARE_M }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toContain(`1 of 2, need >= ${MIN_VIEWS} (used: left01.jpg; not found: noise.png (no`);
  });

  it('refuses too few views, listing the views used', async () => {
    const error = await thrown(calibrateCameraFromImages(THREE.slice(0, 2), { board: BOARD, squareM: SQUARE_M }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe(`calibrateCamera: too few views with a 9x6 board: 2 of 2, need >= ${MIN_VIEWS} (used: left01.jpg, left03.jpg; not found: none)`);
  });

  it('names a missing image file', async () => {
    const error = await thrown(calibrateCameraFromImages([path.join(dir, 'missing.jpg')], { board: BOARD, squareM: SQUARE_M }));
    expect(error.message).toMatch(/^calibrateCamera: cannot read image .*missing\.jpg/);
  });

  it('refuses a bad board size and square', async () => {
    const image = await loadGrayImage(LEFT01);
    expect(() => detectChessboard(image, { cols: 1, rows: 6 })).toThrow(new RangeError("detectChessboard: 'board.cols' must be an integer in [2, 100], got 1"));
    const error = await thrown(calibrateCameraFromImages(THREE, { board: BOARD, squareM: -1 }));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe("calibrateCamera: 'squareM' must be a length > 0 in metres, got -1");
  });
});

describe('camera calibration files', () => {
  let dir: string;
  let accepted: CameraCalibration;
  let rejected: CameraCalibration;
  const tinyLimitPx = 0.01;
  beforeAll(async () => {
    dir = await tempDir('arhud-camera-file-');
    accepted = await calibrateCameraFromImages(THREE, { board: BOARD, squareM: SQUARE_M, fixAspectRatio: true });
    rejected = await calibrateCameraFromImages(THREE, { board: BOARD, squareM: SQUARE_M, fixAspectRatio: true, maxRmsPx: tinyLimitPx });
  });

  it('round-trips a calibration through its file', async () => {
    expect(accepted.status).toBe('accepted');
    const file = path.join(dir, 'camera.json');
    const json = cameraCalibrationToJson(accepted, { date: '2025-01-01T00:00:00Z' });
    await writeFile(file, JSON.stringify(json));
    const loaded = await loadCameraCalibration(file);
    expect(loaded).toEqual(json);
    expect(loaded.fx).toBe(accepted.fx);
    expect(loaded.views.map((v) => v.status)).toEqual(['used', 'used', 'used']);
  });

  it('marks a calibration over its RMS limit as rejected, and refuses to load it', async () => {
    expect(rejected.status).toBe('rejected');
    expect(rejected.rejectionReason).toBe(`RMS reprojection error ${rejected.rmsPx.toFixed(4)} px exceeds the limit of ${tinyLimitPx} px`);
    const file = path.join(dir, 'rejected.json');
    await writeFile(file, JSON.stringify(cameraCalibrationToJson(rejected)));
    const error = await thrown(loadCameraCalibration(file));
    expect(error).toBeInstanceOf(RangeError);
    expect(error.message).toBe(`loadCameraCalibration: ${file} is a rejected calibration and must not be used: ${rejected.rejectionReason}`);
    expect((await loadCameraCalibration(file, { allowRejected: true })).status).toBe('rejected');
  });

  it('names the bad field of an invalid file', () => {
    const json = cameraCalibrationToJson(accepted);
    expect(() => parseCameraCalibration({ ...json, fx: -1 }, 'cam.json')).toThrow(new RangeError("cam.json: field 'fx' must be > 0, got -1"));
    expect(() => parseCameraCalibration({ ...json, distortion: { ...json.distortion, k1: 'x' } }, 'cam.json')).toThrow(new TypeError("cam.json: field 'distortion.k1' must be number, got \"x\""));
    const { rmsPx: _rms, ...missing } = json;
    expect(() => parseCameraCalibration(missing, 'cam.json')).toThrow(new TypeError("cam.json: field 'rmsPx' is required"));
    expect(() => parseCameraCalibration({ ...json, status: 'rejected' }, 'cam.json')).toThrow(new TypeError("cam.json: field 'rejectionReason' is required when 'status' is 'rejected'"));
    expect(() => parseCameraCalibration({ ...json, version: 2 }, 'cam.json')).toThrow(RangeError);
  });
});
