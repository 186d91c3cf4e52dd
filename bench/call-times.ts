/**
 * Wall time of the statements a handler runs, taken on the handlers' own pool, so that the benchmark
 * can say where a request's time goes (bench/report.ts; its SQS calls are timed by sqs-requests.ts).
 */
import type pg from 'pg';

export type CallTimes = Record<string, number[]>;

/**
 * Records each query's duration under its first words before any parenthesis (`INSERT INTO predictions`,
 * `SELECT allocate_prediction_ts`); `take()` returns what was recorded and starts again.
 */
export function timeQueries(pool: pg.Pool): { take(): CallTimes } {
  let times: CallTimes = {};
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: typeof query }).query = async (...args) => {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
    const label = text.trim().split('(')[0]!.trim().split(/\s+/).slice(0, 3).join(' ');
    const durations = times[label] ?? [];
    times[label] = durations;
    const started = performance.now();
    try {
      return await query(...args);
    } finally {
      durations.push(performance.now() - started);
    }
  };
  return {
    take() {
      const taken = times;
      times = {};
      return taken;
    },
  };
}
