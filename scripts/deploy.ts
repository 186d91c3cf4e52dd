/**
 * `npm run deploy -- --stage prod [--region eu-west-1]`: both stacks, in the order they need, with the
 * same options (a stage given to one stack only would import another stage's layer):
 * 1. package the functions (esbuild bundles; no AWS call) and refuse when a required setting is missing
 *    or malformed, before any CloudFormation, the layer's included (scripts/deploy-check.cjs);
 * 2. build the onnxruntime layer (scripts/build-layer.ts) and deploy its stack (layers/serverless.yml);
 * 3. deploy the functions' stack from that same package, which imports the layer's ARN.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseScriptArgs } from './usage.ts';

type Environments = Record<string, Record<string, unknown>>;
/** The osls plugin's own check (CommonJS, as osls loads it), so that both refuse the same things. */
const { settingProblems, templateEnvironments, refusal } = createRequire(import.meta.url)('./deploy-check.cjs') as {
  settingProblems: (environments: Environments) => string[];
  templateEnvironments: (template: unknown) => Environments;
  refusal: (problems: string[]) => string;
};

const ROOT = resolve(import.meta.dirname, '..');
const SERVERLESS = resolve(ROOT, 'node_modules/osls/bin/serverless.js');
const PACKAGE_DIR = '.serverless';
const values = parseScriptArgs({
  command: 'npm run deploy',
  description:
    'Packages the functions, refuses a missing or malformed setting before any CloudFormation, then builds and\n' +
    'deploys the onnxruntime layer stack and the functions, with the same stage and region (README, Deploying).',
  options: {
    stage: { type: 'string', short: 's', valueName: 'STAGE', description: 'the stage of both stacks (dev)' },
    region: { type: 'string', short: 'r', valueName: 'REGION', description: 'their region (AWS_REGION, us-east-1)' },
    'aws-profile': { type: 'string', valueName: 'PROFILE', description: 'the AWS profile to deploy with' },
    verbose: { type: 'boolean', description: "serverless's detailed output" },
  },
  environment: {
    DATABASE_URL_PARAMETER: 'the SSM parameter (SecureString) that holds the database URL',
    THINGSBOARD_DEVICE_TOKEN_PARAMETER: "the one that holds ThingsBoard's device token, with THINGSBOARD_URL",
    MODEL_BUCKET: 'and the other settings of README, Configuration',
    AWS_REGION: 'as --region',
  },
});
const options = [
  ...(values.stage ? ['--stage', values.stage] : []),
  ...(values.region ? ['--region', values.region] : []),
  ...(values['aws-profile'] ? ['--aws-profile', values['aws-profile']] : []),
  ...(values.verbose ? ['--verbose'] : []),
];

function run(command: string, args: string[], cwd = ROOT): void {
  console.log(`\n$ ${[command === process.execPath ? 'node' : command, ...args].join(' ')}`);
  const { status } = spawnSync(command, args, { cwd, stdio: 'inherit' });
  if (status !== 0) process.exit(status ?? 1);
}

run(process.execPath, [SERVERLESS, 'package', '--package', PACKAGE_DIR, ...options]);
const template: unknown = JSON.parse(
  readFileSync(resolve(ROOT, PACKAGE_DIR, 'cloudformation-template-update-stack.json'), 'utf8'),
);
const problems = settingProblems(templateEnvironments(template));
if (problems.length > 0) {
  console.error(`\n${refusal(problems)}`);
  process.exit(2);
}

run('npm', ['run', 'build:layer']);
run(process.execPath, [SERVERLESS, 'deploy', ...options], resolve(ROOT, 'layers'));
run(process.execPath, [SERVERLESS, 'deploy', '--package', PACKAGE_DIR, ...options]);
