/**
 * The CPU engine's memoized evaluation (terms shared within a layout class computed once, src/engine/cpu/memo.ts)
 * against the formula's own row-by-row kernel: every computed column must be bit-identical, on grids that vary
 * every dimension the memo keys on or leaves to the row.
 */
import { describe, expect, it } from 'vitest';
import { CpuEngine, evaluateChunkOnCpu } from '../src/engine/cpu/cpu.js';
import { LAYOUT_KEY, PACE_CACHE_SLOTS, PACE_FREE, PACE_KEY, setPaceCacheCapacity } from '../src/engine/cpu/memo.js';
import { emptyRow, rowAt, unpack } from '../src/formulas/full.js';
import type { GridChunk } from '../src/grid/grid.js';
import { FULL_INPUTS, step_pace } from '../src/model.js';
import { prepareSweep, sweep, SweepOptions } from '../src/sweep.js';

const SWEEPS: Array<[string, SweepOptions]> = [
  // Dense GQA: every schedule, VPP, CP, SP, all ZeRO stages, grad_reduce and reshard, recompute, offload.
  ['Llama 3.1 8B, 8 and 24 GPUs, default grid', { model: 'llama3.1-8b', search: { ngpus_range: [8, 24] } }],
  // MoE with EP and expert-TP, FP8, all-gather CP, no TP overlap.
  [
    'Mixtral 8x7B, 16 GPUs, FP8, all-gather CP',
    {
      model: 'mixtral-8x7b',
      search: { ngpus_range: [16], mbs_range: [1, 2] },
      overrides: ['trainer.fp8=true', 'trainer.cp_comm_type=all_gather', 'trainer.tp_comm_overlap=false'],
    },
  ],
  // MLA, MTP, dense first layers, uneven interleaved chunks, DualPipe, overlapped all-to-all.
  [
    'DeepSeek-V3, 256 GPUs, PP4/8 x EP8/64',
    {
      model: 'deepseek-v3',
      search: { ngpus_range: [256], pp_range: [4, 8], ep_range: [8, 64], cp_range: [1], tp_range: [1, 2] },
      overrides: ['trainer.moe_a2a_overlap=true'],
    },
  ],
  // HSDP: ZeRO sharded within dp / dp_replicas ranks; classes that differ only in the replicas share nothing.
  [
    'Llama 3.1 8B, 32 GPUs, dp_replicas 1, 2, 4',
    { model: 'llama3.1-8b', search: { ngpus_range: [32], dp_replicas_range: [1, 2, 4], pp_range: [1, 2, 4], cp_range: [1, 2] } },
  ],
  // Several global batches: classes that differ only in the batch share their rows' paces (across chunks too).
  [
    'Llama 3.1 8B, 32 GPUs, four global batches',
    { model: 'llama3.1-8b', search: { ngpus_range: [32], gbs_range: [128, 256, 512, 1024], pp_range: [1, 2, 4], vpp_range: [1, 2] } },
  ],
  // Learned positions and no flash attention: the plain attention core's GEMMs.
  [
    'GPT-3 175B, 96 GPUs, no flash attention',
    { model: 'gpt3-175b', search: { ngpus_range: [96], mbs_range: [1, 2], tp_range: [4, 8] }, overrides: ['trainer.flash_attention=false'] },
  ],
];

/** Rows per chunk: small and odd, so that layout classes straddle chunk boundaries. */
const CHUNK_ROWS = 4099;

function distinct(chunks: GridChunk[], name: string): number {
  const column = chunks[0].columnNames.indexOf(name);
  const values = new Set<number>();
  for (const chunk of chunks) for (const value of chunk.columns[column]) values.add(value);
  return values.size;
}

describe('CPU engine: memoized evaluation equals row-by-row evaluation', () => {
  it('keys the memo on the layout, and leaves out only what the grid varies within a layout', () => {
    for (const name of ['seq_length', 'tp', 'pp', 'vpp', 'schedule', 'cp', 'ep', 'etp', 'dp', 'dp_replicas', 'mbs', 'num_microbatches']) {
      expect(LAYOUT_KEY).toContain(name);
    }
    const perRow = FULL_INPUTS.filter((name) => !LAYOUT_KEY.includes(name));
    expect([...perRow].sort()).toEqual(['global_batch_size', 'grad_reduce', 'ngpus', 'offload', 'recompute', 'reshard', 'sp', 'zero']);
  });

  for (const [label, options] of SWEEPS) {
    it(label, () => {
      const prepared = prepareSweep(options);
      const chunks = [...prepared.grid.chunks(CHUNK_ROWS)];
      // The grid varies what the memo must tell apart (within a class) and what it must forget (between classes).
      for (const name of ['zero', 'recompute', 'offload', 'grad_reduce', 'reshard', 'pp', 'tp', 'mbs']) {
        expect(distinct(chunks, name), name).toBeGreaterThan(1);
      }
      if (options.search?.dp_replicas_range) expect(distinct(chunks, 'dp_replicas')).toBeGreaterThan(1);
      let rows = 0;
      for (const chunk of chunks) {
        const memo = evaluateChunkOnCpu(prepared.formula, prepared.constants, chunk, { memo: true });
        const direct = evaluateChunkOnCpu(prepared.formula, prepared.constants, chunk, { memo: false });
        prepared.formula.outputs.forEach((name, j) => {
          const a = memo.computed[j] as Float64Array;
          const b = direct.computed[j] as Float64Array;
          // Bit for bit: the same bytes (NaN and -0 included).
          const same = Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
          if (!same) {
            const row = a.findIndex((value, i) => !Object.is(value, b[i]));
            expect.fail(`${name}: row ${chunk.offset + row} memo ${a[row]} vs direct ${b[row]}`);
          }
        });
        rows += chunk.length;
      }
      expect(rows).toBeGreaterThan(1000);
    });
  }
});

describe('CPU engine: the step pace is shared across global batches', () => {
  it('reads none of the columns the pace key leaves out', () => {
    // MoE (EP, expert-TP, expert-DP), CP, PP with both batches reachable by most layouts.
    const prepared = prepareSweep({
      model: 'mixtral-8x7b',
      search: { ngpus_range: [16], gbs_range: [256, 1024], pp_range: [1, 2], ep_range: [1, 8], etp_range: [1, 2], cp_range: [1, 2], tp_range: [1, 2, 4] },
    });
    const c = unpack(prepared.constants);
    let checked = 0;
    const paceLayouts = new Set<string>();
    const classes = new Set<string>();
    for (const chunk of prepared.grid.chunks(4096)) {
      const inputs = FULL_INPUTS.map((name) => chunk.columns[chunk.columnNames.indexOf(name)]);
      for (let i = 0; i < chunk.length; i += 11) {
        const row = rowAt(inputs, i, emptyRow());
        const fields = row as unknown as Record<string, number>;
        paceLayouts.add(PACE_KEY.map((name) => fields[name]).join(','));
        classes.add(LAYOUT_KEY.map((name) => fields[name]).join(','));
        const pace = step_pace(c, row);
        // Other values of the free columns (not even valid ones): the pace must not move by a bit.
        for (const name of PACE_FREE) fields[name] = fields[name] * 3 + 1;
        const moved = step_pace(c, row);
        for (const part of ['slowest', 'tail'] as const) {
          for (const [field, value] of Object.entries(pace[part])) {
            expect(Object.is((moved[part] as unknown as Record<string, number>)[field], value), `${part}.${field}`).toBe(true);
          }
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
    // The grid has classes that share a pace layout, which is what the pace cache reuses.
    expect(classes.size).toBeGreaterThan(paceLayouts.size);
  });
});

describe('CPU engine: a pace cache that fills', () => {
  it('clears and recomputes, with the same results', () => {
    const prepared = prepareSweep(SWEEPS.find(([label]) => label.includes('four global batches'))![1]);
    // A few layouts' worth: the cache clears many times within the grid, mid-chunk.
    setPaceCacheCapacity(300);
    try {
      for (const chunk of prepared.grid.chunks(CHUNK_ROWS)) {
        const memo = evaluateChunkOnCpu(prepared.formula, prepared.constants, chunk, { memo: true });
        const direct = evaluateChunkOnCpu(prepared.formula, prepared.constants, chunk, { memo: false });
        memo.computed.forEach((column, j) => {
          const row = (column as Float64Array).findIndex((value, i) => !Object.is(value, direct.computed[j][i]));
          expect(row, prepared.formula.outputs[j]).toBe(-1);
        });
      }
    } finally {
      setPaceCacheCapacity(PACE_CACHE_SLOTS);
    }
  });
});

describe('CPU engine: output columns handed back are reused, never while held', () => {
  const options: SweepOptions = { model: 'llama3.1-8b', search: { ngpus_range: [8], mbs_range: [1, 2] } };

  it('writes the next chunk into released columns, with the same results as fresh ones', async () => {
    const prepared = prepareSweep(options);
    const chunks = [...prepared.grid.chunks(1000)].slice(0, 6);
    const engine = new CpuEngine();
    const buffers = new Set<ArrayBufferLike>();
    let k = 0;
    for await (const evaluated of engine.evaluate(prepared.formula, prepared.constants, chunks)) {
      const fresh = evaluateChunkOnCpu(prepared.formula, prepared.constants, chunks[k++]);
      expect(evaluated.computed).toEqual(fresh.computed);
      buffers.add(evaluated.computed[0].buffer);
      evaluated.release!();
    }
    expect(k).toBe(6);
    expect(buffers.size).toBe(1);
  });

  it('keeps every chunk a consumer does not release', async () => {
    const prepared = prepareSweep(options);
    const chunks = [...prepared.grid.chunks(1000)].slice(0, 6);
    const held = [];
    for await (const evaluated of new CpuEngine().evaluate(prepared.formula, prepared.constants, chunks)) held.push(evaluated);
    held.forEach((evaluated, k) => expect(evaluated.computed).toEqual(evaluateChunkOnCpu(prepared.formula, prepared.constants, chunks[k]).computed));
  });

  it('gives a sweep that keeps f64 batches (which hold the columns) every chunk as computed', async () => {
    const prepared = prepareSweep(options);
    const rows = prepared.grid.count();
    const { table } = await sweep({ ...options, engine: 'cpu', float64: true, chunkRows: 1000 });
    expect(table.numRows).toBe(rows);
    const expected = evaluateChunkOnCpu(prepared.formula, prepared.constants, prepared.grid.chunks(rows).next().value!);
    for (const [j, name] of ['step_time_s', 'total_gib', 'mfu'].map((name) => [prepared.formula.outputs.indexOf(name), name] as const)) {
      expect(Float64Array.from(table.getChild(name)!.toArray() as Float64Array)).toEqual(expected.computed[j]);
    }
  });
});
