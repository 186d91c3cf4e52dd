import { afterAll, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { startFakeMlflow, type FakeMlflow } from '../fakes/mlflow.ts';
import { startFakeThingsBoard, type FakeThingsBoard } from '../fakes/thingsboard.ts';
import { useSampleModel } from '../helpers/fixtures.ts';
import { httpEvent, invokeHttp } from '../helpers/lambda.ts';

const baseEnv = { ...process.env };
let mlflow: FakeMlflow;
let thingsboard: FakeThingsBoard;

/** A fresh container: configuration and clients are built from the environment at first use. */
async function health(env: Record<string, string | undefined> = {}) {
  process.env = { ...baseEnv, ...env };
  vi.resetModules();
  const { handler } = await import('../../functions/health/handler.ts');
  return invokeHttp(handler, httpEvent({ method: 'GET', path: '/health' }));
}

beforeAll(async () => {
  await useSampleModel();
  mlflow = await startFakeMlflow();
  thingsboard = await startFakeThingsBoard();
  thingsboard.addDevice('HubFólio Predictions', { token: 'device-token' });
});
beforeEach(() => {
  mlflow.setDown(false);
  thingsboard.setDown(false);
});
afterAll(async () => {
  process.env = baseEnv;
  await mlflow.close();
  await thingsboard.close();
});

const everything = () => ({
  MLFLOW_TRACKING_URI: mlflow.url,
  THINGSBOARD_URL: thingsboard.url,
  THINGSBOARD_DEVICE_TOKEN: 'device-token',
});

it('is healthy (200) with the seed keys when every configured dependency answers', async () => {
  const { status, body } = await health(everything());
  expect(status).toBe(200);
  expect(body).toMatchObject({
    status: 'healthy',
    minio_connected: true,
    s3_connected: true,
    bucket_exists: true,
    postgres_connected: true,
    sqs_connected: true,
    mlflow_connected: true,
    thingsboard_connected: true,
    model_loaded: true,
    issues: [],
  });
  expect(Date.parse(body.timestamp)).not.toBeNaN();
});

it('is degraded (200) and says why when MLflow and ThingsBoard are not configured', async () => {
  const { status, body } = await health();
  expect(status).toBe(200);
  expect(body.status).toBe('degraded');
  expect(body.mlflow_connected).toBe(false);
  expect(body.issues).toEqual([
    'MLflow is not configured (MLFLOW_TRACKING_URI unset)',
    'ThingsBoard telemetry is not configured (THINGSBOARD_URL or THINGSBOARD_DEVICE_TOKEN unset)',
  ]);
});

it('is degraded (200) when a configured MLflow or ThingsBoard is down', async () => {
  mlflow.setDown(true);
  thingsboard.setDown(true);
  const { status, body } = await health(everything());
  expect(status).toBe(200);
  expect(body).toMatchObject({
    status: 'degraded',
    mlflow_connected: false,
    thingsboard_connected: false,
    postgres_connected: true,
  });
  expect(body.issues).toEqual([
    'MLflow is not reachable (MLFLOW_TRACKING_URI)',
    'ThingsBoard is not reachable (THINGSBOARD_URL)',
  ]);
});

it('is unhealthy (503) when PostgreSQL is down', async () => {
  const { status, body } = await health({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
  expect(status).toBe(503);
  expect(body).toMatchObject({
    status: 'unhealthy',
    postgres_connected: false,
    s3_connected: true,
    sqs_connected: true,
  });
});

it('is unhealthy (503) when S3 or SQS are down', async () => {
  const { status, body } = await health({
    AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1',
    AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:1',
  });
  expect(status).toBe(503);
  expect(body).toMatchObject({
    status: 'unhealthy',
    minio_connected: false,
    s3_connected: false,
    sqs_connected: false,
    model_loaded: false,
  });
});

it('is unhealthy (503) when the bucket does not exist', async () => {
  const { status, body } = await health({ MODEL_BUCKET: 'no-such-bucket' });
  expect(status).toBe(503);
  expect(body).toMatchObject({ status: 'unhealthy', s3_connected: true, bucket_exists: false });
  expect(body.issues).toContain('bucket no-such-bucket does not exist (MODEL_BUCKET)');
});
