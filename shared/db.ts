import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import { config } from '#shared/config';

// bigint columns (ids, ts) come back as strings by default; ours stay below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));

let sharedPool: pg.Pool | undefined;

/** The container's one connection pool, built on first use. */
export function pool(): pg.Pool {
  sharedPool ??= createPool(config().DATABASE_URL);
  return sharedPool;
}

export function createPool(connectionString: string, max = 4): pg.Pool {
  const created = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 60_000 });
  // An idle client losing its connection must not crash the container.
  created.on('error', () => {});
  return created;
}

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/**
 * Applies every pending migration (node-pg-migrate, SQL files in migrations/), into `schema`
 * when given (created if missing), else into the connection's default schema.
 */
export async function migrate(databaseUrl: string, options: { schema?: string; log?: (msg: string) => void } = {}): Promise<string[]> {
  const log = options.log ?? (() => {});
  const applied = await runner({
    databaseUrl,
    ...(options.schema ? { schema: options.schema, createSchema: true } : {}),
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    // Two migrators at once (two test files, two deploy jobs) take turns instead of failing.
    advisoryLockMode: 'wait',
    log,
    logger: { info: log, warn: log, error: log, debug: () => {} },
  });
  return applied.map((m) => m.name);
}
