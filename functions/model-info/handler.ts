import { httpHandler, validate } from '#shared/http';
import { infoQuerySchema } from '#shared/model-api';
import { modelInfo } from '#shared/model-info';

/** GET /model/info[?model_name=]: the serving model (algorithm, features, version, aliases, metrics, S3 key) and MLflow's view of it. */
export const handler = httpHandler(async (event) => {
  const query = validate(infoQuerySchema, event.queryStringParameters ?? {});
  return { statusCode: 200, body: await modelInfo(query.model_name) };
});
