import { BadRequestError, NotFoundError, UnprocessableError } from '#http/errors';
import { findModelFile, findModelFileByVersion, updateModelFile, type Registry } from '#model/files';
import { findExport, readModelObject, writeExport } from '#model/storage';
import { sha256Hex } from '#aws/s3';
import { validateModelFile } from '#model/validation';
import { mlflow, type MlflowClient } from '#clients/mlflow/client';
import type { ModelStage, ModelVersion } from '#clients/mlflow/entities';
import { MlflowError } from '#clients/mlflow/errors';
import { currentPointer, publishServingModel } from '#prediction/serving';

/**
 * Versions, exports and promotion. A version is numbered by MLflow when MLFLOW_TRACKING_URI is set,
 * else by the suite itself (PostgreSQL, `registry: local`). Promotion to serving = export the file
 * to models/… and point serving/{model}.json at it; with MLflow it also moves the `production`
 * alias and the Production stage, so MLflow's UI shows what serves.
 */

export const SERVING_ALIAS = 'production';
export const SERVING_STAGE: ModelStage = 'Production';

export interface VersionRef {
  modelName: string;
  version: string;
  registry: Registry;
  runId: string | null;
  /** The file's sha256 when known (our tag on MLflow versions, always for local ones). */
  sha256?: string;
  stage: ModelStage | null;
  aliases: string[];
}

export type VersionSelector = { version: string } | { stage: ModelStage } | { alias: string };

export const registryMode = (): Registry => (mlflow() ? 'mlflow' : 'local');

/** The configured MLflow client; callers check registryMode() first. */
function configuredMlflow(): MlflowClient {
  const client = mlflow();
  if (!client) throw new Error('MLflow is not configured');
  return client;
}

export function mlflowVersionRef(v: ModelVersion): VersionRef {
  return {
    modelName: v.name,
    version: v.version,
    registry: 'mlflow',
    runId: v.run_id,
    ...(v.tags.sha256 ? { sha256: v.tags.sha256 } : {}),
    stage: v.current_stage,
    aliases: v.aliases,
  };
}

const missing = (s: VersionSelector) =>
  'version' in s
    ? `no version ${s.version}`
    : 'stage' in s
      ? `no version in stage ${s.stage}`
      : `no alias '${s.alias}'`;

/** The version a request names; 404 naming what is missing. */
export async function resolveVersion(modelName: string, selector: VersionSelector): Promise<VersionRef> {
  if (registryMode() === 'local') return resolveLocalVersion(modelName, selector);
  const client = configuredMlflow();
  let found: ModelVersion | null;
  try {
    if ('version' in selector) found = await client.getModelVersion(modelName, selector.version);
    else if ('stage' in selector) found = (await client.getLatestVersions(modelName, [selector.stage]))[0] ?? null;
    else found = await client.getVersionByAlias(modelName, selector.alias);
  } catch (error) {
    // get-latest-versions answers 404 for a model that does not exist.
    if (!(error instanceof MlflowError && error.errorCode === 'RESOURCE_DOES_NOT_EXIST')) throw error;
    found = null;
  }
  if (found) return mlflowVersionRef(found);
  if (!(await client.getRegisteredModel(modelName))) {
    throw new NotFoundError(
      `Model "${modelName}" is not registered in MLflow; upload it first with POST /model/upload.`,
    );
  }
  const hint =
    'version' in selector
      ? "see its versions in MLflow's UI (Models)"
      : `promote a version with POST /model/promote {"model_name": "${modelName}", "version": "<n>"}`;
  throw new NotFoundError(`Model "${modelName}" has ${missing(selector)}; ${hint}.`);
}

/**
 * Without MLflow, versions are the suite's own and there are no stages or aliases: "Production" and
 * "production" mean the version that serves.
 */
async function resolveLocalVersion(modelName: string, selector: VersionSelector): Promise<VersionRef> {
  let version: string;
  if ('version' in selector) version = selector.version;
  else if (
    ('stage' in selector && selector.stage === SERVING_STAGE) ||
    ('alias' in selector && selector.alias === SERVING_ALIAS)
  ) {
    const pointer = await currentPointer(modelName);
    if (!pointer)
      throw new NotFoundError(`Model "${modelName}" has no serving version yet; upload one with POST /model/upload.`);
    version = pointer.version;
  } else {
    throw new BadRequestError(
      `Stages and aliases other than ${SERVING_STAGE}/${SERVING_ALIAS} need MLflow, and MLFLOW_TRACKING_URI is not set; name the version instead.`,
    );
  }
  const row = await findModelFileByVersion(modelName, 'local', version);
  if (!row) {
    throw new NotFoundError(
      `Model "${modelName}" has no version ${version} (without MLflow, versions are numbered by this service; see GET /model/info).`,
    );
  }
  const pointer = await currentPointer(modelName);
  const serving = pointer?.version === version && pointer.sha256 === row.sha256;
  return {
    modelName,
    version,
    registry: 'local',
    runId: null,
    sha256: row.sha256,
    stage: serving ? SERVING_STAGE : null,
    aliases: serving ? [SERVING_ALIAS] : [],
  };
}

/** A version's file: the suite's stored copy when it has one (same sha256, no download), else MLflow's artifact. */
async function versionBytes(ref: VersionRef): Promise<Uint8Array> {
  if (ref.sha256) {
    const row = await findModelFile({ model_name: ref.modelName, sha256: ref.sha256 });
    const stored = row && (await readModelObject(row.stored_key));
    if (stored && sha256Hex(stored) === ref.sha256) return stored;
  }
  if (ref.registry === 'local') throw new Error(`the stored file of ${ref.modelName} v${ref.version} is missing`);
  const bytes = await configuredMlflow().downloadModelVersion(ref.modelName, ref.version);
  if (ref.sha256 && sha256Hex(bytes) !== ref.sha256) {
    throw new MlflowError(
      `the artifact of version ${ref.version} of model '${ref.modelName}' does not match the version's sha256 tag`,
    );
  }
  return bytes;
}

export interface ExportedFile {
  key: string;
  sha256: string;
  /** false when an earlier export of the same file was reused. */
  created: boolean;
}

/**
 * Exports a version to models/{model}/v{N}/… once: an export of the same file is reused. A file not
 * checked by this suite (registered in MLflow by other tools) is checked before it is exported, so a
 * bad file never reaches the serving pointer. `bytes`, when given, are the version's checked file.
 */
export async function ensureExported(ref: VersionRef, bytes?: Uint8Array): Promise<ExportedFile> {
  const knownSha = ref.sha256 ?? (bytes && sha256Hex(bytes));
  const existing = knownSha ? await findExport(ref.modelName, ref.version, knownSha) : null;
  if (existing && knownSha) return { key: existing, sha256: knownSha, created: false };
  const file = bytes ?? (await versionBytes(ref));
  const sha256 = knownSha ?? sha256Hex(file);
  if (!knownSha) {
    const earlier = await findExport(ref.modelName, ref.version, sha256);
    if (earlier) return { key: earlier, sha256, created: false };
  }
  if (!bytes) {
    await validateModelFile(file, `version ${ref.version} of model "${ref.modelName}"`).catch((error: unknown) => {
      if (error instanceof UnprocessableError) {
        throw new UnprocessableError(
          `Version ${ref.version} of model "${ref.modelName}" cannot serve: ${error.message}`,
          { cause: error },
        );
      }
      throw error;
    });
  }
  const key = await writeExport({
    modelName: ref.modelName,
    version: ref.version,
    runId: ref.runId,
    sha256,
    bytes: file,
  });
  await updateModelFile({ model_name: ref.modelName, sha256 }, { export_key: key });
  return { key, sha256, created: true };
}

/**
 * Points serving/{model}.json at an export and records when the file was promoted. Written on every
 * promotion, whatever the pointer holds now: that is what repairs a pointer deleted or corrupted
 * since. Containers that already serve the file only read the small pointer again, without a reload.
 */
async function publish(ref: VersionRef, exported: ExportedFile): Promise<void> {
  await publishServingModel({
    model_name: ref.modelName,
    version: ref.version,
    s3_key: exported.key,
    sha256: exported.sha256,
    run_id: ref.runId,
    promoted_at: new Date().toISOString(),
  });
  await updateModelFile({ model_name: ref.modelName, sha256: exported.sha256 }, { promoted_at: new Date() });
}

export interface PromotionTarget {
  alias?: string;
  stage?: ModelStage;
}

/** What an upload with promote=true does: the alias and the stage that serve. */
export const SERVING_TARGET: PromotionTarget = { alias: SERVING_ALIAS, stage: SERVING_STAGE };

export interface PromotionResult {
  /** Whether the version now serves predictions (alias `production` or stage Production). */
  serving: boolean;
  exportKey: string | null;
}

/**
 * Moves an alias and/or a stage to a version; when that is `production`/Production, exports it and
 * makes it the serving model. The file is exported (and so checked) before MLflow is touched, so a
 * version that cannot serve never becomes production there either. Without MLflow only
 * production/Production exist, and they mean "serve".
 */
export async function promote(ref: VersionRef, target: PromotionTarget, bytes?: Uint8Array): Promise<PromotionResult> {
  const serving = target.alias === SERVING_ALIAS || target.stage === SERVING_STAGE;
  if (
    ref.registry === 'local' &&
    ((target.alias && target.alias !== SERVING_ALIAS) || (target.stage && target.stage !== SERVING_STAGE))
  ) {
    throw new BadRequestError(
      `Aliases and stages other than ${SERVING_ALIAS}/${SERVING_STAGE} need MLflow, and MLFLOW_TRACKING_URI is not set.`,
    );
  }
  const exported = serving ? await ensureExported(ref, bytes) : null;
  if (ref.registry === 'mlflow') {
    const client = configuredMlflow();
    if (target.alias) await client.setAlias(ref.modelName, target.alias, ref.version);
    // Archiving the previous Production version keeps "the" Production version unambiguous.
    if (target.stage)
      await client.transitionStage(ref.modelName, ref.version, target.stage, target.stage === SERVING_STAGE);
  }
  if (exported) await publish(ref, exported);
  return { serving, exportKey: exported?.key ?? null };
}

/** Makes a version the serving model without touching MLflow: how the sync function follows promotions made in MLflow. */
export async function serve(ref: VersionRef): Promise<ExportedFile> {
  const exported = await ensureExported(ref);
  await publish(ref, exported);
  return exported;
}
