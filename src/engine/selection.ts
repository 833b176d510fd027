import type { GridChunk } from '../grid/grid.js';
import type { ComputedColumns, EvaluatedChunk } from './types.js';

/** A row condition that both engines can evaluate: in JS over columns, and as WGSL source. */
export interface RowPredicate {
  readonly text: string;
  test(grid: ArrayLike<number>[], computed: ArrayLike<number>[], i: number): boolean;
  wgsl(gridExpr: (gridIndex: number) => string, computedExpr: (name: string) => string): string;
}

/**
 * Which rows an engine keeps: those passing `where`, and, for a top-k, those whose `by` value can still enter
 * their group's top k (at least as good as the group's current threshold). Engines apply it before readback;
 * the sweep re-applies it exactly, so a row an engine keeps in excess never changes the result.
 */
export interface EngineSelection {
  /** Identifies the generated shader (pipeline cache key). */
  readonly key: string;
  readonly where?: RowPredicate;
  readonly top?: {
    /** Index of the ranked column among the formula's outputs. */
    byIndex: number;
    descending: boolean;
    /** Grid column whose value is the group id (thresholds are indexed by it), or -1 for one group. */
    perGridIndex: number;
    /** Current thresholds, indexed by group id; read before each chunk is submitted. */
    thresholds: () => Float32Array;
  };
}

/** Whether a value can enter a top-k whose threshold is `threshold` (ties may still win on the tie-breaks). */
export function passesThreshold(value: number, threshold: number, descending: boolean): boolean {
  return descending ? value >= threshold : value <= threshold;
}

/** Keeps the rows of `chunk` that pass `selection`, in grid order, with their global row ids. */
export function selectOnCpu(chunk: EvaluatedChunk, selection: EngineSelection): EvaluatedChunk {
  const { grid, computed } = chunk;
  const keep: number[] = [];
  const top = selection.top;
  const thresholds = top?.thresholds();
  for (let i = 0; i < grid.length; i++) {
    if (selection.where && !selection.where.test(grid.columns, computed, i)) continue;
    if (top && thresholds) {
      const group = top.perGridIndex < 0 ? 0 : grid.columns[top.perGridIndex][i];
      if (!passesThreshold(computed[top.byIndex][i], thresholds[group], top.descending)) continue;
    }
    keep.push(i);
  }
  return gatherRows(chunk, Uint32Array.from(keep));
}

/** The rows `local` (indices into the chunk, ascending) of a chunk, with their global row ids. */
export function gatherRows(chunk: EvaluatedChunk, local: Uint32Array): EvaluatedChunk {
  const n = local.length;
  const baseIds = chunk.rowIds;
  const rowIds = new Float64Array(n);
  for (let k = 0; k < n; k++) rowIds[k] = baseIds ? baseIds[local[k]] : chunk.grid.offset + local[k];
  const columns = chunk.grid.columns.map((column) => {
    const out = new Int32Array(n);
    for (let k = 0; k < n; k++) out[k] = column[local[k]];
    return out;
  });
  const computed = (chunk.computed as Array<Float64Array | Float32Array>).map((column) => {
    const out = column instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
    for (let k = 0; k < n; k++) out[k] = column[local[k]];
    return out;
  }) as ComputedColumns;
  const grid: GridChunk = { length: n, columns, offset: chunk.grid.offset, columnNames: chunk.grid.columnNames };
  return { grid, computed, rowIds };
}
