/**
 * `npm run bench`: the prediction path against real PostgreSQL and the SQS emulator, in one run.
 * Writes bench/RESULTS.md with the machine, the date and every figure. Timings live here, never in tests.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { build } from 'esbuild';
import pg from 'pg';
import { migrate } from '#shared/migrations';
import { S3RVER_CREDENTIALS, stackTempDir } from '../scripts/local/emulators.ts';
import { freePort } from '../scripts/local/ports.ts';
import { buildHandlers } from '../scripts/local/handlers.ts';
import { ensureBucket, ensureQueues, seedSampleModel, sqsClient } from '../scripts/local/resources.ts';
import { ROOT, SAMPLE_MODEL } from '../scripts/local/stack.ts';
import { SEED_EXAMPLE as SEED } from '../test/helpers/fixtures.ts';
import { httpEvent, lambdaContext } from '../test/helpers/lambda.ts';
import { benchForwarder } from './forwarder.ts';
import { benchHttp } from './http.ts';
import { renderResults, type BenchResults } from './report.ts';
import { sqs as predictionsSqs } from '#prediction/queue';
import { countSqsSends, type SqsSends } from './sqs-requests.ts';
import { timeQueries } from './call-times.ts';
import { pool as handlersPool } from '#shared/db';
import { measure, measureAlternating, median, round } from './stats.ts';
import { parseScriptArgs } from '../scripts/usage.ts';

parseScriptArgs({
  command: 'npm run bench',
  description:
    'The benchmark of the prediction path (in-process handler, cold start, serverless-offline over HTTP, telemetry\n' +
    'forwarder) against a real PostgreSQL and the S3/SQS emulators; writes bench/RESULTS.md. Takes several minutes.',
  environment: {
    DATABASE_URL:
      'a PostgreSQL server on which the benchmark creates, and then drops, a database of its own (required)',
  },
});
// Said before anything starts: the figures mean something only against a real server, not PGlite.
const server = process.env.DATABASE_URL;
if (!server) {
  console.error(
    'npm run bench needs DATABASE_URL: a real PostgreSQL server it may create and drop a database on, e.g.\n' +
      '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench',
  );
  process.exit(2);
}

const execFileAsync = promisify(execFile);
const log = (message: string) => console.log(`[bench] ${message}`);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
// Nor a CloudWatch metrics line (EMF) per request on stdout.
process.env.POWERTOOLS_METRICS_DISABLED = 'true';

async function benchDatabase(server: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `hubfolio_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect().catch((error: Error) => {
    throw new Error(`the benchmark cannot reach the PostgreSQL of DATABASE_URL: ${error.message}`);
  });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  await migrate(url.toString());
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: server });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Bundles a handler as serverless-esbuild does for deployment (serverless.yml's custom.esbuild; the
 * target is this Node's), for a cold start that compiles no TypeScript.
 */
async function bundle(entry: string, outdir: string): Promise<string> {
  const outfile = join(outdir, 'handler.js');
  await build({
    entryPoints: [resolve(ROOT, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node.split('.')[0]}`,
    minify: true,
    keepNames: true,
    sourcemap: true,
    sourcesContent: false,
    external: ['onnxruntime-node'],
    logLevel: 'error',
  });
  return outfile;
}

// Also the data of the HTTP rows' stacks, embedded PostgreSQL included.
const work = stackTempDir('hubfolio-bench-');
const loadBefore = loadavg();
const db = await benchDatabase(server);
const emulators = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    resolve(ROOT, 'bench/emulators-process.ts'),
    String(await freePort()),
    String(await freePort()),
    join(work, 's3'),
  ],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...S3RVER_CREDENTIALS },
  },
);
const [ready] = (await once(emulators.stdout!, 'data')) as [Buffer];
const urls = JSON.parse(ready.toString()) as { s3: string; sqs: string };
const endpoints = { s3: urls.s3, sqs: urls.sqs, region: 'us-east-1' };
Object.assign(process.env, S3RVER_CREDENTIALS, {
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL_S3: urls.s3,
  AWS_ENDPOINT_URL_SQS: urls.sqs,
  DATABASE_URL: db.url,
  MODEL_BUCKET: 'bench-models',
  MODEL_NAME: 'hubfolio-model',
});
await ensureBucket(endpoints, 'bench-models');
const { queueUrl } = await ensureQueues(endpoints, 'bench');
process.env.PREDICTIONS_QUEUE_URL = queueUrl;
await seedSampleModel(endpoints, 'bench-models', 'hubfolio-model', SAMPLE_MODEL);

// The SQS requests the prediction handlers make (what AWS bills): their client, built once per process.
const sqsSends = countSqsSends(predictionsSqs());
const perThousand = (sends: SqsSends, predictions: number) => ({
  requests: round((sends.requests * 1000) / predictions, 1),
  billed: round((sends.billed * 1000) / predictions, 1),
  bytes: Math.round((sends.bytes * 1000) / predictions),
});

const results: Record<string, unknown> = {};
try {
  // Floor: what one prediction cannot avoid — one INSERT and one SendMessage, no handler.
  const floorPool = new pg.Pool({ connectionString: db.url, max: 4 });
  const floorSqs = sqsClient(endpoints);
  let floorTs = 1;
  const floorOnce = async () => {
    const id = randomUUID();
    const ts = floorTs++;
    await floorPool.query(
      `INSERT INTO predictions (id, ts, created_at, user_id, projetos_min, habilidades_min, kw_contexto, kw_processo, kw_resultado,
        consistencia_visual_score, bio, contatos, raw_score, predicted_iq, classification, model_name, model_version)
       VALUES ($1, $2::bigint, to_timestamp($2::bigint / 1000.0), 1, 3, 10, 4, 3, 4, 80, true, true, 82.5, 82.5, 'Bom', 'floor', '0')`,
      [id, ts],
    );
    await floorSqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ id, ts }) }));
  };
  log('handler in-process: /predict, in alternating rounds with the floor');
  const { handler: predict } = await import('../functions/predict/handler.ts');
  const { handler: predictBatch } = await import('../functions/predict-batch/handler.ts');
  const body = JSON.stringify(SEED);
  const once = async () => {
    const result = (await predict(httpEvent({ path: '/predict', body }), lambdaContext())) as { statusCode: number };
    if (result.statusCode !== 200) throw new Error(`/predict answered ${result.statusCode}`);
  };
  await measure(200, 1, floorOnce); // warm-up
  await measure(200, 1, once);
  sqsSends.take();
  const c1 = await measureAlternating(8, 250, 1, { floor: floorOnce, handler: once });
  const c16 = await measureAlternating(8, 500, 16, { floor: floorOnce, handler: once });
  results.sqsPredict = perThousand(sqsSends.take(), c1.handler.n + c16.handler.n);
  // What the AWS SDK alone costs of the floor: one SendMessage, no database.
  const sendOnly = () =>
    floorSqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ id: randomUUID(), ts: 0 }) }),
    );
  await measure(200, 16, sendOnly);
  results.sendC16 = await measure(2000, 16, sendOnly);
  results.floorC1 = c1.floor;
  results.handlerC1 = c1.handler;
  results.floorC16 = c16.floor;
  results.handlerC16 = c16.handler;
  await floorPool.end();

  log('handler in-process: /predict/batch with 1,000 rows');
  const batchBody = JSON.stringify({
    items: Array.from({ length: 1000 }, (_, i) => ({ ...SEED, kw_contexto: i % 40 })),
  });
  const batchOnce = async () => {
    const result = (await predictBatch(httpEvent({ path: '/predict/batch', body: batchBody }), lambdaContext())) as {
      statusCode: number;
    };
    if (result.statusCode !== 200) throw new Error(`/predict/batch answered ${result.statusCode}`);
  };
  await measure(3, 1, batchOnce);
  sqsSends.take();
  // Where a batch's time goes: its statements, timed on the handlers' own pool, and its SQS calls.
  const queryTimes = timeQueries(handlersPool());
  results.batch1000 = await measure(20, 1, batchOnce);
  const statements = queryTimes.take();
  const batchSends = sqsSends.take();
  results.batchParts = {
    allocateMs: round(median(statements['SELECT allocate_prediction_ts'])),
    insertMs: round(median(statements['INSERT INTO predictions'])),
    sendMs: round(median(batchSends.durationsMs)),
  };
  results.sqsBatch = perThousand(batchSends, 20 * 1000);

  log('cold start: bundled handler in a fresh process (5 runs)');
  const bundled = await bundle('functions/predict/handler.ts', join(work, 'bundle'));
  const colds: Array<{ initMs: number; firstInvocationMs: number; totalMs: number }> = [];
  for (let i = 0; i < 5; i++) {
    // Asynchronously: the emulators the child talks to run in this process.
    const { stdout } = await execFileAsync(process.execPath, [resolve(ROOT, 'bench/cold-start.mjs'), bundled, body], {
      encoding: 'utf8',
      // As on Lambda: the layer's packages are found through NODE_PATH, and serverless.yml sets
      // NODE_OPTIONS so that stack traces point into the TypeScript sources.
      env: { ...process.env, NODE_PATH: resolve(ROOT, 'node_modules'), NODE_OPTIONS: '--enable-source-maps' },
      cwd: ROOT,
    });
    colds.push(JSON.parse(stdout.trim().split('\n').pop()!));
  }
  colds.sort((a, b) => a.totalMs - b.totalMs);
  results.coldStart = colds[2];
  results.bundleBytes = statSync(bundled).size;

  log('what serverless-offline spends resolving the handler on every invocation');
  const handlers = await buildHandlers(ROOT);
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      [resolve(ROOT, 'bench/handler-load.mjs'), handlers.location],
      {
        encoding: 'utf8',
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
      },
    );
    results.handlerLoad = JSON.parse(stdout.trim().split('\n').pop()!);
  } finally {
    await handlers.remove();
  }

  // The stack brings its own emulators, bucket and queues, as `npm start` does.
  const stackEnv = { ...process.env };
  // POWERTOOLS_LOG_LEVEL too: the functions log at serverless.yml's level, as in `npm start`.
  for (const name of [
    'AWS_ENDPOINT_URL_S3',
    'AWS_ENDPOINT_URL_SQS',
    'MODEL_BUCKET',
    'PREDICTIONS_QUEUE_URL',
    'POWERTOOLS_LOG_LEVEL',
  ])
    delete stackEnv[name];
  log("over HTTP through npm start's stack, embedded PostgreSQL (autocannon)");
  const { DATABASE_URL: _, ...embeddedEnv } = stackEnv;
  results.httpEmbedded = await benchHttp({ env: embeddedEnv, dataDir: join(work, 'stack-embedded'), body, batchBody });
  log("over HTTP through npm start's stack, DATABASE_URL's PostgreSQL (autocannon)");
  results.httpServer = await benchHttp({ env: stackEnv, dataDir: join(work, 'stack-server'), body, batchBody });

  log('telemetry forwarder: a backlog of 10,000 queued predictions to the ThingsBoard fake');
  results.forwarder = await benchForwarder();
} finally {
  emulators.kill('SIGTERM');
  await once(emulators, 'exit');
  await db.drop();
  rmSync(work, { recursive: true, force: true });
}

const md = renderResults(results as unknown as BenchResults, {
  databaseHost: new URL(db.url).host,
  loadBefore,
  loadAfter: loadavg(),
});
writeFileSync(resolve(ROOT, 'bench/RESULTS.md'), md);
console.log(md);
process.exit(0);
