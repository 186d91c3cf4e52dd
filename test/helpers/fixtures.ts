import { ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import pg from 'pg';
import { PREDICT_EXAMPLE } from '#api/openapi';
import { MESSAGE_VERSIONS, type Prediction } from '#prediction/message';
import { SAMPLE_MODEL } from '../../scripts/local/stack.ts';
import { seedSampleModel, sqsClient } from '../../scripts/local/resources.ts';

/** The seed guide's example request: the OpenAPI document's example without the optional portfolio_id. */
const { portfolio_id: _, ...seedExample } = PREDICT_EXAMPLE;
export const SEED_EXAMPLE = seedExample;

export const testEndpoints = () => ({
  s3: process.env.AWS_ENDPOINT_URL_S3!,
  sqs: process.env.AWS_ENDPOINT_URL_SQS!,
  region: process.env.AWS_REGION!,
});

/** Makes the bundled sample the serving model of this test file's bucket. */
export const useSampleModel = () =>
  seedSampleModel(testEndpoints(), process.env.MODEL_BUCKET!, process.env.MODEL_NAME!, SAMPLE_MODEL);

/** pg's own default row type, what `client.query` gives without a type argument: tests read the columns they select. */
type UntypedRow = pg.QueryResult['rows'][number];

/** A direct connection for assertions, independent of the suite's pool. */
export async function query<T extends pg.QueryResultRow = UntypedRow>(
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Every message currently visible on a queue (and makes them invisible for `visibility` seconds). */
export async function drainQueue(queueUrl = process.env.PREDICTIONS_QUEUE_URL!, visibility = 60): Promise<Message[]> {
  const sqs = sqsClient(testEndpoints());
  const all: Message[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: visibility,
      }),
    );
    if (Messages.length === 0) return all;
    all.push(...Messages);
  }
}

/** The predictions queued messages hold: a single message is one, an envelope several (shared/prediction/message.ts). */
export function queuedPredictions(messages: Message[]): Prediction[] {
  return messages.flatMap((message) => {
    const body = JSON.parse(message.Body!);
    return body.version === MESSAGE_VERSIONS.envelope ? body.predictions : [body];
  });
}
