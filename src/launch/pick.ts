import { InputError } from '../errors.js';
import { sweepStream } from '../api.js';
import { BestConfigs } from '../results/rank.js';
import { prepareSweep, SweepOptions } from '../sweep.js';
import { chunkLayers } from '../layout.js';
import { explain, Explanation } from '../analysis/explain.js';
import { LaunchArgs, LaunchInput, LaunchLayout, launchArgs, LaunchTarget } from './index.js';

/** Grid values come back as numbers, booleans or dictionary strings depending on the engine and column type. */
function flag(value: unknown): boolean {
  return value === true || value === 1 || value === 'true' || value === '1';
}

function int(row: Record<string, unknown>, key: string): number {
  const value = Number(row[key]);
  if (!Number.isInteger(value)) throw new Error(`result column ${key} is not an integer: ${String(row[key])}`);
  return value;
}

/** The layout of one result row of `--formula full`, with the layers per chunk the cost model placed. */
export function layoutFromRow(row: Record<string, unknown>, numLayers: number): LaunchLayout {
  const pp = int(row, 'pp');
  const vpp = int(row, 'vpp');
  const chunks = 'first_stage_layers' in row ? chunkLayers(numLayers, pp, vpp, int(row, 'first_stage_layers'), int(row, 'last_stage_layers')) : undefined;
  return {
    ngpus: int(row, 'ngpus'),
    tp: int(row, 'tp'),
    pp: int(row, 'pp'),
    cp: int(row, 'cp'),
    ep: int(row, 'ep'),
    etp: int(row, 'etp'),
    vpp: int(row, 'vpp'),
    schedule: String(row.schedule),
    zero: int(row, 'zero'),
    sp: flag(row.sp),
    recompute: String(row.recompute) as LaunchLayout['recompute'],
    offload: String(row.offload) as LaunchLayout['offload'],
    mbs: int(row, 'mbs'),
    gbs: int(row, 'global_batch_size'),
    seq_length: int(row, 'seq_length'),
    ...(row.grad_reduce !== undefined ? { grad_reduce: String(row.grad_reduce) as LaunchLayout['grad_reduce'] } : {}),
    ...(row.reshard !== undefined ? { reshard: flag(row.reshard) } : {}),
    ...(row.dp_replicas !== undefined ? { dp_replicas: int(row, 'dp_replicas') } : {}),
    ...(chunks ? { chunkLayers: chunks } : {}),
  };
}

/**
 * What each target can run, as a --where condition, so that `launch` picks the fastest config the target can launch
 * (launchArgs refuses the others, naming the field).
 */
export const RUNNABLE: Record<LaunchTarget, string> = {
  megatron:
    "(schedule == '1f1b' or schedule == 'interleaved') and offload != 'optimizer' and (zero < 2 or grad_reduce == 'microbatch') and (zero < 3 or reshard) and recompute != 'selective_op'",
  torchtitan:
    "(schedule == '1f1b' or schedule == 'interleaved' or schedule == 'gpipe') and zero != 1 and offload == 'none' and etp == 1 and (zero < 2 or grad_reduce == 'microbatch')",
};

export interface LaunchOptions extends SweepOptions {
  /** megatron (command-line flags) or torchtitan (a configuration function). */
  target: LaunchTarget;
}

export interface LaunchResult extends LaunchArgs {
  /** The result row the arguments were made for: the fastest config that fits among those the options allow. */
  row: Record<string, unknown>;
  /** Valid configs the options allowed (the row is the fastest of those that fit). */
  candidates: number;
}

/**
 * Launch arguments for the config the options describe: pin every dimension (`search: { tp_range: 4, ... }`) to get
 * that config, or leave some open to get the fastest one that fits. Throws InputError when none fits.
 */
export async function launch(options: LaunchOptions): Promise<LaunchResult> {
  if (options.formula !== undefined && options.formula !== 'full') {
    throw new InputError('formula', 'launch arguments need the layouts of formula full');
  }
  const runnable = RUNNABLE[options.target] ?? 'true';
  const where = options.where ? `(${options.where}) and ${runnable}` : runnable;
  const run: SweepOptions = { ...options, formula: 'full', fitsOnly: true, top: undefined, where };
  const { context, space } = prepareSweep({ ...run, fitsOnly: false, where: undefined });
  const ngpus = space.get('ngpus_range')?.values ?? [];
  if (ngpus.length !== 1) {
    throw new InputError('search.ngpus_range', `launch arguments are for one GPU count, got ${ngpus.length} (${ngpus.slice(0, 4).join(', ')}${ngpus.length > 4 ? ', ...' : ''})`);
  }
  // Ranked as `best` ranks (tokens/s, ties to lower memory, then grid order), so launch prints best's #1.
  const ranking = new BestConfigs(1);
  const stream = sweepStream(run);
  let next = await stream.next();
  for (; !next.done; next = await stream.next()) ranking.add(next.value);
  const stats = next.value;
  const winner = ranking.results()[0]?.top[0];
  if (!winner) {
    throw new InputError(
      'search',
      `none of the ${stats.evaluated} valid configs on ${ngpus[0]} GPUs fits in ${context.hardware.name}'s memory${options.where ? ' and matches where' : ''} and runs on ${options.target}: try more GPUs, recompute, ZeRO or offload`,
    );
  }
  const row = winner.values;
  const input: LaunchInput = {
    model: context.config.model,
    trainer: context.config.trainer,
    layout: layoutFromRow(row, context.config.model.num_layers),
    gpusPerNode: context.hardware.gpus_per_node,
    title: `${context.config.model.name} on ${int(row, 'ngpus')} x ${context.hardware.name}: ${Number(row.total_gib).toFixed(1)} GiB/GPU, step ${Number(row.step_time_s).toFixed(2)} s; the fastest fitting config ${options.target} runs, of ${stats.evaluated} valid (parasweep)`,
  };
  return { ...launchArgs(input, options.target), row, candidates: stats.evaluated };
}

/**
 * Launch arguments for the one config the options pin (every dimension one value), with the layers per chunk that
 * `explain` resolves: `parasweep explain ... --emit megatron`.
 */
export function explainLaunch(options: LaunchOptions): LaunchArgs & { explanation: Explanation } {
  const explanation = explain(options);
  const { context } = prepareSweep({ ...options, where: undefined, fitsOnly: undefined, top: undefined });
  const layout: LaunchLayout = {
    ...layoutFromRow(explanation.config, context.config.model.num_layers),
    chunkLayers: explanation.split.chunk_layers,
  };
  const result = explanation.result as Record<string, number>;
  const input: LaunchInput = {
    model: context.config.model,
    trainer: context.config.trainer,
    layout,
    gpusPerNode: context.hardware.gpus_per_node,
    title: `${context.config.model.name} on ${layout.ngpus} x ${context.hardware.name}: ${Number(result.total_gib).toFixed(1)} GiB/GPU${explanation.fits ? '' : ' (does not fit)'}, step ${Number(result.step_time_s).toFixed(2)} s (parasweep explain)`,
  };
  return { ...launchArgs(input, options.target), explanation };
}
