// Software-adapter investigation (docs/gpu-backends.md): a synthetic kernel shaped like parasweep's, timed per stage.
// Usage: KEEP=1 node bench/software-adapters/bench.mjs gles|swiftshader|lavapipe ROWS CHUNK_ROWS [MAX_WG_X]
// (KEEP=1 holds the GPU instance; without it the process can crash, see docs/gpu-backends.md).
// node bench.mjs <backend> <totalRows> <chunkRows> [maxWgX]
import { initGPU } from './gpuinit.mjs';
import { WGSL, WG, makeConstants, cpuRow, packParams } from './kernel.mjs';

const [backend = 'swiftshader', totalS = '1e6', chunkS = '262144', maxWgXS = '65535'] = process.argv.slice(2);
const total = Number(totalS), chunk = Number(chunkS), maxWgX = Number(maxWgXS);

const t0 = performance.now();
const { gpu, adapter, device } = await initGPU(backend);
const tInit = performance.now() - t0;
device.addEventListener('uncapturederror', (e) => console.error('UNCAPTURED', e.error.message));

const t1 = performance.now();
const module = device.createShaderModule({ code: WGSL });
const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
const tPipe = performance.now() - t1;

const inBytes = 6 * chunk * 4, outBytes = 8 * chunk * 4;
const inOff = [0, 1, 2, 3, 4, 5].map((i) => i * chunk);
const outOff = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * chunk);
const K = makeConstants();

function makeSet() {
  const s = {
    inp: device.createBuffer({ size: inBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST }),
    out: device.createBuffer({ size: outBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }),
    par: device.createBuffer({ size: 208, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
    stg: device.createBuffer({ size: outBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
  };
  s.bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [
    { binding: 0, resource: { buffer: s.inp } }, { binding: 1, resource: { buffer: s.out } }, { binding: 2, resource: { buffer: s.par } }] });
  return s;
}
const sets = [makeSet(), makeSet()];

// host input: one chunk worth of random data, reused for every chunk
const host = new Uint32Array(6 * chunk);
let seed = 12345; const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8);
for (let c = 0; c < 5; c++) for (let r = 0; r < chunk; r++) host[c * chunk + r] = rnd() % 1000;
for (let r = 0; r < chunk; r++) host[5 * chunk + r] = rnd() & 0xff;
const result = new Float32Array(8 * chunk); // consumer-side copy of each chunk

function dims(n) {
  const wgs = Math.ceil(n / WG);
  const x = Math.min(wgs, maxWgX), y = Math.ceil(wgs / x);
  return [x, y];
}
function encode(s, n, { compute = true, copy = true } = {}) {
  const enc = device.createCommandEncoder();
  if (compute) {
    const p = enc.beginComputePass(); p.setPipeline(pipeline); p.setBindGroup(0, s.bg);
    const [x, y] = dims(n); p.dispatchWorkgroups(x, y); p.end();
  }
  if (copy) enc.copyBufferToBuffer(s.out, 0, s.stg, 0, outBytes);
  return enc.finish();
}
async function readback(s) {
  await s.stg.mapAsync(GPUMapMode.READ);
  result.set(new Float32Array(s.stg.getMappedRange()));
  s.stg.unmap();
}
const nChunks = Math.ceil(total / chunk);
const nOf = (i) => Math.min(chunk, total - i * chunk);

// warm-up (shader JIT on first dispatch)
for (const s of sets) device.queue.writeBuffer(s.par, 0, packParams(inOff, outOff, chunk, K));
device.queue.submit([encode(sets[0], chunk)]); await readback(sets[0]);
// --- component: upload only
let t = performance.now();
for (let i = 0; i < nChunks; i++) device.queue.writeBuffer(sets[i & 1].inp, 0, host);
await device.queue.onSubmittedWorkDone();
const tUpload = performance.now() - t;
// --- component: compute only (inputs already in both sets)
for (const s of sets) device.queue.writeBuffer(s.par, 0, packParams(inOff, outOff, chunk, K));
device.queue.writeBuffer(sets[1].inp, 0, host);
t = performance.now();
for (let i = 0; i < nChunks; i++) device.queue.submit([encode(sets[i & 1], chunk, { copy: false })]);
await device.queue.onSubmittedWorkDone();
const tCompute = performance.now() - t;
// --- component: readback only (copy + map + host copy)
t = performance.now();
for (let i = 0; i < nChunks; i++) { const s = sets[i & 1]; device.queue.submit([encode(s, chunk, { compute: false })]); await readback(s); }
const tReadback = performance.now() - t;

// --- full serial pipeline
t = performance.now();
for (let i = 0; i < nChunks; i++) {
  const s = sets[0], n = nOf(i);
  device.queue.writeBuffer(s.inp, 0, host);
  device.queue.writeBuffer(s.par, 0, packParams(inOff, outOff, n, K));
  device.queue.submit([encode(s, n)]);
  await readback(s);
}
const tSerial = performance.now() - t;
// correctness spot check on the last chunk read (chunk index nChunks-1)
let bad = 0; const nLast = nOf(nChunks - 1);
for (let j = 0; j < 200; j++) {
  const r = Math.floor((j / 200) * nLast);
  const ref = cpuRow(K, ...[0, 1, 2, 3, 4].map((c) => host[c * chunk + r]), host[5 * chunk + r]);
  for (let c = 0; c < 8; c++) { const g = result[c * chunk + r], w = ref[c]; if (Math.abs(g - w) > 1e-3 * Math.max(1, Math.abs(w))) { if (bad < 3) console.error('mismatch', r, c, g, w); bad++; } }
}

// --- overlapped: submit chunk i+1 before reading back chunk i
t = performance.now();
let pending = null;
for (let i = 0; i < nChunks; i++) {
  const s = sets[i & 1], n = nOf(i);
  device.queue.writeBuffer(s.inp, 0, host);
  device.queue.writeBuffer(s.par, 0, packParams(inOff, outOff, n, K));
  device.queue.submit([encode(s, n)]);
  if (pending) await readback(pending);
  pending = s;
}
await readback(pending);
const tOverlap = performance.now() - t;

const rps = (ms) => Math.round(total / (ms / 1000));
console.log(JSON.stringify({ backend, desc: adapter.info.description, total, chunk, maxWgX, dims: dims(chunk), nChunks,
  initMs: +tInit.toFixed(0), pipeMs: +tPipe.toFixed(0),
  uploadMs: +tUpload.toFixed(0), uploadMBps: Math.round((nChunks * inBytes) / 1e6 / (tUpload / 1000)),
  computeMs: +tCompute.toFixed(0), computeRowsPerS: Math.round((nChunks * chunk) / (tCompute / 1000)),
  readbackMs: +tReadback.toFixed(0), readbackMBps: Math.round((nChunks * outBytes) / 1e6 / (tReadback / 1000)),
  serialMs: +tSerial.toFixed(0), serialRowsPerS: rps(tSerial), overlapMs: +tOverlap.toFixed(0), overlapRowsPerS: rps(tOverlap), mismatches: bad }));

for (const s of sets) for (const b of [s.inp, s.out, s.par, s.stg]) b.destroy();
device.destroy();
