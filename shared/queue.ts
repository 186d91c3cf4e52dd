import { GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClientOptions } from '#shared/aws';
import { config } from '#shared/config';
import { PREDICTION_MESSAGE_VERSION, type PredictionMessage } from '#shared/messages';
import type { PredictionRow } from '#shared/prediction-store';

let client: SQSClient | undefined;

/** The container's SQS client: two attempts, short timeouts, so a queue outage costs a request seconds at most. */
export function sqs(): SQSClient {
  client ??= new SQSClient(awsClientOptions('SQS', { maxAttempts: 2, requestTimeout: 3_000 }));
  return client;
}

export function toMessage(row: PredictionRow): PredictionMessage {
  return {
    version: PREDICTION_MESSAGE_VERSION,
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

const SQS_BATCH = 10;

export interface SendOutcome {
  sent: string[];
  failed: { id: string; reason: string }[];
}

/**
 * Sends predictions to the queue, ten per SendMessageBatch, all batches at once. Never throws:
 * what the queue did not accept is reported so that it stays pending for the relay.
 */
export async function sendPredictions(rows: PredictionRow[]): Promise<SendOutcome> {
  const outcome: SendOutcome = { sent: [], failed: [] };
  const batches: PredictionRow[][] = [];
  for (let i = 0; i < rows.length; i += SQS_BATCH) batches.push(rows.slice(i, i + SQS_BATCH));
  await Promise.all(
    batches.map(async (batch) => {
      try {
        const out = await sqs().send(
          new SendMessageBatchCommand({
            QueueUrl: config().PREDICTIONS_QUEUE_URL,
            Entries: batch.map((row) => ({ Id: row.id, MessageBody: JSON.stringify(toMessage(row)) })),
          }),
        );
        for (const ok of out.Successful ?? []) outcome.sent.push(ok.Id!);
        for (const bad of out.Failed ?? []) outcome.failed.push({ id: bad.Id!, reason: bad.Message ?? bad.Code ?? 'rejected' });
      } catch (error) {
        const reason = (error as Error).message || (error as Error).name;
        for (const row of batch) outcome.failed.push({ id: row.id, reason });
      }
    }),
  );
  return outcome;
}

/** Whether the predictions queue answers (for /health). */
export async function queueReachable(): Promise<boolean> {
  await sqs().send(new GetQueueAttributesCommand({ QueueUrl: config().PREDICTIONS_QUEUE_URL, AttributeNames: ['QueueArn'] }));
  return true;
}
