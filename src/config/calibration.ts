import { join } from 'node:path';
import { InputError } from '../errors.js';
import { BUNDLED_CONFIG_DIR, readYamlFile } from './load.js';
import { FieldSpec, validate } from './schema.js';

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

/** Efficiency constants of the time model: configs/calibration.yaml, refitted by `npm run calibrate`. */
export interface Calibration {
  scaleup_efficiency: number;
  scaleout_efficiency: number;
  cpu_optimizer_params_s: number;
  families: Record<string, FamilyCalibration>;
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
  },
};

export const CALIBRATION_SPEC: FieldSpec = {
  kind: 'object',
  fields: {
    scaleup_efficiency: fraction,
    scaleout_efficiency: fraction,
    cpu_optimizer_params_s: { kind: 'number', exclusiveMin: 0 },
    families: { kind: 'any' },
  },
};

export const CALIBRATION_PATH = join(BUNDLED_CONFIG_DIR, 'calibration.yaml');

let cached: Calibration | undefined;

export function loadCalibration(path = CALIBRATION_PATH): Calibration {
  if (path === CALIBRATION_PATH && cached) return cached;
  const raw = readYamlFile(path, '--calibration') as Record<string, unknown> | null;
  const { families, ...shared } = (raw ?? {}) as { families?: unknown };
  const calibration = validate(CALIBRATION_SPEC, { ...shared, families: {} }, 'calibration') as unknown as Calibration;
  calibration.families = {};
  if (!families || typeof families !== 'object' || Array.isArray(families)) {
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
