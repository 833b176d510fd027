/**
 * The CSV sink prints each distinct value of a column once and reuses the text: the output must be exactly what
 * printing every cell would give, whatever the values (signed zeros, NaN, infinities, more distinct values than
 * the memo holds, 64-bit integers that differ only in their high word, nulls).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Field, Float32, Float64, Int32, Int64, makeData, RecordBatch, Schema, Struct } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { CsvSink } from '../src/sink/csv.js';
import { pyFloatRepr } from '../src/sink/pyrepr.js';
import { cleanupTempDirs, makeTempDir } from './helpers.js';

afterAll(cleanupTempDirs);

describe('CSV values printed once per distinct bits', () => {
  it('equals printing every cell, across batches and past the memo size', async () => {
    const n = 150_000;
    const specials = [0, -0, NaN, Infinity, -Infinity, 1e-5, -2.5e-7, 1e16, 512, 0.1];
    const f32 = new Float32Array(n);
    const f64 = new Float64Array(n);
    const i64 = new BigInt64Array(n);
    const i32 = new Int32Array(n);
    const valid = new Uint8Array(Math.ceil(n / 8));
    for (let i = 0; i < n; i++) {
      // Specials first, then a run of distinct values (beyond the memo's 65,536), then repeats.
      const distinct = i < specials.length ? specials[i] : i < 100_000 ? i * 1.000001 + 0.3 : (i % 97) * 0.25;
      f32[i] = distinct;
      f64[i] = i < specials.length ? distinct : distinct / 3;
      // Same low word, different high words: the memo must key on both.
      i64[i] = (BigInt(i % 5) << 32n) + 7n;
      i32[i] = i % 1000 - 500;
      if (i % 3 !== 0) valid[i >> 3] |= 1 << (i & 7);
    }
    const fields = [
      new Field('f32', new Float32()),
      new Field('f64', new Float64()),
      new Field('i64', new Int64()),
      new Field('i32', new Int32(), true),
    ];
    const schema = new Schema(fields);
    const nulls = n - valid.reduce((count, byte) => count + [...byte.toString(2)].filter((bit) => bit === '1').length, 0);
    const batch = (start: number, end: number) => {
      const length = end - start;
      const slice = <T extends { subarray(a: number, b: number): T }>(array: T) => array.subarray(start, end);
      // Bitmaps cannot be sliced at arbitrary rows: each batch gets its own.
      const bits = new Uint8Array(Math.ceil(length / 8));
      let nullCount = 0;
      for (let r = 0; r < length; r++) {
        const i = start + r;
        if (valid[i >> 3] & (1 << (i & 7))) bits[r >> 3] |= 1 << (r & 7);
        else nullCount++;
      }
      const children = [
        makeData({ type: fields[0].type, length, data: slice(f32) }),
        makeData({ type: fields[1].type, length, data: slice(f64) }),
        makeData({ type: fields[2].type, length, data: slice(i64) }),
        makeData({ type: fields[3].type, length, data: slice(i32), nullBitmap: bits, nullCount }),
      ];
      return new RecordBatch(schema, makeData({ type: new Struct(fields), length, nullCount: 0, children }));
    };
    const path = join(makeTempDir(), 'memo.csv');
    const sink = await CsvSink.open(path, schema);
    for (let start = 0; start < n; start += 40_000) await sink.write(batch(start, Math.min(n, start + 40_000)));
    await sink.commit();

    const lines = readFileSync(path, 'utf8').split('\r\n');
    expect(lines[0]).toBe('f32,f64,i64,i32');
    expect(lines.length).toBe(n + 2);
    expect(nulls).toBeGreaterThan(0);
    const bad: string[] = [];
    for (let i = 0; i < n && bad.length < 5; i++) {
      const isValid = (valid[i >> 3] >> (i & 7)) & 1;
      const expected = `${pyFloatRepr(f32[i])},${pyFloatRepr(f64[i])},${String(i64[i])},${isValid ? String(i32[i]) : ''}`;
      if (lines[i + 1] !== expected) bad.push(`row ${i}: ${lines[i + 1]} != ${expected}`);
    }
    expect(bad).toEqual([]);
    expect(lines.slice(1, 3)).toEqual(['0.0,0.0,7,', '-0.0,-0.0,4294967303,-499']);
    expect(lines[3].startsWith('nan,nan,')).toBe(true);
  });
});
