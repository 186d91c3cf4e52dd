import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { logger } from '#shared/log';
import { relayNotEnqueued } from '#prediction/relay';

/** Scheduled: re-sends stored predictions that the queue did not accept when they were made. */
export const handler = middy()
  .use(injectLambdaContext(logger))
  .handler(async () => relayNotEnqueued());
