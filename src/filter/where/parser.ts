/** `--where`, stage 2: tokens to a syntax tree (recursive descent, depth-bounded). */
import { InputError } from '../../errors.js';
import { failAt, Token } from './lexer.js';
import { ArithOp, CmpOp, ColumnRef, FIELD, MAX_WHERE_DEPTH, Node } from './types.js';

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

export class Parser {
  private p = 0;
  private readonly byName: Map<string, ColumnRef>;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly columns: readonly ColumnRef[],
    /** Depth allowed: MAX_WHERE_DEPTH, plus a little for conditions the sweep wraps around the user's. */
    private readonly maxDepth = MAX_WHERE_DEPTH,
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

  /** Recursion depth of the descent: parentheses, `not` and unary minus each add one. */
  private nesting = 0;

  private enter(token: Token): void {
    if (++this.nesting > this.maxDepth) {
      failAt(this.text, token.pos, `the expression nests deeper than ${this.maxDepth} levels`);
    }
  }

  /** Sets a new node's height and refuses a tree taller than MAX_WHERE_DEPTH (e.g. thousands of ANDs). */
  private sized(node: Node): Node {
    const children = 'arg' in node ? [node.arg] : 'left' in node ? [node.left, node.right] : [];
    node.h = 1 + Math.max(0, ...children.map((child) => child.h));
    if (node.h > this.maxDepth) {
      failAt(this.text, node.pos, `the expression is more than ${this.maxDepth} operators deep`);
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
      left = this.sized({ k: 'logic', op: 'or', left, right, pos: token.pos, text: token.text, h: 0 });
    }
    return left;
  }

  private and(): Node {
    let left = this.not();
    while (this.isKeyword('and') || this.isOp('&&')) {
      const token = this.next();
      const right = this.not();
      left = this.sized({ k: 'logic', op: 'and', left, right, pos: token.pos, text: token.text, h: 0 });
    }
    return left;
  }

  private not(): Node {
    if (this.isKeyword('not') || this.isOp('!')) {
      const token = this.next();
      this.enter(token);
      const arg = this.not();
      this.nesting--;
      return this.sized({ k: 'not', arg, pos: token.pos, op: token.text, h: 0 });
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
    return this.sized({ k: 'cmp', op: token.text as CmpOp, left, right, pos: token.pos, h: 0 });
  }

  private add(): Node {
    let left = this.mul();
    while (this.isOp('+', '-')) {
      const token = this.next();
      const right = this.mul();
      left = this.sized({ k: 'arith', op: token.text as ArithOp, left, right, pos: token.pos, h: 0 });
    }
    return left;
  }

  private mul(): Node {
    let left = this.unary();
    while (this.isOp('*', '/')) {
      const token = this.next();
      const right = this.unary();
      left = this.sized({ k: 'arith', op: token.text as ArithOp, left, right, pos: token.pos, h: 0 });
    }
    return left;
  }

  private unary(): Node {
    if (this.isOp('-')) {
      const token = this.next();
      this.enter(token);
      const arg = this.unary();
      this.nesting--;
      return this.sized({ k: 'neg', arg, pos: token.pos, h: 0 });
    }
    if (this.isOp('+')) failAt(this.text, this.peek().pos, "unexpected '+' (there is no unary plus)");
    return this.primary();
  }

  private primary(): Node {
    const token = this.next();
    switch (token.kind) {
      case 'num':
        return { k: 'num', value: token.value as number, pos: token.pos, text: token.text, h: 1 };
      case 'str':
        return { k: 'str', value: token.value as string, pos: token.pos, text: token.text, h: 1 };
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
        return { k: 'col', ref, pos: token.pos, h: 1 };
      }
      case 'op':
        if (token.text === '(') {
          this.enter(token);
          const inner = this.or();
          this.nesting--;
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