import { InputError } from '../errors.js';

/**
 * A small declarative schema, so that every config key is checked the same way and an unknown key, a wrong type
 * or an out-of-range value always produces an error that names the full key path.
 */
export type FieldSpec =
  | { kind: 'int'; min?: number; max?: number; optional?: boolean; default?: number }
  | { kind: 'number'; min?: number; max?: number; exclusiveMin?: number; optional?: boolean; default?: number }
  | { kind: 'string'; optional?: boolean; default?: string }
  | { kind: 'enum'; values: readonly string[]; aliases?: Record<string, string>; optional?: boolean; default?: string }
  | { kind: 'bool'; optional?: boolean; default?: boolean }
  | { kind: 'object'; fields: Record<string, FieldSpec>; optional?: boolean }
  | { kind: 'any'; optional?: boolean };

export type Plain = Record<string, unknown>;

export function isPlainObject(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `a list`;
  if (typeof value === 'string') return `"${value}"`;
  if (isPlainObject(value)) return 'a mapping';
  return String(value);
}

/** The candidate nearest to `name` by edit distance, if it is near enough to be a typo of it. */
export function closest(name: string, candidates: string[]): string | undefined {
  // Levenshtein distance; suggests the intended key for a typo.
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const a = name.toLowerCase();
    const b = candidate.toLowerCase();
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const saved = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
        previous = saved;
      }
    }
    const distance = row[b.length];
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

export function unknownKeyError(path: string, key: string, known: string[]): InputError {
  const suggestion = closest(key, known);
  const hint = suggestion ? ` (did you mean ${suggestion}?)` : ` (known keys: ${known.join(', ')})`;
  return new InputError(path ? `${path}.${key}` : key, `unknown key${hint}`);
}

/** Checks `value` against `spec` and returns it with defaults filled in. */
export function validate(spec: FieldSpec, value: unknown, path: string): unknown {
  if (value === undefined || value === null) {
    if ('default' in spec && spec.default !== undefined) return spec.default;
    if (spec.optional) return undefined;
    throw new InputError(path, 'required key is missing');
  }
  switch (spec.kind) {
    case 'int': {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        throw new InputError(path, `must be an integer, got ${describe(value)}`);
      }
      checkRange(spec, value, path);
      return value;
    }
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new InputError(path, `must be a number, got ${describe(value)}`);
      }
      checkRange(spec, value, path);
      if (spec.exclusiveMin !== undefined && !(value > spec.exclusiveMin)) {
        throw new InputError(path, `must be greater than ${spec.exclusiveMin}, got ${value}`);
      }
      return value;
    }
    case 'string':
      if (typeof value !== 'string') throw new InputError(path, `must be a string, got ${describe(value)}`);
      return value;
    case 'enum': {
      if (typeof value !== 'string') {
        throw new InputError(path, `must be one of ${spec.values.join(', ')}, got ${describe(value)}`);
      }
      const canonical = spec.aliases?.[value] ?? value;
      if (!spec.values.includes(canonical)) {
        throw new InputError(path, `must be one of ${spec.values.join(', ')}, got ${describe(value)}`);
      }
      return canonical;
    }
    case 'bool':
      if (typeof value !== 'boolean') throw new InputError(path, `must be true or false, got ${describe(value)}`);
      return value;
    case 'any':
      return value;
    case 'object': {
      if (!isPlainObject(value)) throw new InputError(path, `must be a mapping, got ${describe(value)}`);
      const known = Object.keys(spec.fields);
      for (const key of Object.keys(value)) {
        if (!(key in spec.fields)) throw unknownKeyError(path, key, known);
      }
      const out: Plain = {};
      for (const key of known) {
        const checked = validate(spec.fields[key], value[key], path ? `${path}.${key}` : key);
        if (checked !== undefined) out[key] = checked;
      }
      return out;
    }
  }
}

function checkRange(spec: { min?: number; max?: number }, value: number, path: string): void {
  if (spec.min !== undefined && value < spec.min) {
    const what = spec.min === 1 ? 'must be positive' : `must be at least ${spec.min}`;
    throw new InputError(path, `${what}, got ${value}`);
  }
  if (spec.max !== undefined && value > spec.max) {
    throw new InputError(path, `must be at most ${spec.max}, got ${value}`);
  }
}
