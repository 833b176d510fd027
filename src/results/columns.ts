import {
  Bool,
  Data,
  DataType,
  Dictionary,
  Field,
  Float32,
  Float64,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
  vectorFromArray,
  Vector,
} from 'apache-arrow';
import type { EvaluatedChunk } from '../engine/types.js';
import type { Formula, ResultColumn } from '../formulas/types.js';
import type { GridColumnSpec } from '../grid/grid.js';
import { columnUnit, UNIT_KEY } from '../units.js';

/** Metadata key on float fields whose values the PoC printed as Python floats (so CSV writes `512.0`). */
export const PY_TYPE_KEY = 'parasweep.py_type';

/** The float type of computed columns: decided by the sweep, not by the engine that ran it. */
export type FloatType = 'f32' | 'f64';

function packBits(values: ArrayLike<number>): Uint8Array {
  const bits = new Uint8Array(Math.ceil(values.length / 8));
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) bits[i >> 3] |= 1 << (i & 7);
  return bits;
}

/** Whole numbers (counts of parameters or bytes, at most 2^53) into Int64 without a BigInt per element. */
function toInt64(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  const words = new Uint32Array(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const value = Math.round(values[i]);
    // Little-endian: low word first. `>>> 0` takes the value modulo 2^32, exact for |value| < 2^53.
    words[2 * i] = value >>> 0;
    words[2 * i + 1] = Math.floor(value / 4294967296) >>> 0;
  }
  return out;
}

/** Float columns in the schema's type: a copy only when the engine computed the other width. */
function toFloat(values: Float32Array | Float64Array, type: FloatType): Float32Array | Float64Array {
  if (type === 'f32') return values instanceof Float32Array ? values : Float32Array.from(values);
  return values instanceof Float64Array ? values : Float64Array.from(values);
}

/** Field metadata: the column's unit when it has one, plus `extra`. */
function fieldMetadata(name: string, extra: Array<[string, string]> = []): Map<string, string> {
  const unit = columnUnit(name);
  return new Map([...(unit ? [[UNIT_KEY, unit] as [string, string]] : []), ...extra]);
}

/**
 * Turns evaluated chunks into Arrow record batches sharing one schema, whichever engine ran: computed floats in
 * `floatType` (Float32 unless the sweep asked for f64), counts as Int64, flags as Bool, categories as dictionaries
 * (one per column for the whole sweep). Columns already in their schema type are used without a copy.
 */
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
    private readonly floatType: FloatType,
    constantLabels: ReadonlyMap<string, readonly string[]> = new Map(),
    /**
     * Dictionaries shared with other assemblers writing to the same output: an Arrow IPC file allows one
     * dictionary per column, so runs over several hardware must hand the writer the very same vectors.
     */
    sharedDictionaries: Map<string, Vector<Utf8>> = new Map(),
    /** Schema metadata: the sweep's provenance (see src/provenance.ts). */
    metadata: Map<string, string> = new Map(),
    /** The formula and its constants, to recompute exact counts from f32 results. */
    private readonly exact?: { formula: Formula; constants: Float64Array },
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
          if (spec.flag) return new Field(column.name, new Bool(), false, fieldMetadata(column.name));
          return new Field(column.name, new Int32(), false, fieldMetadata(column.name));
        }
        case 'computed': {
          if (column.kind === 'int') return new Field(column.name, new Int32(), false, fieldMetadata(column.name));
          if (column.kind === 'bool') return new Field(column.name, new Bool(), false, fieldMetadata(column.name));
          if (column.count) return new Field(column.name, new Int64(), false, fieldMetadata(column.name));
          const type = floatType === 'f64' ? new Float64() : new Float32();
          return new Field(column.name, type, false, fieldMetadata(column.name, [[PY_TYPE_KEY, 'float']]));
        }
        case 'constant': {
          if (typeof column.value === 'string') {
            const labels = constantLabels.get(column.name) ?? [column.value];
            if (!labels.includes(column.value)) throw new Error(`${column.name}: ${column.value} missing from its labels`);
            this.constantCodes.set(column.name, labels.indexOf(column.value));
            dictionary(column.name, labels);
            return new Field(column.name, new Dictionary(new Utf8(), new Int32(), dictionaryId++), false);
          }
          return new Field(column.name, new Float64(), false, fieldMetadata(column.name, [[PY_TYPE_KEY, 'float']]));
        }
      }
    });
    this.schema = new Schema(fields, metadata);
  }

  batch(chunk: EvaluatedChunk): RecordBatch {
    const length = chunk.grid.length;
    // f32 cannot hold every count exactly: the formula recomputes those in f64 from the grid.
    const exact =
      this.exact?.formula.exactColumns && length > 0 && chunk.computed[0] instanceof Float32Array
        ? this.exact.formula.exactColumns(this.exact.constants, chunk.grid, chunk.computed, length)
        : undefined;
    const children: Data[] = this.columns.map((column, i) => {
      const type = this.schema.fields[i].type as DataType;
      switch (column.from) {
        case 'grid': {
          const values = chunk.grid.columns[this.gridIndex.get(column.column)!];
          const dictionary = this.dictionaries.get(column.name);
          if (dictionary) return makeData({ type: type as Dictionary, length, data: values, dictionary });
          if (DataType.isBool(type)) return makeData({ type: type as Bool, length, data: packBits(values) });
          return makeData({ type: type as Int32, length, data: values });
        }
        case 'computed': {
          const values = chunk.computed[column.index];
          // Integer and boolean results are computed as floats (WGSL writes one f32 buffer); they are exact small
          // integers, converted here.
          if (column.kind === 'int') return makeData({ type: type as Int32, length, data: Int32Array.from(values) });
          if (column.kind === 'bool') return makeData({ type: type as Bool, length, data: packBits(values) });
          if (column.count) {
            return makeData({ type: type as Int64, length, data: toInt64(exact?.get(column.index) ?? values) });
          }
          return makeData({ type: type as Float64, length, data: toFloat(values, this.floatType) as Float64Array });
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
