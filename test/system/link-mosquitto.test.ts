/**
 * The HUD link against a real mosquitto (MQTT 5) started with the example ACL (hud/mosquitto/acl):
 * the same reliability suite as on the embedded broker, plus what only a broker with an ACL can do.
 * System suite: needs Debian's mosquitto (`.ci/run` installs it); without it these tests fail.
 */
import { ErrorWithReasonCode, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HudFrameEncoder, decodeHudFrame } from '../../hud/frame-codec.js';
import { HudLink } from '../../hud/link.js';
import { encodeWarning, hudTopics } from '../../hud/topics.js';
import {
  Inbox,
  LogLines,
  MosquittoTestBroker,
  defineLinkSuite,
  freshVehicleId,
  linkOptions,
  roleClient,
  sleep,
  testFrame,
  testWarning,
  waitFor,
  type Role,
} from '../hud/support.js';
import { MOSQUITTO_BINARIES, requireBinaries } from './binaries.js';

requireBinaries(...MOSQUITTO_BINARIES);

/** MQTT 5 reason code mosquitto gives a denied QoS 1 publish. */
const NOT_AUTHORIZED = 0x87;

describe('HudLink on mosquitto (MQTT 5, example ACL)', () => {
  defineLinkSuite(() => MosquittoTestBroker.start());
});

describe('mosquitto with the example ACL', () => {
  let broker: MosquittoTestBroker;
  const clients: MqttClient[] = [];
  const client = async (role: Role) => {
    const c = await roleClient(broker, role);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    broker = await MosquittoTestBroker.start();
  });
  afterAll(async () => {
    for (const c of clients) await c.endAsync(true);
    await broker?.dispose();
  });

  /** Publishes with QoS 1 and returns the PUBACK reason code (0 = accepted). */
  async function pubackCode(c: MqttClient, topic: string, payload: Uint8Array | string): Promise<number> {
    try {
      await c.publishAsync(topic, Buffer.from(payload), { qos: 1 });
      return 0;
    } catch (error) {
      if (error instanceof ErrorWithReasonCode) return error.code;
      throw error;
    }
  }

  it('lets only the pipeline role publish HUD topics and status', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    const watcher = await client('viewer');
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(`${topics.root}/#`, { qos: 1 });
    const frame = new HudFrameEncoder().encode(testFrame(3), { sequence: 99, tCaptureNs: 1n, tRenderNs: 1n, widthPx: 160, heightPx: 60, degraded: false }).slice();
    const forged = { frame, warning: encodeWarning(testWarning('forged', 1n)), status: '{"state":"offline","tNs":"1"}' };
    for (const role of ['display', 'viewer', 'calibration'] as const) {
      const intruder = await client(role);
      expect(await pubackCode(intruder, topics.frame, forged.frame), `${role} -> hud/frame`).toBe(NOT_AUTHORIZED);
      expect(await pubackCode(intruder, topics.scene, '{}'), `${role} -> hud/scene`).toBe(NOT_AUTHORIZED);
      expect(await pubackCode(intruder, topics.warnings, forged.warning), `${role} -> adas/warnings`).toBe(NOT_AUTHORIZED);
      expect(await pubackCode(intruder, topics.status, forged.status), `${role} -> status`).toBe(NOT_AUTHORIZED);
      await intruder.publishAsync(topics.frame, Buffer.from(forged.frame), { qos: 0 }); // dropped silently
    }
    // The pipeline's own frame gets through; nothing forged ever does.
    const log = new LogLines();
    const link = await HudLink.create(linkOptions(broker, vehicleId, log));
    try {
      link.publishFrame(testFrame(1), { tCaptureNs: 5n, tRenderNs: 6n, widthPx: 160, heightPx: 60, degraded: false });
      await waitFor('the pipeline frame', () => inbox.on(topics.frame).length === 1);
      await sleep(100);
      expect(inbox.on(topics.frame).map((m) => decodeHudFrame(m).header.sequence)).toEqual([0]);
      expect(inbox.on(topics.warnings)).toEqual([]);
      expect(inbox.on(topics.scene)).toEqual([]);
    } finally {
      await link.dispose();
    }
  });

  it('lets only the calibration role push configs', async () => {
    const vehicleId = freshVehicleId();
    const topics = hudTopics(vehicleId);
    const log = new LogLines();
    const link = await HudLink.create(linkOptions(broker, vehicleId, log));
    try {
      for (const role of ['display', 'viewer'] as const) {
        const intruder = await client(role);
        expect(await pubackCode(intruder, topics.configPipeline, '{"detect":"none"}'), role).toBe(NOT_AUTHORIZED);
      }
      const calibration = await client('calibration');
      expect(await pubackCode(calibration, topics.configPipeline, '{"detect":"fp32"}')).toBe(0);
      await waitFor('config accepted', () => link.stats.configsAccepted === 1);
      expect(link.currentConfig('pipeline')).toEqual({ detect: 'fp32' });
    } finally {
      await link.dispose();
    }
  });

  it('refuses anonymous clients and wrong passwords; a refused link keeps retrying without failing', async () => {
    await expect(roleClient(broker, 'viewer', { username: undefined, password: undefined })).rejects.toThrow(/Not authorized|Bad User Name or Password/i);
    const log = new LogLines();
    const link = await HudLink.create({ ...linkOptions(broker, freshVehicleId(), log), password: 'wrong' });
    try {
      expect(link.stats.connected).toBe(false);
      link.publishWarning(testWarning('kept', 1n));
      expect(link.stats.warningsQueued).toBe(1);
      expect(log.matching(/Bad User Name or Password|Not authorized/i).length).toBeGreaterThanOrEqual(1);
    } finally {
      await link.dispose();
    }
  });
});
