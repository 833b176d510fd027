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
  RECOMPUTE_SLOTS,
  same_as_previous_middle,
  stage_memory,
  stage_memory_base,
  stage_microbatch,
  stage_time,
  StageMemory,
  StageMemoryBase,
  StageMicrobatch,
  StageTail,
  StepPace,
  step_pace,
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
 * levels, src/formulas/full.ts), so one class at a time is all the memo keeps. dp_replicas, which no class term
 * reads, keys the class too: the grid walks it above those levels, and the paces, which do read it, then key on it
 * through PACE_KEY like any other layout column.
 */
export const LAYOUT_KEY = FULL_INPUTS.filter((name) => !(PER_ROW_FIELDS as readonly string[]).includes(name));

/**
 * Grid columns that step_pace reads neither itself nor through stage_time, stage_microbatch or
 * same_as_previous_middle: full_estimate scales the pace by them. Layout classes that differ only in these (the
 * same layout at another global batch) share their rows' paces, so the memo keeps those across classes and chunks.
 * test/cpu-memo.test.ts checks that changing them leaves step_pace as it is.
 */
export const PACE_FREE = ['global_batch_size', 'num_microbatches'] as const;

/** Per-row columns step_pace reads, with the number of codes each takes: a row's slot in its pace layout. */
const PACE_ROW_FIELDS = [
  ['zero', 4],
  ['grad_reduce', 2],
  ['reshard', 2],
  ['sp', 2],
  ['recompute', RECOMPUTE_SLOTS],
  ['offload', 3],
] as const;
const PACE_SLOTS = PACE_ROW_FIELDS.reduce((n, [, codes]) => n * codes, 1);

/** Every other column keys a pace layout (ngpus too: it is per row only because the layout implies it). */
export const PACE_KEY = FULL_INPUTS.filter(
  (name) => !(PACE_FREE as readonly string[]).includes(name) && !PACE_ROW_FIELDS.some(([field]) => field === name),
);

/** Doubles stored per pace: the slowest rank's StageTime (PACE_TIME_FIELDS) and the tail (PACE_TAIL_FIELDS). */
const PACE_TIME_FIELDS = [
  'compute_s',
  'tp_s',
  'ep_s',
  'cp_exposed_s',
  'pp_s',
  'dp_mb_s',
  'hidden_s',
  'tp_bytes',
  'ep_bytes',
  'cp_bytes',
  'pp_bytes',
  'dp_mb_bytes',
  'dp_exposed_s',
  'dp_overlapped_s',
  'dp_bytes',
  'optimizer_s',
  'offload_s',
] as const satisfies readonly (keyof StageTime)[];
const PACE_TAIL_FIELDS = ['dp_exposed_s', 'dp_overlapped_s', 'dp_bytes', 'optimizer_s', 'offload_s'] as const satisfies readonly (keyof StageTail)[];
// Every field of both: one added to StageTime or StageTail and not stored here fails to compile.
const PACE_FIELDS_COMPLETE: [Exclude<keyof StageTime, (typeof PACE_TIME_FIELDS)[number]>, Exclude<keyof StageTail, (typeof PACE_TAIL_FIELDS)[number]>] extends [never, never] ? true : never = true;
void PACE_FIELDS_COMPLETE;
const PACE_WIDTH = PACE_TIME_FIELDS.length + PACE_TAIL_FIELDS.length;

/**
 * Paces kept at most (176 bytes each: 46 MB). The 405B workload's layouts of one GPU count and sequence take about
 * 141,000 (1,196 layouts of up to 126 rows at 1,024 GPUs), so all of them stay while every global batch reuses
 * them; a larger grid clears the cache when it fills, which only costs recomputation.
 */
export const PACE_CACHE_SLOTS = 1 << 18;
/** Paces per page of the cache (720 KB). */
const PACE_PAGE_BITS = 12;
const PACE_PAGE = 1 << PACE_PAGE_BITS;

/**
 * Paces shared across classes and chunks, for one set of constants. Module-wide so that every chunk of a sweep
 * (and the next sweep with the same constants) finds them. A pace layout is a run of PACE_SLOTS positions in
 * `index` (where each slot code's pace is among the pages, -1 if not computed), which grows by doubling.
 */
class PaceCache {
  /** Paces kept at most (PACE_CACHE_SLOTS; tests set fewer to exercise the clearing). */
  capacity = PACE_CACHE_SLOTS;
  private constants = new Float64Array(0);
  private layouts = new Map<string, number>();
  private index = new Int32Array(64 * PACE_SLOTS);
  /**
   * The paces, PACE_PAGE of them per page: pages are added as the cache fills and kept when it clears, never
   * copied (a fresh large array costs its page faults, which on this machine's VM are most of what it costs).
   */
  private readonly pages: Float64Array[] = [];
  private indexUsed = 0;
  private count = 0;

  /** Forgets everything unless the constants are the ones the cache holds paces of (NaN never matches). */
  use(constants: Float64Array): void {
    const same = constants.length === this.constants.length && constants.every((value, k) => Object.is(value, this.constants[k]));
    if (same) return;
    this.constants = constants.slice();
    this.clear();
  }

  /** Forgets every pace (and the constants they were for). */
  reset(): void {
    this.constants = new Float64Array(0);
    this.clear();
  }

  private clear(): void {
    this.layouts = new Map();
    this.indexUsed = 0;
    this.count = 0;
  }

  /** The pace layout of `key`, created if new: valid until the next call (which may clear the cache when full). */
  layout(key: string): number {
    const known = this.layouts.get(key);
    if (known !== undefined) return known;
    if (this.count >= this.capacity) this.clear();
    if (this.indexUsed + PACE_SLOTS > this.index.length) {
      const grown = new Int32Array(this.index.length * 2);
      grown.set(this.index);
      this.index = grown;
    }
    const layout = this.indexUsed;
    this.indexUsed += PACE_SLOTS;
    this.index.fill(-1, layout, layout + PACE_SLOTS);
    this.layouts.set(key, layout);
    return layout;
  }

  /** Where the pace of slot `code` of `layout` is, or -1. */
  position(layout: number, code: number): number {
    return this.index[layout + code];
  }

  store(layout: number, code: number, pace: StepPace): void {
    const page = this.count >>> PACE_PAGE_BITS;
    const v = this.pages[page] ?? (this.pages[page] = new Float64Array(PACE_PAGE * PACE_WIDTH));
    let k = (this.count & (PACE_PAGE - 1)) * PACE_WIDTH;
    const t = pace.slowest;
    v[k++] = t.compute_s;
    v[k++] = t.tp_s;
    v[k++] = t.ep_s;
    v[k++] = t.cp_exposed_s;
    v[k++] = t.pp_s;
    v[k++] = t.dp_mb_s;
    v[k++] = t.hidden_s;
    v[k++] = t.tp_bytes;
    v[k++] = t.ep_bytes;
    v[k++] = t.cp_bytes;
    v[k++] = t.pp_bytes;
    v[k++] = t.dp_mb_bytes;
    v[k++] = t.dp_exposed_s;
    v[k++] = t.dp_overlapped_s;
    v[k++] = t.dp_bytes;
    v[k++] = t.optimizer_s;
    v[k++] = t.offload_s;
    const tail = pace.tail;
    v[k++] = tail.dp_exposed_s;
    v[k++] = tail.dp_overlapped_s;
    v[k++] = tail.dp_bytes;
    v[k++] = tail.optimizer_s;
    v[k++] = tail.offload_s;
    this.index[layout + code] = this.count++;
  }

  /** Reads the pace at `position` into `into` (same field order as store). */
  load(position: number, into: StepPace): StepPace {
    const v = this.pages[position >>> PACE_PAGE_BITS];
    let k = (position & (PACE_PAGE - 1)) * PACE_WIDTH;
    const t = into.slowest;
    t.compute_s = v[k++];
    t.tp_s = v[k++];
    t.ep_s = v[k++];
    t.cp_exposed_s = v[k++];
    t.pp_s = v[k++];
    t.dp_mb_s = v[k++];
    t.hidden_s = v[k++];
    t.tp_bytes = v[k++];
    t.ep_bytes = v[k++];
    t.cp_bytes = v[k++];
    t.pp_bytes = v[k++];
    t.dp_mb_bytes = v[k++];
    t.dp_exposed_s = v[k++];
    t.dp_overlapped_s = v[k++];
    t.dp_bytes = v[k++];
    t.optimizer_s = v[k++];
    t.offload_s = v[k++];
    const tail = into.tail;
    tail.dp_exposed_s = v[k++];
    tail.dp_overlapped_s = v[k++];
    tail.dp_bytes = v[k++];
    tail.optimizer_s = v[k++];
    tail.offload_s = v[k++];
    return into;
  }
}

function emptyPace(): StepPace {
  const zeros = <K extends string>(names: readonly K[]) => Object.fromEntries(names.map((name) => [name, 0])) as Record<K, number>;
  return { slowest: zeros(PACE_TIME_FIELDS), tail: zeros(PACE_TAIL_FIELDS) };
}

/** A row's slot in its pace layout, or -1 when a code is out of the range PACE_ROW_FIELDS gives it (not cached). */
function paceCode(r: FullRow): number {
  const { zero, grad_reduce, reshard, sp, recompute, offload } = r;
  if (!(zero >= 0 && zero < 4 && grad_reduce >= 0 && grad_reduce < 2 && reshard >= 0 && reshard < 2)) return -1;
  if (!(sp >= 0 && sp < 2 && recompute >= 0 && recompute < RECOMPUTE_SLOTS && offload >= 0 && offload < 3)) return -1;
  return ((((zero * 2 + grad_reduce) * 2 + reshard) * 2 + sp) * RECOMPUTE_SLOTS + recompute) * 3 + offload;
}

const PACES = new PaceCache();

/** Sets how many paces the cache keeps (clearing it); for tests of a cache that fills. */
export function setPaceCacheCapacity(paces: number): void {
  PACES.capacity = paces;
  PACES.reset();
}

/**
 * full_estimate's stages from terms shared within a layout class: each (SP, recompute, rank) computes its
 * micro-batch time and its memory base once, and each row adds only what ZeRO, gradient reduction and offload
 * change. The same functions compute the same values in the same order, so results are bit-identical to
 * DIRECT_TERMS (test/cpu-memo.test.ts).
 */
export class LayoutMemo implements TermSource {
  private bases: (StageMemoryBase | undefined)[] = [];
  private microbatches: (StageMicrobatch | undefined)[] = [];
  /** model_params by active_only, model_flops_per_token by recompute and hardware (NaN: not computed yet). */
  private readonly params = new Float64Array(2);
  private readonly flops = new Float64Array(2 * RECOMPUTE_SLOTS);
  /** Per rank: 0 not known yet, 1 evaluated, 2 skipped as the same as the previous middle rank. */
  private skips = new Int8Array(0);
  /** This class's paces, shared with every class of the same pace layout (looked up at the first pace). */
  private paces = -1;
  private readonly paceScratch = emptyPace();
  private readonly memoryScratch: StageMemory[] = [];

  /** Forgets the shared terms: row `r` starts a layout class. */
  enter(r: FullRow): void {
    this.bases = [];
    this.microbatches = [];
    this.skips = new Int8Array(r.pp);
    this.params.fill(NaN);
    this.flops.fill(NaN);
    this.paces = -1;
  }

  private slot(r: FullRow, i: number): number {
    return (r.sp * RECOMPUTE_SLOTS + r.recompute) * r.pp + i;
  }

  memory(c: FullConstants, r: FullRow, i: number): StageMemory {
    const slot = this.slot(r, i);
    const base = this.bases[slot] ?? (this.bases[slot] = stage_memory_base(c, r, i));
    // full_estimate asks for each rank once per row and holds at most the heaviest: one scratch per rank suffices.
    const scratch = this.memoryScratch[i] ?? (this.memoryScratch[i] = stage_memory(c, r, i, base));
    return stage_memory(c, r, i, base, scratch);
  }

  time(c: FullConstants, r: FullRow, i: number): StageTime {
    const slot = this.slot(r, i);
    const mb = this.microbatches[slot] ?? (this.microbatches[slot] = stage_microbatch(c, r, i));
    return stage_time(c, r, i, mb);
  }

  pace(c: FullConstants, r: FullRow): StepPace {
    const code = paceCode(r);
    if (code < 0) return step_pace(c, r, this);
    const row = r as unknown as Record<string, number>;
    if (this.paces < 0) this.paces = PACES.layout(PACE_KEY.map((name) => row[name]).join(','));
    const position = PACES.position(this.paces, code);
    if (position >= 0) return PACES.load(position, this.paceScratch);
    const pace = step_pace(c, r, this);
    PACES.store(this.paces, code, pace);
    return pace;
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
/** The block and its rows, shared by every chunk (evaluation is synchronous: one chunk at a time). */
const BLOCK = new Float64Array(BLOCK_ROWS * FULL_OUTPUTS.length);
const BLOCK_VIEWS = Array.from({ length: BLOCK_ROWS }, (_, k) => BLOCK.subarray(k * FULL_OUTPUTS.length, (k + 1) * FULL_OUTPUTS.length));
/** classStarts' result, grown to the longest chunk seen. */
let STARTS = new Uint8Array(0);

/** The full formula's CPU kernel with per-class terms computed once per class (same results as its evaluate). */
export function evaluateFullMemoized(constants: Float64Array, inputs: Int32Array[], outputs: Float64Array[], length: number): void {
  const c = unpack(constants);
  PACES.use(constants);
  const row = emptyRow();
  const memo = new LayoutMemo();
  const starts = classStarts(inputs, length);
  const width = FULL_OUTPUTS.length;
  const views = BLOCK_VIEWS;
  const column = (name: (typeof FULL_INPUTS)[number]) => inputs[FULL_INPUTS.indexOf(name)];
  const [ngpus, global_batch_size, zero, grad_reduce, reshard, sp, recompute, offload] = PER_ROW_FIELDS.map(column);
  for (let start = 0; start < length; start += BLOCK_ROWS) {
    const end = Math.min(length, start + BLOCK_ROWS);
    for (let i = start; i < end; i++) {
      // A new layout class reads the whole row; within one, only the columns that can change.
      if (starts[i] === 1) {
        rowAt(inputs, i, row);
        memo.enter(row);
      }
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
      for (let i = start, k = j; i < end; i++, k += width) out[i] = BLOCK[k];
    }
  }
}

/**
 * 1 at each row whose LAYOUT_KEY columns differ from the row before's (and at the first), else 0: where layout
 * classes start. Scanning column by column costs a fraction of comparing every key column row by row.
 */
function classStarts(inputs: Int32Array[], length: number): Uint8Array {
  if (STARTS.length < length) STARTS = new Uint8Array(length);
  const starts = STARTS;
  starts.fill(0, 0, length);
  if (length > 0) starts[0] = 1;
  for (const name of LAYOUT_KEY) {
    const values = inputs[FULL_INPUTS.indexOf(name)];
    for (let i = 1; i < length; i++) if (values[i] !== values[i - 1]) starts[i] = 1;
  }
  return starts;
}

/** Kernels that share per-class terms, by formula name; other formulas evaluate row by row. */
export function memoizedKernel(formula: Formula): typeof evaluateFullMemoized | undefined {
  return formula.name === 'full' ? evaluateFullMemoized : undefined;
}
