#!/usr/bin/env node
// npm run bench [-- --quick] [-- --workloads a,b] [-- --engines cpu,gpu] [-- --timeout S]
// Runs each workload on each engine, each measurement in a fresh process, and prints one Markdown table:
// rows, configs/s and peak RSS for grid enumeration, evaluation alone, and end to end into Arrow, CSV and Parquet,
// each end-to-end cell with the disk's write bound for the bytes that sink wrote (bench/disk.mjs: the same number
// of bytes written and fdatasync'd, as `dd conv=fdatasync` does), measured right after it.
// A workload with `count` (too large to evaluate within a run) is only counted, by bench/count.mjs on a sample of
// its GPU counts, under the same --timeout: its estimated valid configs and enumeration rate.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { WORKLOADS } from './workloads.mjs';
import { diskWriteSeconds } from './disk.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const workloads = option('--workloads', Object.keys(WORKLOADS).join(',')).split(',');
const engines = option('--engines', 'cpu,gpu').split(',');
const timeoutS = Number(option('--timeout', '300'));
const sinks = args.includes('--quick') ? ['arrow'] : ['arrow', 'csv', 'parquet'];
const dir = mkdtempSync(join(tmpdir(), 'parasweep-bench-'));

function measure(workload, engine, mode, out) {
  const script =
    mode === 'count'
      ? ['bench/count.mjs', workload, String(WORKLOADS[workload].count.stride)]
      : ['bench/measure.mjs', workload, engine, mode, ...(out ? [out] : [])];
  const result = spawnSync(process.execPath, script, {
    encoding: 'utf8',
    timeout: timeoutS * 1000,
    env: { ...process.env, EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' },
  });
  if (result.error || result.status !== 0) {
    const why = result.error?.code === 'ETIMEDOUT' ? `timeout > ${timeoutS} s` : `exit ${result.status} ${result.signal ?? ''}`;
    return { failed: why, tail: (result.stderr ?? '').trim().split('\n').slice(-3).join(' | ') };
  }
  const line = result.stdout.trim().split('\n').pop();
  const parsed = JSON.parse(line);
  if (out) {
    parsed.bytes = statSync(out).size;
    rmSync(out, { force: true });
    parsed.disk_s = diskWriteSeconds(parsed.bytes, dir);
  }
  return parsed;
}

const fmtRate = (m) =>
  m.failed ? m.failed : `${(m.rows / m.seconds / 1e6).toFixed(2)} M/s (${m.seconds.toFixed(2)} s, CPU ${m.cpu_s.toFixed(1)} s)`;
// An end-to-end cell: the rate, then the disk's bound for the same bytes.
const fmtWrite = (m) =>
  m.failed ? m.failed : `${fmtRate(m)}; ${(m.bytes / 1e6).toFixed(0)} MB, disk ${m.disk_s.toFixed(2)} s`;
// What bounds an end-to-end cell: the largest of the engine's time (evaluation alone), the disk's time for the
// bytes written, and the sink's own CPU time (end-to-end CPU seconds less evaluation's) spread over the cores the
// engine leaves (one fewer than the machine's: the engine keeps one busy).
const bound = (m, evaluate) => {
  if (m.failed || evaluate.failed) return '';
  const spare = Math.max(1, cpus().length - 1);
  const times = { engine: evaluate.seconds, disk: m.disk_s, 'sink CPU': Math.max(0, m.cpu_s - evaluate.cpu_s) / spare };
  const [name] = Object.entries(times).sort((a, b) => b[1] - a[1])[0];
  // All three, since they overlap only in part (the CPU engine and the Arrow sink share the main thread; the disk's
  // page-cache copies take a core from both).
  return `; bound: ${name} (${Object.entries(times).map(([n, t]) => `${n} ${t.toFixed(2)} s`).join(', ')})`;
};
const loadAtStart = loadavg();
const rows = [];
const counted = [];
const adapters = new Set();
for (const workload of workloads) {
  if (WORKLOADS[workload].count) {
    counted.push({ workload, count: measure(workload, 'cpu', 'count') });
    process.stderr.write(`bench: ${workload} counted\n`);
    continue;
  }
  const enumerate = measure(workload, 'cpu', 'enumerate');
  for (const engine of engines) {
    const evaluate = measure(workload, engine, 'evaluate');
    if (evaluate.description) adapters.add(evaluate.description);
    const written = Object.fromEntries(sinks.map((sink) => [sink, measure(workload, engine, 'write', join(dir, `${workload}-${engine}.${sink}`))]));
    rows.push({ workload, engine, enumerate, evaluate, written });
    process.stderr.write(`bench: ${workload} on ${engine} done\n`);
  }
}
rmSync(dir, { recursive: true, force: true });

const header = ['workload', 'engine', 'valid configs', 'enumerate', 'evaluate', ...sinks.map((s) => `end to end .${s}`), 'peak RSS (MB)'];
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
for (const r of rows) {
  const rss = Math.max(r.evaluate.rss_mb ?? 0, ...sinks.map((s) => r.written[s].rss_mb ?? 0));
  lines.push(
    `| ${r.workload} | ${r.engine} | ${r.enumerate.rows ?? '?'} | ${fmtRate(r.enumerate)} | ${fmtRate(r.evaluate)} | ${sinks.map((s) => fmtWrite(r.written[s]) + bound(r.written[s], r.evaluate)).join(' | ')} | ${rss.toFixed(0)} |`,
  );
}
console.log(`Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
console.log(`Engines: ${[...adapters].join('; ')}`);
const load = (l) => l.map((x) => x.toFixed(1)).join(' ');
console.log(`Load average (1, 5, 15 min) at the start: ${load(loadAtStart)}, at the end: ${load(loadavg())} (over ${cpus().length} cores).`);
console.log("Rates are valid configs per second; each cell is a fresh process. Cells: rate (wall seconds, CPU seconds of all threads); end to end also the bytes written, the disk's time to write and fdatasync as many, and the largest of the engine's time (evaluate), the disk's and the sink's CPU time over the cores the engine leaves.\n");
console.log(lines.join('\n'));
for (const { workload, count: c } of counted) {
  console.log(
    c.failed
      ? `\n${workload}: not counted (${c.failed})`
      : `\n${workload} (counted only): about ${(c.rows_estimate / 1e9).toFixed(2)}e9 valid configs (standard error ${(c.standard_error / 1e9).toFixed(2)}e9), ` +
          `from ${c.rows_enumerated} rows enumerated for ${c.sampled} of its ${c.gpu_counts} GPU counts (one drawn in each block of ${c.stride}) ` +
          `in ${c.seconds.toFixed(1)} s: enumeration ${c.enumerate_rate_m_per_s.toFixed(2)} M/s; at that rate enumerating it all takes about ` +
          `${(c.rows_estimate / c.enumerate_rate_m_per_s / 1e6 / 60).toFixed(0)} min, before any evaluation.`,
  );
}
for (const r of rows) for (const [s, m] of Object.entries(r.written)) if (m.failed) console.log(`note: ${r.workload}/${r.engine}/.${s}: ${m.failed} ${m.tail ?? ''}`);
