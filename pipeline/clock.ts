/**
 * Clocks. Pipeline code never reads wall time directly: it is handed a `Clock`, so replay can run
 * paced on a real clock, as fast as possible, or under a `SimulatedClock` in tests.
 */
export interface Clock {
  /** Current time in ns (monotonic for RealClock, set by the test for SimulatedClock). */
  nowNs(): bigint;
  /** Resolves once `nowNs() >= tNs`, or rejects with the signal's reason when aborted. */
  sleepUntilNs(tNs: bigint, signal?: AbortSignal): Promise<void>;
}

/** Monotonic process clock (`process.hrtime`); its zero is arbitrary. */
export class RealClock implements Clock {
  nowNs(): bigint {
    return process.hrtime.bigint();
  }

  sleepUntilNs(tNs: bigint, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.nowNs() >= tNs) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      // Timers count whole milliseconds and may fire early: check the deadline on every wake.
      const wake = () => {
        const remainingNs = tNs - this.nowNs();
        if (remainingNs <= 0n) {
          signal?.removeEventListener('abort', onAbort);
          resolve();
          return;
        }
        timer = setTimeout(wake, Math.min(MAX_TIMER_MS, Math.ceil(Number(remainingNs) / 1e6)));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      wake();
    });
  }
}

/** Longest delay setTimeout honours (longer ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Sleeper {
  tNs: bigint;
  resolve: () => void;
}

/**
 * A clock that only moves when told to. Sleepers wake in time order as `advanceTo`/`advanceBy`
 * passes their deadline, so pacing logic is tested without wall-clock sleeps.
 */
export class SimulatedClock implements Clock {
  #nowNs: bigint;
  #sleepers: Sleeper[] = [];

  constructor(startNs = 0n) {
    this.#nowNs = startNs;
  }

  nowNs(): bigint {
    return this.#nowNs;
  }

  /** Number of callers currently waiting on `sleepUntilNs`. */
  get pendingSleepers(): number {
    return this.#sleepers.length;
  }

  /** Earliest deadline anyone waits for, or undefined when nobody waits. */
  get nextDeadlineNs(): bigint | undefined {
    return this.#sleepers[0]?.tNs;
  }

  sleepUntilNs(tNs: bigint, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (tNs <= this.#nowNs) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(abortReason(signal));
      };
      const sleeper: Sleeper = {
        tNs,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const at = this.#sleepers.findIndex((s) => s.tNs > tNs);
      this.#sleepers.splice(at === -1 ? this.#sleepers.length : at, 0, sleeper);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  advanceTo(tNs: bigint): void {
    if (tNs < this.#nowNs) {
      throw new RangeError(`SimulatedClock.advanceTo: time may not go back (now ${this.#nowNs} ns, got ${tNs} ns)`);
    }
    this.#nowNs = tNs;
    while (this.#sleepers.length > 0 && this.#sleepers[0]!.tNs <= tNs) this.#sleepers.shift()!.resolve();
  }

  advanceBy(durationNs: bigint): void {
    this.advanceTo(this.#nowNs + durationNs);
  }
}

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new Error('aborted');
}
