import { isoFromNs } from '../time.js';

export interface RecordingErrorLocation {
  /** Recording file path. */
  file: string;
  topic?: string;
  /** Message log time. */
  logTimeNs?: bigint;
  /** Byte offset in the file. */
  offset?: bigint | number;
}

/**
 * An error in a recording, one line long, naming the file and as much of topic, log time and byte
 * offset as is known: `drive.mcap: topic '/camera/front' at log time 1557539956450180000 ns
 * (2019-05-11T01:59:16.450Z): undecodable JPEG (...)`.
 */
export class RecordingError extends Error {
  override readonly name = 'RecordingError';
  readonly location: RecordingErrorLocation;
  readonly reason: string;

  constructor(location: RecordingErrorLocation, reason: string, options?: { cause?: unknown }) {
    super(`${formatLocation(location)}: ${reason}`, options);
    this.location = location;
    this.reason = reason;
  }
}

function formatLocation(location: RecordingErrorLocation): string {
  const where: string[] = [];
  if (location.topic !== undefined) where.push(`topic '${location.topic}'`);
  if (location.logTimeNs !== undefined) where.push(`at log time ${location.logTimeNs} ns (${isoFromNs(location.logTimeNs)})`);
  if (location.offset !== undefined) where.push(`at byte offset ${location.offset}`);
  return where.length === 0 ? location.file : `${location.file}: ${where.join(' ')}`;
}

/** First line of an error's message, for one-line reports. */
export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n', 1)[0]!;
}
