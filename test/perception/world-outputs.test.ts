/**
 * What the world stage writes to replay recordings: the HudScene as is ('/hud/scene') and as a
 * foxglove.SceneUpdate for the 3D panel ('/world/scene'), both derived from the one scene.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WORLD_VALIDITY_NS } from '../../perception/adas/scene.js';
import { PANDASET_002_FRONT_MOUNTING } from '../../perception/world/index.js';
import { SCENE_FRAME_ID, SCENE_WARNING_COLORS, sceneUpdateOf } from '../../perception/world/scene-update.js';
import { worldExtension } from '../../perception/world/stage.js';
import { RecordingReader } from '../../pipeline/recording/reader.js';
import {
  CODECS_BY_TOPIC,
  PayloadError,
  TOPIC_FRAME_REPORT,
  TOPIC_HUD_SCENE,
  TOPIC_WORLD_SCENE,
  hudSceneCodec,
  sceneUpdateCodec,
} from '../../pipeline/recording/topics.js';
import { runReplay } from '../../pipeline/replay.js';
import { HUD_SCENE_VERSION, type HudScene, type WarningLevel } from '../../render/hud-scene.js';
import { importedPandasetDrive, tempDir } from '../support/data.js';

const T0 = 1_557_539_956_450_180_000n;
const UNTIL = T0 + WORLD_VALIDITY_NS;

function sceneOf(overrides: Partial<HudScene> = {}): HudScene {
  const levels: WarningLevel[] = ['none', 'caution', 'warning', 'critical'];
  return {
    version: HUD_SCENE_VERSION,
    tCaptureNs: T0,
    brightness: 'day',
    degraded: false,
    primitives: [
      { kind: 'lane', id: 'ego-left', role: 'ego-left', pointsM: [[5, 1.8], [10, 1.85], [15, 1.9]], lineType: 'dashed', confidence: 0.8, validUntilNs: UNTIL },
      { kind: 'lane', id: 'ego-right', role: 'ego-right', pointsM: [[5, -1.7], [100, -1.6]], lineType: 'solid', confidence: 0.5, validUntilNs: UNTIL },
      ...levels.map((warning, k) => ({
        kind: 'object' as const,
        trackId: `t${k}`,
        objectClass: k === 0 ? ('person' as const) : ('car' as const),
        positionM: { x: 10 + 10 * k, y: k - 1.5 },
        widthM: k === 0 ? 0.6 : 1.85,
        warning,
        ...(k === 3 ? { ttcS: 1.25 } : {}),
        validUntilNs: UNTIL,
      })),
      { kind: 'forward-collision', level: 'critical', ttcS: 1.25, validUntilNs: UNTIL },
      { kind: 'speed', speedMps: 12, validUntilNs: UNTIL },
    ],
    ...overrides,
  };
}

const metaOf = (entity: { metadata: { key: string; value: string }[] }) => Object.fromEntries(entity.metadata.map((kv) => [kv.key, kv.value]));

describe('sceneUpdateOf', () => {
  it('makes one box per tracked object, on the road at its position, coloured by warning level', () => {
    const update = sceneUpdateOf(sceneOf(), T0);
    expect(update.deletions).toEqual([]);
    const objects = update.entities.filter((e) => e.id.startsWith('object/'));
    expect(objects.map((e) => e.id)).toEqual(['object/t0', 'object/t1', 'object/t2', 'object/t3']);
    const colours = objects.map((e) => e.cubes[0]!.color);
    expect(colours).toEqual([SCENE_WARNING_COLORS.none, SCENE_WARNING_COLORS.caution, SCENE_WARNING_COLORS.warning, SCENE_WARNING_COLORS.critical]);
    // grey, yellow, orange, red
    expect(colours[0]).toMatchObject({ r: 0.6, g: 0.6, b: 0.6 });
    expect(colours[1]!.r).toBe(1);
    expect(colours[1]!.g).toBeGreaterThan(0.8);
    expect(colours[2]!.g).toBeCloseTo(0.5);
    expect(colours[3]!.g).toBeLessThan(0.2);
    const critical = objects[3]!;
    expect(critical.cubes).toHaveLength(1);
    const cube = critical.cubes[0]!;
    expect(cube.pose.position.x).toBe(40);
    expect(cube.pose.position.y).toBe(1.5);
    // Standing on the road: bottom face at z = 0.
    expect(cube.pose.position.z - cube.size.z / 2).toBeCloseTo(0, 9);
    expect(cube.size.y).toBe(1.85);
    expect(objects[0]!.cubes[0]!.size.y).toBe(0.6);
    expect(metaOf(critical)).toMatchObject({ trackId: 't3', class: 'car', warning: 'critical', ttcS: '1.250' });
    expect(metaOf(objects[0]!)).not.toHaveProperty('ttcS');
    for (const e of update.entities) {
      expect(e.frame_id).toBe(SCENE_FRAME_ID);
      expect(e.frame_id).toBe('vehicle');
      expect(e.timestamp).toEqual({ sec: 1_557_539_956, nsec: 450_180_000 });
      expect(e.lifetime).toEqual({ sec: 0, nsec: Number(WORLD_VALIDITY_NS) });
    }
  });

  it('makes one line strip per lane boundary through the ribbon points on the road', () => {
    const update = sceneUpdateOf(sceneOf(), T0);
    const lanes = update.entities.filter((e) => e.id.startsWith('lane/'));
    expect(lanes.map((e) => e.id)).toEqual(['lane/ego-left', 'lane/ego-right']);
    const line = lanes[0]!.lines[0]!;
    expect(line.type).toBe(0);
    expect(line.points).toEqual([
      { x: 5, y: 1.8, z: 0 },
      { x: 10, y: 1.85, z: 0 },
      { x: 15, y: 1.9, z: 0 },
    ]);
    expect(lanes[1]!.lines[0]!.points.at(-1)).toEqual({ x: 100, y: -1.6, z: 0 });
    expect(metaOf(lanes[0]!)).toEqual({ role: 'ego-left', lineType: 'dashed', confidence: '0.800' });
    // Status primitives (banner, speed) are not 3D content.
    expect(update.entities).toHaveLength(6);
  });

  it('gives each entity the validity left at tNs and leaves out what is no longer valid', () => {
    const later = sceneUpdateOf(sceneOf(), T0 + 100_000_000n);
    expect(later.entities[0]!.lifetime).toEqual({ sec: 0, nsec: 200_000_000 });
    expect(later.entities[0]!.timestamp).toEqual({ sec: 1_557_539_956, nsec: 550_180_000 });
    expect(sceneUpdateOf(sceneOf(), UNTIL).entities).toEqual([]);
  });

  it('draws nothing for a degraded scene', () => {
    expect(sceneUpdateOf(sceneOf({ degraded: true }), T0)).toEqual({ deletions: [], entities: [] });
  });
});

describe('world scene codecs', () => {
  it('are registered for their topics with Foxglove / arhud schema names', () => {
    expect(CODECS_BY_TOPIC.get(TOPIC_WORLD_SCENE)).toBe(sceneUpdateCodec);
    expect(CODECS_BY_TOPIC.get(TOPIC_HUD_SCENE)).toBe(hudSceneCodec);
    expect(TOPIC_WORLD_SCENE).toBe('/world/scene');
    expect(TOPIC_HUD_SCENE).toBe('/hud/scene');
    expect(sceneUpdateCodec.schemaName).toBe('foxglove.SceneUpdate');
    expect(sceneUpdateCodec.messageEncoding).toBe('json');
    expect(hudSceneCodec.schemaName).toBe('arhud.HudScene');
    expect(hudSceneCodec.messageEncoding).toBe('json');
    expect(JSON.parse(new TextDecoder().decode(sceneUpdateCodec.schemaData))).toMatchObject({ title: 'foxglove.SceneUpdate' });
    expect(JSON.parse(new TextDecoder().decode(hudSceneCodec.schemaData))).toMatchObject({ title: 'arhud.HudScene', $id: 'arhud.HudScene' });
  });

  it('round-trip a SceneUpdate and refuse a bad one naming the field', () => {
    const update = sceneUpdateOf(sceneOf(), T0);
    expect(sceneUpdateCodec.decode(sceneUpdateCodec.encode(update))).toEqual(update);
    const bad = JSON.parse(JSON.stringify(update)) as { entities: { cubes: { size: { x: unknown } }[] }[] };
    bad.entities[2]!.cubes[0]!.size.x = 'wide';
    const bytes = new TextEncoder().encode(JSON.stringify(bad));
    expect(() => sceneUpdateCodec.decode(bytes)).toThrow(PayloadError);
    expect(() => sceneUpdateCodec.decode(bytes)).toThrow(/foxglove\.SceneUpdate: field 'entities\.2\.cubes\.0\.size\.x'/);
    expect(() => sceneUpdateCodec.decode(new TextEncoder().encode('{"entities": []}'))).toThrow(/deletions/);
  });

  it('round-trip a HudScene and refuse a bad one naming the field', () => {
    const scene = sceneOf();
    expect(hudSceneCodec.decode(hudSceneCodec.encode(scene))).toEqual(scene);
    const bad = JSON.parse(new TextDecoder().decode(hudSceneCodec.encode(scene))) as { primitives: { positionM?: { x: unknown } }[] };
    bad.primitives[3]!.positionM!.x = 'near';
    const bytes = new TextEncoder().encode(JSON.stringify(bad));
    expect(() => hudSceneCodec.decode(bytes)).toThrow(PayloadError);
    expect(() => hudSceneCodec.decode(bytes)).toThrow(/arhud\.HudScene: field 'primitives\.3\.positionM\.x'/);
    expect(() => hudSceneCodec.decode(new TextEncoder().encode('not json'))).toThrow(PayloadError);
  });
});

describe('world outputs in a replay of the PandaSet drive', () => {
  it('writes /world/scene and /hud/scene for every frame, decodable, with lanes', async () => {
    const drive = await importedPandasetDrive();
    const dir = await tempDir();
    const summary = await runReplay({
      input: drive,
      output: path.join(dir, 'world.mcap'),
      pacing: 'afap',
      endS: 0.95,
      extensions: [worldExtension({ mounting: PANDASET_002_FRONT_MOUNTING, lanes: true })],
    });
    expect(summary.frames).toBeGreaterThanOrEqual(9);
    const reader = await RecordingReader.open(summary.output, { strict: true });
    try {
      expect(reader.topic(TOPIC_WORLD_SCENE)).toEqual({ topic: TOPIC_WORLD_SCENE, schemaName: 'foxglove.SceneUpdate', messageCount: summary.frames });
      expect(reader.topic(TOPIC_HUD_SCENE)).toEqual({ topic: TOPIC_HUD_SCENE, schemaName: 'arhud.HudScene', messageCount: summary.frames });
      const reports = new Map<bigint, bigint>();
      const updates = [];
      const scenes = [];
      for await (const m of reader.messages({ topics: [TOPIC_FRAME_REPORT, TOPIC_WORLD_SCENE, TOPIC_HUD_SCENE] })) {
        const codec = CODECS_BY_TOPIC.get(m.topic)!;
        const message = codec.decode(m.data);
        if (m.topic === TOPIC_FRAME_REPORT) reports.set(m.logTimeNs, (message as { tNs: bigint }).tNs);
        else if (m.topic === TOPIC_WORLD_SCENE) updates.push({ logTimeNs: m.logTimeNs, update: sceneUpdateCodec.decode(m.data) });
        else scenes.push({ logTimeNs: m.logTimeNs, scene: message as HudScene });
      }
      expect(updates).toHaveLength(summary.frames);
      expect(scenes).toHaveLength(summary.frames);
      for (const [k, { logTimeNs, scene }] of scenes.entries()) {
        // Written with its frame, and the 3D entities are exactly the scene's.
        expect(reports.get(logTimeNs)).toBe(scene.tCaptureNs);
        expect(updates[k]!.logTimeNs).toBe(logTimeNs);
        expect(updates[k]!.update).toEqual(sceneUpdateOf(scene, scene.tCaptureNs));
      }
      const laneFrames = updates.filter(({ update }) => update.entities.some((e) => e.id.startsWith('lane/') && e.lines[0]!.points.length >= 2));
      expect(laneFrames.length).toBeGreaterThan(0);
      expect(scenes.some(({ scene }) => scene.primitives.some((p) => p.kind === 'lane'))).toBe(true);
    } finally {
      await reader.close();
    }
  });
});
