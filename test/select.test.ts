/**
 * Filtering and ranking: --where, --fits-only and --top give the same rows on both engines (the GPU filters and
 * ranks before readback), sweep files with several hardware share one output, and `best` answers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { sweep, sweepToFiles, SweepOptions } from '../src/sweep.js';
import { gpuAvailable } from './gpu-support.js';
import { cleanupTempDirs, makeTempDir, REPO_ROOT } from './helpers.js';

const available = await gpuAvailable();

/** The identity of each row: its grid columns, as text. */
async function keys(options: SweepOptions): Promise<string[]> {
  const { table } = await sweep(options);
  const grid = ['hardware', 'ngpus', 'tp', 'pp', 'vpp', 'schedule', 'cp', 'ep', 'etp', 'zero', 'sp', 'recompute', 'offload', 'mbs'];
  return table.toArray().map((row) => grid.map((name) => String(row[name])).join(','));
}

// Offload pinned to none: a third of the 218 k rows, every other dimension still searched.
const base: SweepOptions = { model: 'llama3.1-70b', search: { ngpus_range: [64, 512], offload_range: ['none'] } };

afterAll(cleanupTempDirs);

describe('selection on the CPU engine', () => {
  it('--fits-only keeps exactly the rows whose fits column is true', async () => {
    const all = (await sweep({ ...base, engine: 'cpu' })).table;
    const fitting = (await sweep({ ...base, engine: 'cpu', fitsOnly: true })).table;
    const expected = all.toArray().filter((row) => row.fits).length;
    expect(expected).toBeGreaterThan(0);
    expect(fitting.numRows).toBe(expected);
    expect(fitting.toArray().every((row) => row.fits)).toBe(true);
  });

  it('--where filters on computed, grid and categorical columns', async () => {
    const { table } = await sweep({ ...base, engine: 'cpu', where: "total_gib < 40 and not sp and schedule == 'interleaved'" });
    expect(table.numRows).toBeGreaterThan(0);
    for (const row of table.toArray()) {
      expect(row.total_gib).toBeLessThan(40);
      expect(row.sp).toBe(false);
      expect(row.schedule).toBe('interleaved');
    }
  });

  it('--top K --per ngpus keeps the K best per GPU count, best first, ties to lower memory', async () => {
    const all = (await sweep({ ...base, engine: 'cpu', fitsOnly: true })).table.toArray();
    const { table } = await sweep({ ...base, engine: 'cpu', fitsOnly: true, top: { k: 4, by: 'tokens_per_s', per: 'ngpus' } });
    const rows = table.toArray();
    expect(rows).toHaveLength(8);
    for (const ngpus of [64, 512]) {
      const expected = all
        .filter((row) => row.ngpus === ngpus)
        .sort((a, b) => b.tokens_per_s - a.tokens_per_s || a.total_gib - b.total_gib)
        .slice(0, 4)
        .map((row) => row.tokens_per_s);
      expect(rows.filter((row) => row.ngpus === ngpus).map((row) => row.tokens_per_s)).toEqual(expected);
    }
  });

  it('ranks ascending for times and memory by default', async () => {
    const { table } = await sweep({ ...base, engine: 'cpu', top: { k: 3, by: 'total_gib' } });
    const values = table.toArray().map((row) => row.total_gib);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    const all = (await sweep({ ...base, engine: 'cpu' })).table.toArray().map((row) => row.total_gib);
    expect(values[0]).toBe(all.reduce((a, b) => Math.min(a, b), Infinity));
  });

  it('rejects bad selections with errors that name the flag', async () => {
    await expect(sweep({ ...base, engine: 'cpu', where: 'total_gb < 3' })).rejects.toThrow(/--where: unknown column 'total_gb'.*total_gib/);
    await expect(sweep({ ...base, engine: 'cpu', top: { k: 0, by: 'mfu' } })).rejects.toThrow(InputError);
    await expect(sweep({ ...base, engine: 'cpu', top: { k: 3, by: 'fits' } })).rejects.toThrow(/--by/);
    await expect(sweep({ ...base, engine: 'cpu', top: { k: 3, by: 'mfu', per: 'dp' } })).rejects.toThrow(/--per: 'dp' is derived/);
    await expect(sweep({ model: 'llama3.1-8b', formula: 'poc', engine: 'cpu', fitsOnly: true })).rejects.toThrow(/--fits-only/);
  });
});

describe.runIf(available)('selection agrees between the engines', () => {
  for (const [label, options] of [
    ['--fits-only', { fitsOnly: true }],
    ['--where', { where: 'total_gib < 50 and mfu > 0.3 and tp * pp <= 32' }],
    ['--top per ngpus', { fitsOnly: true, top: { k: 5, by: 'tokens_per_s', per: 'ngpus' } }],
    ['--top by memory', { where: "recompute == 'full'", top: { k: 7, by: 'total_gib' } }],
  ] as const) {
    it(`${label}: the same rows on the GPU as on the CPU`, async () => {
      const cpu = await keys({ ...base, ...options, engine: 'cpu' });
      const gpu = await keys({ ...base, ...options, engine: 'gpu' });
      expect(cpu.length).toBeGreaterThan(0);
      expect(gpu).toEqual(cpu);
    });
  }
});

describe('sweep files and best from the CLI', () => {
  const cli = (args: string[]) => spawnSync('node', ['bin/parasweep.js', ...args], { cwd: REPO_ROOT, encoding: 'utf8' });

  it('a sweep file with two hardware writes one output with both, sharing one dictionary', async () => {
    const dir = makeTempDir();
    const out = join(dir, 'mixtral.arrow');
    // --ep and --etp narrow the file's ranges (81 k rows per hardware instead of 643 k).
    const result = cli(['sweep', '--sweep', 'mixtral-wide', '--engine', 'cpu', '--ngpus', '64', '--seq', '4096', '--ep', '8', '--etp', '1,2', '--top', '2', '--per', 'ngpus', '-o', out, '-q']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const table = tableFromIPC(readFileSync(out));
    const hardware = new Set(table.toArray().map((row) => String(row.hardware)));
    expect(hardware).toEqual(new Set(['h100-sxm-80gb', 'h200-141gb']));
    expect(table.numRows).toBe(4);
  });

  it('best answers for 405B on H100 at 1024 and 8192 GPUs with a breakdown and a Pareto front', () => {
    const dir = makeTempDir();
    const out = join(dir, 'best.csv');
    const result = cli(['best', '--model', 'llama3.1-405b', '--hardware', 'h100-sxm-80gb', '--ngpus', '1024,8192', '--offload', 'none', '--engine', 'cpu', '--out', out]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/on 1024 x h100-sxm-80gb: \d+ configs fit; top 5 by tokens\/s/);
    expect(result.stdout).toMatch(/on 8192 x h100-sxm-80gb/);
    expect(result.stdout).toMatch(/why #1: step [\d.]+ s = compute/);
    expect(result.stdout).toMatch(/Pareto front \(memory per GPU vs step time\), \d+ configs/);
    const csv = readFileSync(out, 'utf8').trim().split('\r\n');
    const header = csv[0].split(',');
    const rows = csv.slice(1).map((line) => line.split(','));
    const [fits, rank, onPareto, ngpus] = ['fits', 'rank', 'on_pareto', 'ngpus'].map((name) => header.indexOf(name));
    expect(rows.every((row) => row[fits] === 'True')).toBe(true);
    // best -o: the top 5 of each GPU count with their rank, then the Pareto rows not ranked (empty rank).
    for (const count of ['1024', '8192']) {
      const group = rows.filter((row) => row[ngpus] === count);
      expect(group.filter((row) => row[rank] !== '').map((row) => row[rank])).toEqual(['1', '2', '3', '4', '5']);
      const front = Number(new RegExp(`on ${count} x [\\s\\S]*?Pareto front \\(memory per GPU vs step time\\), (\\d+) configs`).exec(result.stdout)![1]);
      expect(group.filter((row) => row[onPareto] === 'True')).toHaveLength(front);
      expect(group.filter((row) => row[rank] === '').every((row) => row[onPareto] === 'True')).toBe(true);
    }
  });

  it('Ctrl-C during a long sweep exits 130 and leaves no output and no partial file', async () => {
    const dir = makeTempDir();
    const outputs = ['big.arrow', 'big.csv', 'big.parquet'].map((name) => join(dir, name));
    const child = spawn('node', ['bin/parasweep.js', 'sweep', '--model', 'deepseek-v3', '--engine', 'cpu', ...outputs.flatMap((out) => ['-o', out])], {
      cwd: REPO_ROOT,
    });
    let stderr = '';
    child.stderr.on('data', (data) => (stderr += String(data)));
    // Interrupt once the files are being written (their temporary names exist).
    const deadline = Date.now() + 60_000;
    while (!readdirSync(dir).some((name) => name.endsWith('.partial')) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(readdirSync(dir).some((name) => name.endsWith('.partial'))).toBe(true);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted by SIGINT; no output written/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a filter that keeps nothing still writes a complete file with a header', async () => {
    const dir = makeTempDir();
    const out = join(dir, 'none.csv');
    const stats = await sweepToFiles({ ...base, engine: 'cpu', where: 'total_gib < 0' }, [out]);
    expect(stats.rows).toBe(0);
    expect(stats.evaluated).toBeGreaterThan(0);
    expect(readFileSync(out, 'utf8').split('\r\n')[0]).toMatch(/^model,hardware,ngpus/);
    expect(readdirSync(dir).filter((name) => name.includes('partial'))).toEqual([]);
    expect(existsSync(out)).toBe(true);
  });
});
