import * as z from 'zod';
import { CLASSIFICATIONS } from '#prediction/features';

/**
 * The message a stored prediction becomes on the predictions queue. Versioned so that
 * consumers can refuse what they do not understand; it carries everything ThingsBoard needs,
 * including the prediction's own timestamp (`ts`, ms) so that a re-send overwrites instead of duplicating.
 */
export const PREDICTION_MESSAGE_VERSION = 1;

export const predictionMessageSchema = z.object({
  version: z.literal(PREDICTION_MESSAGE_VERSION),
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

export type PredictionMessage = z.infer<typeof predictionMessageSchema>;
