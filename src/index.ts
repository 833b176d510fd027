export { sweep, sweepToFiles, prepareSweep, sweepBatches, abortOpenSinks } from './sweep.js';
export type { SweepOptions, PreparedSweep, SweepStats } from './sweep.js';
export { loadConfig, parseOverride, listBundled, resolveConfigPath } from './config/load.js';
export type { LoadedConfig, Override } from './config/load.js';
export type { ModelConfig, TrainerConfig } from './config/model.js';
export { SEARCH_KEYS } from './config/space.js';
export { expandRange } from './config/ranges.js';
export { FORMULAS, getFormula } from './formulas/index.js';
export { createEngine } from './engine/index.js';
export type { Engine, EngineChoice } from './engine/index.js';
export { InputError, EngineError, OutputError } from './errors.js';
export { explain, formatExplanation } from './explain.js';
export type { Explanation, StageExplanation, ChunkExplanation } from './explain.js';
export { chunkLayers, defaultSplit, pinnedSplit, megatronSplitArgs, batchUsed } from './layout.js';
export type { PipelineSplit, SplitRule } from './layout.js';
// Outputs (issue 11): the report, the ranking of `best`, --pareto, provenance.
export { reportFromFile, readResults, ReportAggregator, renderReport, writeReport } from './report/index.js';
export type { ReportData, ReportOptions } from './report/index.js';
export { BestConfigs, bestRows, formatBest } from './rank.js';
export { ParetoFronts } from './pareto.js';
export { provenance } from './provenance.js';
export type { BatchObserver } from './sweep.js';
// Scale (issue 13): shards of the grid for batch schedulers, and the partitioned dataset output.
export { parseShard, shardSpan } from './grid/shard.js';
export type { ShardSpec } from './grid/shard.js';
export { DatasetSink, hivePathValue } from './sink/dataset.js';
