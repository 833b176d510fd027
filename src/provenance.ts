import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCalibration } from './config/calibration.js';
import { PACKAGE_ROOT } from './config/load.js';
import type { ParsedDimension, SearchKeyName } from './config/space.js';
import type { Engine } from './engine/types.js';
import type { Formula, SweepContext } from './formulas/types.js';
import type { FloatType } from './results/columns.js';

/**
 * Schema-level metadata of every output (Arrow schema metadata, Parquet key-value metadata): what produced the
 * rows, so that an fp8 run and a bf16 run, or a GPU and a CPU run, can be told apart from the file alone.
 * Values are strings; structured ones are JSON. docs/outputs.md lists the keys.
 */
export const PROVENANCE_PREFIX = 'parasweep.';

let packageVersion: string | undefined;

export function parasweepVersion(): string {
  packageVersion ??= JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')).version as string;
  return packageVersion;
}

/** What provenance reads of a prepared sweep (sweep.ts's PreparedSweep has it; named here so that sweep.ts,
 * which calls provenance, is not imported back). */
export interface ProvenanceRun {
  context: SweepContext;
  formula: Pick<Formula, 'name'>;
  space: ReadonlyMap<SearchKeyName, ParsedDimension>;
}

export interface ProvenanceInput {
  /** Every run sharing the output (one per hardware of a sweep file). */
  prepared: ProvenanceRun[];
  engine: Pick<Engine, 'kind' | 'description'>;
  floatType: FloatType;
  /** The command line that produced the file, as argv words; absent when called as a library. */
  commandLine?: readonly string[];
  /** The selection applied (--where, --fits-only, --top), as the user gave it. */
  selection?: { where?: string; fitsOnly?: boolean; top?: unknown };
  /** `--shard i/n`: which slice of the grid the rows are (grid/shard.ts). */
  shard?: { index: number; count: number };
}

export function provenance(input: ProvenanceInput): Map<string, string> {
  const first = input.prepared[0];
  const { config, headroom } = first.context;
  const trainer = config.trainer;
  const json = (value: unknown) => JSON.stringify(value);
  const space = Object.fromEntries(
    [...first.space.values()].map((dimension) => [dimension.key, dimension.values.map((v) => dimension.labels?.[v] ?? v)]),
  );
  const entries: Array<[string, string]> = [
    ['version', parasweepVersion()],
    ['formula', first.formula.name],
    ['engine', input.engine.kind],
    ['adapter', input.engine.description],
    ['float_type', input.floatType === 'f64' ? 'float64' : 'float32'],
    ['command_line', input.commandLine ? json(input.commandLine) : 'library call'],
    ['model_source', config.source],
    ['model', json(config.model)],
    ['trainer', json(trainer)],
    [
      'dtypes',
      json({
        param: trainer.param_dtype,
        compute: trainer.compute_dtype ?? (trainer.param_dtype === 'fp8' ? 'bfloat16' : trainer.param_dtype),
        grad: trainer.grad_dtype,
        optimizer_state: trainer.optimizer_state_dtype,
        master: trainer.master_weights ? trainer.master_dtype : null,
      }),
    ],
    ['hardware', json(input.prepared.map((run) => run.context.hardware))],
    ['headroom', String(headroom)],
    ['calibration', json(first.context.calibration ?? loadCalibration())],
    ['search_space', json(space)],
    ['selection', json(input.selection ?? {})],
    ...(input.shard ? [['shard', `${input.shard.index}/${input.shard.count}`] as [string, string]] : []),
  ];
  return new Map(entries.map(([key, value]) => [PROVENANCE_PREFIX + key, value]));
}
