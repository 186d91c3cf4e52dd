import * as z from 'zod';
import { predictResponseSchema } from '#prediction/api';
import { MODEL_STAGES } from '#clients/mlflow/entities';

/**
 * The HTTP API's response bodies as zod schemas: the types the handlers build (so a field cannot
 * drift from its documentation) and the response part of the OpenAPI document (shared/api/openapi.ts).
 * The tests parse real responses with them. Field names are the seed guide's, plus the suite's own.
 */

export const errorResponseSchema = z.object({
  detail: z.string().meta({ description: 'What went wrong and what to fix' }),
  errors: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .optional()
    .meta({ description: 'On a 400: each field and the rule it broke; on a 422 of /predict/batch: each row refused' }),
});

export const predictBatchResponseSchema = z.object({
  count: z.number().int(),
  items: z.array(predictResponseSchema).meta({ description: 'One result per row, in request order' }),
});

export const healthReportSchema = z.object({
  status: z.enum(['healthy', 'degraded', 'unhealthy']),
  minio_connected: z.boolean().meta({ description: "Same as s3_connected (the seed's name, kept for compatibility)" }),
  s3_connected: z.boolean(),
  bucket_exists: z.boolean(),
  postgres_connected: z.boolean(),
  sqs_connected: z.boolean(),
  mlflow_connected: z.boolean(),
  thingsboard_connected: z.boolean(),
  model_loaded: z.boolean(),
  issues: z.array(z.string()).meta({ description: 'Why the status is not healthy' }),
  timestamp: z.iso.datetime(),
});
export type HealthReport = z.infer<typeof healthReportSchema>;

const registryKind = z
  .enum(['mlflow', 'local'])
  .meta({ description: 'mlflow, or local when MLFLOW_TRACKING_URI is unset' });
const modelStage = z.enum(MODEL_STAGES);
const metrics = z.object({ r2_score: z.number().optional(), rmse: z.number().optional(), mae: z.number().optional() });

export const uploadResponseSchema = z.object({
  message: z.string(),
  model_path: z.string().meta({ description: 's3:// URI of the file as received' }),
  file_size: z.number().int(),
  sha256: z.string(),
  model_name: z.string(),
  mlflow_registered: z.boolean(),
  mlflow_run_id: z.string().nullable(),
  mlflow_model_version: z.string().nullable(),
  mlflow_error: z.string().optional(),
  model_version: z.string().nullable(),
  registry: registryKind.nullable(),
  registration_status: z.enum(['registering', 'pending_registration', 'stored', 'registered', 'failed']),
  already_registered: z.boolean(),
  s3_exported: z.boolean(),
  s3_key: z.string().nullable(),
  promoted: z.boolean(),
  promotion_error: z.string().optional(),
});
export type UploadResponse = z.infer<typeof uploadResponseSchema>;

export const uploadUrlResponseSchema = z.object({
  url: z.url(),
  key: z.string(),
  expires_in: z.number().int(),
  method: z.literal('PUT'),
  model_name: z.string(),
  /** The PUT must carry exactly this many bytes (its Content-Length is signed). */
  file_size: z.number().int(),
});
export type UploadUrlResponse = z.infer<typeof uploadUrlResponseSchema>;

export const exportResponseSchema = z.object({
  message: z.string(),
  model_name: z.string(),
  stage: modelStage.nullable(),
  version: z.string(),
  aliases: z.array(z.string()),
  s3_key: z.string(),
  sha256: z.string(),
  already_exported: z.boolean(),
});
export type ExportResponse = z.infer<typeof exportResponseSchema>;

export const promoteResponseSchema = z.object({
  message: z.string(),
  model_name: z.string(),
  version: z.string(),
  alias: z.string().nullable(),
  stage: modelStage.nullable(),
  serving: z.boolean().meta({ description: 'Whether the version now serves /predict' }),
  s3_key: z.string().nullable(),
});
export type PromoteResponse = z.infer<typeof promoteResponseSchema>;

const dropOutcome = z.object({
  key: z.string().meta({ description: 'The object under incoming/' }),
  outcome: z.enum(['registered', 'pending', 'stored', 'failed', 'rejected']),
  status: z
    .number()
    .int()
    .meta({ description: 'What POST /model/upload answers for the same file: 200 done, 202 unfinished, 4xx refused' }),
  reason: z.string().nullable().meta({ description: 'Why it was refused or is unfinished' }),
  version: z.string().nullable(),
  sha256: z.string().nullable(),
  handled_at: z.string(),
});

export const modelInfoSchema = z.object({
  model_loaded: z.boolean(),
  model_name: z.string().nullable().meta({ description: "The serving model's algorithm" }),
  features: z.array(z.string()),
  num_features: z.number().int(),
  serving: z
    .object({
      model_name: z.string(),
      version: z.string(),
      registry: registryKind.nullable(),
      s3_key: z.string(),
      sha256: z.string(),
      run_id: z.string().nullable(),
      promoted_at: z.string(),
      file_name: z.string().nullable(),
      stage: modelStage.nullable(),
      aliases: z.array(z.string()),
      metrics,
    })
    .nullable(),
  serving_error: z.string().optional(),
  mlflow: z
    .object({
      name: z.string(),
      latest_versions: z.array(
        z.object({ version: z.string(), stage: modelStage, run_id: z.string().nullable(), created_at: z.string() }),
      ),
      created_at: z.string(),
    })
    .nullable(),
  mlflow_error: z.string().optional(),
  drop_folder: z.array(dropOutcome).meta({
    description: 'The latest files dropped under incoming/{model_name}/ and what came of them, newest first (10)',
  }),
});
export type ModelInfo = z.infer<typeof modelInfoSchema>;
