#!/usr/bin/env node
// Runs the GPU tests (test/gpu.test.ts) in fresh processes, by default 50 times, and counts crashes: a process
// killed by a signal (segfault, abort at exit) or exiting non-zero. Exits 1 unless every run was clean.
// Usage: npm run stress:gpu [-- --runs N] [-- --file test/other.test.ts]
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const runs = Number(option('--runs', '50'));
const file = option('--file', 'test/gpu.test.ts');
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`stress:gpu: --runs must be a positive integer, got ${option('--runs')}`);
  process.exit(2);
}

let crashes = 0;
const started = Date.now();
for (let run = 1; run <= runs; run++) {
  const result = spawnSync('npx', ['vitest', 'run', file, '--reporter=dot'], {
    encoding: 'utf8',
    env: { ...process.env, PARASWEEP_REQUIRE_GPU: '1' },
  });
  const clean = result.status === 0 && result.signal === null;
  if (!clean) {
    crashes++;
    const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-8).join('\n');
    console.log(`run ${run}: CRASH (exit ${result.status}, signal ${result.signal})\n${tail}`);
  } else {
    process.stdout.write(run % 10 === 0 ? `${run}\n` : '.');
  }
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\nstress:gpu: ${crashes} crashes in ${runs} runs of ${file} (${seconds} s)`);
process.exit(crashes === 0 ? 0 : 1);
