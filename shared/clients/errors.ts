/**
 * The errors of the external services' clients (MLflow, ThingsBoard), on one pair of bases so that
 * callers tell "answered wrongly" (502) from "could not be reached" (503) with `instanceof`.
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
