import * as z from 'zod';
import { config } from '#shared/config';
import { ServiceUnavailableError } from '#http/errors';
import { logger } from '#shared/log';
import { OnnxModel } from '#model/onnx';
import { getObject, headObjectEtag, putObject, sha256Hex } from '#aws/s3';

/**
 * Which model serves predictions is a small JSON object in S3 (`serving/{model_name}.json`) that
 * names an exported model file. Promotion rewrites it; warm containers notice within
 * MODEL_REFRESH_SECONDS by comparing its ETag, so no redeploy is needed, and predictions never
 * depend on MLflow being up.
 */
const servingPointerSchema = z.object({
  model_name: z.string(),
  version: z.string(),
  s3_key: z.string(),
  sha256: z.string(),
  run_id: z.string().nullable().default(null),
  promoted_at: z.string(),
});
export type ServingPointer = z.infer<typeof servingPointerSchema>;

export const servingPointerKey = (modelName: string) => `serving/${modelName}.json`;

export async function publishServingModel(pointer: ServingPointer): Promise<void> {
  await putObject(servingPointerKey(pointer.model_name), JSON.stringify(pointer), { contentType: 'application/json' });
}

export async function readServingPointer(
  modelName: string,
): Promise<{ pointer: ServingPointer; etag: string | null } | null> {
  const object = await getObject(servingPointerKey(modelName));
  if (!object) return null;
  return {
    pointer: servingPointerSchema.parse(JSON.parse(Buffer.from(object.bytes).toString('utf8'))),
    etag: object.etag ?? null,
  };
}

/** The serving pointer of a model, null when none was published. */
export const currentPointer = async (modelName: string): Promise<ServingPointer | null> =>
  (await readServingPointer(modelName))?.pointer ?? null;

export interface ServingModel {
  pointer: ServingPointer;
  model: OnnxModel;
}

function noServingModelError(modelName: string): ServiceUnavailableError {
  return new ServiceUnavailableError(
    `No serving model for "${modelName}" yet. Upload an ONNX model: ` +
      `curl -F file=@model.onnx <api>/model/upload (or put it under s3://${config().MODEL_BUCKET}/incoming/${modelName}/), ` +
      'then retry.',
  );
}

/** Loads the serving model once per container and re-checks the pointer at most every `refreshMs`. */
export class ServingModelCache {
  private current: ServingModel | undefined;
  private etag: string | null = null;
  private checkedAt = 0;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly modelName: string,
    private readonly refreshMs: number,
  ) {}

  async get(): Promise<ServingModel> {
    if (!this.current || Date.now() - this.checkedAt >= this.refreshMs) {
      this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
      // A warm container keeps answering with the model it has while it looks for a new one.
      if (!this.current) await this.refreshing;
    }
    if (!this.current) throw noServingModelError(this.modelName);
    return this.current;
  }

  /** The loaded model without triggering a load (for /health and /model/info). */
  peek(): ServingModel | undefined {
    return this.current;
  }

  private async refresh(): Promise<void> {
    try {
      // A cold container reads the pointer at once; a warm one first asks whether it changed.
      const etag = this.current ? await headObjectEtag(servingPointerKey(this.modelName)) : undefined;
      this.checkedAt = Date.now();
      if (etag === null || (etag !== undefined && etag === this.etag)) return;
      const found = await readServingPointer(this.modelName);
      if (!found) return;
      const { pointer } = found;
      const file = await getObject(pointer.s3_key);
      if (!file) throw new Error(`serving pointer names s3 key ${pointer.s3_key}, which does not exist`);
      // The file that was checked and registered, not whatever was written over its key since.
      const sha256 = sha256Hex(file.bytes);
      if (sha256 !== pointer.sha256) {
        throw new Error(
          `s3 key ${pointer.s3_key} holds a file with sha256 ${sha256}, not the ${pointer.sha256} the serving pointer names; promote the version again`,
        );
      }
      const model = await OnnxModel.load(file.bytes);
      const previous = this.current;
      this.current = { pointer, model };
      // Requests that picked the previous model may still be running it: free it a little later.
      if (previous) setTimeout(() => void previous.model.release(), 30_000).unref();
      this.etag = found.etag;
      logger.info('serving model loaded', {
        model_name: pointer.model_name,
        version: pointer.version,
        s3_key: pointer.s3_key,
      });
    } catch (error) {
      this.checkedAt = Date.now();
      // Keep the model we have; a cold container without one answers 503 (see get()).
      logger.error('could not refresh the serving model', { error: error as Error });
      if (!this.current)
        throw new ServiceUnavailableError('The serving model could not be loaded; retry shortly.', { cause: error });
    }
  }
}

let cache: ServingModelCache | undefined;

/** The container's serving model cache, for MODEL_NAME. */
export function servingModels(): ServingModelCache {
  cache ??= new ServingModelCache(config().MODEL_NAME, config().MODEL_REFRESH_SECONDS * 1000);
  return cache;
}
