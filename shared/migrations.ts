import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

// Kept apart from shared/db.ts so that functions do not bundle the migration tool: it runs from
// `npm run migrate`, `npm start` and the tests, not inside a Lambda invocation.
const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/**
 * Applies every pending migration (node-pg-migrate, SQL files in migrations/), into `schema`
 * when given (created if missing), else into the connection's default schema.
 */
export async function migrate(
  databaseUrl: string,
  options: { schema?: string; log?: (msg: string) => void } = {},
): Promise<string[]> {
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
