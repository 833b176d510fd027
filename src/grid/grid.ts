/**
 * The search grid: every valid combination of the search dimensions, enumerated in a fixed nested-loop order and
 * emitted in chunks of Int32 columns (categorical columns hold dictionary indices). Chunks are plain typed arrays,
 * so they become Arrow columns and GPU uploads without a copy.
 */

export interface GridColumnSpec {
  name: string;
  /** Dictionary labels for a categorical column; the column holds indices into them. */
  labels?: readonly string[];
  /** A 0/1 flag: usable as a condition in --where (`sp`, `not sp`). */
  flag?: boolean;
}

/**
 * One nested loop. A level either sweeps `values` or derives a single value from the columns set by the levels
 * before it (`derive`; NaN or a non-integer marks the row invalid). `accept` prunes as soon as the columns it reads
 * are set, so invalid sub-trees are never expanded.
 */
export interface GridLevel {
  column: number;
  values?: Int32Array;
  derive?: (row: Int32Array) => number;
  accept?: (row: Int32Array) => boolean;
}

export interface GridChunk {
  /** Rows in this chunk. */
  length: number;
  /** One Int32Array per grid column, each exactly `length` long. */
  columns: Int32Array[];
  /** Index of this chunk's first row in the whole grid. */
  offset: number;
  /** Names of `columns`, shared by every chunk of a plan. */
  columnNames: readonly string[];
}

/** The sub-trees under the valid prefixes numbered [first, end) among those of length `depth` (1..levels). */
export interface GridSpan {
  depth: number;
  first: number;
  end: number;
}

export class GridPlan {
  readonly columns: GridColumnSpec[];
  readonly levels: GridLevel[];

  constructor(columns: GridColumnSpec[], levels: GridLevel[]) {
    this.columns = columns;
    this.levels = levels;
    const set = new Set(levels.map((level) => level.column));
    if (set.size !== columns.length || levels.length !== columns.length) {
      throw new Error('grid plan: every column needs exactly one level');
    }
  }

  columnIndex(name: string): number {
    const index = this.columns.findIndex((column) => column.name === name);
    if (index < 0) throw new Error(`grid plan has no column ${name}`);
    return index;
  }

  /** Size of the raw cross product of the swept dimensions: the configs considered before validity rules. */
  candidateCount(): number {
    return this.levels.reduce((product, level) => product * (level.values ? level.values.length : 1), 1);
  }

  /** Counts valid rows. */
  count(): number {
    let n = 0;
    for (const chunk of this.chunks(1 << 16)) n += chunk.length;
    return n;
  }

  /**
   * Enumerates valid rows in chunks of at most `chunkRows`: a depth-first walk over the levels with an explicit
   * stack (no recursion), yielding only once per chunk so the generator costs nothing per row. With `span`, only
   * the sub-trees of the valid prefixes numbered [first, end) at that depth are expanded (a shard, see shard.ts);
   * `offset` then counts from the span's first row.
   */
  *chunks(chunkRows: number, span?: GridSpan): Generator<GridChunk> {
    if (!(chunkRows >= 1)) throw new Error(`chunkRows must be at least 1, got ${chunkRows}`);
    const width = this.columns.length;
    const columnNames = this.columns.map((column) => column.name);
    const levels = this.levels;
    const last = levels.length - 1;
    const row = new Int32Array(width);
    const index = new Int32Array(levels.length);
    let columns = Array.from({ length: width }, () => new Int32Array(chunkRows));
    let n = 0;
    let offset = 0;
    let depth = 0;
    index[0] = -1;
    // The prefix level whose valid nodes the span numbers; -1 (never reached) without a span.
    const spanLevel = span ? span.depth - 1 : -1;
    let prefixes = 0;
    while (depth >= 0) {
      const level = levels[depth];
      const i = ++index[depth];
      if (level.values) {
        if (i >= level.values.length) {
          depth--;
          continue;
        }
        row[level.column] = level.values[i];
      } else {
        if (i >= 1) {
          depth--;
          continue;
        }
        const value = level.derive!(row);
        if (!Number.isInteger(value)) continue;
        row[level.column] = value;
      }
      if (level.accept && !level.accept(row)) continue;
      if (depth === spanLevel) {
        const ordinal = prefixes++;
        if (ordinal < span!.first) continue;
        if (ordinal >= span!.end) break;
      }
      if (depth < last) {
        depth++;
        index[depth] = -1;
        continue;
      }
      for (let c = 0; c < width; c++) columns[c][n] = row[c];
      if (++n === chunkRows) {
        yield { length: n, columns, offset, columnNames };
        offset += n;
        columns = Array.from({ length: width }, () => new Int32Array(chunkRows));
        n = 0;
      }
    }
    if (n > 0) yield { length: n, columns: columns.map((column) => column.subarray(0, n)), offset, columnNames };
  }
}
