/**
 * `npm run stress`: starts the local stack the way `npm start` does, 20 times, and hits each fresh
 * start with 16 concurrent first requests to POST /predict. Fails (exit 1) on any answer that is not
 * 2xx, on a request that gets no answer, or on a serverless-offline that no longer answers afterwards
 * (a crash, such as the native abort `terminate called after throwing an instance of 'Napi::Error'`
 * seen when ONNX Runtime was initialised in several worker threads at once).
 *
 * Bounded: every request has a timeout, and the run stops at its deadline. The embedded PostgreSQL
 * (or DATABASE_URL's server) keeps one cluster across the starts, as a user's repeated `npm start` does.
 * Options: --starts N, --concurrency N, --verbose (serverless-offline's own output).
 */
import { rmSync } from 'node:fs';
import { stackTempDir } from './local/emulators.ts';
import { freePort } from './local/ports.ts';
import { startLocalStack } from './local/stack.ts';
import { parseScriptArgs } from './usage.ts';
import { SEED_EXAMPLE } from '../test/helpers/fixtures.ts';

const values = parseScriptArgs({
  command: 'npm run stress',
  description:
    'Starts the local stack as npm start does, 20 times, and hits each fresh start with 16 concurrent first\n' +
    'POST /predict requests; exits 1 on any answer that is not 2xx, a request with no answer, or a crash.',
  options: {
    starts: { type: 'string', valueName: 'N', description: 'how many fresh starts (20)' },
    concurrency: { type: 'string', valueName: 'N', description: 'concurrent first requests per start (16)' },
    verbose: { type: 'boolean', description: "serverless-offline's own output" },
  },
  environment: { DATABASE_URL: 'a PostgreSQL server to use instead of the embedded one' },
});
const starts = Number(values.starts ?? '20');
const concurrency = Number(values.concurrency ?? '16');
const REQUEST_TIMEOUT_MS = 60_000;
const DEADLINE = Date.now() + 20 * 60_000;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const body = JSON.stringify(SEED_EXAMPLE);

/** The status of one POST /predict, or the reason it got none. */
async function predict(url: string): Promise<number | string> {
  try {
    const response = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    return (error as Error).cause
      ? String((error as Error & { cause: Error }).cause.message)
      : (error as Error).message;
  }
}

const dataDir = stackTempDir('hubfolio-stress-');
const failures: string[] = [];
let completed = 0;
try {
  for (let run = 1; run <= starts; run++) {
    if (Date.now() > DEADLINE) {
      failures.push(`deadline reached after ${run - 1} starts`);
      break;
    }
    const started = performance.now();
    const stack = await startLocalStack({
      env: process.env,
      dataDir,
      port: await freePort(),
      s3Port: await freePort(),
      sqsPort: await freePort(),
      pgPort: await freePort(),
      offlineOutput: values.verbose ? 'inherit' : 'ignore',
    });
    const readyMs = performance.now() - started;
    try {
      const t0 = performance.now();
      const answers = await Promise.all(Array.from({ length: concurrency }, () => predict(stack.url)));
      const burstMs = performance.now() - t0;
      const bad = answers.filter((a) => typeof a !== 'number' || a < 200 || a > 299);
      // A process that aborted answers nothing any more.
      const after = await predict(stack.url);
      const line = `start ${run}/${starts}: ready in ${Math.round(readyMs)} ms; ${concurrency} first requests answered in ${Math.round(burstMs)} ms: ${summary(answers)}; afterwards: ${after}`;
      console.log(line);
      if (bad.length > 0 || after !== 200) failures.push(line);
      completed++;
    } finally {
      await stack.stop();
    }
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}

function summary(answers: Array<number | string>): string {
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(String(a), (counts.get(String(a)) ?? 0) + 1);
  return [...counts].map(([answer, n]) => `${n}× ${answer}`).join(', ');
}

if (failures.length > 0) {
  console.error(`\nFAILED: ${failures.length} of ${completed} starts\n${failures.join('\n')}`);
  process.exit(1);
}
console.log(`\npassed: ${completed} fresh starts, ${concurrency} concurrent first requests each, all 2xx, no crash`);
process.exit(0);
