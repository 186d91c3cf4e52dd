import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, PurgeQueueCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { createHash } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { config } from '#shared/config';
import { FEATURES, type FeatureRow } from '#prediction/features';
import { MAX_UPLOAD_BYTES } from '#model/api';
import { MAX_MODEL_BYTES } from '#model/validation';
import { readServingPointer, ServingModelCache } from '#prediction/serving';
import { getObject, s3 } from '#aws/s3';
import { handler as exportHandler } from '../../functions/model-export/handler.ts';
import { handler as infoHandler } from '../../functions/model-info/handler.ts';
import { handler as ingestHandler } from '../../functions/model-ingest/handler.ts';
import { handler as promoteHandler } from '../../functions/model-promote/handler.ts';
import { handler as uploadUrlHandler } from '../../functions/model-upload-url/handler.ts';
import { handler as uploadHandler } from '../../functions/model-upload/handler.ts';
import { handler as syncHandler } from '../../functions/model-sync/handler.ts';
import { s3NotificationEvent } from '../../scripts/local/bridge.ts';
import { sqsClient } from '../../scripts/local/resources.ts';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { startFakeMlflow, type FakeMlflow } from '../fakes/mlflow.ts';
import { query, testEndpoints } from '../helpers/fixtures.ts';
import { servedVersion } from '../helpers/serving.ts';
import { httpEvent, invokeHttp, lambdaContext, postJson } from '../helpers/lambda.ts';

// The MLflow client (mlflow()) is built on first use from the configuration: point it at the fake first.
const fake: FakeMlflow = await startFakeMlflow();
process.env.MLFLOW_TRACKING_URI = fake.url;
process.env.MLFLOW_EXPERIMENT_NAME = 'hubfolio-models';

afterAll(() => fake.close());
beforeEach(() => fake.setDown(false));

const BUCKET = () => config().MODEL_BUCKET;
const ZEROS = Object.fromEntries(FEATURES.map((f) => [f, 0])) as FeatureRow;

/** A valid HubFólio model whose prediction for a row of zeros is `id`: each test's files are its own. */
const model = (id: number) =>
  buildLinearRegressor({
    coefficients: FEATURES.map((_, i) => id + i / 2),
    intercept: id,
    features: FEATURES,
    algorithm: 'LinearRegression',
  });
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** POST /model/upload as API Gateway delivers it: the multipart body base64-encoded. */
async function upload(fields: Record<string, string>, file?: { name: string; bytes: Uint8Array }) {
  const form = new FormData();
  if (file) form.append('file', new Blob([file.bytes]), file.name);
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  const request = new Request('http://localhost/model/upload', { method: 'POST', body: form });
  const body = Buffer.from(await request.arrayBuffer());
  return invokeHttp(
    uploadHandler,
    httpEvent({ path: '/model/upload', body, headers: { 'content-type': request.headers.get('content-type')! } }),
  );
}

const info = (modelName: string) =>
  invokeHttp(infoHandler, {
    ...httpEvent({ method: 'GET', path: '/model/info' }),
    queryStringParameters: { model_name: modelName },
  });

/** The S3 event of one put under incoming/ (each with its own sequencer). */
const dropEvent = (key: string, size = 1, eTag = 'etag') => s3NotificationEvent(BUCKET(), key, size, eTag, 'us-east-1');
const deliver = (event: ReturnType<typeof dropEvent>) => ingestHandler(event as never, lambdaContext('modelIngest'));
const ingest = (key: string, size = 1, eTag = 'etag') => deliver(dropEvent(key, size, eTag));
/** What GET /model/info shows of the drop folder, newest first. */
const drops = async (modelName: string) => (await info(modelName)).body.drop_folder;
/** One scheduled run of the sync function (a look now; the second look is a delayed message). */
const sync = () => syncHandler({} as never, lambdaContext('modelSync'));

/** The second look, as the model-sync queue's event source delivers it 30 s after a run. */
const secondLook = () =>
  syncHandler(
    { Records: [{ messageId: 'm1', body: '{"look":"second"}', eventSource: 'aws:sqs' }] } as unknown as SQSEvent,
    lambdaContext('modelSync'),
  );

async function delayedSyncMessages(): Promise<number> {
  const { Attributes = {} } = await sqsClient(testEndpoints()).send(
    new GetQueueAttributesCommand({
      QueueUrl: process.env.MODEL_SYNC_QUEUE_URL,
      AttributeNames: ['ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return Number(Attributes.ApproximateNumberOfMessagesDelayed);
}

async function keysUnder(prefix: string): Promise<string[]> {
  const listed = await s3().send(new ListObjectsV2Command({ Bucket: BUCKET(), Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key!);
}

async function putIncoming(key: string, bytes: Uint8Array | string, metadata: Record<string, string> = {}) {
  const out = await s3().send(new PutObjectCommand({ Bucket: BUCKET(), Key: key, Body: bytes, Metadata: metadata }));
  return out.ETag!.replace(/"/g, '');
}

const fakeModel = (name: string) => fake.state.registeredModels.get(name);
const fakeRuns = (modelName: string) =>
  [...fake.state.runs.values()].filter((r) => r.tags.get('model_name') === modelName);
const rows = (modelName: string) => query('SELECT * FROM model_files WHERE model_name = $1', [modelName]);

describe('POST /model/upload', () => {
  it('registers the model with its metrics, exports it at the seed’s key and makes it serve', async () => {
    const bytes = model(11);
    const { status, body } = await upload(
      { r2_score: '0.85', rmse: '12.5', mae: '9.2' },
      { name: 'hubfolio_model.onnx', bytes },
    );

    expect(status).toBe(200);
    expect(body).toMatchObject({
      message: 'Modelo carregado com sucesso!',
      model_path: `s3://${BUCKET()}/uploads/hubfolio-model/${sha(bytes)}.onnx`,
      file_size: bytes.byteLength,
      sha256: sha(bytes),
      mlflow_registered: true,
      mlflow_model_version: '1',
      s3_exported: true,
      promoted: true,
      already_registered: false,
    });
    expect(body.mlflow_run_id).toMatch(/^[0-9a-f]{32}$/);
    expect(body.s3_key).toMatch(/^models\/hubfolio-model\/v1\/hubfolio-model_v1_\d{8}_\d{6}\.onnx$/);

    // MLflow: one run named after the file, with the metrics, params and the ONNX artifact; a tagged version in production.
    const run = fake.state.runs.get(body.mlflow_run_id)!;
    expect(run.run_name).toBe('hubfolio_model.onnx');
    expect(run.status).toBe('FINISHED');
    expect(Object.fromEntries(run.metrics.map((m) => [m.key, m.value]))).toEqual({
      r2_score: 0.85,
      rmse: 12.5,
      mae: 9.2,
    });
    expect(Object.fromEntries(run.params)).toMatchObject({
      file_size: String(bytes.byteLength),
      sha256: sha(bytes),
      features: FEATURES.join(','),
      source: 'upload',
    });
    expect(fake.state.artifacts.get(`${run.experiment_id}/${run.run_id}/artifacts/model/model.onnx`)).toEqual(
      Buffer.from(bytes),
    );
    const registered = fakeModel('hubfolio-model')!;
    expect(registered.versions).toHaveLength(1);
    expect(registered.versions[0]!.tags.get('sha256')).toBe(sha(bytes));
    expect(registered.versions[0]!.current_stage).toBe('Production');
    expect(registered.aliases.get('production')).toBe(1);

    // S3: the exported file with its metadata, and the serving pointer naming it.
    const exported = await getObject(body.s3_key);
    expect(Buffer.from(exported!.bytes)).toEqual(Buffer.from(bytes));
    expect(exported!.metadata).toMatchObject({ version: '1', 'run-id': body.mlflow_run_id, sha256: sha(bytes) });
    expect((await readServingPointer('hubfolio-model'))!.pointer).toMatchObject({
      version: '1',
      s3_key: body.s3_key,
      sha256: sha(bytes),
    });

    // A predict container loads it.
    const served = await new ServingModelCache('hubfolio-model', 100).get();
    expect(served.pointer.version).toBe('1');
    expect(await served.model.predict([ZEROS])).toEqual([11]);
  });

  it('answers GET /model/info with the seed’s keys and the serving version, aliases, metrics and S3 key', async () => {
    const { status, body } = await info('hubfolio-model');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      model_loaded: true,
      model_name: 'LinearRegression',
      features: [...FEATURES],
      num_features: 8,
      serving: {
        version: '1',
        registry: 'mlflow',
        aliases: ['production'],
        stage: 'Production',
        metrics: { r2_score: 0.85, rmse: 12.5, mae: 9.2 },
      },
      mlflow: { name: 'hubfolio-model', latest_versions: [{ version: '1', stage: 'Production' }] },
    });
    expect(body.serving.s3_key).toMatch(/^models\/hubfolio-model\/v1\//);
    expect(body.mlflow.latest_versions[0].run_id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('registers the same file once when it is uploaded twice', async () => {
    const bytes = model(12);
    const first = await upload({ model_name: 'twice' }, { name: 'm.onnx', bytes });
    const second = await upload({ model_name: 'twice', r2_score: '0.5' }, { name: 'm.onnx', bytes });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({
      already_registered: true,
      mlflow_model_version: '1',
      mlflow_run_id: first.body.mlflow_run_id,
      s3_key: first.body.s3_key,
    });
    expect(fakeModel('twice')!.versions).toHaveLength(1);
    expect(fakeRuns('twice')).toHaveLength(1);
    expect(await keysUnder('models/twice/')).toEqual([first.body.s3_key]);
  });

  it('registers one version when two uploads of one file race', async () => {
    const bytes = model(13);
    const [a, b] = await Promise.all([
      upload({ model_name: 'race' }, { name: 'm.onnx', bytes }),
      upload({ model_name: 'race' }, { name: 'm.onnx', bytes }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.mlflow_model_version).toBe('1');
    expect(b.body.mlflow_model_version).toBe('1');
    expect([a.body.already_registered, b.body.already_registered].sort()).toEqual([false, true]);
    expect(fakeModel('race')!.versions).toHaveLength(1);
    expect(fakeRuns('race')).toHaveLength(1);
    expect(await keysUnder('models/race/')).toHaveLength(1);
    expect(await rows('race')).toHaveLength(1);
  });

  it('stores the file when MLflow is down, says why, and registers it once MLflow is back', async () => {
    const cache = new ServingModelCache('outage', 100);
    const before = model(14);
    await upload({ model_name: 'outage' }, { name: 'before.onnx', bytes: before });
    expect(await servedVersion(cache, '1')).toBe(14);

    fake.setDown(true);
    const bytes = model(15);
    const { status, body } = await upload({ model_name: 'outage', rmse: '3' }, { name: 'during.onnx', bytes });
    expect(status).toBe(202);
    expect(body).toMatchObject({
      mlflow_registered: false,
      mlflow_model_version: null,
      registration_status: 'pending_registration',
      s3_exported: false,
      promoted: false,
      model_path: `s3://${BUCKET()}/uploads/outage/${sha(bytes)}.onnx`,
    });
    expect(body.mlflow_error).toMatch(/MLflow is unavailable/);
    expect(await getObject(`uploads/outage/${sha(bytes)}.onnx`)).not.toBeNull();
    // Predictions keep the last exported model, and the sync function does nothing while MLflow is down.
    expect((await sync()).mlflow).toBe('unreachable');
    expect(await servedVersion(cache, '1')).toBe(14);

    fake.setDown(false);
    const report = await sync();
    expect(report.resumed).toBe(1);
    const [row] = (await rows('outage')).filter((r) => r.sha256 === sha(bytes));
    expect(row).toMatchObject({ status: 'registered', registry: 'mlflow', version: '2' });
    expect(
      Object.fromEntries(
        fakeRuns('outage')
          .find((r) => r.run_name === 'during.onnx')!
          .metrics.map((m) => [m.key, m.value]),
      ),
    ).toEqual({ rmse: 3 });
    // The promotion asked for at upload time happens now.
    expect(await servedVersion(cache, '2')).toBe(15);
    expect(fakeModel('outage')!.aliases.get('production')).toBe(2);
  });

  it('registers a file left pending when the same file is uploaded again', async () => {
    fake.setDown(true);
    const bytes = model(16);
    expect((await upload({ model_name: 'retry' }, { name: 'm.onnx', bytes })).status).toBe(202);
    fake.setDown(false);
    const again = await upload({ model_name: 'retry' }, { name: 'm.onnx', bytes });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({
      mlflow_registered: true,
      mlflow_model_version: '1',
      s3_exported: true,
      promoted: true,
    });
    expect(fakeModel('retry')!.versions).toHaveLength(1);
  });

  it('finds the version MLflow already made when a registration is retried after a crash', async () => {
    const bytes = model(19);
    const first = await upload({ model_name: 'crash', promote: 'false' }, { name: 'm.onnx', bytes });
    // The worker died after MLflow made the version and before PostgreSQL recorded it; its lease ran out.
    await query(
      `UPDATE model_files SET status = 'registering', version = NULL, registry = NULL, run_id = NULL, lease_until = now() - interval '1 second'
        WHERE model_name = 'crash'`,
    );
    expect((await sync()).resumed).toBe(1);
    const [row] = await rows('crash');
    expect(row).toMatchObject({ status: 'registered', version: '1', run_id: first.body.mlflow_run_id });
    expect(fakeModel('crash')!.versions).toHaveLength(1);
    expect(fakeRuns('crash')).toHaveLength(1);
  });

  it('stores without a version with register_in_mlflow=false, and versions the file when it comes again', async () => {
    const bytes = model(20);
    const kept = await upload({ model_name: 'unversioned', register_in_mlflow: 'false' }, { name: 'm.onnx', bytes });
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({
      registration_status: 'stored',
      mlflow_registered: false,
      model_version: null,
      s3_exported: false,
      promoted: false,
    });
    expect(kept.body.mlflow_error).toMatch(/register_in_mlflow=false/);
    expect(fakeModel('unversioned')).toBeUndefined();

    const versioned = await upload({ model_name: 'unversioned' }, { name: 'm.onnx', bytes });
    expect(versioned.body).toMatchObject({
      registration_status: 'registered',
      mlflow_model_version: '1',
      promoted: true,
    });

    const conflicting = await upload(
      { model_name: 'unversioned', register_in_mlflow: 'false', promote: 'true' },
      { name: 'm.onnx', bytes },
    );
    expect(conflicting.status).toBe(400);
    expect(conflicting.body.detail).toMatch(/promote=true needs register_in_mlflow=true/);
  });

  it('keeps a model registered but not serving with promote=false', async () => {
    await upload({ model_name: 'quiet' }, { name: 'a.onnx', bytes: model(17) });
    const { body } = await upload({ model_name: 'quiet', promote: 'false' }, { name: 'b.onnx', bytes: model(18) });
    expect(body).toMatchObject({ mlflow_model_version: '2', s3_exported: true, promoted: false });
    expect((await readServingPointer('quiet'))!.pointer.version).toBe('1');
    expect(fakeModel('quiet')!.aliases.get('production')).toBe(1);
  });
});

describe('refusals store nothing', () => {
  const name = 'refused';
  const pickle = Buffer.concat([
    Buffer.from([0x80, 0x04, 0x95]),
    Buffer.from('sklearn.linear_model._base LinearRegression'),
  ]);

  it.each([
    [
      'a pickled scikit-learn model',
      { name: 'hubfolio_model.pkl', bytes: pickle },
      {},
      415,
      /pickle.*skl2onnx.*to_onnx\(model, X\[:1\]\.astype\(numpy\.float32\)\)/s,
    ],
    ['pickle bytes named .onnx', { name: 'model.onnx', bytes: pickle }, {}, 415, /Python pickle/],
    [
      'garbage',
      { name: 'model.onnx', bytes: Buffer.from('this is not a model at all, just some text') },
      {},
      422,
      /not a valid ONNX model/,
    ],
    ['a truncated model', { name: 'model.onnx', bytes: model(21).subarray(0, 60) }, {}, 422, /ONNX/],
    [
      'a model with 5 features',
      { name: 'model.onnx', bytes: buildLinearRegressor({ coefficients: [1, 2, 3, 4, 5], intercept: 0 }) },
      {},
      422,
      /5 features.*take 8/,
    ],
    [
      'a file over the limit',
      { name: 'model.onnx', bytes: Buffer.alloc(MAX_UPLOAD_BYTES + 1, 1) },
      {},
      413,
      /\/model\/upload-url.*curl -T/,
    ],
    [
      'a body far over the limit',
      { name: 'model.onnx', bytes: Buffer.alloc(MAX_UPLOAD_BYTES * 1.5, 1) },
      {},
      413,
      /\/model\/upload-url/,
    ],
    [
      'a model that overflows to Infinity inside the documented ranges',
      {
        name: 'model.onnx',
        bytes: buildLinearRegressor({ coefficients: [3e38, 1, 1, 1, 1, 1, 1, 1], intercept: 0, features: FEATURES }),
      },
      {},
      422,
      /returns Infinity for the portfolio projetos_min=100000/,
    ],
    ['a bad model_name', { name: 'model.onnx', bytes: model(22) }, { model_name: 'bad name/../x' }, 400, /model_name/],
    [
      'a NUL in the model name',
      { name: 'model.onnx', bytes: model(24) },
      { model_name: 'hub\u0000folio' },
      400,
      /model_name/,
    ],
    [
      'a NUL in the file name',
      { name: 'mo\u0000del.onnx', bytes: model(25) },
      {},
      400,
      /Invalid file name "mo\\u0000del\.onnx": must be a plain file name/,
    ],
    ['a control character in the file name', { name: 'model\u0007.onnx', bytes: model(26) }, {}, 400, /file name/],
    ['a metric that is not a number', { name: 'model.onnx', bytes: model(23) }, { r2_score: 'high' }, 400, /r2_score/],
  ])('refuses %s', async (_, file, fields, status, message) => {
    const runsBefore = fake.state.runs.size;
    const { status: actual, body } = await upload({ model_name: name, ...fields }, file);
    expect(actual).toBe(status);
    expect(body.detail).toMatch(message);
    expect(await keysUnder('uploads/')).not.toContainEqual(expect.stringContaining(sha(file.bytes)));
    expect(await keysUnder(`models/${name}/`)).toEqual([]);
    expect(await query('SELECT 1 FROM model_files WHERE sha256 = $1', [sha(file.bytes)])).toEqual([]);
    expect(fake.state.runs.size).toBe(runsBefore);
    expect(fakeModel(name)).toBeUndefined();
  });

  it('refuses a form without a file, and a body that is not multipart', async () => {
    const missing = await upload({ model_name: name });
    expect(missing.status).toBe(400);
    expect(missing.body.detail).toMatch(/curl -F file=@model.onnx/);
    const json = await postJson(uploadHandler, '/model/upload', { model_name: name });
    expect(json.status).toBe(415);
    expect(json.body.detail).toMatch(/multipart\/form-data/);
  });
});

describe('promotion', () => {
  it('POST /model/promote moves alias and stage, archives the previous version, and predict containers follow', async () => {
    const cache = new ServingModelCache('promo', 100);
    await upload({ model_name: 'promo' }, { name: 'v1.onnx', bytes: model(31) });
    await upload({ model_name: 'promo', promote: 'false' }, { name: 'v2.onnx', bytes: model(32) });
    expect(await servedVersion(cache, '1')).toBe(31);

    const { status, body } = await postJson(promoteHandler, '/model/promote', { model_name: 'promo', version: '2' });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      message: 'Modelo promovido com sucesso!',
      version: '2',
      alias: 'production',
      stage: 'Production',
      serving: true,
    });
    expect(body.s3_key).toMatch(/^models\/promo\/v2\//);
    const registered = fakeModel('promo')!;
    expect(registered.aliases.get('production')).toBe(2);
    expect(registered.versions.map((v) => v.current_stage)).toEqual(['Archived', 'Production']);
    expect(await servedVersion(cache, '2')).toBe(32);

    // Another alias does not change what serves.
    const staging = await postJson(promoteHandler, '/model/promote', {
      model_name: 'promo',
      version: '1',
      alias: 'challenger',
    });
    expect(staging.body).toMatchObject({ serving: false, alias: 'challenger', stage: null });
    expect((await readServingPointer('promo'))!.pointer.version).toBe('2');
  });

  it('answers 404 when promoting a version that does not exist', async () => {
    const { status, body } = await postJson(promoteHandler, '/model/promote', { model_name: 'promo', version: '9' });
    expect(status).toBe(404);
    expect(body.detail).toMatch(/no version 9/);
  });

  it('follows a promotion made in MLflow’s UI (alias, then stage) within one sync run', async () => {
    const cache = new ServingModelCache('ui', 100);
    await upload({ model_name: 'ui' }, { name: 'v1.onnx', bytes: model(41) });
    await upload({ model_name: 'ui', promote: 'false' }, { name: 'v2.onnx', bytes: model(42) });
    await upload({ model_name: 'ui', promote: 'false' }, { name: 'v3.onnx', bytes: model(43) });
    await sync();
    expect(await servedVersion(cache, '1')).toBe(41);

    // In the UI: the production alias moves to version 2.
    fakeModel('ui')!.aliases.set('production', 2);
    const report = await sync();
    expect(report.models).toContainEqual({ model_name: 'ui', action: 'published', version: '2' });
    expect(await servedVersion(cache, '2')).toBe(42);
    expect(await keysUnder('models/ui/v2/')).toHaveLength(1);

    // Nothing moved: nothing happens (the pointer is not rewritten).
    const etag = (await readServingPointer('ui'))!.etag;
    expect((await sync()).models).toContainEqual({ model_name: 'ui', action: 'unchanged' });
    expect((await readServingPointer('ui'))!.etag).toBe(etag);

    // In the UI: version 3 goes to the Production stage (the alias still names 2).
    for (const v of fakeModel('ui')!.versions)
      v.current_stage =
        v.version === 3 ? 'Production' : v.current_stage === 'Production' ? 'Archived' : v.current_stage;
    await sync();
    expect(await servedVersion(cache, '3')).toBe(43);
  });

  it('asks for a second look 30 s after each run, without waiting for it, and the second look publishes a promotion made in between', async () => {
    await sqsClient(testEndpoints()).send(new PurgeQueueCommand({ QueueUrl: process.env.MODEL_SYNC_QUEUE_URL }));
    expect((await sync()).models).toContainEqual({ model_name: 'ui', action: 'unchanged' });
    expect(await delayedSyncMessages()).toBe(1);

    fakeModel('ui')!.aliases.set('production', 1);
    expect((await secondLook()).models).toContainEqual({ model_name: 'ui', action: 'published', version: '1' });
    // The second look asks for no third one.
    expect(await delayedSyncMessages()).toBe(1);

    // Back to version 3 for the next test.
    fakeModel('ui')!.aliases.set('production', 3);
    expect((await sync()).models).toContainEqual({ model_name: 'ui', action: 'published', version: '3' });
  });

  it('keeps serving the last exported model when MLflow is down', async () => {
    const cache = new ServingModelCache('ui', 100);
    fake.setDown(true);
    await sqsClient(testEndpoints()).send(new PurgeQueueCommand({ QueueUrl: process.env.MODEL_SYNC_QUEUE_URL }));
    expect((await sync()).mlflow).toBe('unreachable');
    // Nothing to look at twice: the next run tries again.
    expect(await delayedSyncMessages()).toBe(0);
    expect(await servedVersion(cache, '3')).toBe(43);
    const { status, body } = await info('ui');
    expect(status).toBe(200);
    expect(body).toMatchObject({ model_loaded: true, serving: { version: '3' }, mlflow: null });
    expect(body.mlflow_error).toMatch(/MLflow is unavailable/);
  });
});

describe('POST /model/export-to-s3', () => {
  it('exports by stage as the seed, and reuses the export of the same file', async () => {
    await upload({ model_name: 'exp', export_to_s3: 'false', promote: 'false' }, { name: 'v1.onnx', bytes: model(51) });
    expect(await keysUnder('models/exp/')).toEqual([]);
    await postJson(promoteHandler, '/model/promote', { model_name: 'exp', version: '1', stage: 'Production' });

    const { status, body } = await postJson(exportHandler, '/model/export-to-s3', {
      model_name: 'exp',
      stage: 'Production',
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      message: 'Modelo exportado para S3 com sucesso!',
      model_name: 'exp',
      stage: 'Production',
      version: '1',
    });
    expect(body.s3_key).toMatch(/^models\/exp\/v1\/exp_v1_\d{8}_\d{6}\.onnx$/);
    const again = await postJson(exportHandler, '/model/export-to-s3', { model_name: 'exp', version: 1 });
    expect(again.body).toMatchObject({ s3_key: body.s3_key, already_exported: true });
    const head = await s3().send(new HeadObjectCommand({ Bucket: BUCKET(), Key: body.s3_key }));
    expect(head.Metadata).toMatchObject({ version: '1', sha256: sha(model(51)) });
  });

  it.each([
    [{ model_name: 'nobody', stage: 'Production' }, 404, /not registered in MLflow/],
    [{ model_name: 'exp', version: '7' }, 404, /no version 7/],
    [{ model_name: 'exp', stage: 'Staging' }, 404, /no version in stage Staging/],
    [{ model_name: 'exp', alias: 'champion' }, 404, /no alias 'champion'/],
    [{ model_name: 'exp', stage: 'Production', version: '1' }, 400, /exactly one of/],
    [{ model_name: 'exp', stage: 'Live' }, 400, /None, Staging, Production, Archived/],
  ])('answers %j with %i', async (request, status, message) => {
    const { status: actual, body } = await postJson(exportHandler, '/model/export-to-s3', request);
    expect(actual).toBe(status);
    expect(body.detail).toMatch(message);
  });
});

describe('S3 drop folder', () => {
  it('registers a file whose key has spaces and accents, with metrics from its metadata, once', async () => {
    const bytes = model(61);
    const key = 'incoming/drop/Modelo ótimo de março.onnx';
    const etag = await putIncoming(key, bytes, { 'r2-score': '0.91', rmse: '4.5', mae: '3.25' });
    const [result] = await ingest(key, bytes.byteLength, etag);
    expect(result).toMatchObject({ key, outcome: 'registered', model_name: 'drop', version: '1' });

    const [run] = fakeRuns('drop');
    expect(run!.run_name).toBe('Modelo ótimo de março.onnx');
    expect(Object.fromEntries(run!.metrics.map((m) => [m.key, m.value]))).toEqual({
      r2_score: 0.91,
      rmse: 4.5,
      mae: 3.25,
    });
    expect(run!.params.get('source')).toBe(`s3://${BUCKET()}/${key}`);
    expect(await keysUnder('models/drop/v1/')).toHaveLength(1);
    expect((await readServingPointer('drop'))!.pointer.version).toBe('1');

    // S3 delivers the event again: nothing new.
    const event = dropEvent(key, bytes.byteLength, etag);
    await deliver(event);
    const [repeat] = await deliver(event);
    expect(repeat).toMatchObject({ outcome: 'registered', version: '1' });
    expect(fakeModel('drop')!.versions).toHaveLength(1);
    expect(fakeRuns('drop')).toHaveLength(1);
    expect(await keysUnder('models/drop/')).toHaveLength(1);
  });

  it('reads metrics from a sidecar <file>.json and does not register the sidecar', async () => {
    const bytes = model(62);
    await putIncoming('incoming/drop/sidecar.onnx.json', JSON.stringify({ r2_score: 0.77, mae: 1.5, promote: false }));
    const [sidecar] = await ingest('incoming/drop/sidecar.onnx.json');
    expect(sidecar).toMatchObject({ outcome: 'skipped' });
    const etag = await putIncoming('incoming/drop/sidecar.onnx', bytes);
    const [result] = await ingest('incoming/drop/sidecar.onnx', bytes.byteLength, etag);
    expect(result).toMatchObject({ outcome: 'registered', version: '2' });
    const run = fakeRuns('drop').find((r) => r.run_name === 'sidecar.onnx')!;
    expect(Object.fromEntries(run.metrics.map((m) => [m.key, m.value]))).toEqual({ r2_score: 0.77, mae: 1.5 });
    expect((await readServingPointer('drop'))!.pointer.version).toBe('1');
  });

  it('records a refused file and why for GET /model/info, registers nothing, and answers a repeated event the same', async () => {
    const key = 'incoming/drop/old model.pkl';
    const etag = await putIncoming(key, Buffer.from([0x80, 0x04, 0x95, 0x01]));
    const runsBefore = fake.state.runs.size;
    const event = dropEvent(key, 4, etag);
    const [result] = await deliver(event);
    expect(result).toMatchObject({ outcome: 'rejected', reason: expect.stringMatching(/skl2onnx/) });
    expect((await drops('drop'))[0]).toMatchObject({
      key,
      outcome: 'rejected',
      status: 415,
      reason: expect.stringMatching(/Python pickle.*skl2onnx/),
      version: null,
    });

    const [again] = await deliver(event);
    expect(again).toEqual(result);
    expect(fake.state.runs.size).toBe(runsBefore);
    expect(await query('SELECT 1 FROM model_files WHERE source = $1', [`s3://${BUCKET()}/${key}`])).toEqual([]);
    expect(await keysUnder('rejected/')).toEqual([]);
  });

  it('rejects a dropped file whose name has a control character, registering nothing', async () => {
    const key = 'incoming/drop/bell\u0007.onnx';
    const bytes = model(63);
    const [result] = await ingest(key, bytes.byteLength, await putIncoming(key, bytes));
    expect(result).toMatchObject({ outcome: 'rejected', reason: expect.stringMatching(/Invalid file name/) });
    expect(await query('SELECT 1 FROM model_files WHERE sha256 = $1', [sha(bytes)])).toEqual([]);
    expect(await keysUnder('uploads/drop/')).not.toContainEqual(expect.stringContaining(sha(bytes)));
    expect((await drops('drop'))[0]).toMatchObject({ key, outcome: 'rejected', status: 400 });
  });

  it('rejects a model of the wrong width with a 422 that GET /model/info shows', async () => {
    const key = 'incoming/drop/narrow.onnx';
    const bytes = buildLinearRegressor({ coefficients: [1, 2, 3], intercept: 0 });
    const [result] = await ingest(key, bytes.byteLength, await putIncoming(key, bytes));
    expect(result).toMatchObject({ outcome: 'rejected', reason: expect.stringMatching(/3 features/) });
    expect((await drops('drop'))[0]).toMatchObject({ key, status: 422, reason: expect.stringMatching(/3 features/) });
  });

  it('refuses a file over the model size limit without reading it, and GET /model/info says so', async () => {
    const key = 'incoming/drop/huge.onnx';
    const etag = await putIncoming(key, model(64));
    // The event's size is what counts: S3 announces it before anything is read.
    const [result] = await ingest(key, MAX_MODEL_BYTES + 1, etag);
    expect(result).toMatchObject({ outcome: 'rejected', reason: expect.stringMatching(/at most 104857600 bytes/) });
    expect((await drops('drop'))[0]).toMatchObject({ key, outcome: 'rejected', status: 413 });
    expect(await query('SELECT 1 FROM model_files WHERE sha256 = $1', [sha(model(64))])).toEqual([]);
  });

  it('answers a file dropped again with its version, as the same upload again', async () => {
    const first = model(65);
    const key = 'incoming/redrop/model.onnx';
    const [v1] = await ingest(key, first.byteLength, await putIncoming(key, first));
    expect(v1).toMatchObject({ outcome: 'registered', version: '1' });
    await upload({ model_name: 'redrop' }, { name: 'other.onnx', bytes: model(66) });
    expect((await readServingPointer('redrop'))!.pointer.version).toBe('2');

    // The same bytes put again at the same key: a new event, not a repeated one.
    const [again] = await ingest(key, first.byteLength, await putIncoming(key, first));
    const reupload = await upload({ model_name: 'redrop' }, { name: 'model.onnx', bytes: first });
    expect(reupload.body).toMatchObject({ model_version: '1', already_registered: true, promoted: true });
    expect(again).toMatchObject({ outcome: 'registered', version: '1' });
    expect((await drops('redrop'))[0]).toMatchObject({ key, outcome: 'registered', status: 200, version: '1' });
    expect(fakeModel('redrop')!.versions).toHaveLength(2);
  });

  it('makes a file dropped again serve, as an upload of it again would', async () => {
    // Like the test above, without the upload in between: the drop alone rolls back.
    await upload({ model_name: 'redrop' }, { name: 'other.onnx', bytes: model(66) });
    expect((await readServingPointer('redrop'))!.pointer.version).toBe('2');
    const key = 'incoming/redrop/model.onnx';
    await ingest(key, model(65).byteLength, await putIncoming(key, model(65)));
    expect((await readServingPointer('redrop'))!.pointer.version).toBe('1');
  });
});

describe('POST /model/upload-url', () => {
  it('presigns a PUT that a plain HTTP client can use, and the drop folder registers the file with the signed metrics', async () => {
    const bytes = model(71);
    const { status, body } = await postJson(uploadUrlHandler, '/model/upload-url', {
      model_name: 'large',
      filename: 'Modelo grande é.onnx',
      file_size: bytes.byteLength,
      r2_score: 0.9,
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      key: 'incoming/large/Modelo grande é.onnx',
      expires_in: 900,
      method: 'PUT',
      file_size: bytes.byteLength,
    });

    // What `curl -T model.onnx "$url"` does: a PUT of the bytes, no extra headers.
    const put = await fetch(body.url, { method: 'PUT', body: bytes });
    expect(put.status).toBe(200);
    const etag = put.headers.get('etag')!.replace(/"/g, '');
    const [result] = await ingest(body.key, bytes.byteLength, etag);
    expect(result).toMatchObject({ outcome: 'registered', model_name: 'large', version: '1' });
    const [run] = fakeRuns('large');
    expect(Object.fromEntries(run!.metrics.map((m) => [m.key, m.value]))).toEqual({ r2_score: 0.9 });
  });

  it('signs the size: the URL stores no file of another size, at another key or with other metadata', async () => {
    const bytes = model(72);
    const { body } = await postJson(uploadUrlHandler, '/model/upload-url', {
      model_name: 'large',
      filename: 'sized.onnx',
      file_size: bytes.byteLength,
      promote: false,
    });
    const put = (url: string, content: Uint8Array) => fetch(url, { method: 'PUT', body: content });
    expect((await put(body.url, new Uint8Array(bytes.byteLength + 1024))).status).toBe(403);
    expect(
      (await put(body.url.replace('/incoming/large/sized.onnx', '/serving/hubfolio-model.json'), bytes)).status,
    ).toBe(403);
    expect((await put(body.url.replace('x-amz-meta-promote=false', 'x-amz-meta-promote=true'), bytes)).status).toBe(
      403,
    );
    // Nor does the embedded S3 take a request signed by no one.
    expect(
      (await put(`${process.env.AWS_ENDPOINT_URL_S3}/${process.env.MODEL_BUCKET}/${body.key}`, bytes)).status,
    ).toBe(403);
    expect(await getObject(body.key)).toBeNull();
    expect((await fetch(body.url, { method: 'PUT', body: bytes })).status).toBe(200);
  });

  it.each([
    [{ model_name: 'large', filename: 'model.pkl', file_size: 10 }, 415, /skl2onnx/],
    [{ model_name: 'large', filename: 'model.txt', file_size: 10 }, 400, /must end in .onnx/],
    [{ model_name: 'large', filename: '../model.onnx', file_size: 10 }, 400, /plain file name/],
    [{ model_name: 'large', filename: 'mo\u0000del.onnx', file_size: 10 }, 400, /plain file name/],
    [{ model_name: 'lar\u0000ge', filename: 'model.onnx', file_size: 10 }, 400, /model_name/],
    [{ model_name: 'bad name', filename: 'model.onnx', file_size: 10 }, 400, /model_name/],
    [{ model_name: 'large', filename: 'model.onnx' }, 400, /file_size: is required: the file's size in bytes/],
    [{ model_name: 'large', filename: 'model.onnx', file_size: 200 * 1024 * 1024 }, 400, /file_size: must be at most/],
  ])('refuses %j with %i', async (request, status, message) => {
    const { status: actual, body } = await postJson(uploadUrlHandler, '/model/upload-url', request);
    expect(actual).toBe(status);
    expect(body.detail).toMatch(message);
  });
});
