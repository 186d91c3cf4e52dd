/**
 * serverless-offline as a child process of the local stack: started in a process group of its own
 * (so that one signal stops it and every process it starts), watched for exits, and ready only when
 * this suite answers on its port.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { healthReportSchema } from '#api/responses';
import { watchExit } from './exits.ts';

/** How many of its last output lines a start-up error quotes when the output is not shown. */
const KEPT_LINES = 40;

export interface OfflineProcess {
  pid: number;
  /** Resolves when the process ends by itself (not through stop()), saying how. */
  exited: Promise<string>;
  isRunning(): boolean;
  /** Its last lines of output, when the output is not shown ('' otherwise). */
  recentOutput(): string;
  /** SIGTERM to its process group, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export function startOffline(options: {
  root: string;
  env: NodeJS.ProcessEnv;
  /** 'inherit': its output goes to ours; 'ignore': kept only to explain a failure. */
  output: 'inherit' | 'ignore';
}): OfflineProcess {
  const shown = options.output === 'inherit';
  const child = spawn(
    process.execPath,
    [
      // Ends it should this process die without stopping it (SIGKILL, a crash): no orphan holds the ports.
      '--require',
      resolve(options.root, 'scripts/local/exit-with-parent.cjs'),
      '--enable-source-maps',
      resolve(options.root, 'node_modules/osls/bin/serverless.js'),
      'offline',
      'start',
      // Every function runs in serverless-offline's own process, its modules loaded once (like one warm
      // container). By default serverless-offline starts a worker thread per concurrently busy request,
      // each loading the handler, ONNX Runtime and a connection pool of its own: seconds of CPU per
      // worker, and native ONNX Runtime initialised in several threads at once (see npm run stress).
      '--useInProcess',
    ],
    {
      cwd: options.root,
      env: options.env,
      stdio: ['ignore', shown ? 'inherit' : 'pipe', shown ? 'inherit' : 'pipe', 'ipc'],
      // Its own process group: Ctrl-C in a terminal reaches this process, which stops the group in order.
      detached: true,
    },
  );
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - KEPT_LINES));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let running = true;
  const exit = watchExit(child, 'serverless-offline (the API)');
  void exit.ended.then(() => {
    running = false;
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  return {
    pid: child.pid!,
    exited: exit.died,
    isRunning: () => running,
    recentOutput: () => lines.join('\n'),
    stop: async (graceMs = 5_000) => {
      exit.expectExit();
      if (running) signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exit.ended;
      clearTimeout(timer);
      // Whatever it started in its group and left behind.
      signalGroup('SIGKILL');
    },
  };
}

/** Whether an HTTP answer is this suite's /health (and not another program's on the same port). */
async function isThisSuite(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
    return healthReportSchema.safeParse(await response.json()).success;
  } catch {
    return false;
  }
}

/**
 * Waits until this suite answers on `url` (its /health document, any status), while `offline` runs.
 * Throws, quoting the process's last output, if it exits first, or when `timeoutMs` has passed.
 */
export async function waitUntilServing(
  url: string,
  offline: OfflineProcess,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await isThisSuite(url)) return;
    const output = offline.recentOutput();
    const tail = output ? `; its last output:\n${output}` : '';
    if (!offline.isRunning()) throw new Error(`serverless-offline exited before the API answered on ${url}${tail}`);
    if (Date.now() > deadline)
      throw new Error(`the API did not answer on ${url} within ${options.timeoutMs} ms${tail}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
