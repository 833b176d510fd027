import { RecordBatch, Schema } from 'apache-arrow';
import { InputError } from '../errors.js';
import { TopK } from './topk.js';
import type { ResultColumn } from '../formulas/types.js';

/** One fitting config, as the ranking sees it. */
export interface RankedRow {
  rowId: number;
  /** The ranked column's value. */
  value: number;
  total_gib: number;
  step_time_s: number;
  /** Every column of the row, by name. */
  values: Record<string, unknown>;
}

/** What `best` ranks: the best `k` by `by`, per value of `per` (one group when absent). */
export interface RankOptions {
  k: number;
  by?: string;
  per?: string;
  order?: 'asc' | 'desc';
}

/** Columns where smaller is better: times (but not rates per second), memory, traffic. Same rule as --top. */
const LOWER_IS_BETTER = /((?<!per)_s|_gib|_gb|_bytes|_rate)$/;

/** Rows kept per group before equivalent layouts are merged, so that k lines remain after merging. */
const CANDIDATES_PER_LINE = 4;

/**
 * Checks --by and --per against a formula's result columns before anything runs: --by must be a numeric result,
 * --per any column but a float result (grouping by a float makes one group per row).
 */
export function checkRankColumns(columns: ResultColumn[], options: RankOptions): void {
  const by = options.by ?? 'tokens_per_s';
  const byColumn = columns.find((column) => column.name === by);
  if (!byColumn || byColumn.from !== 'computed' || byColumn.kind === 'bool') {
    const names = columns.filter((column) => column.from === 'computed' && column.kind !== 'bool').map((column) => column.name);
    throw new InputError('--by', `'${by}' is not a numeric result column (one of: ${names.join(', ')})`);
  }
  if (options.per !== undefined) {
    const perColumn = columns.find((column) => column.name === options.per);
    if (!perColumn || (perColumn.from === 'computed' && (perColumn.kind ?? 'float') === 'float' && !perColumn.count)) {
      const names = columns.filter((column) => column.from !== 'computed').map((column) => column.name);
      throw new InputError('--per', `'${options.per}' is not a column to group by (one of: ${names.join(', ')})`);
    }
  }
}

/**
 * For `parasweep best`: per group (GPU count by default), the top k fitting configs by a column (tokens/s by
 * default; ties to lower memory, then grid order) and the Pareto front of (memory per GPU, step time) of the
 * fitting configs. Rows stream through; memory stays O(k + front) per group.
 */
export class BestConfigs {
  readonly by: string;
  readonly per?: string;
  readonly descending: boolean;
  private readonly top: TopK;
  private readonly rows = new Map<number, RankedRow>();
  private readonly fronts = new Map<number, RankedRow[]>();
  private readonly counts = new Map<number, number>();
  /** Group id of each value of the `per` column, in order of first appearance. */
  private readonly groupIds = new Map<unknown, number>();
  private nextRowId = 0;

  constructor(
    readonly k: number,
    options: Omit<RankOptions, 'k'> = { per: 'ngpus' },
    maxGroups = 1 << 20,
  ) {
    this.by = options.by ?? 'tokens_per_s';
    this.per = options.per;
    this.descending = options.order ? options.order === 'desc' : !LOWER_IS_BETTER.test(this.by);
    this.top = new TopK({ k: k * CANDIDATES_PER_LINE, descending: this.descending, groups: maxGroups });
  }

  private groupOf(value: unknown): number {
    const key = typeof value === 'bigint' ? Number(value) : value;
    let id = this.groupIds.get(key);
    if (id === undefined) {
      id = this.groupIds.size;
      this.groupIds.set(key, id);
    }
    return id;
  }

  add(batch: RecordBatch): void {
    const names = batch.schema.fields.map((field) => field.name);
    const columns = names.map((name) => batch.getChild(name)!);
    const col = (name: string) => columns[names.indexOf(name)];
    const group = this.per === undefined ? undefined : col(this.per);
    // Typed arrays rather than Vector.get: `sweep`'s summary sees every row.
    const ranked = values(col(this.by));
    const memory = values(col('total_gib'));
    const step = values(col('step_time_s'));
    const fits = col('fits')?.data[0];
    for (let i = 0; i < batch.numRows; i++) {
      const rowId = this.nextRowId++;
      if (fits) {
        const j = i + fits.offset;
        if ((((fits.values as Uint8Array)[j >> 3] >> (j & 7)) & 1) === 0) continue;
      }
      const g = group ? this.groupOf(group.get(i)) : this.groupOf(undefined);
      this.counts.set(g, (this.counts.get(g) ?? 0) + 1);
      const value = Number(ranked[i]);
      const total = memory[i] as number;
      const time = step[i] as number;
      const inTop = this.descending ? value >= this.top.threshold(g) : value <= this.top.threshold(g);
      const front = this.fronts.get(g) ?? [];
      const dominated = front.some((p) => p.total_gib <= total && p.step_time_s <= time && (p.total_gib < total || p.step_time_s < time));
      if (!inTop && dominated) continue;
      const row: RankedRow = {
        rowId,
        value,
        total_gib: total,
        step_time_s: time,
        values: Object.fromEntries(names.map((name, c) => [name, columns[c].get(i)])),
      };
      if (inTop) {
        this.top.offer(g, value, total, rowId);
        this.rows.set(rowId, row);
      }
      if (!dominated) {
        // Drop the points this one strictly dominates; equal points stay (both are on the front).
        const kept = front.filter((p) => !(total <= p.total_gib && time <= p.step_time_s && (total < p.total_gib || time < p.step_time_s)));
        kept.push(row);
        kept.sort((a, b) => a.total_gib - b.total_gib || a.step_time_s - b.step_time_s || a.rowId - b.rowId);
        this.fronts.set(g, kept);
      }
    }
    if (this.rows.size > 8 * this.k * CANDIDATES_PER_LINE * Math.max(1, this.counts.size) + 4096) {
      const live = new Set(this.top.results().map((entry) => entry.rowId));
      for (const [id, row] of this.rows) if (!live.has(id) && !this.onFront(row)) this.rows.delete(id);
    }
  }

  private onFront(row: RankedRow): boolean {
    for (const front of this.fronts.values()) if (front.includes(row)) return true;
    return false;
  }

  /**
   * Groups in ascending order of their `per` value, each with its fitting-config count, its ranked candidates
   * (best first; `k` lines remain once equivalent layouts are merged) and its Pareto front.
   */
  results(): Array<{ group: unknown; fitting: number; top: RankedRow[]; front: RankedRow[] }> {
    const winners = this.top.results();
    const labels = [...this.groupIds.entries()].filter(([, id]) => this.counts.has(id));
    labels.sort(([a], [b]) => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b))));
    return labels.map(([label, id]) => ({
      group: label,
      fitting: this.counts.get(id)!,
      top: winners.filter((entry) => entry.group === id).map((entry) => this.rows.get(entry.rowId)!),
      front: this.fronts.get(id) ?? [],
    }));
  }
}

/** A numeric column's values as a typed array (BigInt64Array for Int64 counts). */
function values(vector: { data: ReadonlyArray<{ values: unknown; offset: number; length: number }> }): ArrayLike<number | bigint> {
  const data = vector.data[0];
  const all = data.values as Int32Array | Float32Array | Float64Array | BigInt64Array;
  return data.offset === 0 && all.length === data.length ? all : all.subarray(data.offset, data.offset + data.length);
}

/** Provenance the header prints, read from the result schema's metadata. */
export interface BestContext {
  model: string;
  hardware: string;
  headroom?: number;
  dtypes?: { param: string; grad: string; optimizer_state: string; master: string | null };
  by: string;
  per?: string;
  /** Global batch sizes and sequence lengths the sweep covered (from its search space), as text. */
  gbs?: string;
  seq?: string;
  /** The time model's stack settings (overlaps, FP8, CP exchange) the ranking assumed, as text. */
  settings?: string;
  /** The time model's measured error on runs like a group's winner, as text. */
  errorOf?: (winner: Record<string, unknown>) => string;
}

export function bestContext(schema: Schema, fallback: { model: string; hardware: string }, options: RankOptions): BestContext {
  const meta = schema.metadata;
  const json = (key: string) => {
    const text = meta.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  };
  const hardware = json('parasweep.hardware') as Array<{ name: string }> | undefined;
  const headroom = meta.get('parasweep.headroom');
  const space = json('parasweep.search_space') as Record<string, number[]> | undefined;
  const list = (values: number[] | undefined) =>
    values === undefined ? undefined : values.length <= 4 ? values.join(',') : `${Math.min(...values)}..${Math.max(...values)} (${values.length} values)`;
  return {
    gbs: list(space?.gbs_range),
    seq: list(space?.seq_range),
    model: (json('parasweep.model') as { name?: string } | undefined)?.name ?? fallback.model,
    hardware: hardware?.map((h) => h.name).join('+') ?? fallback.hardware,
    headroom: headroom === undefined ? undefined : Number(headroom),
    dtypes: json('parasweep.dtypes'),
    by: options.by ?? 'tokens_per_s',
    per: options.per,
  };
}

const fixed = (value: unknown, digits: number) => Number(value).toFixed(digits);
const DTYPE_SHORT: Record<string, string> = { bfloat16: 'bf16', float16: 'fp16', float32: 'fp32', fp8: 'fp8', bf16: 'bf16', fp16: 'fp16', fp32: 'fp32' };
const short = (dtype: string) => DTYPE_SHORT[dtype] ?? dtype;

/** The layout in one compact string (the Pareto lines). */
export function layoutText(v: Record<string, unknown>): string {
  const schedule = v.pp === 1 ? '' : v.schedule === 'interleaved' ? ` interleaved v${v.vpp}` : ` ${String(v.schedule)}`;
  const moe = Number(v.ep) > 1 || Number(v.etp) > 1 ? ` ep${v.ep} etp${v.etp}` : '';
  return `tp${v.tp} pp${v.pp}${schedule} cp${v.cp}${moe} dp${v.dp} zero${v.zero}${Number(v.dp_replicas) > 1 ? ` replicas${v.dp_replicas}` : ''}${v.sp ? ' sp' : ''} mbs${v.mbs} rc:${v.recompute}${v.offload === 'none' ? '' : ` off:${String(v.offload)}`}`;
}

interface TableColumn {
  header: string;
  cell: (v: Record<string, unknown>) => string;
  metric?: boolean;
}

const RECOMPUTE_SHORT: Record<string, string> = { none: '-', selective: 'sel', full: 'full', selective_op: 'op' };
const OFFLOAD_SHORT: Record<string, string> = { none: '-', optimizer: 'opt', optimizer_cpu_step: 'cpu' };

function tableColumns(rows: RankedRow[], by: string): TableColumn[] {
  const moe = rows.some((row) => Number(row.values.ep) > 1 || Number(row.values.etp) > 1);
  const swept = (name: string) => new Set(rows.map((row) => String(row.values[name]))).size > 1;
  const columns: TableColumn[] = [
    ...(swept('ngpus') ? [{ header: 'GPUs', cell: (v: Record<string, unknown>) => String(v.ngpus) }] : []),
    ...(swept('global_batch_size') ? [{ header: 'gbs', cell: (v: Record<string, unknown>) => String(v.global_batch_size) }] : []),
    ...(swept('seq_length') ? [{ header: 'seq', cell: (v: Record<string, unknown>) => String(v.seq_length) }] : []),
    { header: 'tp', cell: (v) => String(v.tp) },
    { header: 'pp', cell: (v) => String(v.pp) },
    {
      header: 'sched',
      cell: (v) => (v.pp === 1 ? '-' : v.schedule === 'interleaved' ? `int/v${v.vpp}` : String(v.schedule)),
    },
    { header: 'cp', cell: (v) => String(v.cp) },
    ...(moe
      ? [
          { header: 'ep', cell: (v: Record<string, unknown>) => String(v.ep) },
          { header: 'etp', cell: (v: Record<string, unknown>) => String(v.etp) },
        ]
      : []),
    { header: 'dp', cell: (v) => String(v.dp) },
    { header: 'zero', cell: (v) => String(v.zero) },
    // HSDP replicas, shown only when some row has more than one.
    ...(rows.some((row) => Number(row.values.dp_replicas) > 1)
      ? [{ header: 'repl', cell: (v: Record<string, unknown>) => String(v.dp_replicas) }]
      : []),
    { header: 'sp', cell: (v) => (v.sp ? 'y' : '-') },
    { header: 'mbs', cell: (v) => String(v.mbs) },
    { header: 'rc', cell: (v) => RECOMPUTE_SHORT[String(v.recompute)] ?? String(v.recompute) },
    { header: 'off', cell: (v) => OFFLOAD_SHORT[String(v.offload)] ?? String(v.offload) },
    { header: 'GiB/GPU', cell: (v) => fixed(v.total_gib, 1), metric: true },
    { header: 's/step', cell: (v) => fixed(v.step_time_s, 2), metric: true },
    { header: 'tok/s/GPU', cell: (v) => fixed(v.tokens_per_s_per_gpu, 0), metric: true },
    { header: 'MFU', cell: (v) => `${(Number(v.mfu) * 100).toFixed(1)}%`, metric: true },
  ];
  // tokens/s is tokens/s/GPU times the GPU count, shown in the header.
  if (!['total_gib', 'step_time_s', 'tokens_per_s', 'tokens_per_s_per_gpu', 'mfu'].includes(by)) {
    const digits = (name: string) => (/_gib$|_s$/.test(name) ? 2 : /mfu|hfu/.test(name) ? 3 : 0);
    columns.push({ header: by, cell: (v) => (typeof v[by] === 'bigint' ? String(v[by]) : fixed(v[by], digits(by))), metric: true });
  }
  return columns;
}

/** One printed line of the table: configs with the same printed numbers. */
interface Line {
  cells: string[];
  configs: RankedRow[];
}

/** Widest list of alternatives in one cell; longer lists keep their first value and `…`, so the table fits. */
const MAX_ALTERNATIVES_WIDTH = 7;

function alternatives(values: string[]): string {
  if (values.every((value) => value === values[0])) return values[0];
  const text = values.join('/');
  return text.length <= MAX_ALTERNATIVES_WIDTH ? text : `${values[0]}/…`;
}

/**
 * Merges ranked rows into at most `k` lines, best first: configs whose printed numbers are all equal (a swap of
 * CP for DP and micro-batch size, say, that changes nothing shown) share one line. A layout column where they
 * differ lists their values in the same order in every column (`4/8` over `4/2`: the first config has 4 and 4).
 */
export function mergeEquivalent(rows: RankedRow[], columns: TableColumn[], k: number): Line[] {
  const lines: Line[] = [];
  const byKey = new Map<string, { line: Line; values: string[][] }>();
  for (const row of rows) {
    const cells = columns.map((column) => column.cell(row.values));
    const key = cells.filter((_, c) => columns[c].metric).join('\u0000');
    const existing = byKey.get(key);
    if (existing) {
      existing.line.configs.push(row);
      cells.forEach((cell, c) => existing.values[c].push(cell));
      existing.line.cells = existing.values.map((values) => alternatives(values));
      continue;
    }
    if (lines.length === k) continue;
    const line: Line = { cells, configs: [row] };
    lines.push(line);
    byKey.set(key, { line, values: cells.map((cell) => [cell]) });
  }
  return lines;
}

/** Greedy word wrap at `width` columns, continuation lines indented by `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  const lead = /^ */.exec(text)![0];
  let line = lead;
  for (const word of text.slice(lead.length).split(/ +/)) {
    if (line.trim() !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = indent + word;
    } else {
      line = line.trim() === '' ? line + word : `${line} ${word}`;
    }
  }
  if (line.trim() !== '') out.push(line);
  return out;
}

/** Widest line `best` prints. */
export const BEST_WIDTH = 100;

function range(rows: RankedRow[], name: string): string {
  const values = [...new Set(rows.map((row) => Number(row.values[name])))].sort((a, b) => a - b);
  return values.length === 1 ? String(values[0]) : `${values[0]}..${values[values.length - 1]}`;
}

/** The ranked table alone (for `sweep`'s summary and `best`). */
export function formatTable(rows: RankedRow[], k: number, by: string): string[] {
  if (rows.length === 0) return [];
  const columns = tableColumns(rows, by);
  const lines = mergeEquivalent(rows, columns, k);
  const merged = lines.some((line) => line.configs.length > 1);
  const header = ['#', ...columns.map((column) => column.header), ...(merged ? ['n'] : [])];
  const body = lines.map((line, i) => [String(i + 1), ...line.cells, ...(merged ? [String(line.configs.length)] : [])]);
  const widths = header.map((title, c) => Math.max(title.length, ...body.map((cells) => cells[c].length)));
  const render = (cells: string[]) => ' ' + cells.map((cell, c) => cell.padStart(widths[c])).join(' ');
  const out = [render(header), ...body.map(render)];
  if (merged) out.push('  n: configs on one line (same numbers); a/b lists their values in order, column by column.');
  return out;
}

const BY_TEXT: Record<string, string> = { tokens_per_s: 'tokens/s', tokens_per_s_per_gpu: 'tokens/s/GPU', step_time_s: 'step time', total_gib: 'memory' };

/** The human-readable report of `parasweep best`, every line at most BEST_WIDTH columns. */
export function formatBest(results: ReturnType<BestConfigs['results']>, context: BestContext, k: number): string {
  const lines: string[] = [];
  const dtypes = context.dtypes;
  const precision = dtypes
    ? `params ${short(dtypes.param)}, grads ${short(dtypes.grad)}, Adam ${short(dtypes.optimizer_state)}` +
      (dtypes.master ? `, master ${short(dtypes.master)}` : '')
    : undefined;
  for (const { group, fitting, top, front } of results) {
    const where =
      context.per === undefined
        ? `on ${context.hardware}`
        : context.per === 'ngpus'
          ? `on ${String(group)} x ${context.hardware}`
          : `on ${context.hardware}, ${context.per} = ${String(group)}`;
    const by = BY_TEXT[context.by] ?? context.by;
    const title = `== ${context.model} ${where}: ${fitting} configs fit; top ${Math.min(k, top.length)} by ${by} ==`;
    lines.push(...wrap(title, BEST_WIDTH, '   '));
    const rows = top.length > 0 ? top : front;
    const setting = [
      `GBS ${context.gbs ?? range(rows, 'global_batch_size')}`,
      `seq ${context.seq ?? range(rows, 'seq_length')}`,
      ...(context.headroom !== undefined ? [`headroom ${+(context.headroom * 100).toFixed(2)}%`] : []),
      ...(precision ? [precision] : []),
    ].join(', ');
    lines.push(...wrap(`   ${setting}`, BEST_WIDTH, '   '));
    lines.push(...formatTable(top, k, context.by));
    const winner = top[0]?.values;
    if (winner) {
      const step = Number(winner.step_time_s);
      const part = (name: string) =>
        `${name.replace(/_s$/, '').replace(/_comm$/, '')} ${fixed(winner[name], 2)} s (${((Number(winner[name]) / step) * 100).toFixed(0)}%)`;
      const terms = ['compute_s', 'tp_comm_s', 'pp_comm_s', 'dp_comm_s', 'ep_comm_s', 'cp_comm_s', 'bubble_s', 'optimizer_s', 'offload_s']
        .filter((name) => Number(winner[name]) > 0)
        .map(part);
      lines.push(...wrap(`  why #1: step ${fixed(step, 2)} s = ${terms.join(' + ')}`, BEST_WIDTH, '          '));
      lines.push(
        ...wrap(
          `          memory ${fixed(winner.total_gib, 1)} GiB = weights ${fixed(winner.weights_gib, 1)} + grads ${fixed(winner.grads_gib, 1)} + optimizer ${fixed(winner.optimizer_gib, 1)} + activations ${fixed(winner.activations_gib, 1)} + logits ${fixed(winner.logits_gib, 1)} (stage ${winner.heaviest_stage}, ${fixed(winner.inflight_microbatches, 1)} micro-batches in flight); hidden comm ${fixed(winner.overlapped_comm_s, 2)} s`,
          BEST_WIDTH,
          '          ',
        ),
      );
      if (context.settings) lines.push(...wrap(`  assumed: schedule ${String(winner.schedule)}, ${context.settings}`, BEST_WIDTH, '          '));
      if (context.errorOf) lines.push(...wrap(`  ${context.errorOf(winner)}`, BEST_WIDTH, '          '));
    }
    lines.push(`  Pareto front (memory per GPU vs step time), ${front.length} configs:`);
    for (const row of front) {
      const text = `    ${fixed(row.total_gib, 1).padStart(7)} GiB  ${fixed(row.step_time_s, 2).padStart(8)} s  ${layoutText(row.values)}`;
      lines.push(...wrap(text, BEST_WIDTH, ' '.repeat(33)));
    }
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * The rows `best -o` writes: per group, the top k (with `rank`) and the Pareto front (`on_pareto`), each config
 * once, ranked rows first.
 */
export function bestRows(results: ReturnType<BestConfigs['results']>, k: number): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const { top, front } of results) {
    const onFront = new Set(front.map((row) => row.rowId));
    const ranked = top.slice(0, k);
    const seen = new Set<number>();
    ranked.forEach((row, i) => {
      seen.add(row.rowId);
      out.push({ ...row.values, rank: i + 1, on_pareto: onFront.has(row.rowId) });
    });
    for (const row of front) if (!seen.has(row.rowId)) out.push({ ...row.values, rank: null, on_pareto: true });
  }
  return out;
}
