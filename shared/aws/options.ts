import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { config } from '#shared/config';
import { redactedCause } from '#http/errors';
import { isNetworkError, UpstreamUnavailableError } from '#clients/errors';

type Service = 'S3' | 'SQS' | 'SSM';

/**
 * Options shared by every AWS SDK client: the region and, for local emulators, the endpoint
 * (AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL, as the AWS SDKs name them). Timeouts are short
 * and attempts bounded so that a dead dependency fails a call in seconds, not minutes.
 *
 * `idleTimeout` bounds the wait for each next byte of an answer (the socket's inactivity), not the
 * whole transfer, so that a 100 MB model still downloads while an S3 that accepts the connection
 * and never answers fails within seconds. (The SDK's own `requestTimeout` only logs a warning
 * unless told to throw, and would cut long transfers short if it did.)
 */
export function awsClientOptions(service: Service, overrides: { maxAttempts?: number; idleTimeout?: number } = {}) {
  const settings = config();
  const endpoint = settings[`AWS_ENDPOINT_URL_${service}`] ?? settings.AWS_ENDPOINT_URL;
  return {
    region: settings.AWS_REGION,
    ...(endpoint ? { endpoint } : {}),
    maxAttempts: overrides.maxAttempts ?? 3,
    requestHandler: { connectionTimeout: 1_000, socketTimeout: overrides.idleTimeout ?? 2_000 },
  };
}

/** Why an AWS call failed for reasons of the service's own (down, too slow, failing), or undefined. */
function outageReason(error: unknown): string | undefined {
  const { name, $fault, $metadata } = (error ?? {}) as {
    name?: unknown;
    $fault?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  if (name === 'TimeoutError') return 'no answer in time';
  if (isNetworkError(error)) return 'not reachable';
  const status = $metadata?.httpStatusCode;
  if ($fault === 'server' && status !== undefined && status >= 500) return `it answered ${status}`;
  return undefined;
}

/**
 * Makes a client's outages (after its retries) an UpstreamUnavailableError: a 503 that asks the
 * caller to retry, as the database's outages are, instead of an anonymous 500. Everything else
 * (a missing key, a refused request) passes through untouched.
 */
export function reportOutages<C extends S3Client | SQSClient | SSMClient>(client: C, service: Service): C {
  (client.middlewareStack as S3Client['middlewareStack']).add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        const reason = outageReason(error);
        if (!reason) throw error;
        throw new UpstreamUnavailableError(`${service} is unavailable (${reason}); retry shortly.`, {
          cause: redactedCause(error),
        });
      }
    },
    { step: 'initialize', name: 'reportOutages' },
  );
  return client;
}
