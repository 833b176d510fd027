import type { GridChunk } from '../grid/grid.js';
import type { ComputedColumns, EngineSelection, EvaluatedChunk } from './types.js';

// The selection's shape lives in types.ts (the Engine interface takes one); re-exported for the engines' imports.
export type { EngineSelection, RowPredicate } from './types.js';

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
