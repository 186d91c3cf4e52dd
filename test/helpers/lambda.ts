import { isDeepStrictEqual } from 'node:util';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import type * as z from 'zod';
import * as responses from '#shared/responses';
import { predictResponseSchema } from '#shared/schemas';

/** An API Gateway HTTP API (v2) event, as AWS and serverless-offline deliver it. */
export function httpEvent(options: {
  method?: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  isBase64Encoded?: boolean;
}): APIGatewayProxyEventV2 {
  const method = options.method ?? 'POST';
  const binary = Buffer.isBuffer(options.body);
  return {
    version: '2.0',
    routeKey: `${method} ${options.path}`,
    rawPath: options.path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...options.headers },
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method, path: options.path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      requestId: crypto.randomUUID(),
      routeKey: `${method} ${options.path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    body: binary ? (options.body as Buffer).toString('base64') : (options.body as string | undefined),
    isBase64Encoded: options.isBase64Encoded ?? binary,
  };
}

export const lambdaContext = (name = 'test'): Context =>
  ({
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
    memoryLimitInMB: '1024',
    awsRequestId: crypto.randomUUID(),
    logGroupName: name,
    logStreamName: name,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 10_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  }) as Context;

type HttpLambda = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyResultV2>;

/** What each route answers when it succeeds (GET /health: whatever its status), as the OpenAPI document says. */
const DOCUMENTED: Record<string, z.ZodType> = {
  'POST /predict': predictResponseSchema,
  'POST /predict/batch': responses.predictBatchResponseSchema,
  'GET /health': responses.healthReportSchema,
  'POST /model/upload': responses.uploadResponseSchema,
  'POST /model/upload-url': responses.uploadUrlResponseSchema,
  'POST /model/export-to-s3': responses.exportResponseSchema,
  'GET /model/info': responses.modelInfoSchema,
  'POST /model/promote': responses.promoteResponseSchema,
};

/**
 * Holds every answer of an API route to its documented schema, unknown fields included (parsing
 * drops them, so the parsed body would differ): whatever a test does, the document stays true.
 */
function expectDocumented(route: string, status: number, body: unknown) {
  const schema = route === 'GET /health' || status < 400 ? DOCUMENTED[route] : responses.errorResponseSchema;
  if (!schema || body === undefined) return;
  const parsed = schema.safeParse(body);
  if (!parsed.success || !isDeepStrictEqual(parsed.data, body)) {
    throw new Error(`${route} answered ${status} with a body its schema does not describe: ${parsed.error?.message ?? 'undocumented fields'}\n${JSON.stringify(body)}`);
  }
}

/** Invokes an HTTP handler in-process, parses its JSON answer and checks it against the API's documented schemas. */
export async function invokeHttp(handler: HttpLambda, event: APIGatewayProxyEventV2): Promise<{ status: number; body: any }> {
  const result = (await handler(event, lambdaContext())) as { statusCode: number; body?: string };
  const body = result.body ? JSON.parse(result.body) : undefined;
  expectDocumented(`${event.requestContext.http.method} ${event.rawPath}`, result.statusCode, body);
  return { status: result.statusCode, body };
}

/** POSTs a JSON value (or raw text) to a handler. */
export function postJson(handler: HttpLambda, path: string, body: unknown) {
  return invokeHttp(handler, httpEvent({ path, body: typeof body === 'string' ? body : JSON.stringify(body) }));
}
