/**
 * `parasweep check` on every bundled model's default grid with the default (full) formula, and on the PoC's own
 * files with --formula poc: the WGSL model and the TypeScript model agree within the f32 tolerance everywhere.
 */
import { describe, expect, it } from 'vitest';
import { checkEngines, DEFAULT_RTOL } from '../src/analysis/check.js';
import { listBundled } from '../src/config/load.js';
import { gpuAvailable } from './gpu-support.js';
import { fixture, POC_YAMLS } from './helpers.js';

const available = await gpuAvailable();

describe.runIf(available)('cross-check of the GPU engine against the CPU reference', () => {
  // MoE grids multiply by EP and ETP: at 1024 GPUs each takes half a minute on llvmpipe, so they stop at 256.
  const MOE = new Set(['deepseek-v3', 'grok-1', 'mixtral-8x7b', 'mixtral-8x22b']);
  // Offload is pinned to none (a third of the rows) except on one dense model, which checks every offload mode.
  const EVERY_OFFLOAD = 'llama3.1-70b';
  for (const model of listBundled('models')) {
    // Powers of two, a count with factors 3 (96: pp 3, 6, 12) and a large one: the default grid over every GPU
    // count is tens of millions of rows, too many for a test on a software adapter.
    const ngpus = MOE.has(model) ? [8, 96, 256] : [8, 96, 1024];
    const pinned = model !== EVERY_OFFLOAD;
    it(`agrees on ${model}'s default grid at ${ngpus.join(', ')} GPUs${pinned ? ', offload none' : ''} (full formula)`, async () => {
      const report = await checkEngines({ model, search: pinned ? { ngpus_range: ngpus, offload_range: ['none'] } : { ngpus_range: ngpus } });
      const failing = report.columns.filter((column) => !column.ok).map((column) => column.column);
      expect(failing).toEqual([]);
      expect(report.gridColumnsIdentical).toBe(true);
      expect(report.rtol).toBe(DEFAULT_RTOL);
      // Decision-boundary rows are excused from comparison, but they must stay rare. The commonest: ZeRO-2/3 rows
      // bound by per-micro-batch traffic, whose first and last stage hold as many parameters to within the final
      // norm, so their paces tie and the step splits into terms at either stage.
      expect(report.ties).toBeLessThan(report.rows * 5e-3);
      expect(report.rows).toBeGreaterThan(1000);
    });
  }
  // Issue 9's layouts, each named: uneven interleaved chunks, empty end chunks, DualPipe, ZB-H1, ZeRO-2/3 with PP.
  const LAYOUTS: Array<[string, string, Record<string, unknown>]> = [
    ['DeepSeek-V3 PP4 x VPP4 x EP64 (61 layers: chunks of 3 and 4)', 'deepseek-v3', { ngpus_range: 256, pp_range: 4, vpp_range: 4, schedule_range: 'interleaved', ep_range: 64 }],
    ['Llama 3.1 405B PP16 x VPP8 (empty first and last chunks)', 'llama3.1-405b', { ngpus_range: 8192, tp_range: 8, pp_range: 16, vpp_range: 8, schedule_range: 'interleaved', cp_range: 1 }],
    ['Llama 3.1 70B on 96 GPUs, DualPipe and ZB-H1, ZeRO 0-3', 'llama3.1-70b', { ngpus_range: 96, schedule_range: ['dualpipe', 'zb-h1'] }],
    ['Mixtral 8x22B, ZeRO-2/3 with PP', 'mixtral-8x22b', { ngpus_range: 512, pp_range: [2, 4, 7], shard_strategys: [2, 3] }],
    // HSDP: shard groups inside and across nodes, replica all-reduces over NVLink and the network, dense and experts.
    ['Mixtral 8x7B, HSDP with 1, 2, 4 and 8 replicas, ZeRO 0-3', 'mixtral-8x7b', { ngpus_range: [64, 256], pp_range: [1, 2], dp_replicas_range: [1, 2, 4, 8] }],
  ];
  for (const [name, model, search] of LAYOUTS) {
    it(`agrees on ${name}`, async () => {
      const report = await checkEngines({ model, search });
      expect(report.columns.filter((column) => !column.ok).map((column) => column.column)).toEqual([]);
      expect(report.gridColumnsIdentical).toBe(true);
      expect(report.rows).toBeGreaterThan(100);
      expect(report.ties).toBeLessThan(report.rows * 5e-3);
    });
  }
  // Issue 10's time-model settings away from their defaults: every branch of the GEMM, attention, CP, EP and overlap
  // terms that the default grid does not take.
  const SETTINGS: Array<[string, string, string[]]> = [
    ['FP8, all-gather CP, FlashAttention-2, overlaps off', 'llama3.1-70b', [
      'trainer.fp8=true', 'trainer.cp_comm_type=all_gather', 'trainer.attention_kernel=fa2', 'trainer.tp_comm_overlap=false',
      'trainer.overlap_grad_reduce=false', 'trainer.overlap_param_gather=false', 'trainer.overlap_p2p_comm=false',
    ]],
    ['MoE FP8 with the all-to-all overlapped and deduplicated, no flash attention, Ulysses CP over MLA heads', 'deepseek-v3', [
      'trainer.fp8=true', 'trainer.moe_a2a_overlap=true', 'trainer.moe_dedup_dispatch=true', 'trainer.flash_attention=false', 'trainer.cp_comm_type=a2a',
    ]],
    ['Ulysses all-to-all CP', 'llama3.1-70b', ['trainer.cp_comm_type=a2a']],
    // torchtitan's per-op selective checkpointing, which the default grid leaves out, in bf16 and FP8.
    ['per-op selective recompute', 'llama3.1-70b', ['+recompute_range=[selective_op, full]']],
    ['per-op selective recompute, FP8', 'mixtral-8x7b', ['+recompute_range=[selective_op]', 'trainer.fp8=true']],
  ];
  for (const [name, model, overrides] of SETTINGS) {
    it(`agrees with ${name}`, async () => {
      const report = await checkEngines({ model, overrides, search: { ngpus_range: model === 'deepseek-v3' ? [64] : [64, 512] } });
      expect(report.columns.filter((column) => !column.ok).map((column) => column.column)).toEqual([]);
      expect(report.gridColumnsIdentical).toBe(true);
      expect(report.rows).toBeGreaterThan(1000);
      expect(report.ties).toBeLessThan(report.rows * 5e-3);
    });
  }
  for (const file of POC_YAMLS) {
    it(`agrees on the PoC's ${file} with --formula poc`, async () => {
      const report = await checkEngines({ model: fixture(file), formula: 'poc' });
      expect(report.ok).toBe(true);
      expect(report.ties).toBe(0);
    });
  }
});
