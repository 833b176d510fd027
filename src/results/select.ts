import type { EngineSelection } from '../engine/types.js';
import { passesThreshold } from '../engine/selection.js';
import type { ComputedColumns, EvaluatedChunk } from '../engine/types.js';
import { InputError } from '../errors.js';
import { ColumnRef, compileWhere, CompiledWhere } from '../filter/where.js';
import { TopK } from './topk.js';
import type { Formula, ResultColumn } from '../formulas/types.js';
import type { GridPlan } from '../grid/grid.js';

/** What to keep of a sweep: a filter, only configs that fit, and the best k per group. */
export interface SelectionOptions {
  /** A condition over output and grid columns, e.g. `total_gib < 70 and mfu > 0.4`. */
  where?: string;
  /** Keep only configs that fit in memory (the `fits` column). */
  fitsOnly?: boolean;
  /** The best `k` rows by column `by`, per value of grid column `per` (or overall). */
  top?: { k: number; by: string; per?: string; order?: 'asc' | 'desc' };
}

/** Columns where smaller is better: times (but not rates per second), memory, traffic, bubble rates. */
const LOWER_IS_BETTER = /((?<!per)_s|_gib|_gb|_bytes|_rate)$/;
/** Largest group id a --per column may have: thresholds are an array indexed by it. */
const MAX_GROUP_ID = 1 << 20;

/** Bound on what --top keeps in memory, so the whole process stays well under 1.5 GB. */
const MAX_TOP_BYTES = 512 * 2 ** 20;
/** A stored row's JS overhead beyond its values: two arrays, an object, a Map entry and its heap slot. */
const STORED_ROW_OVERHEAD_BYTES = 200;

/** Distinct values of the swept grid column `gridIndex` (the groups of --per). */
function groupCount(grid: GridPlan, gridIndex: number): number {
  return grid.levels.find((level) => level.column === gridIndex)?.values?.length ?? 1;
}

/** The columns a --where expression may name: every grid column and every computed column. */
export function filterColumns(columns: ResultColumn[], grid: GridPlan): ColumnRef[] {
  const refs: ColumnRef[] = [];
  for (const column of columns) {
    if (column.from === 'grid') {
      const index = grid.columnIndex(column.column);
      const { labels, flag } = grid.columns[index];
      refs.push({ name: column.name, source: 'grid', index, kind: labels ? 'category' : flag ? 'bool' : 'int', labels });
    } else if (column.from === 'computed') {
      refs.push({ name: column.name, source: 'computed', index: column.index, kind: column.kind ?? 'float' });
    }
  }
  return refs;
}

interface StoredRow {
  grid: number[];
  computed: number[];
}

/**
 * Applies a selection to evaluated chunks, identically for both engines: engines pre-filter (the GPU before
 * readback), and this re-checks every surviving row exactly, then feeds the top-k heaps.
 */
export class Selector {
  readonly engineSelection: EngineSelection;
  private readonly where?: CompiledWhere;
  private readonly top?: {
    heap: TopK;
    byIndex: number;
    tieIndex: number;
    perGridIndex: number;
    descending: boolean;
    groups: number;
    /** Most rows the heaps can hold: groups x k. */
    capacity: number;
  };
  private readonly stored = new Map<number, StoredRow>();
  private template?: EvaluatedChunk;

  constructor(formula: Formula, columns: ResultColumn[], grid: GridPlan, options: SelectionOptions) {
    const refs = filterColumns(columns, grid);
    const conditions: string[] = [];
    if (options.fitsOnly) {
      if (!refs.some((ref) => ref.name === 'fits')) {
        throw new InputError('--fits-only', `--formula ${formula.name} has no fits column (use --formula full)`);
      }
      conditions.push('fits');
    }
    if (options.where !== undefined) conditions.push(`(${options.where})`);
    if (conditions.length > 0) {
      // Compile the user's text alone first so that its errors point into what the user wrote.
      if (options.where !== undefined) compileWhere(options.where, refs);
      // Two levels more: `fits and (...)` wraps the user's text, which passed the bounds on its own.
      this.where = compileWhere(conditions.join(' and '), refs, 2);
    }
    let top: Selector['top'];
    if (options.top) {
      const { k, by, per } = options.top;
      if (!Number.isInteger(k) || k < 1) throw new InputError('--top', `must be a positive integer, got ${k}`);
      const byRef = refs.find((ref) => ref.name === by);
      if (!byRef || byRef.source !== 'computed' || byRef.kind === 'bool') {
        const names = refs.filter((ref) => ref.source === 'computed' && ref.kind !== 'bool').map((ref) => ref.name);
        throw new InputError('--by', `'${by}' is not a numeric result column (one of: ${names.join(', ')})`);
      }
      let perGridIndex = -1;
      let groups = 1;
      if (per !== undefined) {
        const perRef = refs.find((ref) => ref.name === per);
        const level = perRef?.source === 'grid' ? grid.levels.find((l) => l.column === perRef.index) : undefined;
        if (!perRef || perRef.source !== 'grid' || !level) {
          throw new InputError('--per', `'${per}' is not a grid column (one of: ${grid.columns.map((c) => c.name).join(', ')})`);
        }
        if (!level.values) {
          throw new InputError('--per', `'${per}' is derived from other columns; group by a swept column instead`);
        }
        const maxValue = Math.max(...level.values);
        if (maxValue >= MAX_GROUP_ID) throw new InputError('--per', `values of '${per}' go up to ${maxValue}, too many groups`);
        perGridIndex = perRef.index;
        groups = maxValue + 1;
      }
      // Memory: every kept row is stored (grid and computed values) until it is pushed out, and the store is
      // pruned at twice the heaps' capacity, so about three rows per slot live at the peak.
      const slots = Math.min(k * (per === undefined ? 1 : groupCount(grid, perGridIndex)), grid.candidateCount());
      const rowBytes = 8 * (grid.columns.length + formula.outputs.length) + STORED_ROW_OVERHEAD_BYTES;
      const bytes = 3 * slots * rowBytes;
      if (bytes > MAX_TOP_BYTES) {
        const perGroup = per === undefined ? '' : ` (${k} per ${per} group)`;
        throw new InputError(
          '--top',
          `keeping ${slots} rows${perGroup} needs about ${(bytes / 2 ** 30).toFixed(1)} GiB, over the ${MAX_TOP_BYTES / 2 ** 20} MiB bound (at most ${Math.floor(MAX_TOP_BYTES / (3 * rowBytes))} rows): lower K, or write every row and rank them afterwards`,
        );
      }
      const descending = options.top.order ? options.top.order === 'desc' : !LOWER_IS_BETTER.test(by);
      const tieName = ['total_gib', 'total_memory_gb'].find((name) => formula.outputs.includes(name));
      top = {
        heap: new TopK({ k, descending, groups }),
        byIndex: byRef.index,
        tieIndex: tieName ? formula.outputs.indexOf(tieName) : -1,
        perGridIndex,
        descending,
        groups,
        capacity: groups * k,
      };
    }
    this.top = top;
    const key = `${this.where?.text ?? ''}|${top ? `${top.byIndex}/${top.descending}/${top.perGridIndex}` : ''}`;
    this.engineSelection = {
      key,
      where: this.where,
      top: top && {
        byIndex: top.byIndex,
        descending: top.descending,
        perGridIndex: top.perGridIndex,
        thresholds: () => top.heap.thresholds(),
      },
    };
  }

  get isTop(): boolean {
    return this.top !== undefined;
  }

  /**
   * Re-checks an engine's survivors exactly. Without a top-k, returns the rows to write; with one, offers them to
   * the heaps and returns nothing (the winners come from `finish`).
   */
  accept(chunk: EvaluatedChunk): EvaluatedChunk | undefined {
    this.template ??= chunk;
    const { grid, computed } = chunk;
    const keep: number[] = [];
    for (let i = 0; i < grid.length; i++) {
      if (this.where && !this.where.test(grid.columns, computed, i)) continue;
      keep.push(i);
    }
    const rowId = (i: number) => (chunk.rowIds ? chunk.rowIds[i] : grid.offset + i);
    const top = this.top;
    if (!top) {
      if (keep.length === grid.length && !chunk.rowIds) return chunk;
      return subset(chunk, keep, rowId);
    }
    for (const i of keep) {
      const group = top.perGridIndex < 0 ? 0 : grid.columns[top.perGridIndex][i];
      const value = computed[top.byIndex][i];
      if (!passesThreshold(value, top.heap.threshold(group), top.descending)) continue;
      const id = rowId(i);
      top.heap.offer(group, value, top.tieIndex < 0 ? 0 : computed[top.tieIndex][i], id);
      this.stored.set(id, {
        grid: grid.columns.map((column) => column[i]),
        computed: (computed as ArrayLike<number>[]).map((column) => column[i]),
      });
    }
    // Rows pushed out of the heaps are dropped from the store now and then, keeping memory O(groups x k).
    if (this.stored.size > 2 * top.capacity + 1024) this.prune();
    return undefined;
  }

  private prune(): void {
    const live = new Set(this.top!.heap.results().map((entry) => entry.rowId));
    for (const id of this.stored.keys()) if (!live.has(id)) this.stored.delete(id);
  }

  /** The top-k winners, by group and then rank, as one chunk (empty when nothing qualified). */
  finish(): EvaluatedChunk | undefined {
    if (!this.top || !this.template) return undefined;
    const winners = this.top.heap.results();
    const template = this.template;
    const n = winners.length;
    const columns = template.grid.columns.map(() => new Int32Array(n));
    const f32 = template.computed[0] instanceof Float32Array;
    const computed = template.computed.map(() => (f32 ? new Float32Array(n) : new Float64Array(n))) as ComputedColumns;
    const rowIds = new Float64Array(n);
    winners.forEach((entry, k) => {
      const row = this.stored.get(entry.rowId)!;
      row.grid.forEach((value, c) => (columns[c][k] = value));
      row.computed.forEach((value, j) => (computed[j][k] = value));
      rowIds[k] = entry.rowId;
    });
    return {
      grid: { length: n, columns, offset: 0, columnNames: template.grid.columnNames },
      computed,
      rowIds,
    };
  }
}

function subset(chunk: EvaluatedChunk, keep: number[], rowId: (i: number) => number): EvaluatedChunk {
  const n = keep.length;
  const columns = chunk.grid.columns.map((column) => Int32Array.from(keep, (i) => column[i]));
  const computed = (chunk.computed as Array<Float64Array | Float32Array>).map((column) =>
    column instanceof Float32Array ? Float32Array.from(keep, (i) => column[i]) : Float64Array.from(keep, (i) => column[i]),
  ) as ComputedColumns;
  return {
    grid: { length: n, columns, offset: chunk.grid.offset, columnNames: chunk.grid.columnNames },
    computed,
    rowIds: Float64Array.from(keep, rowId),
  };
}
