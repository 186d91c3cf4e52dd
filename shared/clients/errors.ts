/**
 * The errors of the external services' clients (MLflow, ThingsBoard, S3, SQS), on one pair of bases
 * so that callers tell "answered wrongly" (502) from "could not be reached" (503) with `instanceof`.
 */
import { BadGatewayError, ServiceUnavailableError } from '#http/errors';

export interface UpstreamDetails {
  /** The service's HTTP status; undefined when no HTTP answer came. */
  status?: number;
  /** The service's own error code (MLflow's `error_code`, ThingsBoard's `errorCode`). */
  errorCode?: string | number;
  cause?: unknown;
}

/** The service answered, but not with what was asked (a 4xx, an HTML page, an unreadable body). */
export class UpstreamError extends BadGatewayError {
  readonly status: number | undefined;
  readonly errorCode: string | number | undefined;
  constructor(message: string, details: UpstreamDetails = {}) {
    super(message, { cause: details.cause });
    this.status = details.status;
    this.errorCode = details.errorCode;
  }
}

/** The service could not be reached or failed (network error, timeout, 5xx) after the retries. */
export class UpstreamUnavailableError extends ServiceUnavailableError {
  readonly status: number | undefined;
  readonly errorCode: string | number | undefined;
  constructor(message: string, details: UpstreamDetails = {}) {
    super(message, { cause: details.cause });
    this.status = details.status;
    this.errorCode = details.errorCode;
  }
}

/** Socket errors that mean "not reachable now" (the same request may work later), not "wrong request". */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** Whether an error is a socket-level failure to reach a service (any client: pg, AWS SDK, axios). */
export function isNetworkError(error: unknown): boolean {
  const { code, errors } = (error ?? {}) as { code?: unknown; errors?: unknown };
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
  // Node reports a refused connection to a host with several addresses as an AggregateError.
  return Array.isArray(errors) && errors.some(isNetworkError);
}
