import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { tableFromArrays, tableFromIPC, Type } from 'apache-arrow';
import pl from 'nodejs-polars';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { InputError, sweepToFiles } from '../src/index.js';
import { pocFormula } from '../src/formulas/poc.js';
import { pyFloatRepr } from '../src/sink/pyrepr.js';
import { StdoutSink } from '../src/sink/stdout.js';
import type { SweepOptions, SweepStats } from '../src/sweep.js';
import { cleanupTempDirs, fixture, fixtureCsv, listDir, makeTempDir, parseCsv } from './helpers.js';

afterAll(cleanupTempDirs);

const STRATEGIES = ['NO_OP', 'OPTIMIZER_STATES', 'OPTIMIZER_STATES_AND_GRADS', 'FULLY_SHARD'];

/** The PoC's 405B run on 4 GPU counts: 960 rows, the fixture 405b-ngpus. */
const POC_405B: SweepOptions = {
  model: fixture('llama3.1-405b.yaml'),
  overrides: ['+ngpus_range=[8, 128, 1024, 10240]'],
  formula: 'poc',
  engine: 'cpu',
  chunkRows: 256, // several record batches
};

describe('Arrow and CSV written at once', () => {
  let dir: string;
  let stats: SweepStats;
  const expected = parseCsv(fixtureCsv('405b-ngpus.csv.gz'));

  beforeAll(async () => {
    dir = makeTempDir();
    stats = await sweepToFiles(POC_405B, [join(dir, 'out.arrow'), join(dir, 'out.csv'), join(dir, 'out.arrows')]);
  });

  it('writes exactly the named files, and no temporary file', () => {
    expect(stats.rows).toBe(960);
    expect(listDir(dir)).toEqual(['out.arrow', 'out.arrows', 'out.csv']);
  });

  it('the CSV is the PoC CSV', () => {
    expect(readFileSync(join(dir, 'out.csv'), 'utf8') === fixtureCsv('405b-ngpus.csv.gz')).toBe(true);
  });

  it('apache-arrow reads the .arrow file back', () => {
    const bytes = readFileSync(join(dir, 'out.arrow'));
    // Arrow IPC file format: magic at both ends.
    expect(bytes.subarray(0, 6).toString('latin1')).toBe('ARROW1');
    expect(bytes.subarray(bytes.length - 6).toString('latin1')).toBe('ARROW1');
    const table = tableFromIPC(bytes);
    expect(table.numRows).toBe(960);
    expect(table.schema.fields.map((field) => field.name)).toEqual(expected.header);
    const strategy = table.getChild('data_parallel_sharding_strategy')!;
    expect(strategy.type.typeId).toBe(Type.Dictionary);
    expect(new Set(Array.from({ length: table.numRows }, (_, i) => strategy.get(i)))).toEqual(new Set(STRATEGIES));
    expect(table.getChild('ngpus')!.type.typeId).toBe(Type.Int);
    expect(table.getChild('total_memory_gb')!.type.typeId).toBe(Type.Float);
    const header = expected.header;
    for (const r of [0, 3, 479, 959]) {
      const csvRow = expected.rows[r];
      expect(table.getChild('name')!.get(r)).toBe(csvRow[header.indexOf('name')]);
      expect(strategy.get(r)).toBe(csvRow[header.indexOf('data_parallel_sharding_strategy')]);
      for (const column of ['ngpus', 'TP', 'PP', 'DP', 'total_memory_gb', 'activations_memory_gb']) {
        expect(table.getChild(column)!.get(r), `row ${r} ${column}`).toBe(Number(csvRow[header.indexOf(column)]));
      }
    }
    expect(table.getChild('total_memory_gb')!.get(0)).toBe(7372.48828125);
  });

  it('polars, an independent reader, reads the .arrow file with the same values', () => {
    // nodejs-polars treats a string that does not end in .ipc as inline data, so hand it the bytes.
    const df = pl.readIPC(readFileSync(join(dir, 'out.arrow')));
    expect(df.height).toBe(960);
    expect(df.columns).toEqual(expected.header);
    expect(String(df.getColumn('data_parallel_sharding_strategy').dtype)).toMatch(/Categorical|Enum/);
    expect(df.getColumn('data_parallel_sharding_strategy').unique().sort().toArray()).toEqual([...STRATEGIES].sort());
    expect(df.getColumn('name').unique().toArray()).toEqual(['LLaMA-3.1 405B']);
    const header = expected.header;
    const records = df.toRecords();
    for (const r of [0, 1, 3, 500, 959]) {
      const row = records[r] as Record<string, unknown>;
      header.forEach((column, c) => {
        const cell = expected.rows[r][c];
        const want = column === 'name' || column === 'data_parallel_sharding_strategy' ? cell : Number(cell);
        expect(row[column], `row ${r} ${column}`).toBe(want);
      });
    }
    // Aggregations work on the columns as typed: memory is a float, GPU counts integers.
    expect(df.getColumn('ngpus').unique().sort().toArray()).toEqual([8, 128, 1024]) // 10240 GPUs have no valid split of a 4096 batch;
    expect(df.getColumn('total_memory_gb').max()).toBeGreaterThan(7372);
    expect(df.filter(pl.col('data_parallel_sharding_strategy').eq(pl.lit('FULLY_SHARD'))).height).toBe(240);
  });

  it('polars reads the .arrows stream too', () => {
    const df = pl.readIPCStream(readFileSync(join(dir, 'out.arrows')));
    expect(df.height).toBe(960);
    expect(df.columns).toEqual(expected.header);
    expect(df.getColumn('total_memory_gb').toArray()[0]).toBe(7372.48828125);
    expect(tableFromIPC(readFileSync(join(dir, 'out.arrows'))).numRows).toBe(960);
  });
});

describe('pyFloatRepr prints floats as Python repr() does', () => {
  it.each([
    [512, '512.0'],
    [1e-5, '1e-05'],
    [1e16, '1e+16'],
    [1.5e16, '1.5e+16'],
    [0.0001, '0.0001'],
    [123.456, '123.456'],
    [-2.5, '-2.5'],
    [0, '0.0'],
    [-0, '-0.0'],
    [1, '1.0'],
    [0.1, '0.1'],
    [1 / 3, '0.3333333333333333'],
    [9999999999999998, '9999999999999998.0'],
    [1e22, '1e+22'],
    [2.5e-7, '2.5e-07'],
    [7372.48828125, '7372.48828125'],
    [5e-324, '5e-324'],
    [Number.NaN, 'nan'],
    [Number.POSITIVE_INFINITY, 'inf'],
    [Number.NEGATIVE_INFINITY, '-inf'],
  ])('%s -> %s', (value, repr) => {
    expect(pyFloatRepr(value)).toBe(repr);
  });
});

/**
 * Runs `fn` and collects the promise rejections nobody handled meanwhile (and for 100 ms after, to give a stray
 * promise time to reject). In the CLI such a rejection kills the process with a stack trace and exit code 1.
 */
async function watchRejections<T>(fn: () => Promise<T>): Promise<{ result: T; rejections: unknown[] }> {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  try {
    const result = await fn();
    await new Promise((resolve) => setTimeout(resolve, 100));
    return { result, rejections };
  } finally {
    process.off('unhandledRejection', onRejection);
  }
}

describe('output paths', () => {
  it('an unknown extension is an InputError before anything runs', async () => {
    const dir = makeTempDir();
    const error = await sweepToFiles(POC_405B, [join(dir, 'out.csv'), join(dir, 'out.xlsx')]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).field).toBe('paths');
    expect((error as InputError).message).toContain('out.xlsx');
    expect(listDir(dir)).toEqual([]);
  });

  it('the same path twice is an InputError', async () => {
    const dir = makeTempDir();
    const path = join(dir, 'out.csv');
    await expect(sweepToFiles(POC_405B, [path, path])).rejects.toThrow(InputError);
    expect(listDir(dir)).toEqual([]);
  });

  it('an empty grid errors before any file exists', async () => {
    const dir = makeTempDir();
    const error = await sweepToFiles({ ...POC_405B, search: { ngpus_range: [3], tp_range: [2] } }, [
      join(dir, 'out.arrow'),
      join(dir, 'out.csv'),
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toContain('no valid config');
    expect(listDir(dir)).toEqual([]);
  });

  it.each([['out.csv'], ['out.arrow'], ['out.parquet']])(
    'a second output that cannot be opened removes the first one (%s), cleanly',
    async (first) => {
      const dir = makeTempDir();
      const { result: error, rejections } = await watchRejections(() =>
        sweepToFiles(POC_405B, [join(dir, first), join(dir, 'missing', 'out.csv')]).catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).message).toContain('missing');
      expect(listDir(dir)).toEqual([]);
      expect(rejections.map(String)).toEqual([]);
    },
  );

  describe('an engine failure after some batches were written', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    /** Makes the PoC formula throw in its third chunk, and runs a 960-row sweep in chunks of 100 into `names`. */
    async function failingSweep(names: string[]): Promise<{ dir: string; error: unknown; rejections: unknown[] }> {
      const dir = makeTempDir();
      const evaluate = pocFormula.evaluate.bind(pocFormula);
      let calls = 0;
      vi.spyOn(pocFormula, 'evaluate').mockImplementation((...args) => {
        if (++calls === 3) throw new Error('simulated failure in the third chunk');
        evaluate(...args);
      });
      const paths = names.map((name) => join(dir, name));
      const { result: error, rejections } = await watchRejections(() =>
        sweepToFiles({ ...POC_405B, chunkRows: 100 }, paths).catch((e: unknown) => e),
      );
      expect(calls).toBe(3);
      return { dir, error, rejections };
    }

    it('leaves no output and no .partial file', async () => {
      const { dir, error } = await failingSweep(['out.arrow', 'out.csv', 'out.parquet', 'out.arrows']);
      expect((error as Error).message).toContain('simulated failure');
      expect(listDir(dir)).toEqual([]);
    });

    it.each([['out.csv'], ['out.parquet'], ['out.arrow'], ['out.arrows']])(
      'aborting %s leaves no unhandled promise rejection behind',
      async (name) => {
        const { dir, error, rejections } = await failingSweep([name]);
        expect((error as Error).message).toContain('simulated failure');
        expect(listDir(dir)).toEqual([]);
        expect(rejections.map(String)).toEqual([]);
      },
    );
  });
});

describe('standard output closed by its reader', () => {
  /**
   * What process.stdout does when `| head` exits: the write fails with EPIPE and 'error' is emitted, but the stream
   * is not destroyed, so it goes on saying it needs a drain that never comes.
   */
  class ClosedPipe extends EventEmitter {
    writableNeedDrain = false;
    write(): boolean {
      if (!this.writableNeedDrain) {
        this.writableNeedDrain = true;
        process.nextTick(() => this.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
      }
      return false;
    }
  }

  it('a batch written after the error fails with the one-line message instead of waiting forever', async () => {
    const table = tableFromArrays({ ngpus: Int32Array.from([8, 16]) });
    const sink = new StdoutSink(table.schema, new ClosedPipe() as unknown as Writable);
    const outcome = (async () => {
      for (let i = 0; i < 4; i++) await sink.write(table.batches[0]);
      await sink.commit();
    })();
    // Without the fix the write awaits a 'drain' forever; a timer stands in for "forever" here.
    const hung = new Promise((resolve) => setTimeout(() => resolve('still waiting'), 2000).unref());
    await expect(Promise.race([outcome, hung])).rejects.toThrow('standard output was closed before the sweep finished (EPIPE)');
  });
});
