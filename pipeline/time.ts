/**
 * Time conventions: absolute times are `bigint` nanoseconds on the source clock (UNIX epoch for
 * recordings) because epoch nanoseconds exceed 2^53; durations inside the process are `number`
 * milliseconds. Conversions live here and nowhere else.
 */

/** Foxglove/ROS style timestamp, as carried in message payloads. */
export interface Timestamp {
  sec: number;
  nsec: number;
}

export const NS_PER_MS = 1_000_000n;
export const NS_PER_S = 1_000_000_000n;

export function timestampFromNs(tNs: bigint): Timestamp {
  if (tNs < 0n) throw new RangeError(`timestampFromNs: time must be >= 0 ns, got ${tNs}`);
  return { sec: Number(tNs / NS_PER_S), nsec: Number(tNs % NS_PER_S) };
}

export function nsFromTimestamp(t: Timestamp): bigint {
  return BigInt(t.sec) * NS_PER_S + BigInt(t.nsec);
}

/**
 * Seconds (e.g. 1557539956.45018 from a dataset) to integer ns, rounded to the microsecond: float64
 * seconds near 1.5e9 only carry about 0.2 us of precision, so finer digits would be noise.
 */
export function nsFromSeconds(seconds: number): bigint {
  if (!Number.isFinite(seconds)) throw new RangeError(`nsFromSeconds: seconds must be finite, got ${seconds}`);
  const wholeS = Math.floor(seconds);
  const us = Math.round((seconds - wholeS) * 1e6);
  return BigInt(wholeS) * NS_PER_S + BigInt(us) * 1000n;
}

export function msFromNs(durationNs: bigint): number {
  return Number(durationNs) / 1e6;
}

export function secondsFromNs(durationNs: bigint): number {
  return Number(durationNs) / 1e9;
}

/** ISO-8601 text of an epoch time, for error messages and summaries. */
export function isoFromNs(tNs: bigint): string {
  const ms = Number(tNs / NS_PER_MS);
  return new Date(ms).toISOString();
}
