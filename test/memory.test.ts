/**
 * The memory side of the full formula (src/model.ts, docs/memory-model.md), checked against numbers derived by
 * hand from the papers and the documented terms, not against the code's own output:
 * Korthikanti et al. 2022 Table 2, the GQA/SwiGLU/flash generalisations, Megatron-LM's theoretical_memory_usage.py
 * (bench/megatron-compare.mjs), ZeRO 0-3 bytes per parameter, in-flight micro-batches and the uneven pipeline split,
 * fits/headroom/offload, and the parameter totals of bundled models.
 */
import { chunkLayers, defaultSplit, megatronSplitArgs, pinnedSplit } from '../src/layout.js';
import { describe, expect, it } from 'vitest';
import { loadCalibration } from '../src/config/calibration.js';
import { loadHardware } from '../src/config/hardware.js';
import { loadConfig } from '../src/config/load.js';
import { fullFormula } from '../src/formulas/full.js';
import {
  FULL_CONSTANTS,
  FullConstants,
  inflight_microbatches,
  largest_layer_params,
  layer_activation_bytes,
  model_params,
  OFFLOAD_OPTIMIZER,
  OFFLOAD_OPTIMIZER_CPU_STEP,
  RECOMPUTE_FULL,
  RECOMPUTE_NONE,
  RECOMPUTE_SELECTIVE,
  RECOMPUTE_SELECTIVE_OP,
  SCHEDULE_1F1B,
  GRAD_REDUCE_MICROBATCH,
  GRAD_REDUCE_STEP,
  SCHEDULE_GPIPE,
  SCHEDULE_INTERLEAVED,
  stage_layer_counts,
  chunk_first_layer,
  chunk_layers,
  stage_memory,
  stage_params,
} from '../src/model.js';
import { prepareSweep, sweep } from '../src/sweep.js';
import { estimate, row } from './model-rows.js';

const GIB = 2 ** 30;

/** |actual/expected - 1| <= rel (exact equality when expected is 0). */
function expectRel(actual: number, expected: number, rel = 1e-9): void {
  if (expected === 0) {
    expect(actual).toBe(0);
    return;
  }
  const err = Math.abs(actual / expected - 1);
  if (!(err <= rel)) {
    throw new Error(`expected ${actual} to be within ${rel} (relative) of ${expected}; relative error ${err}`);
  }
}

/**
 * A GPT-style model: MHA (g = a, d = h/a), f = 4h, GeLU, LayerNorm, tied embeddings, no biases, no learned
 * positions, dropout on, flash attention off, no MLA, no experts; bf16 weights, fp32 grads/master/Adam moments.
 */
function gpt(h: number, a: number, layers: number, over: Partial<FullConstants> = {}): FullConstants {
  const c: FullConstants = {
    hidden_size: h,
    num_layers: layers,
    num_attention_heads: a,
    num_query_groups: a,
    kv_channels: h / a,
    ffn_hidden_size: 4 * h,
    vocab_size: 51200,
    vocab_divisor: 128,
    gated_mlp: 0,
    norm_params: 2,
    bias: 0,
    learned_positions: 0,
    untied_embeddings: 0,
    dropout: 1,
    mla: 0,
    q_lora_rank: 0,
    kv_lora_rank: 0,
    qk_head_dim: 0,
    qk_pos_emb_head_dim: 0,
    v_head_dim: 0,
    num_experts: 0,
    moe_k: 0,
    moe_ffn_hidden_size: 4 * h,
    first_k_dense_layers: 0,
    moe_layer_freq: 0,
    num_shared_experts: 0,
    shared_expert_ffn_hidden_size: 4 * h,
    capacity_factor: 1,
    moe_router_num_groups: 1,
    moe_router_group_topk: 1,
    mtp_num_layers: 0,
    param_bytes: 2,
    grad_bytes: 4,
    optimizer_state_bytes: 4,
    master_bytes: 4,
    flash_attention: 0,
    memory_gib: 80,
    headroom: 0.1,
    peak_flops: 1e15,
    hbm_bytes_s: 1e12,
    scaleup_bytes_s: 1e11,
    scaleout_bytes_s: 1e10,
    gpus_per_node: 8,
    scaleup_latency_s: 1e-6,
    scaleout_latency_s: 1e-5,
    collective_latency_s: 5e-6,
    pcie_bytes_s: 1e10,
    gemm_efficiency_max: 0.5,
    gemm_efficiency_half_dim: 0,
    memory_passes: 2,
    cpu_optimizer_params_s: 1e9,
    fp8_peak_flops: 0,
    fp8_linear: 0,
    fp8_efficiency: 1,
    attention_efficiency: 0.5,
    attention_half_seq: 0,
    tp_comm_overlap: 0,
    overlap_grad_reduce: 0,
    overlap_param_gather: 0,
    overlap_p2p_comm: 0,
    moe_a2a_overlap: 0,
    moe_dedup_dispatch: 0,
    cp_comm: 0,
    overlap_cost: 0,
  };
  return { ...c, ...over };
}

describe('test constants', () => {
  it('the hand-built FullConstants have exactly the fields of FULL_CONSTANTS', () => {
    expect(Object.keys(gpt(1024, 16, 4)).sort()).toEqual([...FULL_CONSTANTS].sort());
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 1. Korthikanti et al. 2022, Table 2
// ---------------------------------------------------------------------------------------------------------------

describe('Korthikanti et al. 2022, Table 2: activation bytes of one GPT layer', () => {
  const shapes = [
    { name: 'GPT-3 175B (s 2048, b 1, h 12288, a 96, t 8)', s: 2048, b: 1, h: 12288, a: 96, t: 8 },
    { name: 'GPT 13B-like (s 4096, b 4, h 5120, a 40, t 4)', s: 4096, b: 4, h: 5120, a: 40, t: 4 },
    { name: 'odd shape (s 1000, b 3, h 2560, a 20, t 2)', s: 1000, b: 3, h: 2560, a: 20, t: 2 },
  ];
  for (const { name, s, b, h, a, t } of shapes) {
    describe(name, () => {
      const c = gpt(h, a, 1);
      const sbh = s * b * h;
      const act = (tp: number, sp: number, recompute: number) => layer_activation_bytes(c, 0, s, s, b, tp, sp, 1, recompute);

      it('no parallelism: sbh(34 + 5as/h)', () => {
        expectRel(act(1, 0, RECOMPUTE_NONE), sbh * (34 + (5 * a * s) / h));
      });
      it('tensor parallel: sbh(10 + 24/t + 5as/(ht))', () => {
        expectRel(act(t, 0, RECOMPUTE_NONE), sbh * (10 + 24 / t + (5 * a * s) / (h * t)));
      });
      it('tensor + sequence parallel: sbh(34/t + 5as/(ht))', () => {
        expectRel(act(t, 1, RECOMPUTE_NONE), sbh * (34 / t + (5 * a * s) / (h * t)));
      });
      it('tensor + sequence parallel + selective recompute: sbh·34/t', () => {
        expectRel(act(t, 1, RECOMPUTE_SELECTIVE), (sbh * 34) / t);
      });
      it('selective recompute without parallelism: 34sbh; TP without SP: sbh(10 + 24/t)', () => {
        expectRel(act(1, 0, RECOMPUTE_SELECTIVE), 34 * sbh);
        expectRel(act(t, 0, RECOMPUTE_SELECTIVE), sbh * (10 + 24 / t));
      });
      it('full recompute: 2sbh without SP (whatever t), 2sbh/t with SP', () => {
        expectRel(act(1, 0, RECOMPUTE_FULL), 2 * sbh);
        expectRel(act(t, 0, RECOMPUTE_FULL), 2 * sbh);
        expectRel(act(t, 1, RECOMPUTE_FULL), (2 * sbh) / t);
      });
    });
  }
});

describe("torchtitan's per-op selective checkpointing (selective_op): what the policy saves of one layer", () => {
  // GPT layer (MHA, 4h MLP, not gated): the block input, Q and V, the first MLP matmul's 4h, the attention output
  // and its fp32 log-sum-exp; with SP the two reduce-scatter outputs.
  const s = 2048;
  const b = 2;
  const h = 4096;
  const a = 32;
  const t = 4;
  const sbh = s * b * h;
  const asb = a * s * b;
  const act = (c: FullConstants, tp: number, sp: number) => layer_activation_bytes(c, 0, s, s, b, tp, sp, 1, RECOMPUTE_SELECTIVE_OP);

  it('no parallelism: 2sbh (input) + 2sbh·(1 + 1 + 4) (Q, V, FC1) + 2sbh + 4asb (attention output)', () => {
    expectRel(act(gpt(h, a, 1), 1, 0), 16 * sbh + 4 * asb);
  });
  it('TP + SP: everything split by t, the two reduce-scatter outputs added', () => {
    expectRel(act(gpt(h, a, 1), t, 1), (2 * sbh + 12 * sbh + 2 * sbh + 4 * asb + 4 * sbh) / t);
  });
  it('gated MLP with GQA: Q, V (kv heads), w1 (f) and w2 (the row-parallel partial sum, sbh on every rank)', () => {
    const f = 14336;
    const c = gpt(h, a, 1, { num_query_groups: 8, ffn_hidden_size: f, gated_mlp: 1 });
    const v = 8 * (h / a);
    expectRel(act(c, t, 1), (2 * sbh + 2 * s * b * (h + v + f) + 2 * sbh + 4 * asb + 4 * sbh) / t + 2 * sbh);
  });
  it('FP8 linears save what bf16 ones do (their aten.mm is what the policy sees)', () => {
    expect(act(gpt(h, a, 1, { fp8_linear: 1 }), t, 1)).toBe(act(gpt(h, a, 1), t, 1));
  });
  it('a MoE layer keeps Q and V of its attention and nothing of its experts', () => {
    const moe = layer_activation_bytes(gpt(h, a, 1), 1, s, s, b, t, 1, 1, RECOMPUTE_SELECTIVE_OP);
    expectRel(moe, (2 * sbh + 2 * sbh + 4 * asb + 4 * sbh + 2 * sbh * 2) / t);
  });
  it('between full and no recompute; the stage holds one rebuilt layer on top, as with full recompute', () => {
    const c = gpt(h, a, 2, { dropout: 0, flash_attention: 1 });
    const at = (recompute: number) => layer_activation_bytes(c, 0, s, s, b, t, 1, 1, recompute);
    expect(at(RECOMPUTE_SELECTIVE_OP)).toBeGreaterThan(at(RECOMPUTE_FULL));
    expect(at(RECOMPUTE_SELECTIVE_OP)).toBeLessThan(at(RECOMPUTE_NONE));
    const r = row({ ngpus: t, tp: t, sp: 1, seq_length: s, global_batch_size: b, mbs: b, num_layers: 2 });
    const op = stage_memory(c, { ...r, recompute: RECOMPUTE_SELECTIVE_OP }, 0).activations;
    const full = stage_memory(c, { ...r, recompute: RECOMPUTE_FULL }, 0).activations;
    expectRel(op - full, 2 * (at(RECOMPUTE_SELECTIVE_OP) - at(RECOMPUTE_FULL)));
  });

  it('the GPT-3 numbers themselves (s 2048, b 1, h 12288, a 96, t 8), to the byte', () => {
    const c = gpt(12288, 96, 1);
    const sbh = 2048 * 12288; // 25,165,824; 5as/h = 80
    expect(layer_activation_bytes(c, 0, 2048, 2048, 1, 1, 0, 1, RECOMPUTE_NONE)).toBe(114 * sbh);
    expect(layer_activation_bytes(c, 0, 2048, 2048, 1, 8, 0, 1, RECOMPUTE_NONE)).toBe(23 * sbh);
    expect(layer_activation_bytes(c, 0, 2048, 2048, 1, 8, 1, 1, RECOMPUTE_NONE)).toBe(14.25 * sbh);
    expect(layer_activation_bytes(c, 0, 2048, 2048, 1, 8, 1, 1, RECOMPUTE_SELECTIVE)).toBe(4.25 * sbh);
    expect(layer_activation_bytes(c, 0, 2048, 2048, 1, 8, 0, 1, RECOMPUTE_FULL)).toBe(2 * sbh);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. GQA, SwiGLU, flash attention: one Llama-like layer by hand
// ---------------------------------------------------------------------------------------------------------------

describe('GQA, SwiGLU, flash attention and dropout off: one Llama-3.1-70B-like layer by hand', () => {
  // h 8192, 64 heads of 128, 8 KV groups, SwiGLU f = 28672 = 3.5h, no dropout.
  const h = 8192;
  const a = 64;
  const g = 8;
  const d = 128;
  const f = 28672;
  const s = 8192;
  const b = 1;
  const t = 8;
  const sbh = s * b * h;
  const llama = (over: Partial<FullConstants> = {}) =>
    gpt(h, a, 80, { num_query_groups: g, kv_channels: d, ffn_hidden_size: f, gated_mlp: 1, norm_params: 1, dropout: 0, ...over });

  // Documented terms (docs/memory-model.md section 3), bf16 = 2 bytes.
  const outside = (dropout: number) => 2 * sbh + 2 * sbh + dropout * sbh + (2 * sbh + 2 * sbh + dropout * sbh); // norms, QKV/FC1 inputs, masks
  const qkv = 2 * s * b * (a * d + 2 * g * d); // GQA: K and V are g·d wide
  const projection = 2 * s * b * a * d;
  const swiglu_mlp = s * b * (2 * 2 * f + 2 * f); // both halves of FC1's output, and the activation output
  const flash_lse = 4 * a * s * b; // fp32 log-sum-exp per query and head

  it('TP + SP, selective recompute: 33.5·sbh/t (the documented Llama 70B per-layer figure)', () => {
    const expected = (outside(0) + qkv + projection + swiglu_mlp) / t;
    expectRel(expected, (33.5 * sbh) / t, 0); // the hand terms themselves: 8 + 2.5 + 2 + 21 = 33.5
    expectRel(layer_activation_bytes(llama(), 0, s, s, b, t, 1, 1, RECOMPUTE_SELECTIVE), expected);
    // Flash attention changes nothing under selective recompute (the core is recomputed).
    expectRel(layer_activation_bytes(llama({ flash_attention: 1 }), 0, s, s, b, t, 1, 1, RECOMPUTE_SELECTIVE), expected);
  });

  it('TP + SP, flash attention, no recompute: adds the fp32 log-sum-exp 4asb/t', () => {
    const expected = (outside(0) + qkv + flash_lse + projection + swiglu_mlp) / t;
    expectRel(layer_activation_bytes(llama({ flash_attention: 1 }), 0, s, s, b, t, 1, 1, RECOMPUTE_NONE), expected);
  });

  it('TP without SP, no flash, no dropout: 2as²b/t for the scores, the outside terms unsharded', () => {
    const expected = outside(0) + (qkv + 2 * a * s * s * b + projection + swiglu_mlp) / t;
    expectRel(layer_activation_bytes(llama(), 0, s, s, b, t, 0, 1, RECOMPUTE_NONE), expected);
  });

  it('dropout on, no flash: two sbh masks outside and 5as²b/t for the scores', () => {
    const expected = (outside(1) + qkv + 5 * a * s * s * b + projection + swiglu_mlp) / t;
    expectRel(layer_activation_bytes(llama({ dropout: 1 }), 0, s, s, b, t, 1, 1, RECOMPUTE_NONE), expected);
  });

  it('context parallelism: s/c local queries attend over all s_kv keys', () => {
    const cp = 4;
    const sl = s / cp;
    const sbhl = sl * b * h;
    const expected =
      (8 * sbhl + 2 * sl * b * (a * d + 2 * g * d) + 2 * a * sl * s * b + 2 * sl * b * a * d + sl * b * 6 * f) / t;
    expectRel(layer_activation_bytes(llama(), 0, sl, s, b, t, 1, 1, RECOMPUTE_NONE), expected);
  });

  it('Llama 3.1 405B shape: 31.75·sbh/t per layer (TP + SP + selective, no dropout)', () => {
    const c = gpt(16384, 128, 126, {
      num_query_groups: 8,
      kv_channels: 128,
      ffn_hidden_size: 53248,
      gated_mlp: 1,
      norm_params: 1,
      dropout: 0,
    });
    expectRel(layer_activation_bytes(c, 0, 8192, 8192, 1, 8, 1, 1, RECOMPUTE_SELECTIVE), (31.75 * 8192 * 16384) / 8);
  });

  it('an MoE layer (E 8, k 2, cf 1.25, expert-TP 1) by hand', () => {
    const E = 8;
    const k = 2;
    const cf = 1.25;
    const fe = 14336;
    const c = llama({ num_experts: E, moe_k: k, moe_ffn_hidden_size: fe, moe_layer_freq: 1, capacity_factor: cf });
    const R = (s * b * k * cf) / t; // routed token copies on this rank (SP)
    const attention = (2 * sbh + 2 * sbh + qkv + projection) / t;
    const moe = (2 * sbh + 2 * sbh) / t + (4 * s * b * E) / t + R * (2 * h + 2 * 2 * fe + 2 * fe + 2 * h);
    expectRel(layer_activation_bytes(c, 1, s, s, b, t, 1, 1, RECOMPUTE_SELECTIVE), attention + moe);
    // Expert-TP 8: the dispatched input is gathered over the 8 ranks and each computes 1/8 of the expert's width,
    // but the expert output kept for the combine is reduce-scattered back to this rank's own tokens first.
    const et = 8;
    const moeEt = (2 * sbh + 2 * sbh) / t + (4 * s * b * E) / t + R * (et * 2 * h + 2 * 2 * fe + 2 * fe + 2 * h);
    expectRel(layer_activation_bytes(c, 1, s, s, b, t, 1, et, RECOMPUTE_SELECTIVE), attention + moeEt);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. Megatron-LM's theoretical_memory_usage.py (reference bytes from bench/megatron-compare.mjs)
// ---------------------------------------------------------------------------------------------------------------

describe("agreement with Megatron-LM's theoretical_memory_usage.py", () => {
  // Megatron's path: SP + selective recompute, distributed optimizer (ZeRO-1), mbs 1, 1F1B, no CP, no offload.
  const BASE = {
    cp_range: 1,
    shard_strategys: 1,
    sp_range: true,
    recompute_range: 'selective',
    offload_range: 'none',
    mbs_range: 1,
    schedule_range: '1f1b',
    vpp_range: 1,
  };
  // Megatron's file counts neither learned position embeddings nor biases.
  const GPT3_AS_MEGATRON = ['model.position_embedding_type=rope', 'model.add_bias_linear=false'];

  async function one(model: string, overrides: string[], search: Record<string, unknown>): Promise<Record<string, number>> {
    const { table } = await sweep({ model, engine: 'cpu', overrides, search: { ...BASE, ...search } });
    expect(table.numRows).toBe(1);
    const r = table.get(0)!.toJSON() as unknown as Record<string, number>;
    return { ...r, wo: (r.weights_gib + r.grads_gib + r.optimizer_gib) * GIB, act: r.activations_gib * GIB };
  }

  // [name, search, Megatron weights+grads+optimizer bytes, Megatron activation bytes]
  const GPT3_CASES: Array<[string, Record<string, unknown>, number, number]> = [
    ['G175-A t8 p8 dp16', { ngpus_range: 1024, tp_range: 8, pp_range: 8 }, 18880729344, 10292838400],
    ['G175-P4-DP8 t8 p4 dp8', { ngpus_range: 256, tp_range: 8, pp_range: 4 }, 41367352320, 10280247296],
    ['G175-VPP2 interleaved v 2', { ngpus_range: 1024, tp_range: 8, pp_range: 8, schedule_range: 'interleaved', vpp_range: 2 }, 18880729344, 14795955200],
    ['G175-m<p gbs 32 (m 2)', { ngpus_range: 1024, tp_range: 8, pp_range: 8, gbs_range: 32 }, 18880729344, 2573209600],
    ['G175-mbs2', { ngpus_range: 1024, tp_range: 8, pp_range: 8, mbs_range: 2 }, 18880729344, 20585676800],
  ];
  for (const [name, search, megW, megA] of GPT3_CASES) {
    it(`GPT-3 175B ${name}: W+O and activations within 0.5% (in fact ~1e-6 and to the byte)`, async () => {
      const r = await one('gpt3-175b', GPT3_AS_MEGATRON, search);
      expect(r.heaviest_stage).toBe(0);
      expectRel(r.wo, megW, 0.005);
      expectRel(r.act, megA, 0.005);
      // The only W+O difference is the final norm, on the last stage here and spread over stages there.
      expectRel(r.wo, megW, 2e-6);
      expectRel(r.act, megA, 1e-9);
    });
  }

  it('GPT-3 175B t8 p1 dp8: W+O, and activations + logits (Megatron adds the output layer at p = 1)', async () => {
    const r = await one('gpt3-175b', GPT3_AS_MEGATRON, { ngpus_range: 64, tp_range: 8, pp_range: 1 });
    expectRel(r.wo, 163699937280, 1e-9);
    expectRel(r.act + r.logits_gib * GIB, 10335815680, 1e-9);
  });

  it('G175-A: the W+O gap is exactly the final LayerNorm (2h params at 6 + 12/16 B) moved to the last stage', async () => {
    const r = await one('gpt3-175b', GPT3_AS_MEGATRON, { ngpus_range: 1024, tp_range: 8, pp_range: 8 });
    // Megatron spreads the final norm as 2h/p over every stage; parasweep puts it on the last stage.
    expectRel(18880729344 - r.wo, ((2 * 12288) / 8) * (6 + 12 / 16), 1e-6);
  });

  const LLAMA_CASES: Array<[string, string, Record<string, unknown>, number]> = [
    ['L70-P8 t8 p8 dp16', 'llama3.1-70b', { ngpus_range: 1024, tp_range: 8, pp_range: 8, gbs_range: 2048 }, 8112372480],
    ['L405-P9 t8 p9 dp16', 'llama3.1-405b', { ngpus_range: 1152, tp_range: 8, pp_range: 9, gbs_range: 2048 }, 39441100800],
  ];
  for (const [name, model, search, megW] of LLAMA_CASES) {
    it(`Llama ${name}: weights + grads + optimizer within 0.5%`, async () => {
      const r = await one(model, [], search);
      expectRel(r.wo, megW, 0.005);
      expectRel(r.wo, megW, 2e-6);
    });
  }

  it('Llama activations differ from the file by design (GQA, SwiGLU, no dropout): hand-computed instead', async () => {
    // L70-P8: stage 0 has 10 layers of 33.5·sbh/t, 8 micro-batches in flight, and the int64 token ids 8sb/t.
    const r70 = await one('llama3.1-70b', [], LLAMA_CASES[0][2]);
    const sbh70 = 8192 * 8192;
    expect(r70.inflight_microbatches).toBe(8);
    expectRel(r70.act, 8 * ((10 * 33.5 * sbh70) / 8 + (8 * 8192) / 8), 1e-9);
    // L405-P9: 14 layers of 31.75·sbh/t, 9 in flight.
    const r405 = await one('llama3.1-405b', [], LLAMA_CASES[1][2]);
    const sbh405 = 8192 * 16384;
    expectRel(r405.act, 9 * ((14 * 31.75 * sbh405) / 8 + (8 * 8192) / 8), 1e-9);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. ZeRO 0-3: bytes per parameter
// ---------------------------------------------------------------------------------------------------------------

describe('ZeRO stages: model-state bytes per parameter (pp = 1, bf16 weights, fp32 grads, master and Adam)', () => {
  // Small GPT with every parameter kind: biases, LayerNorm, learned positions, tied embeddings.
  const h = 1024;
  const a = 16;
  const L = 4;
  const seq = 1024;
  const c = gpt(h, a, L, { bias: 1, learned_positions: 1 });
  const V = 51200; // a multiple of 128·t for every t used: no padding

  /** Parameters on one GPU of the only stage, by hand (docs/memory-model.md section 1). */
  function handParams(t: number) {
    const attention = 4 * h * h + (h + 2 * h + h); // QKVO + biases (a·d = g·d = h)
    const mlp = 2 * h * 4 * h + (4 * h + h); // FC1, FC2 + biases
    const layer = attention / t + mlp / t + 2 * 2 * h; // two LayerNorms, replicated over TP
    const embedding = (V * h) / t + seq * h; // word embedding (TP-sharded) + learned positions (replicated)
    const finalNorm = 2 * h; // tied embeddings with p = 1: no separate output layer
    return { layer, total: L * layer + embedding + finalNorm };
  }

  const layouts = [
    { name: 'dp 8', ngpus: 8, tp: 1, cp: 1, d: 8 },
    { name: 't 2, dp 4', ngpus: 8, tp: 2, cp: 1, d: 4 },
    { name: 'dp 4 x cp 2 (CP shards the optimizer too)', ngpus: 8, tp: 1, cp: 2, d: 8 },
    { name: 't 2, dp 4 x cp 2', ngpus: 16, tp: 2, cp: 2, d: 8 },
  ];
  for (const { name, ngpus, tp, cp, d } of layouts) {
    describe(name, () => {
      const r0 = row({ ngpus, seq_length: seq, global_batch_size: 64, tp, cp, zero: 0 });
      const P = handParams(tp).total;

      it('stage_params and params_gpu equal the hand count; dp·cp = d', () => {
        expect(r0.dp * r0.cp).toBe(d);
        const [dense, expert] = stage_params(c, r0, 0);
        expectRel(dense, P);
        expect(expert).toBe(0);
        expectRel(estimate(c, r0).params_gpu, P);
        expectRel(largest_layer_params(c, r0), handParams(tp).layer);
      });

      const cases: Array<[number, number, number, number]> = [
        // zero, weights B/param, grads B/param, optimizer B/param
        [0, 2, 4, 12],
        [1, 2, 4, 12 / d],
        [2, 2, 4 / d, 12 / d],
        [3, 2 / d, 4 / d, 12 / d],
      ];
      for (const [zero, w, g, o] of cases) {
        it(`ZeRO-${zero}: ${zero === 0 ? '2 + 4 + 12' : zero === 1 ? '2 + 4 + 12/d' : zero === 2 ? '2 + (4 + 12)/d' : '(2 + 4 + 12)/d + 2 layers gathered'}`, () => {
          const r = { ...r0, zero, grad_reduce: zero >= 2 ? GRAD_REDUCE_MICROBATCH : GRAD_REDUCE_STEP, reshard: zero === 3 ? 1 : 0 };
          const m = stage_memory(c, r, 0);
          const gathered = zero === 3 ? 2 * 2 * handParams(tp).layer : 0; // current + prefetched layer, bf16
          // One layer's whole fp32 gradients wait for their reduce-scatter.
          const pending = zero >= 2 ? 4 * handParams(tp).layer : 0;
          expectRel(m.weights, w * P + gathered);
          expectRel(m.grads, g * P + pending);
          expectRel(m.optimizer, o * P);
          const out = estimate(c, r);
          expectRel((out.weights_gib + out.grads_gib + out.optimizer_gib) * GIB, (w + g + o) * P + gathered + pending);
        });
      }

      // HSDP: the same states sharded over the d / replicas ranks of one replica (FSDP HYBRID_SHARD).
      for (const replicas of [2, 4]) {
        if (r0.dp % replicas !== 0) continue;
        it(`${replicas} replicas: ZeRO-1 12/(d/${replicas}), ZeRO-2 (4 + 12)/(d/${replicas}), ZeRO-3 (2 + 4 + 12)/(d/${replicas})`, () => {
          const shard = d / replicas;
          const layer = handParams(tp).layer;
          const at = (zero: number) =>
            stage_memory(c, { ...r0, zero, dp_replicas: replicas, grad_reduce: zero >= 2 ? GRAD_REDUCE_MICROBATCH : GRAD_REDUCE_STEP, reshard: zero === 3 ? 1 : 0 }, 0);
          expectRel(at(1).optimizer, (12 / shard) * P);
          expectRel(at(1).weights + at(1).grads, 6 * P);
          expectRel(at(2).grads, (4 / shard) * P + 4 * layer);
          expectRel(at(2).optimizer, (12 / shard) * P);
          expectRel(at(3).weights, (2 / shard) * P + 2 * 2 * layer);
        });
      }
    });
  }

  it('ZeRO-1 with the defaults is Megatron’s 6 + 12/N bytes per parameter', () => {
    const r = row({ ngpus: 16, seq_length: seq, global_batch_size: 64, zero: 1 });
    const m = stage_memory(c, r, 0);
    expectRel((m.weights + m.grads + m.optimizer) / handParams(1).total, 6 + 12 / 16);
  });

  it('master_weights off (master_bytes 0) leaves 8 bytes of Adam state per parameter', () => {
    const c2 = { ...c, master_bytes: 0 };
    const r = row({ ngpus: 4, seq_length: seq, global_batch_size: 64, zero: 0 });
    expectRel(stage_memory(c2, r, 0).optimizer, 8 * handParams(1).total);
  });

  describe('MoE: expert parameters are sharded by EP and their states over expert-DP', () => {
    // 4 layers, the first dense, then 3 MoE layers of 8 SwiGLU experts (fe 2048), no biases, RMSNorm, untied.
    const E = 8;
    const fe = 2048;
    const f = 4096;
    const moe = gpt(h, a, 4, {
      gated_mlp: 1,
      norm_params: 1,
      untied_embeddings: 1,
      ffn_hidden_size: f,
      num_experts: E,
      moe_k: 2,
      moe_ffn_hidden_size: fe,
      first_k_dense_layers: 1,
      moe_layer_freq: 1,
    });
    const ep = 4;
    const r = row({ ngpus: 16, seq_length: seq, global_batch_size: 64, ep, zero: 1 });
    const attention = 4 * h * h;
    const Pd = attention + 3 * h * f + 2 * h + 3 * (attention + 2 * h + h * E) + V * h + h + V * h; // + router, emb, norm, output
    const Pe = 3 * (E / ep) * 3 * h * fe;

    it('dense and expert parameters per GPU by hand; edp = ngpus/(p·et·e) = 4, dp·cp = 16', () => {
      expect(r.edp).toBe(4);
      expect(r.dp).toBe(16);
      const [dense, expert] = stage_params(moe, r, 0);
      expectRel(dense, Pd);
      expectRel(expert, Pe);
    });

    it('ZeRO-1: optimizer = 12·(P_d/16 + P_e/4); ZeRO-2 grads = 4·(P_d/16 + P_e/4)', () => {
      expectRel(stage_memory(moe, r, 0).optimizer, 12 * (Pd / 16 + Pe / 4));
      const moeLayer = attention + 2 * h + h * E + (E / ep) * 3 * h * fe;
      expectRel(stage_memory(moe, { ...r, zero: 2, grad_reduce: GRAD_REDUCE_MICROBATCH }, 0).grads, 4 * (Pd / 16 + Pe / 4) + 4 * moeLayer);
    });

    it('ZeRO-3: weights = 2·(P_d/16 + P_e/4) + 2 gathered MoE layers (with their E/e experts)', () => {
      const moeLayer = attention + 2 * h + h * E + (E / ep) * 3 * h * fe;
      expectRel(largest_layer_params(moe, r), moeLayer);
      expectRel(stage_memory(moe, { ...r, zero: 3, reshard: 1 }, 0).weights, 2 * (Pd / 16 + Pe / 4) + 2 * 2 * moeLayer);
      // Not resharded after the forward (Llama 3): the stage's parameters stay whole beside their shards.
      expectRel(stage_memory(moe, { ...r, zero: 3, reshard: 0 }, 0).weights, 2 * (Pd / 16 + Pe / 4) + 2 * (Pd + Pe));
      // Gradients reduced once per step accumulate whole.
      expectRel(stage_memory(moe, { ...r, zero: 3, grad_reduce: GRAD_REDUCE_STEP }, 0).grads, 4 * (Pd + Pe));
    });

    it('2 replicas (HSDP): optimizer = 12·(P_d/8 + P_e/2), dense over dp·cp/2, experts over edp/2', () => {
      expectRel(stage_memory(moe, { ...r, dp_replicas: 2 }, 0).optimizer, 12 * (Pd / 8 + Pe / 2));
      // One replica per expert-DP rank: expert states whole, dense ones over 4.
      expectRel(stage_memory(moe, { ...r, dp_replicas: 4 }, 0).optimizer, 12 * (Pd / 4 + Pe));
    });

    it('expert-TP divides the expert parameters again (etp 2: edp 2)', () => {
      const r2 = row({ ngpus: 16, seq_length: seq, global_batch_size: 64, ep, etp: 2, zero: 1 });
      expect(r2.edp).toBe(2);
      expectRel(stage_params(moe, r2, 0)[1], Pe / 2);
      expectRel(stage_memory(moe, r2, 0).optimizer, 12 * (Pd / 16 + Pe / 2 / 2));
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 5. In-flight micro-batches and the uneven split
// ---------------------------------------------------------------------------------------------------------------

describe('micro-batches in flight', () => {
  it('one stage: 1 whatever the schedule and m', () => {
    for (const schedule of [SCHEDULE_1F1B, SCHEDULE_GPIPE, SCHEDULE_INTERLEAVED]) {
      expect(inflight_microbatches(1, 1, schedule, 64, 0)).toBe(1);
    }
  });

  it('GPipe: m on every stage', () => {
    for (const i of [0, 3, 7]) expect(inflight_microbatches(8, 1, SCHEDULE_GPIPE, 32, i)).toBe(32);
  });

  it('1F1B: min(p − i, m)', () => {
    const p = 8;
    for (const m of [2, 5, 8, 64]) {
      for (let i = 0; i < p; i++) expect(inflight_microbatches(p, 1, SCHEDULE_1F1B, m, i)).toBe(Math.min(p - i, m));
    }
  });

  it("interleaved, stage 0: p·(1 + (p − 1)/(p·v)), Megatron's interleaving factor", () => {
    for (const [p, v] of [
      [8, 2],
      [4, 3],
      [16, 4],
      [9, 7],
    ]) {
      expectRel(inflight_microbatches(p, v, SCHEDULE_INTERLEAVED, 10 * p, 0), p * (1 + (p - 1) / (p * v)), 1e-12);
    }
    // GPT-3 VPP2 case: 8·(1 + 7/16) = 11.5 micro-batches' worth.
    expect(inflight_microbatches(8, 2, SCHEDULE_INTERLEAVED, 96, 0)).toBe(11.5);
  });

  it('interleaved, later stages: (2(p − i − 1) + (v − 1)p + 1)/v, capped at m', () => {
    const p = 8;
    const v = 2;
    for (let i = 0; i < p; i++) {
      expectRel(inflight_microbatches(p, v, SCHEDULE_INTERLEAVED, 96, i), (2 * (p - i - 1) + (v - 1) * p + 1) / v, 1e-12);
    }
    expect(inflight_microbatches(p, v, SCHEDULE_INTERLEAVED, 8, 0)).toBe(8);
  });

  it('stage_memory multiplies one micro-batch of stage activations by the in-flight count', () => {
    const c = gpt(1024, 16, 8);
    const s = 1024;
    const sbh = s * 1024;
    const layer = sbh * (34 + (5 * 16 * s) / 1024); // Korthikanti, no parallelism
    const embedding = 8 * s + sbh; // int64 token ids + embedding dropout mask (first stage)
    const r = row({ ngpus: 4, pp: 4, seq_length: s, global_batch_size: 16, num_layers: 8 }); // m = 16, 2 layers per stage
    expectRel(stage_memory(c, r, 0).activations, 4 * (2 * layer + embedding));
    expectRel(stage_memory(c, r, 2).activations, 2 * (2 * layer));
    expectRel(stage_memory(c, { ...r, schedule: SCHEDULE_GPIPE }, 3).activations, 16 * (2 * layer));
    // Full recompute: 2sbh per layer plus one layer rebuilt in the backward.
    expectRel(stage_memory(c, { ...r, recompute: RECOMPUTE_FULL }, 1).activations, 3 * (2 * 2 * sbh) + layer);
  });
});

describe('uneven pipeline split (src/layout.ts, chunk_layers)', () => {
  /** Layers of every rank, as the model counts them for a row of `L` layers. */
  function rankLayers(L: number, pp: number, vpp = 1, first = 0, last = 0): number[] {
    const c = gpt(1024, 16, L);
    const split = pinnedSplit(L, pp, vpp, first, last);
    if (!split) throw new Error(`no split of ${L} over ${pp} x ${vpp}`);
    const schedule = vpp > 1 ? SCHEDULE_INTERLEAVED : SCHEDULE_1F1B;
    const r = { ...row({ ngpus: pp, pp, seq_length: 1024, global_batch_size: 64, num_layers: L }), vpp, schedule };
    const counted = { ...r, first_stage_layers: split.first, last_stage_layers: split.last };
    return Array.from({ length: pp }, (_, i) => stage_layer_counts(c, counted, i).layers);
  }

  it("126 layers over 16 stages: 7 on stages 0 and 15, 8 on 1..14 (Llama 3's rule, Megatron's account-for-embedding-and-loss)", () => {
    expect(rankLayers(126, 16)).toEqual([7, ...Array(14).fill(8), 7]);
    expect(defaultSplit(126, 16, 1)?.rule).toBe('embedding_and_loss');
    expect(megatronSplitArgs(126, 16, 1, 7, 7)).toEqual(['--account-for-embedding-in-pipeline-split', '--account-for-loss-in-pipeline-split']);
  });

  it('126 layers over 8 stages: 15, 16 × 6, 15 (the documented Llama 405B layout)', () => {
    expect(rankLayers(126, 8)).toEqual([15, 16, 16, 16, 16, 16, 16, 15]);
  });

  it('Llama 3.1 405B PP8 x VP8: 64 chunks of 2 layers, the first and last chunk 1 (get_num_layers_to_build)', () => {
    const chunks = chunkLayers(126, 8, 8, 15, 15);
    expect(chunks[0]).toEqual([1, 2, 2, 2, 2, 2, 2, 2]);
    expect(chunks[7]).toEqual([2, 2, 2, 2, 2, 2, 2, 1]);
    for (let i = 1; i < 7; i++) expect(chunks[i]).toEqual(Array(8).fill(2));
    expect(rankLayers(126, 8, 8)).toEqual([15, 16, 16, 16, 16, 16, 16, 15]);
  });

  it('DeepSeek-V3 61 layers over PP4 x VPP4: middle chunks of 4, the ends share the rest (14 and 15)', () => {
    expect(defaultSplit(61, 4, 4)).toEqual({ first: 14, last: 15, rule: 'first_last' });
    expect(chunkLayers(61, 4, 4, 14, 15)).toEqual([
      [3, 3, 4, 4],
      [4, 4, 4, 4],
      [4, 4, 4, 4],
      [4, 4, 4, 3],
    ]);
    // Not expressible with first/last counts (14 and 15 do not divide by 4): a --pipeline-model-parallel-layout.
    expect(megatronSplitArgs(61, 4, 4, 14, 15)).toBeUndefined();
  });

  it('GPT 530B (105 layers) over PP35 x VPP2: 3 layers on every rank, its chunks 1 and 2 (only a layout string expresses it)', () => {
    expect(defaultSplit(105, 35, 2)).toEqual({ first: 3, last: 3, rule: 'even_ranks' });
    const chunks = chunkLayers(105, 35, 2, 3, 3);
    for (let i = 0; i < 34; i++) expect(chunks[i]).toEqual([1, 2]);
    expect(chunks[34]).toEqual([2, 1]);
    expect(rankLayers(105, 35, 2)).toEqual(Array(35).fill(3));
    expect(megatronSplitArgs(105, 35, 2, 3, 3)).toBeUndefined();
  });

  it("pinned counts follow Megatron's rules: the other ranks share the rest evenly, multiples of v", () => {
    expect(pinnedSplit(80, 6, 1, 12, 12)).toEqual({ first: 12, last: 12, rule: 'pinned' });
    expect(rankLayers(80, 6, 1, 12, 12)).toEqual([12, 14, 14, 14, 14, 12]);
    expect(pinnedSplit(80, 6, 1, 10, 0)).toEqual({ first: 10, last: 14, rule: 'pinned' });
    expect(pinnedSplit(80, 6, 1, 11, 12)).toBeUndefined(); // 57 middle layers over 4 ranks
    expect(pinnedSplit(80, 4, 2, 19, 21)).toBeUndefined(); // 19 is not a multiple of v = 2
    expect(megatronSplitArgs(80, 6, 1, 12, 12)).toEqual(['--decoder-first-pipeline-num-layers 12', '--decoder-last-pipeline-num-layers 12']);
  });

  it('every default split sums to L, gives every rank a layer, and chunk first layers are the prefix sums', () => {
    for (const L of [1, 7, 32, 61, 80, 95, 126]) {
      const c = gpt(1024, 16, L);
      for (let p = 1; p <= Math.min(L, 24); p++) {
        for (const v of p === 1 ? [1] : [1, 2, 4]) {
          const split = defaultSplit(L, p, v);
          if (p * v > L) continue;
          expect(split, `${L} over ${p} x ${v}`).toBeDefined();
          const r = {
            ...row({ ngpus: p, pp: p, seq_length: 1024, global_batch_size: 64, num_layers: L, vpp: v }),
            schedule: v > 1 ? SCHEDULE_INTERLEAVED : SCHEDULE_1F1B,
          };
          const chunks = chunkLayers(L, p, v, split!.first, split!.last);
          let next = 0;
          for (let j = 0; j < v; j++) {
            for (let i = 0; i < p; i++) {
              expect(chunk_first_layer(c, r, i, j)).toBe(next);
              expect(chunk_layers(c, r, i, j)).toBe(chunks[i][j]);
              next += chunks[i][j];
            }
          }
          expect(next).toBe(L);
          for (const rank of chunks) expect(rank.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(1);
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 6. fits, headroom and offload
// ---------------------------------------------------------------------------------------------------------------

describe('fits, headroom and offload', () => {
  const c = gpt(4096, 32, 32, { vocab_size: 51200 });
  const r = row({ ngpus: 8, tp: 8, seq_length: 4096, global_batch_size: 32, sp: 1, recompute: RECOMPUTE_SELECTIVE });
  const total_gib = estimate(c, r).total_gib;

  it('fits exactly when total·(1 + headroom) ≤ memory_gib', () => {
    for (const headroom of [0, 0.1, 0.25]) {
      const limit = total_gib * (1 + headroom);
      expect(estimate({ ...c, headroom, memory_gib: limit * (1 + 1e-9) }, r).fits).toBe(1);
      expect(estimate({ ...c, headroom, memory_gib: limit * (1 - 1e-9) }, r).fits).toBe(0);
    }
  });

  it('total is the sum of its components without offload', () => {
    const o = estimate(c, r);
    expectRel(o.total_gib, o.weights_gib + o.grads_gib + o.optimizer_gib + o.activations_gib + o.logits_gib);
    expect(o.offloaded_gib).toBe(0);
  });

  // Two layouts of the same model: one where activations dominate, one where the optimizer states do.
  const activationBound = row({ ngpus: 64, tp: 8, seq_length: 4096, global_batch_size: 64, mbs: 4, zero: 1 });
  const stateBound = row({ ngpus: 8, tp: 8, seq_length: 256, global_batch_size: 8, sp: 1, zero: 0, recompute: RECOMPUTE_FULL });

  it("offload 'optimizer': optimizer_gib 0, the states in offloaded_gib, total = max of the two phases", () => {
    for (const rr of [r, activationBound, stateBound]) {
      const base = estimate(c, rr);
      const off = estimate(c, { ...rr, offload: OFFLOAD_OPTIMIZER });
      expect(off.optimizer_gib).toBe(0);
      expect(off.offloaded_gib).toBeGreaterThan(0);
      expectRel(off.offloaded_gib, base.optimizer_gib);
      const forwardBackward = off.weights_gib + off.grads_gib + off.activations_gib + off.logits_gib;
      const step = off.weights_gib + off.grads_gib + off.offloaded_gib;
      expectRel(off.total_gib, Math.max(forwardBackward, step));
      expect(off.total_gib).toBeLessThan(base.total_gib);
    }
    // Each phase wins once.
    const a = estimate(c, { ...activationBound, offload: OFFLOAD_OPTIMIZER });
    expectRel(a.total_gib, a.weights_gib + a.grads_gib + a.activations_gib + a.logits_gib);
    expect(a.total_gib).toBeGreaterThan(a.weights_gib + a.grads_gib + a.offloaded_gib);
    const b = estimate(c, { ...stateBound, offload: OFFLOAD_OPTIMIZER });
    expectRel(b.total_gib, b.weights_gib + b.grads_gib + b.offloaded_gib);
    expect(b.total_gib).toBeGreaterThan(b.weights_gib + b.grads_gib + b.activations_gib + b.logits_gib);
  });

  it("offload 'optimizer_cpu_step': no step phase on the GPU", () => {
    const base = estimate(c, stateBound);
    const off = estimate(c, { ...stateBound, offload: OFFLOAD_OPTIMIZER_CPU_STEP });
    expect(off.optimizer_gib).toBe(0);
    expectRel(off.offloaded_gib, base.optimizer_gib);
    expectRel(off.total_gib, off.weights_gib + off.grads_gib + off.activations_gib + off.logits_gib);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 7. Parameter totals of bundled models
// ---------------------------------------------------------------------------------------------------------------

describe('parameter totals of bundled models', () => {
  const hardware = loadHardware('h100-sxm-80gb');
  const calibration = loadCalibration();
  function constants(model: string): FullConstants {
    const packed = fullFormula.packConstants({ config: loadConfig(model), hardware, headroom: 0.1, calibration });
    return Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, packed[i]])) as FullConstants;
  }

  it('Llama 3.1 405B: 405,853,388,800 at t = 1', () => {
    const c = constants('llama3.1-405b');
    expectRel(model_params(c, 1, 8192, 0), 405_853_388_800, 1e-4);
    expect(model_params(c, 1, 8192, 0)).toBe(405_853_388_800);
    expect(model_params(c, 1, 8192, 1)).toBe(405_853_388_800); // dense: active = total
  });

  it('DeepSeek-V3: 671.0e9 total, 37.55e9 active (MTP not counted)', () => {
    const c = constants('deepseek-v3');
    expectRel(model_params(c, 1, 4096, 0), 671.0e9, 0.005);
    expectRel(model_params(c, 1, 4096, 1), 37.55e9, 0.005);
  });

  it('Mixtral 8x7B: 46.70e9 total, 12.88e9 active', () => {
    const c = constants('mixtral-8x7b');
    expectRel(model_params(c, 1, 32768, 0), 46.7e9, 0.005);
    expectRel(model_params(c, 1, 32768, 1), 12.88e9, 0.005);
  });

  it('the same totals come out of a sweep (params_total / params_active columns)', async () => {
    const { table } = await sweep({
      model: 'llama3.1-405b',
      engine: 'cpu',
      search: {
        ngpus_range: 1024,
        tp_range: 8,
        pp_range: 8,
        cp_range: 1,
        shard_strategys: 1,
        sp_range: true,
        recompute_range: 'selective',
        offload_range: 'none',
        mbs_range: 1,
        schedule_range: '1f1b',
        vpp_range: 1,
        gbs_range: 2048,
      },
    });
    expect(table.numRows).toBe(1);
    const r = table.get(0)!.toJSON() as unknown as Record<string, number>;
    // At t = 8 the vocabulary is padded to a multiple of 128·8: 128256 -> 129024, two more 768 x h matrices' rows.
    const padded = 405_853_388_800 + 2 * (129024 - 128256) * 16384;
    // Counts are Int64 columns (exact: BigInt in JavaScript).
    expect(r.params_total).toBe(BigInt(padded));
    expect(r.params_active).toBe(BigInt(padded));
  });
});

describe('HSDP grid rule: dp_replicas divides dp (and edp), and needs ZeRO >= 1', () => {
  /** (zero, dp_replicas) pairs of every valid row. */
  function pairs(options: Parameters<typeof prepareSweep>[0]): Set<string> {
    const prepared = prepareSweep(options);
    const out = new Set<string>();
    for (const chunk of prepared.grid.chunks(1 << 14)) {
      const zero = chunk.columns[chunk.columnNames.indexOf('zero')];
      const replicas = chunk.columns[chunk.columnNames.indexOf('dp_replicas')];
      for (let i = 0; i < chunk.length; i++) out.add(`${zero[i]}/${replicas[i]}`);
    }
    return out;
  }
  const pinned = { ngpus_range: [64], tp_range: [8], pp_range: [1], schedule_range: '1f1b', vpp_range: 1, cp_range: [1], recompute_range: 'none', offload_range: 'none', sp_range: true, mbs_range: 1 };

  it('dp 8: replicas 1, 2, 4, 8 with ZeRO 1-3; ZeRO-0 keeps only 1; 3 does not divide dp', () => {
    const got = pairs({ model: 'llama3.1-70b', search: { ...pinned, dp_replicas_range: [1, 2, 3, 4, 8] } });
    const want = new Set(['0/1']);
    for (const zero of [1, 2, 3]) for (const r of [1, 2, 4, 8]) want.add(`${zero}/${r}`);
    expect(got).toEqual(want);
  });

  it('the default (1) leaves the grid as it was', () => {
    expect(pairs({ model: 'llama3.1-70b', search: pinned })).toEqual(new Set(['0/1', '1/1', '2/1', '3/1']));
  });

  it('names the rule when it removes every row', () => {
    expect(() => prepareSweep({ model: 'llama3.1-70b', search: { ...pinned, shard_strategys: 0, dp_replicas_range: [2] } })).toThrow(
      /the rule "dp_replicas > 1 needs ZeRO >= 1"/,
    );
    expect(() => prepareSweep({ model: 'llama3.1-70b', search: { ...pinned, shard_strategys: 1, dp_replicas_range: [3] } })).toThrow(
      /the rule "dp_replicas divides dp"/,
    );
  });

  it('MoE: the replicas divide expert-DP too (mixtral, 16 GPUs, ep 8: edp 2)', () => {
    const got = pairs({
      model: 'mixtral-8x7b',
      search: { ngpus_range: [16], tp_range: [1], pp_range: [1], cp_range: [1], ep_range: [8], etp_range: [1], shard_strategys: 1, dp_replicas_range: [1, 2, 4], recompute_range: 'none', offload_range: 'none', mbs_range: 1 },
    });
    expect(got).toEqual(new Set(['1/1', '1/2']));
  });
});
