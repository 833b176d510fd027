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
const FLOAT_MEMO_ENTRIES = 1 << 16;

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
    // remembers the text of the values it printed, keyed by their bits (so -0 and 0 stay apart).
    const memo = new Map<number, string>();
    return (batch, column) => {
      const values = batch.data.children[column].values as Float64Array | Float32Array;
      if (memo.size > FLOAT_MEMO_ENTRIES) memo.clear();
      if (values instanceof Float32Array) {
        const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
        return (row) => {
          const key = bits[row];
          let text = memo.get(key);
          if (text === undefined) memo.set(key, (text = pyFloatRepr(values[row])));
          return text;
        };
      }
      // f64: keyed by value, which is the bits except for zero's sign (SameValueZero), so zero is not memoized.
      return (row) => {
        const value = values[row];
        if (value === 0) return pyFloatRepr(value);
        let text = memo.get(value);
        if (text === undefined) memo.set(value, (text = pyFloatRepr(value)));
        return text;
      };
    };
  }
  // Integers: the grid's sizes and the counts repeat as much as the floats do (BigInt printing most of all).
  const memo = new Map<number | bigint, string>();
  return (batch, column) => {
    const data = batch.data.children[column];
    const values = data.values as Int32Array | BigInt64Array;
    if (memo.size > FLOAT_MEMO_ENTRIES) memo.clear();
    const cell = (row: number) => {
      const value = values[row];
      let text = memo.get(value);
      if (text === undefined) memo.set(value, (text = String(value)));
      return text;
    };
    // Nulls (best's rank of a row that is only on the Pareto front) as empty fields, as pandas writes them.
    if (data.nullCount > 0) return (row) => (data.getValid(row) ? cell(row) : '');
    return cell;
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
