import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FEATURES } from '#prediction/features';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { SEED_EXAMPLE, useSampleModel } from '../helpers/fixtures.ts';
import { httpEvent, invokeHttp, lambdaContext, postJson } from '../helpers/lambda.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp.ts';

// A dependency that accepts connections and never answers must cost a request seconds and a
// 503 or 504 that says to retry: never a 200 for work not done, never the function's own timeout.
delete process.env.MLFLOW_TRACKING_URI;

let hanging: TcpProxy;
beforeAll(async () => {
  await useSampleModel();
  hanging = await startTcpProxy();
});
afterAll(() => hanging?.stop());

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

/** The handlers of a fresh container whose environment has `overrides` (until the test ends). */
async function coldHandlers(overrides: Record<string, string>) {
  Object.assign(process.env, overrides);
  vi.resetModules();
  const [predict, upload] = await Promise.all([
    import('../../functions/predict/handler.ts'),
    import('../../functions/model-upload/handler.ts'),
  ]);
  return { predict: predict.handler, upload: upload.handler };
}

/** POST /model/upload of a small valid model, in a function with `remainingMs` before its timeout. */
async function uploadModel(handler: Awaited<ReturnType<typeof coldHandlers>>['upload'], remainingMs = 10_000) {
  const form = new FormData();
  const bytes = buildLinearRegressor({ coefficients: FEATURES.map((_, i) => 7 + i), intercept: 7, features: FEATURES });
  form.append('file', new Blob([bytes]), 'model.onnx');
  form.append('model_name', 'hang-test');
  const request = new Request('http://localhost/model/upload', { method: 'POST', body: form });
  const body = Buffer.from(await request.arrayBuffer());
  return invokeHttp(
    handler,
    httpEvent({ path: '/model/upload', body, headers: { 'content-type': request.headers.get('content-type')! } }),
    { ...lambdaContext(), getRemainingTimeInMillis: () => remainingMs },
  );
}

/** A refusal to retry, quickly, in the API's error shape and with nothing internal in it. */
function expectRetryAdvice(answer: { status: number; body: { detail?: string } }, started: number, within: number) {
  expect(Date.now() - started).toBeLessThan(within);
  expect([503, 504]).toContain(answer.status);
  expect(answer.body.detail).toMatch(/retry/i);
  expect(JSON.stringify(answer.body)).not.toMatch(/node_modules|\.ts:\d|\bat \S+ \(|SELECT|INSERT|127\.0\.0\.1/);
}

describe('S3 accepts connections and never answers', () => {
  it('POST /predict on a cold container answers 503 within the function timeout', { timeout: 20_000 }, async () => {
    const { predict } = await coldHandlers({ AWS_ENDPOINT_URL_S3: `http://${hanging.address}` });
    const started = Date.now();
    expectRetryAdvice(await postJson(predict, '/predict', SEED_EXAMPLE), started, 10_000);
  });

  it('POST /model/upload answers 503 naming S3', { timeout: 20_000 }, async () => {
    const { upload } = await coldHandlers({ AWS_ENDPOINT_URL_S3: `http://${hanging.address}` });
    const started = Date.now();
    const answer = await uploadModel(upload);
    expectRetryAdvice(answer, started, 10_000);
    expect(answer.body.detail).toMatch(/S3 is unavailable/);
  });
});

describe('PostgreSQL accepts connections and never answers', () => {
  const database = () => {
    const url = new URL(process.env.DATABASE_URL!);
    url.host = hanging.address;
    return url.toString();
  };

  it('POST /predict answers 503 within the function timeout', { timeout: 20_000 }, async () => {
    const { predict } = await coldHandlers({ DATABASE_URL: database() });
    const started = Date.now();
    expectRetryAdvice(await postJson(predict, '/predict', SEED_EXAMPLE), started, 10_000);
  });

  it('POST /model/upload answers 503, not 500', { timeout: 20_000 }, async () => {
    const { upload } = await coldHandlers({ DATABASE_URL: database() });
    const started = Date.now();
    const answer = await uploadModel(upload);
    expectRetryAdvice(answer, started, 10_000);
    expect(answer.body.detail).toMatch(/database is unavailable/);
  });
});

describe('PostgreSQL stops answering on an open connection', () => {
  it('POST /predict gives up on the query and answers 503', { timeout: 20_000 }, async () => {
    const url = new URL(process.env.DATABASE_URL!);
    const proxy = await startTcpProxy(url.host);
    try {
      url.host = proxy.address;
      const { predict } = await coldHandlers({ DATABASE_URL: url.toString() });
      expect((await postJson(predict, '/predict', SEED_EXAMPLE)).status).toBe(200);
      proxy.freeze();
      const started = Date.now();
      expectRetryAdvice(await postJson(predict, '/predict', SEED_EXAMPLE), started, 10_000);
    } finally {
      await proxy.stop();
    }
  });
});

describe('MLflow accepts connections and never answers', () => {
  it('POST /model/upload stores the file and answers 202 within its 29 s timeout', { timeout: 40_000 }, async () => {
    const { upload } = await coldHandlers({ MLFLOW_TRACKING_URI: `http://${hanging.address}` });
    const started = Date.now();
    const answer = await uploadModel(upload, 29_000);
    expect(Date.now() - started).toBeLessThan(28_000);
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ mlflow_registered: false, registration_status: 'pending_registration' });
    expect(answer.body.mlflow_error).toMatch(/MLflow is unavailable/);
  });
});
