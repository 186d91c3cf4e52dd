import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { awsClientOptions, reportOutages } from '#aws/options';
import { config } from '#shared/config';

/** The hex SHA-256 of a file: the identity of a model file across upload, export and serving. */
export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

let client: S3Client | undefined;

/** The container's S3 client. */
export function s3(): S3Client {
  client ??= createS3Client();
  return client;
}

/** An S3 client for the configured endpoint; `extra` for clients with other needs (presigning). */
export function createS3Client(extra: Partial<S3ClientConfig> = {}): S3Client {
  const options = awsClientOptions('S3');
  // Emulators on 127.0.0.1 have no bucket subdomains: path-style whenever an endpoint is set.
  return reportOutages(new S3Client({ ...options, forcePathStyle: 'endpoint' in options, ...extra }), 'S3');
}

function isMissing(error: unknown): boolean {
  return error instanceof NoSuchKey || error instanceof NotFound || (error as { name?: string }).name === 'NotFound';
}

/** An object's bytes and metadata, or null when there is no such key. */
export async function getObject(
  key: string,
): Promise<{ bytes: Uint8Array; etag?: string; metadata: Record<string, string> } | null> {
  try {
    const out = await s3().send(new GetObjectCommand({ Bucket: config().MODEL_BUCKET, Key: key }));
    const bytes = await out.Body!.transformToByteArray();
    return { bytes, etag: out.ETag, metadata: out.Metadata ?? {} };
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

/** An object's ETag, or null when there is no such key (a cheap change check). */
export async function headObjectEtag(key: string): Promise<string | null> {
  try {
    const out = await s3().send(new HeadObjectCommand({ Bucket: config().MODEL_BUCKET, Key: key }));
    return out.ETag ?? null;
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

export async function putObject(
  key: string,
  body: Uint8Array | string,
  options: { contentType?: string; metadata?: Record<string, string> } = {},
): Promise<void> {
  await s3().send(
    new PutObjectCommand({
      Bucket: config().MODEL_BUCKET,
      Key: key,
      Body: body,
      ContentType: options.contentType ?? 'application/octet-stream',
      Metadata: options.metadata,
    }),
  );
}

/** Whether the model bucket exists (for /health); throws when S3 does not answer. */
export async function bucketState(): Promise<'exists' | 'missing'> {
  try {
    await s3().send(new HeadBucketCommand({ Bucket: config().MODEL_BUCKET }));
    return 'exists';
  } catch (error) {
    if (isMissing(error)) return 'missing';
    throw error;
  }
}
