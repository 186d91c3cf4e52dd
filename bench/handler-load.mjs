/**
 * What serverless-offline's in-process runner spends on every invocation before the handler runs:
 * its `load()` (aws-lambda-ric's UserFunction.js) checks the handler's files, reads the nearest
 * package.json and import()s the module again. Measured for the compiled handler `npm start` serves
 * (argv[2]: its folder) and for the .ts source through tsx's loader, the way serverless-offline
 * loads it without that folder. The compiled one goes first: tsx's loader, once registered, stays.
 * Prints JSON: microseconds of CPU (all threads) and of wall time per call.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
// Not among serverless-offline's exports: the file itself.
const { load } = require(
  resolve(
    root,
    'node_modules/serverless-offline/src/lambda/handler-runner/in-process-runner/aws-lambda-ric/UserFunction.js',
  ),
);
const HANDLER = 'functions/predict/handler.handler';
const CALLS = 2000;

async function perCall(appRoot) {
  for (let i = 0; i < 100; i++) await load(appRoot, HANDLER);
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < CALLS; i++) await load(appRoot, HANDLER);
  const { user, system } = process.cpuUsage(cpu);
  return {
    cpuMicros: Math.round((user + system) / CALLS),
    wallMicros: Math.round(((performance.now() - started) * 1000) / CALLS),
  };
}

const compiled = await perCall(resolve(root, process.argv[2]));
const typescript = await perCall(root);
console.log(JSON.stringify({ compiled, typescript }));
process.exit(0);
