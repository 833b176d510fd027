import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Forks, not threads: a native crash in Dawn must not take the whole runner down, and each file gets its
    // own process, as the GPU stress script checks.
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 60_000,
    include: ['test/**/*.test.ts'],
  },
});
