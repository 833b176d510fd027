/**
 * `--top K --by COLUMN [--per GROUP]`: the best k rows of each group, kept while streaming with one binary heap
 * per group (O(log k) per offer, memory proportional to the rows kept).
 *
 * Rank order, best first: by value (descending or ascending), then by tie-break ascending (the caller passes
 * total_gib: less memory first), then by row id ascending (grid order). The order is total, so the result does not
 * depend on the order in which rows are offered.
 */
import { InputError } from '../errors.js';

export interface TopKOptions {
  /** Rows to keep per group: a positive integer. */
  k: number;
  /** Whether a larger value is better (throughput, MFU) or a smaller one (time, memory). */
  descending: boolean;
  /** Number of groups; group ids are 0..groups-1. Heaps are created on first use, so unused ids cost one slot. */
  groups: number;
}

export interface TopKEntry {
  group: number;
  value: number;
  tieBreak: number;
  rowId: number;
}

/** One group's heap, worst row at the root; arrays grow by doubling up to k. */
interface Heap {
  size: number;
  values: Float64Array;
  ties: Float64Array;
  ids: Float64Array;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The f32 nearest to `x` on the side of `down` (toward -Infinity) or up; ±Infinity stay as they are. */
export function f32Directed(x: number, down: boolean): number {
  const near = Math.fround(x);
  if (Number.isNaN(x) || near === x) return near;
  if (down ? near < x : near > x) return near;
  // One f32 step from `near` toward x's side. near is finite here or an infinity beyond the f32 range.
  if (!Number.isFinite(near)) return down ? 3.4028234663852886e38 : -3.4028234663852886e38;
  if (near === 0) return down ? -(2 ** -149) : 2 ** -149;
  f32Scratch[0] = near;
  u32Scratch[0] += (near > 0) === !down ? 1 : -1;
  return f32Scratch[0];
}

/**
 * Streaming top-k per group.
 *
 * NaN values never enter (they have no rank, and a GPU comparison with NaN is false, so both engines agree).
 * A NaN tie-break ranks after every number.
 */
export class TopK {
  readonly k: number;
  readonly descending: boolean;
  readonly groups: number;
  private readonly heaps: Array<Heap | undefined>;
  /** Exact thresholds per group (the k-th best value once full). */
  private readonly exact: Float64Array;
  /** The same rounded to f32 toward the permissive side, for the GPU. */
  private readonly rounded: Float32Array;
  private readonly open: number;

  constructor(options: TopKOptions) {
    const { k, descending, groups } = options;
    if (!Number.isInteger(k) || k < 1) throw new InputError('--top', `must be a positive integer, got ${k}`);
    if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`TopK: groups must be a positive integer, got ${groups}`);
    this.k = k;
    this.descending = descending;
    this.groups = groups;
    this.heaps = new Array<Heap | undefined>(groups);
    this.open = descending ? -Infinity : Infinity;
    this.exact = new Float64Array(groups).fill(this.open);
    this.rounded = new Float32Array(groups).fill(this.open);
  }

  /** Whether row a (value, tie, id) ranks below row b. */
  private worse(va: number, ta: number, ia: number, vb: number, tb: number, ib: number): boolean {
    if (va !== vb) return this.descending ? va < vb : va > vb;
    if (ta !== tb) return ta > tb;
    return ia > ib;
  }

  /**
   * Offers one row. `group` must be an integer in 0..groups-1; `tieBreak` ranks equal values (lower first),
   * `rowId` ranks equal values and tie-breaks (lower first).
   */
  offer(group: number, value: number, tieBreak: number, rowId: number): void {
    if (!(group >= 0 && group < this.groups) || (group | 0) !== group) {
      throw new RangeError(`TopK: group ${group} is outside 0..${this.groups - 1}`);
    }
    if (Number.isNaN(value)) return;
    const tie = Number.isNaN(tieBreak) ? Infinity : tieBreak;
    let heap = this.heaps[group];
    if (!heap) {
      const capacity = Math.min(this.k, 16);
      heap = { size: 0, values: new Float64Array(capacity), ties: new Float64Array(capacity), ids: new Float64Array(capacity) };
      this.heaps[group] = heap;
    }
    const k = this.k;
    if (heap.size < k) {
      if (heap.size === heap.values.length) grow(heap, Math.min(k, heap.values.length * 2));
      this.siftUp(heap, heap.size++, value, tie, rowId);
      if (heap.size === k) this.setThreshold(group, heap.values[0]);
      return;
    }
    // Full: the newcomer replaces the root (the worst kept row) if it ranks above it.
    if (!this.worse(heap.values[0], heap.ties[0], heap.ids[0], value, tie, rowId)) return;
    this.siftDown(heap, value, tie, rowId);
    this.setThreshold(group, heap.values[0]);
  }

  private setThreshold(group: number, value: number): void {
    this.exact[group] = value;
    this.rounded[group] = f32Directed(value, this.descending);
  }

  /** Places (value, tie, id) at hole `i` and moves it up while it ranks below its parent. */
  private siftUp(heap: Heap, i: number, value: number, tie: number, id: number): void {
    const { values, ties, ids } = heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.worse(value, tie, id, values[parent], ties[parent], ids[parent])) break;
      values[i] = values[parent];
      ties[i] = ties[parent];
      ids[i] = ids[parent];
      i = parent;
    }
    values[i] = value;
    ties[i] = tie;
    ids[i] = id;
  }

  /** Replaces the root with (value, tie, id) and moves it down below any child that ranks lower. */
  private siftDown(heap: Heap, value: number, tie: number, id: number): void {
    const { values, ties, ids, size } = heap;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) break;
      const right = left + 1;
      let child = left;
      if (right < size && this.worse(values[right], ties[right], ids[right], values[left], ties[left], ids[left])) {
        child = right;
      }
      if (!this.worse(values[child], ties[child], ids[child], value, tie, id)) break;
      values[i] = values[child];
      ties[i] = ties[child];
      ids[i] = ids[child];
      i = child;
    }
    values[i] = value;
    ties[i] = tie;
    ids[i] = id;
  }

  /**
   * The value a new row of `group` must reach to possibly enter: the k-th best value once the group holds k rows,
   * -Infinity (descending) or +Infinity (ascending) before. A row whose value equals the threshold can still enter
   * on the tie-breaks, so a pre-filter (the GPU) must keep rows with value >= threshold (descending) or
   * <= threshold (ascending), and drop only those strictly worse.
   */
  threshold(group: number): number {
    return this.exact[group];
  }

  /**
   * All thresholds, indexed by group, as f32 for upload: each rounded toward the permissive side (down when
   * descending, up when ascending), so an f32 value that passes the exact threshold also passes its f32 version.
   * A fresh copy, safe to keep.
   */
  thresholds(): Float32Array {
    return this.rounded.slice();
  }

  /** Rows kept in `group` so far. */
  size(group: number): number {
    return this.heaps[group]?.size ?? 0;
  }

  /** The kept rows, by group ascending, then best first. */
  results(): TopKEntry[] {
    const out: TopKEntry[] = [];
    const order = (a: TopKEntry, b: TopKEntry) =>
      this.worse(a.value, a.tieBreak, a.rowId, b.value, b.tieBreak, b.rowId) ? 1 : this.worse(b.value, b.tieBreak, b.rowId, a.value, a.tieBreak, a.rowId) ? -1 : 0;
    for (let group = 0; group < this.groups; group++) {
      const heap = this.heaps[group];
      if (!heap) continue;
      const entries: TopKEntry[] = [];
      for (let i = 0; i < heap.size; i++) {
        entries.push({ group, value: heap.values[i], tieBreak: heap.ties[i], rowId: heap.ids[i] });
      }
      entries.sort(order);
      for (const entry of entries) out.push(entry);
    }
    return out;
  }
}

function grow(heap: Heap, capacity: number): void {
  const values = new Float64Array(capacity);
  const ties = new Float64Array(capacity);
  const ids = new Float64Array(capacity);
  values.set(heap.values);
  ties.set(heap.ties);
  ids.set(heap.ids);
  heap.values = values;
  heap.ties = ties;
  heap.ids = ids;
}
