import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { defaultLayoutColumns, replicasDivide } from '../layout.js';
import { join } from 'node:path';
import { Calibration, CALIBRATION_PATH, FamilyCalibration, loadCalibration, RANGE_DIMENSIONS, RangeDimension } from '../config/calibration.js';
import { loadHardware } from '../config/hardware.js';
import { BUNDLED_CONFIG_DIR, loadConfig, LoadedConfig, readYamlFile } from '../config/load.js';
import { validateModel, validateTrainer } from '../config/model.js';
import { OFFLOAD_MODES, RECOMPUTE_MODES, SCHEDULES } from '../config/space.js';
import { InputError } from '../errors.js';
import { familyConstants, fullFormula } from '../formulas/full.js';
import { FULL_OUTPUTS, full_estimate, FullConstants, FullRow, FULL_CONSTANTS } from '../model.js';

/** What a source reports. Every metric is turned into a throughput error: (predicted - published) / published. */
export type Metric = 'hardware_tflops_per_gpu' | 'model_tflops_per_gpu' | 'mfu' | 'tokens_per_s_per_gpu' | 'step_time_s';

/**
 * Training stacks of the calibration sources: Megatron-LM and its descendants (Megatron-Core, Megatron-DeepSpeed,
 * with Transformer Engine on Hopper), PyTorch FSDP trainers (torchtitan, Composer/llm-foundry, fms-fsdp,
 * OLMo-core, lit-gpt), DeepSpeed ZeRO on Hugging Face models, and in-house stacks (Meta's, DeepSeek's HAI-LLM).
 */
export const STACKS = ['megatron', 'pytorch-fsdp', 'deepspeed', 'in-house'] as const;
export type Stack = (typeof STACKS)[number];

/** One published measurement: a training run's shape, layout and what the source reports. */
export interface Measurement {
  name: string;
  /** The publication; leave-one-source-out holds out all of a source's rows at once. */
  source: string;
  citation: string;
  /**
   * The training software that ran it (STACKS): reported, never fitted, so that the error tables show what the
   * layout columns do not carry (fused kernels, framework overheads) as a bias per stack.
   */
  stack: Stack;
  regime: string;
  hardware: string;
  family: string;
  config: LoadedConfig;
  row: FullRow;
  metric: Metric;
  value: number;
  assumed?: string;
}

export interface Prediction {
  measurement: Measurement;
  predicted: number;
  /** Throughput error: (predicted - published) / published, inverted for step times. */
  error: number;
}

export const CALIBRATION_DIR = join(BUNDLED_CONFIG_DIR, 'calibration');

/** Model shapes of the architectures the sources describe by their dimensions alone. */
const ARCHITECTURES: Record<string, Record<string, unknown>> = {
  // Megatron-LM's GPT: GeLU, 4h MLP, LayerNorm, learned positions, tied embeddings, biases, dropout.
  gpt: {
    activation: 'gelu',
    normalization: 'layernorm',
    position_embedding_type: 'learned_absolute',
    add_bias_linear: true,
    share_embeddings_and_output_weights: true,
    dropout: true,
  },
  // MosaicML MPT (llm-foundry scripts/train/yamls/pretrain/mpt-*.yaml): GeLU, 4h, LayerNorm, ALiBi, no biases,
  // tied embeddings, no dropout.
  mpt: {
    activation: 'gelu',
    normalization: 'layernorm',
    position_embedding_type: 'rope',
    add_bias_linear: false,
    share_embeddings_and_output_weights: true,
    dropout: false,
  },
  // Llama-style decoders (Touvron et al. 2023, "Llama 2", section 2.2; OLMo 2 and Llama 3 keep it): SwiGLU,
  // RMSNorm, RoPE, no biases, untied embeddings, no dropout. Sources give the FFN width (`ffn`) and KV heads.
  llama: {
    activation: 'swiglu',
    normalization: 'rmsnorm',
    position_embedding_type: 'rope',
    add_bias_linear: false,
    share_embeddings_and_output_weights: false,
    dropout: false,
  },
};

interface RawRun {
  name: string;
  regime?: string;
  hardware?: string;
  model?: string;
  arch?: string;
  heads?: number;
  kv_heads?: number;
  hidden?: number;
  ffn?: number;
  layers?: number;
  vocab_size?: number;
  seq_length: number;
  ngpus: number;
  tp: number;
  pp: number;
  cp?: number;
  ep?: number;
  etp?: number;
  vpp?: number;
  gbs: number;
  mbs: number;
  recompute: string;
  sp: boolean;
  schedule: string;
  zero?: number;
  /** ZeRO-3: whether parameters are freed after the forward (FSDP's default) or kept for the backward. */
  reshard?: boolean;
  /** ZeRO-2/3: gradients reduce-scattered per micro-batch (FSDP, DeepSpeed: the default) or once per step. */
  grad_reduce?: 'microbatch' | 'step';
  /** ZeRO 1-3: replicas of the sharded states (HSDP: shard within a group of dp / dp_replicas ranks); default 1. */
  dp_replicas?: number;
  trainer?: Record<string, unknown>;
  model_overrides?: Record<string, unknown>;
  metric: Metric;
  value: number;
  assumed?: string;
  stack?: string;
}

function configOf(run: RawRun, field: string): LoadedConfig {
  const trainerRaw = { param_dtype: 'bfloat16', grad_dtype: 'float32', ...(run.trainer ?? {}) };
  if (run.model) {
    const loaded = loadConfig(run.model);
    const model = validateModel({ ...loaded.model, ...(run.model_overrides ?? {}), seq_length: run.seq_length, global_batch_size: run.gbs });
    return { ...loaded, model, trainer: validateTrainer({ ...loaded.trainer, ...trainerRaw }) };
  }
  const arch = ARCHITECTURES[run.arch ?? 'gpt'];
  if (!arch) throw new InputError(field, `${run.name}: unknown arch "${run.arch}" (${Object.keys(ARCHITECTURES).join(', ')})`);
  const model = validateModel({
    ...arch,
    name: run.name,
    global_batch_size: run.gbs,
    micro_batch_size: run.mbs,
    vocab_size: run.vocab_size,
    num_layers: run.layers,
    hidden_size: run.hidden,
    ffn_hidden_size: run.ffn ?? 4 * run.hidden!,
    num_attention_heads: run.heads,
    num_key_value_heads: run.kv_heads,
    seq_length: run.seq_length,
    ...(run.model_overrides ?? {}),
  });
  return { source: run.name, model, trainer: validateTrainer(trainerRaw), search: {} };
}

function measurementOf(run: RawRun, file: SourceFile, field: string): Measurement {
  const config = configOf(run, field);
  const cp = run.cp ?? 1;
  const ep = run.ep ?? 1;
  const etp = run.etp ?? 1;
  const dp = run.ngpus / (run.tp * run.pp * cp);
  const m = run.gbs / (dp * run.mbs);
  const edp = run.ngpus / (run.pp * ep * etp);
  if (!Number.isInteger(dp) || !Number.isInteger(m) || !Number.isInteger(edp)) {
    throw new InputError(field, `${run.name}: ${run.ngpus} GPUs and batch ${run.gbs} do not divide into tp x pp x cp x dp x mbs`);
  }
  // One pipeline stage has no schedule (the table's default of an interleaved schedule applies where p > 1).
  const scheduleName = run.pp === 1 ? '1f1b' : run.schedule;
  const vpp = scheduleName === 'interleaved' ? (run.vpp ?? 2) : 1;
  const schedule = SCHEDULES.indexOf(scheduleName as never);
  const recompute = RECOMPUTE_MODES.indexOf(run.recompute as never);
  if (schedule < 0 || recompute < 0) throw new InputError(field, `${run.name}: unknown schedule or recompute`);
  const row: FullRow = {
    ngpus: run.ngpus,
    seq_length: run.seq_length,
    global_batch_size: run.gbs,
    tp: run.tp,
    pp: run.pp,
    vpp,
    schedule,
    cp,
    ep,
    etp,
    dp,
    edp,
    zero: run.zero ?? 1,
    sp: run.sp ? 1 : 0,
    recompute,
    offload: OFFLOAD_MODES.indexOf('none'),
    mbs: run.mbs,
    num_microbatches: m,
    ...defaultLayoutColumns(config.model.num_layers, run.pp, vpp),
  };
  row.grad_reduce = row.zero >= 2 && (run.grad_reduce ?? 'microbatch') === 'microbatch' ? 1 : 0;
  row.reshard = row.zero === 3 && (run.reshard ?? true) ? 1 : 0;
  row.dp_replicas = run.dp_replicas ?? 1;
  const divides = replicasDivide(row.dp_replicas, dp, edp, (config.model.moe?.num_experts ?? 0) > 0);
  if (!Number.isInteger(row.dp_replicas) || row.dp_replicas < 1 || !divides || (row.zero === 0 && row.dp_replicas > 1)) {
    throw new InputError(field, `${run.name}: dp_replicas must be an integer >= 1 dividing dp (${dp}), and 1 with ZeRO-0`);
  }
  const hardwareName = run.hardware ?? file.hardware;
  const hardware = loadHardware(hardwareName, field);
  const stack = run.stack ?? file.stack;
  if (!STACKS.includes(stack as Stack)) throw new InputError(field, `${run.name}: stack must be one of ${STACKS.join(', ')}, got ${stack}`);
  return {
    name: run.name,
    source: file.source,
    citation: file.citation,
    stack: stack as Stack,
    regime: run.regime ?? file.regime,
    hardware: hardwareName,
    family: hardware.calibration_family,
    config,
    row,
    metric: run.metric ?? file.metric,
    value: run.value,
    assumed: run.assumed,
  };
}

/** One file of configs/calibration/: the rows of one source, as maps or as arrays under `columns`. */
interface SourceFile {
  source: string;
  citation: string;
  stack?: string;
  hardware: string;
  regime: string;
  metric?: Metric;
  defaults?: Record<string, unknown>;
  columns?: string[];
  rows: Array<Record<string, unknown> | unknown[]>;
}

/** Every published measurement of configs/calibration/*.yaml. */
export function measurements(dir = CALIBRATION_DIR): Measurement[] {
  const out: Measurement[] = [];
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    const path = join(dir, name);
    const file = readYamlFile(path, 'calibration set') as SourceFile;
    for (const raw of file.rows) {
      const fields = Array.isArray(raw) ? Object.fromEntries((file.columns ?? []).map((column, i) => [column, raw[i]])) : raw;
      out.push(measurementOf({ metric: file.metric, ...(file.defaults ?? {}), ...fields } as RawRun, file, path));
    }
  }
  return out;
}

const packed = new Map<Measurement, FullConstants>();

export function predict(measurement: Measurement, family: FamilyCalibration, calibration: Calibration): Prediction {
  let base = packed.get(measurement);
  if (!base) {
    const hardware = loadHardware(measurement.hardware);
    const constants = fullFormula.packConstants({ config: measurement.config, hardware, headroom: 0, calibration });
    base = Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, constants[i]])) as FullConstants;
    packed.set(measurement, base);
  }
  // Only the family's fitted constants change between calls; the rest of the packing is reused.
  const c: FullConstants = { ...base, ...familyConstants(family, measurement.config.trainer) };
  const out = new Float64Array(FULL_OUTPUTS.length);
  full_estimate(c, measurement.row, out);
  const column = (name: (typeof FULL_OUTPUTS)[number]) => out[FULL_OUTPUTS.indexOf(name)];
  const peak_tflops = c.peak_flops / 1e12;
  const metric = measurement.metric;
  const predicted =
    metric === 'mfu'
      ? column('mfu')
      : metric === 'model_tflops_per_gpu'
        ? column('mfu') * peak_tflops
        : metric === 'hardware_tflops_per_gpu'
          ? column('hfu') * peak_tflops
          : metric === 'tokens_per_s_per_gpu'
            ? column('tokens_per_s_per_gpu')
            : column('step_time_s');
  const error = metric === 'step_time_s' ? measurement.value / predicted - 1 : (predicted - measurement.value) / measurement.value;
  return { measurement, predicted, error };
}

export function meanAbsoluteError(predictions: Prediction[]): number {
  return predictions.reduce((sum, p) => sum + Math.abs(p.error), 0) / predictions.length;
}

/**
 * Each fitted constant that a measurement outside the end-to-end runs also tells, and that measurement
 * (configs/calibration.yaml): the attention kernels' ratios and their kernel benchmarks, and the cost of overlapped
 * communication and the measured slowdown of GEMMs under concurrent collectives.
 */
const PRIORS = [
  ['fa2_attention_ratio', 'fa2_attention_prior'],
  ['triton_attention_ratio', 'triton_attention_prior'],
  ['overlap_cost', 'overlap_cost_prior'],
] as const;

/**
 * Mean squared error per source, summed: every publication weighs the same however many rows it has. A constant
 * being fitted that has a prior (`priors`) counts that measurement as one more source, whose error is the
 * constant's relative distance from it. End-to-end runs tell the attention kernel's speed only through the
 * product of its ratio and `attention_efficiency`, so a set whose runs of the reference kernel are few (a
 * leave-one-source-out fold without USP's FlashAttention-2 runs on A100) would otherwise move both freely; and
 * they tell `overlap_cost` mostly through the few runs that hide the most communication (DeepSeek-V3's expert
 * all-to-alls behind DualPipe), which would otherwise set it for every run of the family.
 */
function loss(set: Measurement[], family: FamilyCalibration, calibration: Calibration, priors: ReadonlyArray<(typeof PRIORS)[number]> = []): number {
  const bySource = new Map<string, number[]>();
  for (const m of set) {
    const e = predict(m, family, calibration).error;
    const list = bySource.get(m.source) ?? [];
    list.push(e * e);
    bySource.set(m.source, list);
  }
  let total = 0;
  for (const list of bySource.values()) total += list.reduce((a, b) => a + b, 0) / list.length;
  for (const [ratio, prior] of priors) total += Math.log(family[ratio] / family[prior]) ** 2;
  return total;
}

/**
 * The constants a family's fit moves; attention_half_seq stays at its published value, and fa2_attention_ratio
 * moves only where FlashAttention-2 and the fused kernel differ (fa2_attention_ratio below 1 in
 * configs/calibration.yaml) and the family has runs of both.
 */
export const FITTED = [
  'gemm_efficiency_max',
  'gemm_efficiency_half_dim',
  'fp8_efficiency',
  'attention_efficiency',
  'fa2_attention_ratio',
  'triton_attention_ratio',
  'memory_passes',
  'compile_passes_ratio',
  'overlap_cost',
] as const;
const RANGES: Record<(typeof FITTED)[number], [min: number, max: number, step: number]> = {
  gemm_efficiency_max: [0.4, 1.0, 0.01],
  // Below 100 the curve would have a 128-wide GEMM reach over half of its peak, which GEMM micro-benchmarks
  // contradict (docs/time-model.md, section 6); the calibration sets are nearly flat there.
  gemm_efficiency_half_dim: [100, 2000, 10],
  fp8_efficiency: [0.3, 1.0, 0.01],
  attention_efficiency: [0.2, 0.9, 0.01],
  // FlashAttention-2 on H100 runs at 0.5-0.6 of FlashAttention-3 and cuDNN's fused kernel (Shah et al. 2024,
  // Fig. 1-3, head dimension 128; pytorch/pytorch#142132: SDPA's FlashAttention-2 at 329 against cuDNN's 631
  // TFLOP/s): the fit stays within a margin of those kernel benchmarks.
  fa2_attention_ratio: [0.45, 0.8, 0.01],
  // FlashAttention-2 runs 1.3-2.5x as fast as the Triton implementation of FlashAttention on A100 (Dao 2023,
  // "FlashAttention-2", section 4.1: 0.4-0.77). No benchmark compares them on H100, where FlashAttention-2 uses
  // none of Hopper's new instructions (Shah et al. 2024, section 1: 35% of the H100's peak) and Triton's compiler
  // emits them: the upper bound leaves the Triton kernel room to match or pass it there.
  triton_attention_ratio: [0.4, 1.2, 0.01],
  memory_passes: [1, 12, 0.1],
  compile_passes_ratio: [0, 1, 0.01],
  overlap_cost: [0, 1, 0.01],
};

/**
 * Where every fit starts, whatever configs/calibration.yaml holds, so that a fit (and each leave-one-source-out
 * refit) depends on its data alone: mid-range values of each constant.
 */
export const FIT_START: Pick<FamilyCalibration, (typeof FITTED)[number]> = {
  gemm_efficiency_max: 0.7,
  gemm_efficiency_half_dim: 200,
  fp8_efficiency: 0.8,
  attention_efficiency: 0.4,
  fa2_attention_ratio: 0.6,
  triton_attention_ratio: 0.55,
  memory_passes: 3,
  compile_passes_ratio: 0.5,
  overlap_cost: 0.05,
};

/**
 * Fits a family's constants (the FP8 ratio only when the set has FP8 runs) by minimising the per-source mean
 * squared throughput error: a coarse grid over the GEMM peak fraction, the attention efficiency and the
 * element-wise passes from FIT_START, then coordinate descent on ever finer steps. Deterministic: the same rows
 * give the same constants.
 */
export function fitFamily(fixed: FamilyCalibration, set: Measurement[], calibration: Calibration): FamilyCalibration {
  const hasFp8 = set.some((m) => m.config.trainer.fp8 || m.config.trainer.param_dtype === 'fp8');
  const flash = set.filter((m) => m.config.trainer.flash_attention);
  const fitsFa2 =
    fixed.fa2_attention_prior < 1 &&
    flash.some((m) => m.config.trainer.attention_kernel === 'fa2') &&
    flash.some((m) => m.config.trainer.attention_kernel !== 'fa2');
  const fitsTriton =
    flash.some((m) => m.config.trainer.attention_kernel === 'triton') && flash.some((m) => m.config.trainer.attention_kernel !== 'triton');
  const fitsCompile = set.some((m) => m.config.trainer.torch_compile) && set.some((m) => !m.config.trainer.torch_compile);
  const names = FITTED.filter(
    (name) =>
      (name !== 'fp8_efficiency' || hasFp8) &&
      (name !== 'fa2_attention_ratio' || fitsFa2) &&
      (name !== 'triton_attention_ratio' || fitsTriton) &&
      (name !== 'compile_passes_ratio' || fitsCompile),
  );
  let best: FamilyCalibration = {
    ...fixed,
    ...FIT_START,
    fp8_efficiency: hasFp8 ? FIT_START.fp8_efficiency : 1,
    // Not the stored values, which were fitted on every source: a fold without a kernel's runs would see the
    // held-out source through them. The family's kernel benchmarks instead (configs/calibration.yaml).
    fa2_attention_ratio: fitsFa2 ? FIT_START.fa2_attention_ratio : fixed.fa2_attention_prior,
    triton_attention_ratio: fitsTriton ? FIT_START.triton_attention_ratio : fixed.triton_attention_prior,
    // A set without both kinds cannot tell the ratio, and its runs do not depend on it (all eager) unless a
    // held-out source is the only one compiled, which no fold of configs/calibration has (six H100 sources ran
    // torch.compile).
    compile_passes_ratio: fitsCompile ? FIT_START.compile_passes_ratio : fixed.compile_passes_ratio,
  };
  const priors = PRIORS.filter(([fitted]) => names.includes(fitted));
  let bestLoss = loss(set, best, calibration, priors);
  const start = best;
  for (const max of [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]) {
    for (const attention of [0.2, 0.35, 0.5, 0.65, 0.8]) {
      for (const passes of [1, 3, 6, 10]) {
        const candidate = { ...start, gemm_efficiency_max: max, attention_efficiency: attention, memory_passes: passes };
        const value = loss(set, candidate, calibration, priors);
        if (value < bestLoss) [best, bestLoss] = [candidate, value];
      }
    }
  }
  for (const scale of [8, 4, 2, 1]) {
    let improved = true;
    while (improved) {
      improved = false;
      for (const name of names) {
        const [min, max, step] = RANGES[name];
        for (const direction of [-1, 1]) {
          const value = Number((best[name] + direction * scale * step).toFixed(4));
          if (value < min || value > max) continue;
          const candidate = { ...best, [name]: value };
          const candidateLoss = loss(set, candidate, calibration, priors);
          if (candidateLoss < bestLoss - 1e-12) {
            [best, bestLoss] = [candidate, candidateLoss];
            improved = true;
          }
        }
      }
    }
  }
  return best;
}

export interface FamilyReport {
  family: string;
  fitted: FamilyCalibration;
  /** Every row predicted by the constants fitted on all of the family's sources. */
  inSample: Prediction[];
  /** Every row predicted by constants fitted without its own source. */
  heldOut: Prediction[];
}

/** Fits every family, and refits it once per source without that source (leave-one-source-out). */
export function calibrateFamilies(calibration: Calibration, set = measurements()): FamilyReport[] {
  const reports: FamilyReport[] = [];
  for (const family of [...new Set(set.map((m) => m.family))].sort()) {
    const rows = set.filter((m) => m.family === family);
    const start = calibration.families[family];
    if (!start) throw new InputError('calibration.families', `no starting constants for family "${family}"`);
    const fitted = fitFamily(start, rows, calibration);
    const heldOut: Prediction[] = [];
    const sources = [...new Set(rows.map((m) => m.source))];
    for (const source of sources) {
      const training = rows.filter((m) => m.source !== source);
      const constants = training.length > 0 ? fitFamily(start, training, calibration) : fitted;
      for (const m of rows.filter((r) => r.source === source)) heldOut.push(predict(m, constants, calibration));
    }
    heldOut.sort((a, b) => rows.indexOf(a.measurement) - rows.indexOf(b.measurement));
    reports.push({ family, fitted, inSample: rows.map((m) => predict(m, fitted, calibration)), heldOut });
  }
  // torch.compile's fusions remove the same kernels on any GPU: a family without runs that tell its ratio (none
  // of its runs predicts differently) takes the one fitted on the most runs with torch.compile.
  const compiled = (report: FamilyReport) => report.inSample.filter((p) => p.measurement.config.trainer.torch_compile).length;
  const donor = [...reports].sort((a, b) => compiled(b) - compiled(a))[0];
  for (const report of reports) {
    if (compiled(report) === 0 && donor && compiled(donor) > 0) report.fitted = { ...report.fitted, compile_passes_ratio: donor.fitted.compile_passes_ratio };
  }
  return reports;
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}

function show(metric: Metric, value: number): string {
  if (metric === 'mfu') return percent(value);
  if (metric === 'step_time_s') return value.toFixed(2);
  return value.toFixed(metric === 'tokens_per_s_per_gpu' ? 0 : 1);
}

function meanSignedError(predictions: Prediction[]): number {
  return predictions.reduce((sum, p) => sum + p.error, 0) / predictions.length;
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${percent(value)}`;
}

interface SignedErrors<K extends string> {
  key: K;
  family: string;
  runs: number;
  sources: number;
  inSample: number;
  heldOut: number;
}

/** Each key's rows of a report, as indices into its predictions; keys without rows are left out. */
function rowsByKey<K>(report: FamilyReport, keys: readonly K[], keyOf: (m: Measurement) => K): Array<[key: K, index: number[]]> {
  return keys
    .map((key): [K, number[]] => [key, report.heldOut.flatMap((p, i) => (keyOf(p.measurement) === key ? [i] : []))])
    .filter(([, index]) => index.length > 0);
}

/** Mean signed error of the rows of each key within each family: a bias that the fit spreads over the rest. */
function signedErrors<K extends string>(reports: FamilyReport[], keys: readonly K[], keyOf: (m: Measurement) => K): Array<SignedErrors<K>> {
  const out: Array<SignedErrors<K>> = [];
  for (const report of reports) {
    for (const [key, index] of rowsByKey(report, keys, keyOf)) {
      const heldOut = index.map((i) => report.heldOut[i]);
      out.push({
        key,
        family: report.family,
        runs: index.length,
        sources: new Set(heldOut.map((p) => p.measurement.source)).size,
        inSample: meanSignedError(index.map((i) => report.inSample[i])),
        heldOut: meanSignedError(heldOut),
      });
    }
  }
  return out;
}

/** Mean signed error per stack within each family: a bias the layout columns cannot explain shows here. */
export function stackErrors(reports: FamilyReport[]): Array<SignedErrors<Stack>> {
  return signedErrors(reports, STACKS, (m) => m.stack);
}

/**
 * Mean signed error per activation recompute mode within each family: the recompute term is a model input, so a
 * bias here points at how the model prices recomputation (docs/time-model.md, section 7).
 */
export function recomputeErrors(reports: FamilyReport[]): Array<SignedErrors<(typeof RECOMPUTE_MODES)[number]>> {
  return signedErrors(reports, RECOMPUTE_MODES, (m) => RECOMPUTE_MODES[m.row.recompute]);
}

/**
 * Mean signed error per recompute mode within each source that ran more than one mode: the recompute term's bias
 * with each publication's own offsets (its stack, its cluster, how it counts) held fixed, which the per-family
 * table above mixes in. Fitted on all sources; modes a source did not run are left out.
 */
export function recomputeErrorsWithinSources(
  reports: FamilyReport[],
): Array<{ source: string; family: string; modes: Array<{ mode: (typeof RECOMPUTE_MODES)[number]; runs: number; inSample: number }> }> {
  const out: ReturnType<typeof recomputeErrorsWithinSources> = [];
  for (const report of reports) {
    for (const source of [...new Set(report.inSample.map((p) => p.measurement.source))]) {
      const modes = RECOMPUTE_MODES.map((mode, code) => {
        const rows = report.inSample.filter((p) => p.measurement.source === source && p.measurement.row.recompute === code);
        return { mode, runs: rows.length, inSample: rows.length > 0 ? meanSignedError(rows) : 0 };
      }).filter((m) => m.runs > 0);
      if (modes.length > 1) out.push({ source, family: report.family, modes });
    }
  }
  return out;
}

/** Mean absolute held-out error per regime, over all families. */
export function regimeErrors(reports: FamilyReport[]): Array<{ regime: string; runs: number; sources: number; inSample: number; heldOut: number; worst: number }> {
  const byRegime = new Map<string, { inSample: Prediction[]; heldOut: Prediction[] }>();
  for (const report of reports) {
    report.heldOut.forEach((p, i) => {
      const entry = byRegime.get(p.measurement.regime) ?? { inSample: [], heldOut: [] };
      entry.heldOut.push(p);
      entry.inSample.push(report.inSample[i]);
      byRegime.set(p.measurement.regime, entry);
    });
  }
  return [...byRegime.entries()].map(([regime, { inSample, heldOut }]) => ({
    regime,
    runs: heldOut.length,
    sources: new Set(heldOut.map((p) => p.measurement.source)).size,
    inSample: meanAbsoluteError(inSample),
    heldOut: meanAbsoluteError(heldOut),
    worst: Math.max(...heldOut.map((p) => Math.abs(p.error))),
  }));
}

/**
 * Mean absolute and signed error of each publication's rows, fitted on all sources and held out: the per-paper
 * error a validation command reports (Calculon's llm-validation gives one per paper), Korthikanti's among them.
 */
export function sourceErrors(
  reports: FamilyReport[],
): Array<{ source: string; family: string; regimes: string[]; runs: number; inSample: number; heldOut: number; heldOutSigned: number }> {
  const out = [];
  for (const report of reports) {
    const sources = [...new Set(report.heldOut.map((p) => p.measurement.source))].sort();
    for (const [source, index] of rowsByKey(report, sources, (m) => m.source)) {
      const heldOut = index.map((i) => report.heldOut[i]);
      out.push({
        source,
        family: report.family,
        regimes: [...new Set(heldOut.map((p) => p.measurement.regime))].sort(),
        runs: index.length,
        inSample: meanAbsoluteError(index.map((i) => report.inSample[i])),
        heldOut: meanAbsoluteError(heldOut),
        heldOutSigned: meanSignedError(heldOut),
      });
    }
  }
  return out;
}

export function calibrationYaml(calibration: Calibration, reports: FamilyReport[], previous: string): string {
  let text = previous;
  for (const { family, fitted } of reports) {
    for (const name of FITTED) {
      // Replace the value inside this family's block only.
      const pattern = new RegExp(`(^  ${family}:\\n(?:    .*\\n)*?    ${name}: )[^\\n]*`, 'm');
      text = text.replace(pattern, `$1${fitted[name]}`);
    }
  }
  void calibration;
  const start = text.indexOf(REGIME_ERRORS_MARKER);
  const head = start >= 0 ? text.slice(0, start) : text.endsWith('\n') ? text : `${text}\n`;
  const hardware = [...new Set(reports.flatMap((r) => r.inSample.map((p) => p.measurement.hardware)))].sort();
  return [
    head.trimEnd(),
    '',
    REGIME_ERRORS_MARKER,
    '# error held out (leave-one-source-out, docs/time-model.md section 6), which `best` prints for its winner, the',
    '# hardware the calibration runs were measured on, and the span of their layouts per family.',
    'regime_errors:',
    ...regimeErrors(reports)
      .sort((x, y) => x.regime.localeCompare(y.regime))
      .map((r) => `  ${r.regime}: { runs: ${r.runs}, sources: ${r.sources}, loso: ${Number(r.heldOut.toFixed(4))} }`),
    `calibrated_hardware: [${hardware.join(', ')}]`,
    'calibrated_ranges:',
    ...reports.map((r) => `  ${r.family}: { ${calibratedRanges(r.inSample.map((p) => p.measurement)).join(', ')} }`),
    '',
  ].join('\n');
}

/** Each layout dimension's smallest and largest value among `runs`, as YAML flow entries. */
function calibratedRanges(runs: Measurement[]): string[] {
  return RANGE_DIMENSIONS.map((name: RangeDimension) => {
    const values = runs.map((m) => m.row[name]);
    return `${name}: [${Math.min(...values)}, ${Math.max(...values)}]`;
  });
}

/** Where configs/calibration.yaml's generated part begins. */
export const REGIME_ERRORS_MARKER = '# Written by `npm run calibrate` (do not edit): each regime\'s mean absolute throughput';

/** Fits, reports constants, errors per regime and every row as Markdown, and optionally writes the constants. */
export function runCalibration(write: boolean): { report: string; reports: FamilyReport[] } {
  const calibration = loadCalibration();
  const reports = calibrateFamilies(calibration);
  if (write) writeFileSync(CALIBRATION_PATH, calibrationYaml(calibration, reports, readFileSync(CALIBRATION_PATH, 'utf8')));
  const lines: string[] = ['### Constants per hardware family (fitted, then the fixed ones beside them)', ''];
  // The measurements the priors stand for (kernel benchmarks, overlapped GEMMs), beside what the fit made of them.
  const names = [...FITTED, 'attention_half_seq', 'fa2_attention_prior', 'triton_attention_prior', 'overlap_cost_prior'] as const;
  lines.push(`| family | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`);
  for (const { family, fitted } of reports) lines.push(`| ${family} | ${names.map((name) => fitted[name]).join(' | ')} |`);
  lines.push('', '### Mean absolute throughput error per regime', '');
  lines.push('| regime | runs | sources | fitted on all | leave-one-source-out | worst held-out row |');
  lines.push('|---|---:|---:|---:|---:|---:|');
  for (const r of regimeErrors(reports)) {
    lines.push(`| ${r.regime} | ${r.runs} | ${r.sources} | ${percent(r.inSample)} | ${percent(r.heldOut)} | ${percent(r.worst)} |`);
  }
  const all = reports.flatMap((r) => r.heldOut);
  lines.push(`| all | ${all.length} | ${new Set(all.map((p) => p.measurement.source)).size} | ${percent(meanAbsoluteError(reports.flatMap((r) => r.inSample)))} | ${percent(meanAbsoluteError(all))} | ${percent(Math.max(...all.map((p) => Math.abs(p.error))))} |`);
  lines.push('', '### Mean absolute throughput error per source', '');
  lines.push('Signed: positive where the model predicts more throughput than published.', '');
  lines.push('| source | family | regimes | runs | fitted on all | leave-one-source-out | signed, held out |');
  lines.push('|---|---|---|---:|---:|---:|---:|');
  for (const r of sourceErrors(reports)) {
    lines.push(`| ${r.source} | ${r.family} | ${r.regimes.join(', ')} | ${r.runs} | ${percent(r.inSample)} | ${percent(r.heldOut)} | ${signed(r.heldOutSigned)} |`);
  }
  lines.push('', '### Mean signed throughput error per stack and family', '');
  lines.push('Positive: the model predicts more throughput than published. The stack is not a model input (section 7).', '');
  lines.push('| stack | family | runs | sources | fitted on all | leave-one-source-out |');
  lines.push('|---|---|---:|---:|---:|---:|');
  for (const r of stackErrors(reports)) {
    lines.push(`| ${r.key} | ${r.family} | ${r.runs} | ${r.sources} | ${signed(r.inSample)} | ${signed(r.heldOut)} |`);
  }
  lines.push('', '### Mean signed throughput error per recompute mode and family', '');
  lines.push('| recompute | family | runs | sources | fitted on all | leave-one-source-out |');
  lines.push('|---|---|---:|---:|---:|---:|');
  for (const r of recomputeErrors(reports)) {
    lines.push(`| ${r.key} | ${r.family} | ${r.runs} | ${r.sources} | ${signed(r.inSample)} | ${signed(r.heldOut)} |`);
  }
  lines.push('', '### Mean signed throughput error per recompute mode within each source', '');
  lines.push('Sources whose runs use more than one recompute mode; fitted on all sources, runs in brackets.', '');
  lines.push(`| source | family | ${RECOMPUTE_MODES.join(' | ')} |`, `|---|---|${RECOMPUTE_MODES.map(() => '---:').join('|')}|`);
  for (const r of recomputeErrorsWithinSources(reports)) {
    const cell = (mode: (typeof RECOMPUTE_MODES)[number]) => {
      const m = r.modes.find((x) => x.mode === mode);
      return m ? `${signed(m.inSample)} (${m.runs})` : '';
    };
    lines.push(`| ${r.source} | ${r.family} | ${RECOMPUTE_MODES.map(cell).join(' | ')} |`);
  }
  for (const report of reports) {
    lines.push('', `### ${report.family}: every run`, '');
    lines.push('| run | source | regime | metric | published | fitted on all | error | held out | error | assumed |');
    lines.push('|---|---|---|---|---:|---:|---:|---:|---:|---|');
    report.heldOut.forEach((p, i) => {
      const m = p.measurement;
      const q = report.inSample[i];
      lines.push(
        `| ${m.name} | ${m.source} | ${m.regime} | ${m.metric} | ${show(m.metric, m.value)} | ${show(m.metric, q.predicted)} | ${percent(q.error)} | ${show(m.metric, p.predicted)} | ${percent(p.error)} | ${m.assumed ?? ''} |`,
      );
    });
  }
  return { report: lines.join('\n'), reports };
}

export const DOCS_BEGIN = '<!-- calibrate:begin (generated by `npm run calibrate`; do not edit) -->';
export const DOCS_END = '<!-- calibrate:end -->';
/** The README holds the per-regime table alone, indented as a list item's content. */
export const REGIMES_BEGIN = '<!-- calibrate:regimes:begin (generated by `npm run calibrate`; do not edit) -->';
export const REGIMES_END = '<!-- calibrate:regimes:end -->';

/** Replaces a generated block of a Markdown file; the file must hold both markers. */
export function calibrationDocs(text: string, report: string, field = '--docs', begin = DOCS_BEGIN, end = DOCS_END): string {
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new InputError(field, `needs the markers ${begin} and ${end}`);
  // The end marker keeps its line's indentation.
  return text.slice(0, from + begin.length) + '\n\n' + report + '\n\n' + text.slice(text.lastIndexOf('\n', to) + 1);
}

/** The per-regime table of a report, indented by `indent`. */
export function regimeTable(report: string, indent = '  '): string {
  const from = report.indexOf('| regime |');
  const to = report.indexOf('\n\n', from);
  return report
    .slice(from, to < 0 ? undefined : to)
    .split('\n')
    .map((line) => indent + line)
    .join('\n');
}

function rewrite(path: string, field: string, change: (text: string) => string): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError(field, `cannot read ${path}: ${(error as Error).message}`);
  }
  writeFileSync(path, change(text));
}

/** `field` names the input in errors: the CLI's flag, or the library's argument. */
export function writeCalibrationDocs(path: string, report: string, field = '--docs'): void {
  rewrite(path, field, (text) => calibrationDocs(text, report, field));
}

export function writeCalibrationReadme(path: string, report: string, field = '--readme'): void {
  rewrite(path, field, (text) => calibrationDocs(text, regimeTable(report), field, REGIMES_BEGIN, REGIMES_END));
}
