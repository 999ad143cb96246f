import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { AcceleratorScheduler, DegradationPolicy, Frame, ImageView, PipelineMetrics, SimulatedClock, createRuntimeControls, degradationExtension } from '../../pipeline/index.js';

const IMAGE = ImageView.packed(2, 2, 'rgb8', new Uint8Array(12));

describe('degradationExtension', () => {
  it('writes the policy decision into the shared controls and stamps each frame with its level', async () => {
    const clock = new SimulatedClock();
    const metrics = new PipelineMetrics();
    const scheduler = new AcceleratorScheduler({ clock, metrics });
    const policy = new DegradationPolicy({ metrics });
    const controls = createRuntimeControls();
    // A stale decision in the controls is overwritten by the policy's (an idle scheduler: level 0).
    Object.assign(controls, { detectEveryN: 3, ispMode: 'skip', level: 3 });
    const [stage] = degradationExtension(scheduler, policy, controls)({ clock, metrics }).stages;
    const frames = await lastValueFrom(from([0, 1, 2].map((seq) => new Frame({ seq, tCaptureNs: BigInt(seq) * 100_000_000n, image: IMAGE }))).pipe(stage!, toArray()));
    expect(frames.map((f) => f.degradationLevel)).toEqual([0, 0, 0]);
    expect(controls).toEqual({ detectEveryN: 1, ispMode: 'full', backgroundPaused: false, level: 0 });
    scheduler.close();
  });
});
