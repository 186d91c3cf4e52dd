import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalStack } from '../../scripts/local/stack.ts';
import { SEED_EXAMPLE } from '../helpers/fixtures.ts';
import { startTestStack } from '../helpers/stack.ts';

// Starts the stack the way `npm start` does and talks HTTP to it.
let stack: LocalStack;

beforeAll(async () => {
  stack = await startTestStack();
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

const post = (path: string, body: unknown) =>
  fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

it('answers /health with 200 and every required dependency connected', async () => {
  const response = await fetch(`${stack.url}/health`);
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({
    status: 'degraded',
    s3_connected: true,
    bucket_exists: true,
    postgres_connected: true,
    sqs_connected: true,
    model_loaded: true,
  });
});

it('answers /predict with a prediction from the sample model', async () => {
  const response = await post('/predict', { ...SEED_EXAMPLE, portfolio_id: 12 });
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({
    predicted_iq: 82.5,
    classification: 'Bom',
    model_version: '0',
    portfolio_id: 12,
  });
});

it('answers /predict/batch in order', async () => {
  const items = [0, 10].map((kw) => ({ ...SEED_EXAMPLE, kw_resultado: kw }));
  const response = await post('/predict/batch', { items });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { items: Array<{ predicted_iq: number }> };
  expect(body.items.map((p) => p.predicted_iq)).toEqual([72.5, 97.5]);
});

it('refuses bad input over HTTP with a 4xx that names the field', async () => {
  const response = await post('/predict', { ...SEED_EXAMPLE, bio: 'true' });
  expect(response.status).toBe(400);
  expect(((await response.json()) as { detail: string }).detail).toMatch(/bio: must be true or false/);
});

it('serves its OpenAPI document', async () => {
  const response = await fetch(`${stack.url}/openapi.json`);
  expect(response.status).toBe(200);
  const document = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
  expect(document.openapi).toBe('3.1.0');
  expect(Object.keys(document.paths)).toContain('/predict');
});

it('gives a page of a foreign origin no CORS headers, and no origin credentials, on a write route', async () => {
  const write = (origin: string) =>
    fetch(`${stack.url}/model/promote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ model_name: 'hubfolio-model', version: '999' }),
    });
  const foreign = await write('https://evil.example');
  expect([...foreign.headers.keys()].filter((name) => name.startsWith('access-control-'))).toEqual([]);
  const own = await write(stack.url.replace('127.0.0.1', 'localhost'));
  expect(own.headers.get('access-control-allow-origin')).toBe(stack.url.replace('127.0.0.1', 'localhost'));
  expect(own.headers.get('access-control-allow-credentials')).toBeNull();
});

it('refuses over HTTP a /predict body that is not sent as JSON, with 415 in the API error shape', async () => {
  // `curl -d` without -H 'content-type: application/json' sends a form type.
  const response = await fetch(`${stack.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: JSON.stringify(SEED_EXAMPLE),
  });
  expect(response.status).toBe(415);
  expect(((await response.json()) as { detail: string }).detail).toMatch(/Content-Type: application\/json/);
});

it('refuses a multipart upload cut short with 415 in the API error shape, and keeps answering', async () => {
  const response = await fetch(`${stack.url}/model/upload`, {
    method: 'POST',
    headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
    body: '--XYZ\r\nContent-Disposition: form-data; name="file"; filename="m.onnx"\r\n\r\nabc',
  });
  expect(response.status).toBe(415);
  expect(((await response.json()) as { detail: string }).detail).toMatch(/ends before its closing boundary/);
  expect((await fetch(`${stack.url}/health`)).status).toBe(200);
});
