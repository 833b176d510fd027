import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Forks, not threads: a native crash in Dawn must not take the whole runner down, and each file gets its
    // own process, as the GPU stress script checks.
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 60_000,
    include: ['test/**/*.test.ts'],
    // Builds dist/ once for every file that spawns the CLI or compiles against dist/*.d.ts.
    globalSetup: ['test/global-setup.ts'],
  },
});
