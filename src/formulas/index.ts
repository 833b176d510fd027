import { InputError } from '../errors.js';
import { fullFormula } from './full.js';
import { pocFormula } from './poc.js';
import type { Formula } from './types.js';

export type { Formula, ResultColumn, SweepContext } from './types.js';

export const FORMULAS: Record<string, Formula> = { full: fullFormula, poc: pocFormula };
export const DEFAULT_FORMULA = 'full';

export function getFormula(name: string): Formula {
  const formula = FORMULAS[name];
  if (!formula) throw new InputError('--formula', `unknown formula '${name}' (known: ${Object.keys(FORMULAS).join(', ')})`);
  return formula;
}
