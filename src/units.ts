/**
 * The unit of every result column, stored in each Arrow field's metadata under UNIT_KEY so that a reader does not
 * have to trust a name suffix. Units follow the names: `_gib` is 2^30 bytes, `_s` seconds, `_bytes` bytes.
 */
export const UNIT_KEY = 'parasweep.unit';

const EXACT: Record<string, string> = {
  ngpus: 'GPUs',
  seq_length: 'tokens',
  global_batch_size: 'sequences',
  target_global_batch_size: 'sequences',
  first_stage_layers: 'layers',
  last_stage_layers: 'layers',
  reshard: 'boolean',
  dp_replicas: 'replicas of the ZeRO-sharded states',
  mbs: 'sequences',
  micro_batch_size: 'sequences',
  num_microbatches: 'micro-batches',
  num_of_micro_batches: 'micro-batches',
  inflight_microbatches: 'micro-batches',
  sub_seq_length: 'tokens',
  params_total: 'parameters',
  params_active: 'parameters',
  params_gpu: 'parameters',
  tokens_per_s: 'tokens/s',
  tokens_per_s_per_gpu: 'tokens/s/GPU',
  mfu: 'fraction of peak FLOP/s',
  hfu: 'fraction of peak FLOP/s',
  fits: 'boolean',
  sp: 'boolean',
  heaviest_stage: 'pipeline stage index',
  pipeline_parallelism_bubble_rate: 'fraction of the step',
  token_imbalance_hypothesis: 'factor',
  expert_parameters_m: 'Mi parameters (2^20)',
  non_expert_parameters_m: 'Mi parameters (2^20)',
};

/** Parallel degrees: a count of ranks. */
const DEGREES = new Set(['tp', 'pp', 'vpp', 'cp', 'ep', 'etp', 'dp', 'edp', 'TP', 'PP', 'EP', 'CP', 'DP']);

/** The unit of a column, or undefined for names and categories (which have none). */
export function columnUnit(name: string): string | undefined {
  if (EXACT[name]) return EXACT[name];
  if (DEGREES.has(name)) return 'ranks';
  if (name === 'zero' || name === 'data_parallel_sharding_strategy') return 'ZeRO stage';
  if (name.endsWith('_gib')) return 'GiB (2^30 bytes)';
  // The PoC's "gb" and "mb" are binary: 2^30 and 2^20 bytes.
  if (name.endsWith('_gb')) return 'GiB (2^30 bytes)';
  if (name.endsWith('_mb')) return 'MiB (2^20 bytes)';
  if (name.endsWith('_bytes')) return 'bytes';
  if (name.endsWith('_s')) return 's';
  return undefined;
}
