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
  let previous = -1;
  let cachedStage = -1;
  let total = 0;
  let active = 0;
  let gpu = 0;
  for (let i = 0; i < length; i++) {
    const stage = computed[stageIndex][i];
    let same = previous >= 0 && stage === cachedStage;
    for (let j = 0; same && j < keyed.length; j++) same = inputs[keyed[j]][i] === inputs[keyed[j]][previous];
    if (!same) {
      for (let k = 0; k < FULL_INPUTS.length; k++) target[FULL_INPUTS[k]] = inputs[k][i];
      total = model_params(c, row.tp, row.seq_length, 0);
      active = model_params(c, row.tp, row.seq_length, 1);
      const [dense, expert] = stage_params(c, row, stage);
      gpu = dense + expert;
      cachedStage = stage;
      previous = i;
    }
    out[0][i] = total;
    out[1][i] = active;
    out[2][i] = gpu;
  }
  return new Map(PARAM_COUNT_COLUMNS.map((name, j) => [FULL_OUTPUTS.indexOf(name), out[j]]));
}
