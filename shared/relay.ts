import { pool } from '#shared/db';
import { logger } from '#shared/log';
import { lockNotEnqueued, markEnqueued, markEnqueueFailed } from '#shared/prediction-store';
import { sendPredictions } from '#shared/queue';

/**
 * Rows younger than this may still be inside their own /predict send: the relay leaves them alone.
 * It must exceed the predict functions' timeout (serverless.yml), so that a row the relay picks up
 * belongs to an invocation that has ended.
 */
export const RELAY_GRACE_MS = 60_000;

export interface RelayOutcome {
  sent: number;
  failed: number;
}

/**
 * Re-sends stored predictions that the queue never accepted. The rows are locked (SKIP LOCKED) and
 * marked in the same transaction as their send, so two relays never send the same row and a row the
 * relay sent is never sent again by it.
 */
export async function relayNotEnqueued({ graceMs = RELAY_GRACE_MS, limit = 500 } = {}): Promise<RelayOutcome> {
  const client = await pool().connect();
  try {
    await client.query('BEGIN');
    const rows = await lockNotEnqueued(client, graceMs, limit);
    const { sent, failed } = await sendPredictions(rows);
    await markEnqueued(client, sent);
    if (failed.length > 0) await markEnqueueFailed(client, failed.map((f) => f.id), failed[0]!.reason);
    await client.query('COMMIT');
    if (rows.length > 0) logger.info('relay ran', { sent: sent.length, failed: failed.length });
    return { sent: sent.length, failed: failed.length };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
