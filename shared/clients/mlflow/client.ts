/**
 * The MLflow tracking server client over its REST API (../shared/contracts/mlflow-rest.md): the
 * tracking calls (./tracking.ts) plus the model registry, and the container's one client, `mlflow()`.
 * Registered model creation is a race-safe get-or-create (MLflow answers 400 RESOURCE_ALREADY_EXISTS
 * to the loser); creating a model version is not idempotent and is never repeated once it may have arrived.
 */
import { z } from 'zod';
import { config } from '#shared/config';
import { BadRequestError } from '#http/errors';
import {
  modelVersionList,
  modelVersionSchema,
  registeredModelSchema,
  tagList,
  type ModelStage,
  type ModelVersion,
  type RegisteredModel,
} from '#clients/mlflow/entities';
import { MlflowError } from '#clients/mlflow/errors';
import { ONNX_MODEL_FILE } from '#clients/mlflow/mlmodel';
import { MlflowTrackingClient } from '#clients/mlflow/tracking';
import { API, type Call } from '#clients/mlflow/transport';

/** A string literal for an MLflow search filter. */
function filterLiteral(value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  throw new BadRequestError(`cannot search MLflow for a value containing both quote characters: ${value}`);
}

/** The MLflow client: the tracking calls, plus the model registry. */
export class MlflowClient extends MlflowTrackingClient {
  /** The registered model `name`, created if missing; safe when several containers race. */
  async getOrCreateRegisteredModel(
    name: string,
    options: { description?: string; tags?: Record<string, string> } = {},
  ): Promise<RegisteredModel> {
    const existing = await this.getRegisteredModel(name);
    if (existing) return existing;
    try {
      const { registered_model } = await this.transport.request(
        {
          method: 'POST',
          path: `${API}/registered-models/create`,
          json: {
            name,
            ...(options.description === undefined ? {} : { description: options.description }),
            tags: tagList(options.tags),
          },
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
    const found = await this.transport.requestOrNull(
      {
        method: 'GET',
        path: `${API}/registered-models/get`,
        params: { name },
        what: `get registered model '${name}'`,
        retry: 'idempotent',
      },
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
    const { model_version } = await this.transport.request(
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
    const found = await this.transport.requestOrNull(
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
  async searchModelVersions(criteria: {
    name?: string;
    runId?: string;
    tags?: Record<string, string>;
  }): Promise<ModelVersion[]> {
    const filter =
      criteria.runId !== undefined
        ? `run_id=${filterLiteral(criteria.runId)}`
        : criteria.name !== undefined
          ? `name=${filterLiteral(criteria.name)}`
          : '';
    const versions: ModelVersion[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.transport.request(
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
    const { model_versions } = await this.transport.request(
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
  async transitionStage(
    name: string,
    version: string | number,
    stage: ModelStage,
    archiveExisting = false,
  ): Promise<ModelVersion> {
    const { model_version } = await this.transport.request(
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
    await this.transport.request(
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
      const { model_version } = await this.transport.request(call, z.object({ model_version: modelVersionSchema }));
      return model_version;
    } catch (error) {
      const missingAlias =
        error instanceof MlflowError &&
        (error.errorCode === 'RESOURCE_DOES_NOT_EXIST' ||
          (error.status === 400 && /alias .* not found/i.test(error.message)));
      if (missingAlias) return null;
      throw error;
    }
  }

  /** The version's source exactly as registered (MLflow does not resolve `runs:/` URIs). */
  async getDownloadUri(name: string, version: string | number): Promise<string> {
    const { artifact_uri } = await this.transport.request(
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
  readonly ping = (): Promise<boolean> => this.transport.ping();
}

let client: MlflowClient | null | undefined;

/** The container's MLflow client, built once from MLFLOW_TRACKING_URI; null when MLflow is not configured. */
export function mlflow(): MlflowClient | null {
  if (client === undefined) {
    const baseUrl = config().MLFLOW_TRACKING_URI;
    client = baseUrl ? new MlflowClient({ baseUrl }) : null;
  }
  return client;
}
