/**
 * Where `npm start` keeps its data (LOCAL_DATA_DIR, .local/ by default), and says there what it runs
 * (stack.json, while it runs): the embedded emulators' ports are chosen free at each start, and the
 * other scripts (npm run dlq:redrive) find them in that file.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const localDataDir = (env: NodeJS.ProcessEnv = process.env) =>
  resolve(import.meta.dirname, '../..', env.LOCAL_DATA_DIR || '.local');

const stackFile = (dataDir: string) => resolve(dataDir, 'stack.json');

export interface RunningStack {
  pid: number;
  url: string;
  s3: string;
  sqs: string;
  queueUrl: string;
  dlqUrl: string;
}

export function rememberRunningStack(
  dataDir: string,
  stack: {
    url: string;
    endpoints: { s3: string; sqs: string };
    queueUrl: string;
    dlqUrl: string;
  },
): void {
  const running: RunningStack = {
    pid: process.pid,
    url: stack.url,
    s3: stack.endpoints.s3,
    sqs: stack.endpoints.sqs,
    queueUrl: stack.queueUrl,
    dlqUrl: stack.dlqUrl,
  };
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(stackFile(dataDir), `${JSON.stringify(running, null, 2)}\n`);
}

export function forgetRunningStack(dataDir: string): void {
  rmSync(stackFile(dataDir), { force: true });
}

/** The stack `npm start` runs now, or undefined (none, or the file of one that did not stop cleanly). */
export function readRunningStack(dataDir = localDataDir()): RunningStack | undefined {
  let running: RunningStack;
  try {
    running = JSON.parse(readFileSync(stackFile(dataDir), 'utf8')) as RunningStack;
  } catch {
    return undefined;
  }
  try {
    process.kill(running.pid, 0);
    return running;
  } catch {
    return undefined;
  }
}
