import * as z from 'zod';

/**
 * Request and response schemas of the HTTP API. Field names are the seed guide's. Every rule
 * carries a message that names what is expected, so a 400 tells the caller what to fix.
 */
const MAX_COUNT = 100_000;
const MAX_ID = Number.MAX_SAFE_INTEGER;
export const MAX_BATCH_ITEMS = 1_000;

/** Model names become S3 key segments and MLflow names: no slashes, no spaces. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
export const MODEL_NAME_RULE = 'must be 1-100 letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. hubfolio-model)';

const required = (rule: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : rule);

const wholeNumber = (max: number) => {
  const rule = `must be a whole number from 0 to ${max}`;
  return z.number({ error: required(rule) }).int({ error: rule }).min(0, { error: rule }).max(max, { error: rule });
};
const flag = () => z.boolean({ error: required('must be true or false (a JSON boolean, not a string)') });

export const predictRequestSchema = z.strictObject(
  {
    user_id: wholeNumber(MAX_ID),
    portfolio_id: wholeNumber(MAX_ID).nullable().optional(),
    projetos_min: wholeNumber(MAX_COUNT),
    habilidades_min: wholeNumber(MAX_COUNT),
    kw_contexto: wholeNumber(MAX_COUNT),
    kw_processo: wholeNumber(MAX_COUNT),
    kw_resultado: wholeNumber(MAX_COUNT),
    consistencia_visual_score: z
      .number({ error: required('must be a number from 0 to 100') })
      .min(0, { error: 'must be a number from 0 to 100' })
      .max(100, { error: 'must be a number from 0 to 100' }),
    bio: flag(),
    contatos: flag(),
  },
  { error: 'the body must be a JSON object with the prediction fields' },
);

export const predictBatchRequestSchema = z.strictObject(
  {
    items: z
      .array(predictRequestSchema, { error: required(`must be an array of 1 to ${MAX_BATCH_ITEMS} prediction objects`) })
      .min(1, { error: `must hold at least 1 item (at most ${MAX_BATCH_ITEMS})` })
      .max(MAX_BATCH_ITEMS, { error: `must hold at most ${MAX_BATCH_ITEMS} items; split the batch` }),
  },
  { error: 'the body must be a JSON object {"items": [...]}' },
);

export type PredictRequest = z.infer<typeof predictRequestSchema>;

export const CLASSIFICATIONS = ['Excelente', 'Bom', 'Regular', 'Insuficiente'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

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

/** Excelente ≥ 85, Bom ≥ 70, Regular ≥ 50, Insuficiente below (on the clamped, rounded IQ). */
export function classify(iq: number): Classification {
  if (iq >= 85) return 'Excelente';
  if (iq >= 70) return 'Bom';
  if (iq >= 50) return 'Regular';
  return 'Insuficiente';
}

/** The IQ shown to users: the raw score clamped to 0–100 and rounded to 2 decimals. */
export function toIq(raw: number): number {
  const clamped = Math.min(100, Math.max(0, raw));
  return Math.round(clamped * 100) / 100;
}
