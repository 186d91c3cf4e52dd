import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';

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

/** Invokes an HTTP handler in-process and parses its JSON answer. */
export async function invokeHttp(handler: HttpLambda, event: APIGatewayProxyEventV2): Promise<{ status: number; body: any }> {
  const result = (await handler(event, lambdaContext())) as { statusCode: number; body?: string };
  return { status: result.statusCode, body: result.body ? JSON.parse(result.body) : undefined };
}

/** POSTs a JSON value (or raw text) to a handler. */
export function postJson(handler: HttpLambda, path: string, body: unknown) {
  return invokeHttp(handler, httpEvent({ path, body: typeof body === 'string' ? body : JSON.stringify(body) }));
}
