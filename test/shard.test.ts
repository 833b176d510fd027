/**
 * Sharding for batch schedulers: `--shard i/n` slices of the grid, balanced by valid configs and cheap to find, and
 * `-o DIR/` Hive-partitioned Parquet datasets that DuckDB and polars read as one table, equal to the unsharded sweep.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Table, tableFromIPC } from 'apache-arrow';
import { DuckDBInstance } from '@duckdb/node-api';
import { readParquet } from 'parquet-wasm';
import pl from 'nodejs-polars';
import { afterAll, describe, expect, it } from 'vitest';
import { GridPlan, GridSpan } from '../src/grid/grid.js';
import { parseShard, prefixCounts, shardSpan } from '../src/grid/shard.js';
import { prepareSweep, SweepOptions } from '../src/sweep.js';
import { hivePathValue } from '../src/sink/dataset.js';
import { cleanupTempDirs, makeTempDir, REPO_ROOT } from './helpers.js';

afterAll(cleanupTempDirs);

/** A grid (or a shard of it) as one Int32Array per column. */
function columnsOf(plan: GridPlan, span?: GridSpan): Int32Array[] {
  const parts: Int32Array[][] = plan.columns.map(() => []);
  for (const chunk of plan.chunks(1 << 14, span)) chunk.columns.forEach((column, c) => parts[c].push(column.slice()));
  return parts.map((chunks) => {
    const out = new Int32Array(chunks.reduce((n, chunk) => n + chunk.length, 0));
    let at = 0;
    for (const chunk of chunks) out.set(chunk, (at += chunk.length) - chunk.length);
    return out;
  });
}

/** Shards concatenated in order, column by column. */
function concatenated(shards: Int32Array[][]): Int32Array[] {
  return shards[0].map((_, c) => {
    const out = new Int32Array(shards.reduce((n, shard) => n + shard[c].length, 0));
    let at = 0;
    for (const shard of shards) out.set(shard[c], (at += shard[c].length) - shard[c].length);
    return out;
  });
}

const sameColumns = (a: Int32Array[], b: Int32Array[]) =>
  a.length === b.length && a.every((column, c) => Buffer.compare(Buffer.from(column.buffer, column.byteOffset, column.byteLength), Buffer.from(b[c].buffer, b[c].byteOffset, b[c].byteLength)) === 0);

/**
 * Mixtral with every EP and expert-TP over 8..32 GPUs: MoE rules prune deep in the tree, unevenly per GPU count.
 * About 0.9 M rows: large enough that the probe budgets below bind, small enough to enumerate a few times.
 */
const MOE: SweepOptions = {
  model: 'mixtral-8x7b',
  search: { ngpus_range: '8..32:8', seq_range: [4096], ep_range: [1, 2, 4, 8], etp_range: [1, 2, 4, 8] },
};

describe('--shard i/n', () => {
  it('parses i/n and refuses anything else in one line naming the flag', () => {
    expect(parseShard('3/16')).toEqual({ index: 3, count: 16 });
    expect(parseShard(' 0 / 1 ')).toEqual({ index: 0, count: 1 });
    for (const bad of ['16/16', '1/0', '-1/4', '1.5/4', 'a/b', '3', '']) expect(() => parseShard(bad), bad).toThrow(/^--shard: /);
  });

  const plan = prepareSweep(MOE).grid;
  const all = columnsOf(plan);
  const total = all[0].length;

  it('shards in order are the unsharded grid, row for row, for every n; each within one prefix of an equal share', () => {
    expect(total).toBeGreaterThan(500_000);
    for (const n of [1, 2, 3, 7, 16]) {
      const shards = Array.from({ length: n }, (_, i) => columnsOf(plan, shardSpan(plan, { index: i, count: n })));
      expect(sameColumns(concatenated(shards), all), `n=${n}`).toBe(true);
      // This grid fits the probe budget to the last level, so the weights are rows and the split is exact to a
      // prefix (at most 16 rows here: the widest last levels).
      const sizes = shards.map((shard) => shard[0].length);
      for (const size of sizes) expect(Math.abs(size - total / n), `n=${n}: ${sizes}`).toBeLessThanOrEqual(16);
    }
  });

  it('with budgets too small for the full depth, still a partition of the grid, and balanced by configs, not GPU counts', () => {
    const budgets = { prefixes: 2000, walk: 20_000 };
    const counts = prefixCounts(plan, budgets.walk);
    expect(counts.length - 1, 'probe depth').toBeLessThan(plan.levels.length);
    const n = 4;
    const shards = Array.from({ length: n }, (_, i) => columnsOf(plan, shardSpan(plan, { index: i, count: n }, budgets)));
    expect(sameColumns(concatenated(shards), all)).toBe(true);
    // An equal split of GPU counts (one of the four to each shard) leaves shards far apart in rows; the weighted split
    // stays much closer to an equal share.
    const ngpus = all[plan.columnIndex('ngpus')];
    const gpuCounts = [...new Set(ngpus)];
    const byGpus = Array.from({ length: n }, (_, i) => {
      const mine = new Set(gpuCounts.slice((i * gpuCounts.length) / n, ((i + 1) * gpuCounts.length) / n));
      return ngpus.filter((value) => mine.has(value)).length;
    });
    const spread = (sizes: number[]) => (Math.max(...sizes) - Math.min(...sizes)) / (total / n);
    const sizes = shards.map((shard) => shard[0].length);
    expect(spread(sizes), `weighted ${sizes} vs by GPU count ${byGpus}`).toBeLessThan(spread(byGpus) / 2);
  });

  it('a shard expands only its own sub-trees: the last level is tested for about its share of the rows', () => {
    const prepared = prepareSweep(MOE);
    const levels = prepared.grid.levels;
    let tested = 0;
    const last = levels[levels.length - 1];
    const counting = new GridPlan(prepared.grid.columns, [
      ...levels.slice(0, -1),
      { ...last, accept: (row) => (tested++, last.accept ? last.accept(row) : true) },
    ]);
    const n = 8;
    // Finding the span walks the last level only until it passes the walk budget (then probes one level higher).
    const span = shardSpan(counting, { index: 5, count: n }, { prefixes: 5000, walk: 50_000 });
    expect(tested).toBeLessThanOrEqual(50_001);
    expect(total).toBeGreaterThan(10 * 50_001);
    tested = 0;
    // The last level (offload) rejects nothing, so it is tested once per row walked: exactly the shard's rows.
    const rows = columnsOf(counting, span)[0].length;
    expect(rows).toBeGreaterThan(total / (2 * n));
    expect(tested).toBe(rows);
  });
});

function cli(args: string[]) {
  return spawnSync('node', [join(REPO_ROOT, 'bin/parasweep.js'), ...args], { encoding: 'utf8' });
}

/** Runs a CLI command as a separate process, as a job array would. */
function cliAsync(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [join(REPO_ROOT, 'bin/parasweep.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (bytes) => (stderr += bytes));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

function readParquetFile(path: string): Table {
  // intoIPCStream hands the rows over and frees the WebAssembly table.
  return tableFromIPC(readParquet(readFileSync(path)).intoIPCStream());
}

describe('-o DIR/: a Hive-partitioned Parquet dataset from n shards run as separate processes', () => {
  const SWEEP = ['sweep', '-m', 'llama3.1-8b', '--ngpus', '8..16:8', '--engine', 'cpu', '-q'];
  const N = 3;

  it('their union is the unsharded sweep row for row, and DuckDB reads the dataset as one table', async () => {
    const dir = makeTempDir();
    const dataset = join(dir, 'dataset') + '/';
    const whole = join(dir, 'whole.parquet');
    const results = await Promise.all([
      cliAsync([...SWEEP, '-o', whole]),
      ...Array.from({ length: N }, (_, i) => cliAsync([...SWEEP, '--shard', `${i}/${N}`, '-o', dataset])),
    ]);
    for (const result of results) expect(result.stderr).toBe('');
    for (const result of results) expect(result.status).toBe(0);

    const partition = join(dataset, `model=${hivePathValue('LLaMA-3.1 8B')}`, 'hardware=h100-sxm-80gb');
    expect(readdirSync(partition).sort()).toEqual(Array.from({ length: N }, (_, i) => `part-${i}.parquet`));
    const reference = readParquetFile(whole);
    const parts = Array.from({ length: N }, (_, i) => readParquetFile(join(partition, `part-${i}.parquet`)));
    // The partition columns live in the directory names only.
    const fileColumns = parts[0].schema.fields.map((field) => field.name);
    expect(fileColumns).not.toContain('model');
    expect(fileColumns).not.toContain('hardware');
    expect(fileColumns).toEqual(reference.schema.fields.map((field) => field.name).filter((name) => name !== 'model' && name !== 'hardware'));
    expect(parts.reduce((sum, part) => sum + part.numRows, 0)).toBe(reference.numRows);
    for (const name of fileColumns) {
      const expected = reference.getChild(name)!.toArray();
      const got = parts.flatMap((part) => Array.from(part.getChild(name)!.toArray() as ArrayLike<unknown>));
      // Row for row, value for value (f32 values compare exactly: both went through Float32).
      expect(got.length, name).toBe(expected.length);
      let first = -1;
      for (let i = 0; i < got.length && first < 0; i++) if (got[i] !== expected[i]) first = i;
      expect(first, `${name}: first differing row`).toBe(-1);
    }
    for (const part of parts) expect(part.schema.metadata.get('parasweep.shard')).toMatch(new RegExp(`^\\d/${N}$`));

    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    const query = async (sql: string) => (await connection.runAndReadAll(sql)).getRowObjectsJson();
    const glob = `read_parquet('${dataset}**/*.parquet', hive_partitioning = true)`;
    expect(await query(`SELECT model, hardware, count(*)::INTEGER AS n FROM ${glob} GROUP BY ALL`)).toEqual([
      { model: 'LLaMA-3.1 8B', hardware: 'h100-sxm-80gb', n: reference.numRows },
    ]);
    // As a table, the dataset and the unsharded file hold the same multiset of rows, all columns compared.
    const columns = reference.schema.fields.map((field) => `"${field.name}"`).join(', ');
    const minus = async (a: string, b: string) => (await query(`SELECT count(*)::INTEGER AS n FROM (SELECT ${columns} FROM ${a} EXCEPT ALL SELECT ${columns} FROM ${b})`))[0].n;
    expect(await minus(glob, `'${whole}'`)).toBe(0);
    expect(await minus(`'${whole}'`, glob)).toBe(0);

    // polars too, through its Hive partitioning (the directory names decoded back to the model's name).
    const frame = pl.scanParquet(`${dataset}**/*.parquet`, { hivePartitioning: true }).collectSync();
    expect(frame.height).toBe(reference.numRows);
    expect(frame.getColumn('model').unique().toArray()).toEqual(['LLaMA-3.1 8B']);

    // --top across shards: the documented query (docs/sharding.md) over the dataset gives what it gives over the
    // unsharded sweep.
    const top = (source: string) =>
      query(
        `SELECT ngpus, tp, pp, cp, mbs, zero, recompute, tokens_per_s FROM ${source} WHERE fits ` +
          `QUALIFY row_number() OVER (PARTITION BY ngpus ORDER BY tokens_per_s DESC, tp, pp, cp, mbs, zero, recompute, sp, offload) <= 3 ORDER BY ngpus, tokens_per_s DESC`,
      );
    const fromDataset = await top(glob);
    expect(fromDataset.length).toBeGreaterThan(0);
    expect(fromDataset).toEqual(await top(`'${whole}'`));
    connection.closeSync();
  }, 120_000);

  it('an existing directory given without a slash is a dataset too; unsharded files are part-0', () => {
    const dir = makeTempDir();
    const result = cli(['sweep', '-m', 'llama3.1-8b', '--ngpus', '8', '--engine', 'cpu', '-q', '-o', dir]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const part = join(dir, 'model=LLaMA-3.1%208B', 'hardware=h100-sxm-80gb', 'part-0.parquet');
    const table = readParquetFile(part);
    expect(table.numRows).toBe(prepareSweep({ model: 'llama3.1-8b', search: { ngpus_range: [8] } }).grid.count());
    expect(table.schema.metadata.get('parasweep.shard')).toBeUndefined();
  });

  it('a shard with no rows writes no file and succeeds; a bad --shard is refused before anything is written', () => {
    const dir = makeTempDir();
    const dataset = join(dir, 'ds') + '/';
    const tiny = ['sweep', '-m', 'llama3.1-8b', '--ngpus', '8', '--tp', '8', '--pp', '1', '--cp', '1', '--engine', 'cpu', '-q', '-o', dataset];
    const rows = prepareSweep({ model: 'llama3.1-8b', search: { ngpus_range: [8], tp_range: [8], pp_range: [1], cp_range: [1] } }).grid.count();
    const n = rows + 2;
    const last = cli([...tiny, '--shard', `${n - 1}/${n}`]);
    expect(last.stderr).toBe('');
    expect(last.status).toBe(0);
    expect(existsSync(join(dataset, 'model=LLaMA-3.1%208B'))).toBe(false);

    const bad = cli([...tiny.slice(0, -1), join(dir, 'other') + '/', '--shard', '4/4']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--shard/);
    expect(existsSync(join(dir, 'other'))).toBe(false);
  });
});
