import { existsSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { InputError } from '../errors.js';
import { FORMULAS } from '../formulas/index.js';
import { readYamlFile, resolveConfigPath } from './load.js';
import { FieldSpec, isPlainObject, validate } from './schema.js';
import { parseSearchValue, SEARCH_KEYS, SearchKeyName } from './space.js';

/** A saved sweep: which model on which hardware, the search ranges, and how to filter and rank the result. */
export interface SweepFile {
  /** `name:` in the file, else the file name without `.yaml`. */
  name: string;
  /** Absolute path of the sweep file. */
  source: string;
  /** Bundled model name, or a path (relative paths are resolved against the sweep file's directory). */
  model: string;
  /** One or more bundled hardware names or paths; the sweep runs once per entry. */
  hardware: string[];
  formula?: string;
  headroom?: number;
  /** Search ranges as written (lists, scalars or range strings such as '8..1024:8'), keyed by SEARCH_KEYS names. */
  search: Partial<Record<SearchKeyName, unknown>>;
  /** Hydra-style overrides (`model.seq_length=8192`), applied to the model config. */
  overrides: string[];
  /** Filter expression, passed through unparsed. */
  where?: string;
  top?: { k: number; by: string; per?: string; ascending?: boolean };
}

const FIELD = 'sweep';

const SEARCH_SPEC: FieldSpec = {
  kind: 'object',
  optional: true,
  fields: Object.fromEntries(Object.keys(SEARCH_KEYS).map((key) => [key, { kind: 'any', optional: true } as FieldSpec])),
};

export const SWEEP_SPEC: FieldSpec = {
  kind: 'object',
  fields: {
    name: { kind: 'string', optional: true },
    model: { kind: 'string' },
    hardware: { kind: 'any', optional: true },
    formula: { kind: 'enum', values: Object.keys(FORMULAS), optional: true },
    headroom: { kind: 'number', min: 0, optional: true },
    search: SEARCH_SPEC,
    overrides: { kind: 'any', optional: true },
    where: { kind: 'string', optional: true },
    top: {
      kind: 'object',
      optional: true,
      fields: {
        k: { kind: 'int', min: 1 },
        by: { kind: 'string' },
        per: { kind: 'string', optional: true },
        ascending: { kind: 'bool', optional: true },
      },
    },
  },
};

/** A string, or a non-empty list of distinct strings. */
function stringList(value: unknown, path: string, scalarOk: boolean): string[] {
  if (typeof value === 'string' && scalarOk) return [value];
  if (!Array.isArray(value)) {
    throw new InputError(path, `must be ${scalarOk ? 'a string or ' : ''}a list of strings, got ${JSON.stringify(value)}`);
  }
  const seen = new Set<string>();
  value.forEach((item, i) => {
    if (typeof item !== 'string') throw new InputError(`${path}[${i}]`, `must be a string, got ${JSON.stringify(item)}`);
    if (seen.has(item)) throw new InputError(path, `lists ${item} twice`);
    seen.add(item);
  });
  return value as string[];
}

/** A relative path in the sweep file means relative to the sweep file, when such a file exists there. */
function besideSweepFile(nameOrPath: string, source: string): string {
  if (isAbsolute(nameOrPath)) return nameOrPath;
  for (const candidate of [nameOrPath, `${nameOrPath}.yaml`]) {
    if (existsSync(join(dirname(source), candidate))) return join(dirname(source), nameOrPath);
  }
  return nameOrPath;
}

/**
 * Loads a sweep file: a bundled name (configs/sweeps/NAME.yaml, see `listBundled('sweeps')`) or a path. Every key is
 * validated (unknown keys, wrong types, bad ranges, missing model or hardware files) with errors that name the key,
 * e.g. `sweep.search.tp_rnge: unknown key (did you mean tp_range?)`. Nothing is evaluated.
 */
export function loadSweepFile(nameOrPath: string): SweepFile {
  const source = resolveConfigPath('sweeps', nameOrPath, '--sweep');
  const doc = readYamlFile(source, '--sweep');
  if (!isPlainObject(doc)) throw new InputError(source, 'must be a YAML mapping with at least a model: key');
  const checked = validate(SWEEP_SPEC, doc, FIELD) as {
    name?: string;
    model: string;
    hardware?: unknown;
    formula?: string;
    headroom?: number;
    search?: Record<string, unknown>;
    overrides?: unknown;
    where?: string;
    top?: SweepFile['top'];
  };

  const model = besideSweepFile(checked.model, source);
  resolveConfigPath('models', model, `${FIELD}.model`);
  const hardware =
    checked.hardware === undefined
      ? ['h100-sxm-80gb']
      : stringList(checked.hardware, `${FIELD}.hardware`, true).map((entry) => besideSweepFile(entry, source));
  if (hardware.length === 0) throw new InputError(`${FIELD}.hardware`, 'is empty');
  hardware.forEach((entry, i) => resolveConfigPath('hardware', entry, `${FIELD}.hardware[${i}]`));

  if (checked.headroom !== undefined && !(checked.headroom < 10)) {
    throw new InputError(`${FIELD}.headroom`, `must be between 0 and 10, got ${checked.headroom}`);
  }

  const search: Partial<Record<SearchKeyName, unknown>> = {};
  for (const [key, value] of Object.entries(checked.search ?? {})) {
    // Parsed now so that a bad range fails at load time, naming its key; kept as written for prepareSweep.
    parseSearchValue(key as SearchKeyName, value, `${FIELD}.search.${key}`);
    search[key as SearchKeyName] = value;
  }

  const overrides = checked.overrides === undefined ? [] : stringList(checked.overrides, `${FIELD}.overrides`, true);

  const sweep: SweepFile = {
    name: checked.name ?? basename(source).replace(/\.ya?ml$/, ''),
    source,
    model,
    hardware,
    search,
    overrides,
  };
  if (checked.formula !== undefined) sweep.formula = checked.formula;
  if (checked.headroom !== undefined) sweep.headroom = checked.headroom;
  if (checked.where !== undefined) sweep.where = checked.where;
  if (checked.top !== undefined) sweep.top = checked.top;
  return sweep;
}
