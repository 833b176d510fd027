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
