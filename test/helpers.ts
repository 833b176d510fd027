/** Shared helpers for the test suite (not a test file itself). */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'poc');

/** The PoC's four model files, as shipped with the PoC. */
export const POC_YAMLS = ['Grok1.yaml', 'llama3.1-8b.yaml', 'llama3.1-70b.yaml', 'llama3.1-405b.yaml'] as const;

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/** The PoC's CSV output for a fixture, gunzipped, as text (`\r\n` line ends). */
export function fixtureCsv(name: string): string {
  return gunzipSync(readFileSync(fixture(name))).toString('utf8');
}

const tempDirs: string[] = [];

/** A fresh, empty directory under the OS temp dir; removed by `cleanupTempDirs`. */
export function makeTempDir(prefix = 'parasweep-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function cleanupTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Writes `text` to a new YAML file in a temp dir and returns its path. */
export function writeTempYaml(text: string, name = 'model.yaml'): string {
  const path = join(makeTempDir(), name);
  writeFileSync(path, text);
  return path;
}

/** Every entry of `dir`, hidden ones included (so a leftover `.x.csv.123.partial` shows up). */
export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** A small valid model file in the PoC's schema, to be edited by the error tests. */
export const SMALL_MODEL_YAML = `model:
  name: "Tiny"
  global_batch_size: 64
  micro_batch_size: 1
  vocab_size: 32000
  num_layers: 8
  hidden_size: 1024
  num_attention_heads: 16
  num_key_value_heads: 4
  ffn_hidden_size: 4096
  seq_length: 2048
  activation: "swiglu"
trainer:
  data_parallel_sharding_strategy: "OPTIMIZER_STATES"
  param_dtype: "float16"
  grad_dtype: "float32"
`;

/** Parses one CSV line as Python's csv module writes it (QUOTE_MINIMAL). */
export function parseCsvLine(line: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let cell = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error(`unterminated quote in ${line}`);
        cell += line.slice(i, q);
        if (line[q + 1] === '"') {
          cell += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      cells.push(cell);
    } else {
      const comma = line.indexOf(',', i);
      cells.push(line.slice(i, comma < 0 ? line.length : comma));
      i = comma < 0 ? line.length : comma;
    }
    if (i >= line.length) break;
    if (line[i] !== ',') throw new Error(`expected a comma at ${i} in ${line}`);
    i++;
  }
  return cells;
}

/** Splits CSV text with `\r\n` line ends into a header and rows; fails on a bare `\n` or a missing final `\r\n`. */
export function parseCsv(text: string): { header: string[]; rows: string[][] } {
  expect(text.endsWith('\r\n')).toBe(true);
  const lines = text.slice(0, -2).split('\r\n');
  for (const line of lines) expect(line.includes('\n')).toBe(false);
  const [header, ...rows] = lines.map(parseCsvLine);
  return { header, rows };
}

/** Relative difference, safe at zero. */
export function relativeDifference(a: number, b: number): number {
  if (a === b) return 0;
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
}

/** Columns of the PoC CSV that hold text, not numbers. */
export const POC_STRING_COLUMNS = new Set(['name', 'data_parallel_sharding_strategy']);

/**
 * Compares two PoC-style CSVs row by row: same header, same row count, string cells equal, numeric cells equal
 * within `rtol` relative. Reports the first mismatch with its row and column.
 */
export function expectCsvClose(actualText: string, expectedText: string, rtol = 1e-9): void {
  const actual = parseCsv(actualText);
  const expected = parseCsv(expectedText);
  expect(actual.header).toEqual(expected.header);
  expect(actual.rows.length).toBe(expected.rows.length);
  const mismatches: string[] = [];
  for (let r = 0; r < expected.rows.length && mismatches.length < 10; r++) {
    const a = actual.rows[r];
    const e = expected.rows[r];
    if (a.length !== e.length) {
      mismatches.push(`row ${r + 1}: ${a.length} cells, expected ${e.length}`);
      continue;
    }
    for (let c = 0; c < e.length; c++) {
      const column = expected.header[c];
      if (POC_STRING_COLUMNS.has(column)) {
        if (a[c] !== e[c]) mismatches.push(`row ${r + 1} ${column}: ${a[c]} != ${e[c]}`);
        continue;
      }
      const x = Number(a[c]);
      const y = Number(e[c]);
      if (a[c] === '' || Number.isNaN(x) || Number.isNaN(y) || relativeDifference(x, y) > rtol) {
        mismatches.push(`row ${r + 1} ${column}: ${a[c]} != ${e[c]}`);
      }
    }
  }
  expect(mismatches).toEqual([]);
}
