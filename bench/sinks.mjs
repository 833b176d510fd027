// Sink throughput alone: node bench/sinks.mjs [WORKLOAD] [SHARD] [ENGINE]
// Evaluates one shard of a workload into memory (default llama405b-1k..8k, shard 0/10, 1,138,734 rows; the full
// llama405b-1..10240 grid's tenth is ~133 M rows), then times
// each sink writing those same batches to a temp dir, so the rates are the sinks' own, not the engine's.
// Prints one JSON line per sink: rows, seconds, CPU seconds (all threads: on a shared machine the steadier number),
// rows/s, bytes, and the disk's bound for those bytes.
// BATCHES=FILE.arrow keeps the evaluated batches in FILE (written on the first run, read on the next ones), so that
// repeated runs time the sinks without evaluating again; SINKS=csv,parquet picks the sinks.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeData, RecordBatch, Struct, Table, tableFromIPC, tableToIPC } from 'apache-arrow';
import { prepareSweep, sweepBatches } from '../dist/sweep.js';
import { createEngine } from '../dist/engine/index.js';
import { openSink } from '../dist/sink/index.js';
import { parseShard } from '../dist/grid/shard.js';
import { WORKLOADS } from './workloads.mjs';
import { diskWriteSeconds } from './disk.mjs';

const [name = 'llama405b-1k..8k', shardText = '0/10', engineKind = 'cpu'] = process.argv.slice(2);
const cache = process.env.BATCHES;
let batches = [];
if (cache && existsSync(cache)) {
  // Each column in buffers of its own, as the engine hands them over (views into the one buffer read from the file
  // made apache-arrow's IPC writer, which the Parquet sink uses, 20x slower).
  batches = tableFromIPC(readFileSync(cache)).batches.map((batch) => {
    const children = batch.data.children.map((data) =>
      data.clone(data.type, data.offset, data.length, data.nullCount, [data.valueOffsets, data.values?.slice(), data.nullBitmap?.slice(), data.typeIds]),
    );
    return new RecordBatch(batch.schema, makeData({ type: new Struct(batch.schema.fields), length: batch.numRows, nullCount: 0, children }));
  });
} else {
  const options = { ...WORKLOADS[name].options, engine: engineKind, shard: parseShard(shardText) };
  const prepared = prepareSweep(options);
  const engine = await createEngine(options, prepared.formula);
  const stats = { candidates: 0, evaluated: 0, rows: 0, seconds: 0, engine: engine.description, unanswered: [] };
  for await (const batch of sweepBatches(prepared, engine, stats, options)) batches.push(batch);
  await engine.dispose();
  if (cache) writeFileSync(cache, tableToIPC(new Table(batches), 'file'));
}
const rows = batches.reduce((n, batch) => n + batch.numRows, 0);
const dir = mkdtempSync(join(tmpdir(), 'parasweep-sinks-'));
try {
  for (const format of (process.env.SINKS ?? 'arrow,csv,parquet').split(',')) {
    const path = join(dir, `out.${format}`);
    const started = performance.now();
    const cpu = process.cpuUsage();
    const sink = await openSink(path, batches[0].schema);
    for (const batch of batches) await sink.write(batch);
    await sink.commit();
    const seconds = (performance.now() - started) / 1000;
    const { user, system } = process.cpuUsage(cpu);
    const cpu_s = (user + system) / 1e6;
    const bytes = statSync(path).size;
    const disk_s = diskWriteSeconds(bytes, dir);
    console.log(JSON.stringify({ format, rows, seconds, cpu_s, rows_per_s: rows / seconds, rows_per_cpu_s: rows / cpu_s, bytes, disk_s, rss_mb: process.resourceUsage().maxRSS / 1024 }));
    rmSync(path);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
