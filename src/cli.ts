import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yargs, { Argv } from 'yargs';
import { listBundled, loadConfig, PACKAGE_ROOT } from './config/load.js';
import { SEARCH_KEYS, SearchKeyName } from './config/space.js';
import { EngineError, InputError } from './errors.js';
import { DEFAULT_FORMULA, FORMULAS } from './formulas/index.js';
import { abortOpenSinks, DEFAULT_HARDWARE, DEFAULT_HEADROOM, SweepOptions, sweepToFiles } from './sweep.js';
import { checkEngines, DEFAULT_RTOL, formatCheckReport } from './check.js';
import { runCalibration } from './calibrate.js';

const DEFAULT_POC_OUTPUT = 'memory_estimation.csv';

function version(): string {
  return JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')).version;
}

function withSweepOptions<T>(args: Argv<T>) {
  let out = args
    .positional('overrides', {
      describe: 'Hydra-style overrides: key=value, +key=value, ~key (e.g. +ngpus_range="[8, 128]" model.seq_length=4096)',
      type: 'string',
      array: true,
    })
    .option('model', { alias: ['m', 'config-name'], type: 'string', describe: 'bundled model name or model YAML path' })
    .option('formula', {
      type: 'string',
      default: DEFAULT_FORMULA,
      choices: Object.keys(FORMULAS),
      describe: "cost formula: full (memory by component, every dimension) or poc (the PoC's estimate and columns)",
    })
    .option('hardware', { type: 'string', default: DEFAULT_HARDWARE, describe: 'bundled hardware name or YAML path' })
    .option('headroom', { type: 'number', default: DEFAULT_HEADROOM, describe: 'memory kept free: fits when total x (1 + headroom) <= memory' })
    .option('engine', {
      type: 'string',
      default: 'auto',
      choices: ['auto', 'gpu', 'cpu'],
      describe: 'evaluation engine; auto = GPU when an adapter exists, else CPU',
    })
    .option('backend', { type: 'string', describe: 'Dawn backend: vulkan, opengles, opengl, metal, d3d12' })
    .option('adapter', { type: 'string', describe: 'Dawn adapter name, e.g. SwiftShader or llvmpipe' })
    .option('max-buffer-mib', { type: 'number', default: 8, describe: 'bound on each GPU buffer, MiB' })
    .option('workgroup-size', { type: 'number', default: 64, describe: 'GPU workgroup size (1-128)' })
    .option('out', { alias: 'o', type: 'string', array: true, describe: 'output file(s); format by extension: .arrow, .arrows, .csv' })
    .option('csv', { type: 'string', describe: 'CSV output path (the PoC\'s columns with --formula poc)' })
    .option('chunk-rows', { type: 'number', describe: 'rows per evaluation chunk (default: what the engine prefers)' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no summary on stderr' });
  for (const [key, spec] of Object.entries(SEARCH_KEYS)) {
    out = out.option(spec.flag, {
      type: 'string',
      describe: `${spec.describe} (${key}): list 1,2,4 or range start..end[:step] or start..end:*factor`,
    });
  }
  return out;
}

function searchFromFlags(argv: Record<string, unknown>): Partial<Record<SearchKeyName, unknown>> {
  const search: Partial<Record<SearchKeyName, unknown>> = {};
  for (const [key, spec] of Object.entries(SEARCH_KEYS) as Array<[SearchKeyName, { flag: string }]>) {
    const value = argv[spec.flag];
    if (value !== undefined) search[key] = value;
  }
  return search;
}

type SweepArgs = ReturnType<typeof withSweepOptions> extends Argv<infer T> ? T : never;

function sweepOptions(args: SweepArgs): SweepOptions {
  const mib = args['max-buffer-mib'];
  if (!(mib > 0 && mib <= 1024)) throw new InputError('--max-buffer-mib', `must be between 0 and 1024, got ${mib}`);
  const workgroupSize = args['workgroup-size'];
  if (!Number.isInteger(workgroupSize) || workgroupSize < 1 || workgroupSize > 128) {
    throw new InputError('--workgroup-size', `must be an integer from 1 to 128, got ${workgroupSize}`);
  }
  const chunkRows = args['chunk-rows'];
  if (chunkRows !== undefined && !(Number.isInteger(chunkRows) && chunkRows >= 1)) {
    throw new InputError('--chunk-rows', `must be a positive integer, got ${chunkRows}`);
  }
  return {
    model: requireModel(args),
    overrides: args.overrides ?? [],
    search: searchFromFlags(args as Record<string, unknown>),
    formula: args.formula,
    hardware: args.hardware,
    headroom: args.headroom,
    engine: args.engine as SweepOptions['engine'],
    backend: args.backend,
    adapter: args.adapter,
    maxBufferBytes: Math.floor(mib * 1024 * 1024),
    workgroupSize,
    chunkRows,
    notice: (line) => process.stderr.write(`parasweep: ${line}\n`),
  };
}

function requireModel(argv: { model?: string }): string {
  if (!argv.model) {
    throw new InputError('--model', `required: a bundled model (${listBundled('models').join(', ')}) or a YAML path`);
  }
  return argv.model;
}

function describeModels(): string[] {
  return listBundled('models').map((name) => {
    const { model } = loadConfig(name);
    const experts = model.moe && model.moe.num_experts > 0 ? `, ${model.moe.num_experts} experts top-${model.moe.k}` : '';
    const heads = model.num_attention_heads ? `, ${model.num_attention_heads} heads` : '';
    const kv = model.num_key_value_heads ? ` (${model.num_key_value_heads} kv)` : '';
    return `${name.padEnd(16)} ${model.name}: ${model.num_layers} layers, hidden ${model.hidden_size}${heads}${kv}, ffn ${model.ffn_hidden_size}${experts}, seq ${model.seq_length}, vocab ${model.vocab_size}`;
  });
}

/** Runs the CLI and returns the exit code: 0 ok, 1 failure, 2 bad input. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    abortOpenSinks();
    process.stderr.write(`parasweep: interrupted by ${signal}; no output written\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const parser = yargs(argv)
    .scriptName('parasweep')
    .parserConfiguration({ 'camel-case-expansion': false, 'dot-notation': false, 'parse-numbers': false })
    .version(version())
    .strict()
    .command(
      'sweep [overrides..]',
      'evaluate every parallel config of a model and write the results',
      (args) => withSweepOptions(args),
      async (args) => {
        const outputs = [...(args.out ?? []), ...(args.csv ? [args.csv] : [])];
        if (outputs.length === 0) outputs.push(DEFAULT_POC_OUTPUT);
        const options = sweepOptions(args);
        const stats = await sweepToFiles(options, outputs);
        if (!args.quiet) {
          process.stderr.write(
            `parasweep: ${stats.candidates} configs considered, ${stats.rows} rows written in ${stats.seconds.toFixed(2)} s` +
              ` (${stats.engine}) -> ${outputs.join(', ')}\n`,
          );
        }
      },
    )
    .command(
      'check [overrides..]',
      'run the GPU and CPU engines on the same grid and compare every column',
      (args) =>
        withSweepOptions(args).option('rtol', {
          type: 'number',
          default: DEFAULT_RTOL,
          describe: 'largest relative error allowed per value (f32 bound: see docs/precision.md)',
        }),
      async (args) => {
        if (!(args.rtol > 0 && args.rtol < 1)) throw new InputError('--rtol', `must be between 0 and 1, got ${args.rtol}`);
        const report = await checkEngines({ ...sweepOptions(args), rtol: args.rtol });
        process.stdout.write(formatCheckReport(report) + '\n');
        if (!report.ok) exitCode = 1;
      },
    )
    .command(
      'calibrate',
      'fit the time model\'s GEMM efficiency to Narayanan et al. 2021 and print calibration and validation tables',
      (args) => args.option('write', { type: 'boolean', default: false, describe: 'write the fitted constants to configs/calibration.yaml' }),
      (args) => {
        const { report } = runCalibration(args.write);
        process.stdout.write(report + '\n');
      },
    )
    .command(
      'models',
      'list the bundled models',
      (args) => args,
      () => {
        process.stdout.write(describeModels().join('\n') + '\n');
      },
    )
    .example('$0 sweep --model llama3.1-405b --ngpus 8,128,1024,10240 --out results.arrow --csv results.csv', 'sweep and write Arrow and CSV')
    .example('$0 sweep --config-name llama3.1-405b.yaml +ngpus_range="[8, 128, 1024, 10240]" --formula poc --csv memory_estimation.csv', "the PoC's command, same CSV")
    .example('$0 sweep --model mixtral-8x7b --tp 1..8:*2 --ngpus 8..1024:8 model.seq_length=4096 -o mixtral.arrow', 'ranges and overrides')
    .example('$0 models', 'the bundled models')
    .demandCommand(1, 'name a command: sweep or models')
    .recommendCommands()
    .fail((message, error) => {
      throw error ?? new InputError('arguments', message);
    })
    .help();

  try {
    await parser.parseAsync();
  } catch (error) {
    abortOpenSinks();
    if (error instanceof InputError) {
      process.stderr.write(`parasweep: ${error.message}\n`);
      exitCode = 2;
    } else if (error instanceof EngineError) {
      process.stderr.write(`parasweep: ${error.message}\n`);
      exitCode = 1;
    } else {
      process.stderr.write(`parasweep: error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      exitCode = 1;
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  return exitCode;
}
