import pg from 'pg';
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
