import type { ScheduledEvent, SQSEvent } from 'aws-lambda';
import { scheduledSync, syncModels } from '#model/sync';
import { eventHandler } from '#shared/handler';

/**
 * Every minute (schedule), and 30 s after each of those runs (a delayed message on the model-sync
 * queue): finishes pending registrations and makes promotions done in MLflow's UI serve.
 */
export const handler = eventHandler(async (event: ScheduledEvent | SQSEvent) =>
  'Records' in event ? syncModels() : scheduledSync(),
);
