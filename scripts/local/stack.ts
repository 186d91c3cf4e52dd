import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { migrate } from '#shared/migrations';
import { readLocalThingsBoardToken } from '../thingsboard/provision.ts';
import { lambdaInvoker, s3NotificationEvent, startS3EventBridge, startSqsBridge } from './bridge.ts';
import { S3RVER_CREDENTIALS, startPostgres, startS3, startSqs, type S3ObjectCreated } from './emulators.ts';
import { buildHandlers } from './handlers.ts';
import { startOffline, waitUntilServing } from './offline.ts';
import { ensurePortsFree, freePort, type StackPorts } from './ports.ts';
import {
  ensureBucket,
  ensureIncomingNotifications,
  ensureQueues,
  queueArn,
  seedSampleModel,
  sqsClient,
  type AwsEndpoints,
} from './resources.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const SAMPLE_MODEL = resolve(ROOT, 'models/hubfolio-sample.onnx');
const SERVICE_PREFIX = 'hubfolio-functions-dev-';

/** Functions fed by the bridge, as serverless.yml wires them on AWS (absent ones are skipped). */
const BRIDGED = { s3Incoming: 'modelIngest', sqsConsumer: 'telemetryForwarder', syncConsumer: 'modelSync' } as const;

/** The API's port is 3000 by default; the others default to free ports chosen at start. */
export interface LocalStackOptions extends StackPorts {
  /** The user's environment: AWS_ENDPOINT_URL*, DATABASE_URL, MLFLOW_TRACKING_URI, THINGSBOARD_URL replace embedded or absent parts. */
  env: NodeJS.ProcessEnv;
  /** Where the embedded S3 and PostgreSQL keep their data (`.local/` for npm start; a temp dir in tests). */
  dataDir: string;
  /** Give the embedded PostgreSQL a throwaway cluster (deleted at stop). */
  ephemeral?: boolean;
  log?: (message: string) => void;
  /** Whether serverless-offline's own output is shown; hidden, its last lines still explain a failed start. */
  offlineOutput?: 'inherit' | 'ignore';
  /** Aborting stops the start-up: what already runs is stopped, and the promise rejects. */
  signal?: AbortSignal;
}

export interface LocalStack {
  url: string;
  env: Record<string, string>;
  queueUrl: string;
  dlqUrl: string;
  endpoints: AwsEndpoints;
  /** Resolves if a part stops by itself while the stack runs, saying which. */
  failure: Promise<string>;
  stop(): Promise<void>;
}

const serverlessYml = () => readFileSync(resolve(ROOT, 'serverless.yml'), 'utf8');

function declaredFunctions(): Set<string> {
  return new Set([...serverlessYml().matchAll(/^ {2}([A-Za-z]+):\n {4}handler:/gm)].map((m) => m[1]!));
}

/** The batch size and batching window of a function's SQS event source, as serverless.yml declares them. */
export function sqsEventSource(fn: string): { batchSize: number; batchingWindowSeconds: number } {
  const block =
    new RegExp(`^ {2}${fn}:\\n([\\s\\S]*?)(?=^ {2}[A-Za-z]+:\\n|^\\S)`, 'm').exec(serverlessYml())?.[1] ?? '';
  const sqs = /- sqs:\n([\s\S]*?)(?=\n {6}- |$)/.exec(block)?.[1] ?? '';
  return {
    batchSize: Number(/batchSize: (\d+)/.exec(sqs)?.[1] ?? 10),
    batchingWindowSeconds: Number(/maximumBatchingWindow: (\d+)/.exec(sqs)?.[1] ?? 0),
  };
}

/**
 * Starts what `npm start` runs: emulators for what the environment does not name, migrations,
 * bucket, queues (with DLQ) and the sample serving model, serverless-offline, and the S3/SQS bridge.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  const env = options.env;
  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((error) => log(`stop: ${(error as Error).message}`));
    stops.length = 0;
  };
  const step = () => options.signal?.throwIfAborted();
  try {
    // A port another program holds fails the start at once, naming it, before anything runs.
    await ensurePortsFree(options, env.HOST || '127.0.0.1');
    const port = options.port ?? 3000;
    const region = env.AWS_REGION || 'us-east-1';
    const bucket = env.MODEL_BUCKET || 'hubfolio-local-models';
    const modelName = env.MODEL_NAME || 'hubfolio-model';
    const functions = declaredFunctions();
    let notifyIncoming: (event: S3ObjectCreated) => void = () => {};

    const external = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
    let endpoints: AwsEndpoints;
    let credentials: Record<string, string> = {};
    if (external) {
      endpoints = { s3: external, sqs: env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL || external, region };
      log(`AWS endpoint: ${external}`);
    } else {
      step();
      const s3 = await startS3({
        port: options.s3Port ?? 0,
        directory: resolve(options.dataDir, 's3'),
        onObjectCreated: (event) => notifyIncoming(event),
      });
      stops.push(s3.stop);
      step();
      const sqs = await startSqs({ port: options.sqsPort ?? 0 });
      stops.push(sqs.stop);
      endpoints = { s3: s3.url, sqs: sqs.url, region };
      credentials = S3RVER_CREDENTIALS;
      Object.assign(process.env, credentials); // this process's own SDK clients talk to s3rver too
      log(`embedded S3 (s3rver) on ${s3.url}, SQS (fauxqs) on ${sqs.url}`);
    }

    let databaseUrl = env.DATABASE_URL;
    // What stops by itself while the stack runs, saying which part: the API, and the embedded PostgreSQL.
    const deaths: Array<Promise<string>> = [];
    step();
    if (!databaseUrl) {
      const pg = await startPostgres({
        port: options.pgPort ?? 0,
        // Not .local/pgdata, where an earlier version kept PGlite's files (a different format).
        dataDir: options.ephemeral ? undefined : resolve(options.dataDir, 'postgres'),
      });
      stops.push(pg.stop);
      deaths.push(pg.died);
      databaseUrl = pg.url;
      log(`embedded PostgreSQL on ${pg.url}`);
    }
    step();
    const applied = await migrate(databaseUrl, { log: () => {} });
    log(`migrations: ${applied.length ? applied.join(', ') : 'up to date'}`);

    step();
    await ensureBucket(endpoints, bucket);
    const { queueUrl, dlqUrl, syncQueueUrl } = await ensureQueues(endpoints, 'hubfolio-local');
    if (await seedSampleModel(endpoints, bucket, modelName, SAMPLE_MODEL))
      log(`serving model: bundled sample (${modelName} v0)`);

    const lambdaPort = options.lambdaPort ?? (await freePort());
    // `npm run thingsboard:provision` writes the token to .local/thingsboard.env.
    const deviceToken = env.THINGSBOARD_DEVICE_TOKEN || readLocalThingsBoardToken();
    const stackEnv: Record<string, string> = {
      ...credentials,
      AWS_REGION: region,
      DATABASE_URL: databaseUrl,
      MODEL_BUCKET: bucket,
      MODEL_NAME: modelName,
      PREDICTIONS_QUEUE_URL: queueUrl,
      PREDICTIONS_DLQ_URL: dlqUrl,
      MODEL_SYNC_QUEUE_URL: syncQueueUrl,
      AWS_ENDPOINT_URL_S3: endpoints.s3,
      AWS_ENDPOINT_URL_SQS: endpoints.sqs,
      ...(deviceToken ? { THINGSBOARD_DEVICE_TOKEN: deviceToken } : {}),
      PORT: String(port),
      LAMBDA_PORT: String(lambdaPort),
      // The functions' CloudWatch metrics (Embedded Metric Format lines) mean nothing on a laptop.
      POWERTOOLS_METRICS_DISABLED: env.POWERTOOLS_METRICS_DISABLED || 'true',
    };
    step();
    const handlers = await buildHandlers(ROOT);
    stops.push(handlers.remove);
    step();
    const offline = startOffline({
      root: ROOT,
      env: {
        ...env,
        ...stackEnv,
        HUBFOLIO_OFFLINE_HANDLERS: handlers.location,
        SLS_TELEMETRY_DISABLED: '1',
        SLS_NOTIFICATIONS_MODE: 'off',
      },
      output: options.offlineOutput ?? 'inherit',
    });
    stops.push(() => offline.stop());
    log(`API (serverless-offline, pid ${offline.pid}) starting on port ${port}…`);
    const url = `http://127.0.0.1:${port}`;
    await waitUntilServing(url, offline, { timeoutMs: 120_000, signal: options.signal });

    const invoke = lambdaInvoker(`http://127.0.0.1:${lambdaPort}`, SERVICE_PREFIX);
    if (functions.has(BRIDGED.s3Incoming) && !external) {
      notifyIncoming = (event) => {
        if (event.bucket !== bucket || !event.key.startsWith('incoming/')) return;
        invoke(BRIDGED.s3Incoming, s3NotificationEvent(event.bucket, event.key, event.size, event.eTag, region)).catch(
          (error) => log(`bridge: ${BRIDGED.s3Incoming} failed for ${event.key}: ${(error as Error).message}`),
        );
      };
    }
    if (functions.has(BRIDGED.s3Incoming) && external) {
      try {
        const events = await ensureIncomingNotifications(endpoints, bucket, 'hubfolio-local');
        const bridge = startS3EventBridge({
          sqs: sqsClient(endpoints),
          queueUrl: events.queueUrl,
          queueArn: events.queueArn,
          region,
          invoke: (event) => invoke(BRIDGED.s3Incoming, event),
          onError: (error) => log(`bridge: ${BRIDGED.s3Incoming}: ${(error as Error).message}`),
        });
        stops.push(bridge.stop);
        log(`drop folder: s3://${bucket}/incoming/ notifies ${events.queueUrl}, which feeds ${BRIDGED.s3Incoming}`);
      } catch (error) {
        log(
          `drop folder: ${external} refused the bucket notification (${(error as Error).message}); files put under incoming/ are not registered locally, POST /model/upload still is`,
        );
      }
    }
    // SQS event sources, as serverless.yml declares them: the bridge polls, invokes, deletes what succeeded.
    const bridgeQueue = async (fn: string, bridgedQueueUrl: string) => {
      const sqs = sqsClient(endpoints);
      const bridge = startSqsBridge({
        sqs,
        queueUrl: bridgedQueueUrl,
        queueArn: await queueArn(sqs, bridgedQueueUrl),
        region,
        ...sqsEventSource(fn),
        invoke: (event) => invoke(fn, event),
        onError: (error) => log(`bridge: ${fn}: ${(error as Error).message}`),
      });
      stops.push(bridge.stop); // stopped first (stops run in reverse): no polling of a stopped emulator
    };
    if (functions.has(BRIDGED.syncConsumer)) await bridgeQueue(BRIDGED.syncConsumer, syncQueueUrl);
    if (functions.has(BRIDGED.sqsConsumer)) await bridgeQueue(BRIDGED.sqsConsumer, queueUrl);
    step();
    return {
      url,
      env: stackEnv,
      queueUrl,
      dlqUrl,
      endpoints,
      failure: Promise.race([offline.exited, ...deaths]),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
