/**
 * The cost model, on the CPU, in f64. shaders/model.wgsl holds the same model for the GPU, in f32, with the same
 * names and the same order of terms: change one, change the other, and `parasweep check` compares them.
 *
 * Each formula is a pure function of (constants, one grid row) that writes its computed columns into `out`.
 * Constants are packed in a fixed order (the *_CONSTANTS lists) so that the CPU and the GPU uniform agree.
 */

/**
 * Python's float floor division (`a // b`), which the PoC uses on floats and ints alike: (a - fmod(a, b)) / b,
 * rounded to the nearest integer. For ints below 2^53 this equals integer floor division exactly.
 */
export function pyFloorDiv(a: number, b: number): number {
  const mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0 && b < 0 !== mod < 0) div -= 1;
  const floor = Math.floor(div);
  return div - floor > 0.5 ? floor + 1 : floor;
}

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

// ---------------------------------------------------------------------------------------------------------------
// --formula poc: the LLM Parallelism Explorer PoC's estimate, with its integer divisions and what it counts.
// ---------------------------------------------------------------------------------------------------------------

/** Model constants of the PoC formula, in uniform order. Flags are 0/1. */
export const POC_CONSTANTS = [
  'vocab_size',
  'hidden_size',
  'ffn_hidden_size',
  'num_layers',
  'seq_length',
  'global_batch_size',
  'has_kv_heads',
  'num_attention_heads',
  'num_key_value_heads',
  'gated_mlp_matrices',
  'untied_embeddings',
  'expert_frequency',
  'moe_k',
  'num_experts',
  'token_imbalance_hypothesis',
  'psi_no_op_fixed',
  'psi_no_op_sharded',
  'psi_os_fixed',
  'psi_os_sharded',
  'psi_osg_fixed',
  'psi_osg_sharded',
  'psi_fs_fixed',
  'psi_fs_sharded',
] as const;

/** Grid columns the PoC formula reads, in order: the integer inputs of one row. */
export const POC_INPUTS = ['ngpus', 'TP', 'PP', 'EP', 'CP', 'DP', 'micro_batch_size', 'data_parallel_sharding_strategy'] as const;

/** Columns the PoC formula computes, in order. */
export const POC_OUTPUTS = [
  'num_of_micro_batches',
  'pipeline_parallelism_bubble_rate',
  'total_memory_gb',
  'model_and_optimizer_states_memory_gb',
  'activations_memory_gb',
  'cross_entropy_activation_memory_gb',
  'practice_activations_memory_gb',
  'expert_parameters_m',
  'non_expert_parameters_m',
  'expert_layers_activations_gb',
  'practice_expert_layers_activations_gb',
  'non_expert_layers_activations_gb',
  'mlp_activation_mb',
  'moe_activation_mb',
] as const;

export type PocConstants = Record<(typeof POC_CONSTANTS)[number], number>;

/**
 * Bytes of model state per parameter: `fixed + sharded / d` for each sharding strategy (ZeRO 0..3), as in the
 * PoC's psi table, for its three (param, grad) dtype pairs.
 */
export function pocPsi(paramDtype: string, gradDtype: string): Array<[fixed: number, sharded: number]> | undefined {
  const key = `${paramDtype}/${gradDtype}`;
  const table: Record<string, Array<[number, number]>> = {
    'float16/float16': [[20, 0], [4, 16], [2, 18], [0, 20]],
    'float16/float32': [[18, 0], [6, 12], [2, 16], [0, 16]],
    'float32/float32': [[16, 0], [8, 8], [4, 12], [0, 16]],
  };
  return table[key];
}

/** Model-state bytes per parameter for ZeRO stage `zero` sharded over `d` ranks. */
function pocStateCoefficient(c: PocConstants, zero: number, d: number): number {
  if (zero === 0) return c.psi_no_op_fixed + c.psi_no_op_sharded / d;
  if (zero === 1) return c.psi_os_fixed + c.psi_os_sharded / d;
  if (zero === 2) return c.psi_osg_fixed + c.psi_osg_sharded / d;
  return c.psi_fs_fixed + c.psi_fs_sharded / d;
}

/**
 * The PoC's estimate for one grid row. The grid guarantees the PoC's preconditions: tp·pp·cp·dp = ngpus, dp % ep,
 * num_layers % pp, seq_length % cp and num_experts % ep are all 0.
 */
export function pocEstimate(
  c: PocConstants,
  ngpus: number,
  tp: number,
  pp: number,
  ep: number,
  cp: number,
  dp: number,
  mbs: number,
  zero: number,
  out: Float64Array,
): void {
  void ngpus;
  const data_module_expert_parallelism = pyFloorDiv(dp, ep);
  const v = c.vocab_size;
  const h = c.hidden_size;
  const h_ffn = c.ffn_hidden_size;
  const nlayers = c.num_layers;
  const s = pyFloorDiv(c.seq_length, cp);
  const b = mbs;
  const m = c.global_batch_size / dp / mbs;
  const f_expert = c.expert_frequency;
  const k = c.moe_k;
  const n_experts = c.num_experts;
  const cap = ep !== 1 ? c.token_imbalance_hypothesis : 1.0;

  // Parameters on one GPU.
  const embedding_parameters = pyFloorDiv(v * h, tp) * (pp === 1 && c.untied_embeddings === 1 ? 2 : 1);
  let attention_layer_parameters: number;
  if (c.has_kv_heads === 1) {
    const d_head = pyFloorDiv(h, c.num_attention_heads);
    attention_layer_parameters =
      pyFloorDiv(h, tp) * (c.num_attention_heads * d_head + 2 * c.num_key_value_heads * d_head + h);
  } else {
    attention_layer_parameters = pyFloorDiv(h * h * 4, tp);
  }
  const mlp_layer_parameters = pyFloorDiv(h * h_ffn * c.gated_mlp_matrices, tp);
  const non_expert_parameters =
    embedding_parameters +
    pyFloorDiv((attention_layer_parameters + mlp_layer_parameters * (1.0 - f_expert)) * nlayers, pp);
  const expert_parameters = pyFloorDiv(pyFloorDiv(mlp_layer_parameters * f_expert * n_experts, ep) * nlayers, pp);

  // Model and optimizer states.
  const non_expert_psi = pocStateCoefficient(c, zero, dp);
  const expert_psi = pocStateCoefficient(c, zero, data_module_expert_parallelism);
  const model_and_optimizer_states_memory = non_expert_parameters * non_expert_psi + expert_parameters * expert_psi;

  // Activations of one micro-batch (the PoC counts one, whatever the schedule).
  const cross_entropy_activation = pyFloorDiv((2 + 4 + 4) * s * b * v, tp);
  const mlp_activation = (2 * s * b * (h + c.gated_mlp_matrices * h_ffn)) / tp;
  const moe_activation = pyFloorDiv(2 * (s * b * h + cap * k * s * b * h), tp) + cap * k * mlp_activation;
  const practice_moe_activation = pyFloorDiv(s * b * h, tp) + 4 * cap * k * s * b * h + cap * k * mlp_activation;
  const expert_layers_activations = nlayers * f_expert * moe_activation;
  const practice_expert_layers_activations = nlayers * f_expert * practice_moe_activation;
  const non_expert_layers_activations =
    nlayers * ((1.0 - f_expert) * mlp_activation + (2 * 7 * s * b * h) / tp) + (pp === 1 ? cross_entropy_activation : 0.0);
  const activations_memory = expert_layers_activations + non_expert_layers_activations;
  const practice_activations_memory = practice_expert_layers_activations + non_expert_layers_activations;

  const pipeline_parallelism_bubble_rate = (pp - 1) / m;

  out[0] = m;
  out[1] = pipeline_parallelism_bubble_rate;
  out[2] = (model_and_optimizer_states_memory + activations_memory) / GIB;
  out[3] = model_and_optimizer_states_memory / GIB;
  out[4] = activations_memory / GIB;
  out[5] = cross_entropy_activation / GIB;
  out[6] = practice_activations_memory / GIB;
  out[7] = expert_parameters / MIB;
  out[8] = non_expert_parameters / MIB;
  out[9] = expert_layers_activations / GIB;
  out[10] = practice_expert_layers_activations / GIB;
  out[11] = non_expert_layers_activations / GIB;
  out[12] = mlp_activation / MIB;
  out[13] = moe_activation / MIB;
}

// ---------------------------------------------------------------------------------------------------------------
// --formula full: the memory of the most loaded GPU, by component, for every parallelism dimension.
// docs/memory-model.md derives each term; the comments here say only why a term has its form.
// ---------------------------------------------------------------------------------------------------------------

/** Model, trainer and hardware constants of the full formula, in uniform order. Flags are 0/1. */
export const FULL_CONSTANTS = [
  'hidden_size',
  'num_layers',
  'num_attention_heads',
  'num_query_groups',
  'kv_channels',
  'ffn_hidden_size',
  'vocab_size',
  'vocab_divisor',
  'gated_mlp',
  'norm_params',
  'bias',
  'learned_positions',
  'untied_embeddings',
  'dropout',
  'mla',
  'q_lora_rank',
  'kv_lora_rank',
  'qk_head_dim',
  'qk_pos_emb_head_dim',
  'v_head_dim',
  'num_experts',
  'moe_k',
  'moe_ffn_hidden_size',
  'first_k_dense_layers',
  'moe_layer_freq',
  'num_shared_experts',
  'shared_expert_ffn_hidden_size',
  'capacity_factor',
  'moe_router_num_groups',
  'moe_router_group_topk',
  'mtp_num_layers',
  'param_bytes',
  'grad_bytes',
  'optimizer_state_bytes',
  'master_bytes',
  'flash_attention',
  'memory_gib',
  'headroom',
  'peak_flops',
  'hbm_bytes_s',
  'scaleup_bytes_s',
  'scaleout_bytes_s',
  'gpus_per_node',
  'scaleup_latency_s',
  'scaleout_latency_s',
  'collective_latency_s',
  'pcie_bytes_s',
  'gemm_efficiency_max',
  'gemm_efficiency_half_dim',
  'memory_passes',
  'cpu_optimizer_params_s',
  // Time model (docs/time-model.md): FP8 linear layers, flash attention, and how the stack overlaps communication.
  'fp8_peak_flops',
  'fp8_linear',
  'fp8_efficiency',
  'attention_efficiency',
  'attention_half_seq',
  'tp_comm_overlap',
  'overlap_grad_reduce',
  'overlap_param_gather',
  'overlap_p2p_comm',
  'moe_a2a_overlap',
  'moe_dedup_dispatch',
  'cp_comm',
  'overlap_cost',
] as const;

export type FullConstants = Record<(typeof FULL_CONSTANTS)[number], number>;

/** Grid columns the full formula reads, in argument order. Categorical columns hold indices (see space.ts). */
export const FULL_INPUTS = [
  'ngpus',
  'seq_length',
  'global_batch_size',
  'tp',
  'pp',
  'vpp',
  'schedule',
  'cp',
  'ep',
  'etp',
  'dp',
  'edp',
  'zero',
  'sp',
  'recompute',
  'offload',
  'mbs',
  'num_microbatches',
  'first_stage_layers',
  'last_stage_layers',
  'grad_reduce',
  'reshard',
  'dp_replicas',
] as const;

/** Columns the full formula computes, in order. */
export const FULL_OUTPUTS = [
  'params_total',
  'params_active',
  'params_gpu',
  'weights_gib',
  'grads_gib',
  'optimizer_gib',
  'activations_gib',
  'logits_gib',
  'total_gib',
  'offloaded_gib',
  'heaviest_stage',
  'inflight_microbatches',
  'fits',
  'step_time_s',
  'tokens_per_s',
  'tokens_per_s_per_gpu',
  'mfu',
  'hfu',
  'compute_s',
  'tp_comm_s',
  'pp_comm_s',
  'dp_comm_s',
  'ep_comm_s',
  'cp_comm_s',
  'bubble_s',
  'optimizer_s',
  'offload_s',
  'exposed_comm_s',
  'overlapped_comm_s',
  'tp_bytes',
  'pp_bytes',
  'dp_bytes',
  'ep_bytes',
  'cp_bytes',
] as const;

/** Codes of the categorical grid columns, as in SCHEDULES, RECOMPUTE_MODES and OFFLOAD_MODES. */
export const SCHEDULE_1F1B = 0;
export const SCHEDULE_INTERLEAVED = 1;
export const SCHEDULE_GPIPE = 2;
export const SCHEDULE_ZB_H1 = 3;
export const SCHEDULE_DUALPIPE = 4;
/** When ZeRO-2/3 reduce-scatter gradients: once per step (accumulated whole), or per micro-batch as produced. */
export const GRAD_REDUCE_STEP = 0;
export const GRAD_REDUCE_MICROBATCH = 1;
export const RECOMPUTE_NONE = 0;
export const RECOMPUTE_SELECTIVE = 1;
export const RECOMPUTE_FULL = 2;
/** torchtitan's per-op selective activation checkpointing (SelectiveAC): see op_recompute_share. */
export const RECOMPUTE_SELECTIVE_OP = 3;
/** Recompute codes 0..RECOMPUTE_SELECTIVE_OP: the slots of one SP setting in the per-class tables. */
export const RECOMPUTE_SLOTS = 4;
/**
 * How context parallelism moves attention's operands (trainer.cp_comm_type, in CP_COMM_TYPES order): Megatron's
 * ring of K/V chunks (p2p), Llama 3's all-gather of K and V, or DeepSpeed-Ulysses' all-to-all of Q, K, V and the
 * output (Megatron's a2a), which trades the sequence split for a head split around the attention core.
 */
export const CP_COMM_P2P = 0;
export const CP_COMM_ALL_GATHER = 1;
export const CP_COMM_A2A = 2;
export const OFFLOAD_NONE = 0;
export const OFFLOAD_OPTIMIZER = 1;
export const OFFLOAD_OPTIMIZER_CPU_STEP = 2;

/** Vocabulary padded as Megatron pads it: to a multiple of make_vocab_size_divisible_by × TP. */
export function padded_vocab(c: FullConstants, tp: number): number {
  const multiple = c.vocab_divisor * tp;
  return Math.ceil(c.vocab_size / multiple) * multiple;
}

/** Parameters of one attention block (projections and their biases), unsharded. */
export function attention_params(c: FullConstants): number {
  const h = c.hidden_size;
  const a = c.num_attention_heads;
  if (c.mla === 1) {
    const qk = c.qk_head_dim + c.qk_pos_emb_head_dim;
    // Queries: low-rank down/up projections with a norm between them, or a plain projection.
    const q = c.q_lora_rank > 0 ? h * c.q_lora_rank + c.q_lora_rank + c.q_lora_rank * a * qk : h * a * qk;
    // Keys/values: one shared down projection (plus the decoupled rope key), a norm, and the up projection.
    const kv =
      h * (c.kv_lora_rank + c.qk_pos_emb_head_dim) + c.kv_lora_rank + c.kv_lora_rank * a * (c.qk_head_dim + c.v_head_dim);
    const o = a * c.v_head_dim * h;
    return q + kv + o;
  }
  const d = c.kv_channels;
  const g = c.num_query_groups;
  const projections = h * d * (a + 2 * g) + a * d * h;
  return projections + c.bias * (a * d + 2 * g * d + h);
}

/**
 * Per-token widths across all heads (before TP) of one layer's queries, keys, values and attention output. With
 * MLA a key carries the query's width (its no-position part and the decoupled rope key) and a value v_head_dim.
 */
export function query_width(c: FullConstants): number {
  return c.mla === 1 ? c.num_attention_heads * (c.qk_head_dim + c.qk_pos_emb_head_dim) : c.num_attention_heads * c.kv_channels;
}

export function key_width(c: FullConstants): number {
  return c.mla === 1 ? query_width(c) : c.num_query_groups * c.kv_channels;
}

export function value_width(c: FullConstants): number {
  return c.mla === 1 ? c.num_attention_heads * c.v_head_dim : c.num_query_groups * c.kv_channels;
}

export function output_width(c: FullConstants): number {
  return c.mla === 1 ? c.num_attention_heads * c.v_head_dim : c.num_attention_heads * c.kv_channels;
}

/** Parameters of one MLP with FFN size `f`: three matrices when gated, two otherwise. */
export function mlp_params(c: FullConstants, f: number): number {
  const h = c.hidden_size;
  const matrices = c.gated_mlp === 1 ? 3 : 2;
  return matrices * h * f + c.bias * ((matrices - 1) * f + h);
}

/** MoE layers among the first `x` transformer layers: the first k are dense, then every 1/freq-th is MoE. */
export function moe_layers_before(c: FullConstants, x: number): number {
  if (c.num_experts === 0) return 0;
  return Math.floor(Math.max(0, x - c.first_k_dense_layers) * c.moe_layer_freq);
}

/**
 * Layers of virtual chunk `j` on pipeline rank `i` (Megatron's model chunk j·pp + i). The grid resolves how many
 * layers the first and the last rank hold (Megatron's num_layers_in_first/last_pipeline_stage, or what its
 * account_for_embedding/loss_in_pipeline_split flags produce; src/layout.ts); the middle ranks share the rest
 * evenly. Within a rank, a count that v does not divide puts its remainder on the later chunks, except on the last
 * rank, where it goes to the earlier ones, so that the very first and very last chunks are the short ones, as with
 * Megatron's account_for_embedding/loss flags (megatron/core/transformer/transformer_block.py,
 * get_num_layers_to_build).
 */
export function chunk_layers(c: FullConstants, r: FullRow, i: number, j: number): number {
  // One stage holds every layer in its first chunk (a calibration run may name vpp with pp = 1).
  if (r.pp === 1) return j === 0 ? c.num_layers : 0;
  const v = r.vpp;
  const total = i === 0 ? r.first_stage_layers : i === r.pp - 1 ? r.last_stage_layers : middle_stage_layers(c, r);
  const q = Math.floor(total / v);
  const extra = total - q * v;
  if (i === r.pp - 1) return q + (j < extra ? 1 : 0);
  return q + (j >= v - extra ? 1 : 0);
}

/** Layers of one middle rank, all its virtual chunks together. */
export function middle_stage_layers(c: FullConstants, r: FullRow): number {
  if (r.pp <= 2) return 0;
  return (c.num_layers - r.first_stage_layers - r.last_stage_layers) / (r.pp - 2);
}

/** Layers in chunks 0..j-1 of a rank holding `total` layers, remainder on the later (or, `early`, earlier) chunks. */
export function chunks_before(total: number, v: number, j: number, early: number): number {
  const q = Math.floor(total / v);
  const extra = total - q * v;
  return j * q + (early === 1 ? Math.min(j, extra) : Math.max(0, j - (v - extra)));
}

/**
 * Index of the first layer of virtual chunk `j` on rank `i`: every chunk of the rounds before j, then the chunks
 * of round j on the ranks before i (closed forms of the prefix sums of chunk_layers).
 */
export function chunk_first_layer(c: FullConstants, r: FullRow, i: number, j: number): number {
  if (r.pp === 1) return j === 0 ? 0 : c.num_layers;
  const v = r.vpp;
  const middle = middle_stage_layers(c, r);
  const rounds =
    chunks_before(r.first_stage_layers, v, j, 0) + (r.pp - 2) * chunks_before(middle, v, j, 0) + chunks_before(r.last_stage_layers, v, j, 1);
  if (i === 0) return rounds;
  return rounds + chunk_layers(c, r, 0, j) + (i - 1) * chunk_layers(c, r, 1, j);
}

/** Micro-batches whose activations stage `i` holds at its peak, as a multiple of one stage's worth. */
export function inflight_microbatches(pp: number, vpp: number, schedule: number, m: number, i: number): number {
  if (pp === 1) return 1;
  if (schedule === SCHEDULE_GPIPE) return m;
  // DualPipe holds PP + 1 micro-batches of one chunk (DeepSeek-V3 report, Table 2); a rank's micro-batch here
  // spans its two chunks, hence (PP + 1)/2, and it never has more than the m/2 of one direction.
  if (schedule === SCHEDULE_DUALPIPE) return Math.min((pp + 1) / 2, m / 2);
  if (schedule === SCHEDULE_INTERLEAVED) {
    // Warm-up of the interleaved schedule: 2(p-i-1) + (v-1)p + 1 model chunks, each 1/v of the stage.
    return Math.min((2 * (pp - i - 1) + (vpp - 1) * pp + 1) / vpp, m);
  }
  // 1F1B, and ZB-H1, which keeps 1F1B's peak (Qi et al. 2023, "Zero Bubble Pipeline Parallelism", section 3.1).
  return Math.min(pp - i, m);
}

/**
 * Activation bytes of one transformer layer for one micro-batch, after the recompute policy. This is
 * Korthikanti et al. 2022, Table 2, generalised: with GeLU, a 4h MLP, no GQA, dropout and no flash attention it is
 * exactly sbh(34 + 5as/h) unsharded, sbh(10 + 24/t + 5as/(ht)) with TP, sbh(34/t + 5as/(ht)) with TP+SP,
 * sbh(34/t) with TP+SP+selective, and 2sbh with full recompute.
 */
export function layer_activation_bytes(
  c: FullConstants,
  moe_layer: number,
  s: number,
  s_kv: number,
  b: number,
  tp: number,
  sp: number,
  etp: number,
  recompute: number,
): number {
  const h = c.hidden_size;
  const a = c.num_attention_heads;
  const sbh = s * b * h;
  // Tensors outside the TP regions: replicated on every TP rank unless sequence parallel shards them.
  const t_rep = sp === 1 ? tp : 1;
  if (recompute === RECOMPUTE_FULL) return (2 * sbh) / t_rep;

  const q_dim = query_width(c);
  const k_dim = key_width(c);
  const v_dim = value_width(c);
  const o_dim = output_width(c);

  if (recompute === RECOMPUTE_SELECTIVE_OP) {
    // The block's input, the attention kernel's output and log-sum-exp, with SP the outputs of the two
    // reduce-scatters, and the matmul outputs the policy saves: Q and V, the MLP's first, and when gated its last
    // (the row-parallel partial sum, s x h on every TP rank). A MoE layer's experts keep none (see
    // op_recompute_share).
    const block_input = (2 * sbh) / t_rep;
    const attention_output = (2 * s * b * o_dim + 4 * a * s * b) / tp;
    const scattered = sp === 1 && tp > 1 ? (4 * sbh) / tp : 0;
    const saved_matmuls =
      moe_layer === 1
        ? (2 * s * b * (q_dim + v_dim)) / tp
        : (2 * s * b * (q_dim + v_dim + c.ffn_hidden_size)) / tp + (c.gated_mlp === 1 ? 2 * sbh : 0);
    return block_input + attention_output + scattered + saved_matmuls;
  }

  // Attention block: norm input, QKV input, Q, K, V, the core, the output projection's input, the dropout mask.
  const attention_norm_input = (2 * sbh) / t_rep;
  const qkv_input = (2 * sbh) / t_rep;
  const mla_latents = c.mla === 1 ? (2 * s * b * (2 * c.q_lora_rank + 2 * c.kv_lora_rank + c.qk_pos_emb_head_dim)) / t_rep : 0;
  const qkv = (2 * s * b * (q_dim + k_dim + v_dim)) / tp;
  // The s x s scores: softmax output (2 bytes), and with dropout its mask (1) and output (2). Flash attention keeps
  // only the fp32 log-sum-exp per query and head; selective recompute keeps nothing of the core.
  const core_full = ((c.dropout === 1 ? 5 : 2) * a * s * s_kv * b) / tp;
  const core_flash = (4 * a * s * b) / tp;
  const attention_core = recompute === RECOMPUTE_SELECTIVE ? 0 : c.flash_attention === 1 ? core_flash : core_full;
  const projection_input = (2 * s * b * o_dim) / tp;
  const attention_dropout_mask = (c.dropout * sbh) / t_rep;
  const attention = attention_norm_input + qkv_input + mla_latents + qkv + attention_core + projection_input + attention_dropout_mask;

  // MLP block: norm input, first linear's input, the activation's input (two halves when gated), second linear's
  // input, dropout mask.
  const mlp_norm_input = (2 * sbh) / t_rep;
  const fc1_input = (2 * sbh) / t_rep;
  const mlp_dropout_mask = (c.dropout * sbh) / t_rep;
  const act_width = c.gated_mlp === 1 ? 2 : 1;
  let mlp: number;
  if (moe_layer === 1) {
    // Tokens this rank sends to experts; the all-to-all brings back as many on average, times the imbalance.
    const routed_tokens = (s * b * c.moe_k * c.capacity_factor) / t_rep;
    const router_probs = (4 * s * b * c.num_experts) / t_rep;
    const f_e = c.moe_ffn_hidden_size;
    // Expert-TP gathers the routed tokens of its etp ranks, each computing 1/etp of the expert's width; the expert
    // output kept for the combine is reduce-scattered back to this rank's own tokens first (Megatron's
    // token dispatcher reduce-scatters over expert-TP before the unpermute).
    const experts = routed_tokens * (etp * (2 * h + (2 * act_width * f_e) / etp + (2 * f_e) / etp) + 2 * h);
    const f_s = c.shared_expert_ffn_hidden_size * c.num_shared_experts;
    const shared_experts = (s * b * (2 * act_width * f_s + 2 * f_s)) / tp;
    mlp = mlp_norm_input + fc1_input + router_probs + experts + shared_experts + mlp_dropout_mask;
  } else {
    const f = c.ffn_hidden_size;
    mlp = mlp_norm_input + fc1_input + (s * b * (2 * act_width * f + 2 * f)) / tp + mlp_dropout_mask;
  }
  return attention + mlp;
}

/** Memory of one pipeline stage's GPU, bytes, by component. */
export interface StageMemory {
  params_gpu: number;
  weights: number;
  grads: number;
  optimizer: number;
  activations: number;
  logits: number;
  total: number;
  offloaded: number;
  inflight: number;
}

/** One row of the full formula's grid, as numbers (categorical columns as their codes). */
export interface FullRow {
  ngpus: number;
  seq_length: number;
  global_batch_size: number;
  tp: number;
  pp: number;
  vpp: number;
  schedule: number;
  cp: number;
  ep: number;
  etp: number;
  dp: number;
  edp: number;
  zero: number;
  sp: number;
  recompute: number;
  offload: number;
  mbs: number;
  num_microbatches: number;
  /** Layers of the first and of the last pipeline rank, all their virtual chunks together (src/layout.ts). */
  first_stage_layers: number;
  last_stage_layers: number;
  /** GRAD_REDUCE_STEP or GRAD_REDUCE_MICROBATCH (ZeRO-2/3). */
  grad_reduce: number;
  /** ZeRO-3: 1 if parameters are freed after the forward and gathered again for the backward. */
  reshard: number;
  /** Replicas of the ZeRO-sharded states (HSDP): ZeRO shards over dp / dp_replicas (and edp / dp_replicas) ranks. */
  dp_replicas: number;
}

/** What pipeline rank `i` holds: transformer layers (all, MoE, dense), MTP depths, embedding and output layer. */
export interface StageLayerCounts {
  layers: number;
  moe: number;
  dense: number;
  mtp: number;
  embedding: number;
  output: number;
}

/**
 * Layers of pipeline rank `i`, summed over its virtual chunks. With DualPipe the rank runs stage i in one direction
 * and stage pp-1-i in the other (deepseek-ai/DualPipe: "rank 0 holds stages 0 and pp-1"), so the first and the last
 * rank both hold the embedding and the output layer.
 */
export function stage_layer_counts(c: FullConstants, r: FullRow, i: number): StageLayerCounts {
  const dualpipe = r.schedule === SCHEDULE_DUALPIPE ? 1 : 0;
  let layers = 0;
  let moe = 0;
  for (let k = 0; k <= dualpipe; k++) {
    const rank = k === 0 ? i : r.pp - 1 - i;
    for (let j = 0; j < r.vpp; j++) {
      const first = chunk_first_layer(c, r, rank, j);
      const n = chunk_layers(c, r, rank, j);
      layers += n;
      moe += moe_layers_before(c, first + n) - moe_layers_before(c, first);
    }
  }
  const embedding = i === 0 || (dualpipe === 1 && i === r.pp - 1) ? 1 : 0;
  const output = i === r.pp - 1 || (dualpipe === 1 && i === 0) ? 1 : 0;
  return { layers, moe, dense: layers - moe, mtp: output * c.mtp_num_layers, embedding, output };
}

/**
 * Parameters of one layer on one GPU: a dense layer, the non-expert part of an MoE layer, and its local experts.
 * Matrices are sharded by TP (experts by EP and expert-TP); norms and the router are replicated.
 */
export interface LayerParams {
  dense_layer: number;
  moe_layer_dense: number;
  expert_layer: number;
}

export function layer_params_gpu(c: FullConstants, r: FullRow): LayerParams {
  const norm = c.norm_params * c.hidden_size;
  const attention_gpu = attention_params(c) / r.tp;
  return {
    dense_layer: attention_gpu + mlp_params(c, c.ffn_hidden_size) / r.tp + 2 * norm,
    moe_layer_dense:
      attention_gpu +
      2 * norm +
      c.hidden_size * c.num_experts +
      (c.num_shared_experts * mlp_params(c, c.shared_expert_ffn_hidden_size)) / r.tp,
    expert_layer: ((c.num_experts / r.ep) * mlp_params(c, c.moe_ffn_hidden_size)) / r.etp,
  };
}

/** Parameters on one GPU of pipeline stage `i`: [dense (sharded by TP), expert (sharded by EP and expert-TP)]. */
export function stage_params(c: FullConstants, r: FullRow, i: number): [dense: number, expert: number] {
  const h = c.hidden_size;
  const tp = r.tp;
  const pp = r.pp;
  const vocab = padded_vocab(c, tp);
  const has_moe = c.num_experts > 0 ? 1 : 0;
  const { moe, dense, mtp, embedding, output } = stage_layer_counts(c, r, i);
  const layer = layer_params_gpu(c, r);
  const norm = c.norm_params * h;
  const embedding_gpu = (vocab * h) / tp + c.learned_positions * r.seq_length * h;
  // The last stage holds the output layer: its own matrix when untied, a synchronised copy when tied and pp > 1.
  const output_gpu = c.untied_embeddings === 1 || pp > 1 ? (vocab * h) / tp : 0;
  const mtp_dense_gpu = (has_moe === 1 ? layer.moe_layer_dense : layer.dense_layer) + (2 * h * h) / tp + 2 * norm;
  const dense_params =
    dense * layer.dense_layer +
    moe * layer.moe_layer_dense +
    embedding * embedding_gpu +
    output * (norm + output_gpu) +
    mtp * mtp_dense_gpu;
  const expert_params = (moe + mtp * has_moe) * layer.expert_layer;
  return [dense_params, expert_params];
}

/** The largest layer on one GPU (dense or MoE), parameters: what ZeRO-3 gathers at once. */
export function largest_layer_params(c: FullConstants, r: FullRow): number {
  const layer = layer_params_gpu(c, r);
  return Math.max(layer.dense_layer, c.num_experts > 0 ? layer.moe_layer_dense + layer.expert_layer : 0);
}

/**
 * One layer's ZeRO-3 all-gather (or reduce-scatter, with the gradients' `bytes`) over its data-parallel group: the
 * collective FSDP runs per layer, whose first one in a pass has nothing to hide behind. Dense parts synchronise
 * over DP x CP, experts over expert-DP.
 */
export function zero3_layer_gather_s(c: FullConstants, r: FullRow, bytes: number): number {
  const layer = layer_params_gpu(c, r);
  // Within one replica's shard group (HSDP): dp·cp/dp_replicas and edp/dp_replicas ranks.
  const dense_group = (r.dp * r.cp) / r.dp_replicas;
  const expert_group = r.edp / r.dp_replicas;
  const dense_in_node = group_in_node(c, dense_group, r.tp);
  const dense_per_node = group_per_node(c, dense_group, r.tp);
  const dense_s = gather_s(c, layer.dense_layer * bytes, dense_group, dense_in_node, dense_per_node);
  const moe_s =
    gather_s(c, layer.moe_layer_dense * bytes, dense_group, dense_in_node, dense_per_node) +
    gather_s(c, layer.expert_layer * bytes, expert_group, group_in_node(c, expert_group, r.etp * r.ep), group_per_node(c, expert_group, r.etp * r.ep));
  return Math.max(dense_s, c.num_experts > 0 ? moe_s : 0);
}

/**
 * HSDP: the all-reduce across the dp_replicas replicas of a gradient shard just reduce-scattered inside its shard
 * group (`dense_bytes`, `expert_bytes`: one shard's). FSDP2 with a 2-D mesh (HYBRID_SHARD) and Megatron-Core's
 * distributed optimizer instances (param_and_grad_buffer.py, start_grad_sync) both follow the reduce-scatter with
 * it. The shard group is the innermost dp·cp/r DP ranks after TP (Megatron's order tp, cp, ep, dp, pp), so a
 * shard's replicas lie one group span apart; expert shards likewise over edp/r after etp·ep. 0 with one replica.
 */
export function replica_allreduce_s(c: FullConstants, r: FullRow, dense_bytes: number, expert_bytes: number): number {
  const n = r.dp_replicas;
  if (n <= 1) return 0;
  const dense_stride = r.tp * ((r.dp * r.cp) / n);
  const expert_stride = r.etp * r.ep * (r.edp / n);
  return (
    allreduce_s(c, dense_bytes, n, group_in_node(c, n, dense_stride), group_per_node(c, n, dense_stride)) +
    allreduce_s(c, expert_bytes, n, group_in_node(c, n, expert_stride), group_per_node(c, n, expert_stride))
  );
}

/** One layer's replica all-reduce after its ZeRO reduce-scatter (the largest layer, as zero3_layer_gather_s). */
export function zero3_layer_replica_reduce_s(c: FullConstants, r: FullRow): number {
  if (r.dp_replicas <= 1) return 0;
  const layer = layer_params_gpu(c, r);
  const dense_group = (r.dp * r.cp) / r.dp_replicas;
  const expert_group = r.edp / r.dp_replicas;
  const dense_s = replica_allreduce_s(c, r, (layer.dense_layer * c.grad_bytes) / dense_group, 0);
  const moe_s = replica_allreduce_s(
    c,
    r,
    (layer.moe_layer_dense * c.grad_bytes) / dense_group,
    (layer.expert_layer * c.grad_bytes) / expert_group,
  );
  return Math.max(dense_s, c.num_experts > 0 ? moe_s : 0);
}

/** Memory on a GPU of pipeline stage `i`. */
export function stage_memory(
  c: FullConstants,
  r: FullRow,
  i: number,
  base: StageMemoryBase = stage_memory_base(c, r, i),
  /** Where to write the result (the CPU engine's per-rank scratch, so rows allocate nothing); by default a new object. */
  out?: StageMemory,
): StageMemory {
  const { dense_params, expert_params, activations, logits, inflight } = base;

  // Model states. The distributed optimizer shards dense states over DP x CP and expert states over expert-DP,
  // each divided by the replicas of the sharded states (HSDP: FSDP's HYBRID_SHARD, torchtitan's
  // data_parallel_replicate_degree, Megatron's num_distributed_optimizer_instances shard within dp / dp_replicas).
  const dense_shards = (r.dp * r.cp) / r.dp_replicas;
  const expert_shards = r.edp / r.dp_replicas;
  const weight_shards_dense = r.zero >= 3 ? dense_shards : 1;
  const weight_shards_expert = r.zero >= 3 ? expert_shards : 1;
  const grad_shards_dense = r.zero >= 2 ? dense_shards : 1;
  const grad_shards_expert = r.zero >= 2 ? expert_shards : 1;
  const state_shards_dense = r.zero >= 1 ? dense_shards : 1;
  const state_shards_expert = r.zero >= 1 ? expert_shards : 1;
  // ZeRO-3 resharding after the forward gathers the current layer and prefetches the next one. Without it (Llama 3:
  // "we do not reshard after forward computation", Dubey et al. 2024, section 3.3.2) a micro-batch's gathered
  // parameters live until its backward, and with a pipeline some micro-batch is always between the two: the
  // stage's parameters stay whole beside their shards.
  const zero3_gathered =
    r.zero >= 3 ? (r.reshard === 1 ? 2 * base.largest_layer : dense_params + expert_params) * c.param_bytes : 0;
  const weights =
    (dense_params * c.param_bytes) / weight_shards_dense + (expert_params * c.param_bytes) / weight_shards_expert + zero3_gathered;
  // Gradients stay sharded only when reduce-scattered as each micro-batch's backward produces them (one layer's
  // whole gradients wait for their reduce-scatter); reduced once per step, they accumulate whole (FSDP's no_sync,
  // Megatron's grad buffer).
  const grads_sharded = r.zero >= 2 && r.grad_reduce === GRAD_REDUCE_MICROBATCH ? 1 : 0;
  const grads =
    grads_sharded === 1
      ? (dense_params * c.grad_bytes) / grad_shards_dense +
        (expert_params * c.grad_bytes) / grad_shards_expert +
        base.largest_layer * c.grad_bytes
      : (dense_params + expert_params) * c.grad_bytes;
  const state_bytes = 2 * c.optimizer_state_bytes + c.master_bytes;
  const optimizer_all = (dense_params * state_bytes) / state_shards_dense + (expert_params * state_bytes) / state_shards_expert;
  const optimizer = r.offload === OFFLOAD_NONE ? optimizer_all : 0;
  const offloaded = r.offload === OFFLOAD_NONE ? 0 : optimizer_all;

  // Peak over the two phases: forward/backward, and the optimizer step when the states come back from the host.
  const forward_backward = weights + grads + optimizer + activations + logits;
  const step = r.offload === OFFLOAD_OPTIMIZER ? weights + grads + optimizer_all : 0;
  const total = Math.max(forward_backward, step);
  if (!out) {
    return { params_gpu: dense_params + expert_params, weights, grads, optimizer, activations, logits, total, offloaded, inflight };
  }
  out.params_gpu = dense_params + expert_params;
  out.weights = weights;
  out.grads = grads;
  out.optimizer = optimizer;
  out.activations = activations;
  out.logits = logits;
  out.total = total;
  out.offloaded = offloaded;
  out.inflight = inflight;
  return out;
}

/**
 * What a stage's memory owes to its layout (parallel sizes, schedule, batch, sequence), SP and recompute, not to
 * ZeRO, gradient reduction or offload: rows that differ only in those share it (the CPU engine computes it once
 * for them, src/engine/cpu/memo.ts).
 */
export interface StageMemoryBase {
  dense_params: number;
  expert_params: number;
  largest_layer: number;
  activations: number;
  logits: number;
  inflight: number;
}

/** The part of stage_memory that rows differing only in ZeRO, gradient reduction or offload share. */
export function stage_memory_base(c: FullConstants, r: FullRow, i: number): StageMemoryBase {
  const h = c.hidden_size;
  const tp = r.tp;
  const pp = r.pp;
  const vocab = padded_vocab(c, tp);
  const has_moe = c.num_experts > 0 ? 1 : 0;
  const { moe, dense, mtp, embedding, output } = stage_layer_counts(c, r, i);
  const [dense_params, expert_params] = stage_params(c, r, i);

  // Activations: one micro-batch of this stage's layers, times the micro-batches in flight.
  const s = r.seq_length / r.cp;
  const b = r.mbs;
  const t_rep = r.sp === 1 ? tp : 1;
  const dense_layer_act = layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, r.recompute);
  const moe_layer_act = layer_activation_bytes(c, 1, s, r.seq_length, b, tp, r.sp, r.etp, r.recompute);
  const mtp_layer_act = has_moe === 1 ? moe_layer_act : dense_layer_act;
  // The first stage also keeps the token ids (int64) and the embedding's dropout mask of every micro-batch.
  const embedding_act = embedding * ((8 * s * b + c.dropout * s * b * h) / t_rep);
  const microbatch_act = dense * dense_layer_act + moe * moe_layer_act + mtp * mtp_layer_act + embedding_act;
  const inflight = inflight_microbatches(pp, r.vpp, r.schedule, r.num_microbatches, i);
  // Full and per-op recompute rebuild one layer at a time in the backward pass: one layer's full activations on top.
  const rebuilt_dense = layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  const rebuilt_moe = layer_activation_bytes(c, 1, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  const rebuilds = r.recompute === RECOMPUTE_FULL || r.recompute === RECOMPUTE_SELECTIVE_OP ? 1 : 0;
  const rebuilt = rebuilds * Math.max(dense > 0 ? rebuilt_dense : 0, moe > 0 ? rebuilt_moe : 0);
  const activations = inflight * microbatch_act + rebuilt;
  // The last stage's loss: the output layer's fp32 input and the fp32 logits, vocab-parallel over TP.
  const logits = output * (1 + c.mtp_num_layers) * ((4 * s * b * h) / t_rep + (4 * s * b * vocab) / tp);
  return { dense_params, expert_params, largest_layer: largest_layer_params(c, r), activations, logits, inflight };
}

/** Parameters of the whole model, and those active per token (routed experts counted k of E). */
export function model_params(c: FullConstants, tp: number, seq_length: number, active_only: number): number {
  const h = c.hidden_size;
  const vocab = padded_vocab(c, tp);
  const norm = c.norm_params * h;
  const moe_layers = moe_layers_before(c, c.num_layers);
  const dense_layers = c.num_layers - moe_layers;
  const experts_counted = active_only === 1 ? c.moe_k : c.num_experts;
  const dense_layer = attention_params(c) + mlp_params(c, c.ffn_hidden_size) + 2 * norm;
  const moe_layer =
    attention_params(c) +
    2 * norm +
    h * c.num_experts +
    c.num_shared_experts * mlp_params(c, c.shared_expert_ffn_hidden_size) +
    experts_counted * mlp_params(c, c.moe_ffn_hidden_size);
  const embeddings = vocab * h * (1 + c.untied_embeddings) + c.learned_positions * seq_length * h;
  return dense_layers * dense_layer + moe_layers * moe_layer + embeddings + norm;
}

// ---------------------------------------------------------------------------------------------------------------
// Step time. docs/time-model.md gives the sources of each term and the calibration of the efficiency constants.
// ---------------------------------------------------------------------------------------------------------------

/** Whether a group of `size` ranks spaced `stride` apart (Megatron's order: tp, cp, ep, dp, pp) fits in a node. */
export function group_in_node(c: FullConstants, size: number, stride: number): number {
  return size * stride <= c.gpus_per_node ? 1 : 0;
}

/**
 * Bandwidth one rank of a group sees. Across nodes, a group with `per_node` ranks in each node runs that many rings
 * at once, one per NIC (NCCL's channels), so the node's NICs share its traffic: `per_node` times one NIC, at most
 * what NVLink carries inside the node.
 */
function link_bytes_s(c: FullConstants, in_node: number, per_node: number): number {
  return in_node === 1 ? c.scaleup_bytes_s : Math.min(c.scaleup_bytes_s, per_node * c.scaleout_bytes_s);
}

/** Ranks of a group of `size` ranks spaced `stride` apart that share one node (1 for a strided group). */
export function group_per_node(c: FullConstants, size: number, stride: number): number {
  return Math.max(1, Math.min(size, Math.floor(c.gpus_per_node / stride)));
}

function link_latency_s(c: FullConstants, in_node: number): number {
  return in_node === 1 ? c.scaleup_latency_s : c.scaleout_latency_s;
}

/** Ring all-reduce of `bytes` over `n` ranks: 2(n-1)/n of the buffer crosses each link, 2(n-1) steps. */
export function allreduce_s(c: FullConstants, bytes: number, n: number, in_node: number, per_node: number): number {
  // No collective is launched for an empty buffer (a dense stage's expert gradients).
  if (n <= 1 || bytes === 0) return 0;
  return ((2 * (n - 1)) / n) * (bytes / link_bytes_s(c, in_node, per_node)) + c.collective_latency_s + 2 * (n - 1) * link_latency_s(c, in_node);
}

/** Reduce-scatter, all-gather or all-to-all of `bytes` per rank over `n` ranks: (n-1)/n crosses each link. */
export function gather_s(c: FullConstants, bytes: number, n: number, in_node: number, per_node: number): number {
  if (n <= 1 || bytes === 0) return 0;
  return ((n - 1) / n) * (bytes / link_bytes_s(c, in_node, per_node)) + c.collective_latency_s + (n - 1) * link_latency_s(c, in_node);
}

/**
 * Fraction of the dtype's dense peak a GEMM of shape m x n x k reaches. Small dimensions starve the tensor cores
 * (tile quantisation, too few waves, short K loops), so the efficiency saturates in the harmonic size
 * 1/(1/m + 1/n + 1/k), which the smallest dimension dominates: a TP-split projection, an expert's FFN width or a
 * CP chunk's tokens. The curve's two constants are fitted per hardware family (docs/time-model.md, section 6).
 * `rate` is the math rate relative to the bf16 peak (2 for FP8): the fixed per-tile and per-wave costs that make
 * small GEMMs slow take the same time at any rate, so at twice the rate the half-saturation size doubles.
 */
export function gemm_efficiency(c: FullConstants, m: number, n: number, k: number, rate: number): number {
  const dim = 1 / (1 / m + 1 / n + 1 / k);
  return (c.gemm_efficiency_max * dim) / (dim + rate * c.gemm_efficiency_half_dim);
}

/** Bytes of an activation or weight operand of a non-FP8 GEMM: mixed precision runs GEMMs in bf16/fp16. */
const GEMM_OPERAND_BYTES = 2;

/**
 * Forward time of one GEMM (m x k by k x n) on one GPU: a roofline, the larger of its FLOPs at the shape's
 * efficiency and its operands' HBM traffic. FP8 (`fp8` 1) runs at the FP8 peak times `fp8_efficiency` (Transformer
 * Engine's FP8 GEMMs reach a smaller fraction of their peak than bf16 ones) with 1-byte inputs.
 */
export function gemm_s(c: FullConstants, m: number, n: number, k: number, fp8: number): number {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const peak = fp8 === 1 ? c.fp8_peak_flops * c.fp8_efficiency : c.peak_flops;
  const input_bytes = fp8 === 1 ? 1 : GEMM_OPERAND_BYTES;
  const rate = fp8 === 1 ? c.fp8_peak_flops / c.peak_flops : 1;
  const compute_s = (2 * m * n * k) / (peak * gemm_efficiency(c, m, n, k, rate));
  const memory_s = (input_bytes * (m * k + k * n) + GEMM_OPERAND_BYTES * m * n) / c.hbm_bytes_s;
  return Math.max(compute_s, memory_s);
}

/**
 * Transformer Engine's FP8 casts around one linear layer, per micro-batch: the input in the forward and the output
 * gradient in the backward are read in bf16 and written in FP8 twice (row- and column-wise for the two backward
 * GEMMs): 4 bytes per element, bound by HBM.
 */
export function fp8_cast_s(c: FullConstants, m: number, n: number, k: number): number {
  return c.fp8_linear === 1 ? (4 * (m * k + m * n)) / c.hbm_bytes_s : 0;
}

/** Forward and backward of one linear layer: 3 GEMMs of the same FLOPs (forward, data and weight gradients). */
function linear_s(c: FullConstants, m: number, n: number, k: number): number {
  return 3 * gemm_s(c, m, n, k, c.fp8_linear) + fp8_cast_s(c, m, n, k);
}

/**
 * Forward and backward time of the linear layers of one transformer layer for `m` tokens on one GPU. TP splits the
 * heads and the FFN width; SP gathers the sequence first, so every GEMM sees all m tokens. A routed expert sees the
 * tokens the all-to-all brings it: m·k·cf/t of this rank's tokens, times the ep ranks sending, over E/ep local
 * experts, times etp with expert-TP (which splits the expert's width instead).
 */
export function layer_linear_s(c: FullConstants, moe_layer: number, m: number, tp: number, ep: number, etp: number): number {
  const h = c.hidden_size;
  const act_width = c.gated_mlp === 1 ? 2 : 1;
  const o_dim = output_width(c);
  // Every attention projection but the output one reads the hidden state (MLA's low-rank pairs counted as one).
  const qkv_width = (attention_params(c) - o_dim * h) / h;
  const attention = linear_s(c, m, qkv_width / tp, h) + linear_s(c, m, h, o_dim / tp);
  // A dense model has no MoE layer to time (its expert counts are 0).
  if (moe_layer === 1 && c.num_experts > 0) {
    const f_e = c.moe_ffn_hidden_size;
    const local_experts = c.num_experts / ep;
    const expert_tokens = ((m / tp) * c.moe_k * c.capacity_factor * ep * etp) / c.num_experts;
    const routed = local_experts * (linear_s(c, expert_tokens, (act_width * f_e) / etp, h) + linear_s(c, expert_tokens, h, f_e / etp));
    const f_s = c.num_shared_experts * c.shared_expert_ffn_hidden_size;
    const shared_experts = linear_s(c, m, (act_width * f_s) / tp, h) + linear_s(c, m, h, f_s / tp);
    // The router's small GEMM stays in bf16.
    const router = 3 * gemm_s(c, m / tp, c.num_experts, h, 0);
    return attention + routed + shared_experts + router;
  }
  const f = c.ffn_hidden_size;
  return attention + linear_s(c, m, (act_width * f) / tp, h) + linear_s(c, m, h, f / tp);
}

/**
 * What one TP collective of `collective_s` (an all-gather or reduce-scatter, half an all-reduce) leaves exposed
 * next to a GEMM of `window_s` under tp_comm_overlap: split into tp chunks pipelined with the GEMM's chunks, it
 * hides what the GEMM outlasts, except the first chunk, which has nothing to overlap with yet.
 */
function tp_pair_exposed_s(collective_s: number, window_s: number, tp: number): number {
  return Math.min(collective_s, Math.max(0, collective_s - window_s) + collective_s / tp);
}

/**
 * Exposed TP time of one layer with tp_comm_overlap (Megatron/Transformer Engine userbuffers, PyTorch async TP):
 * each linear layer pairs with one collective in every forward (its forward GEMM is the window) and one in the
 * backward (its two gradient GEMMs). The output projection is the smallest window and leaves the most exposed.
 */
export function layer_tp_exposed_s(
  c: FullConstants,
  moe_layer: number,
  m: number,
  tp: number,
  ep: number,
  etp: number,
  collective_s: number,
  forward_passes: number,
): number {
  const h = c.hidden_size;
  const act_width = c.gated_mlp === 1 ? 2 : 1;
  const o_dim = output_width(c);
  const qkv_width = (attention_params(c) - o_dim * h) / h;
  const qkv_s = gemm_s(c, m, qkv_width / tp, h, c.fp8_linear);
  const proj_s = gemm_s(c, m, h, o_dim / tp, c.fp8_linear);
  let fc1_s: number;
  let fc2_s: number;
  if (moe_layer === 1 && c.num_experts > 0) {
    // Only the shared experts run as a TP-split MLP; their GEMMs are the windows (layer_tp_collectives).
    const shared_ffn = c.num_shared_experts * c.shared_expert_ffn_hidden_size;
    fc1_s = shared_ffn > 0 ? gemm_s(c, m, (act_width * shared_ffn) / tp, h, c.fp8_linear) : 0;
    fc2_s = shared_ffn > 0 ? gemm_s(c, m, h, shared_ffn / tp, c.fp8_linear) : 0;
  } else {
    fc1_s = gemm_s(c, m, (act_width * c.ffn_hidden_size) / tp, h, c.fp8_linear);
    fc2_s = gemm_s(c, m, h, c.ffn_hidden_size / tp, c.fp8_linear);
  }
  const mlp = layer_tp_collectives(c, moe_layer) - 1;
  return (
    forward_passes *
      (tp_pair_exposed_s(collective_s, qkv_s, tp) +
        tp_pair_exposed_s(collective_s, proj_s, tp) +
        mlp * (tp_pair_exposed_s(collective_s, fc1_s, tp) + tp_pair_exposed_s(collective_s, fc2_s, tp))) +
    tp_pair_exposed_s(collective_s, 2 * qkv_s, tp) +
    tp_pair_exposed_s(collective_s, 2 * proj_s, tp) +
    mlp * (tp_pair_exposed_s(collective_s, 2 * fc1_s, tp) + tp_pair_exposed_s(collective_s, 2 * fc2_s, tp))
  );
}

/**
 * TP collectives (all-reduces, or with SP all-gather and reduce-scatter pairs) of a layer's forward: the
 * attention's, and the MLP's where a TP-split MLP runs. A MoE layer's routed experts take their tokens through
 * the dispatcher instead (the EP all-to-all and the expert-TP gathers, priced as EP traffic): Megatron-Core's MoE
 * layer hands the sequence-parallel shard straight to its token dispatcher; only shared experts run as a TP-split
 * MLP (Megatron-Core's SharedExpertMLP). torchtitan's reduce-scatter of the MoE output is not counted (docs, 3.3).
 */
export function layer_tp_collectives(c: FullConstants, moe_layer: number): number {
  if (moe_layer === 1 && c.num_experts > 0) return c.num_shared_experts > 0 ? 2 : 1;
  return 2;
}

/**
 * Forward time of the attention core for one micro-batch of `b` sequences whose `s` local queries attend to
 * `s_kv` keys, heads split over TP. With flash attention the kernel skips the masked half (causal) and runs in bf16
 * at `attention_efficiency`, saturating in the block length (FlashAttention-2 and -3 reach their peak fraction only
 * for long blocks); without it, QKᵀ and the product with V are batched GEMMs per head over the whole masked square.
 */
export function attention_core_fwd_s(c: FullConstants, s: number, s_kv: number, b: number, tp: number): number {
  const a = c.num_attention_heads;
  const qk_head = c.mla === 1 ? c.qk_head_dim + c.qk_pos_emb_head_dim : c.kv_channels;
  const v_head = c.mla === 1 ? c.v_head_dim : c.kv_channels;
  const heads = (a * b) / tp;
  if (c.flash_attention === 1) {
    const flops = heads * 2 * s * (s_kv / 2) * (qk_head + v_head);
    const block = Math.min(s, s_kv);
    const efficiency = (c.attention_efficiency * block) / (block + c.attention_half_seq);
    return flops / (c.peak_flops * efficiency);
  }
  return heads * (gemm_s(c, s, s_kv, qk_head, 0) + gemm_s(c, s, v_head, s_kv, 0));
}

/**
 * Backward of the attention core relative to its forward: flash attention recomputes the scores, 2.5x the forward
 * FLOPs (the FlashAttention-2 benchmark's count); plain GEMMs take 2x.
 */
export function attention_backward_ratio(c: FullConstants): number {
  return c.flash_attention === 1 ? 2.5 : 2;
}

/**
 * All-to-all of `bytes` per rank over `n` ranks spaced `stride` apart, hierarchically: the ranks inside this node
 * exchange over NVLink while the rest cross the NICs at the same time, so the slower tier sets the time (as
 * DeepEP and Megatron's hierarchical dispatchers do). Each tier adds its latency once: the sends run concurrently.
 */
export function alltoall_s(c: FullConstants, bytes: number, n: number, stride: number): number {
  if (n <= 1 || bytes === 0) return 0;
  const local = group_per_node(c, n, stride);
  return tiered_s(c, ((local - 1) / n) * bytes, ((n - local) / n) * bytes, local, n) + c.collective_latency_s;
}

/** The two tiers of an exchange run concurrently: NVLink inside the node, the NICs across nodes. */
function tiered_s(c: FullConstants, in_node_bytes: number, cross_bytes: number, local: number, n: number): number {
  const in_node_s = in_node_bytes / c.scaleup_bytes_s + (local > 1 ? c.scaleup_latency_s : 0);
  const cross_s = cross_bytes / c.scaleout_bytes_s + (n > local ? c.scaleout_latency_s : 0);
  return Math.max(in_node_s, cross_s);
}

/**
 * Nodes that a token's routed experts sit on beyond its own, on average, for an expert-parallel group of `n`
 * ranks spaced `stride` apart, with the experts spread evenly over the group's nodes. Group-limited routing
 * bounds the nodes a token can reach to router_group_topk groups' worth (DeepSeek-V3 section 3.2.2: at most 4 of
 * its 8 nodes); within them its k experts land on k uniformly drawn nodes, of which E[distinct] = N·(1 − (1 −
 * 1/N)^k); its own node is among them with probability 1/nodes.
 */
export function ep_remote_nodes(c: FullConstants, n: number, stride: number): number {
  const local = group_per_node(c, n, stride);
  const nodes = Math.ceil(n / local);
  if (nodes <= 1) return 0;
  const reachable = Math.min(nodes, c.moe_router_group_topk * Math.max(1, nodes / c.moe_router_num_groups));
  const distinct = reachable <= 1 ? 1 : reachable * (1 - Math.pow(1 - 1 / reachable, c.moe_k));
  return (distinct * (nodes - 1)) / nodes;
}

/**
 * Bytes of an expert dispatch or combine that cross NVLink and the NICs, for `bytes` per rank holding one copy of
 * each token per routed expert. Megatron's all-to-all dispatcher sends every copy to its expert's rank; a
 * deduplicating dispatcher (moe_dedup_dispatch: DeepEP, Megatron-Core's flex dispatcher; DeepSeek-V3's kernels,
 * section 3.2.2) sends a token once to each node that holds any of its experts, over the NIC to the same-index
 * GPU, which forwards it over NVLink to the experts' GPUs: every copy but those already on the receiving GPU
 * crosses NVLink.
 */
export function ep_dispatch_bytes(c: FullConstants, bytes: number, n: number, stride: number): [in_node: number, cross: number] {
  if (n <= 1) return [0, 0];
  const local = group_per_node(c, n, stride);
  if (c.moe_dedup_dispatch === 1 && n > local) {
    return [((local - 1) / local) * bytes, (ep_remote_nodes(c, n, stride) / c.moe_k) * bytes];
  }
  return [((local - 1) / n) * bytes, ((n - local) / n) * bytes];
}

/** One expert dispatch or combine over the expert-parallel group, its bytes split by ep_dispatch_bytes. */
export function ep_alltoall_s(c: FullConstants, split: [in_node: number, cross: number], n: number, stride: number): number {
  if (n <= 1 || split[0] + split[1] === 0) return 0;
  return tiered_s(c, split[0], split[1], group_per_node(c, n, stride), n) + c.collective_latency_s;
}

/**
 * What overlapped communication costs the critical path: the part its window does not hide, plus `overlap_cost` of
 * the hidden part (concurrent NCCL kernels take SMs and HBM bandwidth from the compute they hide behind).
 */
export function paid_s(c: FullConstants, total_s: number, exposed_s: number): number {
  return exposed_s + c.overlap_cost * (total_s - exposed_s);
}

/**
 * Megatron-Core's gradient reduction under the interleaved schedule with overlap_grad_reduce: each model chunk's
 * reduction starts when that chunk's last micro-batch has finished its backward (grad_sync_func, launched in
 * backward_step_helper_postprocess, megatron/core/pipeline_parallel/schedules.py), not bucket by bucket inside it.
 * Chunks finish in reverse order: after chunk k's last backward the rank still runs the last group of `pp`
 * micro-batches of chunks k-1..0 (k·pp chunk backwards). The reductions share one network, in that order; what
 * the last one outlasts the backward by is exposed (chunk 0's, at least: nothing is left to hide it).
 */
export function interleaved_grad_sync_exposed_s(reduce_s: number, vpp: number, pp: number, chunk_backward_s: number): number {
  const chunk_reduce_s = reduce_s / vpp;
  // Time relative to the end of the rank's backward; chunk vpp-1 finishes first.
  let done_s = -(vpp - 1) * pp * chunk_backward_s + chunk_reduce_s;
  for (let k = vpp - 2; k >= 0; k--) {
    done_s = Math.max(done_s, -k * pp * chunk_backward_s) + chunk_reduce_s;
  }
  return Math.max(0, done_s);
}

/**
 * The parameter all-gather of the next step under the interleaved schedule with overlap_param_gather: chunks 0 and
 * 1 start gathering at the step's start, chunk k+1 when chunk k's first micro-batch starts its forward
 * (param_sync_func, schedules.py), and each chunk's forward waits bucket by bucket for its own gather. The warm-up
 * runs `pp` micro-batches of each chunk before the next chunk's first: chunk k first computes at k·pp chunk
 * forwards. What the latest gather outlasts its chunk's first forward by holds the step back.
 */
export function interleaved_param_sync_exposed_s(gather_s: number, vpp: number, pp: number, chunk_forward_s: number): number {
  const chunk_gather_s = gather_s / vpp;
  let done_s = 0;
  let late_s = 0;
  for (let k = 0; k < vpp; k++) {
    const start_s = k < 2 ? 0 : (k - 1) * pp * chunk_forward_s;
    done_s = Math.max(done_s, start_s) + chunk_gather_s;
    late_s = Math.max(late_s, done_s - (k * pp + 1) * chunk_forward_s);
  }
  return late_s;
}

/** One point-to-point send of `bytes` on a tier. */
function send_s(c: FullConstants, bytes: number, in_node: number): number {
  return bytes / link_bytes_s(c, in_node, 1) + link_latency_s(c, in_node);
}

/** Forward FLOPs per token of one layer. `capacity` scales the routed experts' work (1 for model FLOPs). */
export function layer_flops_per_token(c: FullConstants, moe_layer: number, s_kv: number, capacity: number): number {
  // Scores QK^T and their product with V over all s_kv keys (not halved for causal masks, as MFU conventions do).
  const attention = 2 * attention_params(c) + attention_core_flops_per_token(c, s_kv);
  if (moe_layer === 1) {
    const routed = c.moe_k * capacity * mlp_params(c, c.moe_ffn_hidden_size);
    const shared_experts = c.num_shared_experts * mlp_params(c, c.shared_expert_ffn_hidden_size);
    return attention + 2 * (routed + shared_experts + c.hidden_size * c.num_experts);
  }
  return attention + 2 * mlp_params(c, c.ffn_hidden_size);
}

/** Forward FLOPs per token of the attention core alone (what selective recompute repeats). */
export function attention_core_flops_per_token(c: FullConstants, s_kv: number): number {
  return 2 * s_kv * query_width(c) + 2 * s_kv * output_width(c);
}

/**
 * Share of a layer's linear forward that torchtitan's per-op selective activation checkpointing recomputes
 * (SelectiveAC; torchtitan/models/llama3/infra/parallelize.py, _save_list and _apply_ac_to_transformer_block, from
 * 2024 to mid-2025): the policy saves the outputs of aten.mm, of the flash-attention kernel and of reduce-scatter,
 * but recomputes every second aten.mm of a block in forward order (wq, wk, wv, wo, w1, [w3,] w2: wk, wo and the
 * MLP's second matmul) and all element-wise work. torchao's FP8 linears (tensorwise, Float8Tensor) count like bf16
 * ones: they dispatch aten.mm on Float8Tensor, which the checkpointing's dispatch mode sees before the subclass turns
 * it into aten._scaled_mm (dispatch modes take precedence over tensor subclasses). MoE experts run grouped GEMMs,
 * not on the list: all of theirs are recomputed. A matmul's FLOPs are h times its output width (its input width for
 * wo and w2).
 */
export function op_recompute_share(c: FullConstants, moe_layer: number): number {
  if (moe_layer === 1 && c.num_experts > 0) return 1;
  const q_dim = query_width(c);
  const k_dim = key_width(c);
  const v_dim = value_width(c);
  const o_dim = output_width(c);
  const f = c.ffn_hidden_size;
  const act_width = c.gated_mlp === 1 ? 2 : 1;
  return (k_dim + o_dim + f) / (q_dim + k_dim + v_dim + o_dim + act_width * f + f);
}

/** Forward FLOPs per token of one layer's linear layers: the layer's FLOPs less its attention core's. */
export function layer_linear_flops_per_token(c: FullConstants, moe_layer: number, s_kv: number): number {
  return layer_flops_per_token(c, moe_layer, s_kv, 1) - attention_core_flops_per_token(c, s_kv);
}

/** Model FLOPs (fwd + bwd = 3 x fwd) per token of the whole model; `hardware` adds what recompute repeats. */
export function model_flops_per_token(c: FullConstants, tp: number, seq_length: number, recompute: number, hardware: number): number {
  const h = c.hidden_size;
  const moe_layers = moe_layers_before(c, c.num_layers);
  const dense_layers = c.num_layers - moe_layers;
  const mtp_layer = layer_flops_per_token(c, c.num_experts > 0 ? 1 : 0, seq_length, 1) + 2 * 2 * h * h;
  const layers =
    dense_layers * layer_flops_per_token(c, 0, seq_length, 1) +
    moe_layers * layer_flops_per_token(c, 1, seq_length, 1) +
    c.mtp_num_layers * mtp_layer;
  const logits = (1 + c.mtp_num_layers) * 2 * h * padded_vocab(c, tp);
  const mtp_moe = c.num_experts > 0 ? 1 : 0;
  const repeated =
    recompute === RECOMPUTE_FULL
      ? layers
      : recompute === RECOMPUTE_SELECTIVE
        ? (c.num_layers + c.mtp_num_layers) * attention_core_flops_per_token(c, seq_length)
        : recompute === RECOMPUTE_SELECTIVE_OP
          ? dense_layers * op_recompute_share(c, 0) * layer_linear_flops_per_token(c, 0, seq_length) +
            moe_layers * op_recompute_share(c, 1) * layer_linear_flops_per_token(c, 1, seq_length) +
            c.mtp_num_layers * op_recompute_share(c, mtp_moe) * layer_linear_flops_per_token(c, mtp_moe, seq_length)
          : 0;
  return 3 * (layers + logits) + hardware * repeated;
}

/** Time of one micro-batch (forward and backward) on a GPU of stage `i`, by component, and its traffic. */
export interface StageTime {
  compute_s: number;
  /** Communication on the critical path of one micro-batch. */
  tp_s: number;
  ep_s: number;
  cp_exposed_s: number;
  pp_s: number;
  /** ZeRO-2's gradient reduce-scatter and ZeRO-3's gathers, which run every micro-batch. */
  dp_mb_s: number;
  /** Communication of one micro-batch hidden behind its compute (TP, EP, CP, PP, per-micro-batch DP). */
  hidden_s: number;
  tp_bytes: number;
  ep_bytes: number;
  cp_bytes: number;
  pp_bytes: number;
  dp_mb_bytes: number;
  /** Per step, not per micro-batch: data-parallel traffic at the step's end, and the optimizer and offload. */
  dp_exposed_s: number;
  dp_overlapped_s: number;
  dp_bytes: number;
  optimizer_s: number;
  offload_s: number;
}

/**
 * Whether the schedule keeps a pipeline send in flight while other work computes: the interleaved schedule (the
 * next model chunk) and DualPipe (the other direction's chunk, DeepSeek-V3 report section 3.2.1); 1F1B, GPipe and
 * ZB-H1 as Megatron runs them wait for their sends.
 */
export function schedule_overlaps_p2p(schedule: number): number {
  return schedule === SCHEDULE_INTERLEAVED || schedule === SCHEDULE_DUALPIPE ? 1 : 0;
}

/**
 * What a stage's micro-batch costs apart from data-parallel traffic: compute, TP, EP, CP and PP communication, and
 * the stage's parameters. It depends on the layout, SP and recompute, not on ZeRO, gradient reduction or offload,
 * so rows that differ only in those share it (the CPU engine computes it once for them, src/engine/cpu/memo.ts).
 */
export interface StageMicrobatch {
  compute_s: number;
  tp_total_s: number;
  tp_s: number;
  tp_bytes: number;
  ep_total_s: number;
  ep_s: number;
  ep_bytes: number;
  cp_total_s: number;
  cp_exposed_s: number;
  cp_bytes: number;
  pp_total_s: number;
  pp_s: number;
  pp_bytes: number;
  dense_params: number;
  expert_params: number;
}

/** The part of stage_time that rows differing only in ZeRO, gradient reduction or offload share. */
export function stage_microbatch(c: FullConstants, r: FullRow, i: number): StageMicrobatch {
  const h = c.hidden_size;
  const tp = r.tp;
  const pp = r.pp;
  const has_moe = c.num_experts > 0 ? 1 : 0;
  const { layers, moe, dense, mtp, output } = stage_layer_counts(c, r, i);
  const all_layers = layers + mtp;
  const moe_like = moe + mtp * has_moe;

  // Compute, GEMM by GEMM: each sees this rank's b·s/c tokens (CP splits the sequence; SP gathers it over TP).
  const s = r.seq_length / r.cp;
  const b = r.mbs;
  const tokens = b * s;
  const mtp_projection = 3 * gemm_s(c, tokens, h / tp, 2 * h, c.fp8_linear);
  const linear_dense = layer_linear_s(c, 0, tokens, tp, r.ep, r.etp);
  const linear_moe = layer_linear_s(c, 1, tokens, tp, r.ep, r.etp);
  const linear_mtp = has_moe === 1 ? linear_moe : linear_dense;
  const linear = dense * linear_dense + moe * linear_moe + mtp * (linear_mtp + mtp_projection);
  // Transformer Engine keeps the output layer in bf16.
  const logits = output * (1 + c.mtp_num_layers) * 3 * gemm_s(c, tokens, padded_vocab(c, tp) / tp, h, 0);
  // Ulysses' all-to-all gives each rank the whole sequence for a/(t·c) heads: the same FLOPs as the ring's
  // sequence chunks, in blocks of the whole sequence.
  const core_fwd =
    c.cp_comm === CP_COMM_A2A ? attention_core_fwd_s(c, r.seq_length, r.seq_length, b, tp * r.cp) : attention_core_fwd_s(c, s, r.seq_length, b, tp);
  const core = all_layers * core_fwd * (1 + attention_backward_ratio(c));
  // Element-wise work (norms, activations, softmax, dropout) is bound by memory bandwidth, not by FLOPs.
  const act_dense = layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  const act_moe = layer_activation_bytes(c, 1, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  const memory_bytes = c.memory_passes * (dense * act_dense + moe_like * act_moe + (mtp - mtp * has_moe) * act_dense);
  const elementwise = memory_bytes / c.hbm_bytes_s;
  // Recompute repeats forwards: full the layers' (a third of their linear and element-wise time, the whole core
  // forward); selective the attention core, with its score tensors' element-wise work when they are not fused;
  // per-op the linear layers' share that op_recompute_share gives and the element-wise third, not the core.
  const core_bytes = act_dense - layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_SELECTIVE);
  const repeated =
    r.recompute === RECOMPUTE_FULL
      ? linear / 3 + all_layers * core_fwd + elementwise / 3
      : r.recompute === RECOMPUTE_SELECTIVE
        ? all_layers * (core_fwd + (c.memory_passes * core_bytes) / (3 * c.hbm_bytes_s))
        : r.recompute === RECOMPUTE_SELECTIVE_OP
          ? (dense * op_recompute_share(c, 0) * linear_dense +
              moe * op_recompute_share(c, 1) * linear_moe +
              mtp * op_recompute_share(c, has_moe) * linear_mtp) /
              3 +
            elementwise / 3
          : 0;
  const compute_s = linear + logits + core + elementwise + repeated;

  // TP: two collectives in the forward and two in the backward of a dense layer, one each for a MoE layer without
  // shared experts (layer_tp_collectives; all-reduce, or reduce-scatter plus all-gather with SP: the same bytes);
  // full recompute repeats the forward's, per-op recompute half of them (the
  // policy saves the reduce-scatters' outputs, not the all-gathers' that recomputed matmuls read). With
  // tp_comm_overlap each half-collective hides behind the GEMM next to it (layer_tp_exposed_s).
  const tp_in_node = group_in_node(c, tp, 1);
  const tp_message = 2 * b * s * h;
  const forward_passes = r.recompute === RECOMPUTE_FULL ? 2 : r.recompute === RECOMPUTE_SELECTIVE_OP ? 1.5 : 1;
  const mtp_moe = has_moe === 1 ? 1 : 0;
  const tp_count =
    (dense * layer_tp_collectives(c, 0) + moe * layer_tp_collectives(c, 1) + mtp * layer_tp_collectives(c, mtp_moe)) *
    (1 + forward_passes);
  const tp_total_s = tp_count * allreduce_s(c, tp_message, tp, tp_in_node, group_per_node(c, tp, 1));
  // Each all-reduce is a reduce-scatter plus an all-gather: with the overlap, each half pairs with one GEMM.
  const tp_collective_s = allreduce_s(c, tp_message, tp, tp_in_node, group_per_node(c, tp, 1)) / 2;
  const tp_overlapped_s =
    dense * layer_tp_exposed_s(c, 0, tokens, tp, r.ep, r.etp, tp_collective_s, forward_passes) +
    moe * layer_tp_exposed_s(c, 1, tokens, tp, r.ep, r.etp, tp_collective_s, forward_passes) +
    mtp * layer_tp_exposed_s(c, mtp_moe, tokens, tp, r.ep, r.etp, tp_collective_s, forward_passes);
  // Megatron accepts --tp-comm-overlap only with sequence parallelism (its reduce-scatter/all-gather pairs), and
  // the overlap needs the TP group inside one NVLink domain: Transformer Engine's userbuffers implement TP "only
  // single node" (userbuffers.h) over CUDA IPC, as PyTorch's async TP needs symmetric memory. A TP group across
  // nodes runs its collectives through NCCL, exposed.
  const tp_overlap = c.tp_comm_overlap === 1 && tp > 1 && r.sp === 1 && tp_in_node === 1;
  const tp_s = paid_s(c, tp_total_s, tp_overlap ? Math.min(tp_total_s, tp_overlapped_s) : tp_total_s);
  const tp_bytes = tp > 1 ? tp_count * ((2 * (tp - 1)) / tp) * tp_message : 0;

  // EP: dispatch and combine, forward and backward, of the routed tokens' hidden states, hierarchically over
  // NVLink and the NICs. Expert-TP all-gathers the routed tokens before the experts and reduce-scatters them
  // after, forward and backward. moe_a2a_overlap hides them behind another micro-batch's compute (DualPipe,
  // Megatron's overlap_moe_expert_parallel_comm) as far as it lasts.
  const t_rep = r.sp === 1 ? tp : 1;
  const ep_message = (2 * b * s * c.moe_k * c.capacity_factor * h) / t_rep;
  const etp_in_node = group_in_node(c, r.etp, 1);
  const ep_split = ep_dispatch_bytes(c, ep_message, r.ep, r.etp);
  const ep_total_s =
    4 * moe_like * ep_alltoall_s(c, ep_split, r.ep, r.etp) +
    4 * moe_like * gather_s(c, r.etp * ep_message, r.etp, etp_in_node, group_per_node(c, r.etp, 1));
  const ep_s = paid_s(c, ep_total_s, c.moe_a2a_overlap === 1 ? Math.max(0, ep_total_s - compute_s) : ep_total_s);
  const ep_bytes = 4 * moe_like * (ep_split[0] + ep_split[1]) + (r.etp > 1 ? 4 * moe_like * (r.etp - 1) * ep_message : 0);

  // CP: this rank's K and V (kv_chunk bytes) reach the other c - 1 ranks in the forward (again with full
  // recompute) and their gradients come back in the backward. Ring exchange (Megatron's p2p) sends one chunk per
  // step while the attention of the previous chunk computes, 1/c of the core each: what a step's send outlasts is
  // exposed, and it grows as chunks shrink. All-gather (Llama 3) gathers K and V before the core, exposed.
  // All-to-all (DeepSpeed-Ulysses, Jacobs et al. 2023 section 3; Megatron's a2a) trades this rank's s tokens of
  // Q, K and V for the whole sequence of a/(t·c) heads before the core, and the output back after it; the
  // backward runs the same two in reverse. Both stacks wait for them: exposed.
  const a = c.num_attention_heads;
  const kv_dim = key_width(c) + value_width(c);
  const q_dim = query_width(c);
  const o_dim = output_width(c);
  const cp_in_node = group_in_node(c, r.cp, tp);
  const cp_per_node = group_per_node(c, r.cp, tp);
  const kv_chunk = (2 * b * s * kv_dim) / tp;
  const cp_qkv_message = (2 * b * s * (q_dim + kv_dim)) / tp;
  const cp_out_message = (2 * b * s * o_dim) / tp;
  const forward_rings = r.recompute === RECOMPUTE_FULL ? 2 : 1;
  let cp_total_s = 0;
  let cp_exposed_s = 0;
  if (r.cp > 1 && c.cp_comm === CP_COMM_A2A) {
    cp_total_s = all_layers * (forward_rings + 1) * (alltoall_s(c, cp_qkv_message, r.cp, tp) + alltoall_s(c, cp_out_message, r.cp, tp));
    cp_exposed_s = cp_total_s;
  } else if (r.cp > 1 && c.cp_comm === CP_COMM_ALL_GATHER) {
    cp_total_s =
      all_layers * (forward_rings * gather_s(c, r.cp * kv_chunk, r.cp, cp_in_node, cp_per_node) + gather_s(c, r.cp * kv_chunk, r.cp, cp_in_node, cp_per_node));
    cp_exposed_s = cp_total_s;
  } else if (r.cp > 1) {
    const step_fwd_s = core_fwd / r.cp;
    const step_bwd_s = (attention_backward_ratio(c) * core_fwd) / r.cp;
    const steps = all_layers * (r.cp - 1);
    cp_total_s = steps * (forward_rings * send_s(c, kv_chunk, cp_in_node) + send_s(c, 2 * kv_chunk, cp_in_node));
    cp_exposed_s = paid_s(
      c,
      cp_total_s,
      steps *
        (forward_rings * Math.max(0, send_s(c, kv_chunk, cp_in_node) - step_fwd_s) +
          Math.max(0, send_s(c, 2 * kv_chunk, cp_in_node) - step_bwd_s)),
    );
  }
  const cp_bytes =
    r.cp <= 1
      ? 0
      : c.cp_comm === CP_COMM_A2A
        ? all_layers * (forward_rings + 1) * ((r.cp - 1) / r.cp) * (cp_qkv_message + cp_out_message)
        : all_layers * (r.cp - 1) * (c.cp_comm === CP_COMM_ALL_GATHER ? forward_rings + 1 : forward_rings + 2) * kv_chunk;

  // PP: each TP rank sends its 1/t of the boundary activations forward and receives their gradients back, once
  // per virtual stage; a schedule that overlaps sends keeps them behind the next chunk's compute.
  const pp_in_node = group_in_node(c, pp, tp * r.cp * r.dp);
  const pp_message = (2 * b * s * h) / tp;
  const pp_total_s = pp > 1 ? 2 * r.vpp * send_s(c, pp_message, pp_in_node) : 0;
  const pp_s = paid_s(
    c,
    pp_total_s,
    c.overlap_p2p_comm === 1 && schedule_overlaps_p2p(r.schedule) === 1 ? Math.max(0, pp_total_s - compute_s) : pp_total_s,
  );
  const pp_bytes = pp > 1 ? 2 * r.vpp * pp_message : 0;
  const [dense_params, expert_params] = stage_params(c, r, i);
  return {
    compute_s,
    tp_total_s,
    tp_s,
    tp_bytes,
    ep_total_s,
    ep_s,
    ep_bytes,
    cp_total_s,
    cp_exposed_s,
    cp_bytes,
    pp_total_s,
    pp_s,
    pp_bytes,
    dense_params,
    expert_params,
  };
}

export function stage_time(c: FullConstants, r: FullRow, i: number, mb: StageMicrobatch = stage_microbatch(c, r, i)): StageTime {
  const tp = r.tp;
  const pp = r.pp;
  const { compute_s, tp_total_s, tp_s, tp_bytes, ep_total_s, ep_s, ep_bytes, cp_total_s, cp_exposed_s, cp_bytes } = mb;
  const { pp_total_s, pp_s, pp_bytes, dense_params, expert_params } = mb;

  // DP: gradient reduction (all-reduce with ZeRO-0, else reduce-scatter) and the parameter all-gather (ZeRO >= 1)
  // over DP x CP for dense parameters and expert-DP for experts. The forward is a third of a micro-batch's
  // compute, the backward two thirds: the windows a gather and a reduction hide behind. With dp_replicas r > 1
  // (HSDP) ZeRO's collectives run inside a shard group of dp·cp/r (edp/r) ranks and each reduce-scatter is
  // followed by the all-reduce of the reduced shard across the r replicas (replica_allreduce_s), which counts as
  // part of the gradient reduction wherever it runs; the parameter gathers stay inside the shard group. ZeRO-0
  // (r = 1 only) all-reduces over the whole group.
  const replicas = r.dp_replicas;
  const dense_group = (r.dp * r.cp) / replicas;
  const expert_group = r.edp / replicas;
  const dense_in_node = group_in_node(c, dense_group, tp);
  const expert_in_node = group_in_node(c, expert_group, r.etp * r.ep);
  const dense_per_node = group_per_node(c, dense_group, tp);
  const expert_per_node = group_per_node(c, expert_group, r.etp * r.ep);
  const dense_shard_grad_bytes = (dense_params * c.grad_bytes) / dense_group;
  const expert_shard_grad_bytes = (expert_params * c.grad_bytes) / expert_group;
  const grad_reduce_s =
    r.zero === 0
      ? allreduce_s(c, dense_params * c.grad_bytes, dense_group, dense_in_node, dense_per_node) +
        allreduce_s(c, expert_params * c.grad_bytes, expert_group, expert_in_node, expert_per_node)
      : gather_s(c, dense_params * c.grad_bytes, dense_group, dense_in_node, dense_per_node) +
        gather_s(c, expert_params * c.grad_bytes, expert_group, expert_in_node, expert_per_node) +
        replica_allreduce_s(c, r, dense_shard_grad_bytes, expert_shard_grad_bytes);
  const param_gather_s =
    gather_s(c, dense_params * c.param_bytes, dense_group, dense_in_node, dense_per_node) +
    gather_s(c, expert_params * c.param_bytes, expert_group, expert_in_node, expert_per_node);
  const grad_reduce_bytes =
    r.zero === 0
      ? (dense_group > 1 ? ((2 * (dense_group - 1)) / dense_group) * dense_params * c.grad_bytes : 0) +
        (expert_group > 1 ? ((2 * (expert_group - 1)) / expert_group) * expert_params * c.grad_bytes : 0)
      : (dense_group > 1 ? ((dense_group - 1) / dense_group) * dense_params * c.grad_bytes : 0) +
        (expert_group > 1 ? ((expert_group - 1) / expert_group) * expert_params * c.grad_bytes : 0) +
        (replicas > 1 ? ((2 * (replicas - 1)) / replicas) * (dense_shard_grad_bytes + expert_shard_grad_bytes) : 0);
  const param_gather_bytes =
    (dense_group > 1 ? ((dense_group - 1) / dense_group) * dense_params * c.param_bytes : 0) +
    (expert_group > 1 ? ((expert_group - 1) / expert_group) * expert_params * c.param_bytes : 0);
  // FSDP and DeepSpeed ZeRO-3 gather the parameters layer by layer, prefetching the next layer while this one
  // computes, and reduce-scatter each layer's gradients as the backward produces them, on their own streams (Zhao
  // et al. 2023, "PyTorch FSDP", VLDB, sections 3.3-3.4: backward and forward prefetching, overlapping
  // communication and computation). A gather holds the compute back only for what outlasts its window (the forward
  // for the forward gathers, the backward for the backward ones), plus the first layer's, which nothing precedes.
  // A reduce-scatter holds nothing back: it is bound only by the network, which carries a micro-batch's gathers
  // and reduce-scatters while the micro-batch computes (the next micro-batch's forward follows the backward).
  // ZeRO-3 gathers in every micro-batch's forward, and again in its backward when it reshards after the forward.
  // Without resharding and with a pipeline the parameters stay gathered from one micro-batch to the next (some
  // micro-batch is always between its forward and its backward): they are gathered once per step, in the first
  // forward (torchtitan: "For PP, do not reshard after forward to avoid per-microbatch all-gathers",
  // parallelize_llama.py; Llama 3, Dubey et al. 2024, section 3.3.2). Without a pipeline FSDP2 frees them after
  // each backward (reshard_after_backward) and gathers them again in the next forward. ZeRO-2/3 reduce-scatter
  // the gradients in every backward when they keep only their shard (grad_reduce = microbatch), else once, like
  // ZeRO-0/1 (Megatron's DDP and distributed optimizer), in the last micro-batch's backward. ZeRO-1/2 gather the
  // updated parameters once, in the next step's first forward.
  const forward_window_s = c.overlap_param_gather === 1 ? compute_s / 3 : 0;
  const backward_window_s = c.overlap_grad_reduce === 1 ? (2 * compute_s) / 3 : 0;
  const grads_per_microbatch = r.zero >= 2 && r.grad_reduce === GRAD_REDUCE_MICROBATCH ? 1 : 0;
  const gathers_per_microbatch = r.zero >= 3 && (r.reshard === 1 || pp === 1) ? 1 : 0;
  const layer_gather_s = zero3_layer_gather_s(c, r, c.param_bytes);
  const mb_forward_s = gathers_per_microbatch * param_gather_s;
  const mb_backward_s = r.zero >= 3 ? r.reshard * param_gather_s : 0;
  const mb_reduce_s = grads_per_microbatch * grad_reduce_s;
  const gather_hold_s =
    c.overlap_param_gather === 1
      ? Math.min(mb_forward_s, Math.max(0, mb_forward_s - forward_window_s) + gathers_per_microbatch * layer_gather_s) +
        Math.max(0, mb_backward_s - (2 * compute_s) / 3)
      : mb_forward_s + mb_backward_s;
  const dp_mb_total_s = mb_forward_s + mb_backward_s + mb_reduce_s;
  const dp_mb_s = paid_s(
    c,
    dp_mb_total_s,
    c.overlap_grad_reduce === 1 ? Math.max(gather_hold_s, dp_mb_total_s - compute_s) : gather_hold_s + mb_reduce_s,
  );
  const dp_mb_bytes = (r.zero >= 3 ? (gathers_per_microbatch + r.reshard) * param_gather_bytes : 0) + grads_per_microbatch * grad_reduce_bytes;
  const step_gather = r.zero === 1 || r.zero === 2 || (r.zero >= 3 && gathers_per_microbatch === 0) ? 1 : 0;
  const step_forward_s = step_gather * param_gather_s;
  const step_backward_s = (1 - grads_per_microbatch) * grad_reduce_s;
  // With the overlap, the last micro-batch's last reduce-scatter has no compute left to hide behind: one layer's,
  // before the step (without it, every reduce-scatter is already exposed in its micro-batch).
  const last_reduce_s =
    grads_per_microbatch * c.overlap_grad_reduce * (zero3_layer_gather_s(c, r, c.grad_bytes) + zero3_layer_replica_reduce_s(c, r));
  // Under the interleaved schedule the step's traffic is synced chunk by chunk, as the schedule reaches each
  // chunk's last backward and first forward (Megatron's grad_sync_func and param_sync_func; PyTorch pipelining
  // reduces an FSDP or DDP stage in its last backward, stage.py backward_maybe_with_nosync); elsewhere it overlaps
  // one micro-batch's backward (gradients) and forward (parameters), bucket by bucket.
  const chunked = r.schedule === SCHEDULE_INTERLEAVED && r.vpp > 1 ? 1 : 0;
  const forward_exposed_s =
    chunked === 1 && c.overlap_param_gather === 1
      ? interleaved_param_sync_exposed_s(step_forward_s, r.vpp, pp, compute_s / 3 / r.vpp)
      : Math.max(0, step_forward_s - forward_window_s);
  const backward_exposed_s =
    chunked === 1 && c.overlap_grad_reduce === 1
      ? interleaved_grad_sync_exposed_s(step_backward_s, r.vpp, pp, (2 * compute_s) / 3 / r.vpp)
      : Math.max(0, step_backward_s - backward_window_s);
  const dp_exposed_s = paid_s(c, step_forward_s + step_backward_s + last_reduce_s, forward_exposed_s + backward_exposed_s + last_reduce_s);
  const dp_overlapped_s = step_forward_s + step_backward_s + last_reduce_s - dp_exposed_s;
  const dp_bytes = step_gather * param_gather_bytes + (1 - grads_per_microbatch) * grad_reduce_bytes;

  // Optimizer step: memory-bound on the GPU (read gradients, read and write master weights and both moments,
  // write parameters) over this rank's shard; on the host with optimizer_cpu_step.
  const state_shards_dense = r.zero >= 1 ? dense_group : 1;
  const state_shards_expert = r.zero >= 1 ? expert_group : 1;
  const local_params = dense_params / state_shards_dense + expert_params / state_shards_expert;
  const state_bytes = 2 * c.optimizer_state_bytes + c.master_bytes;
  const step_bytes = local_params * (c.grad_bytes + 2 * state_bytes + c.param_bytes);
  const optimizer_s = r.offload === OFFLOAD_OPTIMIZER_CPU_STEP ? local_params / c.cpu_optimizer_params_s : step_bytes / c.hbm_bytes_s;
  // Offload: states to the GPU and back for the step, or gradients to the host and parameters back.
  const offload_s =
    r.offload === OFFLOAD_OPTIMIZER
      ? (2 * local_params * state_bytes) / c.pcie_bytes_s
      : r.offload === OFFLOAD_OPTIMIZER_CPU_STEP
        ? (local_params * (c.grad_bytes + c.param_bytes)) / c.pcie_bytes_s
        : 0;
  const hidden_s = tp_total_s - tp_s + (ep_total_s - ep_s) + (cp_total_s - cp_exposed_s) + (pp_total_s - pp_s) + (dp_mb_total_s - dp_mb_s);
  return {
    compute_s,
    tp_s,
    ep_s,
    cp_exposed_s,
    pp_s,
    dp_mb_s,
    hidden_s,
    tp_bytes,
    ep_bytes,
    cp_bytes,
    pp_bytes,
    dp_mb_bytes,
    dp_exposed_s,
    dp_overlapped_s,
    dp_bytes,
    optimizer_s,
    offload_s,
  };
}

/** Micro-batch time of a stage: everything it waits for on the critical path. */
export function microbatch_s(t: StageTime): number {
  return t.compute_s + t.tp_s + t.ep_s + t.cp_exposed_s + t.pp_s + t.dp_mb_s;
}

/**
 * Ranks whose micro-batch times differ by less than this fraction count as equally slow, and the earlier one sets
 * the step's split into terms (the step time moves by less than this fraction). Without it, the first and the last
 * rank of a ZeRO-2/3 row bound by per-micro-batch traffic, whose parameters differ only by the final norm, would
 * split the step at either rank depending on f32 or f64 rounding (docs/precision.md).
 */
export const PACE_TIE_RTOL = 1e-4;

/**
 * The last pipeline rank a row needs to evaluate: with DualPipe rank pp-1-i holds what rank i holds.
 */
export function last_distinct_rank(r: FullRow): number {
  return r.schedule === SCHEDULE_DUALPIPE ? r.pp / 2 - 1 : r.pp - 1;
}

/**
 * Whether middle rank `i` can be skipped: it holds as many MoE and dense layers as the middle rank evaluated
 * before it, so it has the same parameters and per-micro-batch time and no more micro-batches in flight (every
 * schedule's in-flight count is non-increasing in the rank).
 */
export function same_as_previous_middle(c: FullConstants, r: FullRow, i: number): boolean {
  if (i <= 1 || i >= last_distinct_rank(r)) return false;
  const k = stage_layer_counts(c, r, i);
  const before = stage_layer_counts(c, r, i - 1);
  return k.moe === before.moe && k.dense === before.dense;
}

/**
 * Pipeline bubble of the step, from the slowest rank's micro-batch time t (forward and backward of all its chunks).
 * 1F1B and GPipe: (p-1)·t; interleaved: (p-1)·t/v (Narayanan et al. 2021, section 2.2). ZB-H1: (p-1)(F+B-2W) and
 * DualPipe: (p/2-1)(F&B+B-3W), DeepSeek-V3 technical report (2024), Table 2, with F the forward of a chunk, B its
 * whole backward, W the weight-gradient half of it, F&B a forward and a backward overlapped. With F = W = t/3 and
 * B = 2t/3 (the backward's two GEMMs per forward GEMM, Qi et al. 2023 section 2) and F&B = F + B (overlap hides
 * communication, not compute), ZB-H1's bubble is (p-1)·t/3 and DualPipe's, whose rank runs two chunks of t/2 per
 * micro-batch, (p/2-1)·t/3.
 */
export function pipeline_bubble_s(pp: number, vpp: number, schedule: number, microbatch: number): number {
  if (pp === 1) return 0;
  if (schedule === SCHEDULE_ZB_H1) return ((pp - 1) * microbatch) / 3;
  if (schedule === SCHEDULE_DUALPIPE) return ((pp / 2 - 1) * microbatch) / 3;
  if (schedule === SCHEDULE_INTERLEAVED) return ((pp - 1) / vpp) * microbatch;
  return (pp - 1) * microbatch;
}

/**
 * Micro-batch passes a rank makes per step: m, or m/2 with DualPipe, whose rank runs each micro-batch of a
 * direction through one of its two chunks (a pass here covers both).
 */
export function microbatch_passes(schedule: number, m: number): number {
  return schedule === SCHEDULE_DUALPIPE ? m / 2 : m;
}

/**
 * Where full_estimate gets each stage's memory and time and the model's totals: computed afresh (DIRECT_TERMS), or
 * from terms that rows of one layout share (the CPU engine's, src/engine/cpu/memo.ts). Either gives the same numbers.
 */
export interface TermSource {
  memory(c: FullConstants, r: FullRow, i: number): StageMemory;
  time(c: FullConstants, r: FullRow, i: number): StageTime;
  /** step_pace of the row, from this source's stage times. */
  pace(c: FullConstants, r: FullRow): StepPace;
  same_as_previous_middle(c: FullConstants, r: FullRow, i: number): boolean;
  model_params(c: FullConstants, tp: number, seq_length: number, active_only: number): number;
  model_flops_per_token(c: FullConstants, tp: number, seq_length: number, recompute: number, hardware: number): number;
}

export const DIRECT_TERMS: TermSource = {
  memory: (c, r, i) => stage_memory(c, r, i),
  time: (c, r, i) => stage_time(c, r, i),
  pace: (c, r) => step_pace(c, r, DIRECT_TERMS),
  same_as_previous_middle,
  model_params,
  model_flops_per_token,
};

/**
 * The full formula for one grid row: memory of the heaviest pipeline rank and the step time, with every rank that
 * can differ evaluated (the first, with the embedding and the most micro-batches in flight; the last, with the
 * output layer and loss; middle ranks whose MoE/dense mix differs). The step runs at the pace of the slowest rank.
 */
export function full_estimate(c: FullConstants, r: FullRow, out: Float64Array, terms: TermSource = DIRECT_TERMS): void {
  let heaviest = terms.memory(c, r, 0);
  let heaviest_stage = 0;
  const last = last_distinct_rank(r);
  for (let i = 1; i <= last; i++) {
    if (terms.same_as_previous_middle(c, r, i)) continue;
    const memory = terms.memory(c, r, i);
    if (memory.total > heaviest.total) {
      heaviest = memory;
      heaviest_stage = i;
    }
  }
  const { slowest, tail } = terms.pace(c, r);
  const total_gib = heaviest.total / GIB;
  out[0] = terms.model_params(c, r.tp, r.seq_length, 0);
  out[1] = terms.model_params(c, r.tp, r.seq_length, 1);
  out[2] = heaviest.params_gpu;
  out[3] = heaviest.weights / GIB;
  out[4] = heaviest.grads / GIB;
  out[5] = heaviest.optimizer / GIB;
  out[6] = heaviest.activations / GIB;
  out[7] = heaviest.logits / GIB;
  out[8] = total_gib;
  out[9] = heaviest.offloaded / GIB;
  out[10] = heaviest_stage;
  out[11] = heaviest.inflight;
  out[12] = total_gib * (1 + c.headroom) <= c.memory_gib ? 1 : 0;

  const m = microbatch_passes(r.schedule, r.num_microbatches);
  const microbatch = microbatch_s(slowest);
  const bubble_s = pipeline_bubble_s(r.pp, r.vpp, r.schedule, microbatch);
  const step_time_s = m * microbatch + bubble_s + tail.dp_exposed_s + tail.optimizer_s + tail.offload_s;
  const tokens = r.global_batch_size * r.seq_length;
  const cluster_peak = r.ngpus * c.peak_flops;
  out[13] = step_time_s;
  out[14] = tokens / step_time_s;
  out[15] = tokens / step_time_s / r.ngpus;
  out[16] = (terms.model_flops_per_token(c, r.tp, r.seq_length, r.recompute, 0) * tokens) / (step_time_s * cluster_peak);
  out[17] = (terms.model_flops_per_token(c, r.tp, r.seq_length, r.recompute, 1) * tokens) / (step_time_s * cluster_peak);
  out[18] = m * slowest.compute_s;
  out[19] = m * slowest.tp_s;
  out[20] = m * slowest.pp_s;
  out[21] = m * slowest.dp_mb_s + tail.dp_exposed_s;
  out[22] = m * slowest.ep_s;
  out[23] = m * slowest.cp_exposed_s;
  out[24] = bubble_s;
  out[25] = tail.optimizer_s;
  out[26] = tail.offload_s;
  out[27] = m * (slowest.tp_s + slowest.pp_s + slowest.ep_s + slowest.cp_exposed_s + slowest.dp_mb_s) + tail.dp_exposed_s;
  out[28] = m * slowest.hidden_s + tail.dp_overlapped_s;
  out[29] = m * slowest.tp_bytes;
  out[30] = m * slowest.pp_bytes;
  out[31] = m * slowest.dp_mb_bytes + tail.dp_bytes;
  out[32] = m * slowest.ep_bytes;
  out[33] = m * slowest.cp_bytes;
}

/** The slowest rank's micro-batch time, which paces the pipeline, and the latest-finishing rank's step tail. */
export interface StepPace {
  slowest: StageTime;
  tail: StageTail;
}

/**
 * The pipeline moves at the pace of its slowest rank; each rank then finishes its own gradient sync (overlapped
 * with the backward of its last micro-batch), optimizer step and offload. It reads neither the global batch nor
 * the micro-batch count (full_estimate multiplies by them), so rows that differ only in those share it (the CPU
 * engine computes it once for them, src/engine/cpu/memo.ts).
 */
export function step_pace(c: FullConstants, r: FullRow, terms: TermSource = DIRECT_TERMS): StepPace {
  let slowest = terms.time(c, r, 0);
  let tail = stage_tail(slowest);
  const last = last_distinct_rank(r);
  for (let i = 1; i <= last; i++) {
    if (terms.same_as_previous_middle(c, r, i)) continue;
    const time = terms.time(c, r, i);
    if (microbatch_s(time) > microbatch_s(slowest) * (1 + PACE_TIE_RTOL)) slowest = time;
    tail = max_tail(tail, stage_tail(time));
  }
  return { slowest, tail };
}

/** What a stage does once per step after its last micro-batch. */
export interface StageTail {
  dp_exposed_s: number;
  dp_overlapped_s: number;
  dp_bytes: number;
  optimizer_s: number;
  offload_s: number;
}

/** The step-end part of a stage's time: gradient sync and parameter gather at the step's edges, optimizer, offload. */
export function stage_tail(t: StageTime): StageTail {
  return {
    dp_exposed_s: t.dp_exposed_s,
    dp_overlapped_s: t.dp_overlapped_s,
    dp_bytes: t.dp_bytes,
    optimizer_s: t.optimizer_s,
    offload_s: t.offload_s,
  };
}

/** The later-finishing of two stages' tails. */
export function max_tail(a: StageTail, b: StageTail): StageTail {
  return a.dp_exposed_s + a.optimizer_s + a.offload_s >= b.dp_exposed_s + b.optimizer_s + b.offload_s ? a : b;
}
