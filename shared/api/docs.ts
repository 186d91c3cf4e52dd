import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { NotFoundError } from '#http/errors';
import type { HttpResult, RawResult } from '#http/handler';

/**
 * GET /docs: Swagger UI over GET /openapi.json, served by the suite itself from the swagger-ui-dist
 * package so that it works offline (no CDN); GET / points there. These routes are the document's
 * viewer, not part of the API it describes (shared/api/openapi.ts: UNDOCUMENTED_ROUTES).
 */

/**
 * The swagger-ui-dist files the page loads, with their content types: the only names
 * GET /docs/{asset} answers, so that no path from a request ever reaches the file system.
 * serverless.yml packs the same files into the docs function's zip (a test holds the two together).
 */
export const SWAGGER_UI_ASSETS = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
  'favicon-32x32.png': 'image/png',
} as const;
type AssetName = keyof typeof SWAGGER_UI_ASSETS;

/**
 * The files are read at run time rather than bundled: esbuild chooses loaders by file extension,
 * so it cannot take one .js file as text, and serverless-offline runs the sources through tsx,
 * which has no text loader at all. The working directory is the repository under `npm start` and
 * the tests, and /var/task on Lambda, where the zip holds the files at the same relative path.
 * (LAMBDA_TASK_ROOT would not do: serverless-offline sets it to /var/task too.)
 */
const DIST = join(process.cwd(), 'node_modules', 'swagger-ui-dist');

/** The assets change only with a deploy: browsers may keep them a day. */
const CACHE_CONTROL = 'public, max-age=86400';

interface LoadedAsset {
  bytes: Buffer;
  /** Text assets only: the bundle is 1.7 MB as is, about 0.5 MB gzipped (API Gateway does not compress). */
  gzipped?: Buffer;
}

const loaded = new Map<AssetName, LoadedAsset>();

function load(name: AssetName): LoadedAsset {
  let asset = loaded.get(name);
  if (!asset) {
    const bytes = readFileSync(join(DIST, name));
    asset = { bytes, ...(SWAGGER_UI_ASSETS[name].startsWith('text/') ? { gzipped: gzipSync(bytes) } : {}) };
    loaded.set(name, asset);
  }
  return asset;
}

const isAsset = (name: string): name is AssetName => Object.hasOwn(SWAGGER_UI_ASSETS, name);

/** One of Swagger UI's files, gzipped when the client takes it; 404 for any name not on the list. */
export function swaggerUiAsset(name: string, acceptEncoding = ''): RawResult {
  if (!isAsset(name)) throw new NotFoundError('No such file: Swagger UI is at /docs');
  const { bytes, gzipped } = load(name);
  const headers = { 'cache-control': CACHE_CONTROL, vary: 'accept-encoding' };
  const contentType = SWAGGER_UI_ASSETS[name];
  if (gzipped && /\bgzip\b/i.test(acceptEncoding))
    return { statusCode: 200, contentType, raw: gzipped, headers: { ...headers, 'content-encoding': 'gzip' } };
  return { statusCode: 200, contentType, raw: gzipped ? bytes.toString('utf8') : bytes, headers };
}

// Asset URLs are absolute: the page answers at /docs, where relative ones would resolve under /.
// validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>API documentation</title>
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null });
  </script>
</body>
</html>
`;

/** GET /docs: the Swagger UI page. */
export const docsPage = (): RawResult => ({ statusCode: 200, contentType: 'text/html; charset=utf-8', raw: PAGE });

const LINKS = { docs: '/docs', openapi: '/openapi.json', health: '/health' };

/** GET /: where to go from here, as a page for browsers and as JSON for everything else. */
export function apiIndex(accept = ''): HttpResult {
  const headers = { vary: 'accept' };
  if (!accept.includes('text/html')) return { statusCode: 200, body: LINKS, headers };
  const items = Object.entries(LINKS).map(([name, path]) => `<li>${name}: <a href="${path}">${path}</a></li>`);
  return {
    statusCode: 200,
    contentType: 'text/html; charset=utf-8',
    raw: `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>API</title></head>\n<body><ul>\n${items.join('\n')}\n</ul></body></html>\n`,
    headers,
  };
}
