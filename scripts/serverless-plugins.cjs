// serverless.yml's plugin list: serverless-offline always; serverless-esbuild only when bundling
// (SLS_BUNDLE=1), because offline runs the .ts handlers directly.
module.exports.plugins = () =>
  process.env.SLS_BUNDLE === '1' ? ['serverless-esbuild', 'serverless-offline'] : ['serverless-offline'];
