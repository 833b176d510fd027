/** `--where`, GPU emitter: a WGSL boolean expression that pre-filters rows before readback. */
import { normalized } from './cpu.js';
import type { Bool, CmpOp, ColumnRef, Num } from './types.js';

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

/**
 * Whether the GPU decides a number exactly as the CPU would on the same f32 values: a literal, a column read
 * (grid values are integers of at most 2^24, exact in f32) or its negation. Arithmetic rounds in f32, may divide
 * by zero or overflow, and WGSL leaves those results to the implementation, so the GPU cannot decide it.
 */
function exactNum(num: Num): boolean {
  return num.t === 'lit' || num.t === 'read' || (num.t === 'neg' && exactNum(num.arg));
}

/** Largest integer up to which every integer is an f32 (24-bit significand). */
const F32_EXACT_INT = 2 ** 24;

/**
 * Integer arithmetic: grid columns and integer literals under `+`, `-`, `*` and negation (`tp * pp`). In f32 it is
 * exact as long as every intermediate stays within 2^24, which the GPU checks per row (see guardedCmpWgsl).
 */
function integerNum(num: Num): boolean {
  switch (num.t) {
    case 'lit':
      return Number.isInteger(num.value) && Math.abs(num.value) <= F32_EXACT_INT;
    case 'read':
      return num.ref.source === 'grid';
    case 'neg':
      return integerNum(num.arg);
    case 'arith':
      return num.op !== '/' && integerNum(num.left) && integerNum(num.right);
  }
}

/** `|x| <= 2^24` for every arithmetic intermediate of `num`, as WGSL conjuncts. */
function smallIntermediates(num: Num, emit: Emit, out: string[]): void {
  if (num.t === 'neg') smallIntermediates(num.arg, emit, out);
  if (num.t !== 'arith') return;
  smallIntermediates(num.left, emit, out);
  smallIntermediates(num.right, emit, out);
  out.push(`(abs(${numWgsl(num, emit)}) <= 16777216.0)`);
}

/**
 * An integer comparison with arithmetic, bounded from the side asked for: when every intermediate is within
 * 2^24 the f32 result is the exact integer and the comparison is decided; otherwise it is undecided.
 */
function guardedCmpWgsl(bool: Extract<Bool, { t: 'cmp' }>, emit: Emit, sure: boolean): string {
  const guards: string[] = [];
  smallIntermediates(bool.left, emit, guards);
  smallIntermediates(bool.right, emit, guards);
  const exact = `(${numWgsl(bool.left, emit)} ${bool.op} ${numWgsl(bool.right, emit)})`;
  const small = guards.length === 1 ? guards[0] : `(${guards.join(' && ')})`;
  return sure ? `(${small} && ${exact})` : `((!${small}) || ${exact})`;
}

/** Whether every comparison in a condition is decided exactly on the GPU. */
function exactBool(bool: Bool): boolean {
  switch (bool.t) {
    case 'cmp':
      return exactNum(bool.left) && exactNum(bool.right);
    case 'not':
      return exactBool(bool.arg);
    case 'beq':
    case 'logic':
      return exactBool(bool.left) && exactBool(bool.right);
    default:
      return true;
  }
}

/**
 * The condition as a WGSL expression that the GPU uses to pre-filter rows. The CPU re-applies the exact test
 * (IEEE 754 f64 on the values the engine produced) to every row the GPU keeps, so the GPU may keep too many rows
 * but must never drop one the test would keep. Comparisons it decides exactly are emitted as they are; any other
 * (arithmetic: `mfu / 0 > 1`, `step_time_s * 1e30 > 1`) is undecided, and the expression is bounded from the
 * side asked for: `sure = false` gives a condition true whenever the test may be true (what the shader uses),
 * `sure = true` one true only when the test surely is (what `not` needs of its argument).
 */
export function boolWgsl(bool: Bool, emit: Emit, sure = false): string {
  if (exactBool(bool)) return exactBoolWgsl(bool, emit);
  switch (bool.t) {
    case 'cmp':
      if (integerNum(bool.left) && integerNum(bool.right)) return guardedCmpWgsl(bool, emit, sure);
      return sure ? 'false' : 'true';
    case 'not':
      return `(!${boolWgsl(bool.arg, emit, !sure)})`;
    case 'logic':
      return `(${boolWgsl(bool.left, emit, sure)} ${bool.op === 'and' ? '&&' : '||'} ${boolWgsl(bool.right, emit, sure)})`;
    case 'beq': {
      // a == b may hold when both may be true or both may be false; it surely holds when both are surely equal.
      const [a, b] = [bool.left, bool.right];
      const same = sure
        ? `((${boolWgsl(a, emit, true)} && ${boolWgsl(b, emit, true)}) || ((!${boolWgsl(a, emit, false)}) && (!${boolWgsl(b, emit, false)})))`
        : `((${boolWgsl(a, emit, false)} && ${boolWgsl(b, emit, false)}) || ((!${boolWgsl(a, emit, true)}) && (!${boolWgsl(b, emit, true)})))`;
      const differ = sure
        ? `((${boolWgsl(a, emit, true)} && (!${boolWgsl(b, emit, false)})) || ((!${boolWgsl(a, emit, false)}) && ${boolWgsl(b, emit, true)}))`
        : `((${boolWgsl(a, emit, false)} && (!${boolWgsl(b, emit, true)})) || ((!${boolWgsl(a, emit, true)}) && ${boolWgsl(b, emit, false)}))`;
      return bool.equal ? same : differ;
    }
    default:
      return exactBoolWgsl(bool, emit);
  }
}

/** A condition whose comparisons the GPU decides exactly, as WGSL. */
function exactBoolWgsl(bool: Bool, emit: Emit): string {
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
      return `(${exactBoolWgsl(bool.left, emit)} ${bool.equal ? '==' : '!='} ${exactBoolWgsl(bool.right, emit)})`;
    case 'not':
      return `(!${exactBoolWgsl(bool.arg, emit)})`;
    case 'logic':
      return `(${exactBoolWgsl(bool.left, emit)} ${bool.op === 'and' ? '&&' : '||'} ${exactBoolWgsl(bool.right, emit)})`;
  }
}
