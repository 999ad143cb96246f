/**
 * Latency metrics per stage: a log-bucketed histogram (like HdrHistogram) gives p50/p90/p99 within
 * 1% with fixed memory however long a drive runs; count, mean and max are exact.
 */

/** Relative width of one bucket: percentiles are exact to within this fraction. */
export const HISTOGRAM_RELATIVE_PRECISION = 0.01;
/** Smallest resolved latency (1 us); anything below lands in bucket 0. */
export const HISTOGRAM_MIN_MS = 0.001;
/** Largest resolved latency (100 s); anything above lands in the top bucket (max stays exact). */
export const HISTOGRAM_MAX_MS = 100_000;

const LOG_BASE = Math.log1p(HISTOGRAM_RELATIVE_PRECISION);
const BUCKETS = Math.ceil(Math.log(HISTOGRAM_MAX_MS / HISTOGRAM_MIN_MS) / LOG_BASE) + 1;

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class LatencyHistogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #sumMs = 0;
  #maxMs = 0;

  record(latencyMs: number): void {
    if (!Number.isFinite(latencyMs) || latencyMs < 0) {
      throw new RangeError(`LatencyHistogram.record: latency must be a finite number >= 0 ms, got ${latencyMs}`);
    }
    const bucket = latencyMs <= HISTOGRAM_MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(latencyMs / HISTOGRAM_MIN_MS) / LOG_BASE));
    this.#counts[bucket]!++;
    this.#count++;
    this.#sumMs += latencyMs;
    if (latencyMs > this.#maxMs) this.#maxMs = latencyMs;
  }

  get count(): number {
    return this.#count;
  }

  /** Latency at quantile q in [0, 1]: the upper edge of the bucket holding it, capped by the exact max. */
  quantileMs(q: number): number {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`LatencyHistogram.quantileMs: q must be in [0, 1], got ${q}`);
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.#counts[b]!;
      if (seen >= rank) return Math.min(this.#maxMs, HISTOGRAM_MIN_MS * Math.exp(b * LOG_BASE));
    }
    return this.#maxMs;
  }

  summary(): LatencySummary {
    return {
      count: this.#count,
      meanMs: this.#count === 0 ? 0 : this.#sumMs / this.#count,
      p50Ms: this.quantileMs(0.5),
      p90Ms: this.quantileMs(0.9),
      p99Ms: this.quantileMs(0.99),
      maxMs: this.#maxMs,
    };
  }
}

export interface MetricsSummary {
  stages: Record<string, LatencySummary>;
  counters: Record<string, number>;
}

/** Named latency histograms and event counters for one pipeline run. */
export class PipelineMetrics {
  readonly #stages = new Map<string, LatencyHistogram>();
  readonly #counters = new Map<string, number>();

  latency(stageName: string): LatencyHistogram {
    let histogram = this.#stages.get(stageName);
    if (!histogram) this.#stages.set(stageName, (histogram = new LatencyHistogram()));
    return histogram;
  }

  count(counterName: string, increment = 1): void {
    this.#counters.set(counterName, (this.#counters.get(counterName) ?? 0) + increment);
  }

  counter(counterName: string): number {
    return this.#counters.get(counterName) ?? 0;
  }

  summary(): MetricsSummary {
    const stages: Record<string, LatencySummary> = {};
    for (const [name, histogram] of this.#stages) stages[name] = histogram.summary();
    return { stages, counters: Object.fromEntries(this.#counters) };
  }
}

/** Fixed-width text table of stage latencies, for terminals. */
export function formatLatencyTable(stages: Record<string, LatencySummary>): string {
  const header = ['stage', 'count', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'];
  const rows = Object.entries(stages).map(([name, s]) => [
    name,
    String(s.count),
    s.p50Ms.toFixed(2),
    s.p90Ms.toFixed(2),
    s.p99Ms.toFixed(2),
    s.maxMs.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
