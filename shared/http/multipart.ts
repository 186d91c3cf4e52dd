/**
 * Multipart form bodies as middleware: middy's parser behind a guard whose refusals say what to fix
 * (wrong content type, body too large, unreadable form). The handler then finds the form in `event.body`.
 */
import httpMultipartBodyParser from '@middy/http-multipart-body-parser';
import type middy from '@middy/core';
import type { APIGatewayProxyResultV2 } from 'aws-lambda';
import { type HttpError, UnsupportedMediaTypeError } from '#http/errors';
import type { HttpEvent } from '#http/handler';

const PARSER = '@middy/http-multipart-body-parser';

export interface MultipartOptions {
  /** The largest file part; busboy stops reading there and flags the file truncated. */
  maxFileBytes: number;
  /** The largest whole body, refused before parsing. */
  maxBodyBytes: number;
  /** How to send the form, appended to every refusal. */
  howTo: string;
  tooLarge: (bodyBytes: number) => HttpError;
}

/** A parsed file part: what middy's parser puts in the form for a file field. */
export interface Attachment {
  filename: string;
  content: Buffer;
  truncated: boolean;
}
export const isAttachment = (value: unknown): value is Attachment =>
  typeof value === 'object' && value !== null && 'content' in value;

/**
 * Refuses a body that ends before its closing boundary (`--boundary--`): a file part cut short makes
 * busboy emit an error on the part's stream, which middy's parser does not listen to, so the error
 * is thrown past every handler and ends the process (a Lambda container; all of serverless-offline).
 */
function refuseCutShort(event: HttpEvent, contentType: string, howTo: string): void {
  const boundary = /boundary=("?)([^";]+)\1/i.exec(contentType)?.[2];
  if (!boundary || !event.body) return; // middy's parser refuses these itself
  const body = Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  if (body.includes(`--${boundary}--`)) return;
  throw new UnsupportedMediaTypeError(
    `The multipart/form-data body ends before its closing boundary "--${boundary}--": it was cut short; ${howTo}.`,
  );
}

/** The middlewares that turn a multipart/form-data body into its fields and files (one file at most). */
export function multipartBody(options: MultipartOptions): middy.MiddlewareObj<HttpEvent, APIGatewayProxyResultV2>[] {
  const guard: middy.MiddlewareObj<HttpEvent, APIGatewayProxyResultV2> = {
    before: async ({ event }) => {
      const contentType = event.headers?.['content-type'] ?? '';
      if (!contentType.toLowerCase().startsWith('multipart/form-data')) {
        throw new UnsupportedMediaTypeError(`Content-Type is "${contentType || 'missing'}"; ${options.howTo}.`);
      }
      const bodyBytes = event.body ? Buffer.byteLength(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : 0;
      if (bodyBytes > options.maxBodyBytes) throw options.tooLarge(bodyBytes);
      refuseCutShort(event, contentType, options.howTo);
    },
    // The parser's own errors (a 415 with no advice) become one that says how to send the form.
    onError: async (request) => {
      const cause = (request.error as { cause?: { package?: string; message?: string } } | null)?.cause;
      if (cause?.package !== PARSER) return;
      const reason = cause.message || request.error?.message || 'unreadable body';
      request.error = new UnsupportedMediaTypeError(
        `The multipart/form-data body could not be read (${reason}); ${options.howTo}.`,
      );
    },
  };
  const parser = httpMultipartBodyParser({
    busboy: { limits: { fileSize: options.maxFileBytes, files: 1, fields: 20, fieldSize: 1024 } },
  });
  return [guard, parser as unknown as middy.MiddlewareObj<HttpEvent, APIGatewayProxyResultV2>];
}
