import { EngineError } from '../../errors.js';

/** Invocations of the probe: four workgroups of 64, so that more than one workgroup must run. */
const PROBE_ROWS = 256;

/**
 * Every invocation writes a value it computes from its index and counts itself on an atomic counter. A working
 * adapter returns exactly `i * 0.5 + 1` (exact in f32) and a count of PROBE_ROWS; Dawn's null backend (or any
 * adapter that runs nothing) returns zeros.
 */
const PROBE_WGSL = `
@group(0) @binding(0) var<storage, read_write> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> count: array<atomic<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${PROBE_ROWS}u) {
    return;
  }
  values[i] = f32(i) * 0.5 + 1.0;
  atomicAdd(&count[0], 1u);
}
`;

/**
 * A known-answer test run once when the device opens: the engine refuses an adapter that does not compute
 * (a null backend, a broken driver) instead of writing its zeros as results. Throws EngineError naming the first
 * wrong value.
 */
export async function probeDevice(device: GPUDevice, adapterName: string): Promise<void> {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code: PROBE_WGSL, label: 'parasweep probe' });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const valueBytes = PROBE_ROWS * 4;
  const values = device.createBuffer({ size: valueBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const count = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const staging = device.createBuffer({ size: valueBytes + 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    device.queue.writeBuffer(count, 0, new Uint32Array(4));
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: values } },
          { binding: 1, resource: { buffer: count } },
        ],
      }),
    );
    pass.dispatchWorkgroups(PROBE_ROWS / 64);
    pass.end();
    encoder.copyBufferToBuffer(values, 0, staging, 0, valueBytes);
    encoder.copyBufferToBuffer(count, 0, staging, valueBytes, 16);
    device.queue.submit([encoder.finish()]);
    const error = await device.popErrorScope();
    if (error) throw new EngineError(`${adapterName} failed the known-answer probe: ${error.message.split('\n')[0]}`);
    await staging.mapAsync(GPUMapMode.READ);
    const bytes = staging.getMappedRange().slice(0);
    staging.unmap();
    const got = new Float32Array(bytes, 0, PROBE_ROWS);
    const counted = new Uint32Array(bytes, valueBytes, 1)[0];
    for (let i = 0; i < PROBE_ROWS; i++) {
      if (got[i] !== i * 0.5 + 1) {
        throw new EngineError(
          `${adapterName} failed the known-answer probe: value ${i} is ${got[i]}, expected ${i * 0.5 + 1} (an adapter that computes nothing?)`,
        );
      }
    }
    if (counted !== PROBE_ROWS) {
      throw new EngineError(`${adapterName} failed the known-answer probe: ${counted} of ${PROBE_ROWS} invocations counted`);
    }
  } finally {
    values.destroy();
    count.destroy();
    staging.destroy();
  }
}
