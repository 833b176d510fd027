import { InputError } from '../errors.js';

/** No search dimension needs more values than this; a bigger range is almost certainly a typo. */
const MAX_RANGE_VALUES = 1_000_000;

const RANGE_PATTERN = /^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?::\s*(\*?)\s*(\d+)\s*)?$/;

/**
 * Expands `start..end[:step]` (arithmetic, end inclusive) or `start..end:*factor` (geometric), for example
 * `8..10240:8` or `1..1024:*2`. Returns undefined when `text` is not a range.
 */
export function expandRange(text: string, field: string): number[] | undefined {
  const match = RANGE_PATTERN.exec(text);
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  const geometric = match[3] === '*';
  const step = match[4] === undefined ? 1 : Number(match[4]);
  if (end < start) throw new InputError(field, `range '${text.trim()}' is empty (end ${end} < start ${start})`);
  if (geometric) {
    if (step < 2) throw new InputError(field, `range '${text.trim()}': a geometric factor must be at least 2`);
    if (start < 1) throw new InputError(field, `range '${text.trim()}': a geometric range must start at 1 or more`);
  } else if (step < 1) {
    throw new InputError(field, `range '${text.trim()}': step must be at least 1`);
  }
  const values: number[] = [];
  for (let v = start; v <= end; v = geometric ? v * step : v + step) {
    values.push(v);
    if (values.length > MAX_RANGE_VALUES) {
      throw new InputError(field, `range '${text.trim()}' has more than ${MAX_RANGE_VALUES} values`);
    }
  }
  return values;
}

function splitListText(text: string): string[] {
  let body = text.trim();
  if (body.startsWith('[') && body.endsWith(']')) body = body.slice(1, -1);
  if (body.trim() === '') return [];
  return body.split(',').map((part) => part.trim().replace(/^['"]|['"]$/g, ''));
}

/** The raw items of a search value: a list, a scalar, or a string such as `8,128`, `[8, 128]` or `8..64:8`. */
function items(value: unknown, field: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') return expandRange(value, field) ?? splitListText(value);
  if (typeof value === 'number' || typeof value === 'boolean') return [value];
  throw new InputError(field, `must be a list, a range like 8..64:8, or a value; got ${JSON.stringify(value)}`);
}

function rejectDuplicates<T>(values: T[], field: string): T[] {
  const seen = new Set<T>();
  for (const value of values) {
    if (seen.has(value)) throw new InputError(field, `lists ${String(value)} twice`);
    seen.add(value);
  }
  if (values.length === 0) throw new InputError(field, 'is empty');
  return values;
}

/** Parses an integer search dimension. Every value must be an integer of at least `min`. */
export function parseIntList(value: unknown, field: string, min = 1): number[] {
  const out: number[] = [];
  for (const item of items(value, field)) {
    if (typeof item === 'string') {
      const expanded = expandRange(item, field);
      if (expanded) {
        out.push(...expanded);
        continue;
      }
    }
    // Decimal digits only: Number() would also take `0x10`, `1e3` and `0b1`, which no one means as a GPU count.
    const n = typeof item === 'string' && /^\s*[+-]?\d+\s*$/.test(item) ? Number(item) : item;
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      throw new InputError(field, `must hold integers, got ${JSON.stringify(item)}`);
    }
    if (n < min) throw new InputError(field, `values must be at least ${min}, got ${n}`);
    // Grid values reach the GPU as i32 and its model as f32, which holds integers exactly up to 2^24.
    if (n > 2 ** 24) throw new InputError(field, `value ${n} is too large (at most ${2 ** 24})`);
    out.push(n);
  }
  for (const n of out) {
    if (n < min) throw new InputError(field, `values must be at least ${min}, got ${n}`);
  }
  return rejectDuplicates(out, field);
}

/** Parses a categorical search dimension, mapping aliases to canonical names. */
export function parseEnumList<T extends string>(
  value: unknown,
  field: string,
  allowed: readonly T[],
  aliases: Record<string, T> = {},
): T[] {
  const out: T[] = [];
  for (const item of items(value, field)) {
    const key = String(item);
    const canonical = (aliases[key] ?? aliases[key.toLowerCase()] ?? key) as T;
    if (!allowed.includes(canonical)) {
      throw new InputError(field, `unknown value ${JSON.stringify(item)}; allowed: ${allowed.join(', ')}`);
    }
    out.push(canonical);
  }
  return rejectDuplicates(out, field);
}

/** Parses a boolean search dimension (`[true, false]`, `on`, `off`, `1`, `0`). */
export function parseBoolList(value: unknown, field: string): boolean[] {
  const out: boolean[] = [];
  for (const item of items(value, field)) {
    const key = String(item).toLowerCase();
    if (['true', 'on', 'yes', '1'].includes(key)) out.push(true);
    else if (['false', 'off', 'no', '0'].includes(key)) out.push(false);
    else throw new InputError(field, `must hold true or false, got ${JSON.stringify(item)}`);
  }
  return rejectDuplicates(out, field);
}
