// serverless.yml's plugin list: serverless-offline and its API Gateway companion
// (scripts/local/offline-gateway.cjs) always; serverless-esbuild only when bundling (SLS_BUNDLE=1),
// because offline runs the .ts handlers directly.
const offline = ['serverless-offline', './scripts/local/offline-gateway.cjs'];
module.exports.plugins = () => (process.env.SLS_BUNDLE === '1' ? ['serverless-esbuild', ...offline] : offline);
