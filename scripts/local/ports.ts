import { createServer } from 'node:net';

/** A TCP port that is free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Fails at once, naming the port and the variable to set, when `port` cannot be bound on `host`:
 * found before anything starts, instead of as serverless-offline's EADDRINUSE once everything runs.
 */
async function ensurePortFree(port: number, variable: string, host = '127.0.0.1'): Promise<void> {
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
  if (free) return;
  const suggestion = await freePort();
  throw new Error(
    `port ${port} (${variable}) is in use by another program; set ${variable} to a free port, e.g. ${variable}=${suggestion} npm start`,
  );
}

/** The local stack's ports, each moved by the variable of the same name in README's configuration. */
export interface StackPorts {
  port?: number;
  lambdaPort?: number;
  s3Port?: number;
  sqsPort?: number;
  pgPort?: number;
}

/**
 * Checks the ports the stack is told to use (the API's 3000 by default; the others only when set:
 * unset, they are chosen free). The API binds `host` (HOST; 127.0.0.1 unless a container sets
 * 0.0.0.0), the emulators 127.0.0.1.
 */
export async function ensurePortsFree(ports: StackPorts, host = '127.0.0.1'): Promise<void> {
  await ensurePortFree(ports.port ?? 3000, 'PORT', host);
  if (ports.lambdaPort) await ensurePortFree(ports.lambdaPort, 'LAMBDA_PORT', host);
  if (ports.s3Port) await ensurePortFree(ports.s3Port, 'S3_PORT');
  if (ports.sqsPort) await ensurePortFree(ports.sqsPort, 'SQS_PORT');
  if (ports.pgPort) await ensurePortFree(ports.pgPort, 'POSTGRES_PORT');
}

/** Waits until `url` answers any HTTP status, or fails after `timeoutMs`. */
export async function waitForHttp(url: string, timeoutMs: number, isAlive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(2_000) });
      return;
    } catch {
      if (!isAlive()) throw new Error(`the process serving ${url} exited before it answered`);
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
