import { config } from '#shared/config';
import { BadGatewayError, ServiceUnavailableError } from '#http/errors';
import { FEATURES } from '#prediction/features';
import { findModelFile, type Metrics } from '#model/files';
import { recentDrops } from '#model/drops';
import { mlflow, type MlflowClient } from '#clients/mlflow/client';
import type { ModelStage } from '#clients/mlflow/entities';
import { MlflowUnavailableError } from '#clients/mlflow/errors';
import type { ModelInfo } from '#api/responses';
import { ServingModelCache, servingModels, type ServingModel } from '#prediction/serving';

/**
 * GET /model/info: the seed's keys (`model_loaded`, `model_name` = the algorithm, `features`,
 * `num_features`, `mlflow`) plus what serves (`serving`: version, aliases, metrics, S3 key) and the
 * latest outcomes of the drop folder (`drop_folder`). The serving part never needs MLflow; when
 * MLflow is not configured or down, `mlflow` is null and `mlflow_error` says why.
 */

const caches = new Map<string, ServingModelCache>();

/** The container's cache for MODEL_NAME (shared with /predict's), or one per other model asked about. */
function servingCache(modelName: string): ServingModelCache {
  if (modelName === config().MODEL_NAME) return servingModels();
  let cache = caches.get(modelName);
  if (!cache) {
    cache = new ServingModelCache(modelName, config().MODEL_REFRESH_SECONDS * 1000);
    caches.set(modelName, cache);
  }
  return cache;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Why MLflow has nothing to say; rethrows what is not about MLflow. */
function mlflowProblem(error: unknown): string {
  if (error instanceof MlflowUnavailableError) return error.message;
  if (error instanceof BadGatewayError) return 'MLflow answered unexpectedly; see the function logs.';
  throw error;
}

async function mlflowPart(
  client: MlflowClient,
  modelName: string,
): Promise<Pick<ModelInfo, 'mlflow' | 'mlflow_error'>> {
  const model = await client.getRegisteredModel(modelName);
  if (!model)
    return {
      mlflow: null,
      mlflow_error: `Model "${modelName}" is not registered in MLflow yet; upload it with POST /model/upload.`,
    };
  return {
    mlflow: {
      name: model.name,
      latest_versions: model.latest_versions.map((v) => ({
        version: v.version,
        stage: v.current_stage,
        run_id: v.run_id,
        created_at: iso(v.creation_timestamp),
      })),
      created_at: iso(model.creation_timestamp),
    },
  };
}

async function servingPart(
  client: MlflowClient | null,
  { pointer }: ServingModel,
): Promise<NonNullable<ModelInfo['serving']>> {
  const row = await findModelFile({ model_name: pointer.model_name, sha256: pointer.sha256 });
  const registryName = row?.version === pointer.version ? row.registry : pointer.run_id ? 'mlflow' : null;
  let stage: ModelStage | null = null;
  let aliases: string[] = [];
  let metrics: Metrics = row?.metrics ?? {};
  if (client && registryName === 'mlflow') {
    // Best effort: without MLflow the serving part still answers, without aliases.
    const version = await client.getModelVersion(pointer.model_name, pointer.version).catch(() => null);
    if (version && (!version.tags.sha256 || version.tags.sha256 === pointer.sha256))
      ({ current_stage: stage, aliases } = version);
    if (!row && pointer.run_id) metrics = (await client.getRun(pointer.run_id).catch(() => null))?.data.metrics ?? {};
  } else if (registryName === 'local') {
    aliases = ['production'];
    stage = 'Production';
  }
  return {
    model_name: pointer.model_name,
    version: pointer.version,
    registry: registryName,
    s3_key: pointer.s3_key,
    sha256: pointer.sha256,
    run_id: pointer.run_id,
    promoted_at: pointer.promoted_at,
    file_name: row?.file_name ?? null,
    stage,
    aliases,
    metrics,
  };
}

export async function modelInfo(modelName = config().MODEL_NAME): Promise<ModelInfo> {
  const client = mlflow();
  const [loaded, mlflowInfo, drops] = await Promise.all([
    servingCache(modelName)
      .get()
      .then((model) => ({ model }))
      .catch((error: unknown) => {
        if (error instanceof ServiceUnavailableError) return { error: error.message };
        throw error;
      }),
    client
      ? mlflowPart(client, modelName).catch((error: unknown) => ({ mlflow: null, mlflow_error: mlflowProblem(error) }))
      : {
          mlflow: null,
          mlflow_error:
            'MLflow is not configured (MLFLOW_TRACKING_URI is unset); versions are numbered by this service.',
        },
    recentDrops(modelName),
  ]);
  const description = 'model' in loaded ? loaded.model.model.description : null;
  return {
    model_loaded: description !== null,
    model_name: description?.algorithm ?? null,
    features: description?.features ?? [...FEATURES],
    num_features: description?.features.length ?? FEATURES.length,
    serving: 'model' in loaded ? await servingPart(client, loaded.model) : null,
    ...('error' in loaded ? { serving_error: loaded.error } : {}),
    ...mlflowInfo,
    drop_folder: drops,
  };
}
