import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Data, DataType, makeVector, RecordBatch, Schema, Type } from 'apache-arrow';
import { AtomicFile } from './atomic.js';
import { csvEncoderFactory, type CsvBatchEncoder, type CsvColumn, type CsvValidity } from './csv-encoder.js';
import { pyFloatRepr } from './pyrepr.js';
import type { Sink } from './types.js';

/** Quotes a field as Python's csv module does by default (QUOTE_MINIMAL). */
function quote(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Rows encoded at a time: a batch is cut into slices of at most this many, so one slice's text (~38 MB at the
 * full formula's ~585 bytes per row) is what a worker holds and sends back.
 */
const SLICE_ROWS = 1 << 16;

/**
 * Rows encoded in this thread before the workers start: a worker costs tens of milliseconds to start, more than
 * small outputs (tests, `best`) take to encode.
 */
const IN_THREAD_ROWS = 1 << 16;

/**
 * Encoder threads: one core is left to the engine (which evaluates the next batch meanwhile) and the rest encode,
 * at most 4 (past that the single file write is the bound).
 */
const WORKERS = Math.max(1, Math.min(4, availableParallelism() - 1));

/** Slices handed out and not yet written, per worker, before `write` waits: one encoding, one waiting to be written. */
const IN_FLIGHT_PER_WORKER = 2;

/**
 * The worker's source: the encoder's own text (see csv-encoder.ts) and a loop answering each slice in order. It
 * writes into output buffers that the sink hands back once written (`recycle`), and returns the slice's input
 * buffers with its answer, so that after the first few slices no memory is freshly allocated: on the 2-core VM
 * this was measured on, first touching fresh memory cost about 10 ns a byte, more than encoding it.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const pyFloatRepr = ${pyFloatRepr.toString()};
const encoder = (${csvEncoderFactory.toString()})(pyFloatRepr).create();
const free = [];
function output(bytes) {
  const index = free.findIndex((buffer) => buffer.byteLength >= bytes);
  return index >= 0 ? new Uint8Array(free.splice(index, 1)[0]) : new Uint8Array(Math.ceil(bytes * 1.125));
}
parentPort.on('message', (message) => {
  if (message.recycle) {
    free.push(message.recycle);
    return;
  }
  const { id, columns, rows, inputs } = message;
  let bytes;
  try {
    bytes = encoder.encode(columns, rows, output);
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.stack) || error) });
    return;
  }
  parentPort.postMessage({ id, buffer: bytes.buffer, length: bytes.length, inputs }, [bytes.buffer, ...inputs]);
});
`;

interface Encoded {
  bytes: Uint8Array;
  /** Gives the buffer back to whoever made it, once the file is done with it. */
  recycle?: () => void;
}

interface Waiting {
  resolve: (encoded: Encoded) => void;
  reject: (error: unknown) => void;
}

/** Spare ArrayBuffers by size, for the copies of a slice's columns sent to a worker (and sent back). */
class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();

  take(byteLength: number): ArrayBuffer {
    return this.free.get(byteLength)?.pop() ?? new ArrayBuffer(byteLength);
  }

  give(buffer: ArrayBuffer): void {
    const list = this.free.get(buffer.byteLength);
    if (list) list.push(buffer);
    else this.free.set(buffer.byteLength, [buffer]);
  }

  /** A copy of `view` in a buffer of the pool's. */
  copy<T extends Exclude<ArrayBufferView, DataView>>(view: T): T {
    const Type = view.constructor as new (buffer: ArrayBuffer) => T;
    const copy = new Type(this.take(view.byteLength));
    (copy as unknown as { set(from: T): void }).set(view);
    return copy;
  }
}

/** One encoder thread and the slices it owes. */
class EncoderThread {
  private readonly thread: Worker;
  private readonly waiting = new Map<number, Waiting>();
  private ended = false;

  constructor(private readonly inputs: BufferPool) {
    this.thread = new Worker(WORKER_SOURCE, { eval: true });
    this.thread.on('message', (message: { id: number; buffer?: ArrayBuffer; length: number; inputs: ArrayBuffer[]; error?: string }) => {
      const waiting = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      const buffer = message.buffer;
      if (buffer) {
        for (const input of message.inputs) this.inputs.give(input);
        waiting?.resolve({ bytes: new Uint8Array(buffer, 0, message.length), recycle: () => this.recycle(buffer) });
      } else {
        waiting?.reject(new Error(`CSV encoder: ${message.error}`));
      }
    });
    this.thread.on('error', (error) => this.failAll(error));
    this.thread.on('exit', () => this.failAll(new Error('CSV encoder: the worker exited early')));
  }

  private recycle(buffer: ArrayBuffer): void {
    if (!this.ended) this.thread.postMessage({ recycle: buffer }, [buffer]);
  }

  private failAll(error: unknown): void {
    if (this.ended) return;
    for (const waiting of this.waiting.values()) waiting.reject(error);
    this.waiting.clear();
  }

  encode(id: number, columns: CsvColumn[], rows: number, inputs: ArrayBuffer[]): Promise<Encoded> {
    const result = new Promise<Encoded>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.thread.postMessage({ id, columns, rows, inputs }, inputs);
    return result;
  }

  end(): Promise<number> {
    this.ended = true;
    return this.thread.terminate();
  }
}

/** Bits [from, from + count) of `bits` (starting at bit `offset`), and the bit offset they then start at. */
function sliceBits(bits: Uint8Array, offset: number, from: number, count: number): CsvValidity {
  const first = offset + from;
  return { bits: bits.subarray(first >> 3, (first + count + 7) >> 3), bitOffset: first & 7 };
}

/**
 * Rows [from, from + rows) of one column, as views of the batch's buffers (`copy` makes them the slice's own,
 * to send to a worker).
 */
export function sliceColumn(
  data: Data,
  labels: string[] | undefined,
  from: number,
  rows: number,
  copy: <T extends Exclude<ArrayBufferView, DataView>>(view: T) => T = (view) => view,
): CsvColumn {
  const type = data.type as DataType;
  const bitmap = data.nullCount > 0 && data.nullBitmap && data.nullBitmap.byteLength > 0 ? sliceBits(data.nullBitmap, data.offset, from, rows) : null;
  const validity = bitmap && { bits: copy(bitmap.bits), bitOffset: bitmap.bitOffset };
  if (labels) return { kind: 'dict', indices: copy((data.values as Int32Array).subarray(from, from + rows)), labels, validity };
  // Bool's values are a bitmap that slicing does not cut (the offset counts bits); the others are cut to the slice.
  if (type.typeId === Type.Bool) {
    const { bits, bitOffset } = sliceBits(data.values as Uint8Array, data.offset, from, rows);
    return { kind: 'bool', bits: copy(bits), bitOffset, validity };
  }
  const values = data.values as Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
  const kind = numberKind(type);
  if (kind) return { kind, values: copy(values.subarray(from, from + rows)), validity };
  // No such column in parasweep's schemas; printed here so that any other type still comes out right.
  const vector = makeVector(data);
  const texts = new Array<string>(rows);
  for (let row = 0; row < rows; row++) {
    const value: unknown = vector.get(from + row);
    texts[row] = value === null || value === undefined ? '' : quote(String(value));
  }
  return { kind: 'text', texts };
}

/** The encoder's name for a fixed-width numeric type, or undefined. */
function numberKind(type: DataType): Exclude<CsvColumn['kind'], 'bool' | 'dict' | 'text'> | undefined {
  if (DataType.isFloat(type)) return type.precision === 1 ? 'f32' : type.precision === 2 ? 'f64' : undefined;
  if (DataType.isInt(type)) {
    const kinds: Record<string, ReturnType<typeof numberKind>> = { '8s': 'i8', '8u': 'u8', '16s': 'i16', '16u': 'u16', '32s': 'i32', '32u': 'u32', '64s': 'i64' };
    return kinds[`${type.bitWidth}${type.isSigned ? 's' : 'u'}`];
  }
  return undefined;
}

/** Each dictionary column's labels (by column position), read once per batch. */
export function batchLabels(batch: RecordBatch): Array<string[] | undefined> {
  return batch.data.children.map((data) => (DataType.isDictionary(data.type) ? Array.from(data.dictionary!.toArray() as Iterable<unknown>, (label) => String(label)) : undefined));
}

/**
 * CSV with the PoC's conventions: a header of column names, `\r\n` line ends (Python's csv default), floats as
 * Python's repr, categories as their labels. Encoded to bytes in worker threads (csv-encoder.ts) while the engine
 * evaluates the next batch; the bytes are written in the order of the rows.
 */
export class CsvSink implements Sink {
  readonly format = 'csv';
  private readonly local: CsvBatchEncoder = csvEncoderFactory(pyFloatRepr).create();
  private threads: EncoderThread[] = [];
  private readonly inputs = new BufferPool();
  private rowsSeen = 0;
  private sent = 0;
  private inFlight = 0;
  private room?: () => void;
  /** File writes, chained in the order of the slices. */
  private writing: Promise<void> = Promise.resolve();
  private failure?: unknown;
  private aborted = false;

  private constructor(private readonly file: AtomicFile) {}

  get path(): string {
    return this.file.path;
  }

  static async open(path: string, schema: Schema): Promise<CsvSink> {
    const file = await AtomicFile.open(path, '--csv');
    const sink = new CsvSink(file);
    try {
      await file.write(schema.fields.map((field) => quote(field.name)).join(',') + '\r\n');
    } catch (error) {
      // Not a sink yet for the caller to abort: remove the temporary file here.
      file.abortSync();
      throw error;
    }
    return sink;
  }

  async write(batch: RecordBatch): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const labels = batchLabels(batch);
    for (let from = 0; from < batch.numRows; from += SLICE_ROWS) {
      const rows = Math.min(SLICE_ROWS, batch.numRows - from);
      this.enqueue(this.encode(batch, labels, from, rows));
      while (this.inFlight >= this.threads.length * IN_FLIGHT_PER_WORKER && this.inFlight > 0 && this.failure === undefined) {
        await new Promise<void>((resolve) => (this.room = resolve));
      }
      if (this.failure !== undefined) throw this.failure;
    }
  }

  private encode(batch: RecordBatch, labels: Array<string[] | undefined>, from: number, rows: number): Promise<Encoded> {
    this.rowsSeen += rows;
    if (this.rowsSeen <= IN_THREAD_ROWS) {
      try {
        const columns = batch.data.children.map((data, c) => sliceColumn(data, labels[c], from, rows));
        return Promise.resolve({ bytes: this.local.encode(columns, rows) });
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.threads.length === 0) this.threads = Array.from({ length: WORKERS }, () => new EncoderThread(this.inputs));
    const inputs: ArrayBuffer[] = [];
    const copy = <T extends Exclude<ArrayBufferView, DataView>>(view: T): T => {
      const owned = this.inputs.copy(view);
      inputs.push(owned.buffer as ArrayBuffer);
      return owned;
    };
    const columns = batch.data.children.map((data, c) => sliceColumn(data, labels[c], from, rows, copy));
    const id = this.sent++;
    return this.threads[id % this.threads.length].encode(id, columns, rows, inputs);
  }

  private enqueue(encoded: Promise<Encoded>): void {
    encoded.catch(() => undefined); // observed through the chain below
    this.inFlight++;
    this.writing = this.writing.then(async () => {
      const { bytes, recycle } = await encoded;
      if (!this.aborted) await this.file.write(bytes, recycle);
      this.inFlight--;
      this.wake();
    });
    this.writing.catch((error) => this.fail(error));
  }

  private fail(error: unknown): void {
    if (this.failure !== undefined || this.aborted) return;
    this.failure = error;
    this.wake();
  }

  private wake(): void {
    const resolve = this.room;
    this.room = undefined;
    resolve?.();
  }

  async flush(): Promise<void> {
    try {
      await this.writing;
    } finally {
      await this.endThreads();
    }
    if (this.failure !== undefined) throw this.failure;
    await this.file.flush();
  }

  async commit(): Promise<void> {
    await this.flush();
    await this.file.commit();
  }

  private async endThreads(): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    await Promise.all(threads.map((thread) => thread.end()));
  }

  abortSync(): void {
    this.aborted = true;
    void this.endThreads();
    this.file.abortSync();
  }
}
