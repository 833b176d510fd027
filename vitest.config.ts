import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Forks, not threads: a native crash in Dawn must not take the whole runner down, and each file gets its
    // own process, as the GPU stress script checks.
    pool: 'forks',
    // Two files at a time even on two cores (vitest's default leaves one core to itself): most files spend their
    // time in spawned CLI processes, llvmpipe's threads or I/O, so a second file fills the idle core.
    maxWorkers: 2,
    testTimeout: 180_000,
    hookTimeout: 60_000,
    include: ['test/**/*.test.ts'],
    // Builds dist/ once for every file that spawns the CLI or compiles against dist/*.d.ts.
    globalSetup: ['test/global-setup.ts'],
  },
});
