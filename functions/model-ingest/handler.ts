import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { S3Event } from 'aws-lambda';
import { ingestS3Event } from '#model/ingest';
import { logger } from '#shared/log';

/** S3 ObjectCreated under incoming/: registers dropped model files once; every outcome shows in GET /model/info. */
export const handler = middy<S3Event>()
  .use(injectLambdaContext(logger))
  .handler(async (event) => ingestS3Event(event));
