// The render stage inside a real replay of the PandaSet drive: HUD frames land in the output
// recording as PNGs, with the vehicle's speed drawn in the near (status) region.
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { RecordingReader, TOPIC_HUD_FRAME, compressedImageCodec } from '../../pipeline/index.js';
import { runReplay } from '../../pipeline/replay.js';
import { HudRenderer } from '../../render/hud-renderer.js';
import { HudOptics } from '../../render/optics.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { HudOverlayScene } from '../../render/overlay-scene.js';
import { renderExtension, statusScene } from '../../render/render-stage.js';
import { WarpMesh } from '../../render/warp-mesh.js';
import { importedPandasetDrive, tempDir } from '../support/data.js';

describe('render stage in replay', () => {
  it('writes one HUD panel PNG per frame with the speed in the near region', async () => {
    const optics = new HudOptics(HUD_OPTICS_DEFAULTS);
    const renderer = await HudRenderer.create({ widthPx: optics.panel.widthPx, heightPx: optics.panel.heightPx });
    const output = path.join(await tempDir(), 'hud.mcap');
    try {
      const summary = await runReplay({
        input: await importedPandasetDrive(),
        output,
        pacing: 'afap',
        startS: 4.45,
        endS: 4.75,
        extensions: [renderExtension({ renderer, view: { overlay: new HudOverlayScene(optics), warp: WarpMesh.identity() } })],
      });
      expect(summary.stages.render?.count).toBe(3);
    } finally {
      renderer.dispose();
    }
    const reader = await RecordingReader.open(output);
    const pngs: Uint8Array[] = [];
    for await (const m of reader.messages({ topics: [TOPIC_HUD_FRAME] })) pngs.push(compressedImageCodec.decode(m.data).data);
    await reader.close();
    expect(pngs).toHaveLength(3);
    const { data, info } = await sharp(pngs[0]!).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([1280, 480, 3]);
    const near = HUD_OPTICS_DEFAULTS.near.panelRegion;
    let litNear = 0;
    let litElsewhere = 0;
    for (let y = 0; y < info.height; y++) {
      for (let x = 0; x < info.width; x++) {
        const lit = data[(y * info.width + x) * 3]! > 128;
        const inNear = x >= near.xPx && x < near.xPx + near.widthPx && y >= near.yPx && y < near.yPx + near.heightPx;
        if (lit && inNear) litNear++;
        else if (lit) litElsewhere++;
      }
    }
    // Speed digits light the status region; with no perception yet nothing is drawn on the road.
    expect(litNear).toBeGreaterThan(500);
    expect(litElsewhere).toBe(0);
  });

  it('says degraded when a frame has no vehicle state', () => {
    const scene = statusScene({ tCaptureNs: 5n, vehicle: undefined } as Parameters<typeof statusScene>[0]);
    expect(scene.degraded).toBe(true);
    expect(scene.primitives).toEqual([]);
  });
});
