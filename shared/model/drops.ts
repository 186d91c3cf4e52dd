import { pool } from '#shared/db';

/**
 * The drop folder's outcomes in PostgreSQL (migrations/*_model_drops.sql): the last one per key,
 * for GET /model/info and for telling a repeated S3 event from a new put. A file that was taken is
 * linked to its model_files row, which holds its registration state (one source for it); a refused
 * one records the status and reason POST /model/upload would have answered for it.
 */

export interface DropRecord {
  key: string;
  model_name: string;
  etag: string | null;
  /** The S3 event that handled the object: its sequencer (else its time). */
  event: string;
  /** The file taken, or null when it was refused. */
  sha256: string | null;
  /** A refusal's 4xx status and reason. */
  status: number | null;
  reason: string | null;
}

/** What an upload of the same file answers: the outcome and its status, and the version once it has one. */
export interface DropOutcome {
  key: string;
  outcome: 'registered' | 'pending' | 'stored' | 'failed' | 'rejected';
  status: number;
  reason: string | null;
  version: string | null;
  sha256: string | null;
  handled_at: string;
}

/** PostgreSQL text holds no NUL; S3 keys and the refusals that quote them may. */
const text = (value: string | null) => value?.replaceAll('\u0000', '\uFFFD') ?? null;

export async function recordDrop(drop: DropRecord): Promise<void> {
  await pool().query(
    `INSERT INTO model_drops (key, model_name, etag, event, sha256, status, reason, handled_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, now())
     ON CONFLICT (key) DO UPDATE
       SET model_name = $2, etag = $3, event = $4, sha256 = $5, status = $6, reason = $7, handled_at = now()`,
    [text(drop.key), text(drop.model_name), drop.etag, drop.event, drop.sha256, drop.status, text(drop.reason)],
  );
}

export async function findDrop(key: string): Promise<DropRecord | null> {
  const { rows } = await pool().query<DropRecord>(
    'SELECT key, model_name, etag, event, sha256, status, reason FROM model_drops WHERE key = $1',
    [text(key)],
  );
  return rows[0] ?? null;
}

/** The latest drops for a model, newest first, with the registration state of the files taken. */
export async function recentDrops(modelName: string, limit = 10): Promise<DropOutcome[]> {
  const { rows } = await pool().query<{
    key: string;
    sha256: string | null;
    status: number | null;
    reason: string | null;
    handled_at: Date;
    file_status: string | null;
    version: string | null;
    error: string | null;
  }>(
    `SELECT d.key, d.sha256, d.status, d.reason, d.handled_at, f.status AS file_status, f.version, f.error
       FROM model_drops d
       LEFT JOIN model_files f ON f.model_name = d.model_name AND f.sha256 = d.sha256
      WHERE d.model_name = $1
      ORDER BY d.handled_at DESC
      LIMIT $2`,
    [modelName, limit],
  );
  return rows.map((row) => {
    const common = { key: row.key, sha256: row.sha256, handled_at: row.handled_at.toISOString() };
    if (row.status !== null)
      return { ...common, outcome: 'rejected', status: row.status, reason: row.reason, version: null };
    const outcome =
      row.file_status === 'registered' || row.file_status === 'stored' || row.file_status === 'failed'
        ? row.file_status
        : 'pending';
    // As POST /model/upload: 200 when done, 202 while MLflow has not taken it.
    const done = outcome === 'registered' || outcome === 'stored';
    return { ...common, outcome, status: done ? 200 : 202, reason: done ? null : row.error, version: row.version };
  });
}
