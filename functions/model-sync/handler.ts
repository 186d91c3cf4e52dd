import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { logger } from '#shared/log';
import { syncPasses } from '#shared/model-sync';

/**
 * Scheduled every minute (two passes, 30 s apart): finishes pending registrations and makes
 * promotions done in MLflow's UI serve.
 */
export const handler = middy()
  .use(injectLambdaContext(logger))
  .handler(async (_event, context) => syncPasses(() => context.getRemainingTimeInMillis()));
