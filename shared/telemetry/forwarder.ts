import type { MessageAttributeValue, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import type pg from 'pg';
import { config } from '#shared/config';
import { pool } from '#shared/db';
import { fieldIssues } from '#http/validation';
import { logger } from '#shared/log';
import { PREDICTION_MESSAGE_VERSION, predictionMessageSchema, type PredictionMessage } from '#prediction/message';
import { markSeenByConsumer } from '#prediction/store';
import { sqs } from '#prediction/queue';
import { sendMessages, type OutgoingMessage } from '#aws/sqs';
import { thingsBoard, type DeliveryReport, type ThingsBoardClient } from '#clients/thingsboard/client';
import { toTelemetryPoint, type TelemetryPoint } from '#telemetry/points';

/**
 * The telemetry consumer: queued predictions → one ThingsBoard request per batch.
 *
 * Every record ends in exactly one of four ways, and only the last is reported to SQS as failed:
 * - delivered: ThingsBoard took the point; the row gets `delivered_at`. (Every prediction received
 *   gets `enqueued_at`: the consumer is what confirms a send from /predict, see shared/prediction/relay.ts.)
 * - parked: it can never be delivered as it is (not a prediction message, or ThingsBoard's parser
 *   refuses it, or ThingsBoard failed it for over an hour): the original body goes to the DLQ with
 *   a `reason` attribute, where `npm run dlq:redrive` can send it back once the cause is fixed.
 * - retried: ThingsBoard failed transiently (outage, rate limit, timeout) or is not configured: a
 *   copy goes back on the queue with a growing DelaySeconds and an `attempt` counter, and the
 *   original counts as handled. The queue's own redrive (5 receives, visibility 60 s) could hold
 *   an outage for about 4 minutes only; copies are new messages, so an outage of any length up to
 *   the retry window leaves the DLQ alone, and the copies come back at most 60 s apart, so a
 *   recovered ThingsBoard gets the whole backlog within about a minute.
 * - failed: the copy or the DLQ message could not be sent: SQS redelivers the original, and its
 *   receive count (redrive to the DLQ after 5) is the fallback.
 * A re-sent point carries the prediction's own ts, so ThingsBoard overwrites it: any duplicate that
 * this at-least-once path makes (a copy sent but the original redelivered) never adds a data point.
 */

/** Whole-batch budget for ThingsBoard: the client waits 5 s per request and bisecting a poison batch of 50 takes about 12 requests; what is unfinished is retried. The Lambda timeout (serverless.yml) leaves room for the bookkeeping after it. */
const BATCH_DEADLINE_MS = 20_000;
/** Delays double from the base up to this multiple of it: 5, 10, 20, 40, 60, 60 … s by default. */
const MAX_DELAY_FACTOR = 12;
/** A message ThingsBoard keeps failing is parked after waiting this long in all. */
export const RETRY_WINDOW_SECONDS = 3_600;
/** Ceiling for an `attempt` attribute read back from SQS (the counter is ours, but a message is anyone's). */
const MAX_ATTEMPT_VALUE = 100_000;
const MAX_ATTRIBUTE_CHARS = 1_000;

export const ATTRIBUTES = { attempt: 'attempt', reason: 'reason', predictionId: 'prediction_id' } as const;

/** The delay before the `attempt`-th retry (1-based). */
export function retryDelaySeconds(attempt: number, baseSeconds: number): number {
  return Math.min(baseSeconds * 2 ** Math.min(attempt - 1, 30), baseSeconds * MAX_DELAY_FACTOR);
}

/** How long a message has waited in retry delays after `attempts` failed deliveries. */
export function waitedSeconds(attempts: number, baseSeconds: number): number {
  const longest = baseSeconds * MAX_DELAY_FACTOR;
  let total = 0;
  let attempt = 1;
  for (; attempt <= attempts && retryDelaySeconds(attempt, baseSeconds) < longest; attempt += 1)
    total += retryDelaySeconds(attempt, baseSeconds);
  return total + Math.max(0, attempts - attempt + 1) * longest;
}

export type ParsedRecord =
  | { ok: true; message: PredictionMessage; attempt: number }
  | { ok: false; reason: string; predictionId?: string };

/** The failed deliveries a record has behind it (0 for a fresh message). */
function attemptOf(record: SQSRecord): number {
  const value = Number(record.messageAttributes?.[ATTRIBUTES.attempt]?.stringValue);
  return Number.isInteger(value) && value > 0 ? Math.min(value, MAX_ATTEMPT_VALUE) : 0;
}

/** Reads a record as a prediction message, or says why it is not one (such a record is parked, never retried). */
export function parseRecord(record: SQSRecord): ParsedRecord {
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch (error) {
    return { ok: false, reason: `the body is not JSON (${(error as Error).message})` };
  }
  const fields = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  const predictionId = typeof fields['prediction_id'] === 'string' ? fields['prediction_id'] : undefined;
  if (typeof fields['version'] === 'number' && fields['version'] !== PREDICTION_MESSAGE_VERSION) {
    return {
      ok: false,
      predictionId,
      reason: `message version ${fields['version']} is not one this consumer reads (version ${PREDICTION_MESSAGE_VERSION})`,
    };
  }
  const result = predictionMessageSchema.safeParse(body);
  if (!result.success) {
    const issues = fieldIssues(result.error).map((issue) => `${issue.field}: ${issue.message}`);
    return { ok: false, predictionId, reason: `not a prediction message: ${issues.join('; ')}` };
  }
  return { ok: true, message: result.data, attempt: attemptOf(record) };
}

export interface ForwarderOptions {
  telemetry: ThingsBoardClient;
  sqs: SQSClient;
  queueUrl: string;
  /** Unset: parked records are reported failed instead, and the queue's redrive policy moves them. */
  dlqUrl: string | undefined;
  db: pg.Pool;
  retryBaseSeconds: number;
  batchDeadlineMs: number;
}

export type ForwardBatch = (records: SQSRecord[]) => Promise<SQSBatchResponse>;

interface Parked {
  record: SQSRecord;
  reason: string;
  predictionId?: string;
}

interface Retry {
  record: SQSRecord;
  attempt: number;
  delaySeconds: number;
}

/** SQS takes only XML characters in attribute values, and they count toward the message size. */
function attributeText(text: string): string {
  const clean = text.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/g, '?');
  return clean.length > MAX_ATTRIBUTE_CHARS ? `${clean.slice(0, MAX_ATTRIBUTE_CHARS)}…` : clean;
}

const text = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: attributeText(value) });

/** The record's own attributes in the SDK's shape, less the ones this consumer sets. */
function carriedAttributes(record: SQSRecord): Record<string, MessageAttributeValue> {
  const ours = new Set<string>(Object.values(ATTRIBUTES));
  const carried: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    if (ours.has(name)) continue;
    carried[name] = {
      DataType: value.dataType,
      ...(value.stringValue !== undefined ? { StringValue: value.stringValue } : {}),
      ...(value.binaryValue !== undefined ? { BinaryValue: Buffer.from(value.binaryValue, 'base64') } : {}),
    };
  }
  return carried;
}

/** Builds a forwarder; what `options` leaves out comes from the container (configuration, clients, pool). */
export function createForwarder(options: Partial<ForwarderOptions> = {}): ForwardBatch {
  const o: ForwarderOptions = {
    telemetry: options.telemetry ?? thingsBoard(),
    sqs: options.sqs ?? sqs(),
    queueUrl: options.queueUrl ?? config().PREDICTIONS_QUEUE_URL,
    dlqUrl: 'dlqUrl' in options ? options.dlqUrl : config().PREDICTIONS_DLQ_URL,
    db: options.db ?? pool(),
    retryBaseSeconds: options.retryBaseSeconds ?? config().TELEMETRY_RETRY_BASE_SECONDS,
    batchDeadlineMs: options.batchDeadlineMs ?? BATCH_DEADLINE_MS,
  };
  /** Configuration problems this forwarder (the container's) has already reported. */
  const reportedConfiguration = new Set<string>();

  /** ThingsBoard's answer for the batch, or "all transient" when it does not finish in time. */
  async function deliver(points: TelemetryPoint[]): Promise<DeliveryReport> {
    const unfinished = (): DeliveryReport => ({ delivered: [], transient: [...points], permanent: [], requests: 0 });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<DeliveryReport>((resolve) => {
      timer = setTimeout(() => {
        logger.warn('ThingsBoard did not finish the batch in time; retrying it', {
          points: points.length,
          deadlineMs: o.batchDeadlineMs,
        });
        resolve(unfinished());
      }, o.batchDeadlineMs);
    });
    const delivery = o.telemetry.deliverPoints(points).catch((error: unknown) => {
      logger.error('telemetry client failed', { error: error as Error });
      return unfinished();
    });
    try {
      return await Promise.race([delivery, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Confirms every received prediction as queued (the relay then leaves it alone) and the delivered ones as delivered. */
  async function recordSeen(seen: string[], delivered: string[]): Promise<void> {
    try {
      await markSeenByConsumer(o.db, seen, delivered);
    } catch (error) {
      // ThingsBoard has the points: failing the records would only re-send them. delivered_at stays empty.
      logger.error('could not record delivered_at; the points were delivered', {
        predictions: delivered.length,
        error: error as Error,
      });
    }
  }

  /** Sends the messages; returns the records that could not be sent (SQS must redeliver them). */
  async function send(
    queueUrl: string,
    what: string,
    messages: Array<OutgoingMessage & { record: SQSRecord }>,
  ): Promise<SQSRecord[]> {
    if (messages.length === 0) return [];
    const { failed } = await sendMessages(o.sqs, queueUrl, messages);
    if (failed.length > 0)
      logger.error(`could not send ${what}; SQS will redeliver the originals`, {
        count: failed.length,
        reason: failed[0]!.reason,
      });
    const failedIds = new Set(failed.map((f) => f.id));
    return messages.filter((m) => failedIds.has(m.id)).map((m) => m.record);
  }

  async function park(parked: Parked[]): Promise<SQSRecord[]> {
    for (const p of parked)
      logger.warn('parked an undeliverable message', {
        messageId: p.record.messageId,
        predictionId: p.predictionId,
        reason: p.reason,
      });
    if (parked.length === 0) return [];
    if (!o.dlqUrl) {
      logger.error(
        'PREDICTIONS_DLQ_URL is not set: undeliverable messages stay on the queue until its redrive policy moves them',
        { count: parked.length },
      );
      return parked.map((p) => p.record);
    }
    return send(
      o.dlqUrl,
      'parked messages to the DLQ',
      parked.map((p) => ({
        id: p.record.messageId,
        record: p.record,
        body: p.record.body,
        attributes: {
          ...carriedAttributes(p.record),
          [ATTRIBUTES.reason]: text(p.reason),
          ...(p.predictionId ? { [ATTRIBUTES.predictionId]: text(p.predictionId) } : {}),
        },
      })),
    );
  }

  async function retry(retries: Retry[]): Promise<SQSRecord[]> {
    return send(
      o.queueUrl,
      'retry copies to the queue',
      retries.map((r) => ({
        id: r.record.messageId,
        record: r.record,
        body: r.record.body,
        delaySeconds: r.delaySeconds,
        attributes: {
          ...carriedAttributes(r.record),
          [ATTRIBUTES.attempt]: { DataType: 'Number', StringValue: String(r.attempt) },
        },
      })),
    );
  }

  return async function forwardBatch(records) {
    const parked: Parked[] = [];
    const retries: Retry[] = [];
    const byPoint = new Map<TelemetryPoint, { record: SQSRecord; message: PredictionMessage; attempt: number }>();
    for (const record of records) {
      const parsed = parseRecord(record);
      if (parsed.ok) byPoint.set(toTelemetryPoint(parsed.message), { record, ...parsed });
      else parked.push({ record, reason: parsed.reason, predictionId: parsed.predictionId });
    }

    const report = await deliver([...byPoint.keys()]);
    const item = (point: TelemetryPoint) => byPoint.get(point)!;

    for (const { point, reason } of report.permanent) {
      const { record, message } = item(point);
      parked.push({
        record,
        predictionId: message.prediction_id,
        reason: `ThingsBoard refused the data point: ${reason}`,
      });
    }
    for (const point of report.transient) {
      const { record, message, attempt } = item(point);
      if (waitedSeconds(attempt, o.retryBaseSeconds) >= RETRY_WINDOW_SECONDS) {
        const minutes = Math.floor(waitedSeconds(attempt, o.retryBaseSeconds) / 60);
        const reason = `ThingsBoard unreachable for over ${minutes >= 60 ? 'an hour' : `${minutes} minutes`} (${attempt + 1} attempts)`;
        parked.push({ record, predictionId: message.prediction_id, reason });
      } else {
        retries.push({
          record,
          attempt: attempt + 1,
          delaySeconds: retryDelaySeconds(attempt + 1, o.retryBaseSeconds),
        });
      }
    }
    if (report.configuration) {
      // Waiting for an operator is not a failed delivery: the counter stays, and the copies wait the
      // longest delay so that an unconfigured stack costs one send per message a minute, not more.
      const delaySeconds = o.retryBaseSeconds * MAX_DELAY_FACTOR;
      // Said once per container and reason (a warning: nothing failed), not at every batch each minute.
      const { reason } = report.configuration;
      const log = reportedConfiguration.has(reason) ? logger.debug : logger.warn;
      reportedConfiguration.add(reason);
      log.call(logger, 'ThingsBoard is not configured correctly: predictions wait on the queue until it is', {
        reason,
        waiting: report.configuration.points.length,
        retryInSeconds: delaySeconds,
      });
      for (const point of report.configuration.points) {
        const { record, attempt } = item(point);
        retries.push({ record, attempt, delaySeconds });
      }
    }

    const delivered = report.delivered.map((point) => item(point).message.prediction_id);
    const seen = [...byPoint.values()].map(({ message }) => message.prediction_id);
    const [, unparked, unretried] = await Promise.all([recordSeen(seen, delivered), park(parked), retry(retries)]);
    const failures = [...unparked, ...unretried];
    logger.info('telemetry batch forwarded', {
      received: records.length,
      delivered: delivered.length,
      parked: parked.length,
      retried: retries.length,
      failed: failures.length,
      requests: report.requests,
    });
    return { batchItemFailures: failures.map((record) => ({ itemIdentifier: record.messageId })) };
  };
}

let containerForwarder: ForwardBatch | undefined;

/** The container's forwarder, built on first use. */
export function forwardBatch(records: SQSRecord[]): Promise<SQSBatchResponse> {
  containerForwarder ??= createForwarder();
  return containerForwarder(records);
}
