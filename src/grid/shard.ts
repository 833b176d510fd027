/**
 * Shards for batch schedulers: `--shard i/n` evaluates the i-th of n deterministic, contiguous slices of the grid.
 *
 * The grid is a nested loop (grid.ts). A shard must not enumerate the whole grid to find its slice, so the split is
 * made on a prefix of the levels: the valid prefixes of length `depth` (assignments of the first `depth` levels
 * that pass every `accept` rule) are numbered in enumeration order and cut into n contiguous runs of equal weight.
 * A prefix's weight is the number of valid nodes below it at a deeper probe depth: the deepest level the walk
 * reaches within SHARD_WALK_BUDGET nodes per level. At the full depth a node is a row and the split is exact;
 * above it, the weight counts the sub-tree's configs that survive every validity rule of the probed levels (the
 * divisibility of TP, PP, CP and DP into the GPU count, which is what makes GPU counts so unequal), and treats the
 * levels below as equally wide. The split depth is the deepest whose prefixes number at most
 * SHARD_PREFIX_BUDGET (the weights' array). So finding a shard costs two walks of at most about levels x budget
 * nodes, whatever the grid's size, and a shard then expands only its own sub-trees.
 *
 * The split depends only on the grid and n: every shard computes the same cut, and shards 0..n-1 concatenated in
 * order are the unsharded sweep, row for row.
 */
import { InputError } from '../errors.js';
import type { GridPlan, GridSpan } from './grid.js';

export interface ShardSpec {
  /** 0-based shard number, below `count`. */
  index: number;
  count: number;
}

/** Most prefixes the split may number (8 bytes of weight each). */
export const SHARD_PREFIX_BUDGET = 1 << 20;

/** Most nodes per level the probe walks: ~2 s for the two walks of the 10.7 M-row 405B grid on this project's 2-core machine. */
export const SHARD_WALK_BUDGET = 1 << 23;

/** Largest shard count taken: far beyond any job array, small enough that a prefix budget still splits it. */
export const MAX_SHARDS = 65536;

/** Parses `i/n` (0 <= i < n). */
export function parseShard(text: string, field = '--shard'): ShardSpec {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) throw new InputError(field, `expected i/n with 0 <= i < n, e.g. 0/8, got ${JSON.stringify(text)}`);
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (count < 1 || count > MAX_SHARDS) throw new InputError(field, `shard count must be 1..${MAX_SHARDS}, got ${count}`);
  if (index >= count) throw new InputError(field, `shard index must be below the shard count ${count}, got ${index}`);
  return { index, count };
}

/**
 * Valid prefixes per depth: `counts[d]` is the number of valid assignments of levels 0..d-1, for each depth d up
 * to the deepest whose count stays within `budget` (the walk does not descend past it).
 */
export function prefixCounts(plan: GridPlan, budget = SHARD_PREFIX_BUDGET): number[] {
  const levels = plan.levels;
  const row = new Int32Array(plan.columns.length);
  const index = new Int32Array(levels.length);
  const counts = new Array<number>(levels.length + 1).fill(0);
  counts[0] = 1;
  // Deepest level still walked; shrinks when a level's prefixes exceed the budget.
  let maxLevel = levels.length - 1;
  let depth = 0;
  index[0] = -1;
  // The same walk as GridPlan.chunks (values or derive, then accept), cut off at maxLevel.
  while (depth >= 0) {
    const level = levels[depth];
    const i = ++index[depth];
    if (level.values) {
      if (i >= level.values.length) {
        depth--;
        continue;
      }
      row[level.column] = level.values[i];
    } else {
      if (i >= 1) {
        depth--;
        continue;
      }
      const value = level.derive!(row);
      if (!Number.isInteger(value)) continue;
      row[level.column] = value;
    }
    if (level.accept && !level.accept(row)) continue;
    const over = ++counts[depth + 1] > budget;
    if (over && depth > 0) {
      // Too many prefixes at this depth: split one level higher, and stop expanding this one.
      maxLevel = depth - 1;
      depth--;
      continue;
    }
    // The first level is always counted in full: a split needs at least one level.
    if (over) maxLevel = 0;
    if (depth < maxLevel) {
      depth++;
      index[depth] = -1;
    }
  }
  return counts.slice(0, maxLevel + 2);
}

/**
 * Weights of the `counts[depth]` prefixes of length `depth`: the valid nodes under each at `probe` (>= depth),
 * found by a walk to that depth.
 */
function prefixWeights(plan: GridPlan, depth: number, probe: number, prefixes: number): Float64Array {
  const levels = plan.levels;
  const row = new Int32Array(plan.columns.length);
  const index = new Int32Array(levels.length);
  const weights = new Float64Array(prefixes);
  const splitLevel = depth - 1;
  const probeLevel = probe - 1;
  let ordinal = -1;
  let level = 0;
  index[0] = -1;
  while (level >= 0) {
    const spec = levels[level];
    const i = ++index[level];
    if (spec.values) {
      if (i >= spec.values.length) {
        level--;
        continue;
      }
      row[spec.column] = spec.values[i];
    } else {
      if (i >= 1) {
        level--;
        continue;
      }
      const value = spec.derive!(row);
      if (!Number.isInteger(value)) continue;
      row[spec.column] = value;
    }
    if (spec.accept && !spec.accept(row)) continue;
    if (level === splitLevel) ordinal++;
    if (level === probeLevel) {
      weights[ordinal]++;
      continue;
    }
    level++;
    index[level] = -1;
  }
  return weights;
}

/** The span of shard `index` of `count`: a contiguous run of prefixes holding 1/count of the total weight. */
export function shardSpan(
  plan: GridPlan,
  shard: ShardSpec,
  budgets: { prefixes?: number; walk?: number } = {},
): GridSpan {
  const counts = prefixCounts(plan, budgets.walk ?? SHARD_WALK_BUDGET);
  const probe = counts.length - 1;
  let depth = probe;
  while (depth > 1 && counts[depth] > (budgets.prefixes ?? SHARD_PREFIX_BUDGET)) depth--;
  const prefixes = counts[depth];
  const weights = prefixWeights(plan, depth, probe, prefixes);
  let total = 0;
  for (const weight of weights) total += weight;
  // Boundary k: the first prefix whose preceding weight reaches k/count of the total; the last boundary is the end.
  const boundary = (k: number): number => {
    if (k >= shard.count) return prefixes;
    const target = (k * total) / shard.count;
    let before = 0;
    for (let j = 0; j < prefixes; j++) {
      if (before >= target) return j;
      before += weights[j];
    }
    return prefixes;
  };
  return { depth, first: boundary(shard.index), end: boundary(shard.index + 1) };
}
