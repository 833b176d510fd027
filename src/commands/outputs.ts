import { Bool, Field, Int32, RecordBatch, Schema } from 'apache-arrow';
import { InputError } from '../errors.js';
import { ParetoFronts } from '../results/pareto.js';
import { Progress } from '../progress.js';
import { BestConfigs, bestContext, bestRows, checkRankColumns, formatBest, formatTable, RankOptions } from '../results/rank.js';
import { checkReportPath, reportFromFile, ReportAggregator, writeReport } from '../report/index.js';
import { checkOutputPaths, declareCsvOutput, writeRows } from '../sink/index.js';
import { STDOUT_PATH } from '../sink/stdout.js';
import { prepareSweep, SweepOptions, SweepStats, sweepToFiles } from '../sweep.js';
import { describeModelError, describeTimeSettings, winnerShape } from '../settings.js';
import { UNIT_KEY } from '../units.js';

/**
 * What `sweep`, `best` and `report` do with their rows: files, stdout, the summary table, the HTML report. The
 * CLI parses flags and hands them here.
 */

/** Output flags shared by sweep and best. */
export interface OutputFlags {
  out?: string[];
  csv?: string;
  report?: string;
  'report-ngpus'?: number;
  quiet: boolean;
}

interface CommandHooks {
  /** Valid configs of all runs, for the progress bar (undefined when no bar is drawn). */
  progressTotal: (runs: SweepOptions[], quiet: boolean) => number | undefined;
}

/** Rows of the summary table `sweep` prints when it writes no file. */
const SUMMARY_ROWS = 5;

function outputsOf(flags: OutputFlags): string[] {
  // A --csv path is CSV whatever its name (--csv /dev/stdout, a named pipe).
  if (flags.csv) declareCsvOutput(flags.csv);
  return [...(flags.out ?? []), ...(flags.csv ? [flags.csv] : [])];
}

/** Binary Arrow on a terminal helps nobody: `-o -` wants a pipe or a redirection. */
function checkStdout(outputs: string[]): void {
  if (outputs.includes(STDOUT_PATH) && process.stdout.isTTY) {
    throw new InputError('--out', '- writes binary Arrow IPC to stdout, which is a terminal: pipe it (| python ...) or redirect it (> x.arrows)');
  }
}

function reportNgpus(value: number | undefined, field: string): number | undefined {
  if (value !== undefined && !(Number.isInteger(value) && value >= 1)) {
    throw new InputError(field, `must be a positive integer, got ${value}`);
  }
  return value;
}

function reportLine(flags: OutputFlags, bytes: number): void {
  if (!flags.quiet) process.stderr.write(`parasweep: report -> ${flags.report} (${(bytes / 1e6).toFixed(2)} MB)\n`);
}

/**
 * `parasweep sweep`: streams the rows into the outputs; with none (outside PoC mode, where `pocOutput` is the
 * PoC's default file) prints the best rows instead and writes no file.
 */
export async function runSweepCommand(
  runs: SweepOptions[],
  flags: OutputFlags & { pareto?: boolean },
  hooks: CommandHooks & { pocOutput?: string },
): Promise<void> {
  const outputs = outputsOf(flags);
  if (outputs.length === 0 && hooks.pocOutput) outputs.push(hooks.pocOutput);
  checkOutputPaths(outputs);
  checkStdout(outputs);
  if (flags.report !== undefined) checkReportPath(flags.report);
  const focus = reportNgpus(flags['report-ngpus'], '--report-ngpus');
  const full = (runs[0].formula ?? 'full') !== 'poc';
  if ((flags.report !== undefined || flags.pareto) && !full) {
    throw new InputError(flags.report !== undefined ? '--report' : '--pareto', 'needs the time model of --formula full');
  }
  const progress = new Progress({ label: 'sweep', enabled: !flags.quiet, total: hooks.progressTotal(runs, flags.quiet) });
  // Each run's stats start where the previous run's ended (sweepToFiles shares one SweepStats).
  for (const run of runs) run.onProgress = (evaluated) => progress.tick(evaluated);
  let transform: ((batch: RecordBatch) => RecordBatch) | undefined;
  if (flags.pareto) {
    const fronts = new ParetoFronts(runs[0].top?.per ?? 'ngpus');
    await sweepToFiles(runs, [], { observers: [fronts] });
    transform = (batch) => fronts.label(batch);
  }
  const aggregator = flags.report !== undefined ? new ReportAggregator(focus) : undefined;
  const summary = outputs.length === 0 && full ? new BestConfigs(SUMMARY_ROWS, {}) : undefined;
  let schema: Schema | undefined;
  const observers = [
    ...(aggregator ? [aggregator] : []),
    ...(summary ? [summary] : []),
    { add: (batch: RecordBatch) => void (schema ??= batch.schema) },
  ];
  const stats = await sweepToFiles(runs, outputs, { observers, transform });
  progress.finish();
  if (aggregator && schema) reportLine(flags, await writeReport(flags.report!, aggregator.result(), schema.metadata, 'this sweep'));
  if (summary && schema) {
    const [group] = summary.results();
    const context = bestContext(schema, { model: '', hardware: '' }, { k: SUMMARY_ROWS });
    if (!group) {
      process.stdout.write(`no config fits on ${context.hardware}: try more GPUs, recompute, ZeRO or offload\n`);
    } else {
      process.stdout.write(
        `${context.model} on ${context.hardware}: ${group.fitting} of ${stats.rows} configs fit; the ${Math.min(SUMMARY_ROWS, group.top.length)} fastest by tokens/s:\n`,
      );
      process.stdout.write(formatTable(group.top, SUMMARY_ROWS, 'tokens_per_s').join('\n') + '\n');
      process.stdout.write('No file written: -o results.parquet (or .arrow, .csv, - for stdout) keeps every row.\n');
    }
  }
  if (!flags.quiet) {
    const kept = stats.rows === stats.evaluated ? '' : ` (${stats.evaluated} evaluated)`;
    const where = outputs.length === 0 ? 'no file' : outputs.map((path) => (path === STDOUT_PATH ? 'stdout' : path)).join(', ');
    process.stderr.write(
      formatUnanswered(stats) +
      `parasweep: ${stats.candidates} configs considered, ${stats.rows} rows ${outputs.length === 0 ? 'kept' : 'written'}${kept} in ${stats.seconds.toFixed(2)} s` +
        ` (${stats.engine}) -> ${where}\n`,
    );
  }
}

/** GPU counts the search left without a valid config, each with the rule that removed the most candidates. */
export function formatUnanswered(stats: SweepStats): string {
  if (stats.unanswered.length === 0) return '';
  const lines = stats.unanswered.slice(0, 20).map((group) => `  ngpus ${group.value}: ${group.rule}`);
  if (stats.unanswered.length > 20) lines.push(`  ... and ${stats.unanswered.length - 20} more`);
  return `parasweep: ${stats.unanswered.length} GPU count(s) have no valid config (rule that removed the most candidates):\n${lines.join('\n')}\n`;
}

/** `parasweep best`: per group, the top k fitting configs and the Pareto front; `-o` writes them ranked. */
export async function runBestCommand(
  run: SweepOptions,
  flags: OutputFlags & { formula?: string },
  options: RankOptions,
  hooks: CommandHooks,
): Promise<void> {
  const k = options.k;
  if (!Number.isInteger(k) || k < 1) throw new InputError('--top', `must be a positive integer, got ${k}`);
  if (flags.formula === 'poc') throw new InputError('--formula', 'best ranks by the time model of --formula full');
  const outputs = outputsOf(flags);
  checkOutputPaths(outputs);
  checkStdout(outputs);
  if (flags.report !== undefined) checkReportPath(flags.report);
  const focus = reportNgpus(flags['report-ngpus'], '--report-ngpus');
  const rank = { k, by: options.by ?? 'tokens_per_s', per: options.per ?? 'ngpus', order: options.order };
  const prepared = prepareSweep({ ...run, fitsOnly: false });
  checkRankColumns(prepared.columns, rank);
  const progress = new Progress({ label: 'best', enabled: !flags.quiet, total: hooks.progressTotal([run], flags.quiet) });
  run.onProgress = (evaluated) => progress.tick(evaluated);
  const best = new BestConfigs(k, rank);
  const aggregator = flags.report !== undefined ? new ReportAggregator(focus) : undefined;
  // Rows stream through the ranking and the report: memory stays O(k + fronts), not O(fitting rows).
  let schema: Schema | undefined;
  const observers = [best, ...(aggregator ? [aggregator] : []), { add: (batch: RecordBatch) => void (schema ??= batch.schema) }];
  const stats = await sweepToFiles(run, [], { observers });
  progress.finish();
  // sweepBatches yields at least one (possibly empty) batch, so the schema is known.
  const metadata = schema!.metadata;
  const results = best.results();
  const { context } = prepared;
  // With -o - the rows own stdout; the table goes to stderr.
  const text = outputs.includes(STDOUT_PATH) ? process.stderr : process.stdout;
  text.write(
    formatBest(
      results,
      {
        ...bestContext(schema!, { model: context.config.model.name, hardware: context.hardware.name }, rank),
        settings: describeTimeSettings(context.config.trainer, context.config.model),
        errorOf: (winner) => describeModelError(context, winnerShape(winner)),
      },
      k,
    ),
  );
  if (results.length === 0) text.write('no config fits: try more GPUs, recompute, ZeRO or offload\n');
  if (outputs.length > 0) {
    // The ranked rows and the Pareto fronts, with the same sinks as sweep.
    const ranked = new Schema(
      [
        ...schema!.fields,
        new Field('rank', new Int32(), true, new Map([['parasweep.description', `rank by ${rank.by} per ${rank.per}; null: only on the Pareto front`]])),
        new Field('on_pareto', new Bool(), false, new Map([[UNIT_KEY, 'boolean']])),
      ],
      metadata,
    );
    await writeRows(ranked, bestRows(results, k), outputs);
  }
  if (aggregator) reportLine(flags, await writeReport(flags.report!, aggregator.result(), metadata, 'this run of best'));
  if (!flags.quiet) {
    process.stderr.write(
      `parasweep: ${stats.candidates} configs considered, ${stats.evaluated} evaluated, ${stats.rows} fit, in ${stats.seconds.toFixed(2)} s (${stats.engine})\n`,
    );
  }
}

/** `parasweep report RESULTS -o report.html`. */
export async function runReportCommand(args: { results: string; out: string; ngpus?: number; quiet: boolean }): Promise<void> {
  const { bytes, data } = await reportFromFile(args.results, args.out, { ngpus: reportNgpus(args.ngpus, '--ngpus') });
  if (!args.quiet) process.stderr.write(`parasweep: ${data.rows} rows -> ${args.out} (${(bytes / 1e6).toFixed(2)} MB)\n`);
}
