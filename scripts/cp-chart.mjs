// Megatron-LM's context-parallel chart (docs/user-guide/features/context_parallel.md, Figure 2: GPT 175B, speedup
// of TP+CP layouts without recompute over TP 8 with full recompute) against the model, for docs/time-model.md
// section 7. The chart states neither GPU count nor batch: 512 H100s, batch 256 and PP 8 x 2 virtual stages are
// assumed. `--attention-efficiency X` sets the h100 family's constant first, to see which value the chart favours.
// Run after `npm run build`: node scripts/cp-chart.mjs [--attention-efficiency 0.55]
import { loadCalibration } from '../dist/config/calibration.js';
import { explain } from '../dist/analysis/explain.js';

const flag = process.argv.indexOf('--attention-efficiency');
// The bundled calibration is loaded once and cached: what is set here is what explain's sweeps use.
const calibration = loadCalibration();
if (flag >= 0) calibration.families.h100.attention_efficiency = Number(process.argv[flag + 1]);

// [sequence, TP, CP, chart value read off the figure to +-0.02], BF16 bars (the FP8 ones train a GQA model).
const CHART = [
  [16384, 16, 1, 1.13],
  [16384, 8, 2, 1.25],
  [32768, 32, 1, 0.85],
  [32768, 16, 2, 1.15],
  [32768, 8, 4, 1.2],
];
const step = (seq, tp, cp, recompute) =>
  explain({
    model: 'gpt3-175b',
    hardware: 'h100-sxm-80gb',
    headroom: 0,
    search: {
      ngpus_range: 512, gbs_range: 256, seq_range: seq, tp_range: tp, pp_range: 8, schedule_range: 'interleaved', vpp_range: 2,
      cp_range: cp, shard_strategys: 1, sp_range: true, recompute_range: recompute, offload_range: 'none', mbs_range: 1,
    },
  }).result.step_time_s;

let sum = 0;
console.log(`h100 attention_efficiency ${calibration.families.h100.attention_efficiency}`);
console.log('sequence  layout      chart  model');
for (const [seq, tp, cp, chart] of CHART) {
  const speedup = step(seq, 8, 1, 'full') / step(seq, tp, cp, 'none');
  sum += Math.abs(speedup / chart - 1);
  console.log(`${String(seq).padStart(8)}  TP${tp} CP${cp}`.padEnd(22) + `${chart.toFixed(2)}   ${speedup.toFixed(2)}`);
}
console.log(`mean error ${((sum / CHART.length) * 100).toFixed(1)}%`);
