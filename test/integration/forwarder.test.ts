import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../functions/telemetry-forwarder/handler.ts';
import { createPool, pool } from '#shared/db';
import { createForwarder } from '#telemetry/forwarder';
import { logger } from '#shared/log';
import { CLASSIFICATIONS } from '#prediction/features';
import { insertPredictions, type PredictionRow } from '#prediction/store';
import { toMessage } from '#prediction/queue';
import { MAX_ENVELOPE_BYTES, MESSAGE_VERSIONS } from '#prediction/message';
import { relayUndelivered } from '#prediction/relay';
import { sendMessages } from '#aws/sqs';
import { createThingsBoardClient, type DeliveryReport, type ThingsBoardClient } from '#clients/thingsboard/client';
import { redriveDlq } from '../../scripts/dlq-redrive.ts';
import { startSqsBridge, toLambdaRecord } from '../../scripts/local/bridge.ts';
import { ROOT, sqsEventSource } from '../../scripts/local/stack.ts';
import { queueArn as arnOf, sqsClient } from '../../scripts/local/resources.ts';
import { startFakeThingsBoard, type FakeThingsBoard } from '../fakes/thingsboard.ts';
import { drainQueue, query, SEED_EXAMPLE, testEndpoints } from '../helpers/fixtures.ts';
import { lambdaContext } from '../helpers/lambda.ts';

// The container path (handler → config) parks in this file's DLQ and retries after 1, 2, 4, 8, 12, 12 … s.
process.env.PREDICTIONS_DLQ_URL = process.env.TEST_DLQ_URL;
process.env.TELEMETRY_RETRY_BASE_SECONDS = '1';

const QUEUE_URL = process.env.PREDICTIONS_QUEUE_URL!;
const DLQ_URL = process.env.TEST_DLQ_URL!;
const KEYS = [
  'predicted_iq',
  'portfolio_id',
  'model_name',
  'classification',
  'user_id',
  'prediction_id',
  'model_version',
  'class_excelente',
  'class_bom',
  'class_regular',
  'class_insuficiente',
];

const sqs = sqsClient(testEndpoints());
let queueArn: string;
let tb: FakeThingsBoard;
/** The device that the container's configuration (THINGSBOARD_DEVICE_TOKEN) names. */
let token: string;
const running: Array<{ stop(): Promise<unknown> }> = [];
const bridgeErrors: unknown[] = [];

beforeAll(async () => {
  tb = await startFakeThingsBoard();
  token = tb.addDevice('HubFólio Predictions').token;
  // Before the first config() call: the container reads its configuration once.
  process.env.THINGSBOARD_URL = tb.url;
  process.env.THINGSBOARD_DEVICE_TOKEN = token;
  queueArn = await arnOf(sqs, QUEUE_URL);
});

afterAll(async () => {
  await tb.close();
});

beforeEach(async () => {
  await sqs.send(new PurgeQueueCommand({ QueueUrl: QUEUE_URL }));
  await sqs.send(new PurgeQueueCommand({ QueueUrl: DLQ_URL }));
  bridgeErrors.length = 0;
});

afterEach(async () => {
  for (const bridge of running.splice(0)) await bridge.stop();
  tb.outage = false;
  tb.latencyMs = 0;
  vi.restoreAllMocks();
  expect(bridgeErrors).toEqual([]);
});

// --- helpers -----------------------------------------------------------------------------------

async function storePredictions(n: number, overrides: Partial<PredictionRow['input']> = {}): Promise<PredictionRow[]> {
  return insertPredictions(
    pool(),
    Array.from({ length: n }, (_, i) => ({
      id: randomUUID(),
      input: { ...SEED_EXAMPLE, user_id: 7000 + i, portfolio_id: i % 5 === 0 ? null : 300 + i, ...overrides },
      raw_score: 60 + i / 10,
      predicted_iq: Math.round((60 + i / 10) * 100) / 100,
      classification: CLASSIFICATIONS[i % 4]!,
      model_name: 'hubfolio-model',
      model_version: '3',
    })),
  );
}

const queueBodies = (bodies: string[], attributes?: Record<string, MessageAttributeValue>, queueUrl = QUEUE_URL) =>
  sendMessages(
    sqs,
    queueUrl,
    bodies.map((body, i) => ({ id: String(i), body, attributes })),
  );

/** Stores predictions and queues them as /predict does: one single message each. */
async function queuePredictions(n: number): Promise<PredictionRow[]> {
  const rows = await storePredictions(n);
  const { failed } = await queueBodies(rows.map((row) => JSON.stringify(toMessage(row))));
  expect(failed).toEqual([]);
  return rows;
}

/** A queued prediction without its message version: an envelope entry. */
const entryOf = (row: PredictionRow) => {
  const { version: _, ...entry } = toMessage(row);
  return entry;
};
const envelope = (entries: unknown[]) => JSON.stringify({ version: MESSAGE_VERSIONS.envelope, predictions: entries });

/** Receives every message on the queue as one Lambda batch: what a relay run sent (envelopes, however many). */
const receiveAll = async () => (await drainQueue(QUEUE_URL)).map((m) => toLambdaRecord(m, queueArn, 'us-east-1'));

/** Receives `n` messages as one Lambda batch (hidden for a minute, like the event source's receive). */
async function receiveBatch(n: number): Promise<SQSRecord[]> {
  const messages: Message[] = [];
  while (messages.length < n) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: QUEUE_URL,
        MaxNumberOfMessages: Math.min(10, n - messages.length),
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) throw new Error(`only ${messages.length} of ${n} messages on the queue`);
    messages.push(...Messages);
  }
  return messages.map((m) => toLambdaRecord(m, queueArn, 'us-east-1'));
}

const invokeHandler = (records: SQSRecord[]) =>
  handler({ Records: records }, lambdaContext('telemetryForwarder')) as Promise<SQSBatchResponse>;

/** Feeds the queue to a consumer as the local stack does (poll, invoke, delete what succeeded). */
function bridge(consume: (records: SQSRecord[]) => Promise<unknown>, batchingWindowSeconds = 0) {
  const started = startSqsBridge({
    sqs,
    queueUrl: QUEUE_URL,
    queueArn,
    region: 'us-east-1',
    batchSize: 50,
    batchingWindowSeconds,
    invoke: (event) => consume(event.Records),
    onError: (error) => bridgeErrors.push(error),
  });
  running.push(started);
  return started;
}

async function depth(queueUrl = QUEUE_URL) {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible),
    delayed: Number(Attributes.ApproximateNumberOfMessagesDelayed),
  };
}

const total = async (queueUrl = QUEUE_URL) => Object.values(await depth(queueUrl)).reduce((a, b) => a + b, 0);

async function dlqMessages(): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: DLQ_URL,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) return all;
    all.push(...Messages);
  }
}

/** prediction_id → ts as ThingsBoard stored them for a device. */
function deliveredPoints(deviceToken = token): Map<string, number> {
  return new Map(
    tb
      .points(deviceToken)
      .filter((p) => p.key === 'prediction_id')
      .map((p) => [String(p.value), p.ts]),
  );
}

/**
 * Every prediction is on the dashboard exactly once: its id stored at one ts, its own — none
 * missing, none doubled. On a device of the test's own, nothing else is there either.
 */
function expectExactlyOnce(rows: PredictionRow[], deviceToken = token, ownDevice = deviceToken !== token) {
  const ids = new Set(rows.map((r) => r.id));
  const stored = tb.points(deviceToken).filter((p) => p.key === 'prediction_id' && ids.has(String(p.value)));
  expect(stored.map((p) => `${String(p.value)}@${p.ts}`).sort()).toEqual(rows.map((r) => `${r.id}@${r.ts}`).sort());
  if (ownDevice) expect(tb.distinctTs(deviceToken)).toBe(rows.length);
}

const deliveredAt = async (rows: PredictionRow[]) =>
  query<{ id: string; enqueued_at: Date | null; delivered_at: Date | null }>(
    'SELECT id, enqueued_at, delivered_at FROM predictions WHERE id = ANY($1::uuid[])',
    [rows.map((r) => r.id)],
  );

const client = (
  overrides: Partial<{ url: string | undefined; deviceToken: string | undefined }> = {},
): ThingsBoardClient => createThingsBoardClient({ url: tb.url, deviceToken: token, ...overrides });

/** A device of the test's own, so that its points are counted apart from other tests'; `posts` counts each ts ThingsBoard accepted. */
function ownDevice() {
  const device = tb.addDevice(`device-${randomUUID()}`);
  const inner = client({ deviceToken: device.token });
  const posts = new Map<number, number>();
  const telemetry: ThingsBoardClient = {
    ...inner,
    deliverPoints: async (points) => {
      const report = await inner.deliverPoints(points);
      for (const point of report.delivered) posts.set(point.ts, (posts.get(point.ts) ?? 0) + 1);
      return report;
    },
  };
  return { token: device.token, posts, forward: createForwarder({ telemetry }) };
}

/**
 * Parks every other undelivered row, so that the relay of a test sends only its own: rows other
 * tests left undelivered share the table (and other files' rows too).
 */
const isolate = (rows: PredictionRow[]) =>
  query(
    'UPDATE predictions SET parked_at = now() WHERE delivered_at IS NULL AND parked_at IS NULL AND id <> ALL($1::uuid[])',
    [rows.map((r) => r.id)],
  );

/** As if `minutes` had passed since these rows were stored and last handled. */
const age = (rows: PredictionRow[], minutes: number) =>
  query(
    `UPDATE predictions SET created_at = created_at - make_interval(mins => $2), enqueued_at = enqueued_at - make_interval(mins => $2)
      WHERE id = ANY($1::uuid[])`,
    [rows.map((r) => r.id), minutes],
  );

/** Each of the rows was posted to ThingsBoard `times` times. */
const expectPosted = (posts: Map<number, number>, rows: PredictionRow[], times: number) =>
  expect(Object.fromEntries(rows.map((r) => [r.ts, posts.get(r.ts)]))).toEqual(
    Object.fromEntries(rows.map((r) => [r.ts, times])),
  );

// --- tests -------------------------------------------------------------------------------------

describe('telemetry forwarder', () => {
  it('delivers a batch in one ThingsBoard request, each point at its prediction ts with every key, and sets delivered_at', async () => {
    const rows = await queuePredictions(20);
    const requestsBefore = tb.telemetryLog.length;

    const result = await invokeHandler(await receiveBatch(20));

    expect(result).toEqual({ batchItemFailures: [] });
    expect(tb.telemetryLog.slice(requestsBefore)).toEqual([expect.objectContaining({ token, status: 200 })]);
    expectExactlyOnce(rows);
    for (const row of rows) {
      const values = Object.fromEntries(
        tb
          .points(token)
          .filter((p) => p.ts === row.ts)
          .map((p) => [p.key, p.value]),
      );
      const expectedKeys = row.input.portfolio_id === null ? KEYS.filter((k) => k !== 'portfolio_id') : KEYS;
      expect(Object.keys(values).sort()).toEqual([...expectedKeys].sort());
      expect(values).toMatchObject({
        predicted_iq: row.predicted_iq,
        classification: row.classification,
        user_id: row.input.user_id,
        model_version: 3,
      });
    }
    expect(
      (await deliveredAt(rows)).every((r) => r.delivered_at instanceof Date && r.enqueued_at instanceof Date),
    ).toBe(true);
  });

  it('parks a poison point, a malformed body and an unknown version with their reasons while the rest is delivered', async () => {
    const rows = await storePredictions(9);
    const [poisonRow, ...good] = rows as [PredictionRow, ...PredictionRow[]];
    // 1e20 passes the message schema but ThingsBoard's parser refuses it (500 with a body).
    const poison = JSON.stringify({ ...toMessage(poisonRow), predicted_iq: 1e20 });
    const unknownVersion = JSON.stringify({ ...toMessage(good[0]!), version: 3 });
    await queueBodies([
      ...good.slice(1).map((r) => JSON.stringify(toMessage(r))),
      poison,
      '{"version":1,',
      unknownVersion,
    ]);

    const result = await invokeHandler(await receiveBatch(10));

    expect(result).toEqual({ batchItemFailures: [] });
    const delivered = deliveredPoints();
    for (const row of good.slice(1)) expect(delivered.get(row.id)).toBe(row.ts);
    expect(delivered.has(poisonRow.id)).toBe(false);
    const parked = new Map((await dlqMessages()).map((m) => [m.Body!, m.MessageAttributes ?? {}]));
    expect([...parked.keys()].sort()).toEqual([poison, '{"version":1,', unknownVersion].sort());
    expect(parked.get(poison)).toMatchObject({
      reason: { StringValue: expect.stringContaining('Big integer values are not supported') },
      prediction_id: { StringValue: poisonRow.id },
    });
    expect(parked.get('{"version":1,')!['reason']!.StringValue).toContain('not JSON');
    expect(parked.get(unknownVersion)!['reason']!.StringValue).toBe(
      'message version 3 is not one this consumer reads (versions 1 and 2)',
    );
    expect(await depth()).toMatchObject({ delayed: 0 }); // nothing was queued for a retry
    const [poisonState] = await deliveredAt([poisonRow]);
    expect(poisonState!.delivered_at).toBeNull();
  });

  it('reports a record in batchItemFailures only when neither its retry nor its parking could be queued', async () => {
    const [row] = await storePredictions(1);
    await queueBodies([JSON.stringify(toMessage(row!)), 'not json']);
    const records = await receiveBatch(2);
    const missing = QUEUE_URL.replace(/[^/]+$/, `missing-${randomUUID()}`);
    tb.failNext(1, 500); // empty body: transient

    const result = await createForwarder({ telemetry: client(), queueUrl: missing, dlqUrl: missing })(records);

    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      records.map((r) => r.messageId).sort(),
    );
  });

  it('re-sends predictions whose confirmation a database outage lost, leaving one data point per ts', async () => {
    const errors = vi.spyOn(logger, 'error');
    const { token: own, posts, forward } = ownDevice();
    const rows = await queuePredictions(2);
    const deadDb = createPool('postgres://postgres@127.0.0.1:1/none');
    const inner = client({ deviceToken: own });

    const result = await createForwarder({ telemetry: inner, db: deadDb })(await receiveBatch(2));

    expect(result).toEqual({ batchItemFailures: [] });
    expectExactlyOnce(rows, own);
    expect(errors).toHaveBeenCalledWith(
      'could not record delivered_at; the points were delivered and the relay will send them again',
      expect.objectContaining({ predictions: 2 }),
    );
    expect(await depth()).toMatchObject({ delayed: 0 });
    await deadDb.end();
    expect((await deliveredAt(rows)).every((r) => r.delivered_at === null)).toBe(true);

    // PostgreSQL is back; the relay's silent grace has passed.
    await isolate(rows);
    await age(rows, 3);
    expect(await relayUndelivered()).toMatchObject({ sent: 2 });
    expect(await forward(await receiveAll())).toEqual({ batchItemFailures: [] });

    expectPosted(posts, rows, 1); // posted once more, over the points ThingsBoard had
    expectExactlyOnce(rows, own); // still one data point per ts
    expect((await deliveredAt(rows)).every((r) => r.delivered_at instanceof Date)).toBe(true);
    expect((await relayUndelivered()).sent).toBe(0);
  });

  it('re-sends every undelivered prediction once its queue is lost, and ThingsBoard gets each exactly once', async () => {
    const { token: own, posts, forward } = ownDevice();
    const rows = await queuePredictions(30);
    tb.outage = true;
    // Received during an outage: retry copies wait on the queue; then the queue is lost (purged, restarted).
    expect(await forward(await receiveBatch(30))).toEqual({ batchItemFailures: [] });
    await sqs.send(new PurgeQueueCommand({ QueueUrl: QUEUE_URL }));
    expect(await total()).toBe(0);
    tb.outage = false;
    await isolate(rows);

    // Within the silent grace the relay leaves them: their copies could still be on their way.
    expect((await relayUndelivered()).sent).toBe(0);
    await age(rows, 3);
    expect(await relayUndelivered()).toMatchObject({ sent: 30, failed: 0 });
    expect(await forward(await receiveAll())).toEqual({ batchItemFailures: [] });

    expectPosted(posts, rows, 1);
    expectExactlyOnce(rows, own);
    expect((await deliveredAt(rows)).every((r) => r.delivered_at instanceof Date)).toBe(true);
    // Done: nothing is sent again.
    await age(rows, 3);
    expect((await relayUndelivered()).sent).toBe(0);
    expect(await depth()).toMatchObject({ visible: 0, delayed: 0 });
  });

  it('delivers a 50-prediction backlog after a 30-second outage: nothing to the DLQ, every prediction exactly once', {
    timeout: 150_000,
  }, async () => {
    tb.outage = true;
    const requestsBefore = tb.requests.telemetry;
    const rows = await queuePredictions(50);
    bridge(invokeHandler);

    await new Promise((r) => setTimeout(r, 30_000));
    expect(rows.some((r) => deliveredPoints().has(r.id))).toBe(false);
    expect(tb.requests.telemetry - requestsBefore).toBeGreaterThanOrEqual(4); // retried with growing delays
    expect(await total(DLQ_URL)).toBe(0);
    expect(await total()).toBeGreaterThanOrEqual(50); // still on the queue, waiting out their delay

    tb.outage = false;
    const recovered = Date.now();
    await vi.waitFor(() => expect(rows.every((r) => deliveredPoints().has(r.id))).toBe(true), {
      timeout: 120_000,
      interval: 200,
    });
    const backlogSeconds = (Date.now() - recovered) / 1000;

    expect(backlogSeconds).toBeLessThan(120);
    expectExactlyOnce(rows);
    await vi.waitFor(async () => expect(await total()).toBe(0), { timeout: 10_000, interval: 200 });
    expect(await total(DLQ_URL)).toBe(0);
    expect((await deliveredAt(rows)).filter((r) => r.delivered_at === null)).toEqual([]);
  });

  it('leaves one data point per key when one message is delivered several times', async () => {
    const [row] = await storePredictions(1);
    const body = JSON.stringify(toMessage(row!));
    const { token: own, forward } = ownDevice();
    await queueBodies([body, body]);
    expect(await forward(await receiveBatch(2))).toEqual({ batchItemFailures: [] }); // twice in one batch
    await queueBodies([body]);
    expect(await forward(await receiveBatch(1))).toEqual({ batchItemFailures: [] }); // and once more later

    expectExactlyOnce([row!], own);
    expect(tb.points(own)).toHaveLength(KEYS.length - (row!.input.portfolio_id === null ? 1 : 0));
  });

  it('keeps predictions in PostgreSQL while ThingsBoard is not configured, says so once, and the relay sends them all once it is', async () => {
    const warnings = vi.spyOn(logger, 'warn');
    const errors = vi.spyOn(logger, 'error');
    const rows = await queuePredictions(25);
    const unconfigured = createForwarder({
      telemetry: createThingsBoardClient({ url: undefined, deviceToken: undefined }),
    });

    expect(await unconfigured(await receiveBatch(10))).toEqual({ batchItemFailures: [] });
    expect(await unconfigured(await receiveBatch(15))).toEqual({ batchItemFailures: [] });

    // Acknowledged (only the received originals are left, for the event source to delete): no copy
    // cycles through the queue, nothing is parked, nothing is lost.
    expect(await depth()).toMatchObject({ visible: 0, delayed: 0 });
    expect(await total(DLQ_URL)).toBe(0);
    const waiting = await query(
      'SELECT enqueued_at, delivered_at, last_enqueue_error FROM predictions WHERE id = ANY($1::uuid[])',
      [rows.map((r) => r.id)],
    );
    for (const row of waiting)
      expect(row).toMatchObject({
        enqueued_at: null,
        delivered_at: null,
        last_enqueue_error: expect.stringMatching(/^waiting for ThingsBoard: THINGSBOARD_URL is not set/),
      });
    const said = warnings.mock.calls.filter(([message]) => String(message).includes('ThingsBoard is not configured'));
    expect(said).toEqual([
      [
        'ThingsBoard is not configured: predictions wait in PostgreSQL and are sent once it is',
        expect.objectContaining({ reason: expect.stringContaining('THINGSBOARD_URL is not set'), waiting: 10 }),
      ],
    ]);
    expect(errors).not.toHaveBeenCalled();

    // The relay of a stack still without ThingsBoard sends nothing...
    await isolate(rows);
    expect(await relayUndelivered({ telemetryConfigured: false })).toEqual({ sent: 0, failed: 0, waiting: true });
    expect(await depth()).toMatchObject({ visible: 0, delayed: 0 });
    // ...and once it is configured (a restart with THINGSBOARD_URL), its next run sends them all at once,
    // without a grace and batch after batch (ten a batch here).
    expect(await relayUndelivered({ limit: 10 })).toEqual({ sent: 25, failed: 0, waiting: false });
    const { token: own, posts, forward } = ownDevice();
    expect(await forward(await receiveAll())).toEqual({ batchItemFailures: [] });

    expectPosted(posts, rows, 1);
    expectExactlyOnce(rows, own);
    expect((await deliveredAt(rows)).every((r) => r.delivered_at instanceof Date)).toBe(true);
  });

  it('reports a wrong device token once, saying how to fix it, and keeps the predictions', async () => {
    const warnings = vi.spyOn(logger, 'warn');
    const errors = vi.spyOn(logger, 'error');
    const rows = await queuePredictions(3);

    const forward = createForwarder({ telemetry: client({ deviceToken: 'not-the-token' }) });
    const result = await forward(await receiveBatch(3));

    expect(result).toEqual({ batchItemFailures: [] });
    expect(warnings).toHaveBeenCalledWith(
      'ThingsBoard is not configured correctly: predictions wait on the queue until it is',
      expect.objectContaining({
        waiting: 3,
        reason: expect.stringMatching(
          /rejected the device token \(401\).*THINGSBOARD_DEVICE_TOKEN.*npm run thingsboard:provision/,
        ),
      }),
    );
    expect(await depth()).toMatchObject({ delayed: 3 });
    expect(await total(DLQ_URL)).toBe(0);
    expect((await deliveredAt(rows)).every((r) => r.delivered_at === null)).toBe(true);

    // The next batches (a minute later each, until someone fixes it) say nothing new: no warning, no error.
    warnings.mockClear();
    await queuePredictions(2);
    await forward(await receiveBatch(2));
    expect(warnings).not.toHaveBeenCalledWith(expect.stringMatching(/not configured/), expect.anything());
    expect(errors).not.toHaveBeenCalled();
  });

  it('retries a transient failure with a growing delay and parks a message ThingsBoard failed for over an hour', async () => {
    const [young, old] = await storePredictions(2);
    await queueBodies([JSON.stringify(toMessage(young!))], { attempt: { DataType: 'Number', StringValue: '62' } });
    await queueBodies([JSON.stringify(toMessage(old!))], { attempt: { DataType: 'Number', StringValue: '63' } });
    tb.outage = true;

    const result = await createForwarder({ telemetry: client(), retryBaseSeconds: 5 })(await receiveBatch(2));

    expect(result).toEqual({ batchItemFailures: [] });
    expect(await depth()).toMatchObject({ delayed: 1 }); // the 63rd retry, 60 s out
    const parked = await dlqMessages();
    expect(parked).toHaveLength(1);
    expect(parked[0]!.MessageAttributes).toMatchObject({
      reason: { StringValue: 'ThingsBoard unreachable for over an hour (64 attempts)' },
      prediction_id: { StringValue: old!.id },
    });
  });

  it('retries a batch ThingsBoard does not finish within the batch deadline instead of waiting for it', async () => {
    await queuePredictions(2);
    tb.latencyMs = 2_000;
    const started = Date.now();

    const result = await createForwarder({ telemetry: client(), batchDeadlineMs: 300 })(await receiveBatch(2));

    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result).toEqual({ batchItemFailures: [] });
    expect(await depth()).toMatchObject({ delayed: 2 });
    // The two copies come back after their delay, not necessarily in one receive. Every receive is
    // awaited: one left running past the test would take the next test's messages.
    const retried: Message[] = [];
    for (const deadline = Date.now() + 5_000; retried.length < 2 && Date.now() < deadline; ) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: QUEUE_URL,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageAttributeNames: ['All'],
        }),
      );
      retried.push(...Messages);
    }
    expect(retried.map((m) => m.MessageAttributes?.['attempt']?.StringValue)).toEqual(['1', '1']);
  });
});

describe('telemetry forwarder, envelopes (a batch in one message)', () => {
  it('delivers the rest of an envelope and parks each bad prediction alone, as a single message with its reason', async () => {
    const rows = await storePredictions(10);
    const [poisonRow, malformedRow, ...good] = rows as [PredictionRow, PredictionRow, ...PredictionRow[]];
    // 1e20 passes the message schema but ThingsBoard's parser refuses it; 'Ótimo' is no classification.
    const poison = { ...entryOf(poisonRow), predicted_iq: 1e20 };
    const malformed = { ...entryOf(malformedRow), classification: 'Ótimo' };
    await queueBodies([envelope([...good.slice(0, 4).map(entryOf), poison, malformed, ...good.slice(4).map(entryOf)])]);

    const result = await invokeHandler(await receiveBatch(1));

    expect(result).toEqual({ batchItemFailures: [] });
    const delivered = deliveredPoints();
    for (const row of good) expect(delivered.get(row.id)).toBe(row.ts);
    expect(delivered.has(poisonRow.id)).toBe(false);
    const parked = new Map((await dlqMessages()).map((m) => [JSON.parse(m.Body!).prediction_id, m]));
    expect([...parked.keys()].sort()).toEqual([poisonRow.id, malformedRow.id].sort());
    expect(JSON.parse(parked.get(poisonRow.id)!.Body!)).toEqual({ version: 1, ...poison });
    expect(parked.get(poisonRow.id)!.MessageAttributes).toMatchObject({
      reason: { StringValue: expect.stringContaining('Big integer values are not supported') },
      prediction_id: { StringValue: poisonRow.id },
    });
    expect(JSON.parse(parked.get(malformedRow.id)!.Body!)).toEqual({ version: 1, ...malformed });
    expect(parked.get(malformedRow.id)!.MessageAttributes).toMatchObject({
      reason: { StringValue: expect.stringMatching(/^not a prediction message \(entry 6 of 10 of an envelope\)/) },
      prediction_id: { StringValue: malformedRow.id },
    });
    expect(await depth()).toMatchObject({ delayed: 0 }); // nothing was queued for a retry
    const states = new Map((await deliveredAt(rows)).map((r) => [r.id, r]));
    expect(good.every((row) => states.get(row.id)!.delivered_at instanceof Date)).toBe(true);
    expect(states.get(poisonRow.id)!.delivered_at).toBeNull();
  });

  it('re-queues only the predictions ThingsBoard did not take, together, with the retry counter and the attributes', async () => {
    const rows = await storePredictions(5);
    await queueBodies([envelope(rows.map(entryOf))], { trace: { DataType: 'String', StringValue: 'kept' } });
    // ThingsBoard takes three points, then fails transiently (as after a rate limit mid-batch).
    const partly = {
      deliverPoints: async (points) =>
        ({ delivered: points.slice(0, 3), transient: points.slice(3), permanent: [], requests: 2 }) as DeliveryReport,
    } as ThingsBoardClient;

    const result = await createForwarder({ telemetry: partly })(await receiveBatch(1));

    expect(result).toEqual({ batchItemFailures: [] });
    expect(await depth()).toMatchObject({ delayed: 1 });
    const retried: Message[] = [];
    for (const deadline = Date.now() + 5_000; retried.length < 1 && Date.now() < deadline; ) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: QUEUE_URL, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }),
      );
      retried.push(...Messages);
    }
    expect(retried).toHaveLength(1);
    expect(JSON.parse(retried[0]!.Body!)).toEqual({ version: 2, predictions: rows.slice(3).map(entryOf) });
    expect(retried[0]!.MessageAttributes).toMatchObject({
      attempt: { StringValue: '1' },
      trace: { StringValue: 'kept' },
    });
    const states = new Map((await deliveredAt(rows)).map((r) => [r.id, r.delivered_at]));
    expect(rows.map((row) => states.get(row.id) instanceof Date)).toEqual([true, true, true, false, false]);
  });

  it('parks an envelope ThingsBoard failed for over an hour as one message, which dlq:redrive brings back to be delivered', async () => {
    const rows = await storePredictions(3);
    await queueBodies([envelope(rows.map(entryOf))], { attempt: { DataType: 'Number', StringValue: '63' } });
    tb.outage = true;

    expect(await createForwarder({ telemetry: client(), retryBaseSeconds: 5 })(await receiveBatch(1))).toEqual({
      batchItemFailures: [],
    });

    // Looked at, and left visible for the redrive.
    const { Messages: parked = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: DLQ_URL,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 0,
        MessageAttributeNames: ['All'],
      }),
    );
    expect(parked).toHaveLength(1);
    expect(JSON.parse(parked[0]!.Body!)).toEqual({ version: 2, predictions: rows.map(entryOf) });
    expect(parked[0]!.MessageAttributes?.['reason']?.StringValue).toBe(
      'ThingsBoard unreachable for over an hour (64 attempts)',
    );
    tb.outage = false;

    expect(await redriveDlq({ sqs, dlqUrl: DLQ_URL, queueUrl: QUEUE_URL })).toEqual({ moved: 1, failed: 0 });
    const { token: own, forward } = ownDevice();
    expect(await forward(await receiveBatch(1))).toEqual({ batchItemFailures: [] });
    expectExactlyOnce(rows, own);
  });
});

describe('dlq:redrive', () => {
  const park = (bodies: string[]) =>
    queueBodies(
      bodies,
      {
        attempt: { DataType: 'Number', StringValue: '64' },
        reason: { DataType: 'String', StringValue: 'ThingsBoard unreachable for over an hour (64 attempts)' },
        trace: { DataType: 'String', StringValue: 'kept' },
      },
      DLQ_URL,
    );

  it('moves every parked message back with a fresh retry counter, reports how many, and they are then delivered', async () => {
    const rows = await storePredictions(3);
    await park(rows.map((r) => JSON.stringify(toMessage(r))));

    expect(await redriveDlq({ sqs, dlqUrl: DLQ_URL, queueUrl: QUEUE_URL })).toEqual({ moved: 3, failed: 0 });

    expect(await total(DLQ_URL)).toBe(0);
    const records = await receiveBatch(3);
    for (const record of records) expect(Object.keys(record.messageAttributes)).toEqual(['trace']);
    const { token: own, forward } = ownDevice();
    expect(await forward(records)).toEqual({ batchItemFailures: [] });
    expectExactlyOnce(rows, own);
  });

  it('as a command, says how many it moved', { timeout: 60_000 }, async () => {
    await park(['{"a":1}', '{"a":2}']);

    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/dlq-redrive.ts'], {
      cwd: ROOT,
      env: { ...process.env, PREDICTIONS_QUEUE_URL: QUEUE_URL, PREDICTIONS_DLQ_URL: DLQ_URL },
    });

    expect(stdout).toContain(`Moved 2 messages from ${DLQ_URL} to ${QUEUE_URL}`);
    expect(await total(DLQ_URL)).toBe(0);
    expect(await depth()).toMatchObject({ visible: 2 });
  });
});

describe('the local SQS bridge', () => {
  it("takes each consumer's batch size and batching window from serverless.yml", () => {
    expect(sqsEventSource('telemetryForwarder')).toEqual({ batchSize: 50, batchingWindowSeconds: 1 });
    expect(sqsEventSource('modelSync')).toEqual({ batchSize: 1, batchingWindowSeconds: 0 });
  });

  it('gathers messages that arrive within its batching window into one invocation, as Lambda does', async () => {
    const batches: number[] = [];
    bridge(async (records) => {
      batches.push(records.length);
      return { batchItemFailures: [] };
    }, 1);
    for (let i = 0; i < 5; i++) {
      await sqs.send(new SendMessageCommand({ QueueUrl: QUEUE_URL, MessageBody: `message ${i}` }));
      await new Promise((r) => setTimeout(r, 100));
    }
    await vi.waitFor(() => expect(batches.reduce((a, b) => a + b, 0)).toBe(5), { timeout: 10_000, interval: 50 });
    expect(batches).toEqual([5]);
    await vi.waitFor(async () => expect(await total()).toBe(0), { timeout: 5_000, interval: 100 });
  });

  it("ends a batch before its payload could pass Lambda's 6 MB", async () => {
    const batches: number[] = [];
    bridge(async (records) => {
      batches.push(records.reduce((sum, r) => sum + Buffer.byteLength(r.body), 0));
      return { batchItemFailures: [] };
    }, 1);
    const body = 'x'.repeat(MAX_ENVELOPE_BYTES);
    await Promise.all(
      Array.from({ length: 30 }, () => sqs.send(new SendMessageCommand({ QueueUrl: QUEUE_URL, MessageBody: body }))),
    );
    await vi.waitFor(() => expect(batches.reduce((a, b) => a + b, 0)).toBe(30 * body.length), {
      timeout: 15_000,
      interval: 50,
    });
    expect(batches.length).toBeGreaterThan(1);
    expect(Math.max(...batches)).toBeLessThanOrEqual(6 * 1024 * 1024);
  });
});
