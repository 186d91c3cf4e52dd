import pg from 'pg';
import { config } from '#shared/config';
import { ServiceUnavailableError } from '#http/errors';
import { isNetworkError } from '#clients/errors';

// bigint columns (ids, ts) come back as strings by default; ours stay below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));

let sharedPool: pg.Pool | undefined;

/** The container's one connection pool, built on first use. */
export function pool(): pg.Pool {
  sharedPool ??= createPool(config().DATABASE_URL);
  return sharedPool;
}

let firstConnection: Promise<void> | undefined;

/**
 * Opens the pool's first connection, once per container, so that a cold start can overlap it with
 * other work (loading the model). Never rejects: the query that needs the connection reports errors.
 */
export function connectEarly(): Promise<void> {
  firstConnection ??= pool()
    .connect()
    .then(
      (client) => client.release(),
      () => {
        firstConnection = undefined;
      },
    );
  return firstConnection;
}

export function createPool(connectionString: string, max = 4): pg.Pool {
  const created = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 60_000 });
  // An idle client losing its connection must not crash the container.
  created.on('error', () => {});
  return created;
}

/** PostgreSQL states that mean "not available now": connection exceptions (class 08), too many connections, shutting down, starting up. */
const UNAVAILABLE_STATES = /^(08...|53300|57P0[1-3])$/;
const POOL_MESSAGES = /timeout exceeded when trying to connect|Connection terminated/;

/** Whether a database error means "not reachable now" (retry later) rather than "wrong request". */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (isNetworkError(error)) return true;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && UNAVAILABLE_STATES.test(code)) return true;
  return typeof message === 'string' && POOL_MESSAGES.test(message);
}

/**
 * Awaits database work for a request: a database that cannot be reached becomes a 503 that tells
 * the caller to retry, instead of an anonymous 500. (It does not promise that nothing was stored:
 * a connection lost during a COMMIT leaves that unknown.)
 */
export async function databaseWork<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    throw new ServiceUnavailableError('The database is unavailable; retry shortly.', { cause: error });
  }
}
