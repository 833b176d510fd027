/**
 * The WebGPU engine's mechanics on a real adapter (a software one in CI): chunking at and around the buffer
 * bound, more than 65,535 workgroups, empty grids, CPU fallback on a lost device, and agreement with the CPU.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { checkEngines, DEFAULT_RTOL } from '../src/analysis/check.js';
import { CpuEngine } from '../src/engine/cpu/cpu.js';
import { dispatchShape, GpuEngine } from '../src/engine/gpu/gpu.js';
import { termsBlockWords } from '../src/engine/gpu/shader.js';
import type { EvaluatedChunk } from '../src/engine/types.js';
import type { Formula } from '../src/formulas/types.js';
import type { GridChunk } from '../src/grid/grid.js';
import { prepareSweep, PreparedSweep } from '../src/sweep.js';
import { gpuAvailable, openGpu } from './gpu-support.js';
import { fixture, REPO_ROOT } from './helpers.js';
import { spawnSync } from 'node:child_process';

const available = await gpuAvailable();

/** The first `n` rows of a prepared sweep's grid, cut into chunks of `chunkRows`. */
function rows(prepared: PreparedSweep, n: number, chunkRows: number): GridChunk[] {
  const all = prepared.grid.chunks(Math.max(n, 1)).next().value as GridChunk;
  const take = Math.min(n, all.length);
  const chunks: GridChunk[] = [];
  for (let start = 0; start < take; start += chunkRows) {
    const end = Math.min(take, start + chunkRows);
    chunks.push({
      length: end - start,
      columns: all.columns.map((column) => column.subarray(start, end)),
      offset: start,
      columnNames: all.columnNames,
    });
  }
  return chunks;
}

async function collect(iterator: AsyncGenerator<EvaluatedChunk>): Promise<EvaluatedChunk[]> {
  const out: EvaluatedChunk[] = [];
  for await (const chunk of iterator) out.push(chunk);
  return out;
}

/**
 * Compares GPU and CPU results row by row within the f32 tolerance (time components relative to the step time,
 * as `parasweep check` judges them); returns the rows compared.
 */
function expectAgreement(
  gpu: EvaluatedChunk[],
  cpu: EvaluatedChunk[],
  formula: Formula,
  rtol = DEFAULT_RTOL,
  onBoundary: (chunk: number, row: number) => boolean = () => false,
): number {
  expect(gpu.length).toBe(cpu.length);
  const scaleOf = formula.outputs.map((name) => formula.outputs.indexOf(formula.errorScale?.[name] ?? name));
  let compared = 0;
  let worst = { excess: 0, where: '' };
  gpu.forEach((chunk, c) => {
    expect(chunk.grid.length).toBe(cpu[c].grid.length);
    chunk.computed.forEach((column, j) => {
      const want = cpu[c].computed[j];
      const scale = cpu[c].computed[scaleOf[j]];
      for (let i = 0; i < column.length; i++) {
        const difference = Math.abs(column[i] - want[i]);
        if (difference !== 0 && onBoundary(c, i)) continue;
        const excess = difference === 0 ? 0 : difference / (rtol * Math.max(Math.abs(want[i]), Math.abs(scale[i])));
        if (!(excess <= 1) && !(excess <= worst.excess)) {
          worst = { excess, where: `${formula.outputs[j]} row ${i}: gpu ${column[i]} cpu ${want[i]}` };
        }
      }
    });
    compared += chunk.grid.length;
  });
  expect(worst.where).toBe('');
  return compared;
}

describe('2D dispatch shape', () => {
  it('stays one-dimensional up to 65,535 workgroups and splits beyond', () => {
    expect(dispatchShape(1)).toEqual([1, 1]);
    expect(dispatchShape(65535)).toEqual([65535, 1]);
    const [x, y] = dispatchShape(65536);
    expect(y).toBe(2);
    expect(x * y).toBeGreaterThanOrEqual(65536);
    expect(x).toBeLessThanOrEqual(65535);
    const [bx, by] = dispatchShape(10_000_000);
    expect(bx).toBeLessThanOrEqual(65535);
    expect(bx * by).toBeGreaterThanOrEqual(10_000_000);
  });
});

describe.runIf(available)('GPU engine on a real adapter', () => {
  const engines: GpuEngine[] = [];
  afterAll(async () => {
    for (const engine of engines) await engine.dispose();
  });
  async function engine(options: Parameters<typeof GpuEngine.create>[0] = {}): Promise<GpuEngine> {
    const opened = await openGpu(options);
    engines.push(opened);
    return opened;
  }

  const poc = prepareSweep({ model: fixture('llama3.1-405b.yaml'), formula: 'poc' });
  const full = prepareSweep({ model: 'llama3.1-405b' });
  const cpu = new CpuEngine();

  it('names the adapter it runs on', async () => {
    const gpu = await engine();
    expect(gpu.description).toMatch(/^WebGPU: \S/);
  });

  // A buffer bound that makes the chunk exactly 100 rows for the full formula's widest buffer.
  const width = Math.max(full.grid.columns.length, full.formula.outputs.length + 1);
  const hundredRows = 100 * 4 * width;

  for (const [label, n] of [
    ['a single config', 1],
    ['exactly one chunk', 100],
    ['one chunk minus one', 99],
    ['one chunk plus one', 101],
    ['many chunks', 1234],
  ] as const) {
    it(`agrees with the CPU on ${label} (${n} rows, chunks of 100)`, async () => {
      const gpu = await engine({ maxBufferBytes: hundredRows });
      expect(gpu.chunkRows(full.formula, full.grid.columns.length)).toBe(100);
      const chunks = rows(full, n, 100);
      const got = await collect(gpu.evaluate(full.formula, full.constants, chunks));
      const want = await collect(cpu.evaluate(full.formula, full.constants, chunks));
      expect(expectAgreement(got, want, full.formula)).toBe(n);
    });
  }

  it('splits a chunk into several per-class table dispatches, and computes classes too deep for the table directly', async () => {
    // Every 97th row of the grid's first 300,000: nearly every row its own layout class, pipelines 1 to 16 deep.
    const all = full.grid.chunks(300_000).next().value as GridChunk;
    const picks = Array.from({ length: Math.floor(all.length / 97) }, (_, k) => k * 97);
    const sampled: GridChunk = {
      length: picks.length,
      columns: all.columns.map((column) => Int32Array.from(picks, (i) => column[i])),
      offset: 0,
      columnNames: all.columnNames,
    };
    const pp = sampled.columns[sampled.columnNames.indexOf('pp')];
    const tableWords = (depth: number) => 6 * termsBlockWords(depth);
    // Chunks of 100 rows leave 100 x (35 - 23) words for tables: a 9-deep class's table (1,212 words) does not fit.
    expect(tableWords(9)).toBeGreaterThan(100 * (width - full.grid.columns.length - 1));
    expect(pp.some((depth) => depth >= 9) && pp.some((depth) => depth <= 2)).toBe(true);
    for (const chunkRows of [100, 2000]) {
      const gpu = await engine({ maxBufferBytes: chunkRows * 4 * width });
      const chunks = rows({ ...full, grid: { ...full.grid, chunks: () => [sampled][Symbol.iterator]() } } as PreparedSweep, picks.length, chunkRows);
      // Chunks of 2,000 rows: their classes' tables take several times the space, so several dispatches each.
      if (chunkRows === 2000) {
        const words = Array.from(pp.subarray(0, 2000), tableWords).reduce((a, b) => a + b, 0);
        expect(words).toBeGreaterThan(3 * 2000 * (width - full.grid.columns.length - 1));
      }
      const got = await collect(gpu.evaluate(full.formula, full.constants, chunks));
      const want = await collect(cpu.evaluate(full.formula, full.constants, chunks));
      const onBoundary = (c: number, i: number) => {
        const inputs = full.formula.inputs.map((name) => chunks[c].columns[chunks[c].columnNames.indexOf(name)]);
        return full.formula.nearTie!(full.constants, inputs, i, DEFAULT_RTOL);
      };
      expect(expectAgreement(got, want, full.formula, DEFAULT_RTOL, onBoundary)).toBe(picks.length);
    }
  });

  it('dispatches more than 65,535 workgroups (2D index) and gets every row right', async () => {
    // Workgroups of one invocation: 70,000 rows need 70,000 workgroups, more than one dimension holds.
    const gpu = await engine({ workgroupSize: 1, maxBufferBytes: 70_000 * 4 * width });
    const chunks = rows(full, 70_000, 70_000);
    expect(chunks).toHaveLength(1);
    expect(chunks[0].length).toBe(70_000);
    expect(dispatchShape(chunks[0].length)[1]).toBe(2);
    const got = await collect(gpu.evaluate(full.formula, full.constants, chunks));
    const want = await collect(cpu.evaluate(full.formula, full.constants, chunks));
    // Rows on a decision boundary (two stages as heavy within rtol, as parasweep check excuses them) may differ.
    const inputs = full.formula.inputs.map((name) => chunks[0].columns[chunks[0].columnNames.indexOf(name)]);
    const onBoundary = (_: number, i: number) => full.formula.nearTie!(full.constants, inputs, i, DEFAULT_RTOL);
    expect(expectAgreement(got, want, full.formula, DEFAULT_RTOL, onBoundary)).toBe(70_000);
  });

  it('yields nothing for an empty grid, and an empty chunk for a chunk of zero rows', async () => {
    const gpu = await engine();
    expect(await collect(gpu.evaluate(full.formula, full.constants, []))).toEqual([]);
    const empty = rows(full, 0, 10);
    expect(empty).toEqual([]);
    const zero: GridChunk = {
      length: 0,
      columns: full.grid.columns.map(() => new Int32Array(0)),
      offset: 0,
      columnNames: full.grid.columns.map((column) => column.name),
    };
    const out = await collect(gpu.evaluate(full.formula, full.constants, [zero]));
    expect(out).toHaveLength(1);
    expect(out[0].grid.length).toBe(0);
    expect(out[0].computed.every((column) => column.length === 0)).toBe(true);
  });

  it('reuses its bounded buffers: many chunks through a 16 KiB bound', async () => {
    const gpu = await engine({ maxBufferBytes: 16 * 1024 });
    const chunkRows = gpu.chunkRows(poc.formula, poc.grid.columns.length);
    const got = await collect(gpu.evaluate(poc.formula, poc.constants, poc.grid.chunks(chunkRows)));
    const want = await collect(cpu.evaluate(poc.formula, poc.constants, poc.grid.chunks(chunkRows)));
    expect(got.length).toBeGreaterThan(3);
    expect(expectAgreement(got, want, poc.formula)).toBe(poc.grid.count());
  });

  it('falls back to the CPU without losing a row when the device is lost mid-sweep', async () => {
    const notices: string[] = [];
    const gpu = await GpuEngine.create({ maxBufferBytes: hundredRows, fallbackToCpu: true, notice: (line) => notices.push(line) });
    expect(gpu).toBeDefined();
    const chunks = rows(full, 1000, 100);
    const got: EvaluatedChunk[] = [];
    for await (const chunk of gpu!.evaluate(full.formula, full.constants, chunks)) {
      got.push(chunk);
      // Lose the device after the first chunk came back.
      if (got.length === 1) (gpu as unknown as { gpu: { device: GPUDevice } }).gpu.device.destroy();
    }
    await gpu!.dispose();
    const want = await collect(cpu.evaluate(full.formula, full.constants, chunks));
    expect(notices.join('\n')).toMatch(/continuing on the CPU/);
    expect(expectAgreement(got, want, full.formula)).toBe(1000);
    expect(got.every((chunk) => chunk.computed.every((column) => column instanceof Float32Array))).toBe(true);
  });

  it('check passes on the PoC formula and fails on a tolerance below f32 precision', async () => {
    const report = await checkEngines({ model: fixture('llama3.1-405b.yaml'), formula: 'poc' });
    expect(report.ok).toBe(true);
    expect(report.gridColumnsIdentical).toBe(true);
    expect(report.rows).toBe(2880);
    const strict = await checkEngines({ model: fixture('llama3.1-405b.yaml'), formula: 'poc', rtol: 1e-12 });
    expect(strict.ok).toBe(false);
    expect(strict.columns.some((column) => !column.ok)).toBe(true);
  });

  it('survives garbage collection between chunks (the GPU instance is held until its device is destroyed)', () => {
    // A collected create() result made dawn.node poll a freed instance: segfaults and mutex aborts. Forcing GC
    // after every chunk reproduced it every time. 88 k rows through a 64 KiB bound: about as many chunks (and
    // collections) as the 344 k rows through 256 KiB this test first used. dist/ is built by test/global-setup.ts.
    const script = `
      const { GpuEngine } = await import('./dist/engine/gpu/gpu.js');
      const { prepareSweep } = await import('./dist/sweep.js');
      const p = prepareSweep({ model: 'llama3.1-70b', search: { ngpus_range: [64] } });
      const engine = await GpuEngine.create({ maxBufferBytes: 64 * 1024 });
      let rows = 0;
      for await (const c of engine.evaluate(p.formula, p.constants, p.grid.chunks(engine.chunkRows(p.formula, p.grid.columns.length)))) {
        rows += c.grid.length;
        globalThis.gc();
      }
      await engine.dispose();
      console.log('rows=' + rows);`;
    for (let run = 0; run < 3; run++) {
      const result = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect(result.signal).toBeNull();
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/rows=\d+/);
    }
  });

  it('the check command exits 0 within tolerance, 1 beyond it, 2 on a bad tolerance', () => {
    const check = (...args: string[]) =>
      spawnSync('node', ['bin/parasweep.js', 'check', '--model', fixture('llama3.1-405b.yaml'), '--formula', 'poc', ...args], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      });
    const ok = check();
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/check passed/);
    const strict = check('--rtol', '1e-12');
    expect(strict.status).toBe(1);
    expect(strict.stdout).toMatch(/FAIL/);
    const bad = check('--rtol', '0');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--rtol: must be between 0 and 1/);
  });

  it('check rejects a tolerance outside (0, 1)', async () => {
    await expect(checkEngines({ model: 'llama3.1-8b', rtol: 0 })).rejects.toThrow(/--rtol/);
    await expect(checkEngines({ model: 'llama3.1-8b', rtol: 2 })).rejects.toThrow(/--rtol/);
  });
});
