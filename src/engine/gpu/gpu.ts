import { EngineError, InputError } from '../../errors.js';
import type { Formula } from '../../formulas/types.js';
import type { GridChunk } from '../../grid/grid.js';
import { evaluateChunkOnCpu, yieldToEventLoop } from '../cpu/cpu.js';
import { EngineSelection, gatherRows, selectOnCpu } from '../selection.js';
import type { Engine, EvaluatedChunk } from '../types.js';
import { GpuDevice, GpuDeviceOptions, openGpuDevice } from './device.js';
import { buildShader } from './shader.js';
import { checkSampleAgainstCpu } from './validate.js';

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
  /** Survivor count of a selecting dispatch, and its mappable copy. */
  counter: GPUBuffer;
  counterStaging: GPUBuffer;
  bindGroup?: GPUBindGroup;
  bindGroupKey?: string;
}

interface Pending {
  grid: GridChunk;
  done: Promise<EvaluatedChunk>;
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
    const gpu = await openGpuDevice({ backend: options.backend, adapter: options.adapter, maxBufferBytes, verbose: options.verbose });
    return gpu ? new GpuEngine(gpu, { ...options, maxBufferBytes }) : undefined;
  }

  chunkRows(formula: Formula, gridWidth: number): number {
    // The results buffer holds the outputs plus, when selecting, each survivor's row index.
    const columns = Math.max(gridWidth, formula.outputs.length + 1);
    const rows = Math.floor(this.maxBufferBytes / (4 * columns));
    if (rows < 1) {
      throw new InputError('--max-buffer-mib', `${this.maxBufferBytes} bytes hold no row of --formula ${formula.name} (one needs ${4 * columns})`);
    }
    return rows;
  }

  private pipelineKey(formula: Formula, gridColumns: readonly string[], selection?: EngineSelection): string {
    return `${formula.name}/${gridColumns.join(',')}/${this.workgroupSize}/${selection?.key ?? ''}`;
  }

  private pipeline(formula: Formula, gridColumns: readonly string[], selection?: EngineSelection): GPUComputePipeline {
    // Keyed by the shape class of the shader: formula, grid layout, selection, and workgroup size.
    const key = this.pipelineKey(formula, gridColumns, selection);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const code = buildShader(formula, gridColumns, selection);
      const module = this.gpu.device.createShaderModule({ code, label: `parasweep ${formula.name}` });
      pipeline = this.gpu.device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants: { workgroup_size: this.workgroupSize } },
        label: key,
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private async checkedPipeline(
    formula: Formula,
    gridColumns: readonly string[],
    selection?: EngineSelection,
  ): Promise<GPUComputePipeline> {
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const pipeline = this.pipeline(formula, gridColumns, selection);
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
        counter: device.createBuffer({
          size: 16,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
        }),
        counterStaging: device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
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

  /** Thresholds of the top-k groups: one f32 per group, rewritten before each chunk. */
  private thresholdsBuffer?: GPUBuffer;

  private writeThresholds(selection?: EngineSelection): GPUBuffer {
    const device = this.gpu.device;
    const values = selection?.top?.thresholds() ?? new Float32Array(4);
    const bytes = Math.max(16, Math.ceil((values.length * 4) / 16) * 16);
    if (!this.thresholdsBuffer || this.thresholdsBuffer.size < bytes) {
      this.thresholdsBuffer?.destroy();
      this.thresholdsBuffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      for (const slot of this.slots) slot.bindGroup = undefined;
    }
    device.queue.writeBuffer(this.thresholdsBuffer, 0, values);
    return this.thresholdsBuffer;
  }

  private bindGroup(slot: Slot, pipeline: GPUComputePipeline, key: string, selection?: EngineSelection): GPUBindGroup {
    if (!slot.bindGroup || slot.bindGroupKey !== key) {
      const entries: GPUBindGroupEntry[] = [
        { binding: 0, resource: { buffer: this.constantsBuffer! } },
        { binding: 1, resource: { buffer: slot.params } },
        { binding: 2, resource: { buffer: slot.grid } },
        { binding: 3, resource: { buffer: slot.results } },
      ];
      if (selection) entries.push({ binding: 4, resource: { buffer: slot.counter } });
      if (selection?.top) entries.push({ binding: 5, resource: { buffer: this.thresholdsBuffer! } });
      slot.bindGroup = this.gpu.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      slot.bindGroupKey = key;
    }
    return slot.bindGroup;
  }

  private submit(
    formula: Formula,
    pipeline: GPUComputePipeline,
    slot: Slot,
    grid: GridChunk,
    selection?: EngineSelection,
  ): Promise<EvaluatedChunk> {
    const device = this.gpu.device;
    const rows = grid.length;
    const stride = this.chunkRows(formula, grid.columns.length);
    if (rows > stride) throw new Error(`chunk of ${rows} rows exceeds the GPU chunk of ${stride}`);
    grid.columns.forEach((column, k) => {
      // Straight from the Arrow column's memory into the GPU buffer, at this column's offset.
      device.queue.writeBuffer(slot.grid, k * stride * 4, column.buffer, column.byteOffset, rows * 4);
    });
    const groups = Math.ceil(rows / this.workgroupSize);
    const [x, y] = dispatchShape(groups);
    device.queue.writeBuffer(slot.params, 0, new Uint32Array([rows, stride, x * this.workgroupSize, 0]));
    if (selection) {
      this.writeThresholds(selection);
      device.queue.writeBuffer(slot.counter, 0, new Uint32Array(4));
    }
    const key = this.pipelineKey(formula, grid.columnNames, selection);
    const bindGroup = this.bindGroup(slot, pipeline, key, selection);
    const outputs = formula.outputs.length;
    const encoder = device.createCommandEncoder();
    if (rows > 0) {
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(x, y);
      pass.end();
    }
    if (!selection) {
      // Packs the output columns back to back, so a short last chunk reads back only its rows.
      for (let j = 0; j < outputs && rows > 0; j++) {
        encoder.copyBufferToBuffer(slot.results, j * stride * 4, slot.staging, j * rows * 4, rows * 4);
      }
      device.queue.submit([encoder.finish()]);
      return this.readBack(slot, outputs, rows).then((columns) => ({ grid, computed: columns.slice(0, outputs) }));
    }
    // Selecting: read the survivor count first, then only the survivors' rows.
    encoder.copyBufferToBuffer(slot.counter, 0, slot.counterStaging, 0, 16);
    device.queue.submit([encoder.finish()]);
    return slot.counterStaging.mapAsync(GPUMapMode.READ, 0, 16).then(() => {
      const survivors = new Uint32Array(slot.counterStaging.getMappedRange(0, 16).slice(0))[0];
      slot.counterStaging.unmap();
      this.throwIfFailed();
      // A count beyond the chunk means the adapter did not run the shader as written: refuse its results.
      if (survivors > rows) throw new EngineError(`the GPU counted ${survivors} surviving rows in a chunk of ${rows}`);
      const copy = device.createCommandEncoder();
      for (let j = 0; j <= outputs && survivors > 0; j++) {
        copy.copyBufferToBuffer(slot.results, j * stride * 4, slot.staging, j * survivors * 4, survivors * 4);
      }
      device.queue.submit([copy.finish()]);
      return this.readBack(slot, outputs + 1, survivors).then((columns) => compacted(grid, columns, outputs));
    });
  }

  /** Validation errors and device loss arrive asynchronously; every readback checks for them. */
  private throwIfFailed(): void {
    const failure = this.gpu.failure();
    if (failure) throw failure;
  }

  /** Maps `columns` packed columns of `rows` f32 each; one bulk copy out of the mapped range, columns are views. */
  private readBack(slot: Slot, columns: number, rows: number): Promise<Float32Array[]> {
    const bytes = columns * rows * 4;
    if (bytes === 0) {
      // Nothing to map, but the work that produced nothing must still have succeeded.
      return this.gpu.device.queue.onSubmittedWorkDone().then(() => {
        this.throwIfFailed();
        return Array.from({ length: columns }, () => new Float32Array(0));
      });
    }
    return slot.staging.mapAsync(GPUMapMode.READ, 0, bytes).then(() => {
      // The mapped range is invalid after unmap, hence the one copy.
      const copy = slot.staging.getMappedRange(0, bytes).slice(0);
      slot.staging.unmap();
      this.throwIfFailed();
      return Array.from({ length: columns }, (_, j) => new Float32Array(copy, j * rows * 4, rows));
    });
  }

  async *evaluate(
    formula: Formula,
    constants: Float64Array,
    chunks: Iterable<GridChunk>,
    selection?: EngineSelection,
  ): AsyncGenerator<EvaluatedChunk> {
    const pending: Pending[] = [];
    const iterator = chunks[Symbol.iterator]();
    // A chunk taken from the iterator but not yet submitted: on a failure it must not be lost either.
    let taken: GridChunk | undefined;
    // The first chunk with rows is compared with the CPU on a few rows; a failure leaves it pending, so the CPU
    // fallback evaluates it again.
    let validated = false;
    const validate = (evaluated: EvaluatedChunk) => {
      if (validated || evaluated.grid.length === 0) return;
      checkSampleAgainstCpu(formula, constants, evaluated);
      validated = true;
    };
    try {
      this.ensureSlots();
      this.writeConstants(constants);
      this.writeThresholds(selection);
      let pipeline: GPUComputePipeline | undefined;
      let submitted = 0;
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
        taken = next.value;
        if (pending.length === IN_FLIGHT) {
          const oldest = pending[0];
          const evaluated = await oldest.done;
          validate(evaluated);
          pending.shift();
          yield evaluated;
        }
        const failure = this.gpu.failure();
        if (failure) throw failure;
        pipeline ??= await this.checkedPipeline(formula, next.value.columnNames, selection);
        const slot = this.slots[submitted++ % IN_FLIGHT];
        const done = this.submit(formula, pipeline, slot, next.value, selection);
        // Awaited in order below; this only keeps a second failure from surfacing as an unhandled rejection.
        done.catch(() => undefined);
        pending.push({ grid: next.value, done });
        taken = undefined;
      }
      while (pending.length > 0) {
        const evaluated = await pending[0].done;
        validate(evaluated);
        pending.shift();
        yield evaluated;
      }
    } catch (error) {
      if (!this.options.fallbackToCpu) throw error instanceof EngineError ? error : new EngineError(String(error));
      // Nothing is lost: every chunk not yet yielded is evaluated on the CPU, and stored as f32 so the schema
      // of the sweep does not change midway.
      const reason = (error instanceof Error ? error.message || error.name : String(error)).split('\n')[0] || 'unknown error';
      this.options.notice?.(`GPU failed (${reason}); continuing on the CPU`);
      const rest: GridChunk[] = pending.map((p) => p.grid);
      if (taken) rest.push(taken);
      pending.length = 0;
      const onCpu = (grid: GridChunk) => {
        const evaluated = toFloat32(evaluateChunkOnCpu(formula, constants, grid));
        return selection ? selectOnCpu(evaluated, selection) : evaluated;
      };
      for (const grid of rest) yield onCpu(grid);
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
        yield onCpu(next.value);
        await yieldToEventLoop();
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
      slot.counter.destroy();
      slot.counterStaging.destroy();
    }
    this.slots = [];
    this.constantsBuffer?.destroy();
    this.constantsBuffer = undefined;
    this.thresholdsBuffer?.destroy();
    this.thresholdsBuffer = undefined;
    this.pipelines.clear();
    this.gpu.destroy();
  }
}

/**
 * Survivors of a selecting dispatch arrive in atomic-counter order; sorting them by their chunk-local row index
 * restores grid order, so both engines return the same rows in the same order.
 */
function compacted(grid: GridChunk, columns: Float32Array[], outputs: number): EvaluatedChunk {
  const n = columns[outputs].length;
  const local = new Uint32Array(columns[outputs].buffer, columns[outputs].byteOffset, n);
  const byRow = new Uint32Array(n);
  for (let k = 0; k < n; k++) byRow[k] = k;
  byRow.sort((a, b) => local[a] - local[b]);
  const computed = columns.slice(0, outputs).map((column) => {
    const out = new Float32Array(n);
    for (let k = 0; k < n; k++) out[k] = column[byRow[k]];
    return out;
  });
  const order = new Uint32Array(n);
  for (let k = 0; k < n; k++) order[k] = local[byRow[k]];
  // Grid columns and row ids of the survivors, gathered from the chunk still held on the CPU.
  const gathered = gatherRows({ grid, computed: [] }, order);
  return { grid: gathered.grid, computed, rowIds: gathered.rowIds };
}

function toFloat32(chunk: EvaluatedChunk): EvaluatedChunk {
  return { grid: chunk.grid, computed: chunk.computed.map((column) => Float32Array.from(column)) };
}
