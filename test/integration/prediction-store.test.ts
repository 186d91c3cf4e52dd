import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { expect, it } from 'vitest';
import { pool } from '#shared/db';
import { allocateTimestamps, insertPredictions, type NewPrediction } from '#prediction/store';
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
  // Single rows and small batches go in as VALUES, larger ones through unnest: both at once here.
  const sizes = [1, 1, 1, 3, 10, 11, 25, 148];
  const batches = await Promise.all(
    sizes.map((size) =>
      insertPredictions(
        pool(),
        Array.from({ length: size }, () => newRow(5001)),
      ),
    ),
  );
  const stored = await query<{ ts: number; created_at: Date }>(
    'SELECT ts, created_at FROM predictions WHERE user_id = 5001',
  );
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
    // Back to the wall clock for the tests after this one (they share this file's schema).
    await query('DELETE FROM predictions WHERE user_id = 5002');
    await query(`UPDATE prediction_clock
                    SET last_ms = GREATEST(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint, (SELECT max(ts) FROM predictions))`);
  }
});

it('stores every field the same way whether a batch goes in as VALUES or through unnest', async () => {
  const row = (portfolioId: number | null): NewPrediction => ({
    ...newRow(5003),
    input: { ...SEED_EXAMPLE, user_id: 5003, portfolio_id: portfolioId, consistencia_visual_score: 66.25, bio: false },
    raw_score: 71.23456789,
    predicted_iq: 71.23,
    classification: 'Bom',
    model_version: '7',
  });
  const small = await insertPredictions(pool(), [row(null), row(9)]);
  const large = await insertPredictions(
    pool(),
    Array.from({ length: 12 }, (_, i) => row(i % 2 ? 9 : null)),
  );
  const read = await query('SELECT * FROM predictions WHERE id = ANY($1::uuid[]) ORDER BY ts', [
    [...small, ...large].map((r) => r.id),
  ]);
  const comparable = ({ id, ts, created_at, ...fields }: Record<string, unknown>) => ({
    ...fields,
    ts: Number(ts),
    at: (created_at as Date).getTime(),
  });
  expect(read).toHaveLength(14);
  expect(comparable(read[0]!)).toMatchObject({
    portfolio_id: null,
    consistencia_visual_score: 66.25,
    bio: false,
    raw_score: 71.23456789,
    predicted_iq: 71.23,
    model_version: '7',
  });
  expect(comparable(read[1]!)).toMatchObject({ portfolio_id: 9 });
  // Apart from its own id and time, a row read back is the same through either statement.
  const withoutTime = (r: Record<string, unknown>) => ({ ...comparable(r), ts: 0, at: 0 });
  expect(withoutTime(read[2]!)).toEqual(withoutTime(read[0]!));
  expect(withoutTime(read[3]!)).toEqual(withoutTime(read[1]!));
  for (const r of read) expect(comparable(r).at).toBe(Number(r.ts));
});

it('needs no session state: an allocation made on one connection is stored through another (as behind RDS Proxy)', async () => {
  const first = new pg.Client({ connectionString: process.env.DATABASE_URL });
  const second = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await Promise.all([first.connect(), second.connect()]);
  try {
    const firstMs = await allocateTimestamps(first, 2);
    const stored = await insertPredictions(second, [newRow(5004), newRow(5004)], firstMs);
    expect(stored.map((r) => r.ts)).toEqual([firstMs, firstMs + 1]);
    expect(
      (await query('SELECT ts FROM predictions WHERE user_id = 5004 ORDER BY ts')).map((r) => Number(r.ts)),
    ).toEqual([firstMs, firstMs + 1]);
  } finally {
    await Promise.all([first.end(), second.end()]);
  }
});
