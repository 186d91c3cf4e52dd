import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

/** The artifact as it ships: `serverless package` run plainly, as a user or CI would. */
const ROOT = resolve(import.meta.dirname, '../..');

export interface LambdaFunction {
  Type: 'AWS::Lambda::Function';
  Properties: {
    FunctionName: string;
    Handler: string;
    Timeout: number;
    MemorySize: number;
    Code: { S3Key: string };
    Role: { 'Fn::GetAtt': [string, 'Arn'] };
    Layers?: unknown[];
    Environment?: { Variables: Record<string, unknown> };
  };
}
export interface Template {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
}

/** Runs a command to its end; rejects with its output when it fails. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', fail);
    child.on('close', (code) =>
      code === 0 ? done(output) : fail(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`)),
    );
  });
}

/**
 * The environment of someone at a clean checkout: none of the variables serverless.yml reads
 * (DATABASE_URL, MODEL_BUCKET…), as CI runs it; only osls's own notices are turned off.
 */
export const cleanEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
});

/** `serverless` (osls) with these arguments, from the repository. */
export const serverless = (args: string[], env = cleanEnv()) =>
  run(process.execPath, [resolve(ROOT, 'node_modules/osls/bin/serverless.js'), ...args], env);

/**
 * A plain `serverless package` into `dir`. osls builds in the repository's .serverless/ and moves the
 * result to `dir`, so a package of one's own there is replaced meanwhile.
 */
export async function packageService(dir: string): Promise<void> {
  await serverless(['package', '--package', dir]);
}

/** The service's own functions in a compiled template, by name (the custom-resource function aside). */
export function serviceFunctions(template: Template, service = 'hubfolio-functions-dev-'): Map<string, LambdaFunction> {
  const functions = new Map<string, LambdaFunction>();
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const fn = resource as unknown as LambdaFunction;
    if (!fn.Properties.Code.S3Key.endsWith('custom-resources.zip'))
      functions.set(fn.Properties.FunctionName.replace(service, ''), fn);
  }
  return functions;
}
