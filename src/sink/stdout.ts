import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { RecordBatch, RecordBatchStreamWriter, Schema } from 'apache-arrow';
import type { Sink } from './types.js';

/** The path that means standard output. */
export const STDOUT_PATH = '-';

/**
 * `-o -`: the Arrow IPC stream format on standard output, for a pipe into DuckDB, polars or pyarrow (the file
 * format needs a seekable footer; the stream format does not). Batches are encoded as they arrive; a pipe that
 * stops reading pauses the sweep. Nothing can be taken back from a pipe, so an abort just stops writing.
 */
export class StdoutSink implements Sink {
  readonly format = 'arrow-stream';
  readonly path = STDOUT_PATH;
  private readonly writer = new RecordBatchStreamWriter();
  private readonly drained: Promise<void>;
  private failure?: Error;

  constructor(
    schema: Schema,
    private readonly out: Writable = process.stdout,
  ) {
    this.writer.reset(undefined, schema);
    this.out.on('error', (error: Error) => {
      this.failure = error;
    });
    this.drained = this.drain();
    this.drained.catch(() => undefined);
  }

  private async drain(): Promise<void> {
    for await (const bytes of this.writer) {
      if (this.failure) throw this.failure;
      if (!this.out.write(bytes)) await Promise.race([once(this.out, 'drain'), once(this.out, 'error')]);
    }
  }

  async write(batch: RecordBatch): Promise<void> {
    if (this.failure) throw this.failure;
    this.writer.write(batch);
    // Let the drain loop hand the encoded bytes to the pipe before the next batch is encoded.
    await new Promise((resolve) => setImmediate(resolve));
    if (this.out.writableNeedDrain) await Promise.race([once(this.out, 'drain'), once(this.out, 'error')]);
  }

  async commit(): Promise<void> {
    this.writer.finish();
    await this.drained;
    if (this.failure) throw this.failure;
  }

  abortSync(): void {
    this.writer.abort();
  }
}
