import { emptyRow, rowAt, unpack } from '../../formulas/full.js';
import type { Formula } from '../../formulas/types.js';
import {
  FULL_INPUTS,
  FULL_OUTPUTS,
  full_estimate,
  FullConstants,
  FullRow,
  RECOMPUTE_FULL,
  same_as_previous_middle,
  stage_memory,
  stage_memory_base,
  stage_microbatch,
  stage_time,
  StageMemory,
  StageMemoryBase,
  StageMicrobatch,
  StageSource,
  StageTime,
} from '../../model.js';

/**
 * The grid columns a stage's shared terms (stage_memory_base, stage_microbatch, same_as_previous_middle) read
 * besides sp and recompute: the layout class. Rows of one class are contiguous in grid order (ZeRO, gradient
 * reduction, resharding, SP, recompute and offload are the innermost levels, src/formulas/full.ts), so one class
 * at a time is all the memo keeps. ngpus and global_batch_size are absent: only full_estimate itself reads them.
 */
export const LAYOUT_KEY = [
  'seq_length',
  'tp',
  'pp',
  'vpp',
  'schedule',
  'cp',
  'ep',
  'etp',
  'dp',
  'edp',
  'mbs',
  'num_microbatches',
  'first_stage_layers',
  'last_stage_layers',
] as const satisfies readonly (typeof FULL_INPUTS)[number][];

/** Recompute codes 0..RECOMPUTE_FULL: the slots of one SP setting. */
const RECOMPUTE_SLOTS = RECOMPUTE_FULL + 1;

/**
 * full_estimate's stages from terms shared within a layout class: each (SP, recompute, rank) computes its
 * micro-batch time and its memory base once, and each row adds only what ZeRO, gradient reduction and offload
 * change. The same functions compute the same values in the same order, so results are bit-identical to
 * DIRECT_STAGES (test/cpu-memo.test.ts).
 */
export class LayoutMemo implements StageSource {
  private readonly keyColumns: Int32Array[];
  private readonly key = new Int32Array(LAYOUT_KEY.length);
  private valid = false;
  private bases: (StageMemoryBase | undefined)[] = [];
  private microbatches: (StageMicrobatch | undefined)[] = [];
  /** Per rank: 0 not known yet, 1 evaluated, 2 skipped as the same as the previous middle rank. */
  private skips = new Int8Array(0);

  constructor(inputs: Int32Array[]) {
    this.keyColumns = LAYOUT_KEY.map((name) => inputs[FULL_INPUTS.indexOf(name)]);
  }

  /** Moves to row `i`, forgetting the shared terms when its layout class differs from the previous row's. */
  enter(i: number): void {
    const columns = this.keyColumns;
    const key = this.key;
    let same = this.valid;
    for (let k = 0; k < columns.length; k++) {
      const value = columns[k][i];
      if (key[k] !== value) {
        key[k] = value;
        same = false;
      }
    }
    if (same) return;
    this.valid = true;
    this.bases = [];
    this.microbatches = [];
    this.skips = new Int8Array(key[LAYOUT_KEY.indexOf('pp')]);
  }

  private slot(r: FullRow, i: number): number {
    return (r.sp * RECOMPUTE_SLOTS + r.recompute) * r.pp + i;
  }

  memory(c: FullConstants, r: FullRow, i: number): StageMemory {
    const slot = this.slot(r, i);
    const base = this.bases[slot] ?? (this.bases[slot] = stage_memory_base(c, r, i));
    return stage_memory(c, r, i, base);
  }

  time(c: FullConstants, r: FullRow, i: number): StageTime {
    const slot = this.slot(r, i);
    const mb = this.microbatches[slot] ?? (this.microbatches[slot] = stage_microbatch(c, r, i));
    return stage_time(c, r, i, mb);
  }

  same_as_previous_middle(c: FullConstants, r: FullRow, i: number): boolean {
    if (this.skips[i] === 0) this.skips[i] = same_as_previous_middle(c, r, i) ? 2 : 1;
    return this.skips[i] === 2;
  }
}

/** The full formula's CPU kernel with per-class terms computed once per class (same results as its evaluate). */
export function evaluateFullMemoized(constants: Float64Array, inputs: Int32Array[], outputs: Float64Array[], length: number): void {
  const c = unpack(constants);
  const row = emptyRow();
  const memo = new LayoutMemo(inputs);
  const result = new Float64Array(FULL_OUTPUTS.length);
  const width = FULL_OUTPUTS.length;
  for (let i = 0; i < length; i++) {
    memo.enter(i);
    full_estimate(c, rowAt(inputs, i, row), result, memo);
    for (let j = 0; j < width; j++) outputs[j][i] = result[j];
  }
}

/** Kernels that share per-class terms, by formula name; other formulas evaluate row by row. */
export function memoizedKernel(formula: Formula): typeof evaluateFullMemoized | undefined {
  return formula.name === 'full' ? evaluateFullMemoized : undefined;
}
