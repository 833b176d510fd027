// One measurement in a fresh process (so peak RSS is its own): node bench/measure.mjs WORKLOAD ENGINE MODE [OUT]
// MODE: enumerate (grid only), evaluate (grid + engine, results discarded), engine (the engine alone, on the whole
// workload or its first ENGINE_ROWS rows, enumerated into memory before the clock starts), write (end to end into OUT).
// Prints one JSON line: rows, seconds, CPU seconds (all threads, and the main thread's), peak RSS, engine description.
import { prepareSweep, sweepToFiles } from '../dist/sweep.js';
import { createEngine } from '../dist/engine/index.js';
import { readFileSync } from 'node:fs';
import { WORKLOADS } from './workloads.mjs';

const [name, engineKind, mode, out] = process.argv.slice(2);
const workload = WORKLOADS[name];
if (!workload) throw new Error(`unknown workload ${name}`);
const options = { ...workload.options, engine: engineKind, quiet: true };
// CPU seconds count from here, as the wall clock does: the process's start-up (loading modules) is left out.
const mainThreadCpuS = () => {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined; // not Linux
  }
};
const cpuAtStart = process.cpuUsage();
const mainCpuAtStart = mainThreadCpuS();
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
} else if (mode === 'engine') {
  // What the engine costs without the grid walk beside it: the rows are enumerated (and copied, in case the grid
  // recycles its buffers) before timing, and the first chunk runs once untimed (pipeline compilation, JIT warm-up).
  const prepared = prepareSweep(options);
  const engine = await createEngine(options, prepared.formula);
  description = engine.description;
  const chunkRows = engine.chunkRows(prepared.formula, prepared.grid.columns.length);
  const limit = Number(process.env.ENGINE_ROWS ?? Infinity);
  const held = [];
  let enumerated = 0;
  for (const chunk of prepared.grid.chunks(chunkRows)) {
    held.push({ ...chunk, columns: chunk.columns.map((column) => column.slice()) });
    enumerated += chunk.length;
    if (enumerated >= limit) break;
  }
  for await (const chunk of engine.evaluate(prepared.formula, prepared.constants, held.slice(0, 1))) void chunk;
  const cpuBefore = process.cpuUsage();
  const timed = performance.now();
  for await (const chunk of engine.evaluate(prepared.formula, prepared.constants, held)) rows += chunk.grid.length;
  const engine_s = (performance.now() - timed) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  await engine.dispose();
  console.log(JSON.stringify({ rows, seconds: engine_s, cpu_s: (cpu.user + cpu.system) / 1e6, rss_mb: process.resourceUsage().maxRSS / 1024, description }));
  process.exit(0);
} else if (mode === 'write') {
  const stats = await sweepToFiles(options, [out]);
  rows = stats.rows;
  description = stats.engine;
} else {
  throw new Error(`unknown mode ${mode}`);
}
const seconds = (performance.now() - started) / 1000;
// CPU time of every thread (engine, Dawn's, the Parquet encoder's): on a shared machine steadier than wall time.
const cpu = process.cpuUsage(cpuAtStart);
const cpu_s = (cpu.user + cpu.system) / 1e6;
// The main thread's share (JS: enumeration, uploads, readback, sinks), from /proc on Linux: the rest is other
// threads', llvmpipe's shader threads among them, which is how a GPU cell says whether its kernel or its JS bounds it.
const mainNow = mainThreadCpuS();
const main_cpu_s = mainNow === undefined || mainCpuAtStart === undefined ? undefined : mainNow - mainCpuAtStart;
console.log(JSON.stringify({ rows, seconds, cpu_s, main_cpu_s, rss_mb: process.resourceUsage().maxRSS / 1024, description }));
