import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { best, calibrate, check, EngineError, InputError, prepareSweep, sweep, sweepFileRuns, sweepStream, sweepToFiles, writeCalibrationDocs } from '../src/index.js';
import { gpuAvailable } from './gpu-support.js';
import { cleanupTempDirs, listDir, makeTempDir, REPO_ROOT } from './helpers.js';

afterAll(cleanupTempDirs);

const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');


const CONSUMER = `
import { best, check, explain, explainLaunch, launch, launchArgs, loadConfig, sweepFileRuns, sweepStream, sweepToFiles, InputError } from 'parasweep';
import type { Explanation, LaunchLayout, SweepOptions } from 'parasweep';

export async function main(signal: AbortSignal): Promise<number> {
  const options: SweepOptions = { model: 'llama3.1-8b', search: { ngpus_range: '8..64:*2' } };
  let rows = 0;
  for await (const batch of sweepStream({ ...options, signal })) rows += batch.numRows;
  const ranked = await best({ ...options, k: 3 });
  const top: number = ranked.groups[0].top[0].tokens_per_s;
  const report = await check({ ...options }).catch((e: unknown) => (e instanceof InputError ? e.field : String(e)));
  const flags: string[] = (await launch({ ...options, target: 'megatron' })).argv;
  const config = loadConfig('llama3.1-8b');
  const layout: LaunchLayout = { ngpus: 8, tp: 8, pp: 1, cp: 1, ep: 1, etp: 1, vpp: 1, schedule: '1f1b', zero: 1,
    sp: true, recompute: 'none', offload: 'none', mbs: 1, gbs: 64, seq_length: 8192 };
  const text: string = launchArgs({ ...config, layout }, 'torchtitan').text;
  await sweepToFiles(sweepFileRuns('mixtral-wide', { search: { ngpus_range: '64' } }), ['out.arrow']);
  const pinned = { ...options, search: { ngpus_range: 8, tp_range: 8, pp_range: 1, cp_range: 1, mbs_range: 1 } };
  const stages: Explanation['stages'] = explain(pinned).stages;
  const emitted: string = explainLaunch({ ...pinned, target: 'torchtitan' }).text;
  return stages.length + emitted.length + rows + top + flags.length + text.length + (typeof report === 'string' ? 0 : report.rows);
}
`;

describe('typings', () => {
  it('a consumer type-checks against dist/*.d.ts with skipLibCheck false and no @webgpu/types', () => {
    const dir = makeTempDir();
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(REPO_ROOT, join(dir, 'node_modules', 'parasweep'), 'dir');
    writeFileSync(join(dir, 'main.ts'), CONSUMER);
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2023', 'DOM'], strict: true,
        skipLibCheck: false, noEmit: true, types: [],
      },
      include: ['main.ts'],
    };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
    const result = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  }, 120_000);
});

// About 40 k rows (three GPU counts, no offload): several batches of 1000, several GPU counts for best.
const SMALL = { model: 'llama3.1-8b', search: { ngpus_range: '8..32:*2', tp_range: '1,2,4,8', offload_range: ['none'] }, engine: 'cpu' as const };

describe('sweepStream', () => {
  it('yields the rows sweep returns, batch by batch, and returns the stats', async () => {
    const { table } = await sweep(SMALL);
    let rows = 0;
    let batches = 0;
    const stream = sweepStream({ ...SMALL, chunkRows: 1000 });
    let next = await stream.next();
    for (; !next.done; next = await stream.next()) {
      rows += next.value.numRows;
      batches++;
    }
    expect(rows).toBe(table.numRows);
    expect(batches).toBeGreaterThan(1);
    expect(next.value.rows).toBe(rows);
    expect(next.value.engine).toMatch(/CPU/);
  });

  it('an AbortSignal stops it between chunks with the signal reason', async () => {
    const controller = new AbortController();
    let batches = 0;
    const run = async () => {
      for await (const _ of sweepStream({ ...SMALL, chunkRows: 100, signal: controller.signal })) {
        batches++;
        if (batches === 2) controller.abort(new Error('enough'));
      }
    };
    await expect(run()).rejects.toThrow('enough');
    expect(batches).toBe(2);
    const early = new AbortController();
    early.abort();
    await expect(sweepStream({ ...SMALL, signal: early.signal }).next()).rejects.toThrow(/abort/i);
  });

  it('aborting while a filter keeps nothing still stops it', async () => {
    const controller = new AbortController();
    let chunks = 0;
    const stream = sweepStream({
      ...SMALL,
      chunkRows: 50,
      where: 'total_gib < 0',
      signal: controller.signal,
      onProgress: () => {
        if (++chunks === 3) controller.abort();
      },
    });
    await expect(stream.next()).rejects.toThrow(/abort/i);
    expect(chunks).toBe(3);
  });
});

describe('library errors name option fields, not CLI flags', () => {
  const fieldOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(InputError);
      return (error as InputError).message;
    }
    throw new Error('expected an InputError');
  };
  it('model, headroom, search values, formula', () => {
    expect(fieldOf(() => prepareSweep({ model: 'nope' }))).toMatch(/^model: no bundled model named 'nope'/);
    expect(fieldOf(() => prepareSweep({ model: 'llama3.1-8b', headroom: 10 }))).toMatch(/^headroom: /);
    expect(fieldOf(() => prepareSweep({ model: 'llama3.1-8b', search: { tp_range: 0 } }))).toMatch(/^search\.tp_range: /);
    expect(fieldOf(() => prepareSweep({ model: 'llama3.1-8b', formula: 'nope' }))).toMatch(/^formula: /);
    expect(fieldOf(() => prepareSweep({ model: 'llama3.1-8b', formula: 'poc', fitsOnly: true }))).not.toMatch(/--/);
  });
  it('calibrate: the report, every family fitted, and the docs writer names its argument', () => {
    const { report, reports } = calibrate(false);
    expect(reports.map((r) => r.family)).toEqual(['a100', 'h100']);
    expect(report).toContain('### Mean absolute throughput error per source');
    const path = join(makeTempDir(), 'no-markers.md');
    writeFileSync(path, '# no markers\n');
    expect(fieldOf(() => writeCalibrationDocs(path, report))).toMatch(/^path: needs the markers/);
    expect(readFileSync(path, 'utf8')).toBe('# no markers\n');
  });
  it('async entry points too', async () => {
    const error = await sweepToFiles({ model: 'llama3.1-8b' }, [join(makeTempDir(), 'x.xlsx')]).catch((e: unknown) => e);
    expect((error as InputError).field).toBe('paths');
    const top = await sweep({ model: 'llama3.1-8b', top: { k: 0, by: 'mfu' }, engine: 'cpu' }).catch((e: unknown) => e);
    expect((top as InputError).message).toMatch(/^top\.k: /);
  });
});

describe('best and sweep files', () => {
  it('best gives, per GPU count, the fastest fitting configs and the Pareto front', async () => {
    const { groups, model, hardware, assumed } = await best({ ...SMALL, k: 3 });
    expect(model).toBe('LLaMA-3.1 8B');
    expect(hardware).toBe('h100-sxm-80gb');
    // What the CLI prints under each winner: the settings assumed and the model's held-out error.
    expect(assumed).toMatch(/tp_comm_overlap on, .*torch_compile off/);
    expect(groups.length).toBeGreaterThan(0);
    for (const group of groups) {
      expect(group.model_error).toMatch(/^model error: \d+\.\d% mean on h100-(dense|long-context) runs/);
      expect(group.top.length).toBeLessThanOrEqual(3);
      const speeds = group.top.map((row) => row.tokens_per_s);
      expect([...speeds].sort((a, b) => b - a)).toEqual(speeds);
      expect(group.front.length).toBeGreaterThan(0);
    }
  });

  it('sweepFileRuns: one run per hardware of the file, adjusted, into one output', async () => {
    // EP and ETP narrowed: 81 k rows per hardware instead of 643 k; still more than five that fit on each.
    const runs = sweepFileRuns('mixtral-wide', { search: { ngpus_range: '64', seq_range: 4096, ep_range: 8, etp_range: '1,2' }, engine: 'cpu' });
    expect(runs.map((run) => run.hardware)).toEqual(['h100-sxm-80gb', 'h200-141gb']);
    expect(runs[0].top).toEqual({ k: 5, by: 'tokens_per_s', per: 'ngpus', order: undefined });
    const dir = makeTempDir();
    const stats = await sweepToFiles(runs, [join(dir, 'wide.arrow')]);
    expect(stats.rows).toBe(10); // top 5 per GPU count, for each of the two GPUs
    expect(listDir(dir)).toEqual(['wide.arrow']);
    expect(() => sweepFileRuns('no-such-sweep')).toThrow(/^sweep: no bundled sweeps named/);
  });
});

describe('check', () => {
  it('compares the engines from the library, or says there is no GPU', async () => {
    const options = { model: 'llama3.1-8b', search: { ngpus_range: '8,64' } };
    if (await gpuAvailable()) {
      const report = await check(options);
      expect(report.ok).toBe(true);
      expect(report.rows).toBeGreaterThan(0);
    } else {
      await expect(check(options)).rejects.toBeInstanceOf(EngineError);
    }
  }, 60_000);
});
