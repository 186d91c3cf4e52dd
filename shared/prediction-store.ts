import type pg from 'pg';
import type { Classification, PredictRequest } from '#shared/schemas';

/** A prediction as stored: the request, the model's raw score and what users see. */
export interface PredictionRow {
  id: string;
  ts: number;
  created_at: string;
  input: PredictRequest;
  raw_score: number;
  predicted_iq: number;
  classification: Classification;
  model_name: string;
  model_version: string;
}

export type NewPrediction = Omit<PredictionRow, 'ts' | 'created_at'>;

const UNIQUE_VIOLATION = '23505';

/**
 * Stores predictions: one statement for 1 or 1,000 rows, after `allocate_prediction_ts` (see the
 * first migration) handed out consecutive unique millisecond timestamps. ThingsBoard keys data points by
 * (device, key, ts): two predictions with one ts would overwrite each other on the dashboard.
 */
export async function insertPredictions(db: pg.Pool | pg.PoolClient, rows: NewPrediction[]): Promise<PredictionRow[]> {
  try {
    return await insertWithTimestamps(db, rows);
  } catch (error) {
    // Only after a database crash lost clock updates (see the migration): allocate again, once.
    if ((error as { code?: string; constraint?: string }).code !== UNIQUE_VIOLATION || (error as { constraint?: string }).constraint !== 'predictions_ts_key') throw error;
    return insertWithTimestamps(db, rows);
  }
}

async function insertWithTimestamps(db: pg.Pool | pg.PoolClient, rows: NewPrediction[]): Promise<PredictionRow[]> {
  // Both statements on one connection, sent back to back (the pool's clients pipeline): the INSERT
  // reads the allocation from the session setting the first statement leaves.
  const client = 'release' in db ? db : await db.connect();
  try {
    const allocation = client.query<{ first_ms: number }>('SELECT allocate_prediction_ts($1) AS first_ms', [rows.length]);
    const insertion = insertRows(client, rows);
    const [{ rows: [clock] }] = await Promise.all([allocation, insertion]);
    const firstMs = Number(clock!.first_ms);
    return rows.map((row, i) => ({ ...row, ts: firstMs + i, created_at: new Date(firstMs + i).toISOString() }));
  } finally {
    if (client !== db) client.release();
  }
}

function insertRows(client: pg.PoolClient, rows: NewPrediction[]) {
  const column = <T>(pick: (row: NewPrediction) => T) => rows.map(pick);
  return client.query(
    `INSERT INTO predictions (id, ts, created_at, user_id, portfolio_id, projetos_min, habilidades_min, kw_contexto,
                              kw_processo, kw_resultado, consistencia_visual_score, bio, contatos, raw_score,
                              predicted_iq, classification, model_name, model_version)
     SELECT r.id, clock.first_ms + r.ord - 1, to_timestamp((clock.first_ms + r.ord - 1) / 1000.0), r.user_id, r.portfolio_id,
            r.projetos_min, r.habilidades_min, r.kw_contexto, r.kw_processo, r.kw_resultado, r.consistencia_visual_score,
            r.bio, r.contatos, r.raw_score, r.predicted_iq, r.classification, r.model_name, r.model_version
       FROM (SELECT current_setting('hubfolio.first_ms')::bigint AS first_ms) AS clock,
            unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::int[], $5::int[], $6::int[], $7::int[], $8::int[],
                   $9::float8[], $10::bool[], $11::bool[], $12::float8[], $13::numeric[], $14::text[], $15::text[], $16::text[])
            WITH ORDINALITY AS r(id, user_id, portfolio_id, projetos_min, habilidades_min, kw_contexto, kw_processo, kw_resultado,
                                 consistencia_visual_score, bio, contatos, raw_score, predicted_iq, classification, model_name,
                                 model_version, ord)`,
    [
      column((r) => r.id),
      column((r) => r.input.user_id),
      column((r) => r.input.portfolio_id ?? null),
      column((r) => r.input.projetos_min),
      column((r) => r.input.habilidades_min),
      column((r) => r.input.kw_contexto),
      column((r) => r.input.kw_processo),
      column((r) => r.input.kw_resultado),
      column((r) => r.input.consistencia_visual_score),
      column((r) => r.input.bio),
      column((r) => r.input.contatos),
      column((r) => r.raw_score),
      column((r) => r.predicted_iq),
      column((r) => r.classification),
      column((r) => r.model_name),
      column((r) => r.model_version),
    ],
  );
}

/** Marks predictions as accepted by the queue (the relay, after its own send). */
export async function markEnqueued(db: pg.Pool | pg.PoolClient, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query('UPDATE predictions SET enqueued_at = now() WHERE id = ANY($1::uuid[])', [ids]);
}

/** Records a failed send so that operators can see why rows are pending. */
export async function markEnqueueFailed(db: pg.Pool | pg.PoolClient, ids: string[], reason: string): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    'UPDATE predictions SET enqueue_attempts = enqueue_attempts + 1, last_enqueue_error = $2 WHERE id = ANY($1::uuid[])',
    [ids, reason.slice(0, 500)],
  );
}

/**
 * Records that ThingsBoard accepted these predictions' data points. The first delivery wins: a
 * duplicate or redriven message re-sends the same point (ThingsBoard overwrites it) and leaves the
 * row alone. Bounded in time, because the telemetry consumer must answer within its Lambda timeout.
 */
/**
 * What the telemetry consumer saw: every prediction of a batch is confirmed as queued
 * (`enqueued_at`), and the delivered ones get `delivered_at`. One statement per batch; the first
 * time is kept when a duplicate arrives.
 */
export async function markSeenByConsumer(db: pg.Pool | pg.PoolClient, seen: string[], delivered: string[]): Promise<void> {
  if (seen.length === 0) return;
  await db.query({
    text: `UPDATE predictions
              SET enqueued_at = COALESCE(enqueued_at, now()),
                  delivered_at = CASE WHEN id = ANY($2::uuid[]) THEN COALESCE(delivered_at, now()) ELSE delivered_at END
            WHERE id = ANY($1::uuid[])
              AND (enqueued_at IS NULL OR (delivered_at IS NULL AND id = ANY($2::uuid[])))`,
    values: [seen, delivered],
    query_timeout: 5_000,
  } as pg.QueryConfig);
}

/**
 * Locks up to `limit` predictions the queue may not have: those whose send failed (older than
 * `failedGraceMs`), and those nothing has confirmed for `unconfirmedGraceMs` — a /predict that
 * stopped between its INSERT and its send. SKIP LOCKED lets relays run side by side without taking
 * the same rows. Call inside a transaction.
 */
export async function lockNotEnqueued(
  client: pg.PoolClient,
  grace: { failedGraceMs: number; unconfirmedGraceMs: number },
  limit: number,
): Promise<PredictionRow[]> {
  const { rows } = await client.query(
    `SELECT * FROM predictions
      WHERE enqueued_at IS NULL
        AND ((enqueue_attempts > 0 AND created_at < now() - make_interval(secs => $1::float8 / 1000))
             OR created_at < now() - make_interval(secs => $2::float8 / 1000))
      ORDER BY created_at
      LIMIT $3
      FOR UPDATE SKIP LOCKED`,
    [grace.failedGraceMs, grace.unconfirmedGraceMs, limit],
  );
  return rows.map(fromDb);
}

function fromDb(r: Record<string, any>): PredictionRow {
  return {
    id: r.id,
    ts: Number(r.ts),
    created_at: new Date(Number(r.ts)).toISOString(),
    input: {
      user_id: r.user_id,
      portfolio_id: r.portfolio_id,
      projetos_min: r.projetos_min,
      habilidades_min: r.habilidades_min,
      kw_contexto: r.kw_contexto,
      kw_processo: r.kw_processo,
      kw_resultado: r.kw_resultado,
      consistencia_visual_score: r.consistencia_visual_score,
      bio: r.bio,
      contatos: r.contatos,
    },
    raw_score: r.raw_score,
    predicted_iq: r.predicted_iq,
    classification: r.classification,
    model_name: r.model_name,
    model_version: r.model_version,
  };
}
