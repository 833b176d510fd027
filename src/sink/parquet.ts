import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AsyncByteQueue, DataType, makeData, makeVector, RecordBatch, RecordBatchStreamWriter, Schema, Struct } from 'apache-arrow';
import { AtomicFile } from './atomic.js';
import { batchLabels } from './csv.js';
import { parquetEncoderFactory, type ParquetColumn, type ParquetColumnSpec, type ParquetKind } from './parquet-encoder.js';
import type { Sink } from './types.js';

/** Rows per Parquet row group: batches are encoded as they arrive and a row group is flushed once it holds this many. */
export const PARQUET_ROW_GROUP_ROWS = 1 << 18;

/** The IPC writer's output as the chunks it writes (views of the batch's own buffers, and small headers). */
class IpcChunks extends AsyncByteQueue {
  readonly parts: Uint8Array[] = [];
  length = 0;

  override write(value: Uint8Array): void {
    if (value.byteLength === 0) return;
    this.parts.push(value);
    this.length += value.byteLength;
  }
}

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

/**
 * The encoder, run in a worker thread: it owns arrow-rs's Parquet writer (parquet-wasm) and turns the Arrow IPC
 * batches it is sent into Parquet bytes, which it sends back in order. Inline source (not a file next to this
 * one) so that it runs the same from dist/ and from the TypeScript sources under vitest.
 */
const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const queue = [];
let ended = false;
let wake = null;
parentPort.on('message', (message) => {
  if (message === 'end') ended = true;
  else queue.push(message);
  if (wake) { const resolve = wake; wake = null; resolve(); }
});
(async () => {
  const wasm = await import(workerData.wasmUrl);
  let builder = new wasm.WriterPropertiesBuilder()
    .setDictionaryEnabled(false)
    .setStatisticsEnabled(wasm.EnabledStatistics.Chunk);
  for (const name of workerData.dictionaryColumns) builder = builder.setColumnDictionaryEnabled(name, true);
  const properties = builder
    .setCompression(wasm.Compression.ZSTD)
    .setMaxRowGroupSize(workerData.rowGroupRows)
    .setCreatedBy('parasweep')
    .setKeyValueMetadata(new Map(workerData.metadata))
    .build();
  const input = new ReadableStream({
    async pull(controller) {
      while (queue.length === 0 && !ended) await new Promise((resolve) => (wake = resolve));
      if (queue.length === 0) { controller.close(); return; }
      const { ipc, length } = queue.shift();
      // Copied into WebAssembly memory here, so the buffer goes back to the sink for the next batch.
      const table = wasm.Table.fromIPCStream(new Uint8Array(ipc, 0, length));
      parentPort.postMessage({ taken: ipc }, [ipc]);
      try {
        for (const batch of table.recordBatches()) controller.enqueue(batch);
      } finally {
        table.free();
      }
    },
  }, { highWaterMark: 0 });
  const output = await wasm.transformParquetStream(input, properties);
  for await (const chunk of output) {
    const bytes = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice();
    parentPort.postMessage({ bytes }, [bytes.buffer]);
  }
  parentPort.postMessage({ done: true });
})().catch((error) => parentPort.postMessage({ error: String(error && error.message || error) }));
`;

/** Batches sent to the encoder and not yet taken: one encoding, one waiting, then `write` waits. */
const MAX_QUEUED_BATCHES = 2;

let wasmUrl: string | undefined;

/**
 * What both Parquet sinks share: an encoder in a worker thread, batches handed to it with back-pressure (at most
 * MAX_QUEUED_BATCHES in flight), the bytes it sends back written to the file in order, and a failure on either side
 * surfacing at the next write or at flush. Subclasses start the worker and answer its messages.
 */
abstract class WorkerParquetSink implements Sink {
  readonly format = 'parquet';
  protected queued = 0;
  private room?: () => void;
  private readonly finished: Promise<void>;
  private finish!: { resolve: () => void; reject: (error: unknown) => void };
  /** File writes, chained in the order the encoder produced the bytes. */
  private writing: Promise<void> = Promise.resolve();
  protected failure?: unknown;
  private aborted = false;
  private flushed?: Promise<void>;

  protected constructor(
    protected readonly file: AtomicFile,
    protected readonly worker: Worker,
  ) {
    this.finished = new Promise<void>((resolve, reject) => (this.finish = { resolve, reject }));
    this.finished.catch(() => {}); // observed by flush, or by write through `failure`
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', () => this.fail(new Error('Parquet encoder: the worker exited early')));
  }

  get path(): string {
    return this.file.path;
  }

  abstract write(batch: RecordBatch): Promise<void>;

  /** Hands `message` to the encoder, then waits while too many batches are in flight. */
  protected async post(message: unknown, transfer: ArrayBuffer[]): Promise<void> {
    this.queued++;
    this.worker.postMessage(message, transfer);
    while (this.queued >= MAX_QUEUED_BATCHES && this.failure === undefined) {
      await new Promise<void>((resolve) => (this.room = resolve));
    }
    if (this.failure !== undefined) throw this.failure;
  }

  /** The encoder has taken a batch: room for the next. */
  protected taken(): void {
    this.queued--;
    this.wakeWriter();
  }

  /** Bytes of the file from the encoder, written after those before them. */
  protected writeBytes(bytes: Uint8Array): void {
    this.writing = this.writing.then(() => (this.aborted ? undefined : this.file.write(bytes)));
    this.writing.catch((error) => this.fail(error));
  }

  /** The encoder has sent the file's last bytes. */
  protected ended(): void {
    this.finish.resolve();
  }

  protected fail(error: unknown): void {
    if (this.failure !== undefined || this.aborted) return;
    this.failure = error;
    this.finish.reject(error);
    this.wakeWriter();
  }

  private wakeWriter(): void {
    const resolve = this.room;
    this.room = undefined;
    resolve?.();
  }

  /** What a sink sends before the end (WasmParquetSink: an empty batch when there was none). */
  protected async beforeEnd(): Promise<void> {}

  flush(): Promise<void> {
    this.flushed ??= (async () => {
      if (this.failure !== undefined) throw this.failure;
      await this.beforeEnd();
      this.worker.postMessage('end');
      await this.finished;
      await this.writing;
      this.aborted = true; // the worker's exit is expected from here on
      await this.worker.terminate();
      await this.file.flush();
    })();
    return this.flushed;
  }

  async commit(): Promise<void> {
    await this.flush();
    await this.file.commit();
  }

  abortSync(): void {
    this.aborted = true;
    void this.worker.terminate();
    this.file.abortSync();
  }
}

/**
 * Apache Parquet (`.parquet`), zstd-compressed, through arrow-rs's writer compiled to WebAssembly, in a worker
 * thread: each incoming batch is serialized (Arrow IPC, a copy of its buffers) and handed over, so the engine and
 * the other sinks keep running while it is encoded into the current row group, which goes to disk when it reaches
 * PARQUET_ROW_GROUP_ROWS rows; memory holds at most one row group and MAX_QUEUED_BATCHES batches. Column types are
 * kept: categorical columns stay dictionary-encoded strings, Bool stays boolean, Int32/Float32/Float64 stay as
 * they are, and the Arrow schema (with its field metadata) is stored in the file for Arrow-aware readers.
 */
export class WasmParquetSink extends WorkerParquetSink {
  private sent = 0;
  /** IPC buffers back from the worker, for the next batches. */
  private readonly spare: ArrayBuffer[] = [];

  private constructor(
    file: AtomicFile,
    private readonly schema: Schema,
    rowGroupRows: number,
  ) {
    if (!wasmUrl) wasmUrl = pathToFileURL(createRequire(import.meta.url).resolve('parquet-wasm')).href;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        wasmUrl,
        rowGroupRows,
        // Parquet dictionary encoding only for the categorical columns: on the numeric result columns (thousands
        // of distinct floats per row group) it made encoding ~3x slower and the zstd-compressed file larger
        // (1.87 MB against 2.73 MB for 268 k rows of llama405b: bench/sinks.mjs). Statistics per column chunk
        // (min/max per row group, what DuckDB and polars prune row groups with) rather than per page: half the
        // encoding time again.
        dictionaryColumns: schema.fields.filter((field) => DataType.isDictionary(field.type)).map((field) => field.name),
        // Provenance as Parquet key-value metadata too, for readers that do not decode the stored Arrow schema
        // (DuckDB's parquet_kv_metadata).
        metadata: [...schema.metadata],
      },
    });
    super(file, worker);
    worker.on('message', (message: { taken?: ArrayBuffer; bytes?: Uint8Array; done?: boolean; error?: string }) => {
      if (message.taken) {
        this.spare.push(message.taken);
        this.taken();
      } else if (message.bytes) {
        this.writeBytes(message.bytes);
      } else if (message.done) {
        this.ended();
      } else if (message.error !== undefined) {
        this.fail(new Error(`Parquet encoder: ${message.error}`));
      }
    });
  }

  static async open(path: string, schema: Schema, rowGroupRows = PARQUET_ROW_GROUP_ROWS): Promise<WasmParquetSink> {
    return new WasmParquetSink(await AtomicFile.open(path, '--out'), schema, rowGroupRows);
  }

  override async write(batch: RecordBatch): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    // Serialized here (the batch carries its dictionaries) into a buffer the worker hands back once it has read it:
    // tableToIPC joined the chunks into a fresh buffer per batch, and on the 2-core VM this was measured on,
    // first touching fresh memory cost more than the Parquet encoding (bench/sinks.mjs).
    const chunks = new IpcChunks();
    const writer = new RecordBatchStreamWriter();
    writer.reset(chunks, batch.schema);
    writer.write(batch);
    writer.finish();
    const ipc = this.takeBuffer(chunks.length);
    const bytes = new Uint8Array(ipc);
    let at = 0;
    for (const chunk of chunks.parts) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    this.sent++;
    await this.post({ ipc, length: at }, [ipc]);
  }

  protected override async beforeEnd(): Promise<void> {
    // No rows at all: the writer learns the schema from a batch, so hand it an empty one; the file then has the
    // schema and no row groups.
    if (this.sent === 0) await this.write(emptyBatch(this.schema));
  }

  /** A spare buffer of at least `length` bytes, or a new one with some room to spare. */
  private takeBuffer(length: number): ArrayBuffer {
    const index = this.spare.findIndex((buffer) => buffer.byteLength >= length);
    return index >= 0 ? this.spare.splice(index, 1)[0] : new ArrayBuffer(Math.ceil(length * 1.125));
  }
}

/**
 * The Parquet writer's worker: the encoder's own text (parquet-encoder.ts) and a loop answering each batch with the
 * bytes of the row groups it completed, and the batch's input buffers to reuse. Pages are compressed with `zlib`
 * (node:zlib, native) where the sink asks for it.
 */
const ENCODER_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
const compress = workerData.codec === 2 ? (bytes) => zlib.gzipSync(bytes, { level: workerData.level }) : (bytes) => bytes;
const encoder = (${parquetEncoderFactory.toString()})(compress).create(workerData);
parentPort.on('message', (message) => {
  try {
    const parts = message === 'end' ? encoder.finish() : encoder.write(message.columns, message.rows);
    const buffers = parts.map((part) => (part.byteOffset === 0 && part.byteLength === part.buffer.byteLength ? part : part.slice()).buffer);
    const inputs = message === 'end' ? [] : message.inputs;
    parentPort.postMessage({ buffers, inputs, done: message === 'end' }, [...buffers, ...inputs]);
  } catch (error) {
    parentPort.postMessage({ error: String((error && error.stack) || error) });
  }
});
`;

/** The encoder's kind for a column of `type`, or undefined where only the arrow-rs writer handles it. */
function parquetKind(type: DataType): ParquetKind | undefined {
  if (DataType.isDictionary(type)) return DataType.isUtf8(type.dictionary) && DataType.isInt(type.indices) ? 'dict' : undefined;
  if (DataType.isBool(type)) return 'bool';
  if (DataType.isFloat(type)) return type.precision === 1 ? 'f32' : type.precision === 2 ? 'f64' : undefined;
  if (DataType.isInt(type) && type.isSigned) return type.bitWidth === 32 ? 'i32' : type.bitWidth === 64 ? 'i64' : undefined;
  return undefined;
}

/**
 * The Arrow schema as arrow-rs stores it in a Parquet file's `ARROW:schema` key (base64 of the IPC schema message,
 * with its continuation marker and length), which Arrow-aware readers (pyarrow, polars, parquet-wasm) use to restore
 * dictionary columns, field metadata and the schema's metadata.
 */
function arrowSchemaBase64(schema: Schema): string {
  const chunks = new IpcChunks();
  const writer = new RecordBatchStreamWriter();
  writer.reset(chunks, schema);
  writer.write(emptyBatch(schema));
  writer.finish();
  // The stream is: the schema message, the (empty) batch, the end-of-stream marker. Only the first is wanted.
  const stream = Buffer.concat(chunks.parts);
  const length = stream.readInt32LE(4);
  const message = stream.subarray(0, 8 + length);
  return Buffer.from(message).toString('base64');
}

/**
 * Parquet compression of the pages: GZIP (codec 2 in parquet.thrift) through node:zlib at level 1, the fastest.
 */
const PARQUET_CODEC = 2;
const PARQUET_GZIP_LEVEL = 1;

/**
 * Apache Parquet (`.parquet`) through parasweep's own writer (parquet-encoder.ts) in a worker thread: each batch's
 * columns are copied into buffers that are handed to the worker (and handed back once it has read them), so the
 * engine and the other sinks keep running while it encodes; row groups of PARQUET_ROW_GROUP_ROWS rows go to disk as
 * they complete, so memory holds at most one row group and MAX_QUEUED_BATCHES batches. Column types are kept:
 * categorical columns stay dictionary-encoded strings, Bool stays boolean, Int32/Int64/Float32/Float64 stay as
 * they are, and the Arrow schema (with its field metadata) is stored in the file for Arrow-aware readers. Schemas
 * with other column types go to arrow-rs's writer (WasmParquetSink).
 */
export class ParquetSink extends WorkerParquetSink {
  private readonly spare = new Map<number, ArrayBuffer[]>();

  private constructor(file: AtomicFile, schema: Schema, columns: ParquetColumnSpec[], rowGroupRows: number) {
    const worker = new Worker(ENCODER_WORKER_SOURCE, {
      eval: true,
      workerData: {
        columns,
        rowGroupRows,
        metadata: [...schema.metadata, ['ARROW:schema', arrowSchemaBase64(schema)]],
        createdBy: 'parasweep',
        codec: PARQUET_CODEC,
        level: PARQUET_GZIP_LEVEL,
      },
    });
    super(file, worker);
    worker.on('message', (message: { buffers?: ArrayBuffer[]; inputs?: ArrayBuffer[]; done?: boolean; error?: string }) => {
      if (message.error !== undefined) {
        this.fail(new Error(`Parquet encoder: ${message.error}`));
        return;
      }
      for (const buffer of message.buffers!) this.writeBytes(new Uint8Array(buffer));
      if (message.done) {
        this.ended();
        return;
      }
      for (const input of message.inputs!) {
        const list = this.spare.get(input.byteLength);
        if (list) list.push(input);
        else this.spare.set(input.byteLength, [input]);
      }
      this.taken();
    });
  }

  /** A Parquet sink for `schema`: parasweep's writer where it handles every column, else arrow-rs's. */
  static async open(path: string, schema: Schema, rowGroupRows = PARQUET_ROW_GROUP_ROWS): Promise<ParquetSink | WasmParquetSink> {
    const kinds = schema.fields.map((field) => parquetKind(field.type as DataType));
    if (kinds.some((kind) => kind === undefined)) return WasmParquetSink.open(path, schema, rowGroupRows);
    const columns = schema.fields.map((field, c) => ({ name: field.name, kind: kinds[c]!, nullable: field.nullable }));
    return new ParquetSink(await AtomicFile.open(path, '--out'), schema, columns, rowGroupRows);
  }

  /** A copy of `view` in a reused buffer, listed in `inputs` to be transferred. */
  private copy<T extends Exclude<ArrayBufferView, DataView>>(view: T, inputs: ArrayBuffer[]): T {
    const buffer = this.spare.get(view.byteLength)?.pop() ?? new ArrayBuffer(view.byteLength);
    const Type = view.constructor as new (buffer: ArrayBuffer) => T;
    const copy = new Type(buffer);
    (copy as unknown as { set(from: T): void }).set(view);
    inputs.push(buffer);
    return copy;
  }

  override async write(batch: RecordBatch): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (batch.numRows === 0) return;
    const rows = batch.numRows;
    const labels = batchLabels(batch);
    const inputs: ArrayBuffer[] = [];
    const columns: ParquetColumn[] = batch.data.children.map((data, c) => {
      const bits = (bitmap: Uint8Array) => {
        const first = data.offset;
        return { bits: this.copy(bitmap.subarray(first >> 3, (first + rows + 7) >> 3), inputs), bitOffset: first & 7 };
      };
      const validity = data.nullCount > 0 && data.nullBitmap && data.nullBitmap.byteLength > 0 ? bits(data.nullBitmap) : null;
      if (DataType.isBool(data.type)) {
        const { bits: values, bitOffset } = bits(data.values as Uint8Array);
        return { values, bitOffset, validity };
      }
      const values = (data.values as Int32Array).subarray(0, rows);
      return { values: this.copy(values, inputs), bitOffset: 0, labels: labels[c], validity };
    });
    await this.post({ columns, rows, inputs }, inputs);
  }
}
