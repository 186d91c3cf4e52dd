import { DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { config } from '#shared/config';
import { pool } from '#shared/db';
import { FEATURES } from '#prediction/features';
import { readServingPointer, servingPointerKey, ServingModelCache } from '#prediction/serving';
import { putObject, s3, sha256Hex } from '#aws/s3';
import { handler as exportHandler } from '../../functions/model-export/handler.ts';
import { handler as infoHandler } from '../../functions/model-info/handler.ts';
import { handler as promoteHandler } from '../../functions/model-promote/handler.ts';
import { handler as uploadHandler } from '../../functions/model-upload/handler.ts';
import { handler as syncHandler } from '../../functions/model-sync/handler.ts';
import { handler as predictHandler } from '../../functions/predict/handler.ts';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { query, SEED_EXAMPLE } from '../helpers/fixtures.ts';
import { servedVersion } from '../helpers/serving.ts';
import { httpEvent, invokeHttp, lambdaContext, postJson } from '../helpers/lambda.ts';

// Without MLFLOW_TRACKING_URI (the local stack's default) the suite numbers versions itself.
delete process.env.MLFLOW_TRACKING_URI;
// /predict in this file looks at the serving pointer at most a second apart.
process.env.MODEL_REFRESH_SECONDS = '1';

const NAME = 'local-model';
/** Predicts `id` for a row of zeros; ids differ from the other test files' so that the files differ too. */
const model = (id: number) =>
  buildLinearRegressor({ coefficients: FEATURES.map((_, i) => id + i / 4), intercept: id, features: FEATURES });

async function upload(fields: Record<string, string>, bytes: Uint8Array) {
  const form = new FormData();
  form.append('file', new Blob([bytes]), 'model.onnx');
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  const request = new Request('http://localhost/model/upload', { method: 'POST', body: form });
  const body = Buffer.from(await request.arrayBuffer());
  return invokeHttp(
    uploadHandler,
    httpEvent({ path: '/model/upload', body, headers: { 'content-type': request.headers.get('content-type')! } }),
  );
}

const cache = new ServingModelCache(NAME, 100);

describe('without MLflow', () => {
  it('numbers versions itself, exports and serves the upload, and says MLflow is not configured', async () => {
    const { status, body } = await upload({ model_name: NAME, r2_score: '0.8' }, model(101));
    expect(status).toBe(200);
    expect(body).toMatchObject({
      message: 'Modelo carregado com sucesso!',
      mlflow_registered: false,
      mlflow_model_version: null,
      model_version: '1',
      registry: 'local',
      s3_exported: true,
      promoted: true,
    });
    expect(body.mlflow_error).toMatch(/MLFLOW_TRACKING_URI is unset/);
    expect(body.s3_key).toMatch(/^models\/local-model\/v1\/local-model_v1_\d{8}_\d{6}\.onnx$/);
    expect(await servedVersion(cache, '1')).toBe(101);

    const second = await upload({ model_name: NAME }, model(102));
    expect(second.body).toMatchObject({ model_version: '2', promoted: true });
    expect(await servedVersion(cache, '2')).toBe(102);
  });

  it('answers the same version for the same file, and uploading an earlier file again makes it serve', async () => {
    const { body } = await upload({ model_name: NAME }, model(101));
    expect(body).toMatchObject({ model_version: '1', already_registered: true, promoted: true });
    expect(await servedVersion(cache, '1')).toBe(101);
  });

  it('promotes a version by number, and refuses aliases MLflow would hold', async () => {
    const { status, body } = await postJson(promoteHandler, '/model/promote', { model_name: NAME, version: '2' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ version: '2', serving: true });
    expect(await servedVersion(cache, '2')).toBe(102);

    const alias = await postJson(promoteHandler, '/model/promote', {
      model_name: NAME,
      version: '1',
      alias: 'champion',
    });
    expect(alias.status).toBe(400);
    expect(alias.body.detail).toMatch(/need MLflow/);
    expect((await readServingPointer(NAME))!.pointer.version).toBe('2');
  });

  it('exports the Production (serving) version, and answers 404 for a version it never numbered', async () => {
    const { status, body } = await postJson(exportHandler, '/model/export-to-s3', {
      model_name: NAME,
      stage: 'Production',
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      message: 'Modelo exportado para S3 com sucesso!',
      version: '2',
      stage: 'Production',
      already_exported: true,
    });
    const missing = await postJson(exportHandler, '/model/export-to-s3', { model_name: NAME, version: '9' });
    expect(missing.status).toBe(404);
    expect(missing.body.detail).toMatch(/no version 9/);
    const staging = await postJson(exportHandler, '/model/export-to-s3', { model_name: NAME, stage: 'Staging' });
    expect(staging.status).toBe(400);
  });

  it('answers GET /model/info without the mlflow part, saying why', async () => {
    const event = { ...httpEvent({ method: 'GET', path: '/model/info' }), queryStringParameters: { model_name: NAME } };
    const { status, body } = await invokeHttp(infoHandler, event);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      model_loaded: true,
      num_features: 8,
      serving: { version: '2', registry: 'local', aliases: ['production'] },
      mlflow: null,
    });
    expect(body.mlflow_error).toMatch(/not configured/);
  });

  it('has nothing to sync', async () => {
    expect(await syncHandler({} as never, lambdaContext('modelSync'))).toEqual({
      mlflow: 'not configured',
      resumed: 0,
      models: [],
    });
  });
});

describe('a broken serving pointer', () => {
  const served = config().MODEL_NAME;
  const predict = () => postJson(predictHandler, '/predict', SEED_EXAMPLE);
  const pastTheWindow = () => new Promise((resolve) => setTimeout(resolve, 1_100));

  it('answers /predict with a 503 saying the pointer is corrupt until a promotion of the same version repairs it', async () => {
    expect((await upload({}, model(201))).body).toMatchObject({ model_version: '1', promoted: true });
    expect((await predict()).body.model_version).toBe('1');

    await putObject(servingPointerKey(served), '{"model_name": "hubfolio-model", "vers');
    await pastTheWindow();
    const broken = await predict();
    expect(broken.status).toBe(503);
    expect(broken.body.detail).toMatch(
      /serving pointer of "hubfolio-model" is corrupt \(serving\/hubfolio-model\.json is not JSON/,
    );
    expect(broken.body.detail).toMatch(/POST \/model\/promote/);

    // The version the pointer named before: its pointer is written again all the same.
    expect((await postJson(promoteHandler, '/model/promote', { model_name: served, version: '1' })).status).toBe(200);
    expect(await predict()).toMatchObject({ status: 200, body: { model_version: '1' } });
  });

  it('answers /predict with a 503 while the pointer is missing, until the next upload', async () => {
    await s3().send(new DeleteObjectCommand({ Bucket: config().MODEL_BUCKET, Key: servingPointerKey(served) }));
    await pastTheWindow();
    const missing = await predict();
    expect(missing.status).toBe(503);
    expect(missing.body.detail).toMatch(/No serving model for "hubfolio-model" yet/);

    expect((await upload({}, model(202))).body).toMatchObject({ model_version: '2', promoted: true });
    expect(await predict()).toMatchObject({ status: 200, body: { model_version: '2' } });
  });
});

describe('an upload that fails on the way', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const storedCopies = async (bytes: Uint8Array) => {
    const listed = await s3().send(new ListObjectsV2Command({ Bucket: config().MODEL_BUCKET, Prefix: 'uploads/' }));
    return (listed.Contents ?? []).filter((o) => o.Key!.includes(sha256Hex(bytes)));
  };

  it('leaves no stored file behind when PostgreSQL fails, and the same upload again registers it', async () => {
    const bytes = model(301);
    vi.spyOn(pool(), 'query').mockRejectedValueOnce(
      Object.assign(new Error('Connection terminated'), { code: '57P01' }),
    );
    expect((await upload({ model_name: 'flaky' }, bytes)).status).toBeGreaterThanOrEqual(500);
    expect(await storedCopies(bytes)).toEqual([]);
    expect(await query('SELECT 1 FROM model_files WHERE sha256 = $1', [sha256Hex(bytes)])).toEqual([]);

    vi.restoreAllMocks();
    expect((await upload({ model_name: 'flaky' }, bytes)).body).toMatchObject({ model_version: '1', promoted: true });
    expect(await storedCopies(bytes)).toHaveLength(1);
  });

  it("records an S3 failure on the file's row and lets the same upload again take it over at once", async () => {
    const bytes = model(302);
    const send = s3().send.bind(s3());
    vi.spyOn(s3(), 'send').mockImplementation(((command: { input: { Key?: string } }) =>
      command.input.Key?.startsWith('uploads/')
        ? Promise.reject(new Error('S3 refused the write'))
        : send(command as never)) as never);
    expect((await upload({ model_name: 'flaky' }, bytes)).status).toBe(500);
    const [row] = await query('SELECT status, error, lease_until FROM model_files WHERE sha256 = $1', [
      sha256Hex(bytes),
    ]);
    expect(row).toMatchObject({ error: 'the file could not be stored in S3; upload it again', lease_until: null });

    vi.restoreAllMocks();
    const started = Date.now();
    expect((await upload({ model_name: 'flaky' }, bytes)).body).toMatchObject({ model_version: '2', promoted: true });
    expect(Date.now() - started).toBeLessThan(5_000); // no wait for the lease of the failed attempt
    expect(await storedCopies(bytes)).toHaveLength(1);
  });
});
