import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClientOptions } from '#aws/options';
import { config } from '#shared/config';
import { MESSAGE_VERSIONS, type PredictionMessage } from '#prediction/message';
import type { PredictionRow } from '#prediction/store';
import { sendMessages, type BatchSendOutcome } from '#aws/sqs';

let client: SQSClient | undefined;

/** The container's SQS client: two attempts, short timeouts, so a queue outage costs a request seconds at most. */
export function sqs(): SQSClient {
  client ??= new SQSClient(awsClientOptions('SQS', { maxAttempts: 2, requestTimeout: 3_000 }));
  return client;
}

export function toMessage(row: PredictionRow): PredictionMessage {
  return {
    version: MESSAGE_VERSIONS.single,
    prediction_id: row.id,
    ts: row.ts,
    created_at: row.created_at,
    predicted_iq: row.predicted_iq,
    classification: row.classification,
    user_id: row.input.user_id,
    portfolio_id: row.input.portfolio_id ?? null,
    model_name: row.model_name,
    model_version: row.model_version,
  };
}

/**
 * Sends predictions to the queue with as few SendMessageBatch calls as possible, all at once. Never
 * throws: what the queue did not accept is reported so that it stays pending for the relay.
 */
export function sendPredictions(rows: PredictionRow[]): Promise<BatchSendOutcome> {
  return sendMessages(
    sqs(),
    config().PREDICTIONS_QUEUE_URL,
    rows.map((row) => ({ id: row.id, body: JSON.stringify(toMessage(row)) })),
  );
}

/** Whether the predictions queue answers (for /health). */
export async function queueReachable(): Promise<boolean> {
  await sqs().send(
    new GetQueueAttributesCommand({ QueueUrl: config().PREDICTIONS_QUEUE_URL, AttributeNames: ['QueueArn'] }),
  );
  return true;
}
