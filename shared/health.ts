import { config } from '#shared/config';
import { pool } from '#shared/db';
import { logger } from '#shared/log';
import { queueReachable } from '#prediction/queue';
import type { HealthReport } from '#api/responses';
import { mlflow } from '#clients/mlflow/client';
import { servingModels } from '#prediction/serving';
import { bucketState } from '#aws/s3';
import { thingsBoard } from '#clients/thingsboard/client';

const CHECK_TIMEOUT_MS = 2_000;

/** Runs a probe with a deadline; an error or a timeout gives null ("not connected"). */
async function probe<T>(name: string, run: () => Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([run(), deadline]);
  } catch (error) {
    logger.warn('health check failed', { check: name, error: (error as Error).message });
    return null;
  } finally {
    clearTimeout(timer);
  }
}

const answered = async (name: string, run: () => Promise<unknown>) => (await probe(name, run)) !== null;

/**
 * The seed's health keys plus s3_connected (same as minio_connected, kept for compatibility),
 * sqs_connected and model_loaded. PostgreSQL, S3 and SQS are required (unhealthy without them);
 * MLflow and ThingsBoard are optional (degraded, and `issues` says which and why).
 */
export async function healthReport(): Promise<HealthReport> {
  const mlflowClient = mlflow();
  const thingsboardConfigured = thingsBoard().missingConfiguration === undefined;
  const [bucket, postgres, queue, mlflowUp, thingsboardUp, model] = await Promise.all([
    probe('s3', bucketState),
    answered('postgres', () => pool().query('SELECT 1')),
    answered('sqs', queueReachable),
    mlflowClient ? probe('mlflow', mlflowClient.ping).then(Boolean) : false,
    thingsboardConfigured
      ? probe('thingsboard', async () => (await thingsBoard().ping()).reachable).then(Boolean)
      : false,
    answered('model', () => servingModels().get()),
  ]);
  const s3Connected = bucket !== null;

  const issues: string[] = [];
  if (!postgres) issues.push('PostgreSQL is not reachable (DATABASE_URL)');
  if (!s3Connected) issues.push('S3 is not reachable');
  else if (bucket === 'missing') issues.push(`bucket ${config().MODEL_BUCKET} does not exist (MODEL_BUCKET)`);
  if (!queue) issues.push('SQS predictions queue is not reachable (PREDICTIONS_QUEUE_URL)');
  if (!mlflowClient) issues.push('MLflow is not configured (MLFLOW_TRACKING_URI unset)');
  else if (!mlflowUp) issues.push('MLflow is not reachable (MLFLOW_TRACKING_URI)');
  if (!thingsboardConfigured)
    issues.push('ThingsBoard telemetry is not configured (THINGSBOARD_URL or THINGSBOARD_DEVICE_TOKEN unset)');
  else if (!thingsboardUp) issues.push('ThingsBoard is not reachable (THINGSBOARD_URL)');
  if (!model) issues.push('no serving model is loaded; upload one with POST /model/upload');

  const required = postgres && bucket === 'exists' && queue;
  const status = !required ? 'unhealthy' : issues.length === 0 ? 'healthy' : 'degraded';
  return {
    status,
    minio_connected: s3Connected,
    s3_connected: s3Connected,
    bucket_exists: bucket === 'exists',
    postgres_connected: postgres,
    sqs_connected: queue,
    mlflow_connected: mlflowUp,
    thingsboard_connected: thingsboardUp,
    model_loaded: model,
    issues,
    timestamp: new Date().toISOString(),
  };
}
