/**
 * ThingsBoard's device API: telemetry with the device's access token (no login), and a ping for
 * health checks. Behaviour follows ../shared/contracts/thingsboard.md: the device API answers 500
 * both for "retry later" (empty body) and "this payload is wrong" (the parser's message), so every
 * outcome is classified here once. Provisioning the device (tenant REST API) is scripts/thingsboard/.
 */
import axios, { type AxiosInstance, type AxiosResponse, isAxiosError } from 'axios';
import { config } from '#shared/config';
import { deviceToken } from '#shared/secrets';
import type { TelemetryPoint } from '#telemetry/points';

/** The device the functions send to; provisioning finds or creates it by this name. */
export const THINGSBOARD_DEVICE_NAME = 'HubFólio Predictions';
const PROVISION_COMMAND = 'npm run thingsboard:provision';

/** Also the tenant REST API's timeout (scripts/thingsboard/admin.ts). */
export const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_PING_TIMEOUT_MS = 2_000;
const MAX_REASON_CHARS = 500;

/**
 * What one telemetry request came to:
 * - `transient`: retry later, as is (empty 500 = rate limit or queue failure, 408, 429, 502–504, timeouts, network);
 * - `permanent`: this payload is wrong (500 with the parser's message, 400): do not retry it as is;
 * - `configuration`: nothing will work until someone fixes the token or URL — surface it loudly;
 * - `too_large`: 413, split the batch.
 */
type SendOutcome =
  | { kind: 'ok' }
  | { kind: 'transient'; reason: string; status?: number }
  | { kind: 'permanent'; reason: string; status: number }
  | { kind: 'configuration'; reason: string; status?: number }
  | { kind: 'too_large'; reason: string; status: 413 };

/** Per-point result of {@link ThingsBoardClient.deliverPoints}; holds the very objects passed in. */
export interface DeliveryReport {
  delivered: TelemetryPoint[];
  transient: TelemetryPoint[];
  permanent: Array<{ point: TelemetryPoint; reason: string }>;
  /** Set when ThingsBoard refused the token or the URL is wrong; `points` were not delivered. */
  configuration?: { reason: string; points: TelemetryPoint[] };
  /** HTTP requests made (1 in the normal case). */
  requests: number;
}

type PingResult = { reachable: true; status: number; latencyMs: number } | { reachable: false; reason: string };

export interface ThingsBoardClientOptions {
  /** Base URL, e.g. http://localhost:8080; undefined = not configured. */
  url: string | undefined;
  /** The device's access token; undefined = not provisioned. */
  deviceToken: string | undefined;
  timeoutMs?: number;
  pingTimeoutMs?: number;
}

export interface ThingsBoardClient {
  /** Why nothing can be sent at all (THINGSBOARD_URL or THINGSBOARD_DEVICE_TOKEN unset); undefined when configured. */
  readonly missingConfiguration: string | undefined;
  /** One POST of all points; never throws. */
  sendTelemetry(points: readonly TelemetryPoint[]): Promise<SendOutcome>;
  /**
   * Sends all points in one request and, only when that fails in a way splitting can fix, splits:
   * halves on 413, bisects a batch answered `permanent` so that good points still go through and
   * each poison point is isolated. After a transient or configuration answer, nothing more is sent.
   */
  deliverPoints(points: readonly TelemetryPoint[]): Promise<DeliveryReport>;
  /** Whether ThingsBoard's HTTP server answers, for health checks; never throws. */
  ping(): Promise<PingResult>;
}

const tokenFix =
  `run \`${PROVISION_COMMAND}\` (it finds or creates the device "${THINGSBOARD_DEVICE_NAME}" and writes its token to ` +
  `.local/thingsboard.env), or set THINGSBOARD_DEVICE_TOKEN to that device's access token (ThingsBoard → Devices → ` +
  `${THINGSBOARD_DEVICE_NAME} → Copy access token)`;

/** ThingsBoard's own text, cut to a length fit for a log line or an error message. */
export function truncate(text: string): string {
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text;
}

function classifyResponse(response: AxiosResponse<string>, baseUrl: string): SendOutcome {
  const { status } = response;
  const body = typeof response.data === 'string' ? response.data.trim() : '';
  if (status >= 200 && status < 300) return { kind: 'ok' };
  if (status === 401) {
    return {
      kind: 'configuration',
      status,
      reason: `ThingsBoard at ${baseUrl} rejected the device token (401): THINGSBOARD_DEVICE_TOKEN is wrong or the device was deleted; ${tokenFix}.`,
    };
  }
  if (status === 413) {
    return { kind: 'too_large', status, reason: 'ThingsBoard refused the request body as too large (413)' };
  }
  if (status === 500) {
    return body === ''
      ? {
          kind: 'transient',
          status,
          reason: 'ThingsBoard answered 500 with an empty body (rate limit or queue failure)',
        }
      : { kind: 'permanent', status, reason: `ThingsBoard could not parse the payload (500): ${truncate(body)}` };
  }
  if (status === 408 || status === 429 || status >= 500) {
    return { kind: 'transient', status, reason: `ThingsBoard answered ${status}` };
  }
  if (status === 400) {
    return {
      kind: 'permanent',
      status,
      reason: `ThingsBoard refused the payload (400)${body ? `: ${truncate(body)}` : ''}`,
    };
  }
  if ((status >= 300 && status < 400) || status === 403 || status === 404 || status === 405) {
    // Not an answer the device API gives: the URL points elsewhere (wrong port or path, http→https redirect).
    const location = response.headers['location'];
    return {
      kind: 'configuration',
      status,
      reason:
        `ThingsBoard's device API at ${baseUrl} answered ${status}${location ? ` (redirect to ${String(location)})` : ''}: ` +
        "THINGSBOARD_URL does not point at ThingsBoard's HTTP port (e.g. http://localhost:8080)",
    };
  }
  return { kind: 'permanent', status, reason: `ThingsBoard answered ${status}${body ? `: ${truncate(body)}` : ''}` };
}

function classifyNetworkError(
  error: unknown,
  baseUrl: string,
  timeoutMs: number,
): Exclude<SendOutcome, { kind: 'ok' }> {
  const code = isAxiosError(error) ? error.code : undefined;
  if (code === 'ERR_INVALID_URL') {
    return { kind: 'configuration', reason: `THINGSBOARD_URL "${baseUrl}" is not a valid URL` };
  }
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return { kind: 'transient', reason: `ThingsBoard at ${baseUrl} did not answer within ${timeoutMs} ms` };
  }
  const detail = code ?? (error instanceof Error ? error.message : String(error));
  return { kind: 'transient', reason: `Cannot reach ThingsBoard at ${baseUrl} (${detail})` };
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export function createThingsBoardClient(options: ThingsBoardClientOptions): ThingsBoardClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const pingTimeoutMs = options.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
  const baseUrl = options.url ? trimSlash(options.url) : undefined;
  const http: AxiosInstance = axios.create({
    baseURL: baseUrl,
    timeout: timeoutMs,
    maxRedirects: 0, // a redirect means THINGSBOARD_URL is wrong; following it would turn the POST into a GET
    responseType: 'text',
    transformResponse: [(data: unknown) => data], // keep the raw body: empty vs. non-empty decides the class
    validateStatus: () => true,
    headers: { 'Content-Type': 'application/json' },
  });

  const missingConfiguration = !baseUrl
    ? "THINGSBOARD_URL is not set: set it to ThingsBoard's address, e.g. http://localhost:8080"
    : !options.deviceToken
      ? `THINGSBOARD_DEVICE_TOKEN is not set: ${tokenFix}`
      : undefined;

  async function sendTelemetry(points: readonly TelemetryPoint[]): Promise<SendOutcome> {
    if (points.length === 0) return { kind: 'ok' };
    if (!baseUrl || !options.deviceToken) return { kind: 'configuration', reason: missingConfiguration! };
    try {
      const response = await http.post<string>(
        `/api/v1/${encodeURIComponent(options.deviceToken)}/telemetry`,
        JSON.stringify(points),
      );
      return classifyResponse(response, baseUrl);
    } catch (error) {
      return classifyNetworkError(error, baseUrl, timeoutMs);
    }
  }

  async function deliverPoints(points: readonly TelemetryPoint[]): Promise<DeliveryReport> {
    const report: DeliveryReport = { delivered: [], transient: [], permanent: [], requests: 0 };
    let stopped: 'transient' | 'configuration' | undefined;

    const deliver = async (batch: readonly TelemetryPoint[]): Promise<void> => {
      if (batch.length === 0) return;
      if (stopped === 'transient') return void report.transient.push(...batch);
      if (stopped === 'configuration') return void report.configuration?.points.push(...batch);
      const outcome = await sendTelemetry(batch);
      report.requests += 1;
      switch (outcome.kind) {
        case 'ok':
          report.delivered.push(...batch);
          return;
        case 'transient':
          // The server is failing or throttling: more requests now would only add to it.
          stopped = 'transient';
          report.transient.push(...batch);
          return;
        case 'configuration':
          stopped = 'configuration';
          report.configuration = { reason: outcome.reason, points: [...batch] };
          return;
        case 'too_large':
        case 'permanent': {
          const [only] = batch;
          if (batch.length === 1 && only) {
            const reason =
              outcome.kind === 'too_large'
                ? "the point alone exceeds ThingsBoard's payload limit (413)"
                : outcome.reason;
            report.permanent.push({ point: only, reason });
            return;
          }
          const middle = Math.ceil(batch.length / 2);
          await deliver(batch.slice(0, middle));
          await deliver(batch.slice(middle));
          return;
        }
      }
    };

    await deliver(points);
    return report;
  }

  async function ping(): Promise<PingResult> {
    if (!baseUrl) return { reachable: false, reason: 'THINGSBOARD_URL is not set' };
    const started = performance.now();
    try {
      // Without a token, ThingsBoard's security filter answers 401 at once (no database work):
      // any HTTP answer from it proves the server is up. 502–504 come from a proxy in front of it.
      const response = await http.get('/api/auth/user', { timeout: pingTimeoutMs });
      if (response.status >= 502 && response.status <= 504) {
        return { reachable: false, reason: `a gateway in front of ThingsBoard answered ${response.status}` };
      }
      return { reachable: true, status: response.status, latencyMs: Math.round(performance.now() - started) };
    } catch (error) {
      return { reachable: false, reason: classifyNetworkError(error, baseUrl, pingTimeoutMs).reason };
    }
  }

  return { missingConfiguration, sendTelemetry, deliverPoints, ping };
}

let containerClient: ThingsBoardClient | undefined;

/** The container's telemetry client, built from THINGSBOARD_URL and the device token (shared/secrets.ts) on first use. */
export function thingsBoard(): ThingsBoardClient {
  if (!containerClient) {
    containerClient = createThingsBoardClient({ url: config().THINGSBOARD_URL, deviceToken: deviceToken() });
  }
  return containerClient;
}
