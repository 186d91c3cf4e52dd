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

const good = { DATABASE_URL: 'postgres://u:p@db:5432/hubfolio', MODEL_BUCKET: 'hubfolio-prod-models' };
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

  it('names an empty setting (serverless.yml compiles an unset DATABASE_URL to "")', () => {
    expect(DeployCheck.settingProblems(functions({ ...good, DATABASE_URL: '' }))).toEqual([
      'DATABASE_URL is not set; expected a PostgreSQL URL such as postgres://user:pass@host:5432/db',
    ]);
  });

  it('names malformed settings without repeating their values (a database URL holds a password)', () => {
    const problems = DeployCheck.settingProblems(
      functions({ DATABASE_URL: 'mysql://u:secret@db/x', MODEL_BUCKET: 'My_Bucket' }),
    );
    expect(problems).toEqual([
      'DATABASE_URL: expected a PostgreSQL URL such as postgres://user:pass@host:5432/db',
      'MODEL_BUCKET: expected a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)',
    ]);
    expect(problems.join()).not.toContain('secret');
  });

  it('names a setting no function carries (one renamed in serverless.yml but not here)', () => {
    expect(DeployCheck.settingProblems({ F: { MODEL_BUCKET: 'b-b-b' } })).toEqual([
      'DATABASE_URL is not set for any function; expected a PostgreSQL URL such as postgres://user:pass@host:5432/db',
    ]);
  });

  it.each([
    ['postgres://u:p@db:5432/hubfolio', 'hubfolio-prod-models'],
    ['postgresql://db/x', 'a.b-c'],
    ['mysql://db/x', 'hubfolio-prod-models'],
    ['postgres://db/x', 'Hubfolio'],
    ['db:5432', 'xy'],
  ])('refuses what a function would refuse at cold start: %s, %s', (DATABASE_URL, MODEL_BUCKET) => {
    const atColdStart = (() => {
      try {
        parseConfig({ DATABASE_URL, MODEL_BUCKET, PREDICTIONS_QUEUE_URL: 'https://sqs.local/q' });
        return true;
      } catch {
        return false;
      }
    })();
    expect(DeployCheck.settingProblems(functions({ DATABASE_URL, MODEL_BUCKET })).length === 0).toBe(atColdStart);
  });

  it('stops `deploy` and `deploy function` with osls’s own error class', () => {
    const bad = functions({ ...good, DATABASE_URL: '' });
    expect(() => plugin(bad)['before:deploy:deploy']!()).toThrow(FakeServerlessError);
    expect(() => plugin(bad)['before:deploy:deploy']!()).toThrow(/^Refusing to deploy: DATABASE_URL is not set/);
    expect(() => plugin(bad, { function: 'predict' })['before:deploy:function:initialize']!()).toThrow(
      /DATABASE_URL is not set/,
    );
    expect(() => plugin(functions(good))['before:deploy:deploy']!()).not.toThrow();
  });
});
