/** `--where`, CPU emitter: nested closures, built once; no allocation per row. Decides in f64 (IEEE 754). */
import type { ArithOp, Bool, CmpOp, ColumnRef, Num } from './types.js';

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
export function normalized(bool: Extract<Bool, { t: 'cmp' }>): { op: CmpOp; left: Num; right: Num } {
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

export function boolFn(bool: Bool): BoolFn {
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