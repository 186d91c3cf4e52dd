import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { ScheduledEvent, SQSEvent } from 'aws-lambda';
import { logger } from '#shared/log';
import { scheduledSync, syncModels } from '#model/sync';

/**
 * Every minute (schedule), and 30 s after each of those runs (a delayed message on the model-sync
 * queue): finishes pending registrations and makes promotions done in MLflow's UI serve.
 */
export const handler = middy<ScheduledEvent | SQSEvent>()
  .use(injectLambdaContext(logger))
  .handler(async (event) => ('Records' in event ? syncModels() : scheduledSync()));
