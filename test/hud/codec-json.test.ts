import { describe, expect, it } from 'vitest';
import { HUD_SCENE_VERSION, hudSceneToJson, type HudScene } from '../../render/hud-scene.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { parametricWarpMap, warpMapToJson } from '../../render/warp-map.js';
import {
  HUD_TOPIC_VERSION,
  HudPayloadError,
  MAX_FRAME_AGE_MS_LIMIT,
  MAX_PAYLOAD_BYTES,
  encodeConfigResult,
  encodeDisplayAck,
  encodePipelineConfig,
  encodeStatus,
  encodeWarning,
  hudTopics,
  parseCalibrationPayload,
  parseConfigPayload,
  parseConfigResult,
  parseDisplayAck,
  parseOpticsConfigPayload,
  parsePipelineConfig,
  parseScenePayload,
  parseStatus,
  parseWarning,
  type AdasWarning,
} from '../../hud/topics.js';
import { thrownBy } from '../support/errors.js';

const topics = hudTopics('car-1');
const bytes = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
const WARNING: AdasWarning = { id: 'fcw-17', tNs: 1_700_000_000_000_000_001n, level: 'critical', kind: 'forward-collision', message: 'Brake!', validUntilNs: 1_700_000_000_500_000_000n };
const warningJson = () => JSON.parse(new TextDecoder().decode(encodeWarning(WARNING))) as Record<string, unknown>;

function expectRefused(fn: () => unknown, topic: string, field: string | undefined, text: RegExp): void {
  const error = thrownBy(fn) as HudPayloadError;
  expect(error.name).toBe('HudPayloadError');
  expect(error.topic).toBe(topic);
  expect(error.field).toBe(field);
  expect(error.message.startsWith(field === undefined ? `${topic}: ` : `${topic}: field '${field}' `), error.message).toBe(true);
  expect(error.message).toMatch(text);
}

describe('hudTopics', () => {
  it('puts every topic under arhud/v1/{vehicleId}/', () => {
    expect(topics).toEqual({
      root: `arhud/${HUD_TOPIC_VERSION}/car-1`,
      frame: 'arhud/v1/car-1/hud/frame',
      scene: 'arhud/v1/car-1/hud/scene',
      warnings: 'arhud/v1/car-1/adas/warnings',
      status: 'arhud/v1/car-1/status',
      cameraPreview: 'arhud/v1/car-1/camera/preview',
      configOptics: 'arhud/v1/car-1/config/optics',
      configCalibration: 'arhud/v1/car-1/config/calibration',
      configPipeline: 'arhud/v1/car-1/config/pipeline',
      configResult: 'arhud/v1/car-1/config/result',
      displayAck: 'arhud/v1/car-1/display/ack',
    });
    expect(Object.keys(MAX_PAYLOAD_BYTES).sort()).toEqual(Object.keys(topics).filter((k) => k !== 'root').sort());
  });

  it.each(['', 'a/b', 'car+', 'car#', 'car 1', 'ü', 'x'.repeat(65)])('refuses vehicleId %j with RangeError', (id) => {
    const error = thrownBy(() => hudTopics(id));
    expect(error.name).toBe('RangeError');
    expect(error.message).toMatch(/^hudTopics: 'vehicleId' must match .* \(no MQTT wildcards or slashes\), got /);
  });

  it('accepts a 64-character id', () => {
    expect(hudTopics('x'.repeat(64)).root).toBe(`arhud/v1/${'x'.repeat(64)}`);
  });
});

describe('JSON payloads', () => {
  it('round trip: warning, status, display ack, config result, pipeline config', () => {
    expect(parseWarning(encodeWarning(WARNING), topics.warnings)).toEqual(WARNING);
    for (const status of [{ state: 'online', tNs: 5n }, { state: 'degraded', tNs: 6n, reason: 'perception late' }] as const) {
      expect(parseStatus(encodeStatus(status), topics.status)).toEqual(status);
    }
    for (const ack of [{ sequence: 0xffff_ffff, tCaptureNs: 1n, tShownNs: 18_446_744_073_709_551_615n }, { sequence: 0, tCaptureNs: 1n, tShownNs: 2n, dropped: 3 }]) {
      expect(parseDisplayAck(encodeDisplayAck(ack), topics.displayAck)).toEqual(ack);
    }
    const rejected = { topic: topics.configOptics, accepted: false, error: 'bad', field: 'far.vidM', tNs: 9n };
    expect(parseConfigResult(encodeConfigResult(rejected), topics.configResult)).toEqual(rejected);
    expect(parseConfigResult(encodeConfigResult({ topic: topics.configPipeline, accepted: true, tNs: 1n }), topics.configResult)).toEqual({ topic: topics.configPipeline, accepted: true, tNs: 1n });
    const config = { detect: 'int8', maxFrameAgeMs: 150, brightness: 'auto' } as const;
    expect(parsePipelineConfig(encodePipelineConfig(config), topics.configPipeline)).toEqual(config);
    expect(parsePipelineConfig(bytes({}), topics.configPipeline)).toEqual({});
  });

  it('cuts long error texts so a config result always fits its own schema', () => {
    const result = { topic: topics.configOptics, accepted: false, error: 'e'.repeat(5000), field: 'f'.repeat(400), tNs: 1n };
    const back = parseConfigResult(encodeConfigResult(result), topics.configResult);
    expect(back.error).toHaveLength(1024);
    expect(back.field).toHaveLength(256);
  });

  it.each([
    ['level', { level: 'info' }, /must be equal to one of the allowed values, got "info"/],
    ['tNs', { tNs: 5 }, /must be string, got 5/],
    ['tNs', { tNs: '-5' }, /must match pattern/],
    ['validUntilNs', { validUntilNs: '1e9' }, /must match pattern/],
    ['id', { id: '' }, /must NOT have fewer than 1 characters/],
    ['id', { id: undefined }, /is required/],
    ['kind', { kind: 'k'.repeat(65) }, /must NOT have more than 64 characters/],
    ['extra', { extra: 1 }, /is not a known field/],
  ])("refuses a warning with a bad '%s'", (field, change, text) => {
    const json = { ...warningJson(), ...change };
    expectRefused(() => parseWarning(bytes(json), topics.warnings), topics.warnings, field, text);
  });

  it.each([
    [parseStatus, topics.status, { state: 'sleeping', tNs: '1' }, 'state'],
    [parseStatus, topics.status, { state: 'online', tNs: '1', reason: 7 }, 'reason'],
    [parseDisplayAck, topics.displayAck, { sequence: -1, tCaptureNs: '1', tShownNs: '2' }, 'sequence'],
    [parseDisplayAck, topics.displayAck, { sequence: 2 ** 32, tCaptureNs: '1', tShownNs: '2' }, 'sequence'],
    [parseDisplayAck, topics.displayAck, { sequence: 1.5, tCaptureNs: '1', tShownNs: '2' }, 'sequence'],
    [parseDisplayAck, topics.displayAck, { sequence: 1, tCaptureNs: '1' }, 'tShownNs'],
    [parseDisplayAck, topics.displayAck, { sequence: 1, tCaptureNs: '1', tShownNs: '2', dropped: -2 }, 'dropped'],
    [parseConfigResult, topics.configResult, { topic: 't', accepted: 'yes', tNs: '1' }, 'accepted'],
    [parsePipelineConfig, topics.configPipeline, { detect: 'int4' }, 'detect'],
    [parsePipelineConfig, topics.configPipeline, { maxFrameAgeMs: 0 }, 'maxFrameAgeMs'],
    [parsePipelineConfig, topics.configPipeline, { maxFrameAgeMs: MAX_FRAME_AGE_MS_LIMIT + 1 }, 'maxFrameAgeMs'],
    [parsePipelineConfig, topics.configPipeline, { brightness: 'auto', fps: 60 }, 'fps'],
    [parsePipelineConfig, topics.configPipeline, [], '(root)'],
  ] as const)('%o on %s refuses %j naming the field', (parse, topic, json, field) => {
    expectRefused(() => parse(bytes(json), topic), topic, field, /./);
  });

  it('accepts the limits exactly: maxFrameAgeMs at its maximum, a payload of exactly the byte limit', () => {
    expect(parsePipelineConfig(bytes({ maxFrameAgeMs: MAX_FRAME_AGE_MS_LIMIT }), topics.configPipeline).maxFrameAgeMs).toBe(MAX_FRAME_AGE_MS_LIMIT);
    const encoded = new TextDecoder().decode(encodeWarning(WARNING));
    const atLimit = bytes(encoded.padEnd(MAX_PAYLOAD_BYTES.warnings, ' '));
    expect(atLimit.length).toBe(MAX_PAYLOAD_BYTES.warnings);
    expect(parseWarning(atLimit, topics.warnings)).toEqual(WARNING);
    const over = bytes(encoded.padEnd(MAX_PAYLOAD_BYTES.warnings + 1, ' '));
    expectRefused(() => parseWarning(over, topics.warnings), topics.warnings, undefined, new RegExp(`payload of ${MAX_PAYLOAD_BYTES.warnings + 1} bytes exceeds the limit of ${MAX_PAYLOAD_BYTES.warnings} bytes`));
  });

  it('refuses empty, non-UTF-8, non-JSON and truncated payloads on every JSON topic', () => {
    const parsers: [string, (b: Uint8Array, t: string) => unknown][] = [
      [topics.warnings, parseWarning],
      [topics.status, parseStatus],
      [topics.displayAck, parseDisplayAck],
      [topics.configResult, parseConfigResult],
      [topics.configPipeline, parsePipelineConfig],
      [topics.configOptics, parseOpticsConfigPayload],
      [topics.configCalibration, parseCalibrationPayload],
      [topics.scene, parseScenePayload],
    ];
    for (const [topic, parse] of parsers) {
      expectRefused(() => parse(new Uint8Array(0), topic), topic, undefined, /payload is empty|not JSON/);
      expectRefused(() => parse(Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]), topic), topic, undefined, /payload is not valid UTF-8/);
      expectRefused(() => parse(bytes('{"id": '), topic), topic, undefined, /not JSON/);
      expectRefused(() => parse(encodeWarning(WARNING).subarray(0, 20), topic), topic, undefined, /not JSON/);
    }
  });

  it('refuses oversize payloads on every JSON topic before parsing them', () => {
    const cases: [keyof typeof MAX_PAYLOAD_BYTES, (b: Uint8Array, t: string) => unknown][] = [
      ['warnings', parseWarning],
      ['status', parseStatus],
      ['displayAck', parseDisplayAck],
      ['configResult', parseConfigResult],
      ['configPipeline', parsePipelineConfig],
      ['configOptics', parseOpticsConfigPayload],
      ['configCalibration', parseCalibrationPayload],
      ['scene', parseScenePayload],
    ];
    for (const [name, parse] of cases) {
      const topic = topics[name];
      expectRefused(() => parse(new Uint8Array(MAX_PAYLOAD_BYTES[name] + 1).fill(0x20), topic), topic, undefined, /exceeds the limit/);
    }
  });
});

describe('scene and config payloads (schemas from render/)', () => {
  const scene: HudScene = {
    version: HUD_SCENE_VERSION,
    tCaptureNs: 10n,
    brightness: 'night',
    degraded: false,
    primitives: [{ kind: 'speed', speedMps: 13.9, limitMps: 13.9, validUntilNs: 20n }],
  };

  it('round trips a scene and names the failing field of a bad one', () => {
    expect(parseScenePayload(bytes(hudSceneToJson(scene)), topics.scene)).toEqual(scene);
    const bad = JSON.parse(hudSceneToJson(scene)) as { primitives: { speedMps: number }[] };
    bad.primitives[0]!.speedMps = -1;
    expectRefused(() => parseScenePayload(bytes(bad), topics.scene), topics.scene, 'primitives.0.speedMps', /must be >= 0/);
  });

  it('parses optics and calibration configs and names the failing field', () => {
    expect(parseOpticsConfigPayload(bytes({ far: { vidM: 12 } }), topics.configOptics).far.vidM).toBe(12);
    expect(parseConfigPayload('optics', bytes({}), topics.configOptics)).toEqual(HUD_OPTICS_DEFAULTS);
    expectRefused(() => parseOpticsConfigPayload(bytes({ far: { vidM: 100 } }), topics.configOptics), topics.configOptics, 'far.vidM', /must be <= 15, got 100/);
    expectRefused(() => parseOpticsConfigPayload(bytes({ lens: 1 }), topics.configOptics), topics.configOptics, 'lens', /is not a known field/);
    const overlap = { near: { panelRegion: { xPx: 0, yPx: 0, widthPx: 100, heightPx: 100 } } };
    expectRefused(() => parseOpticsConfigPayload(bytes(overlap), topics.configOptics), topics.configOptics, 'near.panelRegion', /must not overlap/);

    const map = parametricWarpMap({ panel: { widthPx: 1280, heightPx: 480 }, eyePositionsM: [{ x: 1.6, y: 0.37, z: 1.2 }], k1Of: () => -0.05 });
    const text = warpMapToJson(map);
    expect(parseCalibrationPayload(bytes(text), topics.configCalibration).cols).toBe(map.cols);
    const bad = JSON.parse(text) as { grid: { cols: number } };
    bad.grid.cols = 1;
    expectRefused(() => parseConfigPayload('calibration', bytes(bad), topics.configCalibration), topics.configCalibration, 'grid.cols', /must be >= /);
    expectRefused(() => parseConfigPayload('calibration', bytes({ ...JSON.parse(text), version: 2 }), topics.configCalibration), topics.configCalibration, 'version', /must be 1/);
  });
});
