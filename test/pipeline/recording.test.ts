import { copyFile, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { McapIndexedReader } from '@mcap/core';
import { FileHandleReadable } from '@mcap/nodejs';
import { loadDecompressHandlers, protobufFromBinaryDescriptor } from '@mcap/support';
import { open } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { RecordingError } from '../../pipeline/recording/errors.js';
import { RecordingReader, type RecordedMessage } from '../../pipeline/recording/reader.js';
import {
  PayloadError,
  TOPIC_CAMERA,
  TOPIC_VEHICLE_STATE,
  cameraCalibrationCodec,
  compressedImageCodec,
  frameReportCodec,
  groundTruthObjectsCodec,
  imageBoxesCodec,
  poseCodec,
  vehicleStateCodec,
} from '../../pipeline/recording/topics.js';
import { RecordingWriter } from '../../pipeline/recording/writer.js';
import { importedPandasetDrive, tempDir } from '../support/data.js';

const T0 = 1_557_539_956_450_180_000n;

async function readAll(file: string, problems: RecordingError[] = [], strict = false): Promise<RecordedMessage[]> {
  const reader = await RecordingReader.open(file, { strict, onProblem: (p) => problems.push(p) });
  try {
    const out: RecordedMessage[] = [];
    for await (const message of reader.messages()) out.push(message);
    return out;
  } finally {
    await reader.close();
  }
}

describe('topic codecs', () => {
  it('round-trip every typed message', () => {
    const image = { tNs: T0, frameId: 'camera_front', format: 'jpeg' as const, data: new Uint8Array([0xff, 0xd8, 1, 2, 3, 0xff, 0xd9]) };
    const decodedImage = compressedImageCodec.decode(compressedImageCodec.encode(image));
    expect(decodedImage.tNs).toBe(T0);
    expect([...decodedImage.data]).toEqual([...image.data]);

    const intrinsics = { width: 1920, height: 1080, fx: 1970.01, fy: 1970.0, cx: 970, cy: 483.3, distortionModel: 'plumb_bob' as const, distortion: [0.1, 0, 0, 0, 0] };
    expect(cameraCalibrationCodec.decode(cameraCalibrationCodec.encode({ tNs: T0, frameId: 'c', intrinsics })).intrinsics).toEqual(intrinsics);

    const state = { tNs: T0 + 1n, speedMps: 7.5, yawRateRps: -0.02, accelMps2: 0.3 };
    expect(vehicleStateCodec.decode(vehicleStateCodec.encode(state))).toEqual(state);

    const pose = { tNs: T0, frameId: 'world', positionM: { x: 1, y: 2, z: 3 }, orientation: { x: 0, y: 0, z: 0, w: 1 } };
    expect(poseCodec.decode(poseCodec.encode(pose))).toEqual(pose);

    const objects = {
      tNs: T0,
      frameId: 'world',
      objects: [{ id: 'a', label: 'Car', positionM: { x: 1, y: 2, z: 0.5 }, lengthM: 4.7, widthM: 1.9, heightM: 1.6, yawRad: 0.3, stationary: true }],
    };
    expect(groundTruthObjectsCodec.decode(groundTruthObjectsCodec.encode(objects))).toEqual(objects);

    const boxes = { tNs: T0, boxes: [{ label: 'car', score: 0.8731, box: [10, 20.5, 110, 80] as [number, number, number, number], color: { r: 1, g: 0, b: 0, a: 1 } }] };
    expect(imageBoxesCodec.decode(imageBoxesCodec.encode(boxes))).toEqual(boxes);

    const report = { tNs: T0, seq: 3, width: 1920, height: 1080, meanLuma: 101.5, darkFraction: 0.01, clippedFraction: 0 };
    expect(frameReportCodec.decode(frameReportCodec.encode(report))).toEqual(report);
  });

  it('refuse bad payloads naming the field', () => {
    const bytes = (json: unknown) => new TextEncoder().encode(JSON.stringify(json));
    expect(() => vehicleStateCodec.decode(bytes({ timestamp: { sec: 1, nsec: 0 }, speedMps: 'fast', yawRateRps: 0 }))).toThrow(
      new PayloadError("arhud.VehicleState: field 'speedMps' must be number"),
    );
    expect(() => vehicleStateCodec.decode(bytes({ timestamp: { sec: 1, nsec: 2e9 }, speedMps: 1, yawRateRps: 0 }))).toThrow(/field 'timestamp.nsec' must be <= 999999999/);
    expect(() => cameraCalibrationCodec.decode(new Uint8Array([0x7b, 0x22]))).toThrow(/^foxglove.CameraCalibration: payload is not JSON/);
    // Images are protobuf: garbage, a wrong format and an empty image are refused by field.
    expect(() => compressedImageCodec.decode(new Uint8Array([0x0a, 0xff, 0xff, 0xff]))).toThrow(/^foxglove.CompressedImage: payload is not a protobuf foxglove.CompressedImage/);
    const image = { tNs: T0, frameId: 'c', format: 'jpeg' as const, data: new Uint8Array([1, 2]) };
    expect(() => compressedImageCodec.decode(compressedImageCodec.encode({ ...image, format: 'bmp' as 'jpeg' }))).toThrow(
      new PayloadError("foxglove.CompressedImage: field 'format' must be one of jpeg, png, got 'bmp'"),
    );
    expect(() => compressedImageCodec.decode(compressedImageCodec.encode({ ...image, data: new Uint8Array(0) }))).toThrow(/field 'data' is empty/);
    expect(() => compressedImageCodec.decode(new Uint8Array(0))).toThrow(/field 'timestamp' is missing/);
  });
});

describe('RecordingWriter / RecordingReader', () => {
  it('round-trips messages in log-time order with per-topic sequences, indexed and readable by @mcap/core', async () => {
    const file = path.join(await tempDir(), 'roundtrip.mcap');
    const writer = await RecordingWriter.create(file, { chunkSizeBytes: 2048 });
    for (let i = 0; i < 50; i++) {
      const tNs = T0 + BigInt(i) * 20_000_000n;
      void writer.write(TOPIC_VEHICLE_STATE, vehicleStateCodec, tNs, { tNs, speedMps: i / 2, yawRateRps: 0.01 * i });
      if (i % 5 === 0) void writer.write(TOPIC_CAMERA, compressedImageCodec, tNs, { tNs, frameId: 'cam', format: 'jpeg', data: new Uint8Array(300).fill(i) });
    }
    await writer.close();
    expect(writer.messageCount).toBe(60);

    const reader = await RecordingReader.open(file);
    expect(reader.indexed).toBe(true);
    expect(reader.messageCount).toBe(60);
    expect(reader.startNs).toBe(T0);
    expect(reader.endNs).toBe(T0 + 49n * 20_000_000n);
    expect(reader.topic(TOPIC_CAMERA)).toEqual({ topic: TOPIC_CAMERA, schemaName: 'foxglove.CompressedImage', messageCount: 10 });
    const states: RecordedMessage[] = [];
    for await (const m of reader.messages({ topics: [TOPIC_VEHICLE_STATE], startNs: T0 + 100_000_000n, endNs: T0 + 200_000_000n })) states.push(m);
    await reader.close();
    expect(states.map((m) => vehicleStateCodec.decode(m.data).speedMps)).toEqual([2.5, 3, 3.5, 4, 4.5, 5]);
    expect(states.map((m) => m.sequence)).toEqual([5, 6, 7, 8, 9, 10]);

    // The reference reader opens it too (what Foxglove Studio relies on).
    const handle = await open(file, 'r');
    const mcap = await McapIndexedReader.Initialize({ readable: new FileHandleReadable(handle), decompressHandlers: await loadDecompressHandlers() });
    expect(mcap.chunkIndexes.length).toBeGreaterThan(1);
    expect(mcap.chunkIndexes.every((c) => c.compression === 'zstd')).toBe(true);
    expect(mcap.statistics?.messageCount).toBe(60n);
    // Images carry a protobuf FileDescriptorSet that a generic protobuf reader can decode them with.
    const imageChannel = [...mcap.channelsById.values()].find((c) => c.topic === TOPIC_CAMERA)!;
    const imageSchema = mcap.schemasById.get(imageChannel.schemaId)!;
    expect([imageSchema.name, imageSchema.encoding, imageChannel.messageEncoding]).toEqual(['foxglove.CompressedImage', 'protobuf', 'protobuf']);
    const imageType = protobufFromBinaryDescriptor(imageSchema.data).lookupType('foxglove.CompressedImage');
    for await (const record of mcap.readMessages({ topics: [TOPIC_CAMERA] })) {
      const generic = imageType.toObject(imageType.decode(record.data), { longs: String }) as { timestamp: { seconds: string; nanos: number }; format: string; data: Uint8Array };
      expect(BigInt(generic.timestamp.seconds) * 1_000_000_000n + BigInt(generic.timestamp.nanos)).toBe(record.logTime);
      expect(generic.format).toBe('jpeg');
      expect(generic.data.length).toBe(300);
    }
    await handle.close();
  });

  it('refuses log time 0 and writes after close', async () => {
    const file = path.join(await tempDir(), 'bad.mcap');
    const writer = await RecordingWriter.create(file);
    await expect(writer.write(TOPIC_VEHICLE_STATE, vehicleStateCodec, 0n, { tNs: 0n, speedMps: 0, yawRateRps: 0 })).rejects.toThrow(
      `RecordingWriter.write: ${file} topic '/vehicle/state': log time must be > 0 ns, got 0`,
    );
    await writer.close();
    await expect(writer.write(TOPIC_VEHICLE_STATE, vehicleStateCodec, 1n, { tNs: 1n, speedMps: 0, yawRateRps: 0 })).rejects.toThrow(/is closed/);
  });

  it('names a file that is not MCAP', async () => {
    const file = path.join(await tempDir(), 'notes.mcap');
    await writeFile(file, 'these are not the bytes you are looking for');
    await expect(RecordingReader.open(file)).rejects.toThrow(new RecordingError({ file, offset: 0 }, 'not an MCAP file (no MCAP magic; 43 bytes)'));
    await expect(RecordingReader.open(path.join(path.dirname(file), 'missing.mcap'))).rejects.toThrow(/missing\.mcap: cannot open \(ENOENT/);
  });
});

describe('damaged copies of a real recording', () => {
  let drive: string;
  let all: RecordedMessage[];
  beforeAll(async () => {
    drive = await importedPandasetDrive();
    all = await readAll(drive);
  });

  it.each([0.3, 0.75, 0.999])('recovers the prefix of a copy truncated at %s of its size', async (fraction) => {
    const copy = path.join(await tempDir(), 'truncated.mcap');
    await copyFile(drive, copy);
    const size = (await stat(copy)).size;
    const cut = Math.floor(size * fraction);
    await truncate(copy, cut);

    const problems: RecordingError[] = [];
    const recovered = await readAll(copy, problems);
    expect(problems.length).toBeGreaterThanOrEqual(1);
    expect(problems[0]!.message).toMatch(new RegExp(`^${copy.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')}: at byte offset \\d+: no valid summary`));
    expect(recovered.length).toBeLessThanOrEqual(all.length);
    // What is recovered is exactly a prefix of what was written.
    recovered.forEach((m, i) => {
      expect(m.topic).toBe(all[i]!.topic);
      expect(m.logTimeNs).toBe(all[i]!.logTimeNs);
      expect(Buffer.compare(m.data, all[i]!.data)).toBe(0);
    });
    if (fraction < 0.9) {
      expect(recovered.length).toBeLessThan(all.length);
      expect(problems.some((p) => /truncated/.test(p.message))).toBe(true);
    }
    await expect(readAll(copy, [], true)).rejects.toThrow(RecordingError);
  });

  it('skips a corrupt chunk, reads the others, and names the chunk offset', async () => {
    const copy = path.join(await tempDir(), 'corrupt-chunk.mcap');
    const bytes = await readFile(drive);
    const reader = await RecordingReader.open(drive);
    await reader.close();
    // Damage bytes in the middle of the file: inside a compressed chunk.
    const at = Math.floor(bytes.length * 0.5);
    for (let i = 0; i < 64; i++) bytes[at + i] = bytes[at + i]! ^ 0x5a;
    await writeFile(copy, bytes);

    const problems: RecordingError[] = [];
    const read = await readAll(copy, problems);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/corrupt-chunk\.mcap: at byte offset \d+: corrupt chunk holding messages from \d+ to \d+ ns/);
    expect(read.length).toBeGreaterThan(0);
    expect(read.length).toBeLessThan(all.length);
    await expect(readAll(copy, [], true)).rejects.toThrow(/corrupt chunk/);
  });
});
