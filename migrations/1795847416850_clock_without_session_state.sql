-- Up Migration

-- The allocation no longer leaves its result in a session setting for the next statement: behind a
-- transaction-level pooler (RDS Proxy, PgBouncer in transaction mode) that next statement may run
-- on another server connection, which would read another request's allocation or none. Callers
-- pass the returned first timestamp to the INSERT as a parameter, so that every statement stands
-- alone. The rest is unchanged: an asynchronous commit keeps the clock row locked for
-- microseconds, not for an INSERT and its fsync.
CREATE OR REPLACE FUNCTION allocate_prediction_ts(n integer) RETURNS bigint
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
CREATE OR REPLACE FUNCTION allocate_prediction_ts(n integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  first_ms bigint;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  UPDATE prediction_clock
     SET last_ms = GREATEST(last_ms, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1) + n
  RETURNING last_ms - n + 1 INTO first_ms;
  PERFORM set_config('hubfolio.first_ms', first_ms::text, false);
  RETURN first_ms;
END;
$$;
