import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../scripts/local/ports.ts';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';

/**
 * The local stack as `npm start` runs it (its own emulators, serverless-offline, the bridge), on free
 * ports, keeping the run's PostgreSQL as a user's DATABASE_URL. `env` adds what a user would set.
 */
export async function startTestStack(env: NodeJS.ProcessEnv = {}): Promise<LocalStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hubfolio-e2e-'));
  const stackEnv: NodeJS.ProcessEnv = { ...process.env };
  // What the test setup points at this file's own bucket and queues belongs to the stack here
  // (unless `env` names them: a stack on other endpoints, as a user's AWS_ENDPOINT_URL would).
  for (const name of [
    'AWS_ENDPOINT_URL',
    'AWS_ENDPOINT_URL_S3',
    'AWS_ENDPOINT_URL_SQS',
    'MODEL_BUCKET',
    'PREDICTIONS_QUEUE_URL',
    'PREDICTIONS_DLQ_URL',
    'MODEL_SYNC_QUEUE_URL',
  ]) {
    delete stackEnv[name];
  }
  Object.assign(stackEnv, env);
  const stack = await startLocalStack({
    env: stackEnv,
    dataDir,
    ephemeral: true,
    port: await freePort(),
    offlineOutput: 'ignore',
  }).catch((error: unknown) => {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  });
  return {
    ...stack,
    stop: async () => {
      await stack.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
