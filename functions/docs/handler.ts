import { httpHandler } from '#http/handler';
import { apiIndex, docsPage, swaggerUiAsset } from '#api/docs';

/** GET /docs (Swagger UI over /openapi.json), GET /docs/{asset} (its files) and GET / (links to both). */
export const handler = httpHandler(async (event) => {
  const asset = event.pathParameters?.asset;
  if (asset !== undefined) return swaggerUiAsset(asset, event.headers['accept-encoding']);
  return event.rawPath === '/' ? apiIndex(event.headers.accept) : docsPage();
});
