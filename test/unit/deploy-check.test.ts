import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '#shared/config';

type Environments = Record<string, Record<string, unknown>>;
interface Hooks {
  hooks: Record<string, () => void>;
}
const DeployCheck = createRequire(import.meta.url)('../../scripts/deploy-check.cjs') as {
  new (serverless: unknown, options: { function?: string }): Hooks;
  settingProblems: (environments: Environments) => string[];
};

const good = { DATABASE_URL_PARAMETER: '/hubfolio/prod/database-url', MODEL_BUCKET: 'hubfolio-prod-models' };
const PARAMETER_EXPECTED =
  'an SSM parameter name such as /hubfolio/prod/database-url (a SecureString; README: Deploying)';
/** Two functions as osls compiles them: literal settings, and queue URLs as CloudFormation intrinsics. */
const functions = (env: Record<string, unknown>): Environments => ({
  PredictLambdaFunction: { ...env, PREDICTIONS_QUEUE_URL: { Ref: 'PredictionsQueue' } },
  RelayLambdaFunction: { ...env },
});

class FakeServerlessError extends Error {}
/** The plugin as osls builds it, over a compiled template with these function environments. */
function plugin(environments: Environments, options: { function?: string } = {}) {
  const Resources = Object.fromEntries(
    Object.entries(environments).map(([id, Variables]) => [
      id,
      { Type: 'AWS::Lambda::Function', Properties: { Environment: { Variables } } },
    ]),
  );
  const serverless = {
    classes: { Error: FakeServerlessError },
    service: {
      provider: { compiledCloudFormationTemplate: { Resources }, environment: environments.PredictLambdaFunction },
      getFunction: () => ({ environment: {} }),
    },
  };
  return new DeployCheck(serverless, options).hooks;
}

describe('the deploy check', () => {
  it('passes the settings a function can start with; intrinsics are left to CloudFormation', () => {
    expect(DeployCheck.settingProblems(functions(good))).toEqual([]);
  });

  it('names an empty setting (serverless.yml compiles an unset DATABASE_URL_PARAMETER to "")', () => {
    expect(DeployCheck.settingProblems(functions({ ...good, DATABASE_URL_PARAMETER: '' }))).toEqual([
      `DATABASE_URL_PARAMETER is not set; expected ${PARAMETER_EXPECTED}`,
    ]);
  });

  it('names malformed settings without repeating their values', () => {
    const problems = DeployCheck.settingProblems(
      functions({ DATABASE_URL_PARAMETER: 'postgres://u:secret@db/x', MODEL_BUCKET: 'My_Bucket' }),
    );
    expect(problems).toEqual([
      `DATABASE_URL_PARAMETER: expected ${PARAMETER_EXPECTED}`,
      'MODEL_BUCKET: expected a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)',
    ]);
    expect(problems.join()).not.toContain('secret');
  });

  it('names a setting no function carries (one renamed in serverless.yml but not here)', () => {
    expect(DeployCheck.settingProblems({ F: { MODEL_BUCKET: 'b-b-b' } })).toEqual([
      `DATABASE_URL_PARAMETER is not set for any function; expected ${PARAMETER_EXPECTED}`,
    ]);
  });

  it('refuses a plain-text secret in any function’s environment', () => {
    const leaky = { ...functions(good), HealthLambdaFunction: { DATABASE_URL: 'postgres://u:p@db/x' } };
    expect(DeployCheck.settingProblems(leaky)).toEqual([
      "DATABASE_URL must not be in a function's environment (a secret in plain text); give DATABASE_URL_PARAMETER",
    ]);
    const tenant = functions({ ...good, THINGSBOARD_PASSWORD: 'tenant', THINGSBOARD_DEVICE_TOKEN: '' });
    expect(DeployCheck.settingProblems(tenant)).toHaveLength(2);
  });

  it('checks the device token’s parameter when given, and wants it wherever THINGSBOARD_URL is set', () => {
    const url = 'https://thingsboard.example.com';
    expect(DeployCheck.settingProblems(functions({ ...good, THINGSBOARD_DEVICE_TOKEN_PARAMETER: '' }))).toEqual([]);
    expect(
      DeployCheck.settingProblems(functions({ ...good, THINGSBOARD_URL: url, THINGSBOARD_DEVICE_TOKEN_PARAMETER: '' })),
    ).toEqual([
      `THINGSBOARD_DEVICE_TOKEN_PARAMETER is not set, but THINGSBOARD_URL is; expected ${PARAMETER_EXPECTED}`,
    ]);
    expect(DeployCheck.settingProblems(functions({ ...good, THINGSBOARD_DEVICE_TOKEN_PARAMETER: 'token' }))).toEqual([
      `THINGSBOARD_DEVICE_TOKEN_PARAMETER: expected ${PARAMETER_EXPECTED}`,
    ]);
    const both = { ...good, THINGSBOARD_URL: url, THINGSBOARD_DEVICE_TOKEN_PARAMETER: '/hubfolio/prod/tb-token' };
    expect(DeployCheck.settingProblems(functions(both))).toEqual([]);
  });

  it.each([
    ['/hubfolio/prod/database-url', 'hubfolio-prod-models'],
    ['/a.b_c-d', 'a.b-c'],
    ['hubfolio/prod/database-url', 'hubfolio-prod-models'],
    ['/aws/x', 'hubfolio-prod-models'],
    ['/hubfolio/database url', 'hubfolio-prod-models'],
    ['/hubfolio/prod/database-url', 'Hubfolio'],
    ['postgres://db/x', 'xy'],
  ])('refuses what a function would refuse at cold start: %s, %s', (DATABASE_URL_PARAMETER, MODEL_BUCKET) => {
    const atColdStart = (() => {
      try {
        parseConfig({ DATABASE_URL_PARAMETER, MODEL_BUCKET, PREDICTIONS_QUEUE_URL: 'https://sqs.local/q' });
        return true;
      } catch {
        return false;
      }
    })();
    expect(DeployCheck.settingProblems(functions({ DATABASE_URL_PARAMETER, MODEL_BUCKET })).length === 0).toBe(
      atColdStart,
    );
  });

  it('stops `deploy` and `deploy function` with osls’s own error class', () => {
    const bad = functions({ ...good, DATABASE_URL_PARAMETER: '' });
    expect(() => plugin(bad)['before:deploy:deploy']!()).toThrow(FakeServerlessError);
    expect(() => plugin(bad)['before:deploy:deploy']!()).toThrow(
      /^Refusing to deploy: DATABASE_URL_PARAMETER is not set/,
    );
    expect(() => plugin(bad, { function: 'predict' })['before:deploy:function:initialize']!()).toThrow(
      /DATABASE_URL_PARAMETER is not set/,
    );
    expect(() => plugin(functions(good))['before:deploy:deploy']!()).not.toThrow();
  });
});
