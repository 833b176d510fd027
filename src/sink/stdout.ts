import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { RecordBatch, RecordBatchStreamWriter, Schema } from 'apache-arrow';
import { EngineError } from '../errors.js';
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
    this.out.on('error', (error: NodeJS.ErrnoException) => {
      this.failure = StdoutSink.explain(error);
    });
    this.drained = this.drain();
    this.drained.catch(() => undefined);
  }

  /** A reader that quits early (`| head`) closes the pipe: one line, not a stack trace. */
  private static explain(error: NodeJS.ErrnoException): Error {
    return error.code === 'EPIPE' ? new EngineError('standard output was closed before the sweep finished (EPIPE)') : error;
  }

  /** Waits until the pipe takes more (`once` rejects on the stream's 'error' event). */
  private async room(): Promise<void> {
    try {
      await once(this.out, 'drain');
    } catch (error) {
      throw StdoutSink.explain(error as NodeJS.ErrnoException);
    }
  }

  private async drain(): Promise<void> {
    for await (const bytes of this.writer) {
      if (this.failure) throw this.failure;
      if (!this.out.write(bytes)) await this.room();
    }
  }

  async write(batch: RecordBatch): Promise<void> {
    if (this.failure) throw this.failure;
    this.writer.write(batch);
    // Let the drain loop hand the encoded bytes to the pipe before the next batch is encoded.
    await new Promise((resolve) => setImmediate(resolve));
    if (this.out.writableNeedDrain) await this.room();
    if (this.failure) throw this.failure;
  }

  async commit(): Promise<void> {
    this.writer.finish();
    await this.drained;
    if (this.failure) throw this.failure;
  }

  abortSync(): void {
    try {
      this.writer.abort();
    } catch {
      // Already closed: the pipe failed first.
    }
  }
}
