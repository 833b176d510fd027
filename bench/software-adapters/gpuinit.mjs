// Shared init: pick backend, set env vars in-process BEFORE create().
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);

export const BACKENDS = {
  swiftshader: {
    env: { VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json' },
    createArgs: ['backend=vulkan'],
    adapterOpts: {},
  },
  lavapipe: { // needs a Vulkan ICD json, e.g. from mesa-vulkan-drivers (backports)
    env: { VK_ICD_FILENAMES: process.env.LVP_ICD || '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json' },
    createArgs: ['backend=vulkan'],
    adapterOpts: {},
  },
  gles: {
    env: { EGL_PLATFORM: 'surfaceless' },
    createArgs: ['backend=opengles'],
    adapterOpts: { featureLevel: 'compatibility' },
  },
};

export const KEEP = [];
export async function initGPU(name, extraCreateArgs = [], requiredLimits = undefined) {
  const b = BACKENDS[name];
  if (!b) throw new Error('unknown backend ' + name);
  for (const [k, v] of Object.entries(b.env)) if (process.env[k] === undefined) process.env[k] = v;
  const gpu = create([...b.createArgs, ...extraCreateArgs]);
  const adapter = await gpu.requestAdapter(b.adapterOpts);
  if (!adapter) throw new Error('no adapter for ' + name);
  const rl = {};
  if (requiredLimits) for (const k of requiredLimits) rl[k] = adapter.limits[k];
  const device = await adapter.requestDevice({ requiredLimits: rl });
  const kk = process.env.KEEP || "";
  if (kk === "1" || kk.includes("gpu")) KEEP.push(gpu);
  if (kk === "1" || kk.includes("adapter")) KEEP.push(adapter);
  if (kk === "1" || kk.includes("device")) KEEP.push(device);
  return { gpu, adapter, device };
}
