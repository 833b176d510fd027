import { RecordBatch } from 'apache-arrow';
import { TopK } from './filter/topk.js';

/** One fitting config, as the ranking sees it. */
export interface RankedRow {
  group: number;
  rowId: number;
  tokens_per_s: number;
  total_gib: number;
  step_time_s: number;
  /** Every column of the row, by name. */
  values: Record<string, unknown>;
}

/**
 * For `parasweep best`: per GPU count, the top k fitting configs by tokens/s (ties to lower memory, then grid
 * order) and the Pareto front of (memory per GPU, step time). Rows stream through; memory stays O(k + front).
 */
export class BestConfigs {
  private readonly top: TopK;
  private readonly rows = new Map<number, RankedRow>();
  private readonly fronts = new Map<number, RankedRow[]>();
  private readonly counts = new Map<number, number>();
  private nextRowId = 0;

  constructor(
    private readonly k: number,
    private readonly groupColumn = 'ngpus',
    maxGroup = 1 << 20,
  ) {
    this.top = new TopK({ k, descending: true, groups: maxGroup });
  }

  add(batch: RecordBatch): void {
    const names = batch.schema.fields.map((field) => field.name);
    const columns = names.map((name) => batch.getChild(name)!);
    const col = (name: string) => columns[names.indexOf(name)];
    const group = col(this.groupColumn);
    const tokens = col('tokens_per_s');
    const memory = col('total_gib');
    const step = col('step_time_s');
    for (let i = 0; i < batch.numRows; i++) {
      const rowId = this.nextRowId++;
      const g = Number(group.get(i));
      this.counts.set(g, (this.counts.get(g) ?? 0) + 1);
      const value = Number(tokens.get(i));
      const total = Number(memory.get(i));
      const time = Number(step.get(i));
      const inTop = value >= this.top.threshold(g);
      const front = this.fronts.get(g) ?? [];
      const dominated = front.some((p) => p.total_gib <= total && p.step_time_s <= time && (p.total_gib < total || p.step_time_s < time));
      if (!inTop && dominated) continue;
      const row: RankedRow = {
        group: g,
        rowId,
        tokens_per_s: value,
        total_gib: total,
        step_time_s: time,
        values: Object.fromEntries(names.map((name, c) => [name, columns[c].get(i)])),
      };
      if (inTop) {
        this.top.offer(g, value, total, rowId);
        this.rows.set(rowId, row);
      }
      if (!dominated) {
        // Drop the points this one dominates; keep the front sorted by memory.
        const kept = front.filter((p) => !(total <= p.total_gib && time <= p.step_time_s));
        kept.push(row);
        kept.sort((a, b) => a.total_gib - b.total_gib || a.step_time_s - b.step_time_s);
        this.fronts.set(g, kept);
      }
    }
    if (this.rows.size > 8 * this.k * Math.max(1, this.counts.size) + 4096) {
      const live = new Set(this.top.results().map((entry) => entry.rowId));
      for (const id of this.rows.keys()) if (!live.has(id)) this.rows.delete(id);
    }
  }

  /** Groups in ascending order, each with its fitting-config count, its top k and its Pareto front. */
  results(): Array<{ group: number; fitting: number; top: RankedRow[]; front: RankedRow[] }> {
    const winners = this.top.results();
    return [...this.counts.keys()]
      .sort((a, b) => a - b)
      .map((group) => ({
        group,
        fitting: this.counts.get(group)!,
        top: winners.filter((entry) => entry.group === group).map((entry) => this.rows.get(entry.rowId)!),
        front: this.fronts.get(group) ?? [],
      }));
  }
}

const fixed = (value: unknown, digits: number) => (typeof value === 'number' ? value.toFixed(digits) : String(value));

function layout(v: Record<string, unknown>): string {
  const schedule = v.pp === 1 ? '' : v.schedule === 'interleaved' ? ` interleaved v${v.vpp}` : ` ${String(v.schedule)}`;
  const moe = Number(v.ep) > 1 || Number(v.etp) > 1 ? ` ep${v.ep} etp${v.etp}` : '';
  return `tp${v.tp} pp${v.pp}${schedule} cp${v.cp}${moe} dp${v.dp} zero${v.zero}${v.sp ? ' sp' : ''} mbs${v.mbs} rc:${v.recompute}${v.offload === 'none' ? '' : ` off:${String(v.offload)}`}`;
}

/** The human-readable report of `parasweep best`. */
export function formatBest(
  results: ReturnType<BestConfigs['results']>,
  context: { model: string; hardware: string; settings?: string },
): string {
  const lines: string[] = [];
  for (const { group, fitting, top, front } of results) {
    lines.push(`== ${context.model} on ${group} x ${context.hardware}: ${fitting} configs fit; top ${top.length} by tokens/s ==`);
    lines.push(
      ` rank  ${'layout'.padEnd(62)} ${'GiB/GPU'.padStart(8)} ${'step s'.padStart(8)} ${'tok/s/GPU'.padStart(10)} ${'MFU'.padStart(6)}`,
    );
    top.forEach((row, i) => {
      const v = row.values;
      lines.push(
        ` ${String(i + 1).padStart(4)}  ${layout(v).padEnd(62)} ${fixed(v.total_gib, 1).padStart(8)} ${fixed(v.step_time_s, 2).padStart(8)} ${fixed(v.tokens_per_s_per_gpu, 0).padStart(10)} ${(Number(v.mfu) * 100).toFixed(1).padStart(5)}%`,
      );
    });
    const winner = top[0]?.values;
    if (winner) {
      const step = Number(winner.step_time_s);
      const part = (name: string) => `${name.replace(/_s$/, '').replace(/_comm$/, '')} ${fixed(winner[name], 2)} s (${((Number(winner[name]) / step) * 100).toFixed(0)}%)`;
      lines.push(
        `  why #1: step ${fixed(step, 2)} s = ` +
          ['compute_s', 'tp_comm_s', 'pp_comm_s', 'dp_comm_s', 'ep_comm_s', 'cp_comm_s', 'bubble_s', 'optimizer_s', 'offload_s']
            .filter((name) => Number(winner[name]) > 0)
            .map(part)
            .join(' + '),
      );
      lines.push(
        `          memory ${fixed(winner.total_gib, 1)} GiB = weights ${fixed(winner.weights_gib, 1)} + grads ${fixed(winner.grads_gib, 1)} + optimizer ${fixed(winner.optimizer_gib, 1)} + activations ${fixed(winner.activations_gib, 1)} + logits ${fixed(winner.logits_gib, 1)} (stage ${winner.heaviest_stage}, ${fixed(winner.inflight_microbatches, 1)} micro-batches in flight); hidden comm ${fixed(winner.overlapped_comm_s, 2)} s`,
      );
      if (context.settings) lines.push(`  assumed: schedule ${layout(winner).includes('interleaved') ? 'interleaved' : String(winner.schedule)}, ${context.settings}`);
    }
    lines.push(`  Pareto front (memory per GPU vs step time), ${front.length} configs:`);
    for (const row of front) {
      lines.push(`    ${fixed(row.total_gib, 1).padStart(7)} GiB  ${fixed(row.step_time_s, 2).padStart(8)} s  ${layout(row.values)}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
