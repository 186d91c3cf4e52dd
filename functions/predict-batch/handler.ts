import { httpHandler } from '#http/handler';
import { jsonBody, validate } from '#http/validation';
import { predict } from '#prediction/predict';
import { predictBatchRequestSchema } from '#prediction/api';

/** POST /predict/batch: up to 1,000 rows, one inference run, one insert; results in request order. */
export const handler = httpHandler(async (event) => {
  const { items } = validate(predictBatchRequestSchema, jsonBody(event));
  const predictions = await predict(items, 'items');
  return { statusCode: 200, body: { count: predictions.length, items: predictions } };
});
