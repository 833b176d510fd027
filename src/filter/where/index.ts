/**
 * `--where`: a small condition language over result columns, e.g. `total_gib < 70 and mfu > 0.4`,
 * `fits and (schedule == 'interleaved' or pp <= 4)`, `not sp`, `tp * pp <= 64`.
 *
 * Safe by construction: the text is tokenized and parsed by hand into a tree, type-checked against the columns,
 * and compiled into nested JS closures (for the CPU) and into a WGSL boolean expression (for the GPU). User text
 * never reaches eval, new Function or a shader except as numbers we format and column reads the caller formats.
 *
 * Grammar (lowest precedence first; keywords are case-insensitive):
 *
 *   or     := and  (('or' | '||') and)*
 *   and    := not  (('and' | '&&') not)*
 *   not    := ('not' | '!') not | cmp
 *   cmp    := add  (('<' | '<=' | '>' | '>=' | '==' | '!=') add)?      comparisons do not chain
 *   add    := mul  (('+' | '-') mul)*
 *   mul    := unary (('*' | '/') unary)*
 *   unary  := '-' unary | primary
 *   primary:= number | identifier | 'string' | "string" | '(' or ')'
 *
 * Types: numbers (int and float columns, literals, arithmetic), conditions (comparisons, bool columns, and/or/not)
 * and categorical columns, which can only be compared with == or != against one of their labels, written as a
 * quoted string. The whole expression must be a condition.
 */
import { InputError } from '../../errors.js';
import type { ResultColumn } from '../../formulas/types.js';
import type { GridColumnSpec } from '../../grid/grid.js';
import { Checker } from './checker.js';
import { boolFn } from './cpu.js';
import { tokenize } from './lexer.js';
import { Parser } from './parser.js';
import { ColumnRef, CompiledWhere, FIELD, MAX_WHERE_DEPTH, MAX_WHERE_LENGTH, Node } from './types.js';
import { boolWgsl } from './wgsl.js';

export type { ColumnRef, CompiledWhere } from './types.js';
export { MAX_WHERE_DEPTH, MAX_WHERE_LENGTH } from './types.js';
export { describeColumns } from './parser.js';
export { wgslF32Literal } from './wgsl.js';

function collectRefs(node: Node, out: ColumnRef[]): void {
  switch (node.k) {
    case 'col':
      if (!out.includes(node.ref)) out.push(node.ref);
      return;
    case 'neg':
    case 'not':
      collectRefs(node.arg, out);
      return;
    case 'arith':
    case 'cmp':
    case 'logic':
      collectRefs(node.left, out);
      collectRefs(node.right, out);
      return;
    default:
      return;
  }
}

/**
 * Parses and type-checks a `--where` expression against `columns`; throws InputError('--where', ...) with one line
 * naming the problem (and its position) otherwise.
 *
 * Semantics, defined once for both engines: `test` decides in IEEE 754 f64 on the values the engine produced
 * (f64 from the CPU, f32 widened from the GPU): `x / 0` is ±Infinity, `0 / 0` is NaN, every comparison with NaN is
 * false except `!=`, and nothing overflows before 1.8e308. `wgsl` is only the GPU's pre-filter, never the decision:
 * it decides exactly what it can (a column against a number or a column, integer arithmetic within 2^24) and keeps
 * every row whose comparison involves other arithmetic, which f32 would round, overflow or divide by zero
 * differently; the sweep re-applies `test` to every row the GPU keeps. So both engines keep the rows `test` keeps.
 * `slack` raises the bounds by a few levels (and 16 characters each) for a condition the caller builds around a
 * user's expression that already passed them (`fits and (WHERE)`).
 * Grid values are i32 on the GPU and at most 2^24 (src/config/ranges.ts), so exact in f32.
 */
export function compileWhere(text: string, columns: ColumnRef[], slack = 0): CompiledWhere {
  if (typeof text !== 'string') throw new InputError(FIELD, 'expected an expression');
  if (text.length > MAX_WHERE_LENGTH + slack * 16) {
    throw new InputError(FIELD, `the expression is ${text.length} characters long (at most ${MAX_WHERE_LENGTH})`);
  }
  for (const column of columns) {
    if (column.kind === 'category' && (!column.labels || column.labels.length === 0)) {
      throw new Error(`--where: categorical column ${column.name} has no labels`);
    }
  }
  const tree = new Parser(text, tokenize(text), columns, MAX_WHERE_DEPTH + slack).parse();
  const bool = new Checker().root(tree);
  const referenced: ColumnRef[] = [];
  collectRefs(tree, referenced);
  const test = boolFn(bool);
  return {
    text,
    referenced,
    test,
    wgsl: (gridExpr, computedExpr) => boolWgsl(bool, { grid: gridExpr, computed: computedExpr }),
  };
}

/**
 * The columns a `--where` may name for a formula: every grid column (categorical when it has labels, a condition
 * when listed in `boolGridColumns`, an integer otherwise) and every computed result column (its `kind`, float by
 * default). Grid indices are positions in `grid` (the chunk's column order); computed indices are the result
 * column's output index. Constant result columns are not filterable.
 */
export function whereColumns(
  grid: readonly GridColumnSpec[],
  results: readonly ResultColumn[],
  boolGridColumns: readonly string[] = ['sp'],
): ColumnRef[] {
  const refs: ColumnRef[] = grid.map((column, index) => {
    if (column.labels) return { name: column.name, source: 'grid', index, kind: 'category', labels: column.labels };
    return { name: column.name, source: 'grid', index, kind: boolGridColumns.includes(column.name) ? 'bool' : 'int' };
  });
  for (const result of results) {
    if (result.from !== 'computed') continue;
    refs.push({ name: result.name, source: 'computed', index: result.index, kind: result.kind ?? 'float' });
  }
  return refs;
}