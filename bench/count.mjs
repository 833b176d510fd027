// Valid rows of a workload (of WORKLOADS, or FORMER's grids of the earlier table) too large to enumerate in full,
// estimated from a sample of its GPU counts:
//   node bench/count.mjs WORKLOAD [STRIDE] [SEED]
// The grid's first level is the GPU count. Its values are cut into consecutive blocks of STRIDE (default 32); one
// GPU count is drawn at random in each block (seeded, so a run can be repeated) and its rows are counted exactly by
// enumerating only its sub-tree (the span a shard uses, grid.ts). The total is estimated as STRIDE x the sampled sum
// (a stratified sample: unbiased, whatever the divisibility pattern that makes GPU counts so unequal), with a
// standard error computed as if the draws were a simple random sample (conservative for a stratified one).
// STRIDE=1 counts every GPU count: the exact total.
import { prepareSweep } from '../dist/sweep.js';
import { FORMER, WORKLOADS } from './workloads.mjs';

const [name, strideArg, seedArg] = process.argv.slice(2);
const workload = WORKLOADS[name] ?? FORMER[name];
if (!workload) throw new Error(`unknown workload ${name}`);
const stride = Number(strideArg ?? 32);
let seed = Number(seedArg ?? 1) >>> 0;
// mulberry32: a small seeded generator, so the sample is the same on every run.
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
};
const started = performance.now();
const { grid } = prepareSweep({ ...workload.options, engine: 'cpu', quiet: true });
const values = grid.levels[0].values;
const counts = [];
for (let block = 0; block < values.length; block += stride) {
  const size = Math.min(stride, values.length - block);
  const first = block + Math.floor(random() * size);
  let rows = 0;
  for (const chunk of grid.chunks(1 << 16, { depth: 1, first, end: first + 1 })) rows += chunk.length;
  // Weighted by the block's size, so a short last block counts for what it holds.
  counts.push({ ngpus: values[first], rows, weight: size });
}
const estimate = counts.reduce((sum, c) => sum + c.rows * c.weight, 0);
const mean = counts.reduce((sum, c) => sum + c.rows, 0) / counts.length;
const variance = counts.reduce((sum, c) => sum + (c.rows - mean) ** 2, 0) / Math.max(1, counts.length - 1);
const standardError = stride === 1 ? 0 : values.length * Math.sqrt(variance / counts.length);
const enumerated = counts.reduce((sum, c) => sum + c.rows, 0);
const seconds = (performance.now() - started) / 1000;
const top = [...counts].sort((a, b) => b.rows - a.rows).slice(0, 3);
console.log(
  JSON.stringify({
    workload: name,
    gpu_counts: values.length,
    sampled: counts.length,
    stride,
    rows_estimate: Math.round(estimate),
    standard_error: Math.round(standardError),
    rows_enumerated: enumerated,
    seconds,
    enumerate_rate_m_per_s: enumerated / seconds / 1e6,
    largest: top,
  }),
);
