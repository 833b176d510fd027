/** Shared helpers of the fault-injection suite (not a test file itself). */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO_ROOT } from '../helpers.js';

export const BIN = join(REPO_ROOT, 'bin', 'parasweep.js');

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function parasweep(args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Run {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 << 20,
  });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/**
 * stderr's lines from parasweep itself: Dawn prints its own `Warning: ...` lines (with an indented `at
 * operator()` source line) when it starts, which are not ours to count.
 */
export function ourLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^Warning: /.test(line) && !/^\s+at operator\(\)/.test(line));
}

/** The contract for bad input or a failed write: exactly one line naming the problem, and the exit code. */
export function expectOneLine(run: Run, status: number, message: RegExp): void {
  const lines = ourLines(run.stderr);
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^parasweep: /);
  expect(lines[0]).toMatch(message);
  expect(lines[0]).not.toMatch(/\n\s+at /);
  expect(run.status, run.stderr).toBe(status);
}

/** Entries of `dir` (hidden ones included), sorted. */
export function entries(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** Starts the CLI in the background, collecting stderr. */
export function start(args: string[], cwd = REPO_ROOT) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd });
  let stderr = '';
  child.stderr.on('data', (data) => (stderr += String(data)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { child, exited };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds (polling), or fails after `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Whether this process may mount a private tmpfs (root, with unshare): the real full-disk test needs one. */
export function canMountTmpfs(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /mnt && umount /mnt'], { encoding: 'utf8' });
  return probe.status === 0;
}
