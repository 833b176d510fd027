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
  Int64,
  Int8,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
  type DataType as DataTypeLike,
} from 'apache-arrow';
import { DuckDBInstance } from '@duckdb/node-api';
import pl from 'nodejs-polars';
import { afterAll, describe, expect, it } from 'vitest';
import { ParquetSink, WasmParquetSink } from '../src/sink/parquet.js';
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

  it("reads back as arrow-rs's writer's output does: values, nulls, types, NaN and signed zeros, statistics", async () => {
    const n = 300_000;
    const nullableFields = [
      new Field('i32', new Int32(), true),
      new Field('i64', new Int64(), true),
      new Field('f32', new Float32(), true),
      new Field('f64', new Float64(), false),
      new Field('flag', new Bool(), true),
      new Field('label', new Dictionary(new Utf8(), new Int32(), 2), true),
      new Field('constant', new Int32(), false),
    ];
    const nullableSchema = new Schema(nullableFields);
    const labels = vectorFromArray(['b', 'a,"quoted"', 'ü'], new Utf8());
    const specials = [NaN, -0, 0, Infinity, -Infinity];
    const make = (start: number, length: number): RecordBatch => {
      const valid = new Uint8Array(Math.ceil(length / 8));
      let nulls = 0;
      for (let i = 0; i < length; i++) {
        if ((start + i) % 7 !== 3) valid[i >> 3] |= 1 << (i & 7);
        else nulls++;
      }
      const bits = new Uint8Array(Math.ceil(length / 8));
      for (let i = 0; i < length; i++) if ((start + i) % 3 === 0) bits[i >> 3] |= 1 << (i & 7);
      const row = (i: number) => start + i;
      const data = (type: DataTypeLike, values: unknown, nullable = true) =>
        makeData({ type, length, data: values, ...(nullable ? { nullBitmap: valid, nullCount: nulls } : {}) } as never);
      const children = [
        // Few distinct values (dictionary-encoded) and many (PLAIN), negative ones included.
        data(nullableFields[0].type, Int32Array.from({ length }, (_, i) => (row(i) % 11) - 5)),
        data(nullableFields[1].type, BigInt64Array.from({ length }, (_, i) => (BigInt(row(i)) << 33n) - 7n)),
        data(nullableFields[2].type, Float32Array.from({ length }, (_, i) => (row(i) < 5 ? specials[row(i)] : row(i) * 0.37))),
        data(nullableFields[3].type, Float64Array.from({ length }, (_, i) => (row(i) % 5 === 0 ? -0 : row(i) % 13) / 3), false),
        data(nullableFields[4].type, bits),
        makeData({ type: nullableFields[5].type as Dictionary, length, data: Int32Array.from({ length }, (_, i) => row(i) % 3), dictionary: labels, nullBitmap: valid, nullCount: nulls }),
        data(nullableFields[6].type, new Int32Array(length).fill(42), false),
      ];
      return new RecordBatch(nullableSchema, makeData({ type: new Struct(nullableFields), length, nullCount: 0, children }));
    };
    const dir = makeTempDir();
    const ours = join(dir, 'ours.parquet');
    const theirs = join(dir, 'theirs.parquet');
    for (const [open, path] of [[ParquetSink.open, ours], [WasmParquetSink.open, theirs]] as const) {
      const sink = await open(path, nullableSchema, 100_000);
      for (let start = 0; start < n; start += 30_000) await sink.write(make(start, Math.min(30_000, n - start)));
      await sink.commit();
    }
    const a = pl.readParquet(ours);
    const b = pl.readParquet(theirs);
    expect(a.height).toBe(n);
    expect(a.dtypes.map(String)).toEqual(b.dtypes.map(String));
    for (const name of b.columns) {
      const cast = (frame: pl.DataFrame) => (name === 'label' ? frame.getColumn(name).cast(pl.Utf8) : frame.getColumn(name)).toArray();
      expect(cast(a), name).toEqual(cast(b));
    }
    // Per-row-group min/max and null counts, as DuckDB reads them (NaN left out, zero bounds signed).
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    const stats = async (path: string) =>
      (await connection.runAndReadAll(`select row_group_id, path_in_schema, stats_min_value, stats_max_value, stats_null_count from parquet_metadata('${path}') order by all`)).getRowObjectsJson();
    expect(await stats(ours)).toEqual(await stats(theirs));
  });
});
