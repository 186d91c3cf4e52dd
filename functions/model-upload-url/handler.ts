import { httpHandler } from '#http/handler';
import { jsonBody, validate } from '#http/validation';
import { createUploadUrl, uploadUrlRequestSchema } from '#model/api';

/**
 * POST /model/upload-url {"model_name", "filename"}: a presigned S3 PUT URL into the drop folder
 * (incoming/{model_name}/), for files above /model/upload's limit. `curl -T model.onnx "$url"`.
 */
export const handler = httpHandler(async (event) => createUploadUrl(validate(uploadUrlRequestSchema, jsonBody(event))));
