/**
 * Whether the GPU tests run here. With CI=true or PARASWEEP_REQUIRE_GPU=1 a missing adapter is a failure (CI must
 * exercise the real WGSL path on its software adapter); otherwise the GPU tests are skipped with a notice.
 */
import { GpuEngine, GpuEngineOptions } from '../src/engine/gpu/gpu.js';

export const GPU_REQUIRED = process.env.CI === 'true' || process.env.PARASWEEP_REQUIRE_GPU === '1';

let probed: Promise<string | undefined> | undefined;

/** The adapter's description, or undefined when there is none. Probed once per test file. */
export function probeGpu(): Promise<string | undefined> {
  probed ??= (async () => {
    const engine = await GpuEngine.create().catch(() => undefined);
    if (!engine) return undefined;
    const description = engine.description;
    await engine.dispose();
    return description;
  })();
  return probed;
}

export async function gpuAvailable(): Promise<boolean> {
  const description = await probeGpu();
  if (!description) {
    if (GPU_REQUIRED) throw new Error('no WebGPU adapter, and CI=true or PARASWEEP_REQUIRE_GPU=1 requires one (see .ci/run)');
    process.stderr.write('\n*** NOTICE: no WebGPU adapter found; GPU tests are SKIPPED (see README: software adapters) ***\n\n');
    return false;
  }
  return true;
}

export async function openGpu(options: GpuEngineOptions = {}): Promise<GpuEngine> {
  const engine = await GpuEngine.create(options);
  if (!engine) throw new Error('no WebGPU adapter');
  return engine;
}
