import { DataType, Dictionary, RecordBatch, Schema, Type } from 'apache-arrow';
import { AtomicFile } from './atomic.js';
import { pyFloatRepr } from './pyrepr.js';
import type { Sink } from './types.js';

/** Quotes a field as Python's csv module does by default (QUOTE_MINIMAL). */
function quote(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

type Formatter = (batch: RecordBatch, column: number) => (row: number) => string;

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
    // Python's spelling, which pandas and polars read back as booleans.
    return (batch, column) => {
      const vector = batch.getChildAt(column)!;
      return (row) => (vector.get(row) ? 'True' : 'False');
    };
  }
  if (type.typeId === Type.Float) {
    // f32 results (GPU) print as the exact double they widen to: shortest-f32 printing needs toPrecision, which
    // made CSV twice as slow, and the value read back is the same either way.
    return (batch, column) => {
      const values = batch.data.children[column].values as Float64Array | Float32Array;
      return (row) => pyFloatRepr(values[row]);
    };
  }
  return (batch, column) => {
    const values = batch.data.children[column].values as Int32Array;
    return (row) => String(values[row]);
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
