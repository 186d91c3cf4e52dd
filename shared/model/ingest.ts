import { randomUUID } from 'node:crypto';
import type { S3Event, S3EventRecord } from 'aws-lambda';
import * as z from 'zod';
import { config } from '#shared/config';
import { BadRequestError, ConflictError, PayloadTooLargeError, RequestError } from '#http/errors';
import { fieldIssues } from '#http/validation';
import { logger } from '#shared/log';
import { flagText, METRIC_RULES, numberText, pickMetrics } from '#model/api';
import { INCOMING_PREFIX } from '#model/storage';
import { findDrop, recordDrop, type DropRecord } from '#model/drops';
import { MAX_MODEL_BYTES } from '#model/validation';
import { registerModelFile } from '#model/registration';
import { getObject } from '#aws/s3';

/**
 * The S3 drop folder: an object created under incoming/{model_name}/ (by any S3 client, or the
 * presigned URL of POST /model/upload-url) is registered through the same service as an upload.
 *
 * Every outcome is recorded per key (shared/model/drops.ts) for GET /model/info to show. S3
 * delivers events at least once, and Lambda retries a failed invocation: a repeated event (same
 * object, same sequencer) of a refused file answers the recorded refusal without reading the file
 * again, and one of a taken file finds it again by its sha256 and promotes it only if nothing was
 * promoted since. A new put of a file, even of the same bytes, is handled like the same upload again:
 * refused for the same reason, or answered with its version and made to serve. Only failures of S3
 * or PostgreSQL themselves fail the invocation, so that Lambda's retries try again.
 */

export interface IngestResult {
  key: string;
  outcome: 'registered' | 'pending' | 'stored' | 'rejected' | 'skipped';
  model_name?: string;
  version?: string | null;
  reason?: string;
}

/** S3 notifications carry keys URL-encoded, spaces as "+". */
export const decodeS3Key = (key: string) => decodeURIComponent(key.replace(/\+/g, ' '));

/** incoming/{model}/{file} → model and file; a file right under incoming/ belongs to MODEL_NAME. */
function target(key: string): { modelName: string; fileName: string } | null {
  if (!key.startsWith(INCOMING_PREFIX)) return null;
  const parts = key.slice(INCOMING_PREFIX.length).split('/');
  const fileName = parts.at(-1) ?? '';
  if (!fileName) return null; // a "folder" placeholder object
  return { modelName: parts.length > 1 ? parts[0]! : config().MODEL_NAME, fileName };
}

const metadataSchema = z.object({
  'r2-score': numberText(METRIC_RULES.r2_score).optional(),
  r2_score: numberText(METRIC_RULES.r2_score).optional(),
  rmse: numberText(METRIC_RULES.rmse).optional(),
  mae: numberText(METRIC_RULES.mae).optional(),
  promote: flagText.optional(),
});

const sidecarSchema = z.strictObject(
  {
    r2_score: METRIC_RULES.r2_score.optional(),
    rmse: METRIC_RULES.rmse.optional(),
    mae: METRIC_RULES.mae.optional(),
    promote: z.boolean({ error: 'must be true or false' }).optional(),
  },
  { error: 'must be a JSON object such as {"r2_score": 0.85, "rmse": 12.5, "mae": 9.2}' },
);

function parseOrRefuse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = fieldIssues(result.error);
  throw new BadRequestError(`${where}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, issues);
}

/** Metrics and `promote` from the object's metadata (x-amz-meta-*), overridden by a sidecar <file>.json. */
async function wishesFor(key: string, metadata: Record<string, string>) {
  const fromMetadata = parseOrRefuse(metadataSchema, metadata, 'Invalid x-amz-meta-* metadata on the model file');
  const sidecar = await getObject(`${key}.json`);
  let fromSidecar: z.infer<typeof sidecarSchema> = {};
  if (sidecar) {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(sidecar.bytes).toString('utf8'));
    } catch (error) {
      throw new BadRequestError(
        `The sidecar ${key}.json is not valid JSON (${(error as Error).message}); write e.g. {"r2_score": 0.85, "rmse": 12.5, "mae": 9.2}.`,
      );
    }
    fromSidecar = parseOrRefuse(sidecarSchema, json, `Invalid sidecar ${key}.json`);
  }
  return {
    metrics: pickMetrics({
      r2_score: fromSidecar.r2_score ?? fromMetadata.r2_score ?? fromMetadata['r2-score'],
      rmse: fromSidecar.rmse ?? fromMetadata.rmse,
      mae: fromSidecar.mae ?? fromMetadata.mae,
    }),
    // Dropped files serve by default, like uploads (the seed's "uploaded models serve").
    promote: fromSidecar.promote ?? fromMetadata.promote ?? true,
  };
}

/** Records a refusal for GET /model/info; the upload of the same file would have answered it. */
async function reject(
  drop: Omit<DropRecord, 'sha256' | 'status' | 'reason'>,
  error: RequestError,
): Promise<IngestResult> {
  await recordDrop({ ...drop, sha256: null, status: error.statusCode, reason: error.message });
  logger.warn('dropped model file rejected', { key: drop.key, status: error.statusCode, reason: error.message });
  return { key: drop.key, outcome: 'rejected', model_name: drop.model_name, reason: error.message };
}

async function ingestRecord(record: S3EventRecord): Promise<IngestResult> {
  const key = decodeS3Key(record.s3.object.key);
  const skip = (reason: string): IngestResult => {
    logger.info('drop folder event skipped', { key, reason });
    return { key, outcome: 'skipped', reason };
  };
  if (record.s3.bucket.name !== config().MODEL_BUCKET)
    return skip(`bucket ${record.s3.bucket.name} is not MODEL_BUCKET`);
  const file = target(key);
  if (!file) return skip('not a file under incoming/');
  if (key.toLowerCase().endsWith('.json')) return skip('a sidecar (metrics for the model file of the same name)');

  // S3 quotes ETags in API answers and not in events; the object's own ETag is the one used throughout.
  const etag = record.s3.object.eTag ? `"${record.s3.object.eTag.replace(/"/g, '')}"` : null;
  const drop = {
    key,
    model_name: file.modelName,
    etag,
    event: record.s3.object.sequencer || record.eventTime || randomUUID(),
  };
  const previous = await findDrop(key);
  const repeated = previous !== null && previous.event === drop.event && previous.etag === etag;
  if (repeated && previous.status !== null) {
    logger.info('drop folder event repeated; the file was refused before', { key });
    return { key, outcome: 'rejected', model_name: file.modelName, reason: previous.reason ?? undefined };
  }
  try {
    if (record.s3.object.size > MAX_MODEL_BYTES) {
      throw new PayloadTooLargeError(
        `${file.fileName} is ${record.s3.object.size} bytes; model files may be at most ${MAX_MODEL_BYTES} bytes.`,
      );
    }
    const object = await getObject(key);
    if (!object) return skip('the object no longer exists');
    const wishes = await wishesFor(key, object.metadata);
    const outcome = await registerModelFile(
      {
        bytes: object.bytes,
        fileName: file.fileName,
        modelName: file.modelName,
        metrics: wishes.metrics,
        source: `s3://${config().MODEL_BUCKET}/${key}`,
      },
      // A new put serves at once, as the same upload again would; a repeated event only if nothing was promoted since.
      { register: true, export: true, promote: wishes.promote ? (repeated ? 'once' : 'now') : 'never' },
    );
    await recordDrop({ ...drop, sha256: outcome.file.sha256, status: null, reason: null });
    const status = outcome.file.status;
    return {
      key,
      outcome: status === 'registered' ? 'registered' : status === 'stored' ? 'stored' : 'pending',
      model_name: file.modelName,
      version: outcome.file.version,
      ...(outcome.registryError ? { reason: outcome.registryError } : {}),
    };
  } catch (error) {
    // Another invocation is registering the same file right now: it will finish the job.
    if (error instanceof ConflictError) return skip(error.message);
    if (error instanceof RequestError) return reject(drop, error);
    throw error;
  }
}

/** Registers every dropped model file of an S3 event; throws (for Lambda to retry) only when S3 or PostgreSQL failed. */
export async function ingestS3Event(event: S3Event): Promise<IngestResult[]> {
  const results: IngestResult[] = [];
  const failures: unknown[] = [];
  for (const record of event.Records ?? []) {
    try {
      results.push(await ingestRecord(record));
    } catch (error) {
      logger.error('could not ingest a dropped model file', { key: record.s3.object.key, error: error as Error });
      failures.push(error);
    }
  }
  // Lambda retries the whole event; the records already handled are no-ops the second time.
  if (failures.length > 0)
    throw new AggregateError(
      failures,
      `${failures.length} of ${event.Records.length} dropped model files could not be ingested`,
    );
  return results;
}
