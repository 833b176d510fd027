import { basename, dirname } from 'node:path';
import { InputError } from '../errors.js';
import { isPlainObject, Plain } from '../config/schema.js';

/**
 * Hugging Face `config.json` → parasweep's model schema (src/config/model.ts).
 *
 * The keys read here are those of the `transformers` configuration classes (LlamaConfig, MistralConfig,
 * MixtralConfig, Qwen2Config, Qwen2MoeConfig, Qwen3Config, Qwen3MoeConfig, DeepseekV3Config, GPTNeoXConfig) as
 * documented at https://huggingface.co/docs/transformers/model_doc/<model_type>. A config.json describes an
 * architecture, not a training run, so the two training keys it lacks get documented defaults
 * (docs/huggingface.md) that overrides or --seq/--gbs replace.
 */

/** A config.json carries no training batch; 1024 sequences is the default for every Hugging Face model. */
export const HF_DEFAULT_GLOBAL_BATCH_SIZE = 1024;
/** Nor a training sequence length: 4096 tokens, or max_position_embeddings when that is shorter. */
export const HF_DEFAULT_SEQ_LENGTH = 4096;

/** model_type values this mapper understands, with the family each belongs to. */
export const HF_MODEL_TYPES = {
  llama: 'dense',
  mistral: 'dense',
  qwen2: 'dense',
  qwen3: 'dense',
  mixtral: 'mixtral',
  qwen2_moe: 'qwen-moe',
  qwen3_moe: 'qwen-moe',
  deepseek_v3: 'deepseek',
  gpt_neox: 'neox',
} as const;
export type HfModelType = keyof typeof HF_MODEL_TYPES;

/**
 * Keys that change neither parameter count, memory nor time in this model: token ids, initialisation, numerics of
 * the norms, inference-only settings, RoPE frequencies (rotary embeddings have no parameters), router loss weights.
 * Anything not listed here and not read by the mapper is an error, so that an architectural switch this mapper
 * does not know (a new attention variant, say) cannot be silently dropped.
 */
const IGNORED_KEYS = new Set([
  '_name_or_path', 'architectures', 'model_type', 'transformers_version', 'torch_dtype', 'dtype', 'auto_map',
  'bos_token_id', 'eos_token_id', 'pad_token_id', 'sep_token_id', 'decoder_start_token_id',
  'initializer_range', 'initializer_factor', 'rms_norm_eps', 'layer_norm_eps', 'layer_norm_epsilon',
  'use_cache', 'pretraining_tp', 'rope_theta', 'rope_scaling', 'rope_parameters', 'rotary_emb_base', 'rotary_pct',
  'max_position_embeddings', 'max_window_layers', 'original_max_position_embeddings',
  'router_aux_loss_coef', 'output_router_logits', 'router_jitter_noise', 'aux_loss_alpha', 'seq_aux', 'norm_topk_prob',
  'routed_scaling_factor', 'scoring_func', 'ep_size',
  'quantization_config', 'use_parallel_residual', 'classifier_dropout', 'is_decoder', 'tokenizer_class',
  'attention_dropout', 'hidden_dropout', 'hidden_dropout_prob', 'attention_probs_dropout_prob', 'residual_dropout',
  'embd_pdrop', 'resid_pdrop', 'attn_pdrop', 'mlp_bias_dropout', 'return_dict', 'output_attentions',
  'output_hidden_states', 'use_return_dict', 'chunk_size_feed_forward', 'tie_encoder_decoder', 'bad_words_ids',
  'use_sliding_window', 'sliding_window', 'layer_types', 'head_dim', 'attention_bias', 'mlp_bias', 'bias',
]);

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** Reads HF keys, remembering which ones were used, with one-line errors that name the key. */
class Reader {
  readonly used = new Set<string>();
  constructor(
    private readonly doc: Plain,
    private readonly source: string,
  ) {}

  private field(key: string): string {
    return `${this.source}: ${key}`;
  }

  has(key: string): boolean {
    return this.doc[key] !== undefined && this.doc[key] !== null;
  }

  raw(key: string): unknown {
    this.used.add(key);
    return this.doc[key];
  }

  int(key: string, fallback?: number, min = 1): number {
    const value = this.raw(key);
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw new InputError(this.field(key), 'required key is missing');
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new InputError(this.field(key), `must be an integer of at least ${min}, got ${describe(value)}`);
    }
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') throw new InputError(this.field(key), `must be true or false, got ${describe(value)}`);
    return value;
  }

  number(key: string, fallback: number): number {
    const value = this.raw(key);
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new InputError(this.field(key), `must be a number, got ${describe(value)}`);
    }
    return value;
  }

  string(key: string, fallback?: string): string {
    const value = this.raw(key);
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw new InputError(this.field(key), 'required key is missing');
    }
    if (typeof value !== 'string') throw new InputError(this.field(key), `must be a string, got ${describe(value)}`);
    return value;
  }

  /** The key must be absent or equal one of the values that the mapping represents. */
  expect(key: string, allowed: unknown[], why: string): void {
    const value = this.raw(key);
    if (value === undefined || value === null) return;
    if (!allowed.some((a) => a === value)) throw new InputError(this.field(key), `${describe(value)} cannot be mapped: ${why}`);
  }

  fail(key: string, reason: string): never {
    throw new InputError(this.field(key), reason);
  }

  /** Every key of the file must have been read or be known to be irrelevant. */
  rejectUnread(): void {
    for (const key of Object.keys(this.doc)) {
      if (this.used.has(key) || IGNORED_KEYS.has(key)) continue;
      throw new InputError(this.field(key), 'unknown Hugging Face key, not mapped (parasweep models would silently ignore it)');
    }
  }
}

/** A config.json (as opposed to a parasweep model YAML): transformers always writes model_type. */
export function isHuggingFaceConfig(doc: unknown): doc is Plain {
  return isPlainObject(doc) && !('model' in doc) && ('model_type' in doc || 'architectures' in doc);
}

/** `meta-llama/Llama-3.1-8B` from _name_or_path, else the directory holding config.json, else the file name. */
function modelName(reader: Reader, source: string, modelType: string): string {
  const named = reader.raw('_name_or_path');
  if (typeof named === 'string' && named.trim() !== '') return named;
  const file = basename(source);
  if (file === 'config.json') {
    const dir = basename(dirname(source));
    if (dir && dir !== '.' && dir !== '/') return dir;
  }
  return file.replace(/\.json$/, '') || modelType;
}

/**
 * SiLU/GELU inside a gated MLP (gate, up and down projections, as every architecture here except GPT-NeoX has) is
 * SwiGLU/GeGLU; GPT-NeoX's MLP has two matrices.
 */
function activation(reader: Reader, gated: boolean): string {
  const key = 'hidden_act';
  const act = reader.string(key, gated ? 'silu' : 'gelu');
  if (gated) {
    if (act === 'silu' || act === 'swish') return 'swiglu';
    if (act.startsWith('gelu')) return 'geglu';
    if (act === 'sigmoid') return 'glu';
  } else {
    if (act.startsWith('gelu')) return 'gelu';
    if (act === 'relu') return 'relu';
  }
  return reader.fail(key, `"${act}" cannot be mapped to an activation of the model schema (swiglu, geglu, glu, gelu, relu)`);
}

/** Sliding-window attention changes the attention cost, which the model does not represent: refuse it. */
function noSlidingWindow(reader: Reader, seqLength: number): void {
  const window = reader.raw('sliding_window');
  const enabled = reader.raw('use_sliding_window');
  if (window === undefined || window === null || enabled === false) return;
  if (typeof window !== 'number' || window < seqLength) {
    reader.fail('sliding_window', `${describe(window)} is shorter than the sequence (${seqLength}); sliding-window attention is not modelled`);
  }
}

/** Every layer must use full attention (transformers' `layer_types`). */
function fullAttentionLayers(reader: Reader): void {
  const types = reader.raw('layer_types');
  if (types === undefined || types === null) return;
  if (!Array.isArray(types) || types.some((t) => t !== 'full_attention')) {
    reader.fail('layer_types', 'only "full_attention" layers can be mapped (sliding or linear attention is not modelled)');
  }
}

/**
 * Maps a parsed config.json onto a parasweep model document (`{ model: {...} }`, not yet validated: the loader
 * applies overrides and validates it like any model YAML). `source` names the file in errors.
 */
export function huggingFaceToModelDoc(doc: Plain, source: string): Plain {
  const reader = new Reader(doc, source);
  if ('text_config' in doc) {
    reader.fail('text_config', 'multimodal configs are not mapped: pass the language model\'s own config.json');
  }
  const modelType = reader.string('model_type', '');
  if (!(modelType in HF_MODEL_TYPES)) {
    const known = Object.keys(HF_MODEL_TYPES).join(', ');
    reader.fail('model_type', modelType === '' ? `required key is missing (known: ${known})` : `"${modelType}" is not mapped (known: ${known})`);
  }
  const family = HF_MODEL_TYPES[modelType as HfModelType];
  const neox = family === 'neox';

  const hidden = reader.int('hidden_size');
  const layers = reader.int('num_hidden_layers');
  const heads = reader.int('num_attention_heads');
  const kvHeads = neox ? heads : reader.int('num_key_value_heads', heads);
  const headDim = reader.has('head_dim') ? reader.int('head_dim') : undefined;
  const maxPositions = reader.int('max_position_embeddings', HF_DEFAULT_SEQ_LENGTH);
  const seqLength = Math.min(HF_DEFAULT_SEQ_LENGTH, maxPositions);

  const model: Plain = {
    name: modelName(reader, source, modelType),
    global_batch_size: HF_DEFAULT_GLOBAL_BATCH_SIZE,
    micro_batch_size: 1,
    vocab_size: reader.int('vocab_size'),
    num_layers: layers,
    hidden_size: hidden,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    ffn_hidden_size: reader.int('intermediate_size'),
    seq_length: seqLength,
    activation: activation(reader, !neox),
    normalization: neox ? 'layernorm' : 'rmsnorm',
    position_embedding_type: 'rope',
    share_embeddings_and_output_weights: reader.bool('tie_word_embeddings', false),
    // Checkpoints' vocabularies are used as they are; Megatron pads to a multiple of 128 (its default), as for YAML.
    make_vocab_size_divisible_by: 128,
    add_bias_linear: false,
    // Dropout masks are stored only when a dropout probability is set.
    dropout: ['attention_dropout', 'hidden_dropout', 'attention_probs_dropout_prob', 'hidden_dropout_prob', 'resid_pdrop', 'attn_pdrop'].some((key) => reader.number(key, 0) > 0),
  };
  if (headDim !== undefined && headDim * heads !== hidden) model.kv_channels = headDim;

  // Biases: the schema has one switch for every linear layer.
  if (neox) {
    // GPT-NeoX has biases on every linear layer (transformers' GPTNeoXAttention/GPTNeoXMLP, `attention_bias` default true).
    reader.expect('attention_bias', [true], 'GPT-NeoX with bias-free attention is not modelled');
    model.add_bias_linear = true;
  } else {
    // Qwen2's q/k/v projections carry a bias (hard-wired in transformers' Qwen2Attention, not a config key). Their
    // parameters, (heads + 2 kv heads) x head_dim per layer, are left out: 0.002% of Qwen2-7B (docs/huggingface.md).
    reader.expect('attention_bias', [false], 'a bias on q/k/v/o alone is not modelled (add_bias_linear sets every linear layer)');
    reader.expect('mlp_bias', [false], 'an MLP bias alone is not modelled');
  }
  fullAttentionLayers(reader);
  noSlidingWindow(reader, seqLength);

  if (family === 'mixtral') {
    // Mixtral: every layer is MoE; intermediate_size is one expert's FFN (MixtralConfig).
    model.moe = {
      num_experts: reader.int('num_local_experts'),
      k: reader.int('num_experts_per_tok'),
      expert_frequency: 1.0,
      token_imbalance_hypothesis: 1.0,
    };
  } else if (family === 'qwen-moe') {
    // Qwen2-MoE / Qwen3-MoE: layer i is MoE when (i + 1) % decoder_sparse_step == 0 and i is not in mlp_only_layers;
    // dense layers use intermediate_size, experts moe_intermediate_size; Qwen2-MoE adds one shared expert of
    // shared_expert_intermediate_size (Qwen3-MoE has none).
    const step = reader.int('decoder_sparse_step', 1);
    if (step !== 1) reader.fail('decoder_sparse_step', `${step} cannot be mapped: only every layer being MoE (1) is modelled`);
    const denseLayers = reader.raw('mlp_only_layers');
    if (denseLayers !== undefined && denseLayers !== null && !(Array.isArray(denseLayers) && denseLayers.length === 0)) {
      reader.fail('mlp_only_layers', `${describe(denseLayers)} cannot be mapped: dense layers are modelled only as the first k (first_k_dense_layers)`);
    }
    const expertFfn = reader.int('moe_intermediate_size');
    const shared = reader.int('shared_expert_intermediate_size', 0, 0);
    model.moe = {
      num_experts: reader.int('num_experts'),
      k: reader.int('num_experts_per_tok'),
      expert_frequency: 1.0,
      token_imbalance_hypothesis: 1.0,
      ffn_hidden_size: expertFfn,
      num_shared_experts: shared > 0 ? 1 : 0,
      ...(shared > 0 ? { shared_expert_ffn_hidden_size: shared } : {}),
    };
  } else if (family === 'deepseek') {
    // DeepSeek-V3 (DeepseekV3Config): the first first_k_dense_replace layers are dense (intermediate_size), the rest
    // MoE every moe_layer_freq layers; MLA with low-rank queries and keys/values; num_nextn_predict_layers MTP modules.
    const freq = reader.int('moe_layer_freq', 1);
    if (freq !== 1) reader.fail('moe_layer_freq', `${freq} cannot be mapped: only every layer after the dense ones being MoE (1) is modelled`);
    const sharedExperts = reader.int('n_shared_experts', 0, 0);
    const expertFfn = reader.int('moe_intermediate_size');
    const groups = reader.int('n_group', 1);
    const grouped = groups > 1 && ['group_limited_greedy', 'noaux_tc'].includes(reader.string('topk_method', 'greedy'));
    if (!grouped) reader.raw('topk_group');
    model.moe = {
      num_experts: reader.int('n_routed_experts'),
      k: reader.int('num_experts_per_tok'),
      expert_frequency: 1.0,
      token_imbalance_hypothesis: 1.0,
      ffn_hidden_size: expertFfn,
      first_k_dense_layers: reader.int('first_k_dense_replace', 0, 0),
      num_shared_experts: sharedExperts,
      ...(sharedExperts > 0 ? { shared_expert_ffn_hidden_size: expertFfn } : {}),
      // DeepSeek's group-limited routers pick topk_group of n_group expert groups first (V2's
      // group_limited_greedy, V3's noaux_tc); the plain greedy router ignores the groups.
      ...(grouped ? { router_num_groups: groups, router_group_topk: reader.int('topk_group', 1) } : {}),
    };
    model.mla = {
      q_lora_rank: reader.int('q_lora_rank', 0, 0),
      kv_lora_rank: reader.int('kv_lora_rank'),
      qk_head_dim: reader.int('qk_nope_head_dim'),
      qk_pos_emb_head_dim: reader.int('qk_rope_head_dim'),
      v_head_dim: reader.int('v_head_dim'),
    };
    model.mtp_num_layers = reader.int('num_nextn_predict_layers', 0, 0);
  }
  reader.rejectUnread();
  return { model };
}
