/**
 * Analyst-ready outputs: one schema from both engines (concatenated in polars and DuckDB), exact counts as Int64,
 * provenance and units in the metadata (Arrow and Parquet), `-o -` on stdout, no default file outside PoC mode,
 * --float64, sweep --pareto and `best` options.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataType, Table, tableFromIPC, Type } from 'apache-arrow';
import { DuckDBInstance } from '@duckdb/node-api';
import pl from 'nodejs-polars';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCalibration } from '../src/config/calibration.js';
import { FULL_CONSTANTS, model_params, FullConstants } from '../src/model.js';
import { prepareSweep, sweep, sweepToFiles, SweepOptions } from '../src/sweep.js';
import { BEST_WIDTH, formatTable, RankedRow } from '../src/results/rank.js';
import { gpuAvailable } from './gpu-support.js';
import { cleanupTempDirs, listDir, makeTempDir, REPO_ROOT } from './helpers.js';

const available = await gpuAvailable();

function cli(args: string[], cwd = REPO_ROOT) {
  const result = spawnSync('node', [join(REPO_ROOT, 'bin/parasweep.js'), ...args], { cwd, encoding: 'buffer', maxBuffer: 1 << 28 });
  return { status: result.status, stdout: result.stdout, text: result.stdout.toString('utf8'), stderr: result.stderr.toString('utf8') };
}

/** DeepSeek-V3: 671B parameters, far past f32's 2^24 exact integers, and MoE, so every count column is exercised. */
const DEEPSEEK: SweepOptions = { model: 'deepseek-v3', search: { ngpus_range: [256], tp_range: [8], pp_range: [8], cp_range: [1], ep_range: [8, 16] } };

const typeText = (type: DataType) => (DataType.isDictionary(type) ? `Dictionary<${type.dictionary}>` : String(type));

afterAll(cleanupTempDirs);


/**
 * Parameter counts recomputed exactly for GPU rows equal the CPU's. params_gpu is the heaviest rank's: where the
 * engines' f32 and f64 memory totals tie between two ranks (first and last differ by a norm's parameters), each may
 * name another heaviest rank, as `parasweep check` excuses; those rows stay rare, and every other row is identical.
 */
function expectExactCounts(gpu: Table, cpu: Table): void {
  for (const name of ['params_total', 'params_active']) {
    expect(gpu.getChild(name)!.toArray(), name).toEqual(cpu.getChild(name)!.toArray());
  }
  const stageGpu = gpu.getChild('heaviest_stage')!.toArray();
  const stageCpu = cpu.getChild('heaviest_stage')!.toArray();
  const paramsGpu = gpu.getChild('params_gpu')!.toArray();
  const paramsCpu = cpu.getChild('params_gpu')!.toArray();
  let ties = 0;
  for (let i = 0; i < gpu.numRows; i++) {
    if (stageGpu[i] !== stageCpu[i]) ties++;
    else expect(paramsGpu[i], `params_gpu of row ${i}`).toBe(paramsCpu[i]);
  }
  expect(ties).toBeLessThan(gpu.numRows * 5e-3);
}

describe('one schema whatever the engine', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir();
  });

  it('CPU results: Float32 computed columns, Int64 counts, Bool flags', async () => {
    const { table } = await sweep({ ...DEEPSEEK, engine: 'cpu' });
    const type = (name: string) => table.schema.fields.find((field) => field.name === name)!.type as DataType;
    expect(type('total_gib').typeId).toBe(Type.Float);
    expect(String(type('total_gib'))).toBe('Float32');
    for (const name of ['params_total', 'params_active', 'params_gpu', 'tp_bytes', 'pp_bytes', 'dp_bytes', 'ep_bytes', 'cp_bytes']) {
      expect(String(type(name)), name).toBe('Int64');
    }
    expect(String(type('sp'))).toBe('Bool');
    expect(String(type('fits'))).toBe('Bool');
    expect(String(type('heaviest_stage'))).toBe('Int32');
    // Exact counts: the f64 model's parameters, to the parameter (f32 would be off by thousands here).
    const prepared = prepareSweep({ ...DEEPSEEK, engine: 'cpu' });
    const c = Object.fromEntries(FULL_CONSTANTS.map((name, i) => [name, prepared.constants[i]])) as FullConstants;
    const exact = model_params(c, 8, 4096, 0);
    expect(exact).toBeGreaterThan(2 ** 39);
    expect(table.getChild('params_total')!.get(0)).toBe(BigInt(exact));
    expect(Math.fround(exact)).not.toBe(exact);
  });

  it.skipIf(!available)('GPU and CPU files share the schema and concatenate in polars and DuckDB, counts equal to the parameter', async () => {
    const outputs = (engine: string) => [join(dir, `${engine}.ipc`), join(dir, `${engine}.parquet`)];
    await sweepToFiles({ ...DEEPSEEK, engine: 'gpu' }, outputs('gpu'));
    await sweepToFiles({ ...DEEPSEEK, engine: 'cpu' }, outputs('cpu'));
    const gpu = tableFromIPC(readFileSync(join(dir, 'gpu.ipc')));
    const cpu = tableFromIPC(readFileSync(join(dir, 'cpu.ipc')));
    expect(gpu.schema.fields.map((field) => `${field.name}:${typeText(field.type)}`)).toEqual(
      cpu.schema.fields.map((field) => `${field.name}:${typeText(field.type)}`),
    );
    expect(gpu.schema.metadata.get('parasweep.engine')).toBe('gpu');
    expect(cpu.schema.metadata.get('parasweep.engine')).toBe('cpu');
    // Parameter counts are recomputed exactly for GPU rows: identical, not merely close.
    expectExactCounts(gpu, cpu);

    // A wider grid (every TP, PP, schedule, VPP; offload pinned, a third of the rows): the cached recomputation
    // still matches row by row.
    const wide: SweepOptions = { model: 'llama3.1-405b', search: { ngpus_range: [512], offload_range: ['none'] } };
    const [wideGpu, wideCpu] = [(await sweep({ ...wide, engine: 'gpu' })).table, (await sweep({ ...wide, engine: 'cpu' })).table];
    expect(wideGpu.numRows).toBeGreaterThan(5000);
    expect(new Set(wideGpu.getChild('heaviest_stage')!.toArray()).size).toBeGreaterThan(2);
    expectExactCounts(wideGpu, wideCpu);

    // polars: .ipc by path, and the same file format from a buffer.
    const frames = [pl.readIPC(join(dir, 'gpu.ipc')), pl.readIPC(readFileSync(join(dir, 'cpu.ipc')))];
    const both = pl.concat(frames);
    expect(both.height).toBe(gpu.numRows + cpu.numRows);
    expect(String(both.getColumn('params_total').dtype)).toBe('DataType(Int64)');
    expect(String(both.getColumn('total_gib').dtype)).toBe('DataType(Float32)');
    expect(String(both.getColumn('sp').dtype)).toBe('DataType(Bool)');

    // DuckDB reads Parquet natively (no extension to download): a union of both engines' files.
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    const files = `['${join(dir, 'gpu.parquet')}', '${join(dir, 'cpu.parquet')}']`;
    const count = await connection.runAndReadAll(`select count(*), count(distinct params_total) from read_parquet(${files})`);
    expect(count.getRows()[0]).toEqual([BigInt(gpu.numRows + cpu.numRows), 1n]);
    const types = await connection.runAndReadAll(`select column_name, column_type from (describe select * from read_parquet(${files}))`);
    const byName = Object.fromEntries(types.getRows().map(([name, type]) => [String(name), String(type)]));
    expect(byName).toMatchObject({ params_total: 'BIGINT', tp_bytes: 'BIGINT', total_gib: 'FLOAT', sp: 'BOOLEAN', fits: 'BOOLEAN', schedule: 'VARCHAR' });
    connection.closeSync();
  });

  it('--float64 gives Float64 from the CPU and is refused with --engine gpu', async () => {
    const { table } = await sweep({ ...DEEPSEEK, float64: true });
    expect(String(table.schema.fields.find((field) => field.name === 'total_gib')!.type)).toBe('Float64');
    expect(table.schema.metadata.get('parasweep.float_type')).toBe('float64');
    expect(table.schema.metadata.get('parasweep.engine')).toBe('cpu');
    const refused = cli(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--float64', '--engine', 'gpu', '-o', join(dir, 'x.arrow')]);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/--float64: .*f32/);
    expect(listDir(dir)).not.toContain('x.arrow');
  });
});

describe('provenance and units', () => {
  it('Arrow schema metadata, Parquet key-value metadata and field units read back', async () => {
    const dir = makeTempDir();
    const arrow = join(dir, 'fp8.arrow');
    const parquet = join(dir, 'fp8.parquet');
    const run = cli(['sweep', '--model', 'llama3.1-8b', '--hardware', 'h100-sxm-80gb', '--ngpus', '8', '--param-dtype', 'fp8', '--headroom', '0.2', '--engine', 'cpu', '-o', arrow, '-o', parquet, '-q']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const table = tableFromIPC(readFileSync(arrow));
    const meta = table.schema.metadata;
    const version = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version;
    expect(meta.get('parasweep.version')).toBe(version);
    expect(meta.get('parasweep.formula')).toBe('full');
    expect(meta.get('parasweep.engine')).toBe('cpu');
    expect(meta.get('parasweep.adapter')).toMatch(/^CPU reference/);
    expect(meta.get('parasweep.headroom')).toBe('0.2');
    expect(JSON.parse(meta.get('parasweep.dtypes')!).param).toBe('fp8');
    expect(JSON.parse(meta.get('parasweep.model')!).num_layers).toBe(32);
    expect(JSON.parse(meta.get('parasweep.hardware')!)[0].name).toBe('h100-sxm-80gb');
    expect(JSON.parse(meta.get('parasweep.calibration')!)).toHaveProperty('families.h100.gemm_efficiency_max');
    const command = JSON.parse(meta.get('parasweep.command_line')!);
    expect(command.slice(0, 4)).toEqual(['parasweep', 'sweep', '--model', 'llama3.1-8b']);
    const unit = (name: string) => table.schema.fields.find((field) => field.name === name)!.metadata.get('parasweep.unit');
    expect(unit('total_gib')).toBe('GiB (2^30 bytes)');
    expect(unit('step_time_s')).toBe('s');
    expect(unit('tp_bytes')).toBe('bytes');
    expect(unit('params_total')).toBe('parameters');
    expect(unit('tokens_per_s_per_gpu')).toBe('tokens/s/GPU');
    expect(unit('tp')).toBe('ranks');
    // Every numeric column has a unit.
    for (const field of table.schema.fields) {
      if (!DataType.isDictionary(field.type)) expect(field.metadata.get('parasweep.unit'), field.name).toBeTruthy();
    }

    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    const kv = await connection.runAndReadAll(`select decode(key), decode(value) from parquet_kv_metadata('${parquet}')`);
    const stored = new Map(kv.getRows().map(([key, value]) => [String(key), String(value)]));
    for (const [key, value] of meta) expect(stored.get(key), key).toBe(value);
    connection.closeSync();
  });
});

describe('outputs people pipe', () => {
  it('-o - streams Arrow IPC to stdout, the same rows as a file', () => {
    const dir = makeTempDir();
    const file = join(dir, 'x.arrow');
    const args = ['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--engine', 'cpu', '-q'];
    const piped = cli([...args, '-o', '-'], dir);
    expect(piped.status).toBe(0);
    expect(cli([...args, '-o', file]).status).toBe(0);
    const streamed = tableFromIPC(piped.stdout);
    const written = tableFromIPC(readFileSync(file));
    expect(streamed.numRows).toBeGreaterThan(0);
    expect(streamed.numRows).toBe(written.numRows);
    expect(streamed.getChild('total_gib')!.toArray()).toEqual(written.getChild('total_gib')!.toArray());
    // What a pipe into polars gets: its IPC stream reader takes the bytes as they are.
    const frame = pl.readIPCStream(piped.stdout);
    expect(frame.height).toBe(written.numRows);
    expect(String(frame.getColumn('params_total').dtype)).toBe('DataType(Int64)');
    expect(listDir(dir)).toEqual(['x.arrow']);
  });

  it('a reader that quits early ends the sweep with one line and exit 1', () => {
    const script = 'node bin/parasweep.js sweep --model llama3.1-8b --ngpus 8..512:8 --engine cpu -o - | head -c 1000 > /dev/null; echo "exit ${PIPESTATUS[0]}" >&2';
    const result = spawnSync('bash', ['-c', script], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(result.stderr.trim().split('\n')).toEqual(['parasweep: standard output was closed before the sweep finished (EPIPE)', 'exit 1']);
  });

  it('sweep without an output flag prints its best rows and writes no file', () => {
    const dir = makeTempDir();
    const run = cli(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8,64', '--engine', 'cpu'], dir);
    expect(run.status).toBe(0);
    expect(listDir(dir)).toEqual([]);
    expect(run.text).toMatch(/LLaMA-3\.1 8B on h100-sxm-80gb: \d+ of \d+ configs fit; the 5 fastest by tokens\/s/);
    const table = run.text.split('\n').filter((line) => /^\s+\d+\s/.test(line));
    expect(table).toHaveLength(5);
    expect(run.stderr).toMatch(/rows kept .* -> no file/);
  });

  it('PoC mode keeps writing memory_estimation.csv without an output flag', () => {
    const dir = makeTempDir();
    const run = cli(['sweep', '--model', 'llama3.1-8b', '--formula', 'poc', '-q'], dir);
    expect(run.status).toBe(0);
    expect(listDir(dir)).toEqual(['memory_estimation.csv']);
  });
});

describe('sweep --pareto', () => {
  it('marks exactly the fitting rows no other fitting row of the GPU count beats on memory and step time', () => {
    const dir = makeTempDir();
    const out = join(dir, 'p.arrow');
    const run = cli(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8,16', '--mbs', '1', '--cp', '1,2', '--engine', 'cpu', '--pareto', '-o', out, '-q']);
    expect(run.stderr).toBe('');
    // Plain objects: the quadratic check below reads each row many times, and Arrow's row proxies are slow to read.
    const rows = tableFromIPC(readFileSync(out))
      .toArray()
      .map(({ ngpus, fits, total_gib, step_time_s, on_pareto }) => ({ ngpus, fits, total_gib, step_time_s, on_pareto }));
    const fitting = rows.filter((row) => row.fits);
    let marked = 0;
    for (const row of rows) {
      const beaten = fitting.some(
        (other) =>
          other.ngpus === row.ngpus &&
          other.total_gib <= row.total_gib &&
          other.step_time_s <= row.step_time_s &&
          (other.total_gib < row.total_gib || other.step_time_s < row.step_time_s),
      );
      expect(row.on_pareto, `${row.ngpus} ${row.total_gib} ${row.step_time_s}`).toBe(Boolean(row.fits) && !beaten);
      if (row.on_pareto) marked++;
    }
    expect(marked).toBeGreaterThan(2);
  });
});

describe('best', () => {
  const args = ['best', '--model', 'llama3.1-405b', '--engine', 'cpu', '-q'];
  // The ranking tests pin offload: a third of the rows; the width test keeps every column varying.
  const narrow = [...args, '--offload', 'none'];

  it('fits 100 columns, and its header names GBS, sequence length, headroom and precision', () => {
    const run = cli([...args, '--ngpus', '1024,8192']);
    expect(run.status).toBe(0);
    for (const line of run.text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(BEST_WIDTH);
    expect(run.text).toMatch(/GBS 2048, seq 8192, headroom 10%, params bf16, grads fp32/);
  });

  it('--by step_time_s ranks ascending, --order desc flips it, --per groups', () => {
    const stepOf = (text: string) => {
      const lines = text.split('\n');
      const column = lines.find((line) => line.startsWith(' # '))!.trim().split(/\s+/).indexOf('s/step');
      return lines.filter((line) => /^\s+\d+\s/.test(line)).map((line) => Number(line.trim().split(/\s+/)[column]));
    };
    const fast = stepOf(cli([...narrow, '--by', 'step_time_s', '--ngpus', '1024']).text);
    expect(fast.length).toBe(5);
    expect([...fast].sort((a, b) => a - b)).toEqual(fast);
    const slow = stepOf(cli([...narrow, '--by', 'step_time_s', '--order', 'desc', '--ngpus', '1024']).text);
    expect(slow[0]).toBeGreaterThan(fast[0]);
    const perTp = cli([...narrow, '--ngpus', '1024', '--per', 'tp']);
    expect(perTp.text).toMatch(/tp = 4: \d+ configs fit/);
    expect(perTp.text).toMatch(/tp = 8: \d+ configs fit/);
  });

  it('--report writes the HTML report of the rows best ranked', () => {
    const dir = makeTempDir();
    const report = join(dir, 'best.html');
    const run = cli([...narrow, '--ngpus', '1024', '--report', report]);
    expect(run.status).toBe(0);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('<title>parasweep report: LLaMA-3.1 405B on h100-sxm-80gb</title>');
    expect(html).toContain('Top configs at 1024 GPUs');
    // The report's #1 is best's #1.
    const first = run.text.split('\n').find((line) => /^\s+1\s/.test(line))!;
    expect(html).toContain(`<td class="num">${first.trim().split(/\s+/).at(-2)}</td>`);
  });

  it('the widest layouts, merged with many alternatives, still fit 100 columns and stay aligned', () => {
    const row = (i: number, values: Record<string, unknown>): RankedRow => ({
      rowId: i,
      value: 1,
      total_gib: 79.9,
      step_time_s: 123.45,
      values: {
        ngpus: 10240, global_batch_size: 16384 - (i % 2) * 8192, seq_length: 131072, tp: 8, pp: 16, schedule: 'interleaved', vpp: 4,
        cp: 8, ep: 256, etp: 8, dp: 10, zero: 1, sp: true, mbs: 4, recompute: 'selective', offload: 'optimizer_cpu_step',
        total_gib: 79.9, step_time_s: 123.45, tokens_per_s_per_gpu: 12345, mfu: 0.555, ...values,
      },
    });
    // Eight configs with the same numbers but different CP/DP/mbs: one line; then distinct ones.
    const rows = [
      ...Array.from({ length: 8 }, (_, i) => row(i, { cp: 1 << (i % 4), dp: 10 << i, mbs: 1 + (i % 4) })),
      ...Array.from({ length: 6 }, (_, i) => row(100 + i, { total_gib: 70 - i, tokens_per_s_per_gpu: 12000 - i })),
    ];
    const lines = formatTable(rows, 5, 'tokens_per_s');
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(BEST_WIDTH);
    const body = lines.filter((line) => /^\s+\d+\s/.test(line));
    expect(body).toHaveLength(5);
    expect(body[0]).toMatch(/ 8$/); // n: the eight merged configs
    // Right-aligned columns: every row ends where the header ends.
    for (const line of body) expect(line.length).toBe(lines[0].length);
  });

  it("prints the model's held-out error for the winner's regime, and when the hardware had no calibration run", () => {
    const calibration = loadCalibration();
    const h100 = cli([...narrow, '--ngpus', '1024']);
    const loso = (calibration.regime_errors['h100-dense'].loso * 100).toFixed(1);
    expect(h100.text).toContain(`model error: ${loso}% mean on h100-dense runs of publications held out of the fit`);
    expect(h100.text).not.toMatch(/no calibration run on/);
    const b200 = cli([...narrow, '--ngpus', '1024', '--hardware', 'b200-192gb']);
    expect(b200.text.replace(/\s+/g, ' ')).toContain('no calibration run on b200-192gb (h100 constants)');
    // A winner beyond every calibration run of its family says in which dimension: here TP past one node.
    const wide = cli(['best', '--model', 'gpt3-175b', '--engine', 'cpu', '-q', '--offload', 'none', '--ngpus', '1024', '--tp', '16']);
    const span = calibration.calibrated_ranges.h100.tp!;
    expect(wide.text.replace(/\s+/g, ' ')).toContain(`beyond every h100 calibration run in tp 16 (runs: ${span[0]}-${span[1]})`);
    expect(h100.text).not.toMatch(/beyond every/);
  });

  it('--torch-compile: the winner runs faster and says what it assumed', () => {
    const stepOf = (text: string) => {
      const lines = text.split('\n');
      const column = lines.find((line) => line.startsWith(' # '))!.trim().split(/\s+/).indexOf('s/step');
      return Number(lines.find((line) => /^\s+1\s/.test(line))!.trim().split(/\s+/)[column]);
    };
    const eager = cli([...narrow, '--ngpus', '1024']);
    const compiled = cli([...narrow, '--ngpus', '1024', '--torch-compile']);
    expect(compiled.status).toBe(0);
    expect(eager.text).toMatch(/torch_compile off/);
    expect(compiled.text).toMatch(/torch_compile on/);
    expect(stepOf(compiled.text)).toBeLessThan(stepOf(eager.text));
  });

  it('refuses a --by or --per it cannot use, in one line', () => {
    for (const [flag, value] of [
      ['--by', 'schedule'],
      ['--per', 'total_gib'],
    ]) {
      const run = cli([...narrow, '--ngpus', '1024', flag, value]);
      expect(run.status).toBe(2);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain(`${flag}: '${value}'`);
    }
  });
});

describe('report input errors', () => {
  it('a missing, unreadable or PoC results file is one line and exit 2, and no report', () => {
    const dir = makeTempDir();
    const poc = join(dir, 'poc.arrow');
    expect(cli(['sweep', '--model', 'llama3.1-8b', '--formula', 'poc', '-o', poc, '-q']).status).toBe(0);
    const garbage = join(dir, 'bad.parquet');
    writeFileSync(garbage, 'not parquet');
    const cases: Array<[string, RegExp]> = [
      [join(dir, 'missing.arrow'), /report: cannot read .*missing\.arrow: ENOENT/],
      [garbage, /report: cannot read .*bad\.parquet/],
      [poc, /report: .*poc\.arrow lacks .*--formula full/],
      [join(dir, 'x.csv'), /report: cannot tell the format/],
    ];
    for (const [input, message] of cases) {
      const run = cli(['report', input, '-o', join(dir, 'r.html')]);
      expect(run.status, input).toBe(2);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(message);
    }
    expect(listDir(dir).sort()).toEqual(['bad.parquet', 'poc.arrow']);
  });
});
