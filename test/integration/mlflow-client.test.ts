import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MlflowClient } from '#clients/mlflow/client';
import type { Run } from '#clients/mlflow/entities';
import { MlflowError, MlflowUnavailableError } from '#clients/mlflow/errors';
import { startFakeMlflow, type FakeMlflow } from '../fakes/mlflow';
import { deleteAlias, setModelVersionTag } from '../helpers/mlflow';

let fake: FakeMlflow;
let mlflow: MlflowClient;

beforeEach(async () => {
  fake = await startFakeMlflow();
  mlflow = new MlflowClient({ baseUrl: fake.url, timeoutMs: 1_000, retryDelayMs: 5 });
});

afterEach(async () => {
  await fake.close();
});

const MODEL = 'hubfolio-model';
const onnxBytes = Buffer.from([0x08, 0x07, 0x12, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0xff]);

async function newRun(): Promise<Run> {
  const experimentId = await mlflow.getOrCreateExperiment('hubfolio-models');
  return mlflow.createRun({ experimentId, runName: 'upload' });
}

/** Registers a model version from a fresh run's logged ONNX model; returns the run and the version. */
async function registerVersion(tags: Record<string, string> = {}) {
  const run = await newRun();
  const source = await mlflow.logOnnxModel(run, onnxBytes, { fileName: 'model.onnx' });
  await mlflow.getOrCreateRegisteredModel(MODEL);
  const version = await mlflow.createModelVersion({ name: MODEL, source, runId: run.info.run_id, tags });
  return { run, version };
}

/** The `flavors:` block of an MLmodel file: flavor → its scalar keys. */
function mlmodelFlavors(text: string): Record<string, Record<string, string>> {
  const flavors: Record<string, Record<string, string>> = {};
  let inFlavors = false;
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (/^\S/.test(line)) {
      inFlavors = line === 'flavors:';
      continue;
    }
    const flavor = /^ {2}(\w+):$/.exec(line);
    const entry = /^ {4}(\w+): (.+)$/.exec(line);
    if (inFlavors && flavor?.[1]) current = flavors[flavor[1]] = {};
    else if (inFlavors && entry?.[1] && entry[2] && current) current[entry[1]] = entry[2];
  }
  return flavors;
}

const requestsTo = (path: string) => fake.state.requests.filter((r) => r.url.split('?')[0]?.endsWith(path));

describe('experiments and runs', () => {
  it('returns the same experiment id when get-or-create is called twice', async () => {
    const first = await mlflow.getOrCreateExperiment('hubfolio-models');
    const second = await mlflow.getOrCreateExperiment('hubfolio-models');
    expect(second).toBe(first);
    expect([...fake.state.experiments.values()].filter((e) => e.name === 'hubfolio-models')).toHaveLength(1);
  });

  it('creates one experiment when two get-or-creates race', async () => {
    const [a, b] = await Promise.all([mlflow.getOrCreateExperiment('race'), mlflow.getOrCreateExperiment('race')]);
    expect(a).toBe(b);
    expect([...fake.state.experiments.values()].filter((e) => e.name === 'race')).toHaveLength(1);
  });

  it('shows logged metrics and params in getRun', async () => {
    const run = await newRun();
    await mlflow.logBatch(run.info.run_id, {
      metrics: { r2_score: 0.92, rmse: 3.0 },
      params: { file_name: 'm.onnx' },
      tags: { source: 'upload' },
    });
    await mlflow.finishRun(run.info.run_id);
    const logged = await mlflow.getRun(run.info.run_id);
    expect(logged.data.metrics).toEqual({ r2_score: 0.92, rmse: 3 });
    expect(logged.data.params).toEqual({ file_name: 'm.onnx' });
    expect(logged.data.tags).toMatchObject({ source: 'upload', 'mlflow.runName': 'upload' });
    expect(logged.info.status).toBe('FINISHED');
  });

  it('rejects re-logging a param with another value with MLflow’s 400', async () => {
    const run = await newRun();
    await mlflow.logBatch(run.info.run_id, { params: { model_type: 'onnx' } });
    const error = await mlflow
      .logBatch(run.info.run_id, { params: { model_type: 'sklearn' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlflowError);
    expect(error).toMatchObject({ status: 400, errorCode: 'INVALID_PARAMETER_VALUE' });
  });
});

describe('artifacts', () => {
  it('downloads exactly the bytes it uploaded', async () => {
    const run = await newRun();
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256));
    await mlflow.uploadArtifact(run.info.artifact_uri, 'data/sample.bin', bytes);
    const downloaded = await mlflow.downloadArtifact(`${run.info.artifact_uri}/data/sample.bin`);
    expect(Buffer.compare(downloaded, bytes)).toBe(0);
  });

  it('fails on a missing artifact without retrying MLflow’s 500', async () => {
    const run = await newRun();
    const error = await mlflow.downloadArtifact(`${run.info.artifact_uri}/missing.onnx`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlflowError);
    expect(error).toMatchObject({ status: 500, errorCode: 'INTERNAL_ERROR' });
    expect(requestsTo('/missing.onnx')).toHaveLength(1);
  });

  it('logs an ONNX model as model.onnx plus an MLmodel of the onnx flavor', async () => {
    const run = await newRun();
    const folder = await mlflow.logOnnxModel(run, onnxBytes, { fileName: 'hubfolio.onnx' });
    expect(folder).toBe(`${run.info.artifact_uri}/model`);
    const files = (await mlflow.listArtifacts(folder)).map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['model.onnx', 'MLmodel']));
    expect(Buffer.compare(await mlflow.downloadArtifact(`${folder}/model.onnx`), onnxBytes)).toBe(0);
    const mlmodel = (await mlflow.downloadArtifact(`${folder}/MLmodel`)).toString('utf8');
    const flavors = mlmodelFlavors(mlmodel);
    expect(flavors.onnx).toMatchObject({ data: 'model.onnx', code: 'null' });
    expect(flavors.python_function).toMatchObject({ loader_module: 'mlflow.onnx', data: 'model.onnx' });
    expect(mlmodel).toContain(`run_id: ${run.info.run_id}`);
  });
});

describe('model registry', () => {
  it('creates one registered model when two get-or-creates race', async () => {
    const [a, b] = await Promise.all([
      mlflow.getOrCreateRegisteredModel(MODEL),
      mlflow.getOrCreateRegisteredModel(MODEL),
    ]);
    expect(a.name).toBe(MODEL);
    expect(b.name).toBe(MODEL);
    expect(fake.state.registeredModels.size).toBe(1);
  });

  it('returns null for a registered model or version that does not exist', async () => {
    expect(await mlflow.getRegisteredModel('nope')).toBeNull();
    await mlflow.getOrCreateRegisteredModel(MODEL);
    expect(await mlflow.getModelVersion(MODEL, 7)).toBeNull();
  });

  it('gives versions as strings', async () => {
    const first = await registerVersion();
    const second = await registerVersion();
    expect(first.version.version).toBe('1');
    expect(second.version.version).toBe('2');
    expect((await mlflow.getModelVersion(MODEL, 2))?.version).toBe('2');
  });

  it('archives the previous Production version on a transition with archiveExisting', async () => {
    const { version: v1 } = await registerVersion();
    const { version: v2 } = await registerVersion();
    await mlflow.transitionStage(MODEL, v1.version, 'Production', true);
    const promoted = await mlflow.transitionStage(MODEL, v2.version, 'Production', true);
    expect(promoted.current_stage).toBe('Production');
    expect((await mlflow.getModelVersion(MODEL, v1.version))?.current_stage).toBe('Archived');
    expect((await mlflow.getLatestVersions(MODEL, ['Production'])).map((v) => v.version)).toEqual(['2']);
  });

  it('returns [] from getLatestVersions when no version is in the stage', async () => {
    await registerVersion();
    expect(await mlflow.getLatestVersions(MODEL, ['Production'])).toEqual([]);
  });

  it('reads a version by alias, and null for a missing alias', async () => {
    const { version } = await registerVersion();
    await mlflow.setAlias(MODEL, 'production', version.version);
    const aliased = await mlflow.getVersionByAlias(MODEL, 'production');
    expect(aliased?.version).toBe('1');
    expect(aliased?.aliases).toEqual(['production']);
    expect((await mlflow.getRegisteredModel(MODEL))?.aliases).toEqual({ production: '1' });
    expect(await mlflow.getVersionByAlias(MODEL, 'staging')).toBeNull();
  });

  it('reads null for an alias after deleting it', async () => {
    const { version } = await registerVersion();
    await mlflow.setAlias(MODEL, 'production', version.version);
    await deleteAlias(fake.url, MODEL, 'production');
    expect(await mlflow.getVersionByAlias(MODEL, 'production')).toBeNull();
  });

  it('finds the version registered from a file by its tag', async () => {
    await registerVersion({ sha256: 'aaa' });
    const { version } = await registerVersion({ sha256: 'bbb' });
    await setModelVersionTag(fake.url, MODEL, version.version, 'exported', 'true');
    const found = await mlflow.searchModelVersions({ name: MODEL, tags: { sha256: 'bbb' } });
    expect(found.map((v) => [v.version, v.tags.exported])).toEqual([['2', 'true']]);
  });

  it('finds the versions of a run', async () => {
    const { run, version } = await registerVersion();
    await registerVersion();
    const found = await mlflow.searchModelVersions({ runId: run.info.run_id });
    expect(found.map((v) => v.version)).toEqual([version.version]);
  });

  it('downloads a version registered with a runs:/ source by resolving it against the run', async () => {
    const run = await newRun();
    await mlflow.logOnnxModel(run, onnxBytes, { fileName: 'model.onnx' });
    await mlflow.getOrCreateRegisteredModel(MODEL);
    const version = await mlflow.createModelVersion({
      name: MODEL,
      source: `runs:/${run.info.run_id}/model`,
      runId: run.info.run_id,
    });
    expect(await mlflow.getDownloadUri(MODEL, version.version)).toBe(`runs:/${run.info.run_id}/model`);
    expect(Buffer.compare(await mlflow.downloadModelVersion(MODEL, version.version), onnxBytes)).toBe(0);
  });

  it('downloads a version whose source is the .onnx file itself', async () => {
    const run = await newRun();
    await mlflow.uploadArtifact(run.info.artifact_uri, 'exported/hubfolio.onnx', onnxBytes);
    await mlflow.getOrCreateRegisteredModel(MODEL);
    const version = await mlflow.createModelVersion({
      name: MODEL,
      source: `${run.info.artifact_uri}/exported/hubfolio.onnx`,
    });
    expect(Buffer.compare(await mlflow.downloadModelVersion(MODEL, version.version), onnxBytes)).toBe(0);
  });
});

describe('failures', () => {
  it('explains an HTML 404 by pointing at MLFLOW_TRACKING_URI', async () => {
    const misconfigured = new MlflowClient({ baseUrl: `${fake.url}/mlflow`, retryDelayMs: 5 });
    const error = await misconfigured.getRegisteredModel(MODEL).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlflowError);
    expect((error as Error).message).toBe(
      "MLflow answered HTML 404 for GET /mlflow/api/2.0/mlflow/registered-models/get: is MLFLOW_TRACKING_URI the tracking server's root URL?",
    );
  });

  it('retries a transient 503 and then succeeds', async () => {
    fake.failNext(2, 503);
    expect(await mlflow.getOrCreateExperiment('hubfolio-models')).toBe('1');
    expect(requestsTo('/experiments/get-by-name').map((r) => r.status)).toEqual([503, 503, 404]);
  });

  it('does not repeat a model version create that may have been processed (502)', async () => {
    const run = await newRun();
    await mlflow.getOrCreateRegisteredModel(MODEL);
    fake.failNext(1, 502);
    const error = await mlflow
      .createModelVersion({ name: MODEL, source: `${run.info.artifact_uri}/model`, runId: run.info.run_id })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlflowUnavailableError);
    expect(requestsTo('/model-versions/create')).toHaveLength(1);
  });

  it('gives up on a server that does not answer within the timeout', async () => {
    const impatient = new MlflowClient({ baseUrl: fake.url, timeoutMs: 100, retries: 1, retryDelayMs: 5 });
    fake.delayNext(2, 1_000);
    const error = await impatient.getRegisteredModel(MODEL).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlflowUnavailableError);
    expect((error as Error).message).toContain('no answer within 100 ms');
  });

  it('throws MlflowUnavailableError quickly when MLflow is down', async () => {
    fake.setDown(true);
    const started = Date.now();
    const error = await mlflow.getOrCreateExperiment('hubfolio-models').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlflowUnavailableError);
    expect(error).toMatchObject({ statusCode: 503, expose: true });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("keeps the request, and so a model file's bytes, out of the error a failed upload gives (and so out of the logs)", async () => {
    const run = await newRun();
    fake.setDown(true);
    const bytes = Buffer.from('model-bytes-that-must-not-be-logged');
    const error = await mlflow
      .uploadArtifact(run.info.artifact_uri, 'model/model.onnx', bytes)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MlflowUnavailableError);
    const cause = (error as Error).cause as Record<string, unknown>;
    expect(cause).toBeInstanceOf(Error);
    expect(Object.keys(cause).sort()).toEqual(['code', 'name']);
    expect(JSON.stringify(Object.getOwnPropertyNames(cause).map((k) => cause[k]))).not.toContain('model-bytes');
  });

  it('pings true when up and false when down', async () => {
    expect(await mlflow.ping()).toBe(true);
    fake.setDown(true);
    expect(await mlflow.ping()).toBe(false);
  });
});

describe('the fake answers as the contract says', () => {
  const post = (path: string, body: unknown, contentType = 'application/json') =>
    fetch(`${fake.url}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': contentType },
      body: JSON.stringify(body),
    });

  it('rejects a POST that is not application/json', async () => {
    const response = await post('/api/2.0/mlflow/experiments/create', { name: 'x' }, 'text/plain');
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error_code: 'INVALID_PARAMETER_VALUE',
      message: "Bad Request. Content-Type must be one of ['application/json'].",
    });
  });

  it('rejects a numeric version and answers {} when no latest version matches', async () => {
    await registerVersion();
    const numeric = await post('/api/2.0/mlflow/model-versions/transition-stage', {
      name: MODEL,
      version: 1,
      stage: 'Production',
      archive_existing_versions: false,
    });
    expect(numeric.status).toBe(400);
    expect(await numeric.json()).toMatchObject({ error_code: 'INVALID_PARAMETER_VALUE' });
    const latest = await post('/api/2.0/mlflow/registered-models/get-latest-versions', {
      name: MODEL,
      stages: ['Production'],
    });
    expect(await latest.json()).toEqual({});
  });

  it('answers HTML 405 to a wrong method and text OK to /health', async () => {
    const wrongMethod = await fetch(`${fake.url}/api/2.0/mlflow/runs/log-batch`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('content-type')).toContain('text/html');
    const health = await fetch(`${fake.url}/health`);
    expect([health.status, await health.text()]).toEqual([200, 'OK']);
  });
});
