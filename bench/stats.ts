/** Latency summary of a list of durations in milliseconds. */
export function summarize(durationsMs: number[], wallMs: number) {
  const sorted = [...durationsMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    n: sorted.length,
    p50: round(at(0.5)),
    p99: round(at(0.99)),
    perSecond: Math.round((sorted.length / wallMs) * 1000),
  };
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Runs `task` `total` times with `concurrency` callers at once; returns each call's duration. */
export async function measure(total: number, concurrency: number, task: (i: number) => Promise<unknown>) {
  const durations: number[] = [];
  let next = 0;
  const started = performance.now();
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
  return summarize(durations, performance.now() - started);
}
