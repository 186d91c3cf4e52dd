import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { forwardBatch } from '#telemetry/forwarder';
import { eventHandler } from '#shared/handler';

/**
 * SQS (predictions queue, ReportBatchItemFailures): forwards a batch of queued predictions to
 * ThingsBoard in one request. Only records that must come back are reported; bad records are
 * parked and retries are re-queued with a delay (shared/telemetry/forwarder.ts), so one record never fails the batch.
 */
export const handler = eventHandler(async (event: SQSEvent): Promise<SQSBatchResponse> => forwardBatch(event.Records));
