import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../config/load.js';
import type { Formula } from '../../formulas/types.js';

export const SHADER_DIR = join(PACKAGE_ROOT, 'shaders');

let cachedSources: { model: string; entry: string } | undefined;

function sources(): { model: string; entry: string } {
  cachedSources ??= {
    model: readFileSync(join(SHADER_DIR, 'model.wgsl'), 'utf8'),
    entry: readFileSync(join(SHADER_DIR, 'evaluate.wgsl'), 'utf8'),
  };
  return cachedSources;
}

/** Field names of a WGSL struct in model.wgsl, in declaration order. */
export function wgslStructFields(source: string, struct: string): string[] {
  const match = new RegExp(`struct\\s+${struct}\\s*\\{([^}]*)\\}`).exec(source);
  if (!match) throw new Error(`model.wgsl has no struct ${struct}`);
  return match[1]
    .split('\n')
    .map((line) => line.replace(/\/\/.*$/, '').trim())
    .filter((line) => line.length > 0)
    .map((line) => line.split(':')[0].trim());
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
 */
export function buildShader(formula: Formula): string {
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
  const reads = formula.inputs.map((_, k) => `  let in${k} = grid[${k}u * params.stride + i];`).join('\n');
  const args = formula.inputs.map((_, k) => `in${k}`).join(', ');
  const writes = formula.outputs.map((name, j) => `  results[${j}u * params.stride + i] = r.${name};`).join('\n');
  return (
    model +
    '\n' +
    entry
      .replace('{{CONSTANTS_STRUCT}}', names.constants)
      .replace('{{READ_INPUTS}}', reads)
      .replace('{{FUNCTION}}', formula.wgslFunction)
      .replace('{{ARGUMENTS}}', args)
      .replace('{{WRITE_OUTPUTS}}', writes)
  );
}
