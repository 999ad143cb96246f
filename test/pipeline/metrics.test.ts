import { describe, it, expect } from 'vitest';
import {
  HISTOGRAM_MAX_MS,
  HISTOGRAM_MIN_MS,
  HISTOGRAM_RELATIVE_PRECISION,
  LatencyHistogram,
  PipelineMetrics,
  formatLatencyTable,
  type LatencySummary,
} from '../../pipeline/metrics.js';
import { thrownBy } from '../support/errors.js';
import { seededRandom } from '../support/random.js';

/** Nearest-rank percentile of an ascending array, the definition the histogram approximates. */
function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

const QUANTILES = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];
// Float rounding in log/exp near a bucket edge may add a few ulps on top of the bucket width.
const TOLERANCE = HISTOGRAM_RELATIVE_PRECISION * (1 + 1e-9);

function expectWithinPrecision(samples: number[]): void {
  const histogram = new LatencyHistogram();
  for (const s of samples) histogram.record(s);
  const sorted = [...samples].sort((a, b) => a - b);
  for (const q of QUANTILES) {
    const exact = exactQuantile(sorted, q);
    const reported = histogram.quantileMs(q);
    const relativeError = Math.abs(reported - exact) / exact;
    expect(relativeError, `q=${q}: reported ${reported} ms, exact ${exact} ms`).toBeLessThanOrEqual(TOLERANCE);
    // Reported values are bucket upper edges: never below the exact percentile (beyond float noise).
    expect(reported, `q=${q}`).toBeGreaterThanOrEqual(exact * (1 - 1e-12));
  }
  const summary = histogram.summary();
  expect(summary.count).toBe(samples.length);
  expect(summary.maxMs).toBe(sorted[sorted.length - 1]);
  expect(summary.meanMs).toBeCloseTo(samples.reduce((a, b) => a + b, 0) / samples.length, 9);
  expect(summary.p50Ms).toBe(histogram.quantileMs(0.5));
  expect(summary.p90Ms).toBe(histogram.quantileMs(0.9));
  expect(summary.p99Ms).toBe(histogram.quantileMs(0.99));
}

describe('LatencyHistogram', () => {
  it('percentiles of 10 000 exponential latencies are within HISTOGRAM_RELATIVE_PRECISION of the exact ones', () => {
    const random = seededRandom(12345);
    // Typical stage latencies: 2 ms floor plus an exponential tail with mean 8 ms.
    const samples = Array.from({ length: 10_000 }, () => 2 - 8 * Math.log(1 - random()));
    expectWithinPrecision(samples);
  });

  it('percentiles of 10 000 log-uniform latencies over 6 decades are within HISTOGRAM_RELATIVE_PRECISION', () => {
    const random = seededRandom(987_654_321);
    const samples = Array.from({ length: 10_000 }, () => 0.01 * 10 ** (6 * random()));
    expectWithinPrecision(samples);
  });

  it('uses the nearest-rank definition: quantile q is the ceil(q * count)-th smallest latency', () => {
    const histogram = new LatencyHistogram();
    for (const ms of [30, 10, 20]) histogram.record(ms);
    const expected: [number, number][] = [
      [0, 10],
      [0.33, 10],
      [1 / 3, 10],
      [0.34, 20],
      [0.66, 20],
      [0.67, 30],
      [1, 30],
    ];
    for (const [q, exact] of expected) {
      expect(Math.abs(histogram.quantileMs(q) - exact) / exact, `q=${q}`).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('a constant latency is reported exactly (capped by the exact max)', () => {
    const histogram = new LatencyHistogram();
    for (let i = 0; i < 100; i++) histogram.record(5);
    expect(histogram.summary()).toEqual({ count: 100, meanMs: 5, p50Ms: 5, p90Ms: 5, p99Ms: 5, maxMs: 5 });
  });

  it('an empty histogram reports zeros', () => {
    const histogram = new LatencyHistogram();
    expect(histogram.count).toBe(0);
    expect(histogram.quantileMs(0.5)).toBe(0);
    expect(histogram.summary()).toEqual({ count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 });
  });

  it('zero latencies are recorded and reported as 0', () => {
    const histogram = new LatencyHistogram();
    histogram.record(0);
    histogram.record(0);
    expect(histogram.summary()).toEqual({ count: 2, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 });
  });

  it('latencies below HISTOGRAM_MIN_MS land in the lowest bucket, reported as at most HISTOGRAM_MIN_MS', () => {
    const histogram = new LatencyHistogram();
    for (let i = 0; i < 3; i++) histogram.record(HISTOGRAM_MIN_MS / 4);
    histogram.record(5);
    expect(histogram.quantileMs(0.5)).toBe(HISTOGRAM_MIN_MS);
    expect(histogram.quantileMs(1)).toBe(5);
    expect(histogram.summary().maxMs).toBe(5);

    const onlyTiny = new LatencyHistogram();
    onlyTiny.record(HISTOGRAM_MIN_MS / 4);
    expect(onlyTiny.quantileMs(0.5)).toBe(HISTOGRAM_MIN_MS / 4); // capped by the exact max
  });

  it('a latency of exactly HISTOGRAM_MIN_MS is reported exactly', () => {
    const histogram = new LatencyHistogram();
    histogram.record(HISTOGRAM_MIN_MS);
    histogram.record(1);
    expect(histogram.quantileMs(0)).toBe(HISTOGRAM_MIN_MS);
  });

  it('latencies above HISTOGRAM_MAX_MS saturate at the top bucket while max stays exact', () => {
    const histogram = new LatencyHistogram();
    histogram.record(HISTOGRAM_MAX_MS);
    histogram.record(10 * HISTOGRAM_MAX_MS);
    histogram.record(10 * HISTOGRAM_MAX_MS);
    // At the limit the histogram is still within its precision ...
    expect(Math.abs(histogram.quantileMs(0) - HISTOGRAM_MAX_MS) / HISTOGRAM_MAX_MS).toBeLessThanOrEqual(TOLERANCE);
    // ... above it, percentiles stop at the top bucket's edge, but max is exact.
    const p50 = histogram.quantileMs(0.5);
    expect(p50).toBeGreaterThanOrEqual(HISTOGRAM_MAX_MS);
    expect(p50).toBeLessThanOrEqual(HISTOGRAM_MAX_MS * (1 + TOLERANCE));
    expect(histogram.quantileMs(1)).toBe(p50);
    expect(histogram.summary().maxMs).toBe(10 * HISTOGRAM_MAX_MS);
    expect(histogram.summary().meanMs).toBe(7 * HISTOGRAM_MAX_MS);
  });

  it('a negative latency throws RangeError and is not counted', () => {
    const histogram = new LatencyHistogram();
    const error = thrownBy(() => histogram.record(-0.001));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('LatencyHistogram.record: latency must be a finite number >= 0 ms, got -0.001');
    expect(histogram.count).toBe(0);
  });

  it('a NaN latency throws RangeError', () => {
    const error = thrownBy(() => new LatencyHistogram().record(NaN));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('LatencyHistogram.record: latency must be a finite number >= 0 ms, got NaN');
  });

  it('an infinite latency throws RangeError', () => {
    const error = thrownBy(() => new LatencyHistogram().record(Infinity));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('LatencyHistogram.record: latency must be a finite number >= 0 ms, got Infinity');
  });

  it('a quantile above 1 throws RangeError', () => {
    const error = thrownBy(() => new LatencyHistogram().quantileMs(1.01));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('LatencyHistogram.quantileMs: q must be in [0, 1], got 1.01');
  });

  it('a NaN quantile throws RangeError', () => {
    const error = thrownBy(() => new LatencyHistogram().quantileMs(NaN));
    expect(error.name).toBe('RangeError');
    expect(error.message).toBe('LatencyHistogram.quantileMs: q must be in [0, 1], got NaN');
  });
});

describe('PipelineMetrics', () => {
  it('latency(name) returns one histogram per stage name', () => {
    const metrics = new PipelineMetrics();
    const decode = metrics.latency('decode');
    expect(metrics.latency('decode')).toBe(decode);
    expect(metrics.latency('detect')).not.toBe(decode);
  });

  it('counters start at 0 and add the increment (default 1)', () => {
    const metrics = new PipelineMetrics();
    expect(metrics.counter('decode.drops')).toBe(0);
    metrics.count('decode.drops');
    metrics.count('decode.drops');
    metrics.count('detect.errors', 5);
    expect(metrics.counter('decode.drops')).toBe(2);
    expect(metrics.counter('detect.errors')).toBe(5);
  });

  it('summary() holds every stage summary and counter', () => {
    const metrics = new PipelineMetrics();
    metrics.latency('decode').record(4);
    metrics.latency('decode').record(6);
    metrics.latency('detect').record(20);
    metrics.latency('idle'); // asked for but never recorded
    metrics.count('decode.drops', 3);
    const summary = metrics.summary();
    expect(Object.keys(summary.stages)).toEqual(['decode', 'detect', 'idle']);
    expect(summary.stages.decode).toMatchObject({ count: 2, meanMs: 5, maxMs: 6 });
    expect(summary.stages.detect).toEqual({ count: 1, meanMs: 20, p50Ms: 20, p90Ms: 20, p99Ms: 20, maxMs: 20 });
    expect(summary.stages.idle).toEqual({ count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 });
    expect(summary.counters).toEqual({ 'decode.drops': 3 });
  });

  it('summary() is a snapshot, not a live view', () => {
    const metrics = new PipelineMetrics();
    metrics.count('frames');
    const before = metrics.summary();
    metrics.count('frames');
    metrics.latency('decode').record(1);
    expect(before.counters).toEqual({ frames: 1 });
    expect(before.stages).toEqual({});
  });
});

describe('formatLatencyTable', () => {
  const summary = (s: Partial<LatencySummary>): LatencySummary => ({
    count: 0,
    meanMs: 0,
    p50Ms: 0,
    p90Ms: 0,
    p99Ms: 0,
    maxMs: 0,
    ...s,
  });

  it('has a header and one aligned row per stage with values in ms to 2 decimals', () => {
    const table = formatLatencyTable({
      decode: summary({ count: 1200, p50Ms: 4.123, p90Ms: 5.5, p99Ms: 9.999, maxMs: 12 }),
      'lane-detection': summary({ count: 7, p50Ms: 31.25, p90Ms: 40, p99Ms: 41, maxMs: 123.456 }),
    });
    const lines = table.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]!.split(/ {2,}/)).toEqual(['stage', 'count', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms']);
    expect(lines[1]!.trim().split(/ +/)).toEqual(['decode', '1200', '4.12', '5.50', '10.00', '12.00']);
    expect(lines[2]!.trim().split(/ +/)).toEqual(['lane-detection', '7', '31.25', '40.00', '41.00', '123.46']);
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
    expect(lines[1]!.startsWith('decode ')).toBe(true);
  });

  it('with no stages is the header alone', () => {
    expect(formatLatencyTable({})).toBe('stage  count  p50 ms  p90 ms  p99 ms  max ms');
  });
});
