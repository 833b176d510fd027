import { InputError } from '../errors.js';
import { CpuEngine } from './cpu/cpu.js';
import type { Engine, EngineChoice } from './types.js';

export type { Engine, EngineChoice, EvaluatedChunk } from './types.js';

export interface EngineOptions {
  engine?: EngineChoice;
  /** Called with one-line notices (e.g. a fallback to the CPU). */
  notice?: (line: string) => void;
}

export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const choice = options.engine ?? 'auto';
  if (choice === 'cpu' || choice === 'auto') return new CpuEngine();
  throw new InputError('--engine', `unknown engine '${String(choice)}' (known: auto, gpu, cpu)`);
}
