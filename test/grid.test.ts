import { describe, expect, it } from 'vitest';
import { prepareSweep } from '../src/index.js';
import type { PreparedSweep } from '../src/sweep.js';
import { fixture } from './helpers.js';

/** Row counts of the PoC's own CSVs (its default search space). */
const POC_COUNTS: Array<[string, number]> = [
  ['llama3.1-8b.yaml', 5760],
  ['llama3.1-70b.yaml', 5760],
  ['llama3.1-405b.yaml', 2880],
  ['Grok1.yaml', 17336],
];

const prepared = new Map<string, PreparedSweep>();
function prepare(name: string): PreparedSweep {
  if (!prepared.has(name)) prepared.set(name, prepareSweep({ model: fixture(name), formula: 'poc' }));
  return prepared.get(name)!;
}

/** All rows of a grid, as arrays of column values, read in chunks of `chunkRows`; checks each chunk's shape. */
function rows(sweep: PreparedSweep, chunkRows: number): number[][] {
  const out: number[][] = [];
  const problems: string[] = [];
  let expectedOffset = 0;
  for (const chunk of sweep.grid.chunks(chunkRows)) {
    // Plain checks here (an expect() per chunk costs too much with 17,000 chunks of one row).
    if (chunk.length < 1 || chunk.length > chunkRows) problems.push(`chunk at ${chunk.offset}: length ${chunk.length}`);
    if (chunk.offset !== expectedOffset) problems.push(`chunk at ${chunk.offset}: expected offset ${expectedOffset}`);
    if (chunk.columns.length !== sweep.grid.columns.length) problems.push(`chunk at ${chunk.offset}: column count`);
    if (chunk.columns.some((column) => column.length !== chunk.length)) problems.push(`chunk at ${chunk.offset}: column length`);
    for (let r = 0; r < chunk.length; r++) out.push(chunk.columns.map((column) => column[r]));
    expectedOffset += chunk.length;
  }
  expect(problems.slice(0, 5)).toEqual([]);
  return out;
}

describe('grid row counts with the PoC default space', () => {
  for (const [name, count] of POC_COUNTS) {
    it(`${name}: ${count} rows`, () => {
      expect(prepare(name).grid.count()).toBe(count);
    });
  }

  it('candidateCount is the size of the cross product', () => {
    // 12 ngpus x 4 tp x 5 pp x 1 ep x 4 cp x 4 strategies x 3 mbs
    expect(prepare('llama3.1-8b.yaml').grid.candidateCount()).toBe(12 * 4 * 5 * 1 * 4 * 4 * 3);
    // Grok-1 has 8 experts: ep in 1, 2, 4, 8.
    expect(prepare('Grok1.yaml').grid.candidateCount()).toBe(12 * 4 * 5 * 4 * 4 * 4 * 3);
  });

  it('the columns are those of the PoC, in order', () => {
    expect(prepare('llama3.1-8b.yaml').grid.columns.map((column) => column.name)).toEqual([
      'ngpus',
      'TP',
      'PP',
      'EP',
      'CP',
      'DP',
      'sub_seq_length',
      'micro_batch_size',
      'data_parallel_sharding_strategy',
    ]);
  });
});

describe('chunking', () => {
  for (const name of ['Grok1.yaml', 'llama3.1-405b.yaml']) {
    it(`${name}: chunks of 1, 7, 1000 and 65536 give the same rows in the same order`, () => {
      const sweep = prepare(name);
      const flat = (size: number) => Int32Array.from(rows(sweep, size).flat());
      const reference = flat(1000);
      expect(reference.length).toBe(sweep.grid.count() * sweep.grid.columns.length);
      for (const size of [1, 7, 65536]) {
        const other = flat(size);
        expect(other.length, `chunks of ${size}`).toBe(reference.length);
        const firstDifference = other.findIndex((value, i) => value !== reference[i]);
        expect(firstDifference, `chunks of ${size}: first differing cell`).toBe(-1);
      }
    });
  }

  it('chunk sizes below 1 are refused', () => {
    expect(() => prepare('llama3.1-8b.yaml').grid.chunks(0).next()).toThrow();
  });
});

describe('every row satisfies the PoC rules', () => {
  for (const [name] of POC_COUNTS) {
    it(name, () => {
      const sweep = prepare(name);
      const { model } = sweep.config;
      const experts = model.moe?.num_experts ?? 0;
      const index = (column: string) => sweep.grid.columnIndex(column);
      const [NGPUS, TP, PP, EP, CP, DP, SUB_SEQ, MBS, ZERO] = [
        'ngpus',
        'TP',
        'PP',
        'EP',
        'CP',
        'DP',
        'sub_seq_length',
        'micro_batch_size',
        'data_parallel_sharding_strategy',
      ].map(index);
      const bad: string[] = [];
      for (const row of rows(sweep, 4096)) {
        const why: string[] = [];
        if (row[NGPUS] !== row[TP] * row[PP] * row[CP] * row[DP]) why.push('ngpus != TP*PP*CP*DP');
        if (model.num_layers % row[PP] !== 0) why.push('layers % PP');
        if (row[DP] < 1 || row[DP] % row[EP] !== 0) why.push('DP % EP');
        if (model.global_batch_size % (row[DP] * row[MBS]) !== 0) why.push('gbs % (DP*mbs)');
        if (model.seq_length % row[CP] !== 0 || row[SUB_SEQ] !== model.seq_length / row[CP]) why.push('seq / CP');
        if (experts > 0 ? experts % row[EP] !== 0 : row[EP] !== 1) why.push('experts % EP');
        if (row[ZERO] < 0 || row[ZERO] > 3) why.push('strategy index');
        if (why.length > 0 && bad.length < 5) bad.push(`${row.join(',')}: ${why.join('; ')}`);
      }
      expect(bad).toEqual([]);
    });
  }

  it('no valid row is missing: a brute-force walk in the PoC loop order gives the same rows', () => {
    for (const name of ['Grok1.yaml', 'llama3.1-70b.yaml']) {
      const sweep = prepare(name);
      const { model } = sweep.config;
      const experts = model.moe?.num_experts ?? 0;
      const values = (key: Parameters<typeof sweep.space.get>[0]) => sweep.space.get(key)!.values;
      const expected: number[][] = [];
      // The PoC's nested loops: ngpus, tp, pp, ep, cp, then strategy, then mbs.
      for (const ngpus of values('ngpus_range'))
        for (const tp of values('tp_range'))
          for (const pp of values('pp_range'))
            for (const ep of values('ep_range'))
              for (const cp of values('cp_range')) {
                if (model.num_layers % pp !== 0 || ngpus % (tp * pp * cp) !== 0) continue;
                if (model.seq_length % cp !== 0 || (experts > 0 && experts % ep !== 0)) continue;
                const dp = ngpus / (tp * pp * cp);
                if (dp % ep !== 0) continue;
                for (const zero of values('shard_strategys'))
                  for (const mbs of values('mbs_range')) {
                    if (model.global_batch_size % (dp * mbs) !== 0) continue;
                    expected.push([ngpus, tp, pp, ep, cp, dp, model.seq_length / cp, mbs, zero]);
                  }
              }
      expect(rows(sweep, 1 << 16), name).toEqual(expected);
    }
  });
});
