import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    setupFiles: ['test/helpers/env.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: integration tests share one PostgreSQL database per run and emulators per file.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
