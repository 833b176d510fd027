/**
 * Pipeline layouts and global-batch rounding: how many transformer layers the first and the last pipeline rank
 * hold, and which global batch a layout runs, resolved once per grid row. src/model.ts reads the resolved counts
 * (`chunk_layers`) on the CPU and shaders/model.wgsl on the GPU.
 *
 * Megatron-LM expresses an uneven split in two ways (megatron/core/transformer/transformer_config.py and
 * transformer_block.py, get_num_layers_to_build):
 * - `--decoder-first-pipeline-num-layers F` and/or `--decoder-last-pipeline-num-layers Ls`: the other ranks share
 *   the remaining layers evenly; with interleaving F, Ls and the middle ranks' counts must divide by v;
 * - `--account-for-embedding-in-pipeline-split` / `--account-for-loss-in-pipeline-split`: the embedding (loss)
 *   counts as one layer, every virtual chunk gets (L + e + l)/(p·v) layers and the very first (last) chunk one fewer.
 *   Llama 3 405B's 126 layers over 16 stages ("one layer fewer on the first and the last stage", Dubey et al. 2024,
 *   section 3.3.2) is this rule with both flags.
 * Any other per-chunk split is written with `--pipeline-model-parallel-layout`.
 */

export type SplitRule = 'single' | 'even' | 'embedding_and_loss' | 'embedding' | 'even_ranks' | 'first_last' | 'pinned';

export interface PipelineSplit {
  /** Layers of the first and the last rank, all their virtual chunks together. */
  first: number;
  last: number;
  rule: SplitRule;
}

/**
 * The split a layout gets when the user pins nothing, in the order Megatron users reach for it: even when L divides
 * by p·v; else the embedding and the loss counted as layers (Llama 3's rule) when L + 2 divides; else the
 * embedding alone when L + 1 divides (the first rank, which holds the most micro-batches in flight, gets the
 * shorter chunk); else L/p layers per rank when p divides L (chunks within a rank differ by one); else the middle
 * ranks get ceil(L/p) layers (floor when that leaves the ends less than one each) and the first and last ranks
 * share the rest, the first taking the smaller half. Undefined when a rank would get no layer or a middle chunk
 * none.
 */
export function defaultSplit(L: number, pp: number, v: number): PipelineSplit | undefined {
  if (pp === 1) return v === 1 ? { first: L, last: L, rule: 'single' } : undefined;
  const n = pp * v;
  if (L % n === 0) return checked(L, pp, v, L / pp, L / pp, 'even');
  if ((L + 2) % n === 0) {
    const per_rank = ((L + 2) / n) * v;
    return checked(L, pp, v, per_rank - 1, per_rank - 1, 'embedding_and_loss');
  }
  if ((L + 1) % n === 0) {
    const per_rank = ((L + 1) / n) * v;
    return checked(L, pp, v, per_rank - 1, per_rank, 'embedding');
  }
  if (L % pp === 0) return checked(L, pp, v, L / pp, L / pp, 'even_ranks');
  if (pp === 2) return checked(L, pp, v, Math.floor(L / 2), L - Math.floor(L / 2), 'first_last');
  for (const per_rank of [Math.ceil(L / pp), Math.floor(L / pp)]) {
    const rest = L - (pp - 2) * per_rank;
    if (rest < 2) continue;
    const first = Math.floor(rest / 2);
    return checked(L, pp, v, first, rest - first, 'first_last');
  }
  return undefined;
}

/**
 * A split the user pinned (0 = not pinned), with Megatron's rules for num_layers_in_first/last_pipeline_stage: the
 * ranks not pinned share the rest evenly, and with interleaving every rank's count divides by v.
 */
export function pinnedSplit(L: number, pp: number, v: number, first: number, last: number): PipelineSplit | undefined {
  if (first === 0 && last === 0) return defaultSplit(L, pp, v);
  if (pp === 1) return v === 1 ? { first: L, last: L, rule: 'single' } : undefined;
  const unpinned = (first === 0 ? 1 : 0) + (last === 0 ? 1 : 0) + (pp - 2);
  const rest = L - first - last;
  if (unpinned === 0) return rest === 0 ? checked(L, pp, v, first, last, 'pinned', true) : undefined;
  if (rest % unpinned !== 0) return undefined;
  const per_rank = rest / unpinned;
  return checked(L, pp, v, first === 0 ? per_rank : first, last === 0 ? per_rank : last, 'pinned', true);
}

function checked(
  L: number,
  pp: number,
  v: number,
  first: number,
  last: number,
  rule: SplitRule,
  megatronMultiples = false,
): PipelineSplit | undefined {
  if (first < 1 || last < 1) return undefined;
  const middle_ranks = pp - 2;
  const middle = L - first - last;
  if (middle_ranks === 0) {
    if (middle !== 0) return undefined;
  } else {
    // Every middle rank holds as many layers, at least one per virtual chunk.
    if (middle % middle_ranks !== 0 || middle / middle_ranks < v) return undefined;
    if (megatronMultiples && (middle / middle_ranks) % v !== 0) return undefined;
  }
  if (megatronMultiples && (first % v !== 0 || last % v !== 0)) return undefined;
  return { first, last, rule };
}

/** Layers of each virtual chunk of each rank, [rank][chunk], as src/model.ts's chunk_layers places them. */
export function chunkLayers(L: number, pp: number, v: number, first: number, last: number): number[][] {
  if (pp === 1) return [[L]];
  const middle = pp > 2 ? (L - first - last) / (pp - 2) : 0;
  const spread = (total: number, earlyExtra: boolean) => {
    const q = Math.floor(total / v);
    const r = total - q * v;
    return Array.from({ length: v }, (_, j) => q + (earlyExtra ? (j < r ? 1 : 0) : j >= v - r ? 1 : 0));
  };
  return Array.from({ length: pp }, (_, i) =>
    i === 0 ? spread(first, false) : i === pp - 1 ? spread(last, true) : spread(middle, false),
  );
}

/**
 * The Megatron-LM arguments that produce a split, or undefined when only --pipeline-model-parallel-layout can
 * (then `chunkLayers` gives the per-chunk counts to write it).
 */
export function megatronSplitArgs(L: number, pp: number, v: number, first: number, last: number): string[] | undefined {
  if (pp === 1) return [];
  const n = pp * v;
  if (L % n === 0 && first === L / pp && last === L / pp) return [];
  const withBoth = ((L + 2) / n) * v;
  if ((L + 2) % n === 0 && first === withBoth - 1 && last === withBoth - 1) {
    return ['--account-for-embedding-in-pipeline-split', '--account-for-loss-in-pipeline-split'];
  }
  const withOne = ((L + 1) / n) * v;
  if ((L + 1) % n === 0 && first === withOne - 1 && last === withOne) return ['--account-for-embedding-in-pipeline-split'];
  if ((L + 1) % n === 0 && first === withOne && last === withOne - 1) return ['--account-for-loss-in-pipeline-split'];
  const middle = pp > 2 ? (L - first - last) / (pp - 2) : 0;
  if (first % v === 0 && last % v === 0 && middle % v === 0) {
    return [`--decoder-first-pipeline-num-layers ${first}`, `--decoder-last-pipeline-num-layers ${last}`];
  }
  return undefined;
}

/**
 * Whether `replicas` copies of the ZeRO-sharded states split the data-parallel ranks evenly (HSDP): dp, and
 * expert-DP when the model has experts. The grid's dp_replicas level and the calibration rows share this rule.
 */
export function replicasDivide(replicas: number, dp: number, edp: number, hasExperts: boolean): boolean {
  return dp % replicas === 0 && (!hasExperts || edp % replicas === 0);
}

/**
 * The global batch a layout runs: the multiple of `unit` (dp · mbs, times the micro-batch group the schedule needs)
 * nearest to the target, within `tolerance` of it (0: the target itself). NaN when there is none.
 */
export function batchUsed(target: number, unit: number, tolerance: number): number {
  const k = Math.max(1, Math.round(target / unit));
  const used = k * unit;
  return Math.abs(used - target) <= tolerance * target + 1e-9 ? used : NaN;
}

/**
 * The layout columns of a hand-written row (calibration runs, tests): the default split, gradients reduced once
 * per step, no resharding, ZeRO over all of DP (one replica). Throws when pp·vpp leaves some rank without a layer.
 */
export function defaultLayoutColumns(
  L: number,
  pp: number,
  vpp: number,
): { first_stage_layers: number; last_stage_layers: number; grad_reduce: number; reshard: number; dp_replicas: number } {
  // One stage holds every layer whatever vpp says (a calibration run may name vpp with pp = 1).
  const split = pp === 1 ? { first: L, last: L } : defaultSplit(L, pp, vpp);
  if (!split) throw new Error(`no pipeline split of ${L} layers over pp ${pp} x vpp ${vpp}`);
  return { first_stage_layers: split.first, last_stage_layers: split.last, grad_reduce: 0, reshard: 0, dp_replicas: 1 };
}
