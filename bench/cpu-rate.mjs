// The CPU engine's evaluation rate alone, without the grid walk: node bench/cpu-rate.mjs WORKLOAD [ROWS] [SAMPLES]
// Takes SAMPLES slices of ROWS rows spread over the workload's GPU counts, keeps them in memory, and times the
// engine's evaluation of them in CPU seconds of this thread (steadier than wall time on a shared machine).
// Prints one JSON line per engine variant (the formula's row-by-row kernel, and the memoized one).
import { prepareSweep } from '../dist/sweep.js';
import { CPU_CHUNK_ROWS, evaluateChunkOnCpu } from '../dist/engine/cpu/cpu.js';
import { PACE_CACHE_SLOTS, setPaceCacheCapacity } from '../dist/engine/cpu/memo.js';
import { WORKLOADS } from './workloads.mjs';

const [name, rowsArg, samplesArg] = process.argv.slice(2);
const workload = WORKLOADS[name];
if (!workload) throw new Error(`unknown workload ${name}`);
const rowsPerSample = Number(rowsArg ?? 1 << 16);
const chunkRows = Number(process.env.CHUNK_ROWS ?? CPU_CHUNK_ROWS);
// Chunks as the CPU engine takes them (CHUNK_ROWS=n to try another size): their size sets how the output columns are
// allocated.
const samples = Number(samplesArg ?? 8);
const prepared = prepareSweep({ ...workload.options, engine: 'cpu', quiet: true });
const prefixes = prepared.grid.levels[0].values.length;
const chunks = [];
for (let k = 0; k < samples; k++) {
  const first = Math.floor(((k + 0.5) / samples) * prefixes);
  // Consecutive GPU counts from `first` until the slice holds rowsPerSample rows.
  let taken = 0;
  for (const chunk of prepared.grid.chunks(chunkRows, { depth: 1, first, end: prefixes })) {
    chunks.push(chunk);
    taken += chunk.length;
    if (taken >= rowsPerSample) break;
  }
}
const rows = chunks.reduce((n, chunk) => n + chunk.length, 0);
// Each variant once to compile it, then REPEATS (3) rounds alternating the variants; the best round of each is reported
// (other processes on a shared machine only ever slow a round down).
const REPEATS = Number(process.env.REPEATS ?? 3);
// MEMO_ONLY=1 skips the row-by-row kernel (to compare memoized variants quickly).
const variants = process.env.MEMO_ONLY === '1' ? [true] : [false, true];
for (const memo of variants) for (const chunk of chunks.slice(0, 2)) evaluateChunkOnCpu(prepared.formula, prepared.constants, chunk, { memo });
const best = new Map();
// Results go into one set of output columns, as with a consumer that hands them back (EvaluatedChunk.release).
const outputs = prepared.formula.outputs.map(() => new Float64Array(Math.max(...chunks.map((chunk) => chunk.length))));
// The memo's pace cache lives across chunks: each round starts with it empty (PACE_CACHE=warm keeps it), so a round
// reuses paces only within its slices, less than a whole sweep does across global batches.
const warm = process.env.PACE_CACHE === 'warm';
for (let round = 0; round < REPEATS; round++) {
  for (const memo of variants) {
    if (!warm) setPaceCacheCapacity(PACE_CACHE_SLOTS);
    const started = process.cpuUsage();
    for (const chunk of chunks) evaluateChunkOnCpu(prepared.formula, prepared.constants, chunk, { memo, outputs });
    const used = process.cpuUsage(started);
    const cpu_s = (used.user + used.system) / 1e6;
    best.set(memo, Math.min(best.get(memo) ?? Infinity, cpu_s));
  }
}
for (const [memo, cpu_s] of best) {
  console.log(JSON.stringify({ workload: name, memo, pace_cache: warm ? 'warm' : 'cold', rows, chunk_rows: chunkRows, cpu_s, m_rows_per_cpu_s: rows / cpu_s / 1e6 }));
}
