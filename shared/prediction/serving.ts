import * as z from 'zod';
import { config } from '#shared/config';
import { ServiceUnavailableError, UnprocessableError } from '#http/errors';
import { logger } from '#shared/log';
import { OnnxModel } from '#model/onnx';
import { getObject, headObjectEtag, putObject, sha256Hex } from '#aws/s3';

/**
 * Which model serves predictions is a small JSON object in S3 (`serving/{model_name}.json`) that
 * names an exported model file. Promotion rewrites it; a warm container whose last look is older
 * than MODEL_REFRESH_SECONDS asks for its ETag (a HEAD, about a millisecond) before it answers, so
 * no request is served by a model older than that window, no redeploy is needed, and predictions
 * never depend on MLflow being up.
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

/** The pointer object exists but is not a serving pointer (written by hand, truncated): the next promotion rewrites it. */
class CorruptServingPointerError extends Error {
  constructor(
    message: string,
    readonly etag: string | null,
  ) {
    super(message);
    this.name = 'CorruptServingPointerError';
  }
}

export async function publishServingModel(pointer: ServingPointer): Promise<void> {
  await putObject(servingPointerKey(pointer.model_name), JSON.stringify(pointer), { contentType: 'application/json' });
}

/** The pointer and its ETag; null when none was published; CorruptServingPointerError when it cannot be read as one. */
export async function readServingPointer(
  modelName: string,
): Promise<{ pointer: ServingPointer; etag: string | null } | null> {
  const key = servingPointerKey(modelName);
  const object = await getObject(key);
  if (!object) return null;
  const etag = object.etag ?? null;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(object.bytes).toString('utf8'));
  } catch (error) {
    throw new CorruptServingPointerError(`${key} is not JSON (${(error as Error).message})`, etag);
  }
  const parsed = servingPointerSchema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => issue.path.join('.') || 'the object').join(', ');
    throw new CorruptServingPointerError(`${key} is not a serving pointer (wrong or missing: ${fields})`, etag);
  }
  return { pointer: parsed.data, etag };
}

/** The serving pointer of a model; null when none was published or it is corrupt (a promotion then rewrites it). */
export async function currentPointer(modelName: string): Promise<ServingPointer | null> {
  try {
    return (await readServingPointer(modelName))?.pointer ?? null;
  } catch (error) {
    if (!(error instanceof CorruptServingPointerError)) throw error;
    logger.warn('the serving pointer is corrupt; the next promotion rewrites it', { reason: error.message });
    return null;
  }
}

export interface ServingModel {
  pointer: ServingPointer;
  model: OnnxModel;
}

const howToServe = (modelName: string) =>
  `Upload an ONNX model: curl -F file=@model.onnx <api>/model/upload (or put it under s3://${config().MODEL_BUCKET}/incoming/${modelName}/), ` +
  `or promote a version: POST /model/promote {"model_name": "${modelName}", "version": "<n>"}`;

function noServingModelError(modelName: string): ServiceUnavailableError {
  return new ServiceUnavailableError(`No serving model for "${modelName}" yet. ${howToServe(modelName)}, then retry.`);
}

/** The file the pointer names is missing, or is not the file that was promoted. */
class UnloadableModelError extends Error {}

/**
 * What a container answers with, decided from the pointer object with ETag `etag`: a model (until
 * the ETag changes), or the 503 that says why none serves, decided again at `redecideAt` even if the
 * pointer has not changed. `etag` undefined: the decision was not made from a pointer.
 */
type Decision = { etag: string | null | undefined; redecideAt: number } & (
  | { model: ServingModel }
  | { error: ServiceUnavailableError }
);

/**
 * Loads the serving model once per container and looks at the pointer again before answering a
 * request that comes more than `refreshMs` after the last look. It never answers with a model it
 * knows to be superseded: a pointer that is missing, corrupt or names a file that cannot be loaded
 * makes it answer 503 saying so (looking again on every request, so that a repair serves at once).
 * It keeps its model only when S3 does not answer the look itself: nothing then says the model was
 * superseded, and an S3 outage should not stop predictions.
 */
export class ServingModelCache {
  private decision: Decision | undefined;
  /** The last model loaded, kept while an error decision stands: a pointer put back on it needs no reload. */
  private loaded: ServingModel | undefined;
  private checkedAt = 0;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly modelName: string,
    private readonly refreshMs: number,
  ) {}

  async get(): Promise<ServingModel> {
    if (this.due()) {
      this.checking ??= this.check().finally(() => (this.checking = undefined));
      await this.checking;
    }
    const decision = this.decision!;
    if ('error' in decision) throw decision.error;
    return decision.model;
  }

  private due(): boolean {
    return !this.decision || 'error' in this.decision || Date.now() - this.checkedAt >= this.refreshMs;
  }

  private async check(): Promise<void> {
    const previous = this.decision;
    if (previous) {
      let etag: string | null;
      try {
        etag = await headObjectEtag(servingPointerKey(this.modelName));
      } catch (error) {
        return this.unreachable(error);
      }
      this.checkedAt = Date.now();
      if (etag === previous.etag && Date.now() < previous.redecideAt) return;
    }
    await this.decide();
  }

  private async decide(): Promise<void> {
    let found: Awaited<ReturnType<typeof readServingPointer>>;
    try {
      found = await readServingPointer(this.modelName);
    } catch (error) {
      if (!(error instanceof CorruptServingPointerError)) return this.unreachable(error);
      logger.error('the serving pointer is corrupt; predictions answer 503 until a promotion rewrites it', {
        reason: error.message,
      });
      return this.settle(error.etag, {
        error: new ServiceUnavailableError(
          `The serving pointer of "${this.modelName}" is corrupt (${error.message}). ${howToServe(this.modelName)}; either rewrites it.`,
        ),
      });
    }
    this.checkedAt = Date.now();
    if (!found) {
      if (this.loaded)
        logger.warn('the serving pointer is gone; predictions answer 503', { key: servingPointerKey(this.modelName) });
      return this.settle(null, { error: noServingModelError(this.modelName) });
    }
    const { pointer, etag } = found;
    const loaded = this.loaded;
    if (loaded && loaded.pointer.s3_key === pointer.s3_key && loaded.pointer.sha256 === pointer.sha256) {
      // The same file published again (a promotion repeated, a pointer repaired): no reload.
      this.loaded = { pointer, model: loaded.model };
      return this.settle(etag, { model: this.loaded });
    }
    try {
      const model = { pointer, model: await this.load(pointer) };
      this.loaded = model;
      // Requests that picked the previous model may still be running it: free it a little later.
      if (loaded) setTimeout(() => void loaded.model.release(), 30_000).unref();
      logger.info('serving model loaded', {
        model_name: pointer.model_name,
        version: pointer.version,
        s3_key: pointer.s3_key,
      });
      this.settle(etag, { model });
    } catch (error) {
      const known = error instanceof UnloadableModelError || error instanceof UnprocessableError;
      const reason = known ? error.message : `S3 did not give its file ${pointer.s3_key}`;
      logger.error('the serving model cannot be loaded; predictions answer 503', {
        model_name: pointer.model_name,
        version: pointer.version,
        error: error as Error,
      });
      // A file S3 failed to give is asked for again on the next request; a bad file once a window.
      this.settle(
        etag,
        {
          error: new ServiceUnavailableError(
            `Version ${pointer.version} of "${this.modelName}" is the serving model but cannot be loaded: ${reason}. ` +
              'Predictions wait rather than use the version it replaced; retry shortly, or promote a version again ' +
              `(POST /model/promote {"model_name": "${this.modelName}", "version": "<n>"}).`,
            { cause: error },
          ),
        },
        known ? this.refreshMs : 0,
      );
    }
  }

  private async load(pointer: ServingPointer): Promise<OnnxModel> {
    const file = await getObject(pointer.s3_key);
    if (!file) throw new UnloadableModelError(`its file ${pointer.s3_key} does not exist`);
    // The file that was checked and registered, not whatever was written over its key since.
    const sha256 = sha256Hex(file.bytes);
    if (sha256 !== pointer.sha256) {
      throw new UnloadableModelError(
        `${pointer.s3_key} holds a file with sha256 ${sha256}, not the ${pointer.sha256} the serving pointer names`,
      );
    }
    return OnnxModel.load(file.bytes);
  }

  /** A model serves until the pointer changes; an error is decided again after `redecideAfterMs` all the same. */
  private settle(
    etag: string | null | undefined,
    outcome: { model: ServingModel } | { error: ServiceUnavailableError },
    redecideAfterMs = this.refreshMs,
  ): void {
    const redecideAt = 'model' in outcome ? Number.POSITIVE_INFINITY : Date.now() + redecideAfterMs;
    this.decision = { etag, redecideAt, ...outcome };
  }

  /** S3 did not answer the look at the pointer: a model that serves keeps serving; without one, 503. */
  private unreachable(error: unknown): void {
    this.checkedAt = Date.now();
    logger.warn('could not look at the serving pointer', { error: error as Error });
    if (this.decision && 'model' in this.decision) return;
    this.settle(undefined, {
      error: new ServiceUnavailableError('The serving model could not be loaded (S3 did not answer); retry shortly.', {
        cause: error,
      }),
    });
  }
}

let cache: ServingModelCache | undefined;

/** The container's serving model cache, for MODEL_NAME. */
export function servingModels(): ServingModelCache {
  cache ??= new ServingModelCache(config().MODEL_NAME, config().MODEL_REFRESH_SECONDS * 1000);
  return cache;
}
