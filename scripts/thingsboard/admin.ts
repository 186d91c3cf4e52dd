/**
 * ThingsBoard's tenant REST API (tenant administrator login), used by the scripts that provision
 * the device and the dashboard (./provision.ts). The functions only use the device API
 * (shared/clients/thingsboard/client.ts).
 */
import axios, { type AxiosInstance, type AxiosResponse, isAxiosError } from 'axios';
import { UpstreamError } from '#clients/errors';
import { DEFAULT_TIMEOUT_MS, trimSlash, truncate } from '#clients/thingsboard/client';
import { redactedCause } from '#http/errors';

interface EntityId {
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
const TB_ERROR = {
  AUTHENTICATION: 10,
  JWT_TOKEN_EXPIRED: 11,
  PERMISSION_DENIED: 20,
  BAD_REQUEST_PARAMS: 31,
  ITEM_NOT_FOUND: 32,
} as const;

interface ThingsBoardApiErrorDetails {
  status?: number;
  /** ThingsBoard's `errorCode` (see TB_ERROR). */
  errorCode?: number;
  tbMessage?: string;
  cause?: unknown;
}

/** A REST API call that failed; `status` is undefined when no HTTP answer came. */
class ThingsBoardApiError extends UpstreamError {
  /** ThingsBoard's own message, when it gave one. */
  readonly tbMessage: string | undefined;
  constructor(message: string, { tbMessage, ...details }: ThingsBoardApiErrorDetails = {}) {
    super(message, details);
    this.tbMessage = tbMessage;
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
  async getOrCreateDevice(device: {
    name: string;
    type?: string;
    label?: string;
  }): Promise<{ device: Device; created: boolean }> {
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
        { status: 401, errorCode, tbMessage },
      );
    }
    const body = this.unwrap<{ token?: unknown }>('POST', '/api/auth/login', response);
    if (typeof body.token !== 'string') {
      throw new ThingsBoardApiError(
        `ThingsBoard at ${this.baseUrl} answered the login without a token: is THINGSBOARD_URL ThingsBoard?`,
        { status: response.status },
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
        { cause: redactedCause(error) },
      );
    }
  }

  private unwrap<T>(method: string, path: string, response: AxiosResponse): T {
    if (response.status >= 200 && response.status < 300) {
      if (response.data !== null && typeof response.data === 'object') return response.data as T;
      throw new ThingsBoardApiError(
        `${method} ${path} at ${this.baseUrl} did not answer JSON: is THINGSBOARD_URL ThingsBoard's address?`,
        { status: response.status },
      );
    }
    const { tbMessage, errorCode } = errorDetails(response);
    const what = `${response.status}${errorCode !== undefined ? ` errorCode ${errorCode}` : ''}: ${tbMessage ?? 'no message'}`;
    if (response.status === 403) {
      throw new ThingsBoardApiError(
        `ThingsBoard refused ${method} ${path} for ${this.options.username} (${what}). Devices and dashboards need a ` +
          'tenant administrator; the system administrator (sysadmin@thingsboard.org) gets 403 here. ' +
          'Use a tenant account such as tenant@thingsboard.org (THINGSBOARD_USERNAME / THINGSBOARD_PASSWORD).',
        { status: 403, errorCode, tbMessage },
      );
    }
    throw new ThingsBoardApiError(`ThingsBoard ${method} ${path} failed (${what})`, {
      status: response.status,
      errorCode,
      tbMessage,
    });
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
  return {
    tbMessage: typeof body === 'string' && body.trim() ? truncate(body.trim()) : undefined,
    errorCode: undefined,
  };
}
