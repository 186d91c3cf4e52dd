import { config } from '#shared/config';
import { httpHandler } from '#http/handler';
import { jsonBody, validate } from '#http/validation';
import { promoteRequestSchema, promoteResponse, promotionTarget } from '#model/api';
import { promote, resolveVersion } from '#model/promotion';

/**
 * POST /model/promote {"model_name", "version", "alias"?, "stage"?}: without alias and stage, the
 * version gets alias `production` and stage Production and becomes the serving model; predict
 * containers pick it up within MODEL_REFRESH_SECONDS.
 */
export const handler = httpHandler(async (event) => {
  const request = validate(promoteRequestSchema, jsonBody(event));
  const ref = await resolveVersion(request.model_name ?? config().MODEL_NAME, { version: request.version });
  const target = promotionTarget(request);
  return promoteResponse(ref, target, await promote(ref, target));
});
