import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { LocalStack } from '../../scripts/local/stack.ts';
import { s3Client } from '../../scripts/local/resources.ts';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { startFakeMlflow, type FakeMlflow } from '../fakes/mlflow.ts';
import { SEED_EXAMPLE } from '../helpers/fixtures.ts';
import { startTestStack } from '../helpers/stack.ts';

// `npm start` with MLFLOW_TRACKING_URI set: upload over HTTP → MLflow run + version → export → /predict serves it;
// then a presigned PUT into the drop folder, registered once through the S3 bridge even when the event comes twice.
let stack: LocalStack;
let mlflow: FakeMlflow;

beforeAll(async () => {
  mlflow = await startFakeMlflow();
  stack = await startTestStack({ MLFLOW_TRACKING_URI: mlflow.url, MODEL_REFRESH_SECONDS: '1' });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await mlflow?.close();
});

const model = (intercept: number) =>
  buildLinearRegressor({ coefficients: [4, 1.5, 2.5, 2.5, 2.5, 0.25, 3, 3], intercept });
const predictedIq = async () => {
  const response = await fetch(`${stack.url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(SEED_EXAMPLE),
  });
  return (await response.json()) as { predicted_iq: number; model_version: string };
};

it('registers an upload in MLflow with its metrics, exports it at the seed key and serves it', {
  timeout: 60_000,
}, async () => {
  const form = new FormData();
  form.append('file', new Blob([model(12)]), 'hubfolio_model.onnx');
  for (const [name, value] of Object.entries({ r2_score: '0.85', rmse: '12.5', mae: '9.2' })) form.append(name, value);
  const response = await fetch(`${stack.url}/model/upload`, { method: 'POST', body: form });
  expect(response.status).toBe(200);
  const body = (await response.json()) as Record<string, unknown>;
  expect(body).toMatchObject({
    message: 'Modelo carregado com sucesso!',
    mlflow_registered: true,
    mlflow_model_version: '1',
    s3_exported: true,
  });
  expect(body.s3_key).toMatch(/^models\/hubfolio-model\/v1\/hubfolio-model_v1_\d{8}_\d{6}\.onnx$/);

  const run = mlflow.state.runs.get(String(body.mlflow_run_id))!;
  expect(Object.fromEntries(run.metrics.map((m) => [m.key, m.value]))).toEqual({
    r2_score: 0.85,
    rmse: 12.5,
    mae: 9.2,
  });
  expect(mlflow.state.registeredModels.get('hubfolio-model')!.versions).toHaveLength(1);
  const exported = await s3Client(stack.endpoints).send(
    new HeadObjectCommand({ Bucket: stack.env.MODEL_BUCKET, Key: String(body.s3_key) }),
  );
  expect(exported.Metadata).toMatchObject({ version: '1' });

  // The sample model (v0) scores the seed example 82.5; this one adds 10 to the intercept.
  await vi.waitFor(async () => expect(await predictedIq()).toMatchObject({ model_version: '1', predicted_iq: 92.5 }), {
    timeout: 20_000,
    interval: 500,
  });
});

it('registers a file put with a presigned URL once, even when its S3 event arrives twice', {
  timeout: 60_000,
}, async () => {
  const bytes = model(22);
  const answer = await fetch(`${stack.url}/model/upload-url`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model_name: 'hubfolio-model', filename: 'modelo grande.onnx', file_size: bytes.byteLength }),
  });
  expect(answer.status).toBe(200);
  const { url, key } = (await answer.json()) as { url: string; key: string };
  expect(key).toBe('incoming/hubfolio-model/modelo grande.onnx');

  for (let i = 0; i < 2; i++) expect((await fetch(url, { method: 'PUT', body: bytes })).status).toBe(200);

  await vi.waitFor(async () => expect(await predictedIq()).toMatchObject({ model_version: '2', predicted_iq: 100 }), {
    timeout: 30_000,
    interval: 500,
  });
  // Two puts of the same bytes, two events: one version.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(mlflow.state.registeredModels.get('hubfolio-model')!.versions).toHaveLength(2);
});
