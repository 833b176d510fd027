/**
 * The calibration sets (configs/calibration/*.yaml), the per-family fit with its leave-one-source-out error, and
 * the generated tables of docs/time-model.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  calibrationDocs,
  DOCS_BEGIN,
  DOCS_END,
  fitFamily,
  measurements,
  predict,
  recomputeErrors,
  recomputeErrorsWithinSources,
  regimeErrors,
  sourceErrors,
  regimeTable,
  REGIMES_BEGIN,
  REGIMES_END,
  runCalibration,
  stackErrors,
  STACKS,
} from '../src/analysis/calibrate.js';
import { loadCalibration, outsideCalibration, RANGE_DIMENSIONS, regimeOf } from '../src/config/calibration.js';
import { RECOMPUTE_MODES } from '../src/config/space.js';
import { InputError } from '../src/errors.js';
import { makeTempDir, REPO_ROOT } from './helpers.js';

const REGIMES = ['a100-dense', 'a100-long-context', 'a100-zero3', 'h100-dense', 'h100-long-context', 'h100-moe'];

describe('calibration sets', () => {
  const rows = measurements();

  it('every row names its source, citation, regime and a positive published value', () => {
    expect(rows.length).toBeGreaterThan(50);
    for (const m of rows) {
      expect(m.source, m.name).not.toBe('');
      expect(m.citation, m.name).not.toBe('');
      expect(REGIMES, m.name).toContain(m.regime);
      expect(m.value, m.name).toBeGreaterThan(0);
      expect(['a100', 'h100'], m.name).toContain(m.family);
      expect(STACKS, m.name).toContain(m.stack);
    }
    expect(new Set(rows.map((m) => m.name)).size).toBe(rows.length);
  });

  it("regimeOf puts every calibration run in the regime its file gives it, so that best's error line reads the right one", () => {
    const known = new Set(REGIMES);
    for (const m of rows) {
      const shape = { moe: (m.config.model.moe?.num_experts ?? 0) > 0, seq_length: m.row.seq_length, zero: m.row.zero, tp: m.row.tp, pp: m.row.pp };
      expect(regimeOf(m.family, shape, known), m.name).toBe(m.regime);
    }
  });

  it('covers every regime, A100 and H100 with more than one source each', () => {
    for (const regime of REGIMES) expect(rows.some((m) => m.regime === regime), regime).toBe(true);
    for (const family of ['a100', 'h100']) {
      expect(new Set(rows.filter((m) => m.family === family).map((m) => m.source)).size).toBeGreaterThan(3);
    }
  });

  it('the FP8 rows run FP8 only where the hardware has it, and predictions are finite and positive', () => {
    const calibration = loadCalibration();
    for (const m of rows) {
      const p = predict(m, calibration.families[m.family], calibration);
      expect(Number.isFinite(p.predicted) && p.predicted > 0, m.name).toBe(true);
      if (m.config.trainer.fp8) expect(m.family).toBe('h100');
    }
  });

  it('a step time is a throughput error the other way round', () => {
    const calibration = loadCalibration();
    const row = rows.find((m) => m.metric === 'step_time_s')!;
    const p = predict(row, calibration.families[row.family], calibration);
    expect(p.error).toBeCloseTo(row.value / p.predicted - 1, 12);
  });
});

describe('calibration sources of published training throughput', () => {
  const rows = measurements();
  const calibration = loadCalibration();
  // Each file: its source name and how many rows it holds per regime, so that a row that stops loading shows here.
  const SOURCES: Record<string, { source: string; regimes: Record<string, number> }> = {
    'fms-fsdp-2024.yaml': { source: 'fms-fsdp README 2024-02', regimes: { 'a100-zero3': 4, 'h100-dense': 4 } },
    'torchtitan-asynctp-2025.yaml': { source: 'torchtitan async TP benchmarks 2025-06', regimes: { 'h100-dense': 8 } },
    'trainy-h200-2025.yaml': { source: 'Trainy H200 torchtitan benchmark 2025-06', regimes: { 'h100-dense': 2 } },
    'deepseek-v2-2024.yaml': { source: 'DeepSeek-V2 report', regimes: { 'h100-moe': 1 } },
    'torchtitan-perf-2024.yaml': { source: 'torchtitan docs/performance.md 2024', regimes: { 'a100-zero3': 2, 'h100-dense': 3 } },
    'nemotron4-15b-2024.yaml': { source: 'Nemotron-4 15B report', regimes: { 'h100-dense': 3 } },
    'tinyllama-2023.yaml': { source: 'TinyLlama README 2023', regimes: { 'a100-zero3': 1 } },
  };

  for (const [file, expected] of Object.entries(SOURCES)) {
    it(`${file} loads and every row is expressible: a finite, positive prediction`, () => {
      const own = rows.filter((m) => m.source === expected.source);
      const perRegime: Record<string, number> = {};
      for (const m of own) perRegime[m.regime] = (perRegime[m.regime] ?? 0) + 1;
      expect(perRegime).toEqual(expected.regimes);
      for (const m of own) {
        expect(m.citation, m.name).toMatch(/^(https:\/\/|arXiv:)/);
        const p = predict(m, calibration.families[m.family], calibration);
        expect(Number.isFinite(p.predicted) && p.predicted > 0, m.name).toBe(true);
      }
    });
  }

  it('the fms-fsdp HSDP rows run on every GPU, sharded within a node of 8 (dp_replicas = GPUs / 8)', () => {
    const hsdp = rows.filter((m) => m.source === 'fms-fsdp README 2024-02' && m.name.includes('-hsdp-'));
    expect(hsdp.map((m) => [m.name, m.row.ngpus, m.row.dp_replicas, m.row.global_batch_size / m.row.ngpus])).toEqual([
      ['fms-llama2-7b-hsdp-a100', 128, 16, 2],
      ['fms-llama2-13b-hsdp-a100', 128, 16, 1],
      ['fms-llama2-7b-hsdp-h100', 96, 12, 2],
      ['fms-llama2-13b-hsdp-h100', 96, 12, 1],
    ]);
    // The rest of the calibration set keeps ZeRO over its whole DP group.
    expect(rows.filter((m) => m.row.dp_replicas !== 1).length).toBe(4);
  });

  it('a dp_replicas that does not divide dp is named, with the run', () => {
    const dir = makeTempDir();
    writeFileSync(
      join(dir, 'bad.yaml'),
      [
        'source: test', 'citation: "https://example.org"', 'stack: pytorch-fsdp', 'hardware: a100-80gb', 'regime: a100-zero3',
        'metric: tokens_per_s_per_gpu',
        'rows:',
        '  - { name: bad-hsdp, arch: llama, vocab_size: 32000, seq_length: 4096, hidden: 4096, ffn: 11008, heads: 32, layers: 32,',
        '      ngpus: 16, tp: 1, pp: 1, mbs: 1, gbs: 16, sp: false, schedule: 1f1b, recompute: none, zero: 3, dp_replicas: 3, value: 1000 }',
      ].join('\n'),
    );
    expect(() => measurements(dir)).toThrow(/bad-hsdp: dp_replicas must be an integer >= 1 dividing dp \(16\)/);
  });

  it('the llama arch preset gives Llama-style layers: SwiGLU, RMSNorm, RoPE, untied embeddings, no biases', () => {
    const m = rows.find((r) => r.name === 'fms-llama2-70b-fsdp128-a100')!;
    expect(m.config.model).toMatchObject({
      activation: 'swiglu',
      normalization: 'rmsnorm',
      position_embedding_type: 'rope',
      add_bias_linear: false,
      share_embeddings_and_output_weights: false,
      ffn_hidden_size: 28672,
      num_key_value_heads: 8,
    });
  });
});

describe('parasweep calibrate', () => {
  const { report, reports } = runCalibration(false);

  it('fits each family and holds every source out once: the held-out constants differ from the full fit', () => {
    expect(reports.map((r) => r.family)).toEqual(['a100', 'h100']);
    for (const r of reports) {
      expect(r.heldOut.length).toBe(r.inSample.length);
      // Some source moves the fit when held out, so some held-out prediction differs from the in-sample one.
      expect(r.heldOut.some((p, i) => Math.abs(p.predicted - r.inSample[i].predicted) > 1e-9 * p.predicted)).toBe(true);
      expect(r.fitted.gemm_efficiency_half_dim).toBeGreaterThanOrEqual(100);
    }
  });

  it("a fit without Triton runs takes the family's benchmark prior, never the stored all-source ratio", () => {
    const calibration = loadCalibration();
    for (const family of ['a100', 'h100']) {
      const withoutTriton = measurements().filter((m) => m.family === family && m.config.trainer.attention_kernel !== 'triton');
      const stored = calibration.families[family];
      // A stored ratio unlike the prior: were it used, it would show in the fit.
      const fitted = fitFamily({ ...stored, triton_attention_ratio: 0.77 }, withoutTriton, calibration);
      expect(fitted.triton_attention_ratio, family).toBe(stored.triton_attention_prior);
    }
    expect(calibration.families.a100.triton_attention_prior).toBe(0.55);
    expect(calibration.families.h100.triton_attention_prior).toBe(1.06);
  });

  it('torch.compile: fitted where a family has runs with and without it; a family without such runs borrows the ratio', () => {
    const calibration = loadCalibration();
    const compiled = (family: string) => measurements().filter((m) => m.family === family && m.config.trainer.torch_compile);
    expect(compiled('a100')).toEqual([]);
    expect(compiled('h100').length).toBeGreaterThan(0);
    // torchtitan's Tables 1 and 3 time the same runs eager and compiled.
    const names = new Set(measurements().map((m) => m.name));
    for (const name of ['titan-8b-fsdp8', 'titan-8b-fsdp8-compile', 'titan-8b-fsdp128', 'titan-8b-fsdp128-compile']) expect(names.has(name)).toBe(true);
    const h100 = reports.find((r) => r.family === 'h100')!;
    const a100 = reports.find((r) => r.family === 'a100')!;
    expect(h100.fitted.compile_passes_ratio).toBeGreaterThan(0);
    expect(h100.fitted.compile_passes_ratio).toBeLessThan(1);
    expect(a100.fitted.compile_passes_ratio).toBe(h100.fitted.compile_passes_ratio);
    // Without compiled runs the ratio is not fitted: the stored one stays.
    const eagerOnly = measurements().filter((m) => m.family === 'h100' && !m.config.trainer.torch_compile);
    const fitted = fitFamily({ ...calibration.families.h100, compile_passes_ratio: 0.77 }, eagerOnly, calibration);
    expect(fitted.compile_passes_ratio).toBe(0.77);
  });

  it('the kernel benchmark pins what the runs cannot split: A100 without USP keeps the attention efficiency', () => {
    // Without USP's FlashAttention-2 runs, the A100 runs see the attention kernel mostly through llm-foundry's
    // Triton rows, i.e. through attention_efficiency x triton_attention_ratio; without the benchmark as a source
    // the fold fitted 0.46 x 0.76 where the full fit has 0.59 x 0.6.
    const calibration = loadCalibration();
    const stored = calibration.families.a100;
    const withoutUsp = measurements().filter((m) => m.family === 'a100' && !m.source.startsWith('USP'));
    const fitted = fitFamily(stored, withoutUsp, calibration);
    expect(Math.abs(fitted.attention_efficiency - stored.attention_efficiency)).toBeLessThan(0.05);
    expect(Math.abs(Math.log(fitted.triton_attention_ratio / stored.triton_attention_prior))).toBeLessThan(0.1);
  });

  it('the measured overlap cost is one more source: a run that hides much communication does not set it alone', () => {
    // DeepSeek-V3's row hides its expert all-to-alls behind DualPipe; fitted on that row alone, the GEMM curve can
    // match it at any overlap_cost, and the fit starts overlap_cost at 0.05: the prior is what moves it.
    const calibration = loadCalibration();
    const stored = calibration.families.h100;
    expect(stored.overlap_cost_prior).toBe(0.61);
    const deepseek = measurements().filter((m) => m.name === 'deepseek-v3-2048');
    expect(deepseek).toHaveLength(1);
    const fitted = fitFamily(stored, deepseek, calibration);
    expect(Math.abs(Math.log(fitted.overlap_cost / stored.overlap_cost_prior))).toBeLessThan(0.1);
    // Both families' fits land near the measurement.
    for (const r of reports) expect(Math.abs(Math.log(r.fitted.overlap_cost / r.fitted.overlap_cost_prior)), r.family).toBeLessThan(0.15);
  });

  it('the signed error tables split each family by stack and by recompute mode, every row once', () => {
    for (const table of [stackErrors(reports), recomputeErrors(reports)]) {
      for (const r of reports) {
        const rows = table.filter((t) => t.family === r.family);
        expect(rows.reduce((sum, t) => sum + t.runs, 0)).toBe(r.inSample.length);
        // The runs' weighted mean of the groups' signed errors is the family's mean signed error.
        const mean = r.inSample.reduce((sum, p) => sum + p.error, 0) / r.inSample.length;
        expect(rows.reduce((sum, t) => sum + t.runs * t.inSample, 0) / r.inSample.length).toBeCloseTo(mean, 12);
      }
    }
    expect(report).toContain('### Mean signed throughput error per recompute mode and family');
  });

  it('the within-source recompute table lists each source that ran several modes, with the mean of its rows per mode', () => {
    const table = recomputeErrorsWithinSources(reports);
    expect(table.length).toBeGreaterThan(0);
    for (const r of reports) {
      for (const source of new Set(r.inSample.map((p) => p.measurement.source))) {
        const rows = r.inSample.filter((p) => p.measurement.source === source);
        const modes = new Set(rows.map((p) => p.measurement.row.recompute));
        const entry = table.find((t) => t.source === source && t.family === r.family);
        if (modes.size < 2) {
          expect(entry, source).toBeUndefined();
          continue;
        }
        expect(entry!.modes.reduce((sum, m) => sum + m.runs, 0)).toBe(rows.length);
        for (const m of entry!.modes) {
          const own = rows.filter((p) => RECOMPUTE_MODES[p.measurement.row.recompute] === m.mode);
          expect(m.inSample).toBeCloseTo(own.reduce((sum, p) => sum + p.error, 0) / own.length, 12);
        }
      }
    }
    expect(report).toContain('### Mean signed throughput error per recompute mode within each source');
  });

  it('the per-source table covers every row once and its errors are the mean of those rows', () => {
    const table = sourceErrors(reports);
    for (const r of reports) {
      const rows = table.filter((t) => t.family === r.family);
      expect(rows.reduce((sum, t) => sum + t.runs, 0)).toBe(r.heldOut.length);
      for (const t of rows) {
        const own = r.heldOut.filter((p) => p.measurement.source === t.source);
        expect(t.heldOut).toBeCloseTo(own.reduce((sum, p) => sum + Math.abs(p.error), 0) / own.length, 12);
      }
    }
    // The issue's measure on Korthikanti et al.'s present-work step times is a row of this table.
    const korthikanti = table.find((t) => t.source.startsWith('Korthikanti'));
    expect(korthikanti?.runs).toBe(4);
    expect(report).toContain(`| ${korthikanti!.source} | a100 | a100-dense | 4 |`);
  });

  it('the fitted constants are the ones in configs/calibration.yaml (npm run calibrate writes them)', () => {
    const calibration = loadCalibration();
    for (const r of reports) expect(calibration.families[r.family]).toEqual(r.fitted);
  });

  it("configs/calibration.yaml's regime errors and calibrated hardware are the report's (npm run calibrate writes them)", () => {
    const calibration = loadCalibration();
    const regimes = regimeErrors(reports);
    expect(Object.keys(calibration.regime_errors).sort()).toEqual(regimes.map((r) => r.regime).sort());
    for (const r of regimes) {
      expect(calibration.regime_errors[r.regime]).toEqual({ runs: r.runs, sources: r.sources, loso: Number(r.heldOut.toFixed(4)) });
    }
    const hardware = [...new Set(reports.flatMap((r) => r.inSample.map((p) => p.measurement.hardware)))].sort();
    expect(calibration.calibrated_hardware).toEqual(hardware);
    // Each family's span of every layout dimension over its runs.
    for (const r of reports) {
      const rows = r.inSample.map((p) => p.measurement.row);
      for (const name of RANGE_DIMENSIONS) {
        const values = rows.map((row) => row[name]);
        expect(calibration.calibrated_ranges[r.family][name], `${r.family} ${name}`).toEqual([Math.min(...values), Math.max(...values)]);
      }
    }
    expect(outsideCalibration(calibration, 'h100', { tp: 32, cp: 2, ngpus: 512 })).toEqual([
      `tp 32 (runs: ${calibration.calibrated_ranges.h100.tp![0]}-${calibration.calibrated_ranges.h100.tp![1]})`,
    ]);
    expect(outsideCalibration(calibration, 'a100', { ep: 8 })).toEqual(['ep 8 (runs: 1-1)']);
  });

  it('a calibration file with a malformed regime error is refused, naming the field', () => {
    const dir = makeTempDir();
    const path = join(dir, 'calibration.yaml');
    const text = readFileSync(join(REPO_ROOT, 'configs', 'calibration.yaml'), 'utf8');
    writeFileSync(path, text.replace(/h100-dense: \{ runs: \d+/, 'h100-dense: { runs: -3'));
    expect(() => loadCalibration(path)).toThrow(/calibration\.regime_errors\.h100-dense\.runs/);
    writeFileSync(path, text.replace(/calibrated_hardware: \[[^\]]*\]/, 'calibrated_hardware: 7'));
    expect(() => loadCalibration(path)).toThrow(/calibration\.calibrated_hardware/);
    writeFileSync(path, text.replace(/tp: \[1, 8\]/, 'tp: [8, 1]'));
    expect(() => loadCalibration(path)).toThrow(/calibration\.calibrated_ranges\.a100\.tp: must be \[min, max\]/);
    writeFileSync(path, text.replace(/ngpus: \[8, 12288\]/, 'gpus: [8, 12288]'));
    expect(() => loadCalibration(path)).toThrow(/calibration\.calibrated_ranges\.a100\.gpus: is not a layout dimension/);
  });

  it('docs/time-model.md holds the current report between its markers', () => {
    const docs = readFileSync(join(REPO_ROOT, 'docs', 'time-model.md'), 'utf8');
    expect(calibrationDocs(docs, report)).toBe(docs);
    for (const regime of REGIMES) expect(report).toContain(`| ${regime} |`);
  });

  it('README.md holds the current per-regime table', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    expect(calibrationDocs(readme, regimeTable(report), '--readme', REGIMES_BEGIN, REGIMES_END)).toBe(readme);
  });

  it('--docs needs both markers', () => {
    expect(() => calibrationDocs('no markers here', report)).toThrow(InputError);
    expect(calibrationDocs(`a\n${DOCS_BEGIN}\nold\n${DOCS_END}\nb`, 'new')).toBe(`a\n${DOCS_BEGIN}\n\nnew\n\n${DOCS_END}\nb`);
  });
});
