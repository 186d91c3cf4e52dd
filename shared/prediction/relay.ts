import { pool } from '#shared/db';
import { logger } from '#shared/log';
import { lockNotEnqueued, markEnqueued, markEnqueueFailed } from '#prediction/store';
import { sendPredictions } from '#prediction/queue';

/**
 * When the relay re-sends a row. A /predict records a failed send on the row, so such rows can go
 * at once. A row nothing has confirmed (neither the relay nor the telemetry consumer, which marks
 * every prediction it receives) is re-sent after the second grace: its /predict stopped between
 * the INSERT and the send. That grace is far above the predict functions' timeout (serverless.yml)
 * and the time a message waits for the consumer, so a row still on its way is not sent again.
 */
const RELAY_GRACE = { failedGraceMs: 0, unconfirmedGraceMs: 15 * 60_000 };

export interface RelayOutcome {
  sent: number;
  failed: number;
}

/**
 * Re-sends stored predictions the queue may not have. The rows are locked (SKIP LOCKED) and
 * marked in the same transaction as their send, so two relays never send the same row and a row
 * the relay sent is never sent again by it.
 */
export async function relayNotEnqueued({ grace = RELAY_GRACE, limit = 500 } = {}): Promise<RelayOutcome> {
  const client = await pool().connect();
  try {
    await client.query('BEGIN');
    const rows = await lockNotEnqueued(client, grace, limit);
    const { sent, failed } = await sendPredictions(rows);
    await markEnqueued(client, sent);
    if (failed.length > 0)
      await markEnqueueFailed(
        client,
        failed.map((f) => f.id),
        failed[0]!.reason,
      );
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
