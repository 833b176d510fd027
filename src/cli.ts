import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import yargs, { Argv } from 'yargs';
import { listBundled, loadConfig, PACKAGE_ROOT } from './config/load.js';
import { parseSearchValue, SEARCH_KEYS, SearchKey, SearchKeyName } from './config/space.js';
import { closest } from './config/schema.js';
import { loadHardware } from './config/hardware.js';
import { EngineError, InputError, OutputError } from './errors.js';
import { DEFAULT_FORMULA, FORMULAS } from './formulas/index.js';
import { DEFAULT_GBS_TOLERANCE } from './formulas/types.js';
import { abortOpenSinks, DEFAULT_HARDWARE, DEFAULT_HEADROOM, prepareSweep, SweepOptions } from './sweep.js';
import { loadSweepFile } from './config/sweepfile.js';
import { parseShard } from './grid/shard.js';
import { STDOUT_PATH } from './sink/stdout.js';
import { runBestCommand, runReportCommand, runSweepCommand } from './commands/outputs.js';
import { checkEngines, DEFAULT_RTOL, formatCheckReport } from './analysis/check.js';
import { runCalibration, writeCalibrationDocs, writeCalibrationReadme } from './analysis/calibrate.js';
import { LAUNCH_TARGETS, LaunchTarget } from './launch/index.js';
import { explainLaunch, launch } from './launch/pick.js';
import { explain, formatExplanation } from './analysis/explain.js';

const DEFAULT_POC_OUTPUT = 'memory_estimation.csv';
/** 64 KiB: a few hundred rows of the widest formula per GPU chunk. */
const MIN_BUFFER_MIB = 1 / 16;
const HANDLED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

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
    .option('model', { alias: ['m', 'config-name'], type: 'string', describe: 'bundled model name, model YAML path, or Hugging Face config.json' })
    .option('sweep', { type: 'string', describe: 'a sweep file (bundled name or YAML path); flags and overrides adjust it' })
    .option('formula', {
      type: 'string',
      choices: Object.keys(FORMULAS),
      describe: `cost formula: full (memory and time, every dimension) or poc (the PoC's estimate and columns) [default: ${DEFAULT_FORMULA}]`,
    })
    .option('hardware', { type: 'string', describe: `bundled hardware name or YAML path [default: ${DEFAULT_HARDWARE}]` })
    .option('headroom', {
      type: 'number',
      describe: `memory kept free: fits when total x (1 + headroom) <= memory [default: ${DEFAULT_HEADROOM}]`,
    })
    .option('gbs-tolerance', {
      type: 'number',
      describe: `how far the global batch may move from --gbs so that dp x mbs divides it; 0 = exact [default: ${DEFAULT_GBS_TOLERANCE}]`,
    })
    .option('where', { type: 'string', describe: "keep rows matching a condition, e.g. 'total_gib < 70 and mfu > 0.4'" })
    .option('fits-only', { type: 'boolean', describe: 'keep only configs that fit in memory' })
    .option('param-dtype', { type: 'string', describe: 'parameter dtype: bf16, fp16, fp32, fp8 (trainer.param_dtype)' })
    .option('compute-dtype', { type: 'string', describe: 'matmul dtype under autocast when not the parameters\' (trainer.compute_dtype)' })
    .option('grad-dtype', { type: 'string', describe: 'gradient dtype (trainer.grad_dtype)' })
    .option('optimizer-dtype', { type: 'string', describe: 'Adam state dtype (trainer.optimizer_state_dtype)' })
    .option('master-dtype', { type: 'string', describe: 'master weights dtype, e.g. bf16 with fp8 parameters (trainer.master_dtype)' })
    .option('master-weights', { type: 'boolean', describe: 'keep master weights (trainer.master_weights)' })
    .option('flash-attention', { type: 'boolean', describe: 'flash attention: no s x s scores stored (trainer.flash_attention)' })
    .option('fp8', { type: 'boolean', describe: 'FP8 linear layers, Transformer Engine style (trainer.fp8)' })
    .option('tp-comm-overlap', { type: 'boolean', describe: 'hide TP collectives behind GEMMs (trainer.tp_comm_overlap) [default: true]' })
    .option('overlap-grad-reduce', { type: 'boolean', describe: 'gradient reduction behind the backward (trainer.overlap_grad_reduce) [default: true]' })
    .option('overlap-param-gather', { type: 'boolean', describe: 'parameter all-gather behind the forward (trainer.overlap_param_gather) [default: true]' })
    .option('overlap-p2p-comm', { type: 'boolean', describe: 'pipeline sends behind compute where the schedule allows (trainer.overlap_p2p_comm) [default: true]' })
    .option('moe-a2a-overlap', { type: 'boolean', describe: 'expert all-to-alls behind another micro-batch (trainer.moe_a2a_overlap) [default: false]' })
    .option('moe-dedup-dispatch', { type: 'boolean', describe: 'expert dispatch once per destination node, forwarded over NVLink: DeepEP (trainer.moe_dedup_dispatch) [default: false]' })
    .option('cp-comm-type', { type: 'string', describe: 'context parallelism: p2p (ring), all_gather (Llama 3) or a2a (Ulysses all-to-all) (trainer.cp_comm_type) [default: p2p]' })
    .option('attention-kernel', { type: 'string', describe: 'flash-attention kernel: fused (cuDNN/FA3), fa2 or triton (MPT\'s Triton kernel) (trainer.attention_kernel) [default: fused]' })
    .option('torch-compile', { type: 'boolean', describe: 'PyTorch torch.compile fuses element-wise ops (trainer.torch_compile) [default: false]' })
    .option('top', { type: 'number', describe: 'keep the best K rows by --by (per --per group)' })
    .option('by', { type: 'string', describe: 'column ranked by --top [default: tokens_per_s]' })
    .option('per', { type: 'string', describe: 'grid column grouping --top, e.g. ngpus' })
    .option('order', { type: 'string', choices: ['asc', 'desc'], describe: 'ranking direction [default: desc, asc for *_s, *_gib, *_bytes]' })
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
    .option('out', {
      alias: 'o',
      type: 'string',
      array: true,
      describe: 'output file(s); format by extension: .parquet (DuckDB), .arrow/.ipc (polars, pyarrow), .arrows, .csv; - for Arrow IPC on stdout; DIR/ for a Hive-partitioned Parquet dataset',
    })
    .option('float64', { type: 'boolean', describe: 'Float64 result columns, computed by the CPU engine [default: Float32 from either engine]' })
    .option('csv', { type: 'string', describe: 'CSV output path (the PoC\'s columns with --formula poc)' })
    .option('chunk-rows', { type: 'number', describe: 'rows per evaluation chunk (default: what the engine prefers)' })
    .option('shard', { type: 'string', describe: 'evaluate only slice i of n of the grid (0-based, balanced by configs), e.g. 3/16 for a job array; with -o DIR/ each shard writes its own part files' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress bar or summary on stderr' })
    .option('verbose', { type: 'boolean', default: false, describe: "let the GPU driver's (Dawn's) native warnings through to stderr" });
  for (const [key, spec] of Object.entries(SEARCH_KEYS) as Array<[SearchKeyName, SearchKey]>) {
    out = out.option(spec.flag, { type: 'string', describe: searchFlagHelp(key, spec) });
  }
  // Grouped as a planner thinks about them; yargs lists each group under its title.
  return out
    .group(['model', 'sweep', 'hardware', 'formula'], 'Model and hardware:')
    .group([...Object.values(SEARCH_KEYS).map((spec) => spec.flag), 'gbs-tolerance'], 'Search space (lists: 1,2,4; numeric flags also take ranges: 8..1024:8, 1..64:*2):')
    .group(['param-dtype', 'grad-dtype', 'optimizer-dtype', 'master-dtype', 'master-weights', 'flash-attention'], 'Precision:')
    .group(['fits-only', 'headroom', 'where', 'top', 'by', 'per', 'order'], 'Selection:')
    .group(['engine', 'backend', 'adapter', 'max-buffer-mib', 'workgroup-size', 'chunk-rows', 'verbose'], 'Engine:')
    .group(['out', 'csv', 'float64', 'shard', 'quiet'], 'Output:');
}

/** Help for a search flag: range syntax for numbers only; the values of a category; booleans. */
function searchFlagHelp(key: SearchKeyName, spec: SearchKey): string {
  if (spec.kind === 'int') return `${spec.describe} (${key})`;
  if (spec.kind === 'bool') return `${spec.describe}: true, false or true,false (${key})`;
  if (key === 'shard_strategys') return `ZeRO stages, e.g. 0,1 or 3 (${key}; the PoC's names also work)`;
  return `${spec.describe.replace(/^[a-z0-9_, ]+$/, 'one or more of')} ${spec.values.join(', ')} (${key})`;
}

/** The ZeRO flag speaks in stages: `--zero 4` is answered with 0-3, not with the PoC's strategy names. */
const ZERO_WORDS = ['0', '1', '2', '3'];

/** The GPU counts no config answered, each with the rule that removed most of its candidates. */
function searchFromFlags(argv: Record<string, unknown>): Partial<Record<SearchKeyName, unknown>> {
  const search: Partial<Record<SearchKeyName, unknown>> = {};
  for (const [key, spec] of Object.entries(SEARCH_KEYS) as Array<[SearchKeyName, { flag: string }]>) {
    const value = argv[spec.flag];
    if (value === undefined) continue;
    // Checked here so that an error names the flag the user typed, not the config key behind it.
    try {
      parseSearchValue(key, value, `--${spec.flag}`);
    } catch (error) {
      if (key === 'shard_strategys' && error instanceof InputError && /unknown value/.test(error.message)) {
        const bad = String(value).split(',').find((word) => !ZERO_WORDS.includes(word.trim())) ?? String(value);
        throw new InputError('--zero', `unknown ZeRO stage ${JSON.stringify(bad.trim())}; allowed: ${ZERO_WORDS.join(', ')}`);
      }
      throw error;
    }
    search[key] = value;
  }
  return search;
}

type SweepArgs = ReturnType<typeof withSweepOptions> extends Argv<infer T> ? T : never;

/** The runs a sweep command describes: one, or one per hardware of a sweep file, with flags applied on top. */
function sweepRuns(args: SweepArgs): SweepOptions[] {
  const mib = args['max-buffer-mib'];
  // The floor keeps a chunk at a few hundred rows: below it a sweep runs one tiny dispatch (or CPU chunk) per row.
  if (!(mib >= MIN_BUFFER_MIB && mib <= 1024)) {
    throw new InputError('--max-buffer-mib', `must be from ${MIN_BUFFER_MIB} to 1024 (MiB), got ${mib}`);
  }
  const workgroupSize = args['workgroup-size'];
  if (!Number.isInteger(workgroupSize) || workgroupSize < 1 || workgroupSize > 128) {
    throw new InputError('--workgroup-size', `must be an integer from 1 to 128, got ${workgroupSize}`);
  }
  const chunkRows = args['chunk-rows'];
  if (chunkRows !== undefined && !(Number.isInteger(chunkRows) && chunkRows >= 1)) {
    throw new InputError('--chunk-rows', `must be a positive integer, got ${chunkRows}`);
  }
  const file = args.sweep ? loadSweepFile(args.sweep) : undefined;
  if (!file) requireModel(args);
  if ((args.by !== undefined || args.per !== undefined || args.order !== undefined) && args.top === undefined && !file?.top) {
    throw new InputError('--by', '--by, --per and --order go with --top K');
  }
  const top =
    args.top !== undefined
      ? { k: args.top, by: args.by ?? file?.top?.by ?? 'tokens_per_s', per: args.per ?? file?.top?.per, order: args.order as 'asc' | 'desc' | undefined }
      : file?.top
        ? { k: file.top.k, by: args.by ?? file.top.by, per: args.per ?? file.top.per, order: (args.order as 'asc' | 'desc' | undefined) ?? (file.top.ascending ? 'asc' : undefined) }
        : undefined;
  const hardware = args.hardware !== undefined ? [args.hardware] : (file?.hardware ?? [DEFAULT_HARDWARE]);
  // Precision and overlap flags are trainer overrides, applied after the file's and the positional ones.
  const trainerFlags: Array<[string, unknown]> = [
    ['param_dtype', args['param-dtype']],
    ['compute_dtype', args['compute-dtype']],
    ['grad_dtype', args['grad-dtype']],
    ['optimizer_state_dtype', args['optimizer-dtype']],
    ['master_dtype', args['master-dtype']],
    ['master_weights', args['master-weights']],
    ['flash_attention', args['flash-attention']],
    ['fp8', args.fp8],
    ['tp_comm_overlap', args['tp-comm-overlap']],
    ['overlap_grad_reduce', args['overlap-grad-reduce']],
    ['overlap_param_gather', args['overlap-param-gather']],
    ['overlap_p2p_comm', args['overlap-p2p-comm']],
    ['moe_a2a_overlap', args['moe-a2a-overlap']],
    ['moe_dedup_dispatch', args['moe-dedup-dispatch']],
    ['cp_comm_type', args['cp-comm-type']],
    ['attention_kernel', args['attention-kernel']],
    ['torch_compile', args['torch-compile']],
  ];
  const precision = trainerFlags.filter(([, value]) => value !== undefined).map(([key, value]) => `trainer.${key}=${String(value)}`);
  return hardware.map((name) => ({
    model: args.model ?? file!.model,
    overrides: [...(file?.overrides ?? []), ...(args.overrides ?? []), ...precision],
    search: { ...(file?.search ?? {}), ...searchFromFlags(args as Record<string, unknown>) },
    formula: args.formula ?? file?.formula,
    hardware: name,
    headroom: args.headroom ?? file?.headroom,
    gbsTolerance: args['gbs-tolerance'],
    where: args.where ?? file?.where,
    fitsOnly: args['fits-only'],
    top,
    engine: args.engine as SweepOptions['engine'],
    backend: args.backend,
    adapter: args.adapter,
    maxBufferBytes: Math.floor(mib * 1024 * 1024),
    workgroupSize,
    chunkRows,
    float64: args.float64,
    shard: args.shard !== undefined ? parseShard(String(args.shard)) : undefined,
    commandLine: ['parasweep', ...commandLine],
    verbose: args.verbose,
    notice: (line: string) => process.stderr.write(`parasweep: ${line}\n`),
  }));
}

/** The argv of this invocation, recorded in the outputs' provenance. */
let commandLine: readonly string[] = [];

/** --report and its focus GPU count, on sweep and best. */
function withReportOptions<T>(args: Argv<T>) {
  return args
    .option('report', { type: 'string', describe: 'also write an HTML report (charts and top configs) to this path' })
    .option('report-ngpus', { type: 'number', describe: 'GPU count of the report\'s heatmap, Pareto and breakdown charts [default: the largest with a fitting config]' });
}

/** Valid configs of all runs, for the progress bar's percentage and ETA: counted only when a bar is drawn. */
function progressTotal(runs: SweepOptions[], quiet: boolean): number | undefined {
  // A shard's share of the grid is known only once its span is found; its bar counts rows without a percentage.
  if (quiet || !process.stderr.isTTY || runs.some((run) => run.shard)) return undefined;
  return runs.reduce((sum, run) => sum + prepareSweep({ ...run, where: undefined, fitsOnly: false, top: undefined }).grid.count(), 0);
}

function sweepOptions(args: SweepArgs): SweepOptions {
  return sweepRuns(args)[0];
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

/** yargs' own messages as one line that names the flag: `--formula: invalid value "nope" (choices: full, poc)`. */
function yargsError(message: string, knownOptions: string[], typed?: string): InputError {
  const invalid = /Argument: ([\w-]+), Given: ("[^"]*"|\S+), Choices: (.*)$/m.exec(message);
  if (invalid) return new InputError(`--${invalid[1]}`, `invalid value ${invalid[2]} (choices: ${invalid[3].replace(/"/g, '')})`);
  const unknown = /Unknown arguments?: (.*)$/m.exec(message);
  if (unknown) {
    const names = unknown[1].split(', ').map((name) => (name.startsWith('-') ? name : `--${name}`));
    const first = names[0].replace(/^-+/, '');
    const suggestion = closest(first, knownOptions.filter((name) => name.length > 1));
    const command = closest(first, COMMANDS.map(([name]) => name));
    const hint = suggestion ? `did you mean --${suggestion}?` : command ? `did you mean the command ${command}?` : 'see --help';
    return new InputError(names[0], `unknown option${names.length > 1 ? ` (also ${names.slice(1).join(', ')})` : ''} (${hint})`);
  }
  const command = /Did you mean (\S+)\?/.exec(message);
  if (command && typed) return new InputError(typed, `unknown command (did you mean ${command[1]}?)`);
  const missing = /Not enough arguments following: ([\w-]+)/.exec(message);
  if (missing) return new InputError(`--${missing[1]}`, 'needs a value');
  return new InputError('arguments', message.replace(/\s*\n\s*/g, '; '));
}

/** yargs reads a lone `-` as a positional: `-o -` becomes `--out=-`, which it keeps as the flag's value. */
function joinStdoutFlag(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if ((argv[i] === '-o' || argv[i] === '--out') && argv[i + 1] === STDOUT_PATH) {
      out.push(`--out=${STDOUT_PATH}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

/** Every command, in the order the help and the bare command list them. */
const COMMAND_HELP = {
  sweep: 'evaluate every parallel config of a model; write the results (-o), or print the best rows',
  best: 'the fastest configs that fit, per GPU count, with the Pareto front of memory against step time',
  launch: 'Megatron-LM flags or a torchtitan config for one layout (pin it with flags; the fastest fitting one otherwise)',
  check: 'run the GPU and CPU engines on the same grid and compare every column',
  calibrate: "fit the time model's efficiency constants per hardware family on published runs; print them and the leave-one-source-out error per regime",
  report: 'an HTML report (charts and top configs) of a results file (.arrow, .ipc, .arrows or .parquet)',
  explain: 'one config (every dimension pinned): every pipeline stage and virtual chunk, its layers, memory, time and critical path',
  models: 'list the bundled models',
  hardware: 'list the bundled hardware with its key specs',
  sweeps: 'list the bundled sweep files',
} as const;
const COMMANDS = Object.entries(COMMAND_HELP);

function commandList(): string {
  const width = Math.max(...COMMANDS.map(([name]) => name.length));
  return [
    'usage: parasweep <command> [options]',
    '',
    ...COMMANDS.map(([name, help]) => `  ${name.padEnd(width)}  ${help}`),
    '',
    "Run 'parasweep <command> --help' for a command's options; examples in README.md and examples/.",
    '',
  ].join('\n');
}

function describeHardware(): string[] {
  return listBundled('hardware').map((name) => {
    const hw = loadHardware(name);
    const fp8 = hw.peak_tflops.fp8 ? `, fp8 ${hw.peak_tflops.fp8}` : '';
    return (
      `${name.padEnd(16)} ${hw.vendor}: ${hw.memory_gib} GiB, bf16 ${hw.peak_tflops.bf16}${fp8} TFLOP/s, HBM ${hw.hbm_tb_s} TB/s, ` +
      `scale-up ${hw.scaleup_gb_s_per_gpu} GB/s x ${hw.scaleup_domain_gpus} GPUs, scale-out ${hw.scaleout_gb_s_per_gpu} GB/s, ${hw.gpus_per_node} per node`
    );
  });
}

function describeSweeps(): string[] {
  return listBundled('sweeps').map((name) => {
    const file = loadSweepFile(name);
    const search = Object.entries(file.search)
      .map(([key, value]) => `${key}=${Array.isArray(value) ? `[${value.join(', ')}]` : String(value)}`)
      .join(' ');
    const model = file.model.replace(/^.*\/configs\/models\//, '').replace(/\.yaml$/, '');
    const parts = [`${model} on ${file.hardware.join(', ')}`, `formula ${file.formula ?? DEFAULT_FORMULA}`];
    if (search) parts.push(search);
    if (file.where) parts.push(`where ${file.where}`);
    if (file.top) parts.push(`top ${file.top.k} by ${file.top.by}${file.top.per ? ` per ${file.top.per}` : ''}`);
    return `${name.padEnd(28)} ${parts.join('; ')}`;
  });
}

/** The alias the user typed, in an error that names its option: `--config-name x.yaml` is answered as --config-name. */
function inTypedWords(error: InputError, argv: string[]): InputError {
  const reason = error.message.slice(error.field.length + 2);
  // Search options reach shared code from flags: `search.ngpus_range` is --ngpus here.
  const search = /^search\.(\w+)$/.exec(error.field);
  if (search && search[1] in SEARCH_KEYS) return new InputError(`--${SEARCH_KEYS[search[1] as SearchKeyName].flag}`, reason);
  if (error.field !== '--model') return error;
  const typed = argv.find((arg) => arg === '--config-name' || arg.startsWith('--config-name=') || arg === '-m');
  if (!typed) return error;
  return new InputError(typed.split('=')[0], reason);
}

/** Runs the CLI and returns the exit code: 0 ok, 1 failure, 2 bad input. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  commandLine = argv;
  // A closed terminal (SIGHUP) is an interrupt like Ctrl-C: partial files go, and the exit code is 128 + signal.
  const onSignal = (signal: NodeJS.Signals) => {
    abortOpenSinks();
    process.stderr.write(`parasweep: interrupted by ${signal}; no output written\n`);
    process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 15));
  };
  for (const signal of HANDLED_SIGNALS) process.once(signal, onSignal);

  if (argv.length === 0) {
    // Not a run: the list of commands, on stderr with exit 2 as for any other missing input.
    process.stderr.write(commandList());
    return 2;
  }
  const parser = yargs(joinStdoutFlag(argv))
    .scriptName('parasweep')
    .parserConfiguration({ 'camel-case-expansion': false, 'dot-notation': false, 'parse-numbers': false })
    .version(version())
    .strict()
    .command(
      'sweep [overrides..]',
      COMMAND_HELP.sweep,
      (args) =>
        withReportOptions(withSweepOptions(args)).option('pareto', {
          type: 'boolean',
          describe: 'add an on_pareto column: on the front of memory against step time among fitting rows, per --per group (default ngpus); runs the sweep twice',
        }),
      async (args) => {
        const runs = sweepRuns(args);
        // The PoC wrote memory_estimation.csv without being asked; its command keeps doing so.
        const pocMode = (runs[0].formula ?? 'full') === 'poc' || argv.some((word) => word === '--config-name' || word.startsWith('--config-name='));
        await runSweepCommand(runs, args, { pocOutput: pocMode ? DEFAULT_POC_OUTPUT : undefined, progressTotal });
      },
    )
    .command(
      'best [overrides..]',
      COMMAND_HELP.best,
      (args) => withReportOptions(withSweepOptions(args)),
      async (args) => {
        const run = { ...sweepOptions({ ...args, top: undefined, by: undefined, per: undefined, order: undefined }), fitsOnly: true };
        const rank = { k: args.top ?? 5, by: args.by, per: args.per, order: args.order as 'asc' | 'desc' | undefined };
        await runBestCommand(run, args, rank, { progressTotal });
      },
    )
    .command(
      'explain [overrides..]',
      COMMAND_HELP.explain,
      (args) =>
        withSweepOptions(args)
          .option('json', { type: 'boolean', default: false, describe: 'print the explanation as JSON' })
          .option('emit', {
            type: 'string',
            choices: [...LAUNCH_TARGETS],
            describe: "print this config's launch arguments instead: megatron (pretrain_gpt.py flags) or torchtitan (a Trainer.Config function)",
          })
          .group(['json', 'emit'], 'Output:'),
      (args) => {
        if (args.emit) {
          process.stdout.write(explainLaunch({ ...sweepOptions(args), target: args.emit as LaunchTarget }).text);
          return;
        }
        const explanation = explain(sweepOptions(args));
        process.stdout.write(args.json ? JSON.stringify(explanation, null, 2) + '\n' : formatExplanation(explanation));
      },
    )
    .command(
      'report <results>',
      COMMAND_HELP.report,
      (args) =>
        args
          .positional('results', { type: 'string', demandOption: true, describe: 'results of a sweep (--formula full)' })
          .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'the report, e.g. report.html' })
          .option('ngpus', { type: 'number', describe: 'GPU count of the heatmap, Pareto and breakdown charts [default: the largest with a fitting config]' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no summary on stderr' }),
      (args) => runReportCommand(args),
    )
    .command(
      'check [overrides..]',
      COMMAND_HELP.check,
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
      COMMAND_HELP.calibrate,
      (args) =>
        args
          .option('write', { type: 'boolean', default: false, describe: 'write the fitted constants to configs/calibration.yaml' })
          .option('docs', { type: 'string', describe: 'replace the calibration tables of this Markdown file (docs/time-model.md)' })
          .option('readme', { type: 'string', describe: 'replace the per-regime error table of this Markdown file (README.md)' }),
      (args) => {
        const { report } = runCalibration(args.write);
        if (args.docs !== undefined) writeCalibrationDocs(args.docs, report);
        if (args.readme !== undefined) writeCalibrationReadme(args.readme, report);
        process.stdout.write(report + '\n');
      },
    )
    .command(
      'launch [overrides..]',
      COMMAND_HELP.launch,
      (args) =>
        withSweepOptions(args).option('emit', {
          type: 'string',
          choices: [...LAUNCH_TARGETS],
          demandOption: true,
          describe: 'megatron: pretrain_gpt.py flags; torchtitan: a Trainer.Config function',
        }).group(['emit'], 'Output:'),
      async (args) => {
        // launch picks one config and prints it: ranking and file outputs belong to sweep and best.
        for (const flag of ['top', 'by', 'per', 'order', 'out', 'csv'] as const) {
          if (args[flag] !== undefined) throw new InputError(`--${flag}`, 'launch prints the fastest fitting config to stdout; use it with sweep or best');
        }
        const result = await launch({ ...sweepOptions(args), target: args.emit as LaunchTarget });
        process.stdout.write(result.text);
      },
    )
    .command(
      'models',
      COMMAND_HELP.models,
      (args) => args,
      () => {
        process.stdout.write(describeModels().join('\n') + '\n');
      },
    )
    .command('hardware', COMMAND_HELP.hardware, (args) => args, () => {
      process.stdout.write(describeHardware().join('\n') + '\n');
    })
    .command('sweeps', COMMAND_HELP.sweeps, (args) => args, () => {
      process.stdout.write(describeSweeps().join('\n') + '\n');
    })
    .example('$0 sweep --model llama3.1-405b --ngpus 8,128,1024,10240 --out results.arrow --csv results.csv', 'sweep and write Arrow and CSV')
    .example('$0 sweep --config-name examples/poc/llama3.1-405b.yaml +ngpus_range="[8, 128, 1024, 10240]" --formula poc --csv memory_estimation.csv', "the PoC's command, same CSV")
    .example('$0 sweep --model mixtral-8x7b --tp 1..8:*2 --ngpus 8..1024:8 model.seq_length=4096 -o mixtral.arrow', 'ranges and overrides')
    .example('$0 sweep --model llama3.1-405b --ngpus 1..10240 --fits-only --top 3 --per ngpus -o top.parquet', 'the 3 fastest fitting configs for every GPU count')
    .example("$0 sweep --sweep mixtral-wide --where 'total_gib < 70 and mfu > 0.3' -o mixtral.arrow", 'a sweep file, filtered')
    .example('$0 best --model llama3.1-405b --hardware h100-sxm-80gb --ngpus 1024,8192', 'what to run on 1024 and 8192 GPUs')
    .example('$0 explain --model llama3.1-405b --ngpus 8192 --tp 8 --pp 16 --schedule interleaved --vpp 4 --cp 1 --zero 3 --grad-reduce microbatch --reshard false --sp true --recompute none --offload none --mbs 1', 'every stage of one config')
    .example('$0 sweep --model llama3.1-405b --ngpus 8..1024:8 -o - | duckdb -c "..."', 'Arrow IPC on stdout, for a pipe')
    .example('$0 report results.parquet -o report.html', 'charts of a sweep, one self-contained HTML file')
    .example('$0 check --model deepseek-v3', 'GPU against CPU, column by column')
    .example('$0 models', 'the bundled models')
    .demandCommand(1, `name a command: ${COMMANDS.map(([name]) => name).join(', ')}`)
    .recommendCommands()
    .fail((message, error) => {
      // getOptions is public in yargs (yargs-factory.js) but missing from @types/yargs; it holds the running command's.
      const options = (parser as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions();
      throw error ?? yargsError(message, Object.keys(options.key), argv[0]);
    })
    .help();

  try {
    await parser.parseAsync();
  } catch (error) {
    abortOpenSinks();
    if (error instanceof InputError) {
      process.stderr.write(`parasweep: ${inTypedWords(error, argv).message}\n`);
      exitCode = 2;
    } else if (error instanceof EngineError || error instanceof OutputError) {
      process.stderr.write(`parasweep: ${error.message}\n`);
      exitCode = 1;
    } else {
      process.stderr.write(`parasweep: error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      exitCode = 1;
    }
  } finally {
    for (const signal of HANDLED_SIGNALS) process.removeListener(signal, onSignal);
  }
  return exitCode;
}
