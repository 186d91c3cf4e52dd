import { pool } from '#shared/db';
import { logger } from '#shared/log';
import { recordOldestUndelivered } from '#shared/metrics';
import { lockUndelivered, markEnqueued, markEnqueueFailed, oldestUndeliveredSeconds } from '#prediction/store';
import { sendPredictions } from '#prediction/queue';
import { thingsBoard } from '#clients/thingsboard/client';

/**
 * PostgreSQL is the source of truth for telemetry: a prediction is done when ThingsBoard has it
 * (`delivered_at`). The relay (every minute) re-sends to the queue every undelivered prediction
 * whose message may be gone, whatever happened to it; ThingsBoard keys data points by (device,
 * key, ts), so a re-send of a point it has overwrites it instead of adding one.
 *
 * When: a row whose send failed, or that the consumer acknowledged to wait for ThingsBoard's
 * configuration, goes at once. Any other row goes once nothing has handled it for the silent grace:
 * a message on its way is handled at least every ~80 s (the longest retry delay, 60 s, plus the
 * consumer's batch deadline), and the consumer notes each handling, so 2 minutes without one means
 * the message is lost (a queue purged or restarted, a /predict that stopped between its INSERT and
 * its send, a confirmation lost in a database outage). That is also far above the predict functions'
 * timeouts (serverless.yml). A prediction waiting when the stack restarts thus reaches ThingsBoard
 * within 3 minutes: the grace, the next run, a batch.
 */
const RELAY_GRACE = { failedGraceMs: 0, silentGraceMs: 2 * 60_000 };
/** Rows per transaction; their envelopes go to the queue in one SendMessageBatch call. */
const BATCH_ROWS = 500;
/** A run stops taking new batches after this, well inside the relay's timeout (serverless.yml: 30 s). */
const RUN_BUDGET_MS = 20_000;

export interface RelayOutcome {
  sent: number;
  failed: number;
  /** ThingsBoard is not configured: nothing was sent, the predictions wait in the database. */
  waiting: boolean;
}

/**
 * One batch: the rows are locked (SKIP LOCKED) and marked in the same transaction as their send,
 * so two relays never send the same row and a row the relay sent is not sent again by it before
 * the silent grace has passed.
 */
async function relayBatch(
  grace: typeof RELAY_GRACE,
  limit: number,
): Promise<{ taken: number; sent: number; failed: number }> {
  const client = await pool().connect();
  try {
    await client.query('BEGIN');
    const rows = await lockUndelivered(client, grace, limit);
    const { sent, failed } = await sendPredictions(rows);
    await markEnqueued(client, sent);
    if (failed.length > 0)
      await markEnqueueFailed(
        client,
        failed.map((f) => f.id),
        failed[0]!.reason,
      );
    await client.query('COMMIT');
    return { taken: rows.length, sent: sent.length, failed: failed.length };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Re-sends undelivered predictions, batch after batch until none is left, the queue refuses them or
 * the run's budget is spent (a backlog of thousands goes in one run), then records the age of the
 * oldest one still undelivered (a metric). While ThingsBoard is not configured it sends and records
 * nothing: the consumer would only acknowledge the messages again, and the predictions wait in the
 * database instead (the consumer says so, once per container).
 */
export async function relayUndelivered({
  grace = RELAY_GRACE,
  limit = BATCH_ROWS,
  budgetMs = RUN_BUDGET_MS,
  telemetryConfigured = thingsBoard().missingConfiguration === undefined,
} = {}): Promise<RelayOutcome> {
  const outcome: RelayOutcome = { sent: 0, failed: 0, waiting: !telemetryConfigured };
  if (!telemetryConfigured) return outcome;
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const batch = await relayBatch(grace, limit);
    outcome.sent += batch.sent;
    outcome.failed += batch.failed;
    if (batch.taken < limit || batch.failed > 0 || Date.now() > deadline) break;
  }
  if (outcome.sent + outcome.failed > 0) logger.info('relay ran', { sent: outcome.sent, failed: outcome.failed });
  // Each run, for the alarm on predictions that stopped reaching the dashboard (serverless.yml).
  recordOldestUndelivered(await oldestUndeliveredSeconds(pool()));
  return outcome;
}
