import { CpuEngine, inputColumns } from '../engine/cpu/cpu.js';
import type { Formula } from '../formulas/types.js';
import { GpuEngine } from '../engine/gpu/gpu.js';
import type { EngineOptions } from '../engine/index.js';
import type { EvaluatedChunk } from '../engine/types.js';
import { EngineError, InputError } from '../errors.js';
import { prepareSweep, SweepOptions } from '../sweep.js';

/**
 * Default tolerance of the cross-check, relative to each CPU value. The GPU computes in f32: every operation
 * rounds with relative error at most u = 2^-24 ≈ 6.0e-8, and no output column of any formula is more than ~60
 * roundings deep, so a column built from sums and products of positive terms is off by at most 60·u ≈ 3.6e-6.
 * 1e-5 leaves a margin of ~3 over that bound (docs/precision.md derives it per column).
 */
export const DEFAULT_RTOL = 1e-5;

export interface ColumnError {
  column: string;
  maxAbsError: number;
  maxRelError: number;
  /** Row (in grid order) with the largest relative error, or -1. */
  worstRow: number;
  cpuValue: number;
  gpuValue: number;
  ok: boolean;
}

export interface CheckReport {
  rows: number;
  gpu: string;
  cpu: string;
  rtol: number;
  columns: ColumnError[];
  /** Rows on a decision boundary (near-equal stages, total at the memory limit), counted but not compared. */
  ties: number;
  /** Grid (integer and categorical) columns compared; they must be identical. */
  gridColumnsIdentical: boolean;
  ok: boolean;
}

export interface CheckOptions extends SweepOptions {
  rtol?: number;
}

function compareChunk(
  formula: Formula,
  constants: Float64Array,
  cpu: EvaluatedChunk,
  gpu: EvaluatedChunk,
  errors: ColumnError[],
  rtol: number,
): { gridSame: boolean; ties: number } {
  let gridSame = cpu.grid.length === gpu.grid.length;
  for (let c = 0; c < cpu.grid.columns.length && gridSame; c++) {
    const a = cpu.grid.columns[c];
    const b = gpu.grid.columns[c];
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) gridSame = false;
  }
  const inputs = inputColumns(formula, cpu.grid, cpu.grid.columnNames);
  // The reference magnitude of each column's error: itself, or the column it is a part of (see errorScale).
  const scaleOf = formula.outputs.map((name) => {
    const scale = formula.errorScale?.[name];
    return scale === undefined ? -1 : formula.outputs.indexOf(scale);
  });
  const reference = (j: number, i: number) =>
    scaleOf[j] < 0 ? Math.abs(cpu.computed[j][i]) : Math.max(Math.abs(cpu.computed[j][i]), Math.abs(cpu.computed[scaleOf[j]][i]));
  const within = (got: number, want: number, scale: number) =>
    Math.abs(got - want) <= rtol * scale && Number.isNaN(got) === Number.isNaN(want);
  let ties = 0;
  for (let i = 0; i < cpu.grid.length; i++) {
    let rowOk = true;
    for (let j = 0; j < errors.length && rowOk; j++) rowOk = within(gpu.computed[j][i], cpu.computed[j][i], reference(j, i));
    // On a decision boundary (two stages within rtol, or a total within rtol of the memory limit) f32 and f64 may
    // pick differently; such rows are counted, not compared.
    if (!rowOk && formula.nearTie?.(constants, inputs, i, rtol)) {
      ties++;
      continue;
    }
    for (let j = 0; j < errors.length; j++) {
      const want = cpu.computed[j][i];
      const got = gpu.computed[j][i];
      const error = errors[j];
      const abs = Math.abs(got - want);
      // A relative error with a zero reference is 0 if both are 0 and infinite otherwise.
      const scale = reference(j, i);
      const rel = abs === 0 ? 0 : scale === 0 ? Infinity : abs / scale;
      if (!within(got, want, scale)) error.ok = false;
      if (abs > error.maxAbsError) error.maxAbsError = abs;
      if (rel > error.maxRelError) {
        error.maxRelError = rel;
        error.worstRow = cpu.grid.offset + i;
        error.cpuValue = want;
        error.gpuValue = got;
      }
    }
  }
  return { gridSame, ties };
}

/** Runs the same grid through both engines, chunk by chunk, and reports the error of every computed column. */
export async function checkEngines(options: CheckOptions): Promise<CheckReport> {
  const rtol = options.rtol ?? DEFAULT_RTOL;
  if (!(rtol > 0 && rtol < 1)) throw new InputError('--rtol', `must be between 0 and 1 (exclusive), got ${rtol}`);
  const prepared = prepareSweep(options);
  const gpu = await GpuEngine.create(gpuOptions(options));
  if (!gpu) throw new EngineError('check: no WebGPU adapter found, so there is nothing to compare the CPU with');
  const cpu = new CpuEngine();
  const { formula, constants, grid } = prepared;
  const errors: ColumnError[] = formula.outputs.map((column) => ({
    column,
    maxAbsError: 0,
    maxRelError: 0,
    worstRow: -1,
    cpuValue: NaN,
    gpuValue: NaN,
    ok: true,
  }));
  let rows = 0;
  let ties = 0;
  let gridSame = true;
  try {
    const chunkRows = options.chunkRows ?? gpu.chunkRows(formula, grid.columns.length);
    const cpuChunks = cpu.evaluate(formula, constants, grid.chunks(chunkRows));
    for await (const gpuChunk of gpu.evaluate(formula, constants, grid.chunks(chunkRows))) {
      const cpuChunk = (await cpuChunks.next()).value as EvaluatedChunk;
      const compared = compareChunk(formula, constants, cpuChunk, gpuChunk, errors, rtol);
      gridSame = compared.gridSame && gridSame;
      ties += compared.ties;
      rows += gpuChunk.grid.length;
    }
  } finally {
    await gpu.dispose();
  }
  if (rows === 0) throw new InputError('search space', `no valid config for --formula ${formula.name}`);
  return {
    rows,
    gpu: gpu.description,
    cpu: cpu.description,
    rtol,
    columns: errors,
    ties,
    gridColumnsIdentical: gridSame,
    ok: gridSame && errors.every((e) => e.ok),
  };
}

function gpuOptions(options: EngineOptions) {
  return {
    backend: options.backend,
    adapter: options.adapter,
    maxBufferBytes: options.maxBufferBytes,
    workgroupSize: options.workgroupSize,
    verbose: options.verbose,
    fallbackToCpu: false,
  };
}

export function formatCheckReport(report: CheckReport): string {
  const lines = [
    `cross-check of ${report.rows} configs: ${report.gpu} against ${report.cpu}, tolerance ${report.rtol} relative`,
    `${'column'.padEnd(42)} ${'max abs error'.padStart(14)} ${'max rel error'.padStart(14)}  result (errors of time components are relative to step_time_s)`,
  ];
  for (const e of report.columns) {
    const where = e.ok ? 'ok' : `FAIL (row ${e.worstRow}: cpu ${e.cpuValue}, gpu ${e.gpuValue})`;
    lines.push(`${e.column.padEnd(42)} ${e.maxAbsError.toExponential(3).padStart(14)} ${e.maxRelError.toExponential(3).padStart(14)}  ${where}`);
  }
  lines.push(`rows on a decision boundary (not compared): ${report.ties}`);
  lines.push(`integer and categorical columns: ${report.gridColumnsIdentical ? 'identical' : 'DIFFER'}`);
  lines.push(report.ok ? 'check passed' : 'check FAILED');
  return lines.join('\n');
}
