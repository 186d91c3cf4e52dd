import { SendMessageBatchCommand, type MessageAttributeValue, type SQSClient } from '@aws-sdk/client-sqs';

/** One message to send; `id` is the caller's own name for it and comes back in the outcome. */
export interface OutgoingMessage {
  id: string;
  body: string;
  delaySeconds?: number;
  attributes?: Record<string, MessageAttributeValue>;
}

export interface BatchSendOutcome {
  sent: string[];
  failed: Array<{ id: string; reason: string }>;
}

/** SendMessageBatch takes at most ten entries, and 256 KiB in all on queues that keep the old size limit. */
const MAX_ENTRIES = 10;
const MAX_REQUEST_BYTES = 256 * 1024;

function messageBytes(message: OutgoingMessage): number {
  let bytes = Buffer.byteLength(message.body);
  for (const [name, value] of Object.entries(message.attributes ?? {})) {
    bytes +=
      Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '') + Buffer.byteLength(value.StringValue ?? '');
  }
  return bytes;
}

function chunk(messages: OutgoingMessage[]): OutgoingMessage[][] {
  const chunks: OutgoingMessage[][] = [];
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = messageBytes(message);
    if (current.length === MAX_ENTRIES || (current.length > 0 && bytes + size > MAX_REQUEST_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Sends messages with as few SendMessageBatch calls as the limits allow, all at once. Never throws:
 * each message is reported sent or failed with the reason, so that the caller decides what a
 * failure means (retry, leave in place, report to SQS).
 */
export async function sendMessages(
  client: SQSClient,
  queueUrl: string,
  messages: OutgoingMessage[],
): Promise<BatchSendOutcome> {
  const outcome: BatchSendOutcome = { sent: [], failed: [] };
  await Promise.all(
    chunk(messages).map(async (batch) => {
      try {
        // Entry ids are positions: callers' ids need not fit SQS's id alphabet or be unique.
        const out = await client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: batch.map((message, i) => ({
              Id: String(i),
              MessageBody: message.body,
              DelaySeconds: message.delaySeconds,
              MessageAttributes: message.attributes,
            })),
          }),
        );
        for (const ok of out.Successful ?? []) outcome.sent.push(batch[Number(ok.Id)]!.id);
        for (const bad of out.Failed ?? []) {
          outcome.failed.push({ id: batch[Number(bad.Id)]!.id, reason: bad.Message ?? bad.Code ?? 'rejected by SQS' });
        }
      } catch (error) {
        const reason = (error as Error).message || (error as Error).name;
        for (const message of batch) outcome.failed.push({ id: message.id, reason });
      }
    }),
  );
  return outcome;
}
