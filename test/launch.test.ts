import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultChunkLayers, launchArgs, LaunchInput, LaunchLayout } from '../src/launch/index.js';
import { explainLaunch, launch, RUNNABLE } from '../src/launch/pick.js';
import { InputError, loadConfig } from '../src/index.js';
import { REPO_ROOT } from './helpers.js';

/**
 * Every flag the Megatron-LM emitter may print, each found in NVIDIA/Megatron-LM d98e8a6: megatron/training/arguments.py
 * or a dataclass field turned into a flag by ArgumentGroupFactory (foo_bar -> --foo-bar; --disable-* for true bools).
 */
const MEGATRON_FLAGS = new Set([
  '--tensor-model-parallel-size', '--pipeline-model-parallel-size', '--context-parallel-size', // ModelParallelConfig
  '--expert-model-parallel-size', '--expert-tensor-parallel-size', '--sequence-parallel', // ModelParallelConfig
  '--num-virtual-stages-per-pipeline-rank', '--decoder-first-pipeline-num-layers', '--decoder-last-pipeline-num-layers', // arguments.py
  '--pipeline-model-parallel-layout', // arguments.py
  '--account-for-embedding-in-pipeline-split', '--account-for-loss-in-pipeline-split', // TransformerConfig
  '--recompute-granularity', '--recompute-method', '--recompute-num-layers', // TransformerConfig
  '--use-distributed-optimizer', '--data-parallel-sharding-strategy', // arguments.py
  '--use-megatron-fsdp', // DistributedInitConfig
  '--optimizer-cpu-offload', '--optimizer-offload-fraction', '--use-precision-aware-optimizer', // arguments.py
  '--micro-batch-size', '--global-batch-size', // TrainingConfig
  '--seq-length', '--max-position-embeddings', // arguments.py
  '--bf16', '--fp16', '--fp8-format', '--fp8-param-gather', // ModelParallelConfig, TransformerConfig (fp8 -> --fp8-format), arguments.py
  '--num-layers', '--hidden-size', '--ffn-hidden-size', '--num-attention-heads', '--num-query-groups', '--kv-channels', // TransformerConfig
  '--group-query-attention', '--swiglu', '--position-embedding-type', '--untie-embeddings-and-output-weights', // arguments.py
  '--normalization', '--attention-dropout', '--hidden-dropout', '--disable-bias-linear', // TransformerConfig
  '--make-vocab-size-divisible-by', '--num-experts', '--moe-layer-freq', // arguments.py
  '--moe-router-topk', '--moe-ffn-hidden-size', '--moe-shared-expert-intermediate-size', // TransformerConfig
  '--moe-router-num-groups', '--moe-router-group-topk', // TransformerConfig
  '--moe-token-dispatcher-type', '--moe-enable-deepep', // TransformerConfig (moe/README.md: flex dispatcher with DeepEP)
  '--multi-latent-attention', '--mtp-num-layers', // TransformerConfig
  '--q-lora-rank', '--kv-lora-rank', '--qk-head-dim', '--qk-pos-emb-head-dim', '--v-head-dim', // arguments.py
]);

const BASE: LaunchLayout = {
  ngpus: 1024, tp: 8, pp: 16, cp: 1, ep: 1, etp: 1, vpp: 1, schedule: '1f1b', zero: 1, sp: true,
  recompute: 'none', offload: 'none', mbs: 1, gbs: 2048, seq_length: 8192,
};

function input(model: string, layout: Partial<LaunchLayout> = {}): LaunchInput {
  const config = loadConfig(model);
  return { model: config.model, trainer: config.trainer, layout: { ...BASE, ...layout } };
}

/** Value after a flag, or true for a switch, or undefined. */
function flagValue(argv: string[], flag: string): string | true | undefined {
  const i = argv.indexOf(flag);
  if (i < 0) return undefined;
  const next = argv[i + 1];
  return next === undefined || next.startsWith('--') ? true : next;
}

/** Megatron's PipelineParallelLayerLayout.parse_str_to_list, for checking the layouts we emit. */
function parseMegatronLayout(layout: string): string[][] {
  let text = layout.replace(/,/g, '');
  for (const pattern of [/\(([^)]+)\)\*(\d+)/g, /(.)\*(\d+)/g]) {
    text = text.replace(pattern, (_, unit: string, n: string) => unit.repeat(Number(n)));
  }
  return text.split('|').map((stage) => [...stage]);
}

describe('Megatron-LM flags', () => {
  it('every flag is one checked against Megatron-LM, for dense, MoE and MLA models', () => {
    for (const [model, layout] of [
      ['llama3.1-405b', {}],
      ['mixtral-8x7b', { tp: 2, pp: 4, ep: 8, etp: 1, ngpus: 512, gbs: 1024, seq_length: 4096, zero: 3, recompute: 'full' }],
      ['deepseek-v3', { tp: 4, pp: 16, ep: 8, cp: 2, ngpus: 1024, gbs: 1024, seq_length: 4096, recompute: 'selective', offload: 'optimizer_cpu_step' }],
    ] as Array<[string, Partial<LaunchLayout>]>) {
      const { argv } = launchArgs(input(model, layout), 'megatron');
      const unknown = argv.filter((token) => token.startsWith('--') && !MEGATRON_FLAGS.has(token));
      expect(unknown, model).toEqual([]);
    }
  });

  it('parallel sizes, batch and the derived data parallel size', () => {
    const { argv, text } = launchArgs(input('llama3.1-405b'), 'megatron');
    expect(flagValue(argv, '--tensor-model-parallel-size')).toBe('8');
    expect(flagValue(argv, '--pipeline-model-parallel-size')).toBe('16');
    expect(flagValue(argv, '--context-parallel-size')).toBe('1');
    expect(flagValue(argv, '--sequence-parallel')).toBe(true);
    expect(flagValue(argv, '--use-distributed-optimizer')).toBe(true);
    expect(flagValue(argv, '--micro-batch-size')).toBe('1');
    expect(flagValue(argv, '--global-batch-size')).toBe('2048');
    expect(flagValue(argv, '--expert-model-parallel-size')).toBeUndefined(); // dense model
    expect(text).toContain('data parallel 8, 256 micro-batches per step');
    expect(text).toMatch(/^torchrun --nnodes 128 --nproc-per-node 8 pretrain_gpt\.py \\$/m);
  });

  it("126 layers on 16 stages: the model's split is Llama 3's, the embedding and the loss counted as layers", () => {
    expect(defaultChunkLayers(126, 16, 1)).toEqual([[7], ...Array(14).fill([8]), [7]]);
    const { argv } = launchArgs(input('llama3.1-405b'), 'megatron');
    expect(flagValue(argv, '--account-for-embedding-in-pipeline-split')).toBe(true);
    expect(flagValue(argv, '--account-for-loss-in-pipeline-split')).toBe(true);
    expect(flagValue(argv, '--decoder-first-pipeline-num-layers')).toBeUndefined();
    // Interleaved over 4 virtual stages: 2 layers per chunk, 1 in the very first and the very last.
    const interleaved = launchArgs(input('llama3.1-405b', { schedule: 'interleaved', vpp: 4, tp: 4, cp: 8, gbs: 2048, ngpus: 8192 }), 'megatron').argv;
    expect(flagValue(interleaved, '--num-virtual-stages-per-pipeline-rank')).toBe('4');
    expect(flagValue(interleaved, '--account-for-loss-in-pipeline-split')).toBe(true);
  });

  it('first and last rank counts when the middle ranks are even; a layout string otherwise, parsing back to the split', () => {
    // 61 layers on 16 ranks: 2, fourteen 4s, 3 (+ the MTP module on the last rank).
    const layout = { tp: 4, pp: 16, ep: 8, cp: 2, ngpus: 1024, gbs: 1024, seq_length: 4096 };
    expect(defaultChunkLayers(61, 16, 1)!.flat()).toEqual([2, ...Array(14).fill(4), 3]);
    const { argv } = launchArgs(input('deepseek-v3', layout), 'megatron');
    expect(flagValue(argv, '--decoder-first-pipeline-num-layers')).toBe('2');
    expect(flagValue(argv, '--decoder-last-pipeline-num-layers')).toBe('3');
    expect(flagValue(argv, '--moe-layer-freq')).toBe('([0]*3+[1]*58)');
    expect(flagValue(argv, '--mtp-num-layers')).toBe('1');
    // Node-limited routing is the model's; DeepEP's dispatch is the trainer's and only where it is asked for.
    expect(flagValue(argv, '--moe-router-num-groups')).toBe('8');
    expect(flagValue(argv, '--moe-router-group-topk')).toBe('4');
    expect(argv).not.toContain('--moe-enable-deepep');
    const base = input('deepseek-v3', layout);
    const deepep = launchArgs({ ...base, trainer: { ...base.trainer, moe_dedup_dispatch: true } }, 'megatron').argv;
    expect(flagValue(deepep, '--moe-token-dispatcher-type')).toBe('flex');
    expect(flagValue(deepep, '--moe-enable-deepep')).toBe(true);
    const chunkLayers = [[3], [4], [5], ...Array(12).fill([4]), [1]];
    const custom = launchArgs(input('deepseek-v3', { ...layout, chunkLayers }), 'megatron').argv;
    const stages = parseMegatronLayout(flagValue(custom, '--pipeline-model-parallel-layout') as string);
    expect(stages.map((stage) => stage.filter((t) => t === 't').length)).toEqual(chunkLayers.flat());
    expect(stages[0][0]).toBe('E');
    expect(stages[15]).toEqual(['t', 'm', 'L']);
    // Virtual stages in model order (chunk j of rank p is stage j*pp + p); the layout implies them.
    const interleaved = launchArgs(
      input('llama3.1-8b', { pp: 2, tp: 8, ngpus: 64, gbs: 512, schedule: 'interleaved', vpp: 2, chunkLayers: [[7, 9], [8, 8]] }),
      'megatron',
    ).argv;
    expect(flagValue(interleaved, '--num-virtual-stages-per-pipeline-rank')).toBeUndefined();
    expect(flagValue(interleaved, '--pipeline-model-parallel-layout')).toBe('Et*7|t*8|t*9|t*8L');
  });

  it('schedule, recompute, ZeRO and offload', () => {
    const interleaved = launchArgs(input('llama3.1-8b', { pp: 4, tp: 2, ngpus: 64, gbs: 512, schedule: 'interleaved', vpp: 2 }), 'megatron').argv;
    expect(flagValue(interleaved, '--num-virtual-stages-per-pipeline-rank')).toBe('2');
    const full = launchArgs(input('llama3.1-8b', { pp: 1, tp: 8, ngpus: 64, gbs: 512, recompute: 'full', zero: 3 }), 'megatron').argv;
    expect(full.join(' ')).toContain('--recompute-granularity full --recompute-method uniform --recompute-num-layers 1');
    expect(full.join(' ')).toContain('--use-megatron-fsdp --data-parallel-sharding-strategy optim_grads_params');
    const zero2 = launchArgs(input('llama3.1-8b', { pp: 1, tp: 8, ngpus: 64, gbs: 512, zero: 'OPTIMIZER_STATES_AND_GRADS' }), 'megatron').argv;
    expect(flagValue(zero2, '--data-parallel-sharding-strategy')).toBe('optim_grads');
    const zero0 = launchArgs(input('llama3.1-8b', { pp: 1, tp: 8, ngpus: 64, gbs: 512, zero: 0 }), 'megatron').argv;
    expect(zero0.filter((t) => /distributed-optimizer|fsdp/.test(t))).toEqual([]);
    const offload = launchArgs(input('llama3.1-8b', { pp: 1, tp: 8, ngpus: 64, gbs: 512, offload: 'optimizer_cpu_step' }), 'megatron').argv;
    expect(offload.join(' ')).toContain('--optimizer-cpu-offload --optimizer-offload-fraction 1.0 --use-precision-aware-optimizer');
  });

  it('what Megatron-LM cannot run is an error naming the layout field', () => {
    expect(() => launchArgs(input('llama3.1-8b', { pp: 4, tp: 2, ngpus: 64, gbs: 512, schedule: 'gpipe' }), 'megatron')).toThrow(
      /^layout\.schedule: the gpipe schedule; Megatron-LM has no setting for it$/,
    );
    expect(() => launchArgs(input('llama3.1-8b', { ngpus: 100 }), 'megatron')).toThrow(/^layout\.ngpus: 100 is not divisible by tp x pp x cp = 128$/);
    expect(() => launchArgs(input('llama3.1-8b', { pp: 4, chunkLayers: [[8], [8], [8]] }), 'megatron')).toThrow(/^layout\.chunkLayers: must be 4 ranks/);
    expect(() => launchArgs(input('llama3.1-8b', { pp: 1, tp: 8, ngpus: 64, gbs: 512, zero: 3, reshard: false }), 'megatron')).toThrow(/^layout\.reshard: /);
    expect(() => launchArgs(input('llama3.1-8b', { pp: 4, tp: 2, ngpus: 64, gbs: 512, schedule: 'dualpipe' }), 'megatron')).toThrow(InputError);
  });
});

describe('HSDP (dp_replicas) in both targets', () => {
  it('Megatron: --num-distributed-optimizer-instances; torchtitan: replicate x shard degrees; bad replicas named', () => {
    const layout = { pp: 1, tp: 8, ngpus: 64, gbs: 512, dp_replicas: 4 };
    const { argv } = launchArgs(input('llama3.1-8b', { ...layout, zero: 1 }), 'megatron');
    expect(flagValue(argv, '--num-distributed-optimizer-instances')).toBe('4');
    expect(flagValue(launchArgs(input('llama3.1-8b', { ...layout, zero: 1, dp_replicas: 1 }), 'megatron').argv, '--num-distributed-optimizer-instances')).toBeUndefined();
    const { text } = launchArgs(input('llama3.1-8b', { ...layout, zero: 3 }), 'torchtitan');
    expect(text).toContain('config.parallelism.data_parallel_replicate_degree = 4');
    expect(text).toContain('config.parallelism.data_parallel_shard_degree = 2');
    expect(() => launchArgs(input('llama3.1-8b', { ...layout, zero: 1, dp_replicas: 3 }), 'megatron')).toThrow(/^layout\.dp_replicas: must divide dp \(8\)/);
    expect(() => launchArgs(input('llama3.1-8b', { ...layout, zero: 0, dp_replicas: 2 }), 'megatron')).toThrow(/^layout\.dp_replicas: .*ZeRO-0/);
  });
});

describe('torchtitan configuration', () => {
  it('degrees multiply to the GPU count; layers per stage as module names', () => {
    const { text } = launchArgs(input('llama3.1-405b', { zero: 3, recompute: 'full' }), 'torchtitan');
    const degree = (key: string) => Number(new RegExp(`config\\.parallelism\\.${key} = (\\d+)`).exec(text)![1]);
    expect(degree('tensor_parallel_degree') * degree('pipeline_parallel_degree') * degree('context_parallel_degree') *
      degree('data_parallel_replicate_degree') * degree('data_parallel_shard_degree')).toBe(1024);
    expect(text).toContain('config.parallelism.fsdp_reshard_after_forward = "always"');
    expect(text).toContain('config.parallelism.pipeline_parallel_schedule = "1F1B"');
    expect(text).toContain('config.parallelism.num_pp_microbatches = 256');
    expect(text).toContain('config.activation_checkpoint = FullAC.Config()');
    expect(text).toContain('config.training.num_tokens_per_train_step = 16777216');
    const parts = [...text.matchAll(/^ {8}\[(.*)\],$/gm)].map((m) => m[1]);
    expect(parts).toHaveLength(16);
    expect(parts.map((p) => (p.match(/"layers\.\d+"/g) ?? []).length)).toEqual(defaultChunkLayers(126, 16, 1)!.flat());
    expect(parts[0]).toMatch(/^"tok_embeddings", "layers\.0",/);
    expect(parts[15]).toMatch(/"layers\.125", "norm", "lm_head"$/);
  });

  it('interleaved stages run on rank s mod pp, with the layers in order', () => {
    const { text } = launchArgs(input('llama3.1-8b', { pp: 4, tp: 2, ngpus: 64, gbs: 512, zero: 0, schedule: 'interleaved', vpp: 2 }), 'torchtitan');
    expect(text).toContain('config.parallelism.pipeline_parallel_schedule = "Interleaved1F1B"');
    const parts = [...text.matchAll(/^ {8}\[(.*)\],$/gm)].map((m) => m[1]);
    expect(parts).toHaveLength(8);
    expect(parts[1]).toBe('"layers.4", "layers.5", "layers.6", "layers.7"');
    expect(text).toContain('config.parallelism.data_parallel_replicate_degree = 8');
  });

  it('torch.compile, which the step time was sized with or without, is CompileConfig.enable; Megatron-LM runs eager', () => {
    const eager = input('llama3.1-8b', { zero: 3 });
    expect(launchArgs(eager, 'torchtitan').text).toContain('config.compile.enable = False');
    const compiled = { ...eager, trainer: { ...eager.trainer, torch_compile: true } };
    expect(launchArgs(compiled, 'torchtitan').text).toContain('config.compile.enable = True');
    expect(() => launchArgs({ ...compiled, layout: { ...compiled.layout, zero: 1 } }, 'megatron')).toThrow(/^trainer\.torch_compile: /);
  });

  it('FP8 linears, which torchtitan builds with the model, are named in the header with the converter to add', () => {
    const bf16 = input('llama3.1-8b', { zero: 3 });
    expect(launchArgs(bf16, 'torchtitan').text).not.toContain('Float8LinearConverter');
    const fp8 = { ...bf16, trainer: { ...bf16.trainer, fp8: true, torch_compile: true } };
    expect(launchArgs(fp8, 'torchtitan').text).toContain('quantization=[Float8LinearConverter.Config(model_compile_enabled=True)]');
    // Megatron-LM: Transformer Engine's FP8 over bf16 parameters, which the bf16 launch lacked.
    const megatron = { ...bf16, trainer: { ...bf16.trainer, fp8: true }, layout: { ...bf16.layout, zero: 1 } };
    const argv = launchArgs(megatron, 'megatron').argv;
    expect(flagValue(argv, '--bf16')).toBe(true);
    expect(flagValue(argv, '--fp8-format')).toBe('hybrid');
    expect(argv).not.toContain('--fp8-param-gather');
    expect(launchArgs(bf16, 'megatron').argv).not.toContain('--fp8-format');
  });

  it("per-op selective recompute is torchtitan's SelectiveAC; Megatron-LM has no such policy", () => {
    const op = input('llama3.1-8b', { zero: 3, recompute: 'selective_op' });
    const { text } = launchArgs(op, 'torchtitan');
    expect(text).toContain('config.activation_checkpoint = SelectiveAC.Config()');
    expect(text).toContain("# SelectiveAC sized as torchtitan's per-op policy");
    expect(launchArgs(input('llama3.1-8b', { zero: 3, recompute: 'selective' }), 'torchtitan').text).toContain('Korthikanti et al. 2022');
    expect(() => launchArgs({ ...op, layout: { ...op.layout, zero: 1 } }, 'megatron')).toThrow(/^layout\.recompute: .*selective_op/);
  });

  it('matmuls in another dtype than the parameters (trainer.compute_dtype, autocast) are refused by both targets', () => {
    const base = input('llama3.1-8b', { zero: 3 });
    const autocast = { ...base, trainer: { ...base.trainer, param_dtype: 'float32' as const, compute_dtype: 'bfloat16' as const } };
    expect(() => launchArgs(autocast, 'torchtitan')).toThrow(/^trainer\.compute_dtype: bfloat16 matmuls over float32 parameters/);
    expect(() => launchArgs({ ...autocast, layout: { ...autocast.layout, zero: 1 } }, 'megatron')).toThrow(/^trainer\.compute_dtype: /);
    const same = { ...base, trainer: { ...base.trainer, compute_dtype: 'bfloat16' as const } };
    expect(launchArgs(same, 'torchtitan').text).toContain('mixed_precision_param = "bfloat16"');
  });

  it('what torchtitan cannot run is an error naming the layout field', () => {
    expect(() => launchArgs(input('llama3.1-405b', { zero: 1 }), 'torchtitan')).toThrow(/^layout\.zero: ZeRO-1/);
    const replicatedExperts = { tp: 1, pp: 1, ep: 8, ngpus: 64, gbs: 512, seq_length: 4096, zero: 0 };
    expect(() => launchArgs(input('mixtral-8x7b', replicatedExperts), 'torchtitan')).toThrow(/^layout\.ep: expert parallel 8 not dividing dp_shard x cp x tp = 1/);
    expect(launchArgs(input('mixtral-8x7b', { ...replicatedExperts, zero: 3 }), 'torchtitan').text).toContain('config.parallelism.expert_parallel_degree = 8');
    expect(() => launchArgs(input('deepseek-v3', { tp: 4, pp: 16, ep: 8, cp: 2, gbs: 1024, zero: 3 }), 'torchtitan')).toThrow(
      /^model\.mtp_num_layers: /,
    );
  });
});

describe('explain --emit: the pinned config, with the layers per chunk explain resolves', () => {
  const PINNED = {
    ngpus_range: 8192, tp_range: 8, pp_range: 16, schedule_range: 'interleaved', vpp_range: 8, cp_range: 1,
    shard_strategys: 3, grad_reduce_range: 'microbatch', reshard_range: true, sp_range: true, recompute_range: 'none',
    offload_range: 'none', mbs_range: 1,
  };

  it("Llama 3 405B on PP16 x VPP8: Megatron's embedding and loss accounting, torchtitan's empty first chunk", () => {
    const megatron = explainLaunch({ model: 'llama3.1-405b', search: PINNED, target: 'megatron' });
    expect(megatron.explanation.split.chunk_layers[0]).toEqual([0, 1, 1, 1, 1, 1, 1, 1]);
    expect(flagValue(megatron.argv, '--num-virtual-stages-per-pipeline-rank')).toBe('8');
    expect(flagValue(megatron.argv, '--account-for-embedding-in-pipeline-split')).toBe(true);
    expect(flagValue(megatron.argv, '--account-for-loss-in-pipeline-split')).toBe(true);
    expect(megatron.argv.join(' ')).toContain('--use-megatron-fsdp --data-parallel-sharding-strategy optim_grads_params');
    const titan = explainLaunch({ model: 'llama3.1-405b', search: PINNED, target: 'torchtitan' });
    const parts = [...titan.text.matchAll(/^ {8}\[(.*)\],$/gm)].map((m) => m[1]);
    expect(parts).toHaveLength(128);
    expect(parts[0]).toBe('"tok_embeddings"');
    expect(parts[126]).toBe('"layers.125"');
    expect(parts[127]).toBe('"norm", "lm_head"'); // the last chunk holds only the loss's side
  });

  it('the CLI prints the same text', () => {
    const flags = Object.entries(PINNED).flatMap(([key, value]) => [`--${key === 'shard_strategys' ? 'zero' : key.replace(/_range$/, '').replace(/_/g, '-')}`, String(value)]);
    const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'parasweep.js'), 'explain', '--model', 'llama3.1-405b', ...flags, '--emit', 'megatron'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe(explainLaunch({ model: 'llama3.1-405b', search: PINNED, target: 'megatron' }).text);
  });
});

describe('from a Hugging Face config.json to a launch command', () => {
  it('a pinned layout comes back as given; an open one is the fastest that fits', async () => {
    const pinned = await launch({
      model: join(REPO_ROOT, 'examples', 'hf', 'Llama-3.1-8B', 'config.json'),
      search: { ngpus_range: 64, tp_range: 2, pp_range: 2, cp_range: 1, mbs_range: 1, shard_strategys: 1, recompute_range: 'none', sp_range: true },
      engine: 'cpu',
      target: 'megatron',
    });
    expect(pinned.row.tp).toBe(2);
    expect(flagValue(pinned.argv, '--tensor-model-parallel-size')).toBe('2');
    expect(flagValue(pinned.argv, '--pipeline-model-parallel-size')).toBe('2');
    expect(flagValue(pinned.argv, '--num-layers')).toBe('32');
    const open = await launch({ model: 'llama3.1-8b', search: { ngpus_range: 64 }, engine: 'cpu', target: 'megatron' });
    expect(open.row.fits).toBe(true);
    expect(open.candidates).toBeGreaterThan(1000);
    await expect(launch({ model: 'llama3.1-8b', search: { ngpus_range: '8,16' }, engine: 'cpu', target: 'megatron' })).rejects.toThrow(
      /^search\.ngpus_range: launch arguments are for one GPU count, got 2 \(8, 16\)$/,
    );
    await expect(launch({ model: 'llama3.1-405b', search: { ngpus_range: 8 }, engine: 'cpu', target: 'megatron' })).rejects.toThrow(
      /^search: none of the \d+ valid configs on 8 GPUs fits in h100-sxm-80gb's memory/,
    );
  });

  it("launch passes over the configs its target cannot run: Megatron-LM and torchtitan's per-op recompute", async () => {
    const search = { ngpus_range: 8, tp_range: 2, pp_range: 1, cp_range: 1, mbs_range: 1, shard_strategys: 1, sp_range: true };
    const megatron = await launch({ model: 'llama3.1-8b', search: { ...search, recompute_range: ['selective_op', 'full'] }, engine: 'cpu', target: 'megatron' });
    expect(megatron.row.recompute).toBe('full');
    await expect(
      launch({ model: 'llama3.1-8b', search: { ...search, recompute_range: 'selective_op' }, engine: 'cpu', target: 'megatron' }),
    ).rejects.toThrow(/^search: none of the \d+ valid configs on 8 GPUs fits .* and runs on megatron/);
  });

  it('two commands: best, then launch --emit megatron gives the fastest config Megatron-LM runs', () => {
    const model = join('examples', 'hf', 'Mixtral-8x7B-v0.1', 'config.json');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'parasweep.js'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    // EP and expert TP pinned on both commands: an eighth of the 64-GPU grid, the same question to each.
    const narrow = ['--ngpus', '64', '--ep', '8', '--etp', '1,2'];
    const best = run('best', '--model', model, ...narrow, '--engine', 'cpu', '-q', '--top', '1', '--where', RUNNABLE.megatron);
    expect(best.status, best.stderr).toBe(0);
    // The table's first columns are tp and pp when one GPU count, batch and sequence are swept.
    expect(best.stdout).toMatch(/^ # +tp +pp /m);
    const rank1 = /^ +1 +(\d+) +(\d+) /m.exec(best.stdout)!;
    const emitted = run('launch', '--model', model, ...narrow, '--engine', 'cpu', '-q', '--emit', 'megatron');
    expect(emitted.status, emitted.stderr).toBe(0);
    expect(emitted.stderr).toBe('');
    expect(emitted.stdout).toContain(`--tensor-model-parallel-size ${rank1[1]}`);
    expect(emitted.stdout).toContain(`--pipeline-model-parallel-size ${rank1[2]}`);
    expect(emitted.stdout).toContain('--num-experts 8');
  }, 120_000);
});
