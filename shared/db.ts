import pg from 'pg';
import { databaseUrl } from '#shared/secrets';
import { ServiceUnavailableError } from '#http/errors';
import { isNetworkError } from '#clients/errors';

// bigint columns (ids, ts) come back as strings by default; ours stay below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));

let sharedPool: pg.Pool | undefined;

/** The container's one connection pool, built on first use. */
export function pool(): pg.Pool {
  sharedPool ??= createPool(databaseUrl());
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

/**
 * Time limits that keep a request's database work well inside the function's own timeout (10 s for
 * /predict), so that a database that hangs answers 503 "retry" instead of nothing: a connection
 * must open within 3 s, the server cancels a statement after 5 s (none of ours takes a tenth of
 * that), and the client gives up on an answer after 6 s, for a server that no longer answers at
 * all. (statement_timeout travels as a startup parameter: PgBouncer needs it in
 * `ignore_startup_parameters`.)
 */
const CONNECT_TIMEOUT_MS = 3_000;
const STATEMENT_TIMEOUT_MS = 5_000;
const QUERY_TIMEOUT_MS = 6_000;

/**
 * The most connections one container opens. A container serves one invocation at a time and rarely
 * needs more than one; the pool allows a few for work that overlaps. What the database must accept
 * is this times the functions' concurrency: serverless.yml sizes the prediction routes' reserved
 * concurrency with it (README: Operations).
 */
export const POOL_MAX = 4;

export function createPool(connectionString: string, max = POOL_MAX): pg.Pool {
  const created = new pg.Pool({
    connectionString,
    max,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    idleTimeoutMillis: 60_000,
  });
  // An idle client losing its connection must not crash the container.
  created.on('error', () => {});
  return created;
}

/**
 * PostgreSQL states that mean "not available now": connection exceptions (class 08), too many
 * connections, a statement cancelled by statement_timeout (an overloaded or locked database),
 * shutting down, starting up.
 */
const UNAVAILABLE_STATES = /^(08...|53300|57014|57P0[1-3])$/;
/** pg's own: no connection within connectionTimeoutMillis, a lost connection, no answer within query_timeout. */
const POOL_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout/;

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
