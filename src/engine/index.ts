import { EngineError, InputError } from '../errors.js';
import type { Formula } from '../formulas/types.js';
import { CpuEngine } from './cpu/cpu.js';
import { GpuEngine, GpuEngineOptions } from './gpu/gpu.js';
import type { Engine, EngineChoice } from './types.js';

export type { Engine, EngineChoice, EvaluatedChunk } from './types.js';
export { CpuEngine } from './cpu/cpu.js';
export { GpuEngine } from './gpu/gpu.js';

export interface EngineOptions {
  /** auto (default): the GPU when an adapter exists, else the CPU with a notice. */
  engine?: EngineChoice;
  /** Dawn backend (vulkan, opengles, ...) and adapter name, passed through. */
  backend?: string;
  adapter?: string;
  /** Bound on each GPU buffer, in bytes (default 8 MiB). */
  maxBufferBytes?: number;
  workgroupSize?: number;
  /** Let the GPU driver's native warnings through to stderr (Dawn's; silenced by default). */
  verbose?: boolean;
  /** One-line notices (a fallback to the CPU, for example). */
  notice?: (line: string) => void;
}

export async function createEngine(options: EngineOptions = {}, formula?: Formula): Promise<Engine> {
  const choice = options.engine ?? 'auto';
  if (choice === 'cpu') return new CpuEngine();
  if (choice !== 'auto' && choice !== 'gpu') {
    throw new InputError('--engine', `unknown engine '${String(choice)}' (known: auto, gpu, cpu)`);
  }
  if (choice === 'auto' && formula?.autoPrefersCpu) return new CpuEngine();
  const gpuOptions: GpuEngineOptions = {
    backend: options.backend,
    adapter: options.adapter,
    maxBufferBytes: options.maxBufferBytes,
    workgroupSize: options.workgroupSize,
    verbose: options.verbose,
    fallbackToCpu: choice === 'auto',
    notice: options.notice,
  };
  let engine: GpuEngine | undefined;
  try {
    engine = await GpuEngine.create(gpuOptions);
  } catch (error) {
    if (choice === 'gpu') throw error;
    options.notice?.(`no usable GPU (${oneLine(error)}); using the CPU`);
    return new CpuEngine();
  }
  if (engine) return engine;
  if (choice === 'gpu') throw new EngineError('--engine gpu: no WebGPU adapter found (see README: software adapters)');
  options.notice?.('no WebGPU adapter found; using the CPU');
  return new CpuEngine();
}

/** An error as one line with a reason, whatever was thrown (an empty message says its class instead). */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return text.split('\n').map((line) => line.trim()).filter((line) => line.length > 0).join(' ') || 'unknown error';
}
