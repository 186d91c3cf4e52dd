/** The `q` quantile of durations sorted in ascending order (0 when there are none). */
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

const ascending = (durationsMs: number[]) => [...durationsMs].sort((a, b) => a - b);

/** The median of a list of durations, 0 when it is empty. */
export const median = (durationsMs: number[] = []) => quantile(ascending(durationsMs), 0.5);

/** Latency summary of a list of durations in milliseconds. */
export function summarize(durationsMs: number[], wallMs: number, cpuMicros?: number) {
  const sorted = ascending(durationsMs);
  return {
    n: sorted.length,
    p50: round(quantile(sorted, 0.5)),
    p99: round(quantile(sorted, 0.99)),
    perSecond: Math.round((sorted.length / wallMs) * 1000),
    // CPU time of this process (user + system) per call: what the code under test costs itself,
    // apart from PostgreSQL and the emulators, which run in processes of their own.
    ...(cpuMicros === undefined ? {} : { cpuMsPerCall: round(cpuMicros / 1000 / sorted.length, 3) }),
  };
}

const cpuMicrosSince = (start: NodeJS.CpuUsage) => {
  const { user, system } = process.cpuUsage(start);
  return user + system;
};

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Runs `task` `total` times with `concurrency` callers at once; returns each call's duration. */
export async function measure(total: number, concurrency: number, task: (i: number) => Promise<unknown>) {
  const durations: number[] = [];
  let next = 0;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        await task(i);
        durations.push(performance.now() - t0);
      }
    }),
  );
  return summarize(durations, performance.now() - started, cpuMicrosSince(cpuStart));
}

/**
 * Measures several tasks in alternating rounds, so that each sees the same machine: on a shared
 * 2-core machine the background load drifts, and back-to-back blocks would compare different moments.
 */
export async function measureAlternating<K extends string>(
  rounds: number,
  perRound: number,
  concurrency: number,
  tasks: Record<K, (i: number) => Promise<unknown>>,
): Promise<Record<K, ReturnType<typeof summarize>>> {
  const names = Object.keys(tasks) as K[];
  const durations = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  const wall = Object.fromEntries(names.map((n) => [n, 0])) as Record<K, number>;
  const cpu = Object.fromEntries(names.map((n) => [n, 0])) as Record<K, number>;
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const started = performance.now();
      const cpuStart = process.cpuUsage();
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < perRound) {
            const i = next++;
            const t0 = performance.now();
            await tasks[name](i);
            durations[name].push(performance.now() - t0);
          }
        }),
      );
      wall[name] += performance.now() - started;
      cpu[name] += cpuMicrosSince(cpuStart);
    }
  }
  return Object.fromEntries(names.map((n) => [n, summarize(durations[n], wall[n], cpu[n])])) as Record<
    K,
    ReturnType<typeof summarize>
  >;
}
