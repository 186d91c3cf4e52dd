import { config } from '#shared/config';

/**
 * Options shared by every AWS SDK client: the region and, for local emulators, the endpoint
 * (AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL, as the AWS SDKs name them). Timeouts are short
 * and attempts bounded so that a dead dependency fails a call in seconds, not minutes.
 */
export function awsClientOptions(
  service: 'S3' | 'SQS',
  overrides: { maxAttempts?: number; requestTimeout?: number } = {},
) {
  const settings = config();
  const endpoint = settings[`AWS_ENDPOINT_URL_${service}`] ?? settings.AWS_ENDPOINT_URL;
  return {
    region: settings.AWS_REGION,
    ...(endpoint ? { endpoint } : {}),
    maxAttempts: overrides.maxAttempts ?? 3,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: overrides.requestTimeout ?? 5_000 },
  };
}
