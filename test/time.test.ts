/**
 * The step-time side of the full formula (src/model.ts, docs/time-model.md). Each term is computed in the test
 * from the documented formula, mostly with round-number constants (peak 1e15 FLOP/s, GEMM efficiency exactly 0.5,
 * HBM 1e12 B/s, NVLink 1e11 B/s, network 1e10 B/s, 8 GPUs per node) so that the hand computation is easy to follow.
 * Every overlap is off in these constants unless a test turns it on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RECOMPUTE_MODES } from '../src/config/space.js';
import { loadCalibration } from '../src/config/calibration.js';
import { loadHardware } from '../src/config/hardware.js';
import { loadConfig, parseOverride } from '../src/config/load.js';
import { validateTrainer } from '../src/config/model.js';
import { explain } from '../src/analysis/explain.js';
import { describeTimeSettings } from '../src/settings.js';
import { fullFormula } from '../src/formulas/full.js';
import {
  allreduce_s,
  alltoall_s,
  ep_remote_nodes,
  layer_tp_collectives,
  CP_COMM_A2A,
  CP_COMM_ALL_GATHER,
  attention_core_fwd_s,
  FULL_CONSTANTS,
  FullConstants,
  FullRow,
  gather_s,
  gemm_efficiency,
  gemm_s,
  interleaved_grad_sync_exposed_s,
  interleaved_param_sync_exposed_s,
  group_in_node,
  group_per_node,
  layer_activation_bytes,
  layer_tp_exposed_s,
  OFFLOAD_OPTIMIZER,
  OFFLOAD_OPTIMIZER_CPU_STEP,
  RECOMPUTE_FULL,
  RECOMPUTE_NONE,
  RECOMPUTE_SELECTIVE,
  RECOMPUTE_SELECTIVE_OP,
  RECOMPUTE_SLOTS,
  op_recompute_share,
  SCHEDULE_1F1B,
  GRAD_REDUCE_MICROBATCH,
  GRAD_REDUCE_STEP,
  SCHEDULE_GPIPE,
  SCHEDULE_INTERLEAVED,
  stage_params,
  stage_time,
  StageTime,
} from '../src/model.js';
import { prepareSweep } from '../src/sweep.js';
import { REPO_ROOT } from './helpers.js';
import { estimate, row } from './model-rows.js';

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

// Round-number hardware and calibration.
const PEAK = 1e15;
const ETA = 0.5; // gemm_efficiency_max 0.5, half_dim 0: η(h) = 0.5 for every h
const HBM = 1e12;
const UP = 1e11; // scale-up (NVLink) bytes/s
const OUT = 1e10; // scale-out bytes/s
const LAT_UP = 1e-6;
const LAT_OUT = 1e-5;
const BASE = 5e-6;
const PCIE = 1e10;
const CPU_ADAM = 1e9;

/** A GPT-style model (MHA, f = 4h, GeLU, LayerNorm, tied, no biases, dropout on, no flash) on round hardware. */
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
    peak_flops: PEAK,
    hbm_bytes_s: HBM,
    scaleup_bytes_s: UP,
    scaleout_bytes_s: OUT,
    gpus_per_node: 8,
    scaleup_latency_s: LAT_UP,
    scaleout_latency_s: LAT_OUT,
    collective_latency_s: BASE,
    pcie_bytes_s: PCIE,
    gemm_efficiency_max: ETA,
    gemm_efficiency_half_dim: 0,
    memory_passes: 2,
    cpu_optimizer_params_s: CPU_ADAM,
    fp8_peak_flops: 2 * PEAK,
    fp8_linear: 0,
    fp8_efficiency: 1,
    attention_efficiency: ETA,
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

/** Documented collective costs (docs/time-model.md section 3), written out independently of the code. */
const ring = {
  allreduce: (bytes: number, n: number, bw: number, lat: number) => ((2 * (n - 1)) / n) * (bytes / bw) + BASE + 2 * (n - 1) * lat,
  gather: (bytes: number, n: number, bw: number, lat: number) => ((n - 1) / n) * (bytes / bw) + BASE + (n - 1) * lat,
};

/** T_mb of a stage: compute + TP + EP + exposed CP + PP + per-micro-batch DP. */
const microbatch = (t: StageTime) => t.compute_s + t.tp_s + t.ep_s + t.cp_exposed_s + t.pp_s + t.dp_mb_s;

describe('constants', () => {
  it('the hand-built FullConstants have exactly the fields of FULL_CONSTANTS', () => {
    expect(Object.keys(gpt(1024, 16, 4)).sort()).toEqual([...FULL_CONSTANTS].sort());
  });

  it('H100 SXM constants are packed from configs/hardware and the h100 family of configs/calibration.yaml', () => {
    const hardware = loadHardware('h100-sxm-80gb');
    const calibration = loadCalibration();
    const family = calibration.families[hardware.calibration_family];
    expect(hardware.calibration_family).toBe('h100');
    const packed = fullFormula.packConstants({ config: loadConfig('gpt3-175b'), hardware, headroom: 0.1, calibration });
    const c = Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, packed[i]])) as FullConstants;
    expectRel(c.peak_flops, 989.4e12);
    expectRel(c.hbm_bytes_s, 3.35e12);
    expectRel(c.scaleup_bytes_s, 450e9 * calibration.scaleup_efficiency);
    expectRel(c.scaleout_bytes_s, 50e9 * calibration.scaleout_efficiency);
    expectRel(c.scaleup_latency_s, 3.4e-6);
    expectRel(c.scaleout_latency_s, 14e-6);
    expectRel(c.collective_latency_s, 8.4e-6);
    expectRel(c.pcie_bytes_s, 64e9);
    expect(c.gpus_per_node).toBe(8);
    for (const name of ['gemm_efficiency_max', 'gemm_efficiency_half_dim', 'fp8_efficiency', 'attention_efficiency', 'attention_half_seq', 'memory_passes', 'overlap_cost'] as const) {
      expect(c[name]).toBe(family[name]);
    }
    // Megatron-Core's defaults on H100: TP, gradient-reduce, parameter-gather and pipeline overlap on; bf16.
    expect([c.tp_comm_overlap, c.overlap_grad_reduce, c.overlap_param_gather, c.overlap_p2p_comm]).toEqual([1, 1, 1, 1]);
    expect([c.moe_a2a_overlap, c.cp_comm, c.fp8_linear, c.fp8_peak_flops]).toEqual([0, 0, 0, 0]);
    // FP8 (trainer.fp8 or fp8 parameters) brings the FP8 peak; the bf16 peak stays the MFU denominator.
    const fp8 = loadConfig('gpt3-175b', [parseOverride('trainer.fp8=true')]);
    const p8 = fullFormula.packConstants({ config: fp8, hardware, headroom: 0.1, calibration });
    expectRel(p8[FULL_CONSTANTS.indexOf('fp8_peak_flops')], 1978.9e12);
    expect(p8[FULL_CONSTANTS.indexOf('fp8_linear')]).toBe(1);
    expectRel(p8[FULL_CONSTANTS.indexOf('peak_flops')], 989.4e12);
  });

  it("torch.compile keeps the family's compile_passes_ratio of the element-wise passes and shortens the step", () => {
    const hardware = loadHardware('h100-sxm-80gb');
    const calibration = loadCalibration();
    const family = calibration.families[hardware.calibration_family];
    expect(family.compile_passes_ratio).toBeGreaterThan(0);
    expect(family.compile_passes_ratio).toBeLessThan(1);
    const pack = (overrides: string[]) => {
      const config = loadConfig('llama3.1-8b', overrides.map((o) => parseOverride(o)));
      const packed = fullFormula.packConstants({ config, hardware, headroom: 0.1, calibration });
      return Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, packed[i]])) as FullConstants;
    };
    const eager = pack([]);
    const compiled = pack(['trainer.torch_compile=true']);
    expectRel(compiled.memory_passes, eager.memory_passes * family.compile_passes_ratio);
    // Only the element-wise term changes: the rest of the constants are the eager ones.
    for (const name of FULL_CONSTANTS) if (name !== 'memory_passes') expect(compiled[name], name).toBe(eager[name]);
    const fsdp = row({ ngpus: 8, seq_length: 8192, global_batch_size: 16, mbs: 2, zero: 3, num_layers: 32 });
    expect(estimate(compiled, fsdp).step_time_s).toBeLessThan(estimate(eager, fsdp).step_time_s);
    expect(estimate(compiled, fsdp).compute_s).toBeLessThan(estimate(eager, fsdp).compute_s);
  });

  it('FP8 on hardware without an FP8 peak is refused, naming the field', () => {
    const config = loadConfig('gpt3-175b', [parseOverride('trainer.fp8=true')]);
    expect(() =>
      fullFormula.packConstants({ config, hardware: loadHardware('a100-80gb'), headroom: 0.1, calibration: loadCalibration() }),
    ).toThrow(/trainer\.fp8/);
  });
});

describe('collective helpers', () => {
  const c = gpt(1024, 16, 1);
  it('ring all-reduce 2(n−1)/n·B/BW + base + 2(n−1)·lat; gather (n−1)/n·B/BW + base + (n−1)·lat; n = 1 is free', () => {
    const B = 3e8;
    expectRel(allreduce_s(c, B, 8, 1, 8), (14 / 8) * (B / UP) + BASE + 14 * LAT_UP);
    expectRel(allreduce_s(c, B, 32, 0, 1), (62 / 32) * (B / OUT) + BASE + 62 * LAT_OUT);
    expectRel(gather_s(c, B, 8, 1, 8), (7 / 8) * (B / UP) + BASE + 7 * LAT_UP);
    expectRel(gather_s(c, B, 32, 0, 1), (31 / 32) * (B / OUT) + BASE + 31 * LAT_OUT);
    expect(allreduce_s(c, B, 1, 1, 1)).toBe(0);
    expect(gather_s(c, B, 1, 0, 1)).toBe(0);
  });
  it('across nodes, k ranks of the group per node share the node’s k NICs (one ring each), capped by NVLink', () => {
    const B = 3e8;
    expectRel(gather_s(c, B, 32, 0, 4), (31 / 32) * (B / (4 * OUT)) + BASE + 31 * LAT_OUT);
    expectRel(gather_s(c, B, 32, 0, 8), (31 / 32) * (B / (8 * OUT)) + BASE + 31 * LAT_OUT);
    expectRel(gather_s({ ...c, scaleout_bytes_s: 5e10 }, B, 32, 0, 8), (31 / 32) * (B / UP) + BASE + 31 * LAT_OUT);
    expect(group_per_node(c, 32, 1)).toBe(8);
    expect(group_per_node(c, 32, 2)).toBe(4);
    expect(group_per_node(c, 32, 8)).toBe(1);
    expect(group_per_node(c, 32, 16)).toBe(1);
    expect(group_per_node(c, 2, 1)).toBe(2);
  });
  it('a group is in one node when size·stride ≤ gpus_per_node', () => {
    expect(group_in_node(c, 8, 1)).toBe(1);
    expect(group_in_node(c, 4, 2)).toBe(1);
    expect(group_in_node(c, 4, 4)).toBe(0);
    expect(group_in_node(c, 16, 1)).toBe(0);
  });
  it('hierarchical all-to-all: NVLink and NICs at once, the slower tier sets the time, each tier’s latency once', () => {
    const B = 8e8;
    expectRel(alltoall_s(c, B, 8, 1), (7 / 8) * (B / UP) + LAT_UP + BASE);
    // 32 ranks, 8 per node: 7/32 of the bytes over NVLink, 24/32 over the NIC.
    expectRel(alltoall_s(c, B, 32, 1), Math.max((7 / 32) * (B / UP) + LAT_UP, (24 / 32) * (B / OUT) + LAT_OUT) + BASE);
    // Stride 8 (expert-TP 8): one rank per node, all of it over the NIC.
    expectRel(alltoall_s(c, B, 4, 8), (3 / 4) * (B / OUT) + LAT_OUT + BASE);
    expect(alltoall_s(c, B, 1, 1)).toBe(0);
  });
});

describe('GEMMs: a roofline at a shape-dependent efficiency', () => {
  const c = gpt(4096, 32, 1, { gemm_efficiency_max: 0.8, gemm_efficiency_half_dim: 100 });
  it('η = η_max·d/(d + d½) with d = 1/(1/m + 1/n + 1/k): the smallest dimension dominates', () => {
    const d = 1 / (1 / 8192 + 1 / 1024 + 1 / 4096);
    expectRel(gemm_efficiency(c, 8192, 1024, 4096, 1), (0.8 * d) / (d + 100));
    expect(gemm_efficiency(c, 8192, 128, 4096, 1)).toBeLessThan(gemm_efficiency(c, 8192, 1024, 4096, 1));
    // Symmetric in the three dimensions: the backward's two GEMMs (same FLOPs) run at the forward's efficiency.
    expectRel(gemm_efficiency(c, 4096, 8192, 1024, 1), gemm_efficiency(c, 8192, 1024, 4096, 1));
  });
  it('compute-bound: 2mnk/(peak·η); memory-bound: 2(mk + kn + mn)/HBM', () => {
    const big = gemm_s(c, 8192, 8192, 8192, 0);
    expectRel(big, (2 * 8192 ** 3) / (PEAK * gemm_efficiency(c, 8192, 8192, 8192, 1)));
    // A thin GEMM (k 16) moves more bytes than it has FLOPs for.
    const thin = gemm_s(c, 65536, 8192, 16, 0);
    expectRel(thin, (2 * (65536 * 16 + 16 * 8192 + 65536 * 8192)) / HBM);
    expect(gemm_s(c, 0, 8192, 8192, 0)).toBe(0);
  });
  it('FP8: the FP8 peak times fp8_efficiency, 1-byte inputs, a half-saturation size scaled by the rate', () => {
    const f = { ...c, fp8_efficiency: 0.7 };
    expectRel(gemm_s(f, 8192, 8192, 8192, 1), (2 * 8192 ** 3) / (2 * PEAK * 0.7 * gemm_efficiency(c, 8192, 8192, 8192, 2)));
    // At twice the rate the half-saturation size doubles: small FP8 GEMMs gain less than 2x.
    const d = 1 / (3 / 8192);
    expectRel(gemm_efficiency(c, 8192, 8192, 8192, 2), (0.8 * d) / (d + 200));
    const fast = { ...c, hbm_bytes_s: 1e14 };
    const fast8 = { ...fast, fp8_efficiency: 0.7 };
    const speedup = (m: number, n: number, k: number) => gemm_s(fast, m, n, k, 0) / gemm_s(fast8, m, n, k, 1);
    expect(speedup(2048, 512, 512)).toBeLessThan(speedup(8192, 8192, 8192));
  });
});

describe('compute term: linear layers, attention core, element-wise work, recompute', () => {
  // GPT layer without biases: linear forward 24h² FLOPs per token (QKV 6h², O 2h², MLP 16h²); without flash the
  // scores and their product with V are batched GEMMs over the whole masked square (4sh per token).
  const h = 2048;
  const a = 16;
  const L = 4;
  const s = 1024;
  const V = 51200;
  const FAST = 1e14; // HBM fast enough that no GEMM is memory-bound
  const c = gpt(h, a, L, { hbm_bytes_s: FAST });
  const linearFlops = 24 * h * h;
  const coreFlops = 4 * s * h;
  const logitFlops = 2 * h * V;

  it('t 1, no recompute, no flash: b·s·3·(L·(24h² + 4sh) + 2hV)/(peak·η) + 2·L·sbh(34 + 5as/h)/HBM', () => {
    const b = 2;
    const r = row({ ngpus: 1, seq_length: s, global_batch_size: 2, mbs: b });
    const flops = b * s * 3 * (L * (linearFlops + coreFlops) + logitFlops);
    const act = s * b * h * (34 + (5 * a * s) / h);
    expectRel(stage_time(c, r, 0).compute_s, flops / (PEAK * ETA) + (2 * L * act) / FAST);
    expectRel(estimate(c, r).compute_s, flops / (PEAK * ETA) + (2 * L * act) / FAST);
  });

  it('t 4 with SP: every GEMM sees all b·s tokens and 1/t of the width; selective repeats the core, full the forward', () => {
    const t = 4;
    const r = row({ ngpus: 4, tp: t, sp: 1, seq_length: s, global_batch_size: 1 });
    const act = s * h * (34 / t + (5 * a * s) / (h * t));
    const elementwise = (2 * L * act) / FAST;
    const linear = (s * 3 * (L * linearFlops + logitFlops)) / t / (PEAK * ETA);
    const core = (s * 3 * L * coreFlops) / t / (PEAK * ETA);
    expectRel(stage_time(c, r, 0).compute_s, linear + core + elementwise);
    // Selective: the core's forward again, and its score tensors' element-wise pass (5as²b/t bytes).
    const scores = (5 * a * s * s) / t;
    const selective = stage_time(c, { ...r, recompute: RECOMPUTE_SELECTIVE }, 0).compute_s;
    expectRel(selective, linear + core + elementwise + core / 3 + (L * 2 * scores) / (3 * FAST));
    // Full: the layers' forward (a third of their linear, core and element-wise time; not the output layer).
    const layersLinear = (s * 3 * L * linearFlops) / t / (PEAK * ETA);
    const full = stage_time(c, { ...r, recompute: RECOMPUTE_FULL }, 0).compute_s;
    expectRel(full, linear + core + elementwise + layersLinear / 3 + core / 3 + elementwise / 3);
    // Per-op (torchtitan's SelectiveAC): the forward of every second matmul (wk, wo, FC2: half the FLOPs of this
    // MHA layer with a 4h MLP) and the element-wise third; the attention core's output is kept.
    const op = stage_time(c, { ...r, recompute: RECOMPUTE_SELECTIVE_OP }, 0).compute_s;
    expectRel(op, linear + core + elementwise + (0.5 * layersLinear) / 3 + elementwise / 3);
  });

  it('recompute codes: the grid labels in code order, and the per-class table slots of both engines', () => {
    expect(RECOMPUTE_MODES.indexOf('selective')).toBe(RECOMPUTE_SELECTIVE);
    expect(RECOMPUTE_MODES.indexOf('full')).toBe(RECOMPUTE_FULL);
    expect(RECOMPUTE_MODES.indexOf('selective_op')).toBe(RECOMPUTE_SELECTIVE_OP);
    expect(RECOMPUTE_SLOTS).toBe(RECOMPUTE_MODES.length);
    const wgsl = readFileSync(join(REPO_ROOT, 'shaders', 'model.wgsl'), 'utf8');
    expect(wgsl).toContain(`const RECOMPUTE_SELECTIVE_OP: i32 = ${RECOMPUTE_SELECTIVE_OP};`);
    expect(wgsl).toContain(`const RECOMPUTE_SLOTS: i32 = ${RECOMPUTE_SLOTS};`);
  });

  it("per-op recompute's share: wk, wo and the MLP's second matmul of q, k, v, o, w1, [w3,] w2; MoE experts all", () => {
    expect(op_recompute_share(c, 0)).toBe(0.5);
    // Llama 3 8B: h 4096, 8 KV heads of 128, SwiGLU 14336.
    const llama = gpt(4096, 32, 1, { num_query_groups: 8, ffn_hidden_size: 14336, gated_mlp: 1 });
    expectRel(op_recompute_share(llama, 0), (1024 + 4096 + 14336) / (4096 + 1024 + 1024 + 4096 + 3 * 14336));
    // torchao's Float8 linears alternate as bf16 ones do; MoE experts' grouped GEMMs are not on the policy's list.
    expect(op_recompute_share({ ...llama, fp8_linear: 1 }, 0)).toBe(op_recompute_share(llama, 0));
    expect(op_recompute_share({ ...llama, num_experts: 8 }, 1)).toBe(1);
  });

  it('flash attention: the causal half at attention_efficiency, backward 2.5x the forward', () => {
    const f = gpt(h, a, L, { hbm_bytes_s: FAST, flash_attention: 1, attention_efficiency: 0.4, attention_half_seq: 512 });
    const b = 2;
    const fwd = attention_core_fwd_s(f, s, s, b, 1);
    const efficiency = (0.4 * s) / (s + 512);
    expectRel(fwd, (b * s * (coreFlops / 2)) / (PEAK * efficiency));
    const r = row({ ngpus: 1, seq_length: s, global_batch_size: 2, mbs: b });
    const act = layer_activation_bytes(f, 0, s, s, b, 1, 0, 1, RECOMPUTE_NONE);
    expectRel(act, s * b * h * (34 + (5 * a * s) / h) - 5 * a * s * s * b + 4 * a * s * b); // the log-sum-exp, not the scores
    const linear = (b * s * 3 * (L * linearFlops + logitFlops)) / (PEAK * ETA);
    expectRel(stage_time(f, r, 0).compute_s, linear + L * fwd * 3.5 + (2 * L * act) / FAST);
    // CP 4: each rank's s/4 queries attend to half of all s keys, in blocks of s/4.
    const cpFwd = attention_core_fwd_s(f, s / 4, s, b, 1);
    expectRel(cpFwd, (b * (s / 4) * (coreFlops / 2)) / (PEAK * ((0.4 * (s / 4)) / (s / 4 + 512))));
  });

  it('FP8 linear layers: FP8 GEMMs plus the casts (4 bytes per input and output-gradient element)', () => {
    const f = gpt(h, a, 1, { hbm_bytes_s: FAST, fp8_linear: 1, vocab_size: 128 });
    const b = 1;
    const r = row({ ngpus: 1, seq_length: s, global_batch_size: 1, mbs: b });
    const bf = stage_time({ ...f, fp8_linear: 0 }, r, 0).compute_s;
    const f8 = stage_time(f, r, 0).compute_s;
    const m = b * s;
    // QKV (n 3h), O (n h), fc1 (n 4h), fc2 (n h, k 4h): their GEMM time halves, and the casts are added.
    const linear = (m * 3 * linearFlops) / (PEAK * ETA);
    const casts = (4 * (m * h + m * 3 * h) + 4 * (m * h + m * h) + 4 * (m * h + m * 4 * h) + 4 * (m * 4 * h + m * h)) / FAST;
    expectRel(bf - f8, linear / 2 - casts);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 1. TP
// ---------------------------------------------------------------------------------------------------------------

describe('TP: 4 ring all-reduces of 2bsh per layer (6 with full recompute)', () => {
  const h = 8192;
  const L = 4;
  const s = 2048;
  const b = 2;
  const c = gpt(h, 64, L);
  const S = 2 * b * s * h;

  it('tp 8 in one node (pp = dp = cp = 1): tp_comm_s = m·L·4·allreduce(2bsh, 8) on NVLink', () => {
    const r = row({ ngpus: 8, tp: 8, seq_length: s, global_batch_size: 16, mbs: b });
    expect(r.num_microbatches).toBe(8);
    const m = 8;
    const o = estimate(c, r);
    expectRel(o.tp_comm_s, m * L * 4 * ring.allreduce(S, 8, UP, LAT_UP));
    expectRel(o.tp_comm_s, m * L * 4 * ((2 * 7) / 8 * (S / UP) + BASE + 2 * 7 * LAT_UP));
    expectRel(o.tp_bytes, m * L * 4 * ((2 * 7) / 8) * S);
    // SP replaces each all-reduce by reduce-scatter + all-gather: the same bytes, the same model.
    const sp = estimate(c, { ...r, sp: 1 });
    expectRel(sp.tp_comm_s, o.tp_comm_s);
    expectRel(sp.tp_bytes, o.tp_bytes);
  });

  it('full recompute repeats the forward two: 6 per layer; selective does not', () => {
    const r = row({ ngpus: 8, tp: 8, seq_length: s, global_batch_size: 16, mbs: b });
    const full = estimate(c, { ...r, recompute: RECOMPUTE_FULL });
    expectRel(full.tp_comm_s, 8 * L * 6 * ring.allreduce(S, 8, UP, LAT_UP));
    expectRel(full.tp_bytes, 8 * L * 6 * (14 / 8) * S);
    const selective = estimate(c, { ...r, recompute: RECOMPUTE_SELECTIVE });
    expectRel(selective.tp_comm_s, 8 * L * 4 * ring.allreduce(S, 8, UP, LAT_UP));
    // Per-op recompute keeps the reduce-scatters' outputs but gathers again what its recomputed matmuls read.
    const op = estimate(c, { ...r, recompute: RECOMPUTE_SELECTIVE_OP });
    expectRel(op.tp_comm_s, 8 * L * 5 * ring.allreduce(S, 8, UP, LAT_UP));
  });

  it('tp 16 spans two nodes: the scale-out tier, 8 rings sharing each node’s 8 NICs', () => {
    const r = row({ ngpus: 16, tp: 16, seq_length: s, global_batch_size: 4, mbs: b });
    expectRel(estimate(c, r).tp_comm_s, 2 * L * 4 * ring.allreduce(S, 16, 8 * OUT, LAT_OUT));
  });

  it('tp 1: no TP traffic', () => {
    const o = estimate(c, row({ ngpus: 1, seq_length: s, global_batch_size: 2, mbs: b }));
    expect(o.tp_comm_s).toBe(0);
    expect(o.tp_bytes).toBe(0);
  });

  it('tp_comm_overlap (with SP, as Megatron requires): each half-collective hides behind its GEMM, all but its first of t chunks', () => {
    const r = row({ ngpus: 8, tp: 8, sp: 1, seq_length: s, global_batch_size: 16, mbs: b });
    const over = { ...c, tp_comm_overlap: 1 };
    const C = ring.allreduce(S, 8, UP, LAT_UP) / 2;
    const m = b * s;
    const pair = (g: number) => Math.min(C, Math.max(0, C - g) + C / 8);
    const qkv = gemm_s(over, m, (3 * h) / 8, h, 0);
    const proj = gemm_s(over, m, h, h / 8, 0);
    const fc1 = gemm_s(over, m, (4 * h) / 8, h, 0);
    const fc2 = gemm_s(over, m, h, (4 * h) / 8, 0);
    const layer = [qkv, proj, fc1, fc2].reduce((sum, g) => sum + pair(g) + pair(2 * g), 0);
    expectRel(layer_tp_exposed_s(over, 0, m, 8, 1, 1, C, 1), layer);
    const o = estimate(over, r);
    expectRel(o.tp_comm_s, 8 * L * layer);
    expect(o.tp_comm_s).toBeLessThan(estimate(c, r).tp_comm_s);
    expectRel(o.overlapped_comm_s, 8 * L * 4 * ring.allreduce(S, 8, UP, LAT_UP) - o.tp_comm_s);
    // overlap_cost charges a fraction of what is hidden.
    const costly = estimate({ ...over, overlap_cost: 0.25 }, r);
    expectRel(costly.tp_comm_s, o.tp_comm_s + 0.25 * o.overlapped_comm_s);
    // Without SP there is nothing to overlap with: all-reduces stay exposed.
    expectRel(estimate(over, { ...r, sp: 0 }).tp_comm_s, estimate(c, r).tp_comm_s);
  });

  it('tp_comm_overlap needs the TP group in one NVLink domain: tp 16 over two nodes stays exposed', () => {
    const r = row({ ngpus: 16, tp: 16, sp: 1, seq_length: s, global_batch_size: 4, mbs: b });
    const over = estimate({ ...c, tp_comm_overlap: 1 }, r);
    expectRel(over.tp_comm_s, estimate(c, r).tp_comm_s);
    expectRel(over.tp_comm_s, 2 * L * 4 * ring.allreduce(S, 16, 8 * OUT, LAT_OUT));
    expect(over.overlapped_comm_s).toBe(0);
    // With a 16-GPU NVLink domain the same group overlaps.
    expect(estimate({ ...c, tp_comm_overlap: 1, gpus_per_node: 16 }, r).tp_comm_s).toBeLessThan(
      estimate({ ...c, gpus_per_node: 16 }, r).tp_comm_s,
    );
  });

  it('with the H100 constants too (overlap off)', () => {
    const hardware = loadHardware('h100-sxm-80gb');
    const calibration = loadCalibration();
    const packed = fullFormula.packConstants({ config: loadConfig('gpt3-175b'), hardware, headroom: 0.1, calibration });
    const h100 = { ...(Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, packed[i]])) as FullConstants), tp_comm_overlap: 0 };
    const r = row({ ngpus: 8, tp: 8, seq_length: 2048, global_batch_size: 4, mbs: 1 });
    const S175 = 2 * 1 * 2048 * 12288;
    const bw = 450e9 * calibration.scaleup_efficiency;
    const allreduce = (14 / 8) * (S175 / bw) + 8.4e-6 + 14 * 3.4e-6;
    expectRel(estimate(h100, r).tp_comm_s, 4 * 96 * 4 * allreduce);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 2. DP
// ---------------------------------------------------------------------------------------------------------------

describe('DP: gradient reduction and parameter gather, per step (ZeRO-0/1) or per micro-batch (ZeRO-2/3)', () => {
  const h = 2048;
  const L = 4;
  const s = 1024;
  const N = 16; // two nodes: the scale-out tier, 8 ranks per node sharing 8 NICs
  const NIC = 8 * OUT;
  const c = gpt(h, 16, L);
  // A dense model has no expert parameters: edp 1, so that no expert collective is counted.
  const dpRow = (zero: number, over: Partial<FullRow> = {}): FullRow => ({
    ...row({ ngpus: N, seq_length: s, global_batch_size: 2 * N, zero }),
    edp: 1,
    grad_reduce: zero >= 2 ? GRAD_REDUCE_MICROBATCH : GRAD_REDUCE_STEP,
    reshard: zero === 3 ? 1 : 0,
    ...over,
  });
  const P = stage_params(c, dpRow(3), 0)[0];
  const gb = 4;
  const pb = 2;
  const RS = ring.gather(P * gb, N, NIC, LAT_OUT);
  const AG = ring.gather(P * pb, N, NIC, LAT_OUT);

  it('the stage holds every parameter: L·12h² + 4h·L + Vh + 2h', () => {
    expectRel(P, L * (12 * h * h + 4 * h) + 51200 * h + 2 * h);
  });

  it('ZeRO-1: RS(grads) + AG(params) once per step; ZeRO-0: one all-reduce; without overlap all exposed', () => {
    const one = estimate(c, dpRow(1));
    expectRel(one.dp_comm_s, RS + AG);
    expectRel(one.dp_bytes, ((N - 1) / N) * P * (gb + pb));
    const zero = estimate(c, dpRow(0));
    expectRel(zero.dp_comm_s, ring.allreduce(P * gb, N, NIC, LAT_OUT));
    expectRel(zero.dp_bytes, ((2 * (N - 1)) / N) * P * gb);
  });

  // One layer's parameters (FSDP gathers and reduce-scatters layer by layer): with the overlap, the first gather of
  // a pass and the step's last reduce-scatter have nothing to hide behind.
  const layer = 12 * h * h + 4 * h;

  it('ZeRO-3: AG in every forward, AG + RS in every backward (m = 2 micro-batches); reshard off drops one AG', () => {
    const r = dpRow(3);
    expect(r.num_microbatches).toBe(2);
    const o = estimate(c, r);
    expectRel(o.dp_comm_s, 2 * (2 * AG + RS));
    expectRel(o.dp_bytes, 2 * ((N - 1) / N) * P * (gb + 2 * pb));
    // Without a pipeline FSDP frees the parameters after each backward: the forward gathers them again.
    const kept = estimate(c, { ...r, reshard: 0 });
    expectRel(kept.dp_comm_s, 2 * (AG + RS));
  });

  it('ZeRO-2: the gradient RS every backward, the parameter AG once per step', () => {
    const o = estimate(c, dpRow(2));
    expectRel(o.dp_comm_s, 2 * RS + AG);
    expectRel(o.dp_bytes, ((N - 1) / N) * P * (2 * gb + pb));
  });

  it('overlap: a gather holds the compute back for what outlasts its pass, plus the first layer’s; a RS only shares the network', () => {
    const over = { ...c, overlap_grad_reduce: 1, overlap_param_gather: 1, scaleout_bytes_s: 1e9 };
    const slowRS = ring.gather(P * gb, N, 8e9, LAT_OUT);
    const slowAG = ring.gather(P * pb, N, 8e9, LAT_OUT);
    const slowLayerAG = ring.gather(layer * pb, N, 8e9, LAT_OUT);
    const slowLayerRS = ring.gather(layer * gb, N, 8e9, LAT_OUT);
    const t1 = stage_time(over, dpRow(1), 0);
    const fwd = t1.compute_s / 3;
    const bwd = (2 * t1.compute_s) / 3;
    expect(slowAG).toBeGreaterThan(fwd);
    expectRel(t1.dp_exposed_s, Math.max(0, slowAG - fwd) + Math.max(0, slowRS - bwd));
    expectRel(t1.dp_overlapped_s, slowAG + slowRS - t1.dp_exposed_s);
    const t3 = stage_time(over, dpRow(3), 0);
    const hold = Math.min(slowAG, Math.max(0, slowAG - fwd) + slowLayerAG) + Math.max(0, slowAG - bwd);
    expectRel(t3.dp_mb_s, Math.max(hold, 2 * slowAG + slowRS - t3.compute_s));
    expectRel(t3.dp_exposed_s, slowLayerRS);
    const o = estimate(over, dpRow(3));
    expectRel(o.step_time_s, 2 * (t3.compute_s + t3.dp_mb_s) + t3.dp_exposed_s + t3.optimizer_s);
    // A fast network hides all but the step's last layer reduce-scatter and each forward's first layer gather.
    const fastC = { ...over, scaleout_bytes_s: 1e13, scaleup_bytes_s: 1e14 };
    const fast = estimate(fastC, dpRow(3));
    const fastNIC = Math.min(1e14, 8 * 1e13);
    expectRel(fast.dp_comm_s, 2 * ring.gather(layer * pb, N, fastNIC, LAT_OUT) + ring.gather(layer * gb, N, fastNIC, LAT_OUT));
    expect(fast.overlapped_comm_s).toBeGreaterThan(0);
  });

  it('ZeRO-3 exposure shrinks as the compute it hides behind grows, down to the first layer’s gather', () => {
    const over = { ...c, overlap_grad_reduce: 1, overlap_param_gather: 1, scaleout_bytes_s: 1e9 };
    const exposed = [0.5, 0.1, 0.02, 0.004].map((eta) => {
      const slower = { ...over, gemm_efficiency_max: eta, attention_efficiency: eta };
      const t = stage_time(slower, dpRow(3), 0);
      return { compute: t.compute_s, dp: t.dp_mb_s };
    });
    for (let i = 1; i < exposed.length; i++) {
      expect(exposed[i].compute).toBeGreaterThan(exposed[i - 1].compute);
      expect(exposed[i].dp).toBeLessThan(exposed[i - 1].dp);
    }
    expectRel(exposed[exposed.length - 1].dp, ring.gather(layer * pb, N, 8e9, LAT_OUT));
  });

  // HSDP: ZeRO inside a shard group of N/r innermost ranks, then the reduced shard all-reduced across the r
  // replicas, spaced N/r ranks apart. r = 2: shard groups of 8 fill a node (NVLink); the replicas sit in two nodes,
  // one rank per node (one NIC). r = 4: shard groups of 4, replicas 4 apart, two per node (two NICs).
  const RS8 = ring.gather(P * gb, 8, UP, LAT_UP);
  const AG8 = ring.gather(P * pb, 8, UP, LAT_UP);
  const AR2 = ring.allreduce((P * gb) / 8, 2, OUT, LAT_OUT);
  const RS4 = ring.gather(P * gb, 4, UP, LAT_UP);
  const AG4 = ring.gather(P * pb, 4, UP, LAT_UP);
  const AR4 = ring.allreduce((P * gb) / 4, 4, 2 * OUT, LAT_OUT);

  it('1 replica is the plain ZeRO of the whole group, bit for bit', () => {
    for (const zero of [0, 1, 2, 3]) {
      const a = estimate(c, dpRow(zero));
      const b = estimate(c, dpRow(zero, { dp_replicas: 1 }));
      for (const [name, value] of Object.entries(a)) expect(Object.is((b as Record<string, number>)[name], value), name).toBe(true);
    }
  });

  it('HSDP ZeRO-1, 2 replicas: RS and AG inside the node, AR of the 1/8 shard across the two nodes (Megatron instances)', () => {
    expect(group_in_node(c, 8, 1)).toBe(1);
    expect(group_in_node(c, 2, 8)).toBe(0);
    expect(group_per_node(c, 2, 8)).toBe(1);
    const o = estimate(c, dpRow(1, { dp_replicas: 2 }));
    expectRel(o.dp_comm_s, RS8 + AR2 + AG8);
    expectRel(o.dp_bytes, (7 / 8) * P * (gb + pb) + ((2 * 1) / 2) * ((P * gb) / 8));
  });

  it('HSDP ZeRO-3, 2 replicas: every backward reduce-scatters in the node and all-reduces the shard across nodes', () => {
    const o = estimate(c, dpRow(3, { dp_replicas: 2 }));
    expectRel(o.dp_comm_s, 2 * (2 * AG8 + RS8 + AR2));
    expectRel(o.dp_bytes, 2 * ((7 / 8) * P * (gb + 2 * pb) + (P * gb) / 8));
  });

  it('HSDP ZeRO-2, 4 replicas: the replica group spans two nodes with two ranks in each (two NICs)', () => {
    expect(group_per_node(c, 4, 4)).toBe(2);
    const o = estimate(c, dpRow(2, { dp_replicas: 4 }));
    expectRel(o.dp_comm_s, 2 * (RS4 + AR4) + AG4);
    expectRel(o.dp_bytes, 2 * ((3 / 4) * P * gb + (3 / 2) * ((P * gb) / 4)) + (3 / 4) * P * pb);
  });

  it('HSDP with the overlap: the step’s last layer reduce-scatter is exposed with its replica all-reduce', () => {
    const over = { ...c, overlap_grad_reduce: 1, overlap_param_gather: 1 };
    const t = stage_time(over, dpRow(3, { dp_replicas: 2 }), 0);
    expectRel(t.dp_exposed_s, ring.gather(layer * gb, 8, UP, LAT_UP) + ring.allreduce((layer * gb) / 8, 2, OUT, LAT_OUT));
  });

  it('ZeRO-3 without reshard and with a pipeline: parameters gathered once per step, only the RS per micro-batch', () => {
    const pipe = (reshard: number): FullRow => ({
      ...row({ ngpus: 2 * N, pp: 2, num_layers: L, seq_length: s, global_batch_size: 4 * N, zero: 3, reshard }),
      edp: 1,
    });
    const r = pipe(0);
    expect(r.num_microbatches).toBe(4);
    const P0 = stage_params(c, r, 0)[0];
    const RS0 = ring.gather(P0 * gb, N, NIC, LAT_OUT);
    const AG0 = ring.gather(P0 * pb, N, NIC, LAT_OUT);
    const t = stage_time(c, r, 0);
    expectRel(t.dp_mb_s, RS0);
    expectRel(t.dp_mb_bytes, ((N - 1) / N) * P0 * gb);
    expectRel(t.dp_exposed_s, AG0);
    expectRel(t.dp_bytes, ((N - 1) / N) * P0 * pb);
    // Resharding gathers in every forward and backward again.
    const again = stage_time(c, pipe(1), 0);
    expectRel(again.dp_mb_s, 2 * AG0 + RS0);
    expectRel(again.dp_mb_bytes, ((N - 1) / N) * P0 * (gb + 2 * pb));
    // With the overlap the reduce-scatter needs no window of its own: it hides behind the whole micro-batch (the
    // next micro-batch's forward follows its backward), and only what outlasts that is exposed.
    const over = { ...c, overlap_grad_reduce: 1, overlap_param_gather: 1 };
    const slowT = stage_time(over, r, 0);
    expect(RS0).toBeGreaterThan(slowT.compute_s);
    expectRel(slowT.dp_mb_s, RS0 - slowT.compute_s);
    expect(slowT.dp_mb_s).toBeLessThan(RS0 - (2 * slowT.compute_s) / 3);
    const fast = stage_time({ ...over, scaleout_bytes_s: 1e13, scaleup_bytes_s: 1e14 }, r, 0);
    expect(fast.dp_mb_s).toBe(0);
  });

  it('interleaved (Megatron): each chunk syncs after its last backward and before its first forward, not in one pass', () => {
    // Chunk k's reduction starts after its last backward, with k·pp chunk backwards left; the last chunk's
    // (k = 0) has nothing left to hide behind. The gathers start at the step and hide behind the warm-up.
    expectRel(interleaved_grad_sync_exposed_s(8, 4, 2, 10), 2);
    // A slow network: the four reductions queue up, released at −60, −40, −20 and 0 (pp·chunk backward = 20).
    expectRel(interleaved_grad_sync_exposed_s(160, 4, 2, 10), 160 - 60);
    expectRel(interleaved_param_sync_exposed_s(8, 4, 2, 10), 0);
    // The four gathers queue up (chunk k ≥ 2 released at (k − 1)·pp forwards): chunk 3's is done at 160, while its
    // first forward ends at (3·2 + 1)·10 = 70.
    expectRel(interleaved_param_sync_exposed_s(160, 4, 2, 10), 90);
    const cfg = gpt(h, 16, 8);
    const r = (schedule: number, vpp: number): FullRow => ({
      ...row({ ngpus: 4 * N, pp: 4, num_layers: 8, seq_length: s, global_batch_size: 16 * N, zero: 1, schedule, vpp }),
      edp: 1,
    });
    const over = { ...cfg, overlap_grad_reduce: 1, overlap_param_gather: 1 };
    const chunked = stage_time(over, r(SCHEDULE_INTERLEAVED, 2), 0);
    const plain = stage_time(over, r(SCHEDULE_1F1B, 1), 0);
    const P4 = stage_params(cfg, r(SCHEDULE_1F1B, 1), 0)[0];
    const RS4 = ring.gather(P4 * gb, N, NIC, LAT_OUT);
    const AG4 = ring.gather(P4 * pb, N, NIC, LAT_OUT);
    // 1F1B: one micro-batch's backward hides the reduction, its forward the gather, bucket by bucket.
    expectRel(plain.dp_exposed_s, Math.max(0, RS4 - (2 * plain.compute_s) / 3) + Math.max(0, AG4 - plain.compute_s / 3));
    // Interleaved: the same traffic, chunk by chunk, against the other chunks' work.
    expectRel(chunked.dp_exposed_s + chunked.dp_overlapped_s, RS4 + AG4);
    expectRel(
      chunked.dp_exposed_s,
      interleaved_grad_sync_exposed_s(RS4, 2, 4, chunked.compute_s / 3) + interleaved_param_sync_exposed_s(AG4, 2, 4, chunked.compute_s / 6),
    );
    // The last chunk's reduction starts after the backward: at least half of it shows.
    expect(chunked.dp_exposed_s).toBeGreaterThanOrEqual(RS4 / 2);
  });

  it('dp·cp syncs together; a group that fits in a node uses NVLink', () => {
    const r = { ...row({ ngpus: 8, cp: 2, seq_length: s, global_batch_size: 4, zero: 1 }), edp: 1 };
    expect(r.dp).toBe(4);
    const o = estimate(c, r);
    expectRel(o.dp_comm_s, ring.gather(P * gb, 8, UP, LAT_UP) + ring.gather(P * pb, 8, UP, LAT_UP));
  });

  it('optimizer step and offload over the local shard P/N', () => {
    const local = P / N;
    const S = 2 * 4 + 4; // two fp32 moments + fp32 master
    const o = estimate(c, dpRow(1));
    expectRel(o.optimizer_s, (local * (gb + 2 * S + pb)) / HBM);
    expect(o.offload_s).toBe(0);
    const z0 = estimate(c, dpRow(0));
    expectRel(z0.optimizer_s, (P * (gb + 2 * S + pb)) / HBM);
    const off = estimate(c, dpRow(1, { offload: OFFLOAD_OPTIMIZER }));
    expectRel(off.optimizer_s, (local * (gb + 2 * S + pb)) / HBM);
    expectRel(off.offload_s, (2 * local * S) / PCIE);
    const cpu = estimate(c, dpRow(1, { offload: OFFLOAD_OPTIMIZER_CPU_STEP }));
    expectRel(cpu.optimizer_s, local / CPU_ADAM);
    expectRel(cpu.offload_s, (local * (gb + pb)) / PCIE);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. PP and the bubble
// ---------------------------------------------------------------------------------------------------------------

describe('PP: boundary sends and the bubble', () => {
  const h = 4096;
  const L = 8;
  const s = 2048;
  const p = 4;
  const m = 16;
  const c = gpt(h, 32, L);
  const base = row({ ngpus: p, pp: p, seq_length: s, global_batch_size: m, num_layers: L });

  /** Slowest micro-batch over the stages full_estimate evaluates: 0, 1 (p > 2) and p − 1. */
  function slowest(r: FullRow): number {
    return Math.max(microbatch(stage_time(c, r, 0)), microbatch(stage_time(c, r, 1)), microbatch(stage_time(c, r, r.pp - 1)));
  }

  it('dp = 1: no DP term; the tail is the optimizer step alone', () => {
    expect(base.dp).toBe(1);
    expect(base.edp).toBe(1);
    const o = estimate(c, base);
    expect(o.dp_comm_s).toBe(0);
    expect(o.offload_s).toBe(0);
    expect(o.optimizer_s).toBeGreaterThan(0);
  });

  it('pp_comm_s = m·2·(2bsh/t / BW + lat) on NVLink (p·t·c·dp = 4 ≤ 8)', () => {
    const o = estimate(c, base);
    const msg = 2 * 1 * s * h;
    expectRel(o.pp_comm_s, m * 2 * (msg / UP + LAT_UP));
    expectRel(o.pp_bytes, m * 2 * msg);
  });

  for (const [name, schedule] of [
    ['1F1B', SCHEDULE_1F1B],
    ['GPipe', SCHEDULE_GPIPE],
  ] as const) {
    it(`${name}: bubble = (p − 1)·T_mb; bubble/(step − tail) = (p − 1)/(m + p − 1)`, () => {
      const r = { ...base, schedule };
      const T = slowest(r);
      // The last stage (output layer) is the slowest.
      expectRel(T, microbatch(stage_time(c, r, p - 1)));
      const o = estimate(c, r);
      expectRel(o.bubble_s, (p - 1) * T);
      expectRel(o.step_time_s, (m + p - 1) * T + o.optimizer_s);
      expectRel(o.bubble_s / (o.step_time_s - o.optimizer_s - o.dp_comm_s - o.offload_s), (p - 1) / (m + p - 1));
      expectRel(o.compute_s, m * stage_time(c, r, p - 1).compute_s);
    });
  }

  it('interleaved v = 2: bubble = (p − 1)/v·T_mb, PP sends once per virtual stage', () => {
    const v = 2;
    const r = { ...base, schedule: SCHEDULE_INTERLEAVED, vpp: v };
    const T = slowest(r);
    const o = estimate(c, r);
    expectRel(o.bubble_s, ((p - 1) / v) * T);
    expectRel(o.step_time_s, m * T + ((p - 1) / v) * T + o.optimizer_s);
    expectRel(o.pp_comm_s, m * 2 * v * ((2 * s * h) / UP + LAT_UP));
    // Relative to 1F1B, T_mb grows only by the extra PP sends.
    expectRel(T - slowest(base), 2 * ((2 * s * h) / UP + LAT_UP));
  });

  it('tokens/s = GBS·seq/step_time', () => {
    const o = estimate(c, base);
    expectRel(o.tokens_per_s, (m * s) / o.step_time_s);
    expectRel(o.tokens_per_s_per_gpu, (m * s) / o.step_time_s / p);
  });

  it('pp across nodes (p·t·c·dp > 8) uses the scale-out tier, each TP rank sending 1/t', () => {
    const r = row({ ngpus: 32, tp: 2, pp: p, seq_length: s, global_batch_size: 64, num_layers: L });
    expect(r.dp).toBe(4);
    const o = estimate(c, r);
    expectRel(o.pp_comm_s, r.num_microbatches * 2 * ((2 * s * h) / 2 / OUT + LAT_OUT));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 4. EP
// ---------------------------------------------------------------------------------------------------------------

describe('EP: 4 hierarchical all-to-alls per MoE layer of the routed hidden states', () => {
  const h = 4096;
  const L = 4;
  const s = 4096;
  const k = 2;
  const cf = 1.25;
  const moe = (E: number) =>
    gpt(h, 32, L, {
      num_query_groups: 8,
      kv_channels: 128,
      gated_mlp: 1,
      norm_params: 1,
      dropout: 0,
      ffn_hidden_size: 14336,
      num_experts: E,
      moe_k: k,
      moe_ffn_hidden_size: 14336,
      moe_layer_freq: 1,
      capacity_factor: cf,
    });
  const a2a = (S: number, n: number, local: number) =>
    Math.max(((local - 1) / n) * (S / UP) + (local > 1 ? LAT_UP : 0), ((n - local) / n) * (S / OUT) + (n > local ? LAT_OUT : 0)) + BASE;

  it('E 8, k 2, ep 8 in one node: ep_comm_s = m·L_moe·4·(7/8·S/NVLink + lat + base), S = 2·b·s·k·cf·h', () => {
    const b = 2;
    const r = row({ ngpus: 8, ep: 8, seq_length: s, global_batch_size: 32, mbs: b });
    expect(r.edp).toBe(1);
    const m = r.num_microbatches; // 32/(8·2) = 2
    const S = 2 * b * s * k * cf * h;
    const o = estimate(moe(8), r);
    expectRel(o.ep_comm_s, m * L * 4 * ((7 / 8) * (S / UP) + LAT_UP + BASE));
    expectRel(o.ep_bytes, m * L * 4 * (7 / 8) * S);
  });

  it('with TP 2 + SP each TP rank dispatches 1/t of the tokens (t_rep = t)', () => {
    const r = row({ ngpus: 16, tp: 2, sp: 1, ep: 8, seq_length: s, global_batch_size: 16 });
    const S = (2 * s * k * cf * h) / 2;
    const o = estimate(moe(8), r);
    expectRel(o.ep_comm_s, r.num_microbatches * L * 4 * a2a(S, 8, 8));
    // Without SP every TP rank holds all tokens.
    const noSp = estimate(moe(8), { ...r, sp: 0 });
    expectRel(noSp.ep_comm_s, r.num_microbatches * L * 4 * a2a(2 * S, 8, 8));
  });

  it('E 16, ep 16 spans two nodes: 7/16 of the bytes over NVLink while 8/16 cross the NICs', () => {
    const r = row({ ngpus: 16, ep: 16, seq_length: s, global_batch_size: 16 });
    const S = 2 * s * k * cf * h;
    expectRel(estimate(moe(16), r).ep_comm_s, 1 * L * 4 * a2a(S, 16, 8));
  });

  it('only MoE layers communicate: first_k_dense_layers 1 leaves 3', () => {
    const r = row({ ngpus: 8, ep: 8, seq_length: s, global_batch_size: 8 });
    const S = 2 * s * k * cf * h;
    const c = { ...moe(8), first_k_dense_layers: 1 };
    expectRel(estimate(c, r).ep_comm_s, 3 * 4 * a2a(S, 8, 8));
  });

  it('moe_a2a_overlap hides the all-to-alls behind a micro-batch of compute', () => {
    const r = row({ ngpus: 16, ep: 16, seq_length: s, global_batch_size: 16 });
    const c = { ...moe(16), moe_a2a_overlap: 1 };
    const t = stage_time(c, r, 0);
    const total = L * 4 * a2a(2 * s * k * cf * h, 16, 8);
    expectRel(t.ep_s, Math.max(0, total - t.compute_s));
    const slow = stage_time({ ...c, scaleout_bytes_s: 1e8 }, r, 0);
    expect(slow.ep_s).toBeGreaterThan(0);
  });

  it('moe_dedup_dispatch sends a token once per node it reaches: k 2 over 2 nodes reaches 1.5, 0.75 of them remote', () => {
    const r = row({ ngpus: 16, ep: 16, seq_length: s, global_batch_size: 16 });
    const c = { ...moe(16), moe_dedup_dispatch: 1 };
    // E[distinct of 2 nodes] = 2·(1 − (1/2)^2) = 1.5; the token's own node is one of them half of the time.
    expectRel(ep_remote_nodes(c, 16, 1), 0.75);
    const S = 2 * s * k * cf * h;
    const dedup = Math.max((7 / 8) * (S / UP) + LAT_UP, (0.75 / k) * (S / OUT) + LAT_OUT) + BASE;
    expectRel(estimate(c, r).ep_comm_s, L * 4 * dedup);
    expectRel(estimate(c, r).ep_bytes, L * 4 * (7 / 8 + 0.75 / k) * S);
    // Within one node there is nothing to deduplicate.
    const one = row({ ngpus: 8, ep: 8, seq_length: s, global_batch_size: 8 });
    expectRel(estimate(c, one).ep_comm_s, estimate(moe(8), one).ep_comm_s);
  });

  it('group-limited routing bounds the nodes a token reaches: DeepSeek-V3, 8 of 8 experts on at most 4 of 8 nodes', () => {
    const c = { ...moe(256), moe_k: 8, moe_router_num_groups: 8, moe_router_group_topk: 4, moe_dedup_dispatch: 1 };
    // E[distinct] = 4·(1 − (3/4)^8) = 3.60, of which 7/8 on other nodes: 3.15 NIC copies instead of 8·7/8 = 7.
    expectRel(ep_remote_nodes(c, 64, 1), 4 * (1 - 0.75 ** 8) * (7 / 8));
    const unlimited = { ...c, moe_router_num_groups: 1, moe_router_group_topk: 1 };
    expectRel(ep_remote_nodes(unlimited, 64, 1), 8 * (1 - (7 / 8) ** 8) * (7 / 8));
    // Four groups of two nodes each: a token reaches at most 2·2 = 4 nodes too.
    expectRel(ep_remote_nodes({ ...c, moe_router_num_groups: 4, moe_router_group_topk: 2 }, 64, 1), ep_remote_nodes(c, 64, 1));
    // Without deduplication the groups change nothing: every copy crosses to its expert's rank.
    const r = row({ ngpus: 64, ep: 64, seq_length: s, global_batch_size: 64 });
    const plain = { ...moe(256), moe_k: 8 };
    expectRel(estimate({ ...plain, moe_router_num_groups: 8, moe_router_group_topk: 4 }, r).ep_comm_s, estimate(plain, r).ep_comm_s);
    expect(estimate(c, r).ep_comm_s).toBeLessThan(estimate(plain, r).ep_comm_s / 2);
  });

  it('TP: a MoE layer runs the attention collectives only; shared experts add the MLP ones back', () => {
    const r = row({ ngpus: 8, tp: 8, seq_length: s, global_batch_size: 8 });
    const dense = gpt(h, 32, L, { num_query_groups: 8, kv_channels: 128, gated_mlp: 1, ffn_hidden_size: 14336 });
    const routed = estimate(moe(8), r).tp_comm_s;
    expect(routed).toBeGreaterThan(0);
    expectRel(routed, estimate(dense, r).tp_comm_s / 2);
    const shared = { ...moe(8), num_shared_experts: 1, shared_expert_ffn_hidden_size: 14336 };
    expectRel(estimate(shared, r).tp_comm_s, estimate(dense, r).tp_comm_s);
    expect([layer_tp_collectives(dense, 0), layer_tp_collectives(moe(8), 1), layer_tp_collectives(shared, 1)]).toEqual([2, 1, 2]);
  });

  it('a dense model has no EP traffic', () => {
    const o = estimate(gpt(h, 32, L), row({ ngpus: 8, seq_length: s, global_batch_size: 8 }));
    expect(o.ep_comm_s).toBe(0);
    expect(o.ep_bytes).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// CP
// ---------------------------------------------------------------------------------------------------------------

describe('CP: ring exchange against the attention of each step, or an all-gather (Llama 3)', () => {
  const h = 4096;
  const L = 4;
  const s = 8192;
  const cp = 4;
  const c = gpt(h, 32, L, { num_query_groups: 8, kv_channels: 128, flash_attention: 1, attention_half_seq: 512 });
  const r = row({ ngpus: 4, cp, seq_length: s, global_batch_size: 1 });
  const sl = s / cp;
  const chunk = 2 * sl * 2 * 8 * 128; // this rank's K and V, bf16

  it('p2p: per layer c − 1 steps, each sending a chunk forward and two back; a step hides behind 1/c of the core', () => {
    const send = (bytes: number, bw: number) => bytes / bw + LAT_UP;
    const fwd = attention_core_fwd_s(c, sl, s, 1, 1);
    const t = stage_time(c, r, 0);
    expectRel(t.cp_bytes, L * (cp - 1) * 3 * chunk);
    const total = L * (cp - 1) * (send(chunk, UP) + send(2 * chunk, UP));
    const exposed = L * (cp - 1) * (Math.max(0, send(chunk, UP) - fwd / cp) + Math.max(0, send(2 * chunk, UP) - (2.5 * fwd) / cp));
    expectRel(t.cp_exposed_s, exposed);
    expectRel(t.hidden_s, total - exposed);
    // A slow link, or smaller chunks (more ranks, shorter steps), leave more of it exposed.
    const slow = stage_time({ ...c, scaleup_bytes_s: 1e9 }, r, 0);
    expect(slow.cp_exposed_s).toBeGreaterThan(0);
    const wide = row({ ngpus: 8, cp: 8, seq_length: s, global_batch_size: 1 });
    expect(stage_time({ ...c, scaleup_bytes_s: 1e10 }, wide, 0).cp_exposed_s).toBeGreaterThan(
      stage_time({ ...c, scaleup_bytes_s: 1e10 }, r, 0).cp_exposed_s,
    );
  });

  it('all_gather: K and V gathered before the core and their gradients reduce-scattered, all exposed', () => {
    const g = { ...c, cp_comm: CP_COMM_ALL_GATHER };
    const t = stage_time(g, r, 0);
    const gather = ring.gather(cp * chunk, cp, UP, LAT_UP);
    expectRel(t.cp_exposed_s, L * 2 * gather);
    expectRel(t.cp_bytes, L * (cp - 1) * 2 * chunk);
  });

  it('a2a (Ulysses): Q, K, V and the output all-to-all around the core, forward and backward, all exposed', () => {
    const u = { ...c, cp_comm: CP_COMM_A2A };
    const t = stage_time(u, r, 0);
    const qkv = 2 * sl * (32 * 128 + 2 * 8 * 128); // this rank's Q, K and V, bf16
    const out = 2 * sl * 32 * 128;
    // Four ranks inside one node: each keeps a quarter and sends three quarters over NVLink.
    const a2a = (bytes: number) => ((3 / 4) * bytes) / UP + LAT_UP + BASE;
    expectRel(alltoall_s(u, qkv, cp, 1), a2a(qkv));
    expectRel(t.cp_exposed_s, L * 2 * (a2a(qkv) + a2a(out)));
    expectRel(t.hidden_s, 0);
    expectRel(t.cp_bytes, L * 2 * (3 / 4) * (qkv + out));
    // Full recompute repeats the forward's two.
    const full = stage_time(u, { ...r, recompute: RECOMPUTE_FULL }, 0);
    expectRel(full.cp_bytes, L * 3 * (3 / 4) * (qkv + out));
    // The core sees the whole sequence for a quarter of the heads: the ring's FLOPs in blocks of 8192, not 2048.
    const ring_core = attention_core_fwd_s(c, sl, s, 1, 1);
    const a2a_core = attention_core_fwd_s(c, s, s, 1, cp);
    expect(a2a_core).toBeLessThan(ring_core);
    expectRel(stage_time(u, r, 0).compute_s - stage_time(c, r, 0).compute_s, L * 3.5 * (a2a_core - ring_core));
  });

  it('a2a needs tp x cp to divide the heads and the query groups', () => {
    const prepared = prepareSweep({
      model: 'llama3.1-8b',
      hardware: 'h100-sxm-80gb',
      overrides: ['trainer.cp_comm_type=a2a'],
      search: { ngpus_range: [64], seq_range: [65536], gbs_range: [64], tp_range: [1, 2, 4, 8], cp_range: [1, 2, 4, 8, 16] },
    });
    // trainer.cp_comm_type reaches both engines as the model's code.
    expect(prepared.constants[FULL_CONSTANTS.indexOf('cp_comm')]).toBe(CP_COMM_A2A);
    const pairs = new Set<string>();
    for (const chunk of prepared.grid.chunks(1 << 16)) {
      const tpCol = chunk.columns[chunk.columnNames.indexOf('tp')];
      const cpCol = chunk.columns[chunk.columnNames.indexOf('cp')];
      for (let i = 0; i < chunk.length; i++) pairs.add(`${tpCol[i]}x${cpCol[i]}`);
    }
    // Llama 3 8B: 32 heads, 8 query groups: tp·cp at most 8.
    for (const pair of pairs) {
      const [tp, cp] = pair.split('x').map(Number);
      expect(8 % (tp * cp), pair).toBe(0);
    }
    expect(pairs.has('1x8')).toBe(true);
    expect(pairs.has('2x4')).toBe(true);
  });

  it('CP is not free: the same tokens on 4 ranks run smaller GEMMs and shorter attention blocks', () => {
    const shaped = { ...c, gemm_efficiency_half_dim: 200 };
    const one = estimate(shaped, row({ ngpus: 4, seq_length: s, global_batch_size: 4 }));
    const four = estimate(shaped, row({ ngpus: 4, cp, seq_length: s, global_batch_size: 4 }));
    // Each GPU computes 8192 tokens in both: one sequence, or a quarter of each of four.
    expect(four.compute_s).toBeGreaterThan(one.compute_s);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 5. MFU and HFU
// ---------------------------------------------------------------------------------------------------------------

describe("MFU and HFU: Narayanan et al. 2021's FLOP counts", () => {
  // GPT without biases; V a multiple of 128·t, so Vp = V.
  const h = 4096;
  const a = 32;
  const l = 8;
  const s = 2048;
  const V = 51200;
  const B = 32; // global batch
  const c = gpt(h, a, l, { vocab_size: V });
  const r = row({ ngpus: 16, tp: 2, pp: 2, seq_length: s, global_batch_size: B, num_layers: l });
  const F72 = 72 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h));
  const F96 = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));

  it('mfu·step·ngpus·peak = 72·B·s·l·h²·(1 + s/(6h) + V/(12lh)) = 3·fwd FLOPs per token·GBS·seq', () => {
    for (const recompute of [RECOMPUTE_NONE, RECOMPUTE_SELECTIVE, RECOMPUTE_FULL, RECOMPUTE_SELECTIVE_OP]) {
      const o = estimate(c, { ...r, recompute });
      expectRel(o.mfu * o.step_time_s * 16 * PEAK, F72);
      expectRel(o.mfu * o.step_time_s * 16 * PEAK, 3 * (l * (24 * h * h + 4 * s * h) + 2 * h * V) * B * s);
    }
  });

  it('hfu = mfu without recompute; full recompute matches the 96 formula; selective adds the cores', () => {
    const none = estimate(c, r);
    expectRel(none.hfu, none.mfu);
    const full = estimate(c, { ...r, recompute: RECOMPUTE_FULL });
    expectRel(full.hfu * full.step_time_s * 16 * PEAK, F96);
    const selective = estimate(c, { ...r, recompute: RECOMPUTE_SELECTIVE });
    expectRel(selective.hfu * selective.step_time_s * 16 * PEAK, F72 + B * s * l * 4 * s * h);
    // Per-op: half of the layers' 24h² linear FLOPs per token (this MHA layer with a 4h MLP) again.
    const op = estimate(c, { ...r, recompute: RECOMPUTE_SELECTIVE_OP });
    expectRel(op.hfu * op.step_time_s * 16 * PEAK, F72 + B * s * l * 12 * h * h);
  });

  it('MoE: model FLOPs count k experts (cf = 1) plus the router', () => {
    const E = 8;
    const k = 2;
    const fe = 4 * h;
    const m = gpt(h, a, l, { vocab_size: V, num_experts: E, moe_k: k, moe_ffn_hidden_size: fe, moe_layer_freq: 1, capacity_factor: 1.5 });
    const rr = row({ ngpus: 8, ep: 8, seq_length: s, global_batch_size: 8 });
    const o = estimate(m, rr);
    const perToken = 3 * (l * (8 * h * h + 4 * s * h + 2 * (k * 2 * h * fe + h * E)) + 2 * h * V);
    expectRel(o.mfu * o.step_time_s * 8 * PEAK, perToken * 8 * s);
  });
});

describe('trainer.compute_dtype: autocast over fp32 parameters (Lightning bf16-mixed, FSDP param_dtype float32)', () => {
  const search = {
    ngpus_range: 8, tp_range: 1, pp_range: 1, cp_range: 1, shard_strategys: 3, grad_reduce_range: 'microbatch', reshard_range: true,
    sp_range: false, recompute_range: 'none', offload_range: 'none', mbs_range: 1,
  };
  const run = (overrides: string[]) => explain({ model: 'llama3.1-8b', hardware: 'a100-80gb', headroom: 0, overrides, search }).result;

  it('matmuls at the bf16 peak, ZeRO-3 gathers and stored weights in fp32, MFU against the bf16 peak', () => {
    const bf16 = run([]);
    const autocast = run(['trainer.param_dtype=float32', 'trainer.compute_dtype=bfloat16', 'trainer.master_weights=false']);
    const fp32 = run(['trainer.param_dtype=float32', 'trainer.master_weights=false']);
    expectRel(autocast.compute_s, bf16.compute_s);
    expect(fp32.compute_s).toBeGreaterThan(1.5 * bf16.compute_s); // TF32 at half the bf16 peak
    // Per micro-batch the forward and backward gathers move 4 bytes a parameter instead of 2, the fp32 gradient
    // reduce-scatter 4 either way: (4 + 4 + 4) / (2 + 2 + 4).
    expectRel(autocast.dp_bytes / bf16.dp_bytes, 12 / 8);
    expectRel(autocast.weights_gib, 2 * bf16.weights_gib);
    expectRel(autocast.mfu * autocast.step_time_s, bf16.mfu * bf16.step_time_s);
  });

  it('fp8 parameters set it themselves; launch targets whose precision flag sets both refuse a difference', () => {
    expect(() => validateTrainer({ param_dtype: 'fp8', compute_dtype: 'bfloat16' })).toThrow(/^trainer\.compute_dtype: /);
    expect(validateTrainer({ compute_dtype: 'bf16' }).compute_dtype).toBe('bfloat16');
    expect(() => validateTrainer({ compute_dtype: 'float8' })).toThrow(/^trainer\.compute_dtype: must be one of float32, float16, bfloat16/);
    expect(describeTimeSettings(validateTrainer({ param_dtype: 'fp32', compute_dtype: 'bf16' }))).toContain(
      'linear layers bfloat16 (autocast over float32 parameters)',
    );
    // The expert-dispatch settings only where there are experts.
    const trainer = validateTrainer({});
    expect(describeTimeSettings(trainer, loadConfig('llama3.1-8b').model)).not.toContain('moe_');
    expect(describeTimeSettings(trainer, loadConfig('mixtral-8x7b').model)).toContain('moe_a2a_overlap off, moe_dedup_dispatch off');
  });
});
