import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/local/stack.ts';
import { freePort, waitForHttp } from '../../scripts/local/ports.ts';

// serverless-offline with scripts/local/offline-gateway.cjs, on a fixture service whose functions
// fail the ways real ones can (test/fixtures/offline): the client gets API Gateway's statuses in
// the API's {"detail": ...} shape, never a 200 for a failure and never a stack trace.
let offline: ChildProcess;
let url: string;
let output = '';

beforeAll(async () => {
  const [port, lambdaPort] = [await freePort(), await freePort()];
  offline = spawn(process.execPath, [resolve(ROOT, 'node_modules/osls/bin/serverless.js'), 'offline', 'start'], {
    cwd: resolve(ROOT, 'test/fixtures/offline'),
    env: { ...process.env, PORT: String(port), LAMBDA_PORT: String(lambdaPort), SLS_TELEMETRY_DISABLED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  offline.stdout!.on('data', (chunk) => (output += chunk));
  offline.stderr!.on('data', (chunk) => (output += chunk));
  url = `http://127.0.0.1:${port}`;
  let exited = false;
  offline.on('exit', () => (exited = true));
  await waitForHttp(`${url}/ok`, 60_000, () => !exited).catch((error: Error) => {
    throw new Error(`${error.message}\n${output}`);
  });
}, 90_000);

afterAll(() => {
  if (offline?.pid && offline.exitCode === null) process.kill(-offline.pid, 'SIGKILL');
});

const post = (path: string, headers: Record<string, string> = {}, body: string | Uint8Array = '{}') =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

/** Nothing internal: no stack trace, no file path, no serverless-offline wording. */
const expectClean = (text: string) => expect(text).not.toMatch(/stackTrace|errorMessage|\.(ts|js|mjs):\d|offline/i);

describe('failures of a function', () => {
  it('answers a function that outlives its timeout with 504 and when to retry', async () => {
    const response = await post('/slow');
    expect(response.status).toBe(504);
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    const text = await response.text();
    expect(JSON.parse(text).detail).toMatch(/did not answer within its timeout.*retry/);
    expectClean(text);
  });

  it('answers a function that throws with a 500 that shows nothing of the error', async () => {
    const response = await post('/crash');
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ detail: 'Internal server error' });
    expect(text).not.toMatch(/secret|boom/);
  });

  it('leaves a function that answers alone', async () => {
    const response = await post('/ok');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });
});

describe("serverless-offline's own refusals", () => {
  it('answers an unknown route 404 in the API error shape', async () => {
    const response = await post('/nope');
    expect(response.status).toBe(404);
    const text = await response.text();
    expect(JSON.parse(text).detail).toMatch(/No route POST \/nope.*openapi\.json/);
    expectClean(text);
  });

  it('answers a body over its limit 413, pointing to the presigned upload', async () => {
    const response = await post(
      '/ok',
      { 'content-type': 'application/octet-stream' },
      new Uint8Array(11 * 1024 * 1024),
    );
    expect(response.status).toBe(413);
    expect(((await response.json()) as { detail: string }).detail).toMatch(/over the API limit.*\/model\/upload-url/);
  });
});

describe('CORS', () => {
  const corsHeaders = (response: Response) =>
    [...response.headers.keys()].filter((name) => name.startsWith('access-control-'));

  it('gives no CORS headers to an origin it does not allow, on answers and on preflights', async () => {
    const origin = { origin: 'http://evil.example' };
    for (const response of [
      await post('/ok', origin),
      await post('/nope', origin),
      await fetch(`${url}/ok`, {
        method: 'OPTIONS',
        headers: { ...origin, 'access-control-request-method': 'POST' },
      }),
    ]) {
      expect(corsHeaders(response)).toEqual([]);
    }
  });

  it('allows a listed origin, never with credentials', async () => {
    const response = await post('/ok', { origin: 'http://allowed.example' });
    expect(response.headers.get('access-control-allow-origin')).toBe('http://allowed.example');
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
  });
});
