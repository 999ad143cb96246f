import { McapWriter } from '@mcap/core';
import { FileHandleWritable } from '@mcap/nodejs';
import zstd from '@foxglove/wasm-zstd';
import { open, type FileHandle } from 'node:fs/promises';
import type { TopicCodec } from './topics.js';

export interface RecordingWriterOptions {
  /** Uncompressed bytes per chunk before it is compressed and written. Default 4 MiB. */
  chunkSizeBytes?: number;
  /** Chunk compression. Default 'zstd'. */
  compression?: 'zstd' | 'none';
  /** zstd level (1 fastest .. 19). Default 3. */
  zstdLevel?: number;
  /** Written into the MCAP header's `library` field; keep it free of versions and times so output is reproducible. */
  library?: string;
}

/** What a channel needs to know about its payloads. */
type SchemaOf = Pick<TopicCodec<unknown>, 'schemaName' | 'schemaEncoding' | 'messageEncoding' | 'schemaData'>;

const DEFAULTS: Required<RecordingWriterOptions> = { chunkSizeBytes: 4 * 1024 * 1024, compression: 'zstd', zstdLevel: 3, library: 'arhud' };

/**
 * Writes an indexed, chunked, compressed MCAP file (what Foxglove Studio opens). Payloads are JSON
 * with JSON Schemas, images protobuf (both as Foxglove expects them). Writes are serialized internally, so callers may fire them without awaiting
 * each one, but must await `close()`, which writes the summary; a file closed that way is valid
 * however early the run stopped.
 */
export class RecordingWriter {
  readonly path: string;
  #handle: FileHandle;
  #mcap: McapWriter;
  #channelIds = new Map<string, number>();
  #schemaIds = new Map<string, number>();
  #sequences = new Map<string, number>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #messageCount = 0;
  #failure: unknown;

  private constructor(path: string, handle: FileHandle, mcap: McapWriter) {
    this.path = path;
    this.#handle = handle;
    this.#mcap = mcap;
  }

  static async create(path: string, options: RecordingWriterOptions = {}): Promise<RecordingWriter> {
    const settings = { ...DEFAULTS, ...options };
    if (!(settings.chunkSizeBytes >= 1024)) throw new RangeError(`RecordingWriter.create: 'chunkSizeBytes' must be >= 1024, got ${settings.chunkSizeBytes}`);
    if (settings.compression === 'zstd') await zstd.isLoaded;
    const handle = await open(path, 'w');
    const mcap = new McapWriter({
      writable: new FileHandleWritable(handle),
      useStatistics: true,
      useChunks: true,
      useChunkIndex: true,
      useMessageIndex: true,
      useSummaryOffsets: true,
      chunkSize: settings.chunkSizeBytes,
      compressChunk:
        settings.compression === 'zstd'
          ? (data) => ({ compression: 'zstd', compressedData: zstd.compress(data, settings.zstdLevel) })
          : undefined,
    });
    try {
      await mcap.start({ profile: '', library: settings.library });
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new RecordingWriter(path, handle, mcap);
  }

  get messageCount(): number {
    return this.#messageCount;
  }

  /** Encodes `message` with the topic's codec and appends it. */
  write<T>(topic: string, codec: TopicCodec<T>, logTimeNs: bigint, message: T): Promise<void> {
    return this.writeEncoded(topic, codec, logTimeNs, codec.encode(message));
  }

  /** Appends an already-encoded payload (e.g. passed through unchanged from another recording). */
  writeEncoded(topic: string, codec: SchemaOf, logTimeNs: bigint, payload: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`RecordingWriter.write: ${this.path} is closed (topic '${topic}')`));
    if (logTimeNs <= 0n) return Promise.reject(new RangeError(`RecordingWriter.write: ${this.path} topic '${topic}': log time must be > 0 ns, got ${logTimeNs}`));
    return this.#enqueue(async () => {
      const channelId = await this.#channelFor(topic, codec);
      const sequence = this.#sequences.get(topic) ?? 0;
      this.#sequences.set(topic, sequence + 1);
      await this.#mcap.addMessage({ channelId, sequence, logTime: logTimeNs, publishTime: logTimeNs, data: payload });
      this.#messageCount++;
    });
  }

  /** Writes the summary and closes the file. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.#closed) return this.#queue;
    this.#closed = true;
    const finish = this.#queue.then(
      async () => {
        try {
          await this.#mcap.end();
        } finally {
          await this.#handle.close();
        }
      },
      async (error: unknown) => {
        await this.#handle.close();
        throw error;
      },
    );
    this.#queue = finish;
    return finish;
  }

  async #channelFor(topic: string, codec: SchemaOf): Promise<number> {
    const existing = this.#channelIds.get(topic);
    if (existing !== undefined) return existing;
    let schemaId = this.#schemaIds.get(codec.schemaName);
    if (schemaId === undefined) {
      schemaId = await this.#mcap.registerSchema({
        name: codec.schemaName,
        encoding: codec.schemaEncoding,
        data: codec.schemaData,
      });
      this.#schemaIds.set(codec.schemaName, schemaId);
    }
    const channelId = await this.#mcap.registerChannel({ topic, schemaId, messageEncoding: codec.messageEncoding, metadata: new Map() });
    this.#channelIds.set(topic, channelId);
    return channelId;
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure as Error);
    const next = this.#queue.then(task);
    this.#queue = next.catch((error: unknown) => {
      this.#failure ??= error;
    });
    return next;
  }
}
