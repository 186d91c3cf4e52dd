import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { migrate } from '#shared/migrations';
import { S3RVER_CREDENTIALS } from '../../scripts/local/emulators.ts';
import { ensureBucket, ensureQueues } from '../../scripts/local/resources.ts';

/**
 * Runs before each test file: points the suite's configuration at the run's PostgreSQL and
 * emulators, with a bucket and queues of the file's own so that files running side by side
 * never see each other's objects or messages, and a PostgreSQL schema of its own.
 */
const id = randomBytes(4).toString('hex');
const endpoints = { s3: inject('s3Url'), sqs: inject('sqsUrl'), region: 'us-east-1' };
Object.assign(process.env, S3RVER_CREDENTIALS, {
  AWS_REGION: endpoints.region,
  AWS_ENDPOINT_URL_S3: endpoints.s3,
  AWS_ENDPOINT_URL_SQS: endpoints.sqs,
  MODEL_BUCKET: `test-${id}`,
  MODEL_NAME: 'hubfolio-model',
});
const schema = `test_${id}`;
await migrate(inject('databaseUrl'), { schema });
const databaseUrl = new URL(inject('databaseUrl'));
databaseUrl.searchParams.set('options', `-c search_path=${schema}`);
process.env.DATABASE_URL = databaseUrl.toString();
await ensureBucket(endpoints, `test-${id}`);
const { queueUrl, dlqUrl, syncQueueUrl } = await ensureQueues(endpoints, `test-${id}`);
process.env.PREDICTIONS_QUEUE_URL = queueUrl;
process.env.MODEL_SYNC_QUEUE_URL = syncQueueUrl;
process.env.TEST_DLQ_URL = dlqUrl;
