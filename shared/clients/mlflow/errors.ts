/**
 * The MLflow client's two errors: MLflow answered wrongly (502) or could not be reached (503).
 * Their messages name the call and MLflow's answer; the 502's is for the logs, the 503's for the caller.
 */
import { UpstreamError, UpstreamUnavailableError, type UpstreamDetails } from '#clients/errors';

interface MlflowErrorDetails extends UpstreamDetails {
  /** MLflow's `error_code`, when it answered JSON. */
  errorCode?: string;
}

/**
 * MLflow answered, but not with what was asked (4xx, an HTML page, an unreadable artifact).
 * Mapped to 502 for HTTP callers without exposing the message, which is written for the logs.
 */
export class MlflowError extends UpstreamError {
  declare readonly errorCode: string | undefined;
  constructor(message: string, details: MlflowErrorDetails = {}) {
    super(message, details);
  }
}

/** MLflow could not be reached or failed (network error, timeout, 5xx) after the retries. A 503 for HTTP callers. */
export class MlflowUnavailableError extends UpstreamUnavailableError {
  declare readonly errorCode: string | undefined;
  constructor(message: string, details: MlflowErrorDetails = {}) {
    super(message, details);
  }
}
