-- Up Migration

-- The clock moves to a sequence guarded by a session-level advisory lock that is released when the
-- function returns: allocation happens inside the INSERT statement (one round trip) and no lock is
-- held through the INSERT's commit, so concurrent predictions do not queue behind each other's
-- fsync. setval is not transactional and is WAL-logged before the INSERT's commit record, so an
-- allocation is never handed out twice, even across a crash; a failed INSERT only skips its range.
CREATE SEQUENCE prediction_clock_seq AS bigint MINVALUE 0 START 0 CACHE 1;
SELECT setval('prediction_clock_seq', (SELECT last_ms FROM prediction_clock), true);
DROP TABLE prediction_clock;

CREATE OR REPLACE FUNCTION allocate_prediction_ts(n integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  first_ms bigint;
BEGIN
  PERFORM pg_advisory_lock(7242001);
  BEGIN
    first_ms := GREATEST((SELECT last_value FROM prediction_clock_seq) + 1,
                         floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint);
    PERFORM setval('prediction_clock_seq', first_ms + n - 1);
  EXCEPTION WHEN OTHERS THEN
    PERFORM pg_advisory_unlock(7242001);
    RAISE;
  END;
  PERFORM pg_advisory_unlock(7242001);
  RETURN first_ms;
END;
$$;

-- Down Migration
CREATE TABLE prediction_clock (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_ms bigint NOT NULL
);
INSERT INTO prediction_clock (id, last_ms) VALUES (true, (SELECT last_value FROM prediction_clock_seq));
DROP FUNCTION allocate_prediction_ts(integer);
DROP SEQUENCE prediction_clock_seq;
