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
  /** Rejects on the stream's first error; a wait for 'drain' races it. */
  private readonly failed: Promise<never>;
  private failure?: Error;

  constructor(
    schema: Schema,
    private readonly out: Writable = process.stdout,
  ) {
    this.writer.reset(undefined, schema);
    this.failed = new Promise((_resolve, reject) => {
      this.out.on('error', (error: NodeJS.ErrnoException) => {
        this.failure ??= StdoutSink.explain(error);
        reject(this.failure);
      });
    });
    this.failed.catch(() => undefined);
    this.drained = this.drain();
    this.drained.catch(() => undefined);
  }

  /** A reader that quits early (`| head`) closes the pipe: one line, not a stack trace. */
  private static explain(error: NodeJS.ErrnoException): Error {
    return error.code === 'EPIPE' ? new EngineError('standard output was closed before the sweep finished (EPIPE)') : error;
  }

  /**
   * Waits until the pipe takes more. process.stdout is never destroyed by a write error, so after EPIPE it still
   * reports that it needs a drain that will never come: a wait begun after the error must see the failure, or
   * nothing is left to keep the process alive and it exits 0 with the sweep unfinished.
   */
  private async room(): Promise<void> {
    if (this.failure) throw this.failure;
    const stop = new AbortController();
    const drained = once(this.out, 'drain', { signal: stop.signal });
    drained.catch(() => undefined);
    try {
      await Promise.race([drained, this.failed]);
    } catch (error) {
      throw this.failure ?? StdoutSink.explain(error as NodeJS.ErrnoException);
    } finally {
      stop.abort();
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
