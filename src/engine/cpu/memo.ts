import { emptyRow, rowAt, unpack } from '../../formulas/full.js';
import type { Formula } from '../../formulas/types.js';
import {
  FULL_INPUTS,
  FULL_OUTPUTS,
  full_estimate,
  model_flops_per_token,
  model_params,
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
  TermSource,
  StageTime,
} from '../../model.js';

/** Grid columns that change within a layout class (and ngpus, global_batch_size): set on every row. */
const PER_ROW_FIELDS = ['ngpus', 'global_batch_size', 'zero', 'grad_reduce', 'reshard', 'sp', 'recompute', 'offload'] as const;

/**
 * Every other grid column keys the layout class: the ones a stage's shared terms (stage_memory_base,
 * stage_microbatch, same_as_previous_middle) read besides sp and recompute, and, by construction, any column added
 * later, so a new input can only make the memo forget more often, never reuse a stale term. Rows of one class are
 * contiguous in grid order (ZeRO, gradient reduction, resharding, SP, recompute and offload are the innermost
 * levels, src/formulas/full.ts), so one class at a time is all the memo keeps.
 */
export const LAYOUT_KEY = FULL_INPUTS.filter((name) => !(PER_ROW_FIELDS as readonly string[]).includes(name));
const PP_IN_KEY = LAYOUT_KEY.indexOf('pp');

/** Recompute codes 0..RECOMPUTE_FULL: the slots of one SP setting. */
const RECOMPUTE_SLOTS = RECOMPUTE_FULL + 1;

/**
 * full_estimate's stages from terms shared within a layout class: each (SP, recompute, rank) computes its
 * micro-batch time and its memory base once, and each row adds only what ZeRO, gradient reduction and offload
 * change. The same functions compute the same values in the same order, so results are bit-identical to
 * DIRECT_TERMS (test/cpu-memo.test.ts).
 */
export class LayoutMemo implements TermSource {
  private readonly keyColumns: Int32Array[];
  private readonly key = new Int32Array(LAYOUT_KEY.length);
  private valid = false;
  private bases: (StageMemoryBase | undefined)[] = [];
  private microbatches: (StageMicrobatch | undefined)[] = [];
  /** model_params by active_only, model_flops_per_token by recompute and hardware (NaN: not computed yet). */
  private readonly params = new Float64Array(2);
  private readonly flops = new Float64Array(2 * RECOMPUTE_SLOTS);
  /** Per rank: 0 not known yet, 1 evaluated, 2 skipped as the same as the previous middle rank. */
  private skips = new Int8Array(0);

  constructor(inputs: Int32Array[]) {
    this.keyColumns = LAYOUT_KEY.map((name) => inputs[FULL_INPUTS.indexOf(name)]);
  }

  /**
   * Moves to row `i`, forgetting the shared terms when its layout class differs from the previous row's; returns
   * whether it did.
   */
  enter(i: number): boolean {
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
    if (same) return false;
    this.valid = true;
    this.bases = [];
    this.microbatches = [];
    this.skips = new Int8Array(key[PP_IN_KEY]);
    this.params.fill(NaN);
    this.flops.fill(NaN);
    return true;
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

  // tp and seq_length are part of the layout key: within a class only the other arguments vary.
  model_params(c: FullConstants, tp: number, seq_length: number, active_only: number): number {
    const value = this.params[active_only];
    return value === value ? value : (this.params[active_only] = model_params(c, tp, seq_length, active_only));
  }

  model_flops_per_token(c: FullConstants, tp: number, seq_length: number, recompute: number, hardware: number): number {
    const slot = recompute * 2 + hardware;
    const value = this.flops[slot];
    return value === value ? value : (this.flops[slot] = model_flops_per_token(c, tp, seq_length, recompute, hardware));
  }
}

/**
 * Rows evaluated into a row-major scratch block before they are spread over the output columns: writing one row's
 * 34 values straight into 34 column arrays misses the cache on most stores, while a block of 256 rows (70 KB) stays
 * in L2 and then leaves column by column, sequentially. A microbenchmark of just the writes on this machine's 2
 * cores under load: about 9 ns per value row by row, 3 ns blocked (CPU time, 65,536-row columns).
 */
const BLOCK_ROWS = 256;

/** The full formula's CPU kernel with per-class terms computed once per class (same results as its evaluate). */
export function evaluateFullMemoized(constants: Float64Array, inputs: Int32Array[], outputs: Float64Array[], length: number): void {
  const c = unpack(constants);
  const row = emptyRow();
  const memo = new LayoutMemo(inputs);
  const width = FULL_OUTPUTS.length;
  const block = new Float64Array(BLOCK_ROWS * width);
  const views = Array.from({ length: BLOCK_ROWS }, (_, k) => block.subarray(k * width, (k + 1) * width));
  const column = (name: (typeof FULL_INPUTS)[number]) => inputs[FULL_INPUTS.indexOf(name)];
  const [ngpus, global_batch_size, zero, grad_reduce, reshard, sp, recompute, offload] = PER_ROW_FIELDS.map(column);
  for (let start = 0; start < length; start += BLOCK_ROWS) {
    const end = Math.min(length, start + BLOCK_ROWS);
    for (let i = start; i < end; i++) {
      // A new layout class reads the whole row; within one, only the columns that can change.
      if (memo.enter(i)) rowAt(inputs, i, row);
      row.ngpus = ngpus[i];
      row.global_batch_size = global_batch_size[i];
      row.zero = zero[i];
      row.grad_reduce = grad_reduce[i];
      row.reshard = reshard[i];
      row.sp = sp[i];
      row.recompute = recompute[i];
      row.offload = offload[i];
      full_estimate(c, row, views[i - start], memo);
    }
    for (let j = 0; j < width; j++) {
      const out = outputs[j];
      for (let i = start, k = j; i < end; i++, k += width) out[i] = block[k];
    }
  }
}

/** Kernels that share per-class terms, by formula name; other formulas evaluate row by row. */
export function memoizedKernel(formula: Formula): typeof evaluateFullMemoized | undefined {
  return formula.name === 'full' ? evaluateFullMemoized : undefined;
}
