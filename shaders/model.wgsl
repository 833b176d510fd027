// The cost model on the GPU, in f32. src/model.ts holds the same model on the CPU in f64, with the same names and
// the same order of terms: change one, change the other. `parasweep check` compares them column by column.
//
// WGSL has no f64: every quantity here is an f32 with a relative rounding error of 2^-24 (~6e-8) per operation.
// Integer floor divisions of products above 2^24 are computed on rounded products; docs/precision.md derives the
// resulting bound per column.

// Python's floor division, as the PoC uses it, for the non-negative operands of the model. WGSL's f32 division
// may be off by 2.5 ulp, so 8192 / 8 could floor to 1023: the quotient is corrected against the product, which is
// exact while q * b stays below 2^24.
fn py_floor_div(a: f32, b: f32) -> f32 {
  var q = floor(a / b);
  if ((q + 1.0) * b <= a) { q = q + 1.0; }
  if (q * b > a) { q = q - 1.0; }
  return q;
}

const GIB: f32 = 1073741824.0;
const MIB: f32 = 1048576.0;

// ---------------------------------------------------------------------------------------------------------------
// --formula poc: the LLM Parallelism Explorer PoC's estimate.
// ---------------------------------------------------------------------------------------------------------------

// Same fields, same order as POC_CONSTANTS in src/model.ts.
struct PocConstants {
  vocab_size: f32,
  hidden_size: f32,
  ffn_hidden_size: f32,
  num_layers: f32,
  seq_length: f32,
  global_batch_size: f32,
  has_kv_heads: f32,
  num_attention_heads: f32,
  num_key_value_heads: f32,
  gated_mlp_matrices: f32,
  untied_embeddings: f32,
  expert_frequency: f32,
  moe_k: f32,
  num_experts: f32,
  token_imbalance_hypothesis: f32,
  psi_no_op_fixed: f32,
  psi_no_op_sharded: f32,
  psi_os_fixed: f32,
  psi_os_sharded: f32,
  psi_osg_fixed: f32,
  psi_osg_sharded: f32,
  psi_fs_fixed: f32,
  psi_fs_sharded: f32,
}

// Same fields, same order as POC_OUTPUTS in src/model.ts.
struct PocOutputs {
  num_of_micro_batches: f32,
  pipeline_parallelism_bubble_rate: f32,
  total_memory_gb: f32,
  model_and_optimizer_states_memory_gb: f32,
  activations_memory_gb: f32,
  cross_entropy_activation_memory_gb: f32,
  practice_activations_memory_gb: f32,
  expert_parameters_m: f32,
  non_expert_parameters_m: f32,
  expert_layers_activations_gb: f32,
  practice_expert_layers_activations_gb: f32,
  non_expert_layers_activations_gb: f32,
  mlp_activation_mb: f32,
  moe_activation_mb: f32,
}

fn poc_state_coefficient(c: PocConstants, zero: i32, d: f32) -> f32 {
  if (zero == 0) { return c.psi_no_op_fixed + c.psi_no_op_sharded / d; }
  if (zero == 1) { return c.psi_os_fixed + c.psi_os_sharded / d; }
  if (zero == 2) { return c.psi_osg_fixed + c.psi_osg_sharded / d; }
  return c.psi_fs_fixed + c.psi_fs_sharded / d;
}

fn poc_estimate(c: PocConstants, ngpus_i: i32, tp_i: i32, pp_i: i32, ep_i: i32, cp_i: i32, dp_i: i32, mbs_i: i32,
                zero: i32) -> PocOutputs {
  let tp = f32(tp_i);
  let pp = f32(pp_i);
  let ep = f32(ep_i);
  let cp = f32(cp_i);
  let dp = f32(dp_i);
  let mbs = f32(mbs_i);
  let data_module_expert_parallelism = f32(dp_i / ep_i);
  let v = c.vocab_size;
  let h = c.hidden_size;
  let h_ffn = c.ffn_hidden_size;
  let nlayers = c.num_layers;
  let s = py_floor_div(c.seq_length, cp);
  let b = mbs;
  let m = c.global_batch_size / dp / mbs;
  let f_expert = c.expert_frequency;
  let k = c.moe_k;
  let n_experts = c.num_experts;
  let cap = select(1.0, c.token_imbalance_hypothesis, ep_i != 1);

  // Parameters on one GPU.
  let embedding_parameters = py_floor_div(v * h, tp) * select(1.0, 2.0, pp_i == 1 && c.untied_embeddings == 1.0);
  var attention_layer_parameters: f32;
  if (c.has_kv_heads == 1.0) {
    let d_head = py_floor_div(h, c.num_attention_heads);
    attention_layer_parameters =
      py_floor_div(h, tp) * (c.num_attention_heads * d_head + 2.0 * c.num_key_value_heads * d_head + h);
  } else {
    attention_layer_parameters = py_floor_div(h * h * 4.0, tp);
  }
  let mlp_layer_parameters = py_floor_div(h * h_ffn * c.gated_mlp_matrices, tp);
  let non_expert_parameters =
    embedding_parameters +
    py_floor_div((attention_layer_parameters + mlp_layer_parameters * (1.0 - f_expert)) * nlayers, pp);
  let expert_parameters = py_floor_div(py_floor_div(mlp_layer_parameters * f_expert * n_experts, ep) * nlayers, pp);

  // Model and optimizer states.
  let non_expert_psi = poc_state_coefficient(c, zero, dp);
  let expert_psi = poc_state_coefficient(c, zero, data_module_expert_parallelism);
  let model_and_optimizer_states_memory = non_expert_parameters * non_expert_psi + expert_parameters * expert_psi;

  // Activations of one micro-batch (the PoC counts one, whatever the schedule).
  let cross_entropy_activation = py_floor_div((2.0 + 4.0 + 4.0) * s * b * v, tp);
  let mlp_activation = (2.0 * s * b * (h + c.gated_mlp_matrices * h_ffn)) / tp;
  let moe_activation = py_floor_div(2.0 * (s * b * h + cap * k * s * b * h), tp) + cap * k * mlp_activation;
  let practice_moe_activation = py_floor_div(s * b * h, tp) + 4.0 * cap * k * s * b * h + cap * k * mlp_activation;
  let expert_layers_activations = nlayers * f_expert * moe_activation;
  let practice_expert_layers_activations = nlayers * f_expert * practice_moe_activation;
  let non_expert_layers_activations =
    nlayers * ((1.0 - f_expert) * mlp_activation + (2.0 * 7.0 * s * b * h) / tp) +
    select(0.0, cross_entropy_activation, pp_i == 1);
  let activations_memory = expert_layers_activations + non_expert_layers_activations;
  let practice_activations_memory = practice_expert_layers_activations + non_expert_layers_activations;

  let pipeline_parallelism_bubble_rate = (pp - 1.0) / m;

  var out: PocOutputs;
  out.num_of_micro_batches = m;
  out.pipeline_parallelism_bubble_rate = pipeline_parallelism_bubble_rate;
  out.total_memory_gb = (model_and_optimizer_states_memory + activations_memory) / GIB;
  out.model_and_optimizer_states_memory_gb = model_and_optimizer_states_memory / GIB;
  out.activations_memory_gb = activations_memory / GIB;
  out.cross_entropy_activation_memory_gb = cross_entropy_activation / GIB;
  out.practice_activations_memory_gb = practice_activations_memory / GIB;
  out.expert_parameters_m = expert_parameters / MIB;
  out.non_expert_parameters_m = non_expert_parameters / MIB;
  out.expert_layers_activations_gb = expert_layers_activations / GIB;
  out.practice_expert_layers_activations_gb = practice_expert_layers_activations / GIB;
  out.non_expert_layers_activations_gb = non_expert_layers_activations / GIB;
  out.mlp_activation_mb = mlp_activation / MIB;
  out.moe_activation_mb = moe_activation / MIB;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// --formula full: the memory of the most loaded GPU, by component, for every parallelism dimension.
// ---------------------------------------------------------------------------------------------------------------

// Same fields, same order as FULL_CONSTANTS in src/model.ts.
struct FullConstants {
  hidden_size: f32,
  num_layers: f32,
  num_attention_heads: f32,
  num_query_groups: f32,
  kv_channels: f32,
  ffn_hidden_size: f32,
  vocab_size: f32,
  vocab_divisor: f32,
  gated_mlp: f32,
  norm_params: f32,
  bias: f32,
  learned_positions: f32,
  untied_embeddings: f32,
  dropout: f32,
  mla: f32,
  q_lora_rank: f32,
  kv_lora_rank: f32,
  qk_head_dim: f32,
  qk_pos_emb_head_dim: f32,
  v_head_dim: f32,
  num_experts: f32,
  moe_k: f32,
  moe_ffn_hidden_size: f32,
  first_k_dense_layers: f32,
  moe_layer_freq: f32,
  num_shared_experts: f32,
  shared_expert_ffn_hidden_size: f32,
  capacity_factor: f32,
  moe_router_num_groups: f32,
  moe_router_group_topk: f32,
  mtp_num_layers: f32,
  param_bytes: f32,
  grad_bytes: f32,
  optimizer_state_bytes: f32,
  master_bytes: f32,
  flash_attention: f32,
  memory_gib: f32,
  headroom: f32,
  peak_flops: f32,
  hbm_bytes_s: f32,
  scaleup_bytes_s: f32,
  scaleout_bytes_s: f32,
  gpus_per_node: f32,
  scaleup_latency_s: f32,
  scaleout_latency_s: f32,
  collective_latency_s: f32,
  pcie_bytes_s: f32,
  gemm_efficiency_max: f32,
  gemm_efficiency_half_dim: f32,
  memory_passes: f32,
  cpu_optimizer_params_s: f32,
  fp8_peak_flops: f32,
  fp8_linear: f32,
  fp8_efficiency: f32,
  attention_efficiency: f32,
  attention_half_seq: f32,
  tp_comm_overlap: f32,
  overlap_grad_reduce: f32,
  overlap_param_gather: f32,
  overlap_p2p_comm: f32,
  moe_a2a_overlap: f32,
  moe_dedup_dispatch: f32,
  cp_comm: f32,
  overlap_cost: f32,
}

// Same fields, same order as FULL_OUTPUTS in src/model.ts.
struct FullOutputs {
  params_total: f32,
  params_active: f32,
  params_gpu: f32,
  weights_gib: f32,
  grads_gib: f32,
  optimizer_gib: f32,
  activations_gib: f32,
  logits_gib: f32,
  total_gib: f32,
  offloaded_gib: f32,
  heaviest_stage: f32,
  inflight_microbatches: f32,
  fits: f32,
  step_time_s: f32,
  tokens_per_s: f32,
  tokens_per_s_per_gpu: f32,
  mfu: f32,
  hfu: f32,
  compute_s: f32,
  tp_comm_s: f32,
  pp_comm_s: f32,
  dp_comm_s: f32,
  ep_comm_s: f32,
  cp_comm_s: f32,
  bubble_s: f32,
  optimizer_s: f32,
  offload_s: f32,
  exposed_comm_s: f32,
  overlapped_comm_s: f32,
  tp_bytes: f32,
  pp_bytes: f32,
  dp_bytes: f32,
  ep_bytes: f32,
  cp_bytes: f32,
}

// Same fields as FullRow in src/model.ts, as f32 (all are integers below 2^24).
struct FullRow {
  ngpus: f32,
  seq_length: f32,
  global_batch_size: f32,
  tp: f32,
  pp: f32,
  vpp: f32,
  schedule: i32,
  cp: f32,
  ep: f32,
  etp: f32,
  dp: f32,
  edp: f32,
  zero: i32,
  sp: i32,
  recompute: i32,
  offload: i32,
  mbs: f32,
  num_microbatches: f32,
  first_stage_layers: f32,
  last_stage_layers: f32,
  grad_reduce: i32,
  reshard: f32,
  dp_replicas: f32,
}

const SCHEDULE_1F1B: i32 = 0;
const SCHEDULE_INTERLEAVED: i32 = 1;
const SCHEDULE_GPIPE: i32 = 2;
const SCHEDULE_ZB_H1: i32 = 3;
const SCHEDULE_DUALPIPE: i32 = 4;
const GRAD_REDUCE_STEP: i32 = 0;
const GRAD_REDUCE_MICROBATCH: i32 = 1;
const RECOMPUTE_NONE: i32 = 0;
const RECOMPUTE_SELECTIVE: i32 = 1;
const RECOMPUTE_FULL: i32 = 2;
const RECOMPUTE_SELECTIVE_OP: i32 = 3;
const CP_COMM_P2P: f32 = 0.0;
const CP_COMM_ALL_GATHER: f32 = 1.0;
const CP_COMM_A2A: f32 = 2.0;
const OFFLOAD_NONE: i32 = 0;
const OFFLOAD_OPTIMIZER: i32 = 1;
const OFFLOAD_OPTIMIZER_CPU_STEP: i32 = 2;

struct StageMemory {
  params_gpu: f32,
  weights: f32,
  grads: f32,
  optimizer: f32,
  activations: f32,
  logits: f32,
  total: f32,
  offloaded: f32,
  inflight: f32,
}

fn padded_vocab(c: FullConstants, tp: f32) -> f32 {
  let multiple = c.vocab_divisor * tp;
  return ceil(c.vocab_size / multiple) * multiple;
}

fn attention_params(c: FullConstants) -> f32 {
  let h = c.hidden_size;
  let a = c.num_attention_heads;
  if (c.mla == 1.0) {
    let qk = c.qk_head_dim + c.qk_pos_emb_head_dim;
    let q = select(h * a * qk, h * c.q_lora_rank + c.q_lora_rank + c.q_lora_rank * a * qk, c.q_lora_rank > 0.0);
    let kv =
      h * (c.kv_lora_rank + c.qk_pos_emb_head_dim) + c.kv_lora_rank + c.kv_lora_rank * a * (c.qk_head_dim + c.v_head_dim);
    let o = a * c.v_head_dim * h;
    return q + kv + o;
  }
  let d = c.kv_channels;
  let g = c.num_query_groups;
  let projections = h * d * (a + 2.0 * g) + a * d * h;
  return projections + c.bias * (a * d + 2.0 * g * d + h);
}

fn query_width(c: FullConstants) -> f32 {
  return select(c.num_attention_heads * c.kv_channels, c.num_attention_heads * (c.qk_head_dim + c.qk_pos_emb_head_dim), c.mla == 1.0);
}

fn key_width(c: FullConstants) -> f32 {
  return select(c.num_query_groups * c.kv_channels, query_width(c), c.mla == 1.0);
}

fn value_width(c: FullConstants) -> f32 {
  return select(c.num_query_groups * c.kv_channels, c.num_attention_heads * c.v_head_dim, c.mla == 1.0);
}

fn output_width(c: FullConstants) -> f32 {
  return select(c.num_attention_heads * c.kv_channels, c.num_attention_heads * c.v_head_dim, c.mla == 1.0);
}

fn mlp_params(c: FullConstants, f: f32) -> f32 {
  let h = c.hidden_size;
  let matrices = select(2.0, 3.0, c.gated_mlp == 1.0);
  return matrices * h * f + c.bias * ((matrices - 1.0) * f + h);
}

fn moe_layers_before(c: FullConstants, x: f32) -> f32 {
  if (c.num_experts == 0.0) { return 0.0; }
  return floor(max(0.0, x - c.first_k_dense_layers) * c.moe_layer_freq);
}

fn chunk_layers(c: FullConstants, r: FullRow, i: f32, j: f32) -> f32 {
  if (r.pp == 1.0) { return select(0.0, c.num_layers, j == 0.0); }
  let v = r.vpp;
  let total = select(select(middle_stage_layers(c, r), r.last_stage_layers, i == r.pp - 1.0), r.first_stage_layers, i == 0.0);
  let q = floor(total / v);
  let extra = total - q * v;
  if (i == r.pp - 1.0) { return q + select(0.0, 1.0, j < extra); }
  return q + select(0.0, 1.0, j >= v - extra);
}

fn middle_stage_layers(c: FullConstants, r: FullRow) -> f32 {
  if (r.pp <= 2.0) { return 0.0; }
  return (c.num_layers - r.first_stage_layers - r.last_stage_layers) / (r.pp - 2.0);
}

fn chunks_before(total: f32, v: f32, j: f32, early: i32) -> f32 {
  let q = floor(total / v);
  let extra = total - q * v;
  return j * q + select(max(0.0, j - (v - extra)), min(j, extra), early == 1);
}

fn chunk_first_layer(c: FullConstants, r: FullRow, i: f32, j: f32) -> f32 {
  if (r.pp == 1.0) { return select(c.num_layers, 0.0, j == 0.0); }
  let v = r.vpp;
  let middle = middle_stage_layers(c, r);
  let rounds =
    chunks_before(r.first_stage_layers, v, j, 0) + (r.pp - 2.0) * chunks_before(middle, v, j, 0) + chunks_before(r.last_stage_layers, v, j, 1);
  if (i == 0.0) { return rounds; }
  return rounds + chunk_layers(c, r, 0.0, j) + (i - 1.0) * chunk_layers(c, r, 1.0, j);
}

fn inflight_microbatches(pp: f32, vpp: f32, schedule: i32, m: f32, i: f32) -> f32 {
  if (pp == 1.0) { return 1.0; }
  if (schedule == SCHEDULE_GPIPE) { return m; }
  if (schedule == SCHEDULE_DUALPIPE) { return min((pp + 1.0) / 2.0, m / 2.0); }
  if (schedule == SCHEDULE_INTERLEAVED) {
    return min((2.0 * (pp - i - 1.0) + (vpp - 1.0) * pp + 1.0) / vpp, m);
  }
  return min(pp - i, m);
}

fn layer_activation_bytes(c: FullConstants, moe_layer: i32, s: f32, s_kv: f32, b: f32, tp: f32, sp: i32, etp: f32,
                          recompute: i32) -> f32 {
  let h = c.hidden_size;
  let a = c.num_attention_heads;
  let sbh = s * b * h;
  let t_rep = select(1.0, tp, sp == 1);
  if (recompute == RECOMPUTE_FULL) { return (2.0 * sbh) / t_rep; }

  let q_dim = query_width(c);
  let k_dim = key_width(c);
  let v_dim = value_width(c);
  let o_dim = output_width(c);

  if (recompute == RECOMPUTE_SELECTIVE_OP) {
    let block_input = (2.0 * sbh) / t_rep;
    let attention_output = (2.0 * s * b * o_dim + 4.0 * a * s * b) / tp;
    let scattered = select(0.0, (4.0 * sbh) / tp, sp == 1 && tp > 1.0);
    var saved_matmuls: f32;
    if (moe_layer == 1) {
      saved_matmuls = (2.0 * s * b * (q_dim + v_dim)) / tp;
    } else {
      saved_matmuls = (2.0 * s * b * (q_dim + v_dim + c.ffn_hidden_size)) / tp + select(0.0, 2.0 * sbh, c.gated_mlp == 1.0);
    }
    return block_input + attention_output + scattered + saved_matmuls;
  }

  let attention_norm_input = (2.0 * sbh) / t_rep;
  let qkv_input = (2.0 * sbh) / t_rep;
  let mla_latents = select(0.0, (2.0 * s * b * (2.0 * c.q_lora_rank + 2.0 * c.kv_lora_rank + c.qk_pos_emb_head_dim)) / t_rep,
                           c.mla == 1.0);
  let qkv = (2.0 * s * b * (q_dim + k_dim + v_dim)) / tp;
  let core_full = (select(2.0, 5.0, c.dropout == 1.0) * a * s * s_kv * b) / tp;
  let core_flash = (4.0 * a * s * b) / tp;
  let attention_core = select(select(core_full, core_flash, c.flash_attention == 1.0), 0.0, recompute == RECOMPUTE_SELECTIVE);
  let projection_input = (2.0 * s * b * o_dim) / tp;
  let attention_dropout_mask = (c.dropout * sbh) / t_rep;
  let attention = attention_norm_input + qkv_input + mla_latents + qkv + attention_core + projection_input + attention_dropout_mask;

  let mlp_norm_input = (2.0 * sbh) / t_rep;
  let fc1_input = (2.0 * sbh) / t_rep;
  let mlp_dropout_mask = (c.dropout * sbh) / t_rep;
  let act_width = select(1.0, 2.0, c.gated_mlp == 1.0);
  var mlp: f32;
  if (moe_layer == 1) {
    let routed_tokens = (s * b * c.moe_k * c.capacity_factor) / t_rep;
    let router_probs = (4.0 * s * b * c.num_experts) / t_rep;
    let f_e = c.moe_ffn_hidden_size;
    let experts = routed_tokens * (etp * (2.0 * h + (2.0 * act_width * f_e) / etp + (2.0 * f_e) / etp) + 2.0 * h);
    let f_s = c.shared_expert_ffn_hidden_size * c.num_shared_experts;
    let shared_experts = (s * b * (2.0 * act_width * f_s + 2.0 * f_s)) / tp;
    mlp = mlp_norm_input + fc1_input + router_probs + experts + shared_experts + mlp_dropout_mask;
  } else {
    let f = c.ffn_hidden_size;
    mlp = mlp_norm_input + fc1_input + (s * b * (2.0 * act_width * f + 2.0 * f)) / tp + mlp_dropout_mask;
  }
  return attention + mlp;
}

struct StageLayerCounts {
  layers: f32,
  moe: f32,
  dense: f32,
  mtp: f32,
  embedding: f32,
  output: f32,
}

fn stage_layer_counts(c: FullConstants, r: FullRow, i: f32) -> StageLayerCounts {
  let dualpipe = select(0, 1, r.schedule == SCHEDULE_DUALPIPE);
  var layers = 0.0;
  var moe = 0.0;
  for (var k = 0; k <= dualpipe; k++) {
    let rank = select(r.pp - 1.0 - i, i, k == 0);
    for (var j = 0.0; j < r.vpp; j += 1.0) {
      let first = chunk_first_layer(c, r, rank, j);
      let n = chunk_layers(c, r, rank, j);
      layers += n;
      moe += moe_layers_before(c, first + n) - moe_layers_before(c, first);
    }
  }
  let embedding = select(0.0, 1.0, i == 0.0 || (dualpipe == 1 && i == r.pp - 1.0));
  let output = select(0.0, 1.0, i == r.pp - 1.0 || (dualpipe == 1 && i == 0.0));
  return StageLayerCounts(layers, moe, layers - moe, output * c.mtp_num_layers, embedding, output);
}

struct LayerParams {
  dense_layer: f32,
  moe_layer_dense: f32,
  expert_layer: f32,
}

fn layer_params_gpu(c: FullConstants, r: FullRow) -> LayerParams {
  let norm = c.norm_params * c.hidden_size;
  let attention_gpu = attention_params(c) / r.tp;
  return LayerParams(
    attention_gpu + mlp_params(c, c.ffn_hidden_size) / r.tp + 2.0 * norm,
    attention_gpu +
      2.0 * norm +
      c.hidden_size * c.num_experts +
      (c.num_shared_experts * mlp_params(c, c.shared_expert_ffn_hidden_size)) / r.tp,
    ((c.num_experts / r.ep) * mlp_params(c, c.moe_ffn_hidden_size)) / r.etp,
  );
}

fn stage_params(c: FullConstants, r: FullRow, i: f32) -> vec2<f32> {
  let h = c.hidden_size;
  let tp = r.tp;
  let pp = r.pp;
  let vocab = padded_vocab(c, tp);
  let has_moe = select(0.0, 1.0, c.num_experts > 0.0);
  let counts = stage_layer_counts(c, r, i);
  let moe = counts.moe;
  let dense = counts.dense;
  let mtp = counts.mtp;
  let embedding = counts.embedding;
  let output = counts.output;
  let layer = layer_params_gpu(c, r);
  let norm = c.norm_params * h;
  let embedding_gpu = (vocab * h) / tp + c.learned_positions * r.seq_length * h;
  let output_gpu = select(0.0, (vocab * h) / tp, c.untied_embeddings == 1.0 || pp > 1.0);
  let mtp_dense_gpu = select(layer.dense_layer, layer.moe_layer_dense, has_moe == 1.0) + (2.0 * h * h) / tp + 2.0 * norm;
  let dense_params =
    dense * layer.dense_layer +
    moe * layer.moe_layer_dense +
    embedding * embedding_gpu +
    output * (norm + output_gpu) +
    mtp * mtp_dense_gpu;
  let expert_params = (moe + mtp * has_moe) * layer.expert_layer;
  return vec2<f32>(dense_params, expert_params);
}

fn largest_layer_params(c: FullConstants, r: FullRow) -> f32 {
  let layer = layer_params_gpu(c, r);
  return max(layer.dense_layer, select(0.0, layer.moe_layer_dense + layer.expert_layer, c.num_experts > 0.0));
}

// One layer's ZeRO-3 all-gather (or reduce-scatter, with the gradients' bytes) over its data-parallel group.
fn zero3_layer_gather_s(c: FullConstants, r: FullRow, bytes: f32) -> f32 {
  let layer = layer_params_gpu(c, r);
  let dense_group = (r.dp * r.cp) / r.dp_replicas;
  let expert_group = r.edp / r.dp_replicas;
  let dense_in_node = group_in_node(c, dense_group, r.tp);
  let dense_per_node = group_per_node(c, dense_group, r.tp);
  let dense_s = gather_s(c, layer.dense_layer * bytes, dense_group, dense_in_node, dense_per_node);
  let moe_s =
    gather_s(c, layer.moe_layer_dense * bytes, dense_group, dense_in_node, dense_per_node) +
    gather_s(c, layer.expert_layer * bytes, expert_group, group_in_node(c, expert_group, r.etp * r.ep), group_per_node(c, expert_group, r.etp * r.ep));
  return max(dense_s, select(0.0, moe_s, c.num_experts > 0.0));
}

// HSDP: the all-reduce of a reduced gradient shard across the dp_replicas replicas (src/model.ts).
fn replica_allreduce_s(c: FullConstants, r: FullRow, dense_bytes: f32, expert_bytes: f32) -> f32 {
  let n = r.dp_replicas;
  if (n <= 1.0) { return 0.0; }
  let dense_stride = r.tp * ((r.dp * r.cp) / n);
  let expert_stride = r.etp * r.ep * (r.edp / n);
  return allreduce_s(c, dense_bytes, n, group_in_node(c, n, dense_stride), group_per_node(c, n, dense_stride)) +
    allreduce_s(c, expert_bytes, n, group_in_node(c, n, expert_stride), group_per_node(c, n, expert_stride));
}

fn zero3_layer_replica_reduce_s(c: FullConstants, r: FullRow) -> f32 {
  if (r.dp_replicas <= 1.0) { return 0.0; }
  let layer = layer_params_gpu(c, r);
  let dense_group = (r.dp * r.cp) / r.dp_replicas;
  let expert_group = r.edp / r.dp_replicas;
  let dense_s = replica_allreduce_s(c, r, (layer.dense_layer * c.grad_bytes) / dense_group, 0.0);
  let moe_s = replica_allreduce_s(c, r, (layer.moe_layer_dense * c.grad_bytes) / dense_group,
    (layer.expert_layer * c.grad_bytes) / expert_group);
  return max(dense_s, select(0.0, moe_s, c.num_experts > 0.0));
}

fn stage_memory(c: FullConstants, r: FullRow, i: f32, base: StageMemoryBase) -> StageMemory {
  let dense_params = base.dense_params;
  let expert_params = base.expert_params;
  let activations = base.activations;
  let logits = base.logits;
  let inflight = base.inflight;

  let dense_shards = (r.dp * r.cp) / r.dp_replicas;
  let expert_shards = r.edp / r.dp_replicas;
  let weight_shards_dense = select(1.0, dense_shards, r.zero >= 3);
  let weight_shards_expert = select(1.0, expert_shards, r.zero >= 3);
  let grad_shards_dense = select(1.0, dense_shards, r.zero >= 2);
  let grad_shards_expert = select(1.0, expert_shards, r.zero >= 2);
  let state_shards_dense = select(1.0, dense_shards, r.zero >= 1);
  let state_shards_expert = select(1.0, expert_shards, r.zero >= 1);
  let zero3_gathered = select(0.0,
    select(dense_params + expert_params, 2.0 * base.largest_layer, r.reshard == 1.0) * c.param_bytes, r.zero >= 3);
  let weights =
    (dense_params * c.param_bytes) / weight_shards_dense + (expert_params * c.param_bytes) / weight_shards_expert + zero3_gathered;
  let grads_sharded = select(0, 1, r.zero >= 2 && r.grad_reduce == GRAD_REDUCE_MICROBATCH);
  let grads = select((dense_params + expert_params) * c.grad_bytes,
    (dense_params * c.grad_bytes) / grad_shards_dense +
      (expert_params * c.grad_bytes) / grad_shards_expert +
      base.largest_layer * c.grad_bytes,
    grads_sharded == 1);
  let state_bytes = 2.0 * c.optimizer_state_bytes + c.master_bytes;
  let optimizer_all = (dense_params * state_bytes) / state_shards_dense + (expert_params * state_bytes) / state_shards_expert;
  let optimizer = select(0.0, optimizer_all, r.offload == OFFLOAD_NONE);
  let offloaded = select(optimizer_all, 0.0, r.offload == OFFLOAD_NONE);

  let forward_backward = weights + grads + optimizer + activations + logits;
  let step = select(0.0, weights + grads + optimizer_all, r.offload == OFFLOAD_OPTIMIZER);
  let total = max(forward_backward, step);
  return StageMemory(dense_params + expert_params, weights, grads, optimizer, activations, logits, total, offloaded, inflight);
}

// Same fields, same order as StageMemoryBase in src/model.ts: what rows differing only in ZeRO, gradient
// reduction or offload share (the per-class pass computes it once for them, shaders/terms.wgsl).
struct StageMemoryBase {
  dense_params: f32,
  expert_params: f32,
  largest_layer: f32,
  activations: f32,
  logits: f32,
  inflight: f32,
}

fn stage_memory_base(c: FullConstants, r: FullRow, i: f32) -> StageMemoryBase {
  let h = c.hidden_size;
  let tp = r.tp;
  let pp = r.pp;
  let vocab = padded_vocab(c, tp);
  let has_moe = select(0.0, 1.0, c.num_experts > 0.0);
  let counts = stage_layer_counts(c, r, i);
  let moe = counts.moe;
  let dense = counts.dense;
  let mtp = counts.mtp;
  let embedding = counts.embedding;
  let output = counts.output;
  let params = stage_params(c, r, i);
  let dense_params = params.x;
  let expert_params = params.y;

  let s = r.seq_length / r.cp;
  let b = r.mbs;
  let t_rep = select(1.0, tp, r.sp == 1);
  let dense_layer_act = layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, r.recompute);
  let moe_layer_act = layer_activation_bytes(c, 1, s, r.seq_length, b, tp, r.sp, r.etp, r.recompute);
  let mtp_layer_act = select(dense_layer_act, moe_layer_act, has_moe == 1.0);
  let embedding_act = embedding * ((8.0 * s * b + c.dropout * s * b * h) / t_rep);
  let microbatch_act = dense * dense_layer_act + moe * moe_layer_act + mtp * mtp_layer_act + embedding_act;
  let inflight = inflight_microbatches(pp, r.vpp, r.schedule, r.num_microbatches, i);
  let rebuilt_dense = layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  let rebuilt_moe = layer_activation_bytes(c, 1, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  let rebuilds = select(0.0, 1.0, r.recompute == RECOMPUTE_FULL || r.recompute == RECOMPUTE_SELECTIVE_OP);
  let rebuilt = rebuilds * max(select(0.0, rebuilt_dense, dense > 0.0), select(0.0, rebuilt_moe, moe > 0.0));
  let activations = inflight * microbatch_act + rebuilt;
  let logits = output * (1.0 + c.mtp_num_layers) * ((4.0 * s * b * h) / t_rep + (4.0 * s * b * vocab) / tp);
  return StageMemoryBase(dense_params, expert_params, largest_layer_params(c, r), activations, logits, inflight);
}

fn model_params(c: FullConstants, tp: f32, seq_length: f32, active_only: i32) -> f32 {
  let h = c.hidden_size;
  let vocab = padded_vocab(c, tp);
  let norm = c.norm_params * h;
  let moe_layers = moe_layers_before(c, c.num_layers);
  let dense_layers = c.num_layers - moe_layers;
  let experts_counted = select(c.num_experts, c.moe_k, active_only == 1);
  let dense_layer = attention_params(c) + mlp_params(c, c.ffn_hidden_size) + 2.0 * norm;
  let moe_layer =
    attention_params(c) +
    2.0 * norm +
    h * c.num_experts +
    c.num_shared_experts * mlp_params(c, c.shared_expert_ffn_hidden_size) +
    experts_counted * mlp_params(c, c.moe_ffn_hidden_size);
  let embeddings = vocab * h * (1.0 + c.untied_embeddings) + c.learned_positions * seq_length * h;
  return dense_layers * dense_layer + moe_layers * moe_layer + embeddings + norm;
}

// Step time: same functions, same order of terms as in src/model.ts.

fn group_in_node(c: FullConstants, size: f32, stride: f32) -> f32 {
  return select(0.0, 1.0, size * stride <= c.gpus_per_node);
}

fn link_bytes_s(c: FullConstants, in_node: f32, per_node: f32) -> f32 {
  return select(min(c.scaleup_bytes_s, per_node * c.scaleout_bytes_s), c.scaleup_bytes_s, in_node == 1.0);
}

fn group_per_node(c: FullConstants, size: f32, stride: f32) -> f32 {
  return max(1.0, min(size, floor(c.gpus_per_node / stride)));
}

fn link_latency_s(c: FullConstants, in_node: f32) -> f32 {
  return select(c.scaleout_latency_s, c.scaleup_latency_s, in_node == 1.0);
}

fn allreduce_s(c: FullConstants, bytes: f32, n: f32, in_node: f32, per_node: f32) -> f32 {
  if (n <= 1.0 || bytes == 0.0) { return 0.0; }
  return ((2.0 * (n - 1.0)) / n) * (bytes / link_bytes_s(c, in_node, per_node)) + c.collective_latency_s + 2.0 * (n - 1.0) * link_latency_s(c, in_node);
}

fn gather_s(c: FullConstants, bytes: f32, n: f32, in_node: f32, per_node: f32) -> f32 {
  if (n <= 1.0 || bytes == 0.0) { return 0.0; }
  return ((n - 1.0) / n) * (bytes / link_bytes_s(c, in_node, per_node)) + c.collective_latency_s + (n - 1.0) * link_latency_s(c, in_node);
}

fn gemm_efficiency(c: FullConstants, m: f32, n: f32, k: f32, rate: f32) -> f32 {
  let dim = 1.0 / (1.0 / m + 1.0 / n + 1.0 / k);
  return (c.gemm_efficiency_max * dim) / (dim + rate * c.gemm_efficiency_half_dim);
}

const GEMM_OPERAND_BYTES: f32 = 2.0;

fn gemm_s(c: FullConstants, m: f32, n: f32, k: f32, fp8: f32) -> f32 {
  if (m <= 0.0 || n <= 0.0 || k <= 0.0) { return 0.0; }
  let peak = select(c.peak_flops, c.fp8_peak_flops * c.fp8_efficiency, fp8 == 1.0);
  let input_bytes = select(GEMM_OPERAND_BYTES, 1.0, fp8 == 1.0);
  let rate = select(1.0, c.fp8_peak_flops / c.peak_flops, fp8 == 1.0);
  let compute_s = (2.0 * m * n * k) / (peak * gemm_efficiency(c, m, n, k, rate));
  let memory_s = (input_bytes * (m * k + k * n) + GEMM_OPERAND_BYTES * m * n) / c.hbm_bytes_s;
  return max(compute_s, memory_s);
}

fn fp8_cast_s(c: FullConstants, m: f32, n: f32, k: f32) -> f32 {
  return select(0.0, (4.0 * (m * k + m * n)) / c.hbm_bytes_s, c.fp8_linear == 1.0);
}

fn linear_s(c: FullConstants, m: f32, n: f32, k: f32) -> f32 {
  return 3.0 * gemm_s(c, m, n, k, c.fp8_linear) + fp8_cast_s(c, m, n, k);
}

fn layer_linear_s(c: FullConstants, moe_layer: i32, m: f32, tp: f32, ep: f32, etp: f32) -> f32 {
  let h = c.hidden_size;
  let act_width = select(1.0, 2.0, c.gated_mlp == 1.0);
  let o_dim = output_width(c);
  let qkv_width = (attention_params(c) - o_dim * h) / h;
  let attention = linear_s(c, m, qkv_width / tp, h) + linear_s(c, m, h, o_dim / tp);
  if (moe_layer == 1 && c.num_experts > 0.0) {
    let f_e = c.moe_ffn_hidden_size;
    let local_experts = c.num_experts / ep;
    let expert_tokens = ((m / tp) * c.moe_k * c.capacity_factor * ep * etp) / c.num_experts;
    let routed = local_experts * (linear_s(c, expert_tokens, (act_width * f_e) / etp, h) + linear_s(c, expert_tokens, h, f_e / etp));
    let f_s = c.num_shared_experts * c.shared_expert_ffn_hidden_size;
    let shared_experts = linear_s(c, m, (act_width * f_s) / tp, h) + linear_s(c, m, h, f_s / tp);
    let router = 3.0 * gemm_s(c, m / tp, c.num_experts, h, 0.0);
    return attention + routed + shared_experts + router;
  }
  let f = c.ffn_hidden_size;
  return attention + linear_s(c, m, (act_width * f) / tp, h) + linear_s(c, m, h, f / tp);
}

fn tp_pair_exposed_s(collective_s: f32, window_s: f32, tp: f32) -> f32 {
  return min(collective_s, max(0.0, collective_s - window_s) + collective_s / tp);
}

fn layer_tp_exposed_s(c: FullConstants, moe_layer: i32, m: f32, tp: f32, ep: f32, etp: f32, collective_s: f32,
                      forward_passes: f32) -> f32 {
  let h = c.hidden_size;
  let act_width = select(1.0, 2.0, c.gated_mlp == 1.0);
  let o_dim = output_width(c);
  let qkv_width = (attention_params(c) - o_dim * h) / h;
  let qkv_s = gemm_s(c, m, qkv_width / tp, h, c.fp8_linear);
  let proj_s = gemm_s(c, m, h, o_dim / tp, c.fp8_linear);
  var fc1_s: f32;
  var fc2_s: f32;
  if (moe_layer == 1 && c.num_experts > 0.0) {
    let shared_ffn = c.num_shared_experts * c.shared_expert_ffn_hidden_size;
    fc1_s = select(0.0, gemm_s(c, m, (act_width * shared_ffn) / tp, h, c.fp8_linear), shared_ffn > 0.0);
    fc2_s = select(0.0, gemm_s(c, m, h, shared_ffn / tp, c.fp8_linear), shared_ffn > 0.0);
  } else {
    fc1_s = gemm_s(c, m, (act_width * c.ffn_hidden_size) / tp, h, c.fp8_linear);
    fc2_s = gemm_s(c, m, h, c.ffn_hidden_size / tp, c.fp8_linear);
  }
  let mlp = layer_tp_collectives(c, moe_layer) - 1.0;
  return forward_passes *
      (tp_pair_exposed_s(collective_s, qkv_s, tp) +
        tp_pair_exposed_s(collective_s, proj_s, tp) +
        mlp * (tp_pair_exposed_s(collective_s, fc1_s, tp) + tp_pair_exposed_s(collective_s, fc2_s, tp))) +
    tp_pair_exposed_s(collective_s, 2.0 * qkv_s, tp) +
    tp_pair_exposed_s(collective_s, 2.0 * proj_s, tp) +
    mlp * (tp_pair_exposed_s(collective_s, 2.0 * fc1_s, tp) + tp_pair_exposed_s(collective_s, 2.0 * fc2_s, tp));
}

fn layer_tp_collectives(c: FullConstants, moe_layer: i32) -> f32 {
  if (moe_layer == 1 && c.num_experts > 0.0) { return select(1.0, 2.0, c.num_shared_experts > 0.0); }
  return 2.0;
}

fn attention_core_fwd_s(c: FullConstants, s: f32, s_kv: f32, b: f32, tp: f32) -> f32 {
  let a = c.num_attention_heads;
  let qk_head = select(c.kv_channels, c.qk_head_dim + c.qk_pos_emb_head_dim, c.mla == 1.0);
  let v_head = select(c.kv_channels, c.v_head_dim, c.mla == 1.0);
  let heads = (a * b) / tp;
  if (c.flash_attention == 1.0) {
    let flops = heads * 2.0 * s * (s_kv / 2.0) * (qk_head + v_head);
    let block = min(s, s_kv);
    let efficiency = (c.attention_efficiency * block) / (block + c.attention_half_seq);
    return flops / (c.peak_flops * efficiency);
  }
  return heads * (gemm_s(c, s, s_kv, qk_head, 0.0) + gemm_s(c, s, v_head, s_kv, 0.0));
}

fn attention_backward_ratio(c: FullConstants) -> f32 {
  return select(2.0, 2.5, c.flash_attention == 1.0);
}

fn alltoall_s(c: FullConstants, bytes: f32, n: f32, stride: f32) -> f32 {
  if (n <= 1.0 || bytes == 0.0) { return 0.0; }
  let local = group_per_node(c, n, stride);
  return tiered_s(c, ((local - 1.0) / n) * bytes, ((n - local) / n) * bytes, local, n) + c.collective_latency_s;
}

fn tiered_s(c: FullConstants, in_node_bytes: f32, cross_bytes: f32, local: f32, n: f32) -> f32 {
  let in_node_s = in_node_bytes / c.scaleup_bytes_s + select(0.0, c.scaleup_latency_s, local > 1.0);
  let cross_s = cross_bytes / c.scaleout_bytes_s + select(0.0, c.scaleout_latency_s, n > local);
  return max(in_node_s, cross_s);
}

fn ep_remote_nodes(c: FullConstants, n: f32, stride: f32) -> f32 {
  let local = group_per_node(c, n, stride);
  let nodes = ceil(n / local);
  if (nodes <= 1.0) { return 0.0; }
  let reachable = min(nodes, c.moe_router_group_topk * max(1.0, nodes / c.moe_router_num_groups));
  let distinct = select(reachable * (1.0 - pow(1.0 - 1.0 / reachable, c.moe_k)), 1.0, reachable <= 1.0);
  return (distinct * (nodes - 1.0)) / nodes;
}

// (in_node, cross) bytes.
fn ep_dispatch_bytes(c: FullConstants, bytes: f32, n: f32, stride: f32) -> vec2<f32> {
  if (n <= 1.0) { return vec2<f32>(0.0, 0.0); }
  let local = group_per_node(c, n, stride);
  if (c.moe_dedup_dispatch == 1.0 && n > local) {
    return vec2<f32>(((local - 1.0) / local) * bytes, (ep_remote_nodes(c, n, stride) / c.moe_k) * bytes);
  }
  return vec2<f32>(((local - 1.0) / n) * bytes, ((n - local) / n) * bytes);
}

fn ep_alltoall_s(c: FullConstants, split: vec2<f32>, n: f32, stride: f32) -> f32 {
  if (n <= 1.0 || split.x + split.y == 0.0) { return 0.0; }
  return tiered_s(c, split.x, split.y, group_per_node(c, n, stride), n) + c.collective_latency_s;
}

fn paid_s(c: FullConstants, total_s: f32, exposed_s: f32) -> f32 {
  return exposed_s + c.overlap_cost * (total_s - exposed_s);
}

fn interleaved_grad_sync_exposed_s(reduce_s: f32, vpp: f32, pp: f32, chunk_backward_s: f32) -> f32 {
  let chunk_reduce_s = reduce_s / vpp;
  var done_s = -(vpp - 1.0) * pp * chunk_backward_s + chunk_reduce_s;
  for (var k = vpp - 2.0; k >= 0.0; k = k - 1.0) {
    done_s = max(done_s, -k * pp * chunk_backward_s) + chunk_reduce_s;
  }
  return max(0.0, done_s);
}

fn interleaved_param_sync_exposed_s(gather_s: f32, vpp: f32, pp: f32, chunk_forward_s: f32) -> f32 {
  let chunk_gather_s = gather_s / vpp;
  var done_s = 0.0;
  var late_s = 0.0;
  for (var k = 0.0; k < vpp; k = k + 1.0) {
    let start_s = select((k - 1.0) * pp * chunk_forward_s, 0.0, k < 2.0);
    done_s = max(done_s, start_s) + chunk_gather_s;
    late_s = max(late_s, done_s - (k * pp + 1.0) * chunk_forward_s);
  }
  return late_s;
}

fn send_s(c: FullConstants, bytes: f32, in_node: f32) -> f32 {
  return bytes / link_bytes_s(c, in_node, 1.0) + link_latency_s(c, in_node);
}

fn layer_flops_per_token(c: FullConstants, moe_layer: i32, s_kv: f32, capacity: f32) -> f32 {
  let attention = 2.0 * attention_params(c) + attention_core_flops_per_token(c, s_kv);
  if (moe_layer == 1) {
    let routed = c.moe_k * capacity * mlp_params(c, c.moe_ffn_hidden_size);
    let shared_experts = c.num_shared_experts * mlp_params(c, c.shared_expert_ffn_hidden_size);
    return attention + 2.0 * (routed + shared_experts + c.hidden_size * c.num_experts);
  }
  return attention + 2.0 * mlp_params(c, c.ffn_hidden_size);
}

fn attention_core_flops_per_token(c: FullConstants, s_kv: f32) -> f32 {
  return 2.0 * s_kv * query_width(c) + 2.0 * s_kv * output_width(c);
}

fn op_recompute_share(c: FullConstants, moe_layer: i32) -> f32 {
  if (moe_layer == 1 && c.num_experts > 0.0) { return 1.0; }
  let q_dim = query_width(c);
  let k_dim = key_width(c);
  let v_dim = value_width(c);
  let o_dim = output_width(c);
  let f = c.ffn_hidden_size;
  let act_width = select(1.0, 2.0, c.gated_mlp == 1.0);
  return (k_dim + o_dim + f) / (q_dim + k_dim + v_dim + o_dim + act_width * f + f);
}

fn layer_linear_flops_per_token(c: FullConstants, moe_layer: i32, s_kv: f32) -> f32 {
  return layer_flops_per_token(c, moe_layer, s_kv, 1.0) - attention_core_flops_per_token(c, s_kv);
}

fn model_flops_per_token(c: FullConstants, tp: f32, seq_length: f32, recompute: i32, hardware: f32) -> f32 {
  let h = c.hidden_size;
  let moe_layers = moe_layers_before(c, c.num_layers);
  let dense_layers = c.num_layers - moe_layers;
  let mtp_layer = layer_flops_per_token(c, select(0, 1, c.num_experts > 0.0), seq_length, 1.0) + 2.0 * 2.0 * h * h;
  let layers =
    dense_layers * layer_flops_per_token(c, 0, seq_length, 1.0) +
    moe_layers * layer_flops_per_token(c, 1, seq_length, 1.0) +
    c.mtp_num_layers * mtp_layer;
  let logits = (1.0 + c.mtp_num_layers) * 2.0 * h * padded_vocab(c, tp);
  let mtp_moe = select(0, 1, c.num_experts > 0.0);
  var repeated = 0.0;
  if (recompute == RECOMPUTE_FULL) {
    repeated = layers;
  } else if (recompute == RECOMPUTE_SELECTIVE) {
    repeated = (c.num_layers + c.mtp_num_layers) * attention_core_flops_per_token(c, seq_length);
  } else if (recompute == RECOMPUTE_SELECTIVE_OP) {
    repeated = dense_layers * op_recompute_share(c, 0) * layer_linear_flops_per_token(c, 0, seq_length) +
               moe_layers * op_recompute_share(c, 1) * layer_linear_flops_per_token(c, 1, seq_length) +
               c.mtp_num_layers * op_recompute_share(c, mtp_moe) * layer_linear_flops_per_token(c, mtp_moe, seq_length);
  }
  return 3.0 * (layers + logits) + hardware * repeated;
}

struct StageTime {
  compute_s: f32,
  tp_s: f32,
  ep_s: f32,
  cp_exposed_s: f32,
  pp_s: f32,
  dp_mb_s: f32,
  hidden_s: f32,
  tp_bytes: f32,
  ep_bytes: f32,
  cp_bytes: f32,
  pp_bytes: f32,
  dp_mb_bytes: f32,
  dp_exposed_s: f32,
  dp_overlapped_s: f32,
  dp_bytes: f32,
  optimizer_s: f32,
  offload_s: f32,
}

fn schedule_overlaps_p2p(schedule: i32) -> f32 {
  return select(0.0, 1.0, schedule == SCHEDULE_INTERLEAVED || schedule == SCHEDULE_DUALPIPE);
}

// Same fields, same order as StageMicrobatch in src/model.ts: the part of stage_time that rows differing only in
// ZeRO, gradient reduction or offload share.
struct StageMicrobatch {
  compute_s: f32,
  tp_total_s: f32,
  tp_s: f32,
  tp_bytes: f32,
  ep_total_s: f32,
  ep_s: f32,
  ep_bytes: f32,
  cp_total_s: f32,
  cp_exposed_s: f32,
  cp_bytes: f32,
  pp_total_s: f32,
  pp_s: f32,
  pp_bytes: f32,
  dense_params: f32,
  expert_params: f32,
}

fn stage_microbatch(c: FullConstants, r: FullRow, i: f32) -> StageMicrobatch {
  let h = c.hidden_size;
  let tp = r.tp;
  let pp = r.pp;
  let has_moe = select(0.0, 1.0, c.num_experts > 0.0);
  let counts = stage_layer_counts(c, r, i);
  let layers = counts.layers;
  let moe = counts.moe;
  let dense = counts.dense;
  let mtp = counts.mtp;
  let output = counts.output;
  let all_layers = layers + mtp;
  let moe_like = moe + mtp * has_moe;
  let mtp_moe = select(0, 1, has_moe == 1.0);

  let s = r.seq_length / r.cp;
  let b = r.mbs;
  let tokens = b * s;
  let mtp_projection = 3.0 * gemm_s(c, tokens, h / tp, 2.0 * h, c.fp8_linear);
  let linear_dense = layer_linear_s(c, 0, tokens, tp, r.ep, r.etp);
  let linear_moe = layer_linear_s(c, 1, tokens, tp, r.ep, r.etp);
  let linear_mtp = select(linear_dense, linear_moe, has_moe == 1.0);
  let linear = dense * linear_dense + moe * linear_moe + mtp * (linear_mtp + mtp_projection);
  let logits = output * (1.0 + c.mtp_num_layers) * 3.0 * gemm_s(c, tokens, padded_vocab(c, tp) / tp, h, 0.0);
  let core_fwd = select(attention_core_fwd_s(c, s, r.seq_length, b, tp),
                        attention_core_fwd_s(c, r.seq_length, r.seq_length, b, tp * r.cp), c.cp_comm == CP_COMM_A2A);
  let core = all_layers * core_fwd * (1.0 + attention_backward_ratio(c));
  let act_dense = layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  let act_moe = layer_activation_bytes(c, 1, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  let memory_bytes = c.memory_passes * (dense * act_dense + moe_like * act_moe + (mtp - mtp * has_moe) * act_dense);
  let elementwise = memory_bytes / c.hbm_bytes_s;
  let core_bytes = act_dense - layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_SELECTIVE);
  var repeated = 0.0;
  if (r.recompute == RECOMPUTE_FULL) {
    repeated = linear / 3.0 + all_layers * core_fwd + elementwise / 3.0;
  } else if (r.recompute == RECOMPUTE_SELECTIVE) {
    repeated = all_layers * (core_fwd + (c.memory_passes * core_bytes) / (3.0 * c.hbm_bytes_s));
  } else if (r.recompute == RECOMPUTE_SELECTIVE_OP) {
    repeated = (dense * op_recompute_share(c, 0) * linear_dense +
                moe * op_recompute_share(c, 1) * linear_moe +
                mtp * op_recompute_share(c, mtp_moe) * linear_mtp) /
                 3.0 +
               elementwise / 3.0;
  }
  let compute_s = linear + logits + core + elementwise + repeated;

  let tp_in_node = group_in_node(c, tp, 1.0);
  let tp_message = 2.0 * b * s * h;
  let forward_passes = select(select(1.0, 1.5, r.recompute == RECOMPUTE_SELECTIVE_OP), 2.0, r.recompute == RECOMPUTE_FULL);
  let tp_count =
    (dense * layer_tp_collectives(c, 0) + moe * layer_tp_collectives(c, 1) + mtp * layer_tp_collectives(c, mtp_moe)) *
    (1.0 + forward_passes);
  let tp_total_s = tp_count * allreduce_s(c, tp_message, tp, tp_in_node, group_per_node(c, tp, 1.0));
  let tp_collective_s = allreduce_s(c, tp_message, tp, tp_in_node, group_per_node(c, tp, 1.0)) / 2.0;
  let tp_overlapped_s =
    dense * layer_tp_exposed_s(c, 0, tokens, tp, r.ep, r.etp, tp_collective_s, forward_passes) +
    moe * layer_tp_exposed_s(c, 1, tokens, tp, r.ep, r.etp, tp_collective_s, forward_passes) +
    mtp * layer_tp_exposed_s(c, mtp_moe, tokens, tp, r.ep, r.etp, tp_collective_s, forward_passes);
  // The overlap needs the TP group inside one NVLink domain (src/model.ts).
  let tp_overlap = c.tp_comm_overlap == 1.0 && tp > 1.0 && r.sp == 1 && tp_in_node == 1.0;
  let tp_s = paid_s(c, tp_total_s, select(tp_total_s, min(tp_total_s, tp_overlapped_s), tp_overlap));
  let tp_bytes = select(0.0, tp_count * ((2.0 * (tp - 1.0)) / tp) * tp_message, tp > 1.0);

  let t_rep = select(1.0, tp, r.sp == 1);
  let ep_message = (2.0 * b * s * c.moe_k * c.capacity_factor * h) / t_rep;
  let etp_in_node = group_in_node(c, r.etp, 1.0);
  let ep_split = ep_dispatch_bytes(c, ep_message, r.ep, r.etp);
  let ep_total_s =
    4.0 * moe_like * ep_alltoall_s(c, ep_split, r.ep, r.etp) +
    4.0 * moe_like * gather_s(c, r.etp * ep_message, r.etp, etp_in_node, group_per_node(c, r.etp, 1.0));
  let ep_s = paid_s(c, ep_total_s, select(ep_total_s, max(0.0, ep_total_s - compute_s), c.moe_a2a_overlap == 1.0));
  let ep_bytes = 4.0 * moe_like * (ep_split.x + ep_split.y) + select(0.0, 4.0 * moe_like * (r.etp - 1.0) * ep_message, r.etp > 1.0);

  let kv_dim = key_width(c) + value_width(c);
  let q_dim = query_width(c);
  let o_dim = output_width(c);
  let cp_in_node = group_in_node(c, r.cp, tp);
  let cp_per_node = group_per_node(c, r.cp, tp);
  let kv_chunk = (2.0 * b * s * kv_dim) / tp;
  let cp_qkv_message = (2.0 * b * s * (q_dim + kv_dim)) / tp;
  let cp_out_message = (2.0 * b * s * o_dim) / tp;
  let forward_rings = select(1.0, 2.0, r.recompute == RECOMPUTE_FULL);
  var cp_total_s = 0.0;
  var cp_exposed_s = 0.0;
  if (r.cp > 1.0 && c.cp_comm == CP_COMM_A2A) {
    cp_total_s = all_layers * (forward_rings + 1.0) *
      (alltoall_s(c, cp_qkv_message, r.cp, tp) + alltoall_s(c, cp_out_message, r.cp, tp));
    cp_exposed_s = cp_total_s;
  } else if (r.cp > 1.0 && c.cp_comm == CP_COMM_ALL_GATHER) {
    cp_total_s =
      all_layers * (forward_rings * gather_s(c, r.cp * kv_chunk, r.cp, cp_in_node, cp_per_node) +
                    gather_s(c, r.cp * kv_chunk, r.cp, cp_in_node, cp_per_node));
    cp_exposed_s = cp_total_s;
  } else if (r.cp > 1.0) {
    let step_fwd_s = core_fwd / r.cp;
    let step_bwd_s = (attention_backward_ratio(c) * core_fwd) / r.cp;
    let steps = all_layers * (r.cp - 1.0);
    cp_total_s = steps * (forward_rings * send_s(c, kv_chunk, cp_in_node) + send_s(c, 2.0 * kv_chunk, cp_in_node));
    cp_exposed_s = paid_s(
      c,
      cp_total_s,
      steps *
        (forward_rings * max(0.0, send_s(c, kv_chunk, cp_in_node) - step_fwd_s) +
          max(0.0, send_s(c, 2.0 * kv_chunk, cp_in_node) - step_bwd_s)));
  }
  var cp_bytes = 0.0;
  if (r.cp > 1.0 && c.cp_comm == CP_COMM_A2A) {
    cp_bytes = all_layers * (forward_rings + 1.0) * ((r.cp - 1.0) / r.cp) * (cp_qkv_message + cp_out_message);
  } else if (r.cp > 1.0) {
    cp_bytes = all_layers * (r.cp - 1.0) * select(forward_rings + 2.0, forward_rings + 1.0, c.cp_comm == CP_COMM_ALL_GATHER) * kv_chunk;
  }

  let pp_in_node = group_in_node(c, pp, tp * r.cp * r.dp);
  let pp_message = (2.0 * b * s * h) / tp;
  let pp_total_s = select(0.0, 2.0 * r.vpp * send_s(c, pp_message, pp_in_node), pp > 1.0);
  let pp_s = paid_s(c, pp_total_s,
    select(pp_total_s, max(0.0, pp_total_s - compute_s), c.overlap_p2p_comm == 1.0 && schedule_overlaps_p2p(r.schedule) == 1.0));
  let pp_bytes = select(0.0, 2.0 * r.vpp * pp_message, pp > 1.0);

  let params = stage_params(c, r, i);
  let dense_params = params.x;
  let expert_params = params.y;
  return StageMicrobatch(compute_s, tp_total_s, tp_s, tp_bytes, ep_total_s, ep_s, ep_bytes, cp_total_s, cp_exposed_s,
                         cp_bytes, pp_total_s, pp_s, pp_bytes, dense_params, expert_params);
}

fn stage_time(c: FullConstants, r: FullRow, i: f32, mb: StageMicrobatch) -> StageTime {
  let tp = r.tp;
  let pp = r.pp;
  let compute_s = mb.compute_s;
  let tp_total_s = mb.tp_total_s;
  let tp_s = mb.tp_s;
  let tp_bytes = mb.tp_bytes;
  let ep_total_s = mb.ep_total_s;
  let ep_s = mb.ep_s;
  let ep_bytes = mb.ep_bytes;
  let cp_total_s = mb.cp_total_s;
  let cp_exposed_s = mb.cp_exposed_s;
  let cp_bytes = mb.cp_bytes;
  let pp_total_s = mb.pp_total_s;
  let pp_s = mb.pp_s;
  let pp_bytes = mb.pp_bytes;
  let dense_params = mb.dense_params;
  let expert_params = mb.expert_params;
  let replicas = r.dp_replicas;
  let dense_group = (r.dp * r.cp) / replicas;
  let expert_group = r.edp / replicas;
  let dense_in_node = group_in_node(c, dense_group, tp);
  let expert_in_node = group_in_node(c, expert_group, r.etp * r.ep);
  let dense_per_node = group_per_node(c, dense_group, tp);
  let expert_per_node = group_per_node(c, expert_group, r.etp * r.ep);
  let dense_shard_grad_bytes = (dense_params * c.grad_bytes) / dense_group;
  let expert_shard_grad_bytes = (expert_params * c.grad_bytes) / expert_group;
  var grad_reduce_s: f32;
  var grad_reduce_bytes: f32;
  if (r.zero == 0) {
    grad_reduce_s = allreduce_s(c, dense_params * c.grad_bytes, dense_group, dense_in_node, dense_per_node) +
      allreduce_s(c, expert_params * c.grad_bytes, expert_group, expert_in_node, expert_per_node);
    grad_reduce_bytes =
      select(0.0, ((2.0 * (dense_group - 1.0)) / dense_group) * dense_params * c.grad_bytes, dense_group > 1.0) +
      select(0.0, ((2.0 * (expert_group - 1.0)) / expert_group) * expert_params * c.grad_bytes, expert_group > 1.0);
  } else {
    grad_reduce_s = gather_s(c, dense_params * c.grad_bytes, dense_group, dense_in_node, dense_per_node) +
      gather_s(c, expert_params * c.grad_bytes, expert_group, expert_in_node, expert_per_node) +
      replica_allreduce_s(c, r, dense_shard_grad_bytes, expert_shard_grad_bytes);
    grad_reduce_bytes =
      select(0.0, ((dense_group - 1.0) / dense_group) * dense_params * c.grad_bytes, dense_group > 1.0) +
      select(0.0, ((expert_group - 1.0) / expert_group) * expert_params * c.grad_bytes, expert_group > 1.0) +
      select(0.0, ((2.0 * (replicas - 1.0)) / replicas) * (dense_shard_grad_bytes + expert_shard_grad_bytes), replicas > 1.0);
  }
  let param_gather_s =
    gather_s(c, dense_params * c.param_bytes, dense_group, dense_in_node, dense_per_node) +
    gather_s(c, expert_params * c.param_bytes, expert_group, expert_in_node, expert_per_node);
  let param_gather_bytes =
    select(0.0, ((dense_group - 1.0) / dense_group) * dense_params * c.param_bytes, dense_group > 1.0) +
    select(0.0, ((expert_group - 1.0) / expert_group) * expert_params * c.param_bytes, expert_group > 1.0);
  let forward_window_s = select(0.0, compute_s / 3.0, c.overlap_param_gather == 1.0);
  let backward_window_s = select(0.0, (2.0 * compute_s) / 3.0, c.overlap_grad_reduce == 1.0);
  let grads_per_microbatch = select(0.0, 1.0, r.zero >= 2 && r.grad_reduce == GRAD_REDUCE_MICROBATCH);
  let gathers_per_microbatch = select(0.0, 1.0, r.zero >= 3 && (r.reshard == 1.0 || pp == 1.0));
  let layer_gather_s = zero3_layer_gather_s(c, r, c.param_bytes);
  let mb_forward_s = gathers_per_microbatch * param_gather_s;
  let mb_backward_s = select(0.0, r.reshard * param_gather_s, r.zero >= 3);
  let mb_reduce_s = grads_per_microbatch * grad_reduce_s;
  let gather_hold_s = select(
    mb_forward_s + mb_backward_s,
    min(mb_forward_s, max(0.0, mb_forward_s - forward_window_s) + gathers_per_microbatch * layer_gather_s) +
      max(0.0, mb_backward_s - (2.0 * compute_s) / 3.0),
    c.overlap_param_gather == 1.0);
  let dp_mb_total_s = mb_forward_s + mb_backward_s + mb_reduce_s;
  let dp_mb_s = paid_s(
    c,
    dp_mb_total_s,
    select(gather_hold_s + mb_reduce_s, max(gather_hold_s, dp_mb_total_s - compute_s), c.overlap_grad_reduce == 1.0));
  let dp_mb_bytes = select(0.0, (gathers_per_microbatch + r.reshard) * param_gather_bytes, r.zero >= 3) +
    grads_per_microbatch * grad_reduce_bytes;
  let step_gather = select(0.0, 1.0, r.zero == 1 || r.zero == 2 || (r.zero >= 3 && gathers_per_microbatch == 0.0));
  let step_forward_s = step_gather * param_gather_s;
  let step_backward_s = (1.0 - grads_per_microbatch) * grad_reduce_s;
  let last_reduce_s =
    grads_per_microbatch * c.overlap_grad_reduce * (zero3_layer_gather_s(c, r, c.grad_bytes) + zero3_layer_replica_reduce_s(c, r));
  let chunked = select(0.0, 1.0, r.schedule == SCHEDULE_INTERLEAVED && r.vpp > 1.0);
  var forward_exposed_s = max(0.0, step_forward_s - forward_window_s);
  if (chunked == 1.0 && c.overlap_param_gather == 1.0) {
    forward_exposed_s = interleaved_param_sync_exposed_s(step_forward_s, r.vpp, pp, compute_s / 3.0 / r.vpp);
  }
  var backward_exposed_s = max(0.0, step_backward_s - backward_window_s);
  if (chunked == 1.0 && c.overlap_grad_reduce == 1.0) {
    backward_exposed_s = interleaved_grad_sync_exposed_s(step_backward_s, r.vpp, pp, (2.0 * compute_s) / 3.0 / r.vpp);
  }
  let dp_exposed_s = paid_s(c, step_forward_s + step_backward_s + last_reduce_s, forward_exposed_s + backward_exposed_s + last_reduce_s);
  let dp_overlapped_s = step_forward_s + step_backward_s + last_reduce_s - dp_exposed_s;
  let dp_bytes = step_gather * param_gather_bytes + (1.0 - grads_per_microbatch) * grad_reduce_bytes;

  let state_shards_dense = select(1.0, dense_group, r.zero >= 1);
  let state_shards_expert = select(1.0, expert_group, r.zero >= 1);
  let local_params = dense_params / state_shards_dense + expert_params / state_shards_expert;
  let state_bytes = 2.0 * c.optimizer_state_bytes + c.master_bytes;
  let step_bytes = local_params * (c.grad_bytes + 2.0 * state_bytes + c.param_bytes);
  let optimizer_s = select(step_bytes / c.hbm_bytes_s, local_params / c.cpu_optimizer_params_s, r.offload == OFFLOAD_OPTIMIZER_CPU_STEP);
  var offload_s = 0.0;
  if (r.offload == OFFLOAD_OPTIMIZER) {
    offload_s = (2.0 * local_params * state_bytes) / c.pcie_bytes_s;
  } else if (r.offload == OFFLOAD_OPTIMIZER_CPU_STEP) {
    offload_s = (local_params * (c.grad_bytes + c.param_bytes)) / c.pcie_bytes_s;
  }
  let hidden_s = tp_total_s - tp_s + (ep_total_s - ep_s) + (cp_total_s - cp_exposed_s) + (pp_total_s - pp_s) +
    (dp_mb_total_s - dp_mb_s);
  return StageTime(compute_s, tp_s, ep_s, cp_exposed_s, pp_s, dp_mb_s, hidden_s, tp_bytes, ep_bytes, cp_bytes, pp_bytes,
                   dp_mb_bytes, dp_exposed_s, dp_overlapped_s, dp_bytes, optimizer_s, offload_s);
}

fn microbatch_s(t: StageTime) -> f32 {
  return t.compute_s + t.tp_s + t.ep_s + t.cp_exposed_s + t.pp_s + t.dp_mb_s;
}

struct StageTail {
  dp_exposed_s: f32,
  dp_overlapped_s: f32,
  dp_bytes: f32,
  optimizer_s: f32,
  offload_s: f32,
}

fn stage_tail(t: StageTime) -> StageTail {
  return StageTail(t.dp_exposed_s, t.dp_overlapped_s, t.dp_bytes, t.optimizer_s, t.offload_s);
}

fn max_tail(a: StageTail, b: StageTail) -> StageTail {
  if (a.dp_exposed_s + a.optimizer_s + a.offload_s >= b.dp_exposed_s + b.optimizer_s + b.offload_s) { return a; }
  return b;
}

const PACE_TIE_RTOL: f32 = 1e-4;

fn last_distinct_rank(r: FullRow) -> f32 {
  return select(r.pp - 1.0, r.pp / 2.0 - 1.0, r.schedule == SCHEDULE_DUALPIPE);
}

fn same_as_previous_middle(c: FullConstants, r: FullRow, i: f32) -> bool {
  if (i <= 1.0 || i >= last_distinct_rank(r)) { return false; }
  let k = stage_layer_counts(c, r, i);
  let before = stage_layer_counts(c, r, i - 1.0);
  return k.moe == before.moe && k.dense == before.dense;
}

fn pipeline_bubble_s(pp: f32, vpp: f32, schedule: i32, microbatch: f32) -> f32 {
  if (pp == 1.0) { return 0.0; }
  if (schedule == SCHEDULE_ZB_H1) { return ((pp - 1.0) * microbatch) / 3.0; }
  if (schedule == SCHEDULE_DUALPIPE) { return ((pp / 2.0 - 1.0) * microbatch) / 3.0; }
  if (schedule == SCHEDULE_INTERLEAVED) { return ((pp - 1.0) / vpp) * microbatch; }
  return (pp - 1.0) * microbatch;
}

fn microbatch_passes(schedule: i32, m: f32) -> f32 {
  return select(m, m / 2.0, schedule == SCHEDULE_DUALPIPE);
}

// Where full_estimate gets each stage's memory and time and the model's totals, as TermSource in src/model.ts:
// computed afresh (terms_table false), or read from the per-class table that shaders/terms.wgsl wrote into the grid buffer
// at word `terms` (the rows of one layout class share it; src/engine/gpu/gpu.ts lays it out). `grid` is the
// entry point's binding. A block per (SP, recompute) holds TERMS_HEADER words (model_params twice,
// model_flops_per_token twice), then TERMS_PER_RANK words per pipeline rank: the skip flag, the StageMemoryBase
// and the StageMicrobatch fields in declaration order.
// A pipeline with terms_table false computes every row's terms directly (rows of a class whose table does not fit
// in the buffer); as an override, the branch is settled when the pipeline is built, not in every row.
override terms_table: bool = true;
const TERMS_HEADER: u32 = 4u;
const TERMS_PER_RANK: u32 = 22u;
const RECOMPUTE_SLOTS: i32 = 4;

fn terms_block(r: FullRow, terms: i32) -> u32 {
  return u32(terms) + u32(r.sp * RECOMPUTE_SLOTS + r.recompute) * (TERMS_HEADER + TERMS_PER_RANK * u32(r.pp));
}

fn terms_word(k: u32) -> f32 {
  return bitcast<f32>(grid[k]);
}

fn terms_rank(r: FullRow, i: f32, terms: i32) -> u32 {
  return terms_block(r, terms) + TERMS_HEADER + TERMS_PER_RANK * u32(i);
}

fn terms_memory(c: FullConstants, r: FullRow, i: f32, terms: i32) -> StageMemory {
  if (!terms_table) { return stage_memory(c, r, i, stage_memory_base(c, r, i)); }
  let k = terms_rank(r, i, terms) + 1u;
  let base = StageMemoryBase(terms_word(k), terms_word(k + 1u), terms_word(k + 2u), terms_word(k + 3u), terms_word(k + 4u),
                             terms_word(k + 5u));
  return stage_memory(c, r, i, base);
}

fn terms_time(c: FullConstants, r: FullRow, i: f32, terms: i32) -> StageTime {
  if (!terms_table) { return stage_time(c, r, i, stage_microbatch(c, r, i)); }
  let k = terms_rank(r, i, terms) + 7u;
  let mb = StageMicrobatch(terms_word(k), terms_word(k + 1u), terms_word(k + 2u), terms_word(k + 3u), terms_word(k + 4u),
                           terms_word(k + 5u), terms_word(k + 6u), terms_word(k + 7u), terms_word(k + 8u), terms_word(k + 9u),
                           terms_word(k + 10u), terms_word(k + 11u), terms_word(k + 12u), terms_word(k + 13u),
                           terms_word(k + 14u));
  return stage_time(c, r, i, mb);
}

fn terms_same_as_previous_middle(c: FullConstants, r: FullRow, i: f32, terms: i32) -> bool {
  if (!terms_table) { return same_as_previous_middle(c, r, i); }
  return grid[terms_rank(r, i, terms)] != 0;
}

fn terms_model_params(c: FullConstants, tp: f32, seq_length: f32, active_only: i32, r: FullRow, terms: i32) -> f32 {
  if (!terms_table) { return model_params(c, tp, seq_length, active_only); }
  return terms_word(terms_block(r, terms) + u32(active_only));
}

fn terms_model_flops_per_token(c: FullConstants, tp: f32, seq_length: f32, recompute: i32, hardware: f32, r: FullRow,
                               terms: i32) -> f32 {
  if (!terms_table) { return model_flops_per_token(c, tp, seq_length, recompute, hardware); }
  return terms_word(terms_block(r, terms) + 2u + u32(hardware));
}

struct StepPace {
  slowest: StageTime,
  tail: StageTail,
}

fn step_pace(c: FullConstants, r: FullRow, terms: i32) -> StepPace {
  var slowest = terms_time(c, r, 0.0, terms);
  var tail = stage_tail(slowest);
  let last = last_distinct_rank(r);
  for (var i = 1.0; i <= last; i += 1.0) {
    if (terms_same_as_previous_middle(c, r, i, terms)) { continue; }
    let time = terms_time(c, r, i, terms);
    if (microbatch_s(time) > microbatch_s(slowest) * (1.0 + PACE_TIE_RTOL)) { slowest = time; }
    tail = max_tail(tail, stage_tail(time));
  }
  return StepPace(slowest, tail);
}

fn full_estimate(c: FullConstants, ngpus: i32, seq_length: i32, global_batch_size: i32, tp: i32, pp: i32, vpp: i32,
                 schedule: i32, cp: i32, ep: i32, etp: i32, dp: i32, edp: i32, zero: i32, sp: i32, recompute: i32,
                 offload: i32, mbs: i32, num_microbatches: i32, first_stage_layers: i32, last_stage_layers: i32,
                 grad_reduce: i32, reshard: i32, dp_replicas: i32, terms: i32) -> FullOutputs {
  let r = FullRow(f32(ngpus), f32(seq_length), f32(global_batch_size), f32(tp), f32(pp), f32(vpp), schedule, f32(cp),
                  f32(ep), f32(etp), f32(dp), f32(edp), zero, sp, recompute, offload, f32(mbs), f32(num_microbatches),
                  f32(first_stage_layers), f32(last_stage_layers), grad_reduce, f32(reshard), f32(dp_replicas));
  var heaviest = terms_memory(c, r, 0.0, terms);
  var heaviest_stage = 0.0;
  let last = last_distinct_rank(r);
  for (var i = 1.0; i <= last; i += 1.0) {
    if (terms_same_as_previous_middle(c, r, i, terms)) { continue; }
    let memory = terms_memory(c, r, i, terms);
    if (memory.total > heaviest.total) {
      heaviest = memory;
      heaviest_stage = i;
    }
  }
  let pace = step_pace(c, r, terms);
  let slowest = pace.slowest;
  let tail = pace.tail;
  let total_gib = heaviest.total / GIB;
  var out: FullOutputs;
  out.params_total = terms_model_params(c, r.tp, r.seq_length, 0, r, terms);
  out.params_active = terms_model_params(c, r.tp, r.seq_length, 1, r, terms);
  out.params_gpu = heaviest.params_gpu;
  out.weights_gib = heaviest.weights / GIB;
  out.grads_gib = heaviest.grads / GIB;
  out.optimizer_gib = heaviest.optimizer / GIB;
  out.activations_gib = heaviest.activations / GIB;
  out.logits_gib = heaviest.logits / GIB;
  out.total_gib = total_gib;
  out.offloaded_gib = heaviest.offloaded / GIB;
  out.heaviest_stage = heaviest_stage;
  out.inflight_microbatches = heaviest.inflight;
  out.fits = select(0.0, 1.0, total_gib * (1.0 + c.headroom) <= c.memory_gib);

  let m = microbatch_passes(r.schedule, r.num_microbatches);
  let microbatch = microbatch_s(slowest);
  let bubble_s = pipeline_bubble_s(r.pp, r.vpp, r.schedule, microbatch);
  let step_time_s = m * microbatch + bubble_s + tail.dp_exposed_s + tail.optimizer_s + tail.offload_s;
  let tokens = r.global_batch_size * r.seq_length;
  let cluster_peak = r.ngpus * c.peak_flops;
  out.step_time_s = step_time_s;
  out.tokens_per_s = tokens / step_time_s;
  out.tokens_per_s_per_gpu = tokens / step_time_s / r.ngpus;
  out.mfu = (terms_model_flops_per_token(c, r.tp, r.seq_length, r.recompute, 0.0, r, terms) * tokens) / (step_time_s * cluster_peak);
  out.hfu = (terms_model_flops_per_token(c, r.tp, r.seq_length, r.recompute, 1.0, r, terms) * tokens) / (step_time_s * cluster_peak);
  out.compute_s = m * slowest.compute_s;
  out.tp_comm_s = m * slowest.tp_s;
  out.pp_comm_s = m * slowest.pp_s;
  out.dp_comm_s = m * slowest.dp_mb_s + tail.dp_exposed_s;
  out.ep_comm_s = m * slowest.ep_s;
  out.cp_comm_s = m * slowest.cp_exposed_s;
  out.bubble_s = bubble_s;
  out.optimizer_s = tail.optimizer_s;
  out.offload_s = tail.offload_s;
  out.exposed_comm_s = m * (slowest.tp_s + slowest.pp_s + slowest.ep_s + slowest.cp_exposed_s + slowest.dp_mb_s) + tail.dp_exposed_s;
  out.overlapped_comm_s = m * slowest.hidden_s + tail.dp_overlapped_s;
  out.tp_bytes = m * slowest.tp_bytes;
  out.pp_bytes = m * slowest.pp_bytes;
  out.dp_bytes = m * slowest.dp_mb_bytes + tail.dp_bytes;
  out.ep_bytes = m * slowest.ep_bytes;
  out.cp_bytes = m * slowest.cp_bytes;
  return out;
}
