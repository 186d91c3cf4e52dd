import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { S3Event } from 'aws-lambda';
import { afterEach, expect, it } from 'vitest';
import { s3NotificationEvent, startS3EventBridge } from '../../scripts/local/bridge.ts';
import { queueArn, sqsClient } from '../../scripts/local/resources.ts';
import { testEndpoints } from '../helpers/fixtures.ts';

// With an external S3 (LocalStack), `npm start` has the bucket notify a queue of objects created
// under incoming/ and feeds that queue to modelIngest. The notification itself needs LocalStack;
// this is the half that runs here: the queue, as LocalStack fills it, to the function.
const sqs = sqsClient(testEndpoints());
const running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((bridge) => bridge.stop()));
});

async function eventsQueue(visibilitySeconds: number) {
  const name = `s3-events-${Math.random().toString(36).slice(2, 10)}`;
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: String(visibilitySeconds) } }),
  );
  return { queueUrl: QueueUrl!, queueArn: await queueArn(sqs, QueueUrl!) };
}

async function messagesLeft(queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function bridge(
  queue: { queueUrl: string; queueArn: string },
  invoke: (event: S3Event) => Promise<unknown>,
  errors: unknown[] = [],
) {
  const started = startS3EventBridge({
    sqs,
    ...queue,
    region: 'us-east-1',
    invoke,
    onError: (error) => errors.push(error),
  });
  running.push(started);
  return started;
}

it('hands each S3 event on the queue to the function once, and drops S3 test events and bodies that are not S3 events', async () => {
  const queue = await eventsQueue(30);
  const dropped = s3NotificationEvent('models', 'incoming/hubfolio-model/m.onnx', 120, '"abc"', 'us-east-1');
  const send = (body: string) => sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: body }));
  await send(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'models' }));
  await send('not json');
  await send(JSON.stringify(dropped));
  const invoked: S3Event[] = [];
  const errors: unknown[] = [];
  bridge(queue, async (event) => invoked.push(event), errors);
  await until(async () => (await messagesLeft(queue.queueUrl)) === 0);
  expect(invoked).toEqual([dropped]);
  expect(errors.map((e) => (e as Error).message)).toEqual(['dropped a message that is not an S3 event: not json']);
});

it('leaves an event whose invocation failed on the queue, and hands it over again after the visibility timeout', async () => {
  const queue = await eventsQueue(1);
  const event = s3NotificationEvent('models', 'incoming/hubfolio-model/m.onnx', 120, '"abc"', 'us-east-1');
  await sqs.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: JSON.stringify(event) }));
  let attempts = 0;
  const errors: unknown[] = [];
  bridge(
    queue,
    async () => {
      attempts += 1;
      if (attempts === 1) throw new Error('modelIngest failed: 502');
    },
    errors,
  );
  await until(() => attempts === 2);
  await until(async () => (await messagesLeft(queue.queueUrl)) === 0);
  expect(attempts).toBe(2);
  expect(errors.map((e) => (e as Error).message)).toEqual(['modelIngest failed: 502']);
});
