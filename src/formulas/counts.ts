import { FULL_CONSTANTS, FULL_INPUTS, FULL_OUTPUTS, FullConstants, FullRow, model_params, stage_params } from '../model.js';

/**
 * The full formula's exact parameter counts for rows the GPU computed in f32, which rounds counts above 2^24
 * (405B parameters come back off by thousands). They depend on a few layout columns only, so rows in grid order
 * (where those columns change slowly) reuse the previous row's values.
 */
export const PARAM_COUNT_COLUMNS = ['params_total', 'params_active', 'params_gpu'] as const;

/** Grid columns that never change a parameter count: the innermost grid dimensions, so the cache hits. */
const IRRELEVANT = new Set(['global_batch_size', 'zero', 'sp', 'recompute', 'offload', 'mbs', 'num_microbatches']);

export function fullExactColumns(
  constants: Float64Array,
  grid: { columns: Int32Array[]; columnNames: readonly string[] },
  computed: ArrayLike<number>[],
  length: number,
): Map<number, Float64Array> {
  const c = Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, constants[i]])) as FullConstants;
  const inputs = FULL_INPUTS.map((name) => grid.columns[grid.columnNames.indexOf(name)]);
  const keyed = FULL_INPUTS.map((name, k) => (IRRELEVANT.has(name) ? -1 : k)).filter((k) => k >= 0);
  const stageIndex = FULL_OUTPUTS.indexOf('heaviest_stage');
  const out = PARAM_COUNT_COLUMNS.map(() => new Float64Array(length));
  const row = Object.fromEntries(FULL_INPUTS.map((name) => [name, 0])) as unknown as FullRow;
  const target = row as unknown as Record<string, number>;
  // Model totals depend on TP (vocabulary padding) and the sequence (learned positions) only.
  const totals = new Map<number, [number, number]>();
  const tpIndex = FULL_INPUTS.indexOf('tp');
  const seqIndex = FULL_INPUTS.indexOf('seq_length');
  // One cached layout per heaviest stage (first, second or last): the innermost grid dimensions (recompute,
  // offload) move the heaviest stage back and forth, which would defeat a single-entry cache.
  const cached = new Map<number, { row: number; gpu: number }>();
  for (let i = 0; i < length; i++) {
    const tp = inputs[tpIndex][i];
    const seq = inputs[seqIndex][i];
    const totalKey = tp * 1048576 + seq;
    let total = totals.get(totalKey);
    if (!total) {
      total = [model_params(c, tp, seq, 0), model_params(c, tp, seq, 1)];
      totals.set(totalKey, total);
    }
    const stage = computed[stageIndex][i];
    const entry = cached.get(stage);
    let same = entry !== undefined;
    for (let j = 0; same && j < keyed.length; j++) same = inputs[keyed[j]][i] === inputs[keyed[j]][entry!.row];
    let gpu: number;
    if (same) {
      gpu = entry!.gpu;
    } else {
      for (let k = 0; k < FULL_INPUTS.length; k++) target[FULL_INPUTS[k]] = inputs[k][i];
      const [dense, expert] = stage_params(c, row, stage);
      gpu = dense + expert;
      cached.set(stage, { row: i, gpu });
    }
    out[0][i] = total[0];
    out[1][i] = total[1];
    out[2][i] = gpu;
  }
  return new Map(PARAM_COUNT_COLUMNS.map((name, j) => [FULL_OUTPUTS.indexOf(name), out[j]]));
}
