import { randomUUID } from 'node:crypto';
import { connectEarly, databaseWork, pool } from '#shared/db';
import { logger } from '#shared/log';
import { allocateTimestamps, insertPredictions, markEnqueueFailed, type PredictionRow } from '#prediction/store';
import { sendPredictions } from '#prediction/queue';
import type { PredictRequest, PredictResponse } from '#prediction/api';
import { classify, featureRow, toIq } from '#prediction/features';
import { servingModels } from '#prediction/serving';

function toResponse(row: PredictionRow): PredictResponse {
  return {
    prediction_id: row.id,
    predicted_iq: row.predicted_iq,
    classification: row.classification,
    model_name: row.model_name,
    model_version: row.model_version,
    user_id: row.input.user_id,
    portfolio_id: row.input.portfolio_id ?? null,
    created_at: row.created_at,
  };
}

/**
 * Scores inputs with the serving model (one inference run), stores them (one statement), then
 * hands them to the queue. A queue failure does not fail the request: the rows stay not enqueued
 * and the relay sends them later. On the happy path: two PostgreSQL statements (the timestamp
 * allocation runs while the model scores) and one call to SQS.
 */
export async function predict(inputs: PredictRequest[]): Promise<PredictResponse[]> {
  const [{ model, pointer }] = await Promise.all([servingModels().get(), connectEarly()]);
  const [firstMs, scores] = await Promise.all([
    databaseWork(allocateTimestamps(pool(), inputs.length)),
    model.predict(inputs.map(featureRow)),
  ]);
  if (!scores.every(Number.isFinite))
    throw new Error(`serving model ${pointer.model_name} v${pointer.version} returned a non-finite score`);
  const rows = inputs.map((input, i) => {
    const raw = scores[i]!;
    const iq = toIq(raw);
    return {
      id: randomUUID(),
      input,
      raw_score: raw,
      predicted_iq: iq,
      classification: classify(iq),
      model_name: pointer.model_name,
      model_version: pointer.version,
    };
  });
  const stored = await databaseWork(insertPredictions(pool(), rows, firstMs));
  await enqueue(stored);
  return stored.map(toResponse);
}

/**
 * Sends stored rows to the queue; never throws. Success costs no write: the telemetry consumer
 * confirms what it receives. A failure is recorded on the rows, and the relay re-sends them.
 */
async function enqueue(rows: PredictionRow[]): Promise<void> {
  const { failed } = await sendPredictions(rows);
  if (failed.length === 0) return;
  logger.warn('queue refused predictions; the relay will re-send them', {
    count: failed.length,
    reason: failed[0]!.reason,
  });
  try {
    await markEnqueueFailed(
      pool(),
      failed.map((f) => f.id),
      failed[0]!.reason,
    );
  } catch (error) {
    // The rows are stored; the relay still finds them once its unconfirmed grace has passed.
    logger.error('could not record the failed send', { error: error as Error });
  }
}
