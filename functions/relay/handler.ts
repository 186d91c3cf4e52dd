import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { logger } from '#shared/log';
import { relayUndelivered } from '#prediction/relay';

/** Scheduled: re-sends stored predictions ThingsBoard does not have and whose message may be gone. */
export const handler = middy()
  .use(injectLambdaContext(logger))
  .handler(async () => relayUndelivered());
