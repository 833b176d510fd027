/** `--where`, stage 3: type check, with literals folded. */
import { InputError } from '../../errors.js';
import { ArithOp, Bool, CmpOp, ColumnRef, F32_MAX, FIELD, Node, Num } from './types.js';

type Typed =
  | { type: 'num'; num: Num; node: Node }
  | { type: 'bool'; bool: Bool; node: Node }
  | { type: 'cat'; ref: ColumnRef; node: Node }
  | { type: 'str'; value: string; node: Node };

export function compare(op: CmpOp, a: number, b: number): boolean {
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

export function arith(op: ArithOp, a: number, b: number): number {
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

export class Checker {
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