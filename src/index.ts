/**
 * parasweep as a library: everything the CLI does. Errors are InputError (bad input; `field` names the option, e.g.
 * `headroom` or `search.tp_range`) or EngineError (a GPU failure or a failed cross-check).
 */
import { loadConfig as loadConfigImpl } from './config/load.js';
import { loadHardware as loadHardwareImpl } from './config/hardware.js';
import { loadSweepFile as loadSweepFileImpl } from './config/sweepfile.js';
import { libraryAsync, librarySync } from './api.js';
import { explainLaunch as explainLaunchImpl, launch as launchImpl } from './launch/pick.js';
import { launchArgs as launchArgsImpl } from './launch/index.js';
import { explain as explainImpl } from './analysis/explain.js';
import { prepareSweep as prepareSweepImpl, sweep as sweepImpl, sweepToFiles as sweepToFilesImpl } from './sweep.js';
import {
  runCalibration as runCalibrationImpl,
  writeCalibrationDocs as writeCalibrationDocsImpl,
  writeCalibrationReadme as writeCalibrationReadmeImpl,
} from './analysis/calibrate.js';

/** Runs a sweep and returns the whole (selected) result as an Arrow table. For huge grids use sweepStream or sweepToFiles. */
export const sweep = libraryAsync(sweepImpl);
/** Streams a sweep (or several runs sharing one output) into files by extension; files appear only when complete. */
export const sweepToFiles = libraryAsync(sweepToFilesImpl);
/** Loads and validates everything a sweep needs, without evaluating anything. */
export const prepareSweep = librarySync(prepareSweepImpl);
/** A model (bundled name, YAML path or Hugging Face config.json) with overrides applied, validated. */
export const loadConfig = librarySync(loadConfigImpl);
/** A hardware file (bundled name or path), validated. */
export const loadHardware = librarySync(loadHardwareImpl);
/** A sweep file (bundled name or path), validated; run it with sweepFileRuns. */
export const loadSweepFile = librarySync(loadSweepFileImpl);
/** Launch arguments (Megatron-LM flags or a torchtitan config) for the fastest fitting config the options allow. */
export const launch = libraryAsync(launchImpl);
/** Launch arguments for one resolved config: a model, its trainer settings and one layout. */
export const launchArgs = librarySync(launchArgsImpl);
/** Launch arguments for the one config the options pin, with the layers per chunk explain resolves. */
export const explainLaunch = librarySync(explainLaunchImpl);
/** One config (every dimension pinned): every pipeline rank and virtual chunk, its layers, memory and time. */
export const explain = librarySync(explainImpl);

/**
 * `parasweep calibrate`: fits each hardware family's constants on the published runs of configs/calibration,
 * refits once per source without it, and returns the Markdown report with the per-family results; `write` stores
 * the fitted constants in configs/calibration.yaml.
 */
export const calibrate = librarySync(runCalibrationImpl);
/** Replaces the generated calibration tables of a Markdown file (calibrate's --docs) with `report`'s. */
export const writeCalibrationDocs = librarySync((path: string, report: string) => writeCalibrationDocsImpl(path, report, 'path'));
/** Replaces the generated per-regime table of a README (calibrate's --readme) with `report`'s. */
export const writeCalibrationReadme = librarySync((path: string, report: string) => writeCalibrationReadmeImpl(path, report, 'path'));
export { measurements, predict, fitFamily, calibrateFamilies, regimeErrors, sourceErrors, stackErrors, recomputeErrors, recomputeErrorsWithinSources } from './analysis/calibrate.js';
export type { Measurement, Prediction, FamilyReport, Metric, Stack } from './analysis/calibrate.js';
export { sweepStream, best, check, sweepFileRuns } from './api.js';
export { describeModelError, describeTimeSettings, winnerShape } from './settings.js';
export { regimeOf, LONG_CONTEXT_SEQ, outsideCalibration, RANGE_DIMENSIONS } from './config/calibration.js';
export type { RegimeError, RegimeShape, RangeDimension } from './config/calibration.js';
export type { StreamOptions, BestOptions, BestGroup, BestRow } from './api.js';
export { sweepBatches, abortOpenSinks } from './sweep.js';
export type { SweepOptions, PreparedSweep, SweepStats } from './sweep.js';
export { parseOverride, listBundled, resolveConfigPath } from './config/load.js';
export type { LoadedConfig, Override } from './config/load.js';
export type { ModelConfig, TrainerConfig, MoeConfig, MlaConfig } from './config/model.js';
export type { HardwareConfig } from './config/hardware.js';
export type { SweepFile } from './config/sweepfile.js';
export { SEARCH_KEYS } from './config/space.js';
export type { SearchKeyName } from './config/space.js';
export { expandRange } from './config/ranges.js';
export { FORMULAS, getFormula } from './formulas/index.js';
export { createEngine } from './engine/index.js';
export type { Engine, EngineChoice, EngineOptions } from './engine/index.js';
export type { RankedRow } from './results/rank.js';
export { formatCheckReport, DEFAULT_RTOL } from './analysis/check.js';
export type { CheckOptions, CheckReport, ColumnError } from './analysis/check.js';
export { defaultChunkLayers, LAUNCH_TARGETS } from './launch/index.js';
export type { LaunchArgs, LaunchInput, LaunchLayout, LaunchTarget } from './launch/index.js';
export type { LaunchOptions, LaunchResult } from './launch/pick.js';
export { huggingFaceToModelDoc, isHuggingFaceConfig, HF_MODEL_TYPES } from './hf/config.js';
export { jsonSchemas } from './schema/json.js';
export { InputError, EngineError, OutputError } from './errors.js';
export { formatExplanation } from './analysis/explain.js';
export type { Explanation, StageExplanation, ChunkExplanation } from './analysis/explain.js';
export { chunkLayers, defaultSplit, pinnedSplit, megatronSplitArgs, batchUsed } from './layout.js';
export type { PipelineSplit, SplitRule } from './layout.js';
// Outputs (issue 11): the report, the ranking of `best`, --pareto, provenance.
export { reportFromFile, readResults, ReportAggregator, renderReport, writeReport } from './report/index.js';
export type { ReportData, ReportOptions } from './report/index.js';
export { BestConfigs, bestRows, formatBest } from './results/rank.js';
export { ParetoFronts } from './results/pareto.js';
export { provenance } from './provenance.js';
export type { BatchObserver } from './sweep.js';
// Scale (issue 13): shards of the grid for batch schedulers, and the partitioned dataset output.
export { parseShard, shardSpan } from './grid/shard.js';
export type { ShardSpec } from './grid/shard.js';
export { DatasetSink, hivePathValue } from './sink/dataset.js';
