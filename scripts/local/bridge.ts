import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { S3Event, SQSRecord } from 'aws-lambda';
import { MAX_ENVELOPE_BYTES } from '#prediction/message';

/**
 * What AWS does between the emulators and the functions, done locally through serverless-offline's
 * Lambda invoke endpoint: S3 ObjectCreated events under a prefix become S3 notifications, and SQS
 * messages become event-source batches. Only messages not reported in `batchItemFailures` are
 * deleted (serverless-offline-sqs deletes them all, losing failures); the rest come back after
 * their visibility timeout, as on AWS, until the redrive policy moves them to the DLQ.
 */
export function lambdaInvoker(lambdaUrl: string, functionPrefix: string) {
  return async (fn: string, event: unknown): Promise<unknown> => {
    const response = await fetch(`${lambdaUrl}/2015-03-31/functions/${functionPrefix}${fn}/invocations`, {
      method: 'POST',
      body: JSON.stringify(event),
    });
    const text = await response.text();
    if (!response.ok || response.headers.get('x-amz-function-error'))
      throw new Error(`${fn} failed: ${response.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  };
}

let lastSequencer = 0n;

/**
 * S3's `sequencer`: a hex number that grows with each event of a key, so that a repeated delivery of
 * an event (the same sequencer) can be told from a new put of the same bytes (a greater one).
 */
function nextSequencer(): string {
  lastSequencer = lastSequencer >= process.hrtime.bigint() ? lastSequencer + 1n : process.hrtime.bigint();
  return lastSequencer.toString(16).toUpperCase().padStart(18, '0');
}

export function s3NotificationEvent(bucket: string, key: string, size: number, eTag: string, region: string) {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: region,
        eventTime: new Date().toISOString(),
        eventName: 'ObjectCreated:Put',
        s3: {
          s3SchemaVersion: '1.0',
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          // S3 notifications carry the key URL-encoded, spaces as "+".
          object: {
            key: encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/'),
            size,
            eTag,
            sequencer: nextSequencer(),
          },
        },
      },
    ],
  };
}

export interface SqsBridgeOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  /** Most records per invocation; the bridge gathers them ten per receive, as Lambda's poller does. */
  batchSize: number;
  /**
   * How long to keep gathering a batch that is not full once its first records arrived (Lambda's
   * MaximumBatchingWindowInSeconds); 0: only what the queue has at hand. As on Lambda, a batch also
   * ends before its payload could pass 6 MB.
   */
  batchingWindowSeconds?: number;
  invoke: (event: { Records: SQSRecord[] }) => Promise<unknown>;
  onError: (error: unknown) => void;
}

/** A received message as a Lambda SQS event record, message attributes included (Lambda's lower-case shape). */
export function toLambdaRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const messageAttributes: SQSRecord['messageAttributes'] = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: value.DataType ?? 'String',
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') } : {}),
      stringListValues: [],
      binaryListValues: [],
    };
  }
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: (message.Attributes ?? {}) as unknown as SQSRecord['attributes'],
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/** Lambda's limit on an invocation's payload. */
const LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024;

/**
 * Whether one more receive (ten messages at most, each no larger than the suite's largest message,
 * an envelope) could take the batch past Lambda's payload limit.
 */
function payloadMayOverflow(messages: Message[]): boolean {
  const bytes = messages.reduce((sum, m) => sum + Buffer.byteLength(m.Body ?? ''), 0);
  return bytes + 10 * MAX_ENVELOPE_BYTES > LAMBDA_PAYLOAD_BYTES;
}

/** Polls the queue and feeds batches to the consumer until stopped. Start several for concurrent pollers. */
export function startSqsBridge(options: SqsBridgeOptions) {
  let running = true;
  const receive = async (max: number, waitSeconds: number) =>
    (
      await options.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: options.queueUrl,
          MaxNumberOfMessages: Math.min(10, max),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      )
    ).Messages ?? [];
  const loop = (async () => {
    while (running) {
      try {
        const messages = await receive(options.batchSize, 1);
        if (messages.length === 0) continue;
        // Fill the batch while the queue has more at hand, and then until the batching window closes.
        const windowEnds = Date.now() + (options.batchingWindowSeconds ?? 0) * 1000;
        while (messages.length < options.batchSize && !payloadMayOverflow(messages)) {
          const more = await receive(options.batchSize - messages.length, 0);
          messages.push(...more);
          if (more.length > 0) continue;
          const left = windowEnds - Date.now();
          if (left <= 0 || !running) break;
          await new Promise((r) => setTimeout(r, Math.min(left, 50)));
        }
        const records = messages.map((m) => toLambdaRecord(m, options.queueArn, options.region));
        const result = (await options.invoke({ Records: records })) as {
          batchItemFailures?: { itemIdentifier: string }[];
        } | null;
        const failed = new Set((result?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        const done = records.filter((r) => !failed.has(r.messageId));
        const chunks = Array.from({ length: Math.ceil(done.length / 10) }, (_, i) => done.slice(i * 10, i * 10 + 10));
        await Promise.all(
          chunks.map((chunk) =>
            options.sqs.send(
              new DeleteMessageBatchCommand({
                QueueUrl: options.queueUrl,
                Entries: chunk.map((r, j) => ({ Id: String(j), ReceiptHandle: r.receiptHandle })),
              }),
            ),
          ),
        );
      } catch (error) {
        // An invocation that failed as a whole deletes nothing: the batch comes back after its visibility timeout.
        options.onError(error);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/**
 * The drop-folder trigger when S3 is not embedded (LocalStack): the bucket notifies a queue of
 * objects created under incoming/ (see ensureIncomingNotifications), and each message's body, an
 * S3 event, is handed to the function as S3 would invoke it. A failed invocation leaves its message
 * on the queue to come back after the visibility timeout, like Lambda's own retries; S3's test
 * event and bodies that are not S3 events are dropped.
 */
export function startS3EventBridge(
  options: Omit<SqsBridgeOptions, 'invoke' | 'batchSize'> & { invoke: (event: S3Event) => Promise<unknown> },
) {
  return startSqsBridge({
    ...options,
    batchSize: 10,
    invoke: async ({ Records }) => {
      const batchItemFailures: { itemIdentifier: string }[] = [];
      for (const record of Records) {
        let event: Partial<S3Event>;
        try {
          event = JSON.parse(record.body);
        } catch {
          options.onError(new Error(`dropped a message that is not an S3 event: ${record.body.slice(0, 100)}`));
          continue;
        }
        if (!Array.isArray(event.Records) || event.Records.length === 0) continue;
        try {
          await options.invoke(event as S3Event);
        } catch (error) {
          options.onError(error);
          batchItemFailures.push({ itemIdentifier: record.messageId });
        }
      }
      return { batchItemFailures };
    },
  });
}
