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
// The targets are judged on this workload (its 405B sweep as the benchmark evaluates it).
const TARGET_WORKLOAD = 'llama405b-1k..8k';
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
  m.failed
    ? m.failed
    : `${(m.rows / m.seconds / 1e6).toFixed(2)} M/s (${m.seconds.toFixed(2)} s, CPU ${m.cpu_s.toFixed(1)} s` +
      (m.main_cpu_s === undefined ? ')' : `, main thread ${m.main_cpu_s.toFixed(1)} s)`);
// An end-to-end cell: the rate, then the disk's bound for the same bytes.
const fmtWrite = (m) =>
  m.failed ? m.failed : `${fmtRate(m)}; ${(m.bytes / 1e6).toFixed(0)} MB, disk ${m.disk_s.toFixed(2)} s`;
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
    const alone = measure(workload, engine, 'engine');
    if (evaluate.description) adapters.add(evaluate.description);
    const written = Object.fromEntries(sinks.map((sink) => [sink, measure(workload, engine, 'write', join(dir, `${workload}-${engine}.${sink}`))]));
    rows.push({ workload, engine, enumerate, evaluate, alone, written });
    process.stderr.write(`bench: ${workload} on ${engine} done\n`);
  }
}
rmSync(dir, { recursive: true, force: true });

const header = ['workload', 'engine', 'valid configs', 'enumerate', 'evaluate', 'engine alone', ...sinks.map((s) => `end to end .${s}`), 'peak RSS (MB)'];
const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
for (const r of rows) {
  const rss = Math.max(r.evaluate.rss_mb ?? 0, ...sinks.map((s) => r.written[s].rss_mb ?? 0));
  lines.push(
    `| ${r.workload} | ${r.engine} | ${r.enumerate.rows ?? '?'} | ${fmtRate(r.enumerate)} | ${fmtRate(r.evaluate)} | ${fmtRate(r.alone)} | ${sinks.map((s) => fmtWrite(r.written[s])).join(' | ')} | ${rss.toFixed(0)} |`,
  );
}
console.log(`Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
console.log(`Engines: ${[...adapters].join('; ')}`);
const load = (l) => l.map((x) => x.toFixed(1)).join(' ');
console.log(`Load average (1, 5, 15 min) at the start: ${load(loadAtStart)}, at the end: ${load(loadavg())} (over ${cpus().length} cores).`);
console.log("Rates are valid configs per second; each cell is a fresh process. Cells: rate (wall seconds, CPU seconds of all threads, of which the main thread's: enumeration, JS, uploads and readback; the rest is other threads', the GPU engine's kernel on llvmpipe among them); end to end also the bytes written and the disk's time to write and fdatasync as many. With CPU seconds near cores x wall seconds a cell is bound by CPU (docs/gpu-backends.md, \"What bounds the rate\").\n");
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
console.log(bounds(rows));
for (const r of rows) for (const [s, m] of Object.entries(r.written)) if (m.failed) console.log(`note: ${r.workload}/${r.engine}/.${s}: ${m.failed} ${m.tail ?? ''}`);

/**
 * Issue 13's targets, each with what bounds it, from this run's own cells. Evaluation is the grid walk (one thread)
 * feeding the engine: its ceiling is the slower of the two measured alone. An end-to-end cell cannot beat any of
 * three floors: the disk's time for its bytes, the evaluation's wall time, and its CPU seconds (all threads) spread
 * over every core; the largest floor is the resource that bounds it, and wall / floor says how close it runs.
 */
function bounds(measured) {
  const cores = cpus().length;
  const targets = { evaluate: { cpu: 3e6, gpu: 20e6 }, csv: 0.5e6, parquet: 1e6, arrowDiskRatio: 1.5 };
  const rate = (m) => m.rows / m.seconds;
  const M = (x) => `${(x / 1e6).toFixed(2)} M/s`;
  const out = ['', `Against the targets (issue 13), per workload and engine; the targets apply to ${TARGET_WORKLOAD} (the issue's 405B workload as evaluated here); floors of each end-to-end cell: the disk's time for its bytes, the evaluation's time, and the CPU seconds of all its threads over the ${cores} cores:`];
  for (const r of measured) {
    if (r.evaluate.failed || r.enumerate.failed || r.alone.failed) continue;
    const target = r.workload === TARGET_WORKLOAD ? targets.evaluate[r.engine] : undefined;
    const walk = rate(r.enumerate);
    const engine = rate(r.alone);
    // The walk and the engine run one after the other on the main thread (the CPU engine in it; llvmpipe runs a
    // dispatch inside queue.submit, docs/gpu-backends.md), so their times add up; and the engine's CPU seconds of
    // all threads, spread over every core, bound it again.
    const serial = 1 / (1 / walk + 1 / engine);
    const engineNs = (r.alone.cpu_s / r.alone.rows) * 1e9;
    const bound = walk < engine ? 'the grid walk' : 'the engine';
    out.push(
      `- ${r.workload} on ${r.engine}: evaluation ${M(rate(r.evaluate))}` +
        (target ? ` (target ${M(target)}: ${rate(r.evaluate) >= target ? 'met' : 'not met'})` : '') +
        `; the grid walk alone ${M(walk)} (one thread), the engine alone ${M(engine)} (${engineNs.toFixed(0)} CPU ns a row` +
        (r.engine === 'cpu'
          ? ', on the main thread'
          : ` of all threads, llvmpipe's shader threads among them: ${M((cores * 1e9) / engineNs)} at most on ${cores} cores`) +
        `); one after the other ${M(serial)}; bound: ${bound}.`,
    );
    for (const [sink, m] of Object.entries(r.written)) {
      if (m.failed) continue;
      // The sink's own CPU: end-to-end CPU less evaluation's (reported, not a floor: it may use every core).
      const sinkCpu = m.cpu_s - r.evaluate.cpu_s;
      const floors = { disk: m.disk_s, evaluation: r.evaluate.seconds, 'CPU of all threads over the cores': m.cpu_s / cores };
      const [name, floor] = Object.entries(floors).sort((a, b) => b[1] - a[1])[0];
      const goal =
        r.workload !== TARGET_WORKLOAD
          ? sink === 'arrow'
            ? `${(m.seconds / m.disk_s).toFixed(2)}x the disk's time`
            : M(rate(m))
          : sink === 'arrow'
          ? `${(m.seconds / m.disk_s).toFixed(2)}x the disk's time (target ${targets.arrowDiskRatio}x: ${m.seconds <= targets.arrowDiskRatio * m.disk_s ? 'met' : 'not met'})`
          : `${M(rate(m))} (target ${M(targets[sink])}: ${rate(m) >= targets[sink] ? 'met' : 'not met'})`;
      out.push(
        `  - .${sink}: ${goal}; floors: disk ${floors.disk.toFixed(2)} s, evaluation ${floors.evaluation.toFixed(2)} s, CPU ${m.cpu_s.toFixed(1)} s / ${cores} cores = ${floors['CPU of all threads over the cores'].toFixed(2)} s ` +
          `(the sink's own ${Math.max(0, sinkCpu).toFixed(1)} CPU s, ${sinkCpu > 0 ? M(m.rows / sinkCpu) + ' per CPU second' : 'within noise'}); bound: ${name}, wall ${(m.seconds / floor).toFixed(2)}x that floor.`,
      );
    }
  }
  return out.join('\n');
}
