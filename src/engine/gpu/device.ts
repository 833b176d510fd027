import { createRequire } from 'node:module';
import { EngineError, InputError } from '../../errors.js';
import { probeDevice } from './probe.js';
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

/** Backends Dawn knows; `null` among them computes nothing (it exists for Dawn's own tests). */
const DAWN_BACKENDS = ['vulkan', 'opengles', 'opengl', 'metal', 'd3d12', 'd3d11', 'webgpu'];

/**
 * Dawn's errors for an unknown backend or adapter name span several lines and list what exists; this turns them
 * into one line that names the flag. Anything else is an EngineError with its first line.
 */
function dawnError(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  const backend = /unrecognised backend '([^']*)'/.exec(message);
  if (backend) return new InputError('--backend', `unknown backend '${backend[1]}' (known: ${DAWN_BACKENDS.join(', ')})`);
  const adapter = /no adapter with backend '([^']*)' and name '([^']*)' found/.exec(message);
  if (adapter) {
    const available = [...message.matchAll(/backend: '([^']*)', name: '([^']*)'/g)].map((m) => `${m[2]} [${m[1]}]`);
    return new InputError(
      '--adapter',
      `no adapter named '${adapter[2]}' on backend ${adapter[1]} (available: ${available.join('; ') || 'none'})`,
    );
  }
  const first = message.split('\n').find((line) => line.trim().length > 0) ?? (error as Error)?.name ?? 'unknown error';
  return new EngineError(`cannot start WebGPU: ${first.trim()}`);
}

/** Refuses what can be refused before Dawn starts: a backend it does not have, or its null backend. */
function checkBackend(backend: string | undefined): void {
  if (backend === undefined) return;
  if (backend === 'null') {
    throw new InputError('--backend', "null is Dawn's backend that computes nothing; name a real one (" + DAWN_BACKENDS.join(', ') + ')');
  }
  if (!DAWN_BACKENDS.includes(backend)) {
    throw new InputError('--backend', `unknown backend '${backend}' (known: ${DAWN_BACKENDS.join(', ')})`);
  }
}

async function findAdapter(dawn: string[], verbose = false): Promise<{ gpu: GPU; adapter: GPUAdapter } | undefined> {
  const native = <T>(fn: () => T): T => (verbose ? fn() : withoutNativeStderr(fn));
  let gpu: GPU;
  try {
    gpu = native(() => loadWebGpu().create(dawn));
    liveInstances.add(gpu);
  } catch (error) {
    throw dawnError(error);
  }
  // Compatibility mode runs on GL ES and software Vulkan alike, and its limits are all this engine needs.
  let adapter: GPUAdapter | null;
  try {
    adapter =
      (await native(() => gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions))) ??
      (await native(() => gpu.requestAdapter()));
  } catch (error) {
    liveInstances.delete(gpu);
    throw dawnError(error);
  }
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
  checkBackend(options.backend ?? process.env.PARASWEEP_GPU_BACKEND);
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
  try {
    await probeDevice(device, `the adapter (${description})`);
  } catch (error) {
    destroyed = true;
    device.destroy();
    liveInstances.delete(gpu);
    throw error;
  }
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
