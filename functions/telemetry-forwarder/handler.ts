import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { forwardBatch } from '#telemetry/forwarder';
import { logger } from '#shared/log';

/**
 * SQS (predictions queue, ReportBatchItemFailures): forwards a batch of queued predictions to
 * ThingsBoard in one request. Only records that must come back are reported; bad records are
 * parked and retries are re-queued with a delay (shared/telemetry/forwarder.ts), so one record never fails the batch.
 */
export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger))
  .handler(async (event) => forwardBatch(event.Records));
