import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { handler } from '../../functions/docs/handler.ts';
import { SWAGGER_UI_ASSETS } from '#api/docs';
import { ROOT } from '../../scripts/local/stack.ts';
import { httpEvent, lambdaContext } from '../helpers/lambda.ts';

const get = async (path: string, headers: Record<string, string> = {}, asset?: string) => {
  const event = { ...httpEvent({ method: 'GET', path, headers }), ...(asset ? { pathParameters: { asset } } : {}) };
  return (await handler(event, lambdaContext('docs'))) as APIGatewayProxyStructuredResultV2 & { body: string };
};
const distFile = (name: string) => readFileSync(`${ROOT}/node_modules/swagger-ui-dist/${name}`);

describe('GET /docs', () => {
  it('is a Swagger UI page that loads only its own files and /openapi.json (no CDN, no validator)', async () => {
    const page = await get('/docs');
    expect(page.statusCode).toBe(200);
    expect(page.headers?.['content-type']).toBe('text/html; charset=utf-8');
    const urls = [...page.body.matchAll(/(?:src|href)="([^"]+)"|url: '([^']+)'/g)].map(([, a, b]) => a ?? b);
    expect(urls.sort()).toEqual(
      ['/openapi.json', ...Object.keys(SWAGGER_UI_ASSETS).map((name) => `/docs/${name}`)].sort(),
    );
    expect(page.body).toContain('validatorUrl: null');
  });

  it.each(Object.entries(SWAGGER_UI_ASSETS))('serves %s as %s, byte for byte', async (name, contentType) => {
    const answer = await get(`/docs/${name}`, {}, name);
    expect(answer.statusCode).toBe(200);
    expect(answer.headers?.['content-type']).toBe(contentType);
    const bytes = answer.isBase64Encoded ? Buffer.from(answer.body, 'base64') : Buffer.from(answer.body);
    expect(bytes.equals(distFile(name))).toBe(true);
  });

  it('gzips the bundle for a client that takes gzip (API Gateway does not compress)', async () => {
    const answer = await get('/docs/swagger-ui-bundle.js', { 'accept-encoding': 'gzip, br' }, 'swagger-ui-bundle.js');
    expect(answer.headers).toMatchObject({ 'content-encoding': 'gzip', vary: 'accept-encoding' });
    const bytes = Buffer.from(answer.body, 'base64');
    expect(bytes.length).toBeLessThan(distFile('swagger-ui-bundle.js').length / 2);
    expect(gunzipSync(bytes).equals(distFile('swagger-ui-bundle.js'))).toBe(true);
  });

  it.each([
    '../package.json',
    '..%2Fpackage.json',
    'index.html',
    'swagger-ui-bundle.js.map',
    '__proto__',
    'hasOwnProperty',
  ])('answers %s with a 404 in the API error shape: only listed files are served', async (name) => {
    const answer = await get(`/docs/${name}`, {}, name);
    expect(answer.statusCode).toBe(404);
    expect(JSON.parse(answer.body)).toEqual({ detail: 'No such file: Swagger UI is at /docs' });
  });

  it("packs exactly the files it serves into the docs function's zip (serverless.yml)", () => {
    const yml = readFileSync(`${ROOT}/serverless.yml`, 'utf8');
    const docs = yml.slice(yml.indexOf('\n  docs:\n'), yml.indexOf('\n    events:', yml.indexOf('\n  docs:\n')));
    const packed = [...docs.matchAll(/- node_modules\/swagger-ui-dist\/(\S+)/g)].map(([, name]) => name);
    expect(packed.sort()).toEqual(Object.keys(SWAGGER_UI_ASSETS).sort());
  });
});

describe('GET /', () => {
  it('points to /docs and /openapi.json in JSON', async () => {
    const answer = await get('/');
    expect(answer.statusCode).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ docs: '/docs', openapi: '/openapi.json', health: '/health' });
  });

  it('links them on a page for a browser', async () => {
    const answer = await get('/', { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
    expect(answer.headers?.['content-type']).toBe('text/html; charset=utf-8');
    expect(answer.body).toContain('<a href="/docs">/docs</a>');
    expect(answer.body).toContain('<a href="/openapi.json">/openapi.json</a>');
  });
});
