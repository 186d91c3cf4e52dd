import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { SSMClient } from '@aws-sdk/client-ssm';
import { awsClientOptions, reportOutages } from '#aws/options';
import { type Config, ConfigError, config } from '#shared/config';
import { UpstreamUnavailableError } from '#clients/errors';

/**
 * The functions' secrets, the database URL and the ThingsBoard device token. Deployed, a function's
 * environment holds only the name of the SSM Parameter Store parameter (a SecureString) that holds
 * each one (`DATABASE_URL_PARAMETER`, `THINGSBOARD_DEVICE_TOKEN_PARAMETER`), and its role may read
 * exactly those; the value is read and decrypted once per container, before the first invocation
 * runs (`loadSecrets`, in every handler's middy stack: shared/handler.ts), and kept in Powertools
 * Parameters' cache. Locally (npm start, tests) the plain variable is set and wins: no AWS needed.
 */
const SECRETS = ['DATABASE_URL', 'THINGSBOARD_DEVICE_TOKEN'] as const;
type Secret = (typeof SECRETS)[number];

/**
 * How long Powertools Parameters keeps a value: longer than a container lives, so that each
 * container reads a secret once. A rotated secret reaches new containers (`npm run deploy` again,
 * or Lambda's recycling); the pool built from the old URL would not follow it anyway.
 */
const PER_CONTAINER_SECONDS = 24 * 3600;

let provider: SSMProvider | undefined;

function parameters(): SSMProvider {
  provider ??= new SSMProvider({ awsSdkV3Client: reportOutages(new SSMClient(awsClientOptions('SSM')), 'SSM') });
  return provider;
}

/** The SSM parameter a secret comes from: when only its name (`…_PARAMETER`) is given, not the value itself. */
function parameterOf(name: Secret, settings: Config): string | undefined {
  return settings[name] === undefined ? settings[`${name}_PARAMETER`] : undefined;
}

/** What loadSecrets read from SSM, by parameter name. */
const fromParameters = new Map<string, string>();

/**
 * Reads, once per container, each secret this function is given as a parameter name and not as a
 * plain value. An SSM outage is a 503 (retry); a missing parameter or one the role may not read
 * fails the invocation, naming the parameter, and the next invocation tries again.
 */
export async function loadSecrets(settings: Config = config(), ssm: SSMProvider = parameters()): Promise<void> {
  await Promise.all(
    SECRETS.map(async (name) => {
      const parameter = parameterOf(name, settings);
      if (parameter === undefined) return;
      let value: string | undefined;
      try {
        value = await ssm.get(parameter, { decrypt: true, maxAge: PER_CONTAINER_SECONDS });
      } catch (error) {
        const cause = (error as Error).cause;
        if (cause instanceof UpstreamUnavailableError) throw cause;
        throw new ConfigError(`${name}_PARAMETER: could not read ${parameter} from SSM: ${(error as Error).message}`, {
          cause: error,
        });
      }
      if (!value) throw new ConfigError(`${name}_PARAMETER: the SSM parameter ${parameter} is empty`);
      fromParameters.set(parameter, value);
    }),
  );
}

function secret(name: Secret, settings: Config): string | undefined {
  const parameter = parameterOf(name, settings);
  if (parameter === undefined) return settings[name];
  const value = fromParameters.get(parameter);
  if (value === undefined)
    throw new ConfigError(`${name} comes from SSM (${name}_PARAMETER) and was asked for before loadSecrets() read it`);
  return value;
}

/**
 * The PostgreSQL URL: DATABASE_URL, or the value of the parameter DATABASE_URL_PARAMETER names.
 * Required here, not in every function's configuration: /openapi.json and /docs have no database.
 */
export function databaseUrl(settings: Config = config()): string {
  const url = secret('DATABASE_URL', settings);
  if (url === undefined)
    throw new ConfigError(
      'Invalid configuration: DATABASE_URL: is required (or DATABASE_URL_PARAMETER, the SSM parameter that holds it)',
    );
  return url;
}

/** ThingsBoard's device token, from THINGSBOARD_DEVICE_TOKEN or its parameter; undefined when neither is set. */
export const deviceToken = (settings: Config = config()): string | undefined =>
  secret('THINGSBOARD_DEVICE_TOKEN', settings);
