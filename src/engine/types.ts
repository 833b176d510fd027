import type { Formula } from '../formulas/types.js';
import type { GridChunk } from '../grid/grid.js';

/** Computed columns of one grid chunk: Float64 on the CPU reference, Float32 from WGSL (no f64 there). */
export type ComputedColumns = Float64Array[] | Float32Array[];

export interface EvaluatedChunk {
  grid: GridChunk;
  computed: ComputedColumns;
  /** Global row ids (grid order) when the rows are a selection; absent when the chunk is whole. */
  rowIds?: Float64Array;
  /**
   * Hands `computed` back to the engine, which may then write a later chunk into the same arrays. A consumer calls
   * it once nothing reads them any more or keeps them (it copied what it needs); one that never calls it gets
   * fresh arrays with every chunk. Fresh arrays are what the CPU engine spends most on after the model itself.
   */
  release?: () => void;
}

/**
 * What both engines implement. An engine consumes grid chunks and yields them back with their computed columns,
 * in order. It may work on several chunks at once (the GPU engine overlaps upload, compute and readback).
 */
export interface Engine {
  readonly kind: 'cpu' | 'gpu';
  /** Human-readable description of what ran, e.g. the adapter's name. */
  readonly description: string;
  /** Largest chunk (rows) this engine wants for a formula and a grid of `gridWidth` columns. */
  chunkRows(formula: Formula, gridWidth: number): number;
  /**
   * Evaluates chunks in order. With a selection, only the rows passing it come back (in grid order, with their
   * row ids): the GPU engine filters before readback.
   */
  evaluate(
    formula: Formula,
    constants: Float64Array,
    chunks: Iterable<GridChunk>,
    selection?: EngineSelection,
  ): AsyncGenerator<EvaluatedChunk>;
  dispose(): Promise<void>;
}

export type EngineChoice = 'auto' | 'cpu' | 'gpu';

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
