import type { LoadedConfig } from '../config/load.js';
import type { ParsedDimension, SearchKeyName } from '../config/space.js';
import type { GridPlan } from '../grid/grid.js';

/** Where a result column comes from: the grid, the engine, or a per-sweep constant. */
export type ResultColumn =
  | { name: string; from: 'grid'; column: string }
  | { name: string; from: 'computed'; index: number }
  | { name: string; from: 'constant'; value: string | number };

/**
 * A cost formula: what it searches over, how it packs model constants, and which columns it computes. The math
 * lives in src/model.ts and shaders/model.wgsl; a formula ties it to the grid and to the result columns.
 */
export interface Formula {
  readonly name: string;
  readonly description: string;
  /** Names of the packed constants, in uniform order (must match the WGSL struct). */
  readonly constantNames: readonly string[];
  /** Grid columns the kernel reads, in argument order. */
  readonly inputs: readonly string[];
  /** Columns the kernel computes, in order. */
  readonly outputs: readonly string[];
  /**
   * Set when `--engine auto` should use the CPU even with a GPU present, with the reason: the PoC formula exists
   * to give back the PoC's numbers to 1e-9, which f32 cannot.
   */
  readonly autoPrefersCpu?: string;
  /** Name of the WGSL function in shaders/model.wgsl. */
  readonly wgslFunction: string;
  searchDefaults(config: LoadedConfig): Partial<Record<SearchKeyName, unknown>>;
  /** Validates formula-specific requirements of the config and packs the constants. */
  packConstants(config: LoadedConfig): Float64Array;
  buildGrid(config: LoadedConfig, space: Map<SearchKeyName, ParsedDimension>): GridPlan;
  /** Result columns, in output order. */
  resultColumns(config: LoadedConfig): ResultColumn[];
  /** CPU kernel: evaluates `length` rows of `inputs` into `outputs` (one array per computed column). */
  evaluate(constants: Float64Array, inputs: Int32Array[], outputs: Float64Array[] | Float32Array[], length: number): void;
}
