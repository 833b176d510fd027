import { existsSync, mkdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { makeData, RecordBatch, Schema, Struct } from 'apache-arrow';
import { InputError, OutputError } from '../errors.js';
import { describeIoError, probeOutput, resolveOutput } from './atomic.js';
import { ParquetSink, type WasmParquetSink } from './parquet.js';
import type { Sink } from './types.js';

/**
 * A Hive-partitioned Parquet dataset (`-o DIR/`): `DIR/model=…/hardware=…/part-<shard>.parquet`, one file per
 * partition and shard. The partition columns are the run's constant string columns (model and hardware for
 * `--formula full`, the model's name for `--formula poc`); they live in the directory names only, as Hive, Spark,
 * DuckDB (`hive_partitioning`), polars (`hive_partitioning=True`) and pyarrow (`partitioning="hive"`) expect, and
 * are left out of the files, where those readers would find them twice. Each file is written atomically like every
 * other output; a shard writes only its own `part-<shard>` files, so n shards fill one directory without locks, and
 * running a shard again replaces its files.
 */
export class DatasetSink implements Sink {
  readonly format = 'parquet-dataset';
  private readonly partitions = new Map<string, ParquetSink | WasmParquetSink>();
  private readonly keyColumns: string[];
  private readonly fileSchema: Schema;
  /** Positions of the file's columns in the incoming batches. */
  private readonly fileColumns: number[];

  private constructor(
    readonly path: string,
    schema: Schema,
    partitionColumns: readonly string[],
    private readonly part: string,
  ) {
    this.keyColumns = partitionColumns.filter((name) => schema.fields.some((field) => field.name === name));
    const kept = schema.fields.filter((field) => !this.keyColumns.includes(field.name));
    this.fileColumns = kept.map((field) => schema.fields.indexOf(field));
    this.fileSchema = new Schema(kept, schema.metadata);
  }

  /** `part` names this process's files (the shard number, 0 unsharded). */
  static async open(path: string, schema: Schema, partitionColumns: readonly string[], part: string): Promise<DatasetSink> {
    return new DatasetSink(path, schema, partitionColumns, part);
  }

  async write(batch: RecordBatch): Promise<void> {
    if (batch.numRows === 0) return;
    // Partition columns are constant per run and a batch never spans two runs, so its first row names its partition.
    const directory = this.keyColumns.map((name) => `${name}=${hivePathValue(String(batch.getChild(name)!.get(0)))}`);
    const key = directory.join('/');
    let sink = this.partitions.get(key);
    if (!sink) {
      const folder = join(this.path, ...directory);
      try {
        mkdirSync(folder, { recursive: true });
      } catch (error) {
        throw new OutputError(`cannot write ${folder}: ${describeIoError(error)}`);
      }
      sink = await ParquetSink.open(join(folder, `part-${this.part}.parquet`), this.fileSchema);
      this.partitions.set(key, sink);
    }
    const children = this.fileColumns.map((index) => batch.data.children[index]);
    const data = makeData({ type: new Struct(this.fileSchema.fields), length: batch.numRows, nullCount: 0, children });
    await sink.write(new RecordBatch(this.fileSchema, data));
  }

  async flush(): Promise<void> {
    for (const sink of this.partitions.values()) await sink.flush();
  }

  async commit(): Promise<void> {
    await this.flush();
    for (const sink of this.partitions.values()) await sink.commit();
  }

  abortSync(): void {
    for (const sink of this.partitions.values()) sink.abortSync();
  }
}

/**
 * A partition value as a directory name, escaped as Hive escapes them (`%` and two hex digits of each UTF-8
 * byte), and DuckDB, Spark, polars and pyarrow unescape them: here every byte outside letters, digits and `._-`,
 * so that spaces and slashes in model names survive every reader and every shell.
 */
export function hivePathValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * `-o DIR/` (a trailing slash) means a dataset; so does `-o DIR` naming an existing directory, unless its name has
 * a file format's extension (`-o out.arrow` on a directory is a mistake, refused as such).
 */
export function isDatasetPath(path: string, fileExtensions: readonly string[] = []): boolean {
  if (path.endsWith('/')) return true;
  if (fileExtensions.includes(extname(path).toLowerCase())) return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Checks a dataset directory before anything is evaluated: it is created if missing (its parent must exist), and
 * must take new files.
 */
export function checkDatasetPath(path: string, field = '--out'): string {
  const real = resolve(path);
  if (!existsSync(real)) {
    try {
      mkdirSync(real);
    } catch (error) {
      // Shards started together race to create it: another one having done so is fine.
      const raced = (error as NodeJS.ErrnoException).code === 'EEXIST' && statSync(real).isDirectory();
      if (!raced) throw new InputError(field, `cannot create the dataset directory ${path}: ${describeIoError(error)}`);
    }
  } else if (!statSync(real).isDirectory()) {
    throw new InputError(field, `${path} is not a directory`);
  }
  // A probe file inside proves the directory takes files (read-only mounts, permissions) before any work.
  probeOutput(resolveOutput(join(real, 'part-probe.parquet'), field), field);
  return real;
}
