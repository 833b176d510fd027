import { createRequire } from 'node:module';
import { EngineError } from '../../errors.js';
import { withoutNativeStderr } from './quiet.js';

export interface GpuDeviceOptions {
  /** Dawn backend: vulkan, opengles, opengl, metal, d3d12, null. Default: Dawn's choice. */
  backend?: string;
  /** Dawn adapter name (substring), e.g. "SwiftShader" or "llvmpipe". */
  adapter?: string;
  /** Largest storage buffer the engine will bind; the device is asked for at least this. */
  maxBufferBytes: number;
  /** Let Dawn's native warnings through to stderr (default: silenced, see quiet.ts). */
  verbose?: boolean;
}

export interface GpuDevice {
  /** @internal Kept out of the published typings, so that consumers need no @webgpu/types. */
  device: GPUDevice;
  description: string;
  /** Set once the device is lost or reports an uncaptured error; checked after every chunk. */
  failure(): Error | undefined;
  destroy(): void;
}

type WebGpuModule = { create(options: string[]): GPU; globals: Record<string, unknown> };

let webgpu: WebGpuModule | undefined;

/**
 * Every GPU object `create()` returned, held strongly until its device is destroyed. dawn.node keeps polling the
 * instance behind it (to resolve mapAsync and onSubmittedWorkDone); if V8 collects the object while a device is in
 * use, that poll runs on a freed instance and the process segfaults or aborts in pthread_mutex_lock. Holding the
 * adapter or the device does not keep it alive, and a local variable that is never read again does not either.
 * Large host buffers trigger GC sooner, which is why the crashes seemed tied to buffer size (docs/gpu-backends.md).
 */
const liveInstances = new Set<GPU>();

function loadWebGpu(): WebGpuModule {
  if (!webgpu) {
    const require = createRequire(import.meta.url);
    webgpu = require('webgpu') as WebGpuModule;
    // Dawn's classes (GPUBufferUsage, GPUMapMode, ...) as globals, as in a browser.
    Object.assign(globalThis, webgpu.globals);
  }
  return webgpu;
}

function dawnOptions(options: GpuDeviceOptions): string[] {
  const out: string[] = [];
  const backend = options.backend ?? process.env.PARASWEEP_GPU_BACKEND;
  const adapter = options.adapter ?? process.env.PARASWEEP_GPU_ADAPTER;
  if (backend) out.push(`backend=${backend}`);
  // Headless compute needs no display: Mesa's EGL must not look for one.
  if (backend === 'opengles' || backend === 'opengl') process.env.EGL_PLATFORM ??= 'surfaceless';
  if (adapter) out.push(`adapter=${adapter}`);
  return out;
}

async function findAdapter(dawn: string[], verbose = false): Promise<{ gpu: GPU; adapter: GPUAdapter } | undefined> {
  const native = <T>(fn: () => T): T => (verbose ? fn() : withoutNativeStderr(fn));
  let gpu: GPU;
  try {
    gpu = native(() => loadWebGpu().create(dawn));
    liveInstances.add(gpu);
  } catch (error) {
    // Dawn throws here for an unknown backend or adapter name, listing the available ones.
    throw new EngineError(`cannot start WebGPU: ${(error as Error).message.split('\n').join(' ')}`);
  }
  // Compatibility mode runs on GL ES and software Vulkan alike, and its limits are all this engine needs.
  const adapter =
    (await native(() => gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions))) ??
    (await native(() => gpu.requestAdapter()));
  if (!adapter) {
    liveInstances.delete(gpu);
    return undefined;
  }
  return { gpu, adapter };
}

/**
 * Finds an adapter and opens a device. Returns undefined when there is no adapter at all (a machine without any
 * GPU or software rasteriser); throws EngineError when there is one but it cannot be used.
 */
export async function openGpuDevice(options: GpuDeviceOptions): Promise<GpuDevice | undefined> {
  let found = await findAdapter(dawnOptions(options), options.verbose);
  // Without a backend named, Dawn looks at Vulkan (and Metal/D3D) only; a machine whose only adapter is Mesa's
  // llvmpipe behind OpenGL ES still has one.
  if (!found && !options.backend && !process.env.PARASWEEP_GPU_BACKEND) {
    found = await findAdapter(dawnOptions({ ...options, backend: 'opengles' }), options.verbose);
  }
  if (!found) return undefined;
  const { gpu, adapter } = found;
  if (options.maxBufferBytes > adapter.limits.maxStorageBufferBindingSize) {
    throw new EngineError(
      `--max-buffer-mib: the adapter binds at most ${adapter.limits.maxStorageBufferBindingSize} bytes per storage buffer`,
    );
  }
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: Math.max(options.maxBufferBytes, 1 << 20),
      maxBufferSize: Math.max(options.maxBufferBytes, 1 << 20),
    },
  });
  let failure: Error | undefined;
  let destroyed = false;
  device.lost.then((info) => {
    if (!destroyed) failure ??= new EngineError(`GPU device lost (${info.reason}): ${info.message}`);
  });
  device.addEventListener('uncapturederror', (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    failure ??= new EngineError(`GPU error: ${error.message}`);
  });
  const info = adapter.info;
  const description =
    [info.description, info.device, info.vendor].filter((part) => part && part.length > 0).join(', ') || 'unknown adapter';
  return {
    device,
    description: `WebGPU: ${description}`,
    failure: () => failure,
    destroy() {
      destroyed = true;
      device.destroy();
      // Only now may the instance go: dawn.node keeps the process alive while it is referenced.
      liveInstances.delete(gpu);
    },
  };
}
