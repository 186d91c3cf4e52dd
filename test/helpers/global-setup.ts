import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '#shared/migrations';
import { startPostgres, startS3, startSqs } from '../../scripts/local/emulators.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    s3Url: string;
    sqsUrl: string;
  }
}

/**
 * Real parts for the whole run: PostgreSQL from DATABASE_URL (a fresh database on that server,
 * dropped at the end) or an embedded PostgreSQL server when it is unset (a throwaway cluster on a
 * free port); s3rver and fauxqs on free ports. Either way each test file gets a schema of its own.
 */
export default async function setup(project: TestProject) {
  const stops: Array<() => Promise<unknown>> = [];
  let databaseUrl: string;
  if (process.env.DATABASE_URL) {
    const server = new URL(process.env.DATABASE_URL);
    const name = `hubfolio_test_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    server.pathname = `/${name}`;
    databaseUrl = server.toString();
    stops.push(async () => {
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    });
  } else {
    const embedded = await startPostgres({});
    databaseUrl = embedded.url;
    stops.push(embedded.stop);
  }
  await migrate(databaseUrl);

  const s3Dir = mkdtempSync(join(tmpdir(), 'hubfolio-test-s3-'));
  const s3 = await startS3({ port: 0, directory: s3Dir });
  stops.push(async () => {
    await s3.stop();
    rmSync(s3Dir, { recursive: true, force: true });
  });
  const sqs = await startSqs({ port: 0 });
  stops.push(sqs.stop);

  project.provide('databaseUrl', databaseUrl);
  project.provide('s3Url', s3.url);
  project.provide('sqsUrl', sqs.url);

  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}
