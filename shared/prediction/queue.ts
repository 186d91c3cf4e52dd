import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClientOptions, reportOutages } from '#aws/options';
import { config } from '#shared/config';
import { MESSAGE_VERSIONS, packMessages, type Prediction, type PredictionMessage } from '#prediction/message';
import type { PredictionRow } from '#prediction/store';
import { sendMessages, type BatchSendOutcome } from '#aws/sqs';

let client: SQSClient | undefined;

/** The container's SQS client: two attempts, short timeouts, so a queue outage costs a request seconds at most. */
export function sqs(): SQSClient {
  client ??= reportOutages(new SQSClient(awsClientOptions('SQS', { maxAttempts: 2 })), 'SQS');
  return client;
}

function toPrediction(row: PredictionRow): Prediction {
  return {
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

/** A stored prediction as a single message, as /predict sends it. */
export const toMessage = (row: PredictionRow): PredictionMessage => ({
  version: MESSAGE_VERSIONS.single,
  ...toPrediction(row),
});

/**
 * Sends predictions to the queue: one single message for one prediction, envelopes of as many as
 * fit for more (a 1,000-row batch is one or two), in as few SendMessageBatch calls as possible, all
 * at once. Never throws: each prediction is reported sent or failed (with its message), so that
 * what the queue did not accept stays pending for the relay.
 */
export async function sendPredictions(rows: PredictionRow[]): Promise<BatchSendOutcome> {
  const messages = packMessages(rows.map(toPrediction));
  const { sent, failed } = await sendMessages(
    sqs(),
    config().PREDICTIONS_QUEUE_URL,
    messages.map((message, i) => ({ id: String(i), body: message.body })),
  );
  const idsOf = (i: string) => messages[Number(i)]!.ids;
  return {
    sent: sent.flatMap(idsOf),
    failed: failed.flatMap(({ id, reason }) => idsOf(id).map((predictionId) => ({ id: predictionId, reason }))),
  };
}

/** Whether the predictions queue answers (for /health). */
export async function queueReachable(): Promise<boolean> {
  await sqs().send(
    new GetQueueAttributesCommand({ QueueUrl: config().PREDICTIONS_QUEUE_URL, AttributeNames: ['QueueArn'] }),
  );
  return true;
}
