import { httpHandler, jsonBody, validate } from '#shared/http';
import { predict } from '#shared/predictions';
import { predictRequestSchema } from '#shared/schemas';

/** POST /predict: one portfolio's quality index, stored and queued for the dashboard. */
export const handler = httpHandler(async (event) => {
  const input = validate(predictRequestSchema, jsonBody(event));
  const [prediction] = await predict([input]);
  return { statusCode: 200, body: prediction };
});
