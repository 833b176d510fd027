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
import { InputError } from '../errors.js';
import type { ResultColumn } from '../formulas/types.js';
import type { GridColumnSpec } from '../grid/grid.js';

const FIELD = '--where';

/** A column the expression may name. */
export interface ColumnRef {
  name: string;
  /** Grid columns are i32 on the GPU; computed columns are f32 fields of the formula's output struct. */
  source: 'grid' | 'computed';
  /** Index into the grid columns (source 'grid') or into the computed columns (source 'computed'). */
  index: number;
  kind: 'int' | 'float' | 'bool' | 'category';
  /** Labels of a category column: the column holds the index of its label. */
  labels?: readonly string[];
}

export interface CompiledWhere {
  /** The expression as the user wrote it. */
  text: string;
  /** Columns the expression reads, each once, in order of first appearance. */
  referenced: ColumnRef[];
  /** Whether row `i` passes: grid columns indexed by ColumnRef.index for 'grid', computed ones for 'computed'. */
  test(grid: ArrayLike<number>[], computed: ArrayLike<number>[], i: number): boolean;
  /**
   * The same condition as a WGSL `bool` expression. `gridExpr(index)` must give an `i32` expression for a grid
   * column, `computedExpr(name)` an `f32` expression for a computed column. The result is fully parenthesized.
   */
  wgsl(gridExpr: (gridIndex: number) => string, computedExpr: (name: string) => string): string;
}

// ---------------------------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------------------------

type TokenKind = 'num' | 'ident' | 'str' | 'op' | 'kw' | 'end';

interface Token {
  kind: TokenKind;
  /** Source text of the token (for strings, the quoted text; for keywords, lower-cased). */
  text: string;
  /** Number value or string contents. */
  value: number | string;
  /** 0-based offset in the source. */
  pos: number;
}

const KEYWORDS = new Set(['and', 'or', 'not']);
const TWO_CHAR_OPS = new Set(['<=', '>=', '==', '!=', '&&', '||']);
const ONE_CHAR_OPS = new Set(['<', '>', '!', '(', ')', '*', '/', '+', '-']);

/** Largest finite f32: literals beyond it cannot be written in the GPU's f32. */
const F32_MAX = 3.4028234663852886e38;

function isDigit(ch: string): boolean {
  return ch >= '0' && ch <= '9';
}

function isIdentStart(ch: string): boolean {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch === '_';
}

function isIdentPart(ch: string): boolean {
  return isIdentStart(ch) || isDigit(ch);
}

/** One line: the reason, the 1-based position, and the text from there (a few words, no caret). */
function failAt(text: string, pos: number, reason: string): never {
  if (pos >= text.length) {
    throw new InputError(FIELD, `${reason} at position ${pos + 1} (the end of the expression)`);
  }
  const rest = text.slice(pos).replace(/\s+/g, ' ');
  const snippet = rest.length > 20 ? `${rest.slice(0, 20)}...` : rest;
  throw new InputError(FIELD, `${reason} at position ${pos + 1} (near "${snippet}")`);
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let p = 0;
  while (p < text.length) {
    const ch = text[p];
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      p++;
      continue;
    }
    const start = p;
    if (isDigit(ch) || (ch === '.' && isDigit(text[p + 1] ?? ''))) {
      while (isDigit(text[p] ?? '')) p++;
      if (text[p] === '.') {
        p++;
        while (isDigit(text[p] ?? '')) p++;
      }
      if (text[p] === 'e' || text[p] === 'E') {
        let q = p + 1;
        if (text[q] === '+' || text[q] === '-') q++;
        if (!isDigit(text[q] ?? '')) failAt(text, p, 'expected digits in the exponent of a number');
        while (isDigit(text[q] ?? '')) q++;
        p = q;
      }
      if (isIdentPart(text[p] ?? '') || text[p] === '.') {
        failAt(text, start, `unexpected '${text[p]}' right after the number '${text.slice(start, p)}'`);
      }
      const source = text.slice(start, p);
      tokens.push({ kind: 'num', text: source, value: Number(source), pos: start });
      continue;
    }
    if (isIdentStart(ch)) {
      while (isIdentPart(text[p] ?? '')) p++;
      const word = text.slice(start, p);
      const lower = word.toLowerCase();
      if (KEYWORDS.has(lower)) tokens.push({ kind: 'kw', text: lower, value: lower, pos: start });
      else {
        let q = p;
        while (text[q] === ' ' || text[q] === '\t') q++;
        if (text[q] === '(') failAt(text, start, `function calls are not supported ('${word}(')`);
        tokens.push({ kind: 'ident', text: word, value: word, pos: start });
      }
      continue;
    }
    if (ch === "'" || ch === '"') {
      const end = text.indexOf(ch, p + 1);
      if (end < 0) failAt(text, start, `unterminated string (no closing ${ch})`);
      tokens.push({ kind: 'str', text: text.slice(start, end + 1), value: text.slice(start + 1, end), pos: start });
      p = end + 1;
      continue;
    }
    const two = text.slice(p, p + 2);
    if (TWO_CHAR_OPS.has(two)) {
      tokens.push({ kind: 'op', text: two, value: two, pos: start });
      p += 2;
      continue;
    }
    if (ch === '=') failAt(text, start, "use '==' to compare, not '='");
    if (ch === '&' || ch === '|') failAt(text, start, `unexpected '${ch}' (write '${ch}${ch}', or '${ch === '&' ? 'and' : 'or'}')`);
    if (ONE_CHAR_OPS.has(ch)) {
      tokens.push({ kind: 'op', text: ch, value: ch, pos: start });
      p++;
      continue;
    }
    failAt(text, start, `unexpected character '${ch}'`);
  }
  tokens.push({ kind: 'end', text: '', value: '', pos: text.length });
  return tokens;
}

// ---------------------------------------------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------------------------------------------

type CmpOp = '<' | '<=' | '>' | '>=' | '==' | '!=';
type ArithOp = '+' | '-' | '*' | '/';

type Node =
  | { k: 'num'; value: number; pos: number; text: string }
  | { k: 'str'; value: string; pos: number; text: string }
  | { k: 'col'; ref: ColumnRef; pos: number }
  | { k: 'neg'; arg: Node; pos: number }
  | { k: 'not'; arg: Node; pos: number; op: string }
  | { k: 'arith'; op: ArithOp; left: Node; right: Node; pos: number }
  | { k: 'cmp'; op: CmpOp; left: Node; right: Node; pos: number }
  | { k: 'logic'; op: 'and' | 'or'; left: Node; right: Node; pos: number; text: string };

const CMP_OPS = new Set<string>(['<', '<=', '>', '>=', '==', '!=']);

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** The column names closest to `name`: a case-insensitive match, or names within a few edits. */
function suggest(name: string, columns: readonly ColumnRef[]): string[] {
  const lower = name.toLowerCase();
  const same = columns.filter((column) => column.name.toLowerCase() === lower).map((column) => column.name);
  if (same.length > 0) return same;
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 3)));
  let best = Infinity;
  let names: string[] = [];
  for (const column of columns) {
    const d = distance(lower, column.name.toLowerCase());
    if (d > limit || d > best) continue;
    if (d < best) {
      best = d;
      names = [];
    }
    names.push(column.name);
  }
  if (names.length > 0) return names;
  // A prefix or a part of a longer name: `total` -> total_gib, `step_time` -> step_time_s.
  if (name.length >= 3) {
    return columns.filter((column) => column.name.toLowerCase().startsWith(lower)).map((column) => column.name).slice(0, 3);
  }
  return [];
}

/** The names of `columns`, comma-separated, for error messages; categorical ones with their labels. */
export function describeColumns(columns: readonly ColumnRef[]): string {
  return columns
    .map((column) => (column.kind === 'category' && column.labels ? `${column.name} (${column.labels.join('|')})` : column.name))
    .join(', ');
}

class Parser {
  private p = 0;
  private readonly byName: Map<string, ColumnRef>;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly columns: readonly ColumnRef[],
  ) {
    this.byName = new Map();
    for (const column of columns) if (!this.byName.has(column.name)) this.byName.set(column.name, column);
  }

  parse(): Node {
    if (this.peek().kind === 'end') throw new InputError(FIELD, 'the expression is empty');
    const node = this.or();
    const token = this.peek();
    if (token.kind !== 'end') {
      if (token.text === ')') failAt(this.text, token.pos, "unmatched ')'");
      const before = this.tokens[this.p - 1];
      failAt(this.text, token.pos, `expected an operator or the end after '${before.text}', got '${token.text}'`);
    }
    return node;
  }

  private peek(): Token {
    return this.tokens[this.p];
  }

  private next(): Token {
    return this.tokens[this.p++];
  }

  private isOp(...ops: string[]): boolean {
    const token = this.peek();
    return token.kind === 'op' && ops.includes(token.text);
  }

  private isKeyword(word: string): boolean {
    const token = this.peek();
    return token.kind === 'kw' && token.text === word;
  }

  private or(): Node {
    let left = this.and();
    while (this.isKeyword('or') || this.isOp('||')) {
      const token = this.next();
      const right = this.and();
      left = { k: 'logic', op: 'or', left, right, pos: token.pos, text: token.text };
    }
    return left;
  }

  private and(): Node {
    let left = this.not();
    while (this.isKeyword('and') || this.isOp('&&')) {
      const token = this.next();
      const right = this.not();
      left = { k: 'logic', op: 'and', left, right, pos: token.pos, text: token.text };
    }
    return left;
  }

  private not(): Node {
    if (this.isKeyword('not') || this.isOp('!')) {
      const token = this.next();
      return { k: 'not', arg: this.not(), pos: token.pos, op: token.text };
    }
    return this.cmp();
  }

  private cmp(): Node {
    const left = this.add();
    const token = this.peek();
    if (token.kind !== 'op' || !CMP_OPS.has(token.text)) return left;
    this.next();
    const right = this.add();
    const after = this.peek();
    if (after.kind === 'op' && CMP_OPS.has(after.text)) {
      failAt(this.text, after.pos, `comparisons do not chain: write 'a ${token.text} b and b ${after.text} c' instead`);
    }
    return { k: 'cmp', op: token.text as CmpOp, left, right, pos: token.pos };
  }

  private add(): Node {
    let left = this.mul();
    while (this.isOp('+', '-')) {
      const token = this.next();
      const right = this.mul();
      left = { k: 'arith', op: token.text as ArithOp, left, right, pos: token.pos };
    }
    return left;
  }

  private mul(): Node {
    let left = this.unary();
    while (this.isOp('*', '/')) {
      const token = this.next();
      const right = this.unary();
      left = { k: 'arith', op: token.text as ArithOp, left, right, pos: token.pos };
    }
    return left;
  }

  private unary(): Node {
    if (this.isOp('-')) {
      const token = this.next();
      return { k: 'neg', arg: this.unary(), pos: token.pos };
    }
    if (this.isOp('+')) failAt(this.text, this.peek().pos, "unexpected '+' (there is no unary plus)");
    return this.primary();
  }

  private primary(): Node {
    const token = this.next();
    switch (token.kind) {
      case 'num':
        return { k: 'num', value: token.value as number, pos: token.pos, text: token.text };
      case 'str':
        return { k: 'str', value: token.value as string, pos: token.pos, text: token.text };
      case 'ident': {
        const ref = this.byName.get(token.text);
        if (!ref) {
          const names = suggest(token.text, this.columns);
          const hint =
            names.length > 0
              ? ` (did you mean ${names.join(' or ')}?)`
              : ` (columns: ${this.columns.map((column) => column.name).join(', ')})`;
          throw new InputError(FIELD, `unknown column '${token.text}' at position ${token.pos + 1}${hint}`);
        }
        return { k: 'col', ref, pos: token.pos };
      }
      case 'op':
        if (token.text === '(') {
          const inner = this.or();
          const close = this.peek();
          if (close.kind !== 'op' || close.text !== ')') {
            failAt(this.text, close.pos, `expected ')' for the '(' opened at position ${token.pos + 1},`);
          }
          this.next();
          return inner;
        }
        break;
      default:
        break;
    }
    const before = this.tokens[this.p - 2];
    const what = before ? `after '${before.text}'` : 'at the start';
    failAt(this.text, token.pos, `expected a value ${what}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Typed tree: numbers and conditions, with literals folded
// ---------------------------------------------------------------------------------------------------------------

type Num =
  | { t: 'lit'; value: number }
  | { t: 'read'; ref: ColumnRef }
  | { t: 'neg'; arg: Num }
  | { t: 'arith'; op: ArithOp; left: Num; right: Num };

type Bool =
  | { t: 'const'; value: boolean }
  | { t: 'flag'; ref: ColumnRef }
  | { t: 'cat'; ref: ColumnRef; code: number; equal: boolean }
  | { t: 'cmp'; op: CmpOp; left: Num; right: Num }
  | { t: 'beq'; equal: boolean; left: Bool; right: Bool }
  | { t: 'not'; arg: Bool }
  | { t: 'logic'; op: 'and' | 'or'; left: Bool; right: Bool };

type Typed =
  | { type: 'num'; num: Num; node: Node }
  | { type: 'bool'; bool: Bool; node: Node }
  | { type: 'cat'; ref: ColumnRef; node: Node }
  | { type: 'str'; value: string; node: Node };

function compare(op: CmpOp, a: number, b: number): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
}

function arith(op: ArithOp, a: number, b: number): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return a / b;
  }
}

/** How to name an operand in a type error. */
function describe(typed: Typed): string {
  if (typed.node.k === 'col') {
    const what = typed.type === 'bool' ? 'a condition' : typed.type === 'cat' ? 'categorical' : 'a number';
    return `'${typed.node.ref.name}' (${what})`;
  }
  return typed.type === 'bool' ? 'a condition' : typed.type === 'num' ? 'a number' : `the string ${(typed.node as { text: string }).text}`;
}

function at(pos: number): string {
  return `at position ${pos + 1}`;
}

/** A comparison to suggest for a number used as a condition. */
function example(typed: Typed): string {
  return typed.node.k === 'col' ? `${typed.node.ref.name} > 0` : 'x > 0';
}

function categoricalMessage(ref: ColumnRef, pos: number): string {
  return `'${ref.name}' at position ${pos + 1} is categorical; compare it with == or != against one of: ${(ref.labels ?? []).join(', ')}`;
}

class Checker {
  /** `reason` says where (see `at`): type errors name an operator or an operand, not a place to resume. */
  private fail(reason: string): never {
    throw new InputError(FIELD, reason);
  }

  /** Literals must be finite f32s, since the GPU compares in f32. */
  private literal(value: number, pos: number, source: string): Num {
    if (!Number.isFinite(value) || Math.abs(value) > F32_MAX) {
      this.fail(`the number ${source} ${at(pos)} is outside the f32 range the GPU uses (magnitude at most 3.4e38)`);
    }
    return { t: 'lit', value };
  }

  /** Rejects a categorical column or a string where a number or a condition is needed. */
  private plain(typed: Typed, role: string): void {
    if (typed.type === 'cat') this.fail(categoricalMessage(typed.ref, typed.node.pos));
    if (typed.type === 'str') {
      this.fail(
        `the string ${(typed.node as { text: string }).text} ${at(typed.node.pos)} can only be compared with == or != to a categorical column, not used ${role}`,
      );
    }
  }

  check(node: Node): Typed {
    switch (node.k) {
      case 'num':
        return { type: 'num', num: this.literal(node.value, node.pos, node.text), node };
      case 'str':
        return { type: 'str', value: node.value, node };
      case 'col': {
        const ref = node.ref;
        if (ref.kind === 'bool') return { type: 'bool', bool: { t: 'flag', ref }, node };
        if (ref.kind === 'category') return { type: 'cat', ref, node };
        return { type: 'num', num: { t: 'read', ref }, node };
      }
      case 'neg': {
        const arg = this.check(node.arg);
        this.plain(arg, "with '-'");
        if (arg.type !== 'num') this.fail(`'-' ${at(node.pos)} needs a number, got ${describe(arg)}`);
        const num: Num = arg.num.t === 'lit' ? { t: 'lit', value: -arg.num.value } : { t: 'neg', arg: arg.num };
        return { type: 'num', num, node };
      }
      case 'not': {
        const arg = this.check(node.arg);
        this.plain(arg, `with '${node.op}'`);
        if (arg.type !== 'bool') {
          this.fail(`'${node.op}' ${at(node.pos)} needs a condition, got ${describe(arg)}; compare it, e.g. ${example(arg)}`);
        }
        const bool: Bool = arg.bool.t === 'const' ? { t: 'const', value: !arg.bool.value } : { t: 'not', arg: arg.bool };
        return { type: 'bool', bool, node };
      }
      case 'arith': {
        const left = this.check(node.left);
        const right = this.check(node.right);
        for (const side of [left, right]) {
          this.plain(side, `with '${node.op}'`);
          if (side.type !== 'num') {
            this.fail(`'${node.op}' ${at(node.pos)} needs numbers on both sides, got ${describe(side)}`);
          }
        }
        const l = (left as { num: Num }).num;
        const r = (right as { num: Num }).num;
        if (l.t === 'lit' && r.t === 'lit') {
          if (node.op === '/' && r.value === 0) this.fail(`division by zero ${at(node.pos)}`);
          const value = arith(node.op, l.value, r.value);
          return { type: 'num', num: this.literal(value, node.pos, String(value)), node };
        }
        return { type: 'num', num: { t: 'arith', op: node.op, left: l, right: r }, node };
      }
      case 'cmp':
        return { type: 'bool', bool: this.comparison(node), node };
      case 'logic': {
        const left = this.check(node.left);
        const right = this.check(node.right);
        for (const side of [left, right]) {
          this.plain(side, `with '${node.text}'`);
          if (side.type !== 'bool') {
            this.fail(`'${node.text}' ${at(node.pos)} needs conditions on both sides, got ${describe(side)}; compare it, e.g. ${example(side)}`);
          }
        }
        const l = (left as { bool: Bool }).bool;
        const r = (right as { bool: Bool }).bool;
        const and = node.op === 'and';
        // Fold constants: `false and x` is false, `true and x` is x (and dually for or).
        for (const [c, other] of [
          [l, r],
          [r, l],
        ] as const) {
          if (c.t === 'const') {
            if (c.value === !and) return { type: 'bool', bool: { t: 'const', value: !and }, node };
            return { type: 'bool', bool: other, node };
          }
        }
        return { type: 'bool', bool: { t: 'logic', op: node.op, left: l, right: r }, node };
      }
    }
  }

  private comparison(node: Extract<Node, { k: 'cmp' }>): Bool {
    const left = this.check(node.left);
    const right = this.check(node.right);
    const op = node.op;
    const equality = op === '==' || op === '!=';
    // Categorical columns: only `column == 'label'` (either way round).
    if (left.type === 'cat' || right.type === 'cat' || left.type === 'str' || right.type === 'str') {
      const cat = left.type === 'cat' ? left : right.type === 'cat' ? right : undefined;
      const str = left.type === 'str' ? left : right.type === 'str' ? right : undefined;
      if (!cat) {
        const other = str === left ? right : left;
        this.fail(
          `the string ${(str!.node as { text: string }).text} ${at(str!.node.pos)} can only be compared with == or != to a categorical column, not to ${describe(other)}`,
        );
      }
      if (!equality || !str) this.fail(categoricalMessage(cat.ref, cat.node.pos));
      const labels = cat.ref.labels ?? [];
      const code = labels.indexOf(str.value);
      if (code < 0) {
        const close = labels.filter((label) => label.toLowerCase() === str.value.toLowerCase());
        const hint = close.length > 0 ? `did you mean '${close[0]}'?` : `one of: ${labels.join(', ')}`;
        this.fail(`unknown label '${str.value}' for ${cat.ref.name} ${at(str.node.pos)} (${hint})`);
      }
      return { t: 'cat', ref: cat.ref, code, equal: op === '==' };
    }
    if (left.type === 'bool' && right.type === 'bool') {
      if (!equality) this.fail(`'${op}' ${at(node.pos)} compares numbers, got conditions on both sides`);
      if (left.bool.t === 'const' && right.bool.t === 'const') {
        return { t: 'const', value: (left.bool.value === right.bool.value) === (op === '==') };
      }
      return { t: 'beq', equal: op === '==', left: left.bool, right: right.bool };
    }
    if (left.type === 'bool' || right.type === 'bool') {
      const flag = left.type === 'bool' ? left : right;
      if (flag.node.k === 'col') {
        const name = flag.node.ref.name;
        this.fail(`'${name}' ${at(flag.node.pos)} is a condition (true/false), not a number: write '${name}' or 'not ${name}'`);
      }
      this.fail(`'${op}' ${at(node.pos)} needs two numbers or two conditions, got ${describe(left)} and ${describe(right)}`);
    }
    const l = (left as { num: Num }).num;
    const r = (right as { num: Num }).num;
    if (l.t === 'lit' && r.t === 'lit') return { t: 'const', value: compare(op, l.value, r.value) };
    return { t: 'cmp', op, left: l, right: r };
  }

  root(node: Node): Bool {
    const typed = this.check(node);
    if (typed.type === 'bool') return typed.bool;
    if (typed.type === 'cat') this.fail(categoricalMessage(typed.ref, typed.node.pos));
    throw new InputError(FIELD, `the expression must be a condition, got ${typed.type === 'num' ? 'a number' : 'a string'}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// CPU: nested closures, built once; no allocation per row
// ---------------------------------------------------------------------------------------------------------------

type Columns = ArrayLike<number>[];
type NumFn = (grid: Columns, computed: Columns, i: number) => number;
type BoolFn = (grid: Columns, computed: Columns, i: number) => boolean;

function numFn(num: Num): NumFn {
  switch (num.t) {
    case 'lit': {
      const value = num.value;
      return () => value;
    }
    case 'read': {
      const k = num.ref.index;
      return num.ref.source === 'grid' ? (g, _c, i) => g[k][i] : (_g, c, i) => c[k][i];
    }
    case 'neg': {
      const a = numFn(num.arg);
      return (g, c, i) => -a(g, c, i);
    }
    case 'arith':
      return arithFn(num.op, numFn(num.left), numFn(num.right));
  }
}

/** `column op literal`, reading the column directly (the common case). */
function readVsLiteral(op: CmpOp, ref: ColumnRef, v: number): BoolFn {
  const k = ref.index;
  if (ref.source === 'grid') {
    switch (op) {
      case '<':
        return (g, _c, i) => g[k][i] < v;
      case '<=':
        return (g, _c, i) => g[k][i] <= v;
      case '>':
        return (g, _c, i) => g[k][i] > v;
      case '>=':
        return (g, _c, i) => g[k][i] >= v;
      case '==':
        return (g, _c, i) => g[k][i] === v;
      case '!=':
        return (g, _c, i) => g[k][i] !== v;
    }
  }
  switch (op) {
    case '<':
      return (_g, c, i) => c[k][i] < v;
    case '<=':
      return (_g, c, i) => c[k][i] <= v;
    case '>':
      return (_g, c, i) => c[k][i] > v;
    case '>=':
      return (_g, c, i) => c[k][i] >= v;
    case '==':
      return (_g, c, i) => c[k][i] === v;
    case '!=':
      return (_g, c, i) => c[k][i] !== v;
  }
}

const FLIP: Record<CmpOp, CmpOp> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '==': '==', '!=': '!=' };

/** A comparison with a literal on the right whenever there is one. */
function normalized(bool: Extract<Bool, { t: 'cmp' }>): { op: CmpOp; left: Num; right: Num } {
  if (bool.left.t === 'lit' && bool.right.t !== 'lit') return { op: FLIP[bool.op], left: bool.right, right: bool.left };
  return bool;
}

function cmpFn(bool: Extract<Bool, { t: 'cmp' }>): BoolFn {
  const { op, left, right } = normalized(bool);
  if (left.t === 'read' && right.t === 'lit') return readVsLiteral(op, left.ref, right.value);
  const a = numFn(left);
  const b = numFn(right);
  switch (op) {
    case '<':
      return (g, c, i) => a(g, c, i) < b(g, c, i);
    case '<=':
      return (g, c, i) => a(g, c, i) <= b(g, c, i);
    case '>':
      return (g, c, i) => a(g, c, i) > b(g, c, i);
    case '>=':
      return (g, c, i) => a(g, c, i) >= b(g, c, i);
    case '==':
      return (g, c, i) => a(g, c, i) === b(g, c, i);
    case '!=':
      return (g, c, i) => a(g, c, i) !== b(g, c, i);
  }
}

function arithFn(op: ArithOp, a: NumFn, b: NumFn): NumFn {
  switch (op) {
    case '+':
      return (g, c, i) => a(g, c, i) + b(g, c, i);
    case '-':
      return (g, c, i) => a(g, c, i) - b(g, c, i);
    case '*':
      return (g, c, i) => a(g, c, i) * b(g, c, i);
    case '/':
      return (g, c, i) => a(g, c, i) / b(g, c, i);
  }
}

function boolFn(bool: Bool): BoolFn {
  switch (bool.t) {
    case 'const': {
      const value = bool.value;
      return () => value;
    }
    case 'flag': {
      const k = bool.ref.index;
      return bool.ref.source === 'grid' ? (g, _c, i) => g[k][i] !== 0 : (_g, c, i) => c[k][i] !== 0;
    }
    case 'cat':
      return readVsLiteral(bool.equal ? '==' : '!=', bool.ref, bool.code);
    case 'cmp':
      return cmpFn(bool);
    case 'beq': {
      const a = boolFn(bool.left);
      const b = boolFn(bool.right);
      return bool.equal ? (g, c, i) => a(g, c, i) === b(g, c, i) : (g, c, i) => a(g, c, i) !== b(g, c, i);
    }
    case 'not': {
      const a = boolFn(bool.arg);
      return (g, c, i) => !a(g, c, i);
    }
    case 'logic': {
      const a = boolFn(bool.left);
      const b = boolFn(bool.right);
      return bool.op === 'and' ? (g, c, i) => a(g, c, i) && b(g, c, i) : (g, c, i) => a(g, c, i) || b(g, c, i);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GPU: a WGSL expression
// ---------------------------------------------------------------------------------------------------------------

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * An f32 value as a WGSL literal that denotes it exactly: its exact decimal expansion (`70.0`,
 * `0.4000000059604644775390625`) when that is short, else a hex float (`0x1ad7f29bp-60`). No shortest
 * round-trip decimal: its exact value lies between two f32s, and WGSL lets the compiler round that either way.
 */
export function wgslF32Literal(x: number): string {
  if (Math.fround(x) !== x || !Number.isFinite(x)) throw new Error(`not a finite f32: ${x}`);
  if (x === 0) return '0.0';
  const negative = x < 0;
  f32Scratch[0] = Math.abs(x);
  const bits = u32Scratch[0];
  const exponent = bits >>> 23;
  let mantissa = exponent === 0 ? bits & 0x7fffff : (bits & 0x7fffff) | 0x800000;
  let e = exponent === 0 ? -149 : exponent - 150;
  while ((mantissa & 1) === 0) {
    mantissa /= 2;
    e++;
  }
  let text: string;
  if (e >= 0) {
    text = `${(BigInt(mantissa) << BigInt(e)).toString()}.0`;
  } else {
    const digits = (BigInt(mantissa) * 5n ** BigInt(-e)).toString().padStart(-e + 1, '0');
    text = `${digits.slice(0, digits.length + e)}.${digits.slice(digits.length + e)}`;
  }
  if (text.length > 40) text = `0x${mantissa.toString(16)}p${e}`;
  return negative ? `(-${text})` : text;
}

function wgslIntLiteral(v: number): string {
  return v < 0 ? `(-${-v})` : String(v);
}

const I32_MAX = 2 ** 31 - 1;

interface Emit {
  grid: (index: number) => string;
  computed: (name: string) => string;
}

function readWgsl(ref: ColumnRef, emit: Emit): string {
  return ref.source === 'grid' ? emit.grid(ref.index) : emit.computed(ref.name);
}

/** A number as an f32 expression. */
function numWgsl(num: Num, emit: Emit): string {
  switch (num.t) {
    case 'lit':
      return wgslF32Literal(Math.fround(num.value));
    case 'read':
      return num.ref.source === 'grid' ? `f32(${emit.grid(num.ref.index)})` : emit.computed(num.ref.name);
    case 'neg':
      return `(-${numWgsl(num.arg, emit)})`;
    case 'arith':
      return `(${numWgsl(num.left, emit)} ${num.op} ${numWgsl(num.right, emit)})`;
  }
}

/**
 * `left op v` for an f32 `left` and a real `v`, exactly as f64 would decide it for the f32 value of `left`:
 * when v is not an f32, compare with its nearest f32 and adjust the operator (no f32 lies between the two).
 */
function f32VsLiteral(op: CmpOp, left: string, v: number): string {
  const near = Math.fround(v);
  if (near === v) return `(${left} ${op} ${wgslF32Literal(near)})`;
  if (op === '==') return 'false';
  if (op === '!=') return 'true';
  // If v rounded up, the f32 values below v are those below `near`; if it rounded down, those at most `near`.
  const roundedUp = near > v;
  // An f32 never equals v, so < and <= (and > and >=) are the same test.
  const strict = op === '<' || op === '<=' ? (roundedUp ? '<' : '<=') : roundedUp ? '>=' : '>';
  return `(${left} ${strict} ${wgslF32Literal(near)})`;
}

function cmpWgsl(bool: Extract<Bool, { t: 'cmp' }>, emit: Emit): string {
  const { op, left, right } = normalized(bool);
  if (right.t === 'lit') {
    const v = right.value;
    // A grid column against an integer: compare the i32s.
    if (left.t === 'read' && left.ref.source === 'grid' && Number.isInteger(v) && Math.abs(v) <= I32_MAX) {
      return `(${emit.grid(left.ref.index)} ${op} ${wgslIntLiteral(v)})`;
    }
    return f32VsLiteral(op, numWgsl(left, emit), v);
  }
  if (left.t === 'read' && right.t === 'read' && left.ref.source === 'grid' && right.ref.source === 'grid') {
    return `(${emit.grid(left.ref.index)} ${op} ${emit.grid(right.ref.index)})`;
  }
  return `(${numWgsl(left, emit)} ${op} ${numWgsl(right, emit)})`;
}

function boolWgsl(bool: Bool, emit: Emit): string {
  switch (bool.t) {
    case 'const':
      return bool.value ? 'true' : 'false';
    case 'flag':
      return bool.ref.source === 'grid' ? `(${emit.grid(bool.ref.index)} != 0)` : `(${emit.computed(bool.ref.name)} != 0.0)`;
    case 'cat': {
      const op = bool.equal ? '==' : '!=';
      return bool.ref.source === 'grid'
        ? `(${emit.grid(bool.ref.index)} ${op} ${bool.code})`
        : `(${emit.computed(bool.ref.name)} ${op} ${wgslF32Literal(bool.code)})`;
    }
    case 'cmp':
      return cmpWgsl(bool, emit);
    case 'beq':
      return `(${boolWgsl(bool.left, emit)} ${bool.equal ? '==' : '!='} ${boolWgsl(bool.right, emit)})`;
    case 'not':
      return `(!${boolWgsl(bool.arg, emit)})`;
    case 'logic':
      return `(${boolWgsl(bool.left, emit)} ${bool.op === 'and' ? '&&' : '||'} ${boolWgsl(bool.right, emit)})`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------------

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
 * `test` decides in f64 on whatever values it is given. `wgsl` decides exactly as `test` would on the same f32
 * values for comparisons of a column with a number (the literal is rounded to the f32 on the correct side); where
 * arithmetic is involved (`tp * pp`, `step_time_s / num_microbatches`) the GPU computes in f32 and may differ from
 * f64 within an ulp of the boundary, so the CPU should re-apply `test` to what the GPU keeps. Grid values are i32 on
 * the GPU and are converted to f32 exactly up to 2^24.
 */
export function compileWhere(text: string, columns: ColumnRef[]): CompiledWhere {
  if (typeof text !== 'string') throw new InputError(FIELD, 'expected an expression');
  for (const column of columns) {
    if (column.kind === 'category' && (!column.labels || column.labels.length === 0)) {
      throw new Error(`--where: categorical column ${column.name} has no labels`);
    }
  }
  const tree = new Parser(text, tokenize(text), columns).parse();
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
