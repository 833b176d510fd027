import type { TrainerConfig } from './config/model.js';

/**
 * The stack settings the time model assumed (docs/time-model.md, section 3), as `best` prints them under the
 * winner: precision and every overlap, so that a ranking is read with what it took for granted.
 */
export function describeTimeSettings(trainer: TrainerConfig): string {
  const on = (flag: boolean) => (flag ? 'on' : 'off');
  return [
    `linear layers ${trainer.fp8 || trainer.param_dtype === 'fp8' ? 'fp8' : trainer.param_dtype}`,
    `flash attention ${trainer.flash_attention ? trainer.attention_kernel : 'off'}`,
    `tp_comm_overlap ${on(trainer.tp_comm_overlap)}`,
    `overlap_grad_reduce ${on(trainer.overlap_grad_reduce)}`,
    `overlap_param_gather ${on(trainer.overlap_param_gather)}`,
    `overlap_p2p_comm ${on(trainer.overlap_p2p_comm)} (interleaved, dualpipe)`,
    `moe_a2a_overlap ${on(trainer.moe_a2a_overlap)}`,
    `cp_comm_type ${trainer.cp_comm_type}`,
    `torch_compile ${on(trainer.torch_compile)}`,
  ].join(', ');
}
