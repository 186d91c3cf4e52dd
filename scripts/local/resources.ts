import { readFileSync } from 'node:fs';
import {
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sha256Hex } from '#aws/s3';
import { servingPointerKey, type ServingPointer } from '#prediction/serving';

export interface AwsEndpoints {
  s3: string;
  sqs: string;
  region: string;
}

export const s3Client = (e: AwsEndpoints) => new S3Client({ endpoint: e.s3, region: e.region, forcePathStyle: true });
export const sqsClient = (e: AwsEndpoints) => new SQSClient({ endpoint: e.sqs, region: e.region });

/** A queue's ARN (event sources and redrive policies name queues by ARN). */
export async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return Attributes!.QueueArn!;
}

export async function ensureBucket(e: AwsEndpoints, bucket: string): Promise<void> {
  const s3 = s3Client(e);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}

/**
 * The predictions queue and its dead-letter queue, as serverless.yml declares them for AWS
 * (visibility 60 s, a message moves to the DLQ after 5 receives), and the model-sync queue.
 */
export async function ensureQueues(
  e: AwsEndpoints,
  prefix: string,
): Promise<{ queueUrl: string; dlqUrl: string; syncQueueUrl: string }> {
  const sqs = sqsClient(e);
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${prefix}-predictions-dlq`,
      Attributes: { MessageRetentionPeriod: '1209600' },
    }),
  );
  const dlqArn = await queueArn(sqs, dlq.QueueUrl!);
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${prefix}-predictions`,
      Attributes: {
        VisibilityTimeout: '60',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: '5' }),
      },
    }),
  );
  const sync = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${prefix}-model-sync`,
      Attributes: { VisibilityTimeout: '60', MessageRetentionPeriod: '60' },
    }),
  );
  return { queueUrl: queue.QueueUrl!, dlqUrl: dlq.QueueUrl!, syncQueueUrl: sync.QueueUrl! };
}

const INCOMING_NOTIFICATION_ID = 'hubfolio-incoming';

/**
 * For an S3 that is not embedded (LocalStack): a queue that the bucket notifies of every object
 * created under incoming/, standing in for the S3 trigger of modelIngest that serverless.yml
 * declares on AWS. The bucket's other notifications are kept. Throws when the endpoint refuses
 * notification configuration.
 */
export async function ensureIncomingNotifications(
  e: AwsEndpoints,
  bucket: string,
  prefix: string,
): Promise<{ queueUrl: string; queueArn: string }> {
  const sqs = sqsClient(e);
  // Longer than modelIngest's 300 s timeout, as Lambda requires of an event source's queue.
  const { QueueUrl: queueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: `${prefix}-incoming-events`, Attributes: { VisibilityTimeout: '360' } }),
  );
  const arn = await queueArn(sqs, queueUrl!);
  const s3 = s3Client(e);
  const current = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  await s3.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        TopicConfigurations: current.TopicConfigurations,
        LambdaFunctionConfigurations: current.LambdaFunctionConfigurations,
        EventBridgeConfiguration: current.EventBridgeConfiguration,
        QueueConfigurations: [
          ...(current.QueueConfigurations ?? []).filter((c) => c.Id !== INCOMING_NOTIFICATION_ID),
          {
            Id: INCOMING_NOTIFICATION_ID,
            QueueArn: arn,
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'incoming/' }] } },
          },
        ],
      },
    }),
  );
  return { queueUrl: queueUrl!, queueArn: arn };
}

/** Puts the bundled sample model in S3 and names it the serving model, unless one is already serving. */
export async function seedSampleModel(
  e: AwsEndpoints,
  bucket: string,
  modelName: string,
  modelFile: string,
): Promise<boolean> {
  const s3 = s3Client(e);
  const pointerKey = servingPointerKey(modelName);
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: pointerKey }));
    return false;
  } catch {
    // no serving model yet
  }
  const bytes = readFileSync(modelFile);
  const sha256 = sha256Hex(bytes);
  const key = `models/${modelName}/v0/${modelName}_v0_sample.onnx`;
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: bytes,
      Metadata: { version: '0', sha256, source: 'bundled-sample' },
    }),
  );
  // Written with this script's own client (the stack's endpoints, not a function's configuration).
  const pointer: ServingPointer = {
    model_name: modelName,
    version: '0',
    s3_key: key,
    sha256,
    run_id: null,
    promoted_at: new Date().toISOString(),
  };
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: pointerKey,
      Body: JSON.stringify(pointer),
      ContentType: 'application/json',
    }),
  );
  return true;
}
