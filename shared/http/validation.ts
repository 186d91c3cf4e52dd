/**
 * Request validation: bodies read within their size limit, JSON sent as JSON and parsed with a 400
 * that quotes the parser, and zod schemas whose failures become 400s naming every field and rule.
 */
import type * as z from 'zod';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError, type FieldIssue } from '#http/errors';
import type { HttpEvent } from '#http/handler';

/** JSON bodies above this are refused before parsing (a 1,000-row batch is about 250 KB). */
export const MAX_JSON_BODY_BYTES = 512 * 1024;

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
function bodyBytes(event: HttpEvent, maxBytes: number): Buffer {
  const raw = event.body ?? '';
  const bytes = Buffer.from(raw, event.isBase64Encoded ? 'base64' : 'utf8');
  if (bytes.length > maxBytes) {
    throw new PayloadTooLargeError(
      `Request body is ${bytes.length} bytes; this route accepts at most ${maxBytes} bytes.`,
    );
  }
  return bytes;
}

/** application/json, with or without parameters, and the structured `application/*+json` types. */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json$/;

/**
 * Refuses a body that does not say it is JSON. Besides telling a client that sent a form what to
 * send, this keeps the JSON routes out of reach of a plain HTML form or text/plain POST from another
 * site: a browser sends those without asking (no CORS preflight), but never as application/json.
 */
function requireJson(event: HttpEvent): void {
  const mediaType = (event.headers?.['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (JSON_MEDIA_TYPE.test(mediaType)) return;
  throw new UnsupportedMediaTypeError(
    `Content-Type is "${mediaType || 'missing'}"; send the body as JSON with Content-Type: application/json ` +
      `(curl -H 'content-type: application/json' -d '{...}').`,
  );
}

/** Parses a JSON body sent as application/json; malformed JSON is a 400 that quotes the parser. */
export function jsonBody(event: HttpEvent, maxBytes = MAX_JSON_BODY_BYTES): unknown {
  requireJson(event);
  const text = bodyBytes(event, maxBytes).toString('utf8');
  if (text.trim() === '') throw new BadRequestError('Request body is empty; send a JSON object.');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(`Malformed JSON body: ${(error as Error).message}`);
  }
}
