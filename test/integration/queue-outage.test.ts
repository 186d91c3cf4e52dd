import { afterAll, beforeAll, expect, it } from 'vitest';
import { handler as predictHandler } from '../../functions/predict/handler.ts';
import { randomUUID } from 'node:crypto';
import { pool } from '#shared/db';
import { insertPredictions, markSeenByConsumer } from '#prediction/store';
import { relayNotEnqueued } from '#prediction/relay';
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
  expect(await relayNotEnqueued()).toMatchObject({ sent: 0 });
  const [stillPending] = await query('SELECT enqueued_at, enqueue_attempts FROM predictions WHERE id = $1', [
    body.prediction_id,
  ]);
  expect(stillPending).toMatchObject({ enqueued_at: null, enqueue_attempts: 2 });

  const queueUrl = await startQueue();
  expect(queueUrl).toBe(process.env.PREDICTIONS_QUEUE_URL);
  await relayNotEnqueued();
  await relayNotEnqueued();

  const messages = queuedPredictions(await drainQueue(queueUrl));
  expect(messages.filter((m) => m.prediction_id === body.prediction_id)).toHaveLength(1);
  const [sent] = await query('SELECT enqueued_at FROM predictions WHERE id = $1', [body.prediction_id]);
  expect(sent.enqueued_at).not.toBeNull();
});

it('re-sends a row that was never sent only after the unconfirmed grace, and never one the consumer confirmed', async () => {
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
  const [orphan, confirmed] = await insertPredictions(pool(), [newRow(4002), newRow(4002)]);
  await markSeenByConsumer(pool(), [confirmed!.id], []);
  const queueUrl = process.env.PREDICTIONS_QUEUE_URL!;
  await drainQueue(queueUrl);

  await relayNotEnqueued();
  expect(queuedPredictions(await drainQueue(queueUrl)).filter((m) => m.user_id === 4002)).toHaveLength(0);

  // Timestamps run ahead of the wall clock after a burst (a 1,000-row batch spans a second): let the orphan's pass.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, orphan!.ts - Date.now() + 50)));
  // Until nothing is left: a relay run sends at most 500 rows, and earlier tests of this file leave rows too.
  while ((await relayNotEnqueued({ grace: { failedGraceMs: 0, unconfirmedGraceMs: 0 } })).sent > 0);
  const ids = queuedPredictions(await drainQueue(queueUrl))
    .filter((m) => m.user_id === 4002)
    .map((m) => m.prediction_id);
  expect(ids).toEqual([orphan!.id]);
});

it('never sends one row twice when relays run side by side', async () => {
  await sqs!.stop();
  sqs = undefined;
  for (let i = 0; i < 20; i++) await postJson(predictHandler, '/predict', { ...SEED_EXAMPLE, user_id: 4003 });
  const queueUrl = await startQueue();
  await Promise.all([1, 2, 3].map(() => relayNotEnqueued({ limit: 8 })));
  await relayNotEnqueued();
  // The relay packs what it sends into envelopes, as a batch does.
  const messages = queuedPredictions(await drainQueue(queueUrl));
  const ids = messages.filter((m) => m.user_id === 4003).map((m) => m.prediction_id);
  const rows = await query('SELECT id, enqueued_at FROM predictions WHERE user_id = 4003');
  expect(ids.sort()).toEqual(rows.map((r) => r.id).sort());
  expect(rows.every((r) => r.enqueued_at !== null)).toBe(true);
});
