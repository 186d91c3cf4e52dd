import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { config } from '#shared/config';
import { UnprocessableError } from '#http/errors';
import { logger } from '#shared/log';
import { currentPointer, type ServingPointer } from '#prediction/serving';
import { knownModelNames, readSyncState, saveSyncState, unfinishedModelFiles } from '#model/files';
import { mlflowVersionRef, serve, SERVING_ALIAS, SERVING_STAGE, type VersionRef } from '#model/promotion';
import { MAX_ATTEMPTS, resumeModelFile } from '#model/registration';
import { sqs } from '#prediction/queue';
import { mlflow, type MlflowClient } from '#clients/mlflow/client';
import type { ModelVersion } from '#clients/mlflow/entities';
import { MlflowError } from '#clients/mlflow/errors';

/**
 * The scheduled sync (every minute): what makes MLflow the place where models are promoted.
 * 1. Finishes registrations that MLflow's outage left pending, and promotions asked for then.
 * 2. For each model, reads MLflow's `production` alias and latest Production version; when one of
 *    them moved since the last run (a promotion in MLflow's UI), exports that version and points the
 *    serving pointer at it. Predict containers reload within MODEL_REFRESH_SECONDS.
 * Acting on what moved, not on the current state, lets either mechanism promote even when the other
 * still names an older version; when both moved, the alias (MLflow's current mechanism) wins.
 * With MLflow down nothing changes: predictions keep the last exported model.
 *
 * EventBridge schedules run at most once a minute, so each scheduled run also leaves a message on
 * the model-sync queue, delayed 30 s, that invokes the function for a second look: a promotion in
 * MLflow is published within 30 s and reaches predictions MODEL_REFRESH_SECONDS later (60 s with the
 * defaults), and no function sits waiting (and billed) between the two looks.
 */

/** Unfinished files handled per run, so one run stays well inside the function's timeout. */
const RESUME_BATCH = 10;
/** When the second look of a scheduled run comes. */
const SECOND_LOOK_DELAY_SECONDS = 30;

interface ModelSyncResult {
  model_name: string;
  action: 'unchanged' | 'published' | 'refused' | 'failed';
  version?: string;
  reason?: string;
}

export interface SyncReport {
  mlflow: 'not configured' | 'unreachable' | 'reachable';
  resumed: number;
  models: ModelSyncResult[];
}

export async function syncModels(): Promise<SyncReport> {
  const client = mlflow();
  if (!client) return { mlflow: 'not configured', resumed: 0, models: [] };
  if (!(await client.ping())) {
    logger.warn('MLflow is unreachable: serving models stay as they are');
    return { mlflow: 'unreachable', resumed: 0, models: [] };
  }
  const resumed = await resumeUnfinished();
  const names = [...new Set([config().MODEL_NAME, ...(await knownModelNames())])];
  const models: ModelSyncResult[] = [];
  for (const name of names) {
    models.push(
      await syncModel(client, name).catch((error: unknown) => {
        logger.error('could not sync the serving model', { model_name: name, error: error as Error });
        return { model_name: name, action: 'failed' as const, reason: (error as Error).message };
      }),
    );
  }
  return { mlflow: 'reachable', resumed, models };
}

/**
 * A scheduled run: one look now and, when MLflow answered, a delayed message on the model-sync queue
 * for the second. A message that cannot be sent costs that second look only: the next run comes
 * within a minute.
 */
export async function scheduledSync(): Promise<SyncReport> {
  const report = await syncModels();
  const queueUrl = config().MODEL_SYNC_QUEUE_URL;
  if (report.mlflow === 'reachable' && queueUrl) {
    try {
      await sqs().send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify({ look: 'second' }),
          DelaySeconds: SECOND_LOOK_DELAY_SECONDS,
        }),
      );
    } catch (error) {
      logger.warn('could not ask for the second look of the model sync', { error: error as Error });
    }
  }
  return report;
}

async function resumeUnfinished(): Promise<number> {
  let resumed = 0;
  for (const row of await unfinishedModelFiles(MAX_ATTEMPTS, RESUME_BATCH)) {
    try {
      if (await resumeModelFile(row)) resumed++;
    } catch (error) {
      logger.error('could not resume a model file', {
        model_name: row.model_name,
        sha256: row.sha256,
        error: error as Error,
      });
    }
  }
  return resumed;
}

async function latestInStage(client: MlflowClient, name: string): Promise<ModelVersion | null> {
  try {
    return (await client.getLatestVersions(name, [SERVING_STAGE]))[0] ?? null;
  } catch (error) {
    if (error instanceof MlflowError && error.errorCode === 'RESOURCE_DOES_NOT_EXIST') return null;
    throw error;
  }
}

const isServing = (pointer: ServingPointer | null, ref: VersionRef) =>
  pointer !== null &&
  pointer.version === ref.version &&
  (ref.sha256 ? pointer.sha256 === ref.sha256 : pointer.run_id === ref.runId);

async function syncModel(client: MlflowClient, name: string): Promise<ModelSyncResult> {
  const [byAlias, byStage, seen] = await Promise.all([
    client.getVersionByAlias(name, SERVING_ALIAS),
    latestInStage(client, name),
    readSyncState(name),
  ]);
  const moved =
    byAlias && byAlias.version !== seen?.alias_version
      ? byAlias
      : byStage && byStage.version !== seen?.stage_version
        ? byStage
        : null;
  let result: ModelSyncResult = { model_name: name, action: 'unchanged' };
  if (moved) {
    const ref = mlflowVersionRef(moved);
    if (!isServing(await currentPointer(name), ref)) {
      try {
        await serve(ref);
        result = { model_name: name, action: 'published', version: ref.version };
        logger.info('serving model follows MLflow', { model_name: name, version: ref.version });
      } catch (error) {
        // A version that cannot serve is refused once (remembered below), not retried every minute.
        if (!(error instanceof UnprocessableError)) throw error;
        logger.error('version promoted in MLflow cannot serve; the serving model is unchanged', {
          model_name: name,
          version: ref.version,
          reason: error.message,
        });
        result = { model_name: name, action: 'refused', version: ref.version, reason: error.message };
      }
    }
  }
  await saveSyncState(name, { alias_version: byAlias?.version ?? null, stage_version: byStage?.version ?? null });
  return result;
}
