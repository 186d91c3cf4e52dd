import { afterAll, expect, it, vi } from 'vitest';
import type { LocalStack } from '../../scripts/local/stack.ts';
import { startFakeThingsBoard, type FakeThingsBoard } from '../fakes/thingsboard.ts';
import { query, SEED_EXAMPLE } from '../helpers/fixtures.ts';
import { startTestStack } from '../helpers/stack.ts';

// `npm start` without ThingsBoard, predictions, Ctrl-C (the embedded queue is gone), then `npm start` with
// ThingsBoard: the relay (serverless-offline runs its schedule) sends what waited in PostgreSQL.
let stack: LocalStack | undefined;
let tb: FakeThingsBoard | undefined;

afterAll(async () => {
  await stack?.stop();
  await tb?.close();
});

const post = async (path: string, body: unknown) => {
  const response = await fetch(`${stack!.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return response.json() as Promise<Record<string, unknown>>;
};

it('delivers every prediction made without ThingsBoard exactly once within 3 minutes of a restart with it', {
  timeout: 420_000,
}, async () => {
  stack = await startTestStack({ THINGSBOARD_URL: '', THINGSBOARD_DEVICE_TOKEN: '' });
  const single = await post('/predict', { ...SEED_EXAMPLE, user_id: 9100 });
  const batch = (await post('/predict/batch', {
    items: Array.from({ length: 30 }, (_, i) => ({ ...SEED_EXAMPLE, user_id: 9100, kw_contexto: i })),
  })) as { items: Array<Record<string, unknown>> };
  const ids = [single, ...batch.items].map((p) => String(p.prediction_id));
  // The consumer acknowledges them: they wait in PostgreSQL, not on the queue.
  await vi.waitFor(
    async () =>
      expect(
        await query('SELECT 1 FROM predictions WHERE id = ANY($1::uuid[]) AND last_enqueue_error LIKE $2', [
          ids,
          'waiting for ThingsBoard%',
        ]),
      ).toHaveLength(ids.length),
    { timeout: 90_000, interval: 500 },
  );
  await stack.stop();
  stack = undefined;

  tb = await startFakeThingsBoard();
  const token = tb.addDevice('HubFólio Predictions').token;
  stack = await startTestStack({ THINGSBOARD_URL: tb.url, THINGSBOARD_DEVICE_TOKEN: token });
  const restarted = Date.now();
  const delivered = () =>
    tb!
      .points(token)
      .filter((p) => p.key === 'prediction_id' && ids.includes(String(p.value)))
      .map((p) => String(p.value));
  await vi.waitFor(() => expect(delivered()).toHaveLength(ids.length), { timeout: 180_000, interval: 1_000 });

  expect(Date.now() - restarted).toBeLessThan(180_000);
  expect(delivered().sort()).toEqual([...ids].sort()); // each once: one data point per prediction
  expect(await query('SELECT 1 FROM predictions WHERE id = ANY($1::uuid[]) AND delivered_at IS NULL', [ids])).toEqual(
    [],
  );
});
