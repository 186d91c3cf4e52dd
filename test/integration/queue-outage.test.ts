import { afterAll, beforeAll, expect, it } from 'vitest';
import { handler as predictHandler } from '../../functions/predict/handler.ts';
import { relayNotEnqueued } from '#shared/relay';
import { startSqs } from '../../scripts/local/emulators.ts';
import { freePort } from '../../scripts/local/ports.ts';
import { ensureQueues } from '../../scripts/local/resources.ts';
import { drainQueue, query, SEED_EXAMPLE, testEndpoints, useSampleModel } from '../helpers/fixtures.ts';
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
  const [pending] = await query('SELECT enqueued_at, enqueue_attempts, last_enqueue_error FROM predictions WHERE id = $1', [body.prediction_id]);
  expect(pending.enqueued_at).toBeNull();
  expect(pending.enqueue_attempts).toBe(1);
  expect(pending.last_enqueue_error).toBeTruthy();

  // The relay while SQS is still down sends nothing and loses nothing.
  expect(await relayNotEnqueued({ graceMs: 0 })).toMatchObject({ sent: 0 });

  const queueUrl = await startQueue();
  expect(queueUrl).toBe(process.env.PREDICTIONS_QUEUE_URL);
  await relayNotEnqueued({ graceMs: 0 });
  await relayNotEnqueued({ graceMs: 0 });

  const messages = await drainQueue(queueUrl);
  expect(messages.filter((m) => JSON.parse(m.Body!).prediction_id === body.prediction_id)).toHaveLength(1);
  const [sent] = await query('SELECT enqueued_at FROM predictions WHERE id = $1', [body.prediction_id]);
  expect(sent.enqueued_at).not.toBeNull();
});

it('leaves young rows to their own request (grace period)', async () => {
  await sqs!.stop();
  sqs = undefined;
  const { body } = await postJson(predictHandler, '/predict', { ...SEED_EXAMPLE, user_id: 4002 });
  await startQueue();
  expect(await relayNotEnqueued({ graceMs: 60_000 })).toMatchObject({ sent: 0 });
  const [row] = await query('SELECT enqueued_at FROM predictions WHERE id = $1', [body.prediction_id]);
  expect(row.enqueued_at).toBeNull();
});

it('never sends one row twice when relays run side by side', async () => {
  await sqs!.stop();
  sqs = undefined;
  for (let i = 0; i < 20; i++) await postJson(predictHandler, '/predict', { ...SEED_EXAMPLE, user_id: 4003 });
  const queueUrl = await startQueue();
  await Promise.all([1, 2, 3].map(() => relayNotEnqueued({ graceMs: 0, limit: 8 })));
  await relayNotEnqueued({ graceMs: 0 });
  const messages = (await drainQueue(queueUrl)).map((m) => JSON.parse(m.Body!));
  const ids = messages.filter((m) => m.user_id === 4003).map((m) => m.prediction_id);
  const rows = await query('SELECT id, enqueued_at FROM predictions WHERE user_id = 4003');
  expect(ids.sort()).toEqual(rows.map((r) => r.id).sort());
  expect(rows.every((r) => r.enqueued_at !== null)).toBe(true);
});
