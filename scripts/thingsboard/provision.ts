import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { THINGSBOARD_DEVICE_NAME } from '#clients/thingsboard/client';
import { ThingsBoardAdmin } from './admin';
import { DASHBOARD_TITLE, buildDashboard, parseThingsBoardVersion, type ThingsBoardVersion } from './dashboard';
import { parseScriptArgs } from '../usage.ts';

/**
 * `npm run thingsboard:provision [-- --tb-version 3.6]`: finds or creates the device
 * "HubFólio Predictions", writes its token to .local/thingsboard.env (read by the local stack),
 * and finds or creates the "HubFólio Analytics" dashboard. Running it again changes nothing.
 * Reads THINGSBOARD_URL / THINGSBOARD_USERNAME / THINGSBOARD_PASSWORD itself: the suite's
 * config() would also demand database and queue settings this script has no use for.
 */

export const LOCAL_THINGSBOARD_ENV = fileURLToPath(new URL('../../.local/thingsboard.env', import.meta.url));
const TOKEN_VARIABLE = 'THINGSBOARD_DEVICE_TOKEN';

export interface ProvisionOptions {
  url: string;
  username: string;
  password: string;
  tbVersion?: ThingsBoardVersion;
  /** Where the token goes; .local/thingsboard.env of the repo by default. */
  envFile?: string;
  log?: (line: string) => void;
}

export interface ProvisionResult {
  device: { id: string; name: string; created: boolean };
  token: string;
  envFile: string;
  dashboard: { id: string; url: string; action: 'created' | 'updated' | 'unchanged' };
}

export async function provision(options: ProvisionOptions): Promise<ProvisionResult> {
  const url = options.url.replace(/\/+$/, '');
  const log = options.log ?? (() => undefined);
  const envFile = options.envFile ?? LOCAL_THINGSBOARD_ENV;
  const admin = new ThingsBoardAdmin({ url, username: options.username, password: options.password });

  await admin.login();
  log(`Logged in to ThingsBoard at ${url} as ${options.username}`);

  const { device, created } = await admin.getOrCreateDevice({
    name: THINGSBOARD_DEVICE_NAME,
    type: 'default',
    label: 'HubFólio model predictions',
  });
  log(`Device "${device.name}" ${created ? 'created' : 'found'} (id ${device.id.id})`);

  const token = await admin.getDeviceToken(device.id.id);
  await writeLocalThingsBoardToken(token, envFile);
  log(`Device token: ${token}`);
  log(`Wrote ${TOKEN_VARIABLE} to ${envFile}`);

  const wanted = buildDashboard({ id: device.id.id }, options.tbVersion ?? '3.7+');
  const found = await admin.findDashboardByTitle(DASHBOARD_TITLE);
  let dashboardId: string;
  let action: ProvisionResult['dashboard']['action'];
  if (!found) {
    const saved = await admin.saveDashboard(wanted);
    if (!saved.id) throw new Error('ThingsBoard saved the dashboard without returning its id');
    dashboardId = saved.id.id;
    action = 'created';
  } else {
    dashboardId = found.id.id;
    const current = await admin.getDashboard(dashboardId);
    if (isDeepStrictEqual(current.configuration, wanted.configuration)) {
      action = 'unchanged';
    } else {
      // Same id, fixed widget and alias ids: an update in place. Without `version` ThingsBoard overwrites.
      const { version: _version, ...rest } = current;
      await admin.saveDashboard({ ...rest, title: wanted.title, configuration: wanted.configuration });
      action = 'updated';
    }
  }
  const dashboardUrl = `${url}/dashboards/${dashboardId}`;
  log(`Dashboard "${DASHBOARD_TITLE}" ${action}: ${dashboardUrl}`);

  return {
    device: { id: device.id.id, name: device.name, created },
    token,
    envFile,
    dashboard: { id: dashboardId, url: dashboardUrl, action },
  };
}

async function writeLocalThingsBoardToken(token: string, file: string): Promise<void> {
  const content =
    '# Written by `npm run thingsboard:provision`: the access token of the ThingsBoard device\n' +
    `# "${THINGSBOARD_DEVICE_NAME}". Read by the local stack; an exported ${TOKEN_VARIABLE} wins.\n` +
    `${TOKEN_VARIABLE}=${token}\n`;
  await mkdir(dirname(file), { recursive: true });
  const current = await readFile(file, 'utf8').catch(() => undefined);
  if (current !== content) await writeFile(file, content, { mode: 0o600 });
}

/** The device token that provisioning wrote, or undefined when it has not run. */
export function readLocalThingsBoardToken(file: string = LOCAL_THINGSBOARD_ENV): string | undefined {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const line = content.split(/\r?\n/).find((l) => l.startsWith(`${TOKEN_VARIABLE}=`));
  const token = line?.slice(TOKEN_VARIABLE.length + 1).trim();
  return token ? token : undefined;
}

async function main(): Promise<void> {
  const values = parseScriptArgs({
    command: 'npm run thingsboard:provision',
    description:
      'Finds or creates the ThingsBoard device "HubFólio Predictions" and the dashboard "HubFólio Analytics", prints\n' +
      'the device token and writes it to .local/thingsboard.env, where `npm start` reads it. Running it again changes nothing.',
    options: {
      'tb-version': {
        type: 'string',
        valueName: 'VERSION',
        description: 'the ThingsBoard version: 3.6 or 3.7+ (default)',
      },
    },
    environment: {
      THINGSBOARD_URL: 'ThingsBoard (http://localhost:8080)',
      'THINGSBOARD_USERNAME, THINGSBOARD_PASSWORD': 'the tenant account (tenant@thingsboard.org / tenant)',
      THINGSBOARD_VERSION: 'as --tb-version',
    },
  });
  const env = (name: string, fallback: string) => process.env[name] || fallback;
  await provision({
    url: env('THINGSBOARD_URL', 'http://localhost:8080'),
    username: env('THINGSBOARD_USERNAME', 'tenant@thingsboard.org'),
    password: env('THINGSBOARD_PASSWORD', 'tenant'),
    tbVersion: parseThingsBoardVersion(values['tb-version'] ?? process.env['THINGSBOARD_VERSION']),
    log: (line) => console.log(line),
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(`Provisioning failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
