import { extname } from 'node:path';
import { makeData, RecordBatch, Schema, Struct, vectorFromArray } from 'apache-arrow';
import { InputError } from '../errors.js';
import { probeOutput, resolveOutput } from './atomic.js';
import { ArrowSink } from './arrow.js';
import { CsvSink } from './csv.js';
import { ParquetSink } from './parquet.js';
import { STDOUT_PATH, StdoutSink } from './stdout.js';
import { checkDatasetPath, DatasetSink, isDatasetPath } from './dataset.js';
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

/**
 * Paths given with `--csv` are CSV whatever their name, so that `--csv /dev/stdout` or a named pipe works;
 * `-o` still tells the format by the extension.
 */
const csvPaths = new Set<string>();

/** Marks `path` as a CSV output (the `--csv` flag). */
export function declareCsvOutput(path: string): void {
  csvPaths.add(path);
}

function extensionOf(path: string): string {
  const extension = extname(path).toLowerCase();
  if (FORMATS[extension]) return extension;
  return csvPaths.has(path) ? '.csv' : extension;
}

/**
 * Checks output paths before any work starts: a known format, each file named once (compared by real path, so
 * `a.arrow`, `./a.arrow` and a symlink to it are the same file), and each writable: its directory exists and
 * takes a new file (a directory as output, a parent that is a file, a read-only directory or a name too long
 * are all refused here, in one line, before anything is evaluated).
 */
export function checkOutputPaths(paths: string[], field = '--out'): void {
  const seen = new Map<string, string>();
  for (const path of paths) {
    if (path === STDOUT_PATH) {
      if (seen.has(path)) throw new InputError(field, 'standard output (-) is named twice');
      seen.set(path, path);
      continue;
    }
    // A `--csv` path's errors name that flag, whatever the caller's field.
    const flag = csvPaths.has(path) ? '--csv' : field;
    if (flag !== '--csv' && isDatasetPath(path, OUTPUT_EXTENSIONS)) {
      const real = checkDatasetPath(path, flag);
      if (seen.has(real)) throw new InputError(flag, `${path} is named twice`);
      seen.set(real, path);
      continue;
    }
    if (!FORMATS[extensionOf(path)]) {
      throw new InputError(flag, `cannot tell the format of ${path}: use one of ${OUTPUT_EXTENSIONS.join(', ')}, - for stdout, or DIR/ for a Parquet dataset`);
    }
    const target = resolveOutput(path, flag);
    const first = seen.get(target.real);
    if (first !== undefined) {
      const how = first === path ? '' : ` (as ${first} and ${path})`;
      throw new InputError(flag, `${path} is named twice${how}`);
    }
    seen.set(target.real, path);
    probeOutput(target, flag);
  }
}

/** Partition columns of a dataset output (`-o DIR/`) when the caller names none: those of either formula. */
const DATASET_PARTITIONS = ['model', 'hardware', 'name'];

export async function openSink(
  path: string,
  schema: Schema,
  dataset: { partitionColumns?: readonly string[]; part?: string } = {},
): Promise<Sink> {
  if (path === STDOUT_PATH) return new StdoutSink(schema);
  if (!csvPaths.has(path) && isDatasetPath(path, OUTPUT_EXTENSIONS)) {
    return DatasetSink.open(path, schema, dataset.partitionColumns ?? DATASET_PARTITIONS, dataset.part ?? '0');
  }
  return FORMATS[extensionOf(path)](path, schema);
}

/** Writes rows (as column-name → value records) with `schema` to every path, atomically. */
export async function writeRows(schema: Schema, rows: Array<Record<string, unknown>>, paths: string[]): Promise<void> {
  const children = schema.fields.map((field) => vectorFromArray(rows.map((row) => row[field.name]), field.type).data[0]);
  const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children }));
  const sinks: Sink[] = [];
  try {
    for (const path of paths) sinks.push(await openSink(path, schema));
    for (const sink of sinks) await sink.write(batch);
    for (const sink of sinks) await sink.flush?.();
    for (const sink of sinks) await sink.commit();
  } catch (error) {
    for (const sink of sinks) sink.abortSync();
    throw error;
  }
}
