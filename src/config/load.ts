import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { InputError } from '../errors.js';
import { MODEL_SPEC, ModelConfig, TRAINER_SPEC, TrainerConfig, validateModel, validateTrainer } from './model.js';
import { FieldSpec, isPlainObject, Plain, unknownKeyError } from './schema.js';
import { SEARCH_KEYS } from './space.js';
import { huggingFaceToModelDoc, isHuggingFaceConfig } from '../hf/config.js';

/** The package root: src/config and dist/config both sit two levels below it. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUNDLED_CONFIG_DIR = join(PACKAGE_ROOT, 'configs');

/** Alias expansions allowed per document: configs use a handful; a bomb needs thousands (yaml's own default). */
const MAX_YAML_ALIASES = 100;

/** YAML 1.1, as Hydra/OmegaConf read it (so `yes`/`no`/`on`/`off` and `1.` mean what PoC users expect). */
export function parseYamlText(text: string, source: string): unknown {
  try {
    return parseYaml(text, { version: '1.1', uniqueKeys: true, prettyErrors: true, maxAliasCount: MAX_YAML_ALIASES });
  } catch (error) {
    if (error instanceof YAMLParseError) {
      const where = error.linePos ? ` at line ${error.linePos[0].line}, column ${error.linePos[0].col}` : '';
      const reason = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      throw new InputError(source, `invalid YAML${where}: ${reason}`);
    }
    // Aliases are expanded by the parser: a billion-laughs document or an alias to a missing anchor throws a
    // plain Error (ReferenceError) from deep inside it; it is still the file's fault, so one line, exit 2.
    const reason = (error as Error).message.split('\n')[0];
    const why = /alias count/i.test(reason) ? `too many aliases (at most ${MAX_YAML_ALIASES}): ${reason}` : reason;
    throw new InputError(source, `invalid YAML: ${why}`);
  }
}

export function readYamlFile(path: string, field: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : String(code);
    throw new InputError(field, `cannot read ${path}: ${reason}`);
  }
  return parseYamlText(text, path);
}

function readJsonFile(path: string, field: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(field, `cannot read ${path}: ${code === 'EISDIR' ? 'is a directory' : String(code)}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(path, `invalid JSON: ${(error as Error).message}`);
  }
}

/** Names of the bundled configs of one kind (`models`, `hardware`, `sweeps`), sorted. */
export function listBundled(kind: 'models' | 'hardware' | 'sweeps'): string[] {
  const dir = join(BUNDLED_CONFIG_DIR, kind);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => file.slice(0, -'.yaml'.length))
    .sort();
}

/**
 * A path (as given, or with `.yaml` added) wins over a bundled name, so that PoC users running from their own
 * directory get their own file. Otherwise `name` (with or without `.yaml`) is looked up among the bundled configs.
 */
export function resolveConfigPath(kind: 'models' | 'hardware' | 'sweeps', nameOrPath: string, field: string): string {
  for (const candidate of [nameOrPath, `${nameOrPath}.yaml`]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return resolve(candidate);
  }
  // A downloaded Hugging Face model is a directory holding its config.json.
  const hfConfig = join(nameOrPath, 'config.json');
  if (kind === 'models' && existsSync(hfConfig) && statSync(hfConfig).isFile()) return resolve(hfConfig);
  const name = basename(nameOrPath).replace(/\.(ya?ml|json)$/, '');
  const bundled = join(BUNDLED_CONFIG_DIR, kind, `${name}.yaml`);
  // Only a bare name means a bundled config: `NAME.yaml` is a file the user meant (the PoC's own, say), and
  // switching silently to the bundled file of that name would give other numbers under the same label.
  if (nameOrPath === name && existsSync(bundled)) return bundled;
  const looksLikePath = nameOrPath.includes('/') || /\.(ya?ml|json)$/.test(nameOrPath);
  const choices = listBundled(kind).join(', ');
  const hint = existsSync(bundled) && nameOrPath !== name ? ` (the bundled ${name} is named without a path or .yaml)` : '';
  throw new InputError(
    field,
    looksLikePath
      ? `cannot read ${nameOrPath}: no such file${hint}`
      : `no bundled ${kind === 'models' ? 'model' : kind} named '${nameOrPath}' and no such file (bundled: ${choices})`,
  );
}

/** A Hydra-style override: `key=value`, `+key=value`, `++key=value` or `~key`. */
export interface Override {
  path: string[];
  value: unknown;
  remove: boolean;
  text: string;
}

const OVERRIDE_PATTERN = /^(~|\+\+|\+)?([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)(?:=(.*))?$/s;

export function parseOverride(text: string): Override {
  const match = OVERRIDE_PATTERN.exec(text.trim());
  if (!match) throw new InputError(text, 'not an override; expected key=value, +key=value or ~key');
  const [, prefix, key, rawValue] = match;
  if (prefix === '~') {
    if (rawValue !== undefined) throw new InputError(key, `~${key} removes a key and takes no value`);
    return { path: key.split('.'), value: undefined, remove: true, text };
  }
  if (rawValue === undefined) throw new InputError(key, `override '${text}' has no value (expected ${key}=VALUE)`);
  // Values are YAML flow scalars or lists, as in Hydra: `[8, 128]`, `true`, `NO_OP`, `8..64:8` (a string).
  const value = rawValue.trim() === '' ? '' : parseYamlText(rawValue, key);
  return { path: key.split('.'), value, remove: false, text };
}

/** The spec for a key path, or undefined when the path is not a config key. */
function specAt(path: string[]): FieldSpec | 'search' | undefined {
  if (path.length === 1 && path[0] in SEARCH_KEYS) return 'search';
  let spec: FieldSpec | undefined =
    path[0] === 'model' ? MODEL_SPEC : path[0] === 'trainer' ? TRAINER_SPEC : undefined;
  for (const part of path.slice(1)) {
    if (!spec || spec.kind !== 'object') return undefined;
    spec = spec.fields[part];
  }
  return spec;
}

export function applyOverrides(doc: Plain, overrides: Override[]): void {
  for (const override of overrides) {
    const key = override.path.join('.');
    if (!specAt(override.path)) {
      const parent = override.path.slice(0, -1);
      const parentSpec = parent.length === 0 ? undefined : specAt(parent);
      const known =
        parentSpec && parentSpec !== 'search' && parentSpec.kind === 'object'
          ? Object.keys(parentSpec.fields)
          : ['model', 'trainer', ...Object.keys(SEARCH_KEYS)];
      throw unknownKeyError(parent.join('.'), override.path[override.path.length - 1], known);
    }
    let node: Plain = doc;
    for (const part of override.path.slice(0, -1)) {
      const next = node[part];
      if (next === undefined || next === null) node[part] = {};
      else if (!isPlainObject(next)) throw new InputError(key, `cannot set inside ${part}, which is not a mapping`);
      node = node[part] as Plain;
    }
    const leaf = override.path[override.path.length - 1];
    if (override.remove) delete node[leaf];
    else node[leaf] = override.value;
  }
}

export interface LoadedConfig {
  source: string;
  model: ModelConfig;
  trainer: TrainerConfig;
  /** Search-space keys as written in the file or overrides, parsed later against the formula's dimensions. */
  search: Record<string, unknown>;
}

/** Loads a model config (bundled name or path), applies overrides, and validates every key. */
export function loadConfig(nameOrPath: string, overrides: Override[] = [], field = '--model'): LoadedConfig {
  const source = resolveConfigPath('models', nameOrPath, field);
  const raw = source.endsWith('.json') ? readJsonFile(source, field) : readYamlFile(source, field);
  // A Hugging Face config.json becomes a model document first, so that overrides apply to it as to any YAML.
  const doc = isHuggingFaceConfig(raw) ? huggingFaceToModelDoc(raw, source) : raw;
  if (!isPlainObject(doc)) throw new InputError(source, 'must be a YAML mapping with a model: section');
  applyOverrides(doc, overrides);
  const search: Record<string, unknown> = {};
  for (const key of Object.keys(doc)) {
    if (key === 'model' || key === 'trainer') continue;
    if (key in SEARCH_KEYS) search[key] = doc[key];
    else throw unknownKeyError('', key, ['model', 'trainer', ...Object.keys(SEARCH_KEYS)]);
  }
  return { source, model: validateModel(doc.model), trainer: validateTrainer(doc.trainer), search };
}
