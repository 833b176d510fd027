import type { RecordBatch, Schema } from 'apache-arrow';

/** A streaming output: record batches in, one complete file out, or no file at all. */
export interface Sink {
  readonly path: string;
  readonly format: string;
  write(batch: RecordBatch): Promise<void>;
  /**
   * Writes out everything accepted so far (sinks that encode in the background fail here, not later), so that
   * committing several outputs after flushing them all leaves all or none: `commit` then only renames.
   */
  flush?(): Promise<void>;
  /** Finishes the file and moves it to its final name. */
  commit(): Promise<void>;
  /** Drops everything written so far; safe to call from a signal handler. */
  abortSync(): void;
}

export type SinkOpener = (path: string, schema: Schema) => Promise<Sink>;
