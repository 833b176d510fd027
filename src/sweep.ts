import { RecordBatch, Table } from 'apache-arrow';
import { LoadedConfig, loadConfig, parseOverride } from './config/load.js';
import { ParsedDimension, resolveSearchSpace, SearchKeyName } from './config/space.js';
import { createEngine, Engine, EngineOptions } from './engine/index.js';
import { InputError } from './errors.js';
import { DEFAULT_FORMULA, Formula, getFormula } from './formulas/index.js';
import type { SweepContext } from './formulas/types.js';
import { loadHardware } from './config/hardware.js';

export const DEFAULT_HARDWARE = 'h100-sxm-80gb';
export const DEFAULT_HEADROOM = 0.1;
import { GridPlan } from './grid/grid.js';
import { ResultAssembler } from './result.js';
import { checkOutputPaths, openSink, Sink } from './sink/index.js';

export interface SweepOptions extends EngineOptions {
  /** A bundled model name (see `parasweep models`) or a path to a model YAML (the PoC's schema works as is). */
  model: string;
  /** Hydra-style overrides: `model.seq_length=4096`, `+ngpus_range=[8, 128]`, `tp_range=1..8:*2`. */
  overrides?: string[];
  /** Search ranges from flags; they win over the config file and the overrides. */
  search?: Partial<Record<SearchKeyName, unknown>>;
  /** Cost formula: `full` (default: memory, by component, every dimension) or `poc` (the PoC's estimate). */
  formula?: string;
  /** Bundled hardware name or YAML path (default h100-sxm-80gb). */
  hardware?: string;
  /** Fraction of GPU memory kept free when deciding `fits` (default 0.1). */
  headroom?: number;
  /** Rows per chunk; defaults to what the engine prefers. */
  chunkRows?: number;
}

/** A validated sweep, ready to run: nothing has been evaluated or written yet. */
export interface PreparedSweep {
  context: SweepContext;
  config: LoadedConfig;
  formula: Formula;
  constants: Float64Array;
  space: Map<SearchKeyName, ParsedDimension>;
  grid: GridPlan;
}

export interface SweepStats {
  /** Size of the cross product of the search ranges. */
  candidates: number;
  /** Valid configs evaluated and written. */
  rows: number;
  seconds: number;
  engine: string;
}

/** Loads and validates everything a sweep needs. Throws InputError on any bad input. */
export function prepareSweep(options: SweepOptions): PreparedSweep {
  const formula = getFormula(options.formula ?? DEFAULT_FORMULA);
  const overrides = (options.overrides ?? []).map(parseOverride);
  const config = loadConfig(options.model, overrides);
  const headroom = options.headroom ?? DEFAULT_HEADROOM;
  if (!(headroom >= 0 && headroom < 10)) throw new InputError('--headroom', `must be between 0 and 10, got ${headroom}`);
  const hardware = loadHardware(options.hardware ?? DEFAULT_HARDWARE);
  const context: SweepContext = { config, hardware, headroom };
  const space = resolveSearchSpace(formula.name, formula.searchDefaults(context), config.search, options.search ?? {});
  const constants = formula.packConstants(context);
  const grid = formula.buildGrid(context, space);
  return { context, config, formula, constants, space, grid };
}

function emptyGridError(prepared: PreparedSweep): InputError {
  const ranges = [...prepared.space.values()]
    .map((dimension) => `${dimension.key}=[${dimension.values.map((v, i) => dimension.labels?.[v] ?? v ?? i).join(', ')}]`)
    .join(' ');
  return new InputError(
    'search space',
    `no valid config: every combination breaks a divisibility rule of --formula ${prepared.formula.name} (${ranges})`,
  );
}

/**
 * Evaluates the grid chunk by chunk and yields Arrow record batches. Throws InputError before yielding anything
 * if the grid is empty.
 */
export async function* sweepBatches(
  prepared: PreparedSweep,
  engine: Engine,
  stats: SweepStats,
  chunkRows?: number,
): AsyncGenerator<RecordBatch> {
  const { formula, grid, context, constants } = prepared;
  const assembler = new ResultAssembler(
    formula,
    formula.resultColumns(context),
    grid.columns,
    engine.kind === 'cpu' ? 'f64' : 'f32',
  );
  stats.candidates = grid.candidateCount();
  const rows = chunkRows ?? engine.chunkRows(formula, grid.columns.length);
  for await (const chunk of engine.evaluate(formula, constants, grid.chunks(rows))) {
    stats.rows += chunk.grid.length;
    yield assembler.batch(chunk);
  }
  if (stats.rows === 0) throw emptyGridError(prepared);
}

function newStats(engine: Engine): SweepStats {
  return { candidates: 0, rows: 0, seconds: 0, engine: engine.description };
}

/** Runs a sweep and returns the whole result as an Arrow table. For huge grids prefer `sweepToFiles`. */
export async function sweep(options: SweepOptions): Promise<{ table: Table; stats: SweepStats }> {
  const prepared = prepareSweep(options);
  const engine = await createEngine(options, prepared.formula);
  const started = performance.now();
  const stats = newStats(engine);
  try {
    const batches: RecordBatch[] = [];
    for await (const batch of sweepBatches(prepared, engine, stats, options.chunkRows)) batches.push(batch);
    stats.seconds = (performance.now() - started) / 1000;
    return { table: new Table(batches), stats };
  } finally {
    await engine.dispose();
  }
}

/** Files being written right now, so a signal handler can remove them. */
const openSinks = new Set<Sink>();

/** Removes every partial output file; for SIGINT/SIGTERM handlers and fatal errors. */
export function abortOpenSinks(): void {
  for (const sink of openSinks) sink.abortSync();
  openSinks.clear();
}

/**
 * Runs a sweep and streams it into one or more files (format by extension). Files appear only when complete: an
 * error or an interrupt leaves none behind.
 */
export async function sweepToFiles(options: SweepOptions, paths: string[]): Promise<SweepStats> {
  checkOutputPaths(paths);
  const prepared = prepareSweep(options);
  const engine = await createEngine(options, prepared.formula);
  const started = performance.now();
  const stats = newStats(engine);
  const sinks: Sink[] = [];
  try {
    for await (const batch of sweepBatches(prepared, engine, stats, options.chunkRows)) {
      if (sinks.length === 0) {
        for (const path of paths) {
          const sink = await openSink(path, batch.schema);
          sinks.push(sink);
          openSinks.add(sink);
        }
      }
      for (const sink of sinks) await sink.write(batch);
    }
    for (const sink of sinks) {
      await sink.commit();
      openSinks.delete(sink);
    }
    stats.seconds = (performance.now() - started) / 1000;
    return stats;
  } catch (error) {
    for (const sink of sinks) {
      sink.abortSync();
      openSinks.delete(sink);
    }
    throw error;
  } finally {
    await engine.dispose();
  }
}
