import { RecordBatch, RecordBatchFileWriter, RecordBatchStreamWriter, Schema } from 'apache-arrow';
import { AtomicFile } from './atomic.js';
import type { Sink } from './types.js';

/**
 * Arrow IPC, file format (`.arrow`, readable by polars, DuckDB, pandas/pyarrow) or stream format (`.arrows`).
 * Batches are encoded as they arrive and their bytes drained to disk, so memory stays bounded.
 */
export class ArrowSink implements Sink {
  readonly format: string;
  private readonly writer: RecordBatchFileWriter | RecordBatchStreamWriter;
  private readonly drained: Promise<void>;

  private constructor(
    private readonly file: AtomicFile,
    schema: Schema,
    stream: boolean,
  ) {
    this.format = stream ? 'arrow-stream' : 'arrow';
    this.writer = stream ? new RecordBatchStreamWriter() : new RecordBatchFileWriter();
    this.writer.reset(undefined, schema);
    this.drained = this.drain();
  }

  get path(): string {
    return this.file.path;
  }

  static async open(path: string, schema: Schema, stream = false): Promise<ArrowSink> {
    return new ArrowSink(await AtomicFile.open(path, '--out'), schema, stream);
  }

  private async drain(): Promise<void> {
    for await (const bytes of this.writer) await this.file.write(bytes);
  }

  async write(batch: RecordBatch): Promise<void> {
    this.writer.write(batch);
    // Let the drain loop move this batch's bytes to the file before encoding the next one.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  async commit(): Promise<void> {
    this.writer.finish();
    await this.drained;
    await this.file.commit();
  }

  abortSync(): void {
    // The drain loop's pending write fails once the file is gone; nobody is left to hear it.
    this.drained.catch(() => undefined);
    this.writer.abort();
    this.file.abortSync();
  }
}
