import { DataType, Dictionary, RecordBatch, Schema, Type } from 'apache-arrow';
import { AtomicFile } from './atomic.js';
import { pyFloatRepr } from './pyrepr.js';
import type { Sink } from './types.js';

/** Quotes a field as Python's csv module does by default (QUOTE_MINIMAL). */
function quote(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

type Formatter = (batch: RecordBatch, column: number) => (row: number) => string;

/** Distinct values a column's memo holds before it starts over (a few MB at most per column). */
const MEMO_ENTRIES = 1 << 16;

/**
 * The text of values already printed, keyed by their bits (one or two 32-bit words: f32, i32, f64, i64), so that
 * -0 and 0 stay apart and NaN payloads do not matter. Open addressing over typed arrays: a Map keyed by numbers
 * cost more than printing for half the columns.
 */
class BitsMemo {
  private readonly low = new Uint32Array(MEMO_ENTRIES * 2);
  private readonly high = new Uint32Array(MEMO_ENTRIES * 2);
  private readonly texts: Array<string | undefined> = new Array(MEMO_ENTRIES * 2).fill(undefined);
  private size = 0;

  /** Slot of the last lookup: where `store` puts a text that lookup did not find. */
  private slot = 0;

  /** The text of (low, high), or undefined (then `store` it). */
  lookup(low: number, high: number): string | undefined {
    const mask = MEMO_ENTRIES * 2 - 1;
    // Fibonacci hashing of both words; linear probing in a table at most half full.
    let slot = (Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> 15) & mask;
    for (;;) {
      const text = this.texts[slot];
      if (text === undefined) break;
      if (this.low[slot] === low && this.high[slot] === high) return text;
      slot = (slot + 1) & mask;
    }
    this.slot = slot;
    return undefined;
  }

  store(low: number, high: number, text: string): string {
    if (this.size >= MEMO_ENTRIES) {
      this.texts.fill(undefined);
      this.size = 0;
      this.lookup(low, high);
    }
    this.low[this.slot] = low;
    this.high[this.slot] = high;
    this.texts[this.slot] = text;
    this.size++;
    return text;
  }
}

function formatterFor(type: DataType): Formatter {
  if (type instanceof Dictionary || type.typeId === Type.Dictionary) {
    return (batch, column) => {
      const data = batch.data.children[column];
      const labels = Array.from(data.dictionary!.toArray() as Iterable<string>, (label) => quote(String(label)));
      const indices = data.values as Int32Array;
      return (row) => labels[indices[row]];
    };
  }
  if (type.typeId === Type.Bool) {
    // Python's spelling, which pandas and polars read back as booleans. Read from the bitmap: Vector.get costs
    // more than the rest of the cell.
    return (batch, column) => {
      const data = batch.data.children[column];
      const bits = data.values as Uint8Array;
      const offset = data.offset;
      if (data.nullCount > 0) {
        return (row) => (!data.getValid(row) ? '' : (bits[(offset + row) >> 3] >> ((offset + row) & 7)) & 1 ? 'True' : 'False');
      }
      return (row) => ((bits[(offset + row) >> 3] >> ((offset + row) & 7)) & 1 ? 'True' : 'False');
    };
  }
  if (type.typeId === Type.Float) {
    // f32 results (GPU) print as the exact double they widen to: shortest-f32 printing needs toPrecision, which
    // made CSV twice as slow, and the value read back is the same either way.
    // Printing a float is most of CSV's cost, and a result column holds few distinct values (rows differing only
    // in ZeRO, SP, recompute or offload share most of them: tens to a few thousand per 65 k rows), so each column
    // remembers the text of the values it printed.
    const memo = new BitsMemo();
    return (batch, column) => memoized(batch.data.children[column].values, memo, pyFloatRepr);
  }
  // Integers: the grid's sizes and the counts repeat as much as the floats do (BigInt printing most of all).
  const memo = new BitsMemo();
  return (batch, column) => {
    const data = batch.data.children[column];
    const cell = memoized(data.values, memo, String);
    // Nulls (best's rank of a row that is only on the Pareto front) as empty fields, as pandas writes them.
    if (data.nullCount > 0) return (row) => (data.getValid(row) ? cell(row) : '');
    return cell;
  };
}

/** A cell printer over a column's values (f32, i32, f64 or i64) that prints each distinct bit pattern once. */
function memoized(
  values: Float32Array | Int32Array | Float64Array | BigInt64Array,
  memo: BitsMemo,
  print: (value: never) => string,
): (row: number) => string {
  const show = print as (value: number | bigint) => string;
  if (values instanceof Float32Array || values instanceof Int32Array) {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    return (row) => {
      const low = bits[row];
      return memo.lookup(low, 0) ?? memo.store(low, 0, show(values[row]));
    };
  }
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length * 2);
  return (row) => {
    const low = words[2 * row];
    const high = words[2 * row + 1];
    return memo.lookup(low, high) ?? memo.store(low, high, show(values[row]));
  };
}

/**
 * CSV with the PoC's conventions: a header of column names, `\r\n` line ends (Python's csv default), floats as
 * Python's repr, categories as their labels.
 */
export class CsvSink implements Sink {
  readonly format = 'csv';
  private readonly formatters: Formatter[];

  private constructor(
    private readonly file: AtomicFile,
    schema: Schema,
  ) {
    this.formatters = schema.fields.map((field) => formatterFor(field.type));
  }

  get path(): string {
    return this.file.path;
  }

  static async open(path: string, schema: Schema): Promise<CsvSink> {
    const file = await AtomicFile.open(path, '--csv');
    const sink = new CsvSink(file, schema);
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
    const cells = this.formatters.map((make, column) => make(batch, column));
    const width = cells.length;
    const ROWS_PER_WRITE = 4096;
    for (let start = 0; start < batch.numRows; start += ROWS_PER_WRITE) {
      const end = Math.min(batch.numRows, start + ROWS_PER_WRITE);
      let text = '';
      for (let row = start; row < end; row++) {
        let line = cells[0](row);
        for (let column = 1; column < width; column++) line += ',' + cells[column](row);
        text += line + '\r\n';
      }
      await this.file.write(text);
    }
  }

  commit(): Promise<void> {
    return this.file.commit();
  }

  abortSync(): void {
    this.file.abortSync();
  }
}
