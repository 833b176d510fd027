/**
 * Vitest globalSetup: compiles dist/ once before any test file runs. The CLI tests spawn bin/parasweep.js, which
 * runs dist/, and the library test compiles a consumer against dist/*.d.ts; one tsc run here replaces a check (and
 * possibly a concurrent tsc) in every such file.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers.js';

/** Newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  const built = join(REPO_ROOT, 'dist', 'cli.js');
  // Up to date when dist/cli.js is newer than every source (one tsc run writes all of dist/).
  if (existsSync(built) && statSync(built).mtimeMs >= Math.max(newestMtime(join(REPO_ROOT, 'src')), statSync(join(REPO_ROOT, 'tsconfig.json')).mtimeMs)) return;
  const tsc = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  if (tsc.status !== 0 || tsc.stdout + tsc.stderr !== '') {
    throw new Error(`tsc -p tsconfig.json failed (status ${tsc.status}):\n${tsc.stdout}${tsc.stderr}`);
  }
}
