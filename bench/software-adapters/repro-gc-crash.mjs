// Demonstrates the root cause: the object returned by create() is collected while the device is still used.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
process.env.EGL_PLATFORM ??= 'surfaceless';
const keep = process.argv[2] === 'keep';
const gpu = create(['backend=opengles']);
if (keep) globalThis.__gpu = gpu; // the fix: keep the create() result strongly reachable
let adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' });
const device = await adapter.requestDevice();
globalThis.gc(); globalThis.gc();
const b = device.createBuffer({ size: 4096, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
for (let i = 0; i < 5; i++) { await b.mapAsync(GPUMapMode.READ); b.unmap(); globalThis.gc(); }
console.error('computed');
b.destroy(); device.destroy();
