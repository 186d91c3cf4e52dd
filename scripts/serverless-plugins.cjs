// serverless.yml's plugin list, chosen by the command so that nothing in the environment changes
// what ships: `serverless offline` (npm start) runs the handlers npm start compiled (scripts/local/handlers.ts)
// or, alone, the TypeScript as it is, and every other
// command (package, deploy, deploy function, invoke local) bundles them with esbuild. serverless-esbuild
// must not load for offline: it would bundle there too and serve the bundles instead of the sources.
// osls takes the command from the words before the first option (`serverless offline start --stage x`).
// deploy-check refuses a deploy that misses a required setting; serverless-vpc puts the functions in
// the VPC the environment names, if any; serverless-iam-roles-per-function
// gives each function a role of its own (its iamRoleStatements) instead of one role for all, and
// drop-shared-role then removes the shared role it leaves behind unused; function-alarms watches every
// function's errors and throttles. offline-gateway makes the
// local API answer like API Gateway (a failed or timed-out function is a 5xx in the API's error shape).
const offline = process.argv[2] === 'offline';

module.exports.plugins = () => [
  './scripts/deploy-check.cjs',
  './scripts/serverless-vpc.cjs',
  'serverless-iam-roles-per-function',
  './scripts/drop-shared-role.cjs',
  './scripts/function-alarms.cjs',
  ...(offline ? [] : ['serverless-esbuild']),
  'serverless-offline',
  './scripts/local/offline-gateway.cjs',
];
