import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { pool } from '#shared/db';
import { insertPredictions, type NewPrediction } from '#shared/prediction-store';
import { query, SEED_EXAMPLE } from '../helpers/fixtures.ts';

const newRow = (userId: number): NewPrediction => ({
  id: randomUUID(),
  input: { ...SEED_EXAMPLE, user_id: userId },
  raw_score: 82.5,
  predicted_iq: 82.5,
  classification: 'Bom',
  model_name: 'hubfolio-model',
  model_version: '0',
});

it('gives every prediction its own millisecond, even when many are stored at once', async () => {
  const batches = await Promise.all(Array.from({ length: 8 }, () => insertPredictions(pool(), Array.from({ length: 25 }, () => newRow(5001)))));
  const stored = await query<{ ts: number; created_at: Date }>('SELECT ts, created_at FROM predictions WHERE user_id = 5001');
  expect(new Set(stored.map((r) => r.ts)).size).toBe(200);
  expect(stored.every((r) => r.created_at.getTime() === r.ts)).toBe(true);
  for (const batch of batches) expect(batch.map((r) => r.ts)).toEqual(batch.map((_, i) => batch[0]!.ts + i));
});

it('allocates again when the clock hands out a ts already taken (a crash lost clock updates)', async () => {
  const [taken] = await insertPredictions(pool(), [newRow(5002)]);
  const future = Date.now() + 3_600_000;
  await query('UPDATE predictions SET ts = $1 WHERE id = $2', [future, taken!.id]);
  await query('UPDATE prediction_clock SET last_ms = $1', [future - 1]);
  try {
    const [stored] = await insertPredictions(pool(), [newRow(5002)]);
    expect(stored!.ts).toBe(future + 1);
  } finally {
    // Back to the wall clock for the files that share this database (embedded PGlite).
    await query('DELETE FROM predictions WHERE user_id = 5002');
    await query('UPDATE prediction_clock SET last_ms = floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint');
  }
});
