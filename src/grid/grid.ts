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
 * One nested loop. A level either sweeps `values` (optionally mapped through `map`, which sees the columns set so
 * far and may also set the columns of later `derive` levels) or derives a single value from the columns set by the
 * levels before it (`derive`). NaN or a non-integer from `map` or `derive` marks the row invalid. `accept` prunes as
 * soon as the columns it reads are set, so invalid sub-trees are never expanded. `rule` names what a rejection at
 * this level enforces (a string, or a function of the rejected row when the level checks several rules).
 */
export interface GridLevel {
  column: number;
  values?: Int32Array;
  map?: (row: Int32Array, value: number) => number;
  derive?: (row: Int32Array) => number;
  accept?: (row: Int32Array) => boolean;
  rule?: string | ((row: Int32Array) => string);
}

/** A value of the first level (e.g. a GPU count) for which no row was valid, and why. */
export interface EmptyGroup {
  value: number;
  /** The rule that removed the most candidates of this value, and how many it removed. */
  rule: string;
  removed: number;
}

/** What the last complete walk over the grid found: the rows per first-level value and the rules that pruned. */
export interface GridDiagnostics {
  rows: number;
  /** Candidates (of the raw cross product) each rule removed. */
  removedByRule: Map<string, number>;
  emptyGroups: EmptyGroup[];
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
  /** Filled by each walk that runs to the end (`chunks`, `count`). */
  diagnostics?: GridDiagnostics;

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
    // Candidates below one value of each level: what a rejection there removes from the raw cross product.
    const below = new Float64Array(levels.length);
    for (let d = levels.length - 1, product = 1; d >= 0; d--) {
      below[d] = product;
      product *= levels[d].values ? levels[d].values!.length : 1;
    }
    const removedByRule = new Map<string, number>();
    let groupRemoved = new Map<string, number>();
    const emptyGroups: EmptyGroup[] = [];
    let groupRows = 0;
    let total = 0;
    // A level with one rule adds to a plain counter (the hot path); rules that depend on the row go through a map.
    const staticRule = levels.map((level) => (typeof level.rule === 'function' ? undefined : (level.rule ?? this.columns[level.column].name)));
    const staticRemoved = new Float64Array(levels.length);
    const reject = (d: number) => {
      if (staticRule[d] !== undefined) {
        staticRemoved[d] += below[d];
        return;
      }
      const rule = (levels[d].rule as (row: Int32Array) => string)(row);
      groupRemoved.set(rule, (groupRemoved.get(rule) ?? 0) + below[d]);
    };
    const closeGroup = (value: number) => {
      for (let d = 0; d < levels.length; d++) {
        if (staticRemoved[d] === 0) continue;
        groupRemoved.set(staticRule[d]!, (groupRemoved.get(staticRule[d]!) ?? 0) + staticRemoved[d]);
        staticRemoved[d] = 0;
      }
      for (const [rule, removed] of groupRemoved) removedByRule.set(rule, (removedByRule.get(rule) ?? 0) + removed);
      if (groupRows === 0) {
        let worst: [string, number] = ['', -1];
        for (const entry of groupRemoved) if (entry[1] > worst[1]) worst = entry;
        emptyGroups.push({ value, rule: worst[0], removed: worst[1] });
      }
      groupRemoved = new Map();
      total += groupRows;
      groupRows = 0;
    };
    let columns = Array.from({ length: width }, () => new Int32Array(chunkRows));
    let n = 0;
    // The innermost levels that only sweep values (no map, no derive) change from row to row; every level above them
    // holds its value over a run of rows. Their columns are written once per run (from runStart to n, before the
    // walk changes any of them and before a chunk leaves), not once per row.
    let inner = levels.length;
    while (inner > 0 && levels[inner - 1].values && !levels[inner - 1].map) inner--;
    const innerColumns = levels.slice(inner).map((level) => level.column);
    const outerColumns = levels.slice(0, inner).map((level) => level.column);
    let runStart = 0;
    const flushOuter = () => {
      for (const c of outerColumns) {
        const column = columns[c];
        const value = row[c];
        for (let k = runStart; k < n; k++) column[k] = value;
      }
      runStart = n;
    };
    let offset = 0;
    let depth = 0;
    index[0] = -1;
    // The prefix level whose valid nodes the span numbers; -1 (never reached) without a span.
    const spanLevel = span ? span.depth - 1 : -1;
    let prefixes = 0;
    while (depth >= 0) {
      if (depth < inner && runStart < n) flushOuter();
      const level = levels[depth];
      const i = ++index[depth];
      if (level.values) {
        if (i >= level.values.length) {
          if (depth === 0 && i > 0) closeGroup(level.values[i - 1]);
          depth--;
          continue;
        }
        if (depth === 0 && i > 0) closeGroup(level.values[i - 1]);
        if (level.map) {
          const value = level.map(row, level.values[i]);
          if (!Number.isInteger(value)) {
            reject(depth);
            continue;
          }
          row[level.column] = value;
        } else {
          row[level.column] = level.values[i];
        }
      } else {
        if (i >= 1) {
          depth--;
          continue;
        }
        const value = level.derive!(row);
        if (!Number.isInteger(value)) {
          reject(depth);
          continue;
        }
        row[level.column] = value;
      }
      if (level.accept && !level.accept(row)) {
        reject(depth);
        continue;
      }
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
      for (let k = 0; k < innerColumns.length; k++) columns[innerColumns[k]][n] = row[innerColumns[k]];
      groupRows++;
      if (++n === chunkRows) {
        flushOuter();
        yield { length: n, columns, offset, columnNames };
        offset += n;
        columns = Array.from({ length: width }, () => new Int32Array(chunkRows));
        n = 0;
        runStart = 0;
      }
    }
    this.diagnostics = { rows: total, removedByRule, emptyGroups };
    flushOuter();
    if (n > 0) yield { length: n, columns: columns.map((column) => column.subarray(0, n)), offset, columnNames };
  }

  /** Walks the whole grid (without keeping rows) and returns what it found. */
  diagnose(): GridDiagnostics {
    for (const chunk of this.chunks(1 << 16)) void chunk;
    return this.diagnostics!;
  }
}
