import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Bool,
  Dictionary,
  Field,
  Float32,
  Float64,
  Int32,
  Int8,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import pl from 'nodejs-polars';
import { afterAll, describe, expect, it } from 'vitest';
import { ParquetSink } from '../src/sink/parquet.js';
import { openSink } from '../src/sink/index.js';
import { sweepToFiles } from '../src/sweep.js';

const tempDirs: string[] = [];
function makeTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parasweep-test-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const fields = [
  new Field('ngpus', new Int32(), false),
  new Field('mem_gib', new Float64(), false),
  new Field('mfu', new Float32(), false),
  new Field('fits', new Bool(), false),
  new Field('shard_strategy', new Dictionary(new Utf8(), new Int32(), 0), false),
  new Field('model', new Dictionary(new Utf8(), new Int8(), 1), false),
];
const schema = new Schema(fields);
const strategies = vectorFromArray(['NO_OP', 'OPTIMIZER_STATES', 'FULLY_SHARD'], new Utf8());
const modelName = vectorFromArray(['llama3.1-8b'], new Utf8());

/** Rows start..start+n: ngpus = row, mem = row/4, mfu = row/8 (exact in f32), fits = even rows, strategy = row % 3. */
function batch(start: number, n: number): RecordBatch {
  const bits = new Uint8Array(Math.ceil(n / 8));
  for (let i = 0; i < n; i++) if ((start + i) % 2 === 0) bits[i >> 3] |= 1 << (i & 7);
  const children = [
    makeData({ type: fields[0].type as Int32, length: n, data: Int32Array.from({ length: n }, (_, i) => start + i) }),
    makeData({ type: fields[1].type as Float64, length: n, data: Float64Array.from({ length: n }, (_, i) => (start + i) / 4) }),
    makeData({ type: fields[2].type as Float32, length: n, data: Float32Array.from({ length: n }, (_, i) => (start + i) / 8) }),
    makeData({ type: fields[3].type as Bool, length: n, data: bits }),
    makeData({
      type: fields[4].type as Dictionary,
      length: n,
      data: Int32Array.from({ length: n }, (_, i) => (start + i) % 3),
      dictionary: strategies,
    }),
    makeData({ type: fields[5].type as Dictionary, length: n, data: new Int8Array(n), dictionary: modelName }),
  ];
  return new RecordBatch(schema, makeData({ type: new Struct(fields), length: n, nullCount: 0, children }));
}

describe('ParquetSink', () => {
  it('streams batches into a file that an independent reader (polars) reads back with types and values', async () => {
    const dir = makeTempDir();
    const path = join(dir, 'out.parquet');
    const sink = await openSink(path, schema);
    expect(sink.format).toBe('parquet');
    const sizes = [1000, 1, 70_000, 4096];
    let start = 0;
    for (const n of sizes) {
      await sink.write(batch(start, n));
      start += n;
      expect(existsSync(path)).toBe(false); // only the hidden temp file exists until commit
    }
    await sink.commit();
    expect(readdirSync(dir)).toEqual(['out.parquet']);

    const df = pl.readParquet(path);
    expect(df.height).toBe(start);
    expect(df.columns).toEqual(['ngpus', 'mem_gib', 'mfu', 'fits', 'shard_strategy', 'model']);
    const dtypes = Object.fromEntries(df.columns.map((name, i) => [name, String(df.dtypes[i])]));
    expect(dtypes).toEqual({
      ngpus: 'DataType(Int32)',
      mem_gib: 'DataType(Float64)',
      mfu: 'DataType(Float32)',
      fits: 'DataType(Bool)',
      // The Arrow schema stored in the file keeps dictionary columns categorical.
      shard_strategy: 'DataType(Categorical)',
      model: 'DataType(Categorical)',
    });
    const column = (name: string) => df.getColumn(name).toArray() as unknown[];
    const [ngpus, mem, mfu, fits] = ['ngpus', 'mem_gib', 'mfu', 'fits'].map(column);
    const [strategy, model] = ['shard_strategy', 'model'].map((name) => df.getColumn(name).cast(pl.Utf8).toArray());
    for (const row of [0, 999, 1000, 1001, 50_000, start - 1]) {
      expect(ngpus[row]).toBe(row);
      expect(mem[row]).toBe(row / 4);
      expect(mfu[row]).toBe(row / 8);
      expect(fits[row]).toBe(row % 2 === 0);
      expect(strategy[row]).toBe(['NO_OP', 'OPTIMIZER_STATES', 'FULLY_SHARD'][row % 3]);
      expect(model[row]).toBe('llama3.1-8b');
    }
    const labels = df.getColumn('shard_strategy').cast(pl.Utf8).toArray();
    expect(labels.filter((label) => label === 'FULLY_SHARD').length).toBe(Math.floor((start - 3) / 3) + 1);
  });

  it('writes each full row group to disk before the next batch arrives', async () => {
    const dir = makeTempDir();
    const path = join(dir, 'groups.parquet');
    const sink = await ParquetSink.open(path, schema, 10_000);
    const temp = () => readdirSync(dir).find((name) => name.endsWith('.partial'))!;
    await sink.write(batch(0, 5_000));
    const before = statSync(join(dir, temp())).size;
    for (let start = 5_000; start < 45_000; start += 5_000) await sink.write(batch(start, 5_000));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Four row groups of 10,000 rows are complete: their bytes are in the temp file, not held in memory.
    expect(statSync(join(dir, temp())).size).toBeGreaterThan(before + 4 * 10_000);
    await sink.commit();
    const df = pl.readParquet(path);
    expect(df.height).toBe(45_000);
    expect(df.getColumn('ngpus').toArray().at(-1)).toBe(44_999);
  });

  it('writes a valid, empty file when committed without rows', async () => {
    const path = join(makeTempDir(), 'empty.parquet');
    const sink = await ParquetSink.open(path, schema);
    await sink.commit();
    const df = pl.readParquet(path);
    expect(df.height).toBe(0);
    expect(df.columns).toEqual(schema.fields.map((field) => field.name));
  });

  it('leaves no file, partial or final, after abortSync', async () => {
    const dir = makeTempDir();
    const path = join(dir, 'aborted.parquet');
    const sink = await ParquetSink.open(path, schema);
    await sink.write(batch(0, 10_000));
    await sink.write(batch(10_000, 10_000));
    sink.abortSync();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('holds a real sweep: same rows and columns as the Arrow output', async () => {
    const dir = makeTempDir();
    const parquet = join(dir, 'sweep.parquet');
    const arrow = join(dir, 'sweep.arrow');
    const stats = await sweepToFiles(
      { model: 'llama3.1-8b', engine: 'cpu', search: { ngpus_range: [8] } },
      [parquet, arrow],
    );
    expect(stats.rows).toBeGreaterThan(0);
    const fromParquet = pl.readParquet(parquet);
    const fromArrow = pl.readIPC(readFileSync(arrow));
    expect(fromParquet.height).toBe(stats.rows);
    expect(fromParquet.columns).toEqual(fromArrow.columns);
    for (const name of fromArrow.columns) {
      const a = fromArrow.getColumn(name);
      const p = fromParquet.getColumn(name);
      if (String(a.dtype) === 'DataType(Categorical)') {
        expect(p.cast(pl.Utf8).toArray()).toEqual(a.cast(pl.Utf8).toArray());
      } else {
        expect(String(p.dtype)).toBe(String(a.dtype));
        expect(p.toArray()).toEqual(a.toArray());
      }
    }
  });
});
