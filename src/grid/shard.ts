/**
 * Shards for batch schedulers: `--shard i/n` evaluates the i-th of n deterministic, contiguous slices of the grid.
 *
 * The grid is a nested loop (grid.ts). A shard must not enumerate the whole grid to find its slice, so the split is
 * made on a prefix of the levels: the valid prefixes of length `depth` (the assignments of the first `depth` levels
 * that pass every `accept` rule) are numbered in enumeration order and cut into n contiguous runs of equal count.
 * Every prefix at one depth stands for the same number of candidates below it (the product of the remaining levels'
 * sizes), so equal prefix counts mean equal candidate counts; the deeper the prefix, the more of the validity rules
 * it has already applied, and the closer an equal split of prefixes comes to an equal split of valid configs
 * (at the full depth a prefix is a row, and the split is exact). The depth is the deepest whose prefixes number at
 * most SHARD_PREFIX_BUDGET, found by one walk that stops descending once a level exceeds the budget, so finding a
 * shard costs at most about levels x budget steps whatever the grid's size, and a shard then walks only its own
 * sub-trees (plus the prefixes before them).
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

/** Most prefixes the split may number: ~0.1 s of walking on this project's 2-core machine. */
export const SHARD_PREFIX_BUDGET = 1 << 19;

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

/** The span of shard `index` of `count`: equal runs of the deepest prefixes within the budget. */
export function shardSpan(plan: GridPlan, shard: ShardSpec, budget = SHARD_PREFIX_BUDGET): GridSpan {
  const counts = prefixCounts(plan, budget);
  const depth = counts.length - 1;
  const total = counts[depth];
  return {
    depth,
    first: Math.floor((shard.index * total) / shard.count),
    end: Math.floor(((shard.index + 1) * total) / shard.count),
  };
}
