/**
 * The HTTP handler wrapper: every API function is built by `httpHandler`, which gives it logging,
 * the one mapping from errors to responses, and JSON answers.
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { HttpError } from '#http/errors';
import { logger } from '#shared/log';

export type HttpEvent = APIGatewayProxyEventV2;
/** What a route answers: a value sent as JSON, or (`raw`) content of its own type, such as the pages of /docs. */
export type HttpResult = { statusCode: number; body: unknown; headers?: Record<string, string> } | RawResult;
/** A Buffer travels base64-encoded, as API Gateway requires for bytes; a string is sent as it is. */
export type RawResult = {
  statusCode: number;
  raw: string | Buffer;
  contentType: string;
  headers?: Record<string, string>;
};

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResultV2 {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

function rawResponse({ statusCode, raw, contentType, headers }: RawResult): APIGatewayProxyResultV2 {
  const binary = Buffer.isBuffer(raw);
  return {
    statusCode,
    headers: { 'content-type': contentType, ...headers },
    body: binary ? raw.toString('base64') : raw,
    isBase64Encoded: binary,
  };
}

/**
 * The one mapping from errors to HTTP: an HttpError answers with its status and, when it may be
 * shown, its message; anything else is logged and answered with a 500 that leaks nothing.
 */
const httpErrors = (): middy.MiddlewareObj<HttpEvent, APIGatewayProxyResultV2> => ({
  onError: async (request) => {
    const { error } = request;
    if (error instanceof HttpError) {
      if (error.statusCode >= 500) logger.error('request failed', { error });
      else logger.info('request refused', { status: error.statusCode, message: error.message });
      const body = error.expose
        ? { detail: error.message, ...(error.issues.length ? { errors: error.issues } : {}) }
        : { detail: 'Internal server error' };
      request.response = jsonResponse(error.statusCode, body);
      return;
    }
    logger.error('unhandled error', { error: error as Error });
    request.response = jsonResponse(500, { detail: 'Internal server error' });
  },
});

/**
 * Builds an HTTP Lambda handler: Powertools logging context, the one error mapping, the route's body
 * parsers (e.g. multipart) and a JSON response from what `fn` returns (or its raw content). Handlers stay adapters: parse, call shared code, shape the answer.
 */
export function httpHandler(
  fn: (event: HttpEvent, context: Context) => Promise<HttpResult>,
  bodyParsers: middy.MiddlewareObj<HttpEvent, APIGatewayProxyResultV2>[] = [],
) {
  return middy<HttpEvent, APIGatewayProxyResultV2>()
    .use(injectLambdaContext(logger))
    .use(httpErrors())
    .use(bodyParsers)
    .handler(async (event, context) => {
      const result = await fn(event, context);
      return 'raw' in result ? rawResponse(result) : jsonResponse(result.statusCode, result.body, result.headers);
    });
}
