import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { publishServingModel, readServingPointer, ServingModelCache } from '#prediction/serving';
import { putObject, s3, sha256Hex } from '#aws/s3';
import { HttpError } from '#http/errors';
import { FEATURES } from '#prediction/features';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { SAMPLE_MODEL } from '../../scripts/local/stack.ts';
import { SEED_EXAMPLE, useSampleModel } from '../helpers/fixtures.ts';
import { httpEvent, invokeHttp, postJson } from '../helpers/lambda.ts';

// The predict functions of this file look at the pointer at most a second apart (read once per container).
process.env.MODEL_REFRESH_SECONDS = '1';
// Without MLFLOW_TRACKING_URI uploads are numbered by the suite itself.
delete process.env.MLFLOW_TRACKING_URI;

const row = { ...SEED_EXAMPLE, bio: 1, contatos: 1 };
const doubled = () => buildLinearRegressor({ coefficients: [8, 3, 5, 5, 5, 0.5, 6, 6], intercept: 4 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function publish(modelName: string, version: string, bytes: Uint8Array) {
  const key = `models/${modelName}/v${version}/${modelName}_v${version}_test.onnx`;
  await putObject(key, bytes);
  await publishServingModel({
    model_name: modelName,
    version,
    s3_key: key,
    sha256: sha256Hex(bytes),
    run_id: null,
    promoted_at: new Date().toISOString(),
  });
}

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.unreachable(),
    (error: unknown) => error as HttpError,
  );

beforeAll(async () => {
  await publish('served', '1', readFileSync(SAMPLE_MODEL));
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

it('answers 503 with how to upload a model when none is serving', async () => {
  const cache = new ServingModelCache('never-uploaded', 1_000);
  const error = await refusal(cache.get());
  expect(error).toBeInstanceOf(HttpError);
  expect(error.statusCode).toBe(503);
  expect(error.message).toMatch(/\/model\/upload.*incoming\/never-uploaded\//);
});

it('loads the serving model once and keeps it within the refresh window', async () => {
  const cache = new ServingModelCache('served', 60_000);
  const first = await cache.get();
  expect(first.pointer.version).toBe('1');
  expect(await first.model.predict([row])).toEqual([82.5]);
  expect(await cache.get()).toBe(first);
});

it('looks at an unchanged pointer with one HEAD after the refresh window, and keeps its model', async () => {
  const cache = new ServingModelCache('served', 50);
  const served = await cache.get();
  await sleep(60);
  const send = vi.spyOn(s3(), 'send');
  expect(await cache.get()).toBe(served);
  expect(send.mock.calls.map(([command]) => command.constructor.name)).toEqual(['HeadObjectCommand']);
});

it('answers the first request after the refresh window with the newly promoted model', async () => {
  // The cache's clock only: S3 calls keep their real timers, and a slow machine cannot pass the window early.
  vi.useFakeTimers({ toFake: ['Date'] });
  const cache = new ServingModelCache('promoted', 30_000);
  await publish('promoted', '1', readFileSync(SAMPLE_MODEL));
  expect((await cache.get()).pointer.version).toBe('1');

  await publish('promoted', '2', doubled());
  vi.setSystemTime(Date.now() + 29_000);
  // Within the window the warm container keeps its model (no look at S3)...
  expect((await cache.get()).pointer.version).toBe('1');
  vi.setSystemTime(Date.now() + 1_000);
  // ...and the first request after it looks before answering.
  const current = await cache.get();
  expect(current.pointer.version).toBe('2');
  expect(await current.model.predict([row])).toEqual([165]);
});

it('keeps serving its model when S3 does not answer the look at the pointer', async () => {
  const cache = new ServingModelCache('served', 50);
  const served = await cache.get();
  await sleep(60);
  vi.spyOn(s3(), 'send').mockRejectedValueOnce(
    Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
  );
  // Nothing says the model was superseded: an S3 outage does not stop predictions.
  expect(await cache.get()).toBe(served);
});

it('answers 503 rather than with the superseded model when the promoted one cannot be loaded, and serves the next promotion', async () => {
  const cache = new ServingModelCache('sticky', 100);
  await publish('sticky', '1', readFileSync(SAMPLE_MODEL));
  expect((await cache.get()).pointer.version).toBe('1');

  await publish('sticky', '2', new TextEncoder().encode('not a model'));
  await sleep(150);
  const error = await refusal(cache.get());
  expect(error.statusCode).toBe(503);
  expect(error.message).toMatch(
    /Version 2 of "sticky" is the serving model but cannot be loaded: .*not a valid ONNX model/,
  );
  expect(error.message).toMatch(/POST \/model\/promote/);

  await publish('sticky', '3', doubled());
  // A container that answers 503 looks again on every request: the repair serves at once.
  expect((await cache.get()).pointer.version).toBe('3');
});

it('refuses a model file that is not the one the pointer names (overwritten since its promotion)', async () => {
  await publish('swapped', '1', readFileSync(SAMPLE_MODEL));
  const pointer = (await readServingPointer('swapped'))!.pointer;
  // A valid model, written over the promoted file's key.
  await putObject(pointer.s3_key, doubled());
  const cold = new ServingModelCache('swapped', 100);
  const error = await refusal(cold.get());
  expect(error.statusCode).toBe(503);
  expect(error.message).toMatch(
    /holds a file with sha256 [0-9a-f]{64}, not the [0-9a-f]{64} the serving pointer names/,
  );
});

describe('a promotion through the API', () => {
  /** A handler in a module graph of its own: a warm Lambda container with its own serving model cache. */
  async function container(path: string) {
    vi.resetModules();
    return ((await import(path)) as { handler: Parameters<typeof invokeHttp>[0] }).handler;
  }

  async function upload(handler: Parameters<typeof invokeHttp>[0], bytes: Uint8Array) {
    const form = new FormData();
    form.append('file', new Blob([bytes]), 'model.onnx');
    const request = new Request('http://localhost/model/upload', { method: 'POST', body: form });
    const body = Buffer.from(await request.arrayBuffer());
    const headers = { 'content-type': request.headers.get('content-type')! };
    return invokeHttp(handler, httpEvent({ path: '/model/upload', body, headers }));
  }

  it('serves the very first /predict, /predict/batch and /model/info of every warm container after the window', async () => {
    await useSampleModel();
    const predict = await container('../../functions/predict/handler.ts');
    const batch = await container('../../functions/predict-batch/handler.ts');
    const info = await container('../../functions/model-info/handler.ts');
    const infoEvent = () => httpEvent({ method: 'GET', path: '/model/info' });
    // Warm: each has loaded the bundled sample (v0).
    expect((await postJson(predict, '/predict', SEED_EXAMPLE)).body.model_version).toBe('0');
    expect((await postJson(batch, '/predict/batch', { items: [SEED_EXAMPLE] })).body.items[0].model_version).toBe('0');
    expect((await invokeHttp(info, infoEvent())).body.serving.version).toBe('0');

    const promoted = buildLinearRegressor({ coefficients: FEATURES.map(() => 1), intercept: 1, features: FEATURES });
    const { body } = await upload(await container('../../functions/model-upload/handler.ts'), promoted);
    expect(body).toMatchObject({ promoted: true, model_version: '1' });
    await sleep(1_100);

    // 1 + 3 + 10 + 4 + 3 + 4 + 80 + 1 + 1
    expect((await postJson(predict, '/predict', SEED_EXAMPLE)).body).toMatchObject({
      model_version: '1',
      predicted_iq: 100,
    });
    const answer = (
      await postJson(batch, '/predict/batch', { items: [{ ...SEED_EXAMPLE, consistencia_visual_score: 0 }] })
    ).body;
    expect(answer.items[0]).toMatchObject({ model_version: '1', predicted_iq: 27 });
    expect((await invokeHttp(info, infoEvent())).body.serving).toMatchObject({
      version: '1',
      sha256: sha256Hex(promoted),
    });
  });
});
