import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { THINGSBOARD_DEVICE_NAME } from '#clients/thingsboard/client';
import { CLASS_INDICATOR_KEYS } from '#telemetry/points';
import { parseScriptArgs } from '../usage.ts';

/**
 * The "HubFólio Analytics" dashboard (../shared/contracts/thingsboard.md §3). Widget and alias ids
 * are fixed so that provisioning twice yields the same dashboard. Run directly
 * (`npm run thingsboard:dashboard-json`) to write the hand-importable files under dashboards/;
 * `--check` fails when those files are out of date.
 */

export const DASHBOARD_TITLE = 'HubFólio Analytics';

/** 3.7 replaced the flot charts; only two widget identifiers differ. */
export type ThingsBoardVersion = '3.6' | '3.7+';

export function parseThingsBoardVersion(text: string | undefined): ThingsBoardVersion {
  if (text === undefined || text === '') return '3.7+';
  const match = /^(\d+)\.(\d+)/.exec(text);
  if (!match) throw new Error(`--tb-version: expected a ThingsBoard version such as 3.6 or 4.3, got "${text}"`);
  const [major, minor] = [Number(match[1]), Number(match[2])];
  if (major < 3 || (major === 3 && minor < 6)) {
    throw new Error(`--tb-version: ThingsBoard ${text} is not supported (3.6 or later)`);
  }
  return major === 3 && minor === 6 ? '3.6' : '3.7+';
}

export const WIDGET_TYPES = {
  '3.7+': {
    iqOverTime: 'system.time_series_chart',
    averageIq: 'system.digital_gauges.gauge_justgage',
    recentPredictions: 'system.cards.timeseries_table',
    classDistribution: 'system.pie',
  },
  '3.6': {
    iqOverTime: 'system.charts.basic_timeseries',
    averageIq: 'system.digital_gauges.gauge_justgage',
    recentPredictions: 'system.cards.timeseries_table',
    classDistribution: 'system.charts.pie_chart_js',
  },
} as const satisfies Record<ThingsBoardVersion, Record<string, string>>;

/** Fixed ids: the same dashboard every time it is provisioned. */
export const ALIAS_ID = '84d2474a-9877-4932-8ede-770342144a78';
export const WIDGET_IDS = {
  iqOverTime: '25b700e2-0b2f-4f79-8340-593c0c5a7d37',
  averageIq: '6c76d071-c6ee-4c78-a91e-1e801116afb1',
  recentPredictions: 'dc30e29a-1189-4a9f-987c-569c0ec47026',
  classDistribution: '1ee9481f-153b-4972-8a64-fd6fee407c58',
} as const;

type WidgetName = keyof typeof WIDGET_IDS;

/** The device the dashboard shows: by id (provisioning) or by name (a file imported by hand). */
export type DashboardDevice = { id: string } | { name: string };

interface DataKey {
  name: string;
  type: 'timeseries';
  label: string;
  color: string;
  settings: Record<string, unknown>;
  aggregationType?: 'AVG' | 'SUM';
  decimals?: number;
}

const key = (name: string, label: string, color: string, extra: Partial<DataKey> = {}): DataKey => ({
  name,
  type: 'timeseries',
  label,
  color,
  settings: {},
  ...extra,
});

/** A `latest` widget that aggregates computes over its own window, which must be a fixed quick interval. */
const CURRENT_MONTH = {
  selectedTab: 0,
  realtime: { realtimeType: 1, quickInterval: 'CURRENT_MONTH_SO_FAR', interval: 60000 },
};

/** Predictions are events, so widgets on the dashboard window show them raw (no aggregation). */
const LAST_7_DAYS = {
  selectedTab: 0,
  realtime: { realtimeType: 0, timewindowMs: 7 * 24 * 3600 * 1000, interval: 1000 },
  aggregation: { type: 'NONE', limit: 1000 },
};

const LAYOUT: Record<WidgetName, { sizeX: number; sizeY: number; row: number; col: number }> = {
  iqOverTime: { sizeX: 16, sizeY: 7, row: 0, col: 0 },
  averageIq: { sizeX: 8, sizeY: 7, row: 0, col: 16 },
  recentPredictions: { sizeX: 16, sizeY: 8, row: 7, col: 0 },
  classDistribution: { sizeX: 8, sizeY: 8, row: 7, col: 16 },
};

interface WidgetSpec {
  type: 'timeseries' | 'latest';
  title: string;
  settings: Record<string, unknown>;
  dataKeys: DataKey[];
  /** Own time window instead of the dashboard's. */
  timewindow?: Record<string, unknown>;
}

function widgetSpecs(): Record<WidgetName, WidgetSpec> {
  return {
    iqOverTime: {
      type: 'timeseries',
      title: 'IQ ao longo do tempo',
      settings: { yAxes: { default: { min: 0, max: 100, label: 'IQ' } } },
      dataKeys: [key('predicted_iq', 'IQ', '#2196f3')],
    },
    averageIq: {
      type: 'latest',
      title: 'IQ médio (mês atual)',
      settings: { minValue: 0, maxValue: 100, gaugeType: 'arc', decimals: 1 },
      dataKeys: [key('predicted_iq', 'IQ médio', '#2196f3', { aggregationType: 'AVG', decimals: 1 })],
      timewindow: CURRENT_MONTH,
    },
    recentPredictions: {
      type: 'timeseries',
      title: 'Predições recentes',
      settings: { showTimestamp: true, displayPagination: true, defaultPageSize: 10 },
      dataKeys: [
        key('predicted_iq', 'IQ', '#2196f3'),
        key('classification', 'Classificação', '#4caf50'),
        key('model_name', 'Modelo', '#9c27b0'),
        key('portfolio_id', 'Portfólio', '#607d8b'),
        key('user_id', 'Usuário', '#795548'),
        key('prediction_id', 'Predição', '#9e9e9e'),
      ],
    },
    classDistribution: {
      type: 'latest',
      title: 'Distribuição das classificações (mês atual)',
      settings: {},
      // A pie cannot count a string key: it sums the per-prediction 0/1 indicators.
      dataKeys: [
        key(CLASS_INDICATOR_KEYS.Excelente, 'Excelente', '#4caf50', { aggregationType: 'SUM' }),
        key(CLASS_INDICATOR_KEYS.Bom, 'Bom', '#2196f3', { aggregationType: 'SUM' }),
        key(CLASS_INDICATOR_KEYS.Regular, 'Regular', '#ff9800', { aggregationType: 'SUM' }),
        key(CLASS_INDICATOR_KEYS.Insuficiente, 'Insuficiente', '#f44336', { aggregationType: 'SUM' }),
      ],
      timewindow: CURRENT_MONTH,
    },
  };
}

function aliasFilter(device: DashboardDevice): Record<string, unknown> {
  return 'id' in device
    ? { type: 'singleEntity', resolveMultiple: false, singleEntity: { entityType: 'DEVICE', id: device.id } }
    : { type: 'entityName', entityType: 'DEVICE', entityNameFilter: device.name, resolveMultiple: false };
}

/** `{title, configuration}`: what POST /api/dashboard takes and what ThingsBoard's import dialog reads. */
export function buildDashboard(device: DashboardDevice, tbVersion: ThingsBoardVersion = '3.7+') {
  const specs = widgetSpecs();
  const names = Object.keys(WIDGET_IDS) as WidgetName[];
  const widgets = Object.fromEntries(
    names.map((name) => {
      const spec = specs[name];
      const id = WIDGET_IDS[name];
      return [
        id,
        {
          id,
          typeFullFqn: WIDGET_TYPES[tbVersion][name],
          type: spec.type,
          ...LAYOUT[name],
          config: {
            title: spec.title,
            showTitle: true,
            useDashboardTimewindow: spec.timewindow === undefined,
            ...(spec.timewindow ? { timewindow: spec.timewindow, displayTimewindow: true } : {}),
            showLegend: name !== 'averageIq',
            settings: spec.settings,
            datasources: [{ type: 'entity', entityAliasId: ALIAS_ID, dataKeys: spec.dataKeys }],
          },
        },
      ];
    }),
  );
  return {
    title: DASHBOARD_TITLE,
    configuration: {
      description: `Predições do HubFólio enviadas pelo dispositivo "${THINGSBOARD_DEVICE_NAME}"`,
      widgets,
      states: {
        default: {
          name: DASHBOARD_TITLE,
          root: true,
          layouts: {
            main: {
              widgets: Object.fromEntries(names.map((name) => [WIDGET_IDS[name], LAYOUT[name]])),
              gridSettings: { columns: 24, margin: 10, outerMargin: true, backgroundColor: '#eeeeee' },
            },
          },
        },
      },
      entityAliases: {
        [ALIAS_ID]: { id: ALIAS_ID, alias: THINGSBOARD_DEVICE_NAME, filter: aliasFilter(device) },
      },
      filters: {},
      timewindow: LAST_7_DAYS,
      settings: {
        stateControllerId: 'entity',
        showTitle: true,
        showDashboardsSelect: true,
        showEntitiesSelect: true,
        showDashboardTimewindow: true,
        showDashboardExport: true,
        toolbarAlwaysOpen: true,
      },
    },
  };
}

export const DASHBOARD_FILES: Record<ThingsBoardVersion, string> = {
  '3.7+': fileURLToPath(new URL('../../dashboards/hubfolio-analytics.json', import.meta.url)),
  '3.6': fileURLToPath(new URL('../../dashboards/hubfolio-analytics-tb3.6.json', import.meta.url)),
};

/** The hand-importable file: the alias finds the device by name, since its id is not known in advance. */
export function dashboardFileContent(tbVersion: ThingsBoardVersion): string {
  const { title, configuration } = buildDashboard({ name: THINGSBOARD_DEVICE_NAME }, tbVersion);
  return `${JSON.stringify({ title, image: null, mobileHide: false, mobileOrder: null, configuration }, null, 2)}\n`;
}

async function main(): Promise<void> {
  const values = parseScriptArgs({
    command: 'npm run thingsboard:dashboard-json',
    description:
      'Writes the hand-importable dashboards (dashboards/hubfolio-analytics.json and -tb3.6.json) from the code that\n' +
      'provisioning uses, so that the two never differ.',
    options: { check: { type: 'boolean', description: 'write nothing; exit 1 if a committed file is out of date' } },
  });
  let stale = false;
  for (const [version, file] of Object.entries(DASHBOARD_FILES) as Array<[ThingsBoardVersion, string]>) {
    const content = dashboardFileContent(version);
    if (values.check) {
      const current = await readFile(file, 'utf8').catch(() => '');
      if (current !== content) {
        stale = true;
        console.error(`${file} is out of date: run npm run thingsboard:dashboard-json`);
      }
      continue;
    }
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
    console.log(`wrote ${file} (ThingsBoard ${version})`);
  }
  if (stale) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
