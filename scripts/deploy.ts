/**
 * `npm run deploy [-- --stage prod]`: builds the onnxruntime layer, deploys it as its own stack
 * (layers/serverless.yml), then deploys the functions, bundled by esbuild. Both stacks get the same
 * stage and region: the functions import the layer of their own stage
 * (hubfolio-onnxruntime-layer-{stage}-arn), so a stage given to the functions alone fails to deploy.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseScriptArgs } from './usage.ts';

const ROOT = resolve(import.meta.dirname, '..');

const values = parseScriptArgs({
  command: 'npm run deploy',
  description:
    'Builds and deploys the onnxruntime layer stack, then the functions (bundled), to AWS, with the same stage and\n' +
    'region. Needs AWS credentials, DATABASE_URL and MODEL_BUCKET (see README, Deploying).',
  options: {
    stage: { type: 'string', short: 's', valueName: 'STAGE', description: 'the stage of both stacks (dev)' },
    region: { type: 'string', short: 'r', valueName: 'REGION', description: 'their region (AWS_REGION, us-east-1)' },
    'aws-profile': { type: 'string', valueName: 'PROFILE', description: 'the AWS profile to deploy with' },
    verbose: { type: 'boolean', description: "serverless's detailed output" },
  },
  environment: {
    'DATABASE_URL, MODEL_BUCKET': 'what the functions use (see README, Configuration)',
    AWS_REGION: 'as --region',
  },
});

const passed = [
  ...(values.stage ? ['--stage', values.stage] : []),
  ...(values.region ? ['--region', values.region] : []),
  ...(values['aws-profile'] ? ['--aws-profile', values['aws-profile']] : []),
  ...(values.verbose ? ['--verbose'] : []),
];

function run(what: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  console.log(`[deploy] ${what}`);
  const { status } = spawnSync(process.execPath, args, {
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdio: 'inherit',
  });
  if (status !== 0) {
    console.error(`[deploy] ${what} failed; nothing after it was deployed`);
    process.exit(status ?? 1);
  }
}

const serverless = resolve(ROOT, 'node_modules/osls/bin/serverless.js');
run('building the onnxruntime layer', ['--import', 'tsx', resolve(ROOT, 'scripts/build-layer.ts')]);
run('deploying the layer stack', [serverless, 'deploy', ...passed], { cwd: resolve(ROOT, 'layers') });
run('deploying the functions', [serverless, 'deploy', ...passed], { env: { ...process.env, SLS_BUNDLE: '1' } });
