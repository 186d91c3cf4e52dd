/**
 * The MLflow client's HTTP transport: one call to the tracking server, its retries, and the reading
 * of the reply (a parsed JSON body, or MlflowError / MlflowUnavailableError saying what went wrong).
 *
 * Transient failures are retried a bounded number of times with backoff, but only when a retry cannot
 * duplicate anything: creates that are not idempotent (runs, model versions) are retried only when the
 * request provably never reached MLflow (connection refused, 503).
 */
import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import { redactedCause } from '#http/errors';
import { MlflowError, MlflowUnavailableError } from '#clients/mlflow/errors';

/** The root of MLflow's REST API. */
export const API = '/api/2.0/mlflow';

export interface MlflowClientOptions {
  /** The tracking server's root URL (MLFLOW_TRACKING_URI), e.g. http://mlflow:5000. */
  baseUrl: string;
  /** Per-request timeout for API calls. Default 5 s. */
  timeoutMs?: number;
  /** Per-request timeout for artifact uploads and downloads. Default 60 s. */
  artifactTimeoutMs?: number;
  /** Timeout of `ping()`. Default 2 s. */
  pingTimeoutMs?: number;
  /** Retries after the first attempt on a transient failure. Default 2. */
  retries?: number;
  /** First backoff delay; doubles on each retry, with jitter. Default 200 ms. */
  retryDelayMs?: number;
}

/**
 * - `idempotent`: repeating the request changes nothing (reads, artifact PUT, log-batch with fixed
 *   timestamps, updates); retried on any transient failure.
 * - `unsent-only`: a repeat could duplicate (runs/create, model-versions/create, the create half of a
 *   get-or-create); retried only when MLflow provably did not process it.
 */
type RetryPolicy = 'idempotent' | 'unsent-only';

export interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  /** What was asked, in words, for error messages: "get registered model 'x'". */
  what: string;
  retry: RetryPolicy;
  params?: Record<string, string | number>;
  json?: unknown;
  bytes?: Uint8Array;
  timeoutMs?: number;
  /** An artifact download: MLflow answers 500 INTERNAL_ERROR for a missing file, which is not transient. */
  download?: boolean;
}

interface Reply {
  status: number;
  contentType: string;
  body: Buffer;
}

const errorBodySchema = z.object({ error_code: z.string().optional(), message: z.string().optional() });

/** Connection-level failures that happen before a request reaches the server. */
const UNSENT_NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const isJson = (reply: Reply) => reply.contentType.toLowerCase().includes('json');

export class MlflowTransport {
  /** Per-request timeout for artifact uploads and downloads, for the calls that move artifacts. */
  readonly artifactTimeoutMs: number;
  private readonly http: AxiosInstance;
  private readonly basePath: string;
  private readonly timeoutMs: number;
  private readonly pingTimeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(options: MlflowClientOptions) {
    const baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.basePath = new URL(baseUrl).pathname.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.artifactTimeoutMs = options.artifactTimeoutMs ?? 60_000;
    this.pingTimeoutMs = options.pingTimeoutMs ?? 2_000;
    this.retries = options.retries ?? 2;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.http = axios.create({
      baseURL: baseUrl,
      responseType: 'arraybuffer',
      // Statuses are interpreted here (HTML error pages, 500 on a missing artifact), not by axios.
      validateStatus: () => true,
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
      transitional: { clarifyTimeoutError: true },
    });
  }

  /** A JSON call whose 2xx body is parsed with `schema`; anything else throws MlflowError / MlflowUnavailableError. */
  async request<T>(call: Call, schema: z.ZodType<T>): Promise<T> {
    const reply = await this.send(call);
    if (reply.status < 200 || reply.status >= 300) throw this.failure(call, reply);
    let body: unknown;
    try {
      body = reply.body.length === 0 ? {} : JSON.parse(reply.body.toString('utf8'));
    } catch (cause) {
      throw new MlflowError(
        `MLflow answered ${reply.status} with a body that is not JSON to ${call.what} (${this.describe(call)})`,
        {
          status: reply.status,
          cause,
        },
      );
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      throw new MlflowError(
        `MLflow answered an unexpected body to ${call.what} (${this.describe(call)}): ${z.prettifyError(parsed.error)}`,
        {
          status: reply.status,
          cause: parsed.error,
        },
      );
    }
    return parsed.data;
  }

  /** Like `request`, but null when MLflow answers 404 RESOURCE_DOES_NOT_EXIST. */
  async requestOrNull<T>(call: Call, schema: z.ZodType<T>): Promise<T | null> {
    try {
      return await this.request(call, schema);
    } catch (error) {
      if (error instanceof MlflowError && error.errorCode === 'RESOURCE_DOES_NOT_EXIST') return null;
      throw error;
    }
  }

  /** The body of a call MLflow must answer 200 (an artifact download). */
  async bytes(call: Call): Promise<Buffer> {
    const reply = await this.send(call);
    if (reply.status !== 200) throw this.failure(call, reply);
    return reply.body;
  }

  /** Whether the tracking server answers `GET /health`; never throws (for health checks). */
  async ping(): Promise<boolean> {
    try {
      const reply = await this.http.get('/health', { timeout: this.pingTimeoutMs });
      return reply.status === 200;
    } catch {
      return false;
    }
  }

  /** Sends `call`, retrying transient failures with backoff; a network failure that persists throws MlflowUnavailableError. */
  private async send(call: Call): Promise<Reply> {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.http.request<Buffer>({
          method: call.method,
          url: call.path,
          params: call.params,
          data: call.bytes ?? (call.json === undefined ? undefined : JSON.stringify(call.json)),
          headers: {
            'Content-Type': call.bytes ? 'application/octet-stream' : 'application/json',
            Accept: 'application/json, */*',
          },
          timeout: call.timeoutMs ?? this.timeoutMs,
        });
        const reply: Reply = {
          status: response.status,
          contentType: String(response.headers['content-type'] ?? ''),
          body: Buffer.from(response.data ?? []),
        };
        if (attempt > this.retries || !this.isTransientStatus(call, reply.status)) return reply;
      } catch (error) {
        if (!axios.isAxiosError(error)) throw error;
        const unsent = UNSENT_NETWORK_CODES.has(error.code ?? '');
        if (attempt > this.retries || !(unsent || call.retry === 'idempotent')) {
          throw new MlflowUnavailableError(
            `MLflow is unavailable: could not ${call.what} (${this.describe(call)}: ${this.networkReason(call, error.code, error.message)}` +
              `, ${attempt} attempt${attempt > 1 ? 's' : ''}). Check that the MLflow tracking server is running and that MLFLOW_TRACKING_URI points to it.`,
            { cause: redactedCause(error) },
          );
        }
      }
      const delay = this.retryDelayMs * 2 ** (attempt - 1);
      await sleep(delay / 2 + Math.random() * (delay / 2));
    }
  }

  private isTransientStatus(call: Call, status: number): boolean {
    if (status === 503) return true; // nothing was processed
    if (call.retry !== 'idempotent') return false;
    if (status === 502 || status === 504) return true;
    return status === 500 && call.method === 'GET' && !call.download;
  }

  private networkReason(call: Call, code: string | undefined, message: string): string {
    switch (code) {
      case 'ECONNREFUSED':
        return 'connection refused';
      case 'ETIMEDOUT':
      case 'ECONNABORTED':
        return `no answer within ${call.timeoutMs ?? this.timeoutMs} ms`;
      case 'ECONNRESET':
        return 'connection reset';
      default:
        return message;
    }
  }

  /** The error for a non-2xx reply. */
  private failure(call: Call, reply: Reply): MlflowError | MlflowUnavailableError {
    const parsed = isJson(reply) ? errorBodySchema.safeParse(safeJson(reply.body)) : undefined;
    const errorCode = parsed?.success ? parsed.data.error_code : undefined;
    const detail = parsed?.success ? [errorCode, parsed.data.message].filter(Boolean).join(': ') : '';
    const details = { status: reply.status, errorCode };
    if (call.download && reply.status === 500 && errorCode) {
      return new MlflowError(
        `MLflow could not ${call.what} (500 ${detail}): the artifact probably does not exist`,
        details,
      );
    }
    if (reply.status >= 500) {
      return new MlflowUnavailableError(
        `MLflow is unavailable: could not ${call.what} (${this.describe(call)} answered ${reply.status}${detail ? ` ${detail}` : ''}).`,
        details,
      );
    }
    if (!isJson(reply) && (reply.status === 404 || reply.status === 405)) {
      return new MlflowError(
        `MLflow answered HTML ${reply.status} for ${this.describe(call)}: is MLFLOW_TRACKING_URI the tracking server's root URL` +
          `${reply.status === 405 ? ', and is the server MLflow 2.x?' : '?'}`,
        details,
      );
    }
    return new MlflowError(
      `MLflow refused to ${call.what} (${this.describe(call)} answered ${reply.status}${detail ? ` ${detail}` : ''})`,
      details,
    );
  }

  private describe(call: Call): string {
    return `${call.method} ${this.basePath}${call.path}`;
  }
}

function safeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}
