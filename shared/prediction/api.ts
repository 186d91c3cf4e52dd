import * as z from 'zod';
import {
  CLASSIFICATIONS,
  COUNT_FEATURES,
  type CountFeature,
  FLAG_FEATURES,
  type FlagFeature,
  MAX_COUNT,
  MAX_SCORE,
  SCORE_FEATURE,
} from '#prediction/features';

/**
 * Request and response schemas of the HTTP API. Field names are the seed guide's. Every rule
 * carries a message that names what is expected, so a 400 tells the caller what to fix.
 */
const MAX_ID = Number.MAX_SAFE_INTEGER;
export const MAX_BATCH_ITEMS = 1_000;

const required = (rule: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : rule);

const wholeNumber = (max: number) => {
  const rule = `must be a whole number from 0 to ${max}`;
  return z
    .number({ error: required(rule) })
    .int({ error: rule })
    .min(0, { error: rule })
    .max(max, { error: rule });
};
const scoreRule = `must be a number from 0 to ${MAX_SCORE}`;
const score = z
  .number({ error: required(scoreRule) })
  .min(0, { error: scoreRule })
  .max(MAX_SCORE, { error: scoreRule });
const flag = () => z.boolean({ error: required('must be true or false (a JSON boolean, not a string)') });

export const predictRequestSchema = z.strictObject(
  {
    user_id: wholeNumber(MAX_ID),
    portfolio_id: wholeNumber(MAX_ID).nullable().optional(),
    ...(Object.fromEntries(COUNT_FEATURES.map((name) => [name, wholeNumber(MAX_COUNT)])) as Record<
      CountFeature,
      ReturnType<typeof wholeNumber>
    >),
    [SCORE_FEATURE]: score,
    ...(Object.fromEntries(FLAG_FEATURES.map((name) => [name, flag()])) as Record<
      FlagFeature,
      ReturnType<typeof flag>
    >),
  },
  { error: 'the body must be a JSON object with the prediction fields' },
);

export const predictBatchRequestSchema = z.strictObject(
  {
    items: z
      .array(predictRequestSchema, {
        error: required(`must be an array of 1 to ${MAX_BATCH_ITEMS} prediction objects`),
      })
      .min(1, { error: `must hold at least 1 item (at most ${MAX_BATCH_ITEMS})` })
      .max(MAX_BATCH_ITEMS, { error: `must hold at most ${MAX_BATCH_ITEMS} items; split the batch` }),
  },
  { error: 'the body must be a JSON object {"items": [...]}' },
);

export type PredictRequest = z.infer<typeof predictRequestSchema>;

export const predictResponseSchema = z.object({
  prediction_id: z.uuid(),
  predicted_iq: z.number().min(0).max(100),
  classification: z.enum(CLASSIFICATIONS),
  model_name: z.string(),
  model_version: z.string(),
  user_id: z.number().int(),
  portfolio_id: z.number().int().nullable(),
  created_at: z.iso.datetime(),
});
export type PredictResponse = z.infer<typeof predictResponseSchema>;
