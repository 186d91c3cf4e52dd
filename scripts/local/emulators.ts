import { mkdirSync } from 'node:fs';
import S3rver from 's3rver';
import { startFauxqs } from 'fauxqs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** s3rver accepts exactly these credentials. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

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

/** Embedded SQS (fauxqs). */
export async function startSqs(options: { port: number }) {
  // Queue URLs read sqs.<region>.localhost:<port>; the SDK sends to the endpoint, so the host only has to be a valid name.
  const server = await startFauxqs({ port: options.port, logger: false });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
}

/**
 * Embedded PostgreSQL (PGlite over the wire protocol) for machines without a server.
 * `dataDir` undefined keeps it in memory.
 */
export async function startPostgres(options: { port: number; dataDir?: string }) {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir ?? 'memory://');
  const server = new PGLiteSocketServer({ db, port: options.port, host: '127.0.0.1', maxConnections: 16 });
  await server.start();
  const address = (server as unknown as { server?: { address(): { port: number } } }).server?.address();
  const port = address?.port ?? options.port;
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}
