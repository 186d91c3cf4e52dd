/**
 * `npm start`: the whole suite on http://localhost:3000 (PORT overrides) with embedded S3, SQS and
 * PostgreSQL unless AWS_ENDPOINT_URL / DATABASE_URL name real ones. Ctrl-C stops everything.
 */
import { resolve } from 'node:path';
import { ROOT, startLocalStack } from './local/stack.ts';

const log = (message: string) => console.log(`[hubfolio] ${message}`);

// The AWS SDK warns on Node 20 that its releases after January 2027 need Node 22; the versions this
// project pins run on Node 20.19+, and the deployed functions run on nodejs22.x.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const stack = await startLocalStack({
  env: process.env,
  dataDir: resolve(ROOT, '.local'),
  port: Number(process.env.PORT ?? 3000),
  log,
}).catch((error: Error) => {
  console.error(`[hubfolio] could not start: ${error.message}`);
  if (process.env.DEBUG) console.error(error);
  process.exit(1);
});

log(`ready: ${stack.url}  (try: curl ${stack.url}/health)`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    log('stopping…');
    await stack.stop();
    process.exit(0);
  });
}
