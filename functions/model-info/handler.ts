import { httpHandler } from '#http/handler';
import { validate } from '#http/validation';
import { infoQuerySchema } from '#model/api';
import { modelInfo } from '#model/info';

/** GET /model/info[?model_name=]: the serving model (algorithm, features, version, aliases, metrics, S3 key) and MLflow's view of it. */
export const handler = httpHandler(async (event) => {
  const query = validate(infoQuerySchema, event.queryStringParameters ?? {});
  return { statusCode: 200, body: await modelInfo(query.model_name) };
});
