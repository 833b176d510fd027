import { EngineError } from '../../errors.js';
import type { Formula } from '../../formulas/types.js';
import type { GridChunk } from '../../grid/grid.js';
import { evaluateChunkOnCpu } from '../cpu/cpu.js';
import type { EvaluatedChunk } from '../types.js';

/** Rows of the first chunk compared with the CPU reference: enough to catch an adapter that computes garbage. */
const SAMPLE_ROWS = 16;
/**
 * Far looser than the f32 bound of docs/precision.md (1e-5): this catches an adapter that does not compute the
 * model (zeros, garbage), not rounding; the cross-check (`parasweep check`) is the precise test.
 */
const SAMPLE_RTOL = 1e-3;
/** Discrete columns (the heaviest stage, fits) may flip on a near-tie between f32 and f64: a few may differ. */
const MIN_AGREEING_COLUMNS = 0.9;

function close(gpu: number, cpu: number): boolean {
  if (Number.isNaN(gpu) || Number.isNaN(cpu)) return Number.isNaN(gpu) && Number.isNaN(cpu);
  return Math.abs(gpu - cpu) <= SAMPLE_RTOL * Math.max(Math.abs(cpu), Math.abs(gpu)) || Math.abs(gpu - cpu) < 1e-30;
}

/**
 * Compares a few rows of a GPU result with the CPU model (f64) on the same grid rows, and throws EngineError when
 * most of them disagree: the GPU is then not computing the model, whatever the known-answer probe said. Rows are
 * spread over the chunk; a selecting chunk holds only survivors, which are compared the same way.
 */
export function checkSampleAgainstCpu(formula: Formula, constants: Float64Array, chunk: EvaluatedChunk): void {
  const n = chunk.grid.length;
  if (n === 0) return;
  const picks = Array.from(new Set(Array.from({ length: Math.min(SAMPLE_ROWS, n) }, (_, k) => Math.floor((k * n) / Math.min(SAMPLE_ROWS, n)))));
  const sample: GridChunk = {
    length: picks.length,
    columns: chunk.grid.columns.map((column) => Int32Array.from(picks, (i) => column[i])),
    offset: 0,
    columnNames: chunk.grid.columnNames,
  };
  const reference = evaluateChunkOnCpu(formula, constants, sample).computed;
  let disagreeing = 0;
  let example = '';
  picks.forEach((row, k) => {
    let agreeing = 0;
    for (let j = 0; j < formula.outputs.length; j++) {
      if (close(chunk.computed[j][row], reference[j][k])) agreeing++;
      else example ||= `${formula.outputs[j]} is ${chunk.computed[j][row]} on the GPU, ${reference[j][k]} on the CPU`;
    }
    if (agreeing < MIN_AGREEING_COLUMNS * formula.outputs.length) disagreeing++;
  });
  if (disagreeing * 2 > picks.length) {
    throw new EngineError(`GPU results disagree with the CPU model on ${disagreeing} of ${picks.length} sampled rows (${example})`);
  }
}
