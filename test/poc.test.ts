import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Table } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { sweep, sweepToFiles } from '../src/index.js';
import type { SweepOptions } from '../src/sweep.js';
import {
  cleanupTempDirs,
  expectCsvClose,
  fixture,
  fixtureCsv,
  makeTempDir,
  parseCsv,
  POC_STRING_COLUMNS,
  relativeDifference,
} from './helpers.js';

afterAll(cleanupTempDirs);

const LLAMA_405B = fixture('llama3.1-405b.yaml');

/** One row of a table as a plain object. */
function row(table: Table, index: number): Record<string, unknown> {
  return Object.fromEntries(table.schema.fields.map((field) => [field.name, table.getChild(field.name)!.get(index)]));
}

describe('known PoC rows', () => {
  it('LLaMA-3.1 405B on 8 GPUs, TP=PP=EP=CP=1, DP 8, seq 8192, mbs 1', async () => {
    const { table, stats } = await sweep({
      model: LLAMA_405B,
      formula: 'poc',
      engine: 'cpu',
      search: { ngpus_range: [8], tp_range: [1], pp_range: [1], cp_range: [1], mbs_range: [1] },
    });
    expect(stats.rows).toBe(4);
    expect(table.numRows).toBe(4);
    const rows = Array.from({ length: table.numRows }, (_, i) => row(table, i));
    expect(rows.map((r) => r.data_parallel_sharding_strategy)).toEqual([
      'NO_OP',
      'OPTIMIZER_STATES',
      'OPTIMIZER_STATES_AND_GRADS',
      'FULLY_SHARD',
    ]);
    const noOp = rows[0];
    expect(noOp).toMatchObject({
      name: 'LLaMA-3.1 405B',
      ngpus: 8,
      TP: 1,
      PP: 1,
      EP: 1,
      CP: 1,
      DP: 8,
      sub_seq_length: 8192,
      micro_batch_size: 1,
      num_of_micro_batches: 512,
      pipeline_parallelism_bubble_rate: 0,
    });
    expect(noOp.total_memory_gb).toBeCloseTo(7372.49, 2);
    expect(noOp.total_memory_gb).toBe(7372.48828125);
    expect(noOp.model_and_optimizer_states_memory_gb).toBeCloseTo(6803.58, 2);
    expect(noOp.activations_memory_gb).toBeCloseTo(568.91, 2);
    expect(noOp.cross_entropy_activation_memory_gb).toBe(9.78515625);
    expect(noOp.non_expert_parameters_m).toBe(387048);
    expect(noOp.expert_parameters_m).toBe(0);
    expect(noOp.token_imbalance_hypothesis).toBe(1);

    const fullyShard = rows[3];
    expect(fullyShard.total_memory_gb).toBeCloseTo(1324.86, 2);
    expect(fullyShard.model_and_optimizer_states_memory_gb).toBeCloseTo(755.95, 2);
    // Sharding changes model state, never activations.
    for (const r of rows) expect(r.activations_memory_gb).toBe(noOp.activations_memory_gb);
    // More sharding, less memory.
    const totals = rows.map((r) => r.total_memory_gb as number);
    expect([...totals].sort((a, b) => b - a)).toEqual(totals);
  });

  it('MoE: Grok-1 with EP 8 on 8 GPUs puts one expert per GPU', async () => {
    const { table } = await sweep({
      model: fixture('Grok1.yaml'),
      formula: 'poc',
      engine: 'cpu',
      search: { ngpus_range: [8], tp_range: [1], pp_range: [1], cp_range: [1], mbs_range: [1], shard_strategys: ['NO_OP'] },
    });
    const byEp = new Map(Array.from({ length: table.numRows }, (_, i) => row(table, i)).map((r) => [r.EP, r]));
    expect([...byEp.keys()]).toEqual([1, 2, 4, 8]);
    const ep1 = byEp.get(1)!.expert_parameters_m as number;
    const ep8 = byEp.get(8)!.expert_parameters_m as number;
    expect(ep1).toBeGreaterThan(0);
    expect(ep8 * 8).toBeCloseTo(ep1, 6);
    expect(byEp.get(8)!.non_expert_parameters_m).toBe(byEp.get(1)!.non_expert_parameters_m);
  });
});

/** The PoC's runs: fixture CSV, model file, overrides. */
const GOLDEN: Array<{ csv: string; yaml: string; overrides: string[] }> = [
  { csv: 'llama3.1-8b.csv.gz', yaml: 'llama3.1-8b.yaml', overrides: [] },
  { csv: 'llama3.1-70b.csv.gz', yaml: 'llama3.1-70b.yaml', overrides: [] },
  { csv: 'llama3.1-405b.csv.gz', yaml: 'llama3.1-405b.yaml', overrides: [] },
  { csv: 'Grok1.csv.gz', yaml: 'Grok1.yaml', overrides: [] },
  { csv: '405b-ngpus.csv.gz', yaml: 'llama3.1-405b.yaml', overrides: ['+ngpus_range=[8, 128, 1024, 10240]'] },
];

describe('the PoC CSVs, reproduced', () => {
  for (const { csv, yaml, overrides } of GOLDEN) {
    it(`${csv}: sweepToFiles gives the PoC's CSV (1e-9 per cell, and byte for byte)`, async () => {
      const expected = fixtureCsv(csv);
      const out = join(makeTempDir(), 'memory_estimation.csv');
      const options: SweepOptions = { model: fixture(yaml), overrides, formula: 'poc', engine: 'cpu' };
      const stats = await sweepToFiles(options, [out]);
      const actual = readFileSync(out, 'utf8');
      expect(stats.rows).toBe(parseCsv(expected).rows.length);
      expectCsvClose(actual, expected, 1e-9);
      expect(actual === expected, 'CSV is byte-identical to the PoC output').toBe(true);
    });
  }

  it('405b-ngpus.csv.gz: sweep() returns a table whose cells equal the PoC CSV within 1e-9', async () => {
    const expected = parseCsv(fixtureCsv('405b-ngpus.csv.gz'));
    const { table, stats } = await sweep({
      model: LLAMA_405B,
      formula: 'poc',
      overrides: ['+ngpus_range=[8, 128, 1024, 10240]'],
      engine: 'cpu',
      chunkRows: 100, // several record batches, one dictionary
    });
    expect(stats.rows).toBe(expected.rows.length);
    expect(table.numRows).toBe(expected.rows.length);
    expect(table.batches.length).toBeGreaterThan(1);
    expect(table.schema.fields.map((field) => field.name)).toEqual(expected.header);
    const mismatches: string[] = [];
    expected.header.forEach((name, c) => {
      const vector = table.getChild(name)!;
      const values: ArrayLike<unknown> = POC_STRING_COLUMNS.has(name)
        ? Array.from({ length: table.numRows }, (_, i) => vector.get(i))
        : (vector.toArray() as ArrayLike<number>);
      for (let r = 0; r < expected.rows.length && mismatches.length < 10; r++) {
        const cell = expected.rows[r][c];
        const value = values[r];
        const ok = POC_STRING_COLUMNS.has(name)
          ? value === cell
          : relativeDifference(value as number, Number(cell)) <= 1e-9;
        if (!ok) mismatches.push(`row ${r + 1} ${name}: ${String(value)} != ${cell}`);
      }
    });
    expect(mismatches).toEqual([]);
  });

  it('the chunk size does not change the CSV', async () => {
    const dir = makeTempDir();
    const options: SweepOptions = { formula: 'poc', model: LLAMA_405B, overrides: ['+ngpus_range=[8, 128, 1024, 10240]'], engine: 'cpu' };
    await sweepToFiles({ ...options, chunkRows: 7 }, [join(dir, 'a.csv')]);
    await sweepToFiles({ ...options, chunkRows: 1 }, [join(dir, 'b.csv')]);
    const expected = fixtureCsv('405b-ngpus.csv.gz');
    expect(readFileSync(join(dir, 'a.csv'), 'utf8') === expected).toBe(true);
    expect(readFileSync(join(dir, 'b.csv'), 'utf8') === expected).toBe(true);
  });
});
