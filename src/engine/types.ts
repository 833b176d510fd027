import type { Formula } from '../formulas/types.js';
import type { GridChunk } from '../grid/grid.js';
import type { EngineSelection } from './selection.js';

/** Computed columns of one grid chunk: Float64 on the CPU reference, Float32 from WGSL (no f64 there). */
export type ComputedColumns = Float64Array[] | Float32Array[];

export interface EvaluatedChunk {
  grid: GridChunk;
  computed: ComputedColumns;
  /** Global row ids (grid order) when the rows are a selection; absent when the chunk is whole. */
  rowIds?: Float64Array;
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
