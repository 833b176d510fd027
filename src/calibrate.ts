import { defaultLayoutColumns } from './layout.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Calibration, CALIBRATION_PATH, loadCalibration } from './config/calibration.js';
import { loadHardware } from './config/hardware.js';
import { BUNDLED_CONFIG_DIR, loadConfig, LoadedConfig, readYamlFile } from './config/load.js';
import { validateModel, validateTrainer } from './config/model.js';
import { OFFLOAD_MODES, RECOMPUTE_MODES, SCHEDULES } from './config/space.js';
import { InputError } from './errors.js';
import { fullFormula } from './formulas/full.js';
import { FULL_OUTPUTS, full_estimate, FullConstants, FullRow, FULL_CONSTANTS } from './model.js';

/** One published measurement: a training run's shape, layout and what the source reports. */
export interface Measurement {
  name: string;
  source: string;
  hardware: string;
  config: LoadedConfig;
  row: FullRow;
  metric: 'hardware_tflops_per_gpu' | 'model_tflops_per_gpu' | 'mfu';
  value: number;
  assumed?: string;
}

export interface Prediction {
  measurement: Measurement;
  predicted: number;
  /** (predicted - published) / published */
  error: number;
}

const CALIBRATION_DIR = join(BUNDLED_CONFIG_DIR, 'calibration');

/** A GPT-style model (GeLU, 4h MLP, LayerNorm, learned positions, tied embeddings, biases, dropout). */
function gptConfig(name: string, heads: number, hidden: number, layers: number, seq: number, vocab: number, gbs: number): LoadedConfig {
  const model = validateModel({
    name,
    global_batch_size: gbs,
    micro_batch_size: 1,
    vocab_size: vocab,
    num_layers: layers,
    hidden_size: hidden,
    ffn_hidden_size: 4 * hidden,
    num_attention_heads: heads,
    seq_length: seq,
    activation: 'gelu',
    normalization: 'layernorm',
    position_embedding_type: 'learned_absolute',
    add_bias_linear: true,
    share_embeddings_and_output_weights: true,
  });
  return { source: name, model, trainer: validateTrainer({ param_dtype: 'bfloat16', grad_dtype: 'float32' }), search: {} };
}

interface RawRun {
  name: string;
  source?: string;
  hardware: string;
  model?: string;
  heads?: number;
  hidden?: number;
  layers?: number;
  seq_length: number;
  vocab_size?: number;
  ngpus: number;
  tp: number;
  pp: number;
  cp?: number;
  vpp?: number;
  gbs: number;
  mbs: number;
  recompute: string;
  sp: boolean;
  schedule: string;
  zero?: number;
  metric: Measurement['metric'];
  value: number;
  assumed?: string;
}

function measurementOf(run: RawRun, field: string): Measurement {
  const config = run.model
    ? loadConfig(run.model)
    : gptConfig(run.name, run.heads!, run.hidden!, run.layers!, run.seq_length, run.vocab_size!, run.gbs);
  const cp = run.cp ?? 1;
  const dp = run.ngpus / (run.tp * run.pp * cp);
  const m = run.gbs / (dp * run.mbs);
  if (!Number.isInteger(dp) || !Number.isInteger(m)) {
    throw new InputError(field, `${run.name}: ${run.ngpus} GPUs and batch ${run.gbs} do not divide into tp x pp x cp x dp x mbs`);
  }
  const schedule = SCHEDULES.indexOf(run.schedule as never);
  const recompute = RECOMPUTE_MODES.indexOf(run.recompute as never);
  if (schedule < 0 || recompute < 0) throw new InputError(field, `${run.name}: unknown schedule or recompute`);
  const row: FullRow = {
    ngpus: run.ngpus,
    seq_length: run.seq_length,
    global_batch_size: run.gbs,
    tp: run.tp,
    pp: run.pp,
    vpp: run.schedule === 'interleaved' ? (run.vpp ?? 2) : 1,
    schedule,
    cp,
    ep: 1,
    etp: 1,
    dp,
    edp: run.ngpus / run.pp,
    zero: run.zero ?? 1,
    sp: run.sp ? 1 : 0,
    recompute,
    offload: OFFLOAD_MODES.indexOf('none'),
    mbs: run.mbs,
    num_microbatches: m,
    ...defaultLayoutColumns(config.model.num_layers, run.pp, run.schedule === 'interleaved' ? (run.vpp ?? 2) : 1),
  };
  return {
    name: run.name,
    source: run.source ?? '',
    hardware: run.hardware,
    config,
    row,
    metric: run.metric,
    value: run.value,
    assumed: run.assumed,
  };
}

/** Narayanan et al. 2021, Table 1: the calibration set. */
export function calibrationSet(): Measurement[] {
  const path = join(CALIBRATION_DIR, 'narayanan2021.yaml');
  const doc = readYamlFile(path, 'calibration set') as {
    hardware: string;
    defaults: Record<string, unknown>;
    metric: Measurement['metric'];
    rows: Array<[string, number, number, number, number, number, number, number, number]>;
  };
  return doc.rows.map(([name, heads, hidden, layers, tp, pp, ngpus, gbs, value]) =>
    measurementOf(
      {
        ...(doc.defaults as Partial<RawRun>),
        name,
        source: 'Narayanan 2021, Table 1',
        hardware: doc.hardware,
        heads,
        hidden,
        layers,
        tp,
        pp,
        ngpus,
        gbs,
        metric: doc.metric,
        value,
      } as RawRun,
      path,
    ),
  );
}

export function validationSet(): Measurement[] {
  const path = join(CALIBRATION_DIR, 'validation.yaml');
  const doc = readYamlFile(path, 'validation set') as { rows: RawRun[] };
  return doc.rows.map((run) => measurementOf(run, path));
}

const packed = new Map<Measurement, FullConstants>();

export function predict(measurement: Measurement, calibration: Calibration): Prediction {
  let base = packed.get(measurement);
  if (!base) {
    const hardware = loadHardware(measurement.hardware);
    const constants = fullFormula.packConstants({ config: measurement.config, hardware, headroom: 0, calibration });
    base = Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, constants[i]])) as FullConstants;
    packed.set(measurement, base);
  }
  // Only the fitted constants change between calls; the rest of the packing is reused.
  const c: FullConstants = {
    ...base,
    gemm_efficiency_max: calibration.gemm_efficiency_max,
    gemm_efficiency_half_dim: calibration.gemm_efficiency_half_dim,
  };
  const out = new Float64Array(FULL_OUTPUTS.length);
  full_estimate(c, measurement.row, out);
  const mfu = out[FULL_OUTPUTS.indexOf('mfu')];
  const hfu = out[FULL_OUTPUTS.indexOf('hfu')];
  const peak_tflops = c.peak_flops / 1e12;
  const predicted =
    measurement.metric === 'mfu' ? mfu : measurement.metric === 'model_tflops_per_gpu' ? mfu * peak_tflops : hfu * peak_tflops;
  return { measurement, predicted, error: (predicted - measurement.value) / measurement.value };
}

export function meanAbsoluteError(predictions: Prediction[]): number {
  return predictions.reduce((sum, p) => sum + Math.abs(p.error), 0) / predictions.length;
}

/**
 * Fits the GEMM efficiency curve (peak fraction eta_max, half-saturation inner dimension) to the calibration set by
 * a grid search minimising the mean squared relative error. The other constants stay as they are.
 */
export function fit(base: Calibration, set: Measurement[]): Calibration {
  let best = base;
  let bestLoss = Infinity;
  for (let max = 0.5; max <= 1.0001; max += 0.005) {
    for (let half = 0; half <= 3000; half += 20) {
      const candidate = { ...base, gemm_efficiency_max: Number(max.toFixed(3)), gemm_efficiency_half_dim: half };
      const loss = set.reduce((sum, m) => sum + predict(m, candidate).error ** 2, 0);
      if (loss < bestLoss) {
        bestLoss = loss;
        best = candidate;
      }
    }
  }
  return best;
}

function table(title: string, predictions: Prediction[], withAssumptions: boolean): string {
  const lines = [
    `### ${title}`,
    '',
    `| run | source | metric | published | predicted | error |${withAssumptions ? ' assumed |' : ''}`,
    `|---|---|---|---:|---:|---:|${withAssumptions ? '---|' : ''}`,
  ];
  const show = (metric: string, v: number) => (metric === 'mfu' ? `${(v * 100).toFixed(1)}%` : v.toFixed(1));
  for (const p of predictions) {
    const m = p.measurement;
    lines.push(
      `| ${m.name} | ${m.source} | ${m.metric} | ${show(m.metric, m.value)} | ${show(m.metric, p.predicted)} | ${(p.error * 100).toFixed(1)}% |${withAssumptions ? ` ${m.assumed ?? ''} |` : ''}`,
    );
  }
  lines.push('', `Mean absolute error: ${(meanAbsoluteError(predictions) * 100).toFixed(1)}% over ${predictions.length} runs.`);
  return lines.join('\n');
}

export function calibrationYaml(c: Calibration, previous: string): string {
  let text = previous;
  text = text.replace(/^gemm_efficiency_max: .*$/m, `gemm_efficiency_max: ${c.gemm_efficiency_max}`);
  text = text.replace(/^gemm_efficiency_half_dim: .*$/m, `gemm_efficiency_half_dim: ${c.gemm_efficiency_half_dim}`);
  return text;
}

/** Fits, reports both tables as Markdown, and optionally writes the fitted constants. */
export function runCalibration(write: boolean): { report: string; calibration: Calibration; validationMae: number } {
  const current = loadCalibration();
  const calibrationRuns = calibrationSet();
  const fitted = fit(current, calibrationRuns);
  const validation = validationSet().map((m) => predict(m, fitted));
  if (write) writeFileSync(CALIBRATION_PATH, calibrationYaml(fitted, readFileSync(CALIBRATION_PATH, 'utf8')));
  const report = [
    `Fitted: gemm_efficiency_max = ${fitted.gemm_efficiency_max}, gemm_efficiency_half_dim = ${fitted.gemm_efficiency_half_dim}` +
      ` (fixed: memory_passes ${fitted.memory_passes}, scaleup_efficiency ${fitted.scaleup_efficiency},` +
      ` scaleout_efficiency ${fitted.scaleout_efficiency})`,
    '',
    table('Calibration: Narayanan et al. 2021, Table 1 (A100, full recompute)', calibrationRuns.map((m) => predict(m, fitted)), false),
    '',
    table('Validation: published runs outside the calibration set', validation, true),
  ].join('\n');
  return { report, calibration: fitted, validationMae: meanAbsoluteError(validation) };
}
