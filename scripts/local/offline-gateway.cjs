/**
 * A serverless-offline companion (listed in serverless.yml's plugins) that makes its HTTP server
 * answer as API Gateway would, in this API's error shape:
 * - a function that fails or runs out of time is a 5xx, never a 200: serverless-offline 14 wraps
 *   the failure ({"errorMessage": "[504] - Lambda timeout.", "stackTrace": [...]}) of an HTTP API
 *   (payload 2.0) function in a 200 answer, with file paths in it;
 * - its own refusals (no such route, a body over its limit, its internal errors) answer
 *   {"detail": ...} like the functions do, with nothing internal in them;
 * - CORS headers go only to origins that provider.httpApi.cors allows: serverless-offline echoes
 *   any Origin on every answer but preflights.
 *
 * serverless-offline keeps its hapi server to itself, so the extension is added when hapi starts a
 * server on the HTTP port (the Lambda invoke port is left alone).
 */
'use strict';

const ROUTE_NOT_FOUND = 'Serverless-offline: route not found.';
const RETRY_AFTER_SECONDS = '5';

const json = (h, statusCode, body, headers = {}) => {
  const response = h.response(JSON.stringify(body)).code(statusCode).type('application/json; charset=utf-8');
  for (const [name, value] of Object.entries(headers)) response.header(name, value);
  return response;
};

/** A function's failure as serverless-offline reports it: the Lambda error object, as a string or an object. */
function lambdaFailure(source) {
  if (typeof source === 'string') {
    if (!source.startsWith('{"errorMessage":')) return undefined;
    try {
      return lambdaFailure(JSON.parse(source));
    } catch {
      return undefined;
    }
  }
  if (source && typeof source === 'object' && 'errorMessage' in source && 'stackTrace' in source) return source;
  return undefined;
}

/** What the client gets instead of serverless-offline's own answer, or undefined to keep it. */
function replacement(request, h) {
  const { response } = request;
  if (response.isBoom) {
    const { statusCode } = response.output;
    if (statusCode === 413) {
      return json(h, 413, {
        detail:
          'The request body is over the API limit. Send model files above 4 MB through POST /model/upload-url (a presigned upload).',
      });
    }
    return json(h, statusCode, { detail: statusCode >= 500 ? 'Internal server error' : response.message });
  }
  if (response.source && response.source.error === ROUTE_NOT_FOUND) {
    return json(h, 404, {
      detail: `No route ${request.method.toUpperCase()} ${request.path}; GET /openapi.json lists the routes.`,
    });
  }
  const failure = lambdaFailure(response.source);
  if (!failure) return undefined;
  if (/\[504\]/.test(String(failure.errorMessage))) {
    return json(
      h,
      504,
      { detail: 'The function did not answer within its timeout. It may or may not have taken effect; retry shortly.' },
      { 'retry-after': RETRY_AFTER_SECONDS },
    );
  }
  // A failure the function did not answer itself (it crashed or could not load), which
  // serverless-offline may have given any status, 200 included: an error that leaks nothing.
  const status = response.statusCode >= 400 ? response.statusCode : 500;
  return json(h, status, { detail: status < 500 ? 'Bad request' : 'Internal server error' });
}

const CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-expose-headers',
  'access-control-max-age',
];

/** Keeps CORS headers only for an allowed origin, as API Gateway does. */
function enforceCors(request, response, cors) {
  const origin = request.headers.origin;
  if (!origin) return;
  const headers = response.isBoom ? response.output.headers : response.headers;
  const allowed = cors && (cors.allowedOrigins.includes('*') || cors.allowedOrigins.includes(origin));
  if (!allowed) {
    for (const name of CORS_HEADERS) delete headers[name];
    // hapi adds its own CORS headers after this, from the route's settings (serverless-offline's
    // 404 route allows any origin), unless the request's origin is marked as not matching.
    request.info.cors = { isOriginMatch: false };
    return;
  }
  if (cors.allowCredentials !== true) delete headers['access-control-allow-credentials'];
}

/** The CORS policy of serverless.yml (provider.httpApi.cors), as serverless-offline reads it. */
function corsPolicy(serverless) {
  const cors = serverless.service.provider.httpApi?.cors;
  if (!cors) return undefined;
  if (cors === true) return { allowedOrigins: ['*'], allowCredentials: false };
  return { allowedOrigins: cors.allowedOrigins ?? [], allowCredentials: cors.allowCredentials === true };
}

class OfflineGateway {
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    const install = () => this.install();
    this.hooks = { 'before:offline:start': install, 'before:offline:start:init': install };
  }

  install() {
    if (this.installed) return;
    this.installed = true;
    const custom = this.serverless.service.custom?.['serverless-offline'] ?? {};
    const httpPort = Number(this.options.httpPort ?? custom.httpPort ?? 3000);
    const cors = corsPolicy(this.serverless);
    const onPreResponse = (request, h) => {
      const replaced = replacement(request, h);
      enforceCors(request, replaced ?? request.response, cors);
      return replaced ?? h.continue;
    };
    // hapi exports a factory; its servers share one prototype, reached through a throwaway instance.
    const hapi = require('@hapi/hapi');
    const prototype = Object.getPrototypeOf(hapi.server());
    const start = prototype.start;
    prototype.start = function startWithGateway(...args) {
      if (Number(this.settings.port) === httpPort) this.ext('onPreResponse', onPreResponse);
      return start.apply(this, args);
    };
  }
}

module.exports = OfflineGateway;
