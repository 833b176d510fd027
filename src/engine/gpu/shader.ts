import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../config/load.js';
import type { Formula } from '../../formulas/types.js';
import type { EngineSelection } from '../selection.js';

export const SHADER_DIR = join(PACKAGE_ROOT, 'shaders');

let cachedSources: { model: string; entry: string; terms: string } | undefined;

function sources(): { model: string; entry: string; terms: string } {
  cachedSources ??= {
    model: readFileSync(join(SHADER_DIR, 'model.wgsl'), 'utf8'),
    entry: readFileSync(join(SHADER_DIR, 'evaluate.wgsl'), 'utf8'),
    terms: readFileSync(join(SHADER_DIR, 'terms.wgsl'), 'utf8'),
  };
  return cachedSources;
}

/**
 * Formulas whose per-row pass reads terms that a per-class pass computed once per layout class (shaders/terms.wgsl):
 * their WGSL function takes the row's table offset (a grid-buffer column after the grid's) as its last argument.
 */
export function hasClassTerms(formula: Formula): boolean {
  return formula.wgslFunction === 'full_estimate';
}

/** Words of one (SP, recompute) block of the per-class table, for a layout with `pp` pipeline ranks. */
export function termsBlockWords(pp: number): number {
  return TERMS_HEADER + termsPerRank() * pp;
}

/** model_params twice and model_flops_per_token twice, then per rank the skip flag and two structs (model.wgsl). */
const TERMS_HEADER = 4;
let cachedPerRank: number | undefined;
function termsPerRank(): number {
  if (cachedPerRank === undefined) {
    const { model } = sources();
    const perRank = 1 + wgslStructFields(model, 'StageMemoryBase').length + wgslStructFields(model, 'StageMicrobatch').length;
    const declared = (name: string) => Number(new RegExp(`const ${name}: u32 = (\\d+)u;`).exec(model)?.[1]);
    if (declared('TERMS_PER_RANK') !== perRank || declared('TERMS_HEADER') !== TERMS_HEADER) {
      throw new Error(`shaders/model.wgsl: TERMS_PER_RANK must be ${perRank} and TERMS_HEADER ${TERMS_HEADER}`);
    }
    cachedPerRank = perRank;
  }
  return cachedPerRank;
}

/** Field names and types of a WGSL struct, in declaration order. */
function wgslStructTypes(source: string, struct: string): Array<[name: string, type: string]> {
  const match = new RegExp(`struct\\s+${struct}\\s*\\{([^}]*)\\}`).exec(source);
  if (!match) throw new Error(`model.wgsl has no struct ${struct}`);
  return match[1]
    .split('\n')
    .map((line) => line.replace(/\/\/.*$/, '').trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [name, type] = line.replace(/,$/, '').split(':');
      return [name.trim(), type.trim()];
    });
}

/**
 * The per-class pass of a formula with class terms: one invocation per (class, SP, recompute) reads the class's
 * first row and writes its table (shaders/terms.wgsl).
 */
export function buildTermsShader(formula: Formula, gridColumns: readonly string[]): string {
  const { model, terms } = sources();
  termsPerRank();
  const reads = formula.inputs
    .map((name, k) => {
      const index = gridColumns.indexOf(name);
      if (index < 0) throw new Error(`formula ${formula.name} reads grid column ${name}, which the grid lacks`);
      return `  let in${k} = grid[${index}u * params.stride + i];`;
    })
    .join('\n');
  const row = wgslStructTypes(model, 'FullRow')
    .map(([name, type]) => {
      const k = formula.inputs.indexOf(name);
      if (k < 0) throw new Error(`shaders/model.wgsl FullRow.${name} is not an input of ${formula.name}`);
      return type === 'i32' ? `in${k}` : `f32(in${k})`;
    })
    .join(', ');
  return model + '\n' + terms.replace('{{READ_INPUTS}}', reads).replace('{{ROW}}', row);
}

/** Field names of a WGSL struct in model.wgsl, in declaration order. */
export function wgslStructFields(source: string, struct: string): string[] {
  return wgslStructTypes(source, struct).map(([name]) => name);
}

/** WGSL struct names of a formula: `poc_estimate` uses PocConstants and returns PocOutputs. */
export function wgslNames(formula: Formula): { constants: string; outputs: string } {
  const stem = formula.wgslFunction.replace(/_estimate$/, '');
  const pascal = stem.replace(/(^|_)([a-z])/g, (_, __, letter: string) => letter.toUpperCase());
  return { constants: `${pascal}Constants`, outputs: `${pascal}Outputs` };
}

export function modelSource(): string {
  return sources().model;
}

/**
 * The complete shader for one formula: model.wgsl followed by evaluate.wgsl with its slots filled. Checks that
 * the WGSL structs list the same names in the same order as the TypeScript formula, so the two cannot drift.
 * With a selection, rows that fail it return early and survivors are compacted through an atomic counter, each
 * with its chunk-local row index after the output columns (as the bits of an f32).
 */
export function buildShader(formula: Formula, gridColumns: readonly string[], selection?: EngineSelection): string {
  const { model, entry } = sources();
  const names = wgslNames(formula);
  const constantFields = wgslStructFields(model, names.constants);
  const outputFields = wgslStructFields(model, names.outputs);
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same(constantFields, formula.constantNames)) {
    throw new Error(`shaders/model.wgsl ${names.constants} does not match ${formula.name}'s constants in src/model.ts`);
  }
  if (!same(outputFields, formula.outputs)) {
    throw new Error(`shaders/model.wgsl ${names.outputs} does not match ${formula.name}'s outputs in src/model.ts`);
  }
  const gridAt = (k: number) => `grid[${k}u * params.stride + i]`;
  const reads = formula.inputs
    .map((name, k) => {
      const index = gridColumns.indexOf(name);
      if (index < 0) throw new Error(`formula ${formula.name} reads grid column ${name}, which the grid lacks`);
      return `  let in${k} = ${gridAt(index)};`;
    })
    .join('\n');
  let args = formula.inputs.map((_, k) => `in${k}`).join(', ');
  // The row's table offset, in the grid buffer's column after the grid's (negative: compute the terms directly).
  if (hasClassTerms(formula)) args += `, ${gridAt(gridColumns.length)}`;
  let bindings = '';
  let select = '';
  let slot = 'i';
  if (selection) {
    bindings = '@group(0) @binding(4) var<storage, read_write> counter: array<atomic<u32>>;';
    if (selection.top) bindings += '\n@group(0) @binding(5) var<storage, read> thresholds: array<f32>;';
    const conditions: string[] = [];
    if (selection.where) conditions.push(selection.where.wgsl(gridAt, (name) => `r.${name}`));
    if (selection.top) {
      const by = `r.${formula.outputs[selection.top.byIndex]}`;
      const group = selection.top.perGridIndex < 0 ? '0' : `u32(${gridAt(selection.top.perGridIndex)})`;
      conditions.push(`${by} ${selection.top.descending ? '>=' : '<='} thresholds[${group}]`);
    }
    select = [
      ...conditions.map((condition) => `  if (!(${condition})) {\n    return;\n  }`),
      '  let slot = atomicAdd(&counter[0], 1u);',
      `  results[${formula.outputs.length}u * params.stride + slot] = bitcast<f32>(i);`,
    ].join('\n');
    slot = 'slot';
  }
  const writes = formula.outputs.map((name, j) => `  results[${j}u * params.stride + ${slot}] = r.${name};`).join('\n');
  return (
    model +
    '\n' +
    entry
      .replace('{{CONSTANTS_STRUCT}}', names.constants)
      .replace('{{SELECTION_BINDINGS}}', bindings)
      .replace('{{READ_INPUTS}}', reads)
      .replace('{{FUNCTION}}', formula.wgslFunction)
      .replace('{{ARGUMENTS}}', args)
      .replace('{{SELECT}}', select)
      .replace('{{WRITE_OUTPUTS}}', writes)
  );
}
