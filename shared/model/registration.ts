import { config } from '#shared/config';
import { ConflictError } from '#http/errors';
import { logger } from '#shared/log';
import { recordRegistration } from '#shared/metrics';
import { currentPointer } from '#prediction/serving';
import {
  claimNewModelFile,
  countFailedAttempt,
  findModelFile,
  findModelFileLease,
  nextLocalVersion,
  reclaimModelFile,
  releaseModelFile,
  updateModelFile,
  type Metrics,
  type ModelFileKey,
  type ModelFileRow,
} from '#model/files';
import { readModelObject, storedModelKey, storeModelFile } from '#model/storage';
import { sha256Hex } from '#aws/s3';
import { checkFileName, checkModelName } from '#model/name';
import { validateModelFile } from '#model/validation';
import type { ModelDescription } from '#model/onnx';
import { ensureExported, promote, registryMode, SERVING_TARGET, type VersionRef } from '#model/promotion';
import { mlflow } from '#clients/mlflow/client';
import type { ModelVersion } from '#clients/mlflow/entities';
import { MlflowError, MlflowUnavailableError } from '#clients/mlflow/errors';

/**
 * The one registration service, used by POST /model/upload, the S3 drop folder and the sync function:
 * validate → claim the model_files row → store (uploads/) → version (MLflow, or the suite's own
 * numbering without MLflow) → export (models/…) → promote (alias `production` + stage Production +
 * serving pointer). The file is stored only once a row names it, so no failure leaves an object behind.
 *
 * Exactly once, per (model name, file sha256):
 * - PostgreSQL: the first caller inserts the model_files row (ON CONFLICT DO NOTHING) and holds it
 *   under a lease until it has registered, exported and promoted; a concurrent caller waits for the
 *   lease to end and answers with the same version.
 * - MLflow: the version carries the file's sha256 as a tag and is searched for before anything is
 *   created, so a retry after a crash between "version created" and "row updated" finds it.
 * A refused file (400/413/415/422) stores and registers nothing: validation runs before any write.
 * When MLflow cannot be reached the file is still stored; the row stays `pending_registration` and a
 * new upload of the file, a repeated S3 event or the sync function (every minute) finishes the job.
 */

export interface ModelFileInput {
  bytes: Uint8Array;
  fileName: string;
  modelName: string;
  metrics: Metrics;
  /** 'upload', or the s3:// URI of a dropped object: an MLflow param and tag. */
  source: string;
}

export interface RegistrationOptions {
  /** Ask MLflow for a version. Without MLflow configured versions are always numbered locally. */
  register: boolean;
  /** Export the version to models/… (promotion exports in any case). */
  export: boolean;
  /**
   * now: make this file serve, even if it was registered before (an upload asks for it: re-uploading
   * an older file rolls back to it). once: make it serve when it first gets its version, unless
   * another model was promoted since it arrived (S3 events and retries, which repeat). never.
   */
  promote: 'now' | 'once' | 'never';
}

export interface RegistrationOutcome {
  file: ModelFileRow;
  /** The file had its version before this call. */
  alreadyRegistered: boolean;
  /** Why the file has no version, when it has none. */
  registryError: string | null;
  exportKey: string | null;
  promoted: boolean;
  /** Why a requested promotion did not happen (it is retried by the sync function). */
  promotionError: string | null;
}

/** Attempts after which the sync function stops retrying a file MLflow keeps refusing (a new upload still retries). */
export const MAX_ATTEMPTS = 10;
/** How long a request waits for a concurrent registration of the same file (below the upload function's timeout). */
const SETTLE_WAIT_MS = 20_000;

const REGISTRATION_SKIPPED =
  'not registered: register_in_mlflow=false (upload the file again with register_in_mlflow=true to version it)';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const keyOf = (row: ModelFileKey): ModelFileKey => ({ model_name: row.model_name, sha256: row.sha256 });

/** Metrics: a refused file, then registered or failed (not versioned yet); register_in_mlflow=false is neither. */
const counted = (outcome: 'refused' | 'failed') => (error: unknown) => {
  recordRegistration(outcome);
  throw error;
};

/** Validates, stores and registers a model file; see the module comment. */
export async function registerModelFile(input: ModelFileInput, options: RegistrationOptions) {
  const description = await validateInput(input).catch(counted('refused'));
  const outcome = await registerValidFile(input, description, options).catch(counted('failed'));
  if (outcome.file.status !== 'stored')
    recordRegistration(outcome.file.status === 'registered' ? 'registered' : 'failed');
  return outcome;
}

async function validateInput(input: ModelFileInput): Promise<ModelDescription> {
  checkModelName(input.modelName);
  checkFileName(input.fileName);
  return validateModelFile(input.bytes, input.fileName);
}

async function registerValidFile(
  input: ModelFileInput,
  description: ModelDescription,
  options: RegistrationOptions,
): Promise<RegistrationOutcome> {
  const sha256 = sha256Hex(input.bytes);
  const key = { model_name: input.modelName, sha256 };
  const mode = registryMode();
  const wishes = {
    metrics: input.metrics,
    exportRequested: options.export,
    promoteRequested: options.promote !== 'never',
  };

  let held = true;
  let row = await claimNewModelFile({
    ...key,
    file_name: input.fileName,
    size: input.bytes.byteLength,
    stored_key: storedModelKey(input.modelName, sha256),
    source: input.source,
    algorithm: description.algorithm,
    features: description.features,
    metrics: input.metrics,
    export_requested: options.export,
    promote_requested: wishes.promoteRequested,
  });
  if (!row && (mode === 'local' || options.register)) {
    // Known file: take it over if its registration failed before (or it was kept unversioned, or
    // numbered locally before MLflow was configured).
    row = await reclaimModelFile(key, {
      statuses: ['pending_registration', 'stored', 'failed'],
      upgradeLocal: mode === 'mlflow',
      ...wishes,
    });
  }
  if (!row) ({ row, held } = await settle(key));
  if (held) await storeHeldFile(row, input);
  return advance(row, input.bytes, { held, options, alreadyRegistered: !held && row.status === 'registered' });
}

/**
 * Stores the checked file for the row the caller holds: after the row, so that a failure on the
 * way (PostgreSQL, S3) never leaves an object no row names. When S3 refuses it, the row records why
 * and is released at once: the same upload again takes it over without waiting out the lease.
 */
async function storeHeldFile(row: ModelFileRow, input: ModelFileInput): Promise<void> {
  try {
    await storeModelFile(row.model_name, row.sha256, input.bytes, input.fileName);
  } catch (error) {
    await updateModelFile(keyOf(row), { error: 'the file could not be stored in S3; upload it again' })
      .then(() => releaseModelFile(keyOf(row)))
      .catch(() => {});
    throw error;
  }
}

/**
 * Moves on a file whose registration or promotion did not finish (MLflow was down, a worker died);
 * null when another worker holds it. Used by the sync function.
 */
export async function resumeModelFile(row: ModelFileRow): Promise<RegistrationOutcome | null> {
  const options: RegistrationOptions = { register: true, export: false, promote: 'once' };
  // Only the promotion is left: the version's file comes from its export, the stored copy or MLflow.
  if (row.status === 'registered') return advance(row, undefined, { held: false, options, alreadyRegistered: true });
  const bytes = await readModelObject(row.stored_key);
  if (!bytes) {
    await updateModelFile(keyOf(row), {
      status: 'failed',
      error: `the stored file ${row.stored_key} is missing; upload the model again`,
    });
    return null;
  }
  const taken = await reclaimModelFile(keyOf(row), { statuses: ['pending_registration'] });
  return taken ? advance(taken, bytes, { held: true, options, alreadyRegistered: false }) : null;
}

/** Waits while another worker holds the row; takes it over if that worker died. */
async function settle(key: ModelFileKey): Promise<{ row: ModelFileRow; held: boolean }> {
  const deadline = Date.now() + SETTLE_WAIT_MS;
  for (;;) {
    const found = await findModelFileLease(key);
    if (!found) throw new Error(`model file ${key.model_name}/${key.sha256} disappeared while being registered`);
    if (!found.leased) {
      if (found.row.status !== 'registering') return { row: found.row, held: false };
      const taken = await reclaimModelFile(key, { statuses: [] });
      if (taken) return { row: taken, held: true };
    }
    if (Date.now() > deadline) {
      throw new ConflictError(
        `This file (sha256 ${key.sha256}) is being registered as "${key.model_name}" by another request; retry in a few seconds to get its version.`,
      );
    }
    await sleep(200);
  }
}

/** The reason MLflow gave, for the caller; undefined when the error is not MLflow's. */
function mlflowReason(error: unknown): string | undefined {
  if (error instanceof MlflowUnavailableError) return error.message;
  // MlflowError messages are written for the logs (paths, bodies); the caller gets the gist.
  if (error instanceof MlflowError)
    return `MLflow refused the request (${error.errorCode ?? `HTTP ${error.status ?? '?'}`}); see the function's logs.`;
  return undefined;
}

/**
 * Finishes what the file needs; a held row's lease ends when everything (version, export, promotion)
 * is done. `bytes` (the checked file) are needed to register; without them exports read the file back.
 */
async function advance(
  row: ModelFileRow,
  bytes: Uint8Array | undefined,
  step: { held: boolean; options: RegistrationOptions; alreadyRegistered: boolean },
): Promise<RegistrationOutcome> {
  try {
    let registryError: string | null = null;
    if (step.held && bytes) ({ row, registryError } = await assignVersion(row, bytes, step.options.register));
    else if (row.status !== 'registered') registryError = row.status === 'stored' ? REGISTRATION_SKIPPED : row.error;
    const outcome: RegistrationOutcome = {
      file: row,
      alreadyRegistered: step.alreadyRegistered,
      registryError,
      exportKey: row.export_key,
      promoted: false,
      promotionError: null,
    };
    if (row.status === 'registered' && row.version && row.registry) {
      const ref: VersionRef = {
        modelName: row.model_name,
        version: row.version,
        registry: row.registry,
        runId: row.run_id,
        sha256: row.sha256,
        stage: null,
        aliases: [],
      };
      Object.assign(outcome, await exportAndPromote(row, ref, bytes, step.options));
      outcome.file = (await findModelFile(keyOf(row))) ?? row;
    }
    return outcome;
  } finally {
    if (step.held) await releaseModelFile(keyOf(row));
  }
}

async function exportAndPromote(
  row: ModelFileRow,
  ref: VersionRef,
  bytes: Uint8Array | undefined,
  options: RegistrationOptions,
): Promise<Pick<RegistrationOutcome, 'exportKey' | 'promoted' | 'promotionError'>> {
  const promoteNow = options.promote === 'now' || (options.promote === 'once' && (await promotionDue(row)));
  try {
    if (promoteNow)
      return { exportKey: (await promote(ref, SERVING_TARGET, bytes)).exportKey, promoted: true, promotionError: null };
    const exportKey = options.export || row.export_requested ? (await ensureExported(ref, bytes)).key : row.export_key;
    return { exportKey, promoted: false, promotionError: null };
  } catch (error) {
    const reason = mlflowReason(error);
    if (!reason) throw error;
    // Registered and exported, but MLflow failed while moving the alias: the sync function retries.
    await countFailedAttempt(keyOf(row), reason);
    logger.warn('model registered, promotion pending', { model_name: row.model_name, version: row.version, reason });
    return {
      exportKey: (await findModelFile(keyOf(row)))?.export_key ?? null,
      promoted: false,
      promotionError: reason,
    };
  }
}

/**
 * A promotion asked for earlier (an S3 event, an upload while MLflow was down) happens once, and
 * not at all if another model was promoted after this file arrived: the newer decision wins.
 */
async function promotionDue(row: ModelFileRow): Promise<boolean> {
  if (!row.promote_requested || row.promoted_at) return false;
  const pointer = await currentPointer(row.model_name);
  if (!pointer || pointer.sha256 === row.sha256 || Date.parse(pointer.promoted_at) < row.created_at.getTime())
    return true;
  await updateModelFile(keyOf(row), {
    promote_requested: false,
    error: `not promoted: version ${pointer.version} was promoted after this file arrived`,
  });
  logger.info('requested promotion superseded', {
    model_name: row.model_name,
    version: row.version,
    serving_version: pointer.version,
  });
  return false;
}

/** Gives the held row its version (or records why it has none). */
async function assignVersion(
  row: ModelFileRow,
  bytes: Uint8Array,
  register: boolean,
): Promise<{ row: ModelFileRow; registryError: string | null }> {
  const key = keyOf(row);
  const settled = async (patch: Parameters<typeof updateModelFile>[1]) => (await updateModelFile(key, patch)) ?? row;
  try {
    if (registryMode() === 'local') {
      const version = await nextLocalVersion(row.model_name);
      return {
        row: await settled({ status: 'registered', registry: 'local', version, run_id: null, error: null }),
        registryError: null,
      };
    }
    if (!register)
      return { row: await settled({ status: 'stored', error: null }), registryError: REGISTRATION_SKIPPED };
    const version = await registerInMlflow(row, bytes);
    return {
      row: await settled({
        status: 'registered',
        registry: 'mlflow',
        version: version.version,
        run_id: version.run_id,
        error: null,
      }),
      registryError: null,
    };
  } catch (error) {
    const reason = mlflowReason(error);
    // An outage is waited out; a refusal repeated MAX_ATTEMPTS times is given up on.
    const giveUp = !(error instanceof MlflowUnavailableError) && row.attempts >= MAX_ATTEMPTS;
    const updated = await settled({
      status: giveUp ? 'failed' : 'pending_registration',
      error: reason ?? 'registration failed unexpectedly; it will be retried',
    });
    if (!reason) throw error;
    logger.warn('model file stored, registration pending', {
      model_name: row.model_name,
      sha256: row.sha256,
      reason,
      cause: error as Error,
    });
    return { row: updated, registryError: reason };
  }
}

/** One run named after the file (metrics, params, the ONNX model) and one model version tagged with the sha256. */
async function registerInMlflow(row: ModelFileRow, bytes: Uint8Array): Promise<ModelVersion> {
  const client = mlflow()!;
  const [existing] = await client.searchModelVersions({ name: row.model_name, tags: { sha256: row.sha256 } });
  if (existing) return existing;
  const experimentId = await client.getOrCreateExperiment(config().MLFLOW_EXPERIMENT_NAME);
  const run = await client.createRun({
    experimentId,
    runName: row.file_name,
    tags: { sha256: row.sha256, model_name: row.model_name },
  });
  const runId = run.info.run_id;
  try {
    await client.logBatch(runId, {
      metrics: row.metrics,
      params: {
        file_size: String(row.size),
        sha256: row.sha256,
        features: row.features.join(','),
        source: row.source,
        algorithm: row.algorithm,
      },
    });
    const source = await client.logOnnxModel(run, bytes, { fileName: row.file_name });
    await client.getOrCreateRegisteredModel(row.model_name, {
      description: 'HubFólio portfolio quality model (ONNX), registered by hubfolio-functions',
    });
    const version = await client.createModelVersion({
      name: row.model_name,
      source,
      runId,
      tags: { sha256: row.sha256, file_name: row.file_name, source: row.source },
    });
    // The version exists: a failure to close the run must not make the registration look failed.
    await client
      .finishRun(runId)
      .catch((error: unknown) =>
        logger.warn('could not finish the MLflow run', { run_id: runId, error: error as Error }),
      );
    return version;
  } catch (error) {
    await client.finishRun(runId, 'FAILED').catch(() => {});
    throw error;
  }
}
