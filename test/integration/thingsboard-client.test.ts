import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PredictionMessage } from '#prediction/message';
import { THINGSBOARD_DEVICE_NAME, createThingsBoardClient } from '#clients/thingsboard/client';
import { toTelemetryPoint, type TelemetryPoint } from '#telemetry/points';
import {
  DASHBOARD_FILES,
  WIDGET_IDS,
  ALIAS_ID,
  buildDashboard,
  dashboardFileContent,
  parseThingsBoardVersion,
} from '../../scripts/thingsboard/dashboard';
import { ThingsBoardAdmin } from '../../scripts/thingsboard/admin';
import { provision, readLocalThingsBoardToken } from '../../scripts/thingsboard/provision';
import { startFakeThingsBoard, type FakeThingsBoard } from '../fakes/thingsboard';

const BASE_TS = Date.UTC(2025, 0, 15, 12, 0, 0);
const TENANT = { username: 'tenant@thingsboard.org', password: 'tenant' };

function message(i: number, overrides: Partial<PredictionMessage> = {}): PredictionMessage {
  const ts = BASE_TS + i * 1000;
  return {
    version: 1,
    prediction_id: randomUUID(),
    ts,
    created_at: new Date(ts).toISOString(),
    predicted_iq: 70.5 + i,
    classification: 'Bom',
    user_id: 10 + i,
    portfolio_id: 100 + i,
    model_name: 'hubfolio-model',
    model_version: '3',
    ...overrides,
  };
}

const points = (n: number): TelemetryPoint[] => Array.from({ length: n }, (_, i) => toTelemetryPoint(message(i)));

let tb: FakeThingsBoard;
let deviceToken: string;

beforeEach(async () => {
  tb = await startFakeThingsBoard();
  deviceToken = tb.addDevice(THINGSBOARD_DEVICE_NAME).token;
});

afterEach(async () => {
  await tb.close();
});

const client = (overrides: { deviceToken?: string; timeoutMs?: number } = {}) =>
  createThingsBoardClient({ url: tb.url, deviceToken, ...overrides });

describe('telemetry mapping', () => {
  it('sets the prediction class indicator to 1 and the other three to 0', () => {
    const { values } = toTelemetryPoint(message(0, { classification: 'Regular' }));
    expect(values).toMatchObject({ class_excelente: 0, class_bom: 0, class_regular: 1, class_insuficiente: 0 });
  });

  it('sends an integer model_version as a number and any other version as a string', () => {
    expect(toTelemetryPoint(message(0, { model_version: '12' })).values['model_version']).toBe(12);
    expect(toTelemetryPoint(message(0, { model_version: '1.2-rc' })).values['model_version']).toBe('1.2-rc');
  });
});

describe('device telemetry', () => {
  it('delivers a batch in one request, each point at its message ts with every key', async () => {
    const batch = [message(0), message(1, { classification: 'Excelente', portfolio_id: null }), message(2)];

    const report = await client().deliverPoints(batch.map(toTelemetryPoint));

    expect(report).toMatchObject({ requests: 1, transient: [], permanent: [] });
    expect(report.delivered).toHaveLength(3);
    expect(tb.requests.telemetry).toBe(1);
    const stored = tb.points(deviceToken);
    expect(new Set(stored.map((p) => p.ts))).toEqual(new Set(batch.map((m) => m.ts)));
    const at = (ts: number) => Object.fromEntries(stored.filter((p) => p.ts === ts).map((p) => [p.key, p.value]));
    const [first, second] = batch as [PredictionMessage, PredictionMessage];
    expect(at(first.ts)).toEqual({
      predicted_iq: 70.5,
      portfolio_id: 100,
      model_name: 'hubfolio-model',
      classification: 'Bom',
      user_id: 10,
      prediction_id: first.prediction_id,
      model_version: 3,
      class_excelente: 0,
      class_bom: 1,
      class_regular: 0,
      class_insuficiente: 0,
    });
    // ThingsBoard skips a null: no portfolio_id point for the second prediction.
    expect(at(second.ts)).not.toHaveProperty('portfolio_id');
    expect(at(second.ts)).toMatchObject({ classification: 'Excelente', class_excelente: 1 });
  });

  it('leaves one data point per key and ts when the same batch is delivered twice', async () => {
    const batch = points(3);
    await client().deliverPoints(batch);
    const once = tb.points(deviceToken).length;

    await client().deliverPoints(batch);

    expect(tb.distinctTs(deviceToken)).toBe(3);
    expect(tb.points(deviceToken)).toHaveLength(once);
  });

  it('classifies a 500 with an empty body as transient', async () => {
    tb.failNext(1, 500);

    const outcome = await client().sendTelemetry(points(2));

    expect(outcome).toMatchObject({ kind: 'transient', status: 500 });
  });

  it('classifies a 500 carrying the parser message as permanent', async () => {
    // 1e20 is an integer beyond a Java long: ThingsBoard's parser rejects the whole message.
    const poison = toTelemetryPoint(message(0, { predicted_iq: 1e20 }));

    const outcome = await client().sendTelemetry([poison]);

    expect(outcome).toMatchObject({ kind: 'permanent', status: 500 });
    expect(outcome.kind === 'permanent' && outcome.reason).toContain('Big integer values are not supported');
  });

  it('bisects a batch answered permanent: the good points are delivered and the poison point isolated', async () => {
    const batch = points(6);
    const poison = toTelemetryPoint(message(3, { predicted_iq: 1e20 }));
    batch[3] = poison;

    const report = await client().deliverPoints(batch);

    expect(report.delivered).toHaveLength(5);
    expect(report.delivered).not.toContain(poison);
    expect(report.permanent).toEqual([{ point: poison, reason: expect.stringContaining('Big integer') }]);
    expect(report.transient).toEqual([]);
    expect(tb.distinctTs(deviceToken)).toBe(5);
    expect(tb.points(deviceToken).some((p) => p.ts === poison.ts)).toBe(false);
  });

  it('reports a rejected device token as a configuration error that says how to fix it', async () => {
    const report = await client({ deviceToken: 'not-the-token' }).deliverPoints(points(4));

    expect(report.delivered).toEqual([]);
    expect(report.requests).toBe(1);
    expect(report.configuration?.points).toHaveLength(4);
    expect(report.configuration?.reason).toMatch(/device token/);
    expect(report.configuration?.reason).toContain('npm run thingsboard:provision');
    expect(report.configuration?.reason).toContain('THINGSBOARD_DEVICE_TOKEN');
    expect(report.configuration?.reason).not.toContain('not-the-token');
  });

  it('splits a batch answered 413 until every point is delivered', async () => {
    const batch = points(8);
    tb.payloadLimitBytes = JSON.stringify(batch.slice(0, 2)).length + 10;

    const report = await client().deliverPoints(batch);

    expect(report.delivered).toHaveLength(8);
    expect(report.requests).toBeGreaterThan(1);
    expect(tb.telemetryLog.some((r) => r.status === 413)).toBe(true);
    expect(tb.distinctTs(deviceToken)).toBe(8);
  });

  it('reports every point transient during an outage, after one request, and delivers them once it ends', async () => {
    const batch = points(5);
    tb.outage = true;

    const during = await client().deliverPoints(batch);
    tb.outage = false;
    const after = await client().deliverPoints(during.transient);

    expect(during).toMatchObject({ requests: 1, delivered: [], permanent: [] });
    expect(during.transient).toHaveLength(5);
    expect(after.delivered).toHaveLength(5);
    expect(tb.distinctTs(deviceToken)).toBe(5);
  });

  it('treats a rate limit (500 with an empty body once the allowance is spent) as transient', async () => {
    tb.rateLimit = 1;
    await client().sendTelemetry(points(1));

    const outcome = await client().sendTelemetry(points(2));

    expect(outcome.kind).toBe('transient');
  });

  it('treats a server that does not answer in time as transient', async () => {
    tb.latencyMs = 300;

    const outcome = await client({ timeoutMs: 50 }).sendTelemetry(points(1));

    expect(outcome).toMatchObject({ kind: 'transient', reason: expect.stringContaining('50 ms') });
  });

  it('treats a refused connection as transient', async () => {
    tb.setDown(true);

    const outcome = await client().sendTelemetry(points(1));

    expect(outcome).toMatchObject({ kind: 'transient', reason: expect.stringContaining('Cannot reach ThingsBoard') });
  });

  it('reports a missing device token as a configuration error without any request', async () => {
    const outcome = await createThingsBoardClient({ url: tb.url, deviceToken: undefined }).sendTelemetry(points(1));

    expect(outcome).toMatchObject({
      kind: 'configuration',
      reason: expect.stringContaining('THINGSBOARD_DEVICE_TOKEN'),
    });
    expect(tb.requests.total).toBe(0);
  });
});

describe('health ping', () => {
  it('reports a server that answers (even 401) as reachable', async () => {
    await expect(client().ping()).resolves.toMatchObject({ reachable: true, status: 401 });
  });

  it('reports a dead server as unreachable', async () => {
    tb.setDown(true);

    await expect(client().ping()).resolves.toMatchObject({ reachable: false });
  });
});

describe('REST API', () => {
  const admin = (credentials = TENANT) => new ThingsBoardAdmin({ url: tb.url, ...credentials });

  it('logs in again once, transparently, when the JWT has expired', async () => {
    const api = admin();
    await api.login();
    tb.expireTokens();

    const device = await api.findDevice(THINGSBOARD_DEVICE_NAME);

    expect(device?.name).toBe(THINGSBOARD_DEVICE_NAME);
    expect(tb.requests.login).toBe(2);
  });

  it('finds no device by an unknown name', async () => {
    await expect(admin().findDevice('nope')).resolves.toBeNull();
  });

  it('creates one device when two callers get-or-create it at the same time', async () => {
    const [a, b] = await Promise.all([
      admin().getOrCreateDevice({ name: 'Race' }),
      admin().getOrCreateDevice({ name: 'Race' }),
    ]);

    expect(a.device.id).toEqual(b.device.id);
    expect(tb.devices().filter((d) => d.name === 'Race')).toHaveLength(1);
  });

  it('finds the dashboard with the exact title across pages of substring matches', async () => {
    for (let i = 0; i < 150; i += 1) tb.addDashboard(`HubFólio Analytics (copy ${i})`);
    const exact = tb.addDashboard('HubFólio Analytics');
    tb.addDashboard('hubfólio analytics');

    const found = await admin().findDashboardByTitle('HubFólio Analytics');

    expect(found?.id.id).toBe(exact.id);
  });

  it('explains rejected credentials', async () => {
    const error = await admin({ ...TENANT, password: 'wrong' })
      .login()
      .catch((e: unknown) => e);

    expect(error).toMatchObject({ status: 401, errorCode: 10 });
    expect((error as Error).message).toMatch(/rejected the credentials of tenant@thingsboard.org/);
    expect((error as Error).message).toContain('THINGSBOARD_PASSWORD');
  });
});

describe('provisioning', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tb-provision-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = (overrides: Partial<Parameters<typeof provision>[0]> = {}) =>
    provision({ url: tb.url, ...TENANT, envFile: join(dir, 'thingsboard.env'), ...overrides });

  it('creates one device and one dashboard and returns the same token when run twice', async () => {
    const fresh = await startFakeThingsBoard();
    try {
      const first = await run({ url: fresh.url });
      const second = await run({ url: fresh.url });

      expect(fresh.devices()).toHaveLength(1);
      expect(fresh.dashboards()).toHaveLength(1);
      expect(first.device.created).toBe(true);
      expect(second.device.created).toBe(false);
      expect(second.token).toBe(first.token);
      expect(second.token).toBe(fresh.devices()[0]?.token);
      expect(first.dashboard.action).toBe('created');
      expect(second.dashboard).toEqual({ ...first.dashboard, action: 'unchanged' });
      expect(second.dashboard.url).toBe(`${fresh.url}/dashboards/${first.dashboard.id}`);
    } finally {
      await fresh.close();
    }
  });

  it('writes the token where the local stack reads it', async () => {
    const result = await run();

    expect(await readFile(result.envFile, 'utf8')).toContain(`THINGSBOARD_DEVICE_TOKEN=${deviceToken}\n`);
    expect(readLocalThingsBoardToken(result.envFile)).toBe(deviceToken);
  });

  it('updates an outdated dashboard in place, keeping its id', async () => {
    const first = await run({ tbVersion: '3.6' });

    const second = await run({ tbVersion: '3.7+' });

    expect(second.dashboard).toMatchObject({ id: first.dashboard.id, action: 'updated' });
    const [saved] = tb.dashboards();
    if (!saved) throw new Error('the fake ThingsBoard holds no dashboard');
    const widgets = (saved['configuration'] as { widgets: Record<string, { typeFullFqn: string }> }).widgets;
    expect(widgets[WIDGET_IDS.iqOverTime]?.typeFullFqn).toBe('system.time_series_chart');
    expect(tb.dashboards()).toHaveLength(1);
  });

  it('binds the dashboard to the device by id', async () => {
    const result = await run();

    const [saved] = tb.dashboards();
    if (!saved) throw new Error('the fake ThingsBoard holds no dashboard');
    const aliases = (saved['configuration'] as { entityAliases: Record<string, { filter: unknown }> }).entityAliases;
    expect(aliases[ALIAS_ID]?.filter).toEqual({
      type: 'singleEntity',
      resolveMultiple: false,
      singleEntity: { entityType: 'DEVICE', id: result.device.id },
    });
  });

  it('explains bad credentials', async () => {
    await expect(run({ password: 'wrong' })).rejects.toThrow(/rejected the credentials.*THINGSBOARD_USERNAME/s);
  });

  it('explains that the system administrator cannot provision', async () => {
    await expect(run({ username: 'sysadmin@thingsboard.org', password: 'sysadmin' })).rejects.toThrow(
      /403.*tenant administrator/s,
    );
  });

  it('explains an unreachable ThingsBoard', async () => {
    tb.setDown(true);

    await expect(run()).rejects.toThrow(/Cannot reach ThingsBoard at .*THINGSBOARD_URL/s);
  });

  it('keeps the password out of the error an unreachable ThingsBoard gives (and so out of the logs)', async () => {
    tb.setDown(true);
    const password = 'not-in-any-log-7f3a';
    const error = await new ThingsBoardAdmin({ url: tb.url, username: TENANT.username, password })
      .login()
      .catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/Cannot reach ThingsBoard/);
    // What a structured logger writes of an error: every own property, down the cause chain.
    const chain: unknown[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) chain.push(e);
    expect(chain.length).toBeGreaterThan(1);
    const written = JSON.stringify(
      chain.map((e) => Object.fromEntries(Object.getOwnPropertyNames(e).map((k) => [k, (e as never)[k]]))),
    );
    expect(written).not.toContain(password);
  });
});

describe('dashboard JSON', () => {
  /** The parts of a `latest` widget these tests read (its own time window is typed loosely by the builder). */
  interface LatestWidget {
    type: string;
    config: {
      useDashboardTimewindow: boolean;
      timewindow: { realtime: { quickInterval: string } };
      settings: Record<string, unknown>;
      datasources: Array<{ dataKeys: Array<{ name: string; aggregationType?: string }> }>;
    };
  }

  const fqns = (dashboard: ReturnType<typeof buildDashboard>) =>
    Object.fromEntries(
      Object.entries(WIDGET_IDS).map(([name, id]) => [
        name,
        (dashboard.configuration.widgets[id] as { typeFullFqn: string }).typeFullFqn,
      ]),
    );

  it('uses the widget identifiers of ThingsBoard 3.7 and later', () => {
    expect(fqns(buildDashboard({ id: randomUUID() }, '3.7+'))).toEqual({
      iqOverTime: 'system.time_series_chart',
      averageIq: 'system.digital_gauges.gauge_justgage',
      recentPredictions: 'system.cards.timeseries_table',
      classDistribution: 'system.pie',
    });
  });

  it('uses the widget identifiers of ThingsBoard 3.6 when asked', () => {
    expect(fqns(buildDashboard({ id: randomUUID() }, parseThingsBoardVersion('3.6.4')))).toEqual({
      iqOverTime: 'system.charts.basic_timeseries',
      averageIq: 'system.digital_gauges.gauge_justgage',
      recentPredictions: 'system.cards.timeseries_table',
      classDistribution: 'system.charts.pie_chart_js',
    });
  });

  it('gauges the month average of predicted_iq on 0–100 over its own window', () => {
    const gauge = buildDashboard({ id: randomUUID() }).configuration.widgets[
      WIDGET_IDS.averageIq
    ] as unknown as LatestWidget;

    expect(gauge.type).toBe('latest');
    expect(gauge.config['useDashboardTimewindow']).toBe(false);
    expect(gauge.config['timewindow'].realtime.quickInterval).toBe('CURRENT_MONTH_SO_FAR');
    expect(gauge.config['settings']).toMatchObject({ minValue: 0, maxValue: 100 });
    expect(gauge.config['datasources'][0]?.dataKeys).toMatchObject([{ name: 'predicted_iq', aggregationType: 'AVG' }]);
  });

  it('sums the four class indicators in the pie', () => {
    const pie = buildDashboard({ id: randomUUID() }).configuration.widgets[
      WIDGET_IDS.classDistribution
    ] as unknown as LatestWidget;

    expect(pie.config['datasources'][0]?.dataKeys.map((k) => [k.name, k.aggregationType])).toEqual([
      ['class_excelente', 'SUM'],
      ['class_bom', 'SUM'],
      ['class_regular', 'SUM'],
      ['class_insuficiente', 'SUM'],
    ]);
  });

  it('commits importable files that find the device by name and match the builder', async () => {
    for (const version of ['3.7+', '3.6'] as const) {
      const committed = await readFile(DASHBOARD_FILES[version], 'utf8');
      expect(committed).toBe(dashboardFileContent(version));
      const parsed = JSON.parse(committed) as {
        title: string;
        configuration: { entityAliases: Record<string, { filter: unknown }> };
      };
      expect(parsed.title).toBe('HubFólio Analytics');
      expect(parsed.configuration.entityAliases[ALIAS_ID]?.filter).toEqual({
        type: 'entityName',
        entityType: 'DEVICE',
        entityNameFilter: THINGSBOARD_DEVICE_NAME,
        resolveMultiple: false,
      });
    }
  });
});

describe('the fake follows the ThingsBoard contract', () => {
  const post = (token: string, body: string) =>
    fetch(`${tb.url}/api/v1/${token}/telemetry`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });

  it('stores a flat object at the server time and converts numeric strings', async () => {
    const before = Date.now();
    const response = await post(deviceToken, JSON.stringify({ a: '123', b: 'x', c: null }));

    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    const stored = tb.points(deviceToken);
    expect(stored.map(({ key, type, value }) => ({ key, type, value }))).toEqual([
      { key: 'a', type: 'LONG', value: 123 },
      { key: 'b', type: 'STRING', value: 'x' },
    ]);
    expect(stored[0]?.ts).toBeGreaterThanOrEqual(before);
  });

  it('stores ts as an ordinary key when values is missing', async () => {
    await post(deviceToken, JSON.stringify({ ts: 5, v: 1 }));

    expect(
      tb
        .points(deviceToken)
        .map((p) => p.key)
        .sort(),
    ).toEqual(['ts', 'v']);
  });

  it('answers an unknown token with an empty 401 and malformed JSON with a 500 carrying the message', async () => {
    const unknown = await post('nope', '{}');
    const malformed = await post(deviceToken, '{"a":');

    expect([unknown.status, await unknown.text()]).toEqual([401, '']);
    expect(malformed.status).toBe(500);
    expect(await malformed.text()).not.toBe('');
  });

  it('reads telemetry back as strings through the REST API', async () => {
    await client().deliverPoints(points(2));
    const { token } = (await (
      await fetch(`${tb.url}/api/auth/login`, { method: 'POST', body: JSON.stringify(TENANT) })
    ).json()) as { token: string };
    const deviceId = tb.devices()[0]?.id ?? '';

    const response = await fetch(
      `${tb.url}/api/plugins/telemetry/DEVICE/${deviceId}/values/timeseries?keys=predicted_iq,model_version`,
      { headers: { 'X-Authorization': `Bearer ${token}` } },
    );

    expect(await response.json()).toEqual({
      predicted_iq: [{ ts: BASE_TS + 1000, value: '71.5' }],
      model_version: [{ ts: BASE_TS + 1000, value: '3' }],
    });
  });
});
