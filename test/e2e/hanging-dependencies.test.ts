import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FEATURES } from '#prediction/features';
import type { LocalStack } from '../../scripts/local/stack.ts';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { SEED_EXAMPLE } from '../helpers/fixtures.ts';
import { startTestStack } from '../helpers/stack.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp.ts';

// The local stack with S3 and PostgreSQL behind TCP proxies that the test freezes: a dependency
// that accepts connections and never answers. Through HTTP, as a client meets it, no endpoint may
// answer 200 for work it did not do, and the answer is a 503/504 in the API's error shape.
let stack: LocalStack;
let s3: TcpProxy;
let postgres: TcpProxy;

beforeAll(async () => {
  s3 = await startTcpProxy(new URL(process.env.AWS_ENDPOINT_URL_S3!).host);
  const database = new URL(process.env.DATABASE_URL!);
  postgres = await startTcpProxy(database.host);
  database.host = postgres.address;
  stack = await startTestStack({
    AWS_ENDPOINT_URL_S3: `http://${s3.address}`,
    AWS_ENDPOINT_URL_SQS: process.env.AWS_ENDPOINT_URL_SQS,
    MODEL_BUCKET: `hanging-${randomBytes(4).toString('hex')}`,
    DATABASE_URL: database.toString(),
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await Promise.all([s3?.stop(), postgres?.stop()]);
});

const predict = () =>
  fetch(`${stack.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(SEED_EXAMPLE),
  });

function upload() {
  const form = new FormData();
  const bytes = buildLinearRegressor({ coefficients: FEATURES.map((_, i) => 3 + i), intercept: 3, features: FEATURES });
  form.append('file', new Blob([bytes]), 'model.onnx');
  return fetch(`${stack.url}/model/upload`, { method: 'POST', body: form });
}

/** A 503 or 504 that says to retry, in the API's error shape, with nothing internal in it. */
async function expectRetryAdvice(response: Response) {
  const text = await response.text();
  expect([503, 504], text).toContain(response.status);
  expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(Object.keys(JSON.parse(text))).toEqual(['detail']);
  expect(JSON.parse(text).detail).toMatch(/retry/i);
  expect(text).not.toMatch(/stackTrace|node_modules|\.(ts|js):\d|SELECT|INSERT|127\.0\.0\.1/);
}

/** Each request while `dependency` hangs: a 503 or 504 that says to retry. */
async function expectRetryAdviceWhileFrozen(dependency: TcpProxy, requests: Array<() => Promise<Response>>) {
  dependency.freeze();
  try {
    for (const request of requests) await expectRetryAdvice(await request());
  } finally {
    dependency.thaw();
  }
}

// /predict needs no S3 while its model is warm and S3 does not answer the pointer check: it keeps
// serving (and storing) with that model, a real success. What needs S3 must not claim one.
it('answers 503/504, not 200, to /model/upload while S3 hangs', { timeout: 90_000 }, async () => {
  await expectRetryAdviceWhileFrozen(s3, [upload]);
});

it('answers 503/504, not 200, to /predict and /model/upload while PostgreSQL hangs', { timeout: 90_000 }, async () => {
  // A warm container first, holding an open connection that then stops answering.
  expect((await predict()).status).toBe(200);
  await expectRetryAdviceWhileFrozen(postgres, [predict, upload]);
});
