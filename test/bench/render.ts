/**
 * Render benchmark: a busy HUD scene (two lane ribbons, 20 objects, banner, arrow, speed and limit
 * text) at 1280x480 on headless WebGPU (Dawn), render + warp + readback, FRAMES frames after
 * warm-up, with the vehicle moving so content changes every frame. Targets (issue #4): median
 * <= 8 ms, p99 <= 16 ms, heap growth < 10 MB over the run.
 */
import { HudRenderer } from '../../render/hud-renderer.js';
import { HUD_SCENE_VERSION, type HudPrimitive, type HudScene } from '../../render/hud-scene.js';
import { HudOptics } from '../../render/optics.js';
import { HUD_OPTICS_DEFAULTS } from '../../render/optics-config.js';
import { HudOverlayScene } from '../../render/overlay-scene.js';
import { WarpMesh } from '../../render/warp-mesh.js';

export const FRAMES = Number(process.env.ARHUD_BENCH_RENDER_FRAMES ?? 10_000);
export const WARMUP_FRAMES = 100;
const FRAME_NS = 33_333_333n;

function busyScene(i: number, tNs: bigint): HudScene {
  const valid = tNs + 200_000_000n;
  const wobble = 0.3 * Math.sin(i / 30);
  const ribbon = (id: string, yM: number, role: 'ego-left' | 'ego-right'): HudPrimitive => ({
    kind: 'lane',
    id,
    role,
    pointsM: Array.from({ length: 20 }, (_, k) => [5 + 5 * k, yM + wobble + 0.0004 * (5 + 5 * k) ** 2] as [number, number]),
    lineType: 'solid',
    confidence: 0.9,
    validUntilNs: valid,
  });
  const objects: HudPrimitive[] = Array.from({ length: 20 }, (_, k) => ({
    kind: 'object',
    trackId: String(k),
    objectClass: k % 4 === 0 ? 'person' : 'car',
    positionM: { x: 12 + 4 * k + (i % 10) * 0.1, y: ((k % 5) - 2) * 2.5 },
    widthM: k % 4 === 0 ? 0.6 : 1.8,
    warning: (['none', 'caution', 'warning', 'critical'] as const)[k % 4]!,
    validUntilNs: valid,
  }));
  return {
    version: HUD_SCENE_VERSION,
    tCaptureNs: tNs,
    brightness: 'day',
    degraded: false,
    primitives: [
      ribbon('l', 1.8, 'ego-left'),
      ribbon('r', -1.8, 'ego-right'),
      ...objects,
      { kind: 'forward-collision', level: 'warning', ttcS: 2.4, validUntilNs: valid },
      { kind: 'navigation', distanceM: 60 - (i % 40), turn: 'right', validUntilNs: valid },
      { kind: 'speed', speedMps: 13 + (i % 50) / 10, limitMps: 13.9, validUntilNs: valid },
    ],
  };
}

const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

export async function renderBenchmark(): Promise<Record<string, unknown>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const optics = new HudOptics(HUD_OPTICS_DEFAULTS);
  const renderer = await HudRenderer.create({ widthPx: 1280, heightPx: 480 });
  const overlay = new HudOverlayScene(optics);
  const warp = WarpMesh.radial(32, 16, -0.05);
  let rgba: Uint8Array | undefined;
  const t0Ns = 1_700_000_000_000_000_000n;
  const frame = async (i: number) => {
    const tNs = t0Ns + BigInt(i) * FRAME_NS;
    overlay.update(busyScene(i, tNs), tNs + 50_000_000n, { speedMps: 14, yawRateRps: 0.02, dtS: 0.05 });
    rgba = await renderer.render(overlay.scene, overlay.camera, warp, rgba);
  };
  for (let i = 0; i < WARMUP_FRAMES; i++) await frame(i);
  gc?.();
  const heapStart = process.memoryUsage().heapUsed;
  const times = new Float64Array(FRAMES);
  for (let i = 0; i < FRAMES; i++) {
    const t = performance.now();
    await frame(WARMUP_FRAMES + i);
    times[i] = performance.now() - t;
  }
  gc?.();
  const heapGrowthMB = (process.memoryUsage().heapUsed - heapStart) / (1024 * 1024);
  renderer.dispose();
  const sorted = [...times].sort((a, b) => a - b);
  const result = {
    benchmark: 'render',
    scene: 'two lane ribbons, 20 objects, banner, arrow, speed + limit text; 1280x480; radial warp 32x16',
    backend: renderer.gpu.backend,
    adapter: renderer.gpu.adapterDescription,
    frames: FRAMES,
    medianMs: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.at(-1)!,
    heapGrowthMB,
    heapMeasuredAfterGc: gc !== undefined,
    targets: { medianMs: '<= 8', p99Ms: '<= 16', heapGrowthMB: '< 10' },
    met: false,
  };
  result.met = result.medianMs <= 8 && result.p99Ms <= 16 && heapGrowthMB < 10;
  process.stdout.write(
    `render (${FRAMES} frames, ${result.backend}: ${result.adapter}): median ${result.medianMs.toFixed(2)} ms, p90 ${result.p90Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, max ${result.maxMs.toFixed(1)} ms, heap growth ${heapGrowthMB.toFixed(1)} MB -> targets ${result.met ? 'met' : 'NOT met'}\n`,
  );
  return result;
}
