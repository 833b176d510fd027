import { attentionKernelRatio, FamilyCalibration, familyCalibration, loadCalibration } from '../config/calibration.js';
import { CP_COMM_TYPES, DTYPE_BYTES, ModelConfig, TrainerConfig } from '../config/model.js';
import { GRAD_REDUCE_MODES, OFFLOAD_MODES, RECOMPUTE_MODES, SCHEDULES, SearchKeyName } from '../config/space.js';
import { InputError } from '../errors.js';
import { GridPlan } from '../grid/grid.js';
import { batchUsed, pinnedSplit, replicasDivide } from '../layout.js';
import {
  FULL_CONSTANTS,
  FULL_INPUTS,
  FULL_OUTPUTS,
  FullConstants,
  FullRow,
  full_estimate,
  GRAD_REDUCE_MICROBATCH,
  GRAD_REDUCE_STEP,
  last_distinct_rank,
  microbatch_s,
  PACE_TIE_RTOL,
  same_as_previous_middle,
  SCHEDULE_1F1B,
  SCHEDULE_DUALPIPE,
  SCHEDULE_INTERLEAVED,
  stage_memory,
  stage_time,
} from '../model.js';
import { DEFAULT_GBS_TOLERANCE, type Formula, type ResultColumn, type SweepContext } from './types.js';
import { fullExactColumns } from './counts.js';

const GATED = new Set(['swiglu', 'geglu', 'glu']);

function checkModel(model: ModelConfig): void {
  if (model.num_attention_heads === undefined) {
    throw new InputError('model.num_attention_heads', 'required by --formula full (the PoC formula can do without it)');
  }
  const moe = model.moe;
  if (moe && moe.num_experts > 0) {
    const layers = (model.num_layers - moe.first_k_dense_layers) * moe.expert_frequency;
    if (moe.first_k_dense_layers > model.num_layers) {
      throw new InputError('model.moe.first_k_dense_layers', `exceeds model.num_layers (${model.num_layers})`);
    }
    if (Math.abs(layers - Math.round(layers)) > 1e-9) {
      throw new InputError(
        'model.moe.expert_frequency',
        `(num_layers - first_k_dense_layers) x expert_frequency must be a whole number of MoE layers, got ${layers}`,
      );
    }
  }
}

/**
 * Dense peak TFLOP/s of the dtype the non-FP8 GEMMs run in: trainer.compute_dtype under autocast, else the
 * parameters' dtype (fp32 on TF32 tensor cores), bf16 for fp8 parameters, whose attention core, output layer and
 * element-wise work stay in bf16. MFU is against it.
 */
function peakFlops({ config, hardware }: SweepContext): number {
  const dtype = config.trainer.compute_dtype ?? config.trainer.param_dtype;
  const peak =
    dtype === 'float32'
      ? (hardware.peak_tflops.tf32 ?? hardware.peak_tflops.fp32)
      : dtype === 'float16'
        ? hardware.peak_tflops.fp16
        : hardware.peak_tflops.bf16;
  return peak;
}

/** Whether the linear layers run in FP8, and its peak (TFLOP/s) when they do. */
function fp8PeakFlops({ config, hardware }: SweepContext): number {
  const { trainer } = config;
  if (!trainer.fp8 && trainer.param_dtype !== 'fp8') return 0;
  const peak = hardware.peak_tflops.fp8;
  if (!peak) {
    const field = trainer.param_dtype === 'fp8' ? 'trainer.param_dtype' : 'trainer.fp8';
    throw new InputError(field, `FP8 needs hardware.peak_tflops.fp8, which ${hardware.name} lacks`);
  }
  return peak;
}

/**
 * The model constants a hardware family's calibration sets: what `npm run calibrate` refits, so that a fit can
 * swap them into constants packed once (src/analysis/calibrate.ts). The attention kernel scales the fused kernel's
 * efficiency by its ratio; torch.compile leaves the family's fraction of the element-wise passes.
 */
export function familyConstants(
  family: FamilyCalibration,
  trainer: Pick<TrainerConfig, 'attention_kernel' | 'torch_compile'>,
): Pick<
  FullConstants,
  'gemm_efficiency_max' | 'gemm_efficiency_half_dim' | 'memory_passes' | 'fp8_efficiency' | 'attention_efficiency' | 'attention_half_seq' | 'overlap_cost'
> {
  return {
    gemm_efficiency_max: family.gemm_efficiency_max,
    gemm_efficiency_half_dim: family.gemm_efficiency_half_dim,
    memory_passes: family.memory_passes * (trainer.torch_compile ? family.compile_passes_ratio : 1),
    fp8_efficiency: family.fp8_efficiency,
    attention_efficiency: family.attention_efficiency * attentionKernelRatio(family, trainer.attention_kernel),
    attention_half_seq: family.attention_half_seq,
    overlap_cost: family.overlap_cost,
  };
}

function constantsOf(ctx: SweepContext): FullConstants {
  const { config, hardware, headroom } = ctx;
  const calibration = ctx.calibration ?? loadCalibration();
  const family = familyCalibration(calibration, hardware.calibration_family);
  const { model, trainer } = config;
  const fp8_peak = fp8PeakFlops(ctx);
  checkModel(model);
  const heads = model.num_attention_heads!;
  const moe = model.moe && model.moe.num_experts > 0 ? model.moe : undefined;
  const mla = model.mla;
  const c: FullConstants = {
    hidden_size: model.hidden_size,
    num_layers: model.num_layers,
    num_attention_heads: heads,
    num_query_groups: model.num_key_value_heads ?? heads,
    kv_channels: model.kv_channels ?? model.hidden_size / heads,
    ffn_hidden_size: model.ffn_hidden_size,
    vocab_size: model.vocab_size,
    vocab_divisor: model.make_vocab_size_divisible_by,
    gated_mlp: GATED.has(model.activation) ? 1 : 0,
    norm_params: model.normalization === 'layernorm' ? 2 : 1,
    bias: model.add_bias_linear ? 1 : 0,
    learned_positions: model.position_embedding_type === 'learned_absolute' ? 1 : 0,
    untied_embeddings: model.share_embeddings_and_output_weights ? 0 : 1,
    dropout: model.dropout ? 1 : 0,
    mla: mla ? 1 : 0,
    q_lora_rank: mla?.q_lora_rank ?? 0,
    kv_lora_rank: mla?.kv_lora_rank ?? 0,
    qk_head_dim: mla?.qk_head_dim ?? 0,
    qk_pos_emb_head_dim: mla?.qk_pos_emb_head_dim ?? 0,
    v_head_dim: mla?.v_head_dim ?? 0,
    num_experts: moe?.num_experts ?? 0,
    moe_k: moe?.k ?? 0,
    moe_ffn_hidden_size: moe?.ffn_hidden_size ?? model.ffn_hidden_size,
    first_k_dense_layers: moe?.first_k_dense_layers ?? 0,
    moe_layer_freq: moe?.expert_frequency ?? 0,
    num_shared_experts: moe?.num_shared_experts ?? 0,
    shared_expert_ffn_hidden_size: moe?.shared_expert_ffn_hidden_size ?? moe?.ffn_hidden_size ?? model.ffn_hidden_size,
    capacity_factor: moe?.token_imbalance_hypothesis ?? 1,
    moe_router_num_groups: moe?.router_num_groups ?? 1,
    moe_router_group_topk: moe?.router_group_topk ?? 1,
    mtp_num_layers: model.mtp_num_layers,
    param_bytes: DTYPE_BYTES[trainer.param_dtype],
    grad_bytes: DTYPE_BYTES[trainer.grad_dtype],
    optimizer_state_bytes: DTYPE_BYTES[trainer.optimizer_state_dtype],
    master_bytes: trainer.master_weights ? DTYPE_BYTES[trainer.master_dtype] : 0,
    flash_attention: trainer.flash_attention ? 1 : 0,
    memory_gib: hardware.memory_gib,
    headroom,
    peak_flops: peakFlops(ctx) * 1e12,
    hbm_bytes_s: hardware.hbm_tb_s * 1e12,
    scaleup_bytes_s: hardware.scaleup_gb_s_per_gpu * 1e9 * calibration.scaleup_efficiency,
    scaleout_bytes_s: hardware.scaleout_gb_s_per_gpu * 1e9 * calibration.scaleout_efficiency,
    gpus_per_node: hardware.gpus_per_node,
    scaleup_latency_s: hardware.scaleup_latency_us * 1e-6,
    scaleout_latency_s: hardware.scaleout_latency_us * 1e-6,
    collective_latency_s: hardware.collective_base_latency_us * 1e-6,
    pcie_bytes_s: hardware.pcie_gb_s * 1e9,
    ...familyConstants(family, trainer),
    cpu_optimizer_params_s: calibration.cpu_optimizer_params_s,
    fp8_peak_flops: fp8_peak * 1e12,
    fp8_linear: fp8_peak > 0 ? 1 : 0,
    tp_comm_overlap: trainer.tp_comm_overlap ? 1 : 0,
    overlap_grad_reduce: trainer.overlap_grad_reduce ? 1 : 0,
    overlap_param_gather: trainer.overlap_param_gather ? 1 : 0,
    overlap_p2p_comm: trainer.overlap_p2p_comm ? 1 : 0,
    moe_a2a_overlap: trainer.moe_a2a_overlap ? 1 : 0,
    moe_dedup_dispatch: trainer.moe_dedup_dispatch ? 1 : 0,
    cp_comm: CP_COMM_TYPES.indexOf(trainer.cp_comm_type),
  };
  return c;
}

export function unpack(constants: Float64Array): FullConstants {
  return Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, constants[i]])) as FullConstants;
}

const ROW_FIELDS = FULL_INPUTS;

export function rowAt(inputs: Int32Array[], i: number, row: FullRow): FullRow {
  const target = row as unknown as Record<string, number>;
  for (let k = 0; k < ROW_FIELDS.length; k++) target[ROW_FIELDS[k]] = inputs[k][i];
  return row;
}

export function emptyRow(): FullRow {
  return Object.fromEntries(ROW_FIELDS.map((name) => [name, 0])) as unknown as FullRow;
}

/** The default search space: every dimension, with values people actually run. */
function defaults({ config }: SweepContext): Partial<Record<SearchKeyName, unknown>> {
  const experts = config.model.moe?.num_experts ?? 0;
  const powers = (limit: number) => {
    const out: number[] = [];
    for (let v = 1; v <= limit; v *= 2) out.push(v);
    return out;
  };
  const upTo = (limit: number) => Array.from({ length: limit }, (_, i) => i + 1);
  return {
    ngpus_range: [...powers(8192), 10240],
    seq_range: [config.model.seq_length],
    gbs_range: [config.model.global_batch_size],
    // Every size the model's shapes allow, not only powers of two: the grid keeps those that divide.
    tp_range: upTo(8),
    pp_range: upTo(16),
    schedule_range: [...SCHEDULES],
    vpp_range: [1, 2, 4],
    first_stage_layers_range: [0],
    last_stage_layers_range: [0],
    cp_range: upTo(8),
    ep_range: experts > 0 ? powers(Math.min(experts, 64)) : [1],
    etp_range: experts > 0 ? [1, 2, 4, 8] : [1],
    shard_strategys: [0, 1, 2, 3],
    grad_reduce_range: [...GRAD_REDUCE_MODES],
    reshard_range: [false, true],
    dp_replicas_range: [1],
    sp_range: [false, true],
    recompute_range: ['none', 'selective', 'full'],
    offload_range: ['none', 'optimizer', 'optimizer_cpu_step'],
    mbs_range: [1, 2, 4],
  };
}

const GRID_COLUMNS = [
  { name: 'ngpus' },
  { name: 'seq_length' },
  { name: 'global_batch_size' },
  { name: 'target_global_batch_size' },
  { name: 'tp' },
  { name: 'pp' },
  { name: 'vpp' },
  { name: 'schedule', labels: SCHEDULES },
  { name: 'first_stage_layers' },
  { name: 'last_stage_layers' },
  { name: 'cp' },
  { name: 'ep' },
  { name: 'etp' },
  { name: 'dp' },
  { name: 'edp' },
  { name: 'zero' },
  { name: 'dp_replicas' },
  { name: 'grad_reduce', labels: GRAD_REDUCE_MODES },
  { name: 'reshard', flag: true },
  { name: 'sp', flag: true },
  { name: 'recompute', labels: RECOMPUTE_MODES },
  { name: 'offload', labels: OFFLOAD_MODES },
  { name: 'mbs' },
  { name: 'num_microbatches' },
];

/**
 * Memory of the most loaded GPU for every parallelism dimension (TP, PP with schedules and VPP, CP, EP, expert-TP,
 * ZeRO 0-3, SP, recompute, offload), by component, and whether it fits the hardware.
 */
export const fullFormula: Formula = {
  name: 'full',
  description: 'memory of the most loaded GPU by component, every parallelism dimension, fits-in-memory',
  constantNames: FULL_CONSTANTS,
  inputs: FULL_INPUTS,
  outputs: FULL_OUTPUTS,
  wgslFunction: 'full_estimate',
  errorScale: Object.fromEntries(
    ['compute_s', 'tp_comm_s', 'pp_comm_s', 'dp_comm_s', 'ep_comm_s', 'cp_comm_s', 'bubble_s', 'optimizer_s', 'offload_s', 'exposed_comm_s', 'overlapped_comm_s'].map(
      (name) => [name, 'step_time_s'],
    ),
  ),

  searchDefaults: defaults,

  packConstants(ctx) {
    const c = constantsOf(ctx);
    return Float64Array.from(FULL_CONSTANTS, (name) => c[name]);
  },

  buildGrid(ctx, space) {
    const { model } = ctx.config;
    const L = model.num_layers;
    const heads = model.num_attention_heads!;
    const groups = model.num_key_value_heads ?? heads;
    const cpA2a = ctx.config.trainer.cp_comm_type === 'a2a';
    const experts = model.moe?.num_experts ?? 0;
    const expertFfn = model.moe?.ffn_hidden_size ?? model.ffn_hidden_size;
    const tolerance = ctx.gbsTolerance ?? DEFAULT_GBS_TOLERANCE;
    const values = (key: SearchKeyName) => Int32Array.from(space.get(key)!.values);
    const col = Object.fromEntries(GRID_COLUMNS.map((column, i) => [column.name, i])) as Record<string, number>;
    const { ngpus, seq_length, global_batch_size, target_global_batch_size, tp, pp, vpp, schedule, cp, ep, etp, dp, edp, zero, sp, recompute, offload, mbs, num_microbatches } = col;
    const { first_stage_layers, last_stage_layers, grad_reduce, reshard, dp_replicas } = col;
    // Pinned first/last layer counts, swept together: one level walks the pairs and resolves both columns.
    const firsts = space.get('first_stage_layers_range')!.values;
    const lasts = space.get('last_stage_layers_range')!.values;
    const splitRequests = firsts.flatMap((first) => lasts.map((last) => [first, last] as const));
    const targets = [...space.get('gbs_range')!.values].sort((a, b) => a - b);
    const nearestTarget = (batch: number) =>
      targets.reduce((best, target) => (Math.abs(target - batch) < Math.abs(best - batch) ? target : best), targets[0]);
    // Micro-batches run in groups: of pp with the interleaved schedule, in pairs with DualPipe (one per direction).
    const microbatchGroup = (row: Int32Array) =>
      row[schedule] === SCHEDULE_INTERLEAVED ? row[pp] : row[schedule] === SCHEDULE_DUALPIPE ? 2 : 1;
    return new GridPlan(GRID_COLUMNS, [
      { column: ngpus, values: values('ngpus_range') },
      { column: seq_length, values: values('seq_range') },
      { column: target_global_batch_size, values: values('gbs_range') },
      {
        // Megatron shards heads (query groups with GQA) and the FFN over TP.
        column: tp,
        values: values('tp_range'),
        accept: (row) =>
          row[ngpus] % row[tp] === 0 &&
          (model.mla ? heads : groups) % row[tp] === 0 &&
          model.ffn_hidden_size % row[tp] === 0,
        rule: (row) =>
          row[ngpus] % row[tp] !== 0
            ? 'tp divides ngpus'
            : (model.mla ? heads : groups) % row[tp] !== 0
              ? `tp divides the ${model.mla ? 'heads' : 'query groups'} (${model.mla ? heads : groups})`
              : `tp divides ffn_hidden_size (${model.ffn_hidden_size})`,
      },
      {
        column: pp,
        values: values('pp_range'),
        accept: (row) => row[pp] <= L && row[ngpus] % (row[tp] * row[pp]) === 0,
        rule: (row) => (row[pp] > L ? `pp at most num_layers (${L})` : 'tp x pp divides ngpus'),
      },
      {
        // One pipeline stage has no schedule to choose: keep only 1f1b there, so rows are not duplicated.
        // DualPipe folds the pipeline in two: an even pp (deepseek-ai/DualPipe asserts it).
        column: schedule,
        values: values('schedule_range'),
        accept: (row) =>
          row[pp] === 1 ? row[schedule] === SCHEDULE_1F1B : row[schedule] !== SCHEDULE_DUALPIPE || row[pp] % 2 === 0,
        rule: (row) => (row[pp] === 1 ? 'one pipeline stage runs 1f1b only' : 'dualpipe needs an even pp'),
      },
      {
        // Virtual stages only with the interleaved schedule, which needs them, and a layer per chunk, except that
        // the embedding and the loss may stand for the first and the last chunk's (Megatron's account_for_* flags).
        column: vpp,
        values: values('vpp_range'),
        accept: (row) =>
          row[schedule] === SCHEDULE_INTERLEAVED ? row[vpp] >= 2 && row[pp] * row[vpp] <= L + 2 : row[vpp] === 1,
        rule: (row) =>
          row[schedule] !== SCHEDULE_INTERLEAVED
            ? 'vpp > 1 only with the interleaved schedule'
            : row[vpp] < 2
              ? 'interleaved needs vpp >= 2'
              : `pp x vpp at most num_layers + 2 (${L + 2})`,
      },
      {
        // The layers of the first and last rank (src/layout.ts): pinned, or Megatron's rules.
        column: first_stage_layers,
        values: Int32Array.from(splitRequests.keys()),
        map: (row, request) => {
          const [first, last] = splitRequests[request];
          const split = pinnedSplit(L, row[pp], row[vpp], first, last);
          if (!split) return NaN;
          row[last_stage_layers] = split.last;
          return split.first;
        },
        rule: 'the pipeline split gives every rank a whole number of layers (Megatron rules)',
      },
      { column: last_stage_layers, derive: (row) => row[last_stage_layers] },
      {
        // Load-balanced context parallelism splits the sequence into 2 x cp chunks. The all-to-all (Ulysses)
        // splits each TP rank's heads over CP instead: its query and key/value heads must divide (Transformer
        // Engine's a2a context parallelism asserts both).
        column: cp,
        values: values('cp_range'),
        accept: (row) =>
          row[ngpus] % (row[tp] * row[pp] * row[cp]) === 0 &&
          (row[cp] === 1 ? true : row[seq_length] % (2 * row[cp]) === 0) &&
          (!cpA2a || row[cp] === 1 || ((heads / row[tp]) % row[cp] === 0 && (model.mla ? true : (groups / row[tp]) % row[cp] === 0))),
        rule: (row) =>
          row[ngpus] % (row[tp] * row[pp] * row[cp]) !== 0
            ? 'tp x pp x cp divides ngpus'
            : row[seq_length] % (2 * row[cp]) !== 0
              ? 'seq_length divides by 2 x cp'
              : `with cp_comm_type a2a, tp x cp divides the heads (${heads})${model.mla ? '' : ` and the query groups (${groups})`}`,
      },
      {
        // Pruned here rather than at mbs: no micro-batch size can reach a batch that dp alone cannot.
        column: dp,
        derive: (row) => row[ngpus] / (row[tp] * row[pp] * row[cp]),
        accept: (row) => !Number.isNaN(batchUsed(row[target_global_batch_size], row[dp], tolerance)),
        rule: `a multiple of dp within --gbs-tolerance (${tolerance}) of the global batch`,
      },
      {
        column: ep,
        values: values('ep_range'),
        accept: (row) => (experts === 0 ? row[ep] === 1 : experts % row[ep] === 0),
        rule: 'ep divides the experts',
      },
      {
        // Experts are laid out as pp x etp x ep x expert-dp over the same GPUs.
        column: etp,
        values: values('etp_range'),
        accept: (row) =>
          (experts === 0 ? row[etp] === 1 : expertFfn % row[etp] === 0) &&
          (row[ngpus] / row[pp]) % (row[etp] * row[ep]) === 0,
        rule: (row) =>
          (experts === 0 ? row[etp] !== 1 : expertFfn % row[etp] !== 0) ? 'etp divides the expert FFN' : 'etp x ep divides ngpus / pp',
      },
      { column: edp, derive: (row) => row[ngpus] / (row[pp] * row[etp] * row[ep]) },
      {
        // HSDP (FSDP's HYBRID_SHARD, torchtitan's dp_replicate x dp_shard, Megatron's distributed optimizer
        // instances): ZeRO shards over dp / dp_replicas ranks and replicates that across dp_replicas groups, so
        // the replicas split dp (and expert-DP). Walked here, above the per-row dimensions, so that a single value
        // costs one visit per layout rather than one per row; ZeRO-0, which shards nothing, keeps only 1 (the
        // zero level's rule), so rows are not duplicated.
        column: dp_replicas,
        values: values('dp_replicas_range'),
        accept: (row) => replicasDivide(row[dp_replicas], row[dp], row[edp], experts > 0),
        rule: experts === 0 ? 'dp_replicas divides dp' : 'dp_replicas divides dp and edp',
      },
      {
        column: mbs,
        values: values('mbs_range'),
        accept: (row) =>
          !Number.isNaN(batchUsed(row[target_global_batch_size], row[dp] * row[mbs] * microbatchGroup(row), tolerance)),
        rule: (row) =>
          row[schedule] === SCHEDULE_INTERLEAVED
            ? 'a multiple of dp x mbs x pp (interleaved) within --gbs-tolerance of the global batch'
            : row[schedule] === SCHEDULE_DUALPIPE
              ? 'a multiple of dp x mbs x 2 (dualpipe) within --gbs-tolerance of the global batch'
              : 'a multiple of dp x mbs within --gbs-tolerance of the global batch',
      },
      {
        // The batch used: the nearest multiple of dp x mbs (x the schedule's micro-batch group) to the target. With
        // several targets, a batch belongs to the nearest one (the smaller on a tie), so no config runs twice.
        column: global_batch_size,
        derive: (row) => batchUsed(row[target_global_batch_size], row[dp] * row[mbs] * microbatchGroup(row), tolerance),
        accept: (row) => targets.length === 1 || nearestTarget(row[global_batch_size]) === row[target_global_batch_size],
        rule: 'another --gbs target is nearer to the batch this layout runs',
      },
      {
        // DualPipe needs at least 2·pp micro-batches (deepseek-ai/DualPipe: num_chunks >= num_ranks * 2).
        column: num_microbatches,
        derive: (row) => row[global_batch_size] / (row[dp] * row[mbs]),
        accept: (row) => row[schedule] !== SCHEDULE_DUALPIPE || row[num_microbatches] >= 2 * row[pp],
        rule: 'dualpipe needs at least 2 x pp micro-batches',
      },
      // The dimensions no divisibility rule involves come last, so that the rules prune before they multiply.
      // ZeRO-2/3 combine with PP as FSDP does in Llama 3 and torchtitan (docs/memory-model.md, section 2).
      {
        column: zero,
        values: values('shard_strategys'),
        accept: (row) => row[zero] >= 1 || row[dp_replicas] === 1,
        rule: 'dp_replicas > 1 needs ZeRO >= 1',
      },
      {
        // Gradients sharded in memory must be reduce-scattered as produced: ZeRO-2 reducing once per step would
        // keep them whole, which is ZeRO-1; ZeRO-0/1 keep them whole anyway.
        column: grad_reduce,
        values: values('grad_reduce_range'),
        accept: (row) =>
          row[zero] <= 1 ? row[grad_reduce] === GRAD_REDUCE_STEP : row[zero] === 2 ? row[grad_reduce] === GRAD_REDUCE_MICROBATCH : true,
        rule: (row) =>
          row[zero] <= 1 ? 'ZeRO-0/1 reduce gradients once per step' : 'ZeRO-2 reduce-scatters gradients per micro-batch',
      },
      {
        column: reshard,
        values: values('reshard_range'),
        accept: (row) => row[zero] === 3 || row[reshard] === 0,
        rule: 'resharding after the forward needs ZeRO-3',
      },
      {
        // Megatron refuses MoE with TP and without SP ("When using MoE and tensor parallelism, sequence
        // parallelism must be used", megatron/core/model_parallel_config.py).
        column: sp,
        values: values('sp_range'),
        accept: (row) => (row[tp] > 1 ? experts === 0 || row[sp] === 1 : row[sp] === 0),
        rule: experts === 0 ? 'sp needs tp > 1' : (row) => (row[tp] > 1 ? 'MoE with tp > 1 needs sequence parallelism' : 'sp needs tp > 1'),
      },
      { column: recompute, values: values('recompute_range') },
      { column: offload, values: values('offload_range') },
    ]);
  },

  resultColumns(ctx) {
    const grid = (name: string): ResultColumn => ({ name, from: 'grid', column: name });
    const computed = (name: string, kind: 'float' | 'int' | 'bool' = 'float'): ResultColumn => ({
      name,
      from: 'computed',
      index: FULL_OUTPUTS.indexOf(name as never),
      kind,
      ...(/^params_|_bytes$/.test(name) ? { count: true } : {}),
    });
    return [
      { name: 'model', from: 'constant', value: ctx.config.model.name },
      { name: 'hardware', from: 'constant', value: ctx.hardware.name },
      ...GRID_COLUMNS.map((column) => grid(column.name)),
      ...FULL_OUTPUTS.map((name) =>
        computed(name, name === 'fits' ? 'bool' : name === 'heaviest_stage' ? 'int' : 'float'),
      ),
    ];
  },

  exactColumns: fullExactColumns,

  nearTie(constants, inputs, i, rtol) {
    const c = unpack(constants);
    const r = rowAt(inputs, i, emptyRow());
    const totals: number[] = [];
    // The slowest rank as full_estimate picks it, noting any comparison within rtol of its threshold.
    let paceTie = false;
    let slowest = 0;
    for (let stage = 0; stage <= last_distinct_rank(r); stage++) {
      if (same_as_previous_middle(c, r, stage)) continue;
      totals.push(stage_memory(c, r, stage).total);
      const pace = microbatch_s(stage_time(c, r, stage));
      if (stage === 0) {
        slowest = pace;
        continue;
      }
      const threshold = slowest * (1 + PACE_TIE_RTOL);
      if (Math.abs(pace - threshold) <= rtol * threshold) paceTie = true;
      if (pace > threshold) slowest = pace;
    }
    const sorted = [...totals].sort((a, b) => b - a);
    // Two ranks as heavy within rtol, or a rank as slow as the threshold that decides which one splits the step.
    const stageTie = (sorted.length > 1 && sorted[0] - sorted[1] <= rtol * sorted[0]) || paceTie;
    const total_gib = sorted[0] / 1024 ** 3;
    const limitTie = Math.abs(total_gib * (1 + c.headroom) - c.memory_gib) <= rtol * c.memory_gib;
    return stageTie || limitTie;
  },

  evaluate(constants, inputs, outputs, length) {
    const c = unpack(constants);
    const row = emptyRow();
    const result = new Float64Array(FULL_OUTPUTS.length);
    const width = FULL_OUTPUTS.length;
    for (let i = 0; i < length; i++) {
      full_estimate(c, rowAt(inputs, i, row), result);
      for (let j = 0; j < width; j++) outputs[j][i] = result[j];
    }
  },
};
