/** Types shared by the stages of `--where`: the columns it may name, the syntax tree, the typed tree. */

export const FIELD = '--where';

/**
 * Bounds on the expression: a longer or deeper one is refused with one line instead of overflowing the stack of
 * the recursive stages (the checker and both emitters recurse on the tree). Real conditions are a few terms long.
 */
export const MAX_WHERE_LENGTH = 4096;
export const MAX_WHERE_DEPTH = 64;

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

export type CmpOp = '<' | '<=' | '>' | '>=' | '==' | '!=';
export type ArithOp = '+' | '-' | '*' | '/';

/** A node of the syntax tree; `h` is its height (a leaf is 1), bounded by MAX_WHERE_DEPTH. */
export type Node = (
  | { k: 'num'; value: number; pos: number; text: string }
  | { k: 'str'; value: string; pos: number; text: string }
  | { k: 'col'; ref: ColumnRef; pos: number }
  | { k: 'neg'; arg: Node; pos: number }
  | { k: 'not'; arg: Node; pos: number; op: string }
  | { k: 'arith'; op: ArithOp; left: Node; right: Node; pos: number }
  | { k: 'cmp'; op: CmpOp; left: Node; right: Node; pos: number }
  | { k: 'logic'; op: 'and' | 'or'; left: Node; right: Node; pos: number; text: string }
) & { h: number };

/** Typed tree: numbers and conditions, with literals folded. */
export type Num =
  | { t: 'lit'; value: number }
  | { t: 'read'; ref: ColumnRef }
  | { t: 'neg'; arg: Num }
  | { t: 'arith'; op: ArithOp; left: Num; right: Num };

export type Bool =
  | { t: 'const'; value: boolean }
  | { t: 'flag'; ref: ColumnRef }
  | { t: 'cat'; ref: ColumnRef; code: number; equal: boolean }
  | { t: 'cmp'; op: CmpOp; left: Num; right: Num }
  | { t: 'beq'; equal: boolean; left: Bool; right: Bool }
  | { t: 'not'; arg: Bool }
  | { t: 'logic'; op: 'and' | 'or'; left: Bool; right: Bool };

/** Largest finite f32: literals beyond it cannot be written in the GPU's f32. */
export const F32_MAX = 3.4028234663852886e38;
