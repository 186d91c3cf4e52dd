import { healthReport } from '#shared/health';
import { httpHandler } from '#http/handler';

/** GET /health: 200 when healthy or degraded, 503 when PostgreSQL, S3 or SQS fail. */
export const handler = httpHandler(async () => {
  const report = await healthReport();
  return { statusCode: report.status === 'unhealthy' ? 503 : 200, body: report };
});
