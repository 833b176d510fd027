import { RecordBatch, RecordBatchFileWriter, RecordBatchStreamWriter, Schema } from 'apache-arrow';
import { AtomicFile } from './atomic.js';
import type { Sink } from './types.js';

/**
 * Arrow IPC, file format (`.arrow`, readable by polars, DuckDB, pandas/pyarrow) or stream format (`.arrows`).
 * Batches are encoded as they arrive and their bytes drained to disk, so memory stays bounded.
 */
/** Encoded bytes allowed to wait for the disk before `write` stops accepting batches. */
const MAX_PENDING_BYTES = 64 << 20;

/** Bytes of a batch's buffers (what its IPC encoding roughly weighs, dictionaries aside). */
function batchBytes(batch: RecordBatch): number {
  let bytes = 0;
  for (const child of batch.data.children) {
    bytes += (child.values?.byteLength ?? 0) + (child.nullBitmap?.byteLength ?? 0);
  }
  return bytes;
}

export class ArrowSink implements Sink {
  readonly format: string;
  private readonly writer: RecordBatchFileWriter | RecordBatchStreamWriter;
  private readonly drained: Promise<void>;
  /** Bytes handed to the encoder and bytes written to the file: their difference is what waits in memory. */
  private accepted = 0;
  private written = 0;
  private wake?: () => void;
  /** Why draining stopped (a full disk): `write` and `commit` throw it, so nothing waits for a disk that failed. */
  private failure?: unknown;

  private constructor(
    private readonly file: AtomicFile,
    schema: Schema,
    stream: boolean,
  ) {
    this.format = stream ? 'arrow-stream' : 'arrow';
    this.writer = stream ? new RecordBatchStreamWriter() : new RecordBatchFileWriter();
    this.writer.reset(undefined, schema);
    this.drained = this.drain().catch((error) => {
      this.failure = error;
      this.wake?.();
      throw error;
    });
    // Observed by write() through `failure` and by commit(); never an unhandled rejection.
    this.drained.catch(() => undefined);
  }

  get path(): string {
    return this.file.path;
  }

  static async open(path: string, schema: Schema, stream = false): Promise<ArrowSink> {
    return new ArrowSink(await AtomicFile.open(path, '--out'), schema, stream);
  }

  private async drain(): Promise<void> {
    for await (const bytes of this.writer) {
      await this.file.write(bytes);
      this.written += bytes.byteLength;
      this.wake?.();
    }
  }

  async write(batch: RecordBatch): Promise<void> {
    await this.encoderCall(() => this.writer.write(batch));
    this.accepted += batchBytes(batch);
    // Back-pressure: the encoder queues without limit, so wait for the disk to catch up.
    while (this.accepted - this.written > MAX_PENDING_BYTES && !this.failure) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    this.wake = undefined;
    if (this.failure) throw this.failure;
  }

  private flushed?: Promise<void>;

  /**
   * A failed drain closes the encoder's queue a microtask before `failure` is set, so the encoder's own "queue is
   * closed" can come first: the disk's error, which `drained` rejects with, is the one the user needs.
   */
  private async encoderCall(call: () => unknown): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      call();
    } catch (error) {
      await this.drained;
      throw error;
    }
  }

  flush(): Promise<void> {
    this.flushed ??= (async () => {
      await this.encoderCall(() => this.writer.finish());
      await this.drained;
      await this.file.flush();
    })();
    return this.flushed;
  }

  async commit(): Promise<void> {
    await this.flush();
    await this.file.commit();
  }

  abortSync(): void {
    try {
      this.writer.abort();
    } catch {
      // already finished or aborted
    }
    this.file.abortSync();
  }
}
