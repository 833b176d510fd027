import { InputError } from '../errors.js';
import type { ModelConfig, ShardStrategy, TrainerConfig } from '../config/model.js';
import { SHARD_STRATEGIES } from '../config/model.js';
import { chunkLayers, defaultSplit } from '../layout.js';

/**
 * Launch arguments for one resolved config: Megatron-LM command-line flags, or a torchtitan configuration function.
 *
 * Flag and field names were checked against the sources, not copied from memory:
 * - Megatron-LM NVIDIA/Megatron-LM@d98e8a6 (2026-08-22): megatron/training/arguments.py, and the dataclasses it turns
 *   into flags with ArgumentGroupFactory (megatron/core/model_parallel_config.py,
 *   megatron/core/transformer/transformer_config.py, megatron/training/config/{common,training}_config.py: a field
 *   `foo_bar` is `--foo-bar`; a bool defaulting to true is `--no-foo-bar`/`--disable-foo-bar`).
 * - torchtitan pytorch/torchtitan@b5bcd76 (2026-08-21): torchtitan/config/configs.py (ParallelismConfig,
 *   TrainingConfig), torchtitan/trainer.py (Trainer.Config), torchtitan/distributed/activation_checkpoint.py. That
 *   torchtitan reads no TOML any more: a run is a Python function returning Trainer.Config (torchtitan/config/README.md),
 *   so that is what is emitted.
 */

export const LAUNCH_TARGETS = ['megatron', 'torchtitan'] as const;
export type LaunchTarget = (typeof LAUNCH_TARGETS)[number];

/** One point of the search space, as the grid and `explain` name it. */
export interface LaunchLayout {
  ngpus: number;
  tp: number;
  pp: number;
  cp: number;
  /** Expert parallel and expert tensor parallel sizes (MoE models). */
  ep: number;
  etp: number;
  /** Virtual stages per pipeline rank (interleaved schedule). */
  vpp: number;
  schedule: string;
  /** ZeRO stage 0-3, or the PoC's strategy name. */
  zero: number | ShardStrategy;
  sp: boolean;
  recompute: 'none' | 'selective' | 'full' | 'selective_op';
  offload: 'none' | 'optimizer' | 'optimizer_cpu_step';
  mbs: number;
  gbs: number;
  seq_length: number;
  /** ZeRO-2/3: gradients reduce-scattered once per step (accumulated whole) or per micro-batch. Default microbatch. */
  grad_reduce?: 'step' | 'microbatch';
  /** ZeRO-3: gathered parameters freed after the forward. Default true. */
  reshard?: boolean;
  /** ZeRO 1-3: replicas of the sharded states (HSDP), ZeRO sharding over dp / dp_replicas ranks. Default 1. */
  dp_replicas?: number;
  /**
   * Decoder layers (MTP modules excluded) of each virtual chunk of each pipeline rank, [rank][chunk], as the cost
   * model placed them (explain's split.chunk_layers). Default: the split the model uses when nothing is pinned
   * (src/layout.ts defaultSplit and chunkLayers).
   */
  chunkLayers?: number[][];
}

export interface LaunchInput {
  model: ModelConfig;
  trainer: TrainerConfig;
  layout: LaunchLayout;
  /** GPUs per node (for torchrun's --nproc-per-node); default 8. */
  gpusPerNode?: number;
  /** One line naming the run, put in a comment at the top. */
  title?: string;
}

export interface LaunchArgs {
  target: LaunchTarget;
  /** Megatron: the flags, one array element per token. torchtitan: empty (the output is a Python function). */
  argv: string[];
  /** What to print: a shell command line, or a Python module. */
  text: string;
}

/** The model's split when nothing is pinned, [rank][chunk]; undefined when some rank would get no layer. */
export function defaultChunkLayers(numLayers: number, pp: number, vpp: number): number[][] | undefined {
  const split = defaultSplit(numLayers, pp, vpp);
  return split && chunkLayers(numLayers, pp, vpp, split.first, split.last);
}

interface Resolved {
  model: ModelConfig;
  trainer: TrainerConfig;
  l: LaunchLayout;
  zero: number;
  dp: number;
  /** Replicas of the ZeRO-sharded states (1: sharded over all of dp). */
  replicas: number;
  microbatches: number;
  /** Layers per [rank][chunk], and per rank. */
  chunks: number[][];
  stages: number[];
  moe: boolean;
  nodes: number;
  perNode: number;
}

function positiveInt(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new InputError(field, `must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks the layout against the model (the rules the grid applies) and derives dp, micro-batches and stages. */
function resolve(input: LaunchInput): Resolved {
  const { model, trainer, layout: l } = input;
  for (const key of ['ngpus', 'tp', 'pp', 'cp', 'ep', 'etp', 'vpp', 'mbs', 'gbs', 'seq_length'] as const) {
    positiveInt(l[key], `layout.${key}`);
  }
  const zero = typeof l.zero === 'number' ? l.zero : SHARD_STRATEGIES.indexOf(l.zero);
  if (!(Number.isInteger(zero) && zero >= 0 && zero <= 3)) {
    throw new InputError('layout.zero', `must be a ZeRO stage 0-3, got ${JSON.stringify(l.zero)}`);
  }
  const modelParallel = l.tp * l.pp * l.cp;
  if (l.ngpus % modelParallel !== 0) {
    throw new InputError('layout.ngpus', `${l.ngpus} is not divisible by tp x pp x cp = ${modelParallel}`);
  }
  const dp = l.ngpus / modelParallel;
  if (l.gbs % (dp * l.mbs) !== 0) {
    throw new InputError('layout.gbs', `${l.gbs} is not divisible by dp x mbs = ${dp * l.mbs}`);
  }
  const replicas = positiveInt(l.dp_replicas ?? 1, 'layout.dp_replicas');
  if (replicas > 1 && (zero === 0 || dp % replicas !== 0)) {
    throw new InputError('layout.dp_replicas', `must divide dp (${dp}) and needs ZeRO >= 1, got ${replicas} with ZeRO-${zero}`);
  }
  const moe = (model.moe?.num_experts ?? 0) > 0;
  if (!moe && (l.ep > 1 || l.etp > 1)) throw new InputError('layout.ep', `${model.name} has no experts: ep and etp must be 1`);
  if (moe && (l.ngpus / l.pp) % (l.ep * l.etp) !== 0) {
    throw new InputError('layout.ep', `ngpus / pp = ${l.ngpus / l.pp} is not divisible by ep x etp = ${l.ep * l.etp}`);
  }
  if (l.schedule === 'interleaved' ? l.vpp < 2 : l.vpp !== 1 && l.schedule !== 'dualpipe') {
    throw new InputError('layout.vpp', `virtual stages go with the interleaved schedule (vpp >= 2), got vpp ${l.vpp} with ${l.schedule}`);
  }
  const chunks = l.chunkLayers ?? defaultChunkLayers(model.num_layers, l.pp, l.vpp);
  if (!chunks) throw new InputError('layout.pp', `${model.num_layers} layers cannot be split over pp ${l.pp} x vpp ${l.vpp}`);
  const shapeOk = chunks.length === l.pp && chunks.every((rank) => rank.length === l.vpp && rank.every((n) => Number.isInteger(n) && n >= 0));
  if (!shapeOk) throw new InputError('layout.chunkLayers', `must be ${l.pp} ranks of ${l.vpp} layer counts, got ${JSON.stringify(chunks)}`);
  const stages = chunks.map((rank) => rank.reduce((a, b) => a + b, 0));
  const sum = stages.reduce((a, b) => a + b, 0);
  if (sum !== model.num_layers) throw new InputError('layout.chunkLayers', `adds up to ${sum} layers, the model has ${model.num_layers}`);
  const perNode = Math.min(input.gpusPerNode ?? 8, l.ngpus);
  return {
    model,
    trainer,
    l,
    zero,
    dp,
    replicas,
    microbatches: l.gbs / (dp * l.mbs),
    chunks,
    stages,
    moe,
    perNode,
    nodes: Math.ceil(l.ngpus / perNode),
  };
}

function unsupported(target: string, field: string, reason: string): never {
  throw new InputError(field, `${reason}; ${target} has no setting for it`);
}

/** One-line description of the layout, for the header comment. */
function summary(r: Resolved): string {
  const { l } = r;
  const parts = [`tp${l.tp}`, `pp${l.pp}`, l.schedule, ...(l.vpp > 1 ? [`vpp${l.vpp}`] : []), `cp${l.cp}`];
  if (r.moe) parts.push(`ep${l.ep}`, `etp${l.etp}`);
  parts.push(`dp${r.dp}`, `zero${r.zero}`, ...(r.replicas > 1 ? [`replicas${r.replicas}`] : []), ...(l.sp ? ['sp'] : []), `mbs${l.mbs}`, `gbs${l.gbs}`, `seq${l.seq_length}`, `rc:${l.recompute}`);
  if (l.offload !== 'none') parts.push(`offload:${l.offload}`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------------------------
// Megatron-LM
// ---------------------------------------------------------------------------------------------------------------

/**
 * Megatron's --pipeline-model-parallel-layout: one entry per virtual stage in model order (chunk j of rank p is stage
 * j·pp + p); E embedding, t decoder layer, m MTP, L loss; `t*n` repeats (PipelineParallelLayerLayout.parse_str_to_list).
 */
function megatronLayout(r: Resolved): string {
  const { pp, vpp } = r.l;
  const mtp = r.model.mtp_num_layers;
  const entries: string[] = [];
  for (let j = 0; j < vpp; j++) {
    for (let p = 0; p < pp; p++) {
      const layers = r.chunks[p][j];
      let entry = j === 0 && p === 0 ? 'E' : '';
      if (layers > 0) entry += layers === 1 ? 't' : `t*${layers}`;
      if (j === vpp - 1 && p === pp - 1) entry += (mtp > 0 ? (mtp === 1 ? 'm' : `m*${mtp}`) : '') + 'L';
      entries.push(entry);
    }
  }
  return entries.join('|');
}

/**
 * The flags that give Megatron-LM this split of layers, simplest first: none when every chunk is equal; the
 * embedding and/or the loss counted as a layer (`--account-for-*-in-pipeline-split`: every chunk gets (L + e + l)/(pp·v)
 * and the first/last one fewer; Llama 3 405B's split); the first and last rank's counts when the middle ranks share
 * the rest evenly and every count divides over the virtual chunks; else the explicit layout.
 */
function megatronSplitFlags(r: Resolved): string[] {
  const { pp, vpp } = r.l;
  if (pp === 1) return [];
  const flat = r.chunks.flat();
  if (new Set(flat).size === 1) return [];
  const n = pp * vpp;
  const L = r.model.num_layers;
  const uniformExcept = (per: number, firstLess: boolean, lastLess: boolean) =>
    r.chunks.every((rank, p) =>
      rank.every((layers, j) => layers === per - (firstLess && p === 0 && j === 0 ? 1 : 0) - (lastLess && p === pp - 1 && j === vpp - 1 ? 1 : 0)),
    );
  const embedding = '--account-for-embedding-in-pipeline-split';
  const loss = '--account-for-loss-in-pipeline-split';
  if ((L + 2) % n === 0 && uniformExcept((L + 2) / n, true, true)) return [embedding, loss];
  if ((L + 1) % n === 0 && uniformExcept((L + 1) / n, true, false)) return [embedding];
  if ((L + 1) % n === 0 && uniformExcept((L + 1) / n, false, true)) return [loss];
  const evenWithin = r.chunks.every((rank) => new Set(rank).size === 1);
  const middle = r.stages.slice(1, -1);
  if (evenWithin && new Set(middle).size <= 1) {
    return ['--decoder-first-pipeline-num-layers', String(r.stages[0]), '--decoder-last-pipeline-num-layers', String(r.stages[pp - 1])];
  }
  return ['--pipeline-model-parallel-layout', megatronLayout(r)];
}

function megatronFlags(r: Resolved): string[] {
  const { model, trainer, l } = r;
  const flags: string[] = [];
  const add = (...tokens: Array<string | number>) => flags.push(...tokens.map(String));

  // Parallel sizes (ModelParallelConfig). Data parallel is what is left: ngpus / (tp x pp x cp).
  add('--tensor-model-parallel-size', l.tp, '--pipeline-model-parallel-size', l.pp, '--context-parallel-size', l.cp);
  if (r.moe) add('--expert-model-parallel-size', l.ep, '--expert-tensor-parallel-size', l.etp);
  if (l.sp && l.tp > 1) add('--sequence-parallel');

  // Pipeline schedule and stage split. Megatron runs 1F1B, or interleaved 1F1B with virtual stages; no GPipe, ZB-H1
  // or DualPipe. An explicit layout implies the virtual stages (arguments.py allows only one of the two).
  if (l.schedule !== '1f1b' && l.schedule !== 'interleaved') unsupported('Megatron-LM', 'layout.schedule', `the ${l.schedule} schedule`);
  const split = megatronSplitFlags(r);
  if (l.vpp > 1 && split[0] !== '--pipeline-model-parallel-layout') add('--num-virtual-stages-per-pipeline-rank', l.vpp);
  add(...split);

  // Recompute: selective is Korthikanti et al. 2022's (core attention, Megatron's default recompute module).
  if (l.recompute === 'selective_op') unsupported('Megatron-LM', 'layout.recompute', "torchtitan's per-op selective checkpointing (selective_op)");
  if (l.recompute === 'selective') add('--recompute-granularity', 'selective');
  else if (l.recompute === 'full') add('--recompute-granularity', 'full', '--recompute-method', 'uniform', '--recompute-num-layers', 1);

  // ZeRO: 1 is the distributed optimizer; 2 and 3 are Megatron-FSDP's sharding strategies, which reduce-scatter the
  // gradients of every micro-batch and free the gathered parameters after use.
  if (r.zero >= 2 && (l.grad_reduce ?? 'microbatch') !== 'microbatch') {
    unsupported('Megatron-LM', 'layout.grad_reduce', `ZeRO-${r.zero} with gradients accumulated whole over the step`);
  }
  if (r.zero === 3 && l.reshard === false) unsupported('Megatron-LM', 'layout.reshard', 'ZeRO-3 keeping the gathered parameters after the forward');
  if (r.zero === 1) add('--use-distributed-optimizer');
  else if (r.zero >= 2) add('--use-megatron-fsdp', '--data-parallel-sharding-strategy', r.zero === 2 ? 'optim_grads' : 'optim_grads_params');
  // HSDP: the distributed optimizer (or Megatron-FSDP) sharded within each of r instances, replicated across them.
  if (r.replicas > 1) add('--num-distributed-optimizer-instances', String(r.replicas));
  if (l.offload === 'optimizer_cpu_step') {
    // HybridDeviceOptimizer: states and step on the host; arguments.py requires the precision-aware optimizer.
    add('--optimizer-cpu-offload', '--optimizer-offload-fraction', '1.0', '--use-precision-aware-optimizer');
  } else if (l.offload === 'optimizer') {
    unsupported('Megatron-LM', 'layout.offload', 'optimizer states on the host with the step on the GPU (offload=optimizer)');
  }

  // Batch and sequence (TrainingConfig); the micro-batch count follows: gbs / (dp x mbs).
  add('--micro-batch-size', l.mbs, '--global-batch-size', l.gbs, '--seq-length', l.seq_length, '--max-position-embeddings', l.seq_length);

  // Megatron-LM runs its model eager: a config sized with torch.compile's fusions would not be what it runs.
  if (trainer.torch_compile) unsupported('Megatron-LM', 'trainer.torch_compile', 'torch.compile of the model');

  // Precision. Megatron-LM's --bf16/--fp16 set the parameters and the matmuls alike: no autocast over other ones.
  if (trainer.compute_dtype !== undefined && trainer.compute_dtype !== trainer.param_dtype) {
    unsupported('Megatron-LM', 'trainer.compute_dtype', `${trainer.compute_dtype} matmuls over ${trainer.param_dtype} parameters`);
  }
  if (trainer.param_dtype === 'bfloat16') add('--bf16');
  else if (trainer.param_dtype === 'float16') add('--fp16');
  else if (trainer.param_dtype === 'fp8') {
    add('--bf16', '--fp8-format', 'hybrid');
    // fp8 weights kept in fp8 between steps: arguments.py allows it with the distributed optimizer or FSDP.
    if (r.zero >= 1) add('--fp8-param-gather');
  }
  // FP8 linear layers over bf16 or fp16 parameters (trainer.fp8): Transformer Engine's hybrid format.
  if (trainer.fp8 && trainer.param_dtype !== 'fp8') add('--fp8-format', 'hybrid');

  // Architecture (TransformerConfig), so that the command builds the model that was sized.
  add('--num-layers', model.num_layers, '--hidden-size', model.hidden_size, '--ffn-hidden-size', model.ffn_hidden_size);
  if (model.num_attention_heads) add('--num-attention-heads', model.num_attention_heads);
  const kv = model.num_key_value_heads;
  if (kv && model.num_attention_heads && kv !== model.num_attention_heads && !model.mla) add('--group-query-attention', '--num-query-groups', kv);
  if (model.kv_channels) add('--kv-channels', model.kv_channels);
  if (model.activation === 'swiglu') add('--swiglu');
  else if (model.activation !== 'gelu') unsupported('Megatron-LM', 'model.activation', `activation ${model.activation} (pretrain_gpt.py has --swiglu or GeLU)`);
  add('--normalization', model.normalization === 'rmsnorm' ? 'RMSNorm' : 'LayerNorm');
  add('--position-embedding-type', model.position_embedding_type);
  if (!model.share_embeddings_and_output_weights) add('--untie-embeddings-and-output-weights');
  if (!model.add_bias_linear) add('--disable-bias-linear');
  if (!model.dropout) add('--attention-dropout', 0, '--hidden-dropout', 0);
  add('--make-vocab-size-divisible-by', model.make_vocab_size_divisible_by);
  if (r.moe && model.moe) {
    const moe = model.moe;
    add('--num-experts', moe.num_experts, '--moe-router-topk', moe.k);
    if (moe.ffn_hidden_size) add('--moe-ffn-hidden-size', moe.ffn_hidden_size);
    if (moe.num_shared_experts > 0) {
      const shared = moe.shared_expert_ffn_hidden_size ?? moe.ffn_hidden_size ?? model.ffn_hidden_size;
      add('--moe-shared-expert-intermediate-size', moe.num_shared_experts * shared);
    }
    const every = 1 / moe.expert_frequency;
    if (!Number.isInteger(every)) unsupported('Megatron-LM', 'model.moe.expert_frequency', `a MoE layer fraction of ${moe.expert_frequency} that is not 1/N`);
    if (moe.first_k_dense_layers > 0) {
      // --moe-layer-freq takes a Python list expression: 0 dense, 1 MoE, per layer.
      const rest = model.num_layers - moe.first_k_dense_layers;
      const pattern = every === 1 ? `[1]*${rest}` : `([0]*${every - 1}+[1])*${Math.floor(rest / every)}+[0]*${rest % every}`;
      add('--moe-layer-freq', `([0]*${moe.first_k_dense_layers}+${pattern})`);
    } else if (every !== 1) {
      add('--moe-layer-freq', every);
    }
    if (moe.router_num_groups > 1) add('--moe-router-num-groups', moe.router_num_groups, '--moe-router-group-topk', moe.router_group_topk);
    // DeepEP's deduplicating dispatch (Megatron-Core 0.12, megatron/core/transformer/moe/README.md).
    if (trainer.moe_dedup_dispatch) add('--moe-token-dispatcher-type', 'flex', '--moe-enable-deepep');
  }
  if (model.mla) {
    add('--multi-latent-attention');
    if (model.mla.q_lora_rank > 0) add('--q-lora-rank', model.mla.q_lora_rank);
    add('--kv-lora-rank', model.mla.kv_lora_rank, '--qk-head-dim', model.mla.qk_head_dim);
    add('--qk-pos-emb-head-dim', model.mla.qk_pos_emb_head_dim, '--v-head-dim', model.mla.v_head_dim);
  }
  if (model.mtp_num_layers > 0) add('--mtp-num-layers', model.mtp_num_layers);
  return flags;
}

/** POSIX shell quoting for tokens that need it (Megatron's list expressions, layouts with | and *). */
function shellQuote(token: string): string {
  return /^[\w@%+=:,./-]+$/.test(token) ? token : `'${token.replace(/'/g, `'\\''`)}'`;
}

function megatronText(r: Resolved, argv: string[], title: string): string {
  const lines: string[] = [];
  let current = '';
  for (const token of argv) {
    if (token.startsWith('--') && current) {
      lines.push(current);
      current = '';
    }
    current += (current ? ' ' : '') + shellQuote(token);
  }
  if (current) lines.push(current);
  return [
    `# ${title}`,
    `# ${summary(r)}; data parallel ${r.dp}, ${r.microbatches} micro-batches per step`,
    '# Megatron-LM flags (checked against NVIDIA/Megatron-LM d98e8a6); add your data, tokenizer and optimizer flags.',
    `torchrun --nnodes ${r.nodes} --nproc-per-node ${r.perNode} pretrain_gpt.py \\`,
    ...lines.map((line, i) => `  ${line}${i === lines.length - 1 ? '' : ' \\'}`),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// torchtitan
// ---------------------------------------------------------------------------------------------------------------

/** Pipeline schedules of torch.distributed.pipelining by the names torchtitan's pipeline_parallel_schedule takes. */
const TORCHTITAN_SCHEDULES: Record<string, string> = { '1f1b': '1F1B', interleaved: 'Interleaved1F1B', gpipe: 'GPipe' };

/**
 * Module names per (virtual) stage, as torchtitan's decoder models name them (torchtitan/distributed/
 * pipeline_parallel.py: tok_embeddings, layers.N, norm, lm_head). Virtual stage s runs on rank s mod pp.
 */
function torchtitanModelParts(r: Resolved): string[][] {
  const { pp, vpp } = r.l;
  const parts: string[][] = [];
  let next = 0;
  for (let j = 0; j < vpp; j++) {
    for (let p = 0; p < pp; p++) {
      const names = Array.from({ length: r.chunks[p][j] }, (_, i) => `layers.${next + i}`);
      next += r.chunks[p][j];
      if (j === 0 && p === 0) names.unshift('tok_embeddings');
      if (j === vpp - 1 && p === pp - 1) names.push('norm', 'lm_head');
      parts.push(names);
    }
  }
  return parts;
}

function py(value: string | number | boolean | null): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function torchtitanText(r: Resolved, title: string): string {
  const { model, trainer, l } = r;
  const target = 'torchtitan';
  const schedule = TORCHTITAN_SCHEDULES[l.schedule];
  if (!schedule) unsupported(target, 'layout.schedule', `the ${l.schedule} schedule`);
  if (r.zero >= 2 && (l.grad_reduce ?? 'microbatch') !== 'microbatch') {
    unsupported(target, 'layout.grad_reduce', `ZeRO-${r.zero} with gradients accumulated whole over the step (FSDP2 reduce-scatters every micro-batch)`);
  }
  if (r.zero === 1) unsupported(target, 'layout.zero', 'ZeRO-1 (torchtitan shards with FSDP2: zero 3, zero 2 with reshard_after_forward "never", or zero 0 replicated)');
  if (l.offload !== 'none') unsupported(target, 'layout.offload', `optimizer offload (${l.offload})`);
  if (r.moe && l.etp !== 1) unsupported(target, 'layout.etp', `expert tensor parallel ${l.etp} (torchtitan's experts are not tensor-parallel)`);
  if (r.moe && trainer.moe_dedup_dispatch) unsupported(target, 'trainer.moe_dedup_dispatch', 'a deduplicating expert dispatch (DeepEP)');
  if (model.mtp_num_layers > 0) unsupported(target, 'model.mtp_num_layers', 'multi-token prediction modules');
  // ParallelismConfig.expert_parallel_degree: EP borrows ranks from FSDP, CP and TP (dp_shard x cp x tp = efsdp x ep).
  const shard = r.zero === 0 ? 1 : r.dp / r.replicas;
  if (r.moe && (shard * l.cp * l.tp) % l.ep !== 0) {
    unsupported(target, 'layout.ep', `expert parallel ${l.ep} not dividing dp_shard x cp x tp = ${shard * l.cp * l.tp} (its experts borrow those ranks)`);
  }
  const dtype = { bfloat16: 'bfloat16', float32: 'float32' }[trainer.param_dtype as string];
  if (!dtype) unsupported(target, 'trainer.param_dtype', `${trainer.param_dtype} parameters (mixed_precision_param is bfloat16 or float32)`);
  // FSDP's mixed_precision_param is both the gathered parameters' dtype and the matmuls'.
  if (trainer.compute_dtype !== undefined && trainer.compute_dtype !== trainer.param_dtype) {
    unsupported(target, 'trainer.compute_dtype', `${trainer.compute_dtype} matmuls over ${trainer.param_dtype} parameters`);
  }

  const set: Array<[string, string]> = [];
  const p = (key: string, value: string | number | boolean | null) => set.push([`config.parallelism.${key}`, py(value)]);
  p('tensor_parallel_degree', l.tp);
  if (l.tp > 1) p('enable_sequence_parallel', l.sp);
  p('context_parallel_degree', l.cp);
  if (r.moe) p('expert_parallel_degree', l.ep);
  // ZeRO-0 is plain replication (DDP); 2 and 3 are FSDP2 keeping or freeing the gathered weights after forward.
  // dp_replicas > 1 is HSDP: FSDP2 over dp / dp_replicas ranks, replicated dp_replicas times.
  p('data_parallel_replicate_degree', r.zero === 0 ? r.dp : r.replicas);
  p('data_parallel_shard_degree', r.zero === 0 ? 1 : r.dp / r.replicas);
  if (r.zero >= 2) p('fsdp_reshard_after_forward', r.zero === 3 && l.reshard !== false ? 'always' : 'never');
  p('pipeline_parallel_degree', l.pp);
  if (l.pp > 1) {
    p('pipeline_parallel_schedule', schedule);
    p('num_pp_microbatches', r.microbatches);
  }
  const lines = set.map(([key, value]) => `    ${key} = ${value}`);
  if (l.pp > 1) {
    const parts = torchtitanModelParts(r)
      .map((names) => `        [${names.map((n) => JSON.stringify(n)).join(', ')}],`)
      .join('\n');
    lines.push(`    config.parallelism.module_fqns_per_model_part = [\n${parts}\n    ]`);
  }
  // Tokens are counted before context and tensor parallel sharding (TrainingConfig's docstrings).
  lines.push(`    config.training.num_tokens_per_microbatch_per_dp_rank = ${l.mbs * l.seq_length}  # mbs ${l.mbs} x seq ${l.seq_length}`);
  lines.push(`    config.training.num_tokens_per_train_step = ${l.gbs * l.seq_length}  # gbs ${l.gbs} x seq ${l.seq_length}`);
  lines.push(`    config.training.max_context_length = ${l.seq_length}`);
  lines.push(`    config.training.mixed_precision_param = ${py(dtype!)}`);
  // The step time was sized with (or without) Inductor's fusions (trainer.torch_compile): CompileConfig.enable.
  lines.push(`    config.compile.enable = ${py(trainer.torch_compile)}`);
  const ac = l.recompute === 'full' ? 'FullAC.Config()' : l.recompute === 'selective' || l.recompute === 'selective_op' ? 'SelectiveAC.Config()' : 'None';
  lines.push(`    config.activation_checkpoint = ${ac}`);
  return [
    `# ${title}`,
    `# ${summary(r)}; data parallel ${r.dp}, ${r.microbatches} micro-batches per step`,
    '# torchtitan configuration (checked against pytorch/torchtitan b5bcd76, which reads Python configs, not TOML).',
    "# Apply it to your model's configuration function, e.g.",
    '#     def my_run() -> Trainer.Config:',
    '#         return parasweep_layout(llama3_8b())',
    `# and run NGPU=${r.perNode} MODULE=<this module> CONFIG=my_run ./run_train.sh on each of ${r.nodes} node(s).`,
    // torchtitan builds Float8 linears when the model is built (model_registry's quantization converters), which a
    // function over Trainer.Config cannot change: the step time assumed them, so the header says how.
    ...(trainer.fp8
      ? ['# The step time assumes FP8 linear layers (trainer.fp8): build the model with',
         `#     model_registry(..., quantization=[Float8LinearConverter.Config(model_compile_enabled=${py(trainer.torch_compile)})])`,
         '# (from torchtitan.components.quantization import Float8LinearConverter; its float8.md): this function cannot.']
      : []),
    ...(l.recompute === 'selective'
      ? ["# torchtitan's SelectiveAC is per-op; parasweep sized Korthikanti et al. 2022's (attention core) selective recompute",
         '# (recompute selective_op sizes the per-op policy).']
      : l.recompute === 'selective_op'
        ? ["# SelectiveAC sized as torchtitan's per-op policy of 2024-2025: every second matmul and the element-wise work",
           "# recomputed, MoE experts' grouped GEMMs recomputed whole (docs/time-model.md, section 2)."]
        : []),
    'from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC',
    'from torchtitan.trainer import Trainer',
    '',
    '',
    'def parasweep_layout(config: Trainer.Config) -> Trainer.Config:',
    ...lines,
    '    return config',
    '',
  ].join('\n');
}

/**
 * Launch arguments for one resolved config (a model, its trainer settings and one layout). Throws InputError naming
 * the layout field when the target cannot express it (GPipe in Megatron-LM, ZeRO-1 in torchtitan, ...).
 */
export function launchArgs(input: LaunchInput, target: LaunchTarget): LaunchArgs {
  if (!(LAUNCH_TARGETS as readonly string[]).includes(target)) {
    throw new InputError('target', `must be one of ${LAUNCH_TARGETS.join(', ')}, got ${JSON.stringify(target)}`);
  }
  const r = resolve(input);
  const title = input.title ?? `${input.model.name} on ${input.layout.ngpus} GPUs`;
  if (target === 'megatron') {
    const argv = megatronFlags(r);
    return { target, argv, text: megatronText(r, argv, title) };
  }
  return { target, argv: [], text: torchtitanText(r, title) };
}
