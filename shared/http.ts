import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import type * as z from 'zod';
import { BadRequestError, HttpError, PayloadTooLargeError, type FieldIssue } from '#shared/errors';
import { logger } from '#shared/log';

/** JSON bodies above this are refused before parsing (a 1,000-row batch is about 250 KB). */
export const MAX_JSON_BODY_BYTES = 512 * 1024;

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = { statusCode: number; body: unknown; headers?: Record<string, string> };

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

function jsonResponse(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResultV2 {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** Turns a zod error into field issues: the field's path and the rule it broke. */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: base ? `${base}.${key}` : key, message: 'unknown field; remove it' }));
    }
    return [{ field: base || '(body)', message: issue.message }];
  });
}

/** Validates a value against a schema; a failure is a 400 naming every field and rule. */
export function validate<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = fieldIssues(result.error);
  const summary = issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  throw new BadRequestError(`Invalid request: ${summary}`, issues);
}

/** The raw body as bytes, refusing it past `maxBytes` before any work is done. */
export function bodyBytes(event: HttpEvent, maxBytes: number): Buffer {
  const raw = event.body ?? '';
  const bytes = Buffer.from(raw, event.isBase64Encoded ? 'base64' : 'utf8');
  if (bytes.length > maxBytes) {
    throw new PayloadTooLargeError(`Request body is ${bytes.length} bytes; this route accepts at most ${maxBytes} bytes.`);
  }
  return bytes;
}

/** Parses a JSON body; malformed JSON is a 400 that quotes the parser. */
export function jsonBody(event: HttpEvent, maxBytes = MAX_JSON_BODY_BYTES): unknown {
  const text = bodyBytes(event, maxBytes).toString('utf8');
  if (text.trim() === '') throw new BadRequestError('Request body is empty; send a JSON object.');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(`Malformed JSON body: ${(error as Error).message}`);
  }
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
      const body = error.expose ? { detail: error.message, ...(error.issues.length ? { errors: error.issues } : {}) } : { detail: 'Internal server error' };
      request.response = jsonResponse(error.statusCode, body);
      return;
    }
    logger.error('unhandled error', { error: error as Error });
    request.response = jsonResponse(500, { detail: 'Internal server error' });
  },
});

/**
 * Builds an HTTP Lambda handler: Powertools logging context, the one error mapping, and a JSON
 * response from what `fn` returns. Handlers stay adapters: parse, call shared code, shape the answer.
 */
export function httpHandler(fn: (event: HttpEvent, context: Context) => Promise<HttpResult>) {
  return middy<HttpEvent, APIGatewayProxyResultV2>()
    .use(injectLambdaContext(logger))
    .use(httpErrors())
    .handler(async (event, context) => {
      const result = await fn(event, context);
      return jsonResponse(result.statusCode, result.body, result.headers);
    });
}
