import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { PredictResponse } from '#prediction/api';
import type { LocalStack } from '../../scripts/local/stack.ts';
import { startFakeThingsBoard, type FakeThingsBoard } from '../fakes/thingsboard.ts';
import { query, SEED_EXAMPLE } from '../helpers/fixtures.ts';
import { startTestStack } from '../helpers/stack.ts';

// `npm start` with a ThingsBoard stand-in in THINGSBOARD_URL: /predict → SQS → bridge → telemetryForwarder (serverless-offline) → ThingsBoard.
let stack: LocalStack;
let tb: FakeThingsBoard;
let token: string;

beforeAll(async () => {
  tb = await startFakeThingsBoard();
  token = tb.addDevice('HubFólio Predictions').token;
  stack = await startTestStack({ THINGSBOARD_URL: tb.url, THINGSBOARD_DEVICE_TOKEN: token });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await tb?.close();
});

const post = async <Answer>(path: string, body: unknown): Promise<Answer> => {
  const response = await fetch(`${stack.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return response.json() as Promise<Answer>;
};

it('shows each /predict in ThingsBoard as one data point set at its created_at, with every key', {
  timeout: 60_000,
}, async () => {
  const single = await post<PredictResponse>('/predict', { ...SEED_EXAMPLE, portfolio_id: 12 });
  const batch = await post<{ items: PredictResponse[] }>('/predict/batch', {
    items: [0, 5, 10].map((kw) => ({ ...SEED_EXAMPLE, portfolio_id: 13, kw_resultado: kw })),
  });
  const predictions: Array<{
    prediction_id: string;
    created_at: string;
    predicted_iq: number;
    classification: string;
  }> = [single, ...batch.items];

  await vi.waitFor(() => expect(tb.distinctTs(token)).toBe(predictions.length), { timeout: 30_000, interval: 250 });

  for (const prediction of predictions) {
    const ts = Date.parse(prediction.created_at);
    const values = Object.fromEntries(
      tb
        .points(token)
        .filter((p) => p.ts === ts)
        .map((p) => [p.key, p.value]),
    );
    expect(values).toMatchObject({
      prediction_id: prediction.prediction_id,
      predicted_iq: prediction.predicted_iq,
      classification: prediction.classification,
      user_id: SEED_EXAMPLE.user_id,
      model_name: 'hubfolio-model',
      model_version: 0,
    });
    expect(Object.keys(values)).toHaveLength(11);
  }
  const undelivered = await query('SELECT id FROM predictions WHERE id = ANY($1::uuid[]) AND delivered_at IS NULL', [
    predictions.map((p) => p.prediction_id),
  ]);
  expect(undelivered).toEqual([]);
});
