-- Up Migration

-- The last outcome of each file dropped under incoming/ (the S3 drop folder), by key, so that
-- GET /model/info can show it. A file that was taken names its model_files row (sha256), where its
-- registration state lives; a refused one keeps the status and reason an upload of it would have had.
CREATE TABLE model_drops (
  key text PRIMARY KEY,
  model_name text NOT NULL,
  -- The object (its ETag) and the S3 event (its sequencer, else its time) last handled: a repeated
  -- delivery of the same event is told from a new put of the same bytes.
  etag text,
  event text NOT NULL,
  sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  status integer CHECK (status BETWEEN 400 AND 499),
  reason text,
  handled_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((sha256 IS NULL) = (status IS NOT NULL))
);

CREATE INDEX model_drops_model_idx ON model_drops (model_name, handled_at DESC);

-- Down Migration
DROP TABLE model_drops;
