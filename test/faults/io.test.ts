/**
 * Fault injection, outputs: a disk that fills up (injected in-process, and a real tmpfs where we may mount one),
 * outputs named twice or unwritable (found before evaluating), special files and symlinks written through, and
 * temporary files of killed runs removed by the next run to the same output.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OutputError } from '../../src/errors.js';
import { AtomicFile, removeStaleTempFiles, setStreamFactory, StreamFactory, tempPathFor } from '../../src/sink/atomic.js';
import { prepareSweep, sweepToFiles } from '../../src/sweep.js';
import { cleanupTempDirs, makeTempDir, REPO_ROOT } from '../helpers.js';
import { BIN, canMountTmpfs, entries, expectOneLine, parasweep } from './support.js';

afterAll(cleanupTempDirs);

/** A real file stream whose writes fail with `code` once `budget` bytes have gone through: a disk filling up. */
function failingAfter(budget: number, code: string): StreamFactory {
  return (path, flags) => {
    const stream = createWriteStream(path, { flags });
    const write = stream._write.bind(stream);
    let left = budget;
    // Every write goes through _write, one chunk at a time.
    Object.assign(stream, { _writev: undefined });
    stream._write = (chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void) => {
      left -= chunk.length;
      if (left < 0) {
        callback(Object.assign(new Error(`${code}: injected, write`), { code, errno: -28, syscall: 'write' }));
        return;
      }
      write(chunk, encoding, callback);
    };
    return stream;
  };
}

const SMALL = { model: 'llama3.1-8b', search: { ngpus_range: '8,16' }, engine: 'cpu' as const };

describe('a full disk (ENOSPC injected into the write stream)', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(() => process.on('unhandledRejection', onUnhandled));
  afterAll(() => process.off('unhandledRejection', onUnhandled));
  afterEach(() => setStreamFactory(undefined));

  for (const extension of ['arrow', 'arrows', 'csv', 'parquet']) {
    for (const budget of [0, 4096, 65_536]) {
      it(`.${extension} after ${budget} bytes: OutputError naming ENOSPC, no file left, nothing unhandled`, async () => {
        const dir = makeTempDir();
        const out = join(dir, `x.${extension}`);
        setStreamFactory(failingAfter(budget, 'ENOSPC'));
        const error = await sweepToFiles(SMALL, [out]).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(OutputError);
        expect((error as Error).message).toMatch(/^cannot write .*x\.\w+: no space left on device \(ENOSPC\)/);
        expect((error as Error).message).not.toContain('\n');
        expect(entries(dir)).toEqual([]);
        // A rejection nobody awaited surfaces a turn later.
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(unhandled).toEqual([]);
      });
    }
  }

  it('EIO on one of two outputs removes both', async () => {
    const dir = makeTempDir();
    let opened = 0;
    const failing = failingAfter(10_000, 'EIO');
    setStreamFactory((path, flags) => (opened++ === 1 ? failing(path, flags) : createWriteStream(path, { flags })));
    const error = await sweepToFiles(SMALL, [join(dir, 'a.arrow'), join(dir, 'b.csv')]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OutputError);
    expect((error as Error).message).toMatch(/input\/output error \(EIO\)/);
    expect(entries(dir)).toEqual([]);
  });
});

describe('a real full tmpfs (root with unshare only)', () => {
  const mountable = canMountTmpfs();
  it.skipIf(!mountable)('exit 1 with one line and an empty disk, for every format; a read-only mount is refused before evaluating', () => {
    const dir = makeTempDir();
    const ro = makeTempDir();
    // 57 k rows: every format outgrows the 256 KiB disk.
    const sweep = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} sweep --model llama3.1-8b --ngpus 8..16:8 --engine cpu -q`;
    const script = [
      `mount -t tmpfs -o size=256k tmpfs ${dir}`,
      `mount -t tmpfs -o ro,size=1m tmpfs ${ro}`,
      ...['arrow', 'arrows', 'csv', 'parquet'].map((ext) => `${sweep} -o ${dir}/x.${ext} 2>>${dir}.err; echo "rc=$?"; ls -A ${dir}`),
      `${sweep} -o ${ro}/x.arrow 2>>${dir}.err; echo "ro=$?"`,
    ].join('\n');
    const result = spawnSync('unshare', ['-m', 'sh', '-c', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 180_000 });
    const lines = result.stdout.trim().split('\n');
    expect(lines, result.stderr).toEqual(['rc=1', 'rc=1', 'rc=1', 'rc=1', 'ro=2']);
    const errors = readFileSync(`${dir}.err`, 'utf8').trim().split('\n');
    expect(errors).toHaveLength(5);
    for (const line of errors.slice(0, 4)) expect(line).toMatch(/^parasweep: cannot write .*: no space left on device \(ENOSPC\); nothing written$/);
    expect(errors[4]).toMatch(/^parasweep: --out: cannot write .*x\.arrow: read-only file system \(EROFS\)$/);
  });
});

describe('outputs checked before anything is evaluated', () => {
  it('the same file named twice, by two spellings or through a symlink', () => {
    const dir = makeTempDir();
    expectOneLine(parasweep(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '-q', '-o', 'a.arrow', '-o', './a.arrow'], { cwd: dir }), 2, /--out: \.\/a\.arrow is named twice \(as a\.arrow and \.\/a\.arrow\)/);
    symlinkSync('real.csv', join(dir, 'link.csv'));
    expectOneLine(parasweep(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '-q', '--csv', 'real.csv', '-o', 'link.csv'], { cwd: dir }), 2, /named twice/);
    expect(entries(dir)).toEqual(['link.csv']);
  });

  const cases: Array<{ what: string; setup: (dir: string) => string; message: RegExp }> = [
    { what: 'a directory', setup: (dir) => (mkdirSync(join(dir, 'd.arrow')), 'd.arrow'), message: /cannot write d\.arrow: it is a directory/ },
    { what: 'a parent that is a file', setup: (dir) => (writeFileSync(join(dir, 'f'), ''), 'f/x.arrow'), message: /cannot write f\/x\.arrow: a parent is not a directory \(ENOTDIR\)/ },
    { what: 'a missing directory', setup: () => 'nowhere/x.csv', message: /directory nowhere does not exist/ },
    { what: 'a name over 255 bytes', setup: () => `${'x'.repeat(256)}.arrow`, message: /^parasweep: --out: cannot write x+\.arrow: file name too long \(ENAMETOOLONG\)$/ },
  ];
  for (const { what, setup, message } of cases) {
    it(`${what}: exit 2 at once, nothing created`, () => {
      const dir = makeTempDir();
      const out = setup(dir);
      const before = entries(dir);
      // The 10.7M-row sweep would take minutes: refusing in well under that proves nothing was evaluated.
      const started = Date.now();
      const run = parasweep(['sweep', '--model', 'llama3.1-405b', '--ngpus', '1..10240', '--gbs', '1024..4096:64', '--engine', 'cpu', '-q', '-o', out], { cwd: dir });
      expectOneLine(run, 2, message);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(entries(dir)).toEqual(before);
    });
  }

  it('a temp name past NAME_MAX is hashed, so a long but legal name still works', () => {
    const long = `/tmp/${'y'.repeat(250)}.csv`;
    expect(tempPathFor(long).length).toBeLessThan(long.length);
    const dir = makeTempDir();
    const name = `${'z'.repeat(240)}.csv`;
    const run = parasweep(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--engine', 'cpu', '-q', '-o', name], { cwd: dir });
    expect(run.stderr).toBe('');
    expect(entries(dir)).toEqual([name]);
  });
});

describe('special files and symlinks are written through, not replaced', () => {
  // Rows of the sweep the tests below write: the valid configs of llama3.1-8b on 8 GPUs.
  const rowsAt8 = () => prepareSweep({ model: 'llama3.1-8b', search: { ngpus_range: '8' } }).grid.count();

  it('--csv /dev/stdout streams CSV to the pipe', () => {
    const run = parasweep(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--engine', 'cpu', '-q', '--csv', '/dev/stdout']);
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\r\n');
    expect(lines[0]).toMatch(/^model,hardware,ngpus,/);
    expect(lines.length).toBe(1 + rowsAt8());
  });

  it('-o /dev/stdout without a format is refused in one line', () => {
    expectOneLine(parasweep(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '-q', '-o', '/dev/stdout']), 2, /cannot tell the format of \/dev\/stdout/);
  });

  it('a named pipe stays a pipe and its reader gets every row', () => {
    const dir = makeTempDir();
    const fifo = join(dir, 'rows.csv');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const script = `cat ${fifo} > ${dir}/copy & ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} sweep --model llama3.1-8b --ngpus 8 --engine cpu -q -o ${fifo}; rc=$?; wait; echo $rc`;
    const result = spawnSync('sh', ['-c', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(result.stdout.trim(), result.stderr).toBe('0');
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readFileSync(join(dir, 'copy'), 'utf8').trim().split('\r\n')).toHaveLength(1 + rowsAt8());
    expect(entries(dir)).toEqual(['copy', 'rows.csv']);
  });

  it('a symlink stays a symlink and its target gets the file', () => {
    const dir = makeTempDir();
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'real.csv'), 'old');
    symlinkSync('data/real.csv', join(dir, 'link.csv'));
    symlinkSync('data/new.arrow', join(dir, 'dangling.arrow'));
    const run = parasweep(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--engine', 'cpu', '-q', '-o', 'link.csv', '-o', 'dangling.arrow'], { cwd: dir });
    expect(run.status, run.stderr).toBe(0);
    expect(lstatSync(join(dir, 'link.csv')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(dir, 'dangling.arrow')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dir, 'data', 'real.csv'), 'utf8')).toMatch(/^model,hardware/);
    expect(entries(join(dir, 'data'))).toEqual(['new.arrow', 'real.csv']);
  });
});

describe('cleanup', () => {
  it('abortSync never throws, even when the directory vanished or became a file', async () => {
    const dir = makeTempDir();
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const file = await AtomicFile.open(join(sub, 'x.csv'), '--out');
    await file.write('partial');
    rmSync(sub, { recursive: true, force: true });
    writeFileSync(sub, 'now a file');
    expect(() => file.abortSync()).not.toThrow();
    expect(() => AtomicFile.abortAll()).not.toThrow();
    expect(entries(dir)).toEqual(['sub']);
  });

  it('an abort while the stream is still opening leaves nothing: the open in flight does not create the file again', async () => {
    const dir = makeTempDir();
    // Aborted in the same tick as it is created, before the stream's asynchronous open has come back.
    const file = new AtomicFile(join(dir, 'x.arrow'));
    file.abortSync();
    await new Promise((resolve) => file.stream.once('close', resolve));
    expect(entries(dir)).toEqual([]);
  });
});

describe('temporary files of killed runs', () => {
  it('a later run to the same output removes those of dead processes and keeps those of live ones', () => {
    const dir = makeTempDir();
    const out = join(dir, 'x.csv');
    // pid_max is at most 2^22 on Linux: this pid cannot exist.
    const dead = tempPathFor(out, 2 ** 22 + 7);
    const live = tempPathFor(out, process.pid);
    const other = join(dir, '.y.csv.4194311.partial');
    for (const path of [dead, live, other]) writeFileSync(path, 'partial');
    expect(removeStaleTempFiles(out)).toEqual([dead]);
    writeFileSync(dead, 'partial');
    const run = parasweep(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--engine', 'cpu', '-q', '-o', out]);
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(other)).toBe(true);
    expect(existsSync(out)).toBe(true);
  });
});
