import {
  Bool,
  Data,
  DataType,
  Dictionary,
  Field,
  Float32,
  Float64,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
  Vector,
} from 'apache-arrow';
import type { EvaluatedChunk } from './engine/types.js';
import type { ResultColumn } from './formulas/types.js';
import type { GridColumnSpec } from './grid/grid.js';

/** Metadata key on float fields whose values the PoC printed as Python floats (so CSV writes `512.0`). */
export const PY_TYPE_KEY = 'parasweep.py_type';

/**
 * Turns evaluated chunks into Arrow record batches sharing one schema. Every column is built on the chunk's own
 * typed arrays (no per-element copy); categorical and constant-string columns are dictionary-encoded with one
 * dictionary per column for the whole sweep.
 */
function packBits(values: ArrayLike<number>): Uint8Array {
  const bits = new Uint8Array(Math.ceil(values.length / 8));
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) bits[i >> 3] |= 1 << (i & 7);
  return bits;
}

export class ResultAssembler {
  readonly schema: Schema;
  private readonly columns: ResultColumn[];
  private readonly gridIndex: Map<string, number>;
  private readonly dictionaries: Map<string, Vector<Utf8>>;

  /** Index of each constant string column's value in its dictionary. */
  private readonly constantCodes = new Map<string, number>();

  /**
   * `constantLabels` lists, for a constant string column, every value it takes across the runs that share one
   * output (a sweep over several hardware files), so that all batches share one dictionary.
   */
  constructor(
    columns: ResultColumn[],
    gridColumns: GridColumnSpec[],
    computedType: 'f64' | 'f32',
    constantLabels: ReadonlyMap<string, readonly string[]> = new Map(),
    /**
     * Dictionaries shared with other assemblers writing to the same output: an Arrow IPC file allows one
     * dictionary per column, so runs over several hardware must hand the writer the very same vectors.
     */
    sharedDictionaries: Map<string, Vector<Utf8>> = new Map(),
  ) {
    this.dictionaries = sharedDictionaries;
    const dictionary = (name: string, labels: readonly string[]) => {
      const existing = this.dictionaries.get(name);
      if (existing && existing.length === labels.length && labels.every((label, i) => existing.get(i) === label)) return;
      this.dictionaries.set(name, vectorFromArray([...labels], new Utf8()));
    };
    this.columns = columns;
    this.gridIndex = new Map(gridColumns.map((column, i) => [column.name, i]));
    let dictionaryId = 0;
    const fields = columns.map((column) => {
      switch (column.from) {
        case 'grid': {
          const spec = gridColumns[this.gridIndex.get(column.column)!];
          if (spec.labels) {
            dictionary(column.name, spec.labels);
            return new Field(column.name, new Dictionary(new Utf8(), new Int32(), dictionaryId++), false);
          }
          return new Field(column.name, new Int32(), false);
        }
        case 'computed': {
          if (column.kind === 'int') return new Field(column.name, new Int32(), false);
          if (column.kind === 'bool') return new Field(column.name, new Bool(), false);
          const type = computedType === 'f64' ? new Float64() : new Float32();
          return new Field(column.name, type, false, new Map([[PY_TYPE_KEY, 'float']]));
        }
        case 'constant': {
          if (typeof column.value === 'string') {
            const labels = constantLabels.get(column.name) ?? [column.value];
            if (!labels.includes(column.value)) throw new Error(`${column.name}: ${column.value} missing from its labels`);
            this.constantCodes.set(column.name, labels.indexOf(column.value));
            dictionary(column.name, labels);
            return new Field(column.name, new Dictionary(new Utf8(), new Int32(), dictionaryId++), false);
          }
          return new Field(column.name, new Float64(), false, new Map([[PY_TYPE_KEY, 'float']]));
        }
      }
    });
    this.schema = new Schema(fields);
  }

  batch(chunk: EvaluatedChunk): RecordBatch {
    const length = chunk.grid.length;
    const children: Data[] = this.columns.map((column, i) => {
      const type = this.schema.fields[i].type as DataType;
      switch (column.from) {
        case 'grid': {
          const values = chunk.grid.columns[this.gridIndex.get(column.column)!];
          const dictionary = this.dictionaries.get(column.name);
          if (dictionary) return makeData({ type: type as Dictionary, length, data: values, dictionary });
          return makeData({ type: type as Int32, length, data: values });
        }
        case 'computed': {
          const values = chunk.computed[column.index];
          // Integer and boolean results are computed as floats (WGSL writes one f32 buffer); they are exact small
          // integers, converted here.
          if (column.kind === 'int') return makeData({ type: type as Int32, length, data: Int32Array.from(values) });
          if (column.kind === 'bool') return makeData({ type: type as Bool, length, data: packBits(values) });
          return makeData({ type: type as Float64, length, data: values as Float64Array });
        }
        case 'constant': {
          const dictionary = this.dictionaries.get(column.name);
          if (dictionary) {
            const codes = new Int32Array(length).fill(this.constantCodes.get(column.name)!);
            return makeData({ type: type as Dictionary, length, data: codes, dictionary });
          }
          return makeData({ type: type as Float64, length, data: new Float64Array(length).fill(column.value as number) });
        }
      }
    });
    const struct = makeData({ type: new Struct(this.schema.fields), length, nullCount: 0, children });
    return new RecordBatch(this.schema, struct);
  }
}
