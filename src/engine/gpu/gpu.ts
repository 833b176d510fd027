import { EngineError, InputError } from '../../errors.js';
import type { Formula } from '../../formulas/types.js';
import type { GridChunk } from '../../grid/grid.js';
import { evaluateChunkOnCpu, yieldToEventLoop } from '../cpu/cpu.js';
import { EngineSelection, gatherRows, selectOnCpu } from '../selection.js';
import type { Engine, EvaluatedChunk } from '../types.js';
import { GpuDevice, GpuDeviceOptions, openGpuDevice } from './device.js';
import { LAYOUT_KEY } from '../cpu/memo.js';
import { RECOMPUTE_SLOTS } from '../../model.js';
import { buildShader, buildTermsShader, hasClassTerms, termsBlockWords } from './shader.js';
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
  /** Sizes of the per-class pass, and its bind group. */
  termsParams: GPUBuffer;
  termsBindGroup?: GPUBindGroup;
  termsBindGroupKey?: string;
  /** Scratch of the class scan, reused from chunk to chunk (fresh buffers cost page faults). */
  boundaries?: Uint8Array;
  offsets?: Int32Array;
}

/**
 * One dispatch of the per-row pass over rows [first, end) of a chunk, after the per-class pass for its `classes`
 * layout classes (none: every row computes its terms directly). A chunk whose tables do not fit beside its grid
 * takes several, one after the other, reusing the table space.
 */
interface Dispatch {
  first: number;
  end: number;
  classes: number;
  /** Word offset of the class list in the grid buffer, and the list: (first row, table offset) per class. */
  listWord: number;
  list: Int32Array;
  /** Rows of classes whose table alone exceeds the space: the per-row pass computes their terms itself. */
  direct: boolean;
}

/** (SP, recompute) pairs of a layout class's table: SP off/on times the recompute codes (model.ts). */
const TERM_PAIRS = 2 * RECOMPUTE_SLOTS;

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
 * and compute of one overlap the readback of the other. For the full formula a per-class pass first computes the
 * terms each layout class shares (shaders/terms.wgsl) into a table after the grid columns, in the same buffer, so
 * the per-row pass keeps within compatibility mode's four storage buffers (docs/gpu-backends.md, "What bounds the
 * rate").
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
    // The results buffer holds the outputs plus, when selecting, each survivor's row index; the grid buffer the
    // grid and, with class terms, each row's table offset (the tables take the rest).
    const columns = Math.max(gridWidth + (hasClassTerms(formula) ? 1 : 0), formula.outputs.length + 1);
    const rows = Math.floor(this.maxBufferBytes / (4 * columns));
    if (rows < 1) {
      throw new InputError('--max-buffer-mib', `${this.maxBufferBytes} bytes hold no row of --formula ${formula.name} (one needs ${4 * columns})`);
    }
    return rows;
  }

  private pipelineKey(formula: Formula, gridColumns: readonly string[], selection?: EngineSelection, direct = false): string {
    return `${formula.name}/${gridColumns.join(',')}/${this.workgroupSize}/${selection?.key ?? ''}${direct ? '/direct' : ''}`;
  }

  private pipeline(formula: Formula, gridColumns: readonly string[], selection?: EngineSelection, direct = false): GPUComputePipeline {
    // Keyed by the shape class of the shader: formula, grid layout, selection, and workgroup size.
    const key = this.pipelineKey(formula, gridColumns, selection, direct);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const code = buildShader(formula, gridColumns, selection);
      const module = this.gpu.device.createShaderModule({ code, label: `parasweep ${formula.name}` });
      const constants: Record<string, number> = { workgroup_size: this.workgroupSize };
      if (hasClassTerms(formula)) constants.terms_table = direct ? 0 : 1;
      pipeline = this.gpu.device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants },
        label: key,
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private termsPipeline(formula: Formula, gridColumns: readonly string[]): GPUComputePipeline {
    const key = `terms/${formula.name}/${gridColumns.join(',')}/${this.workgroupSize}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.gpu.device.createShaderModule({ code: buildTermsShader(formula, gridColumns), label: `parasweep ${formula.name} terms` });
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
    kind: 'rows' | 'direct' | 'terms' = 'rows',
  ): Promise<GPUComputePipeline> {
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const pipeline =
      kind === 'terms' ? this.termsPipeline(formula, gridColumns) : this.pipeline(formula, gridColumns, selection, kind === 'direct');
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
        termsParams: device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
      });
    }
  }

  private writeConstants(constants: Float64Array): GPUBuffer {
    const device = this.gpu.device;
    const bytes = Math.ceil((constants.length * 4) / 16) * 16;
    if (!this.constantsBuffer || this.constantsBuffer.size < bytes) {
      this.constantsBuffer?.destroy();
      this.constantsBuffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      for (const slot of this.slots) {
        slot.bindGroup = undefined;
        slot.termsBindGroup = undefined;
      }
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

  private bindEntries(slot: Slot, selection?: EngineSelection): GPUBindGroupEntry[] {
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.constantsBuffer! } },
      { binding: 1, resource: { buffer: slot.params } },
      { binding: 2, resource: { buffer: slot.grid } },
      { binding: 3, resource: { buffer: slot.results } },
    ];
    if (selection) entries.push({ binding: 4, resource: { buffer: slot.counter } });
    if (selection?.top) entries.push({ binding: 5, resource: { buffer: this.thresholdsBuffer! } });
    return entries;
  }

  private bindGroup(slot: Slot, pipeline: GPUComputePipeline, key: string, selection?: EngineSelection): GPUBindGroup {
    if (!slot.bindGroup || slot.bindGroupKey !== key) {
      const entries = this.bindEntries(slot, selection);
      slot.bindGroup = this.gpu.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      slot.bindGroupKey = key;
    }
    return slot.bindGroup;
  }

  private termsBindGroup(slot: Slot, pipeline: GPUComputePipeline, key: string): GPUBindGroup {
    if (!slot.termsBindGroup || slot.termsBindGroupKey !== key) {
      slot.termsBindGroup = this.gpu.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: this.constantsBuffer! } },
          { binding: 1, resource: { buffer: slot.termsParams } },
          { binding: 2, resource: { buffer: slot.grid } },
        ],
      });
      slot.termsBindGroupKey = key;
    }
    return slot.termsBindGroup;
  }

  /** Words the grid buffer has for class lists and tables, after the grid columns and the per-row offsets. */
  private tableWords(gridWidth: number, stride: number): number {
    return this.maxBufferBytes / 4 - (gridWidth + 1) * stride;
  }

  /** Whether some layout class of the chunk has a table larger than the space for tables. */
  private needsDirect(formula: Formula, grid: GridChunk): boolean {
    const pp = grid.columns[grid.columnNames.indexOf('pp')];
    let deepest = 0;
    for (let i = 0; i < grid.length; i++) if (pp[i] > deepest) deepest = pp[i];
    const capacity = this.tableWords(grid.columns.length, this.chunkRows(formula, grid.columns.length));
    return grid.length > 0 && TERM_PAIRS * termsBlockWords(deepest) + 2 > capacity;
  }

  /**
   * Splits a chunk into layout classes (runs of rows equal in every LAYOUT_KEY column, the CPU memo's key) and lays
   * out their tables in the grid buffer after the grid columns and the per-row offset column: tables first, then
   * the class list. Returns the offsets column (-1 for rows of a class whose table alone exceeds the space: they
   * compute their terms directly) and the dispatches.
   */
  private classDispatches(slot: Slot, grid: GridChunk, stride: number): { offsets: Int32Array; dispatches: Dispatch[] } {
    const rows = grid.length;
    const column = (name: string) => grid.columns[grid.columnNames.indexOf(name)];
    const pp = column('pp');
    // Class boundaries, one key column at a time: a tight loop per column costs a fraction of comparing whole rows.
    if (!slot.boundaries || slot.boundaries.length < stride + 1) {
      slot.boundaries = new Uint8Array(stride + 1);
      slot.offsets = new Int32Array(stride);
    }
    const boundaries = slot.boundaries;
    const offsets = slot.offsets!.subarray(0, rows);
    boundaries.fill(0, 0, rows + 1);
    boundaries[0] = 1;
    boundaries[rows] = 1;
    for (const name of LAYOUT_KEY) markChanges(column(name), rows, boundaries);
    const tablesWord = (grid.columns.length + 1) * stride;
    const capacity = this.tableWords(grid.columns.length, stride);
    const dispatches: Dispatch[] = [];
    const list: number[] = [];
    let first = 0;
    let used = 0;
    const close = (end: number) => {
      if (end > first) {
        dispatches.push({ first, end, classes: list.length / 2, listWord: tablesWord + used, list: Int32Array.from(list), direct: false });
      }
      first = end;
      used = 0;
      list.length = 0;
    };
    let start = 0;
    while (start < rows) {
      let end = start + 1;
      while (boundaries[end] === 0) end++;
      const words = TERM_PAIRS * termsBlockWords(pp[start]);
      if (list.length > 0 && used + words + list.length + 2 > capacity) close(start);
      if (words + 2 > capacity) {
        close(start);
        offsets.fill(-1, start, end);
        const previous = dispatches[dispatches.length - 1];
        if (previous?.direct && previous.end === start) previous.end = end;
        else dispatches.push({ first: start, end, classes: 0, listWord: 0, list: new Int32Array(0), direct: true });
        first = end;
      } else {
        offsets.fill(tablesWord + used, start, end);
        list.push(start, tablesWord + used);
        used += words;
      }
      start = end;
    }
    close(rows);
    return { offsets, dispatches };
  }

  private submit(
    formula: Formula,
    pipeline: GPUComputePipeline,
    termsPipeline: GPUComputePipeline | undefined,
    directPipeline: GPUComputePipeline | undefined,
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
    let dispatches: Dispatch[] = [{ first: 0, end: rows, classes: 0, listWord: 0, list: new Int32Array(0), direct: false }];
    if (termsPipeline) {
      const laid = this.classDispatches(slot, grid, stride);
      dispatches = laid.dispatches;
      if (rows > 0) device.queue.writeBuffer(slot.grid, grid.columns.length * stride * 4, laid.offsets);
    }
    if (selection) {
      this.writeThresholds(selection);
      device.queue.writeBuffer(slot.counter, 0, new Uint32Array(4));
    }
    const key = this.pipelineKey(formula, grid.columnNames, selection);
    const bindGroup = this.bindGroup(slot, pipeline, key, selection);
    // The direct pipeline has the same bindings; its bind group is made for its own layout.
    const direct = dispatches.some((dispatch) => dispatch.direct)
      ? this.gpu.device.createBindGroup({ layout: directPipeline!.getBindGroupLayout(0), entries: this.bindEntries(slot, selection) })
      : undefined;
    const outputs = formula.outputs.length;
    let encoder = device.createCommandEncoder();
    dispatches.forEach((dispatch, d) => {
      if (dispatch.end === dispatch.first) return;
      if (d > 0) {
        // The next dispatch rewrites the uniforms and the table space: what used them must be submitted first
        // (queue writes and submits run in call order).
        device.queue.submit([encoder.finish()]);
        encoder = device.createCommandEncoder();
      }
      const pass = encoder.beginComputePass();
      if (dispatch.classes > 0) {
        device.queue.writeBuffer(slot.grid, dispatch.listWord * 4, dispatch.list);
        const [tx, ty] = dispatchShape(Math.ceil((dispatch.classes * TERM_PAIRS) / this.workgroupSize));
        device.queue.writeBuffer(slot.termsParams, 0, new Uint32Array([dispatch.classes, stride, tx * this.workgroupSize, dispatch.listWord]));
        pass.setPipeline(termsPipeline!);
        pass.setBindGroup(0, this.termsBindGroup(slot, termsPipeline!, `terms/${key}`));
        pass.dispatchWorkgroups(tx, ty);
      }
      const [x, y] = dispatchShape(Math.ceil((dispatch.end - dispatch.first) / this.workgroupSize));
      device.queue.writeBuffer(slot.params, 0, new Uint32Array([dispatch.end, stride, x * this.workgroupSize, dispatch.first]));
      pass.setPipeline(dispatch.direct ? directPipeline! : pipeline);
      pass.setBindGroup(0, dispatch.direct ? direct! : bindGroup);
      pass.dispatchWorkgroups(x, y);
      pass.end();
    });
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
      // The mapped range is invalid after unmap, hence one copy, column by column: a buffer per column is small
      // enough for malloc to reuse freed memory, while one fresh buffer of the whole chunk is new pages every
      // chunk, whose faults cost several times the copy (bench/gpu-phases.mjs, docs/gpu-backends.md).
      const mapped = slot.staging.getMappedRange(0, bytes);
      const out = Array.from({ length: columns }, (_, j) => new Float32Array(mapped, j * rows * 4, rows).slice());
      slot.staging.unmap();
      this.throwIfFailed();
      return out;
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
      let termsPipeline: GPUComputePipeline | undefined;
      let directPipeline: GPUComputePipeline | undefined;
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
        if (hasClassTerms(formula)) {
          termsPipeline ??= await this.checkedPipeline(formula, next.value.columnNames, undefined, 'terms');
          // Built only for a grid with a class whose table does not fit (a small --max-buffer-mib, a deep pipeline).
          directPipeline ??= this.needsDirect(formula, next.value)
            ? await this.checkedPipeline(formula, next.value.columnNames, selection, 'direct')
            : undefined;
        }
        const slot = this.slots[submitted++ % IN_FLIGHT];
        const done = this.submit(formula, pipeline, termsPipeline, directPipeline, slot, next.value, selection);
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
      slot.termsParams.destroy();
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

/** Sets boundaries[i] where column[i] differs from column[i - 1]. */
function markChanges(column: Int32Array, rows: number, boundaries: Uint8Array): void {
  let previous = column[0];
  for (let i = 1; i < rows; i++) {
    const value = column[i];
    if (value !== previous) boundaries[i] = 1;
    previous = value;
  }
}

function toFloat32(chunk: EvaluatedChunk): EvaluatedChunk {
  return { grid: chunk.grid, computed: chunk.computed.map((column) => Float32Array.from(column)) };
}
