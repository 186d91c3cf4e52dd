/**
 * What every function's middy stack holds besides its own work: the Powertools logging context, the
 * metrics it records, flushed once per invocation (shared/metrics.ts), and the secrets, read once
 * per container before the first invocation runs (shared/secrets.ts). The
 * functions that S3, SQS or a schedule invoke are built by `eventHandler`; the HTTP ones by
 * httpHandler (shared/http/handler.ts), which adds the error mapping and the answers.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger } from '#shared/log';
import { metrics } from '#shared/metrics';
import { loadSecrets } from '#shared/secrets';

/**
 * The middlewares every function starts with, in order. `correlationId` picks the id that every log
 * line of the invocation carries as `correlation_id` (HTTP: API Gateway's request id); the keys are
 * reset after each invocation.
 */
export function platformMiddlewares<Event, Result>(
  correlationId?: (event: Event) => string | undefined,
): middy.MiddlewareObj<Event, Result>[] {
  const correlation: middy.MiddlewareObj<Event, Result> = {
    before: ({ event }) => {
      const id = correlationId?.(event);
      if (id) logger.setCorrelationId(id);
    },
  };
  return [
    injectLambdaContext(logger, { resetKeys: true }),
    correlation,
    logMetrics(metrics),
    { before: () => loadSecrets() },
  ];
}

/** A handler for events other than HTTP: `fn` does the work; the stack gives it logs, metrics and secrets. */
export function eventHandler<Event, Result>(fn: (event: Event, context: Context) => Promise<Result>) {
  return middy<Event, Result>().use(platformMiddlewares<Event, Result>()).handler(fn);
}
