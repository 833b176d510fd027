/**
 * `parasweep explain`: one config, every pipeline rank and virtual chunk: its layers, memory by component and time by
 * term, with the heaviest rank and the critical path marked. The numbers are the CPU reference's (src/model.ts,
 * f64), the same functions the sweep evaluates per row; the sweep reports only the heaviest and slowest rank.
 */
import { InputError } from '../errors.js';
import { chunkLayers, defaultSplit, megatronSplitArgs, SplitRule } from '../layout.js';
import {
  chunk_first_layer,
  chunk_layers,
  FULL_OUTPUTS,
  full_estimate,
  FullConstants,
  FullRow,
  FULL_CONSTANTS,
  FULL_INPUTS,
  microbatch_passes,
  microbatch_s,
  moe_layers_before,
  PACE_TIE_RTOL,
  pipeline_bubble_s,
  SCHEDULE_DUALPIPE,
  stage_layer_counts,
  stage_memory,
  stage_tail,
  stage_time,
} from '../model.js';
import { prepareSweep, PreparedSweep, SweepOptions } from '../sweep.js';
import { describeModelError, describeTimeSettings } from '../settings.js';

const GIB = 1024 ** 3;

/** One virtual chunk (Megatron's model chunk j·pp + rank). */
export interface ChunkExplanation {
  /** Virtual stage index on its rank (0 .. vpp-1), or the DualPipe direction (0: forward, 1: reverse). */
  chunk: number;
  /** Position in the model: j·pp + rank (interleaved), the stage (DualPipe). */
  model_chunk: number;
  first_layer: number;
  layers: number;
  moe_layers: number;
}

export interface StageExplanation {
  stage: number;
  chunks: ChunkExplanation[];
  layers: number;
  moe_layers: number;
  dense_layers: number;
  mtp_layers: number;
  embedding: boolean;
  output_layer: boolean;
  params: number;
  inflight_microbatches: number;
  memory_gib: { weights: number; grads: number; optimizer: number; activations: number; logits: number; total: number; offloaded: number };
  /** One micro-batch pass (forward and backward of every chunk of the rank), by term; `microbatch` is the sum. */
  microbatch_s: { compute: number; tp: number; ep: number; cp: number; pp: number; dp: number; microbatch: number };
  /** Once per step after the last micro-batch. */
  tail_s: { dp: number; optimizer: number; offload: number };
  heaviest: boolean;
  /** Sets the pipeline's pace (micro-batches x its micro-batch time). */
  slowest: boolean;
  /** Finishes last after the pipeline drains (its gradient sync, optimizer step and offload). */
  last_to_finish: boolean;
}

export interface Explanation {
  model: string;
  hardware: string;
  /** The row's grid columns, categorical ones as their labels. */
  config: Record<string, number | string>;
  /** The row's computed columns, as the sweep writes them (CPU reference). */
  result: Record<string, number>;
  split: {
    rule: SplitRule | 'custom';
    first_stage_layers: number;
    last_stage_layers: number;
    /** Layers per [rank][virtual chunk]: what launch flags need. */
    chunk_layers: number[][];
    /** Megatron-LM arguments producing this split, or null when only --pipeline-model-parallel-layout can. */
    megatron_args: string[] | null;
  };
  stages: StageExplanation[];
  heaviest_stage: number;
  slowest_stage: number;
  /** The step as the sum along its critical path. */
  critical_path: { passes: number; microbatch_s: number; bubble_s: number; tail_s: number; step_time_s: number; text: string };
  memory_limit_gib: number;
  fits: boolean;
  /** The stack settings the step time assumed, and the model's held-out error on runs of this config's regime. */
  assumed: string;
  model_error: string;
}

/** The single valid row of a sweep whose every dimension is pinned, or an InputError saying what to pin. */
function singleRow(prepared: PreparedSweep): { row: Record<string, number>; labels: Record<string, string> } {
  const names = prepared.grid.columns.map((column) => column.name);
  const rows: Int32Array[] = [];
  for (const chunk of prepared.grid.chunks(2)) {
    for (let i = 0; i < chunk.length && rows.length < 2; i++) rows.push(Int32Array.from(chunk.columns, (column) => column[i]));
    if (rows.length >= 2) break;
  }
  if (rows.length > 1) {
    const open = [...prepared.space.values()].filter((dimension) => dimension.values.length > 1).map((dimension) => dimension.key);
    throw new InputError(
      'explain',
      `more than one config matches; pin each dimension to one value (still open: ${open.join(', ') || 'none'})`,
    );
  }
  const row = Object.fromEntries(names.map((name, k) => [name, rows[0][k]]));
  const labels: Record<string, string> = {};
  prepared.grid.columns.forEach((column) => {
    if (column.labels) labels[column.name] = column.labels[row[column.name]];
  });
  return { row, labels };
}

/** Explains one config. Takes the sweep's options; every search dimension must leave one valid config. */
export function explain(options: SweepOptions): Explanation {
  const prepared = prepareSweep({ ...options, where: undefined, fitsOnly: undefined, top: undefined });
  if (prepared.formula.name !== 'full') throw new InputError('--formula', 'explain shows the stages of --formula full');
  const { row: gridRow, labels } = singleRow(prepared);
  const c = Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, prepared.constants[i]])) as FullConstants;
  const r = Object.fromEntries(FULL_INPUTS.map((name) => [name, gridRow[name]])) as unknown as FullRow;

  const out = new Float64Array(FULL_OUTPUTS.length);
  full_estimate(c, r, out);
  const result = Object.fromEntries(FULL_OUTPUTS.map((name, i) => [name, out[i]]));

  const dualpipe = r.schedule === SCHEDULE_DUALPIPE;
  const stages: StageExplanation[] = [];
  let slowest = 0;
  let lastToFinish = 0;
  let latestTail = -1;
  for (let i = 0; i < r.pp; i++) {
    const counts = stage_layer_counts(c, r, i);
    const chunks: ChunkExplanation[] = [];
    const ranks = dualpipe ? [i, r.pp - 1 - i] : [i];
    ranks.forEach((rank, direction) => {
      for (let j = 0; j < r.vpp; j++) {
        const first = chunk_first_layer(c, r, rank, j);
        const layers = chunk_layers(c, r, rank, j);
        chunks.push({
          chunk: dualpipe ? direction : j,
          model_chunk: j * r.pp + rank,
          first_layer: first,
          layers,
          moe_layers: moe_layers_before(c, first + layers) - moe_layers_before(c, first),
        });
      }
    });
    const memory = stage_memory(c, r, i);
    const time = stage_time(c, r, i);
    const tail = stage_tail(time);
    // The same choice as full_estimate: a later rank must be slower by more than PACE_TIE_RTOL.
    if (i > 0 && microbatch_s(time) > stages[slowest].microbatch_s.microbatch * (1 + PACE_TIE_RTOL)) slowest = i;
    const tailTotal = tail.dp_exposed_s + tail.optimizer_s + tail.offload_s;
    if (tailTotal > latestTail) {
      latestTail = tailTotal;
      lastToFinish = i;
    }
    stages.push({
      stage: i,
      chunks,
      layers: counts.layers,
      moe_layers: counts.moe,
      dense_layers: counts.dense,
      mtp_layers: counts.mtp,
      embedding: counts.embedding === 1,
      output_layer: counts.output === 1,
      params: memory.params_gpu,
      inflight_microbatches: memory.inflight,
      memory_gib: {
        weights: memory.weights / GIB,
        grads: memory.grads / GIB,
        optimizer: memory.optimizer / GIB,
        activations: memory.activations / GIB,
        logits: memory.logits / GIB,
        total: memory.total / GIB,
        offloaded: memory.offloaded / GIB,
      },
      microbatch_s: {
        compute: time.compute_s,
        tp: time.tp_s,
        ep: time.ep_s,
        cp: time.cp_exposed_s,
        pp: time.pp_s,
        dp: time.dp_mb_s,
        microbatch: microbatch_s(time),
      },
      tail_s: { dp: tail.dp_exposed_s, optimizer: tail.optimizer_s, offload: tail.offload_s },
      heaviest: false,
      slowest: false,
      last_to_finish: false,
    });
  }
  const heaviest = result.heaviest_stage;
  // With DualPipe rank pp-1-i mirrors rank i: the sweep names the lower one, so mark both.
  for (const stage of stages) {
    const mirror = dualpipe ? r.pp - 1 - stage.stage : stage.stage;
    stage.heaviest = stage.stage === heaviest || mirror === heaviest;
    stage.slowest = stage.stage === slowest;
    stage.last_to_finish = stage.stage === lastToFinish;
  }

  const passes = microbatch_passes(r.schedule, r.num_microbatches);
  const pace = stages[slowest].microbatch_s.microbatch;
  const bubble = pipeline_bubble_s(r.pp, r.vpp, r.schedule, pace);
  const text =
    `${passes} micro-batch passes x ${pace.toPrecision(4)} s on stage ${slowest} + bubble ${bubble.toPrecision(4)} s` +
    ` + stage ${lastToFinish}'s tail ${latestTail.toPrecision(4)} s = ${result.step_time_s.toPrecision(4)} s`;

  const config: Record<string, number | string> = {};
  for (const column of prepared.grid.columns) config[column.name] = labels[column.name] ?? gridRow[column.name];
  const split = defaultSplit(c.num_layers, r.pp, r.vpp);
  const sameAsDefault = split && split.first === r.first_stage_layers && split.last === r.last_stage_layers;
  return {
    model: prepared.config.model.name,
    hardware: prepared.context.hardware.name,
    config,
    result,
    split: {
      rule: sameAsDefault ? split.rule : 'custom',
      first_stage_layers: r.first_stage_layers,
      last_stage_layers: r.last_stage_layers,
      chunk_layers: chunkLayers(c.num_layers, r.pp, r.vpp, r.first_stage_layers, r.last_stage_layers),
      megatron_args: megatronSplitArgs(c.num_layers, r.pp, r.vpp, r.first_stage_layers, r.last_stage_layers) ?? null,
    },
    stages,
    heaviest_stage: heaviest,
    slowest_stage: slowest,
    critical_path: { passes, microbatch_s: pace, bubble_s: bubble, tail_s: latestTail, step_time_s: result.step_time_s, text },
    memory_limit_gib: c.memory_gib / (1 + c.headroom),
    fits: result.fits === 1,
    assumed: describeTimeSettings(prepared.config.trainer, prepared.config.model),
    model_error: describeModelError(prepared.context, r),
  };
}

const fixed = (value: number, digits: number) => value.toFixed(digits);

/** The explanation as a table: one line per rank, its chunks, then the critical path. */
export function formatExplanation(e: Explanation): string {
  const cfg = e.config;
  const layout =
    `tp${cfg.tp} pp${cfg.pp} ${cfg.schedule}${Number(cfg.vpp) > 1 ? ` vpp${cfg.vpp}` : ''} cp${cfg.cp} dp${cfg.dp}` +
    `${Number(cfg.ep) > 1 ? ` ep${cfg.ep}` : ''}${Number(cfg.etp) > 1 ? ` etp${cfg.etp}` : ''} zero${cfg.zero}` +
    `${Number(cfg.dp_replicas) > 1 ? ` replicas${cfg.dp_replicas}` : ''}` +
    `${Number(cfg.zero) >= 2 ? ` grads:${cfg.grad_reduce}` : ''}${Number(cfg.zero) === 3 ? ` reshard:${cfg.reshard ? 'yes' : 'no'}` : ''}` +
    `${cfg.sp ? ' sp' : ''} mbs${cfg.mbs} rc:${cfg.recompute}${cfg.offload !== 'none' ? ` offload:${cfg.offload}` : ''}`;
  const lines = [
    `== ${e.model} on ${cfg.ngpus} x ${e.hardware}: ${layout} ==`,
    `global batch ${cfg.global_batch_size} (target ${cfg.target_global_batch_size}), ${cfg.num_microbatches} micro-batches; ` +
      `split: first rank ${e.split.first_stage_layers} layers, last ${e.split.last_stage_layers} (${e.split.rule}; ` +
      `${e.split.megatron_args === null ? 'Megatron: --pipeline-model-parallel-layout' : e.split.megatron_args.length === 0 ? 'Megatron: no flag' : `Megatron: ${e.split.megatron_args.join(' ')}`})`,
    '',
    ' stage  chunks (layers)          layers  in-flight   weights   grads   optim   activ  logits    total GiB   compute      tp      ep      cp      pp      dp   micro-batch s   marks',
  ];
  for (const s of e.stages) {
    const chunks = s.chunks.map((chunk) => String(chunk.layers)).join('+');
    const extras = [s.embedding ? 'emb' : '', s.output_layer ? 'out' : '', s.mtp_layers > 0 ? `mtp${s.mtp_layers}` : ''].filter(Boolean).join(',');
    const marks = [s.heaviest ? 'HEAVIEST' : '', s.slowest ? 'SLOWEST (pace)' : '', s.last_to_finish ? 'last to finish' : '']
      .filter(Boolean)
      .join(', ');
    const m = s.memory_gib;
    const t = s.microbatch_s;
    lines.push(
      `${String(s.stage).padStart(6)}  ${(chunks + (extras ? ` ${extras}` : '')).padEnd(23)} ${String(s.layers).padStart(7)} ${fixed(s.inflight_microbatches, 2).padStart(10)}` +
        ` ${fixed(m.weights, 2).padStart(9)} ${fixed(m.grads, 2).padStart(7)} ${fixed(m.optimizer, 2).padStart(7)} ${fixed(m.activations, 2).padStart(7)} ${fixed(m.logits, 2).padStart(7)}` +
        ` ${fixed(m.total, 2).padStart(12)} ${[t.compute, t.tp, t.ep, t.cp, t.pp, t.dp].map((x) => fixed(x, 4).padStart(7)).join(' ')}` +
        ` ${fixed(t.microbatch, 4).padStart(15)}   ${marks}`,
    );
  }
  const heaviest = e.stages.find((stage) => stage.stage === e.heaviest_stage)!;
  lines.push(
    '',
    `memory: stage ${e.heaviest_stage} needs ${fixed(heaviest.memory_gib.total, 2)} GiB; the limit with headroom is ${fixed(e.memory_limit_gib, 2)} GiB: ${e.fits ? 'fits' : 'does NOT fit'}`,
    `critical path: ${e.critical_path.text}`,
    `assumed: ${e.assumed}`,
    e.model_error,
  );
  return lines.join('\n') + '\n';
}
