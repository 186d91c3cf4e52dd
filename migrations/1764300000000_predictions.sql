-- Up Migration

-- Hands out unique millisecond timestamps. ThingsBoard keys telemetry by (device, key, ts), so two
-- predictions with the same ts would overwrite each other on the dashboard: every prediction gets
-- its own ts, which is also its created_at.
CREATE TABLE prediction_clock (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_ms bigint NOT NULL
);
INSERT INTO prediction_clock (id, last_ms) VALUES (true, 0);

-- `n` consecutive unique timestamps at or after the wall clock, returned and also left in the
-- session setting `hubfolio.first_ms` for the INSERT that the caller pipelines right behind it
-- (one network round trip for both). Called as a statement of its own with an asynchronous
-- commit, so the clock row is locked for microseconds instead of for a whole INSERT and its
-- fsync: concurrent predictions do not queue behind each other's commits. An allocation
-- lost in a database crash can only hand out a ts again if predictions ran ahead of the wall clock
-- by longer than the restart took; the UNIQUE index on predictions.ts refuses such a row and the
-- caller allocates again.
CREATE FUNCTION allocate_prediction_ts(n integer) RETURNS bigint
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

CREATE TABLE predictions (
  id uuid PRIMARY KEY,
  ts bigint NOT NULL UNIQUE,
  created_at timestamptz NOT NULL,
  user_id bigint NOT NULL CHECK (user_id >= 0),
  portfolio_id bigint CHECK (portfolio_id >= 0),
  projetos_min integer NOT NULL CHECK (projetos_min >= 0),
  habilidades_min integer NOT NULL CHECK (habilidades_min >= 0),
  kw_contexto integer NOT NULL CHECK (kw_contexto >= 0),
  kw_processo integer NOT NULL CHECK (kw_processo >= 0),
  kw_resultado integer NOT NULL CHECK (kw_resultado >= 0),
  consistencia_visual_score double precision NOT NULL CHECK (consistencia_visual_score BETWEEN 0 AND 100),
  bio boolean NOT NULL,
  contatos boolean NOT NULL,
  raw_score double precision NOT NULL,
  predicted_iq numeric(5, 2) NOT NULL CHECK (predicted_iq BETWEEN 0 AND 100),
  classification text NOT NULL CHECK (classification IN ('Excelente', 'Bom', 'Regular', 'Insuficiente')),
  model_name text NOT NULL,
  model_version text NOT NULL,
  -- Delivery toward the queue: NULL until SQS accepted the message (the relay re-sends such rows).
  enqueued_at timestamptz,
  enqueue_attempts integer NOT NULL DEFAULT 0,
  last_enqueue_error text,
  -- Set by the telemetry consumer once ThingsBoard accepted the data point.
  delivered_at timestamptz
);

CREATE INDEX predictions_not_enqueued_idx ON predictions (created_at) WHERE enqueued_at IS NULL;
CREATE INDEX predictions_user_idx ON predictions (user_id, created_at DESC);

-- Down Migration
DROP TABLE predictions;
DROP FUNCTION allocate_prediction_ts(integer);
DROP TABLE prediction_clock;
