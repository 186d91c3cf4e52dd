import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { ROOT } from '../../scripts/local/stack.ts';
import { stackTempDir } from '../../scripts/local/emulators.ts';
import { ensurePortsFree, freePort } from '../../scripts/local/ports.ts';

// `npm start` as a user runs it (scripts/start.ts in a process of its own), held to what it says:
// a port in use stops it at once, Ctrl-C during start-up leaves nothing running, and a part that
// dies takes the rest down with a non-zero exit.

interface Run {
  child: ChildProcess;
  output(): string;
  exit: Promise<number | null>;
  marker: string;
  port: number;
}

const runs: Run[] = [];
const cleanups: Array<() => void> = [];

/** Every process still running with this run's marker in its environment (the marker is inherited). */
function processesOf(marker: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`HUBFOLIO_START_TEST=${marker}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The addresses (ip:port) on which these processes listen for TCP connections, read from /proc. */
function listeningAddresses(pids: number[]): string[] {
  const inodes = new Set(
    pids.flatMap((pid) =>
      readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
        try {
          return [/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]].filter(Boolean);
        } catch {
          return [];
        }
      }),
    ),
  );
  const addresses: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
      if (state !== '0A' || !inodes.has(inode)) continue; // 0A: LISTEN
      const [ip, port] = local!.split(':');
      // IPv4 as little-endian hex (0100007F is 127.0.0.1); IPv6 shown as is.
      const ipv4 =
        ip!.length === 8
          ? ip!
              .match(/../g)!
              .reverse()
              .map((byte) => Number.parseInt(byte, 16))
              .join('.')
          : ip;
      addresses.push(`${ipv4}:${Number.parseInt(port!, 16)}`);
    }
  }
  return addresses;
}

async function start(env: Record<string, string> = {}): Promise<Run> {
  const marker = randomBytes(6).toString('hex');
  const dataDir = stackTempDir('hubfolio-start-');
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const base = { ...process.env };
  // The test run's own emulators and queues: this stack starts its own.
  for (const name of Object.keys(base)) {
    if (/^(AWS_ENDPOINT_URL|MODEL_BUCKET|PREDICTIONS_|MODEL_SYNC_QUEUE_URL|TEST_)/.test(name)) delete base[name];
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: ROOT,
    env: { ...base, LOCAL_DATA_DIR: dataDir, PORT: String(port), HUBFOLIO_START_TEST: marker, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const run = { child, output: () => output, exit, marker, port };
  runs.push(run);
  return run;
}

const waitForOutput = (run: Run, text: string, timeout: number) =>
  vi.waitFor(() => expect(run.output()).toContain(text), { timeout, interval: 100 });

const exitWithin = (run: Run, ms: number) =>
  Promise.race([
    run.exit,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`npm start did not exit within ${ms} ms:\n${run.output()}`)), ms),
    ),
  ]);

afterEach(() => {
  // Whatever a failed test left running (by process id, nothing else), and its data.
  for (const run of runs.splice(0)) {
    for (const pid of processesOf(run.marker)) process.kill(pid, 'SIGKILL');
  }
  for (const cleanup of cleanups.splice(0)) cleanup();
});

it('stops at once when its port is taken, naming the port and what to set', { timeout: 60_000 }, async () => {
  const holder: Server = createServer();
  const port = await freePort();
  await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
  try {
    const run = await start({ PORT: String(port) });
    expect(await exitWithin(run, 30_000)).not.toBe(0);
    expect(run.output()).toContain(`port ${port} (PORT) is in use`);
    expect(run.output()).toMatch(/set PORT to a free port, e\.g\. PORT=\d+ npm start/);
    expect(run.output()).not.toContain('embedded S3');
  } finally {
    holder.close();
  }
});

it('leaves no process and no port behind after Ctrl-C during start-up', { timeout: 150_000 }, async () => {
  const run = await start();
  // The moment with the most to undo: the emulators run and the API process was just started.
  await waitForOutput(run, 'starting on port', 120_000);
  run.child.kill('SIGINT');
  expect(await exitWithin(run, 20_000)).toBe(130);
  // Anything left would still be shutting down or would bind the API port late.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(processesOf(run.marker)).toEqual([]);
  await expect(ensurePortsFree({ port: run.port })).resolves.toBeUndefined();
});

it('listens on 127.0.0.1 only, and stops everything with a non-zero exit, saying which part, when the API process dies', {
  timeout: 240_000,
}, async () => {
  const run = await start();
  await waitForOutput(run, '[hubfolio] ready:', 200_000);
  // The API, its Lambda port and the embedded S3 and SQS (PostgreSQL is the test run's): 127.0.0.1 only.
  const listening = listeningAddresses(processesOf(run.marker));
  expect(listening.length).toBeGreaterThanOrEqual(4);
  expect(listening.filter((address) => !address.startsWith('127.0.0.1:'))).toEqual([]);
  const pid = Number(/serverless-offline, pid (\d+)/.exec(run.output())![1]);
  process.kill(pid, 'SIGKILL');
  expect(await exitWithin(run, 20_000)).toBe(1);
  expect(run.output()).toContain('serverless-offline (the API) exited on SIGKILL; stopping the rest');
  expect(processesOf(run.marker)).toEqual([]);
});

it('stops everything with a non-zero exit, saying which part, when the embedded PostgreSQL dies', {
  timeout: 240_000,
}, async () => {
  const run = await start({ DATABASE_URL: '' });
  await waitForOutput(run, '[hubfolio] ready:', 200_000);
  expect(run.output()).toContain('embedded PostgreSQL on postgres://');
  const [server] = processesOf(run.marker).filter((pid) =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1, 2).includes('-D'),
  );
  expect(server).toBeDefined();
  process.kill(server!, 'SIGKILL');
  expect(await exitWithin(run, 20_000)).toBe(1);
  expect(run.output()).toContain('embedded PostgreSQL exited with code 1 (the PostgreSQL server exited on SIGKILL');
  expect(run.output()).toContain('; stopping the rest');
  // The server's own children notice their postmaster is gone within moments.
  await vi.waitFor(() => expect(processesOf(run.marker)).toEqual([]), { timeout: 10_000, interval: 200 });
});
