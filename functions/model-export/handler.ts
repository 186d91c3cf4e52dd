import { config } from '#shared/config';
import { httpHandler } from '#http/handler';
import { jsonBody, validate } from '#http/validation';
import { exportRequestSchema, exportResponse, exportSelector } from '#model/api';
import { ensureExported, resolveVersion } from '#model/promotion';

/**
 * POST /model/export-to-s3 {"model_name", "stage"} (or "version", or "alias"): copies that version's
 * file to models/{name}/v{N}/{name}_v{N}_{YYYYMMDD_HHMMSS}.onnx; an earlier export of it is reused.
 */
export const handler = httpHandler(async (event) => {
  const request = validate(exportRequestSchema, jsonBody(event));
  const ref = await resolveVersion(request.model_name ?? config().MODEL_NAME, exportSelector(request));
  return exportResponse(ref, await ensureExported(ref));
});
