import { loadCalibration, outsideCalibration, regimeOf } from './config/calibration.js';
import type { ModelConfig, TrainerConfig } from './config/model.js';
import type { SweepContext } from './formulas/types.js';

/**
 * The stack settings the time model assumed (docs/time-model.md, section 3), as `best` prints them under the
 * winner: precision and every overlap, so that a ranking is read with what it took for granted.
 */
export function describeTimeSettings(trainer: TrainerConfig, model?: Pick<ModelConfig, 'moe'>): string {
  const on = (flag: boolean) => (flag ? 'on' : 'off');
  // The expert-dispatch settings are left out for a model without experts, where they change nothing.
  const moe = model === undefined || (model.moe?.num_experts ?? 0) > 0;
  return [
    `linear layers ${trainer.fp8 || trainer.param_dtype === 'fp8' ? 'fp8' : (trainer.compute_dtype ?? trainer.param_dtype)}${trainer.compute_dtype !== undefined && trainer.compute_dtype !== trainer.param_dtype ? ` (autocast over ${trainer.param_dtype} parameters)` : ''}`,
    `flash attention ${trainer.flash_attention ? trainer.attention_kernel : 'off'}`,
    `tp_comm_overlap ${on(trainer.tp_comm_overlap)}`,
    `overlap_grad_reduce ${on(trainer.overlap_grad_reduce)}`,
    `overlap_param_gather ${on(trainer.overlap_param_gather)}`,
    `overlap_p2p_comm ${on(trainer.overlap_p2p_comm)} (interleaved, dualpipe)`,
    ...(moe ? [`moe_a2a_overlap ${on(trainer.moe_a2a_overlap)}`, `moe_dedup_dispatch ${on(trainer.moe_dedup_dispatch)}`] : []),
    `cp_comm_type ${trainer.cp_comm_type}`,
    `torch_compile ${on(trainer.torch_compile)}`,
  ].join(', ');
}

/**
 * How far the time model is off on runs like the winner, as `best` prints it: the mean absolute throughput error
 * of the winner's regime on publications held out of the fit (configs/calibration.yaml's regime_errors, written by
 * `npm run calibrate`), whether the hardware itself had calibration runs or borrows its family's constants, and the
 * layout dimensions in which the config lies beyond every calibration run of its family (an extrapolation).
 */
export function describeModelError(
  context: Pick<SweepContext, 'calibration' | 'hardware' | 'config'>,
  winner: { ngpus: number; seq_length: number; zero: number; tp: number; pp: number; cp: number; ep: number },
): string {
  const { hardware, config } = context;
  const calibration = context.calibration ?? loadCalibration();
  const family = hardware.calibration_family;
  const known = new Set(Object.keys(calibration.regime_errors));
  const regime = regimeOf(family, { moe: (config.model.moe?.num_experts ?? 0) > 0, ...winner }, known);
  const error = calibration.regime_errors[regime];
  const measured = error
    ? `${(error.loso * 100).toFixed(1)}% mean on ${regime} runs of publications held out of the fit (${error.runs} run${error.runs === 1 ? '' : 's'}, ${error.sources} source${error.sources === 1 ? '' : 's'}; docs/time-model.md section 6)`
    : `no calibration run in the ${regime} regime`;
  const borrowed = calibration.calibrated_hardware.includes(hardware.name) ? '' : `; no calibration run on ${hardware.name} (${family} constants)`;
  const outside = outsideCalibration(calibration, family, winner);
  const extrapolated = outside.length > 0 ? `; beyond every ${family} calibration run in ${outside.join(', ')}` : '';
  return `model error: ${measured}${borrowed}${extrapolated}`;
}

/** The layout of a ranked row (its values by column name) as describeModelError reads it. */
export function winnerShape(row: Record<string, unknown>): Parameters<typeof describeModelError>[1] {
  const n = (name: string) => Number(row[name]);
  return { ngpus: n('ngpus'), seq_length: n('seq_length'), zero: n('zero'), tp: n('tp'), pp: n('pp'), cp: n('cp'), ep: n('ep') };
}
