import axios, { type AxiosInstance, type AxiosResponse, isAxiosError } from 'axios';
import { config } from '#shared/config';
import { redactedCause } from '#shared/errors';
import type { PredictionMessage } from '#shared/messages';

/**
 * ThingsBoard: device telemetry (device access token, no login) and the tenant REST API used to
 * provision the device and the dashboard. Behaviour follows ../shared/contracts/thingsboard.md:
 * the device API answers 500 both for "retry later" (empty body) and "this payload is wrong"
 * (the parser's message), so every outcome is classified here once.
 */

export const THINGSBOARD_DEVICE_NAME = 'HubFólio Predictions';
export const PROVISION_COMMAND = 'npm run thingsboard:provision';

const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_PING_TIMEOUT_MS = 2_000;
const MAX_REASON_CHARS = 500;

// ---------------------------------------------------------------------------------------------
// Mapping: prediction message → telemetry point
// ---------------------------------------------------------------------------------------------

export type TelemetryValue = string | number | boolean | null;

/** One data point of ThingsBoard's `{ts, values}` shape; `ts` in milliseconds. */
export interface TelemetryPoint {
  ts: number;
  values: Record<string, TelemetryValue>;
}

type Classification = PredictionMessage['classification'];

/**
 * A pie cannot aggregate a string key, so each prediction also carries a 0/1 indicator per class;
 * the dashboard sums them. Exported so that the dashboard names the same keys.
 */
export const CLASS_INDICATOR_KEYS = {
  Excelente: 'class_excelente',
  Bom: 'class_bom',
  Regular: 'class_regular',
  Insuficiente: 'class_insuficiente',
} as const satisfies Record<Classification, string>;

/**
 * MLflow versions are decimal integers ("3"). ThingsBoard's default `type_cast_enabled` stores a
 * numeric-looking string as a number anyway, so `model_version` is sent as a JSON number on
 * purpose: the stored type (LONG) is then the same whatever that server setting is, the table
 * shows "3" as everywhere else, and a chart of model_version shows when a promotion reached
 * predictions. A version that is not a plain integer (another registry) stays a string.
 */
function modelVersionValue(version: string): number | string {
  return /^(0|[1-9]\d{0,14})$/.test(version) ? Number(version) : version;
}

/**
 * The point a queued prediction becomes. `ts` is the prediction's own timestamp, so a re-send
 * overwrites the same (device, key, ts) instead of adding a point. A null `portfolio_id` is
 * sent as null, which ThingsBoard skips (no point for that key).
 */
export function toTelemetryPoint(msg: PredictionMessage): TelemetryPoint {
  const indicators = Object.fromEntries(
    Object.entries(CLASS_INDICATOR_KEYS).map(([cls, key]) => [key, cls === msg.classification ? 1 : 0]),
  );
  return {
    ts: msg.ts,
    values: {
      predicted_iq: msg.predicted_iq,
      portfolio_id: msg.portfolio_id,
      model_name: msg.model_name,
      classification: msg.classification,
      user_id: msg.user_id,
      prediction_id: msg.prediction_id,
      model_version: modelVersionValue(msg.model_version),
      ...indicators,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Device telemetry
// ---------------------------------------------------------------------------------------------

/**
 * What one telemetry request came to:
 * - `transient`: retry later, as is (empty 500 = rate limit or queue failure, 408, 429, 502–504, timeouts, network);
 * - `permanent`: this payload is wrong (500 with the parser's message, 400): do not retry it as is;
 * - `configuration`: nothing will work until someone fixes the token or URL — surface it loudly;
 * - `too_large`: 413, split the batch.
 */
export type SendOutcome =
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

export type PingResult =
  | { reachable: true; status: number; latencyMs: number }
  | { reachable: false; reason: string };

export interface ThingsBoardClientOptions {
  /** Base URL, e.g. http://localhost:8080; undefined = not configured. */
  url: string | undefined;
  /** The device's access token; undefined = not provisioned. */
  deviceToken: string | undefined;
  timeoutMs?: number;
  pingTimeoutMs?: number;
}

export interface ThingsBoardClient {
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

function truncate(text: string): string {
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
      ? { kind: 'transient', status, reason: 'ThingsBoard answered 500 with an empty body (rate limit or queue failure)' }
      : { kind: 'permanent', status, reason: `ThingsBoard could not parse the payload (500): ${truncate(body)}` };
  }
  if (status === 408 || status === 429 || status >= 500) {
    return { kind: 'transient', status, reason: `ThingsBoard answered ${status}` };
  }
  if (status === 400) {
    return { kind: 'permanent', status, reason: `ThingsBoard refused the payload (400)${body ? `: ${truncate(body)}` : ''}` };
  }
  if ((status >= 300 && status < 400) || status === 403 || status === 404 || status === 405) {
    // Not an answer the device API gives: the URL points elsewhere (wrong port or path, http→https redirect).
    const location = response.headers['location'];
    return {
      kind: 'configuration',
      status,
      reason:
        `ThingsBoard's device API at ${baseUrl} answered ${status}${location ? ` (redirect to ${String(location)})` : ''}: ` +
        'THINGSBOARD_URL does not point at ThingsBoard\'s HTTP port (e.g. http://localhost:8080)',
    };
  }
  return { kind: 'permanent', status, reason: `ThingsBoard answered ${status}${body ? `: ${truncate(body)}` : ''}` };
}

function classifyNetworkError(error: unknown, baseUrl: string, timeoutMs: number): Exclude<SendOutcome, { kind: 'ok' }> {
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

function trimSlash(url: string): string {
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

  async function sendTelemetry(points: readonly TelemetryPoint[]): Promise<SendOutcome> {
    if (points.length === 0) return { kind: 'ok' };
    if (!baseUrl) {
      return { kind: 'configuration', reason: 'THINGSBOARD_URL is not set: set it to ThingsBoard\'s address, e.g. http://localhost:8080' };
    }
    if (!options.deviceToken) {
      return { kind: 'configuration', reason: `THINGSBOARD_DEVICE_TOKEN is not set: ${tokenFix}` };
    }
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
              outcome.kind === 'too_large' ? 'the point alone exceeds ThingsBoard\'s payload limit (413)' : outcome.reason;
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

  return { sendTelemetry, deliverPoints, ping };
}

let containerClient: ThingsBoardClient | undefined;

/** The container's telemetry client, built from THINGSBOARD_URL / THINGSBOARD_DEVICE_TOKEN on first use. */
export function thingsBoard(): ThingsBoardClient {
  if (!containerClient) {
    const { THINGSBOARD_URL, THINGSBOARD_DEVICE_TOKEN } = config();
    containerClient = createThingsBoardClient({ url: THINGSBOARD_URL, deviceToken: THINGSBOARD_DEVICE_TOKEN });
  }
  return containerClient;
}

// ---------------------------------------------------------------------------------------------
// REST API (tenant administrator) for provisioning
// ---------------------------------------------------------------------------------------------

export interface EntityId {
  entityType: string;
  id: string;
}

export interface Device {
  id: EntityId;
  name: string;
  type: string;
  label?: string | null;
  [field: string]: unknown;
}

export interface DashboardInfo {
  id: EntityId;
  title: string;
  createdTime?: number;
  [field: string]: unknown;
}

export interface Dashboard {
  id?: EntityId;
  title: string;
  configuration: Record<string, unknown>;
  version?: number | null;
  [field: string]: unknown;
}

interface PageData<T> {
  data: T[];
  totalPages: number;
  totalElements: number;
  hasNext: boolean;
}

/** ThingsBoard's error codes (ThingsBoardErrorCode) that the client acts on. */
export const TB_ERROR = {
  AUTHENTICATION: 10,
  JWT_TOKEN_EXPIRED: 11,
  PERMISSION_DENIED: 20,
  BAD_REQUEST_PARAMS: 31,
  ITEM_NOT_FOUND: 32,
} as const;

/** A REST API call that failed; `status` is undefined when no HTTP answer came. */
export class ThingsBoardApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly errorCode: number | undefined,
    /** ThingsBoard's own message, when it gave one. */
    readonly tbMessage: string | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = 'ThingsBoardApiError';
  }
}

export interface ThingsBoardAdminOptions {
  url: string;
  username: string;
  password: string;
  timeoutMs?: number;
}

interface TbErrorBody {
  message?: unknown;
  errorCode?: unknown;
}

export class ThingsBoardAdmin {
  private readonly http: AxiosInstance;
  private readonly baseUrl: string;
  private jwt: Promise<string> | undefined;

  constructor(private readonly options: ThingsBoardAdminOptions) {
    this.baseUrl = trimSlash(options.url);
    this.http = axios.create({
      baseURL: this.baseUrl,
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxRedirects: 0,
      validateStatus: () => true,
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    });
  }

  /** Logs in (again) and keeps the JWT for the following calls. */
  async login(): Promise<void> {
    this.jwt = undefined;
    await this.token();
  }

  /** The device with that exact name, or null. */
  async findDevice(name: string): Promise<Device | null> {
    try {
      return await this.request<Device>('GET', '/api/tenant/devices', { params: { deviceName: name } });
    } catch (error) {
      if (error instanceof ThingsBoardApiError && error.status === 404) return null;
      throw error;
    }
  }

  async createDevice(device: { name: string; type?: string; label?: string }): Promise<Device> {
    return this.request<Device>('POST', '/api/device', { data: { type: 'default', ...device } });
  }

  /** Race-safe: if another process creates the device between our look-up and our create, use theirs. */
  async getOrCreateDevice(device: { name: string; type?: string; label?: string }): Promise<{ device: Device; created: boolean }> {
    const existing = await this.findDevice(device.name);
    if (existing) return { device: existing, created: false };
    try {
      return { device: await this.createDevice(device), created: true };
    } catch (error) {
      const duplicate =
        error instanceof ThingsBoardApiError && error.status === 400 && /already exists/i.test(error.tbMessage ?? '');
      if (!duplicate) throw error;
      const winner = await this.findDevice(device.name);
      if (!winner) throw error;
      return { device: winner, created: false };
    }
  }

  /** The device's access token (what the device API takes in its URL). */
  async getDeviceToken(deviceId: string): Promise<string> {
    const credentials = await this.request<{ credentialsType?: string; credentialsId?: string }>(
      'GET',
      `/api/device/${encodeURIComponent(deviceId)}/credentials`,
    );
    if (credentials.credentialsType !== 'ACCESS_TOKEN' || !credentials.credentialsId) {
      throw new ThingsBoardApiError(
        `Device ${deviceId} uses ${credentials.credentialsType ?? 'unknown'} credentials; HTTP telemetry needs an access token. ` +
          'Change the device credentials to "Access token" in ThingsBoard.',
        undefined,
        undefined,
        undefined,
      );
    }
    return credentials.credentialsId;
  }

  /**
   * The dashboard with exactly this title (the oldest, if several have it). ThingsBoard's
   * `textSearch` is a case-insensitive substring match, so every page is filtered here.
   */
  async findDashboardByTitle(title: string): Promise<DashboardInfo | null> {
    const matches: DashboardInfo[] = [];
    for (let page = 0; ; page += 1) {
      const result = await this.request<PageData<DashboardInfo>>('GET', '/api/tenant/dashboards', {
        params: { pageSize: 100, page, textSearch: title },
      });
      matches.push(...result.data.filter((dashboard) => dashboard.title === title));
      if (!result.hasNext) break;
    }
    matches.sort((a, b) => (a.createdTime ?? 0) - (b.createdTime ?? 0));
    return matches[0] ?? null;
  }

  /** Creates (no `id`) or overwrites (with `id`, without `version`) a dashboard. */
  async saveDashboard(dashboard: Dashboard): Promise<Dashboard> {
    return this.request<Dashboard>('POST', '/api/dashboard', { data: dashboard });
  }

  async getDashboard(dashboardId: string): Promise<Dashboard> {
    return this.request<Dashboard>('GET', `/api/dashboard/${encodeURIComponent(dashboardId)}`);
  }

  private async fetchToken(): Promise<string> {
    const response = await this.send('POST', '/api/auth/login', {
      data: { username: this.options.username, password: this.options.password },
    });
    if (response.status === 401) {
      const { tbMessage, errorCode } = errorDetails(response);
      throw new ThingsBoardApiError(
        `ThingsBoard at ${this.baseUrl} rejected the credentials of ${this.options.username} ` +
          `(401${errorCode !== undefined ? ` errorCode ${errorCode}` : ''}: ${tbMessage ?? 'unauthorized'}). ` +
          'Set THINGSBOARD_USERNAME and THINGSBOARD_PASSWORD to a tenant administrator account; the demo account ' +
          'tenant@thingsboard.org / tenant exists only when ThingsBoard was installed with demo data (LOAD_DEMO=true).',
        401,
        errorCode,
        tbMessage,
      );
    }
    const body = this.unwrap<{ token?: unknown }>('POST', '/api/auth/login', response);
    if (typeof body.token !== 'string') {
      throw new ThingsBoardApiError(
        `ThingsBoard at ${this.baseUrl} answered the login without a token: is THINGSBOARD_URL ThingsBoard?`,
        response.status,
        undefined,
        undefined,
      );
    }
    return body.token;
  }

  private async request<T>(method: 'GET' | 'POST', path: string, init: ApiCall = {}): Promise<T> {
    const used = this.token();
    let response = await this.send(method, path, init, await used);
    if (response.status === 401 && errorDetails(response).errorCode === TB_ERROR.JWT_TOKEN_EXPIRED) {
      // The JWT lives 2.5 h: log in once more (one login shared by concurrent callers) and repeat the call.
      if (this.jwt === used) this.jwt = undefined;
      response = await this.send(method, path, init, await this.token());
    }
    return this.unwrap<T>(method, path, response);
  }

  /** The current JWT, logging in when there is none; a failed login is forgotten so the next call tries again. */
  private token(): Promise<string> {
    if (!this.jwt) {
      const attempt = this.fetchToken();
      this.jwt = attempt;
      attempt.catch(() => {
        if (this.jwt === attempt) this.jwt = undefined;
      });
    }
    return this.jwt;
  }

  private async send(method: 'GET' | 'POST', path: string, init: ApiCall, jwt?: string): Promise<AxiosResponse> {
    try {
      return await this.http.request({
        method,
        url: path,
        params: init.params,
        data: init.data,
        headers: jwt ? { 'X-Authorization': `Bearer ${jwt}` } : {},
      });
    } catch (error) {
      const code = isAxiosError(error) ? error.code : undefined;
      const detail =
        code === 'ECONNABORTED' || code === 'ETIMEDOUT'
          ? 'no answer in time'
          : (code ?? (error instanceof Error ? error.message : String(error)));
      throw new ThingsBoardApiError(
        `Cannot reach ThingsBoard at ${this.baseUrl} (${detail}). Is it running, and is THINGSBOARD_URL right ` +
          '(default http://localhost:8080)? A fresh ThingsBoard takes a few minutes to start.',
        undefined,
        undefined,
        undefined,
        { cause: redactedCause(error) },
      );
    }
  }

  private unwrap<T>(method: string, path: string, response: AxiosResponse): T {
    if (response.status >= 200 && response.status < 300) {
      if (response.data !== null && typeof response.data === 'object') return response.data as T;
      throw new ThingsBoardApiError(
        `${method} ${path} at ${this.baseUrl} did not answer JSON: is THINGSBOARD_URL ThingsBoard's address?`,
        response.status,
        undefined,
        undefined,
      );
    }
    const { tbMessage, errorCode } = errorDetails(response);
    const what = `${response.status}${errorCode !== undefined ? ` errorCode ${errorCode}` : ''}: ${tbMessage ?? 'no message'}`;
    if (response.status === 403) {
      throw new ThingsBoardApiError(
        `ThingsBoard refused ${method} ${path} for ${this.options.username} (${what}). Devices and dashboards need a ` +
          'tenant administrator; the system administrator (sysadmin@thingsboard.org) gets 403 here. ' +
          'Use a tenant account such as tenant@thingsboard.org (THINGSBOARD_USERNAME / THINGSBOARD_PASSWORD).',
        403,
        errorCode,
        tbMessage,
      );
    }
    throw new ThingsBoardApiError(`ThingsBoard ${method} ${path} failed (${what})`, response.status, errorCode, tbMessage);
  }
}

interface ApiCall {
  params?: Record<string, string | number>;
  data?: unknown;
}

function errorDetails(response: AxiosResponse): { tbMessage: string | undefined; errorCode: number | undefined } {
  const body: unknown = response.data;
  if (body && typeof body === 'object') {
    const { message, errorCode } = body as TbErrorBody;
    return {
      tbMessage: typeof message === 'string' ? message : undefined,
      errorCode: typeof errorCode === 'number' ? errorCode : undefined,
    };
  }
  return { tbMessage: typeof body === 'string' && body.trim() ? truncate(body.trim()) : undefined, errorCode: undefined };
}
