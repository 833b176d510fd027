import type { Calibration } from '../config/calibration.js';
import type { HardwareConfig } from '../config/hardware.js';
import type { LoadedConfig } from '../config/load.js';
import type { ParsedDimension, SearchKeyName } from '../config/space.js';
import type { GridPlan } from '../grid/grid.js';

// A prime GPU count near 1,000 (911) leaves dp = 911, whose nearest multiple to a 4,096-sequence batch is 11.0% away:
// 1/8 answers every count up to 1,024 for the bundled models (docs/memory-model.md, section 5).
export const DEFAULT_GBS_TOLERANCE = 0.125;

/** Everything a formula reads besides the grid: the model and trainer config, the hardware, the options. */
export interface SweepContext {
  config: LoadedConfig;
  hardware: HardwareConfig;
  /** Fraction of memory kept free: a config fits when total x (1 + headroom) <= memory. */
  headroom: number;
  /**
   * Relative distance the global batch may move from its target so that dp · mbs divides it (0: the target
   * exactly); the grid's global_batch_size column holds the batch used. Default DEFAULT_GBS_TOLERANCE.
   */
  gbsTolerance?: number;
  /** Time-model efficiency constants; configs/calibration.yaml when absent. */
  calibration?: Calibration;
}

/** Where a result column comes from: the grid, the engine, or a per-sweep constant. */
export type ResultColumn =
  | { name: string; from: 'grid'; column: string }
  | { name: string; from: 'computed'; index: number; kind?: 'float' | 'int' | 'bool' }
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
  searchDefaults(ctx: SweepContext): Partial<Record<SearchKeyName, unknown>>;
  /** Validates formula-specific requirements of the config and packs the constants. */
  packConstants(ctx: SweepContext): Float64Array;
  buildGrid(ctx: SweepContext, space: Map<SearchKeyName, ParsedDimension>): GridPlan;
  /** Result columns, in output order. */
  resultColumns(ctx: SweepContext): ResultColumn[];
  /**
   * For the cross-check: columns whose error is judged relative to another column, because they are a difference
   * (exposed = total - overlapped) whose f32 rounding is proportional to the operands, not to the result. A time
   * component is accurate to rtol of the step time it is part of.
   */
  readonly errorScale?: Readonly<Record<string, string>>;
  /**
   * For the cross-check: whether row `i` sits on a decision boundary (a near tie between pipeline stages, a total
   * within `rtol` of the memory limit), where f32 and f64 may legitimately choose differently.
   */
  nearTie?(constants: Float64Array, inputs: Int32Array[], i: number, rtol: number): boolean;
  /** CPU kernel: evaluates `length` rows of `inputs` into `outputs` (one array per computed column). */
  evaluate(constants: Float64Array, inputs: Int32Array[], outputs: Float64Array[] | Float32Array[], length: number): void;
}
