import { readFileSync } from 'node:fs';
import { CreateBucketCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sha256Hex } from '#shared/model-storage';
import { servingPointerKey, type ServingPointer } from '#shared/serving';

export interface AwsEndpoints {
  s3: string;
  sqs: string;
  region: string;
}

export const s3Client = (e: AwsEndpoints) => new S3Client({ endpoint: e.s3, region: e.region, forcePathStyle: true });
export const sqsClient = (e: AwsEndpoints) => new SQSClient({ endpoint: e.sqs, region: e.region });

export async function ensureBucket(e: AwsEndpoints, bucket: string): Promise<void> {
  const s3 = s3Client(e);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}

/**
 * The predictions queue and its dead-letter queue, as serverless.yml declares them for AWS:
 * visibility 60 s, a message moves to the DLQ after 5 receives.
 */
export async function ensureQueues(e: AwsEndpoints, prefix: string): Promise<{ queueUrl: string; dlqUrl: string }> {
  const sqs = sqsClient(e);
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-predictions-dlq`, Attributes: { MessageRetentionPeriod: '1209600' } }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${prefix}-predictions`,
      Attributes: { VisibilityTimeout: '60', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: '5' }) },
    }),
  );
  return { queueUrl: queue.QueueUrl!, dlqUrl: dlq.QueueUrl! };
}

/** Puts the bundled sample model in S3 and names it the serving model, unless one is already serving. */
export async function seedSampleModel(e: AwsEndpoints, bucket: string, modelName: string, modelFile: string): Promise<boolean> {
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
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, Metadata: { version: '0', sha256, source: 'bundled-sample' } }));
  // Written with this script's own client (the stack's endpoints, not a function's configuration).
  const pointer: ServingPointer = { model_name: modelName, version: '0', s3_key: key, sha256, run_id: null, promoted_at: new Date().toISOString() };
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: pointerKey, Body: JSON.stringify(pointer), ContentType: 'application/json' }));
  return true;
}
