/**
 * The tracking half of the MLflow client: experiments, runs, and artifacts through the server's
 * artifact proxy. Experiment creation is a race-safe get-or-create (MLflow answers 400
 * RESOURCE_ALREADY_EXISTS to the loser); creating a run is not idempotent and is never repeated once
 * it may have reached MLflow.
 */
import { z } from 'zod';
import { BadRequestError } from '#http/errors';
import {
  artifactFileList,
  experimentSchema,
  runSchema,
  tagList,
  type ArtifactFile,
  type Experiment,
  type Run,
  type RunInfo,
  type RunStatus,
} from '#clients/mlflow/entities';
import { MlflowError } from '#clients/mlflow/errors';
import { ONNX_MODEL_FILE, onnxModelFiles } from '#clients/mlflow/mlmodel';
import { API, MlflowTransport, type MlflowClientOptions } from '#clients/mlflow/transport';

const ARTIFACTS_API = '/api/2.0/mlflow-artifacts/artifacts';

/** `mlflow-artifacts:/1/<run>/artifacts/model` (optionally `mlflow-artifacts://host:port/...`) → `1/<run>/artifacts/model`. */
function proxyPath(uri: string): string | undefined {
  const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/*(.*)$/.exec(uri);
  return match?.[1]?.replace(/\/+$/, '');
}

const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

export class MlflowTrackingClient {
  protected readonly transport: MlflowTransport;

  constructor(options: MlflowClientOptions) {
    this.transport = new MlflowTransport(options);
  }

  // ---- experiments and runs ------------------------------------------------------------------

  /** The id of the experiment named `name`, created if missing; safe when several containers race. */
  async getOrCreateExperiment(name: string): Promise<string> {
    const existing = await this.getExperimentByName(name);
    if (existing) return this.activeExperimentId(existing);
    try {
      const created = await this.transport.request(
        {
          method: 'POST',
          path: `${API}/experiments/create`,
          json: { name },
          what: `create experiment '${name}'`,
          retry: 'unsent-only',
        },
        z.object({ experiment_id: z.string() }),
      );
      return created.experiment_id;
    } catch (error) {
      if (!(error instanceof MlflowError && error.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw error;
      const winner = await this.getExperimentByName(name);
      if (!winner) throw error;
      return this.activeExperimentId(winner);
    }
  }

  async createRun(input: { experimentId: string; runName?: string; tags?: Record<string, string> }): Promise<Run> {
    const { run } = await this.transport.request(
      {
        method: 'POST',
        path: `${API}/runs/create`,
        json: {
          experiment_id: input.experimentId,
          start_time: Date.now(),
          ...(input.runName === undefined ? {} : { run_name: input.runName }),
          tags: tagList(input.tags),
        },
        what: `create a run in experiment ${input.experimentId}`,
        retry: 'unsent-only',
      },
      z.object({ run: runSchema }),
    );
    return run;
  }

  /** Logs metrics (timestamp now, step 0), params and tags in one call. */
  async logBatch(
    runId: string,
    batch: { metrics?: Record<string, number>; params?: Record<string, string>; tags?: Record<string, string> },
  ): Promise<void> {
    const timestamp = Date.now();
    const metrics = Object.entries(batch.metrics ?? {}).map(([key, value]) => {
      if (!Number.isFinite(value)) {
        throw new BadRequestError(`metric ${key} must be a finite number`, [
          { field: key, message: 'must be a finite number' },
        ]);
      }
      return { key, value, timestamp, step: 0 };
    });
    await this.transport.request(
      {
        method: 'POST',
        path: `${API}/runs/log-batch`,
        json: { run_id: runId, metrics, params: tagList(batch.params), tags: tagList(batch.tags) },
        what: `log metrics and params to run ${runId}`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  async finishRun(runId: string, status: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'> = 'FINISHED'): Promise<void> {
    await this.transport.request(
      {
        method: 'POST',
        path: `${API}/runs/update`,
        json: { run_id: runId, status, end_time: Date.now() },
        what: `mark run ${runId} ${status}`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  async getRun(runId: string): Promise<Run> {
    const { run } = await this.transport.request(
      {
        method: 'GET',
        path: `${API}/runs/get`,
        params: { run_id: runId },
        what: `get run ${runId}`,
        retry: 'idempotent',
      },
      z.object({ run: runSchema }),
    );
    return run;
  }

  // ---- artifacts -----------------------------------------------------------------------------

  /** Puts `bytes` at `<artifactUri>/<path>`; `artifactUri` is a run's `mlflow-artifacts:/` (or `runs:/`) URI. */
  async uploadArtifact(artifactUri: string, path: string, bytes: Uint8Array): Promise<void> {
    const target = `${await this.resolveProxyPath(artifactUri)}/${path.replace(/^\/+/, '')}`;
    await this.transport.request(
      {
        method: 'PUT',
        path: `${ARTIFACTS_API}/${encodePath(target)}`,
        bytes,
        timeoutMs: this.transport.artifactTimeoutMs,
        what: `upload artifact mlflow-artifacts:/${target}`,
        retry: 'idempotent',
      },
      z.object({}),
    );
  }

  /** The bytes of an artifact file named by a `mlflow-artifacts:/` or `runs:/<run_id>/<path>` URI. */
  async downloadArtifact(uri: string): Promise<Buffer> {
    const path = await this.resolveProxyPath(uri);
    return this.transport.bytes({
      method: 'GET',
      path: `${ARTIFACTS_API}/${encodePath(path)}`,
      timeoutMs: this.transport.artifactTimeoutMs,
      what: `download artifact ${uri}`,
      retry: 'idempotent',
      download: true,
    });
  }

  /** The files and folders directly inside the artifact folder `uri`; [] when it is empty or missing. */
  async listArtifacts(uri: string): Promise<ArtifactFile[]> {
    const path = await this.resolveProxyPath(uri);
    const { files } = await this.transport.request(
      { method: 'GET', path: ARTIFACTS_API, params: { path }, what: `list artifacts in ${uri}`, retry: 'idempotent' },
      z.object({ files: artifactFileList }),
    );
    return files;
  }

  /**
   * Logs an ONNX model the way `mlflow.onnx.log_model` lays it out, so that MLflow's own tools
   * (`mlflow.pyfunc.load_model`, `mlflow models serve`) can load it: `model/model.onnx`, the
   * environment files, and `model/MLmodel` last (a reader that sees MLmodel sees a complete model).
   * Returns the model folder URI, the source to register a model version with.
   */
  async logOnnxModel(
    run: { info: Pick<RunInfo, 'run_id' | 'artifact_uri'> },
    bytes: Uint8Array,
    options: { fileName: string },
  ): Promise<string> {
    const folder = `${run.info.artifact_uri.replace(/\/+$/, '')}/model`;
    const files = onnxModelFiles({ runId: run.info.run_id, modelSize: bytes.byteLength, fileName: options.fileName });
    await this.uploadArtifact(folder, ONNX_MODEL_FILE, bytes);
    for (const [name, text] of Object.entries(files)) {
      await this.uploadArtifact(folder, name, Buffer.from(text, 'utf8'));
    }
    return folder;
  }

  // ---- internals -----------------------------------------------------------------------------

  private async getExperimentByName(name: string): Promise<Experiment | null> {
    const found = await this.transport.requestOrNull(
      {
        method: 'GET',
        path: `${API}/experiments/get-by-name`,
        params: { experiment_name: name },
        what: `get experiment '${name}'`,
        retry: 'idempotent',
      },
      z.object({ experiment: experimentSchema }),
    );
    return found?.experiment ?? null;
  }

  private activeExperimentId(experiment: Experiment): string {
    if (experiment.lifecycle_stage === 'deleted') {
      throw new MlflowError(
        `MLflow experiment '${experiment.name}' (id ${experiment.experiment_id}) is deleted: restore it in MLflow or set another MLFLOW_EXPERIMENT_NAME`,
      );
    }
    return experiment.experiment_id;
  }

  /** `mlflow-artifacts:/…` or `runs:/<run_id>/<path>` → the path under the artifact proxy. */
  protected async resolveProxyPath(uri: string): Promise<string> {
    const runsUri = /^runs:\/+([^/]+)\/?(.*)$/.exec(uri);
    if (runsUri) {
      const [, runId = '', path = ''] = runsUri;
      const run = await this.getRun(runId);
      return this.resolveProxyPath(
        path ? `${run.info.artifact_uri.replace(/\/+$/, '')}/${path}` : run.info.artifact_uri,
      );
    }
    const path = proxyPath(uri);
    if (path === undefined) {
      throw new MlflowError(
        `cannot read or write artifact ${uri}: only mlflow-artifacts:/ and runs:/ URIs are supported ` +
          '(start the MLflow server with artifact proxying, `mlflow server --serve-artifacts`, the default)',
      );
    }
    return path;
  }
}
