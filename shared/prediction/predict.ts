import { randomUUID } from 'node:crypto';
import { connectEarly, databaseWork, pool } from '#shared/db';
import { UnprocessableError } from '#http/errors';
import { logger } from '#shared/log';
import { recordPredictions } from '#shared/metrics';
import { allocateTimestamps, insertPredictions, markEnqueueFailed, type PredictionRow } from '#prediction/store';
import { sendPredictions } from '#prediction/queue';
import type { PredictRequest, PredictResponse } from '#prediction/api';
import { classify, featureRow, toIq } from '#prediction/features';
import { servingModels, type ServingPointer } from '#prediction/serving';

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
 * A score that is not a finite number (a model that overflows float32 for these values) cannot be
 * stored or shown: the request is refused with a 422 that names each such row (`{itemsField}.{i}`
 * for a batch), and nothing is stored. Valid rows of the same batch are not stored either, as for a
 * batch with an invalid row: the caller resends the rest.
 */
function refuseNonFinite(scores: number[], pointer: ServingPointer, itemsField: string | undefined): void {
  const bad = scores.flatMap((score, i) => (Number.isFinite(score) ? [] : [i]));
  if (bad.length === 0) return;
  const model = `The serving model ${pointer.model_name} v${pointer.version}`;
  logger.warn('the serving model returned non-finite scores', {
    model_name: pointer.model_name,
    version: pointer.version,
    rows: bad.length,
  });
  const fix = 'nothing was stored. The input is valid; the model cannot score it (promote a model that can).';
  if (itemsField === undefined)
    throw new UnprocessableError(`${model} returned ${scores[bad[0]!]} for this portfolio: ${fix}`);
  throw new UnprocessableError(
    `${model} returned a non-finite score for ${bad.length} of ${scores.length} rows (${bad
      .slice(0, 10)
      .map((i) => `${itemsField}.${i}`)
      .join(', ')}${bad.length > 10 ? ', …' : ''}): ${fix}`,
    {
      issues: bad.map((i) => ({
        field: `${itemsField}.${i}`,
        message: `the serving model returned ${scores[i]} for this row`,
      })),
    },
  );
}

/**
 * Scores inputs with the serving model (one inference run), stores them (one statement), then
 * hands them to the queue. A queue failure does not fail the request: the rows stay not enqueued
 * and the relay sends them later. On the happy path: two PostgreSQL statements (the timestamp
 * allocation runs while the model scores) and one call to SQS. `itemsField` names the request's
 * list of rows, for errors about one of them (a batch).
 */
export async function predict(inputs: PredictRequest[], itemsField?: string): Promise<PredictResponse[]> {
  const started = performance.now();
  const [{ model, pointer }] = await Promise.all([servingModels().get(), connectEarly()]);
  const [firstMs, scores] = await Promise.all([
    databaseWork(allocateTimestamps(pool(), inputs.length)),
    model.predict(inputs.map(featureRow)),
  ]);
  refuseNonFinite(scores, pointer, itemsField);
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
  recordPredictions(pointer.version, stored.length, performance.now() - started);
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
