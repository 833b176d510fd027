import type { RecordBatch, Schema } from 'apache-arrow';
import { InputError } from '../errors.js';

/** Columns the report reads; a results file without them cannot be reported (the PoC formula's, say). */
export const REPORT_COLUMNS = ['ngpus', 'tp', 'pp', 'fits', 'total_gib', 'step_time_s', 'tokens_per_s', 'tokens_per_s_per_gpu', 'mfu'] as const;

export const LAYOUT_FIELDS = ['tp', 'pp', 'vpp', 'schedule', 'cp', 'ep', 'etp', 'dp', 'zero', 'dp_replicas', 'sp', 'mbs', 'recompute', 'offload'] as const;
export const TIME_PARTS = ['compute_s', 'tp_comm_s', 'pp_comm_s', 'dp_comm_s', 'ep_comm_s', 'cp_comm_s', 'bubble_s', 'optimizer_s', 'offload_s'] as const;
export const MEMORY_PARTS = ['weights_gib', 'grads_gib', 'optimizer_gib', 'activations_gib', 'logits_gib'] as const;
const METRICS = ['total_gib', 'step_time_s', 'tokens_per_s', 'tokens_per_s_per_gpu', 'mfu', 'global_batch_size', 'seq_length'] as const;

/** A config as the report keeps it: layout, headline numbers and breakdowns, nothing else. */
export type CompactRow = Record<string, number | string | boolean>;

export interface ScalingPoint {
  ngpus: number;
  configs: number;
  fitting: number;
  best?: CompactRow;
}

export interface HeatCell {
  tp: number;
  pp: number;
  configs: number;
  min_gib: number;
  fits: boolean;
  best_tokens_per_s_per_gpu?: number;
}

/** Top configs kept per GPU count for the focus charts. */
export const REPORT_TOP = 10;

interface FocusState {
  top: CompactRow[];
  front: CompactRow[];
}

/**
 * Aggregates a sweep's rows, as they stream, into what the report plots: the best fitting config per GPU count,
 * memory per (GPU count, TP, PP) cell, and, for candidate focus GPU counts, the Pareto front of memory against
 * step time and the top configs. Memory stays proportional to the number of GPU counts and cells, not rows: a
 * 10-million-row sweep reports from a few thousand numbers.
 *
 * The focus GPU count is `focusNgpus` when given, else the largest one with a fitting config; states of smaller
 * counts are dropped as soon as a larger count has a fitting config.
 */
export class ReportAggregator {
  rows = 0;
  private readonly scaling = new Map<number, ScalingPoint>();
  private readonly cells = new Map<number, HeatCell & { ngpus: number }>();
  private readonly focus = new Map<number, FocusState>();
  private largestFitting = -Infinity;
  private hardwareNames = new Set<string>();

  constructor(private readonly focusNgpus?: number) {}

  static check(schema: Schema, source: string): void {
    const names = new Set(schema.fields.map((field) => field.name));
    const missing = REPORT_COLUMNS.filter((name) => !names.has(name));
    if (missing.length > 0) {
      throw new InputError('report', `${source} lacks ${missing.join(', ')}: the report needs --formula full results`);
    }
  }

  add(batch: RecordBatch): void {
    if (batch.numRows === 0) return;
    const get = (name: string) => batch.getChild(name);
    // Typed arrays, not Vector.get: this loop sees every row of the sweep.
    const ngpus = numbers(batch, 'ngpus');
    const tp = numbers(batch, 'tp');
    const pp = numbers(batch, 'pp');
    const fits = flags(batch, 'fits');
    const total = numbers(batch, 'total_gib');
    const step = numbers(batch, 'step_time_s');
    const perGpu = numbers(batch, 'tokens_per_s_per_gpu');
    const hardware = batch.getChild('hardware')?.data[0].dictionary;
    if (hardware) for (const name of hardware.toArray() as Iterable<string>) this.hardwareNames.add(String(name));
    const keep = [...LAYOUT_FIELDS, ...METRICS, ...TIME_PARTS, ...MEMORY_PARTS, 'fits'].filter((name) => get(name));
    const vectors = keep.map((name) => get(name)!);
    const compact = (i: number): CompactRow => {
      const row: CompactRow = {};
      keep.forEach((name, c) => {
        const value = vectors[c].get(i);
        row[name] = typeof value === 'bigint' ? Number(value) : (value as number | string | boolean);
      });
      return row;
    };
    for (let i = 0; i < batch.numRows; i++) {
      this.rows++;
      const g = ngpus[i];
      const fit = fits[i] === 1;
      const gib = total[i];
      const time = step[i];
      const tokens = perGpu[i];
      let point = this.scaling.get(g);
      if (!point) this.scaling.set(g, (point = { ngpus: g, configs: 0, fitting: 0 }));
      point.configs++;
      if (fit) {
        point.fitting++;
        if (!point.best || tokens > (point.best.tokens_per_s_per_gpu as number)) point.best = compact(i);
        if (g > this.largestFitting) this.largestFitting = g;
      }
      const t = tp[i];
      const p = pp[i];
      // A number, not a string: this runs once per row. TP and PP stay below 2^10.
      const cellKey = g * 1048576 + t * 1024 + p;
      let cell = this.cells.get(cellKey);
      if (!cell) this.cells.set(cellKey, (cell = { ngpus: g, tp: t, pp: p, configs: 0, min_gib: Infinity, fits: false }));
      cell.configs++;
      if (gib < cell.min_gib) cell.min_gib = gib;
      if (fit) {
        cell.fits = true;
        if (cell.best_tokens_per_s_per_gpu === undefined || tokens > cell.best_tokens_per_s_per_gpu) cell.best_tokens_per_s_per_gpu = tokens;
      }
      if (this.focusNgpus !== undefined ? g !== this.focusNgpus : g < this.largestFitting) continue;
      let state = this.focus.get(g);
      if (!state) this.focus.set(g, (state = { top: [], front: [] }));
      this.offerFront(state, gib, time, i, compact);
      if (fit) this.offerTop(state, tokens, gib, i, compact);
    }
    if (this.focusNgpus === undefined) {
      for (const g of this.focus.keys()) if (g < this.largestFitting) this.focus.delete(g);
    }
  }

  private offerFront(state: FocusState, gib: number, time: number, i: number, compact: (i: number) => CompactRow): void {
    const front = state.front;
    if (front.some((p) => (p.total_gib as number) <= gib && (p.step_time_s as number) <= time && ((p.total_gib as number) < gib || (p.step_time_s as number) < time))) return;
    // Equal points: one is enough to draw.
    if (front.some((p) => p.total_gib === gib && p.step_time_s === time)) return;
    const kept = front.filter((p) => !(gib <= (p.total_gib as number) && time <= (p.step_time_s as number)));
    kept.push(compact(i));
    kept.sort((a, b) => (a.total_gib as number) - (b.total_gib as number));
    state.front = kept;
  }

  private offerTop(state: FocusState, tokens: number, gib: number, i: number, compact: (i: number) => CompactRow): void {
    const top = state.top;
    const worse = (a: CompactRow) => (a.tokens_per_s_per_gpu as number) < tokens || ((a.tokens_per_s_per_gpu as number) === tokens && (a.total_gib as number) > gib);
    if (top.length === REPORT_TOP && !worse(top[top.length - 1])) return;
    const at = top.findIndex(worse);
    top.splice(at < 0 ? top.length : at, 0, compact(i));
    if (top.length > REPORT_TOP) top.pop();
  }

  /** The GPU count the focus charts show, or undefined when nothing was seen there. */
  focusGpuCount(): number | undefined {
    if (this.focusNgpus !== undefined) return this.scaling.has(this.focusNgpus) ? this.focusNgpus : undefined;
    if (Number.isFinite(this.largestFitting)) return this.largestFitting;
    const counts = [...this.scaling.keys()];
    return counts.length > 0 ? Math.max(...counts) : undefined;
  }

  result(): ReportData {
    const focus = this.focusGpuCount();
    const state = focus === undefined ? undefined : this.focus.get(focus);
    return {
      rows: this.rows,
      hardware: [...this.hardwareNames],
      focusNgpus: focus,
      scaling: [...this.scaling.values()].sort((a, b) => a.ngpus - b.ngpus),
      cells: [...this.cells.values()].filter((cell) => cell.ngpus === focus).map(({ ngpus: _, ...cell }) => cell),
      front: state?.front ?? [],
      top: state?.top ?? [],
    };
  }
}

/** A numeric column's values (Int32 or Float32/64: one Data per batch column). */
function numbers(batch: RecordBatch, name: string): ArrayLike<number> {
  const data = batch.getChild(name)!.data[0];
  return (data.values as ArrayLike<number>).length === data.length ? (data.values as ArrayLike<number>) : (data.values as Int32Array).subarray(data.offset, data.offset + data.length);
}

/** A Bool column as one byte per row. */
function flags(batch: RecordBatch, name: string): Uint8Array {
  const data = batch.getChild(name)!.data[0];
  const bits = data.values as Uint8Array;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const j = i + data.offset;
    out[i] = (bits[j >> 3] >> (j & 7)) & 1;
  }
  return out;
}

export interface ReportData {
  rows: number;
  hardware: string[];
  focusNgpus?: number;
  scaling: ScalingPoint[];
  cells: HeatCell[];
  front: CompactRow[];
  top: CompactRow[];
}
