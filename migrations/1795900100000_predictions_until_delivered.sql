-- Up Migration

-- A prediction is done when ThingsBoard has it (delivered_at), not when the queue or the consumer has
-- seen it: the relay re-sends any undelivered row nothing has handled for a while, whatever became of
-- its message (queue purged, emulator restarted, confirmation lost). From now on:
-- - enqueued_at is the last time the row was known to be on the queue: sent by the relay, or handled by
--   the consumer without being delivered (a retry copy queued). NULL when it is not: never confirmed,
--   its send failed, or it waits in the database for ThingsBoard to be configured.
-- - parked_at: the consumer moved its message to the dead-letter queue (ThingsBoard refused the point,
--   or failed it for over an hour); the relay leaves it to `npm run dlq:redrive`.
ALTER TABLE predictions ADD COLUMN parked_at timestamptz;

-- What the relay scans, in the order it takes rows: undelivered rows by their last sign of life.
DROP INDEX predictions_not_enqueued_idx;
CREATE INDEX predictions_undelivered_idx ON predictions ((COALESCE(enqueued_at, created_at)))
  WHERE delivered_at IS NULL AND parked_at IS NULL;

-- Down Migration
DROP INDEX predictions_undelivered_idx;
CREATE INDEX predictions_not_enqueued_idx ON predictions (created_at) WHERE enqueued_at IS NULL;
ALTER TABLE predictions DROP COLUMN parked_at;
