/**
 * The HTTP handler wrapper: every API function is built by `httpHandler`, which gives it logging,
 * the one mapping from errors to responses, and JSON answers.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { GatewayTimeoutError, HttpError, RETRY_AFTER_SECONDS, ServiceUnavailableError } from '#http/errors';
import { isDatabaseUnavailable } from '#shared/db';
import { logger } from '#shared/log';
import { platformMiddlewares } from '#shared/handler';

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

/** 503 and 504 say when to retry: the dependency or the slow answer is expected back shortly. */
const RETRYABLE = new Set([503, 504]);

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
    let { error } = request;
    // A database outage met outside databaseWork() (the model routes) is the same 503, not a 500.
    if (!(error instanceof HttpError) && isDatabaseUnavailable(error))
      error = new ServiceUnavailableError('The database is unavailable; retry shortly.', { cause: error });
    if (error instanceof HttpError) {
      if (error.statusCode >= 500) logger.error('request failed', { error });
      // Not `message`: Powertools reserves that key for the line's own message and drops it.
      else logger.info('request refused', { status: error.statusCode, reason: error.message });
      const body = error.expose
        ? { detail: error.message, ...(error.issues.length ? { errors: error.issues } : {}) }
        : { detail: 'Internal server error' };
      const headers: Record<string, string> = RETRYABLE.has(error.statusCode)
        ? { 'retry-after': String(RETRY_AFTER_SECONDS) }
        : {};
      request.response = jsonResponse(error.statusCode, body, headers);
      return;
    }
    logger.error('unhandled error', { error: error as Error });
    request.response = jsonResponse(500, { detail: 'Internal server error' });
  },
});

/**
 * How long before Lambda's deadline a handler stops waiting and answers 504: room for the error
 * mapping, the log line and the response to leave before Lambda would cut the function off (and
 * API Gateway would answer with a bare 503 of its own).
 */
export const ANSWER_BEFORE_DEADLINE_MS = 1_000;

const outOfTime = () => {
  throw new GatewayTimeoutError(
    'The request did not finish in time: a dependency (PostgreSQL, S3 or another service) is slow to answer. ' +
      'It may or may not have taken effect; retry shortly.',
  );
};

/**
 * Builds an HTTP Lambda handler: the platform's middlewares (logging context, secrets: shared/handler.ts), the one error mapping, the route's body
 * parsers (e.g. multipart) and a JSON response from what `fn` returns (or its raw content). Handlers stay adapters: parse, call shared code, shape the answer.
 * A handler still waiting close to the function's timeout answers 504 (middy's early timeout), so
 * that a hanging dependency never leaves the caller without an answer in the API's error shape.
 */
export function httpHandler(
  fn: (event: HttpEvent, context: Context) => Promise<HttpResult>,
  bodyParsers: middy.MiddlewareObj<HttpEvent, APIGatewayProxyResultV2>[] = [],
) {
  // Every log line of a request carries API Gateway's request id, as the API's access log does.
  const requestId = (event: HttpEvent) => event.requestContext?.requestId;
  return middy<HttpEvent, APIGatewayProxyResultV2>({
    timeoutEarlyInMillis: ANSWER_BEFORE_DEADLINE_MS,
    timeoutEarlyResponse: outOfTime,
  })
    .use(platformMiddlewares<HttpEvent, APIGatewayProxyResultV2>(requestId))
    .use(httpErrors())
    .use(bodyParsers)
    .handler(async (event, context) => {
      const result = await fn(event, context);
      return 'raw' in result ? rawResponse(result) : jsonResponse(result.statusCode, result.body, result.headers);
    });
}
