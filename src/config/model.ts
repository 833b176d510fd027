import { InputError } from '../errors.js';
import { FieldSpec, Plain, validate } from './schema.js';

/** Activation function of the MLP. swiglu/geglu/glu are gated (three matrices); gelu/relu are not (two). */
export const ACTIVATIONS = ['swiglu', 'geglu', 'glu', 'gelu', 'relu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** Storage dtypes. fp16/bf16/fp32 are accepted as short aliases of the PoC's names. */
export const DTYPES = ['float32', 'float16', 'bfloat16', 'fp8'] as const;
export type Dtype = (typeof DTYPES)[number];
const DTYPE_ALIASES: Record<string, Dtype> = { fp32: 'float32', fp16: 'float16', bf16: 'bfloat16', float8: 'fp8' };
export const DTYPE_BYTES: Record<Dtype, number> = { float32: 4, float16: 2, bfloat16: 2, fp8: 1 };

/** The PoC's sharding strategies are ZeRO stages 0..3, in this order. */
export const SHARD_STRATEGIES = ['NO_OP', 'OPTIMIZER_STATES', 'OPTIMIZER_STATES_AND_GRADS', 'FULLY_SHARD'] as const;
export type ShardStrategy = (typeof SHARD_STRATEGIES)[number];

export interface MoeConfig {
  num_experts: number;
  k: number;
  /** Fraction of layers that are MoE layers (the PoC's semantics). */
  expert_frequency: number;
  /** Expected load of the busiest expert relative to a perfectly balanced router (capacity factor). */
  token_imbalance_hypothesis: number;
  /** FFN size of one routed expert; defaults to model.ffn_hidden_size. */
  ffn_hidden_size?: number;
  first_k_dense_layers: number;
  num_shared_experts: number;
  /** FFN size of one shared expert; defaults to the routed expert's size. */
  shared_expert_ffn_hidden_size?: number;
  /**
   * Group-limited routing (DeepSeek-V2's device-limited and V3's node-limited routing; Megatron-Core's
   * --moe-router-num-groups and --moe-router-group-topk): the experts form router_num_groups groups and each token
   * picks its experts from router_group_topk of them. 1 and 1: no limit.
   */
  router_num_groups: number;
  router_group_topk: number;
}

export interface MlaConfig {
  /** 0 means queries are not low-rank compressed. */
  q_lora_rank: number;
  kv_lora_rank: number;
  qk_head_dim: number;
  qk_pos_emb_head_dim: number;
  v_head_dim: number;
}

export interface ModelConfig {
  name: string;
  global_batch_size: number;
  micro_batch_size: number;
  vocab_size: number;
  num_layers: number;
  hidden_size: number;
  ffn_hidden_size: number;
  num_attention_heads?: number;
  num_key_value_heads?: number;
  kv_channels?: number;
  seq_length: number;
  activation: Activation;
  share_embeddings_and_output_weights: boolean;
  normalization: 'rmsnorm' | 'layernorm';
  position_embedding_type: 'rope' | 'learned_absolute';
  make_vocab_size_divisible_by: number;
  add_bias_linear: boolean;
  /** Whether dropout masks are stored (Megatron's default 0.1 dropout); Llama-style models train without. */
  dropout: boolean;
  moe?: MoeConfig;
  mla?: MlaConfig;
  mtp_num_layers: number;
}

export interface TrainerConfig {
  data_parallel_sharding_strategy: ShardStrategy;
  param_dtype: Dtype;
  /**
   * The dtype the non-FP8 matmuls run in when it is not the parameters' (autocast over fp32 parameters, as
   * Lightning's bf16-mixed and FSDP with MixedPrecision(param_dtype=float32) do); absent: param_dtype.
   */
  compute_dtype?: Exclude<Dtype, 'fp8'>;
  grad_dtype: Dtype;
  optimizer_state_dtype: Dtype;
  master_weights: boolean;
  /** Master weights' dtype: float32 normally, bfloat16 with fp8 weights. */
  master_dtype: Dtype;
  flash_attention: boolean;
  /** How the stack runs the step (docs/time-model.md, section 3); defaults are Megatron-Core's on H100. */
  fp8: boolean;
  tp_comm_overlap: boolean;
  overlap_grad_reduce: boolean;
  overlap_param_gather: boolean;
  overlap_p2p_comm: boolean;
  moe_a2a_overlap: boolean;
  moe_dedup_dispatch: boolean;
  cp_comm_type: CpCommType;
  attention_kernel: AttentionKernel;
  torch_compile: boolean;
}

export const ATTENTION_KERNELS = ['fused', 'fa2', 'triton'] as const;
export type AttentionKernel = (typeof ATTENTION_KERNELS)[number];

// In the order of the model's CP_COMM_* codes (src/model.ts).
export const CP_COMM_TYPES = ['p2p', 'all_gather', 'a2a'] as const;
export type CpCommType = (typeof CP_COMM_TYPES)[number];

/**
 * Bounds on model sizes. Every integer the GPU reads must be exact in f32 (a 24-bit significand: integers up to
 * 2^24, IEEE 754 binary32), and no product the model forms may overflow f32 (3.4e38): with hidden 2^20, layers
 * 2^16, sequence and batch 2^24, the largest term (attention FLOPs per step, ~seq^2 x hidden x layers x batch)
 * stays near 2^110, well inside it. Each bound is still 30x or more beyond any published model.
 */
export const MAX_EXACT_F32_INT = 2 ** 24;
const MAX_WIDTH = 2 ** 20;
const MAX_COUNT = 2 ** 16;

const positiveInt = (extra: Partial<{ optional: boolean; default: number; max: number }> = {}): FieldSpec => ({
  kind: 'int',
  min: 1,
  max: MAX_EXACT_F32_INT,
  ...extra,
});
const dtype = (fallback: Dtype): FieldSpec => ({ kind: 'enum', values: DTYPES, aliases: DTYPE_ALIASES, default: fallback });

export const MODEL_SPEC: FieldSpec = {
  kind: 'object',
  fields: {
    name: { kind: 'string' },
    global_batch_size: positiveInt(),
    micro_batch_size: positiveInt({ default: 1, max: MAX_COUNT }),
    vocab_size: positiveInt(),
    num_layers: positiveInt({ max: MAX_COUNT }),
    hidden_size: positiveInt({ max: MAX_WIDTH }),
    ffn_hidden_size: positiveInt({ max: 4 * MAX_WIDTH }),
    num_attention_heads: positiveInt({ optional: true, max: MAX_COUNT }),
    num_key_value_heads: positiveInt({ optional: true, max: MAX_COUNT }),
    kv_channels: positiveInt({ optional: true, max: MAX_COUNT }),
    seq_length: positiveInt(),
    activation: { kind: 'enum', values: ACTIVATIONS },
    // The PoC treats a missing key as tied embeddings; so do we.
    share_embeddings_and_output_weights: { kind: 'bool', default: true },
    normalization: { kind: 'enum', values: ['rmsnorm', 'layernorm'], default: 'rmsnorm' },
    position_embedding_type: { kind: 'enum', values: ['rope', 'learned_absolute'], default: 'rope' },
    make_vocab_size_divisible_by: positiveInt({ default: 128 }),
    add_bias_linear: { kind: 'bool', default: false },
    dropout: { kind: 'bool', default: true },
    moe: {
      kind: 'object',
      optional: true,
      fields: {
        num_experts: { kind: 'int', min: 0, max: MAX_COUNT },
        k: { kind: 'int', min: 0, max: MAX_COUNT },
        expert_frequency: { kind: 'number', min: 0, max: 1 },
        token_imbalance_hypothesis: { kind: 'number', exclusiveMin: 0, max: MAX_COUNT, default: 1.0 },
        ffn_hidden_size: positiveInt({ optional: true, max: 4 * MAX_WIDTH }),
        first_k_dense_layers: { kind: 'int', min: 0, max: MAX_COUNT, default: 0 },
        num_shared_experts: { kind: 'int', min: 0, max: MAX_COUNT, default: 0 },
        shared_expert_ffn_hidden_size: positiveInt({ optional: true, max: 4 * MAX_WIDTH }),
        router_num_groups: { kind: 'int', min: 1, max: MAX_COUNT, default: 1 },
        router_group_topk: { kind: 'int', min: 1, max: MAX_COUNT, default: 1 },
      },
    },
    mla: {
      kind: 'object',
      optional: true,
      fields: {
        q_lora_rank: { kind: 'int', min: 0, max: MAX_WIDTH },
        kv_lora_rank: positiveInt({ max: MAX_WIDTH }),
        qk_head_dim: positiveInt({ max: MAX_COUNT }),
        qk_pos_emb_head_dim: positiveInt({ max: MAX_COUNT }),
        v_head_dim: positiveInt({ max: MAX_COUNT }),
      },
    },
    mtp_num_layers: { kind: 'int', min: 0, max: MAX_COUNT, default: 0 },
  },
};

export const TRAINER_SPEC: FieldSpec = {
  kind: 'object',
  fields: {
    data_parallel_sharding_strategy: {
      kind: 'enum',
      values: SHARD_STRATEGIES,
      aliases: { '0': 'NO_OP', '1': 'OPTIMIZER_STATES', '2': 'OPTIMIZER_STATES_AND_GRADS', '3': 'FULLY_SHARD' },
      default: 'OPTIMIZER_STATES',
    },
    param_dtype: dtype('bfloat16'),
    // The matmuls' dtype when autocast runs them in another than the parameters' (gathered and stored) one.
    compute_dtype: {
      kind: 'enum',
      values: ['float32', 'float16', 'bfloat16'],
      aliases: Object.fromEntries(Object.entries(DTYPE_ALIASES).filter(([, to]) => to !== 'fp8')),
      optional: true,
    },
    grad_dtype: dtype('float32'),
    optimizer_state_dtype: dtype('float32'),
    master_weights: { kind: 'bool', default: true },
    master_dtype: dtype('float32'),
    flash_attention: { kind: 'bool', default: true },
    // Transformer Engine FP8 (--fp8-format hybrid) on the linear layers; fp8 parameters imply it.
    fp8: { kind: 'bool', default: false },
    // Megatron-Core's --tp-comm-overlap, --overlap-grad-reduce, --overlap-param-gather, overlap_p2p_comm (on by
    // default with the interleaved schedule), --overlap-moe-expert-parallel-comm (off) and --cp-comm-type (p2p).
    // ZeRO-3's resharding after the forward and when ZeRO-2/3 reduce gradients are grid dimensions (--reshard,
    // --grad-reduce).
    tp_comm_overlap: { kind: 'bool', default: true },
    overlap_grad_reduce: { kind: 'bool', default: true },
    overlap_param_gather: { kind: 'bool', default: true },
    overlap_p2p_comm: { kind: 'bool', default: true },
    moe_a2a_overlap: { kind: 'bool', default: false },
    // One copy of a token per destination node across the NICs, forwarded inside the node over NVLink (DeepEP,
    // Megatron-Core's flex dispatcher; DeepSeek-V3's own kernels), instead of one per routed expert.
    moe_dedup_dispatch: { kind: 'bool', default: false },
    cp_comm_type: { kind: 'enum', values: CP_COMM_TYPES, default: 'p2p' },
    // The flash-attention kernel: `fused` for Transformer Engine's cuDNN fused attention or FlashAttention-3
    // (Hopper-optimised, Megatron-Core's choice on H100), `fa2` for FlashAttention-2 or PyTorch SDPA's flash backend,
    // `triton` for the Triton flash attention of MPT and llm-foundry (attn_impl triton, their default until 2024).
    attention_kernel: { kind: 'enum', values: ATTENTION_KERNELS, default: 'fused' },
    // PyTorch's torch.compile (Inductor), which fuses each layer's element-wise ops into fewer kernels and so
    // fewer passes over the activations (the family's compile_passes_ratio); Megatron-Core runs eager.
    torch_compile: { kind: 'bool', default: false },
  },
};

export function validateModel(raw: unknown): ModelConfig {
  const model = validate(MODEL_SPEC, raw, 'model') as unknown as ModelConfig;
  const moe = model.moe;
  if (moe && moe.num_experts > 0 && (moe.k < 1 || moe.k > moe.num_experts)) {
    throw new InputError('model.moe.k', `must be between 1 and model.moe.num_experts (${moe.num_experts}), got ${moe.k}`);
  }
  if (moe && moe.router_group_topk > moe.router_num_groups) {
    throw new InputError('model.moe.router_group_topk', `must be at most model.moe.router_num_groups (${moe.router_num_groups}), got ${moe.router_group_topk}`);
  }
  if (moe && moe.num_experts > 0 && moe.num_experts % moe.router_num_groups !== 0) {
    throw new InputError('model.moe.router_num_groups', `must divide model.moe.num_experts (${moe.num_experts}), got ${moe.router_num_groups}`);
  }
  if (moe && moe.num_experts === 0 && moe.expert_frequency > 0) {
    throw new InputError('model.moe.expert_frequency', 'must be 0 when model.moe.num_experts is 0');
  }
  if (model.num_attention_heads !== undefined) {
    const kv = model.num_key_value_heads ?? model.num_attention_heads;
    if (model.num_attention_heads % kv !== 0) {
      throw new InputError(
        'model.num_key_value_heads',
        `must divide model.num_attention_heads (${model.num_attention_heads}), got ${kv}`,
      );
    }
    // Without an explicit head size (kv_channels), it is hidden / heads, which must then be a whole number.
    if (model.kv_channels === undefined && !model.mla && model.hidden_size % model.num_attention_heads !== 0) {
      throw new InputError(
        'model.num_attention_heads',
        `must divide model.hidden_size (${model.hidden_size}), got ${model.num_attention_heads}; or give model.kv_channels (the head size)`,
      );
    }
  } else if (model.num_key_value_heads !== undefined) {
    throw new InputError('model.num_key_value_heads', 'needs model.num_attention_heads');
  }
  return model;
}

export function validateTrainer(raw: unknown): TrainerConfig {
  const trainer = validate(TRAINER_SPEC, raw ?? {}, 'trainer') as unknown as TrainerConfig;
  if (trainer.compute_dtype !== undefined && trainer.param_dtype === 'fp8') {
    throw new InputError('trainer.compute_dtype', 'fp8 parameters set it themselves (bf16 outside the FP8 linear layers)');
  }
  return trainer;
}

export type { Plain };
