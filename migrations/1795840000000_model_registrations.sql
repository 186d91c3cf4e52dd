-- Up Migration

-- One row per model file (by content) and model name: the exactly-once key of registration. The
-- row is inserted with ON CONFLICT DO NOTHING before anything is registered, so that of two
-- requests or S3 events carrying the same file only one registers it; the other waits for the row
-- to settle and answers with the same version.
CREATE TABLE model_files (
  model_name text NOT NULL,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  file_name text NOT NULL,
  size bigint NOT NULL CHECK (size > 0),
  -- The copy the suite keeps (uploads/...), from which a pending registration is retried.
  stored_key text NOT NULL,
  -- 'upload' or the s3:// URI of the dropped object.
  source text NOT NULL,
  algorithm text NOT NULL,
  features jsonb NOT NULL,
  metrics jsonb NOT NULL DEFAULT '{}',
  -- registering: being registered; pending_registration: MLflow failed, retried by the sync function
  -- or a new upload; stored: kept without a version (register_in_mlflow=false); registered: has a
  -- version; failed: MLflow kept refusing it (a new upload retries).
  status text NOT NULL CHECK (status IN ('registering', 'pending_registration', 'stored', 'registered', 'failed')),
  -- While in the future, a worker holds the row (registering, exporting, promoting); others wait.
  -- A row whose lease ran out with status 'registering' lost its worker and may be taken over.
  lease_until timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  -- 'mlflow' when MLflow numbered the version, 'local' when MLFLOW_TRACKING_URI is unset.
  registry text CHECK (registry IN ('mlflow', 'local')),
  version text,
  run_id text,
  -- The uploader asked for an export (export_to_s3); a pending registration exports when it completes.
  export_requested boolean NOT NULL DEFAULT true,
  export_key text,
  -- The uploader asked for this file to serve; honoured once it has a version, unless another
  -- model was promoted in the meantime.
  promote_requested boolean NOT NULL DEFAULT false,
  promoted_at timestamptz,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model_name, sha256)
);

CREATE INDEX model_files_version_idx ON model_files (model_name, registry, version) WHERE version IS NOT NULL;
CREATE INDEX model_files_unfinished_idx ON model_files (updated_at)
  WHERE status IN ('registering', 'pending_registration') OR (promote_requested AND promoted_at IS NULL);

-- Version numbers handed out when no MLflow is configured (MLFLOW_TRACKING_URI unset).
CREATE TABLE model_local_versions (
  model_name text PRIMARY KEY,
  last_version integer NOT NULL
);

-- What the sync function last saw in MLflow for a model, so that it acts on what changed there
-- (the `production` alias or the Production stage moved) and not on every run.
CREATE TABLE model_serving_sync (
  model_name text PRIMARY KEY,
  alias_version text,
  stage_version text,
  checked_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE model_serving_sync;
DROP TABLE model_local_versions;
DROP TABLE model_files;
