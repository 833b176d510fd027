// One measurement in a fresh process (so peak RSS is its own): node bench/measure.mjs WORKLOAD ENGINE MODE [OUT]
// MODE: enumerate (grid only), evaluate (grid + engine, results discarded), write (end to end into OUT).
// Prints one JSON line: rows, seconds, CPU seconds, peak RSS, engine description.
import { prepareSweep, sweepToFiles } from '../dist/sweep.js';
import { createEngine } from '../dist/engine/index.js';
import { WORKLOADS } from './workloads.mjs';

const [name, engineKind, mode, out] = process.argv.slice(2);
const workload = WORKLOADS[name];
if (!workload) throw new Error(`unknown workload ${name}`);
const options = { ...workload.options, engine: engineKind, quiet: true };
const started = performance.now();
let rows = 0;
let description = '';
if (mode === 'enumerate') {
  const prepared = prepareSweep(options);
  for (const chunk of prepared.grid.chunks(1 << 16)) rows += chunk.length;
  description = 'grid enumeration';
} else if (mode === 'evaluate') {
  const prepared = prepareSweep(options);
  const engine = await createEngine(options, prepared.formula);
  description = engine.description;
  const chunkRows = engine.chunkRows(prepared.formula, prepared.grid.columns.length);
  for await (const chunk of engine.evaluate(prepared.formula, prepared.constants, prepared.grid.chunks(chunkRows))) {
    rows += chunk.grid.length;
    // Done with the results: the engine may write the next chunk into the same columns (as a sweep that copies
    // them into its output lets it).
    chunk.release?.();
  }
  await engine.dispose();
} else if (mode === 'write') {
  const stats = await sweepToFiles(options, [out]);
  rows = stats.rows;
  description = stats.engine;
} else {
  throw new Error(`unknown mode ${mode}`);
}
const seconds = (performance.now() - started) / 1000;
// CPU time of every thread (engine, Dawn's, the Parquet encoder's): on a shared machine steadier than wall time.
const { userCPUTime, systemCPUTime } = process.resourceUsage();
const cpu_s = (userCPUTime + systemCPUTime) / 1e6;
console.log(JSON.stringify({ rows, seconds, cpu_s, rss_mb: process.resourceUsage().maxRSS / 1024, description }));
