import { httpHandler, jsonBody, validate } from '#shared/http';
import { predict } from '#shared/predictions';
import { predictBatchRequestSchema } from '#shared/schemas';

/** POST /predict/batch: up to 1,000 rows, one inference run, one insert; results in request order. */
export const handler = httpHandler(async (event) => {
  const { items } = validate(predictBatchRequestSchema, jsonBody(event));
  const predictions = await predict(items);
  return { statusCode: 200, body: { count: predictions.length, items: predictions } };
});
