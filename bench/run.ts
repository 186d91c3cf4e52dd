/**
 * `npm run bench`: the prediction path against real PostgreSQL and the SQS emulator, in one run.
 * Writes bench/RESULTS.md with the machine, the date and every figure. Timings live here, never in tests.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, freemem, platform, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { build } from 'esbuild';
import pg from 'pg';
import { migrate } from '#shared/migrations';
import { S3RVER_CREDENTIALS } from '../scripts/local/emulators.ts';
import { freePort } from '../scripts/local/ports.ts';
import { ensureBucket, ensureQueues, seedSampleModel, sqsClient } from '../scripts/local/resources.ts';
import { ROOT, SAMPLE_MODEL, startLocalStack } from '../scripts/local/stack.ts';
import { SEED_EXAMPLE as SEED } from '../test/helpers/fixtures.ts';
import { httpEvent, lambdaContext } from '../test/helpers/lambda.ts';
import { benchForwarder, type ForwarderBenchResult } from './forwarder.ts';
import { sqs as predictionsSqs } from '#prediction/queue';
import { countSqsSends, type SqsSends } from './sqs-requests.ts';
import { measure, measureAlternating, round } from './stats.ts';

const execFileAsync = promisify(execFile);
const log = (message: string) => console.log(`[bench] ${message}`);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';

async function benchDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const server = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `hubfolio_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect().catch((error: Error) => {
    throw new Error(`the benchmark needs a real PostgreSQL (DATABASE_URL or 127.0.0.1:5432): ${error.message}`);
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

async function autocannon(url: string, connections: number, seconds: number, body: string) {
  const { stdout: out } = await execFileAsync(
    process.execPath,
    [
      resolve(ROOT, 'node_modules/autocannon/autocannon.js'),
      '-j',
      '-c',
      String(connections),
      '-d',
      String(seconds),
      '-m',
      'POST',
      '-H',
      'content-type=application/json',
      '-b',
      body,
      url,
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const result = JSON.parse(out);
  return {
    n: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    perSecond: Math.round(result.requests.average),
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

const work = mkdtempSync(join(tmpdir(), 'hubfolio-bench-'));
const db = await benchDatabase();
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
  results.batch1000 = await measure(20, 1, batchOnce);
  results.sqsBatch = perThousand(sqsSends.take(), 20 * 1000);

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

  log('serverless-offline over HTTP (autocannon, 10 s each)');
  const stackEnv = { ...process.env };
  for (const name of ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_SQS', 'MODEL_BUCKET', 'PREDICTIONS_QUEUE_URL'])
    delete stackEnv[name];
  const stack = await startLocalStack({
    env: stackEnv,
    dataDir: join(work, 'stack'),
    port: await freePort(),
    s3Port: await freePort(),
    sqsPort: await freePort(),
    offlineOutput: 'ignore',
  });
  try {
    // Warm-up: serverless-offline starts one worker ("container") per concurrent request, each with
    // its own cold start (TypeScript compiled on the fly, model loaded). Sixteen at once on two cores
    // take longer than the 10 s function timeout, so the load rises in steps, as it would on AWS.
    for (const connections of [1, 4, 8, 16]) await autocannon(`${stack.url}/predict`, connections, 6, body);
    results.httpC1 = await autocannon(`${stack.url}/predict`, 1, 10, body);
    results.httpC16 = await autocannon(`${stack.url}/predict`, 16, 10, body);
  } finally {
    await stack.stop();
  }

  log('telemetry forwarder: a backlog of 10,000 queued predictions to the ThingsBoard fake');
  results.forwarder = await benchForwarder();
} finally {
  emulators.kill('SIGTERM');
  await once(emulators, 'exit');
  await db.drop();
  rmSync(work, { recursive: true, force: true });
}

type Lat = { n: number; p50: number; p99: number; perSecond: number; cpuMsPerCall?: number };
const r = results as Record<
  'floorC1' | 'floorC16' | 'sendC16' | 'handlerC1' | 'handlerC16' | 'batch1000' | 'httpC1' | 'httpC16',
  Lat
> & {
  bundleBytes: number;
  coldStart: { initMs: number; firstInvocationMs: number; totalMs: number };
  forwarder: ForwarderBenchResult;
  sqsPredict: SqsSends;
  sqsBatch: SqsSends;
};
const f = r.forwarder;
const ratio = round(r.handlerC1.p50 / r.floorC1.p50);
const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
const cpu = cpus();
const row = (name: string, l: Lat) =>
  `| ${name} | ${l.n} | ${l.p50} | ${l.p99} | ${l.perSecond} | ${l.cpuMsPerCall ?? '—'} |`;
const md = `# Benchmark results

Produced by \`npm run bench\` (bench/run.ts) — do not edit by hand.

- Date: ${new Date().toISOString()}
- Machine: ${cpu[0]?.model.trim()} × ${cpu.length} cores, ${round(totalmem() / 2 ** 30, 1)} GiB RAM (${round(freemem() / 2 ** 30, 1)} GiB free), ${platform()} ${release()}
- Node ${process.version}; PostgreSQL: ${new URL(db.url).host} (real server); SQS: fauxqs and S3: s3rver (emulators, in a process of their own; for the HTTP rows, inside the local stack's process)

## Prediction path

| measurement | requests | p50 ms | p99 ms | per second | CPU ms per call, benchmark process |
|---|---|---|---|---|---|
${row('floor: raw INSERT + SendMessage, concurrency 1', r.floorC1)}
${row('floor: raw INSERT + SendMessage, concurrency 16', r.floorC16)}
${row('SendMessage alone (AWS SDK), concurrency 16', r.sendC16)}
${row('/predict handler in-process, concurrency 1', r.handlerC1)}
${row('/predict handler in-process, concurrency 16', r.handlerC16)}
${row('/predict/batch handler, 1,000 rows per request', r.batch1000)}
${row('/predict via serverless-offline over HTTP, 1 connection', r.httpC1)}
${row('/predict via serverless-offline over HTTP, 16 connections', r.httpC16)}

Batch throughput: ${Math.round((1000 * 1000) / r.batch1000.p50)} predictions/s at the p50 batch time.

SQS requests per 1,000 predictions (SendMessage and SendMessageBatch, counted on the handlers' client; AWS bills
every 64 KiB chunk of a request's payload as one request): /predict ${r.sqsPredict.requests} (billed ${r.sqsPredict.billed}),
/predict/batch of 1,000 rows ${r.sqsBatch.requests} (billed ${r.sqsBatch.billed}).

Cold start (bundled handler, fresh process, median of 5): module init ${round(r.coldStart.initMs)} ms + first invocation
(serving model from S3, ONNX session, first prediction, INSERT, SendMessage) ${round(r.coldStart.firstInvocationMs)} ms = **${round(r.coldStart.totalMs)} ms**.
Lambda's own runtime start-up (before module init) is not included; it is not ours to shorten.

## Telemetry forwarder

${f.predictions.toLocaleString('en')} predictions queued (real rows, real fauxqs messages), forwarded by the consumer with
${f.pollers} pollers of ${f.batchSize} records to the ThingsBoard fake: **${f.forwardedPerSecond} predictions/s**, queue empty after
${f.queueEmptySeconds} s, ${f.thingsboardRequests} ThingsBoard requests; ${f.distinctDataPoints} distinct data points and ${f.deliveredAtRecorded}
rows marked delivered (none missing, none doubled when both equal ${f.predictions}); ${f.deadLettered} dead-lettered. Database: ${f.database}.

## Targets

| target | figure | verdict |
|---|---|---|
| handler p50 within 1.5× the floor at concurrency 1 | ratio handler/floor = **${ratio}** | ${verdict(ratio <= 1.5)} |
| ≥ 1,000 predictions/s at concurrency 16 | ${r.handlerC16.perSecond}/s | ${verdict(r.handlerC16.perSecond >= 1000)} |
| 1,000-row batch under 100 ms | p50 ${r.batch1000.p50} ms | ${verdict(r.batch1000.p50 < 100)} |
| cold start under 300 ms | ${round(r.coldStart.totalMs)} ms | ${verdict(r.coldStart.totalMs < 300)} |
| forwarder ≥ 2,000 predictions/s | ${f.forwardedPerSecond}/s | ${verdict(f.forwardedPerSecond >= 2000)} |

## Reading the figures

- Everything here shares the machine's ${cpu.length} cores: PostgreSQL, the SQS and S3 emulators and the code under test.
  In-process, one Node thread runs all 16 callers, so at concurrency 16 throughput is about 1 / (CPU per call): the floor
  costs ${r.floorC16.cpuMsPerCall} ms of CPU per call (${r.floorC16.perSecond}/s), the handler ${r.handlerC16.cpuMsPerCall} ms (${r.handlerC16.perSecond}/s, ${Math.round((100 * r.handlerC16.perSecond) / r.floorC16.perSecond)}% of the floor).
  The AWS SDK's SendMessage alone takes ${r.sendC16.cpuMsPerCall} ms of that. On AWS each concurrent request has a container of its own.
- At concurrency 1 the handler spends ${round(r.handlerC1.p50 - r.floorC1.p50)} ms more than the floor (p50): validation, one inference run
  (ONNX Runtime runs it on the next turn of the event loop), and a second PostgreSQL statement, \`allocate_prediction_ts\`,
  which hands every prediction a unique millisecond (ThingsBoard overwrites data points that share one). It commits on
  its own, asynchronously, so that concurrent INSERTs never wait on each other's commit, and it runs while the model
  scores. No statement relies on session state, so a transaction-level pooler (RDS Proxy) may run them on different connections.
- A 1,000-row batch is one validation, one inference run, one INSERT through unnest, and its predictions packed into
  envelopes of up to 240 KiB (${r.sqsBatch.requests} SendMessageBatch call${r.sqsBatch.requests === 1 ? '' : 's'} per batch, where one message per prediction took 100); the consumer still
  retries and parks each prediction alone. It is CPU-bound in the function's process (${r.batch1000.cpuMsPerCall} ms of CPU per batch).
- The cold start is the bundled handler (esbuild, minified, as \`npm run package\` builds it: ${round(r.bundleBytes / 2 ** 20)} MiB) required by a
  fresh Node process with \`--enable-source-maps\`, as deployed. Module init is mostly V8 compiling and running that bundle
  (AWS SDK S3 and SQS clients, zod, onnx-proto, pg), loading ONNX Runtime's native library, and parsing the source map
  (the price of stack traces that point into the TypeScript sources).${
    Number(process.versions.node.split('.')[0]) < 21
      ? ` On Node ${process.versions.node.split('.')[0]}, as here, it also includes time that
  Lambda's nodejs22.x runtime does not spend: pg probes for Cloudflare Workers by touching \`Response\`, which makes this Node
  load its fetch implementation (Node 22 answers the probe from \`navigator\`).`
      : ''
  } The first invocation fetches the serving model, opens its session and makes the first INSERT and SendMessage.
- Over HTTP, serverless-offline adds its own worker-thread hop per request and starts one worker per concurrent request;
  it is the local development path, not the deployed one.
`;
writeFileSync(resolve(ROOT, 'bench/RESULTS.md'), md);
console.log(md);
process.exit(0);
