import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    setupFiles: ['test/helpers/env.ts'],
    testTimeout: 30_000,
    // Lambda runs Node 22; the SDK's notice about Node 20 (these machines) is noise in test output.
    // POWERTOOLS_DEV sends the functions' JSON logs through the global console, where vitest holds
    // them per test and prints them only when that test fails (silent: 'passed-only'); set here and
    // not in a setup file, because modules that build the logger load before a setup file runs.
    env: {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_DEV: 'true',
      // No CloudWatch metrics (EMF lines) in test output; test/integration/metrics.test.ts turns them on.
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'INFO',
    },
    silent: 'passed-only',
    hookTimeout: 60_000,
    // Two cores; each file has its own schema, bucket and queues, so two files may run side by side.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
