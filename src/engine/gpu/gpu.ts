import { EngineError } from '../../errors.js';
import type { Formula } from '../../formulas/types.js';
import type { GridChunk } from '../../grid/grid.js';
import { evaluateChunkOnCpu, inputColumns } from '../cpu/cpu.js';
import type { Engine, EvaluatedChunk } from '../types.js';
import { GpuDevice, GpuDeviceOptions, openGpuDevice } from './device.js';
import { buildShader } from './shader.js';

/** 8 MiB: software adapters crashed at exit with single buffers of ~20 MB; 10 MB and below ran clean. */
export const DEFAULT_MAX_BUFFER_BYTES = 8 << 20;
/** Within compatibility mode's 128 invocations per workgroup. */
export const DEFAULT_WORKGROUP_SIZE = 64;
const MAX_WORKGROUPS_PER_DIMENSION = 65535;
/** Chunks in flight: one uploading/computing while the previous one is read back. */
const IN_FLIGHT = 2;

export interface GpuEngineOptions extends Partial<GpuDeviceOptions> {
  workgroupSize?: number;
  /** Evaluate on the CPU (f64, stored as f32) whatever the GPU has not finished, if the GPU fails mid-sweep. */
  fallbackToCpu?: boolean;
  notice?: (line: string) => void;
}

/** One set of buffers; a slot is reused only after the map of its previous chunk resolved (its work is done). */
interface Slot {
  grid: GPUBuffer;
  results: GPUBuffer;
  staging: GPUBuffer;
  params: GPUBuffer;
  bindGroup?: GPUBindGroup;
  bindGroupFormula?: string;
}

interface Pending {
  grid: GridChunk;
  done: Promise<Float32Array[]>;
}

/** 2D dispatch size for `workgroups` workgroups, since one dimension takes at most 65,535. */
export function dispatchShape(workgroups: number): [x: number, y: number] {
  if (workgroups <= MAX_WORKGROUPS_PER_DIMENSION) return [Math.max(workgroups, 1), 1];
  const y = Math.ceil(workgroups / MAX_WORKGROUPS_PER_DIMENSION);
  const x = Math.ceil(workgroups / y);
  return [x, y];
}

/**
 * Evaluates grid chunks with the WGSL model. All input columns of a chunk go into one storage buffer at column
 * offsets (uploaded straight from the Arrow columns' memory), all results into another, constants and sizes into
 * uniforms. Buffers are bounded (default 8 MiB) and reused across chunks; two chunks are in flight so that upload
 * and compute of one overlap the readback of the other.
 */
export class GpuEngine implements Engine {
  readonly kind = 'gpu' as const;
  readonly description: string;
  private readonly gpu: GpuDevice;
  private readonly maxBufferBytes: number;
  private readonly workgroupSize: number;
  private readonly options: GpuEngineOptions;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private slots: Slot[] = [];
  private constantsBuffer?: GPUBuffer;
  private disposed = false;

  private constructor(gpu: GpuDevice, options: GpuEngineOptions) {
    this.gpu = gpu;
    this.options = options;
    this.description = gpu.description;
    this.maxBufferBytes = options.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES;
    this.workgroupSize = options.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
  }

  /** Opens the GPU; undefined when there is no adapter. */
  static async create(options: GpuEngineOptions = {}): Promise<GpuEngine | undefined> {
    const maxBufferBytes = options.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES;
    const workgroupSize = options.workgroupSize ?? DEFAULT_WORKGROUP_SIZE;
    if (!Number.isInteger(workgroupSize) || workgroupSize < 1 || workgroupSize > 128) {
      throw new EngineError(`workgroup size must be an integer from 1 to 128, got ${workgroupSize}`);
    }
    const gpu = await openGpuDevice({ backend: options.backend, adapter: options.adapter, maxBufferBytes });
    return gpu ? new GpuEngine(gpu, { ...options, maxBufferBytes }) : undefined;
  }

  chunkRows(formula: Formula): number {
    const columns = Math.max(formula.inputs.length, formula.outputs.length);
    return Math.max(1, Math.floor(this.maxBufferBytes / (4 * columns)));
  }

  private pipeline(formula: Formula): GPUComputePipeline {
    // Keyed by formula (the shape class of the shader) and workgroup size.
    const key = `${formula.name}/${this.workgroupSize}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.gpu.device.createShaderModule({ code: buildShader(formula), label: `parasweep ${formula.name}` });
      pipeline = this.gpu.device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants: { workgroup_size: this.workgroupSize } },
        label: key,
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private async checkedPipeline(formula: Formula): Promise<GPUComputePipeline> {
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const pipeline = this.pipeline(formula);
    const error = await device.popErrorScope();
    if (error) {
      this.pipelines.clear();
      throw new EngineError(`WGSL for --formula ${formula.name} failed to compile: ${error.message}`);
    }
    return pipeline;
  }

  private ensureSlots(): void {
    if (this.slots.length > 0) return;
    const device = this.gpu.device;
    const bytes = this.maxBufferBytes;
    for (let i = 0; i < IN_FLIGHT; i++) {
      this.slots.push({
        grid: device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST }),
        results: device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }),
        staging: device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
        params: device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
      });
    }
  }

  private writeConstants(constants: Float64Array): GPUBuffer {
    const device = this.gpu.device;
    const bytes = Math.ceil((constants.length * 4) / 16) * 16;
    if (!this.constantsBuffer || this.constantsBuffer.size < bytes) {
      this.constantsBuffer?.destroy();
      this.constantsBuffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      for (const slot of this.slots) slot.bindGroup = undefined;
    }
    const packed = new Float32Array(bytes / 4);
    packed.set(constants);
    device.queue.writeBuffer(this.constantsBuffer, 0, packed);
    return this.constantsBuffer;
  }

  private submit(formula: Formula, pipeline: GPUComputePipeline, slot: Slot, grid: GridChunk): Promise<Float32Array[]> {
    const device = this.gpu.device;
    const rows = grid.length;
    const stride = this.chunkRows(formula);
    if (rows > stride) throw new Error(`chunk of ${rows} rows exceeds the GPU chunk of ${stride}`);
    inputColumns(formula, grid, grid.columnNames).forEach((column, k) => {
      // Straight from the Arrow column's memory into the GPU buffer, at this column's offset.
      device.queue.writeBuffer(slot.grid, k * stride * 4, column.buffer, column.byteOffset, rows * 4);
    });
    const groups = Math.ceil(rows / this.workgroupSize);
    const [x, y] = dispatchShape(groups);
    device.queue.writeBuffer(slot.params, 0, new Uint32Array([rows, stride, x * this.workgroupSize, 0]));
    if (!slot.bindGroup || slot.bindGroupFormula !== formula.name) {
      slot.bindGroup = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: this.constantsBuffer! } },
          { binding: 1, resource: { buffer: slot.params } },
          { binding: 2, resource: { buffer: slot.grid } },
          { binding: 3, resource: { buffer: slot.results } },
        ],
      });
      slot.bindGroupFormula = formula.name;
    }
    const outputs = formula.outputs.length;
    const encoder = device.createCommandEncoder();
    if (rows > 0) {
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, slot.bindGroup);
      pass.dispatchWorkgroups(x, y);
      pass.end();
      // Packs the output columns back to back, so a short last chunk reads back only its rows.
      for (let j = 0; j < outputs; j++) encoder.copyBufferToBuffer(slot.results, j * stride * 4, slot.staging, j * rows * 4, rows * 4);
    }
    device.queue.submit([encoder.finish()]);
    const bytes = outputs * rows * 4;
    if (bytes === 0) return Promise.resolve(formula.outputs.map(() => new Float32Array(0)));
    return slot.staging.mapAsync(GPUMapMode.READ, 0, bytes).then(() => {
      // One bulk copy out of the mapped range (it is invalid after unmap); the columns are views of that copy.
      const copy = slot.staging.getMappedRange(0, bytes).slice(0);
      slot.staging.unmap();
      const failure = this.gpu.failure();
      if (failure) throw failure;
      return formula.outputs.map((_, j) => new Float32Array(copy, j * rows * 4, rows));
    });
  }

  async *evaluate(formula: Formula, constants: Float64Array, chunks: Iterable<GridChunk>): AsyncGenerator<EvaluatedChunk> {
    const pending: Pending[] = [];
    const iterator = chunks[Symbol.iterator]();
    try {
      this.ensureSlots();
      const pipeline = await this.checkedPipeline(formula);
      this.writeConstants(constants);
      let submitted = 0;
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
        if (pending.length === IN_FLIGHT) {
          const oldest = pending[0];
          const computed = await oldest.done;
          pending.shift();
          yield { grid: oldest.grid, computed };
        }
        const failure = this.gpu.failure();
        if (failure) throw failure;
        const slot = this.slots[submitted++ % IN_FLIGHT];
        const done = this.submit(formula, pipeline, slot, next.value);
        // Awaited in order below; this only keeps a second failure from surfacing as an unhandled rejection.
        done.catch(() => undefined);
        pending.push({ grid: next.value, done });
      }
      while (pending.length > 0) {
        const computed = await pending[0].done;
        yield { grid: pending.shift()!.grid, computed };
      }
    } catch (error) {
      if (!this.options.fallbackToCpu) throw error instanceof EngineError ? error : new EngineError(String(error));
      // Nothing is lost: every chunk not yet yielded is evaluated on the CPU, and stored as f32 so the schema
      // of the sweep does not change midway.
      this.options.notice?.(`GPU failed (${(error as Error).message}); continuing on the CPU`);
      const rest: GridChunk[] = pending.map((p) => p.grid);
      pending.length = 0;
      for (const grid of rest) yield toFloat32(evaluateChunkOnCpu(formula, constants, grid));
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
        yield toFloat32(evaluateChunkOnCpu(formula, constants, next.value));
      }
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    // Wait for queued work before freeing what it uses, then destroy every buffer and the device explicitly.
    await this.gpu.device.queue.onSubmittedWorkDone().catch(() => undefined);
    for (const slot of this.slots) {
      slot.grid.destroy();
      slot.results.destroy();
      slot.staging.destroy();
      slot.params.destroy();
    }
    this.slots = [];
    this.constantsBuffer?.destroy();
    this.constantsBuffer = undefined;
    this.pipelines.clear();
    this.gpu.destroy();
  }
}

function toFloat32(chunk: EvaluatedChunk): EvaluatedChunk {
  return { grid: chunk.grid, computed: chunk.computed.map((column) => Float32Array.from(column)) };
}
