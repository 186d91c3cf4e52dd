import { afterAll, beforeAll, expect, it } from 'vitest';
import { handler as predictHandler } from '../../functions/predict/handler.ts';
import { randomUUID } from 'node:crypto';
import { pool } from '#shared/db';
import { insertPredictions, recordConsumerOutcomes } from '#prediction/store';
import { relayUndelivered } from '#prediction/relay';
import { startSqs } from '../../scripts/local/emulators.ts';
import { freePort } from '../../scripts/local/ports.ts';
import { ensureQueues } from '../../scripts/local/resources.ts';
import {
  drainQueue,
  query,
  queuedPredictions,
  SEED_EXAMPLE,
  testEndpoints,
  useSampleModel,
} from '../helpers/fixtures.ts';
import { postJson } from '../helpers/lambda.ts';

// The relay sends only while ThingsBoard is configured; no consumer runs in this file.
process.env.THINGSBOARD_URL = 'http://127.0.0.1:9';
process.env.THINGSBOARD_DEVICE_TOKEN = 'token';

// This file's own SQS emulator on a fixed port, so that it can be stopped and started again.
let sqs: Awaited<ReturnType<typeof startSqs>> | undefined;
let port: number;
const endpoints = () => ({ ...testEndpoints(), sqs: `http://127.0.0.1:${port}` });

async function startQueue() {
  sqs = await startSqs({ port });
  const { queueUrl } = await ensureQueues(endpoints(), 'outage');
  return queueUrl;
}

beforeAll(async () => {
  port = await freePort();
  process.env.AWS_ENDPOINT_URL_SQS = `http://127.0.0.1:${port}`;
  process.env.PREDICTIONS_QUEUE_URL = await startQueue();
  await useSampleModel();
});

afterAll(async () => {
  await sqs?.stop();
});

it('keeps a prediction made while SQS is down and relays it exactly once when SQS is back', async () => {
  await sqs!.stop();
  sqs = undefined;

  const { status, body } = await postJson(predictHandler, '/predict', { ...SEED_EXAMPLE, user_id: 4001 });
  expect(status).toBe(200);
  expect(body.predicted_iq).toBe(82.5);
  const [pending] = await query(
    'SELECT enqueued_at, enqueue_attempts, last_enqueue_error FROM predictions WHERE id = $1',
    [body.prediction_id],
  );
  expect(pending.enqueued_at).toBeNull();
  expect(pending.enqueue_attempts).toBe(1);
  expect(pending.last_enqueue_error).toBeTruthy();

  // The relay while SQS is still down sends nothing and loses nothing.
  expect(await relayUndelivered()).toMatchObject({ sent: 0 });
  const [stillPending] = await query('SELECT enqueued_at, enqueue_attempts FROM predictions WHERE id = $1', [
    body.prediction_id,
  ]);
  expect(stillPending).toMatchObject({ enqueued_at: null, enqueue_attempts: 2 });

  const queueUrl = await startQueue();
  expect(queueUrl).toBe(process.env.PREDICTIONS_QUEUE_URL);
  await relayUndelivered();
  await relayUndelivered();

  const messages = queuedPredictions(await drainQueue(queueUrl));
  expect(messages.filter((m) => m.prediction_id === body.prediction_id)).toHaveLength(1);
  const [sent] = await query('SELECT enqueued_at FROM predictions WHERE id = $1', [body.prediction_id]);
  expect(sent.enqueued_at).not.toBeNull();
});

it('re-sends a row nothing has handled for the silent grace, and not one the consumer handled within it', async () => {
  // A /predict that stopped between its INSERT and its send: the row exists, no failure was recorded.
  const newRow = (userId: number) => ({
    id: randomUUID(),
    input: { ...SEED_EXAMPLE, user_id: userId },
    raw_score: 82.5,
    predicted_iq: 82.5,
    classification: 'Bom' as const,
    model_name: 'hubfolio-model',
    model_version: '0',
  });
  const [orphan, handled] = await insertPredictions(pool(), [newRow(4002), newRow(4002)]);
  const queueUrl = process.env.PREDICTIONS_QUEUE_URL!;
  await drainQueue(queueUrl);
  const sentFor4002 = async () => queuedPredictions(await drainQueue(queueUrl)).filter((m) => m.user_id === 4002);

  await relayUndelivered();
  expect(await sentFor4002()).toHaveLength(0);

  // Three minutes later, the consumer having just queued a retry copy of the second one.
  await query("UPDATE predictions SET created_at = created_at - interval '3 minutes' WHERE user_id = 4002");
  await recordConsumerOutcomes(pool(), {
    delivered: [],
    requeued: [handled!.id],
    parked: [],
    waiting: { ids: [], reason: '' },
  });
  await relayUndelivered();
  expect((await sentFor4002()).map((m) => m.prediction_id)).toEqual([orphan!.id]);

  // Sent now, so not again until its message has been silent for the grace too.
  await relayUndelivered();
  expect(await sentFor4002()).toHaveLength(0);
});

it('never sends one row twice when relays run side by side', async () => {
  await sqs!.stop();
  sqs = undefined;
  for (let i = 0; i < 20; i++) await postJson(predictHandler, '/predict', { ...SEED_EXAMPLE, user_id: 4003 });
  const queueUrl = await startQueue();
  await Promise.all([1, 2, 3].map(() => relayUndelivered({ limit: 8 })));
  await relayUndelivered();
  // The relay packs what it sends into envelopes, as a batch does.
  const messages = queuedPredictions(await drainQueue(queueUrl));
  const ids = messages.filter((m) => m.user_id === 4003).map((m) => m.prediction_id);
  const rows = await query('SELECT id, enqueued_at FROM predictions WHERE user_id = 4003');
  expect(ids.sort()).toEqual(rows.map((r) => r.id).sort());
  expect(rows.every((r) => r.enqueued_at !== null)).toBe(true);
});
