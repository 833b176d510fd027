/**
 * Fault injection, signals: SIGINT, SIGTERM and SIGHUP at several points of a run (while validating, while the CPU
 * engine evaluates with nothing written yet, while files are being written) end the run at once with 128 + the
 * signal's number, one line, and no file; SIGKILL leaves a temporary file that the next run to the same output
 * removes.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, makeTempDir } from '../helpers.js';
import { parasweep, sleep, start, waitFor } from './support.js';

afterAll(cleanupTempDirs);

const NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/**
 * Whether the CLI's handlers are in place, from the caught-signal mask in /proc/PID/status (Linux; elsewhere
 * assumed). SIGHUP is the witness: Node catches SIGINT and SIGTERM itself from its first milliseconds, and the CLI
 * installs its three handlers together (src/cli.ts, HANDLED_SIGNALS).
 */
function handlersInstalled(pid: number): boolean {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return true;
  }
  const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status);
  return caught === null || (BigInt(`0x${caught[1]}`) & (1n << BigInt(NUMBERS.SIGHUP - 1))) !== 0n;
}
/** 10.7M configs on the CPU with --top: minutes of work during which nothing is written. */
const HUGE = ['--model', 'llama3.1-405b', '--ngpus', '1..10240', '--gbs', '1024..4096:64', '--engine', 'cpu', '-q'];

describe('signals end a run at once, leaving nothing', () => {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    for (const delayMs of [300, 2500]) {
      it(`${signal} ${delayMs} ms into a CPU --top sweep (nothing written yet): exit ${128 + NUMBERS[signal]} within seconds`, async () => {
        const dir = makeTempDir();
        const { child, exited } = start(['sweep', ...HUGE, '--top', '3', '-o', join(dir, 'top.arrow')]);
        await sleep(delayMs);
        // On a loaded machine Node can take longer than 2.5 s to get there: the late case waits for the handlers.
        if (delayMs >= 1000) await waitFor(() => handlersInstalled(child.pid!), 30_000, 'the signal handlers');
        const sent = Date.now();
        child.kill(signal);
        const { code, stderr } = await exited;
        // Before its handler is installed (the first ~0.2 s of Node starting) a signal kills the process itself.
        if (code === null) {
          expect(delayMs).toBeLessThan(1000);
        } else {
          expect(code).toBe(128 + NUMBERS[signal]);
          expect(stderr.trim()).toBe(`parasweep: interrupted by ${signal}; no output written`);
        }
        // One CPU chunk takes ~0.3 s (the engine yields between chunks); 5 s leaves room for a loaded machine,
        // where the loop that never yielded took ~20 s to notice.
        expect(Date.now() - sent).toBeLessThan(5000);
        expect(readdirSync(dir)).toEqual([]);
      });
    }
  }

  it('SIGHUP while files are being written removes their temporary files', async () => {
    const dir = makeTempDir();
    const outputs = ['big.arrow', 'big.csv', 'big.parquet'].map((name) => join(dir, name));
    const { child, exited } = start(['sweep', ...HUGE, ...outputs.flatMap((out) => ['-o', out])]);
    await waitFor(() => readdirSync(dir).some((name) => name.endsWith('.partial')), 60_000, 'a temporary file');
    await sleep(200);
    child.kill('SIGHUP');
    const { code, stderr } = await exited;
    expect(code).toBe(129);
    expect(stderr.trim()).toBe('parasweep: interrupted by SIGHUP; no output written');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('SIGKILL leaves a temporary file, which the next run to the same output removes', async () => {
    const dir = makeTempDir();
    const out = join(dir, 'x.csv');
    const { child, exited } = start(['sweep', ...HUGE, '-o', out]);
    await waitFor(() => readdirSync(dir).some((name) => name.endsWith('.partial')), 60_000, 'a temporary file');
    child.kill('SIGKILL');
    await exited;
    const [stale] = readdirSync(dir);
    expect(stale).toMatch(/^\.x\.csv\.\d+\.partial$/);
    const run = parasweep(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--engine', 'cpu', '-q', '-o', out]);
    expect(run.status, run.stderr).toBe(0);
    expect(readdirSync(dir)).toEqual(['x.csv']);
    expect(existsSync(join(dir, stale))).toBe(false);
  });
});
