import type { Formula } from '../formulas/types.js';
import type { GridChunk } from '../grid/grid.js';

/** Computed columns of one grid chunk: Float64 on the CPU reference, Float32 from WGSL (no f64 there). */
export type ComputedColumns = Float64Array[] | Float32Array[];

export interface EvaluatedChunk {
  grid: GridChunk;
  computed: ComputedColumns;
}

/**
 * What both engines implement. An engine consumes grid chunks and yields them back with their computed columns,
 * in order. It may work on several chunks at once (the GPU engine overlaps upload, compute and readback).
 */
export interface Engine {
  readonly kind: 'cpu' | 'gpu';
  /** Human-readable description of what ran, e.g. the adapter's name. */
  readonly description: string;
  /** Largest chunk (rows) this engine wants for a formula; the grid is cut to it. */
  chunkRows(formula: Formula): number;
  evaluate(formula: Formula, constants: Float64Array, chunks: Iterable<GridChunk>): AsyncGenerator<EvaluatedChunk>;
  dispose(): Promise<void>;
}

export type EngineChoice = 'auto' | 'cpu' | 'gpu';
