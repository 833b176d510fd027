// Compares parasweep's full memory formula with Megatron-LM's megatron/training/theoretical_memory_usage.py.
//
// Usage (from the repository root, after `npx tsc -p tsconfig.json`):
//   node bench/megatron-compare.mjs
//
// The reference bytes below are constants. They were obtained by running Megatron-LM's own
// theoretical_memory_usage.py (Megatron-LM commit d98e8a64, functions compute_weight_and_optimizer_memory and
// compute_activation_memory, i.e. the SP + selective-recompute path, --use-distributed-optimizer, bf16) with the
// arguments listed per case, through a local harness that is not part of this repository. No Megatron code is
// contained or called here: only parasweep's library and those published/harness numbers.
// docs/memory-model.md explains every difference this table shows.
import { sweep } from '../dist/index.js';

const GIB = 2 ** 30;
// Megatron's file ignores position embeddings and linear biases; these overrides make GPT-3 the same model.
const GPT3_AS_MEGATRON = ['model.position_embedding_type=rope', 'model.add_bias_linear=false'];

// [name, Megatron arguments, model, search, overrides, Megatron weights+optimizer bytes, Megatron activation bytes,
//  same model? (true: both sides model the same thing, 0.5% target applies)]
const CASES = [
  ['G175-A', 't8 p8 dp16 (1024 GPUs), gbs 1536', 'gpt3-175b', { ngpus_range: 1024, tp_range: 8, pp_range: 8 }, GPT3_AS_MEGATRON, 18880729344, 10292838400, true],
  ['G175-P4-DP8', 't8 p4 dp8 (256 GPUs), gbs 1536', 'gpt3-175b', { ngpus_range: 256, tp_range: 8, pp_range: 4 }, GPT3_AS_MEGATRON, 41367352320, 10280247296, true],
  ['G175-VPP2', 't8 p8 dp16, interleaved v=2', 'gpt3-175b', { ngpus_range: 1024, tp_range: 8, pp_range: 8, schedule_range: 'interleaved', vpp_range: 2 }, GPT3_AS_MEGATRON, 18880729344, 14795955200, true],
  ['G175-m<p', 't8 p8 dp16, gbs 32 (m = 2 < p)', 'gpt3-175b', { ngpus_range: 1024, tp_range: 8, pp_range: 8, gbs_range: 32 }, GPT3_AS_MEGATRON, 18880729344, 2573209600, true],
  ['G175-mbs2', 't8 p8 dp16, mbs 2', 'gpt3-175b', { ngpus_range: 1024, tp_range: 8, pp_range: 8, mbs_range: 2 }, GPT3_AS_MEGATRON, 18880729344, 20585676800, true],
  ['G175-P1', 't8 p1 dp8 (64 GPUs), activations + logits', 'gpt3-175b', { ngpus_range: 64, tp_range: 8, pp_range: 1 }, GPT3_AS_MEGATRON, 163699937280, 10335815680, true],
  ['L70-P8', 'Llama 3.1 70B t8 p8 dp16, gbs 2048', 'llama3.1-70b', { ngpus_range: 1024, tp_range: 8, pp_range: 8, gbs_range: 2048 }, [], 8112372480, 21542010880, false],
  ['L405-P9', 'Llama 3.1 405B t8 p9 dp16 (1152 GPUs)', 'llama3.1-405b', { ngpus_range: 1152, tp_range: 8, pp_range: 9, gbs_range: 2048 }, [], 39441100800, 65682874368, false],
  // Ablations of the Llama gap: dropout on (what Megatron's 34-based formula assumes), and GeLU (Megatron's 4f/h
  // MLP term, same f) on top of it, which leaves only GQA's smaller K and V.
  ['L70-P8 +dropout', 'as L70-P8, model.dropout=true', 'llama3.1-70b', { ngpus_range: 1024, tp_range: 8, pp_range: 8, gbs_range: 2048 }, ['model.dropout=true'], 8112372480, 21542010880, false],
  ['L405-P9 +dropout', 'as L405-P9, model.dropout=true', 'llama3.1-405b', { ngpus_range: 1152, tp_range: 8, pp_range: 9, gbs_range: 2048 }, ['model.dropout=true'], 39441100800, 65682874368, false],
  ['L405-P9 +dropout +gelu', 'as above, model.activation=gelu (activations only)', 'llama3.1-405b', { ngpus_range: 1152, tp_range: 8, pp_range: 9, gbs_range: 2048 }, ['model.dropout=true', 'model.activation=gelu'], null, 65682874368, false],
  // An uneven split: Megatron's file charges L/p = 15.75 layers to the first stage; parasweep's stage 0 has 15.
  ['L405-P8', 'Llama 3.1 405B t8 p8 dp16 (126 layers / 8)', 'llama3.1-405b', { ngpus_range: 1024, tp_range: 8, pp_range: 8, gbs_range: 2048 }, [], 44148284928, 65666088960, false],
];

// Megatron's path: SP + selective recompute, distributed optimizer (ZeRO-1), mbs 1, 1F1B, no CP, no offload.
const BASE = { cp_range: 1, shard_strategys: 1, sp_range: true, recompute_range: 'selective', offload_range: 'none', mbs_range: 1, schedule_range: '1f1b', vpp_range: 1 };

const pct = (ours, theirs) => (theirs === null ? 'n/a' : `${((ours / theirs - 1) * 100).toFixed(4)}%`);
const bytes = (x) => (x === null ? 'n/a' : Math.round(x).toLocaleString('en-US'));
console.log('| case | layout | Megatron W+O (B) | parasweep W+O (B) | diff | Megatron act. (B) | parasweep act. (B) | diff | stage | same model |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
let worstSame = 0;
for (const [name, layout, model, search, overrides, megW, megA, same] of CASES) {
  const { table } = await sweep({ model, engine: 'cpu', overrides, search: { ...BASE, ...search } });
  if (table.numRows !== 1) throw new Error(`${name}: expected one config, got ${table.numRows}`);
  const row = table.get(0).toJSON();
  const w = (row.weights_gib + row.grads_gib + row.optimizer_gib) * GIB;
  // Megatron's file adds the output layer's fp32 input and logits to the activations when p = 1.
  const a = (row.activations_gib + (search.pp_range === 1 ? row.logits_gib : 0)) * GIB;
  if (same) worstSame = Math.max(worstSame, Math.abs(w / megW - 1), Math.abs(a / megA - 1));
  console.log(`| ${name} | ${layout} | ${bytes(megW)} | ${bytes(w)} | ${pct(w, megW)} | ${bytes(megA)} | ${bytes(a)} | ${pct(a, megA)} | ${row.heaviest_stage} | ${same ? 'yes' : 'no'} |`);
}
console.log(`\nLargest |difference| where both model the same thing: ${(worstSame * 100).toFixed(4)}% (target 0.5%)`);
