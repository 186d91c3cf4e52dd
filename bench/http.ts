/**
 * The HTTP rows of the benchmark: the local stack started the way `npm start` starts it
 * (startLocalStack: emulators, embedded or DATABASE_URL's PostgreSQL, serverless-offline, the
 * S3/SQS bridge), loaded by autocannon from a process of its own, with the CPU time each process
 * spent per request read from /proc (Linux; elsewhere the split is left out).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../scripts/local/ports.ts';
import { sqsClient } from '../scripts/local/resources.ts';
import { startLocalStack, type LocalStack } from '../scripts/local/stack.ts';
import { queueDepth } from './forwarder.ts';
import { round } from './stats.ts';

const execFileAsync = promisify(execFile);
const AUTOCANNON = fileURLToPath(import.meta.resolve('autocannon/autocannon.js'));

export interface HttpRow {
  n: number;
  p50: number;
  p99: number;
  perSecond: number;
  non2xx: number;
  errors: number;
  /** CPU ms per request: serverless-offline (HTTP, handlers, forwarder), the process running the
   * emulators and the bridge (npm start's own), PostgreSQL's server processes; absent off Linux. */
  cpu?: { offline: number; stack: number; postgres: number };
}

export interface HttpBenchResult {
  database: 'embedded' | 'DATABASE_URL';
  startSeconds: number;
  c1: HttpRow;
  c8: HttpRow;
  batch: HttpRow;
}

type Load = { connections: number; seconds?: number; amount?: number; path: string; body: string };

/** One autocannon run, in a process of its own so that it never shares an event loop with the stack. */
async function autocannon(url: string, load: Load) {
  const args = [AUTOCANNON, '-j', '-c', String(load.connections), '-m', 'POST', '-H', 'content-type=application/json'];
  args.push(...(load.amount ? ['-a', String(load.amount)] : ['-d', String(load.seconds ?? 10)]));
  // The body from a file: a 1,000-row batch is longer than one command-line argument may be.
  const bodyFile = join(tmpdir(), `hubfolio-bench-body-${process.pid}-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(bodyFile, load.body);
  const { stdout } = await execFileAsync(process.execPath, [...args, '-i', bodyFile, `${url}${load.path}`], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  }).finally(() => rmSync(bodyFile, { force: true }));
  const result = JSON.parse(stdout);
  return {
    n: result.requests.total as number,
    p50: result.latency.p50 as number,
    p99: result.latency.p99 as number,
    perSecond: Math.round(result.requests.average),
    non2xx: result.non2xx as number,
    errors: (result.errors as number) + (result.timeouts as number),
  };
}

type Proc = { ticks: number; ppid: number; comm: string; cmd: string };

/** Every process's CPU ticks (user + system), parent and command line. */
function processes(): Map<number, Proc> {
  const all = new Map<number, Proc>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      all.set(Number(entry), {
        ticks: Number(fields[11]) + Number(fields[12]),
        ppid: Number(fields[1]),
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
        cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' '),
      });
    } catch {
      // gone meanwhile
    }
  }
  return all;
}

/**
 * CPU milliseconds each part spent over `work`, by process tree: serverless-offline's, this
 * process's own (the emulators and the bridge run here, as in `npm start`), and PostgreSQL's — the
 * embedded server's tree, or the backends of `database` on DATABASE_URL's shared server.
 */
async function cpuDuring<T>(database: string, work: () => Promise<T>): Promise<[T, HttpRow['cpu']]> {
  if (process.platform !== 'linux') return [await work(), undefined];
  const msPerTick = 10; // USER_HZ is 100 on Linux
  const before = processes();
  const result = await work();
  const after = processes();
  const ancestry = (pid: number): number[] => {
    const chain: number[] = [];
    for (let p: number | undefined = pid; p && p > 1 && chain.length < 64; p = (after.get(p) ?? before.get(p))?.ppid)
      chain.push(p);
    return chain;
  };
  const cpu = { offline: 0, stack: 0, postgres: 0 };
  for (const [pid, proc] of after) {
    const spent = (proc.ticks - (before.get(pid)?.ticks ?? 0)) * msPerTick;
    if (spent <= 0) continue;
    const chain = ancestry(pid).map((p) => after.get(p)?.cmd ?? '');
    if (pid === process.pid) cpu.stack += spent;
    else if (chain.some((cmd) => cmd.includes('postgres-process.ts'))) cpu.postgres += spent;
    else if (proc.comm === 'postgres' && proc.cmd.includes(` ${database} `)) cpu.postgres += spent;
    else if (chain.some((cmd) => cmd.includes('osls/bin/serverless.js')) && ancestry(pid).includes(process.pid))
      cpu.offline += spent;
  }
  return [result, cpu];
}

async function row(url: string, database: string, load: Load): Promise<HttpRow> {
  const [result, cpu] = await cpuDuring(database, () => autocannon(url, load));
  const perRequest = (ms: number) => round(ms / Math.max(1, result.n), 2);
  return {
    ...result,
    ...(cpu
      ? { cpu: { offline: perRequest(cpu.offline), stack: perRequest(cpu.stack), postgres: perRequest(cpu.postgres) } }
      : {}),
  };
}

/**
 * Waits until the telemetry consumer has taken every queued prediction (at most 60 s), so that each
 * row measures its own load and the consumer's work on it, not the backlog a previous row left.
 */
async function settle(stack: LocalStack): Promise<void> {
  const sqs = sqsClient(stack.endpoints);
  const deadline = Date.now() + 60_000;
  try {
    while (Date.now() < deadline && (await queueDepth(sqs, stack.queueUrl)) > 0)
      await new Promise((resolve) => setTimeout(resolve, 250));
  } finally {
    sqs.destroy();
  }
}

/**
 * Starts the local stack as `npm start` does (`env` decides embedded or DATABASE_URL's PostgreSQL),
 * warms it up, then measures /predict at 1 and 8 connections (10 s each) and 30 requests of a
 * 1,000-row /predict/batch, one at a time, each row once the queue is empty.
 */
export async function benchHttp(options: {
  env: NodeJS.ProcessEnv;
  dataDir: string;
  body: string;
  batchBody: string;
}): Promise<HttpBenchResult> {
  const database = options.env.DATABASE_URL ? new URL(options.env.DATABASE_URL).pathname.slice(1) : 'postgres';
  const started = performance.now();
  const stack = await startLocalStack({
    env: options.env,
    dataDir: options.dataDir,
    port: await freePort(),
    s3Port: await freePort(),
    sqsPort: await freePort(),
    pgPort: await freePort(),
    offlineOutput: 'ignore',
  });
  const startSeconds = round((performance.now() - started) / 1000, 1);
  try {
    const predict = { path: '/predict', body: options.body };
    const batch = { path: '/predict/batch', body: options.batchBody };
    await autocannon(stack.url, { ...predict, connections: 1, seconds: 3 });
    await autocannon(stack.url, { ...predict, connections: 8, seconds: 3 });
    await settle(stack);
    const c1 = await row(stack.url, database, { ...predict, connections: 1, seconds: 10 });
    await settle(stack);
    const c8 = await row(stack.url, database, { ...predict, connections: 8, seconds: 10 });
    await autocannon(stack.url, { ...batch, connections: 1, amount: 3 });
    await settle(stack);
    const batchRow = await row(stack.url, database, { ...batch, connections: 1, amount: 30 });
    return {
      database: options.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded',
      startSeconds,
      c1,
      c8,
      batch: batchRow,
    };
  } finally {
    await stack.stop();
  }
}
