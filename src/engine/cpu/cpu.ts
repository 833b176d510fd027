import type { Formula } from '../../formulas/types.js';
import type { GridChunk } from '../../grid/grid.js';
import type { Engine, EvaluatedChunk } from '../types.js';
import { EngineSelection, selectOnCpu } from '../selection.js';
import { memoizedKernel } from './memo.js';

/**
 * Rows per chunk on the CPU: large enough to amortise per-chunk work, small enough to stream, and small enough that
 * each chunk's fresh output columns (34 of 128 KiB for the full formula) stay in cache while they are zeroed and
 * written. On this 2-core machine the memoized kernel runs 15-25% faster than at 65,536 rows (bench/cpu-rate.mjs,
 * best of 8 rounds: 0.89-0.96 against 0.75-0.84 M rows per CPU second). When the consumer hands the columns back
 * (EvaluatedChunk.release) they are reused instead, and 4,096, 8,192 and 16,384 rows measure alike (8.8-9.2 CPU s
 * for llama405b-1k..8k, bench/measure.mjs evaluate, 2026-12-02 under a load of 7 on 2 cores).
 */
export const CPU_CHUNK_ROWS = 1 << 14;

/** The reference engine: the formulas of src/model.ts in f64, one row at a time. */
export class CpuEngine implements Engine {
  readonly kind = 'cpu' as const;
  readonly description = `CPU reference (f64), Node ${process.version}`;

  chunkRows(): number {
    return CPU_CHUNK_ROWS;
  }

  async *evaluate(
    formula: Formula,
    constants: Float64Array,
    chunks: Iterable<GridChunk>,
    selection?: EngineSelection,
  ): AsyncGenerator<EvaluatedChunk> {
    // Output columns handed back by the consumer (EvaluatedChunk.release), each set CPU_CHUNK_ROWS or more long.
    const free: Float64Array[][] = [];
    for (const grid of chunks) {
      const reused = free.pop();
      const outputs = reused && reused[0].length >= grid.length ? reused : undefined;
      const evaluated = evaluateChunkOnCpu(formula, constants, grid, { outputs });
      const owned = outputs ?? (evaluated.computed as Float64Array[]);
      const recycle = () => free.push(owned);
      if (selection) {
        // The selection copies the rows it keeps: the outputs are free again at once.
        const selected = selectOnCpu(evaluated, selection);
        recycle();
        yield selected;
      } else {
        let released = false;
        evaluated.release = () => {
          if (released) return;
          released = true;
          recycle();
        };
        yield evaluated;
      }
      await yieldToEventLoop();
    }
  }

  async dispose(): Promise<void> {}
}

/**
 * Lets timers, I/O callbacks and signal handlers run. An async generator consumed by `for await` resumes through
 * microtasks only, so without this a CPU sweep that writes nothing (`--top`) never lets Node see a Ctrl-C until it
 * ends. One macrotask turn per chunk (16,384 rows, milliseconds) costs nothing measurable.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function inputColumns(formula: Formula, grid: GridChunk, columnNames: readonly string[]): Int32Array[] {
  return formula.inputs.map((name) => {
    const index = columnNames.indexOf(name);
    if (index < 0) throw new Error(`formula ${formula.name} reads grid column ${name}, which the grid lacks`);
    return grid.columns[index];
  });
}

export interface CpuEvaluateOptions {
  /**
   * Compute the terms rows of one layout class share once per class (default true); false evaluates every row
   * from scratch with the formula's own kernel. Both give bit-identical results (test/cpu-memo.test.ts).
   */
  memo?: boolean;
  /**
   * Columns to write the results into (one per output, each at least the chunk's length; the chunk's `computed`
   * are views of their first rows) instead of fresh ones. Every row of every output is written.
   */
  outputs?: Float64Array[];
}

export function evaluateChunkOnCpu(
  formula: Formula,
  constants: Float64Array,
  grid: GridChunk,
  options: CpuEvaluateOptions = {},
): EvaluatedChunk {
  const computed = options.outputs
    ? options.outputs.map((column) => (column.length === grid.length ? column : column.subarray(0, grid.length)))
    : formula.outputs.map(() => new Float64Array(grid.length));
  const inputs = inputColumns(formula, grid, grid.columnNames);
  const kernel = options.memo === false ? undefined : memoizedKernel(formula);
  if (kernel) kernel(constants, inputs, computed, grid.length);
  else formula.evaluate(constants, inputs, computed, grid.length);
  return { grid, computed };
}
