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
