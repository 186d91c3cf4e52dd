import { randomUUID } from 'node:crypto';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler as predictHandler } from '../../functions/predict/handler.ts';
import { handler as batchHandler } from '../../functions/predict-batch/handler.ts';
import { handler as uploadHandler } from '../../functions/model-upload/handler.ts';
import { handler as forwarderHandler } from '../../functions/telemetry-forwarder/handler.ts';
import { handler as relayHandler } from '../../functions/relay/handler.ts';
import { FEATURES } from '#prediction/features';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { toLambdaRecord } from '../../scripts/local/bridge.ts';
import { queueArn, sqsClient } from '../../scripts/local/resources.ts';
import { startFakeThingsBoard, type FakeThingsBoard } from '../fakes/thingsboard.ts';
import { drainQueue, query, SEED_EXAMPLE, testEndpoints, useSampleModel } from '../helpers/fixtures.ts';
import { httpEvent, invokeHttp, lambdaContext, postJson } from '../helpers/lambda.ts';

/**
 * What operators see of an invocation: the CloudWatch metrics it writes (Embedded Metric Format
 * lines, which CloudWatch turns into metrics of namespace HubFolio) and the correlation ids on its
 * log lines. Metrics are on in this file only: Powertools reads the switch when shared/metrics.ts
 * builds its Metrics, at import time, which vi.hoisted runs before.
 */
vi.hoisted(() => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
});

let tb: FakeThingsBoard;
beforeAll(async () => {
  await useSampleModel();
  tb = await startFakeThingsBoard();
  // Before the first config() call: the container reads its configuration once.
  process.env.THINGSBOARD_URL = tb.url;
  process.env.THINGSBOARD_DEVICE_TOKEN = tb.addDevice('HubFólio Predictions').token;
  process.env.PREDICTIONS_DLQ_URL = process.env.TEST_DLQ_URL;
});
afterAll(() => tb.close());

let console: { log: ReturnType<typeof vi.spyOn>; lines: ReturnType<typeof vi.spyOn>[] };
beforeEach(() => {
  vi.restoreAllMocks();
  // POWERTOOLS_DEV: the metrics go to console.log, the JSON logs to console.info/warn/error.
  console = {
    log: vi.spyOn(globalThis.console, 'log').mockImplementation(() => {}),
    lines: (['info', 'warn', 'error'] as const).map((level) => vi.spyOn(globalThis.console, level)),
  };
});

interface Emf {
  _aws: {
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  [key: string]: unknown;
}
/** The EMF lines written since the test began. */
const emfLines = (): Emf[] =>
  console.log.mock.calls
    .map(([line]) => {
      try {
        return JSON.parse(String(line)) as Emf;
      } catch {
        return undefined;
      }
    })
    .filter((line): line is Emf => line !== undefined && '_aws' in line);

/** The one EMF line of the invocation: its namespace, dimensions and each metric's value and unit. */
function metricsLine() {
  const lines = emfLines();
  expect(lines).toHaveLength(1);
  const [line] = lines as [Emf];
  const [directive] = line._aws.CloudWatchMetrics as [Emf['_aws']['CloudWatchMetrics'][number]];
  return {
    namespace: directive.Namespace,
    dimensions: Object.fromEntries(directive.Dimensions.flat().map((name) => [name, line[name]])),
    metrics: Object.fromEntries(directive.Metrics.map(({ Name, Unit }) => [Name, { value: line[Name], unit: Unit }])),
  };
}

const modelFile = () =>
  buildLinearRegressor({
    coefficients: FEATURES.map(() => 0.5),
    intercept: 7,
    features: FEATURES,
    algorithm: 'LinearRegression',
  });
async function upload(bytes: Uint8Array, fileName: string) {
  const form = new FormData();
  form.append('file', new Blob([bytes]), fileName);
  form.append('promote', 'false');
  const request = new Request('http://localhost/model/upload', { method: 'POST', body: form });
  const body = Buffer.from(await request.arrayBuffer());
  const headers = { 'content-type': request.headers.get('content-type')! };
  return invokeHttp(uploadHandler, httpEvent({ path: '/model/upload', body, headers }));
}

describe('metrics, one EMF line per invocation', () => {
  it('POST /predict: one prediction served by the serving model version, and its latency', async () => {
    expect((await postJson(predictHandler, '/predict', SEED_EXAMPLE)).status).toBe(200);
    const { namespace, dimensions, metrics } = metricsLine();
    expect(namespace).toBe('HubFolio');
    expect(dimensions).toEqual({ service: 'hubfolio', model_version: '0' });
    expect(metrics.PredictionsServed).toEqual({ value: 1, unit: 'Count' });
    expect(metrics.PredictionLatency!.unit).toBe('Milliseconds');
    expect(metrics.PredictionLatency!.value).toBeGreaterThan(0);
    expect(metrics.PredictionLatency!.value).toBeLessThan(10_000);
  });

  it('POST /predict/batch: every prediction of the batch', async () => {
    const items = [SEED_EXAMPLE, { ...SEED_EXAMPLE, user_id: 2 }, { ...SEED_EXAMPLE, user_id: 3 }];
    expect((await postJson(batchHandler, '/predict/batch', { items })).status).toBe(200);
    expect(metricsLine().metrics.PredictionsServed).toEqual({ value: 3, unit: 'Count' });
  });

  it('a refused request records nothing, and says no more about it than a debug line', async () => {
    expect((await postJson(predictHandler, '/predict', { ...SEED_EXAMPLE, bio: 'yes' })).status).toBe(400);
    expect(emfLines()).toEqual([]);
    const warned = console.lines.flatMap((spy) => spy.mock.calls.map(String));
    expect(warned.filter((line) => line.includes('No application metrics'))).toEqual([]);
  });

  it('POST /model/upload: a registered model, then a refused file', async () => {
    expect((await upload(modelFile(), 'observed.onnx')).status).toBe(200);
    expect(metricsLine().metrics).toEqual({ ModelsRegistered: { value: 1, unit: 'Count' } });
    console.log.mockClear();
    expect((await upload(new TextEncoder().encode('not a model'), 'garbage.onnx')).status).toBe(422);
    expect(metricsLine().metrics).toEqual({ ModelsRefused: { value: 1, unit: 'Count' } });
  });

  it('telemetryForwarder: predictions delivered and retried, messages parked', async () => {
    await drainQueue();
    await postJson(batchHandler, '/predict/batch', { items: [SEED_EXAMPLE, { ...SEED_EXAMPLE, user_id: 2 }] });
    await postJson(predictHandler, '/predict', SEED_EXAMPLE);
    const arn = await queueArn(sqsClient(testEndpoints()), process.env.PREDICTIONS_QUEUE_URL!);
    const records = (await drainQueue()).map((message) => toLambdaRecord(message, arn, 'us-east-1'));
    const malformed: SQSRecord = { ...records[0]!, messageId: randomUUID(), body: 'not a prediction' };
    console.log.mockClear();
    expect(await forwarderHandler({ Records: [...records, malformed] }, lambdaContext())).toEqual({
      batchItemFailures: [],
    });
    expect(metricsLine().metrics).toEqual({
      TelemetryDelivered: { value: 3, unit: 'Count' },
      TelemetryRetried: { value: 0, unit: 'Count' },
      TelemetryParked: { value: 1, unit: 'Count' },
    });
    await drainQueue(process.env.TEST_DLQ_URL);
  });

  it('relay: the age of the oldest prediction ThingsBoard does not have, each run', async () => {
    await query('UPDATE predictions SET delivered_at = now() WHERE delivered_at IS NULL');
    const { body } = await postJson(predictHandler, '/predict', SEED_EXAMPLE);
    await query("UPDATE predictions SET created_at = now() - interval '15 minutes' WHERE id = $1", [
      body.prediction_id,
    ]);
    console.log.mockClear();
    expect(await relayHandler({}, lambdaContext())).toMatchObject({ waiting: false });
    const { value, unit } = metricsLine().metrics.OldestUndeliveredAge!;
    expect(unit).toBe('Seconds');
    expect(value).toBeGreaterThanOrEqual(900);
    expect(value).toBeLessThan(960);
    await drainQueue();
  });
});

/** The JSON log lines written since the test began. */
const logLines = (): Array<Record<string, unknown>> =>
  console.lines.flatMap((spy) =>
    spy.mock.calls.flatMap(([line]) => {
      try {
        return [JSON.parse(String(line)) as Record<string, unknown>];
      } catch {
        return [];
      }
    }),
  );

describe('correlation ids on the log lines', () => {
  it('HTTP: every line of a request carries its API Gateway request id, and only that request’s', async () => {
    const first = httpEvent({ path: '/predict', body: JSON.stringify({ ...SEED_EXAMPLE, bio: 'yes' }) });
    const second = httpEvent({ path: '/predict', body: JSON.stringify({ ...SEED_EXAMPLE, contatos: 'no' }) });
    await invokeHttp(predictHandler, first);
    await invokeHttp(predictHandler, second);
    const refused = logLines().filter((line) => line.message === 'request refused');
    expect(refused.map((line) => line.correlation_id)).toEqual([
      first.requestContext.requestId,
      second.requestContext.requestId,
    ]);
  });

  it('telemetryForwarder: a parked record’s line carries its SQS message id', async () => {
    const arn = await queueArn(sqsClient(testEndpoints()), process.env.PREDICTIONS_QUEUE_URL!);
    await drainQueue();
    await postJson(predictHandler, '/predict', SEED_EXAMPLE);
    const [record] = (await drainQueue()).map((message) => toLambdaRecord(message, arn, 'us-east-1'));
    const malformed: SQSRecord = { ...record!, messageId: randomUUID(), body: '{"version": 99}' };
    await forwarderHandler({ Records: [record!, malformed] }, lambdaContext());
    const parked = logLines().filter((line) => line.message === 'parked an undeliverable message');
    expect(parked).toEqual([expect.objectContaining({ message_id: malformed.messageId, level: 'WARN' })]);
    await drainQueue(process.env.TEST_DLQ_URL);
  });
});
