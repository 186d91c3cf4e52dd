/**
 * What a queued prediction becomes on ThingsBoard: one telemetry data point per prediction, with
 * the keys the dashboard (scripts/thingsboard/dashboard.ts) reads.
 */
import { CLASSIFICATIONS, type Classification } from '#prediction/features';
import type { Prediction } from '#prediction/message';

type TelemetryValue = string | number | boolean | null;

/** One data point of ThingsBoard's `{ts, values}` shape; `ts` in milliseconds. */
export interface TelemetryPoint {
  ts: number;
  values: Record<string, TelemetryValue>;
}

/**
 * A pie cannot aggregate a string key, so each prediction also carries a 0/1 indicator per class
 * (`class_excelente`, …); the dashboard sums them. Exported so that the dashboard names the same keys.
 */
export const CLASS_INDICATOR_KEYS = Object.fromEntries(
  CLASSIFICATIONS.map((classification) => [classification, `class_${classification.toLowerCase()}`]),
) as { readonly [C in Classification]: `class_${Lowercase<C>}` };

/**
 * MLflow versions are decimal integers ("3"). ThingsBoard's default `type_cast_enabled` stores a
 * numeric-looking string as a number anyway, so `model_version` is sent as a JSON number on
 * purpose: the stored type (LONG) is then the same whatever that server setting is, the table
 * shows "3" as everywhere else, and a chart of model_version shows when a promotion reached
 * predictions. A version that is not a plain integer (another registry) stays a string.
 */
function modelVersionValue(version: string): number | string {
  return /^(0|[1-9]\d{0,14})$/.test(version) ? Number(version) : version;
}

/**
 * The point a queued prediction becomes. `ts` is the prediction's own timestamp, so a re-send
 * overwrites the same (device, key, ts) instead of adding a point. A null `portfolio_id` is
 * sent as null, which ThingsBoard skips (no point for that key).
 */
export function toTelemetryPoint(msg: Prediction): TelemetryPoint {
  const indicators = Object.fromEntries(
    Object.entries(CLASS_INDICATOR_KEYS).map(([cls, key]) => [key, cls === msg.classification ? 1 : 0]),
  );
  return {
    ts: msg.ts,
    values: {
      predicted_iq: msg.predicted_iq,
      portfolio_id: msg.portfolio_id,
      model_name: msg.model_name,
      classification: msg.classification,
      user_id: msg.user_id,
      prediction_id: msg.prediction_id,
      model_version: modelVersionValue(msg.model_version),
      ...indicators,
    },
  };
}
