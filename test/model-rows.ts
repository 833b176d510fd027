/**
 * Grid rows and full-formula outputs for the model's unit tests (memory and time): dp, edp and the micro-batch
 * count are derived as buildGrid derives them, so a test states only the layout it is about.
 */
import { defaultLayoutColumns } from '../src/layout.js';
import { FULL_OUTPUTS, full_estimate, FullConstants, FullRow, OFFLOAD_NONE, RECOMPUTE_NONE, SCHEDULE_1F1B } from '../src/model.js';

export interface Layout {
  ngpus: number;
  seq_length: number;
  global_batch_size: number;
  tp?: number;
  pp?: number;
  vpp?: number;
  schedule?: number;
  cp?: number;
  ep?: number;
  etp?: number;
  zero?: number;
  sp?: number;
  recompute?: number;
  offload?: number;
  mbs?: number;
  /** The model's layers, to resolve the default pipeline split (80 when absent; tests of one stage ignore it). */
  num_layers?: number;
  first_stage_layers?: number;
  last_stage_layers?: number;
  grad_reduce?: number;
  reshard?: number;
  dp_replicas?: number;
}

/** A grid row with dp, edp and m derived as buildGrid derives them. */
export function row(l: Layout): FullRow {
  const tp = l.tp ?? 1;
  const pp = l.pp ?? 1;
  const cp = l.cp ?? 1;
  const ep = l.ep ?? 1;
  const etp = l.etp ?? 1;
  const mbs = l.mbs ?? 1;
  const dp = l.ngpus / (tp * pp * cp);
  const edp = l.ngpus / (pp * etp * ep);
  const m = l.global_batch_size / (dp * mbs);
  for (const [name, v] of [['dp', dp], ['edp', edp], ['m', m]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`bad test layout: ${name} = ${v}`);
  }
  return {
    ngpus: l.ngpus,
    seq_length: l.seq_length,
    global_batch_size: l.global_batch_size,
    tp,
    pp,
    vpp: l.vpp ?? 1,
    schedule: l.schedule ?? SCHEDULE_1F1B,
    cp,
    ep,
    etp,
    dp,
    edp,
    zero: l.zero ?? 1,
    sp: l.sp ?? 0,
    recompute: l.recompute ?? RECOMPUTE_NONE,
    offload: l.offload ?? OFFLOAD_NONE,
    mbs,
    num_microbatches: m,
    ...defaultLayoutColumns(l.num_layers ?? (pp === 1 ? 1 : NaN), pp, l.vpp ?? 1),
    ...(l.first_stage_layers !== undefined ? { first_stage_layers: l.first_stage_layers } : {}),
    ...(l.last_stage_layers !== undefined ? { last_stage_layers: l.last_stage_layers } : {}),
    // ZeRO-2 reduce-scatters per micro-batch (the grid allows nothing else); ZeRO-3 defaults to resharding.
    grad_reduce: l.grad_reduce ?? ((l.zero ?? 1) >= 2 ? 1 : 0),
    reshard: l.reshard ?? ((l.zero ?? 1) === 3 ? 1 : 0),
    dp_replicas: l.dp_replicas ?? 1,
  };
}

export type Outputs = Record<(typeof FULL_OUTPUTS)[number], number>;

export function estimate(c: FullConstants, r: FullRow): Outputs {
  const out = new Float64Array(FULL_OUTPUTS.length);
  full_estimate(c, r, out);
  return Object.fromEntries(FULL_OUTPUTS.map((name, i) => [name, out[i]])) as Outputs;
}
