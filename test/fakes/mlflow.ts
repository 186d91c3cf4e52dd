import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An in-memory MLflow tracking server (2.17, `--serve-artifacts`) that answers the way the real one
 * does according to ../shared/contracts/mlflow-rest.md: JSON errors with MLflow's status codes and
 * error codes, HTML 404/405 pages for unknown paths and wrong methods, omitted empty repeated fields,
 * string versions, a 500 for a missing artifact. Switches simulate an outage (`setDown`), transient
 * errors (`failNext`) and a slow server (`delayNext`).
 */

interface FakeMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

interface FakeExperiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: 'active' | 'deleted';
  creation_time: number;
  last_update_time: number;
  tags: Map<string, string>;
}

interface FakeRun {
  run_id: string;
  run_name: string;
  experiment_id: string;
  status: string;
  start_time: number;
  end_time?: number;
  artifact_uri: string;
  metrics: FakeMetric[];
  params: Map<string, string>;
  tags: Map<string, string>;
}

interface FakeModelVersion {
  name: string;
  version: number;
  creation_timestamp: number;
  last_updated_timestamp: number;
  current_stage: Stage;
  description?: string;
  source: string;
  run_id?: string;
  tags: Map<string, string>;
}

interface FakeRegisteredModel {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description?: string;
  tags: Map<string, string>;
  versions: FakeModelVersion[];
  /** alias → version number */
  aliases: Map<string, number>;
}

interface RecordedRequest {
  method: string;
  /** Path and query string as received. */
  url: string;
  status: number;
}

interface FakeMlflowState {
  /** By id; experiment "0" is MLflow's Default experiment. */
  experiments: Map<string, FakeExperiment>;
  runs: Map<string, FakeRun>;
  registeredModels: Map<string, FakeRegisteredModel>;
  /** Artifact bytes by proxy path, e.g. `1/<run_id>/artifacts/model/model.onnx`. */
  artifacts: Map<string, Buffer>;
  /** Every request, in order of arrival, with the status answered (0 when the connection was dropped). */
  requests: RecordedRequest[];
}

export interface FakeMlflow {
  /** Root URL, the value for MLFLOW_TRACKING_URI. */
  url: string;
  state: FakeMlflowState;
  /** While down, every connection is destroyed as soon as it opens (clients see a network error). */
  setDown(down: boolean): void;
  /** The next `count` requests answer `status` (default 503) with a proxy's HTML error page. */
  failNext(count: number, status?: number): void;
  /** The next `count` requests are answered only after `ms` milliseconds. */
  delayNext(count: number, ms: number): void;
  close(): Promise<void>;
}

const FAKE_MLFLOW_VERSION = '2.17.0';

const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
type Stage = (typeof STAGES)[number];
const RUN_STATUSES = ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'];

const API = '/api/2.0/mlflow';
const ARTIFACTS = '/api/2.0/mlflow-artifacts/artifacts';

const HTML_404 =
  '<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n' +
  '<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n';
const HTML_405 =
  '<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n' +
  '<p>The method is not allowed for the requested URL.</p>\n';

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

const notFound = (message: string) => new ApiError(404, 'RESOURCE_DOES_NOT_EXIST', message);
const invalid = (message: string) => new ApiError(400, 'INVALID_PARAMETER_VALUE', message);
const API_DOCS_HINT = 'See the API docs for more information about request parameters.';

type Input = Record<string, unknown>;

/** Python's name for a JSON value's type, as MLflow's validation messages give it. */
function pythonType(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string') return 'str';
  if (Array.isArray(value)) return 'list';
  return value === null ? 'NoneType' : 'dict';
}

function wrongType(field: string, value: unknown): ApiError {
  return invalid(
    `Invalid value ${JSON.stringify(value)} for parameter '${field}' supplied. Hint: Value was of type '${pythonType(value)}'. ${API_DOCS_HINT}`,
  );
}

function optionalString(input: Input, field: string): string | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw wrongType(field, value);
  return value;
}

function requiredString(input: Input, field: string): string {
  const value = optionalString(input, field);
  if (value === undefined || value === '')
    throw invalid(`Missing value for required parameter '${field}'. ${API_DOCS_HINT}`);
  return value;
}

function optionalNumber(input: Input, field: string): number | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number') throw wrongType(field, value);
  return value;
}

function requiredBoolean(input: Input, field: string): boolean {
  const value = input[field];
  if (value === undefined || value === null)
    throw invalid(`Missing value for required parameter '${field}'. ${API_DOCS_HINT}`);
  if (typeof value !== 'boolean') throw wrongType(field, value);
  return value;
}

function list(input: Input, field: string): Input[] {
  const value = input[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw wrongType(field, value);
  return value.map((item: unknown) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw wrongType(field, value);
    return item as Input;
  });
}

function keyValues(input: Input, field: string): Array<[string, string]> {
  return list(input, field).map((item) => [requiredString(item, 'key'), optionalString(item, 'value') ?? '']);
}

/** `version` must be a string holding an integer ("2"), never a JSON number. */
function versionNumber(input: Input): number {
  const version = requiredString(input, 'version');
  if (!/^\d+$/.test(version)) throw invalid(`Model version must be an integer, got '${version}'`);
  return Number(version);
}

function canonicalStage(stage: string): Stage {
  const found = STAGES.find((s) => s.toLowerCase() === stage.toLowerCase());
  if (!found) throw invalid(`Invalid Model Version stage: ${stage}. Value must be one of ${STAGES.join(', ')}.`);
  return found;
}

/** Drops undefined values and empty lists, as proto JSON omits unset and empty repeated fields. */
function compact(entity: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(entity).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)),
  );
}

const tagList = (tags: Map<string, string>) => [...tags].map(([key, value]) => ({ key, value }));

function likeRegex(pattern: string, flags: string): RegExp {
  const source = pattern
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replaceAll('%', '.*')
    .replaceAll('_', '.');
  return new RegExp(`^${source}$`, flags);
}

/** A model-versions/search filter: clauses on name, run_id, source_path and tags.<key>, joined by AND. */
function versionFilter(filter: string): (mv: FakeModelVersion) => boolean {
  if (filter.trim() === '') return () => true;
  const clauses = filter.split(/\s+AND\s+/i).map((clause) => {
    const match =
      /^\s*(name|run_id|source_path|tags\.(?:`[^`]+`|"[^"]+"|[\w.]+))\s*(=|!=|LIKE|ILIKE)\s*(?:'([^']*)'|"([^"]*)")\s*$/i.exec(
        clause,
      );
    if (!match) throw invalid(`Invalid filter '${filter}'. Could not be parsed.`);
    const [, key = '', comparator = '', single, double] = match;
    const value = single ?? double ?? '';
    const op = comparator.toUpperCase();
    if (key === 'run_id' && (op === 'LIKE' || op === 'ILIKE'))
      throw invalid(`Invalid comparator '${comparator}' not one of '['=', '!=', 'IN']'`);
    const read = (mv: FakeModelVersion): string | undefined => {
      if (key === 'name') return mv.name;
      if (key === 'run_id') return mv.run_id;
      if (key === 'source_path') return mv.source;
      return mv.tags.get(key.slice('tags.'.length).replace(/^[`"]|[`"]$/g, ''));
    };
    return (mv: FakeModelVersion) => {
      const actual = read(mv);
      if (actual === undefined) return false;
      if (op === '=') return actual === value;
      if (op === '!=') return actual !== value;
      return likeRegex(value, op === 'ILIKE' ? 'i' : '').test(actual);
    };
  });
  return (mv) => clauses.every((matches) => matches(mv));
}

function decodePageToken(token: string | undefined): number {
  if (!token) return 0;
  try {
    const { offset } = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { offset?: unknown };
    if (typeof offset === 'number' && Number.isInteger(offset) && offset >= 0) return offset;
  } catch {
    // fall through
  }
  throw invalid('Invalid page token, could not base64-decode');
}

type Method = 'GET' | 'POST' | 'DELETE';
type Handler = (input: Input) => unknown;

class FakeMlflowServer {
  readonly state: FakeMlflowState;
  private readonly routes: Map<string, Partial<Record<Method, Handler>>>;
  private nextExperimentId = 1;

  constructor() {
    const now = Date.now();
    this.state = {
      experiments: new Map([
        [
          '0',
          {
            experiment_id: '0',
            name: 'Default',
            artifact_location: 'mlflow-artifacts:/0',
            lifecycle_stage: 'active',
            creation_time: now,
            last_update_time: now,
            tags: new Map(),
          },
        ],
      ]),
      runs: new Map(),
      registeredModels: new Map(),
      artifacts: new Map(),
      requests: [],
    };
    this.routes = new Map<string, Partial<Record<Method, Handler>>>([
      [`${API}/experiments/get-by-name`, { GET: (i) => this.getExperimentByName(i) }],
      [`${API}/experiments/create`, { POST: (i) => this.createExperiment(i) }],
      [`${API}/runs/create`, { POST: (i) => this.createRun(i) }],
      [`${API}/runs/log-batch`, { POST: (i) => this.logBatch(i) }],
      [`${API}/runs/update`, { POST: (i) => this.updateRun(i) }],
      [`${API}/runs/get`, { GET: (i) => ({ run: this.runJson(this.run(i)) }) }],
      [`${API}/registered-models/create`, { POST: (i) => this.createRegisteredModel(i) }],
      [
        `${API}/registered-models/get`,
        { GET: (i) => ({ registered_model: this.registeredModelJson(this.model(requiredString(i, 'name'))) }) },
      ],
      [
        `${API}/registered-models/get-latest-versions`,
        { GET: (i) => this.latestVersions(i), POST: (i) => this.latestVersions(i) },
      ],
      [
        `${API}/registered-models/alias`,
        { POST: (i) => this.setAlias(i), GET: (i) => this.getByAlias(i), DELETE: (i) => this.deleteAlias(i) },
      ],
      [`${API}/model-versions/create`, { POST: (i) => this.createModelVersion(i) }],
      [`${API}/model-versions/get`, { GET: (i) => ({ model_version: this.versionJson(this.version(i)) }) }],
      [`${API}/model-versions/transition-stage`, { POST: (i) => this.transitionStage(i) }],
      [`${API}/model-versions/set-tag`, { POST: (i) => this.setVersionTag(i) }],
      [`${API}/model-versions/get-download-uri`, { GET: (i) => ({ artifact_uri: this.version(i).source }) }],
      [`${API}/model-versions/search`, { GET: (i) => this.searchVersions(i) }],
    ]);
  }

  /** Answers one request whose body has been read. */
  handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (path === '/health' || path === '/version') {
      if (method !== 'GET') {
        html(res, 405, HTML_405);
        return;
      }
      html(res, 200, path === '/health' ? 'OK' : FAKE_MLFLOW_VERSION);
      return;
    }
    try {
      if (path === ARTIFACTS || path.startsWith(`${ARTIFACTS}/`)) {
        this.artifacts(method, path, url, body, res);
        return;
      }
      const route = this.routes.get(path);
      if (!route) {
        html(res, 404, HTML_404);
        return;
      }
      const handler = route[method as Method];
      if (!handler) {
        html(res, 405, HTML_405);
        return;
      }
      json(res, 200, handler(this.input(method, req, url, body)));
    } catch (error) {
      if (error instanceof ApiError) json(res, error.status, { error_code: error.errorCode, message: error.message });
      else json(res, 500, { error_code: 'INTERNAL_ERROR', message: (error as Error).message });
    }
  }

  private input(method: string, req: IncomingMessage, url: URL, body: Buffer): Input {
    // GET reads the query string; so does a DELETE without a body (newer clients send one, older ones do not).
    if (method === 'GET' || (method === 'DELETE' && body.length === 0)) {
      const input: Input = {};
      for (const key of new Set(url.searchParams.keys())) {
        const values = url.searchParams.getAll(key);
        input[key] = values.length > 1 || key === 'stages' ? values : values[0];
      }
      return input;
    }
    if (method === 'POST') {
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (contentType !== 'application/json')
        throw invalid("Bad Request. Content-Type must be one of ['application/json'].");
    }
    if (body.length === 0) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw invalid('Malformed request body: it is not JSON.');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw invalid('Malformed request body: expected a JSON object.');
    return parsed as Input;
  }

  // ---- experiments and runs ----

  private getExperimentByName(input: Input) {
    const name = requiredString(input, 'experiment_name');
    const experiment = [...this.state.experiments.values()].find((e) => e.name === name);
    if (!experiment) throw notFound(`Could not find experiment with name '${name}'`);
    return { experiment: this.experimentJson(experiment) };
  }

  private createExperiment(input: Input) {
    const name = requiredString(input, 'name');
    if ([...this.state.experiments.values()].some((e) => e.name === name)) {
      throw new ApiError(400, 'RESOURCE_ALREADY_EXISTS', `Experiment(name=${name}) already exists.`);
    }
    const id = String(this.nextExperimentId++);
    const now = Date.now();
    this.state.experiments.set(id, {
      experiment_id: id,
      name,
      artifact_location: optionalString(input, 'artifact_location') ?? `mlflow-artifacts:/${id}`,
      lifecycle_stage: 'active',
      creation_time: now,
      last_update_time: now,
      tags: new Map(keyValues(input, 'tags')),
    });
    return { experiment_id: id };
  }

  private experimentJson(e: FakeExperiment) {
    return compact({
      experiment_id: e.experiment_id,
      name: e.name,
      artifact_location: e.artifact_location,
      lifecycle_stage: e.lifecycle_stage,
      last_update_time: e.last_update_time,
      creation_time: e.creation_time,
      tags: tagList(e.tags),
    });
  }

  private createRun(input: Input) {
    const experimentId = requiredString(input, 'experiment_id');
    const experiment = this.state.experiments.get(experimentId);
    if (!experiment) throw notFound(`No Experiment with id=${experimentId} exists`);
    const tags = new Map(keyValues(input, 'tags'));
    const runId = randomBytes(16).toString('hex');
    const runName = optionalString(input, 'run_name') ?? tags.get('mlflow.runName') ?? `run-${runId.slice(0, 6)}`;
    tags.set('mlflow.runName', runName);
    const run: FakeRun = {
      run_id: runId,
      run_name: runName,
      experiment_id: experimentId,
      status: 'RUNNING',
      start_time: optionalNumber(input, 'start_time') ?? Date.now(),
      artifact_uri: `${experiment.artifact_location}/${runId}/artifacts`,
      metrics: [],
      params: new Map(),
      tags,
    };
    this.state.runs.set(runId, run);
    return { run: this.runJson(run) };
  }

  private run(input: Input): FakeRun {
    const runId = optionalString(input, 'run_id') || requiredString(input, 'run_uuid');
    const run = this.state.runs.get(runId);
    if (!run) throw notFound(`Run with id=${runId} not found`);
    return run;
  }

  private logBatch(input: Input) {
    const run = this.run(input);
    // Validate everything first: a rejected batch logs nothing.
    const metrics = list(input, 'metrics').map((m, index) => {
      const field = (name: string) => `metrics[${index}].${name}`;
      const key = optionalString(m, 'key');
      if (!key) throw invalid(`Missing value for required parameter '${field('key')}'. ${API_DOCS_HINT}`);
      const value = m.value;
      if (value === undefined || value === null)
        throw invalid(`Missing value for required parameter '${field('value')}'. ${API_DOCS_HINT}`);
      if (typeof value !== 'number') throw wrongType(field('value'), value);
      const timestamp = m.timestamp;
      if (timestamp === undefined || timestamp === null)
        throw invalid(`Missing value for required parameter '${field('timestamp')}'. ${API_DOCS_HINT}`);
      if (typeof timestamp !== 'number') throw wrongType(field('timestamp'), timestamp);
      return { key, value, timestamp, step: optionalNumber(m, 'step') ?? 0 };
    });
    const params = list(input, 'params').map((p) => [requiredString(p, 'key'), p.value] as const);
    for (const [key, value] of params) {
      if (typeof value !== 'string') throw wrongType('value', value);
      const logged = run.params.get(key);
      if (logged !== undefined && logged !== value) {
        throw invalid(
          `Changing param values is not allowed. Param with key='${key}' was already logged with value='${logged}' ` +
            `for run ID='${run.run_id}'. Attempted logging new value '${value}'.`,
        );
      }
    }
    const tags = keyValues(input, 'tags');
    for (const metric of metrics) {
      const duplicate = run.metrics.some(
        (m) =>
          m.key === metric.key &&
          m.value === metric.value &&
          m.timestamp === metric.timestamp &&
          m.step === metric.step,
      );
      if (!duplicate) run.metrics.push(metric);
    }
    for (const [key, value] of params) run.params.set(key, value as string);
    for (const [key, value] of tags) run.tags.set(key, value);
    return {};
  }

  private updateRun(input: Input) {
    const run = this.run(input);
    const status = optionalString(input, 'status');
    if (status !== undefined && !RUN_STATUSES.includes(status)) throw wrongType('status', status);
    const endTime = optionalNumber(input, 'end_time');
    const runName = optionalString(input, 'run_name');
    if (status) run.status = status;
    if (endTime !== undefined) run.end_time = endTime;
    if (runName) {
      run.run_name = runName;
      run.tags.set('mlflow.runName', runName);
    }
    return { run_info: this.runInfoJson(run) };
  }

  private runInfoJson(run: FakeRun) {
    return compact({
      run_uuid: run.run_id,
      run_id: run.run_id,
      run_name: run.run_name,
      experiment_id: run.experiment_id,
      status: run.status,
      start_time: run.start_time,
      end_time: run.end_time,
      artifact_uri: run.artifact_uri,
      lifecycle_stage: 'active',
    });
  }

  private runJson(run: FakeRun) {
    // The latest value of each metric: highest step, then latest timestamp.
    const latest = new Map<string, FakeMetric>();
    for (const metric of run.metrics) {
      const current = latest.get(metric.key);
      if (
        !current ||
        metric.step > current.step ||
        (metric.step === current.step && metric.timestamp >= current.timestamp)
      ) {
        latest.set(metric.key, metric);
      }
    }
    return {
      info: this.runInfoJson(run),
      data: compact({
        metrics: [...latest.values()],
        params: tagList(run.params),
        tags: tagList(run.tags),
      }),
      inputs: {},
    };
  }

  // ---- artifact proxy ----

  private artifacts(method: string, path: string, url: URL, body: Buffer, res: ServerResponse): void {
    if (path === ARTIFACTS) {
      if (method !== 'GET') {
        html(res, 405, HTML_405);
        return;
      }
      json(res, 200, this.listArtifacts(url.searchParams.get('path') ?? ''));
      return;
    }
    const segments = path
      .slice(ARTIFACTS.length + 1)
      .split('/')
      .map(decodeURIComponent);
    if (segments.some((s) => s === '..' || s === '.')) throw invalid(`Invalid path: ${segments.join('/')}`);
    const key = segments.filter(Boolean).join('/');
    switch (method) {
      case 'PUT':
        this.state.artifacts.set(key, body);
        json(res, 200, {});
        return;
      case 'GET': {
        const bytes = this.state.artifacts.get(key);
        if (!bytes)
          throw new ApiError(500, 'INTERNAL_ERROR', `[Errno 2] No such file or directory: '/mlartifacts/${key}'`);
        res.writeHead(200, {
          'Content-Type': 'application/octet-stream',
          'Content-Disposition': `attachment; filename=${segments.at(-1) ?? ''}`,
        });
        res.end(bytes);
        return;
      }
      case 'DELETE':
        for (const stored of [...this.state.artifacts.keys()]) {
          if (stored === key || stored.startsWith(`${key}/`)) this.state.artifacts.delete(stored);
        }
        json(res, 200, {});
        return;
      default:
        html(res, 405, HTML_405);
        return;
    }
  }

  /** Immediate children of a folder: names relative to it, folders without a size. */
  private listArtifacts(folder: string) {
    const prefix = folder.replace(/^\/+|\/+$/g, '');
    const children = new Map<string, { path: string; is_dir: boolean; file_size?: number }>();
    for (const [key, bytes] of this.state.artifacts) {
      if (prefix && !key.startsWith(`${prefix}/`)) continue;
      const rest = prefix ? key.slice(prefix.length + 1) : key;
      const [name = '', ...deeper] = rest.split('/');
      children.set(
        name,
        deeper.length > 0 ? { path: name, is_dir: true } : { path: name, is_dir: false, file_size: bytes.length },
      );
    }
    return compact({ files: [...children.values()].sort((a, b) => a.path.localeCompare(b.path)) });
  }

  // ---- model registry ----

  private createRegisteredModel(input: Input) {
    const name = requiredString(input, 'name');
    if (this.state.registeredModels.has(name)) {
      throw new ApiError(400, 'RESOURCE_ALREADY_EXISTS', `Registered Model (name=${name}) already exists.`);
    }
    const now = Date.now();
    const model: FakeRegisteredModel = {
      name,
      creation_timestamp: now,
      last_updated_timestamp: now,
      description: optionalString(input, 'description') || undefined,
      tags: new Map(keyValues(input, 'tags')),
      versions: [],
      aliases: new Map(),
    };
    this.state.registeredModels.set(name, model);
    return { registered_model: this.registeredModelJson(model) };
  }

  private model(name: string): FakeRegisteredModel {
    const model = this.state.registeredModels.get(name);
    if (!model) throw notFound(`Registered Model with name=${name} not found`);
    return model;
  }

  private version(input: Input): FakeModelVersion {
    const name = requiredString(input, 'name');
    const version = versionNumber(input);
    const found = this.model(name).versions.find((v) => v.version === version);
    if (!found) throw notFound(`Model Version (name=${name}, version=${version}) not found`);
    return found;
  }

  /** The latest version in each stage, in stage order. */
  private latestPerStage(model: FakeRegisteredModel, stages: readonly Stage[]): FakeModelVersion[] {
    return stages.flatMap((stage) => {
      const inStage = model.versions.filter((v) => v.current_stage === stage);
      return inStage.length ? [inStage.reduce((a, b) => (b.version > a.version ? b : a))] : [];
    });
  }

  private registeredModelJson(model: FakeRegisteredModel) {
    return compact({
      name: model.name,
      creation_timestamp: model.creation_timestamp,
      last_updated_timestamp: model.last_updated_timestamp,
      description: model.description,
      latest_versions: this.latestPerStage(model, STAGES).map((v) => this.versionJson(v)),
      tags: tagList(model.tags),
      aliases: [...model.aliases].map(([alias, version]) => ({ alias, version: String(version) })),
    });
  }

  private versionJson(v: FakeModelVersion) {
    const model = this.model(v.name);
    return compact({
      name: v.name,
      version: String(v.version),
      creation_timestamp: v.creation_timestamp,
      last_updated_timestamp: v.last_updated_timestamp,
      current_stage: v.current_stage,
      description: v.description,
      source: v.source,
      run_id: v.run_id,
      status: 'READY',
      tags: tagList(v.tags),
      aliases: [...model.aliases].filter(([, version]) => version === v.version).map(([alias]) => alias),
    });
  }

  private latestVersions(input: Input) {
    const model = this.model(requiredString(input, 'name'));
    const requested = input.stages;
    if (requested !== undefined && !Array.isArray(requested)) throw wrongType('stages', requested);
    const stages = requested?.length ? requested.map((s: unknown) => canonicalStage(String(s))) : STAGES;
    return compact({ model_versions: this.latestPerStage(model, stages).map((v) => this.versionJson(v)) });
  }

  private createModelVersion(input: Input) {
    const name = requiredString(input, 'name');
    const source = requiredString(input, 'source');
    const runId = optionalString(input, 'run_id') || undefined;
    const model = this.model(name);
    if (!/^[a-z][a-z0-9+.-]*:/i.test(source) || /^file:/i.test(source)) {
      throw invalid(
        `Invalid model version source: '${source}'. To use a local path as a model version source, the run_id request ` +
          'parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id.',
      );
    }
    const now = Date.now();
    const version: FakeModelVersion = {
      name,
      version: model.versions.reduce((max, v) => Math.max(max, v.version), 0) + 1,
      creation_timestamp: now,
      last_updated_timestamp: now,
      current_stage: 'None',
      description: optionalString(input, 'description') || undefined,
      source,
      run_id: runId,
      tags: new Map(keyValues(input, 'tags')),
    };
    model.versions.push(version);
    model.last_updated_timestamp = now;
    return { model_version: this.versionJson(version) };
  }

  private transitionStage(input: Input) {
    const version = this.version(input);
    const stage = canonicalStage(requiredString(input, 'stage'));
    const archiveExisting = requiredBoolean(input, 'archive_existing_versions');
    if (archiveExisting && stage !== 'Staging' && stage !== 'Production') {
      throw invalid(
        `Model version transition cannot archive existing model versions because '${stage}' is not an Active stage. Valid stages are Staging, Production`,
      );
    }
    const now = Date.now();
    if (archiveExisting) {
      for (const other of this.model(version.name).versions) {
        if (other !== version && other.current_stage === stage) {
          other.current_stage = 'Archived';
          other.last_updated_timestamp = now;
        }
      }
    }
    version.current_stage = stage;
    version.last_updated_timestamp = now;
    return { model_version: this.versionJson(version) };
  }

  private setAlias(input: Input) {
    const alias = requiredString(input, 'alias');
    if (alias.toLowerCase() === 'latest') throw invalid(`'${alias}' alias name (case insensitive) is reserved.`);
    if (/^v(ersion)?\d+$/i.test(alias)) throw invalid(`Version alias name '${alias}' is reserved.`);
    const version = this.version(input);
    this.model(version.name).aliases.set(alias, version.version);
    return {};
  }

  private getByAlias(input: Input) {
    const name = requiredString(input, 'name');
    const alias = requiredString(input, 'alias');
    const version = this.state.registeredModels.get(name)?.aliases.get(alias);
    if (version === undefined) throw invalid(`Registered model alias ${alias} not found.`);
    return { model_version: this.versionJson(this.version({ name, version: String(version) })) };
  }

  private deleteAlias(input: Input) {
    const model = this.model(requiredString(input, 'name'));
    model.aliases.delete(requiredString(input, 'alias'));
    return {};
  }

  private setVersionTag(input: Input) {
    const version = this.version(input);
    version.tags.set(requiredString(input, 'key'), optionalString(input, 'value') ?? '');
    return {};
  }

  private searchVersions(input: Input) {
    const matches = versionFilter(optionalString(input, 'filter') ?? '');
    const maxResults = Number(optionalString(input, 'max_results') ?? 10_000);
    if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > 200_000) {
      throw invalid(
        `Invalid value for max_results. It must be at most 200000, but got value ${optionalString(input, 'max_results')}`,
      );
    }
    const offset = decodePageToken(optionalString(input, 'page_token'));
    const found = [...this.state.registeredModels.values()]
      .flatMap((model) => model.versions)
      .filter(matches)
      .sort((a, b) => b.creation_timestamp - a.creation_timestamp || b.version - a.version);
    const page = found.slice(offset, offset + maxResults);
    const next =
      offset + maxResults < found.length
        ? Buffer.from(JSON.stringify({ offset: offset + maxResults })).toString('base64')
        : undefined;
    return compact({ model_versions: page.map((v) => this.versionJson(v)), next_page_token: next });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function html(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(body);
}

/** Starts the fake on a free port of 127.0.0.1. */
export async function startFakeMlflow(): Promise<FakeMlflow> {
  const fake = new FakeMlflowServer();
  const sockets = new Set<Socket>();
  let down = false;
  const failures: number[] = [];
  const delays: number[] = [];

  const server = createServer((req, res) => {
    const record: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', status: 0 };
    fake.state.requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const delay = delays.shift() ?? 0;
      setTimeout(() => {
        if (res.destroyed) return;
        const failure = failures.shift();
        if (failure !== undefined) {
          return html(
            res,
            failure,
            `<html><head><title>${failure} Service Temporarily Unavailable</title></head><body><h1>${failure}</h1></body></html>`,
          );
        }
        fake.handle(req, Buffer.concat(chunks), res);
      }, delay);
    });
  });
  server.on('connection', (socket) => {
    if (down) return void socket.destroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    state: fake.state,
    setDown(value) {
      down = value;
      if (down) for (const socket of sockets) socket.destroy();
    },
    failNext(count, status = 503) {
      failures.push(...Array<number>(count).fill(status));
    },
    delayNext(count, ms) {
      delays.push(...Array<number>(count).fill(ms));
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
