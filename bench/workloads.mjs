// The benchmark's fixed workloads. Each is a sweep the CLI can run too (the comment gives the command).
export const WORKLOADS = {
  // parasweep sweep --sweep poc-405b (the PoC's default grid for its 405B file, --formula poc)
  'poc-405b': {
    describe: "PoC default grid, LLaMA 405B, --formula poc",
    options: { model: 'test/fixtures/poc/llama3.1-405b.yaml', formula: 'poc' },
  },
  // parasweep sweep --model llama3.1-405b --ngpus 1024,2048,4096,8192 --gbs 1024..4096:64 (11.4 M rows: the issue's
  // scale, that evaluates and writes within minutes; the full 1..10240 range below is only counted)
  'llama405b-1k..8k': {
    describe: 'LLaMA 3.1 405B, 1024, 2048, 4096 and 8192 GPUs, GBS 1024..4096 step 64, full model',
    options: { model: 'llama3.1-405b', search: { ngpus_range: [1024, 2048, 4096, 8192], gbs_range: '1024..4096:64' } },
  },
  // parasweep sweep --model llama3.1-405b --ngpus 1..10240 --gbs 1024..4096:64
  // Since every integer TP/PP/CP is a layout and GBS a target with tolerance, this grid holds 1,331,212,113 valid
  // rows (`node bench/count.mjs llama405b-1..10240 1`: every GPU count enumerated, 255 s at 5.2 M rows/s, 2026-12-02
  // 00:19-00:23 UTC, load ~2 on 2 cores): too many to evaluate in a benchmark run, so run.mjs only counts it, on a
  // sample of one GPU count in each block of `count.stride` (~30 s), which also gives its enumeration rate.
  'llama405b-1..10240': {
    describe: 'LLaMA 3.1 405B, every GPU count 1..10240, GBS 1024..4096 step 64, full model (counted only)',
    options: { model: 'llama3.1-405b', search: { ngpus_range: '1..10240', gbs_range: '1024..4096:64' } },
    count: { stride: 8 },
  },
  // parasweep sweep --model llama3.1-405b --ngpus 64,256,1024 --gbs 1024,2048 (0.68 M rows: the sinks' workload
  // where the full one takes too long on a shared machine)
  'llama405b-3x2': {
    describe: 'LLaMA 3.1 405B, 64, 256 and 1024 GPUs, GBS 1024 and 2048, full model',
    options: { model: 'llama3.1-405b', search: { ngpus_range: [64, 256, 1024], gbs_range: [1024, 2048] } },
  },
  // parasweep sweep --model mixtral-8x7b --ngpus 64,256,1024 --seq 4096,8192,32768 --ep 1,2,4,8 --etp 1,2,4,8
  // (8,304,849 rows; the earlier table's GPU counts 8..1024:8 now give 154,125,909: FORMER below, `node
  // bench/count.mjs mixtral-8..1024:8 1`, 27 s to enumerate; too many to evaluate and write in every cell of one run)
  'mixtral-wide': {
    describe: 'Mixtral 8x7B, 64, 256 and 1024 GPUs, seq 4K/8K/32K, every EP and expert-TP',
    options: {
      model: 'mixtral-8x7b',
      search: { ngpus_range: [64, 256, 1024], seq_range: [4096, 8192, 32768], ep_range: [1, 2, 4, 8], etp_range: [1, 2, 4, 8] },
    },
  },
};

// Grids of the earlier README table that no longer fit one benchmark run, kept to be counted by bench/count.mjs
// (not run by run.mjs).
export const FORMER = {
  // parasweep sweep --model mixtral-8x7b --ngpus 8..1024:8 --seq 4096,8192,32768 --ep 1,2,4,8 --etp 1,2,4,8
  'mixtral-8..1024:8': {
    describe: 'Mixtral 8x7B, GPU counts 8..1024 step 8, seq 4K/8K/32K, every EP and expert-TP',
    options: {
      model: 'mixtral-8x7b',
      search: { ngpus_range: '8..1024:8', seq_range: [4096, 8192, 32768], ep_range: [1, 2, 4, 8], etp_range: [1, 2, 4, 8] },
    },
  },
};
