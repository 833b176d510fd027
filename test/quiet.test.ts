import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuAvailable } from './gpu-support.js';
import { cleanupTempDirs, makeTempDir, REPO_ROOT } from './helpers.js';

afterAll(cleanupTempDirs);

let gpu = false;
beforeAll(async () => {
  gpu = await gpuAvailable();
}, 60_000);

const ENV = { ...process.env, EGL_PLATFORM: 'surfaceless' };

function run(args: string[], script?: string) {
  const argv = script ? ['--input-type=module', '-e', script] : [join(REPO_ROOT, 'bin', 'parasweep.js'), ...args];
  return spawnSync(process.execPath, argv, { cwd: REPO_ROOT, encoding: 'utf8', env: ENV, timeout: 120_000 });
}

/**
 * Dawn prints its warnings from native code (fprintf to stderr) while it looks for adapters: on llvmpipe through
 * OpenGL ES, two "maxDynamic... artificially reduced" lines, and "Couldn't load Vulkan" where libvulkan is missing.
 */
describe('Dawn stays quiet unless --verbose', () => {
  it('a GPU sweep with -q prints nothing on stderr', (context) => {
    if (!gpu) context.skip();
    const out = join(makeTempDir(), 'q.arrow');
    const result = run(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8,64', '--engine', 'gpu', '-q', '-o', out]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
  });

  it('--verbose lets the native warnings through', (context) => {
    if (!gpu) context.skip();
    const out = join(makeTempDir(), 'v.arrow');
    const result = run(['sweep', '--model', 'llama3.1-8b', '--ngpus', '8', '--engine', 'gpu', '--verbose', '-o', out]);
    expect(result.status, result.stderr).toBe(0);
    // What Dawn prints depends on the adapter; llvmpipe behind OpenGL ES (CI's) always warns about its limits.
    if (/llvmpipe/.test(result.stderr)) expect(result.stderr).toMatch(/^Warning: max\w+ artificially reduced/m);
  });

  it("a library user's process gets no native output either, and its own stderr still works after", (context) => {
    if (!gpu) context.skip();
    const script = `
      import { sweep } from ${JSON.stringify(join(REPO_ROOT, 'dist', 'index.js'))};
      const { table } = await sweep({ model: 'llama3.1-8b', search: { ngpus_range: '8' }, engine: 'gpu' });
      process.stderr.write('rows ' + table.numRows + '\\n');
    `;
    const result = run([], script);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^rows \d+\n$/);
  });
});
