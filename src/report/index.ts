import { createReadStream, openAsBlob, statSync } from 'node:fs';
import { extname } from 'node:path';
import { RecordBatch, RecordBatchReader, Schema, tableFromIPC } from 'apache-arrow';
import { InputError } from '../errors.js';
import { AtomicFile } from '../sink/atomic.js';
import { ReportAggregator, ReportData } from './aggregate.js';
import { renderReport } from './html.js';

export { ReportAggregator } from './aggregate.js';
export type { ReportData } from './aggregate.js';
export { renderReport, reportSpecs } from './html.js';

/** Extensions `parasweep report` reads. */
export const REPORT_INPUTS = ['.arrow', '.ipc', '.feather', '.arrows', '.parquet'];

/** Rows per batch when reading Parquet: large enough to amortise, small enough to keep memory flat. */
const PARQUET_BATCH_ROWS = 1 << 16;

/** Streams the record batches of a results file (Arrow IPC file or stream, or Parquet), with its schema first. */
export async function* readResults(path: string): AsyncGenerator<{ schema: Schema; batch?: RecordBatch }> {
  const extension = extname(path).toLowerCase();
  if (!REPORT_INPUTS.includes(extension)) {
    throw new InputError('report', `cannot tell the format of ${path}: use one of ${REPORT_INPUTS.join(', ')}`);
  }
  try {
    if (!statSync(path).isFile()) throw new InputError('report', `${path} is not a file`);
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError('report', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (extension === '.parquet') {
    const wasm = await import('parquet-wasm');
    let file: Awaited<ReturnType<typeof wasm.ParquetFile.fromFile>>;
    try {
      file = await wasm.ParquetFile.fromFile(await openAsBlob(path));
    } catch (error) {
      throw new InputError('report', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message ?? String(error)}`);
    }
    // The file's Arrow schema carries the provenance; batches read back do not.
    const schema = tableFromIPC(file.schema().intoIPCStream()).schema;
    yield { schema };
    const stream = (await file.stream({ batchSize: PARQUET_BATCH_ROWS })) as ReadableStream<{ intoIPCStream(): Uint8Array }>;
    for await (const wasmBatch of stream) {
      for (const batch of tableFromIPC(wasmBatch.intoIPCStream()).batches) yield { schema, batch };
    }
    return;
  }
  let reader: RecordBatchReader;
  try {
    reader = await RecordBatchReader.from(createReadStream(path));
    await reader.open();
    if (!reader.schema) throw new Error('not an Arrow IPC file');
  } catch (error) {
    throw new InputError('report', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  yield { schema: reader.schema };
  for await (const batch of reader) yield { schema: reader.schema, batch };
}

export interface ReportOptions {
  /** GPU count of the heatmap, Pareto and breakdown charts (default: the largest with a fitting config). */
  ngpus?: number;
}

/** A title from the results' metadata: model, hardware. */
export function reportTitle(metadata: ReadonlyMap<string, string>): string {
  const parse = (key: string) => {
    try {
      return JSON.parse(metadata.get(key) ?? 'null');
    } catch {
      return null;
    }
  };
  const model = (parse('parasweep.model') as { name?: string } | null)?.name ?? 'sweep';
  const hardware = (parse('parasweep.hardware') as Array<{ name: string }> | null)?.map((h) => h.name).join(', ');
  return `parasweep report: ${model}${hardware ? ` on ${hardware}` : ''}`;
}

/** Writes the report atomically (no partial file on error). */
export async function writeReport(path: string, data: ReportData, metadata: ReadonlyMap<string, string>, source: string): Promise<number> {
  const html = renderReport(data, { title: reportTitle(metadata), source, metadata });
  const file = await AtomicFile.open(path, '--report');
  try {
    await file.write(html);
    await file.commit();
  } catch (error) {
    file.abortSync();
    throw error;
  }
  return Buffer.byteLength(html);
}

/** `parasweep report RESULTS -o report.html`. Returns the report's size in bytes and the data it plotted. */
export async function reportFromFile(input: string, output: string, options: ReportOptions = {}): Promise<{ bytes: number; data: ReportData }> {
  checkReportPath(output);
  const aggregator = new ReportAggregator(options.ngpus);
  let schema: Schema | undefined;
  for await (const item of readResults(input)) {
    if (!schema) {
      schema = item.schema;
      ReportAggregator.check(schema, input);
    }
    if (item.batch) aggregator.add(item.batch);
  }
  const data = aggregator.result();
  const bytes = await writeReport(output, data, schema!.metadata, input);
  return { bytes, data };
}

export function checkReportPath(path: string, field = '--report'): void {
  if (!/\.html?$/i.test(path)) throw new InputError(field, `${path}: the report is HTML; name it *.html`);
}
