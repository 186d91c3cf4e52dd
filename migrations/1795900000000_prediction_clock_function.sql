-- Up Migration

-- Hands out `n` consecutive unique millisecond timestamps, at or after the wall clock. It runs as a
-- statement of its own with an asynchronous commit, so the clock row is locked for microseconds
-- instead of for a whole INSERT and its fsync: under concurrency, predictions no longer queue
-- behind each other's commits. An allocation lost in a crash can only hand out a ts again if
-- predictions ran ahead of the wall clock by longer than the restart took; the UNIQUE index on
-- predictions.ts refuses such a row and the caller allocates again.
CREATE FUNCTION allocate_prediction_ts(n integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  first_ms bigint;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  UPDATE prediction_clock
     SET last_ms = GREATEST(last_ms, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1) + n
  RETURNING last_ms - n + 1 INTO first_ms;
  RETURN first_ms;
END;
$$;

-- Down Migration
DROP FUNCTION allocate_prediction_ts(integer);
