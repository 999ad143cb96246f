import { McapIndexedReader, McapStreamReader, type McapTypes } from '@mcap/core';
import { FileHandleReadable } from '@mcap/nodejs';
import { loadDecompressHandlers } from '@mcap/support';
import { open, type FileHandle } from 'node:fs/promises';
import { RecordingError, firstLine } from './errors.js';

/** One message as stored: its payload is still encoded (see `topics.ts` codecs). */
export interface RecordedMessage {
  topic: string;
  schemaName: string;
  logTimeNs: bigint;
  /** Per-channel sequence number as written. */
  sequence: number;
  data: Uint8Array;
}

export interface TopicSummary {
  topic: string;
  schemaName: string;
  messageCount: number;
}

export interface RecordingReaderOptions {
  /** Throw on the first problem instead of reporting it and reading on. Default false. */
  strict?: boolean;
  /** Receives each problem the reader recovered from (corrupt chunk, missing summary, truncation). */
  onProblem?: (problem: RecordingError) => void;
}

export interface ReadMessagesOptions {
  /** Only these topics (all when omitted). */
  topics?: readonly string[];
  /** Inclusive log-time bounds. */
  startNs?: bigint;
  endNs?: bigint;
}

const MCAP_MAGIC = [0x89, 0x4d, 0x43, 0x41, 0x50];
const STREAM_READ_BYTES = 4 * 1024 * 1024;

let decompressHandlers: Promise<McapTypes.DecompressHandlers> | undefined;

/**
 * Reads an MCAP recording. Indexed files are read chunk group by chunk group, so one corrupt chunk
 * costs only its own messages (reported, or thrown when strict). A file without a valid summary
 * (truncated, or never closed) is recovered by scanning it from the start: everything before the
 * damage is read.
 */
export class RecordingReader {
  readonly path: string;
  /** False when the summary was missing and the file was recovered by a linear scan. */
  readonly indexed: boolean;
  readonly topics: readonly TopicSummary[];
  /** Log time of the first and last message (0n for an empty recording). */
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly messageCount: number;
  #handle: FileHandle;
  #indexed: McapIndexedReader | undefined;
  #options: RecordingReaderOptions;

  private constructor(init: {
    path: string;
    handle: FileHandle;
    indexed: McapIndexedReader | undefined;
    topics: TopicSummary[];
    startNs: bigint;
    endNs: bigint;
    messageCount: number;
    options: RecordingReaderOptions;
  }) {
    this.path = init.path;
    this.#handle = init.handle;
    this.#indexed = init.indexed;
    this.indexed = init.indexed !== undefined;
    this.topics = init.topics;
    this.startNs = init.startNs;
    this.endNs = init.endNs;
    this.messageCount = init.messageCount;
    this.#options = init.options;
  }

  static async open(path: string, userOptions: RecordingReaderOptions = {}): Promise<RecordingReader> {
    // A recovered file is scanned more than once; report each problem once.
    const reported = new Set<string>();
    const options: RecordingReaderOptions = {
      strict: userOptions.strict,
      onProblem: (problem) => {
        if (reported.has(problem.message)) return;
        reported.add(problem.message);
        userOptions.onProblem?.(problem);
      },
    };
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw new RecordingError({ file: path }, `cannot open (${firstLine(error)})`, { cause: error });
    }
    try {
      const size = (await handle.stat()).size;
      const head = new Uint8Array(8);
      await handle.read(head, 0, 8, 0);
      if (size < 8 || !MCAP_MAGIC.every((byte, i) => head[i] === byte)) {
        throw new RecordingError({ file: path, offset: 0 }, `not an MCAP file (no MCAP magic; ${size} bytes)`);
      }
      decompressHandlers ??= loadDecompressHandlers();
      const handlers = await decompressHandlers;
      let indexed: McapIndexedReader | undefined;
      try {
        indexed = await McapIndexedReader.Initialize({ readable: new FileHandleReadable(handle), decompressHandlers: handlers });
      } catch (error) {
        const problem = new RecordingError(
          { file: path, offset: size },
          `no valid summary at the end of the file (${firstLine(error)}); it is truncated or was not closed`,
          { cause: error },
        );
        if (options.strict) throw problem;
        options.onProblem?.(problem);
      }
      if (indexed) {
        const topics = summarizeIndexed(indexed);
        const stats = indexed.statistics;
        return new RecordingReader({
          path,
          handle,
          indexed,
          topics,
          startNs: stats?.messageStartTime ?? 0n,
          endNs: stats?.messageEndTime ?? 0n,
          messageCount: Number(stats?.messageCount ?? 0n),
          options,
        });
      }
      // Recovery: one scan to learn topics and time span; messages() scans again when asked.
      const counts = new Map<string, TopicSummary>();
      let startNs = 0n;
      let endNs = 0n;
      let messageCount = 0;
      for await (const message of scanStream(path, handle, handlers, options)) {
        const summary = counts.get(message.topic) ?? { topic: message.topic, schemaName: message.schemaName, messageCount: 0 };
        summary.messageCount++;
        counts.set(message.topic, summary);
        if (messageCount === 0 || message.logTimeNs < startNs) startNs = message.logTimeNs;
        if (message.logTimeNs > endNs) endNs = message.logTimeNs;
        messageCount++;
      }
      return new RecordingReader({ path, handle, indexed: undefined, topics: [...counts.values()], startNs, endNs, messageCount, options });
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Summary of `topic`, or undefined when the recording has no such topic. */
  topic(topic: string): TopicSummary | undefined {
    return this.topics.find((t) => t.topic === topic);
  }

  /** Messages in log-time order (file order when recovering a file without summary). */
  async *messages(options: ReadMessagesOptions = {}): AsyncGenerator<RecordedMessage> {
    const inRange = (t: bigint) => (options.startNs === undefined || t >= options.startNs) && (options.endNs === undefined || t <= options.endNs);
    const wanted = options.topics ? new Set(options.topics) : undefined;
    if (!this.#indexed) {
      decompressHandlers ??= loadDecompressHandlers();
      for await (const message of scanStream(this.path, this.#handle, await decompressHandlers, this.#options)) {
        if ((!wanted || wanted.has(message.topic)) && inRange(message.logTimeNs)) yield message;
      }
      return;
    }
    const reader = this.#indexed;
    for (const group of chunkGroups(reader.chunkIndexes)) {
      const startTime = maxBig(group.startNs, options.startNs);
      const endTime = minBig(group.endNs, options.endNs);
      if (startTime > endTime) continue;
      try {
        for await (const record of reader.readMessages({ topics: options.topics, startTime, endTime })) {
          yield toRecorded(record, reader.channelsById, reader.schemasById);
        }
      } catch (error) {
        const problem = new RecordingError(
          { file: this.path, offset: group.offset },
          `corrupt chunk holding messages from ${group.startNs} to ${group.endNs} ns: ${firstLine(error)}`,
          { cause: error },
        );
        if (this.#options.strict) throw problem;
        this.#options.onProblem?.(problem);
      }
    }
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

interface ChunkGroup {
  startNs: bigint;
  endNs: bigint;
  offset: bigint;
}

/** Chunks merged into groups whose time ranges do not overlap, so each group reads on its own. */
function chunkGroups(chunkIndexes: readonly McapTypes.TypedMcapRecords['ChunkIndex'][]): ChunkGroup[] {
  const sorted = [...chunkIndexes].sort((a, b) => (a.messageStartTime < b.messageStartTime ? -1 : a.messageStartTime > b.messageStartTime ? 1 : 0));
  const groups: ChunkGroup[] = [];
  for (const chunk of sorted) {
    const last = groups.at(-1);
    if (last && chunk.messageStartTime <= last.endNs) {
      if (chunk.messageEndTime > last.endNs) last.endNs = chunk.messageEndTime;
    } else {
      groups.push({ startNs: chunk.messageStartTime, endNs: chunk.messageEndTime, offset: chunk.chunkStartOffset });
    }
  }
  return groups;
}

function summarizeIndexed(reader: McapIndexedReader): TopicSummary[] {
  const counts = reader.statistics?.channelMessageCounts;
  return [...reader.channelsById.values()].map((channel) => ({
    topic: channel.topic,
    schemaName: reader.schemasById.get(channel.schemaId)?.name ?? '',
    messageCount: Number(counts?.get(channel.id) ?? 0n),
  }));
}

function toRecorded(
  record: McapTypes.TypedMcapRecords['Message'],
  channels: ReadonlyMap<number, McapTypes.TypedMcapRecords['Channel']>,
  schemas: ReadonlyMap<number, McapTypes.TypedMcapRecords['Schema']>,
): RecordedMessage {
  const channel = channels.get(record.channelId);
  return {
    topic: channel?.topic ?? `#${record.channelId}`,
    schemaName: (channel && schemas.get(channel.schemaId)?.name) ?? '',
    logTimeNs: record.logTime,
    sequence: record.sequence,
    data: record.data,
  };
}

/** Linear scan with the streaming reader; stops at the first damage, which it reports. */
async function* scanStream(
  path: string,
  handle: FileHandle,
  handlers: McapTypes.DecompressHandlers,
  options: RecordingReaderOptions,
): AsyncGenerator<RecordedMessage> {
  const stream = new McapStreamReader({ decompressHandlers: handlers, validateCrcs: true });
  const channels = new Map<number, McapTypes.TypedMcapRecords['Channel']>();
  const schemas = new Map<number, McapTypes.TypedMcapRecords['Schema']>();
  const size = (await handle.stat()).size;
  let fed = 0;
  const report = (offset: number, reason: string, cause?: unknown) => {
    const problem = new RecordingError({ file: path, offset }, reason, { cause });
    if (options.strict) throw problem;
    options.onProblem?.(problem);
  };
  while (fed < size && !stream.done()) {
    const piece = new Uint8Array(Math.min(STREAM_READ_BYTES, size - fed));
    const { bytesRead } = await handle.read(piece, 0, piece.length, fed);
    fed += bytesRead;
    stream.append(piece.subarray(0, bytesRead));
    for (;;) {
      let record: McapTypes.TypedMcapRecord | undefined;
      try {
        record = stream.nextRecord();
      } catch (error) {
        report(fed - stream.bytesRemaining(), `corrupt record: ${firstLine(error)}; nothing after it can be read`, error);
        return;
      }
      if (!record) break;
      if (record.type === 'Schema') schemas.set(record.id, record);
      else if (record.type === 'Channel') channels.set(record.id, record);
      else if (record.type === 'Message') yield toRecorded(record, channels, schemas);
    }
  }
  if (!stream.done()) {
    report(size - stream.bytesRemaining(), `file ends inside a record (${stream.bytesRemaining()} bytes of it present): truncated`);
  }
}

function maxBig(a: bigint, b: bigint | undefined): bigint {
  return b === undefined || a > b ? a : b;
}

function minBig(a: bigint, b: bigint | undefined): bigint {
  return b === undefined || a < b ? a : b;
}
