import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { Frame, ImageView, PipelineMetrics, SimulatedClock } from '../../pipeline/index.js';
import { StageWatchdog, watchdogCheckStage, watchedStage } from '../../pipeline/watchdog.js';
import { defaultSceneOf, statusScene } from '../../render/render-stage.js';

const IMAGE = ImageView.packed(2, 2, 'rgb8', new Uint8Array(12));
const frameAt = (seq: number) => new Frame({ seq, tCaptureNs: BigInt(seq) * 40_000_000n, image: IMAGE, vehicle: { tNs: BigInt(seq) * 40_000_000n, speedMps: 10, yawRateRps: 0 } });

function setup(recoverAfterFrames = 3) {
  const clock = new SimulatedClock();
  const metrics = new PipelineMetrics();
  const lines: string[] = [];
  const watchdog = new StageWatchdog({ clock, metrics, recoverAfterFrames, log: (l) => lines.push(l) });
  return { clock, metrics, lines, watchdog };
}

describe('StageWatchdog.guard', () => {
  it('passes a healthy result through, and turns a throw into a counted, logged fault', async () => {
    const { watchdog, metrics, lines } = setup();
    expect(await watchdog.guard('detect', 50, () => 42)).toEqual({ ok: true, value: 42 });
    const failed = await watchdog.guard('detect', 50, () => {
      throw new Error('ORT session died');
    });
    expect(failed).toMatchObject({ ok: false, fault: { stage: 'detect', kind: 'fault', message: 'ORT session died' } });
    expect(metrics.counter('watchdog.detect.faults')).toBe(1);
    expect(lines.some((l) => l.includes("stage 'detect' fault: ORT session died"))).toBe(true);
  });

  it('stops waiting for a hung stage at overrunFactor x its deadline and drops its late result', async () => {
    const { watchdog, metrics } = setup();
    let finish!: (v: string) => void;
    const hung = new Promise<string>((resolve) => (finish = resolve));
    const started = performance.now();
    const result = await watchdog.guard('lanes', 5, () => hung);
    // Bounded by the overrun limit (15 ms), not by the work (which has not finished at all).
    expect(result).toMatchObject({ ok: false, fault: { stage: 'lanes', kind: 'overrun' } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(14);
    finish('too late');
    await hung;
    await new Promise((r) => setTimeout(r, 0));
    expect(watchdog.stats.lateResultsDropped).toBe(1);
    expect(metrics.counter('watchdog.lanes.overruns')).toBe(1);
  });

  it('counts work that blocks past the limit as an overrun even though it settles before any timer fires', async () => {
    const { watchdog, metrics, clock } = setup();
    // Synchronous work (a lane finder stuck in a loop) blocks the event loop: only the clock shows it.
    const result = await watchdog.guard('lanes', 20, () => {
      clock.advanceBy(200_000_000n);
      return 'late lanes';
    });
    expect(result).toMatchObject({ ok: false, fault: { stage: 'lanes', kind: 'overrun' } });
    expect((result as { fault: { message: string } }).fault.message).toContain('took 200 ms');
    expect(metrics.counter('watchdog.lanes.overruns')).toBe(1);
    expect(watchdog.stats.lateResultsDropped).toBe(1);
    // Within the limit (3 x 20 ms) it is healthy.
    expect(await watchdog.guard('lanes', 20, () => (clock.advanceBy(59_000_000n), 'ok'))).toEqual({ ok: true, value: 'ok' });
  });

  it('refuses a non-positive deadline and bad settings', async () => {
    const { watchdog } = setup();
    await expect(watchdog.guard('isp', 0, () => 1)).rejects.toThrow("StageWatchdog.guard: stage 'isp': 'deadlineMs' must be > 0, got 0");
    expect(() => new StageWatchdog({ clock: new SimulatedClock(), metrics: new PipelineMetrics(), overrunFactor: 0.5 })).toThrow("StageWatchdog: 'overrunFactor' must be >= 1, got 0.5");
    expect(() => new StageWatchdog({ clock: new SimulatedClock(), metrics: new PipelineMetrics(), recoverAfterFrames: 0 })).toThrow(
      "StageWatchdog: 'recoverAfterFrames' must be an integer >= 1, got 0",
    );
  });
});

describe('safe blanking in a graph', () => {
  it('blanks AR overlays from the faulty frame on and brings them back after enough healthy frames, without restarting the stream', async () => {
    const { watchdog, clock, metrics } = setup(3);
    // The 'detect' stage throws on frames 2 and 3; every frame still reaches the end.
    const detect = watchedStage<Frame>(
      'detect',
      (frame) => {
        if (frame.seq === 2 || frame.seq === 3) throw new Error(`bad tensor on frame ${frame.seq}`);
      },
      { clock, metrics, watchdog, deadlineMs: 40 },
    );
    const frames = await lastValueFrom(from(Array.from({ length: 10 }, (_, k) => frameAt(k))).pipe(detect, watchdogCheckStage(watchdog, { clock, metrics }), toArray()));
    expect(frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Blanked on 2 and 3 (faults), 4 and 5 (recovering), back on 6 (3rd healthy frame in a row).
    expect(frames.map((f) => f.safeBlank)).toEqual([false, false, true, true, true, true, false, false, false, false]);
    expect(frames[2]!.stageFaults).toEqual([expect.objectContaining({ stage: 'detect', kind: 'fault', message: 'bad tensor on frame 2' })]);
    expect(watchdog.stats).toMatchObject({ faults: 2, blanks: 1, recoveries: 1 });
    expect(metrics.counter('watchdog.blankedFrames')).toBe(4);
  });

  it("makes the renderer's default scene status-only and degraded while blanked", () => {
    const frame = frameAt(1);
    const object = { kind: 'object' as const, trackId: 't1', objectClass: 'car' as const, positionM: { x: 20, y: 0 }, widthM: 1.8, warning: 'critical' as const, validUntilNs: frame.tCaptureNs + 100_000_000n };
    frame.hudScene = { ...statusScene(frame), primitives: [...statusScene(frame).primitives, object] };
    expect(defaultSceneOf(frame).primitives).toContainEqual(object);
    frame.safeBlank = true;
    const drawn = defaultSceneOf(frame);
    expect(drawn.degraded).toBe(true);
    expect(drawn.primitives.some((p) => p.kind === 'object')).toBe(false);
    expect(drawn.primitives.some((p) => p.kind === 'speed')).toBe(true);
  });
});
