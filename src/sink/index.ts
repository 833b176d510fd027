import { extname } from 'node:path';
import { makeData, RecordBatch, Schema, Struct, vectorFromArray } from 'apache-arrow';
import { InputError } from '../errors.js';
import { ArrowSink } from './arrow.js';
import { CsvSink } from './csv.js';
import { ParquetSink } from './parquet.js';
import { STDOUT_PATH, StdoutSink } from './stdout.js';
import type { Sink } from './types.js';

export type { Sink } from './types.js';

const FORMATS: Record<string, (path: string, schema: Schema) => Promise<Sink>> = {
  '.arrow': (path, schema) => ArrowSink.open(path, schema),
  '.feather': (path, schema) => ArrowSink.open(path, schema),
  '.ipc': (path, schema) => ArrowSink.open(path, schema),
  '.arrows': (path, schema) => ArrowSink.open(path, schema, true),
  '.csv': (path, schema) => CsvSink.open(path, schema),
  '.parquet': (path, schema) => ParquetSink.open(path, schema),
};

export const OUTPUT_EXTENSIONS = Object.keys(FORMATS);

/** Checks output paths before any work starts: known extension, no duplicates. */
export function checkOutputPaths(paths: string[], field = '--out'): void {
  const seen = new Set<string>();
  for (const path of paths) {
    if (path === STDOUT_PATH) {
      if (seen.has(path)) throw new InputError(field, 'standard output (-) is named twice');
      seen.add(path);
      continue;
    }
    if (!FORMATS[extname(path).toLowerCase()]) {
      throw new InputError(field, `cannot tell the format of ${path}: use one of ${OUTPUT_EXTENSIONS.join(', ')}, or - for stdout`);
    }
    if (seen.has(path)) throw new InputError(field, `${path} is named twice`);
    seen.add(path);
  }
}

export async function openSink(path: string, schema: Schema): Promise<Sink> {
  if (path === STDOUT_PATH) return new StdoutSink(schema);
  return FORMATS[extname(path).toLowerCase()](path, schema);
}

/** Writes rows (as column-name → value records) with `schema` to every path, atomically. */
export async function writeRows(schema: Schema, rows: Array<Record<string, unknown>>, paths: string[]): Promise<void> {
  const children = schema.fields.map((field) => vectorFromArray(rows.map((row) => row[field.name]), field.type).data[0]);
  const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children }));
  const sinks: Sink[] = [];
  try {
    for (const path of paths) sinks.push(await openSink(path, schema));
    for (const sink of sinks) await sink.write(batch);
    for (const sink of sinks) await sink.commit();
  } catch (error) {
    for (const sink of sinks) sink.abortSync();
    throw error;
  }
}
