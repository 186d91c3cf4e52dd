import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

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
    if (!response.ok || response.headers.get('x-amz-function-error')) throw new Error(`${fn} failed: ${response.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  };
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
          object: { key: encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/'), size, eTag },
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
  batchSize: number;
  invoke: (event: unknown) => Promise<unknown>;
  onError: (error: unknown) => void;
}

/** Polls the queue and feeds batches to the consumer until stopped. */
export function startSqsBridge(options: SqsBridgeOptions) {
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const { Messages = [] } = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: Math.min(10, options.batchSize),
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['All'],
          }),
        );
        if (Messages.length === 0) continue;
        const records = Messages.map((m) => ({
          messageId: m.MessageId!,
          receiptHandle: m.ReceiptHandle!,
          body: m.Body ?? '',
          attributes: m.Attributes ?? {},
          messageAttributes: {},
          md5OfBody: m.MD5OfBody ?? '',
          eventSource: 'aws:sqs',
          eventSourceARN: options.queueArn,
          awsRegion: options.region,
        }));
        const result = (await options.invoke({ Records: records })) as { batchItemFailures?: { itemIdentifier: string }[] } | null;
        const failed = new Set((result?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        const done = records.filter((r) => !failed.has(r.messageId));
        if (done.length > 0) {
          await options.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: options.queueUrl,
              Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
            }),
          );
        }
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
