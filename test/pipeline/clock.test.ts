import { describe, it, expect } from 'vitest';
import { RealClock, SimulatedClock } from '../../pipeline/clock.js';
import { NS_PER_MS } from '../../pipeline/time.js';
import { thrownBy } from '../support/errors.js';

/** Lets every pending promise callback run (one macrotask turn; no timers involved). */
function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

type Outcome = { state: 'pending' } | { state: 'resolved' } | { state: 'rejected'; reason: unknown };

/** Tracks a promise's outcome without awaiting it. */
function watch(promise: Promise<void>): { readonly outcome: Outcome } {
  const box: { outcome: Outcome } = { outcome: { state: 'pending' } };
  promise.then(
    () => (box.outcome = { state: 'resolved' }),
    (reason: unknown) => (box.outcome = { state: 'rejected', reason }),
  );
  return box;
}

describe('SimulatedClock', () => {
  it('starts at the given time and only moves when told to', () => {
    const clock = new SimulatedClock(5n * NS_PER_MS);
    expect(clock.nowNs()).toBe(5n * NS_PER_MS);
    expect(clock.nowNs()).toBe(5n * NS_PER_MS);
    clock.advanceBy(3n);
    expect(clock.nowNs()).toBe(5n * NS_PER_MS + 3n);
    clock.advanceTo(7n * NS_PER_MS);
    expect(clock.nowNs()).toBe(7n * NS_PER_MS);
  });

  it('wakes a sleeper exactly at its deadline, not one ns before', async () => {
    const clock = new SimulatedClock();
    const deadlineNs = 10n * NS_PER_MS;
    const sleeper = watch(clock.sleepUntilNs(deadlineNs));
    expect(clock.pendingSleepers).toBe(1);
    expect(clock.nextDeadlineNs).toBe(deadlineNs);

    clock.advanceTo(deadlineNs - 1n);
    await flushPromises();
    expect(sleeper.outcome.state).toBe('pending');
    expect(clock.pendingSleepers).toBe(1);

    clock.advanceBy(1n);
    await flushPromises();
    expect(sleeper.outcome.state).toBe('resolved');
    expect(clock.pendingSleepers).toBe(0);
    expect(clock.nextDeadlineNs).toBeUndefined();
  });

  it('wakes sleepers in deadline order, each only once passed', async () => {
    const clock = new SimulatedClock();
    const woke: string[] = [];
    const sleep = (label: string, tMs: bigint) => void clock.sleepUntilNs(tMs * NS_PER_MS).then(() => woke.push(label));
    sleep('c@30', 30n);
    sleep('a@10', 10n);
    sleep('b@20', 20n);
    sleep('d@30', 30n); // same deadline as c, asked later: wakes after c
    expect(clock.pendingSleepers).toBe(4);
    expect(clock.nextDeadlineNs).toBe(10n * NS_PER_MS);

    clock.advanceTo(15n * NS_PER_MS);
    await flushPromises();
    expect(woke).toEqual(['a@10']);
    expect(clock.nextDeadlineNs).toBe(20n * NS_PER_MS);

    clock.advanceTo(100n * NS_PER_MS); // passes b, c and d in one step
    await flushPromises();
    expect(woke).toEqual(['a@10', 'b@20', 'c@30', 'd@30']);
    expect(clock.pendingSleepers).toBe(0);
  });

  it('resolves at once, without a sleeper, for a deadline at or before now', async () => {
    const clock = new SimulatedClock(50n);
    const atNow = watch(clock.sleepUntilNs(50n));
    const past = watch(clock.sleepUntilNs(0n));
    expect(clock.pendingSleepers).toBe(0);
    await flushPromises();
    expect(atNow.outcome.state).toBe('resolved');
    expect(past.outcome.state).toBe('resolved');
  });

  it('advanceTo the current time is allowed and wakes due sleepers', async () => {
    const clock = new SimulatedClock(100n);
    clock.advanceTo(100n);
    expect(clock.nowNs()).toBe(100n);
    const sleeper = watch(clock.sleepUntilNs(101n));
    clock.advanceTo(101n);
    clock.advanceTo(101n);
    await flushPromises();
    expect(sleeper.outcome.state).toBe('resolved');
  });

  it('advanceTo an earlier time throws RangeError and keeps the time', () => {
    const clock = new SimulatedClock(100n);
    const error = thrownBy(() => clock.advanceTo(99n));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('SimulatedClock.advanceTo: time may not go back (now 100 ns, got 99 ns)');
    expect(clock.nowNs()).toBe(100n);
  });

  it('advanceBy a negative duration throws RangeError', () => {
    const clock = new SimulatedClock(100n);
    const error = thrownBy(() => clock.advanceBy(-1n));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('SimulatedClock.advanceTo: time may not go back (now 100 ns, got 99 ns)');
  });

  it('aborting a sleeper rejects it with the signal reason and removes it; others still wake', async () => {
    const clock = new SimulatedClock();
    const controller = new AbortController();
    const aborted = watch(clock.sleepUntilNs(10n, controller.signal));
    const other = watch(clock.sleepUntilNs(20n));
    expect(clock.pendingSleepers).toBe(2);

    const reason = new Error('replay stopped');
    controller.abort(reason);
    await flushPromises();
    expect(aborted.outcome).toEqual({ state: 'rejected', reason });
    expect(clock.pendingSleepers).toBe(1);
    expect(clock.nextDeadlineNs).toBe(20n);

    clock.advanceTo(20n);
    await flushPromises();
    expect(other.outcome.state).toBe('resolved');
    expect(clock.pendingSleepers).toBe(0);
  });

  it('an already aborted signal rejects at once and adds no sleeper', async () => {
    const clock = new SimulatedClock();
    const reason = new Error('already stopped');
    const sleeper = watch(clock.sleepUntilNs(10n, AbortSignal.abort(reason)));
    expect(clock.pendingSleepers).toBe(0);
    await flushPromises();
    expect(sleeper.outcome).toEqual({ state: 'rejected', reason });
  });

  it('aborting after the sleeper woke changes nothing', async () => {
    const clock = new SimulatedClock();
    const controller = new AbortController();
    const sleeper = watch(clock.sleepUntilNs(10n, controller.signal));
    clock.advanceTo(10n);
    controller.abort(new Error('late'));
    await flushPromises();
    expect(sleeper.outcome.state).toBe('resolved');
    expect(clock.pendingSleepers).toBe(0);
  });
});

describe('RealClock', () => {
  it('nowNs is monotonic', () => {
    const clock = new RealClock();
    let previous = clock.nowNs();
    for (let i = 0; i < 1000; i++) {
      const now = clock.nowNs();
      expect(now >= previous).toBe(true);
      previous = now;
    }
  });

  it('resolves immediately (within microtasks, no timer) for a deadline in the past', async () => {
    const clock = new RealClock();
    const sleeper = watch(clock.sleepUntilNs(clock.nowNs() - 1_000n * NS_PER_MS));
    await Promise.resolve();
    await Promise.resolve();
    expect(sleeper.outcome.state).toBe('resolved');
  });

  it('rejects immediately for a past deadline when the signal is already aborted', async () => {
    const clock = new RealClock();
    const reason = new Error('stopped');
    const sleeper = watch(clock.sleepUntilNs(clock.nowNs() - 1n, AbortSignal.abort(reason)));
    await Promise.resolve();
    await Promise.resolve();
    expect(sleeper.outcome).toEqual({ state: 'rejected', reason });
  });

  it('rejects immediately for a far deadline when the signal is already aborted', async () => {
    const clock = new RealClock();
    const reason = new Error('stopped');
    const sleeper = watch(clock.sleepUntilNs(clock.nowNs() + 3_600_000n * NS_PER_MS, AbortSignal.abort(reason)));
    await Promise.resolve();
    await Promise.resolve();
    expect(sleeper.outcome).toEqual({ state: 'rejected', reason });
  });

  it('rejects as soon as the signal aborts while waiting for a far deadline', async () => {
    const clock = new RealClock();
    const controller = new AbortController();
    const sleeper = watch(clock.sleepUntilNs(clock.nowNs() + 3_600_000n * NS_PER_MS, controller.signal));
    await flushPromises();
    expect(sleeper.outcome.state).toBe('pending');
    const reason = new Error('stopped');
    controller.abort(reason);
    await Promise.resolve();
    await Promise.resolve();
    expect(sleeper.outcome).toEqual({ state: 'rejected', reason });
  });

  it('never resolves before nowNs() reaches the deadline (short real waits, ~50 ms in all)', async () => {
    // Real time is the thing under test here, so this is the one place that waits on it. The
    // busy-spin before each call spreads the call over different sub-millisecond phases.
    const clock = new RealClock();
    const earlyByNs: bigint[] = [];
    for (let i = 0; i < 20; i++) {
      const spinUntilNs = clock.nowNs() + BigInt(i) * 50_000n;
      while (clock.nowNs() < spinUntilNs) {
        /* spin */
      }
      const deadlineNs = clock.nowNs() + 1_500_000n;
      await clock.sleepUntilNs(deadlineNs);
      const wokeNs = clock.nowNs();
      if (wokeNs < deadlineNs) earlyByNs.push(deadlineNs - wokeNs);
    }
    expect(earlyByNs).toEqual([]);
  });
});
