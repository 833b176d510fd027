import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listBundled } from '../src/index.js';
import { cleanupTempDirs, fixtureCsv, makeTempDir, REPO_ROOT } from './helpers.js';

afterAll(cleanupTempDirs);

/** POSIX-shell words of a command line (single and double quotes; no expansions are used in the README). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  let inWord = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const COMMANDS = [...README.matchAll(/^(?:npm install && )?npx parasweep (.*)$/gm)].map((m) => shellWords(m[1]));

/**
 * Commands cheap enough to run in the suite as written, that write no file. The others sweep millions of configs or
 * write into the working directory; the PoC's is run below with its output moved to a temporary directory.
 */
const RUN_AS_WRITTEN = (args: string[]) =>
  ['models', 'hardware', 'sweeps', 'launch'].includes(args[0]) || (args[0] === 'best' && args.some((a) => a.startsWith('examples/hf/')));

function parasweep(args: string[], cwd: string) {
  return spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'parasweep.js'), ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, EGL_PLATFORM: 'surfaceless' },
  });
}

describe('README examples', () => {
  it('are found', () => {
    expect(COMMANDS.length).toBeGreaterThanOrEqual(11);
  });

  it('name only files in the repository and bundled configs', () => {
    const bundled = { '--model': 'models', '--config-name': 'models', '--hardware': 'hardware', '--sweep': 'sweeps' } as const;
    for (const args of COMMANDS) {
      args.forEach((arg, i) => {
        const kind = bundled[args[i - 1] as keyof typeof bundled];
        if (!kind) return;
        const ok = arg.includes('/') ? existsSync(join(REPO_ROOT, arg)) : listBundled(kind).includes(arg);
        expect(ok, `${args.join(' ')}: ${arg}`).toBe(true);
      });
    }
  });

  for (const args of COMMANDS.filter(RUN_AS_WRITTEN)) {
    it(`runs: parasweep ${args.join(' ')}`, () => {
      const result = parasweep(args, REPO_ROOT);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout.length + result.stderr.length).toBeGreaterThan(0);
    }, 120_000);
  }

  it("the PoC's command gives the PoC's CSV", () => {
    const args = COMMANDS.find((a) => a.includes('--formula') && a.includes('poc'))!;
    const dir = makeTempDir();
    const withOutput = args.map((a) => (a === 'memory_estimation.csv' ? join(dir, a) : a));
    const result = parasweep(withOutput, REPO_ROOT);
    expect(result.status, result.stderr).toBe(0);
    expect(readFileSync(join(dir, 'memory_estimation.csv'), 'utf8') === fixtureCsv('405b-ngpus.csv.gz')).toBe(true);
  }, 120_000);
});

