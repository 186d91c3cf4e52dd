/**
 * `npm start`: the whole suite on http://localhost:3000 (PORT overrides) with embedded S3, SQS and
 * PostgreSQL unless AWS_ENDPOINT_URL / DATABASE_URL name real ones. Ctrl-C stops everything, at any
 * moment; if a part stops by itself, so does the rest, and the exit status says so.
 */
import type { LocalStack } from './local/stack.ts';
import { forgetRunningStack, localDataDir, rememberRunningStack } from './local/running.ts';
import { ensurePortsFree, type StackPorts } from './local/ports.ts';
import { parseScriptArgs } from './usage.ts';

parseScriptArgs({
  command: 'npm start',
  description:
    'Runs the whole suite locally: the API on http://127.0.0.1:$PORT with embedded S3, SQS and PostgreSQL (unless\n' +
    'the variables below name real ones), the sample model and the S3/SQS event bridge. Ctrl-C stops everything.',
  environment: {
    PORT: 'the API port (3000)',
    'S3_PORT, SQS_PORT, POSTGRES_PORT': "the embedded services' ports (free ones)",
    LAMBDA_PORT: "serverless-offline's Lambda invoke port (a free one)",
    LOCAL_DATA_DIR: 'where the embedded services keep their data (.local)',
    'DATABASE_URL, AWS_ENDPOINT_URL': 'a real PostgreSQL, S3 and SQS instead of the embedded ones',
    'MLFLOW_TRACKING_URI, THINGSBOARD_URL': 'MLflow and ThingsBoard (none by default); see README, Configuration',
  },
});

const log = (message: string) => console.log(`[hubfolio] ${message}`);
const fail = (message: string) => console.error(`[hubfolio] ${message}`);

// The AWS SDK warns on Node 20 that its releases after January 2027 need Node 22; the versions this
// project pins run on Node 20.19+, and the deployed functions run on nodejs22.x.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** A port from the environment, or undefined for the default. */
function portFrom(name: string): number | undefined {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    fail(`${name}=${value} is not a port number (1-65535)`);
    process.exit(2);
  }
  return port;
}

const dataDir = localDataDir();
const startup = new AbortController();
let stack: LocalStack | undefined;
/** Set once stopping began: the exit status it ends with. */
let exitCode: number | undefined;

/**
 * Stops what runs and exits with `code`. During start-up, the start-up itself stops what it started
 * and then rejects (below). A second Ctrl-C while stopping exits at once; the API's process group
 * then ends by itself (scripts/local/exit-with-parent.cjs).
 */
async function stopAndExit(code: number): Promise<void> {
  if (exitCode !== undefined) process.exit(exitCode);
  exitCode = code;
  if (!stack) {
    startup.abort(new Error('interrupted'));
    return;
  }
  await stack.stop().catch((error: Error) => fail(`stop: ${error.message}`));
  forgetRunningStack(dataDir);
  process.exit(code);
}

/** When the first Ctrl-C came: one Ctrl-C arrives more than once (from the terminal, relayed by npm and tsx). */
let interruptedAt: number | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interruptedAt !== undefined && Date.now() - interruptedAt < 2_000) return;
    log(interruptedAt === undefined ? 'stopping…' : 'stopping now');
    interruptedAt ??= Date.now();
    void stopAndExit(130);
  });
}
// A crash of this process (an emulator runs in it) must not leave the API running on its own.
process.on('uncaughtException', (error) => {
  fail(`the local stack failed: ${error.message}`);
  if (process.env.DEBUG) console.error(error);
  void stopAndExit(1);
});

const ports: StackPorts = {
  port: portFrom('PORT'),
  lambdaPort: portFrom('LAMBDA_PORT'),
  s3Port: portFrom('S3_PORT'),
  sqsPort: portFrom('SQS_PORT'),
  pgPort: portFrom('POSTGRES_PORT'),
};
try {
  // Before loading the stack's modules (seconds): a port in use is reported at once.
  await ensurePortsFree(ports, process.env.HOST || '127.0.0.1');
  const { startLocalStack } = await import('./local/stack.ts');
  stack = await startLocalStack({ env: process.env, dataDir, ...ports, log, signal: startup.signal });
} catch (error) {
  if (startup.signal.aborted) {
    log('stopped before it was ready');
    process.exit(exitCode ?? 130);
  }
  fail(`could not start: ${(error as Error).message}`);
  if (process.env.DEBUG) console.error(error);
  process.exit(1);
}

rememberRunningStack(dataDir, stack);
log(`ready: ${stack.url}  (try: curl ${stack.url}/health)`);
void stack.failure.then((what) => {
  if (exitCode !== undefined) return;
  fail(`${what}; stopping the rest`);
  void stopAndExit(1);
});
