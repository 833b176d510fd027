// The CPU engine's evaluation rate alone, without the grid walk: node bench/cpu-rate.mjs WORKLOAD [ROWS] [SAMPLES]
// Takes SAMPLES slices of ROWS rows spread over the workload's GPU counts, keeps them in memory, and times the
// engine's evaluation of them in CPU seconds of this thread (steadier than wall time on a shared machine).
// Prints one JSON line per engine variant (the per-row reference, and the memoized evaluation).
import { prepareSweep } from '../dist/sweep.js';
import { evaluateChunkOnCpu } from '../dist/engine/cpu/cpu.js';
import { WORKLOADS } from './workloads.mjs';

const [name, rowsArg, samplesArg] = process.argv.slice(2);
const workload = WORKLOADS[name];
if (!workload) throw new Error(`unknown workload ${name}`);
const rowsPerSample = Number(rowsArg ?? 1 << 16);
const samples = Number(samplesArg ?? 8);
const prepared = prepareSweep({ ...workload.options, engine: 'cpu', quiet: true });
const prefixes = prepared.grid.levels[0].values.length;
const chunks = [];
for (let k = 0; k < samples; k++) {
  const first = Math.floor(((k + 0.5) / samples) * prefixes);
  // Consecutive GPU counts from `first` until the slice holds rowsPerSample rows.
  let taken = 0;
  for (const chunk of prepared.grid.chunks(1 << 16, { depth: 1, first, end: prefixes })) {
    chunks.push(chunk);
    taken += chunk.length;
    if (taken >= rowsPerSample) break;
  }
}
const rows = chunks.reduce((n, chunk) => n + chunk.length, 0);
// Each variant once to compile it, then measured.
for (const memo of [false, true]) for (const chunk of chunks.slice(0, 2)) evaluateChunkOnCpu(prepared.formula, prepared.constants, chunk, { memo });
for (const memo of [false, true]) {
  const started = process.cpuUsage();
  for (const chunk of chunks) evaluateChunkOnCpu(prepared.formula, prepared.constants, chunk, { memo });
  const used = process.cpuUsage(started);
  const cpu_s = (used.user + used.system) / 1e6;
  console.log(JSON.stringify({ workload: name, memo, rows, cpu_s, m_rows_per_cpu_s: rows / cpu_s / 1e6 }));
}
