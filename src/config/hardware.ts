import { InputError } from '../errors.js';
import { readYamlFile, resolveConfigPath } from './load.js';
import { FieldSpec, validate } from './schema.js';

/** A GPU and the node it sits in, from published specifications (each file names its sources). */
export interface HardwareConfig {
  name: string;
  vendor: string;
  /** Usable HBM per GPU, GiB. */
  memory_gib: number;
  memory_marketing_gb?: number;
  /** Dense peak TFLOP/s per dtype (no sparsity). */
  peak_tflops: { fp64?: number; fp32: number; tf32?: number; bf16: number; fp16: number; fp8?: number | null; fp4?: number };
  hbm_tb_s: number;
  /** Scale-up (NVLink / Infinity Fabric) bandwidth per GPU, one direction, GB/s. */
  scaleup_gb_s_per_gpu: number;
  scaleup_bandwidth_convention?: string;
  /** MI300X's full mesh: bandwidth between one pair of GPUs. */
  scaleup_pair_gb_s?: number;
  scaleup_domain_gpus: number;
  gpus_per_node: number;
  /** Scale-out (InfiniBand / RoCE) bandwidth per GPU, one direction, GB/s. */
  scaleout_gb_s_per_gpu: number;
  /** Host link per GPU, one direction, GB/s. */
  pcie_gb_s: number;
  scaleup_latency_us: number;
  scaleout_latency_us: number;
  collective_base_latency_us: number;
  host_memory_gib_per_node?: number;
  tdp_w?: number;
  /** Which family's fitted efficiency constants apply (configs/calibration.yaml). */
  calibration_family: string;
}

/**
 * Hardware numbers (GiB, TFLOP/s, GB/s, microseconds) stay far below f32's 3.4e38 once the model multiplies them:
 * 1e9 is a million times any GPU's figure today.
 */
const MAX_HARDWARE_NUMBER = 1e9;
const positive: FieldSpec = { kind: 'number', exclusiveMin: 0, max: MAX_HARDWARE_NUMBER };
const optionalPositive: FieldSpec = { kind: 'number', exclusiveMin: 0, max: MAX_HARDWARE_NUMBER, optional: true };

export const HARDWARE_SPEC: FieldSpec = {
  kind: 'object',
  fields: {
    name: { kind: 'string' },
    vendor: { kind: 'string' },
    memory_gib: positive,
    memory_marketing_gb: optionalPositive,
    peak_tflops: {
      kind: 'object',
      fields: {
        fp64: optionalPositive,
        fp32: positive,
        tf32: optionalPositive,
        bf16: positive,
        fp16: positive,
        fp8: optionalPositive,
        fp4: optionalPositive,
      },
    },
    hbm_tb_s: positive,
    scaleup_gb_s_per_gpu: positive,
    scaleup_bandwidth_convention: { kind: 'string', optional: true },
    scaleup_pair_gb_s: optionalPositive,
    scaleup_domain_gpus: { kind: 'int', min: 1, max: 2 ** 24 },
    gpus_per_node: { kind: 'int', min: 1, max: 2 ** 24 },
    scaleout_gb_s_per_gpu: positive,
    pcie_gb_s: positive,
    scaleup_latency_us: { kind: 'number', min: 0, max: MAX_HARDWARE_NUMBER },
    scaleout_latency_us: { kind: 'number', min: 0, max: MAX_HARDWARE_NUMBER },
    collective_base_latency_us: { kind: 'number', min: 0, max: MAX_HARDWARE_NUMBER },
    host_memory_gib_per_node: optionalPositive,
    tdp_w: optionalPositive,
    calibration_family: { kind: 'string', default: 'h100' },
  },
};

export function loadHardware(nameOrPath: string, field = '--hardware'): HardwareConfig {
  const path = resolveConfigPath('hardware', nameOrPath, field);
  const hardware = validate(HARDWARE_SPEC, readYamlFile(path, field), 'hardware') as unknown as HardwareConfig;
  if (hardware.scaleup_domain_gpus < hardware.gpus_per_node) {
    throw new InputError('hardware.scaleup_domain_gpus', `must be at least gpus_per_node (${hardware.gpus_per_node})`);
  }
  return hardware;
}
