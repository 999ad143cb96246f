/**
 * One `HudScene` -> one PNG of the panel, for inspection (`arhud render --scene scene.json -o out.png`)
 * and golden-image tests: overlay scene -> HudRenderer (overlay pass, warp pass, readback) -> PNG.
 */
import sharp from 'sharp';
import { HudRenderer, type RegionWarp } from './hud-renderer.js';
import { HudOptics } from './optics.js';
import { HUD_OPTICS_DEFAULTS } from './optics-config.js';
import { HudOverlayScene, type HudMotion } from './overlay-scene.js';
import type { HudScene } from './hud-scene.js';
import { WarpMesh } from './warp-mesh.js';

/** Options of renderHudSceneToPng; defaults in one place (below). */
export interface RenderHudSceneOptions {
  /** Optics model; default `new HudOptics(HUD_OPTICS_DEFAULTS)`. */
  optics?: HudOptics;
  /** Windshield pre-warp; default the identity warp. */
  /** One mesh over the panel, or one per plane region. Default: no pre-warp. */
  warp?: WarpMesh | readonly RegionWarp[];
  /** Display time; default the scene's capture time (`tCaptureNs`). */
  displayTimeNs?: bigint;
  /** Motion for latency compensation; default none (content drawn where it was captured). */
  motion?: HudMotion;
  /** Renderer to reuse (its size must match the optics panel); default a new one, disposed afterwards. */
  renderer?: HudRenderer;
}

/**
 * A rendered panel (RGBA, row 0 = top) as an opaque RGB PNG: on a HUD black is no light, so alpha
 * carries nothing, and viewers then show the image on black as the driver sees it.
 */
export async function encodePanelPng(rgba: Uint8Array, widthPx: number, heightPx: number, compressionLevel = 6): Promise<Buffer> {
  return sharp(rgba, { raw: { width: widthPx, height: heightPx, channels: 4 } }).removeAlpha().png({ compressionLevel }).toBuffer();
}

/**
 * Renders `scene` to a PNG of the whole panel (row 0 = top). Black is no light; see encodePanelPng.
 */
export async function renderHudSceneToPng(scene: HudScene, options: RenderHudSceneOptions = {}): Promise<Buffer> {
  const optics = options.optics ?? new HudOptics(HUD_OPTICS_DEFAULTS);
  const { widthPx, heightPx } = optics.panel;
  const given = options.renderer;
  if (given !== undefined && (given.widthPx !== widthPx || given.heightPx !== heightPx)) {
    throw new RangeError(
      `renderHudSceneToPng: 'renderer' must match the optics panel ${widthPx}x${heightPx}, got ${given.widthPx}x${given.heightPx}`,
    );
  }
  const renderer = given ?? (await HudRenderer.create({ widthPx, heightPx }));
  const overlay = new HudOverlayScene(optics);
  try {
    overlay.update(scene, options.displayTimeNs ?? scene.tCaptureNs, options.motion);
    const rgba = await renderer.render(overlay.scene, overlay.camera, options.warp ?? WarpMesh.identity());
    return await encodePanelPng(rgba, widthPx, heightPx);
  } finally {
    overlay.dispose();
    if (given === undefined) renderer.dispose();
  }
}
