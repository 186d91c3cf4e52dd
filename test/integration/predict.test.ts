import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { handler as predictHandler } from '../../functions/predict/handler.ts';
import { handler as batchHandler } from '../../functions/predict-batch/handler.ts';
import { MESSAGE_VERSIONS, predictionMessageSchema } from '#prediction/message';
import { sqs } from '#prediction/queue';
import { FEATURES } from '#prediction/features';
import { publishServingModel } from '#prediction/serving';
import { putObject, sha256Hex } from '#aws/s3';
import { buildLinearRegressor } from '../../scripts/onnx-builder.ts';
import { drainQueue, query, queuedPredictions, SEED_EXAMPLE, useSampleModel } from '../helpers/fixtures.ts';
import { httpEvent, invokeHttp, postJson } from '../helpers/lambda.ts';

const rowsFor = (userId: number) => query('SELECT * FROM predictions WHERE user_id = $1 ORDER BY ts', [userId]);

beforeAll(async () => {
  await useSampleModel();
});

describe('POST /predict', () => {
  it('answers the seed example with the documented fields', async () => {
    const { status, body } = await postJson(predictHandler, '/predict', {
      ...SEED_EXAMPLE,
      user_id: 1001,
      portfolio_id: 7,
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      predicted_iq: 82.5,
      classification: 'Bom',
      model_name: 'hubfolio-model',
      model_version: '0',
      user_id: 1001,
      portfolio_id: 7,
    });
    expect(body.prediction_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(body.created_at).toISOString()).toBe(body.created_at);
  });

  it('stores exactly one row and sends exactly one queue message', async () => {
    await drainQueue();
    const { body } = await postJson(predictHandler, '/predict', { ...SEED_EXAMPLE, user_id: 1002 });
    const rows = await rowsFor(1002);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: body.prediction_id,
      predicted_iq: 82.5,
      raw_score: 82.5,
      classification: 'Bom',
    });
    // A successful send costs no write: the row waits for the consumer's confirmation.
    expect(rows[0]).toMatchObject({ enqueued_at: null, enqueue_attempts: 0, last_enqueue_error: null });

    const messages = await drainQueue();
    expect(messages).toHaveLength(1);
    const message = predictionMessageSchema.parse(JSON.parse(messages[0]!.Body!));
    expect(message).toMatchObject({
      version: 1,
      prediction_id: body.prediction_id,
      predicted_iq: 82.5,
      user_id: 1002,
      portfolio_id: null,
    });
    expect(message.ts).toBe(Date.parse(body.created_at));
  });

  it('keeps the raw score and clamps the IQ to 0-100', async () => {
    const strong = { ...SEED_EXAMPLE, user_id: 1003, projetos_min: 20, habilidades_min: 40 };
    const { body } = await postJson(predictHandler, '/predict', strong);
    expect(body.predicted_iq).toBe(100);
    expect(body.classification).toBe('Excelente');
    const [row] = await rowsFor(1003);
    expect(row.raw_score).toBeGreaterThan(100);
  });
});

describe('PostgreSQL down', () => {
  it('answers 503 asking to retry, and queues nothing', async () => {
    await drainQueue();
    const saved = { ...process.env };
    // A fresh container whose database refuses connections.
    process.env.DATABASE_URL = 'postgres://nobody@127.0.0.1:1/none';
    vi.resetModules();
    try {
      const { handler } = await import('../../functions/predict/handler.ts');
      const { status, body } = await postJson(handler, '/predict', { ...SEED_EXAMPLE, user_id: 1004 });
      expect(status).toBe(503);
      expect(body.detail).toBe('The database is unavailable; retry shortly.');
    } finally {
      process.env = saved;
    }
    expect(await drainQueue()).toHaveLength(0);
  });
});

describe('a serving model that returns a non-finite score', () => {
  // Published by hand: upload refuses such a model (it overflows float32 from projetos_min = 2 on).
  const overflowing = buildLinearRegressor({
    coefficients: [3e38, 1, 1, 1, 1, 1, 1, 1],
    intercept: 0,
    features: FEATURES,
  });
  let handlers: { predict: typeof predictHandler; batch: typeof batchHandler };

  beforeAll(async () => {
    const key = 'models/overflowing/v1/overflowing_v1_test.onnx';
    await putObject(key, overflowing);
    await publishServingModel({
      model_name: 'overflowing',
      version: '1',
      s3_key: key,
      sha256: sha256Hex(overflowing),
      run_id: null,
      promoted_at: new Date().toISOString(),
    });
    // Containers whose MODEL_NAME is that model.
    const saved = { ...process.env };
    process.env.MODEL_NAME = 'overflowing';
    vi.resetModules();
    try {
      handlers = {
        predict: (await import('../../functions/predict/handler.ts')).handler,
        batch: (await import('../../functions/predict-batch/handler.ts')).handler,
      };
      // Configuration is read on first use: read it while MODEL_NAME names that model.
      expect(
        (await postJson(handlers.predict, '/predict', { ...SEED_EXAMPLE, user_id: 5000, projetos_min: 0 })).status,
      ).toBe(200);
      expect(
        (
          await postJson(handlers.batch, '/predict/batch', {
            items: [{ ...SEED_EXAMPLE, user_id: 5000, projetos_min: 1 }],
          })
        ).status,
      ).toBe(200);
    } finally {
      process.env = saved;
    }
  });

  it('answers /predict with a 422 saying so, stores and queues nothing, and still scores other portfolios', async () => {
    await drainQueue();
    const { status, body } = await postJson(handlers.predict, '/predict', { ...SEED_EXAMPLE, user_id: 5001 });
    expect(status).toBe(422);
    expect(body.detail).toMatch(
      /^The serving model overflowing v1 returned Infinity for this portfolio: nothing was stored/,
    );
    expect(await rowsFor(5001)).toHaveLength(0);
    expect(await drainQueue()).toHaveLength(0);

    const other = await postJson(handlers.predict, '/predict', { ...SEED_EXAMPLE, user_id: 5001, projetos_min: 1 });
    expect(other.status).toBe(200);
    expect(other.body.model_version).toBe('1');
  });

  it('answers a batch with such a row with a 422 naming the row, and stores none of the batch', async () => {
    await drainQueue();
    const items = [1, 3, 0].map((projetos) => ({ ...SEED_EXAMPLE, user_id: 5002, projetos_min: projetos }));
    const { status, body } = await postJson(handlers.batch, '/predict/batch', { items });
    expect(status).toBe(422);
    expect(body.detail).toMatch(/returned a non-finite score for 1 of 3 rows \(items\.1\): nothing was stored/);
    expect(body.errors).toEqual([{ field: 'items.1', message: 'the serving model returned Infinity for this row' }]);
    expect(await rowsFor(5002)).toHaveLength(0);
    expect(await drainQueue()).toHaveLength(0);
  });
});

describe('POST /predict/batch', () => {
  it('answers one result per row, in order, each stored and queued once', async () => {
    await drainQueue();
    const items = [0, 5, 30].map((projetos) => ({ ...SEED_EXAMPLE, user_id: 2001, projetos_min: projetos }));
    const { status, body } = await postJson(batchHandler, '/predict/batch', { items });
    expect(status).toBe(200);
    expect(body.count).toBe(3);
    expect(body.items.map((p: { predicted_iq: number }) => p.predicted_iq)).toEqual([70.5, 90.5, 100]);
    const rows = await rowsFor(2001);
    expect(rows.map((r) => r.id)).toEqual(body.items.map((p: { prediction_id: string }) => p.prediction_id));
    expect(new Set(rows.map((r) => r.ts)).size).toBe(3);
    const messages = await drainQueue();
    expect(messages).toHaveLength(1); // one envelope
    expect(queuedPredictions(messages).map((p) => p.prediction_id)).toEqual(rows.map((r) => r.id));
  });

  it('takes 1,000 rows in one request and queues them in a handful of SQS calls, each prediction once', async () => {
    await drainQueue();
    const sends = vi.spyOn(sqs(), 'send');
    const items = Array.from({ length: 1000 }, (_, i) => ({ ...SEED_EXAMPLE, user_id: 2002, kw_contexto: i % 50 }));
    const { status, body } = await postJson(batchHandler, '/predict/batch', { items });
    expect(status).toBe(200);
    expect(body.items).toHaveLength(1000);
    expect((await rowsFor(2002)).length).toBe(1000);

    // One message per prediction took 100 SendMessageBatch calls; 1,000 predictions fill one or two envelopes.
    const calls = sends.mock.calls.filter(
      ([command]) => command instanceof SendMessageBatchCommand || command instanceof SendMessageCommand,
    );
    expect(calls.length).toBeLessThanOrEqual(2);
    sends.mockRestore();
    const messages = await drainQueue();
    expect(messages.length).toBeLessThanOrEqual(2);
    for (const message of messages) {
      expect(JSON.parse(message.Body!).version).toBe(MESSAGE_VERSIONS.envelope);
      expect(Buffer.byteLength(message.Body!)).toBeLessThanOrEqual(256 * 1024);
    }
    const queued = queuedPredictions(messages).map((p) => p.prediction_id);
    expect(queued).toEqual(body.items.map((p: { prediction_id: string }) => p.prediction_id));
  });
});

describe('bad input gets a 4xx that names the problem and writes nothing', () => {
  const valid = { ...SEED_EXAMPLE, user_id: 3001 };
  const cases: Array<[string, typeof predictHandler, string, string | object, number, RegExp]> = [
    ['malformed JSON', predictHandler, '/predict', '{"user_id": 1,', 400, /Malformed JSON/],
    ['an empty body', predictHandler, '/predict', '', 400, /empty/],
    ['a missing field', predictHandler, '/predict', { ...valid, bio: undefined }, 400, /bio: is required/],
    [
      'a wrong type',
      predictHandler,
      '/predict',
      { ...valid, projetos_min: 'three' },
      400,
      /projetos_min: must be a whole number/,
    ],
    [
      'a negative count',
      predictHandler,
      '/predict',
      { ...valid, kw_processo: -1 },
      400,
      /kw_processo: must be a whole number from 0/,
    ],
    [
      'a fractional count',
      predictHandler,
      '/predict',
      { ...valid, kw_processo: 1.5 },
      400,
      /kw_processo: must be a whole number/,
    ],
    [
      'score 101',
      predictHandler,
      '/predict',
      { ...valid, consistencia_visual_score: 101 },
      400,
      /consistencia_visual_score: must be a number from 0 to 100/,
    ],
    ['"true" as a string', predictHandler, '/predict', { ...valid, bio: 'true' }, 400, /bio: must be true or false/],
    ['an unknown field', predictHandler, '/predict', { ...valid, iq: 99 }, 400, /iq: unknown field/],
    ['an array body', predictHandler, '/predict', [valid], 400, /JSON object/],
    [
      'a 1 MB body',
      predictHandler,
      '/predict',
      JSON.stringify({ ...valid, pad: 'x'.repeat(1024 * 1024) }),
      413,
      /at most \d+ bytes/,
    ],
    [
      'a 1,001-row batch',
      batchHandler,
      '/predict/batch',
      { items: Array(1001).fill(valid) },
      400,
      /items: must hold at most 1000 items/,
    ],
    ['an empty batch', batchHandler, '/predict/batch', { items: [] }, 400, /items: must hold at least 1 item/],
    [
      'a batch with one bad row',
      batchHandler,
      '/predict/batch',
      { items: [valid, { ...valid, bio: 1 }] },
      400,
      /items\.1\.bio/,
    ],
  ];

  it.each(cases)('%s', async (_name, handler, path, body, expectedStatus, message) => {
    await drainQueue();
    const { status, body: answer } = await postJson(handler, path, body);
    expect(status).toBe(expectedStatus);
    expect(answer.detail).toMatch(message);
    expect(await rowsFor(3001)).toHaveLength(0);
    expect(await drainQueue()).toHaveLength(0);
  });

  it('lists every field issue separately', async () => {
    const { body } = await postJson(predictHandler, '/predict', { user_id: 3001, bio: 'yes' });
    const fields = body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['bio', 'contatos', 'projetos_min', 'consistencia_visual_score']));
  });

  it.each([
    [predictHandler, '/predict', valid],
    [batchHandler, '/predict/batch', { items: [valid] }],
  ])('refuses a body not sent as application/json with 415 saying what to send (%#)', async (handler, path, body) => {
    await drainQueue();
    // What a plain HTML form or `curl -d` without a content type sends.
    const event = httpEvent({
      path,
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const { status, body: answer } = await invokeHttp(handler, event);
    expect(status).toBe(415);
    expect(answer.detail).toMatch(/Content-Type: application\/json/);
    expect(await rowsFor(3001)).toHaveLength(0);
    expect(await drainQueue()).toHaveLength(0);
  });

  it('decodes base64 bodies as API Gateway sends binary content', async () => {
    const event = httpEvent({ path: '/predict', body: Buffer.from(JSON.stringify({ ...valid, user_id: 3002 })) });
    const { status, body } = await invokeHttp(predictHandler, event);
    expect(status).toBe(200);
    expect(body.user_id).toBe(3002);
  });
});
