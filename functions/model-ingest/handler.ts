import type { S3Event } from 'aws-lambda';
import { ingestS3Event } from '#model/ingest';
import { eventHandler } from '#shared/handler';

/** S3 ObjectCreated under incoming/: registers dropped model files once; every outcome shows in GET /model/info. */
export const handler = eventHandler(async (event: S3Event) => ingestS3Event(event));
