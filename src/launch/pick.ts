import { InputError } from '../errors.js';
import { sweepStream } from '../api.js';
import { BestConfigs } from '../rank.js';
import { prepareSweep, SweepOptions } from '../sweep.js';
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

/** The layout of one result row of `--formula full`. */
export function layoutFromRow(row: Record<string, unknown>): LaunchLayout {
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
  };
}

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
  const run: SweepOptions = { ...options, formula: 'full', fitsOnly: true, top: undefined };
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
      `none of the ${stats.evaluated} valid configs on ${ngpus[0]} GPUs fits in ${context.hardware.name}'s memory${options.where ? ' and matches where' : ''}: try more GPUs, recompute, ZeRO or offload`,
    );
  }
  const row = winner.values;
  const input: LaunchInput = {
    model: context.config.model,
    trainer: context.config.trainer,
    layout: layoutFromRow(row),
    gpusPerNode: context.hardware.gpus_per_node,
    title: `${context.config.model.name} on ${int(row, 'ngpus')} x ${context.hardware.name}: ${Number(row.total_gib).toFixed(1)} GiB/GPU, step ${Number(row.step_time_s).toFixed(2)} s; the fastest fitting config of ${stats.evaluated} valid (parasweep)`,
  };
  return { ...launchArgs(input, options.target), row, candidates: stats.evaluated };
}
