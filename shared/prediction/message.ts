import * as z from 'zod';
import { CLASSIFICATIONS } from '#prediction/features';

/**
 * The messages stored predictions become on the predictions queue. Each prediction carries
 * everything ThingsBoard needs, including its own timestamp (`ts`, ms) so that a re-send overwrites
 * instead of duplicating. Versioned so that consumers can refuse what they do not understand:
 * - 1, single: one prediction (a /predict, or one prediction re-sent alone);
 * - 2, envelope: the predictions of a batch, as many as fit in one message. SQS bills and limits
 *   per request: one message per prediction made a 1,000-row batch 100 SendMessageBatch calls.
 *   The consumer reads each entry on its own, so one bad entry is parked alone.
 */
export const MESSAGE_VERSIONS = { single: 1, envelope: 2 } as const;

/** One prediction: a single message without its `version`, or an entry of an envelope. */
export const predictionSchema = z.object({
  prediction_id: z.string().uuid(),
  ts: z.number().int().positive(),
  created_at: z.string(),
  predicted_iq: z.number(),
  classification: z.enum(CLASSIFICATIONS),
  user_id: z.number().int(),
  portfolio_id: z.number().int().nullable(),
  model_name: z.string(),
  model_version: z.string(),
});
export type Prediction = z.infer<typeof predictionSchema>;

export const predictionMessageSchema = predictionSchema.extend({ version: z.literal(MESSAGE_VERSIONS.single) });
export type PredictionMessage = z.infer<typeof predictionMessageSchema>;

/** Entries stay unknown here: the consumer checks each with predictionSchema, so that a bad one sinks no other. */
export const envelopeSchema = z.object({
  version: z.literal(MESSAGE_VERSIONS.envelope),
  predictions: z.array(z.unknown()).min(1),
});

/**
 * The largest envelope body. SQS takes 256 KiB per message and per SendMessageBatch request on
 * queues that keep the old limit (new ones take 1 MiB); the rest is room for the attributes a
 * retried or parked copy carries (shared/telemetry/records.ts: attempt, reason).
 */
export const MAX_ENVELOPE_BYTES = 240 * 1024;

/** The single message of one prediction. */
export const singleBody = (prediction: Prediction): string =>
  JSON.stringify({ version: MESSAGE_VERSIONS.single, ...prediction });

/**
 * Packs predictions, in order, into as few message bodies as MAX_ENVELOPE_BYTES allows; `ids` says
 * which predictions each holds. A group of one is a single message, so a lone prediction stays small.
 */
export function packMessages(predictions: Prediction[]): Array<{ ids: string[]; body: string }> {
  const frame = Buffer.byteLength(JSON.stringify({ version: MESSAGE_VERSIONS.envelope, predictions: [] }));
  const groups: Prediction[][] = [];
  let group: Prediction[] = [];
  let bytes = frame;
  for (const prediction of predictions) {
    // JSON.stringify joins array entries with a comma and no space: a body is its frame plus its parts.
    const size = Buffer.byteLength(JSON.stringify(prediction));
    if (group.length > 0 && bytes + 1 + size > MAX_ENVELOPE_BYTES) {
      groups.push(group);
      group = [];
      bytes = frame;
    }
    bytes += (group.length > 0 ? 1 : 0) + size;
    group.push(prediction);
  }
  if (group.length > 0) groups.push(group);
  return groups.map((entries) => ({
    ids: entries.map((p) => p.prediction_id),
    body:
      entries.length === 1
        ? singleBody(entries[0]!)
        : JSON.stringify({ version: MESSAGE_VERSIONS.envelope, predictions: entries }),
  }));
}
