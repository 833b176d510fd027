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
import { ShardSpec, shardSpan } from './grid/shard.js';
import { provenance } from './provenance.js';
import { FloatType, ResultAssembler } from './results/columns.js';
import { SelectionOptions, Selector } from './results/select.js';
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
  /**
   * Float64 result columns, computed by the CPU engine (the GPU has no f64). Default: Float32 from either engine,
   * so that outputs share one schema; the PoC formula is always Float64 (its numbers are f64 by definition).
   */
  float64?: boolean;
  /** The command line recorded in the outputs' metadata (the CLI passes its argv). */
  commandLine?: readonly string[];
  /** Evaluate only this deterministic 1/count of the grid (`--shard i/n`, see grid/shard.ts). */
  shard?: ShardSpec;
}

/** Sees every record batch a sweep writes (the report's aggregator, the summary table). */
export interface BatchObserver {
  add(batch: RecordBatch): void;
}

/** Float type of the computed columns, whichever engine runs. */
export function floatTypeOf(prepared: PreparedSweep, options: Pick<SweepOptions, 'float64'>): FloatType {
  // The PoC formula exists to reproduce the PoC's f64 numbers (see its autoPrefersCpu).
  return options.float64 || prepared.formula.autoPrefersCpu ? 'f64' : 'f32';
}

/** The engine choice with --float64 applied: only the CPU computes in f64. */
function engineOptions(options: SweepOptions): SweepOptions {
  if (!options.float64) return options;
  if (options.engine === 'gpu') {
    throw new InputError('--float64', 'the GPU engine computes in f32; use --engine cpu (or auto) for f64 results');
  }
  return { ...options, engine: 'cpu' };
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
    float64?: boolean;
    /** Schema metadata; by default this run's provenance. */
    metadata?: Map<string, string>;
    shard?: ShardSpec;
  } = {},
): AsyncGenerator<RecordBatch> {
  const { formula, grid, constants, selector } = prepared;
  const floatType = floatTypeOf(prepared, options);
  if (options.float64 && engine.kind === 'gpu') {
    // Float64 columns holding f32 values would claim a precision they do not have.
    throw new InputError('--float64', 'the GPU engine computes in f32; use --engine cpu (or auto) for f64 results');
  }
  const assembler = new ResultAssembler(
    prepared.columns,
    grid.columns,
    floatType,
    options.constantLabels,
    options.dictionaries,
    options.metadata ?? provenance({ prepared: [prepared], engine, floatType }),
    { formula, constants },
  );
  stats.candidates += grid.candidateCount();
  const rows = options.chunkRows ?? engine.chunkRows(formula, grid.columns.length);
  let last: EvaluatedChunk | undefined;
  const evaluatedBefore = stats.evaluated;
  const rowsBefore = stats.rows;
  const span = options.shard ? shardSpan(grid, options.shard) : undefined;
  const chunks = counted(grid.chunks(rows, span), stats, options.onProgress);
  for await (const chunk of engine.evaluate(formula, constants, chunks, selector?.engineSelection)) {
    last = chunk;
    const kept = selector ? selector.accept(chunk) : chunk;
    const batch = kept && kept.grid.length > 0 ? assembler.batch(kept) : undefined;
    // The engine may reuse the computed columns once nothing holds them: the selector copies what it keeps, and
    // the batch copies them unless it takes them as they are (f64 results into an f64 schema).
    const shared = chunk.computed.every((column) => (floatType === 'f64' ? column instanceof Float64Array : column instanceof Float32Array));
    if (kept !== chunk || !shared) chunk.release?.();
    if (batch) {
      stats.rows += kept!.grid.length;
      yield batch;
    }
  }
  if (stats.evaluated === evaluatedBefore) {
    // A shard may hold no rows (more shards than prefixes); the grid as a whole was checked by prepareSweep.
    if (!span) throw emptyGridError(prepared);
    yield assembler.batch(emptyChunk(prepared, floatType));
    return;
  }
  stats.unanswered.push(...(grid.diagnostics?.emptyGroups ?? []));
  const winners = selector?.finish();
  if (winners && winners.grid.length > 0) {
    stats.rows += winners.grid.length;
    yield assembler.batch(winners);
  } else if (stats.rows === rowsBefore && last) {
    yield assembler.batch({ grid: { ...last.grid, length: 0, columns: last.grid.columns.map((c) => c.subarray(0, 0)) }, computed: last.computed.map((c) => c.subarray(0, 0)) as EvaluatedChunk['computed'] });
  }
}

/** A chunk of no rows, with this sweep's columns, for a shard that evaluated nothing. */
function emptyChunk(prepared: PreparedSweep, floatType: FloatType): EvaluatedChunk {
  const computed = prepared.columns.reduce((n, column) => (column.from === 'computed' ? Math.max(n, column.index + 1) : n), 0);
  const columns = prepared.grid.columns.map(() => new Int32Array(0));
  return {
    grid: { length: 0, columns, offset: 0, columnNames: prepared.grid.columns.map((column) => column.name) },
    computed: Array.from({ length: computed }, () => (floatType === 'f64' ? new Float64Array(0) : new Float32Array(0))) as EvaluatedChunk['computed'],
  };
}

function newStats(engine: Engine): SweepStats {
  return { candidates: 0, evaluated: 0, rows: 0, seconds: 0, engine: engine.description, unanswered: [] };
}

/** Runs a sweep and returns the whole (selected) result as an Arrow table. For huge grids prefer `sweepToFiles`. */
export async function sweep(options: SweepOptions): Promise<{ table: Table; stats: SweepStats }> {
  const prepared = prepareSweep(options);
  const engine = await createEngine(engineOptions(options), prepared.formula);
  const started = performance.now();
  const stats = newStats(engine);
  try {
    const batches: RecordBatch[] = [];
    const metadata = provenanceOf([prepared], [options], engine);
    for await (const batch of sweepBatches(prepared, engine, stats, { ...options, metadata })) batches.push(batch);
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
export async function sweepToFiles(
  runs: SweepOptions | SweepOptions[],
  paths: string[],
  options: {
    /** Also handed every batch (as written), e.g. to aggregate a report while the files are written. */
    observers?: BatchObserver[];
    /** Applied to every batch before it is written (adds columns; must keep one schema). */
    transform?: (batch: RecordBatch) => RecordBatch;
  } = {},
): Promise<SweepStats> {
  const observers = options.observers ?? [];
  checkOutputPaths(paths);
  const all = Array.isArray(runs) ? runs : [runs];
  const prepared = all.map(prepareSweep);
  const constantLabels = sharedConstantLabels(prepared);
  const dictionaries = new Map<string, Vector<Utf8>>();
  const engine = await createEngine(engineOptions(all[0]), prepared[0].formula);
  const started = performance.now();
  const stats = newStats(engine);
  const sinks: Sink[] = [];
  // One schema (metadata included) for every run sharing the outputs.
  const metadata = provenanceOf(prepared, all, engine);
  // A dataset output is partitioned by the runs' constant strings (model, hardware) and names its files by shard.
  const dataset = {
    partitionColumns: [...constantLabels.keys()],
    part: String(all[0].shard?.index ?? 0),
  };
  try {
    for (let r = 0; r < prepared.length; r++) {
      const runOptions = { ...all[r], constantLabels, dictionaries, metadata };
      for await (const produced of sweepBatches(prepared[r], engine, stats, runOptions)) {
        const batch = options.transform ? options.transform(produced) : produced;
        for (const observer of observers) observer.add(batch);
        if (sinks.length === 0) {
          for (const path of paths) {
            const sink = await openSink(path, batch.schema, dataset);
            sinks.push(sink);
            openSinks.add(sink);
          }
        }
        for (const sink of sinks) await sink.write(batch);
      }
    }
    // Every output written out before any is renamed: one that fails then leaves none.
    for (const sink of sinks) await sink.flush?.();
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

function provenanceOf(prepared: PreparedSweep[], options: SweepOptions[], engine: Engine): Map<string, string> {
  const first = options[0];
  return provenance({
    prepared,
    engine,
    floatType: floatTypeOf(prepared[0], first),
    commandLine: first.commandLine,
    selection: { where: first.where, fitsOnly: first.fitsOnly, top: first.top },
    shard: first.shard,
  });
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
