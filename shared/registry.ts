import axios, { type AxiosInstance } from 'axios';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { config } from '#shared/config';
import { BadRequestError, HttpError, redactedCause, ServiceUnavailableError } from '#shared/errors';

/**
 * MLflow tracking server client over its REST API (../shared/contracts/mlflow-rest.md): experiments,
 * runs, artifacts through the server's artifact proxy, and the model registry.
 *
 * Transient failures are retried a bounded number of times with backoff, but only when a retry cannot
 * duplicate anything: creates that are not idempotent (runs, model versions) are retried only when the
 * request provably never reached MLflow (connection refused, 503). Experiment and registered model
 * creation are race-safe get-or-creates instead (MLflow answers 400 RESOURCE_ALREADY_EXISTS to the loser).
 */

const API = '/api/2.0/mlflow';
const ARTIFACTS_API = '/api/2.0/mlflow-artifacts/artifacts';

// ---------------------------------------------------------------------------------------------
// Entities (normalised: omitted repeated fields become [] / {}, versions are strings, tags are records)

export type ModelStage = 'None' | 'Staging' | 'Production' | 'Archived';
export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  tags: Record<string, string>;
}

export interface RunInfo {
  run_id: string;
  experiment_id: string;
  run_name?: string;
  status: string;
  start_time?: number;
  end_time?: number;
  /** `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts` when the server proxies artifacts. */
  artifact_uri: string;
  lifecycle_stage: string;
}

export interface Run {
  info: RunInfo;
  data: {
    /** Latest value of each metric. */
    metrics: Record<string, number>;
    params: Record<string, string>;
    tags: Record<string, string>;
  };
}

export interface ModelVersion {
  name: string;
  version: string;
  creation_timestamp: number;
  last_updated_timestamp?: number;
  current_stage: ModelStage;
  description?: string;
  /** As registered, e.g. `mlflow-artifacts:/1/<run>/artifacts/model` or `runs:/<run>/model`. */
  source: string;
  run_id: string | null;
  status?: string;
  tags: Record<string, string>;
  aliases: string[];
}

export interface RegisteredModel {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp?: number;
  description?: string;
  /** The latest version in each stage. */
  latest_versions: ModelVersion[];
  tags: Record<string, string>;
  /** alias → version */
  aliases: Record<string, string>;
}

export interface ArtifactFile {
  /** Name relative to the listed folder. */
  path: string;
  is_dir: boolean;
  file_size?: number;
}

const int64 = z.coerce.number();
const versionString = z.union([z.string(), z.number()]).transform(String);
const tagRecord = z
  .array(z.object({ key: z.string(), value: z.string().optional() }))
  .optional()
  .transform((tags) => Object.fromEntries((tags ?? []).map((tag) => [tag.key, tag.value ?? ''])));

const experimentSchema: z.ZodType<Experiment> = z.object({
  experiment_id: z.string(),
  name: z.string(),
  artifact_location: z.string().default(''),
  lifecycle_stage: z.string().default('active'),
  tags: tagRecord,
});

const runInfoSchema: z.ZodType<RunInfo> = z.object({
  run_id: z.string(),
  experiment_id: z.string(),
  run_name: z.string().optional(),
  status: z.string(),
  start_time: int64.optional(),
  end_time: int64.optional(),
  artifact_uri: z.string(),
  lifecycle_stage: z.string().default('active'),
});

const runSchema: z.ZodType<Run> = z.object({
  info: runInfoSchema,
  data: z
    .object({
      metrics: z
        .array(z.object({ key: z.string(), value: z.number() }))
        .optional()
        .transform((metrics) => Object.fromEntries((metrics ?? []).map((m) => [m.key, m.value]))),
      params: tagRecord,
      tags: tagRecord,
    })
    .optional()
    .transform((data) => data ?? { metrics: {}, params: {}, tags: {} }),
});

const stageSchema = z.enum(['None', 'Staging', 'Production', 'Archived']);

const modelVersionSchema: z.ZodType<ModelVersion> = z.object({
  name: z.string(),
  version: versionString,
  creation_timestamp: int64,
  last_updated_timestamp: int64.optional(),
  current_stage: stageSchema.default('None'),
  description: z.string().optional(),
  source: z.string().default(''),
  run_id: z
    .string()
    .optional()
    .transform((runId) => runId || null),
  status: z.string().optional(),
  tags: tagRecord,
  aliases: z
    .array(z.string())
    .optional()
    .transform((aliases) => aliases ?? []),
});

const registeredModelSchema: z.ZodType<RegisteredModel> = z.object({
  name: z.string(),
  creation_timestamp: int64,
  last_updated_timestamp: int64.optional(),
  description: z.string().optional(),
  latest_versions: z
    .array(modelVersionSchema)
    .optional()
    .transform((versions) => versions ?? []),
  tags: tagRecord,
  aliases: z
    .array(z.object({ alias: z.string(), version: versionString }))
    .optional()
    .transform((aliases) => Object.fromEntries((aliases ?? []).map((a) => [a.alias, a.version]))),
});

const modelVersionList = z
  .array(modelVersionSchema)
  .optional()
  .transform((versions) => versions ?? []);
const errorBodySchema = z.object({ error_code: z.string().optional(), message: z.string().optional() });

// ---------------------------------------------------------------------------------------------
// Errors

interface MlflowErrorDetails {
  /** MLflow's HTTP status, when it answered. */
  status?: number;
  /** MLflow's `error_code`, when it answered JSON. */
  errorCode?: string;
  cause?: unknown;
}

/**
 * MLflow answered, but not with what was asked (4xx, an HTML page, an unreadable artifact).
 * Mapped to 502 for HTTP callers without exposing the message, which is written for the logs.
 */
export class MlflowError extends HttpError {
  readonly status: number | undefined;
  readonly errorCode: string | undefined;
  constructor(message: string, details: MlflowErrorDetails = {}) {
    super(502, message, { cause: details.cause });
    this.status = details.status;
    this.errorCode = details.errorCode;
  }
}

/** MLflow could not be reached or failed (network error, timeout, 5xx) after the retries. A 503 for HTTP callers. */
export class MlflowUnavailableError extends ServiceUnavailableError {
  readonly status: number | undefined;
  readonly errorCode: string | undefined;
  constructor(message: string, details: MlflowErrorDetails = {}) {
    super(message, { cause: details.cause });
    this.status = details.status;
    this.errorCode = details.errorCode;
  }
}

// ---------------------------------------------------------------------------------------------
// Transport

export interface MlflowClientOptions {
  /** The tracking server's root URL (MLFLOW_TRACKING_URI), e.g. http://mlflow:5000. */
  baseUrl: string;
  /** Per-request timeout for API calls. Default 5 s. */
  timeoutMs?: number;
  /** Per-request timeout for artifact uploads and downloads. Default 60 s. */
  artifactTimeoutMs?: number;
  /** Timeout of `ping()`. Default 2 s. */
  pingTimeoutMs?: number;
  /** Retries after the first attempt on a transient failure. Default 2. */
  retries?: number;
  /** First backoff delay; doubles on each retry, with jitter. Default 200 ms. */
  retryDelayMs?: number;
}

/**
 * - `idempotent`: repeating the request changes nothing (reads, artifact PUT, log-batch with fixed
 *   timestamps, updates); retried on any transient failure.
 * - `unsent-only`: a repeat could duplicate (runs/create, model-versions/create, the create half of a
 *   get-or-create); retried only when MLflow provably did not process it.
 */
type RetryPolicy = 'idempotent' | 'unsent-only';

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  /** What was asked, in words, for error messages: "get registered model 'x'". */
  what: string;
  retry: RetryPolicy;
  params?: Record<string, string | number>;
  json?: unknown;
  bytes?: Uint8Array;
  timeoutMs?: number;
  /** An artifact download: MLflow answers 500 INTERNAL_ERROR for a missing file, which is not transient. */
  download?: boolean;
}

interface Reply {
  status: number;
  contentType: string;
  body: Buffer;
}

/** Connection-level failures that happen before a request reaches the server. */
const UNSENT_NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const isJson = (reply: Reply) => reply.contentType.toLowerCase().includes('json');

/** `mlflow-artifacts:/1/<run>/artifacts/model` (optionally `mlflow-artifacts://host:port/...`) → `1/<run>/artifacts/model`. */
function proxyPath(uri: string): string | undefined {
  const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/*(.*)$/.exec(uri);
  return match?.[1]?.replace(/\/+$/, '');
}

const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

/** A string literal for an MLflow search filter. */
function filterLiteral(value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new BadRequestError(`cannot search MLflow for a value containing both quote characters: ${value}`);
}

export class MlflowClient {
  private readonly http: AxiosInstance;
  private readonly basePath: string;
  private readonly timeoutMs: number;
  private readonly artifactTimeoutMs: number;
  private readonly pingTimeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(options: MlflowClientOptions) {
    const baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.basePath = new URL(baseUrl).pathname.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.artifactTimeoutMs = options.artifactTimeoutMs ?? 60_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 2_000;
    this.retries = options.retries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.http = axios.create({
      baseURL: baseUrl,
      responseType: 'arraybuffer',
      // Statuses are interpreted here (HTML error pages, 500 on a missing artifact), not by axios.
      validateStatus: () => true,
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
      transitional: { clarifyTimeoutError: true },
    });
  }

  // ---- experiments and runs ------------------------------------------------------------------

  /** The id of the experiment named `name`, created if missing; safe when several containers race. */
  async getOrCreateExperiment(name: string): Promise<string> {
    const existing = await this.getExperimentByName(name);
    if (existing) return this.activeExperimentId(existing);
    try {
      const created = await this.request(
        { method: 'POST', path: `${API}/experiments/create`, json: { name }, what: `create experiment '${name}'`, retry: 'unsent-only' },
        z.object({ experiment_id: z.string() }),
      );
      return created.experiment_id;
    } catch (error) {
      if (!(error instanceof MlflowError && error.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw error;
      const winner = await this.getExperimentByName(name);
      if (!winner) throw error;
      return this.activeExperimentId(winner);
    }
  }

  async createRun(input: { experimentId: string; runName?: string; tags?: Record<string, string> }): Promise<Run> {
    const { run } = await this.request(
      {
        method: 'POST',
        path: `${API}/runs/create`,
        json: {
          experiment_id: input.experimentId,
          start_time: Date.now(),
          ...(input.runName === undefined ? {} : { run_name: input.runName }),
          tags: tagList(input.tags),
        },
        what: `create a run in experiment ${input.experimentId}`,
        retry: 'unsent-only',
      },
      z.object({ run: runSchema }),
    );
    return run;
  }

  /** Logs metrics (timestamp now, step 0), params and tags in one call. */
  async logBatch(
    runId: string,
    batch: { metrics?: Record<string, number>; params?: Record<string, string>; tags?: Record<string, string> },
  ): Promise<void> {
    const timestamp = Date.now();
    const metrics = Object.entries(batch.metrics ?? {}).map(([key, value]) => {
      if (!Number.isFinite(value)) {
        throw new BadRequestError(`metric ${key} must be a finite number`, [{ field: key, message: 'must be a finite number' }]);
      }
      return { key, value, timestamp, step: 0 };
    });
    await this.request(
      {
        method: 'POST',
        path: `${API}/runs/log-batch`,
        json: { run_id: runId, metrics, params: tagList(batch.params), tags: tagList(batch.tags) },
        what: `log metrics and params to run ${runId}`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  async finishRun(runId: string, status: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'> = 'FINISHED'): Promise<void> {
    await this.request(
      {
        method: 'POST',
        path: `${API}/runs/update`,
        json: { run_id: runId, status, end_time: Date.now() },
        what: `mark run ${runId} ${status}`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  async getRun(runId: string): Promise<Run> {
    const { run } = await this.request(
      { method: 'GET', path: `${API}/runs/get`, params: { run_id: runId }, what: `get run ${runId}`, retry: 'idempotent' },
      z.object({ run: runSchema }),
    );
    return run;
  }

  // ---- artifacts -----------------------------------------------------------------------------

  /** Puts `bytes` at `<artifactUri>/<path>`; `artifactUri` is a run's `mlflow-artifacts:/` (or `runs:/`) URI. */
  async uploadArtifact(artifactUri: string, path: string, bytes: Uint8Array): Promise<void> {
    const target = `${await this.resolveProxyPath(artifactUri)}/${path.replace(/^\/+/, '')}`;
    await this.request(
      {
        method: 'PUT',
        path: `${ARTIFACTS_API}/${encodePath(target)}`,
        bytes,
        timeoutMs: this.artifactTimeoutMs,
        what: `upload artifact mlflow-artifacts:/${target}`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  /** The bytes of an artifact file named by a `mlflow-artifacts:/` or `runs:/<run_id>/<path>` URI. */
  async downloadArtifact(uri: string): Promise<Buffer> {
    const path = await this.resolveProxyPath(uri);
    const call: Call = {
      method: 'GET',
      path: `${ARTIFACTS_API}/${encodePath(path)}`,
      timeoutMs: this.artifactTimeoutMs,
      what: `download artifact ${uri}`,
      retry: 'idempotent',
      download: true,
    };
    const reply = await this.send(call);
    if (reply.status !== 200) throw this.failure(call, reply);
    return reply.body;
  }

  /** The files and folders directly inside the artifact folder `uri`; [] when it is empty or missing. */
  async listArtifacts(uri: string): Promise<ArtifactFile[]> {
    const path = await this.resolveProxyPath(uri);
    const { files } = await this.request(
      { method: 'GET', path: ARTIFACTS_API, params: { path }, what: `list artifacts in ${uri}`, retry: 'idempotent' },
      z.object({
        files: z
          .array(z.object({ path: z.string(), is_dir: z.boolean().default(false), file_size: int64.optional() }))
          .optional()
          .transform((files) => files ?? []),
      }),
    );
    return files;
  }

  /**
   * Logs an ONNX model the way `mlflow.onnx.log_model` lays it out, so that MLflow's own tools
   * (`mlflow.pyfunc.load_model`, `mlflow models serve`) can load it: `model/model.onnx`, the
   * environment files, and `model/MLmodel` last (a reader that sees MLmodel sees a complete model).
   * Returns the model folder URI, the source to register a model version with.
   */
  async logOnnxModel(run: { info: Pick<RunInfo, 'run_id' | 'artifact_uri'> }, bytes: Uint8Array, options: { fileName: string }): Promise<string> {
    const folder = `${run.info.artifact_uri.replace(/\/+$/, '')}/model`;
    const files = onnxModelFiles({ runId: run.info.run_id, modelSize: bytes.byteLength, fileName: options.fileName });
    await this.uploadArtifact(folder, ONNX_MODEL_FILE, bytes);
    for (const [name, text] of Object.entries(files)) {
      await this.uploadArtifact(folder, name, Buffer.from(text, 'utf8'));
    }
    return folder;
  }

  // ---- model registry ------------------------------------------------------------------------

  /** The registered model `name`, created if missing; safe when several containers race. */
  async getOrCreateRegisteredModel(name: string, options: { description?: string; tags?: Record<string, string> } = {}): Promise<RegisteredModel> {
    const existing = await this.getRegisteredModel(name);
    if (existing) return existing;
    try {
      const { registered_model } = await this.request(
        {
          method: 'POST',
          path: `${API}/registered-models/create`,
          json: { name, ...(options.description === undefined ? {} : { description: options.description }), tags: tagList(options.tags) },
          what: `create registered model '${name}'`,
          retry: 'unsent-only',
        },
        z.object({ registered_model: registeredModelSchema }),
      );
      return registered_model;
    } catch (error) {
      if (!(error instanceof MlflowError && error.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw error;
      const winner = await this.getRegisteredModel(name);
      if (!winner) throw error;
      return winner;
    }
  }

  /** null when there is no registered model `name`. */
  async getRegisteredModel(name: string): Promise<RegisteredModel | null> {
    const found = await this.requestOrNull(
      { method: 'GET', path: `${API}/registered-models/get`, params: { name }, what: `get registered model '${name}'`, retry: 'idempotent' },
      z.object({ registered_model: registeredModelSchema }),
    );
    return found?.registered_model ?? null;
  }

  /** Not idempotent: every call makes a new version (tag it, e.g. with the file's sha256, to find it again). */
  async createModelVersion(input: {
    name: string;
    source: string;
    runId?: string;
    tags?: Record<string, string>;
    description?: string;
  }): Promise<ModelVersion> {
    const { model_version } = await this.request(
      {
        method: 'POST',
        path: `${API}/model-versions/create`,
        json: {
          name: input.name,
          source: input.source,
          ...(input.runId === undefined ? {} : { run_id: input.runId }),
          ...(input.description === undefined ? {} : { description: input.description }),
          tags: tagList(input.tags),
        },
        what: `create a version of model '${input.name}' from ${input.source}`,
        retry: 'unsent-only',
      },
      z.object({ model_version: modelVersionSchema }),
    );
    return model_version;
  }

  /** null when the model or the version does not exist. */
  async getModelVersion(name: string, version: string | number): Promise<ModelVersion | null> {
    const found = await this.requestOrNull(
      {
        method: 'GET',
        path: `${API}/model-versions/get`,
        params: { name, version: String(version) },
        what: `get version ${version} of model '${name}'`,
        retry: 'idempotent',
      },
      z.object({ model_version: modelVersionSchema }),
    );
    return found?.model_version ?? null;
  }

  /**
   * Model versions matching every given criterion, newest first (MLflow's order). MLflow is searched by `run_id` or
   * `name` (the filters the contract documents); the remaining criteria, tags included, are applied here.
   */
  async searchModelVersions(criteria: { name?: string; runId?: string; tags?: Record<string, string> }): Promise<ModelVersion[]> {
    const filter =
      criteria.runId !== undefined
        ? `run_id=${filterLiteral(criteria.runId)}`
        : criteria.name !== undefined
          ? `name=${filterLiteral(criteria.name)}`
          : '';
    const versions: ModelVersion[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.request(
        {
          method: 'GET',
          path: `${API}/model-versions/search`,
          params: { filter, max_results: 1000, ...(pageToken ? { page_token: pageToken } : {}) },
          what: `search model versions (${filter || 'all'})`,
          retry: 'idempotent',
        },
        z.object({ model_versions: modelVersionList, next_page_token: z.string().optional() }),
      );
      versions.push(...page.model_versions);
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
    const wantedTags = Object.entries(criteria.tags ?? {});
    return versions
      .filter((v) => criteria.name === undefined || v.name === criteria.name)
      .filter((v) => criteria.runId === undefined || v.run_id === criteria.runId)
      .filter((v) => wantedTags.every(([key, value]) => v.tags[key] === value));
  }

  /** The latest version in each of `stages` (every stage when omitted); [] when none match. */
  async getLatestVersions(name: string, stages?: ModelStage[]): Promise<ModelVersion[]> {
    const { model_versions } = await this.request(
      {
        method: 'POST',
        path: `${API}/registered-models/get-latest-versions`,
        json: { name, ...(stages ? { stages } : {}) },
        what: `get the latest versions of model '${name}'`,
        retry: 'idempotent',
      },
      z.object({ model_versions: modelVersionList }),
    );
    return model_versions;
  }

  /** Moves a version to `stage`; with `archiveExisting`, the versions already in that stage become Archived. */
  async transitionStage(name: string, version: string | number, stage: ModelStage, archiveExisting = false): Promise<ModelVersion> {
    const { model_version } = await this.request(
      {
        method: 'POST',
        path: `${API}/model-versions/transition-stage`,
        json: { name, version: String(version), stage, archive_existing_versions: archiveExisting },
        what: `move version ${version} of model '${name}' to stage ${stage}`,
        retry: 'idempotent',
      },
      z.object({ model_version: modelVersionSchema }),
    );
    return model_version;
  }

  async setAlias(name: string, alias: string, version: string | number): Promise<void> {
    await this.request(
      {
        method: 'POST',
        path: `${API}/registered-models/alias`,
        json: { name, alias, version: String(version) },
        what: `point alias '${alias}' of model '${name}' at version ${version}`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  /** null when the alias (or the model) does not exist: MLflow answers 400 "Registered model alias X not found.". */
  async getVersionByAlias(name: string, alias: string): Promise<ModelVersion | null> {
    const call: Call = {
      method: 'GET',
      path: `${API}/registered-models/alias`,
      params: { name, alias },
      what: `get the version of model '${name}' with alias '${alias}'`,
      retry: 'idempotent',
    };
    try {
      const { model_version } = await this.request(call, z.object({ model_version: modelVersionSchema }));
      return model_version;
    } catch (error) {
      const missingAlias =
        error instanceof MlflowError &&
        (error.errorCode === 'RESOURCE_DOES_NOT_EXIST' || (error.status === 400 && /alias .* not found/i.test(error.message)));
      if (missingAlias) return null;
      throw error;
    }
  }

  async deleteAlias(name: string, alias: string): Promise<void> {
    await this.request(
      {
        method: 'DELETE',
        path: `${API}/registered-models/alias`,
        json: { name, alias },
        what: `delete alias '${alias}' of model '${name}'`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  async setModelVersionTag(name: string, version: string | number, key: string, value: string): Promise<void> {
    await this.request(
      {
        method: 'POST',
        path: `${API}/model-versions/set-tag`,
        json: { name, version: String(version), key, value },
        what: `tag version ${version} of model '${name}' with ${key}`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  /** The version's source exactly as registered (MLflow does not resolve `runs:/` URIs). */
  async getDownloadUri(name: string, version: string | number): Promise<string> {
    const { artifact_uri } = await this.request(
      {
        method: 'GET',
        path: `${API}/model-versions/get-download-uri`,
        params: { name, version: String(version) },
        what: `get the download URI of version ${version} of model '${name}'`,
        retry: 'idempotent',
      },
      z.object({ artifact_uri: z.string() }),
    );
    return artifact_uri;
  }

  /** The `.onnx` bytes of a model version: its source file, or the `.onnx` file (model.onnx first) in its source folder. */
  async downloadModelVersion(name: string, version: string | number): Promise<Buffer> {
    const source = await this.getDownloadUri(name, version);
    const folder = `mlflow-artifacts:/${await this.resolveProxyPath(source)}`;
    if (/\.onnx$/i.test(folder)) return this.downloadArtifact(folder);
    const onnxFiles = (await this.listArtifacts(folder)).filter((file) => !file.is_dir && /\.onnx$/i.test(file.path));
    const file = onnxFiles.find((f) => f.path === ONNX_MODEL_FILE) ?? onnxFiles[0];
    if (!file) {
      throw new MlflowError(`version ${version} of model '${name}' has no .onnx file in its source ${source}`);
    }
    return this.downloadArtifact(`${folder}/${file.path}`);
  }

  /** Whether the tracking server answers `GET /health`; never throws (for health checks). */
  readonly ping = async (): Promise<boolean> => {
    try {
      const reply = await this.http.get('/health', { timeout: this.pingTimeoutMs });
      return reply.status === 200;
    } catch {
      return false;
    }
  };

  // ---- internals -----------------------------------------------------------------------------

  private async getExperimentByName(name: string): Promise<Experiment | null> {
    const found = await this.requestOrNull(
      {
        method: 'GET',
        path: `${API}/experiments/get-by-name`,
        params: { experiment_name: name },
        what: `get experiment '${name}'`,
        retry: 'idempotent',
      },
      z.object({ experiment: experimentSchema }),
    );
    return found?.experiment ?? null;
  }

  private activeExperimentId(experiment: Experiment): string {
    if (experiment.lifecycle_stage === 'deleted') {
      throw new MlflowError(
        `MLflow experiment '${experiment.name}' (id ${experiment.experiment_id}) is deleted: restore it in MLflow or set another MLFLOW_EXPERIMENT_NAME`,
      );
    }
    return experiment.experiment_id;
  }

  /** `mlflow-artifacts:/…` or `runs:/<run_id>/<path>` → the path under the artifact proxy. */
  private async resolveProxyPath(uri: string): Promise<string> {
    const runsUri = /^runs:\/+([^/]+)\/?(.*)$/.exec(uri);
    if (runsUri) {
      const [, runId = '', path = ''] = runsUri;
      const run = await this.getRun(runId);
      return this.resolveProxyPath(path ? `${run.info.artifact_uri.replace(/\/+$/, '')}/${path}` : run.info.artifact_uri);
    }
    const path = proxyPath(uri);
    if (path === undefined) {
      throw new MlflowError(
        `cannot read or write artifact ${uri}: only mlflow-artifacts:/ and runs:/ URIs are supported ` +
          '(start the MLflow server with artifact proxying, `mlflow server --serve-artifacts`, the default)',
      );
    }
    return path;
  }

  /** A JSON call whose 2xx body is parsed with `schema`; anything else throws MlflowError / MlflowUnavailableError. */
  private async request<T>(call: Call, schema: z.ZodType<T>): Promise<T> {
    const reply = await this.send(call);
    if (reply.status < 200 || reply.status >= 300) throw this.failure(call, reply);
    let body: unknown;
    try {
      body = reply.body.length === 0 ? {} : JSON.parse(reply.body.toString('utf8'));
    } catch (cause) {
      throw new MlflowError(`MLflow answered ${reply.status} with a body that is not JSON to ${call.what} (${this.describe(call)})`, {
        status: reply.status,
        cause,
      });
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      throw new MlflowError(`MLflow answered an unexpected body to ${call.what} (${this.describe(call)}): ${z.prettifyError(parsed.error)}`, {
        status: reply.status,
        cause: parsed.error,
      });
    }
    return parsed.data;
  }

  /** Like `request`, but null when MLflow answers 404 RESOURCE_DOES_NOT_EXIST. */
  private async requestOrNull<T>(call: Call, schema: z.ZodType<T>): Promise<T | null> {
    try {
      return await this.request(call, schema);
    } catch (error) {
      if (error instanceof MlflowError && error.errorCode === 'RESOURCE_DOES_NOT_EXIST') return null;
      throw error;
    }
  }

  /** Sends `call`, retrying transient failures with backoff; a network failure that persists throws MlflowUnavailableError. */
  private async send(call: Call): Promise<Reply> {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.http.request<Buffer>({
          method: call.method,
          url: call.path,
          params: call.params,
          data: call.bytes ?? (call.json === undefined ? undefined : JSON.stringify(call.json)),
          headers: { 'Content-Type': call.bytes ? 'application/octet-stream' : 'application/json', Accept: 'application/json, */*' },
          timeout: call.timeoutMs ?? this.timeoutMs,
        });
        const reply: Reply = {
          status: response.status,
          contentType: String(response.headers['content-type'] ?? ''),
          body: Buffer.from(response.data ?? []),
        };
        if (attempt > this.retries || !this.isTransientStatus(call, reply.status)) return reply;
      } catch (error) {
        if (!axios.isAxiosError(error)) throw error;
        const unsent = UNSENT_NETWORK_CODES.has(error.code ?? '');
        if (attempt > this.retries || !(unsent || call.retry === 'idempotent')) {
          throw new MlflowUnavailableError(
            `MLflow is unavailable: could not ${call.what} (${this.describe(call)}: ${this.networkReason(call, error.code, error.message)}` +
              `, ${attempt} attempt${attempt > 1 ? 's' : ''}). Check that the MLflow tracking server is running and that MLFLOW_TRACKING_URI points to it.`,
            { cause: redactedCause(error) },
          );
        }
      }
      const delay = this.retryDelayMs * 2 ** (attempt - 1);
      await sleep(delay / 2 + Math.random() * (delay / 2));
    }
  }

  private isTransientStatus(call: Call, status: number): boolean {
    if (status === 503) return true; // nothing was processed
    if (call.retry !== 'idempotent') return false;
    if (status === 502 || status === 504) return true;
    return status === 500 && call.method === 'GET' && !call.download;
  }

  private networkReason(call: Call, code: string | undefined, message: string): string {
    switch (code) {
      case 'ECONNREFUSED':
        return 'connection refused';
      case 'ETIMEDOUT':
      case 'ECONNABORTED':
        return `no answer within ${call.timeoutMs ?? this.timeoutMs} ms`;
      case 'ECONNRESET':
        return 'connection reset';
      default:
        return message;
    }
  }

  /** The error for a non-2xx reply. */
  private failure(call: Call, reply: Reply): MlflowError | MlflowUnavailableError {
    const parsed = isJson(reply) ? errorBodySchema.safeParse(safeJson(reply.body)) : undefined;
    const errorCode = parsed?.success ? parsed.data.error_code : undefined;
    const detail = parsed?.success ? [errorCode, parsed.data.message].filter(Boolean).join(': ') : '';
    const details = { status: reply.status, errorCode };
    if (call.download && reply.status === 500 && errorCode) {
      return new MlflowError(`MLflow could not ${call.what} (500 ${detail}): the artifact probably does not exist`, details);
    }
    if (reply.status >= 500) {
      return new MlflowUnavailableError(
        `MLflow is unavailable: could not ${call.what} (${this.describe(call)} answered ${reply.status}${detail ? ` ${detail}` : ''}).`,
        details,
      );
    }
    if (!isJson(reply) && (reply.status === 404 || reply.status === 405)) {
      return new MlflowError(
        `MLflow answered HTML ${reply.status} for ${this.describe(call)}: is MLFLOW_TRACKING_URI the tracking server's root URL` +
          `${reply.status === 405 ? ', and is the server MLflow 2.x?' : '?'}`,
        details,
      );
    }
    return new MlflowError(`MLflow refused to ${call.what} (${this.describe(call)} answered ${reply.status}${detail ? ` ${detail}` : ''})`, details);
  }

  private describe(call: Call): string {
    return `${call.method} ${this.basePath}${call.path}`;
  }
}

function safeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function tagList(tags: Record<string, string> | undefined): Array<{ key: string; value: string }> {
  return Object.entries(tags ?? {}).map(([key, value]) => ({ key, value }));
}

// ---------------------------------------------------------------------------------------------
// The MLflow model format of an ONNX model (what mlflow.onnx.save_model writes)

const ONNX_MODEL_FILE = 'model.onnx';
/** The MLflow release whose model format is written (the one the contract was observed on). */
const MLFLOW_VERSION = '2.17.0';
const ONNX_VERSION = '1.17.0';
const ONNXRUNTIME_VERSION = '1.19.2';
const PYTHON_VERSION = '3.11.9';

/** MLmodel and the environment files it names, keyed by file name; MLmodel comes last. */
function onnxModelFiles(input: { runId: string; modelSize: number; fileName: string }): Record<string, string> {
  const requirements = [`mlflow==${MLFLOW_VERSION}`, `onnx==${ONNX_VERSION}`, `onnxruntime==${ONNXRUNTIME_VERSION}`];
  // Python's str(datetime.utcnow()): '2025-01-15 12:00:00.123000'
  const created = new Date().toISOString().replace('T', ' ').replace('Z', '000');
  // YAML keys sorted, as yaml.safe_dump writes them; JSON strings are valid YAML scalars.
  const mlmodel = [
    'artifact_path: model',
    'flavors:',
    '  onnx:',
    '    code: null',
    `    data: ${ONNX_MODEL_FILE}`,
    '    onnx_session_options: null',
    `    onnx_version: ${ONNX_VERSION}`,
    '    providers:',
    '    - CPUExecutionProvider',
    '  python_function:',
    `    data: ${ONNX_MODEL_FILE}`,
    '    env:',
    '      conda: conda.yaml',
    '      virtualenv: python_env.yaml',
    '    loader_module: mlflow.onnx',
    `    python_version: ${PYTHON_VERSION}`,
    'metadata:',
    `  source_file_name: ${JSON.stringify(input.fileName)}`,
    `mlflow_version: ${MLFLOW_VERSION}`,
    `model_size_bytes: ${input.modelSize}`,
    `model_uuid: ${randomUUID().replaceAll('-', '')}`,
    `run_id: ${input.runId}`,
    `utc_time_created: '${created}'`,
    '',
  ].join('\n');
  return {
    'requirements.txt': `${requirements.join('\n')}\n`,
    'python_env.yaml': ['python: ' + PYTHON_VERSION, 'build_dependencies:', '- pip', '- setuptools', '- wheel', 'dependencies:', '- -r requirements.txt', ''].join('\n'),
    'conda.yaml': [
      'channels:',
      '- conda-forge',
      'dependencies:',
      `- python=${PYTHON_VERSION}`,
      '- pip',
      '- pip:',
      ...requirements.map((r) => `  - ${r}`),
      'name: mlflow-env',
      '',
    ].join('\n'),
    MLmodel: mlmodel,
  };
}

// ---------------------------------------------------------------------------------------------

let client: MlflowClient | null | undefined;

/** The container's MLflow client, built once from MLFLOW_TRACKING_URI; null when MLflow is not configured. */
export function registry(): MlflowClient | null {
  if (client === undefined) {
    const baseUrl = config().MLFLOW_TRACKING_URI;
    client = baseUrl ? new MlflowClient({ baseUrl }) : null;
  }
  return client;
}
