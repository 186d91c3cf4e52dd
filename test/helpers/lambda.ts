import { isDeepStrictEqual } from 'node:util';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import type * as z from 'zod';
import { openApiDocument, RESPONSE_SCHEMAS } from '#api/openapi';

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

type Answers = Record<string, { content?: { 'application/json'?: { schema?: { $ref?: string } } } }>;
const documented = openApiDocument() as { paths: Record<string, Record<string, { responses: Answers }>> };

/**
 * The schema the OpenAPI document gives a route's answer with this status (an exact status, else
 * its 4XX/5XX range); a route the document does not list answers errors through the one error
 * mapping, so those are held to the Error schema.
 */
function documentedSchema(method: string, path: string, status: number): z.ZodType | undefined {
  const answers = documented.paths[path]?.[method.toLowerCase()]?.responses;
  if (!answers) return status >= 400 ? RESPONSE_SCHEMAS.Error : undefined;
  const answer = answers[String(status)] ?? answers[`${String(status)[0]}XX`];
  if (!answer) throw new Error(`${method} ${path} answered ${status}, a status its OpenAPI document does not list`);
  const name = answer.content?.['application/json']?.schema?.$ref?.split('/').pop();
  return name ? RESPONSE_SCHEMAS[name as keyof typeof RESPONSE_SCHEMAS] : undefined;
}

/**
 * Holds every answer of an API route to the schema its OpenAPI document names, unknown fields
 * included (parsing drops them, so the parsed body would differ): whatever a test does, the
 * document stays true.
 */
function expectDocumented(method: string, path: string, status: number, body: unknown) {
  const schema = documentedSchema(method, path, status);
  if (!schema || body === undefined) return;
  const parsed = schema.safeParse(body);
  if (!parsed.success || !isDeepStrictEqual(parsed.data, body)) {
    throw new Error(
      `${method} ${path} answered ${status} with a body its schema does not describe: ${parsed.error?.message ?? 'undocumented fields'}\n${JSON.stringify(body)}`,
    );
  }
}

/**
 * What JSON.parse gives: after `expectDocumented` has held it to the route's schema, tests read
 * the fields of the answer they expect.
 */
type ParsedJson = ReturnType<typeof JSON.parse>;

/** Invokes an HTTP handler in-process, parses its JSON answer and checks it against the API's documented schemas. */
export async function invokeHttp(
  handler: HttpLambda,
  event: APIGatewayProxyEventV2,
  context: Context = lambdaContext(),
): Promise<{ status: number; body: ParsedJson }> {
  const result = (await handler(event, context)) as { statusCode: number; body?: string };
  const body = result.body ? JSON.parse(result.body) : undefined;
  expectDocumented(event.requestContext.http.method, event.rawPath, result.statusCode, body);
  return { status: result.statusCode, body };
}

/** POSTs a JSON value (or raw text) to a handler. */
export function postJson(handler: HttpLambda, path: string, body: unknown) {
  return invokeHttp(handler, httpEvent({ path, body: typeof body === 'string' ? body : JSON.stringify(body) }));
}
