/**
 * The one error model of the suite. Handlers and shared code throw these; the HTTP error
 * middleware (shared/http/handler.ts) turns them into responses. `expose` defaults to status < 500 so
 * that a 4xx tells the caller what to fix while a 5xx never leaks internals.
 */
export interface FieldIssue {
  field: string;
  message: string;
}

interface HttpErrorOptions {
  issues?: FieldIssue[];
  cause?: unknown;
  /** Show the message to the caller even on a 5xx (only for messages written for callers). */
  expose?: boolean;
}

export class HttpError extends Error {
  readonly expose: boolean;
  readonly issues: FieldIssue[];
  constructor(
    readonly statusCode: number,
    message: string,
    options: HttpErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.issues = options.issues ?? [];
    this.expose = options.expose ?? statusCode < 500;
  }
}

/** A 4xx: the caller can fix the request; the message says how. */
export class RequestError extends HttpError {}

/** 400: the request is malformed or breaks a rule; `issues` names each field. */
export class BadRequestError extends RequestError {
  constructor(message: string, issues: FieldIssue[] = []) {
    super(400, message, { issues });
  }
}

/** 404: the thing the request names does not exist. */
export class NotFoundError extends RequestError {
  constructor(message: string) {
    super(404, message);
  }
}

/** 409: the request conflicts with work in progress; retrying later succeeds. */
export class ConflictError extends RequestError {
  constructor(message: string) {
    super(409, message);
  }
}

/** 413: the body is larger than this route accepts. */
export class PayloadTooLargeError extends RequestError {
  constructor(message: string) {
    super(413, message);
  }
}

/** 415: the body or file is of a type this route does not take. */
export class UnsupportedMediaTypeError extends RequestError {
  constructor(message: string) {
    super(415, message);
  }
}

/** 422: well-formed but unusable content, e.g. a model file that fails validation; `issues` may name the rows. */
export class UnprocessableError extends RequestError {
  constructor(message: string, options: { cause?: unknown; issues?: FieldIssue[] } = {}) {
    super(422, message, options);
  }
}

/** 502: a dependency answered, but not with what was asked. The message is for the logs, not the caller. */
export class BadGatewayError extends HttpError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(502, message, options);
  }
}

/**
 * How long a caller should wait before retrying a 503 or 504 (the Retry-After header): outages of
 * a dependency and slow answers are usually over within seconds.
 */
export const RETRY_AFTER_SECONDS = 5;

/** 503 with a message written for the caller: what is unavailable and how to fix it. */
export class ServiceUnavailableError extends HttpError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(503, message, { ...options, expose: true });
  }
}

/**
 * 504: the function ran out of time (a dependency did not answer within its budget) and answered
 * before Lambda would have cut it off. The work may or may not have happened; retrying is safe for
 * the routes that answer it (predictions are new rows, uploads are keyed on the file's sha256).
 */
export class GatewayTimeoutError extends HttpError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(504, message, { ...options, expose: true });
  }
}

/**
 * What of an HTTP client's error may travel on as a `cause`, and so into the logs: its name, code
 * and message. An axios error also carries the request it failed on: headers, a login's password
 * in the body, a model file's bytes.
 */
export function redactedCause(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  const code = (error as { code?: unknown }).code;
  const redacted = new Error(error.message);
  redacted.name = error.name;
  if (typeof code === 'string') Object.assign(redacted, { code });
  return redacted;
}
