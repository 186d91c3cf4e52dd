import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { config } from '#shared/config';
import { createS3Client, getObject, putObject, s3 } from '#aws/s3';

/**
 * Where model files live in the bucket. Only people write under `incoming/` (the drop folder that
 * triggers registration); everything the suite writes goes elsewhere, so nothing it writes
 * triggers it again:
 *   uploads/{model}/{sha256}.onnx                       every accepted file, as received
 *   models/{model}/v{N}/{model}_v{N}_{YYYYMMDD_HHMMSS}.onnx  exported versions (the seed's key)
 *   serving/{model}.json                                which export serves (shared/prediction/serving.ts)
 */
export const INCOMING_PREFIX = 'incoming/';

export const s3Uri = (key: string) => `s3://${config().MODEL_BUCKET}/${key}`;

export const storedModelKey = (modelName: string, sha256: string) => `uploads/${modelName}/${sha256}.onnx`;

/** 2025-01-15T12:00:00Z → 20250115_120000 (UTC). */
const stamp = (at: Date) => at.toISOString().slice(0, 19).replace(/-|:/g, '').replace('T', '_');

export const exportKey = (modelName: string, version: string, at = new Date()) =>
  `models/${modelName}/v${version}/${modelName}_v${version}_${stamp(at)}.onnx`;

/** S3 metadata travels as HTTP headers: ASCII only, so free text (file names) is URI-encoded. */
const metadataText = (text: string) => encodeURIComponent(text);

export async function storeModelFile(
  modelName: string,
  sha256: string,
  bytes: Uint8Array,
  fileName: string,
): Promise<string> {
  const key = storedModelKey(modelName, sha256);
  // Same content, same key: storing a file twice (a retry, a race) writes the same object.
  await putObject(key, bytes, { metadata: { sha256, 'file-name': metadataText(fileName) } });
  return key;
}

/**
 * The export of `version` holding the file `sha256`, if one was made: exports are reused so that
 * exporting or promoting a version again never piles up copies. The sha256 check keeps a version
 * number reused by another registry (local numbering, then MLflow) from naming the wrong file.
 */
export async function findExport(modelName: string, version: string, sha256: string): Promise<string | null> {
  const listed = await s3().send(
    new ListObjectsV2Command({ Bucket: config().MODEL_BUCKET, Prefix: `models/${modelName}/v${version}/` }),
  );
  const keys = (listed.Contents ?? [])
    .map((o) => o.Key!)
    .filter((key) => key.endsWith('.onnx'))
    .sort()
    .reverse();
  for (const key of keys) {
    const head = await s3().send(new HeadObjectCommand({ Bucket: config().MODEL_BUCKET, Key: key }));
    if (head.Metadata?.sha256 === sha256) return key;
  }
  return null;
}

export async function writeExport(input: {
  modelName: string;
  version: string;
  runId: string | null;
  sha256: string;
  bytes: Uint8Array;
}): Promise<string> {
  const key = exportKey(input.modelName, input.version);
  await putObject(key, input.bytes, {
    metadata: {
      'model-name': input.modelName,
      version: input.version,
      'run-id': input.runId ?? '',
      sha256: input.sha256,
    },
  });
  return key;
}

export async function readModelObject(key: string): Promise<Uint8Array | null> {
  return (await getObject(key))?.bytes ?? null;
}

let presigner: S3Client | undefined;

/**
 * A client for presigned URLs only: the SDK's default checksum mode signs a CRC32 of the empty body
 * into PUT URLs, which real S3 then refuses for any real file; WHEN_REQUIRED leaves it out, so a
 * plain `curl -T` works.
 */
function presignClient(): S3Client {
  presigner ??= createS3Client({ requestChecksumCalculation: 'WHEN_REQUIRED' });
  return presigner;
}

/**
 * A presigned PUT URL for `key` and a body of exactly `contentLength` bytes (signed, so S3 refuses
 * any other size); `metadata` is signed into the URL, so the uploader sends no headers.
 */
export function presignPut(
  key: string,
  expiresIn: number,
  contentLength: number,
  metadata: Record<string, string>,
): Promise<string> {
  return getSignedUrl(
    presignClient(),
    new PutObjectCommand({ Bucket: config().MODEL_BUCKET, Key: key, ContentLength: contentLength, Metadata: metadata }),
    { expiresIn },
  );
}
