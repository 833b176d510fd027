import { DataType, makeData, makeVector, RecordBatch, Schema, Struct, Table, tableToIPC } from 'apache-arrow';
import { AtomicFile } from './atomic.js';
import type { Sink } from './types.js';

type ParquetWasm = typeof import('parquet-wasm');

/** Rows per Parquet row group: batches are encoded as they arrive and a row group is flushed once it holds this many. */
export const PARQUET_ROW_GROUP_ROWS = 1 << 18;

/** A zero-row batch of `schema` (dictionary columns get empty dictionaries). */
function emptyBatch(schema: Schema): RecordBatch {
  const children = schema.fields.map((field) => {
    const type = field.type as DataType;
    if (DataType.isDictionary(type)) {
      return makeData({ type, length: 0, dictionary: makeVector(makeData({ type: type.dictionary, length: 0 })) });
    }
    return makeData({ type, length: 0 });
  });
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: 0, nullCount: 0, children }));
}

let wasmModule: Promise<ParquetWasm> | undefined;

/** Loaded on first use: compiling the 5 MB WebAssembly module costs ~0.1 s that other formats should not pay. */
function loadParquetWasm(): Promise<ParquetWasm> {
  wasmModule ??= import('parquet-wasm');
  return wasmModule;
}

/**
 * Apache Parquet (`.parquet`), zstd-compressed, through arrow-rs's writer compiled to WebAssembly. Each incoming
 * batch is handed to the writer at once and encoded into the current row group, which goes to disk when it reaches
 * PARQUET_ROW_GROUP_ROWS rows, so memory holds at most one row group. Column types are kept: categorical columns
 * stay dictionary-encoded strings, Bool stays boolean, Int32/Float32/Float64 stay as they are, and the Arrow schema
 * (with its field metadata) is stored in the file for Arrow-aware readers.
 */
export class ParquetSink implements Sink {
  readonly format = 'parquet';
  private controller!: ReadableStreamDefaultController<unknown>;
  /** Resolves the pending `write` once the writer has taken the queued batch. */
  private signalRoom: () => void = () => {};
  private drained?: Promise<void>;
  private failure?: Promise<never>;
  private aborted = false;
  private readonly output: Promise<ReadableStream<Uint8Array>>;

  private constructor(
    private readonly wasm: ParquetWasm,
    private readonly file: AtomicFile,
    private readonly schema: Schema,
    rowGroupRows: number,
  ) {
    const input = new ReadableStream<unknown>(
      {
        start: (controller) => {
          this.controller = controller;
        },
        pull: () => this.signalRoom(),
      },
      { highWaterMark: 1 },
    );
    // Parquet dictionary encoding only for the categorical columns: on the numeric result columns (thousands of
    // distinct floats per row group) it made encoding ~3x slower and the zstd-compressed file larger (1.87 MB
    // against 2.73 MB for 268 k rows of llama405b: bench/sinks.mjs). Statistics per column chunk (min/max per row
    // group, what DuckDB and polars prune row groups with) rather than per page: half the encoding time again.
    let builder = new wasm.WriterPropertiesBuilder()
      .setDictionaryEnabled(false)
      .setStatisticsEnabled(wasm.EnabledStatistics.Chunk);
    for (const field of schema.fields) {
      if (DataType.isDictionary(field.type)) builder = builder.setColumnDictionaryEnabled(field.name, true);
    }
    const properties = builder
      .setCompression(wasm.Compression.ZSTD)
      .setMaxRowGroupSize(rowGroupRows)
      .setCreatedBy('parasweep')
      // Provenance as Parquet key-value metadata too, for readers that do not decode the stored Arrow schema
      // (DuckDB's parquet_kv_metadata).
      .setKeyValueMetadata(new Map(schema.metadata))
      .build();
    // Resolves once the writer has read the first batch (it needs the schema), so it is awaited in `write`.
    this.output = wasm.transformParquetStream(input, properties) as Promise<ReadableStream<Uint8Array>>;
  }

  get path(): string {
    return this.file.path;
  }

  static async open(path: string, schema: Schema, rowGroupRows = PARQUET_ROW_GROUP_ROWS): Promise<ParquetSink> {
    const wasm = await loadParquetWasm();
    return new ParquetSink(wasm, await AtomicFile.open(path, '--out'), schema, rowGroupRows);
  }

  private async drain(output: ReadableStream<Uint8Array>): Promise<void> {
    for await (const bytes of output) {
      if (this.aborted) return;
      await this.file.write(bytes);
    }
  }

  /** Copies an Arrow JS batch into WebAssembly memory (one IPC round trip; the batch carries its dictionaries). */
  private toWasm(batch: RecordBatch): unknown[] {
    const table = this.wasm.Table.fromIPCStream(tableToIPC(new Table([batch]), 'stream'));
    try {
      return table.recordBatches();
    } finally {
      table.free();
    }
  }

  async write(batch: RecordBatch): Promise<void> {
    for (const wasmBatch of this.toWasm(batch)) {
      this.controller.enqueue(wasmBatch);
      if (!this.drained) {
        this.drained = this.output.then((output) => this.drain(output));
        this.failure = this.drained.then(() => new Promise<never>(() => {}));
        this.failure.catch(() => {}); // observed through the race below or by commit's await of `drained`
      }
      // Back-pressure: at most one batch waits in the queue while the writer encodes the previous one.
      if ((this.controller.desiredSize ?? 1) <= 0) {
        await Promise.race([new Promise<void>((resolve) => (this.signalRoom = resolve)), this.failure]);
      }
    }
  }

  async commit(): Promise<void> {
    // No rows at all: the writer learns the schema from a batch, so hand it an empty one; the file then has the
    // schema and no row groups.
    if (!this.drained) await this.write(emptyBatch(this.schema));
    this.controller.close();
    await this.drained;
    await this.file.commit();
  }

  abortSync(): void {
    this.aborted = true;
    // Erroring the input fails the writer (and, before any batch, the stream's creation); nobody is left to hear it.
    this.drained?.catch(() => {});
    this.output.catch(() => {});
    try {
      this.controller.error(new Error('aborted'));
    } catch {
      // already closed or errored
    }
    this.file.abortSync();
  }
}
