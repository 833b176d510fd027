import { createHash } from 'node:crypto';
import {
  closeSync,
  createWriteStream,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  WriteStream,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { InputError, OutputError } from '../errors.js';

/** Longest file name most file systems take (ext4, xfs, btrfs, tmpfs: NAME_MAX, in bytes). */
const NAME_MAX_BYTES = 255;
const TEMP_SUFFIX = '.partial';

/** Why a write failed, in words, with the code for searching: `no space left on device (ENOSPC)`. */
export function describeIoError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const words: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'no such directory',
    ENOTDIR: 'a parent is not a directory',
    EISDIR: 'is a directory',
    ENAMETOOLONG: 'file name too long',
    EPIPE: 'the reader closed the pipe',
    EIO: 'input/output error',
    EFBIG: 'file too large',
  };
  if (code) return words[code] ? `${words[code]} (${code})` : code;
  return error instanceof Error ? error.message.split('\n')[0] : String(error);
}

/**
 * Where an output path really goes. A regular file (or a path that does not exist yet) is written atomically
 * next to its real location, so a symlink stays a symlink and its target is replaced. A pipe, a terminal, a
 * socket or anything under /dev or /proc (`/dev/stdout`) is written through: there is nothing to rename onto.
 */
export interface OutputTarget {
  /** As the user wrote it, for messages. */
  path: string;
  /** The real path written (atomic) or opened (through); duplicates are found by comparing it. */
  real: string;
  mode: 'atomic' | 'through';
}

function isDeviceTree(path: string): boolean {
  return /^\/(dev|proc)\//.test(path);
}

/**
 * The descriptor behind /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N for N = 1 or 2. These are written
 * through the process's own stream: when stdout is a socket (as under a spawning parent) the path cannot even be
 * opened (ENXIO), and the stream already knows how to write to a pipe, a terminal or a file.
 */
function standardStream(path: string): 1 | 2 | undefined {
  const match = /^\/(?:dev\/(stdout|stderr)|dev\/fd\/([12])|proc\/self\/fd\/([12]))$/.exec(path);
  if (!match) return undefined;
  return match[1] === 'stdout' || match[2] === '1' || match[3] === '1' ? 1 : 2;
}

/** Resolves an output path, refusing a directory, a missing directory or a parent that is a file with one line. */
export function resolveOutput(path: string, field: string): OutputTarget {
  const absolute = resolve(path);
  if (isDeviceTree(absolute)) return { path, real: absolute, mode: 'through' };
  let exists = true;
  try {
    lstatSync(absolute);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new InputError(field, `cannot write ${path}: ${describeIoError(error)}`);
    exists = false;
  }
  if (exists) {
    let real: string;
    try {
      real = realpathSync(absolute);
    } catch (error) {
      // A dangling symlink: write where it points, as `>` in a shell does.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new InputError(field, `cannot write ${path}: ${describeIoError(error)}`);
      return resolveOutput(resolve(dirname(absolute), readlinkOrThrow(absolute, path, field)), field);
    }
    const stats = statSync(real);
    if (stats.isDirectory()) throw new InputError(field, `cannot write ${path}: it is a directory`);
    if (!stats.isFile() || isDeviceTree(real)) return { path, real, mode: 'through' };
    return { path, real, mode: 'atomic' };
  }
  const parent = dirname(absolute);
  let realParent: string;
  try {
    realParent = realpathSync(parent);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? `directory ${dirname(path)} does not exist` : describeIoError(error);
    throw new InputError(field, `cannot write ${path}: ${reason}`);
  }
  if (!statSync(realParent).isDirectory()) {
    throw new InputError(field, `cannot write ${path}: ${dirname(path)} is not a directory`);
  }
  return { path, real: join(realParent, basename(absolute)), mode: 'atomic' };
}

function readlinkOrThrow(link: string, path: string, field: string): string {
  try {
    return readlinkSync(link);
  } catch (error) {
    throw new InputError(field, `cannot write ${path}: ${describeIoError(error)}`);
  }
}

/**
 * The hidden temporary name of `real` for process `pid`: `.NAME.PID.partial` in the same directory (so the
 * rename is atomic), or `.HASH.PID.partial` when that would exceed NAME_MAX.
 */
export function tempPathFor(real: string, pid = process.pid): string {
  const name = basename(real);
  const plain = `.${name}.${pid}${TEMP_SUFFIX}`;
  if (Buffer.byteLength(plain) <= NAME_MAX_BYTES) return join(dirname(real), plain);
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 32);
  return join(dirname(real), `.${hash}.${pid}${TEMP_SUFFIX}`);
}

/** Whether process `pid` exists (a process of another user counts: kill answers EPERM). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files that earlier runs to the same output left behind when they were killed (SIGKILL, a
 * power cut): those whose process no longer exists. Returns the paths removed. A temp file of a live process
 * (another parasweep writing the same output right now) is left alone.
 */
export function removeStaleTempFiles(real: string): string[] {
  const dir = dirname(real);
  const example = basename(tempPathFor(real, 1));
  const stem = example.slice(0, example.length - `1${TEMP_SUFFIX}`.length);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(stem) || !name.endsWith(TEMP_SUFFIX)) continue;
    const pidText = name.slice(stem.length, name.length - TEMP_SUFFIX.length);
    if (!/^\d+$/.test(pidText)) continue;
    const pid = Number(pidText);
    if (pid === process.pid || processAlive(pid)) continue;
    try {
      rmSync(join(dir, name), { force: true });
      removed.push(join(dir, name));
    } catch {
      // Not ours to remove (permissions): leave it.
    }
  }
  return removed;
}

/**
 * Checks that an output can be written before any work starts: creates and removes its temporary file, which
 * finds a read-only directory or file system, a missing permission or a name too long at once, as the real
 * write would find them.
 */
export function probeOutput(target: OutputTarget, field: string): void {
  if (target.mode !== 'atomic') return;
  const temp = tempPathFor(target.real);
  try {
    closeSync(openSync(temp, 'w'));
  } catch (error) {
    throw new InputError(field, `cannot write ${target.path}: ${describeIoError(error)}`);
  } finally {
    try {
      rmSync(temp, { force: true });
    } catch {
      // nothing was created
    }
  }
}

/** Test seam: how the temporary (or through) stream is created, so the fault-injection suite can fail writes. */
export type StreamFactory = (path: string, flags: string) => WriteStream;
const defaultFactory: StreamFactory = (path, flags) => createWriteStream(path, { flags });
let streamFactory: StreamFactory = defaultFactory;

/** Replaces how output streams are created (tests only: injecting ENOSPC, EIO); `undefined` restores fs. */
export function setStreamFactory(factory: StreamFactory | undefined): void {
  streamFactory = factory ?? defaultFactory;
}

/**
 * A file that appears under its final name only when complete: bytes go to a hidden temporary file in the same
 * directory as the real target (so the rename is atomic), which `commit` renames and `abort` removes. Special
 * files (pipes, terminals, /dev/stdout) are written through instead.
 */
export class AtomicFile {
  /** Every temporary file not yet committed or removed, so an interrupt can remove even one still opening. */
  private static readonly live = new Set<AtomicFile>();

  /** Removes every partial file of this process; for signal handlers and fatal errors. Never throws. */
  static abortAll(): void {
    for (const file of [...AtomicFile.live]) file.abortSync();
  }

  readonly path: string;
  readonly target: OutputTarget;
  /** The file being written: the temporary file, or the special file itself. */
  readonly tempPath: string;
  readonly stream: Writable;
  /** Set when writing to this process's stdout or stderr, which must not be ended or removed. */
  private readonly standard?: 1 | 2;
  private failure?: Error;
  private closed = false;

  constructor(path: string, target = resolveOutput(path, '--out')) {
    this.path = path;
    this.target = target;
    this.tempPath = target.mode === 'atomic' ? tempPathFor(target.real) : target.real;
    this.standard = target.mode === 'through' ? standardStream(target.real) : undefined;
    // The temporary file is created here, synchronously, and the stream opens it without O_CREAT: an interrupt
    // that removes it while the stream's asynchronous open is still in flight leaves that open failing, where
    // opening with 'w' would create the file again after the removal, with nothing left to remove it.
    if (target.mode === 'atomic') closeSync(openSync(this.tempPath, 'w'));
    this.stream = this.standard
      ? this.standard === 1
        ? process.stdout
        : process.stderr
      : streamFactory(this.tempPath, target.mode === 'atomic' ? 'r+' : 'w');
    AtomicFile.live.add(this);
    this.stream.on('error', (error) => {
      this.failure ??= this.ioError(error);
    });
  }

  private ioError(error: unknown): OutputError {
    const removed = this.target.mode === 'atomic' ? '; nothing written' : '';
    return new OutputError(`cannot write ${this.path}: ${describeIoError(error)}${removed}`);
  }

  /** Opens the temp file, turning a missing directory or permission problem into an input error. */
  static async open(path: string, field: string): Promise<AtomicFile> {
    const target = resolveOutput(path, field);
    if (target.mode === 'atomic') removeStaleTempFiles(target.real);
    let file: AtomicFile;
    try {
      file = new AtomicFile(path, target);
    } catch (error) {
      throw new InputError(field, `cannot write ${path}: ${describeIoError(error)}`);
    }
    if (file.standard) return file;
    try {
      await once(file.stream, 'open');
    } catch (error) {
      file.abortSync();
      throw new InputError(field, `cannot write ${path}: ${describeIoError(error)}`);
    }
    return file;
  }

  /**
   * Writes with back-pressure: waits for the OS when the stream's buffer is full. Throws OutputError on failure.
   * `written` is called once the stream is done with `chunk` (handed to the OS, or failed), so that its buffer
   * can be reused: the CSV and Parquet sinks recycle theirs, as freshly allocated memory is slow to touch.
   */
  async write(chunk: string | Uint8Array, written?: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.stream.write(chunk, written && (() => written()))) {
      try {
        await once(this.stream, 'drain');
      } catch (error) {
        throw (this.failure ??= this.ioError(error));
      }
    }
    if (this.failure) throw this.failure;
  }

  /** Waits until every byte written so far is with the OS; throws the stream's failure, if any. */
  async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve, reject) =>
      // A stream that failed earlier answers ERR_STREAM_DESTROYED: name the error that destroyed it.
      this.stream.write('', (error) => (error ? reject((this.failure ??= this.ioError(this.stream.errored ?? error))) : resolve())),
    );
    if (this.failure) throw this.failure;
  }

  async commit(): Promise<void> {
    if (this.failure) throw this.failure;
    this.closed = true;
    if (this.standard) {
      // Flushed, not ended: the process still owns its stdout.
      await new Promise<void>((resolve, reject) => this.stream.write('', (error) => (error ? reject(this.ioError(error)) : resolve())));
      AtomicFile.live.delete(this);
      return;
    }
    this.stream.end();
    try {
      await once(this.stream, 'finish');
    } catch (error) {
      this.failure ??= this.ioError(error);
    }
    if (this.failure) throw this.failure;
    if (this.target.mode === 'atomic') {
      try {
        renameSync(this.tempPath, this.target.real);
      } catch (error) {
        throw (this.failure = this.ioError(error));
      }
    }
    AtomicFile.live.delete(this);
  }

  /**
   * Removes the partial file. Synchronous so that it also runs from a signal handler or at exit, and it never
   * throws: cleanup must not hide the error that caused it.
   */
  abortSync(): void {
    if (!this.closed) {
      this.closed = true;
      if (!this.standard) this.stream.destroy();
    }
    if (this.target.mode === 'atomic') {
      try {
        rmSync(this.tempPath, { force: true });
      } catch {
        // The directory vanished or was never one: there is no file to remove.
      }
    }
    AtomicFile.live.delete(this);
  }
}
