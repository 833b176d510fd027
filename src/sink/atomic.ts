import { createWriteStream, renameSync, rmSync, WriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { once } from 'node:events';
import { InputError } from '../errors.js';

/**
 * A file that appears under its final name only when complete: bytes go to a hidden temporary file in the same
 * directory (so the rename is atomic), which `commit` renames and `abort` removes.
 */
export class AtomicFile {
  /** Every temporary file not yet committed or removed, so an interrupt can remove even one still opening. */
  private static readonly live = new Set<AtomicFile>();

  /** Removes every partial file of this process; for signal handlers and fatal errors. */
  static abortAll(): void {
    for (const file of [...AtomicFile.live]) file.abortSync();
  }

  readonly path: string;
  readonly tempPath: string;
  readonly stream: WriteStream;
  private failure?: Error;
  private closed = false;

  constructor(path: string) {
    this.path = path;
    this.tempPath = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
    this.stream = createWriteStream(this.tempPath);
    AtomicFile.live.add(this);
    this.stream.on('error', (error) => {
      this.failure = error;
    });
  }

  /** Opens the temp file, turning a missing directory or permission problem into an input error. */
  static async open(path: string, field: string): Promise<AtomicFile> {
    const file = new AtomicFile(path);
    try {
      await once(file.stream, 'open');
    } catch (error) {
      throw new InputError(field, `cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    return file;
  }

  /** Writes with back-pressure: waits for the OS when the stream's buffer is full. */
  async write(chunk: string | Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }

  async commit(): Promise<void> {
    if (this.failure) throw this.failure;
    this.closed = true;
    this.stream.end();
    await once(this.stream, 'finish');
    if (this.failure) throw this.failure;
    renameSync(this.tempPath, this.path);
    AtomicFile.live.delete(this);
  }

  /** Removes the partial file. Synchronous so that it also runs from a signal handler or at exit. */
  abortSync(): void {
    if (!this.closed) {
      this.closed = true;
      this.stream.destroy();
    }
    rmSync(this.tempPath, { force: true });
    AtomicFile.live.delete(this);
  }
}
