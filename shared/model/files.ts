import { pool } from '#shared/db';

/**
 * PostgreSQL rows of the model files the suite has seen (migrations/*_model_registrations.sql).
 * The primary key (model_name, sha256) makes registration exactly-once: a row is claimed by the
 * one INSERT that wins, or taken over with a conditional UPDATE when its last attempt failed or
 * its worker died. The claimer holds a lease (lease_until) until it has finished registering,
 * exporting and promoting; others wait for the lease to end. No statement waits on a lock held
 * across network calls.
 */

export type Metrics = Partial<Record<'r2_score' | 'rmse' | 'mae', number>>;
type ModelFileStatus = 'registering' | 'pending_registration' | 'stored' | 'registered' | 'failed';
export type Registry = 'mlflow' | 'local';

export interface ModelFileRow {
  model_name: string;
  sha256: string;
  file_name: string;
  size: number;
  stored_key: string;
  source: string;
  algorithm: string;
  features: string[];
  metrics: Metrics;
  status: ModelFileStatus;
  lease_until: Date | null;
  attempts: number;
  registry: Registry | null;
  version: string | null;
  run_id: string | null;
  export_requested: boolean;
  export_key: string | null;
  promote_requested: boolean;
  promoted_at: Date | null;
  error: string | null;
  created_at: Date;
  updated_at: Date;
}

export type NewModelFile = Pick<
  ModelFileRow,
  | 'model_name'
  | 'sha256'
  | 'file_name'
  | 'size'
  | 'stored_key'
  | 'source'
  | 'algorithm'
  | 'features'
  | 'metrics'
  | 'export_requested'
  | 'promote_requested'
>;

export interface ModelFileKey {
  model_name: string;
  sha256: string;
}

/**
 * How long a worker may hold a row before another may take it over: longer than the longest function
 * that registers (modelIngest, 300 s in serverless.yml), so a live worker is never overtaken.
 */
const LEASE_SECONDS = 330;

/** Inserts the row as `registering`, leased to the caller; null when the file is already known. */
export async function claimNewModelFile(file: NewModelFile): Promise<ModelFileRow | null> {
  const { rows } = await pool().query<ModelFileRow>(
    `INSERT INTO model_files (model_name, sha256, file_name, size, stored_key, source, algorithm, features, metrics,
                              export_requested, promote_requested, status, lease_until, attempts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'registering', now() + make_interval(secs => $12), 1)
     ON CONFLICT (model_name, sha256) DO NOTHING
     RETURNING *`,
    [
      file.model_name,
      file.sha256,
      file.file_name,
      file.size,
      file.stored_key,
      file.source,
      file.algorithm,
      JSON.stringify(file.features),
      JSON.stringify(file.metrics),
      file.export_requested,
      file.promote_requested,
      LEASE_SECONDS,
    ],
  );
  return rows[0] ?? null;
}

export interface Takeover {
  /** Statuses that may be taken over (besides `registering` rows whose worker died). */
  statuses: ModelFileStatus[];
  /** Also take a file numbered locally: MLflow has been configured since. */
  upgradeLocal?: boolean;
  /** What the new request adds: its metrics (when it has some) and its wishes. */
  metrics?: Metrics;
  exportRequested?: boolean;
  promoteRequested?: boolean;
}

/** Takes over a known row that `takeover` allows and nobody holds; null otherwise. */
export async function reclaimModelFile(key: ModelFileKey, takeover: Takeover): Promise<ModelFileRow | null> {
  const { rows } = await pool().query<ModelFileRow>(
    `UPDATE model_files
        SET status = 'registering', lease_until = now() + make_interval(secs => $4), attempts = attempts + 1, updated_at = now(),
            metrics = CASE WHEN $6::jsonb = '{}'::jsonb THEN metrics ELSE $6::jsonb END,
            export_requested = export_requested OR $7, promote_requested = promote_requested OR $8
      WHERE model_name = $1 AND sha256 = $2
        AND (lease_until IS NULL OR lease_until < now())
        -- 'registering' without a live lease: its worker died.
        AND (status = ANY($3::text[]) OR status = 'registering' OR ($5 AND status = 'registered' AND registry = 'local'))
      RETURNING *`,
    [
      key.model_name,
      key.sha256,
      takeover.statuses,
      LEASE_SECONDS,
      takeover.upgradeLocal ?? false,
      JSON.stringify(takeover.metrics ?? {}),
      takeover.exportRequested ?? false,
      takeover.promoteRequested ?? false,
    ],
  );
  return rows[0] ?? null;
}

/** Ends the caller's lease: the row is settled for others to read. */
export async function releaseModelFile(key: ModelFileKey): Promise<void> {
  await pool().query(
    'UPDATE model_files SET lease_until = NULL, updated_at = now() WHERE model_name = $1 AND sha256 = $2',
    [key.model_name, key.sha256],
  );
}

/** The row and whether a worker holds it right now (by the database's clock). */
export async function findModelFileLease(key: ModelFileKey): Promise<{ row: ModelFileRow; leased: boolean } | null> {
  const { rows } = await pool().query<ModelFileRow & { leased: boolean }>(
    'SELECT *, coalesce(lease_until > now(), false) AS leased FROM model_files WHERE model_name = $1 AND sha256 = $2',
    [key.model_name, key.sha256],
  );
  if (!rows[0]) return null;
  const { leased, ...row } = rows[0];
  return { row, leased };
}

export async function findModelFile(key: ModelFileKey): Promise<ModelFileRow | null> {
  const { rows } = await pool().query<ModelFileRow>('SELECT * FROM model_files WHERE model_name = $1 AND sha256 = $2', [
    key.model_name,
    key.sha256,
  ]);
  return rows[0] ?? null;
}

/** The file registered as `version` of a model in `registry`. */
export async function findModelFileByVersion(
  modelName: string,
  registry: Registry,
  version: string,
): Promise<ModelFileRow | null> {
  const { rows } = await pool().query<ModelFileRow>(
    'SELECT * FROM model_files WHERE model_name = $1 AND registry = $2 AND version = $3 ORDER BY updated_at DESC LIMIT 1',
    [modelName, registry, version],
  );
  return rows[0] ?? null;
}

/** Columns a worker may change; names come from this list, never from input. */
type Patch = Partial<
  Pick<
    ModelFileRow,
    'status' | 'registry' | 'version' | 'run_id' | 'export_key' | 'promote_requested' | 'promoted_at' | 'error'
  >
>;
const PATCHABLE = [
  'status',
  'registry',
  'version',
  'run_id',
  'export_key',
  'promote_requested',
  'promoted_at',
  'error',
] as const;

/** Updates a row; null when there is none. */
export async function updateModelFile(key: ModelFileKey, patch: Patch): Promise<ModelFileRow | null> {
  const columns = PATCHABLE.filter((column) => patch[column] !== undefined);
  const assignments = columns.map((column, i) => `${column} = $${i + 3}`);
  const { rows } = await pool().query<ModelFileRow>(
    `UPDATE model_files SET ${[...assignments, 'updated_at = now()'].join(', ')} WHERE model_name = $1 AND sha256 = $2 RETURNING *`,
    [key.model_name, key.sha256, ...columns.map((column) => patch[column])],
  );
  return rows[0] ?? null;
}

/** Counts a failed attempt that did not go through a claim (a promotion). */
export async function countFailedAttempt(key: ModelFileKey, error: string): Promise<void> {
  await pool().query(
    'UPDATE model_files SET attempts = attempts + 1, error = $3, updated_at = now() WHERE model_name = $1 AND sha256 = $2',
    [key.model_name, key.sha256, error],
  );
}

/** The next version number of a model when the suite numbers versions itself (no MLflow configured). */
export async function nextLocalVersion(modelName: string): Promise<string> {
  const { rows } = await pool().query<{ last_version: number }>(
    `INSERT INTO model_local_versions (model_name, last_version) VALUES ($1, 1)
     ON CONFLICT (model_name) DO UPDATE SET last_version = model_local_versions.last_version + 1
     RETURNING last_version`,
    [modelName],
  );
  return String(rows[0]!.last_version);
}

/**
 * Rows the sync function should move on: registrations that failed or whose worker died, and
 * registered files whose requested promotion has not happened yet; oldest first, bounded attempts.
 */
export async function unfinishedModelFiles(maxAttempts: number, limit: number): Promise<ModelFileRow[]> {
  const { rows } = await pool().query<ModelFileRow>(
    `SELECT * FROM model_files
      WHERE attempts < $1
        AND (lease_until IS NULL OR lease_until < now())
        AND (status = 'pending_registration'
             OR (status = 'registering' AND lease_until < now())
             OR (status = 'registered' AND promote_requested AND promoted_at IS NULL))
      ORDER BY updated_at
      LIMIT $2`,
    [maxAttempts, limit],
  );
  return rows;
}

/** Model names the suite has registered files for. */
export async function knownModelNames(): Promise<string[]> {
  const { rows } = await pool().query<{ model_name: string }>(
    'SELECT DISTINCT model_name FROM model_files ORDER BY model_name',
  );
  return rows.map((r) => r.model_name);
}

export interface SyncState {
  alias_version: string | null;
  stage_version: string | null;
}

export async function readSyncState(modelName: string): Promise<SyncState | null> {
  const { rows } = await pool().query<SyncState>(
    'SELECT alias_version, stage_version FROM model_serving_sync WHERE model_name = $1',
    [modelName],
  );
  return rows[0] ?? null;
}

export async function saveSyncState(modelName: string, state: SyncState): Promise<void> {
  await pool().query(
    `INSERT INTO model_serving_sync (model_name, alias_version, stage_version, checked_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (model_name) DO UPDATE SET alias_version = $2, stage_version = $3, checked_at = now()`,
    [modelName, state.alias_version, state.stage_version],
  );
}
