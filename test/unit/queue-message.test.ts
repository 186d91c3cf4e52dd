import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  envelopeSchema,
  MAX_ENVELOPE_BYTES,
  packMessages,
  type Prediction,
  predictionMessageSchema,
  predictionSchema,
} from '#prediction/message';

const predictions = (n: number): Prediction[] =>
  Array.from({ length: n }, (_, i) => ({
    prediction_id: randomUUID(),
    ts: 1_736_942_400_000 + i,
    created_at: new Date(1_736_942_400_000 + i).toISOString(),
    predicted_iq: 82.5,
    classification: 'Bom',
    user_id: 7000 + i,
    portfolio_id: i % 5 === 0 ? null : 300 + i,
    model_name: 'hubfolio-model',
    model_version: '3',
  }));

describe('packMessages', () => {
  it('sends one prediction as a single message', () => {
    const [one] = predictions(1);
    const messages = packMessages([one!]);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.ids).toEqual([one!.prediction_id]);
    expect(predictionMessageSchema.parse(JSON.parse(messages[0]!.body))).toEqual({ version: 1, ...one });
  });

  it('packs a 1,000-row batch into one envelope', () => {
    const batch = predictions(1000);
    const messages = packMessages(batch);
    expect(messages).toHaveLength(1);
    expect(envelopeSchema.parse(JSON.parse(messages[0]!.body)).predictions).toEqual(batch);
  });

  it('splits more than fits into envelopes under the size limit, each as full as it may be, every prediction once and in order', () => {
    const many = predictions(3000);
    const messages = packMessages(many);

    expect(messages.length).toBeGreaterThan(2);
    for (const [i, message] of messages.entries()) {
      expect(Buffer.byteLength(message.body)).toBeLessThanOrEqual(MAX_ENVELOPE_BYTES);
      // The next prediction would not have fitted.
      const next = many[messages.slice(0, i + 1).reduce((n, m) => n + m.ids.length, 0)];
      if (next)
        expect(Buffer.byteLength(message.body) + 1 + Buffer.byteLength(JSON.stringify(next))).toBeGreaterThan(
          MAX_ENVELOPE_BYTES,
        );
    }
    const entries = messages.flatMap((message) => envelopeSchema.parse(JSON.parse(message.body)).predictions);
    expect(entries.map((entry) => predictionSchema.parse(entry))).toEqual(many);
    expect(messages.flatMap((message) => message.ids)).toEqual(many.map((p) => p.prediction_id));
  });
});
