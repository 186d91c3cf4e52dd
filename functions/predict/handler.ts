import { httpHandler } from '#http/handler';
import { jsonBody, validate } from '#http/validation';
import { predict } from '#prediction/predict';
import { predictRequestSchema } from '#prediction/api';

/** POST /predict: one portfolio's quality index, stored and queued for the dashboard. */
export const handler = httpHandler(async (event) => {
  const input = validate(predictRequestSchema, jsonBody(event));
  const [prediction] = await predict([input]);
  return { statusCode: 200, body: prediction };
});
