/**
 * The domain facts of a prediction, defined once: the eight portfolio features a HubFólio model
 * scores (their column order, ranges and storage types), the IQ scale and its classifications.
 * The request schema, the model checks, the store, the queue message and the OpenAPI document import them.
 */

/** Whole-number counts, 0 to MAX_COUNT. */
export const COUNT_FEATURES = [
  'projetos_min',
  'habilidades_min',
  'kw_contexto',
  'kw_processo',
  'kw_resultado',
] as const;
/** The visual-consistency score, a number from 0 to MAX_SCORE. */
export const SCORE_FEATURE = 'consistencia_visual_score';
/** Yes/no facts, JSON booleans that the model sees as 1 or 0. */
export const FLAG_FEATURES = ['bio', 'contatos'] as const;

export const MAX_COUNT = 100_000;
export const MAX_SCORE = 100;

/** The canonical feature order: the column order of a model without `features` metadata. */
export const FEATURES = [...COUNT_FEATURES, SCORE_FEATURE, ...FLAG_FEATURES] as const;

export type CountFeature = (typeof COUNT_FEATURES)[number];
export type FlagFeature = (typeof FLAG_FEATURES)[number];
export type FeatureName = (typeof FEATURES)[number];
export type FeatureRow = Record<FeatureName, number>;
/** The features as a request carries them. */
export type FeatureInput = Record<CountFeature | typeof SCORE_FEATURE, number> & Record<FlagFeature, boolean>;

/** PostgreSQL's type for each feature's column in `predictions`. */
export const featureSqlType = (name: FeatureName): string =>
  name === SCORE_FEATURE ? 'float8' : (FLAG_FEATURES as readonly string[]).includes(name) ? 'bool' : 'int';

/** The row a model scores: the request's features in model-independent form, flags as 1 or 0. */
export function featureRow(input: FeatureInput): FeatureRow {
  const row = {} as FeatureRow;
  for (const name of COUNT_FEATURES) row[name] = input[name];
  row[SCORE_FEATURE] = input[SCORE_FEATURE];
  for (const name of FLAG_FEATURES) row[name] = input[name] ? 1 : 0;
  return row;
}

/** Each classification and the lowest IQ that earns it, best first; the last one takes the rest. */
const CLASSIFICATION_FLOORS = [
  ['Excelente', 85],
  ['Bom', 70],
  ['Regular', 50],
  ['Insuficiente', Number.NEGATIVE_INFINITY],
] as const;

export const CLASSIFICATIONS = CLASSIFICATION_FLOORS.map(([name]) => name) as unknown as readonly [
  'Excelente',
  'Bom',
  'Regular',
  'Insuficiente',
];
export type Classification = (typeof CLASSIFICATIONS)[number];

/** Excelente ≥ 85, Bom ≥ 70, Regular ≥ 50, Insuficiente below (on the clamped, rounded IQ). */
export function classify(iq: number): Classification {
  return CLASSIFICATION_FLOORS.find(([, floor]) => iq >= floor)![0];
}

/** The IQ shown to users: the raw score clamped to 0–100 and rounded to 2 decimals. */
export function toIq(raw: number): number {
  const clamped = Math.min(100, Math.max(0, raw));
  return Math.round(clamped * 100) / 100;
}
