/**
 * One cold start, measured in a fresh Node process: import the bundled predict handler (module
 * init, as Lambda's init phase does), then the first invocation (serving model fetched from S3 and
 * loaded into ONNX Runtime, first prediction, first INSERT and SendMessage). Prints JSON.
 * Usage: node bench/cold-start.mjs <bundled handler> <JSON request body>
 */
import { createRequire } from 'node:module';

const bundle = process.argv[2];
const t0 = performance.now();
const { handler } = createRequire(import.meta.url)(bundle);
const t1 = performance.now();
const event = {
  version: '2.0',
  rawPath: '/predict',
  headers: { 'content-type': 'application/json' },
  requestContext: { http: { method: 'POST', path: '/predict' } },
  isBase64Encoded: false,
  body: process.argv[3], // the seed example, from bench/run.ts
};
const context = { functionName: 'predict', awsRequestId: 'cold', getRemainingTimeInMillis: () => 10_000 };
const result = await handler(event, context);
const t2 = performance.now();
if (result.statusCode !== 200) throw new Error(`cold start invocation answered ${result.statusCode}: ${result.body}`);
console.log(JSON.stringify({ initMs: t1 - t0, firstInvocationMs: t2 - t1, totalMs: t2 - t0 }));
process.exit(0);
