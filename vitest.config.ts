import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    setupFiles: ['test/helpers/env.ts'],
    testTimeout: 30_000,
    // Lambda runs Node 22; the SDK's notice about Node 20 (these machines) is noise in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    hookTimeout: 60_000,
    // Two cores. The embedded PGlite (no DATABASE_URL) is a single session: one file at a time there.
    maxWorkers: process.env.DATABASE_URL ? 2 : 1,
    minWorkers: 1,
  },
});
