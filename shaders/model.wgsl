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
  mtp_num_layers: f32,
  param_bytes: f32,
  grad_bytes: f32,
  optimizer_state_bytes: f32,
  master_bytes: f32,
  flash_attention: f32,
  memory_gib: f32,
  headroom: f32,
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
}

const SCHEDULE_1F1B: i32 = 0;
const SCHEDULE_INTERLEAVED: i32 = 1;
const SCHEDULE_GPIPE: i32 = 2;
const RECOMPUTE_NONE: i32 = 0;
const RECOMPUTE_SELECTIVE: i32 = 1;
const RECOMPUTE_FULL: i32 = 2;
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

fn mlp_params(c: FullConstants, f: f32) -> f32 {
  let h = c.hidden_size;
  let matrices = select(2.0, 3.0, c.gated_mlp == 1.0);
  return matrices * h * f + c.bias * ((matrices - 1.0) * f + h);
}

fn moe_layers_before(c: FullConstants, x: f32) -> f32 {
  if (c.num_experts == 0.0) { return 0.0; }
  return floor(max(0.0, x - c.first_k_dense_layers) * c.moe_layer_freq);
}

fn stage_first_layer(c: FullConstants, pp: f32, i: f32) -> f32 {
  let base = floor(c.num_layers / pp);
  let extra = c.num_layers - base * pp;
  if (i == 0.0) { return 0.0; }
  return i * base + min(i - 1.0, extra);
}

fn stage_layers(c: FullConstants, pp: f32, i: f32) -> f32 {
  let end = select(stage_first_layer(c, pp, i + 1.0), c.num_layers, i == pp - 1.0);
  return end - stage_first_layer(c, pp, i);
}

fn inflight_microbatches(pp: f32, vpp: f32, schedule: i32, m: f32, i: f32) -> f32 {
  if (pp == 1.0) { return 1.0; }
  if (schedule == SCHEDULE_GPIPE) { return m; }
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

  let q_dim = select(a * c.kv_channels, a * (c.qk_head_dim + c.qk_pos_emb_head_dim), c.mla == 1.0);
  let k_dim = select(c.num_query_groups * c.kv_channels, q_dim, c.mla == 1.0);
  let v_dim = select(c.num_query_groups * c.kv_channels, a * c.v_head_dim, c.mla == 1.0);
  let o_dim = select(a * c.kv_channels, a * c.v_head_dim, c.mla == 1.0);

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
    let experts = routed_tokens * (2.0 * h + (2.0 * act_width * f_e) / etp + (2.0 * f_e) / etp + 2.0 * h);
    let f_s = c.shared_expert_ffn_hidden_size * c.num_shared_experts;
    let shared_experts = (s * b * (2.0 * act_width * f_s + 2.0 * f_s)) / tp;
    mlp = mlp_norm_input + fc1_input + router_probs + experts + shared_experts + mlp_dropout_mask;
  } else {
    let f = c.ffn_hidden_size;
    mlp = mlp_norm_input + fc1_input + (s * b * (2.0 * act_width * f + 2.0 * f)) / tp + mlp_dropout_mask;
  }
  return attention + mlp;
}

fn stage_memory(c: FullConstants, r: FullRow, i: f32) -> StageMemory {
  let h = c.hidden_size;
  let tp = r.tp;
  let pp = r.pp;
  let vocab = padded_vocab(c, tp);
  let has_moe = select(0.0, 1.0, c.num_experts > 0.0);
  let is_first = select(0.0, 1.0, i == 0.0);
  let is_last = select(0.0, 1.0, i == pp - 1.0);

  let first_layer = stage_first_layer(c, pp, i);
  let layers = stage_layers(c, pp, i);
  let moe = moe_layers_before(c, first_layer + layers) - moe_layers_before(c, first_layer);
  let dense = layers - moe;
  let mtp = is_last * c.mtp_num_layers;

  let norm = c.norm_params * h;
  let attention_gpu = attention_params(c) / tp;
  let dense_layer_gpu = attention_gpu + mlp_params(c, c.ffn_hidden_size) / tp + 2.0 * norm;
  let moe_layer_dense_gpu =
    attention_gpu + 2.0 * norm + h * c.num_experts + (c.num_shared_experts * mlp_params(c, c.shared_expert_ffn_hidden_size)) / tp;
  let expert_layer_gpu = ((c.num_experts / r.ep) * mlp_params(c, c.moe_ffn_hidden_size)) / r.etp;
  let embedding_gpu = (vocab * h) / tp + c.learned_positions * r.seq_length * h;
  let output_gpu = select(0.0, (vocab * h) / tp, c.untied_embeddings == 1.0 || pp > 1.0);
  let mtp_dense_gpu = select(dense_layer_gpu, moe_layer_dense_gpu, has_moe == 1.0) + (2.0 * h * h) / tp + 2.0 * norm;
  let dense_params =
    dense * dense_layer_gpu +
    moe * moe_layer_dense_gpu +
    is_first * embedding_gpu +
    is_last * (norm + output_gpu) +
    mtp * mtp_dense_gpu;
  let expert_params = (moe + mtp * has_moe) * expert_layer_gpu;

  let dense_shards = r.dp * r.cp;
  let expert_shards = r.edp;
  let weight_shards_dense = select(1.0, dense_shards, r.zero >= 3);
  let weight_shards_expert = select(1.0, expert_shards, r.zero >= 3);
  let grad_shards_dense = select(1.0, dense_shards, r.zero >= 2);
  let grad_shards_expert = select(1.0, expert_shards, r.zero >= 2);
  let state_shards_dense = select(1.0, dense_shards, r.zero >= 1);
  let state_shards_expert = select(1.0, expert_shards, r.zero >= 1);
  let largest_layer_gpu = max(dense_layer_gpu, has_moe * (moe_layer_dense_gpu + expert_layer_gpu));
  let zero3_gathered = select(0.0, 2.0 * largest_layer_gpu * c.param_bytes, r.zero >= 3);
  let weights =
    (dense_params * c.param_bytes) / weight_shards_dense + (expert_params * c.param_bytes) / weight_shards_expert + zero3_gathered;
  let grads = (dense_params * c.grad_bytes) / grad_shards_dense + (expert_params * c.grad_bytes) / grad_shards_expert;
  let state_bytes = 2.0 * c.optimizer_state_bytes + c.master_bytes;
  let optimizer_all = (dense_params * state_bytes) / state_shards_dense + (expert_params * state_bytes) / state_shards_expert;
  let optimizer = select(0.0, optimizer_all, r.offload == OFFLOAD_NONE);
  let offloaded = select(optimizer_all, 0.0, r.offload == OFFLOAD_NONE);

  let s = r.seq_length / r.cp;
  let b = r.mbs;
  let t_rep = select(1.0, tp, r.sp == 1);
  let dense_layer_act = layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, r.recompute);
  let moe_layer_act = layer_activation_bytes(c, 1, s, r.seq_length, b, tp, r.sp, r.etp, r.recompute);
  let mtp_layer_act = select(dense_layer_act, moe_layer_act, has_moe == 1.0);
  let embedding_act = is_first * ((8.0 * s * b + c.dropout * s * b * h) / t_rep);
  let microbatch_act = dense * dense_layer_act + moe * moe_layer_act + mtp * mtp_layer_act + embedding_act;
  let inflight = inflight_microbatches(pp, r.vpp, r.schedule, r.num_microbatches, i);
  let rebuilt_dense = layer_activation_bytes(c, 0, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  let rebuilt_moe = layer_activation_bytes(c, 1, s, r.seq_length, b, tp, r.sp, r.etp, RECOMPUTE_NONE);
  let rebuilt = select(0.0, max(select(0.0, rebuilt_dense, dense > 0.0), select(0.0, rebuilt_moe, moe > 0.0)),
                       r.recompute == RECOMPUTE_FULL);
  let activations = inflight * microbatch_act + rebuilt;
  let logits = is_last * (1.0 + c.mtp_num_layers) * ((4.0 * s * b * h) / t_rep + (4.0 * s * b * vocab) / tp);

  let forward_backward = weights + grads + optimizer + activations + logits;
  let step = select(0.0, weights + grads + optimizer_all, r.offload == OFFLOAD_OPTIMIZER);
  let total = max(forward_backward, step);
  return StageMemory(dense_params + expert_params, weights, grads, optimizer, activations, logits, total, offloaded, inflight);
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

fn full_estimate(c: FullConstants, ngpus: i32, seq_length: i32, global_batch_size: i32, tp: i32, pp: i32, vpp: i32,
                 schedule: i32, cp: i32, ep: i32, etp: i32, dp: i32, edp: i32, zero: i32, sp: i32, recompute: i32,
                 offload: i32, mbs: i32, num_microbatches: i32) -> FullOutputs {
  let r = FullRow(f32(ngpus), f32(seq_length), f32(global_batch_size), f32(tp), f32(pp), f32(vpp), schedule, f32(cp),
                  f32(ep), f32(etp), f32(dp), f32(edp), zero, sp, recompute, offload, f32(mbs), f32(num_microbatches));
  var heaviest = stage_memory(c, r, 0.0);
  var heaviest_stage = 0.0;
  if (r.pp > 2.0) {
    let second = stage_memory(c, r, 1.0);
    if (second.total > heaviest.total) {
      heaviest = second;
      heaviest_stage = 1.0;
    }
  }
  if (r.pp > 1.0) {
    let last = stage_memory(c, r, r.pp - 1.0);
    if (last.total > heaviest.total) {
      heaviest = last;
      heaviest_stage = r.pp - 1.0;
    }
  }
  let total_gib = heaviest.total / GIB;
  var out: FullOutputs;
  out.params_total = model_params(c, r.tp, r.seq_length, 0);
  out.params_active = model_params(c, r.tp, r.seq_length, 1);
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
  return out;
}
