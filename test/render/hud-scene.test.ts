import { describe, expect, it } from 'vitest';
import { HUD_SCENE_VERSION, HudSceneError, hudSceneToJson, parseHudScene, validPrimitives, type HudScene } from '../../render/hud-scene.js';

const T0 = 1_557_539_956_450_180_000n;

function busyScene(): HudScene {
  return {
    version: HUD_SCENE_VERSION,
    tCaptureNs: T0,
    brightness: 'day',
    degraded: false,
    primitives: [
      { kind: 'lane', id: 'l', role: 'ego-left', pointsM: [[5, 1.8], [50, 1.7]], lineType: 'dashed', confidence: 0.9, validUntilNs: T0 + 200_000_000n },
      { kind: 'object', trackId: '7', objectClass: 'person', positionM: { x: 18, y: -1 }, widthM: 0.6, warning: 'warning', ttcS: 2.1, validUntilNs: T0 + 150_000_000n },
      { kind: 'forward-collision', level: 'critical', ttcS: 1.2, validUntilNs: T0 + 100_000_000n },
      { kind: 'speed', speedMps: 13.4, limitMps: 13.9, validUntilNs: T0 + 1_000_000_000n },
    ],
  };
}

describe('HudScene', () => {
  it('round-trips through JSON with nanosecond times intact', () => {
    const scene = busyScene();
    const json = hudSceneToJson(scene);
    expect(json).toContain('"tCaptureNs":"1557539956450180000"');
    expect(parseHudScene(json)).toEqual(scene);
  });

  it('drops primitives at and after their validity', () => {
    const scene = busyScene();
    expect(validPrimitives(scene, T0 + 99_999_999n).map((p) => p.kind)).toEqual(['lane', 'object', 'forward-collision', 'speed']);
    expect(validPrimitives(scene, T0 + 100_000_000n).map((p) => p.kind)).toEqual(['lane', 'object', 'speed']);
    expect(validPrimitives(scene, T0 + 1_000_000_000n)).toEqual([]);
  });

  it('refuses bad payloads naming the source and field', () => {
    const bad = JSON.parse(hudSceneToJson(busyScene())) as { primitives: Record<string, unknown>[]; version: number };
    bad.primitives[1]!.widthM = -1;
    expect(() => parseHudScene(JSON.stringify(bad), 'mqtt arhud/v1/car1/hud/scene')).toThrow(
      new HudSceneError("mqtt arhud/v1/car1/hud/scene: field 'primitives.1.widthM' must be >= 0"),
    );
    expect(() => parseHudScene('{"version": 1', 'scene.json')).toThrow(/^scene\.json: not JSON/);
    const future = JSON.parse(hudSceneToJson(busyScene())) as { version: number };
    future.version = 2;
    expect(() => parseHudScene(JSON.stringify(future))).toThrow(/field 'version' must be equal to constant/);
  });
});
