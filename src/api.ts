import type { RecordBatch } from 'apache-arrow';
import { loadSweepFile, SweepFile } from './config/sweepfile.js';
import { SEARCH_KEYS } from './config/space.js';
import { createEngine } from './engine/index.js';
import { InputError } from './errors.js';
import { BestConfigs, checkRankColumns, RankedRow } from './results/rank.js';
import { prepareSweep, sweep, SweepOptions, SweepStats, sweepBatches } from './sweep.js';
import { checkEngines, CheckOptions, CheckReport } from './analysis/check.js';
import { describeModelError, describeTimeSettings, winnerShape } from './settings.js';

/**
 * The library's own entry points: what the CLI does, with errors that name option fields (`headroom`,
 * `search.tp_range`) rather than the CLI's flags (`--headroom`, `--tp`).
 */

/** The option field behind each CLI flag that shared code names in its errors. */
const FLAG_FIELDS: Record<string, string> = {
  '--model': 'model',
  '--config-name': 'model',
  '--sweep': 'sweep',
  '--hardware': 'hardware',
  '--headroom': 'headroom',
  '--formula': 'formula',
  '--engine': 'engine',
  '--backend': 'backend',
  '--adapter': 'adapter',
  '--fits-only': 'fitsOnly',
  '--where': 'where',
  '--top': 'top.k',
  '--by': 'top.by',
  '--per': 'top.per',
  '--order': 'top.order',
  '--max-buffer-mib': 'maxBufferBytes',
  '--workgroup-size': 'workgroupSize',
  '--chunk-rows': 'chunkRows',
  '--out': 'paths',
  '--csv': 'paths',
  '--rtol': 'rtol',
  ...Object.fromEntries(Object.entries(SEARCH_KEYS).map(([key, spec]) => [`--${spec.flag}`, `search.${key}`])),
};

const FLAG_WORD = /(^|[\s(])(--[a-z][a-z0-9-]*)\b/g;

/** The same error in the words of the library's options. */
export function asLibraryError(error: unknown): unknown {
  if (!(error instanceof InputError)) return error;
  const field = FLAG_FIELDS[error.field] ?? error.field;
  const reason = error.message.slice(error.field.length + 2).replace(FLAG_WORD, (whole, before: string, flag: string) =>
    FLAG_FIELDS[flag] ? `${before}${FLAG_FIELDS[flag]}` : whole,
  );
  if (field === error.field && reason === error.message.slice(error.field.length + 2)) return error;
  const translated = new InputError(field, reason);
  translated.stack = error.stack;
  return translated;
}

export function librarySync<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args: A) => {
    try {
      return fn(...args);
    } catch (error) {
      throw asLibraryError(error);
    }
  };
}

export function libraryAsync<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (error) {
      throw asLibraryError(error);
    }
  };
}

export interface StreamOptions extends SweepOptions {
  /** Stops the sweep between chunks: the iterator then throws the signal's reason and the engine is released. */
  signal?: AbortSignal;
}

function aborted(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The sweep was aborted', 'AbortError');
}

/**
 * The sweep as an async iterator of Arrow record batches, as they are evaluated (memory stays bounded by one
 * chunk). Breaking out of the loop or aborting `signal` stops the engine. `stats` fills in as the sweep runs.
 */
export async function* sweepStream(options: StreamOptions, stats?: SweepStats): AsyncGenerator<RecordBatch, SweepStats> {
  const { signal } = options;
  if (signal?.aborted) throw aborted(signal);
  let prepared;
  try {
    prepared = prepareSweep(options);
  } catch (error) {
    throw asLibraryError(error);
  }
  const engine = await createEngine(options, prepared.formula);
  const totals: SweepStats = stats ?? { candidates: 0, evaluated: 0, rows: 0, seconds: 0, engine: engine.description, unanswered: [] };
  totals.engine = engine.description;
  const started = performance.now();
  const onProgress = (evaluated: number) => {
    // Checked after every chunk, so that a sweep that keeps few rows still stops promptly.
    if (signal?.aborted) throw aborted(signal);
    options.onProgress?.(evaluated);
  };
  try {
    for await (const batch of sweepBatches(prepared, engine, totals, { chunkRows: options.chunkRows, onProgress })) {
      if (signal?.aborted) throw aborted(signal);
      yield batch;
    }
    totals.seconds = (performance.now() - started) / 1000;
    return totals;
  } catch (error) {
    throw asLibraryError(error);
  } finally {
    await engine.dispose();
  }
}

export interface BestOptions extends Omit<SweepOptions, 'top' | 'fitsOnly'> {
  /** Configs kept per group (default 5). */
  k?: number;
  /** Ranking column (default tokens_per_s), grouping column (default ngpus) and order (default: by the column's kind). */
  by?: string;
  per?: string;
  order?: 'asc' | 'desc';
}

/** One ranked config: every column of its row, by name (the metrics `best` prints typed as numbers). */
export interface BestRow {
  tokens_per_s: number;
  tokens_per_s_per_gpu: number;
  step_time_s: number;
  total_gib: number;
  mfu: number;
  [column: string]: unknown;
}

export interface BestGroup {
  /** The group's value of `per` (the GPU count by default). */
  group: unknown;
  /** Configs of this GPU count that fit. */
  fitting: number;
  /** The k fastest that fit, by tokens/s (ties to lower memory). */
  top: BestRow[];
  /** Pareto front of memory per GPU against step time. */
  front: BestRow[];
  /** The time model's held-out error on runs like the group's winner (what `best` prints under it). */
  model_error?: string;
}

/** What `parasweep best` prints, as data: per GPU count, the fastest fitting configs and the Pareto front. */
export async function best(
  options: BestOptions,
): Promise<{ groups: BestGroup[]; stats: SweepStats; model: string; hardware: string; assumed: string }> {
  const k = options.k ?? 5;
  if (!Number.isInteger(k) || k < 1) throw new InputError('k', `must be a positive integer, got ${k}`);
  if (options.formula === 'poc') throw new InputError('formula', 'best ranks by the time model of formula full');
  // by/per/order rank the fitting rows here; the sweep itself keeps every fitting row.
  const { k: _k, by: _by, per: _per, order: _order, ...sweepOnly } = options;
  const run: SweepOptions = { ...sweepOnly, fitsOnly: true };
  try {
    const prepared = prepareSweep({ ...run, fitsOnly: false });
    const { context } = prepared;
    const rank = { k, by: options.by ?? 'tokens_per_s', per: options.per ?? 'ngpus', order: options.order };
    checkRankColumns(prepared.columns, rank);
    const ranking = new BestConfigs(k, rank);
    const { table, stats } = await sweep(run);
    for (const batch of table.batches) ranking.add(batch);
    const asRow = (row: RankedRow) => row.values as BestRow;
    // The ranking keeps spare rows per group to merge equivalent layouts in print; the library returns k.
    const errorOf = (winner: BestRow) => describeModelError(context, winnerShape(winner));
    const groups = ranking.results().map((group) => {
      const top = group.top.slice(0, k).map(asRow);
      return { ...group, top, front: group.front.map(asRow), ...(top.length > 0 ? { model_error: errorOf(top[0]) } : {}) };
    });
    const assumed = describeTimeSettings(context.config.trainer, context.config.model);
    return { groups, stats, model: context.config.model.name, hardware: context.hardware.name, assumed };
  } catch (error) {
    throw asLibraryError(error);
  }
}

/** GPU against CPU on the same grid, column by column (`parasweep check`). Needs a WebGPU adapter. */
export const check: (options: CheckOptions) => Promise<CheckReport> = libraryAsync(checkEngines);

/**
 * The runs a sweep file describes, one per hardware entry, as options for `sweep`, `sweepStream` or `sweepToFiles`
 * (which takes them all at once and writes one output). `adjust` is applied on top, as the CLI's flags are.
 */
export function sweepFileRuns(file: string | SweepFile, adjust: Partial<SweepOptions> = {}): SweepOptions[] {
  try {
    const loaded = typeof file === 'string' ? loadSweepFile(file) : file;
    const top = loaded.top
      ? { k: loaded.top.k, by: loaded.top.by, per: loaded.top.per, order: loaded.top.ascending ? ('asc' as const) : undefined }
      : undefined;
    return loaded.hardware.map((hardware) => ({
      model: loaded.model,
      formula: loaded.formula,
      headroom: loaded.headroom,
      where: loaded.where,
      top,
      hardware,
      ...adjust,
      overrides: [...loaded.overrides, ...(adjust.overrides ?? [])],
      search: { ...loaded.search, ...(adjust.search ?? {}) },
    }));
  } catch (error) {
    throw asLibraryError(error);
  }
}
