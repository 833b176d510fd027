// Where the GPU engine's time goes, phase by phase, in one process:
//   [WG=workgroup size] node bench/gpu-phases.mjs WORKLOAD [GPU_COUNT]
// GPU_COUNT restricts the workload to one of its GPU counts. Prints one JSON line: wall and CPU seconds of opening
// the device, enumerating the grid into memory, the first chunk (shader compile included), and the remaining
// chunks with enumeration excluded; then the same chunks again (pipeline cached) to separate compile from compute.
// Each phase's CPU is also split into the main thread's and the other threads' (llvmpipe runs shaders on its own).
// On a shared machine compare CPU seconds, the smallest of several runs (docs/gpu-backends.md).
import { prepareSweep } from '../dist/sweep.js';
import { createEngine } from '../dist/engine/index.js';
import { readdirSync, readFileSync } from 'node:fs';
import { WORKLOADS } from './workloads.mjs';

const [name, ngpus] = process.argv.slice(2);
const workload = WORKLOADS[name];
if (!workload) throw new Error(`unknown workload ${name}`);
const search = { ...workload.options.search, ...(ngpus ? { ngpus_range: [Number(ngpus)] } : {}) };
const options = { ...workload.options, search, engine: 'gpu', quiet: true, ...(process.env.WG ? { workgroupSize: Number(process.env.WG) } : {}) };

const cpuNow = () => {
  const { userCPUTime, systemCPUTime } = process.resourceUsage();
  return (userCPUTime + systemCPUTime) / 1e6;
};
// CPU seconds of the main thread (JS, Dawn's calls, memcpy) and of all other threads (llvmpipe's shader threads,
// V8's GC helpers), from /proc (Linux); 0 elsewhere.
const ticks = Number(process.env.CLK_TCK ?? 100);
function threadCpu() {
  let main = 0;
  let other = 0;
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const s = (Number(fields[11]) + Number(fields[12])) / ticks;
      if (Number(tid) === process.pid) main += s;
      else other += s;
    }
  } catch {
    // not Linux
  }
  return { main, other };
}
const phases = {};
let threads = threadCpu();
let wall = performance.now();
let cpu = cpuNow();
const mark = (phase) => {
  const w = performance.now();
  const c = cpuNow();
  const t = threadCpu();
  phases[phase] = {
    s: +((w - wall) / 1000).toFixed(3),
    cpu_s: +(c - cpu).toFixed(3),
    main_cpu_s: +(t.main - threads.main).toFixed(2),
    other_cpu_s: +(t.other - threads.other).toFixed(2),
  };
  threads = t;
  wall = w;
  cpu = c;
};
const prepared = prepareSweep(options);
mark('prepare');
const engine = await createEngine(options, prepared.formula);
mark('open_device');
const chunkRows = engine.chunkRows(prepared.formula, prepared.grid.columns.length);
const chunks = [...prepared.grid.chunks(chunkRows)];
const rows = chunks.reduce((n, c) => n + c.length, 0);
mark('enumerate');
async function run(list) {
  let n = 0;
  for await (const chunk of engine.evaluate(prepared.formula, prepared.constants, list)) n += chunk.grid.length;
  return n;
}
await run(chunks.slice(0, 1));
mark('first_chunk');
await run(chunks.slice(1));
mark('rest');
await run(chunks);
mark('again_all');
await engine.dispose();
const rate = (p) => +(rows / phases[p].s / 1e6).toFixed(2);
console.log(JSON.stringify({ workload: name, ngpus: ngpus ?? 'all', rows, chunks: chunks.length, chunkRows, phases, again_m_per_s: rate('again_all') }));
