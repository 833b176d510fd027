import { join } from 'node:path';
import { BUNDLED_CONFIG_DIR, readYamlFile } from './load.js';
import { FieldSpec, validate } from './schema.js';

/** Efficiency constants of the time model: configs/calibration.yaml, refitted by `npm run calibrate`. */
export interface Calibration {
  gemm_efficiency_max: number;
  gemm_efficiency_half_dim: number;
  memory_passes: number;
  scaleup_efficiency: number;
  scaleout_efficiency: number;
  cpu_optimizer_params_s: number;
}

const fraction: FieldSpec = { kind: 'number', exclusiveMin: 0, max: 1 };

export const CALIBRATION_SPEC: FieldSpec = {
  kind: 'object',
  fields: {
    gemm_efficiency_max: fraction,
    gemm_efficiency_half_dim: { kind: 'number', min: 0 },
    memory_passes: { kind: 'number', min: 0 },
    scaleup_efficiency: fraction,
    scaleout_efficiency: fraction,
    cpu_optimizer_params_s: { kind: 'number', exclusiveMin: 0 },
  },
};

export const CALIBRATION_PATH = join(BUNDLED_CONFIG_DIR, 'calibration.yaml');

let cached: Calibration | undefined;

export function loadCalibration(path = CALIBRATION_PATH): Calibration {
  if (path === CALIBRATION_PATH && cached) return cached;
  const calibration = validate(CALIBRATION_SPEC, readYamlFile(path, '--calibration'), 'calibration') as unknown as Calibration;
  if (path === CALIBRATION_PATH) cached = calibration;
  return calibration;
}
