/**
 * Telemetry forwarder throughput: a backlog of queued predictions (real rows in PostgreSQL, real
 * messages in fauxqs) forwarded to the ThingsBoard fake by the forwarder, fed the way the local
 * stack feeds it (scripts/local/bridge.ts: receive, invoke, delete what succeeded), with several
 * pollers as Lambda's event source runs several. The SQS emulator runs in a process of its own, as
 * SQS is a service of its own on AWS; the forwarder, the pollers and the ThingsBoard fake share this one.
 *
 * PostgreSQL: a throwaway database on the server DATABASE_URL names (dropped afterwards), or an
 * embedded PostgreSQL server when it is unset. `npx tsx bench/forwarder.ts` prints the figures as JSON.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { createPool } from '#shared/db';
import { migrate } from '#shared/migrations';
import { createForwarder } from '#telemetry/forwarder';
import { logger } from '#shared/log';
import { insertPredictions, type NewPrediction } from '#prediction/store';
import { toMessage } from '#prediction/queue';
import { sendMessages } from '#aws/sqs';
import { CLASSIFICATIONS } from '#prediction/features';
import { createThingsBoardClient, THINGSBOARD_DEVICE_NAME } from '#clients/thingsboard/client';
import { startSqsBridge } from '../scripts/local/bridge.ts';
import { S3RVER_CREDENTIALS, startPostgres } from '../scripts/local/emulators.ts';
import { freePort, waitForHttp } from '../scripts/local/ports.ts';
import { ROOT } from '../scripts/local/stack.ts';
import { ensureQueues, queueArn, sqsClient } from '../scripts/local/resources.ts';
import { startFakeThingsBoard } from '../test/fakes/thingsboard.ts';
import { SEED_EXAMPLE } from '../test/helpers/fixtures.ts';

export interface ForwarderBenchOptions {
  predictions?: number;
  /** Concurrent pollers feeding the forwarder (Lambda runs several for one queue). */
  pollers?: number;
  /** Records per invocation, as the event source in serverless.yml. */
  batchSize?: number;
}

export interface ForwarderBenchResult {
  predictions: number;
  pollers: number;
  batchSize: number;
  database: 'postgresql' | 'embedded postgresql';
  /** Storing the rows and queuing their messages (setup, not measured below). */
  setupSeconds: number;
  /** From the first poll until the queue held no message (visible, in flight or delayed). */
  queueEmptySeconds: number;
  forwardedPerSecond: number;
  thingsboardRequests: number;
  /** Rows whose delivered_at was set (should equal `predictions`). */
  deliveredAtRecorded: number;
  /** Data points ThingsBoard holds at distinct timestamps (should equal `predictions`: none missing, none doubled). */
  distinctDataPoints: number;
  deadLettered: number;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

/** A database of the bench's own: a throwaway one on DATABASE_URL's server, or an embedded server's. */
async function benchDatabase(): Promise<{
  url: string;
  kind: ForwarderBenchResult['database'];
  drop(): Promise<void>;
}> {
  const server = process.env.DATABASE_URL;
  if (!server) {
    const embedded = await startPostgres({});
    return { url: embedded.url, kind: 'embedded postgresql', drop: embedded.stop };
  }
  const name = `hubfolio_bench_${process.pid}_${Date.now()}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: server });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`); // a name of digits and letters made here, not input
  const url = new URL(server);
  url.pathname = `/${name}`;
  return { url: url.toString(), kind: 'postgresql', drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** fauxqs in a child process; its stop is pushed onto `stops`. */
async function startSqsProcess(stops: Array<() => Promise<unknown>>): Promise<string> {
  const port = await freePort();
  const child = spawn(process.execPath, [resolve(ROOT, 'node_modules/fauxqs/dist/cli.js')], {
    env: { ...process.env, FAUXQS_PORT: String(port), FAUXQS_HOST: '127.0.0.1', FAUXQS_LOGGER: 'false' },
    stdio: 'ignore',
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  stops.push(async () => {
    if (exited) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url, 20_000, () => !exited);
  return url;
}

/** Messages on a queue: visible, in flight and delayed. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return Object.values(Attributes).reduce((sum, value) => sum + Number(value), 0);
}

function samplePredictions(n: number): NewPrediction[] {
  return Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    input: { ...SEED_EXAMPLE, user_id: i, portfolio_id: i % 3 === 0 ? null : i, contatos: i % 2 === 0 },
    raw_score: 40 + (i % 600) / 10,
    predicted_iq: 40 + (i % 600) / 10,
    classification: CLASSIFICATIONS[i % 4]!,
    model_name: 'hubfolio-model',
    model_version: '3',
  }));
}

export async function benchForwarder(options: ForwarderBenchOptions = {}): Promise<ForwarderBenchResult> {
  const count = options.predictions ?? 10_000;
  const pollers = options.pollers ?? 4;
  const batchSize = options.batchSize ?? 50;
  const stops: Array<() => Promise<unknown>> = [];
  const logLevel = logger.getLevelName();
  logger.setLogLevel('ERROR'); // one info line per batch would drown the figures
  try {
    // The emulators accept any signature; the SDK only needs some credentials to sign with.
    process.env.AWS_ACCESS_KEY_ID ??= S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID;
    process.env.AWS_SECRET_ACCESS_KEY ??= S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY;
    const sqsUrl = await startSqsProcess(stops);
    const endpoints = { s3: '', sqs: sqsUrl, region: 'us-east-1' };
    const sqs = sqsClient(endpoints);
    const { queueUrl, dlqUrl } = await ensureQueues(endpoints, 'bench');
    const arn = await queueArn(sqs, queueUrl);

    const database = await benchDatabase();
    stops.push(database.drop);
    await migrate(database.url);
    const db = createPool(database.url, 8);
    stops.push(() => db.end());

    const tb = await startFakeThingsBoard();
    stops.push(tb.close);
    const deviceToken = tb.addDevice(THINGSBOARD_DEVICE_NAME).token;

    const setupStarted = performance.now();
    const rows = [];
    for (const chunk of Array.from({ length: Math.ceil(count / 1_000) }, (_, i) =>
      samplePredictions(Math.min(1_000, count - i * 1_000)),
    )) {
      const stored = await insertPredictions(db, chunk);
      rows.push(...stored);
      const { failed } = await sendMessages(
        sqs,
        queueUrl,
        stored.map((row) => ({ id: row.id, body: JSON.stringify(toMessage(row)) })),
      );
      if (failed.length > 0) throw new Error(`could not queue ${failed.length} predictions: ${failed[0]!.reason}`);
    }
    const setupSeconds = seconds(performance.now() - setupStarted);

    const forward = createForwarder({
      telemetry: createThingsBoardClient({ url: tb.url, deviceToken }),
      sqs,
      queueUrl,
      dlqUrl,
      db,
      retryBaseSeconds: 5,
    });
    const errors: unknown[] = [];
    const started = performance.now();
    const bridges = Array.from({ length: pollers }, () =>
      startSqsBridge({
        sqs,
        queueUrl,
        queueArn: arn,
        region: endpoints.region,
        batchSize,
        invoke: (event) => forward(event.Records),
        onError: (e) => errors.push(e),
      }),
    );
    stops.push(() => Promise.all(bridges.map((b) => b.stop()))); // stopped first: before the fake, pool and fauxqs go

    // Visible, in flight and delayed all at 0: every message was deleted after its batch was handled.
    while ((await queueDepth(sqs, queueUrl)) > 0) {
      if (performance.now() - started > 300_000) throw new Error('the backlog was not forwarded within 5 minutes');
      if (errors.length > 0) throw new Error(`the bridge failed: ${(errors[0] as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const queueEmptyMs = performance.now() - started;

    const [{ recorded }] = (
      await db.query<{ recorded: number }>(
        'SELECT count(*)::int AS recorded FROM predictions WHERE delivered_at IS NOT NULL',
      )
    ).rows as [{ recorded: number }];
    return {
      predictions: count,
      pollers,
      batchSize,
      database: database.kind,
      setupSeconds,
      queueEmptySeconds: seconds(queueEmptyMs),
      forwardedPerSecond: Math.round(count / (queueEmptyMs / 1000)),
      thingsboardRequests: tb.requests.telemetry,
      deliveredAtRecorded: recorded,
      distinctDataPoints: tb.distinctTs(deviceToken),
      deadLettered: await queueDepth(sqs, dlqUrl),
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    logger.setLogLevel(logLevel as Parameters<typeof logger.setLogLevel>[0]);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  console.log(JSON.stringify(await benchForwarder(), null, 2));
}
