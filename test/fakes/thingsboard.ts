import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An in-memory ThingsBoard that answers like the real one (../shared/contracts/thingsboard.md):
 * device telemetry with its three body shapes, type conversion and (device, key, ts) overwrites;
 * empty-bodied 401/500s; the tenant REST API with ThingsBoard's error JSON and errorCodes.
 * Switches simulate outages, rate limits, a payload limit, expired JWTs and a dead server.
 */

type StoredType = 'BOOLEAN' | 'LONG' | 'DOUBLE' | 'STRING' | 'JSON';

interface StoredPoint {
  deviceId: string;
  key: string;
  ts: number;
  type: StoredType;
  value: boolean | number | string;
}

interface FakeUser {
  username: string;
  password: string;
  authority: 'TENANT_ADMIN' | 'SYS_ADMIN';
}

export interface FakeThingsBoardOptions {
  users?: FakeUser[];
  /** Request bodies above this many bytes get 413 (ThingsBoard's default is 50 MiB). */
  payloadLimitBytes?: number;
}

interface FakeDevice {
  id: string;
  name: string;
  type: string;
  label: string | null;
  token: string;
  createdTime: number;
}

interface FakeDashboard {
  id: string;
  title: string;
  createdTime: number;
  version: number;
  body: Record<string, unknown>;
}

interface TelemetryRequestRecord {
  token: string;
  status: number;
  bytes: number;
}

export interface FakeThingsBoard {
  url: string;
  close(): Promise<void>;
  /** Every telemetry call answers 500 with an empty body (queue failure / rate limit). */
  outage: boolean;
  /** Allow this many more telemetry requests, then answer 500 empty until set to undefined. */
  rateLimit: number | undefined;
  payloadLimitBytes: number;
  /** Delay every answer by this many ms (to exercise client timeouts). */
  latencyMs: number;
  /** The next `n` telemetry calls answer `status` with `body` (empty by default) and store nothing. */
  failNext(n: number, status: number, body?: string): void;
  /** Accepted connections are destroyed at once (and open ones closed): the server looks dead. */
  setDown(down: boolean): void;
  /** Every JWT issued so far now answers 401 errorCode 11, as after 2.5 h. */
  expireTokens(): void;
  requests: { total: number; telemetry: number; login: number; api: number };
  telemetryLog: TelemetryRequestRecord[];
  /** Stored data points — one per (device, key, ts) — of one device (by token) or of all. */
  points(deviceToken?: string): StoredPoint[];
  /** How many distinct timestamps a device (by token) has points at, or all devices together. */
  distinctTs(deviceToken?: string): number;
  addDevice(name: string, options?: { token?: string; type?: string }): FakeDevice;
  devices(): FakeDevice[];
  addDashboard(title: string, configuration?: Record<string, unknown>): { id: string };
  dashboards(): Array<{ id: string; title: string; version: number } & Record<string, unknown>>;
}

const DEFAULT_USERS: FakeUser[] = [
  { username: 'tenant@thingsboard.org', password: 'tenant', authority: 'TENANT_ADMIN' },
  { username: 'sysadmin@thingsboard.org', password: 'sysadmin', authority: 'SYS_ADMIN' },
];

const TENANT_ID = randomUUID();
const LONG_MAX = 2n ** 63n - 1n;

/** What ThingsBoard's JsonConverter throws; the device API answers 500 with its message. */
class ParseError extends Error {}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errorCode: number,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// JsonConverter: shapes and types
// ---------------------------------------------------------------------------------------------

interface ParsedEntry {
  key: string;
  type: StoredType;
  value: boolean | number | string;
}

function numberEntry(key: string, text: string): ParsedEntry {
  if (/e/i.test(text) || text.includes('.')) return { key, type: 'DOUBLE', value: Number(text) };
  const big = BigInt(text);
  if (big > LONG_MAX || big < -LONG_MAX - 1n) throw new ParseError('Big integer values are not supported!');
  return { key, type: 'LONG', value: Number(text) };
}

/** commons-lang3 NumberUtils.isParsable: optional '-', digits, at most one '.', not ending in '.'. */
const PARSABLE = /^-?(?:\d+(?:\.\d+)?|\.\d+)$/;

function parseEntries(values: unknown): ParsedEntry[] {
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new ParseError(`Not a JSON Object: ${JSON.stringify(values)}`);
  }
  const entries: ParsedEntry[] = [];
  for (const [key, value] of Object.entries(values)) {
    if (value === null) continue; // null is skipped
    if (typeof value === 'boolean') entries.push({ key, type: 'BOOLEAN', value });
    else if (typeof value === 'number') entries.push(numberEntry(key, String(value)));
    else if (typeof value === 'string') {
      // Type cast (on by default): a string that parses as a number is stored as a number.
      let entry: ParsedEntry = { key, type: 'STRING', value };
      if (PARSABLE.test(value)) {
        try {
          entry = numberEntry(key, value);
        } catch {
          // too big for a LONG: stays a string
        }
      }
      entries.push(entry);
    } else entries.push({ key, type: 'JSON', value: JSON.stringify(value) });
  }
  return entries;
}

/** Gson's getAsLong: a number is truncated, a string must be a whole number. */
function toLong(ts: unknown): number {
  if (typeof ts === 'number') return Math.trunc(ts);
  if (typeof ts === 'string' && /^-?\d+$/.test(ts)) return Number(ts);
  const text = typeof ts === 'string' ? ts : JSON.stringify(ts);
  throw new ParseError(`java.lang.NumberFormatException: For input string: "${text}"`);
}

/** The body shapes the device API accepts: object, `{ts, values}`, or an array of those. */
function parseTelemetry(body: unknown, serverTs: number): Array<{ ts: number; entries: ParsedEntry[] }> {
  const parseObject = (item: Record<string, unknown>) =>
    'ts' in item && 'values' in item
      ? { ts: toLong(item['ts']), entries: parseEntries(item['values']) }
      : { ts: serverTs, entries: parseEntries(item) };
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(body)) return [parseObject(body)];
  if (Array.isArray(body)) {
    return body.map((item) => {
      if (!isObject(item)) throw new ParseError(`Can't parse value: ${JSON.stringify(item)}`);
      return parseObject(item);
    });
  }
  throw new ParseError(`Can't parse value: ${JSON.stringify(body)}`);
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

export async function startFakeThingsBoard(options: FakeThingsBoardOptions = {}): Promise<FakeThingsBoard> {
  const users = options.users ?? DEFAULT_USERS;
  const devicesById = new Map<string, FakeDevice>();
  const dashboardsById = new Map<string, FakeDashboard>();
  /** deviceId → key → ts → point */
  const series = new Map<string, Map<string, Map<number, StoredPoint>>>();
  const jwts = new Map<string, { user: FakeUser; expired: boolean }>();
  const failures: Array<{ status: number; body: string }> = [];
  const sockets = new Set<Socket>();
  let down = false;
  let clock = 0;

  /** Strictly increasing creation times, so "oldest" is well defined within a test. */
  const now = () => (clock = Math.max(clock + 1, Date.now()));

  const fake: FakeThingsBoard = {
    url: '',
    close: async () => undefined,
    outage: false,
    rateLimit: undefined,
    payloadLimitBytes: options.payloadLimitBytes ?? 50 * 1024 * 1024,
    latencyMs: 0,
    failNext(n, status, body = '') {
      for (let i = 0; i < n; i += 1) failures.push({ status, body });
    },
    setDown(value) {
      down = value;
      if (down) for (const socket of sockets) socket.destroy();
    },
    expireTokens() {
      for (const session of jwts.values()) session.expired = true;
    },
    requests: { total: 0, telemetry: 0, login: 0, api: 0 },
    telemetryLog: [],
    points(deviceToken) {
      const ids = deviceToken === undefined ? [...series.keys()] : [findByToken(deviceToken)?.id ?? ''];
      return ids.flatMap((id) => [...(series.get(id)?.values() ?? [])].flatMap((byTs) => [...byTs.values()]));
    },
    distinctTs(deviceToken) {
      return new Set(fake.points(deviceToken).map((p) => `${p.deviceId}/${p.ts}`)).size;
    },
    addDevice(name, { token, type } = {}) {
      return createDevice({ name, type, token });
    },
    devices: () => [...devicesById.values()],
    addDashboard(title, configuration = {}) {
      const saved = saveDashboard({ title, configuration });
      return { id: saved.id };
    },
    dashboards: () =>
      [...dashboardsById.values()].map((d) => ({ ...d.body, id: d.id, title: d.title, version: d.version })),
  };

  function findByToken(token: string): FakeDevice | undefined {
    for (const device of devicesById.values()) if (device.token === token) return device;
    return undefined;
  }

  function createDevice(input: { name: string; type?: string; label?: string | null; token?: string }): FakeDevice {
    if ([...devicesById.values()].some((d) => d.name === input.name)) {
      throw new ApiError(400, 'Device with such name already exists!', 31);
    }
    const device: FakeDevice = {
      id: randomUUID(),
      name: input.name,
      type: input.type ?? 'default',
      label: input.label ?? null,
      token: input.token ?? randomBytes(10).toString('hex'),
      createdTime: now(),
    };
    devicesById.set(device.id, device);
    return device;
  }

  function deviceJson(device: FakeDevice) {
    return {
      id: { entityType: 'DEVICE', id: device.id },
      createdTime: device.createdTime,
      tenantId: { entityType: 'TENANT', id: TENANT_ID },
      customerId: { entityType: 'CUSTOMER', id: '13814000-1dd2-11b2-8080-808080808080' },
      name: device.name,
      type: device.type,
      label: device.label,
      additionalInfo: null,
    };
  }

  function saveDashboard(input: Record<string, unknown>): FakeDashboard {
    const { id, version, createdTime: _created, tenantId: _tenant, ...rest } = input;
    if (typeof rest['title'] !== 'string' || rest['title'] === '') {
      throw new ApiError(400, 'Dashboard title should be specified!', 31);
    }
    const dashboardId =
      id && typeof id === 'object' && typeof (id as { id?: unknown }).id === 'string'
        ? (id as { id: string }).id
        : undefined;
    if (dashboardId !== undefined) {
      const existing = dashboardsById.get(dashboardId);
      if (!existing) throw new ApiError(404, "Requested item wasn't found!", 32);
      if (typeof version === 'number' && version !== existing.version) {
        throw new ApiError(409, 'Dashboard was already changed by someone else', 35);
      }
      const updated = { ...existing, title: rest['title'], version: existing.version + 1, body: rest };
      dashboardsById.set(dashboardId, updated);
      return updated;
    }
    const created: FakeDashboard = {
      id: randomUUID(),
      title: rest['title'],
      createdTime: now(),
      version: 1,
      body: rest,
    };
    dashboardsById.set(created.id, created);
    return created;
  }

  function dashboardInfo(d: FakeDashboard) {
    return {
      id: { entityType: 'DASHBOARD', id: d.id },
      createdTime: d.createdTime,
      tenantId: { entityType: 'TENANT', id: TENANT_ID },
      title: d.title,
      name: d.title,
      image: null,
      assignedCustomers: null,
      mobileHide: false,
      mobileOrder: null,
      version: d.version,
    };
  }

  function dashboardJson(d: FakeDashboard) {
    return { ...d.body, ...dashboardInfo(d), configuration: d.body['configuration'] ?? null };
  }

  // --- device API --------------------------------------------------------------------------

  function telemetry(token: string, raw: Buffer, tooLarge: boolean): { status: number; body: string } {
    fake.requests.telemetry += 1;
    if (tooLarge) return { status: 413, body: '' }; // the servlet container refuses it before ThingsBoard sees it
    const failure = failures.shift();
    if (failure) return failure;
    if (fake.outage) return { status: 500, body: '' };
    const device = findByToken(token);
    if (!device) return { status: 401, body: '' };
    if (fake.rateLimit !== undefined) {
      if (fake.rateLimit <= 0) return { status: 500, body: '' };
      fake.rateLimit -= 1;
    }
    let parsed: Array<{ ts: number; entries: ParsedEntry[] }>;
    try {
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (error) {
        throw new ParseError(`com.google.gson.JsonSyntaxException: ${(error as Error).message}`);
      }
      parsed = parseTelemetry(body, Date.now());
    } catch (error) {
      if (error instanceof ParseError) return { status: 500, body: error.message };
      throw error;
    }
    // A message is stored whole or not at all: parse everything before writing.
    const byKey = series.get(device.id) ?? new Map<string, Map<number, StoredPoint>>();
    series.set(device.id, byKey);
    for (const { ts, entries } of parsed) {
      for (const { key, type, value } of entries) {
        const byTs = byKey.get(key) ?? new Map<number, StoredPoint>();
        byKey.set(key, byTs);
        byTs.set(ts, { deviceId: device.id, key, ts, type, value });
      }
    }
    return { status: 200, body: '' };
  }

  // --- REST API ----------------------------------------------------------------------------

  function authenticate(req: IncomingMessage): FakeUser {
    // ThingsBoard before 4.3 reads only X-Authorization.
    const header = req.headers['x-authorization'];
    const jwt = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : undefined;
    const session = jwt ? jwts.get(jwt) : undefined;
    if (!session) throw new ApiError(401, 'Authentication failed', 10);
    if (session.expired) throw new ApiError(401, 'Token has expired', 11);
    return session.user;
  }

  function tenantAdmin(req: IncomingMessage): FakeUser {
    const user = authenticate(req);
    if (user.authority !== 'TENANT_ADMIN') {
      throw new ApiError(403, "You don't have permission to perform this operation!", 20);
    }
    return user;
  }

  function jsonBody(raw: Buffer): Record<string, unknown> {
    try {
      const body: unknown = JSON.parse(raw.toString('utf8'));
      if (body && typeof body === 'object' && !Array.isArray(body)) return body as Record<string, unknown>;
    } catch {
      // fall through
    }
    throw new ApiError(400, 'Invalid request body', 31);
  }

  function requiredInt(url: URL, name: string): number {
    const value = url.searchParams.get(name);
    if (value === null || !/^\d+$/.test(value)) {
      throw new ApiError(400, `Required request parameter '${name}' for method parameter type int is not present`, 31);
    }
    return Number(value);
  }

  function deviceById(id: string): FakeDevice {
    const device = devicesById.get(id);
    if (!device) throw new ApiError(404, "Requested item wasn't found!", 32);
    return device;
  }

  function timeseries(deviceId: string, url: URL) {
    const byKey = series.get(deviceById(deviceId).id) ?? new Map<string, Map<number, StoredPoint>>();
    const keys = (url.searchParams.get('keys') ?? '').split(',').filter(Boolean);
    const strict = url.searchParams.get('useStrictDataTypes') === 'true';
    const startTs = url.searchParams.get('startTs');
    const endTs = url.searchParams.get('endTs');
    const limit = Number(url.searchParams.get('limit') ?? 100);
    const out: Record<string, Array<{ ts: number; value: unknown }>> = {};
    for (const key of keys.length ? keys : [...byKey.keys()]) {
      const points = [...(byKey.get(key)?.values() ?? [])].sort((a, b) => b.ts - a.ts);
      const selected =
        startTs !== null && endTs !== null
          ? points.filter((p) => p.ts >= Number(startTs) && p.ts < Number(endTs)).slice(0, limit)
          : points.slice(0, 1); // without a range: the latest value
      if (selected.length === 0) continue;
      // By default the REST API returns every value as a string.
      out[key] = selected.map((p) => ({ ts: p.ts, value: strict ? p.value : String(p.value) }));
    }
    return out;
  }

  function api(req: IncomingMessage, url: URL, raw: Buffer): { status: number; json: unknown } {
    const path = url.pathname;
    const method = req.method ?? 'GET';

    if (method === 'POST' && path === '/api/auth/login') {
      fake.requests.login += 1;
      const { username, password } = jsonBody(raw);
      const user = users.find((u) => u.username === username && u.password === password);
      if (!user) throw new ApiError(401, 'Invalid username or password', 10);
      const token = `fake-jwt.${randomBytes(12).toString('hex')}`;
      jwts.set(token, { user, expired: false });
      return { status: 200, json: { token, refreshToken: `fake-refresh.${randomBytes(12).toString('hex')}` } };
    }
    if (method === 'GET' && path === '/api/auth/user') {
      const user = authenticate(req);
      return { status: 200, json: { email: user.username, authority: user.authority } };
    }
    if (method === 'GET' && path === '/api/tenant/devices') {
      tenantAdmin(req);
      const name = url.searchParams.get('deviceName');
      if (name !== null) {
        const device = [...devicesById.values()].find((d) => d.name === name);
        if (!device) throw new ApiError(404, "Requested item wasn't found!", 32);
        return { status: 200, json: deviceJson(device) };
      }
      const pageSize = requiredInt(url, 'pageSize');
      const page = requiredInt(url, 'page');
      const all = [...devicesById.values()];
      return { status: 200, json: pageOf(all.map(deviceJson), page, pageSize) };
    }
    if (method === 'POST' && path === '/api/device') {
      tenantAdmin(req);
      const body = jsonBody(raw);
      if (typeof body['name'] !== 'string' || body['name'] === '') {
        throw new ApiError(400, 'Device name should be specified!', 31);
      }
      const device = createDevice({
        name: body['name'],
        type: typeof body['type'] === 'string' ? body['type'] : undefined,
        label: typeof body['label'] === 'string' ? body['label'] : null,
      });
      return { status: 200, json: deviceJson(device) };
    }
    const credentialsMatch = method === 'GET' ? path.match(/^\/api\/device\/([^/]+)\/credentials$/) : null;
    if (credentialsMatch) {
      tenantAdmin(req);
      const device = deviceById(decodeURIComponent(credentialsMatch[1] ?? ''));
      return {
        status: 200,
        json: {
          id: { id: randomUUID() },
          createdTime: device.createdTime,
          deviceId: { entityType: 'DEVICE', id: device.id },
          credentialsType: 'ACCESS_TOKEN',
          credentialsId: device.token,
          credentialsValue: null,
        },
      };
    }
    const timeseriesMatch =
      method === 'GET' ? path.match(/^\/api\/plugins\/telemetry\/DEVICE\/([^/]+)\/values\/timeseries$/) : null;
    if (timeseriesMatch) {
      tenantAdmin(req);
      return { status: 200, json: timeseries(decodeURIComponent(timeseriesMatch[1] ?? ''), url) };
    }
    if (method === 'GET' && path === '/api/tenant/dashboards') {
      tenantAdmin(req);
      const pageSize = requiredInt(url, 'pageSize');
      const page = requiredInt(url, 'page');
      const search = (url.searchParams.get('textSearch') ?? '').toLowerCase();
      const found = [...dashboardsById.values()].filter((d) => d.title.toLowerCase().includes(search));
      return { status: 200, json: pageOf(found.map(dashboardInfo), page, pageSize) };
    }
    if (method === 'POST' && path === '/api/dashboard') {
      tenantAdmin(req);
      return { status: 200, json: dashboardJson(saveDashboard(jsonBody(raw))) };
    }
    const dashboardMatch = method === 'GET' ? path.match(/^\/api\/dashboard\/([^/]+)$/) : null;
    if (dashboardMatch) {
      tenantAdmin(req);
      const dashboard = dashboardsById.get(decodeURIComponent(dashboardMatch[1] ?? ''));
      if (!dashboard) throw new ApiError(404, "Requested item wasn't found!", 32);
      return { status: 200, json: dashboardJson(dashboard) };
    }
    if (path.startsWith('/api/')) authenticate(req); // unknown endpoints still need a login first
    throw new ApiError(404, 'Not Found', 32);
  }

  function pageOf<T>(items: T[], page: number, pageSize: number) {
    const data = items.slice(page * pageSize, (page + 1) * pageSize);
    const totalPages = pageSize > 0 ? Math.ceil(items.length / pageSize) : 0;
    return { data, totalPages, totalElements: items.length, hasNext: (page + 1) * pageSize < items.length };
  }

  // --- HTTP plumbing -----------------------------------------------------------------------

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    fake.requests.total += 1;
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > fake.payloadLimitBytes) tooLarge = true;
      else chunks.push(chunk);
    }
    const raw = Buffer.concat(chunks);
    if (fake.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, fake.latencyMs));
    if (res.destroyed) return;

    const url = new URL(req.url ?? '/', 'http://fake');
    const telemetryMatch = url.pathname.match(/^\/api\/v1\/([^/]+)\/telemetry$/);
    if (telemetryMatch && req.method === 'POST') {
      const token = decodeURIComponent(telemetryMatch[1] ?? '');
      const answer = telemetry(token, raw, tooLarge);
      fake.telemetryLog.push({ token, status: answer.status, bytes: size });
      res.writeHead(answer.status, answer.body ? { 'Content-Type': 'text/plain;charset=UTF-8' } : {});
      res.end(answer.body);
      return;
    }
    fake.requests.api += 1;
    try {
      if (tooLarge) throw new ApiError(413, 'Payload Too Large', 31);
      const { status, json } = api(req, url, raw);
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(json));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      res.writeHead(error.status, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          status: error.status,
          message: error.message,
          errorCode: error.errorCode,
          timestamp: Date.now(),
        }),
      );
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(String(error));
    });
  });
  server.on('connection', (socket) => {
    if (down) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}`;
  fake.close = () =>
    new Promise<void>((resolve, reject) => {
      for (const socket of sockets) socket.destroy();
      server.close((error) => (error ? reject(error) : resolve()));
    });
  return fake;
}
