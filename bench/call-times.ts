/**
 * Wall time of the calls a handler makes to PostgreSQL and SQS, taken on the handlers' own pool and
 * client, so that the benchmark can say where a request's time goes (bench/report.ts).
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';

export type CallTimes = Record<string, number[]>;

/** Durations by label; `take()` returns what was recorded and starts again. */
function recorder() {
  let times: CallTimes = {};
  return {
    async time<T>(label: string, call: () => Promise<T>): Promise<T> {
      const started = performance.now();
      try {
        return await call();
      } finally {
        const list = times[label] ?? [];
        list.push(performance.now() - started);
        times[label] = list;
      }
    },
    take(): CallTimes {
      const taken = times;
      times = {};
      return taken;
    },
  };
}

/**
 * Records each query's duration under its first words before any parenthesis (`INSERT INTO predictions`,
 * `SELECT allocate_prediction_ts`).
 */
export function timeQueries(pool: pg.Pool): { take(): CallTimes } {
  const times = recorder();
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: typeof query }).query = (...args) => {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
    const label = text.trim().split('(')[0]!.trim().split(/\s+/).slice(0, 3).join(' ');
    return times.time(label, () => query(...args));
  };
  return times;
}

/** Records each SQS command's duration under its name (e.g. `SendMessageBatchCommand`). */
export function timeSqsCalls(client: SQSClient): { take(): CallTimes } {
  const times = recorder();
  client.middlewareStack.add(
    (next, context) => (args) => times.time(context.commandName ?? 'unknown', () => next(args)),
    { step: 'initialize', name: 'benchSqsCallTimer' },
  );
  return times;
}

/** The median of a list of durations, 0 when empty. */
export function median(durations: number[] | undefined): number {
  if (!durations?.length) return 0;
  const sorted = [...durations].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
