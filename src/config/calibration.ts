import { join } from 'node:path';
import { InputError } from '../errors.js';
import { BUNDLED_CONFIG_DIR, readYamlFile } from './load.js';
import { FieldSpec, isPlainObject, validate } from './schema.js';

/** Efficiency constants of one hardware family, fitted by `npm run calibrate` (docs/time-model.md, section 6). */
export interface FamilyCalibration {
  gemm_efficiency_max: number;
  gemm_efficiency_half_dim: number;
  /** FP8 GEMMs' efficiency relative to bf16 ones at the same shape (1 where the family has no FP8). */
  fp8_efficiency: number;
  /** Flash attention's fraction of the bf16 peak on long blocks, and the block length where it reaches half of it. */
  attention_efficiency: number;
  attention_half_seq: number;
  /** FlashAttention-2's throughput relative to the fused kernel on this family (trainer.attention_kernel fa2). */
  fa2_attention_ratio: number;
  /** The same ratio from kernel benchmarks on this family (1: FlashAttention-2 is the fused kernel), never fitted. */
  fa2_attention_prior: number;
  /** MosaicML's Triton flash attention relative to FlashAttention-2 (trainer.attention_kernel triton). */
  triton_attention_ratio: number;
  /**
   * The same ratio from kernel benchmarks on this family, never fitted. A fit counts it as one more source, and
   * one without runs of the kernel (a leave-one-source-out fold without them) takes it as the ratio.
   */
  triton_attention_prior: number;
  /** Passes over each stored activation by element-wise kernels (norms, activations, dropout, softmax), per step. */
  memory_passes: number;
  /**
   * The fraction of those passes left when torch.compile fuses the element-wise ops (trainer.torch_compile):
   * fitted where the family has runs with and without it, else the fitted family's value.
   */
  compile_passes_ratio: number;
  /** Fraction of overlapped communication still paid: NCCL kernels take SMs and HBM bandwidth from the GEMMs. */
  overlap_cost: number;
  /**
   * The same fraction from a measurement of GEMMs slowed by concurrent collectives, never fitted: a fit counts it
   * as one more source, as it does the attention kernels' benchmarks.
   */
  overlap_cost_prior: number;
}

/**
 * The attention kernel's long-block efficiency relative to the family's fused kernel: 1 for the fused one,
 * FlashAttention-2's ratio, and the Triton kernel's ratio to FlashAttention-2 on top of that.
 */
export function attentionKernelRatio(family: Pick<FamilyCalibration, 'fa2_attention_ratio' | 'triton_attention_ratio'>, kernel: string): number {
  if (kernel === 'fa2') return family.fa2_attention_ratio;
  if (kernel === 'triton') return family.fa2_attention_ratio * family.triton_attention_ratio;
  return 1;
}

/** How well a regime's published runs are predicted by a fit that did not see their publication. */
export interface RegimeError {
  runs: number;
  sources: number;
  /** Mean absolute throughput error, leave-one-source-out (docs/time-model.md, section 6). */
  loso: number;
}

/** Efficiency constants of the time model: configs/calibration.yaml, refitted by `npm run calibrate`. */
export interface Calibration {
  scaleup_efficiency: number;
  scaleout_efficiency: number;
  cpu_optimizer_params_s: number;
  families: Record<string, FamilyCalibration>;
  /** Written by `npm run calibrate`: each regime's held-out error, and the hardware its runs were measured on. */
  regime_errors: Record<string, RegimeError>;
  calibrated_hardware: string[];
  /** Per family, the smallest and largest value of each layout dimension among its calibration runs. */
  calibrated_ranges: Record<string, Partial<Record<RangeDimension, [number, number]>>>;
}

/** The layout dimensions whose calibrated span `best` and `explain` check a config against. */
export const RANGE_DIMENSIONS = ['ngpus', 'tp', 'pp', 'cp', 'ep', 'seq_length'] as const;
export type RangeDimension = (typeof RANGE_DIMENSIONS)[number];

/** The dimensions of `layout` outside its family's calibrated span, as "tp 16 (runs: 1-8)". */
export function outsideCalibration(calibration: Calibration, family: string, layout: Partial<Record<RangeDimension, number>>): string[] {
  const ranges = calibration.calibrated_ranges[family] ?? {};
  const out: string[] = [];
  for (const name of RANGE_DIMENSIONS) {
    const span = ranges[name];
    const value = layout[name];
    if (span === undefined || value === undefined || !Number.isFinite(value)) continue;
    if (value < span[0] || value > span[1]) out.push(`${name} ${value} (runs: ${span[0]}-${span[1]})`);
  }
  return out;
}

/** What decides a config's regime: the calibration sets' split of their runs (configs/calibration/). */
export interface RegimeShape {
  moe: boolean;
  seq_length: number;
  zero: number;
  tp: number;
  pp: number;
}

/** Sequences from this length on are the long-context regime. */
export const LONG_CONTEXT_SEQ = 32768;

/**
 * The regime a config falls in, as the calibration sets assign their runs: MoE models; ZeRO-3 without model
 * parallelism where the family has that regime (A100: FSDP, DeepSpeed); sequences of 32K tokens and more; the rest
 * dense. `known` holds the regimes with measured errors.
 */
export function regimeOf(family: string, shape: RegimeShape, known: ReadonlySet<string>): string {
  if (shape.moe) return `${family}-moe`;
  if (shape.zero === 3 && shape.tp === 1 && shape.pp === 1 && known.has(`${family}-zero3`)) return `${family}-zero3`;
  if (shape.seq_length >= LONG_CONTEXT_SEQ) return `${family}-long-context`;
  return `${family}-dense`;
}

const fraction: FieldSpec = { kind: 'number', exclusiveMin: 0, max: 1 };

export const FAMILY_SPEC: FieldSpec = {
  kind: 'object',
  fields: {
    gemm_efficiency_max: fraction,
    gemm_efficiency_half_dim: { kind: 'number', min: 0 },
    fp8_efficiency: fraction,
    attention_efficiency: fraction,
    attention_half_seq: { kind: 'number', min: 0 },
    fa2_attention_ratio: fraction,
    fa2_attention_prior: fraction,
    // The Triton kernel may pass FlashAttention-2 (it does on H100): a ratio, not a fraction of a peak.
    triton_attention_ratio: { kind: 'number', exclusiveMin: 0, max: 2 },
    triton_attention_prior: { kind: 'number', exclusiveMin: 0, max: 2 },
    memory_passes: { kind: 'number', min: 0 },
    compile_passes_ratio: fraction,
    overlap_cost: { kind: 'number', min: 0, max: 1 },
    overlap_cost_prior: { kind: 'number', min: 0, max: 1 },
  },
};

export const CALIBRATION_SPEC: FieldSpec = {
  kind: 'object',
  fields: {
    scaleup_efficiency: fraction,
    scaleout_efficiency: fraction,
    cpu_optimizer_params_s: { kind: 'number', exclusiveMin: 0 },
    families: { kind: 'any' },
    regime_errors: { kind: 'any', optional: true },
    calibrated_hardware: { kind: 'any', optional: true },
    calibrated_ranges: { kind: 'any', optional: true },
  },
};

const REGIME_ERROR_SPEC: FieldSpec = {
  kind: 'object',
  fields: { runs: { kind: 'int', min: 1 }, sources: { kind: 'int', min: 1 }, loso: { kind: 'number', min: 0 } },
};

export const CALIBRATION_PATH = join(BUNDLED_CONFIG_DIR, 'calibration.yaml');

let cached: Calibration | undefined;

export function loadCalibration(path = CALIBRATION_PATH): Calibration {
  if (path === CALIBRATION_PATH && cached) return cached;
  const raw = readYamlFile(path, '--calibration') as Record<string, unknown> | null;
  const { families, regime_errors, calibrated_hardware, calibrated_ranges, ...shared } = (raw ?? {}) as {
    families?: unknown;
    regime_errors?: unknown;
    calibrated_hardware?: unknown;
    calibrated_ranges?: unknown;
  };
  const calibration = validate(CALIBRATION_SPEC, { ...shared, families: {} }, 'calibration') as unknown as Calibration;
  calibration.families = {};
  calibration.regime_errors = {};
  if (regime_errors !== undefined) {
    if (!isPlainObject(regime_errors)) {
      throw new InputError('calibration.regime_errors', 'must map each regime to its runs, sources and loso error');
    }
    for (const [regime, error] of Object.entries(regime_errors)) {
      calibration.regime_errors[regime] = validate(REGIME_ERROR_SPEC, error, `calibration.regime_errors.${regime}`) as unknown as RegimeError;
    }
  }
  if (calibrated_hardware !== undefined && (!Array.isArray(calibrated_hardware) || !calibrated_hardware.every((h) => typeof h === 'string'))) {
    throw new InputError('calibration.calibrated_hardware', 'must list hardware names');
  }
  calibration.calibrated_hardware = (calibrated_hardware as string[] | undefined) ?? [];
  calibration.calibrated_ranges = {};
  if (calibrated_ranges !== undefined) {
    if (!isPlainObject(calibrated_ranges)) {
      throw new InputError('calibration.calibrated_ranges', 'must map each family to the span of each layout dimension');
    }
    for (const [family, spans] of Object.entries(calibrated_ranges)) {
      const field = `calibration.calibrated_ranges.${family}`;
      if (!isPlainObject(spans)) throw new InputError(field, 'must map layout dimensions to [min, max]');
      const checked: Partial<Record<RangeDimension, [number, number]>> = {};
      for (const [name, span] of Object.entries(spans)) {
        if (!(RANGE_DIMENSIONS as readonly string[]).includes(name)) {
          throw new InputError(`${field}.${name}`, `is not a layout dimension (${RANGE_DIMENSIONS.join(', ')})`);
        }
        if (!Array.isArray(span) || span.length !== 2 || !span.every((v) => typeof v === 'number') || span[0] > span[1]) {
          throw new InputError(`${field}.${name}`, 'must be [min, max] with min <= max');
        }
        checked[name as RangeDimension] = [span[0], span[1]];
      }
      calibration.calibrated_ranges[family] = checked;
    }
  }
  if (!isPlainObject(families)) {
    throw new InputError('calibration.families', 'must map each hardware family to its efficiency constants');
  }
  for (const [name, family] of Object.entries(families)) {
    calibration.families[name] = validate(FAMILY_SPEC, family, `calibration.families.${name}`) as unknown as FamilyCalibration;
  }
  if (path === CALIBRATION_PATH) cached = calibration;
  return calibration;
}

/** The constants of a hardware family; one without published measurements borrows the family it names. */
export function familyCalibration(calibration: Calibration, family: string): FamilyCalibration {
  const constants = calibration.families[family];
  if (!constants) {
    throw new InputError('hardware.calibration_family', `no constants for "${family}" in calibration.families (${Object.keys(calibration.families).join(', ')})`);
  }
  return constants;
}
