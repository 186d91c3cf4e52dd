import { httpHandler } from '#http/handler';
import { openApiDocument } from '#api/openapi';

const document = openApiDocument();

/** GET /openapi.json: the API's OpenAPI 3.1 document, generated from the schemas the functions validate with. */
export const handler = httpHandler(async () => ({ statusCode: 200, body: document }));
