import { RecordBatch, Table, Utf8, Vector } from 'apache-arrow';
import { loadHardware } from './config/hardware.js';
import { LoadedConfig, loadConfig, parseOverride } from './config/load.js';
import { ParsedDimension, parseSearchValue, resolveSearchSpace, SEARCH_KEYS, SearchKeyName } from './config/space.js';
import { createEngine, Engine, EngineOptions } from './engine/index.js';
import type { EvaluatedChunk } from './engine/types.js';
import { InputError } from './errors.js';
import { DEFAULT_FORMULA, Formula, getFormula } from './formulas/index.js';
import type { ResultColumn, SweepContext } from './formulas/types.js';
import { EmptyGroup, GridChunk, GridPlan } from './grid/grid.js';
import { ResultAssembler } from './result.js';
import { SelectionOptions, Selector } from './select.js';
import { AtomicFile } from './sink/atomic.js';
import { checkOutputPaths, openSink, Sink } from './sink/index.js';

export const DEFAULT_HARDWARE = 'h100-sxm-80gb';
export const DEFAULT_HEADROOM = 0.1;

export interface SweepOptions extends EngineOptions, SelectionOptions {
  /** A bundled model name (see `parasweep models`) or a path to a model YAML (the PoC's schema works as is). */
  model: string;
  /** Hydra-style overrides: `model.seq_length=4096`, `+ngpus_range=[8, 128]`, `tp_range=1..8:*2`. */
  overrides?: string[];
  /** Search ranges from flags; they win over the config file and the overrides. */
  search?: Partial<Record<SearchKeyName, unknown>>;
  /** Cost formula: `full` (default: memory and time, every dimension) or `poc` (the PoC's estimate). */
  formula?: string;
  /** Bundled hardware name or YAML path (default h100-sxm-80gb). */
  hardware?: string;
  /** Fraction of GPU memory kept free when deciding `fits` (default 0.1). */
  headroom?: number;
  /** How far the global batch may move from its target so that dp·mbs divides it (default 0.125; 0 = exact). */
  gbsTolerance?: number;
  /** Rows per chunk; defaults to what the engine prefers. */
  chunkRows?: number;
  /** Called after each chunk with the rows evaluated so far (for a progress bar). */
  onProgress?: (evaluated: number) => void;
}

/** A validated sweep, ready to run: nothing has been evaluated or written yet. */
export interface PreparedSweep {
  context: SweepContext;
  config: LoadedConfig;
  formula: Formula;
  constants: Float64Array;
  space: Map<SearchKeyName, ParsedDimension>;
  grid: GridPlan;
  columns: ResultColumn[];
  selector?: Selector;
}

export interface SweepStats {
  /** Size of the cross product of the search ranges. */
  candidates: number;
  /** Valid configs evaluated by the engine. */
  evaluated: number;
  /** Rows kept and written (after --where, --fits-only, --top). */
  rows: number;
  seconds: number;
  engine: string;
  /** Values of the grid's first column (GPU counts) with no valid config, and the rule that removed most. */
  unanswered: EmptyGroup[];
}

/** Loads and validates everything a sweep needs. Throws InputError on any bad input. */
export function prepareSweep(options: SweepOptions): PreparedSweep {
  const formula = getFormula(options.formula ?? DEFAULT_FORMULA);
  const overrides = (options.overrides ?? []).map(parseOverride);
  const config = loadConfig(options.model, overrides);
  const headroom = options.headroom ?? DEFAULT_HEADROOM;
  if (!(headroom >= 0 && headroom < 10)) {
    throw new InputError('--headroom', `is the fraction of memory kept free (0.1 keeps 10%), from 0 to below 10; got ${headroom}`);
  }
  const hardware = loadHardware(options.hardware ?? DEFAULT_HARDWARE);
  const gbsTolerance = options.gbsTolerance;
  if (gbsTolerance !== undefined && !(gbsTolerance >= 0 && gbsTolerance < 1)) {
    throw new InputError('--gbs-tolerance', `must be at least 0 and below 1, got ${gbsTolerance}`);
  }
  const context: SweepContext = { config, hardware, headroom, gbsTolerance };
  for (const [key, value] of Object.entries(options.search ?? {})) {
    // Values given as options are checked first, so that an error names the option (search.tp_range).
    if (value !== undefined && key in SEARCH_KEYS) parseSearchValue(key as SearchKeyName, value, `search.${key}`);
  }
  const space = resolveSearchSpace(formula.name, formula.searchDefaults(context), config.search, options.search ?? {});
  const constants = formula.packConstants(context);
  const grid = formula.buildGrid(context, space);
  const columns = formula.resultColumns(context);
  const selecting = options.where !== undefined || options.fitsOnly || options.top !== undefined;
  const selector = selecting ? new Selector(formula, columns, grid, options) : undefined;
  const prepared = { context, config, formula, constants, space, grid, columns, selector };
  // Found before any engine starts or file opens: one valid row is enough to know the sweep is not empty.
  if (grid.chunks(1).next().done) throw emptyGridError(prepared);
  return prepared;
}

function emptyGridError(prepared: PreparedSweep): InputError {
  const removed = prepared.grid.diagnostics?.removedByRule ?? new Map<string, number>();
  let worst: [string, number] = ['', 0];
  for (const entry of removed) if (entry[1] > worst[1]) worst = entry;
  if (worst[1] === 0) {
    return new InputError('search space', `no valid config: the search space of --formula ${prepared.formula.name} is empty`);
  }
  const candidates = prepared.grid.candidateCount();
  return new InputError(
    'search space',
    `no valid config: the rule "${worst[0]}" removed the most candidates (${worst[1]} of ${candidates})`,
  );
}

/** Counts the rows the grid hands to the engine. */
function* counted(chunks: Iterable<GridChunk>, stats: SweepStats, onProgress?: (n: number) => void): Generator<GridChunk> {
  for (const chunk of chunks) {
    stats.evaluated += chunk.length;
    yield chunk;
    onProgress?.(stats.evaluated);
  }
}

/**
 * Evaluates the grid chunk by chunk and yields Arrow record batches of the selected rows. Throws InputError
 * before yielding anything if no config is valid; yields one empty batch if configs were valid but none was kept,
 * so that outputs still get their header.
 */
export async function* sweepBatches(
  prepared: PreparedSweep,
  engine: Engine,
  stats: SweepStats,
  options: {
    chunkRows?: number;
    onProgress?: (evaluated: number) => void;
    constantLabels?: ReadonlyMap<string, readonly string[]>;
    dictionaries?: Map<string, Vector<Utf8>>;
  } = {},
): AsyncGenerator<RecordBatch> {
  const { formula, grid, constants, selector } = prepared;
  const computedType = engine.kind === 'cpu' ? 'f64' : 'f32';
  const assembler = new ResultAssembler(
    prepared.columns,
    grid.columns,
    computedType,
    options.constantLabels,
    options.dictionaries,
  );
  stats.candidates += grid.candidateCount();
  const rows = options.chunkRows ?? engine.chunkRows(formula, grid.columns.length);
  let last: EvaluatedChunk | undefined;
  const evaluatedBefore = stats.evaluated;
  const rowsBefore = stats.rows;
  const chunks = counted(grid.chunks(rows), stats, options.onProgress);
  for await (const chunk of engine.evaluate(formula, constants, chunks, selector?.engineSelection)) {
    last = chunk;
    const kept = selector ? selector.accept(chunk) : chunk;
    if (kept && kept.grid.length > 0) {
      stats.rows += kept.grid.length;
      yield assembler.batch(kept);
    }
  }
  if (stats.evaluated === evaluatedBefore) throw emptyGridError(prepared);
  stats.unanswered.push(...(grid.diagnostics?.emptyGroups ?? []));
  const winners = selector?.finish();
  if (winners && winners.grid.length > 0) {
    stats.rows += winners.grid.length;
    yield assembler.batch(winners);
  } else if (stats.rows === rowsBefore && last) {
    yield assembler.batch({ grid: { ...last.grid, length: 0, columns: last.grid.columns.map((c) => c.subarray(0, 0)) }, computed: last.computed.map((c) => c.subarray(0, 0)) as EvaluatedChunk['computed'] });
  }
}

function newStats(engine: Engine): SweepStats {
  return { candidates: 0, evaluated: 0, rows: 0, seconds: 0, engine: engine.description, unanswered: [] };
}

/** Runs a sweep and returns the whole (selected) result as an Arrow table. For huge grids prefer `sweepToFiles`. */
export async function sweep(options: SweepOptions): Promise<{ table: Table; stats: SweepStats }> {
  const prepared = prepareSweep(options);
  const engine = await createEngine(options, prepared.formula);
  const started = performance.now();
  const stats = newStats(engine);
  try {
    const batches: RecordBatch[] = [];
    for await (const batch of sweepBatches(prepared, engine, stats, options)) batches.push(batch);
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
  // A file still being opened is not a sink yet, but its temporary file exists.
  AtomicFile.abortAll();
}

/**
 * Runs a sweep, or several sharing one output (one per hardware of a sweep file), and streams it into one or more
 * files (format by extension). Files appear only when complete: an error or an interrupt leaves none behind.
 * Everything is validated before the first row is evaluated.
 */
export async function sweepToFiles(runs: SweepOptions | SweepOptions[], paths: string[]): Promise<SweepStats> {
  checkOutputPaths(paths);
  const all = Array.isArray(runs) ? runs : [runs];
  const prepared = all.map(prepareSweep);
  const constantLabels = sharedConstantLabels(prepared);
  const dictionaries = new Map<string, Vector<Utf8>>();
  const engine = await createEngine(all[0], prepared[0].formula);
  const started = performance.now();
  const stats = newStats(engine);
  const sinks: Sink[] = [];
  try {
    for (let r = 0; r < prepared.length; r++) {
      const options = { ...all[r], constantLabels, dictionaries };
      for await (const batch of sweepBatches(prepared[r], engine, stats, options)) {
        if (sinks.length === 0) {
          for (const path of paths) {
            const sink = await openSink(path, batch.schema);
            sinks.push(sink);
            openSinks.add(sink);
          }
        }
        for (const sink of sinks) await sink.write(batch);
      }
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

/** Every value each constant string column takes across runs (model and hardware names). */
export function sharedConstantLabels(prepared: PreparedSweep[]): Map<string, string[]> {
  const labels = new Map<string, string[]>();
  for (const run of prepared) {
    if (run.formula !== prepared[0].formula) {
      throw new InputError('--formula', 'all runs sharing an output must use the same formula');
    }
    for (const column of run.columns) {
      if (column.from !== 'constant' || typeof column.value !== 'string') continue;
      const list = labels.get(column.name) ?? [];
      if (!list.includes(column.value)) list.push(column.value);
      labels.set(column.name, list);
    }
  }
  return labels;
}
