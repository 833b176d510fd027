import { describe, expect, it } from 'vitest';
import { OFFLOAD_MODES, RECOMPUTE_MODES, SCHEDULES } from '../src/config/space.js';
import { InputError } from '../src/errors.js';
import { ColumnRef, compileWhere, describeColumns, whereColumns, wgslF32Literal } from '../src/filter/where.js';

// ---------------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------------

const COLUMNS: ColumnRef[] = [
  { name: 'ngpus', source: 'grid', index: 0, kind: 'int' },
  { name: 'tp', source: 'grid', index: 1, kind: 'int' },
  { name: 'pp', source: 'grid', index: 2, kind: 'int' },
  { name: 'schedule', source: 'grid', index: 3, kind: 'category', labels: SCHEDULES },
  { name: 'sp', source: 'grid', index: 4, kind: 'bool' },
  { name: 'recompute', source: 'grid', index: 5, kind: 'category', labels: RECOMPUTE_MODES },
  { name: 'num_microbatches', source: 'grid', index: 6, kind: 'int' },
  { name: 'total_gib', source: 'computed', index: 0, kind: 'float' },
  { name: 'fits', source: 'computed', index: 1, kind: 'bool' },
  { name: 'mfu', source: 'computed', index: 2, kind: 'float' },
  { name: 'step_time_s', source: 'computed', index: 3, kind: 'float' },
  { name: 'heaviest_stage', source: 'computed', index: 4, kind: 'int' },
];
const GRID_WIDTH = 7;
const COMPUTED_WIDTH = 5;
const col = (name: string) => COLUMNS.find((c) => c.name === name)!;

/** The shader's own formatting (src/engine/gpu/shader.ts). */
const GRID = (k: number) => `grid[${k}u * params.stride + i]`;
const COMPUTED = (name: string) => `r.${name}`;

/** mulberry32: a small seeded PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Rows {
  grid: Int32Array[];
  computed: Float32Array[];
  n: number;
}

/** Random rows with f32 computed values (as the GPU returns them), with repeated and special values. */
function randomRows(n: number, random: () => number): Rows {
  const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)];
  const grid = Array.from({ length: GRID_WIDTH }, () => new Int32Array(n));
  const computed = Array.from({ length: COMPUTED_WIDTH }, () => new Float32Array(n));
  for (let i = 0; i < n; i++) {
    grid[0][i] = pick([1, 8, 64, 1024, 10240]);
    grid[1][i] = pick([1, 2, 4, 8]);
    grid[2][i] = pick([1, 2, 4, 8, 16]);
    grid[3][i] = pick([0, 1, 2]);
    grid[4][i] = pick([0, 1]);
    grid[5][i] = pick([0, 1, 2]);
    grid[6][i] = pick([0, 1, 3, 64, 512]);
    computed[0][i] = pick([0, 70, 69.99999, 0.4, 80, random() * 140]);
    computed[1][i] = pick([0, 1]);
    computed[2][i] = pick([0.4, 0.5, 0, -0.25, random(), NaN]);
    computed[3][i] = pick([0.5, 2, 1e-3, random() * 10]);
    computed[4][i] = pick([0, 1, 3, 15]);
  }
  return { grid, computed, n };
}

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error('expected an InputError, but nothing was thrown');
}

const message = (text: string, columns = COLUMNS) => inputError(() => compileWhere(text, columns)).message;

// ---------------------------------------------------------------------------------------------------------------
// A random generator of well-typed expressions, with the meaning of each computed independently (in f64)
// ---------------------------------------------------------------------------------------------------------------

type Row = { g: ArrayLike<number>[]; c: ArrayLike<number>[]; i: number };

interface Gen {
  text: string;
  /** Precedence level of the text's top operator: or 1, and 2, not 3, comparison 4, + - 5, * / 6, unary 7, atom 8. */
  level: number;
  num?: (row: Row) => number;
  bool?: (row: Row) => boolean;
  /** Whether it does arithmetic on a column (where f32 and f64 may legitimately disagree near a boundary). */
  arith: boolean;
}

function generator(random: () => number) {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)];
  const space = () => pick(['', ' ', ' ', '  ']);
  const wrap = (g: Gen, min: number): string => (g.level < min || random() < 0.15 ? `(${space()}${g.text}${space()})` : g.text);
  const read = (ref: ColumnRef) => (row: Row) => (ref.source === 'grid' ? row.g : row.c)[ref.index][row.i];
  const numeric = COLUMNS.filter((c) => c.kind === 'int' || c.kind === 'float');

  function num(depth: number): Gen {
    const choice = depth <= 0 ? Math.floor(random() * 2) : Math.floor(random() * 5);
    if (choice === 0) {
      const [text, value] = pick([
        ['70', 70],
        ['0.4', 0.4],
        ['.5', 0.5],
        ['2e3', 2000],
        ['1.5E-2', 0.015],
        ['4', 4],
        ['3.', 3],
        ['1e-3', 0.001],
        ['64', 64],
      ] as const);
      return { text, level: 8, num: () => value, arith: false };
    }
    if (choice === 1) {
      const ref = pick(numeric);
      const get = read(ref);
      return { text: ref.name, level: 8, num: get, arith: false };
    }
    if (choice === 2) {
      const a = num(depth - 1);
      const f = a.num!;
      return { text: `-${space()}${wrap(a, 7)}`, level: 7, num: (r) => -f(r), arith: a.arith };
    }
    const a = num(depth - 1);
    const b = num(depth - 1);
    const fa = a.num!;
    const fb = b.num!;
    const hasColumn = !/^[-0-9.eE ()]+$/.test(a.text + b.text);
    if (choice === 3) {
      const op = pick(['+', '-'] as const);
      const text = `${wrap(a, 5)}${space()}${op}${space()}${wrap(b, 6)}`;
      return { text, level: 5, num: op === '+' ? (r) => fa(r) + fb(r) : (r) => fa(r) - fb(r), arith: hasColumn };
    }
    const op = pick(['*', '/'] as const);
    const text = `${wrap(a, 6)}${space()}${op}${space()}${wrap(b, 7)}`;
    return { text, level: 6, num: op === '*' ? (r) => fa(r) * fb(r) : (r) => fa(r) / fb(r), arith: hasColumn };
  }

  function bool(depth: number): Gen {
    const choice = depth <= 0 ? Math.floor(random() * 3) : Math.floor(random() * 7);
    if (choice === 0) {
      const ref = pick(COLUMNS.filter((c) => c.kind === 'bool'));
      const get = read(ref);
      return { text: ref.name, level: 8, bool: (r) => get(r) !== 0, arith: false };
    }
    if (choice === 1) {
      const ref = pick(COLUMNS.filter((c) => c.kind === 'category'));
      const code = Math.floor(random() * ref.labels!.length);
      const label = ref.labels![code];
      const quoted = pick([`'${label}'`, `"${label}"`]);
      const equal = random() < 0.5;
      const op = equal ? '==' : '!=';
      const text = random() < 0.5 ? `${ref.name}${space()}${op}${space()}${quoted}` : `${quoted}${space()}${op}${space()}${ref.name}`;
      const get = read(ref);
      return { text, level: 4, bool: (r) => (get(r) === code) === equal, arith: false };
    }
    if (choice === 2 || choice === 3) {
      const a = num(depth - 1);
      const b = num(depth - 1);
      const fa = a.num!;
      const fb = b.num!;
      const op = pick(['<', '<=', '>', '>=', '==', '!='] as const);
      const cmp = {
        '<': (x: number, y: number) => x < y,
        '<=': (x: number, y: number) => x <= y,
        '>': (x: number, y: number) => x > y,
        '>=': (x: number, y: number) => x >= y,
        '==': (x: number, y: number) => x === y,
        '!=': (x: number, y: number) => x !== y,
      }[op];
      return {
        text: `${wrap(a, 5)}${space()}${op}${space()}${wrap(b, 5)}`,
        level: 4,
        bool: (r) => cmp(fa(r), fb(r)),
        arith: a.arith || b.arith,
      };
    }
    if (choice === 4) {
      const a = bool(depth - 1);
      const f = a.bool!;
      const keyword = pick(['not ', 'NOT ', '!', 'not(', '! ']);
      const text = keyword.endsWith('(') ? `${keyword}${a.text})` : `${keyword}${wrap(a, 3)}`;
      return { text, level: 3, bool: (r) => !f(r), arith: a.arith };
    }
    if (choice === 5) {
      const a = bool(depth - 1);
      const b = bool(depth - 1);
      const fa = a.bool!;
      const fb = b.bool!;
      const and = random() < 0.5;
      const keyword = and ? pick([' and ', ' AND ', '&&', ' && ']) : pick([' or ', ' Or ', '||', ' || ']);
      const text = `${wrap(a, and ? 2 : 1)}${keyword}${wrap(b, and ? 3 : 2)}`;
      return { text, level: and ? 2 : 1, bool: and ? (r) => fa(r) && fb(r) : (r) => fa(r) || fb(r), arith: a.arith || b.arith };
    }
    // Conditions compared with each other: always parenthesized (comparisons do not chain).
    const a = bool(depth - 1);
    const b = bool(depth - 1);
    const fa = a.bool!;
    const fb = b.bool!;
    const equal = random() < 0.5;
    return {
      text: `(${a.text}) ${equal ? '==' : '!='} (${b.text})`,
      level: 4,
      bool: (r) => (fa(r) === fb(r)) === equal,
      arith: a.arith || b.arith,
    };
  }

  return { bool };
}

// ---------------------------------------------------------------------------------------------------------------
// A tiny evaluator of the WGSL we emit, with WGSL's typing (i32 vs f32, no mixing) and f32 arithmetic
// ---------------------------------------------------------------------------------------------------------------

type WgslValue = { type: 'i32' | 'f32'; value: number } | { type: 'bool'; value: boolean };

/** Parses a WGSL literal we emit (decimal or hex float, or an integer) to its exact value. */
function parseWgslNumber(text: string): WgslValue {
  const hex = /^0x([0-9a-f]+)p(-?\d+)$/.exec(text);
  if (hex) return { type: 'f32', value: parseInt(hex[1], 16) * 2 ** Number(hex[2]) };
  if (/^\d+\.\d+$/.test(text)) return { type: 'f32', value: Number(text) };
  if (/^\d+$/.test(text)) return { type: 'i32', value: Number(text) };
  throw new Error(`not a literal we emit: ${text}`);
}

/**
 * Evaluates the emitted expression for one row. Grid reads are `gK` (i32), computed reads `c_NAME` (f32). Throws
 * on anything outside the emitted subset: an unparenthesized chain, a type mix WGSL would reject.
 */
function evalWgsl(source: string, rows: Rows, i: number): boolean {
  const tokens = source.match(/\(|\)|&&|\|\||==|!=|<=|>=|<|>|!|\+|-|\*|\/|0x[0-9a-f]+p-?\d+|[0-9]+(?:\.[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*|\S/g)!;
  let p = 0;
  const expect1 = (t: string) => {
    if (tokens[p++] !== t) throw new Error(`expected ${t} at token ${p - 1} of ${source}`);
  };
  const f32 = (v: WgslValue): number => {
    if (v.type !== 'f32') throw new Error(`expected f32, got ${v.type} in ${source}`);
    return v.value;
  };
  function primary(): WgslValue {
    const t = tokens[p++];
    if (t === '(') {
      if (tokens[p] === '!') {
        p++;
        const v = primary();
        expect1(')');
        if (v.type !== 'bool') throw new Error(`! on ${v.type}`);
        return { type: 'bool', value: !v.value };
      }
      if (tokens[p] === '-') {
        p++;
        const v = primary();
        expect1(')');
        if (v.type === 'bool') throw new Error('- on bool');
        return { type: v.type, value: v.type === 'f32' ? Math.fround(-v.value) : -v.value };
      }
      const left = primary();
      if (tokens[p] === ')') {
        p++;
        return left;
      }
      const op = tokens[p++];
      const right = primary();
      expect1(')');
      return binary(op, left, right);
    }
    if (t === 'true' || t === 'false') return { type: 'bool', value: t === 'true' };
    if (t === 'f32') {
      expect1('(');
      const v = primary();
      expect1(')');
      if (v.type !== 'i32') throw new Error(`f32() of ${v.type}`);
      return { type: 'f32', value: Math.fround(v.value) };
    }
    if (/^g\d+$/.test(t)) return { type: 'i32', value: rows.grid[Number(t.slice(1))][i] };
    if (t.startsWith('c_')) return { type: 'f32', value: rows.computed[col(t.slice(2)).index][i] };
    return parseWgslNumber(t);
  }
  function binary(op: string, a: WgslValue, b: WgslValue): WgslValue {
    if (op === '&&' || op === '||') {
      if (a.type !== 'bool' || b.type !== 'bool') throw new Error(`${op} on ${a.type}, ${b.type}`);
      return { type: 'bool', value: op === '&&' ? a.value && b.value : a.value || b.value };
    }
    if (a.type !== b.type) throw new Error(`${op} mixes ${a.type} and ${b.type} in ${source}`);
    if (a.type === 'bool' || b.type === 'bool') {
      if (op !== '==' && op !== '!=') throw new Error(`${op} on bool`);
      return { type: 'bool', value: (a.value === b.value) === (op === '==') };
    }
    const x = a.value;
    const y = b.value as number;
    switch (op) {
      case '<':
        return { type: 'bool', value: x < y };
      case '<=':
        return { type: 'bool', value: x <= y };
      case '>':
        return { type: 'bool', value: x > y };
      case '>=':
        return { type: 'bool', value: x >= y };
      case '==':
        return { type: 'bool', value: x === y };
      case '!=':
        return { type: 'bool', value: x !== y };
    }
    if (a.type !== 'f32') throw new Error(`i32 arithmetic emitted: ${source}`);
    const fx = f32(a);
    const fy = f32(b);
    const value = op === '+' ? fx + fy : op === '-' ? fx - fy : op === '*' ? fx * fy : fx / fy;
    return { type: 'f32', value: Math.fround(value) };
  }
  const result = primary();
  if (p !== tokens.length) throw new Error(`trailing tokens in ${source}`);
  if (result.type !== 'bool') throw new Error(`not a bool: ${source}`);
  return result.value;
}

const EVAL_GRID = (k: number) => `g${k}`;
const EVAL_COMPUTED = (name: string) => `c_${name}`;

// ---------------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------------

describe('compileWhere: meaning', () => {
  const rows = randomRows(2000, prng(1));
  const each = (text: string, expected: (r: Row) => boolean) => {
    const where = compileWhere(text, COLUMNS);
    for (let i = 0; i < rows.n; i++) {
      const row = { g: rows.grid, c: rows.computed, i };
      expect(where.test(rows.grid, rows.computed, i), `${text} at row ${i}`).toBe(expected(row));
    }
  };
  const g = (name: string, r: Row) => r.g[col(name).index][r.i];
  const c = (name: string, r: Row) => r.c[col(name).index][r.i];

  it('evaluates the examples of the brief', () => {
    each('total_gib < 70 and mfu > 0.4', (r) => c('total_gib', r) < 70 && c('mfu', r) > 0.4);
    each(
      "fits and (schedule == 'interleaved' or pp <= 4)",
      (r) => c('fits', r) !== 0 && (g('schedule', r) === 1 || g('pp', r) <= 4),
    );
    each('not sp', (r) => g('sp', r) === 0);
    each('tp * pp <= 64', (r) => g('tp', r) * g('pp', r) <= 64);
    each('step_time_s / num_microbatches < 0.5', (r) => c('step_time_s', r) / g('num_microbatches', r) < 0.5);
  });

  it('binds or < and < not < comparison < + - < * / < unary minus', () => {
    each('fits or sp and tp > 2', (r) => c('fits', r) !== 0 || (g('sp', r) !== 0 && g('tp', r) > 2));
    each('not fits and sp', (r) => c('fits', r) === 0 && g('sp', r) !== 0);
    each('not tp > 2', (r) => !(g('tp', r) > 2));
    each('tp + pp * 2 > 9', (r) => g('tp', r) + g('pp', r) * 2 > 9);
    each('tp - pp - 1 < 0', (r) => g('tp', r) - g('pp', r) - 1 < 0);
    each('ngpus / tp / pp >= 8', (r) => g('ngpus', r) / g('tp', r) / g('pp', r) >= 8);
    each('-tp * 2 < -5', (r) => -g('tp', r) * 2 < -5);
    each('- -tp == tp', () => true);
    each('not not sp', (r) => g('sp', r) !== 0);
    each('(fits or sp) and tp > 2', (r) => (c('fits', r) !== 0 || g('sp', r) !== 0) && g('tp', r) > 2);
  });

  it('accepts keywords in any case and the C-style operators', () => {
    each('fits AND NOT sp Or tp == 8', (r) => (c('fits', r) !== 0 && g('sp', r) === 0) || g('tp', r) === 8);
    each('fits && !sp || tp == 8', (r) => (c('fits', r) !== 0 && g('sp', r) === 0) || g('tp', r) === 8);
    each('!(tp != 8)', (r) => g('tp', r) === 8);
  });

  it('reads numbers in every form', () => {
    each('total_gib < 7e1', (r) => c('total_gib', r) < 70);
    each('total_gib < 0.7E+2', (r) => c('total_gib', r) < 70);
    each('mfu > .4', (r) => c('mfu', r) > 0.4);
    each('mfu >= 4.', (r) => c('mfu', r) >= 4);
    each('step_time_s > 1e-3', (r) => c('step_time_s', r) > 0.001);
  });

  it('compares categorical columns by label, either way round, with either quote', () => {
    each("schedule == 'gpipe'", (r) => g('schedule', r) === 2);
    each('"1f1b" != schedule', (r) => g('schedule', r) !== 0);
    each("recompute == 'full' and schedule != \"interleaved\"", (r) => g('recompute', r) === 2 && g('schedule', r) !== 1);
  });

  it('compares conditions with == and !=', () => {
    each('fits == sp', (r) => (c('fits', r) !== 0) === (g('sp', r) !== 0));
    each('(tp > 2) != (pp > 2)', (r) => g('tp', r) > 2 !== g('pp', r) > 2);
  });

  it('folds constant parts in f64', () => {
    each('mfu > 1 / 2', (r) => c('mfu', r) > 0.5);
    each('1 < 2 and sp', (r) => g('sp', r) !== 0);
    each('1 > 2 or sp', (r) => g('sp', r) !== 0);
    each('1 > 2 and sp', () => false);
    each('heaviest_stage == 2 * 2 - 1', (r) => c('heaviest_stage', r) === 3);
  });

  it('treats NaN as IEEE does: every comparison but != is false', () => {
    const computed = [new Float64Array([0]), new Float64Array([0]), new Float64Array([NaN])];
    expect(compileWhere('mfu > 0 or mfu <= 0', COLUMNS).test([], computed, 0)).toBe(false);
    expect(compileWhere('not mfu > 0.4', COLUMNS).test([], computed, 0)).toBe(true);
    expect(compileWhere('mfu != 0.5', COLUMNS).test([], computed, 0)).toBe(true);
    expect(compileWhere('mfu == mfu', COLUMNS).test([], computed, 0)).toBe(false);
  });

  it('lists the referenced columns once each, in order of appearance', () => {
    const where = compileWhere('mfu > 0.4 and (tp * pp <= 8 or mfu < 0.1) and fits', COLUMNS);
    expect(where.referenced.map((c) => c.name)).toEqual(['mfu', 'tp', 'pp', 'fits']);
    expect(where.referenced[0]).toBe(col('mfu'));
    expect(where.text).toBe('mfu > 0.4 and (tp * pp <= 8 or mfu < 0.1) and fits');
  });

  it('agrees with an independent evaluation on 400 random expressions', () => {
    const random = prng(7);
    const gen = generator(random);
    const data = randomRows(300, prng(8));
    let compiled = 0;
    for (let n = 0; n < 400; n++) {
      const g = gen.bool(1 + Math.floor(random() * 4));
      let where;
      try {
        where = compileWhere(g.text, COLUMNS);
      } catch (error) {
        // Constant parts may fold to a division by zero; nothing else may fail.
        expect((error as Error).message, g.text).toMatch(/division by zero/);
        continue;
      }
      compiled++;
      for (let i = 0; i < data.n; i++) {
        const expected = g.bool!({ g: data.grid, c: data.computed, i });
        expect(where.test(data.grid, data.computed, i), `${g.text} at row ${i}`).toBe(expected);
      }
    }
    expect(compiled).toBeGreaterThan(350);
  });

  it('is fast: a million rows in well under a second', () => {
    const data = randomRows(1 << 20, prng(3));
    const where = compileWhere("total_gib < 70 and mfu > 0.4 and (schedule == 'interleaved' or pp <= 4) and not sp", COLUMNS);
    const start = performance.now();
    let kept = 0;
    for (let i = 0; i < data.n; i++) if (where.test(data.grid, data.computed, i)) kept++;
    const ms = performance.now() - start;
    expect(kept).toBeGreaterThan(0);
    console.log(`where: ${((ms * 1e6) / data.n).toFixed(1)} ns per row`);
    expect(ms).toBeLessThan(2000);
  });
});

describe('compileWhere: errors', () => {
  it('names an unknown column, its position and the closest names', () => {
    expect(message('total_gb < 70')).toBe("--where: unknown column 'total_gb' at position 1 (did you mean total_gib?)");
    expect(message('mfu > 0.4 and TP > 2')).toBe("--where: unknown column 'TP' at position 15 (did you mean tp?)");
    expect(message('step_time > 1')).toBe("--where: unknown column 'step_time' at position 1 (did you mean step_time_s?)");
    expect(message('zzz > 1')).toMatch(/^--where: unknown column 'zzz' at position 1 \(columns: ngpus, tp, pp, schedule, /);
  });

  it('says where a value is missing', () => {
    expect(message('total_gib < and mfu > 0.4')).toBe(
      `--where: expected a value after '<' at position 13 (near "and mfu > 0.4")`,
    );
    expect(message('total_gib <')).toBe("--where: expected a value after '<' at position 12 (the end of the expression)");
    expect(message('fits and')).toBe("--where: expected a value after 'and' at position 9 (the end of the expression)");
    expect(message('* 2 > tp')).toBe(`--where: expected a value at the start at position 1 (near "* 2 > tp")`);
    expect(message('()')).toBe(`--where: expected a value after '(' at position 2 (near ")")`);
  });

  it('rejects what the language does not have', () => {
    expect(message('tp = 2')).toBe(`--where: use '==' to compare, not '=' at position 4 (near "= 2")`);
    expect(message('max(tp, pp) > 2')).toBe(`--where: function calls are not supported ('max(') at position 1 (near "max(tp, pp) > 2")`);
    expect(message('tp > 1; pp > 1')).toBe(`--where: unexpected character ';' at position 7 (near "; pp > 1")`);
    expect(message('tp > 1 & pp > 1')).toBe(`--where: unexpected '&' (write '&&', or 'and') at position 8 (near "& pp > 1")`);
    expect(message('1 < tp < 4')).toBe(
      `--where: comparisons do not chain: write 'a < b and b < c' instead at position 8 (near "< 4")`,
    );
    expect(message('+tp > 1')).toBe(`--where: unexpected '+' (there is no unary plus) at position 1 (near "+tp > 1")`);
    expect(message('tp > 1 pp > 1')).toBe(`--where: expected an operator or the end after '1', got 'pp' at position 8 (near "pp > 1")`);
    expect(message('(tp > 1')).toBe(`--where: expected ')' for the '(' opened at position 1, at position 8 (the end of the expression)`);
    expect(message('tp > 1)')).toBe(`--where: unmatched ')' at position 7 (near ")")`);
    expect(message("schedule == 'gpipe")).toBe(`--where: unterminated string (no closing ') at position 13 (near "'gpipe")`);
    expect(message('70gib > 1')).toBe(`--where: unexpected 'g' right after the number '70' at position 1 (near "70gib > 1")`);
    expect(message('1e > tp')).toBe(`--where: expected digits in the exponent of a number at position 2 (near "e > tp")`);
    expect(message('')).toBe('--where: the expression is empty');
    expect(message('   ')).toBe('--where: the expression is empty');
  });

  it('shortens long snippets', () => {
    expect(message('tp > 1 pp > 1 and mfu > 0.5 and total_gib < 70')).toBe(
      `--where: expected an operator or the end after '1', got 'pp' at position 8 (near "pp > 1 and mfu > 0.5...")`,
    );
  });

  it('types categorical columns', () => {
    const categorical = "--where: 'schedule' at position 1 is categorical; compare it with == or != against one of: 1f1b, interleaved, gpipe, zb-h1, dualpipe";
    expect(message('schedule < 2')).toBe(categorical);
    expect(message('schedule == 1')).toBe(categorical);
    expect(message('schedule')).toBe(categorical);
    expect(message('schedule + 1 > 0')).toBe(categorical);
    expect(message("schedule == recompute")).toBe(categorical);
    expect(message("schedule == 'foo'")).toBe("--where: unknown label 'foo' for schedule at position 13 (one of: 1f1b, interleaved, gpipe, zb-h1, dualpipe)");
    expect(message("schedule == 'GPipe'")).toBe("--where: unknown label 'GPipe' for schedule at position 13 (did you mean 'gpipe'?)");
    expect(message("tp == '2'")).toBe("--where: the string '2' at position 7 can only be compared with == or != to a categorical column, not to 'tp' (a number)");
    expect(message("'a' == 'a'")).toMatch(/can only be compared with == or != to a categorical column/);
    expect(message("'1f1b'")).toBe('--where: the expression must be a condition, got a string');
  });

  it('types conditions and numbers', () => {
    expect(message('tp + 1')).toBe('--where: the expression must be a condition, got a number');
    expect(message('total_gib')).toBe('--where: the expression must be a condition, got a number');
    expect(message('fits == 1')).toBe("--where: 'fits' at position 1 is a condition (true/false), not a number: write 'fits' or 'not fits'");
    expect(message('sp + 1 > 0')).toBe("--where: '+' at position 4 needs numbers on both sides, got 'sp' (a condition)");
    expect(message('tp and fits')).toBe("--where: 'and' at position 4 needs conditions on both sides, got 'tp' (a number); compare it, e.g. tp > 0");
    expect(message('fits || 2')).toBe("--where: '||' at position 6 needs conditions on both sides, got a number; compare it, e.g. x > 0");
    expect(message('not mfu')).toBe("--where: 'not' at position 1 needs a condition, got 'mfu' (a number); compare it, e.g. mfu > 0");
    expect(message('-fits')).toBe("--where: '-' at position 1 needs a number, got 'fits' (a condition)");
    expect(message('(tp > 1) < (pp > 1)')).toBe("--where: '<' at position 10 compares numbers, got conditions on both sides");
    expect(message('(tp > 1) == 2')).toBe("--where: '==' at position 10 needs two numbers or two conditions, got a condition and a number");
  });

  it('keeps literals within the f32 range the GPU compares in', () => {
    expect(message('total_gib < 1e39')).toBe('--where: the number 1e39 at position 13 is outside the f32 range the GPU uses (magnitude at most 3.4e38)');
    expect(message('total_gib < 1e30 * 1e30')).toMatch(/^--where: the number 1.0000000000000001e\+60 at position 18 is outside the f32 range/);
    expect(message('mfu > 1 / 0')).toBe('--where: division by zero at position 9');
  });

  it('rejects a categorical column without labels (a programming error, not an InputError)', () => {
    expect(() => compileWhere('x == 1', [{ name: 'x', source: 'grid', index: 0, kind: 'category' }])).toThrow(/has no labels/);
  });
});

describe('compileWhere: WGSL', () => {
  const wgsl = (text: string) => compileWhere(text, COLUMNS).wgsl(GRID, COMPUTED);

  it('emits the examples of the brief', () => {
    expect(wgsl('total_gib < 70 and mfu > 0.4')).toBe('((r.total_gib < 70.0) && (r.mfu >= 0.4000000059604644775390625))');
    expect(wgsl("fits and (schedule == 'interleaved' or pp <= 4)")).toBe(
      '((r.fits != 0.0) && ((grid[3u * params.stride + i] == 1) || (grid[2u * params.stride + i] <= 4)))',
    );
    expect(wgsl('not sp')).toBe('(!(grid[4u * params.stride + i] != 0))');
    expect(wgsl('tp * pp <= 64')).toBe('((f32(grid[1u * params.stride + i]) * f32(grid[2u * params.stride + i])) <= 64.0)');
    expect(wgsl('step_time_s / num_microbatches < 0.5')).toBe(
      '((r.step_time_s / f32(grid[6u * params.stride + i])) < 0.5)',
    );
  });

  it('compares with the nearest f32 and the operator that keeps the f64 meaning', () => {
    // 0.4 rounds up to 0.4000000059604644775390625 in f32: no f32 lies between, so x > 0.4 is x >= that f32.
    expect(wgsl('mfu > 0.4')).toBe('(r.mfu >= 0.4000000059604644775390625)');
    expect(wgsl('mfu >= 0.4')).toBe('(r.mfu >= 0.4000000059604644775390625)');
    expect(wgsl('mfu < 0.4')).toBe('(r.mfu < 0.4000000059604644775390625)');
    expect(wgsl('mfu <= 0.4')).toBe('(r.mfu < 0.4000000059604644775390625)');
    // 0.7 rounds down to 0.699999988079071044921875: x < 0.7 is x <= that f32.
    expect(wgsl('mfu < 0.7')).toBe('(r.mfu <= 0.699999988079071044921875)');
    expect(wgsl('mfu <= 0.7')).toBe('(r.mfu <= 0.699999988079071044921875)');
    expect(wgsl('mfu > 0.7')).toBe('(r.mfu > 0.699999988079071044921875)');
    expect(wgsl('mfu >= 0.7')).toBe('(r.mfu > 0.699999988079071044921875)');
    // An f32 never equals a number that is not an f32.
    expect(wgsl('mfu == 0.4')).toBe('false');
    expect(wgsl('mfu != 0.4')).toBe('true');
    expect(wgsl('mfu == 0.5')).toBe('(r.mfu == 0.5)');
    // A literal on the left is moved to the right.
    expect(wgsl('70 > total_gib')).toBe('(r.total_gib < 70.0)');
  });

  it('compares grid columns as i32 against integers and as f32 otherwise', () => {
    expect(wgsl('pp >= 2')).toBe('(grid[2u * params.stride + i] >= 2)');
    expect(wgsl('pp > -2')).toBe('(grid[2u * params.stride + i] > (-2))');
    expect(wgsl('pp < 2.5')).toBe('(f32(grid[2u * params.stride + i]) < 2.5)');
    expect(wgsl('tp <= pp')).toBe('(grid[1u * params.stride + i] <= grid[2u * params.stride + i])');
    expect(wgsl('tp < heaviest_stage')).toBe('(f32(grid[1u * params.stride + i]) < r.heaviest_stage)');
    expect(wgsl('ngpus < 3000000000')).toBe('(f32(grid[0u * params.stride + i]) < 3000000000.0)');
    expect(wgsl('-pp < -2')).toBe('((-f32(grid[2u * params.stride + i])) < (-2.0))');
  });

  it('emits conditions, constants and small or large literals', () => {
    expect(wgsl('fits == sp')).toBe('((r.fits != 0.0) == (grid[4u * params.stride + i] != 0))');
    expect(wgsl("schedule != 'gpipe'")).toBe('(grid[3u * params.stride + i] != 2)');
    expect(wgsl('1 < 2 and sp')).toBe('(grid[4u * params.stride + i] != 0)');
    expect(wgsl('1 > 2')).toBe('false');
    expect(wgsl('mfu > 1e-7')).toBe('(r.mfu >= 0xd6bf95p-47)');
    expect(wgsl('total_gib < 1e12')).toBe('(r.total_gib <= 999999995904.0)');
  });

  it('emits a computed categorical column as an f32 code', () => {
    const columns: ColumnRef[] = [{ name: 'mode', source: 'computed', index: 0, kind: 'category', labels: OFFLOAD_MODES }];
    expect(compileWhere("mode == 'optimizer'", columns).wgsl(GRID, COMPUTED)).toBe('(r.mode == 1.0)');
  });

  it('writes only WGSL-safe characters, whatever the user typed', () => {
    const random = prng(11);
    const gen = generator(random);
    for (let n = 0; n < 300; n++) {
      const text = gen.bool(1 + Math.floor(random() * 4)).text;
      let where;
      try {
        where = compileWhere(text, COLUMNS);
      } catch {
        continue;
      }
      expect(where.wgsl(GRID, COMPUTED), text).toMatch(/^[A-Za-z0-9_ .()[\]*+\-/<>=!&|]+$/);
      // No user text passes through: no quotes, and the only names are the columns' own.
      expect(where.wgsl(GRID, COMPUTED)).not.toMatch(/['"]/);
    }
    const evil = compileWhere("schedule == 'x); } fn evil() { //'", [
      { name: 'schedule', source: 'grid', index: 0, kind: 'category', labels: ['x); } fn evil() { //'] },
    ]);
    expect(evil.wgsl(GRID, COMPUTED)).toBe('(grid[0u * params.stride + i] == 0)');
  });

  it('decides as test() does on f32 data: exactly without column arithmetic, almost always with it', () => {
    const random = prng(21);
    const gen = generator(random);
    const data = randomRows(300, prng(22));
    let exactChecked = 0;
    let approximate = 0;
    let mismatches = 0;
    for (let n = 0; n < 400; n++) {
      const g = gen.bool(1 + Math.floor(random() * 4));
      let where;
      try {
        where = compileWhere(g.text, COLUMNS);
      } catch {
        continue;
      }
      const source = where.wgsl(EVAL_GRID, EVAL_COMPUTED);
      for (let i = 0; i < data.n; i++) {
        const cpu = where.test(data.grid, data.computed, i);
        const gpu = evalWgsl(source, data, i);
        if (!g.arith) {
          expect(gpu, `${g.text} -> ${source} at row ${i}`).toBe(cpu);
          exactChecked++;
        } else {
          approximate++;
          if (gpu !== cpu) mismatches++;
        }
      }
    }
    expect(exactChecked).toBeGreaterThan(10000);
    expect(mismatches).toBeLessThanOrEqual(approximate * 0.01);
  });

  it('formats f32 literals that denote their value exactly', () => {
    const random = prng(5);
    const samples = [0, 1, 70, 0.5, 0.4, 0.1, 1e-3, 1e-7, 1e-30, 1e-45, 2 ** -149, 3.4028234663852886e38, 16777217, 123456.789, -0.25, -70];
    for (let n = 0; n < 2000; n++) samples.push((random() - 0.5) * 10 ** Math.floor(random() * 40 - 20));
    for (const sample of samples) {
      const x = Math.fround(sample);
      const text = wgslF32Literal(x);
      const negative = text.startsWith('(-');
      const body = negative ? text.slice(2, -1) : text;
      expect(body, text).toMatch(/^(\d+\.\d+|0x[0-9a-f]+p-?\d+)$/);
      const value = parseWgslNumber(body).value as number;
      expect(negative ? -value : value, text).toBe(x);
      // Decimal forms are exact: the decimal itself is an f32, so no rounding is left to the compiler.
      if (!body.startsWith('0x')) expect(Math.fround(Number(body))).toBe(Number(body));
    }
    expect(wgslF32Literal(70)).toBe('70.0');
    expect(wgslF32Literal(-0.5)).toBe('(-0.5)');
    expect(wgslF32Literal(0)).toBe('0.0');
    expect(() => wgslF32Literal(0.1)).toThrow(/not a finite f32/);
  });
});

describe('whereColumns and describeColumns', () => {
  it('builds column refs from grid specs and result columns', () => {
    const refs = whereColumns(
      [{ name: 'tp' }, { name: 'schedule', labels: SCHEDULES }, { name: 'sp' }],
      [
        { name: 'model', from: 'constant', value: 'llama' },
        { name: 'tp', from: 'grid', column: 'tp' },
        { name: 'total_gib', from: 'computed', index: 0 },
        { name: 'fits', from: 'computed', index: 1, kind: 'bool' },
        { name: 'heaviest_stage', from: 'computed', index: 2, kind: 'int' },
      ],
    );
    expect(refs).toEqual([
      { name: 'tp', source: 'grid', index: 0, kind: 'int' },
      { name: 'schedule', source: 'grid', index: 1, kind: 'category', labels: SCHEDULES },
      { name: 'sp', source: 'grid', index: 2, kind: 'bool' },
      { name: 'total_gib', source: 'computed', index: 0, kind: 'float' },
      { name: 'fits', source: 'computed', index: 1, kind: 'bool' },
      { name: 'heaviest_stage', source: 'computed', index: 2, kind: 'int' },
    ]);
    expect(compileWhere("not sp and schedule == 'gpipe' and fits", refs).test([[1], [2], [0]], [[1], [1], [0]], 0)).toBe(true);
  });

  it('describes columns with their labels', () => {
    expect(describeColumns(COLUMNS.slice(2, 5))).toBe('pp, schedule (1f1b|interleaved|gpipe|zb-h1|dualpipe), sp');
  });
});
