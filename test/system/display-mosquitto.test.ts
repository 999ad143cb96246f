/**
 * The display controller against a real mosquitto with the example ACL (hud/mosquitto/acl): it
 * connects as the display role over MQTT 5, shows the pipeline's frames and acknowledges them.
 * System suite: needs Debian's mosquitto (`.ci/run` installs it); without it this test fails.
 */
import { describe, expect, it } from 'vitest';
import { DisplayController } from '../../hud/display-controller.js';
import { HudFrameEncoder } from '../../hud/frame-codec.js';
import { hudTopics, parseDisplayAck } from '../../hud/topics.js';
import { Inbox, Mosquitto, testClient, waitFor } from '../hud/support.js';
import { MOSQUITTO_BINARIES, requireBinaries } from './binaries.js';

requireBinaries(...MOSQUITTO_BINARIES);

const VEHICLE = 'display-test';
const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;
const WIDTH_PX = 8;
const HEIGHT_PX = 4;

/** An 8x4 frame: black with one pixel of `value` at `(x, 1)`; a copy (the encoder reuses its buffer). */
function frameBytes(sequence: number, tCaptureNs: bigint, x = 1, value = 200): Uint8Array {
  const rgba = new Uint8Array(WIDTH_PX * HEIGHT_PX * 4);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  rgba.set([value, 255 - value, 30, 255], (1 * WIDTH_PX + x) * 4);
  const encoded = new HudFrameEncoder().encode(rgba, { sequence, tCaptureNs, tRenderNs: tCaptureNs + 1n, widthPx: WIDTH_PX, heightPx: HEIGHT_PX, degraded: false });
  return Uint8Array.from(encoded);
}

describe('DisplayController on mosquitto with the example ACL', () => {
  it('connects as the display role over MQTT 5, shows frames and acks them', async () => {
    const topics = hudTopics(VEHICLE);
    const mosquitto = await Mosquitto.start();
    const lines: string[] = [];
    let controller: DisplayController | undefined;
    const pipeline = await testClient(mosquitto.url, { role: 'pipeline' });
    try {
      controller = await DisplayController.create({ url: mosquitto.url, vehicleId: VEHICLE, username: 'display', password: 'display-secret', now: () => T0 + MS, log: (l) => lines.push(l) });
      await pipeline.subscribeAsync(topics.displayAck, { qos: 0 });
      const inbox = new Inbox(pipeline);
      await pipeline.publishAsync(topics.frame, Buffer.from(frameBytes(4, T0)), { qos: 0 });
      await waitFor('the ack', () => inbox.on(topics.displayAck).length === 1);
      expect(parseDisplayAck(inbox.on(topics.displayAck)[0]!, topics.displayAck)).toMatchObject({ sequence: 4, tCaptureNs: T0 });
    } finally {
      await controller?.dispose();
      await pipeline.endAsync();
      await mosquitto.dispose();
    }
  });
});
