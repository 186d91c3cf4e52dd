import * as z from 'zod';
import { MODEL_NAME_PATTERN } from '#model/name';

/**
 * Configuration, parsed once per container from the environment. Names follow the seed guide
 * where it has them. A wrong value fails at cold start with the variable's name and what it expects.
 */
const optionalUrl = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z.url({ protocol: /^https?$/, message: 'expected an http(s) URL such as http://localhost:5000' }).optional(),
);
const optionalString = z.preprocess((v) => (v === '' ? undefined : v), z.string().optional());

/**
 * The name of an SSM Parameter Store parameter (a SecureString) that holds a secret of a deployed
 * function: a path of letters, digits, `_ . -` under `/`, not under the reserved `/aws` or `/ssm`.
 * scripts/deploy-check.cjs refuses a deploy with the same rule.
 */
const optionalParameterName = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z
    .string()
    .regex(
      /^(?=.{2,1011}$)(?!\/(aws|ssm)(\/|$))(\/[\w.-]+){1,15}$/i,
      'expected an SSM parameter name such as /hubfolio/prod/database-url',
    )
    .optional(),
);

const configSchema = z.object({
  /**
   * Secrets come as plain variables locally (npm start, tests) and, deployed, as the name of an SSM
   * parameter (`…_PARAMETER`) that shared/secrets.ts reads once per container; the plain one wins.
   */
  DATABASE_URL: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected a PostgreSQL URL such as postgres://user:pass@host:5432/db')
      .optional(),
  ),
  DATABASE_URL_PARAMETER: optionalParameterName,
  MODEL_BUCKET: z
    .string({ message: 'expected the S3 bucket that holds the models' })
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'expected a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)',
    ),
  PREDICTIONS_QUEUE_URL: z.url({
    protocol: /^https?$/,
    message: 'expected the SQS queue URL of the predictions queue',
  }),
  /**
   * Where the telemetry forwarder parks messages it can never deliver (with a `reason` attribute);
   * the same queue the redrive policy fills. Optional so that functions which never park need not
   * know it: without it the forwarder leaves such messages to the redrive policy (5 receives).
   */
  PREDICTIONS_DLQ_URL: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.url({ message: 'expected the SQS queue URL of the predictions dead-letter queue' }).optional(),
  ),
  /**
   * The queue that brings the model sync back 30 s after each scheduled run (a delayed message), so
   * that a promotion made in MLflow's UI serves within a minute without a function waiting between
   * the two looks. Without it the sync looks once a minute.
   */
  MODEL_SYNC_QUEUE_URL: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.url({ message: 'expected the SQS queue URL of the model-sync queue' }).optional(),
  ),
  MODEL_NAME: z
    .string()
    .regex(MODEL_NAME_PATTERN, 'expected a model name of letters, digits, ".", "_" or "-" (max 100)')
    .default('hubfolio-model'),
  /** One endpoint for every AWS service (LocalStack); the per-service ones below win over it (AWS SDK names). */
  AWS_ENDPOINT_URL: optionalUrl,
  AWS_ENDPOINT_URL_S3: optionalUrl,
  AWS_ENDPOINT_URL_SQS: optionalUrl,
  AWS_ENDPOINT_URL_SSM: optionalUrl,
  AWS_REGION: z.string().min(1).default('us-east-1'),
  MLFLOW_TRACKING_URI: optionalUrl,
  MLFLOW_EXPERIMENT_NAME: z.string().min(1).default('hubfolio-models'),
  THINGSBOARD_URL: optionalUrl,
  THINGSBOARD_DEVICE_TOKEN: optionalString,
  THINGSBOARD_DEVICE_TOKEN_PARAMETER: optionalParameterName,
  /** How often a warm container checks whether another serving model was promoted. */
  MODEL_REFRESH_SECONDS: z.coerce
    .number({ message: 'expected a number of seconds' })
    .int('expected a whole number of seconds')
    .min(1, 'expected at least 1 second')
    .max(60, 'expected at most 60 seconds (promotions must reach predictions within a minute)')
    .default(30),
  /**
   * First delay before the telemetry forwarder retries a message ThingsBoard could not take; later
   * delays double up to 12 times this (5 s → 60 s by default). Lower only to make tests fast.
   */
  TELEMETRY_RETRY_BASE_SECONDS: z.coerce
    .number({ message: 'expected a number of seconds' })
    .int('expected a whole number of seconds')
    .min(1, 'expected at least 1 second')
    .max(
      5,
      "expected at most 5 seconds (longer retry delays would hold a recovered ThingsBoard's backlog past 2 minutes)",
    )
    .default(5),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = configSchema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.join('.');
    const expectation = issue.code === 'invalid_type' && env[name] === undefined ? 'is required' : issue.message;
    return `${name}: ${expectation}`;
  });
  throw new ConfigError(`Invalid configuration: ${lines.join('; ')}`);
}

let cached: Config | undefined;

/** The container's configuration, parsed on first use and kept for the container's life. */
export function config(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}
