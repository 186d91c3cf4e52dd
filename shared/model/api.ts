import * as z from 'zod';
import { config } from '#shared/config';
import { BadRequestError, PayloadTooLargeError } from '#http/errors';
import { isAttachment, multipartBody } from '#http/multipart';
import type { HttpEvent, HttpResult } from '#http/handler';
import { validate } from '#http/validation';
import type { Metrics } from '#model/files';
import { INCOMING_PREFIX, presignPut, s3Uri } from '#model/storage';
import { MAX_MODEL_BYTES, refuseForeignFormat } from '#model/validation';
import { checkFileName, FILE_NAME_RULE, isPlainFileName, MODEL_NAME_PATTERN, MODEL_NAME_RULE } from '#model/name';
import {
  SERVING_TARGET,
  type ExportedFile,
  type PromotionResult,
  type PromotionTarget,
  type VersionRef,
  type VersionSelector,
} from '#model/promotion';
import type { RegistrationOutcome } from '#model/registration';
import type { ExportResponse, PromoteResponse, UploadResponse, UploadUrlResponse } from '#api/responses';
import { MODEL_STAGES, type ModelStage } from '#clients/mlflow/entities';

/**
 * The model routes' requests and responses: field names are the seed guide's (`model_name`, `r2_score`, `rmse`,
 * `mae`, `register_in_mlflow`, `export_to_s3`) plus `promote`. Every rule says what it expects.
 */

/**
 * The largest file POST /model/upload takes. Lambda takes at most 6 MB of synchronous payload and
 * API Gateway base64-encodes a binary body (4/3 larger): a 4.5 MB file would not even arrive.
 * Larger files go through POST /model/upload-url (a presigned S3 PUT, up to MAX_MODEL_BYTES).
 */
export const MAX_UPLOAD_BYTES = 4 * 1024 * 1024;
/** Room for the multipart boundaries and the small text fields around the file. */
const FORM_OVERHEAD_BYTES = 64 * 1024;

const modelName = z.string({ error: MODEL_NAME_RULE }).trim().regex(MODEL_NAME_PATTERN, { error: MODEL_NAME_RULE });

/** Metric rules, shared by form fields (text), JSON bodies and S3 metadata/sidecars. */
export const METRIC_RULES = {
  r2_score: z
    .number({ error: 'must be a number not above 1 (R², e.g. 0.85)' })
    .max(1, { error: 'must be a number not above 1 (R², e.g. 0.85)' }),
  rmse: z.number({ error: 'must be a number ≥ 0 (e.g. 12.5)' }).min(0, { error: 'must be a number ≥ 0 (e.g. 12.5)' }),
  mae: z.number({ error: 'must be a number ≥ 0 (e.g. 9.2)' }).min(0, { error: 'must be a number ≥ 0 (e.g. 9.2)' }),
};

/** A number sent as text (form fields, S3 metadata). */
export const numberText = (rule: z.ZodNumber) =>
  z.string().trim().min(1, { error: 'must be a number' }).transform(Number).pipe(rule);

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FLAG_WORDS = new Set([...TRUE_WORDS, 'false', '0', 'no', 'off']);
/** A boolean sent as text: true/false (also 1/0, yes/no, on/off, any case). */
export const flagText = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => FLAG_WORDS.has(v), { error: 'must be true or false' })
  .transform((v) => TRUE_WORDS.has(v));

export const uploadFieldsSchema = z.strictObject(
  {
    model_name: modelName.optional(),
    r2_score: numberText(METRIC_RULES.r2_score).optional(),
    rmse: numberText(METRIC_RULES.rmse).optional(),
    mae: numberText(METRIC_RULES.mae).optional(),
    register_in_mlflow: flagText.optional(),
    export_to_s3: flagText.optional(),
    promote: flagText.optional(),
  },
  { error: 'form fields must be text' },
);

export const pickMetrics = (values: Partial<Record<keyof Metrics, number | undefined>>): Metrics =>
  Object.fromEntries(
    Object.entries(values).filter(([key, value]) => key in METRIC_RULES && value !== undefined),
  ) as Metrics;

export interface UploadRequest {
  fileName: string;
  bytes: Uint8Array;
  modelName: string;
  metrics: Metrics;
  register: boolean;
  export: boolean;
  promote: boolean;
}

const tooLarge = (bytes: number | string) =>
  new PayloadTooLargeError(
    `The model file is ${typeof bytes === 'number' ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : bytes}; POST /model/upload takes files up to ` +
      `${MAX_UPLOAD_BYTES / 1024 / 1024} MB (the API Gateway and Lambda payload limits). For a larger file ask POST /model/upload-url ` +
      `{"model_name": "...", "filename": "model.onnx", "file_size": <bytes>} for a presigned URL and upload it with curl -T model.onnx "$url".`,
  );

const HOW_TO_UPLOAD =
  'send multipart/form-data with the model in a "file" field, e.g. curl -F file=@model.onnx -F model_name=hubfolio-model <api>/model/upload';

/** POST /model/upload's body parsing, used as middleware by its handler. */
export const uploadForm = () =>
  multipartBody({
    maxFileBytes: MAX_UPLOAD_BYTES,
    maxBodyBytes: MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES,
    howTo: HOW_TO_UPLOAD,
    tooLarge,
  });

/** POST /model/upload's form (parsed by `uploadForm`), checked field by field. */
export function readUploadForm(event: HttpEvent): UploadRequest {
  const { file, ...fields } = (event.body ?? {}) as unknown as Record<string, unknown>;
  if (!isAttachment(file)) {
    throw new BadRequestError(`No model file in the form; ${HOW_TO_UPLOAD}.`, [
      { field: 'file', message: 'is required: the .onnx model file' },
    ]);
  }
  if (file.truncated) throw tooLarge(`over ${MAX_UPLOAD_BYTES / 1024 / 1024} MB`);
  const form = validate(uploadFieldsSchema, fields);
  const register = form.register_in_mlflow ?? true;
  const exportToS3 = form.export_to_s3 ?? true;
  // Serving needs a version and an export: promote defaults to what the other two allow.
  if (form.promote === true && (!register || !exportToS3)) {
    throw new BadRequestError(
      'promote=true needs register_in_mlflow=true and export_to_s3=true (a served model has a version and an exported file); drop promote or those fields.',
      [{ field: 'promote', message: 'needs register_in_mlflow=true and export_to_s3=true' }],
    );
  }
  return {
    fileName: checkFileName(file.filename || 'model.onnx', 'file'),
    bytes: file.content,
    modelName: form.model_name ?? config().MODEL_NAME,
    metrics: pickMetrics(form),
    register,
    export: exportToS3,
    promote: form.promote ?? (register && exportToS3),
  };
}

/** A file name for the drop folder: one path segment. */
const fileName = z
  .string({ error: 'is required: the name of the .onnx file, e.g. model.onnx' })
  .trim()
  .min(1, { error: 'is required: the name of the .onnx file, e.g. model.onnx' })
  .refine(isPlainFileName, { error: FILE_NAME_RULE });

/** The size a presigned PUT is signed for: S3 then refuses a body of any other length. */
const FILE_SIZE_RULE = `is required: the file's size in bytes, 1 to ${MAX_MODEL_BYTES} (e.g. stat -c %s model.onnx)`;
const fileSize = z
  .number({ error: FILE_SIZE_RULE })
  .int({ error: FILE_SIZE_RULE })
  .min(1, { error: FILE_SIZE_RULE })
  .max(MAX_MODEL_BYTES, {
    error: `must be at most ${MAX_MODEL_BYTES} bytes (${MAX_MODEL_BYTES / 1024 / 1024} MB), the largest model file the drop folder takes`,
  });

export const uploadUrlRequestSchema = z.strictObject(
  {
    model_name: modelName.optional(),
    filename: fileName,
    file_size: fileSize,
    r2_score: METRIC_RULES.r2_score.optional(),
    rmse: METRIC_RULES.rmse.optional(),
    mae: METRIC_RULES.mae.optional(),
    promote: z.boolean({ error: 'must be true or false' }).optional(),
    expires_in: z
      .number({ error: 'must be a number of seconds from 60 to 3600' })
      .int({ error: 'must be a number of seconds from 60 to 3600' })
      .min(60, { error: 'must be a number of seconds from 60 to 3600' })
      .max(3600, { error: 'must be a number of seconds from 60 to 3600' })
      .optional(),
  },
  { error: 'the body must be a JSON object {"model_name", "filename", "file_size"}' },
);

const stage = z
  .string({ error: `must be one of ${MODEL_STAGES.join(', ')}` })
  .transform((s) => MODEL_STAGES.find((known) => known.toLowerCase() === s.trim().toLowerCase()))
  .refine((s): s is ModelStage => s !== undefined, { error: `must be one of ${MODEL_STAGES.join(', ')}` });
const version = z
  .union(
    [
      z
        .string()
        .trim()
        .regex(/^[1-9][0-9]*$/),
      z.number().int().positive(),
    ],
    { error: 'must be a version number such as "3"' },
  )
  .transform(String);
const alias = z
  .string({ error: 'must be an alias such as production' })
  .trim()
  .regex(/^[A-Za-z0-9_-]{1,255}$/, { error: 'must be an alias of letters, digits, "_" or "-" (e.g. production)' });

export const exportRequestSchema = z
  .strictObject(
    { model_name: modelName.optional(), stage: stage.optional(), version: version.optional(), alias: alias.optional() },
    { error: 'the body must be a JSON object {"model_name", "stage"} (or "version" or "alias" instead of "stage")' },
  )
  .refine((r) => [r.stage, r.version, r.alias].filter((v) => v !== undefined).length === 1, {
    error: 'give exactly one of "stage", "version" or "alias"',
    path: ['stage'],
  });

export function exportSelector(request: z.infer<typeof exportRequestSchema>): VersionSelector {
  if (request.version !== undefined) return { version: request.version };
  if (request.alias !== undefined) return { alias: request.alias };
  return { stage: request.stage! };
}

export const promoteRequestSchema = z.strictObject(
  { model_name: modelName.optional(), version: version, alias: alias.optional(), stage: stage.optional() },
  { error: 'the body must be a JSON object {"model_name", "version"} (optionally "alias" and/or "stage")' },
);

/** Neither alias nor stage: the serving ones (alias production + stage Production). */
export function promotionTarget(request: z.infer<typeof promoteRequestSchema>): PromotionTarget {
  if (request.alias === undefined && request.stage === undefined) return SERVING_TARGET;
  return { ...(request.alias ? { alias: request.alias } : {}), ...(request.stage ? { stage: request.stage } : {}) };
}

export const infoQuerySchema = z.object({ model_name: modelName.optional() });

// ---------------------------------------------------------------------------------------------
// Responses

const LOCAL_REGISTRY_NOTE =
  'MLflow is not configured (MLFLOW_TRACKING_URI is unset): this service numbered the version itself.';

/** POST /model/upload's answer: the seed's keys, plus sha256 and what happened to promotion. */
export function uploadResponse(outcome: RegistrationOutcome): HttpResult {
  const { file } = outcome;
  const registered = file.status === 'registered';
  const unfinished = !registered && file.status !== 'stored';
  const pending = unfinished || outcome.promotionError !== null;
  const note = outcome.registryError ?? (file.registry === 'local' ? LOCAL_REGISTRY_NOTE : null);
  return {
    // 202: stored, and the rest is finished later (sync function, or the same upload again).
    statusCode: pending ? 202 : 200,
    body: {
      message: pending
        ? 'Modelo armazenado; o registro no MLflow ficou pendente e será concluído automaticamente quando o MLflow responder.'
        : 'Modelo carregado com sucesso!',
      model_path: s3Uri(file.stored_key),
      file_size: file.size,
      sha256: file.sha256,
      model_name: file.model_name,
      mlflow_registered: registered && file.registry === 'mlflow',
      mlflow_run_id: registered && file.registry === 'mlflow' ? file.run_id : null,
      mlflow_model_version: registered && file.registry === 'mlflow' ? file.version : null,
      ...(note ? { mlflow_error: note } : {}),
      model_version: registered ? file.version : null,
      registry: registered ? file.registry : null,
      registration_status: file.status,
      already_registered: outcome.alreadyRegistered,
      s3_exported: outcome.exportKey !== null,
      s3_key: outcome.exportKey,
      promoted: outcome.promoted,
      ...(outcome.promotionError ? { promotion_error: outcome.promotionError } : {}),
    } satisfies UploadResponse,
  };
}

/** Presigned URLs expire after this by default (15 minutes). */
const DEFAULT_URL_EXPIRY_SECONDS = 900;

/**
 * POST /model/upload-url: a presigned PUT into the drop folder. Metrics and `promote` are signed into
 * the URL as object metadata (x-amz-meta-*), so the uploader needs nothing but `curl -T`; so is the
 * file's size (Content-Length), so that the URL cannot store a larger file than the one announced.
 */
export async function createUploadUrl(request: z.infer<typeof uploadUrlRequestSchema>): Promise<HttpResult> {
  refuseForeignFormat(new Uint8Array(), request.filename);
  if (!request.filename.toLowerCase().endsWith('.onnx')) {
    throw new BadRequestError(`filename "${request.filename}" must end in .onnx: only ONNX models are registered.`, [
      { field: 'filename', message: 'must end in .onnx' },
    ]);
  }
  const name = request.model_name ?? config().MODEL_NAME;
  const key = `${INCOMING_PREFIX}${name}/${request.filename}`;
  const expiresIn = request.expires_in ?? DEFAULT_URL_EXPIRY_SECONDS;
  const metadata: Record<string, string> = {};
  if (request.r2_score !== undefined) metadata['r2-score'] = String(request.r2_score);
  if (request.rmse !== undefined) metadata.rmse = String(request.rmse);
  if (request.mae !== undefined) metadata.mae = String(request.mae);
  if (request.promote !== undefined) metadata.promote = String(request.promote);
  const url = await presignPut(key, expiresIn, request.file_size, metadata);
  return {
    statusCode: 200,
    body: {
      url,
      key,
      expires_in: expiresIn,
      method: 'PUT',
      model_name: name,
      file_size: request.file_size,
    } satisfies UploadUrlResponse,
  };
}

/** POST /model/export-to-s3's answer, as the seed (`stage` is the version's stage in MLflow). */
export const exportResponse = (ref: VersionRef, exported: ExportedFile): HttpResult => ({
  statusCode: 200,
  body: {
    message: 'Modelo exportado para S3 com sucesso!',
    model_name: ref.modelName,
    stage: ref.stage,
    version: ref.version,
    aliases: ref.aliases,
    s3_key: exported.key,
    sha256: exported.sha256,
    already_exported: !exported.created,
  } satisfies ExportResponse,
});

export const promoteResponse = (ref: VersionRef, target: PromotionTarget, result: PromotionResult): HttpResult => ({
  statusCode: 200,
  body: {
    message: 'Modelo promovido com sucesso!',
    model_name: ref.modelName,
    version: ref.version,
    alias: target.alias ?? null,
    stage: target.stage ?? null,
    serving: result.serving,
    s3_key: result.exportKey,
  } satisfies PromoteResponse,
});
