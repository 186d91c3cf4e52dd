/**
 * The MLflow REST entities the client returns, and the zod schemas that read them from MLflow's JSON.
 * Normalised: omitted repeated fields become [] / {}, versions are strings, tags are records.
 */
import { z } from 'zod';

/** MLflow's model version stages: the one list of them in the suite. */
export const MODEL_STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export type ModelStage = (typeof MODEL_STAGES)[number];
export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  tags: Record<string, string>;
}

export interface RunInfo {
  run_id: string;
  experiment_id: string;
  run_name?: string;
  status: string;
  start_time?: number;
  end_time?: number;
  /** `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts` when the server proxies artifacts. */
  artifact_uri: string;
  lifecycle_stage: string;
}

export interface Run {
  info: RunInfo;
  data: {
    /** Latest value of each metric. */
    metrics: Record<string, number>;
    params: Record<string, string>;
    tags: Record<string, string>;
  };
}

export interface ModelVersion {
  name: string;
  version: string;
  creation_timestamp: number;
  last_updated_timestamp?: number;
  current_stage: ModelStage;
  description?: string;
  /** As registered, e.g. `mlflow-artifacts:/1/<run>/artifacts/model` or `runs:/<run>/model`. */
  source: string;
  run_id: string | null;
  status?: string;
  tags: Record<string, string>;
  aliases: string[];
}

export interface RegisteredModel {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp?: number;
  description?: string;
  /** The latest version in each stage. */
  latest_versions: ModelVersion[];
  tags: Record<string, string>;
  /** alias → version */
  aliases: Record<string, string>;
}

export interface ArtifactFile {
  /** Name relative to the listed folder. */
  path: string;
  is_dir: boolean;
  file_size?: number;
}

const int64 = z.coerce.number();
const versionString = z.union([z.string(), z.number()]).transform(String);
const tagRecord = z
  .array(z.object({ key: z.string(), value: z.string().optional() }))
  .optional()
  .transform((tags) => Object.fromEntries((tags ?? []).map((tag) => [tag.key, tag.value ?? ''])));

export const experimentSchema: z.ZodType<Experiment> = z.object({
  experiment_id: z.string(),
  name: z.string(),
  artifact_location: z.string().default(''),
  lifecycle_stage: z.string().default('active'),
  tags: tagRecord,
});

const runInfoSchema: z.ZodType<RunInfo> = z.object({
  run_id: z.string(),
  experiment_id: z.string(),
  run_name: z.string().optional(),
  status: z.string(),
  start_time: int64.optional(),
  end_time: int64.optional(),
  artifact_uri: z.string(),
  lifecycle_stage: z.string().default('active'),
});

export const runSchema: z.ZodType<Run> = z.object({
  info: runInfoSchema,
  data: z
    .object({
      metrics: z
        .array(z.object({ key: z.string(), value: z.number() }))
        .optional()
        .transform((metrics) => Object.fromEntries((metrics ?? []).map((m) => [m.key, m.value]))),
      params: tagRecord,
      tags: tagRecord,
    })
    .optional()
    .transform((data) => data ?? { metrics: {}, params: {}, tags: {} }),
});

const stageSchema = z.enum(MODEL_STAGES);

export const modelVersionSchema: z.ZodType<ModelVersion> = z.object({
  name: z.string(),
  version: versionString,
  creation_timestamp: int64,
  last_updated_timestamp: int64.optional(),
  current_stage: stageSchema.default('None'),
  description: z.string().optional(),
  source: z.string().default(''),
  run_id: z
    .string()
    .optional()
    .transform((runId) => runId || null),
  status: z.string().optional(),
  tags: tagRecord,
  aliases: z
    .array(z.string())
    .optional()
    .transform((aliases) => aliases ?? []),
});

export const registeredModelSchema: z.ZodType<RegisteredModel> = z.object({
  name: z.string(),
  creation_timestamp: int64,
  last_updated_timestamp: int64.optional(),
  description: z.string().optional(),
  latest_versions: z
    .array(modelVersionSchema)
    .optional()
    .transform((versions) => versions ?? []),
  tags: tagRecord,
  aliases: z
    .array(z.object({ alias: z.string(), version: versionString }))
    .optional()
    .transform((aliases) => Object.fromEntries((aliases ?? []).map((a) => [a.alias, a.version]))),
});

export const modelVersionList = z
  .array(modelVersionSchema)
  .optional()
  .transform((versions) => versions ?? []);

export const artifactFileList = z
  .array(z.object({ path: z.string(), is_dir: z.boolean().default(false), file_size: int64.optional() }))
  .optional()
  .transform((files): ArtifactFile[] => files ?? []);

/** A record of tags or params as MLflow's `[{key, value}]` list. */
export function tagList(tags: Record<string, string> | undefined): Array<{ key: string; value: string }> {
  return Object.entries(tags ?? {}).map(([key, value]) => ({ key, value }));
}
